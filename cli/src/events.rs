//! `koogate events`: the events recorded for the ISV's product, for operators.
//!
//! * `koogate events list [--failed] [--instance ID] [--json]` — newest first, with delivery
//!   state (pending, delivered, failed), attempts and last error;
//! * `koogate events redeliver ID…` — delivers those events again now (same `webhook-id` and
//!   body), whatever their state; exits non-zero if any was not delivered;
//! * `koogate events test` — sends a `ping` event to the configured sinks now and prints what
//!   each answered; exits non-zero unless every sink accepted it.
//!
//! They use the same settings as `koogate serve` (KOOGATE_STORE, KOOGATE_SECRETS_FILE,
//! KOOGATE_WEBHOOK_URL, …), so they act on the same store and receiver.

use std::sync::Arc;

use koogate_runtime::config::Config;
use koogate_runtime::isv::catalogue;
use koogate_runtime::App;
use koogate_store::{EventQuery, EventRecord, EventSettlement};
use serde_json::json;

use clap::Subcommand;

pub const EXAMPLES: &str = "Examples:
  koogate events list --failed
  koogate events redeliver 2b7e1f0c9a4d4e8f8a1b2c3d4e5f6a7b
  koogate events test

Environment: KOOGATE_STORE (default sqlite:.koogate/koogate.db), KOOGATE_SECRETS_FILE,
KOOGATE_WEBHOOK_URL, KOOGATE_EVENT_BUS (see README.md, 'Configuration').";

#[derive(Subcommand, Debug)]
pub enum EventsCommand {
    /// List the recorded events, newest first, with their delivery state
    #[command(after_help = "Examples:
  koogate events list
  koogate events list --failed
  koogate events list --instance 10e758d0-31ad-4c4b-8f1b-81d03469a10e --json")]
    List {
        /// Only the events whose delivery failed
        #[arg(long)]
        failed: bool,
        /// Only the events of this instance
        #[arg(long, value_name = "ID")]
        instance: Option<String>,
        /// Print a JSON array instead of a table
        #[arg(long)]
        json: bool,
    },
    /// Deliver these events again now (same webhook-id and body), whatever their state
    #[command(after_help = "Examples:
  koogate events redeliver 2b7e1f0c9a4d4e8f8a1b2c3d4e5f6a7b
  koogate events redeliver $(koogate events list --failed --json | jq -r '.[].id')

Exits non-zero if any event was not delivered.")]
    Redeliver {
        /// Event ids (the webhook-id)
        #[arg(value_name = "ID", required = true, num_args = 1..)]
        ids: Vec<String>,
    },
    /// Send a ping event to the configured sinks now and print what each answered
    #[command(after_help = "Examples:
  KOOGATE_WEBHOOK_URL=https://product.example.com/koogate koogate events test

Exits non-zero unless every sink accepted it.")]
    Test,
}

async fn app() -> Result<Arc<App>, String> {
    let config = Config::from_env("sqlite:.koogate/koogate.db").map_err(|e| e.to_string())?;
    App::build(config, &[]).await.map_err(|e| e.to_string())
}

pub fn run(command: &EventsCommand) -> Result<(), String> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    runtime.block_on(async {
        match command {
            EventsCommand::List {
                failed,
                instance,
                json,
            } => list(*failed, instance.clone(), *json).await,
            EventsCommand::Redeliver { ids } => redeliver(ids).await,
            EventsCommand::Test => test().await,
        }
    })
}

fn as_json(e: &EventRecord) -> serde_json::Value {
    json!({
        "id": e.id,
        "type": e.event_type,
        "state": e.state.as_str(),
        "attempts": e.attempts,
        "last_error": e.last_error,
        "instance_id": e.instance_id,
        "created_at": koogate_protocol::timestamp::format_rfc3339_ms(e.created_at_ms),
        "next_attempt_at": koogate_protocol::timestamp::format_rfc3339_ms(e.next_attempt_ms),
        "body": serde_json::from_str::<serde_json::Value>(&e.body).unwrap_or_default(),
    })
}

async fn list(failed: bool, instance: Option<String>, json: bool) -> Result<(), String> {
    let app = app().await?;
    let query = EventQuery {
        failed_only: failed,
        instance_id: instance,
        limit: 0,
    };
    let events = app
        .store
        .list_events(&query)
        .await
        .map_err(|e| e.to_string())?;
    if json {
        let all: Vec<_> = events.iter().map(as_json).collect();
        println!("{}", serde_json::Value::Array(all));
        return Ok(());
    }
    println!(
        "{:<32} {:<22} {:<9} {:>8}  {:<24} last error",
        "id", "type", "state", "attempts", "created"
    );
    for e in &events {
        println!(
            "{:<32} {:<22} {:<9} {:>8}  {:<24} {}",
            e.id,
            e.event_type,
            e.state.as_str(),
            e.attempts,
            koogate_protocol::timestamp::format_rfc3339_ms(e.created_at_ms),
            e.last_error.as_deref().unwrap_or("")
        );
    }
    Ok(())
}

async fn redeliver(ids: &[String]) -> Result<(), String> {
    if ids.is_empty() {
        return Err("redeliver needs at least one event id".into());
    }
    let app = app().await?;
    if !app.dispatcher.has_sinks() {
        return Err("no sink is configured (KOOGATE_WEBHOOK_URL or KOOGATE_EVENT_BUS)".into());
    }
    let mut failed = 0;
    for id in ids {
        let Some(event) = app.store.get_event(id).await.map_err(|e| e.to_string())? else {
            eprintln!("koogate: no event {id}");
            failed += 1;
            continue;
        };
        let now = koogate_runtime::pipeline::now_ms();
        let (settlement, notes) = app.dispatcher.attempt(&event, now).await;
        // By hand: a failure leaves the event failed (with the new error), not retried.
        let settlement = match settlement {
            EventSettlement::Retry { at_ms, error, .. } => EventSettlement::Failed { at_ms, error },
            s => s,
        };
        app.store
            .settle_event(&event, &settlement)
            .await
            .map_err(|e| e.to_string())?;
        let ok = matches!(settlement, EventSettlement::Delivered { .. });
        failed += usize::from(!ok);
        println!("{}", json!({"id": id, "delivered": ok, "answers": notes}));
    }
    if failed > 0 {
        return Err(format!(
            "{failed} of {} events were not delivered",
            ids.len()
        ));
    }
    Ok(())
}

async fn test() -> Result<(), String> {
    let app = app().await?;
    if !app.dispatcher.has_sinks() {
        return Err("no sink is configured (KOOGATE_WEBHOOK_URL or KOOGATE_EVENT_BUS)".into());
    }
    let now = koogate_runtime::pipeline::now_ms();
    let mut data = serde_json::Map::new();
    data.insert(
        "message".into(),
        "test event sent by koogate events test".into(),
    );
    let Some(ping) = catalogue::event(&app, "ping", false, now, None, data) else {
        return Err("the ping event could not be built".into());
    };
    app.store
        .record_events(std::slice::from_ref(&ping))
        .await
        .map_err(|e| e.to_string())?;
    let event = EventRecord::pending(&ping);
    let (settlement, notes) = app.dispatcher.attempt(&event, now).await;
    app.store
        .settle_event(&event, &settlement)
        .await
        .map_err(|e| e.to_string())?;
    for n in &notes {
        println!("{n}");
    }
    match settlement {
        EventSettlement::Delivered { .. } => Ok(()),
        _ => Err(format!("the ping event {} was not accepted", ping.id)),
    }
}
