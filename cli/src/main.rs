//! `koogate`: the command for people.
//!
//! * `koogate serve --addr HOST:PORT` — every route of the route table in one local process.
//! * `koogate sign --url URL --activity NAME [--set k=v]... [--production] [--v1] [--send]` — a
//!   signed request of any interface type, like the seller console's 生成请求命令, printed as curl
//!   or sent and checked.
//! * `koogate init-secrets PATH` — a secrets document with fresh random keys, for local use.
//! * `koogate sim --url URL [--suite …]` — the seller console's debugger: every console case and
//!   check against an endpoint, with JSON and JUnit reports.
//! * `koogate keygen [--bits N] [--secrets PATH [--force]] | --public-from PATH` — the RSA key
//!   pair of joint-operation login: the public key for the app credential, the private key for
//!   the secrets document.
//! * `koogate usage record|resend|push`, `koogate license activate|query`, `koogate upload` — usage
//!   reporting and the marketplace's open APIs (see `outbound.rs`).
//! * `koogate events list|redeliver|test` — the events recorded for the ISV's product and their
//!   delivery (see `events.rs`).
//! * `koogate list KIND`, `koogate inspect instance|order ID` — what the store holds, for
//!   operators (see `operate.rs`).
//! * `koogate store init` — the DynamoDB or GeminiDB table (see `store.rs`).
//!
//! The command line is parsed by clap: `--help` on every command prints help and does nothing
//! else, unknown flags and arguments exit with status 2, failures of a command with status 1.

mod client;
mod events;
mod keygen;
mod operate;
mod outbound;
mod serve;
mod sign;
mod sim;
mod store;

use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

const TOP_EXAMPLES: &str = "Examples:
  koogate init-secrets .koogate/secrets.json
  KOOGATE_SECRETS_FILE=.koogate/secrets.json koogate serve --addr 127.0.0.1:8080
  KOOGATE_SECRETS_FILE=.koogate/secrets.json koogate sign --url http://127.0.0.1:8080/saas --activity newInstance --send
  koogate sim --url http://127.0.0.1:8080/saas --keys .koogate/secrets.json

Run `koogate COMMAND --help` for the options and examples of each command.
Environment variables: KOOGATE_STORE, KOOGATE_SECRETS_FILE, KOOGATE_CLOCK_SKEW_SECS,
KOOGATE_PROVISIONING, ... (see README.md, 'Configuration').";

/// The merchant side of Huawei Cloud KooGallery: serve the production interface locally, sign
/// and send console-style requests, run the console's debugger, report usage, manage events.
#[derive(Parser, Debug)]
#[command(
    name = "koogate",
    version,
    propagate_version = true,
    arg_required_else_help = true,
    after_help = TOP_EXAMPLES
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Serve every route of the route table in one local process
    #[command(after_help = SERVE_EXAMPLES, after_long_help = SERVE_LONG)]
    Serve(ServeArgs),
    /// Build a signed request like the seller console's, print it as curl or send it
    #[command(after_help = sign::EXAMPLES, after_long_help = sign::LONG)]
    Sign(sign::SignArgs),
    /// Write a secrets document with fresh random local keys
    #[command(after_help = sign::INIT_EXAMPLES)]
    InitSecrets(sign::InitSecretsArgs),
    /// Generate the RSA key pair of joint-operation login, or print the public key of one
    #[command(after_help = keygen::EXAMPLES)]
    Keygen(keygen::KeygenArgs),
    /// Run the seller console's debugger (every console case and check) against an endpoint
    #[command(after_help = sim::EXAMPLES, after_long_help = sim::LONG)]
    Sim(sim::SimArgs),
    /// Record, re-send and push pay-per-use usage
    #[command(subcommand, after_help = outbound::USAGE_EXAMPLES)]
    Usage(outbound::UsageCommand),
    /// Activate or query a License 2.0 code (the marketplace's open API)
    #[command(subcommand, after_help = outbound::LICENSE_EXAMPLES)]
    License(outbound::LicenseCommand),
    /// Deliver a string or a file for an event (the marketplace's upload API)
    #[command(after_help = outbound::UPLOAD_EXAMPLES, after_long_help = outbound::UPLOAD_LONG)]
    Upload(outbound::UploadArgs),
    /// List, redeliver and test the events sent to the ISV's product
    #[command(subcommand, after_help = events::EXAMPLES)]
    Events(events::EventsCommand),
    /// List what the store holds: instances, orders, notifications, licenses, tenants, users, usage
    #[command(after_help = operate::LIST_EXAMPLES)]
    List(operate::ListArgs),
    /// Show an instance's or an order's whole story: records, applied orders, events, usage
    #[command(after_help = operate::INSPECT_EXAMPLES)]
    Inspect(operate::InspectArgs),
    /// Create the DynamoDB (or GeminiDB) table
    #[command(subcommand, after_help = store::EXAMPLES)]
    Store(store::StoreCommand),
}

const SERVE_EXAMPLES: &str = "Examples:
  KOOGATE_SECRETS_FILE=.koogate/secrets.json koogate serve
  KOOGATE_SECRETS_FILE=.koogate/secrets.json KOOGATE_STORE=sqlite:/tmp/k.db koogate serve --addr 127.0.0.1:9000";

const SERVE_LONG: &str = "Examples:
  KOOGATE_SECRETS_FILE=.koogate/secrets.json koogate serve
  KOOGATE_SECRETS_FILE=.koogate/secrets.json KOOGATE_STORE=sqlite:/tmp/k.db koogate serve --addr 127.0.0.1:9000

Only the interface types with a key in the secrets document are served (koogate init-secrets
writes a key for each).

Environment (see README.md, 'Configuration', for all of them):
  KOOGATE_SECRETS_FILE   the secrets document (or KOOGATE_SECRET_ID: a Secrets Manager secret)
  KOOGATE_STORE          sqlite:<path> (default sqlite:.koogate/koogate.db) or dynamodb
  KOOGATE_CLOCK_SKEW_SECS, KOOGATE_PROVISIONING, KOOGATE_WEBHOOK_URL,
  KOOGATE_USAGE_PUSH_INTERVAL_SECS, KOOGATE_MARKETPLACE_SITE, RUST_LOG, ...";

#[derive(Args, Debug)]
struct ServeArgs {
    /// Address to listen on [default: 127.0.0.1:8080]
    #[arg(long, value_name = "HOST:PORT")]
    addr: Option<String>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(a) => serve::run(a.addr),
        Command::Sign(a) => sign::run(&a),
        Command::InitSecrets(a) => sign::init_secrets(&a),
        Command::Keygen(a) => keygen::run(&a),
        Command::Sim(a) => sim::run(&a),
        Command::Usage(c) => outbound::usage(&c),
        Command::License(c) => outbound::license(&c),
        Command::Upload(a) => outbound::upload(&a),
        Command::Events(c) => events::run(&c),
        Command::List(a) => operate::list(&a),
        Command::Inspect(a) => operate::inspect(&a),
        Command::Store(c) => store::run(&c),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("koogate: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn every_command_has_examples() {
        fn walk(cmd: &clap::Command, path: &str) {
            let path = format!("{path} {}", cmd.get_name());
            if cmd.get_name() != "help" {
                let help = cmd
                    .get_after_help()
                    .map(|h| h.to_string())
                    .unwrap_or_default();
                assert!(help.contains("Examples:"), "{path} has no examples");
            }
            for sub in cmd.get_subcommands() {
                walk(sub, &path);
            }
        }
        walk(&Cli::command(), "");
    }
}
