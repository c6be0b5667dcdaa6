//! `koogate store init`: creates the koogate table (see `koogate_store::dynamodb_init`).

use koogate_store::dynamodb_init::{init_table, Billing, InitOptions, TTL_ATTRIBUTE};

const HELP: &str = "Examples:
  KOOGATE_TABLE=koogate koogate store init
  AWS_ENDPOINT_URL_DYNAMODB=http://10.0.0.8:8000 koogate store init --table koogate --billing none

Creates the koogate DynamoDB table if it does not exist (pk and sk strings as the key) and enables
TTL on expires_at; an existing table with that key schema is fine. Only the CreateTable parameters
GeminiDB's DynamoDB-compatible API takes are sent (docs/geminidb.md), plus the billing choice:
  --billing none             no billing parameter: GeminiDB (instances and Serverless)
  --billing pay-per-request  BillingMode=PAY_PER_REQUEST: Amazon DynamoDB on demand
  --billing provisioned      ProvisionedThroughput of --capacity N (default 5) read and write units
Default: none when AWS_ENDPOINT_URL_DYNAMODB (or AWS_ENDPOINT_URL) points outside amazonaws.com,
pay-per-request otherwise. --table defaults to KOOGATE_TABLE. Region, credentials and endpoint come
from the standard AWS settings (AWS_REGION, AWS_ENDPOINT_URL_DYNAMODB, ...).";

/// `koogate store …`.
#[derive(clap::Subcommand, Debug)]
pub enum StoreCommand {
    /// Create the koogate table (and TTL on expires_at) with GeminiDB-compatible parameters
    #[command(after_help = EXAMPLES, after_long_help = HELP)]
    Init(InitArgs),
}

pub const EXAMPLES: &str = "Examples:
  KOOGATE_TABLE=koogate koogate store init
  AWS_ENDPOINT_URL_DYNAMODB=http://10.0.0.8:8000 koogate store init --table koogate --billing none
  koogate store init --table koogate --billing provisioned --capacity 10 --no-ttl";

#[derive(clap::Args, Debug)]
pub struct InitArgs {
    /// The table [default: KOOGATE_TABLE]
    #[arg(long, value_name = "NAME")]
    table: Option<String>,
    /// none (GeminiDB), pay-per-request or provisioned [default: none off AWS, else pay-per-request]
    #[arg(long, value_parser = ["none", "pay-per-request", "provisioned"])]
    billing: Option<String>,
    /// Read and write units with --billing provisioned
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(i64).range(1..))]
    capacity: i64,
    /// Do not enable TTL on expires_at
    #[arg(long)]
    no_ttl: bool,
}

pub fn run(cmd: &StoreCommand) -> Result<(), String> {
    match cmd {
        StoreCommand::Init(a) => init(a),
    }
}

/// GeminiDB when the DynamoDB endpoint is overridden to something that is not AWS.
fn default_billing() -> Billing {
    let endpoint = std::env::var("AWS_ENDPOINT_URL_DYNAMODB")
        .or_else(|_| std::env::var("AWS_ENDPOINT_URL"))
        .unwrap_or_default();
    let host = endpoint
        .split("://")
        .nth(1)
        .unwrap_or(&endpoint)
        .split(['/', ':'])
        .next()
        .unwrap_or("");
    if host.is_empty() || host.ends_with(".amazonaws.com") || host.ends_with(".amazonaws.com.cn") {
        Billing::PayPerRequest
    } else {
        Billing::None
    }
}

fn init(args: &InitArgs) -> Result<(), String> {
    let table = args
        .table
        .clone()
        .or_else(|| std::env::var("KOOGATE_TABLE").ok())
        .ok_or("--table (or KOOGATE_TABLE) is required")?;
    let billing = match args.billing.as_deref() {
        None => default_billing(),
        Some("pay-per-request") => Billing::PayPerRequest,
        Some("provisioned") => Billing::Provisioned {
            read: args.capacity,
            write: args.capacity,
        },
        Some(_) => Billing::None,
    };
    let opts = InitOptions {
        table,
        billing,
        ttl: !args.no_ttl,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    let report = runtime.block_on(async {
        let conf = koogate_runtime::aws::sdk_config().await;
        init_table(&aws_sdk_dynamodb::Client::new(&conf), &opts).await
    });
    let report = report.map_err(|e| e.to_string())?;
    println!(
        "table {}: {}; TTL on {TTL_ATTRIBUTE}: {}",
        opts.table,
        if report.created { "created" } else { "exists" },
        match report.ttl_enabled_now {
            Some(true) => "enabled",
            Some(false) => "already enabled",
            None => "not asked for (--no-ttl)",
        }
    );
    Ok(())
}
