//! Event delivery on AWS Lambda.
//!
//! A Lambda environment is frozen once it has answered, so the callback functions only record
//! events (with their changes) and this function delivers them. It has two triggers:
//! * the table's DynamoDB stream, filtered to new open events (`events-open#…`): it runs within
//!   about a second of a commit (the stream is polled several times a second and batched for at
//!   most 1 s), so a receiver sees an event a second or two after the callback's answer;
//! * a schedule, every minute: retries that fell due, and events whose stream record was lost.
//!
//! Either way it does the same: one sweep of the due events ([`Dispatcher::sweep`]). A stream
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

/// Whether an invocation came from the DynamoDB stream (it carries `Records`).
pub fn is_stream_event(event: &serde_json::Value) -> bool {
    event
        .get("Records")
        .is_some_and(serde_json::Value::is_array)
}

/// Handles one invocation: sweeps, and once more after [`SETTLE`] for a stream batch.
pub async fn handle(app: &Arc<App>, event: &serde_json::Value) -> Result<SweepReport, String> {
    let mut report = app
        .dispatcher
        .sweep()
        .await
        .map_err(|e| format!("cannot read the store: {e}"))?;
    if is_stream_event(event) {
        tokio::time::sleep(SETTLE).await;
        let again = app
            .dispatcher
            .sweep()
            .await
            .map_err(|e| format!("cannot read the store: {e}"))?;
        report.delivered += again.delivered;
        report.retried += again.retried;
        report.failed += again.failed;
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
