//! Event delivery on AWS Lambda.
//!
//! A Lambda environment is frozen once it has answered, so the callback functions only record
//! events (with their changes) and this function delivers them. It has two triggers:
//! * the table's DynamoDB stream, filtered to new open events (`events-open#…`): it runs within
//!   about a second of a commit (the stream is polled several times a second and batched for at
//!   most 1 s), so a receiver sees an event a second or two after the callback's answer;
//! * a schedule, every minute: retries that fell due, and events whose stream record was lost.
//!
//! Either way it does the same: one sweep of the due events ([`koogate_runtime::isv::dispatch::Dispatcher::sweep`]), then it
//! waits for retries that fall due within 15 s (for at most 40 s of the 60 s timeout). A stream
//! record can arrive a moment before the change it announces is committed (the event is written
//! first, see the store's outbox), so after a stream-triggered sweep it waits briefly and sweeps
//! once more; whatever is still undecided is the schedule's.

#![forbid(unsafe_code)]

use std::sync::Arc;
use std::time::Duration;

use koogate_runtime::isv::dispatch::SweepReport;
use koogate_runtime::App;

/// The pause before a stream-triggered second sweep.
const SETTLE: Duration = Duration::from_millis(500);
/// Retries that fall due within this long are waited for in the same invocation, so the first
/// retries (10 s, 30 s) are not up to a minute late waiting for the schedule.
const LOOKAHEAD_MS: i64 = 15_000;
/// An invocation stops waiting for retries after this long (the function's timeout is 60 s).
const WAIT_BUDGET: Duration = Duration::from_secs(40);

/// Whether an invocation came from the DynamoDB stream (it carries `Records`).
pub fn is_stream_event(event: &serde_json::Value) -> bool {
    event
        .get("Records")
        .is_some_and(serde_json::Value::is_array)
}

fn add(report: &mut SweepReport, more: SweepReport) {
    report.delivered += more.delivered;
    report.retried += more.retried;
    report.failed += more.failed;
}

/// Handles one invocation: sweeps, once more after [`SETTLE`] for a stream batch, and again for
/// retries that fall due within [`LOOKAHEAD_MS`] (for at most [`WAIT_BUDGET`]).
pub async fn handle(app: &Arc<App>, event: &serde_json::Value) -> Result<SweepReport, String> {
    let sweep = || async {
        app.dispatcher
            .sweep()
            .await
            .map_err(|e| format!("cannot read the store: {e}"))
    };
    let mut report = sweep().await?;
    if is_stream_event(event) {
        tokio::time::sleep(SETTLE).await;
        add(&mut report, sweep().await?);
    }
    let started = std::time::Instant::now();
    while started.elapsed() < WAIT_BUDGET {
        let now = koogate_runtime::pipeline::now_ms();
        let next = app
            .store
            .due_events(now + LOOKAHEAD_MS, 1)
            .await
            .map_err(|e| format!("cannot read the store: {e}"))?;
        let Some(next) = next.first() else { break };
        let wait = u64::try_from(next.next_attempt_ms - now).unwrap_or(0);
        tokio::time::sleep(Duration::from_millis(wait)).await;
        add(&mut report, sweep().await?);
    }
    tracing::info!(
        delivered = report.delivered,
        retried = report.retried,
        failed = report.failed,
        stream = is_stream_event(event),
        "event sweep"
    );
    Ok(report)
}
