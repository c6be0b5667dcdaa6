//! The dispatcher: delivers recorded events to the configured sinks, at least once.
//!
//! An attempt succeeds when every sink accepts the event (a webhook's 2xx within 10 s,
//! EventBridge's PutEvents without a failed entry). Otherwise the event is tried again after the
//! retry schedule's next delay (10 s, 30 s, 2 min, 10 min, 30 min, 1 h, then hourly by default)
//! until it is older than the give-up time (3 days), when it becomes `failed`; a `410 Gone` makes
//! it `failed` at once. The body and `webhook-id` never change between attempts.
//!
//! `koogate serve` runs [`Dispatcher::run`] in the background, woken by every commit that
//! recorded events and at least once a second; on AWS the `event-dispatch` function runs
//! [`Dispatcher::sweep`] on the table's stream and every minute.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use koogate_store::{EventRecord, EventSettlement, Store};
use tokio::sync::Notify;

use crate::config::IsvSettings;
use crate::isv::client::ProductClient;

/// How long a webhook receiver has to answer.
pub const DELIVERY_TIMEOUT: Duration = Duration::from_secs(10);
/// Events fetched per sweep round.
const BATCH: usize = 100;
/// Deliveries in flight at once.
const PARALLEL: usize = 16;
/// Rounds per sweep (a backlog is worked off in batches without starving the next wake-up).
const MAX_ROUNDS: usize = 50;

/// Why a sink did not take an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SinkError {
    pub message: String,
    /// No retry will help (`410 Gone`).
    pub permanent: bool,
}

/// Somewhere events go.
#[async_trait]
pub trait EventSink: Send + Sync + 'static {
    /// For logs and `koogate events test`.
    fn name(&self) -> String;

    /// Delivers one event. On success, what the sink answered (for `koogate events test`).
    async fn deliver(&self, event: &EventRecord) -> Result<String, SinkError>;
}

/// POSTs each event, Standard-Webhooks-signed, to the product's receiver.
pub struct WebhookSink {
    client: ProductClient,
    url: String,
}

impl WebhookSink {
    pub fn new(client: ProductClient, url: impl Into<String>) -> WebhookSink {
        WebhookSink {
            client,
            url: url.into(),
        }
    }
}

#[async_trait]
impl EventSink for WebhookSink {
    fn name(&self) -> String {
        format!("webhook {}", self.url)
    }

    async fn deliver(&self, event: &EventRecord) -> Result<String, SinkError> {
        let answer = self
            .client
            .post(
                &self.url,
                &event.id,
                event.body.as_bytes(),
                DELIVERY_TIMEOUT,
            )
            .await
            .map_err(|message| SinkError {
                message,
                permanent: false,
            })?;
        let summary = format!("HTTP {} {}", answer.status, answer.body_text());
        if answer.is_success() {
            Ok(summary)
        } else {
            Err(SinkError {
                message: format!("{}: {summary}", self.url),
                permanent: answer.status == 410,
            })
        }
    }
}

/// What one sweep did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SweepReport {
    pub delivered: usize,
    pub retried: usize,
    pub failed: usize,
}

/// Delivers events from a store to sinks. Cheap to clone.
#[derive(Clone)]
pub struct Dispatcher {
    store: Arc<dyn Store>,
    sinks: Arc<Vec<Arc<dyn EventSink>>>,
    retry_schedule: Vec<Duration>,
    give_up_after: Duration,
    emit_metrics: bool,
    wake: Arc<Notify>,
}

impl Dispatcher {
    pub fn new(
        store: Arc<dyn Store>,
        sinks: Vec<Arc<dyn EventSink>>,
        settings: &IsvSettings,
        emit_metrics: bool,
        wake: Arc<Notify>,
    ) -> Dispatcher {
        Dispatcher {
            store,
            sinks: Arc::new(sinks),
            retry_schedule: settings.retry_schedule.clone(),
            give_up_after: settings.give_up_after,
            emit_metrics,
            wake,
        }
    }

    /// Whether there is anywhere to deliver to.
    pub fn has_sinks(&self) -> bool {
        !self.sinks.is_empty()
    }

    /// One attempt at `event` on every sink: how it ended (for the store) and each sink's
    /// answer or error (for people).
    pub async fn attempt(
        &self,
        event: &EventRecord,
        now_ms: i64,
    ) -> (EventSettlement, Vec<String>) {
        let mut notes = Vec::new();
        let mut error: Option<SinkError> = None;
        for sink in self.sinks.iter() {
            match sink.deliver(event).await {
                Ok(answer) => notes.push(format!("{}: {answer}", sink.name())),
                Err(e) => {
                    notes.push(format!("{}: {}", sink.name(), e.message));
                    let permanent = e.permanent || error.as_ref().is_some_and(|p| p.permanent);
                    error = Some(SinkError {
                        message: e.message,
                        permanent,
                    });
                }
            }
        }
        let settlement = match error {
            None => EventSettlement::Delivered { at_ms: now_ms },
            Some(e) => self.after_failure(event, e, now_ms),
        };
        (settlement, notes)
    }

