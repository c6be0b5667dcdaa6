//! `koogate store init`: creates the koogate table (see `koogate_store::dynamodb_init`).

use koogate_store::dynamodb_init::{init_table, Billing, InitOptions, TTL_ATTRIBUTE};

const HELP: &str =
    "usage: koogate store init [--table NAME] [--billing none|pay-per-request|provisioned]
                          [--capacity N] [--no-ttl]

Creates the koogate DynamoDB table if it does not exist (pk and sk strings as the key) and enables
TTL on expires_at; an existing table with that key schema is fine. Only the CreateTable parameters
GeminiDB's DynamoDB-compatible API takes are sent (docs/geminidb.md), plus the billing choice:
  --billing none             no billing parameter: GeminiDB (instances and Serverless)
  --billing pay-per-request  BillingMode=PAY_PER_REQUEST: Amazon DynamoDB on demand
  --billing provisioned      ProvisionedThroughput of --capacity N (default 5) read and write units
Default: none when AWS_ENDPOINT_URL_DYNAMODB (or AWS_ENDPOINT_URL) points outside amazonaws.com,
pay-per-request otherwise. --table defaults to KOOGATE_TABLE. Region, credentials and endpoint come
from the standard AWS settings (AWS_REGION, AWS_ENDPOINT_URL_DYNAMODB, ...).";

pub fn run(args: &[String]) -> Result<(), String> {
    match args.first().map(String::as_str) {
        Some("init") => init(&args[1..]),
        Some("-h" | "--help" | "help") | None => {
            println!("{HELP}");
            Ok(())
        }
        Some(other) => Err(format!("unknown store command {other:?}\n{HELP}")),
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

fn init(args: &[String]) -> Result<(), String> {
    if args.iter().any(|a| a == "-h" || a == "--help") {
        println!("{HELP}");
        return Ok(());
    }
    let known = ["--table", "--billing", "--capacity", "--no-ttl"];
    let mut i = 0;
    while i < args.len() {
        match args[i].as_str() {
            "--no-ttl" => i += 1,
            a if known.contains(&a) => i += 2,
            other => return Err(format!("unknown option {other:?}\n{HELP}")),
        }
    }
    let table = crate::flag_value(args, "--table")
        .map(str::to_string)
        .or_else(|| std::env::var("KOOGATE_TABLE").ok())
        .ok_or("--table (or KOOGATE_TABLE) is required")?;
    let capacity: i64 = match crate::flag_value(args, "--capacity") {
        Some(c) => c
            .parse()
            .ok()
            .filter(|c| *c > 0)
            .ok_or(format!("--capacity {c:?}: a positive number"))?,
        None => 5,
    };
    let billing = match crate::flag_value(args, "--billing") {
        None => default_billing(),
        Some("none") => Billing::None,
        Some("pay-per-request") => Billing::PayPerRequest,
        Some("provisioned") => Billing::Provisioned {
            read: capacity,
            write: capacity,
        },
        Some(other) => {
            return Err(format!(
                "--billing {other:?}: none, pay-per-request or provisioned"
            ))
        }
    };
    let opts = InitOptions {
        table,
        billing,
        ttl: !args.iter().any(|a| a == "--no-ttl"),
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
