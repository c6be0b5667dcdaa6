//! `koogate`: the command for people.
//!
//! * `koogate serve --addr HOST:PORT` — every route of the route table in one local process.
//! * `koogate sign --url URL --activity NAME [--set k=v]... [--production] [--send]` — a signed
//!   request like the seller console's 生成请求命令, printed as curl or sent and checked.
//! * `koogate init-secrets PATH` — a secrets document with fresh random keys, for local use.
//! * `koogate sim --url URL [--suite …]` — the seller console's debugger: every console case and
//!   check against an endpoint, with JSON and JUnit reports.
//! * `koogate keygen [--bits N] [--secrets PATH]` — the RSA key pair of joint-operation login:
//!   the public key for the app credential, the private key for the secrets document.
//! * `koogate usage record|resend|push`, `koogate license activate|query`, `koogate upload` — usage
//!   reporting and the marketplace's open APIs (see `outbound.rs`).
//! * `koogate events list|redeliver|test` — the events recorded for the ISV's product and their
//!   delivery (see `events.rs`).
//! * `koogate store init` — creates the DynamoDB (or GeminiDB) table (see `store.rs`).

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

const USAGE: &str = "usage:
  koogate serve [--addr HOST:PORT]   (else KOOGATE_ADDR, else 0.0.0.0:$PORT, else 127.0.0.1:8080)
  koogate sign --url URL --activity NAME [--set KEY=VALUE]... [--production] [--key-type TYPE] [--send]
  koogate init-secrets PATH
  koogate keygen [--bits N] [--secrets PATH]
  koogate sim --url URL [--suite all|saas|kit|license|notify|legacy] [--keys FILE] [--production]
              [--json FILE] [--junit FILE] [--time-limit-ms N]
  koogate usage record --instance ID --begin yyyyMMddTHHmmssZ --end yyyyMMddTHHmmssZ --value V [--product P] [--package I]
  koogate usage resend --instance ID --begin yyyyMMddTHHmmssZ --end yyyyMMddTHHmmssZ
  koogate usage push
  koogate license activate --license CODE [--effective-time yyyyMMddHHmmss]
  koogate license query --license CODE [--account A] [--ip IP]
  koogate upload --event ID (--text S | --file PATH)
  koogate events list [--failed] [--instance ID] [--json]
  koogate events redeliver ID...
  koogate events test
  koogate list instances|orders|notifications|licenses|tenants|usage [--state S] [--debug] [--failed|--pending] [--json]
  koogate list users --tenant ID [--json]
  koogate inspect instance ID [--debug] | koogate inspect order ORDER_ID [--debug]
  koogate store init [--table NAME] [--billing none|pay-per-request|provisioned] [--capacity N] [--no-ttl]

environment: KOOGATE_STORE, KOOGATE_SECRETS_FILE, KOOGATE_CLOCK_SKEW_SECS, KOOGATE_PROVISIONING, ...
(see README.md, 'Configuration')";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((command, rest)) = args.split_first() else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };
    let result = match command.as_str() {
        "serve" => serve::run(rest),
        "sign" => sign::run(rest),
        "init-secrets" => sign::init_secrets(rest),
        "keygen" => keygen::run(rest),
        "sim" => sim::run(rest),
        "usage" => outbound::usage(rest),
        "license" => outbound::license(rest),
        "upload" => outbound::upload(rest),
        "events" => events::run(rest),
        "list" => list(rest),
        "inspect" => match rest {
            [what, id, flags @ ..] => {
                operate::inspect(what, id, flags.iter().any(|f| f == "--debug"))
            }
            _ => Err("usage: koogate inspect instance ID | koogate inspect order ORDER_ID".into()),
        },
        "store" => store::run(rest),
        "-h" | "--help" | "help" => {
            println!("{USAGE}");
            Ok(())
        }
        other => Err(format!("unknown command {other:?}\n{USAGE}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("koogate: {e}");
            ExitCode::FAILURE
        }
    }
}

fn list(args: &[String]) -> Result<(), String> {
    let Some((kind, flags)) = args.split_first() else {
        return Err(
            "usage: koogate list instances|orders|notifications|licenses|tenants|users|usage"
                .into(),
        );
    };
    operate::list(operate::ListArgs {
        kind: kind.clone(),
        state: flag_value(flags, "--state").map(str::to_string),
        tenant: flag_value(flags, "--tenant").map(str::to_string),
        debug: flags.iter().any(|f| f == "--debug"),
        failed: flags.iter().any(|f| f == "--failed"),
        pending: flags.iter().any(|f| f == "--pending"),
        json: flags.iter().any(|f| f == "--json"),
    })
}

/// The value after `--name`, if given.
fn flag_value<'a>(args: &'a [String], name: &str) -> Option<&'a str> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(String::as_str)
}