    fn after_failure(&self, event: &EventRecord, e: SinkError, now_ms: i64) -> EventSettlement {
        let attempt = usize::try_from(event.attempts).unwrap_or(usize::MAX);
        let delay = self
            .retry_schedule
            .get(attempt)
            .or(self.retry_schedule.last())
            .copied()
            .unwrap_or(Duration::from_secs(3600));
        let delay_ms = i64::try_from(delay.as_millis()).unwrap_or(i64::MAX);
        let give_up_ms = i64::try_from(self.give_up_after.as_millis()).unwrap_or(i64::MAX);
        let next = now_ms.saturating_add(delay_ms);
        if e.permanent || next > event.created_at_ms.saturating_add(give_up_ms) {
            EventSettlement::Failed {
                at_ms: now_ms,
                error: e.message,
            }
        } else {
            EventSettlement::Retry {
                at_ms: now_ms,
                next_attempt_ms: next,
                error: e.message,
            }
        }
    }

    /// Delivers every due event (in rounds of 100, 16 at once) and records the outcomes.
    pub async fn sweep(&self) -> Result<SweepReport, koogate_store::StoreError> {
        self.sweep_due(false).await
    }

    /// Like [`Dispatcher::sweep`], with `all_pending` also the events whose next attempt is
    /// still to come (a restarted process tries everything at once).
    async fn sweep_due(&self, all_pending: bool) -> Result<SweepReport, koogate_store::StoreError> {
        let mut report = SweepReport::default();
        if !self.has_sinks() {
            return Ok(report);
        }
        let started = crate::pipeline::now_ms();
        for _ in 0..MAX_ROUNDS {
            // Everything pending when the sweep started, never what this sweep rescheduled.
            let horizon = if all_pending {
                started.saturating_sub(1).min(crate::pipeline::now_ms())
            } else {
                crate::pipeline::now_ms()
            };
            let due = if all_pending {
                self.store
                    .due_events(i64::MAX, BATCH)
                    .await?
                    .into_iter()
                    .filter(|e| e.updated_at_ms <= horizon)
                    .collect()
            } else {
                self.store.due_events(horizon, BATCH).await?
            };
            if due.is_empty() {
                break;
            }
            let count = due.len();
            let mut queue = due.into_iter();
            let mut running = tokio::task::JoinSet::new();
            loop {
                while running.len() < PARALLEL {
                    let Some(event) = queue.next() else { break };
                    let this = self.clone();
                    running.spawn(async move {
                        let (settlement, _) = this.attempt(&event, crate::pipeline::now_ms()).await;
                        let stored = this.store.settle_event(&event, &settlement).await;
                        (event, settlement, stored)
                    });
                }
                let Some(joined) = running.join_next().await else {
                    break;
                };
                let Ok((event, settlement, stored)) = joined else {
                    continue;
                };
                if let Err(e) = stored {
                    tracing::error!(event_id = %event.id, error = %e, "cannot record an event's delivery");
                }
                match settlement {
                    EventSettlement::Delivered { .. } => report.delivered += 1,
                    EventSettlement::Retry { error, .. } => {
                        report.retried += 1;
                        tracing::warn!(event_id = %event.id, event_type = %event.event_type,
                            attempts = event.attempts + 1, error = %error, "event delivery failed; will retry");
                    }
                    EventSettlement::Failed { error, .. } => {
                        report.failed += 1;
                        tracing::error!(event_id = %event.id, event_type = %event.event_type,
                            attempts = event.attempts + 1, error = %error, "event delivery given up");
                    }
                }
            }
            if count < BATCH {
                break;
            }
        }
        if self.emit_metrics && report != SweepReport::default() {
            emit(&report);
        }
        Ok(report)
    }

    /// Sweeps whenever a commit recorded events, and at least every second, forever. Delivers
    /// what a previous process left pending at once.
    pub async fn run(self: Arc<Self>) {
        if let Err(e) = self.sweep_due(true).await {
            tracing::error!(error = %e, "event dispatcher cannot read the store");
        }
        loop {
            if let Err(e) = self.sweep().await {
                tracing::error!(error = %e, "event dispatcher cannot read the store");
            }
            let _ = tokio::time::timeout(Duration::from_secs(1), self.wake.notified()).await;
        }
    }
}

/// The dispatcher's EMF line (infra/template.yaml alarms on `EventsFailed`).
fn emit(r: &SweepReport) {
    use std::io::Write;
    let line = serde_json::json!({
        "_aws": {
            "Timestamp": crate::pipeline::now_ms(),
            "CloudWatchMetrics": [{
                "Namespace": "Koogate",
                "Dimensions": [["Function"]],
                "Metrics": [
                    {"Name": "EventsDelivered", "Unit": "Count"},
                    {"Name": "EventsRetried", "Unit": "Count"},
                    {"Name": "EventsFailed", "Unit": "Count"}
                ]
            }]
        },
        "Function": "event-dispatch",
        "EventsDelivered": r.delivered,
        "EventsRetried": r.retried,
        "EventsFailed": r.failed,
    });
    let _ = writeln!(std::io::stdout().lock(), "{line}");
}
