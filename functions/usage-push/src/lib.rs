//! The usage push (docs/protocol.md, outbound §3): claims due usage records in batches of at most 1000, pushes
//! each batch in one call, and settles the records by the answer.
//!
//! Exactly once, as far as the merchant can make it:
//! * a record's bytes and `metering_sn` are fixed when it is recorded; every send, first or
//!   retry, carries them unchanged, so a resend after a lost answer is a duplicate the
//!   marketplace drops (§3.4), never a second charge;
//! * a record is claimed (leased) before it is sent, so two runs never send it at once, and a
//!   run that dies mid-call leaves it to be re-sent identically once the lease has run out;
//! * it is marked pushed only after `MKT.0000` for a call that carried it.
//!
//! A refused call is settled by what the refusal means (`usage_push::refusal`):
//! * a documented data error (`MKT.9001`, `MKT.9002`, `MKT.9004`, `MKT.0100`, `MKT.0101`,
//!   `MKT.0199`), whatever HTTP status carries it: one bad record refuses the whole call, so a
//!   call of several records is split in halves until the refused records are alone; the
//!   others go through, and a refused single record is marked failed with the code (final
//!   until corrected or re-sent, see docs/usage.md). `MKT.9003` (too many records) is split
//!   the same way;
//! * a configuration error (wrong key or header signature, credentials, authority): the records
//!   stay pending (`config_retry_after`), the run stops and reports an error;
//! * anything else — network, timeout, 5xx, `MKT.0999`, throttling, a code the tables do not
//!   document — is not final: the records stay pending and are retried with exponential
//!   back-off (`retry_after` doubled per attempt, at most 32 times it), the run stops.
//!
//! A run is an error (the Lambda returns one, `koogate usage push` exits non-zero) when records
//! failed in it, when a configuration error stopped it, or when the store failed. Every run
//! reports what is still pending and why, and emits metrics (`PushReport::metrics`).
//!
//! Timing (§3.3): a record is due as soon as its interval has ended (`end_time <= now`); the
//! schedule runs every 5 minutes, so hourly records go out within the first quarter hour and
//! daily totals between 00:00 and 00:15. Records whose `begin_time` is older than 21 days are not
//! sent (the marketplace would refuse them with `MKT.9004`) and are marked failed with that code.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use koogate_protocol::usage_push::{self, Refusal, UsageEntry};
use koogate_runtime::marketplace::{Marketplace, MarketplaceError, Retry, UsageEndpointChoice};
use koogate_runtime::routes::InterfaceType;
use koogate_runtime::telemetry::{self, UsagePushMetrics};
use koogate_runtime::App;
use koogate_store::{Store, UsageBacklog, UsageClaim, UsageKey, UsageRecord, UsageSettlement};

/// How a run behaves.
#[derive(Debug, Clone, Copy)]
pub struct PushOptions {
    /// Records per call (at most 1000).
    pub batch_size: usize,
    /// How long a claim protects a batch from other runs; longer than one call can take.
    pub lease: Duration,
    /// After a transient failure, the records wait this long before a later run retries them.
    pub retry_after: Duration,
    /// After a configuration error (signature, credentials), they wait this long.
    pub config_retry_after: Duration,
    /// The run stops claiming new batches after this instant.
    pub deadline: Option<Instant>,
}

impl Default for PushOptions {
    fn default() -> Self {
        PushOptions {
            batch_size: usage_push::MAX_RECORDS_PER_CALL,
            lease: Duration::from_secs(300),
            retry_after: Duration::from_secs(60),
            config_retry_after: Duration::from_secs(900),
            deadline: None,
        }
    }
}

/// What a run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PushReport {
    pub calls: u64,
    pub pushed: u64,
    pub failed: u64,
    /// Records left pending for a later run (transient or configuration failures).
    pub deferred: u64,
    /// The records failed in this run, by failure (code and message).
    pub failures: BTreeMap<String, u64>,
    /// The first error met, if the run stopped early.
    pub stopped_by: Option<String>,
    /// Set when a configuration error (key, signature, credentials) stopped the run.
    pub config_error: Option<String>,
    /// Set when the store failed (claiming, settling or reading the backlog).
    pub store_error: Option<String>,
    /// What is still due and pending at the end of the run, and why.
    pub backlog: Option<UsageBacklog>,
    /// When the run ended (epoch ms).
    pub finished_at_ms: i64,
}

impl PushReport {
    /// Whether the run must count as failed: records failed, a configuration error stopped it,
    /// or the store failed. A transient marketplace failure alone is not an error (the records
    /// wait for a later run; the age alarm watches them).
    pub fn is_error(&self) -> bool {
        self.failed > 0 || self.config_error.is_some() || self.store_error.is_some()
    }

    /// The run's metrics.
    pub fn metrics(&self) -> UsagePushMetrics {
        let backlog = self.backlog.clone().unwrap_or_default();
        let oldest = backlog
            .oldest_due_end_time
            .as_deref()
            .and_then(usage_push::parse_time)
            .map_or(0, |end| {
                u64::try_from(self.finished_at_ms.saturating_sub(end) / 1000).unwrap_or(0)
            });
        UsagePushMetrics {
            pushed: self.pushed,
            failed: self.failed,
            pending: backlog.due,
            oldest_due_age_s: oldest,
            config_errors: u64::from(self.config_error.is_some()),
        }
    }

    /// The EMF line of the run (see `koogate_runtime::telemetry::usage_push_emf_line`).
    pub fn emf_line(&self) -> String {
        telemetry::usage_push_emf_line("usage-push", &self.metrics(), self.finished_at_ms)
    }

    /// The run as one JSON object: counts, failures by code, errors, and what is pending and
    /// why (`pending.leased` until `leased_until`, `pending.backing_off` not before
    /// `retry_not_before`, `pending.never_attempted`, `pending.retry_ready`).
    pub fn to_json(&self) -> serde_json::Value {
        let time = |t: Option<i64>| t.map(usage_push::format_time);
        let b = self.backlog.clone().unwrap_or_default();
        serde_json::json!({
            "calls": self.calls,
            "pushed": self.pushed,
            "failed": self.failed,
            "deferred": self.deferred,
            "failures": self.failures,
            "stopped_by": self.stopped_by,
            "config_error": self.config_error,
            "store_error": self.store_error,
            "pending": {
                "due": b.due,
                "leased": b.leased,
                "leased_until": time(b.leased_until_ms),
                "backing_off": b.backing_off,
                "retry_not_before": time(b.retry_not_before_ms),
                "never_attempted": b.never_attempted,
                "retry_ready": b.retry_ready,
                "oldest_due_end_time": b.oldest_due_end_time,
                "oldest_due_age_s": self.metrics().oldest_due_age_s,
            },
            "error": self.is_error(),
        })
    }
}

/// What to do with a part of a batch after a failed call.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Disposition {
    /// Keep pending, retry after this long; `config` when a configuration error.
    Defer { after: Duration, config: bool },
    /// Split the call and send the halves (data error or too many records in a call).
    Split,
    /// Final: mark failed with this code.
    Fail(String),
}

/// Decides a failed call of `records` records, `attempts` being the most any of them had
/// (docs/protocol.md, outbound §3.5, §6).
fn dispose(e: &MarketplaceError, records: usize, attempts: u32, opts: &PushOptions) -> Disposition {
    match usage_push::refusal(e.http_status, e.code.as_deref(), e.transient) {
        Refusal::Data | Refusal::TooLarge if records > 1 => Disposition::Split,
        Refusal::Data | Refusal::TooLarge => Disposition::Fail(format!(
            "{}: {}",
            e.code.as_deref().unwrap_or("refused"),
            e.message
        )),
        Refusal::Configuration => Disposition::Defer {
            after: opts.config_retry_after,
            config: true,
        },
        Refusal::Retry => {
            let factor = 1u32 << attempts.saturating_sub(1).min(5);
            Disposition::Defer {
                after: opts.retry_after.saturating_mul(factor),
                config: false,
            }
        }
    }
}

fn entry(r: &UsageRecord) -> UsageEntry {
    UsageEntry {
        instance_id: r.data.instance_id.clone(),
        record_time: r.data.record_time.clone(),
        begin_time: r.data.begin_time.clone(),
        end_time: r.data.end_time.clone(),
        usage_value: r.data.usage_value.clone(),
        metering_sn: Some(r.data.metering_sn.clone()),
        product_id: r.data.product_id.clone(),
        relate_pkg_instance: r.data.relate_pkg_instance.clone(),
    }
}

/// The usage pusher of one process.
#[derive(Clone)]
pub struct Pusher {
    pub store: Arc<dyn Store>,
    pub marketplace: Marketplace,
    /// The current 基础接口 accessKey (header signature of the new endpoint).
    pub basic_key: Option<String>,
    pub options: PushOptions,
    /// Write the run's EMF line to stdout (`KOOGATE_METRICS=emf`; on by default in Lambda).
    pub emit_metrics: bool,
}

impl Pusher {
    /// From an assembled app.
    pub fn from_app(app: &App, options: PushOptions) -> Result<Pusher, String> {
        let marketplace = app
            .marketplace()
            .ok_or("the marketplace client could not be built (its TLS setup failed; see the error log line)")?;
        Ok(Pusher {
            store: Arc::clone(&app.store),
            marketplace,
            basic_key: app.secrets().keys(InterfaceType::Basic).first().cloned(),
            options,
            emit_metrics: app.config.emit_metrics,
        })
    }

    /// Pushes everything due now, batch after batch, until nothing is due, the deadline passes,
    /// or the marketplace fails transiently (the rest waits for the next run).
    pub async fn run(&self) -> PushReport {
        let owner = format!("push-{}", uuid::Uuid::new_v4());
        let mut report = PushReport::default();
        loop {
            if self.options.deadline.is_some_and(|d| Instant::now() >= d) {
                break;
            }
            let now = koogate_runtime::pipeline::now_ms();
            let due = usage_push::format_time(now);
            let lease_ms = i64::try_from(self.options.lease.as_millis()).unwrap_or(i64::MAX);
            let claim = UsageClaim {
                owner: &owner,
                now_ms: now,
                lease_until_ms: now.saturating_add(lease_ms),
                due_end_time: &due,
                limit: self
                    .options
                    .batch_size
                    .clamp(1, usage_push::MAX_RECORDS_PER_CALL),
            };
            let batch = match self.store.claim_usage(&claim).await {
                Ok(b) => b,
                Err(e) => {
                    tracing::error!(error = %e, "usage push: cannot claim records");
                    report.stopped_by = Some(e.to_string());
                    report.store_error = Some(e.to_string());
                    break;
                }
            };
            if batch.is_empty() {
                break;
            }
            if let Err(stop) = self.push_batch(&owner, batch, now, &mut report).await {
                report.stopped_by = Some(stop);
                break;
            }
        }
        let now = koogate_runtime::pipeline::now_ms();
        match self
            .store
            .usage_backlog(&usage_push::format_time(now), now)
            .await
        {
            Ok(b) => report.backlog = Some(b),
            Err(e) => {
                tracing::error!(error = %e, "usage push: cannot read what is pending");
                report.store_error.get_or_insert(e.to_string());
            }
        }
        report.finished_at_ms = now;
        if self.emit_metrics {
            telemetry::emit_line(&report.emf_line());
        }
        let m = report.metrics();
        if report.is_error() {
            tracing::error!(
                calls = report.calls,
                pushed = report.pushed,
                failed = report.failed,
                deferred = report.deferred,
                pending = m.pending,
                oldest_due_age_s = m.oldest_due_age_s,
                config_error = report.config_error.as_deref().unwrap_or(""),
                store_error = report.store_error.as_deref().unwrap_or(""),
                "usage push run finished with errors"
            );
        } else {
            tracing::info!(
                calls = report.calls,
                pushed = report.pushed,
                deferred = report.deferred,
                pending = m.pending,
                oldest_due_age_s = m.oldest_due_age_s,
                stopped = report.stopped_by.is_some(),
                "usage push run finished"
            );
        }
        report
    }

    /// Sends one claimed batch (splitting on `MKT.9003`) and settles it. `Err` stops the run.
    async fn push_batch(
        &self,
        owner: &str,
        batch: Vec<UsageRecord>,
        now: i64,
        report: &mut PushReport,
    ) -> Result<(), String> {
        let (sendable, refused): (Vec<UsageRecord>, Vec<UsageRecord>) = batch
            .into_iter()
            .partition(|r| self.sendable(r, now).is_none());
        for r in &refused {
            let why = self.sendable(r, now).unwrap_or_default();
            tracing::error!(instance_id = %r.data.instance_id, begin = %r.data.begin_time, reason = %why, "usage record cannot be sent");
            self.settle(
                owner,
                &[r],
                UsageSettlement::Failed {
                    code: why,
                    at_ms: now,
                },
                report,
            )
            .await?;
        }
        let mut queue: Vec<Vec<UsageRecord>> = vec![sendable];
        while let Some(part) = queue.pop() {
            if part.is_empty() {
                continue;
            }
            let entries: Vec<UsageEntry> = part.iter().map(entry).collect();
            report.calls += 1;
            let retry = Retry::background(self.marketplace.settings().background_attempt_timeout);
            let result = self
                .marketplace
                .push_usage(&entries, self.basic_key.as_deref(), retry)
                .await;
            let at_ms = koogate_runtime::pipeline::now_ms();
            let refs: Vec<&UsageRecord> = part.iter().collect();
            match result {
                Ok(_) => {
                    self.settle(owner, &refs, UsageSettlement::Pushed { at_ms }, report)
                        .await?;
                }
                Err(e) => {
                    let attempts = part.iter().map(|r| r.attempts).max().unwrap_or(1);
                    match dispose(&e, part.len(), attempts, &self.options) {
                        Disposition::Split => {
                            let mut left = part;
                            let right = left.split_off(left.len() / 2);
                            queue.push(right);
                            queue.push(left);
                        }
                        Disposition::Fail(code) => {
                            tracing::error!(error = %e, records = refs.len(), "usage records refused by the marketplace; correct or re-send them (docs/usage.md)");
                            self.settle(
                                owner,
                                &refs,
                                UsageSettlement::Failed { code, at_ms },
                                report,
                            )
                            .await?;
                        }
                        Disposition::Defer { after, config } => {
                            if config {
                                tracing::error!(error = %e, "usage push refused for configuration or credentials; records stay pending");
                                report.config_error = Some(e.to_string());
                            } else {
                                tracing::warn!(error = %e, retry_after_s = after.as_secs(), "usage push failed transiently; records stay pending");
                            }
                            let not_before_ms = at_ms.saturating_add(
                                i64::try_from(after.as_millis()).unwrap_or(i64::MAX),
                            );
                            // Everything not yet sent in this batch waits too.
                            let mut rest: Vec<&UsageRecord> = refs;
                            for q in &queue {
                                rest.extend(q.iter());
                            }
                            self.settle(
                                owner,
                                &rest,
                                UsageSettlement::Retry { not_before_ms },
                                report,
                            )
                            .await?;
                            return Err(e.to_string());
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// `None` when the record may be sent; otherwise the failure code to record.
    fn sendable(&self, r: &UsageRecord, now: i64) -> Option<String> {
        let begin = usage_push::parse_time(&r.data.begin_time);
        if begin.is_none_or(|b| now.saturating_sub(b) > usage_push::MAX_AGE_MS) {
            return Some("MKT.9004: not sent, begin_time is more than 21 days old".into());
        }
        if self.marketplace.settings().usage_endpoint == UsageEndpointChoice::Old
            && r.data.product_id.is_none()
        {
            return Some("not sent: the old endpoint needs product_id".into());
        }
        None
    }

    async fn settle(
        &self,
        owner: &str,
        records: &[&UsageRecord],
        settlement: UsageSettlement,
        report: &mut PushReport,
    ) -> Result<(), String> {
        let keys: Vec<UsageKey> = records.iter().map(|r| r.data.key()).collect();
        // `usage.failed` first, with an id fixed by the record's revision and code: a crash
        // before the settlement leaves the record pending, its next refusal records the same
        // event again (once), so the product hears of every refusal.
        if let UsageSettlement::Failed { code, at_ms } = &settlement {
            let events: Vec<_> = records
                .iter()
                .map(|r| {
                    koogate_runtime::isv::catalogue::usage_failed(
                        *at_ms,
                        r.data.recorded_at_ms,
                        &r.data.instance_id,
                        &r.data.begin_time,
                        &r.data.end_time,
                        &r.data.metering_sn,
                        code,
                    )
                })
                .collect();
            self.store.record_events(&events).await.map_err(|e| {
                tracing::error!(error = %e, "usage push: cannot record usage.failed events");
                report.store_error = Some(e.to_string());
                e.to_string()
            })?;
        }
        let n = self
            .store
            .settle_usage(owner, &keys, &settlement)
            .await
            .map_err(|e| {
                // The records stay claimed until the lease runs out, then go out again
                // identically: a duplicate the marketplace drops, never a loss.
                tracing::error!(error = %e, "usage push: cannot record the outcome");
                report.store_error = Some(e.to_string());
                e.to_string()
            })?;
        let n = u64::try_from(n).unwrap_or(u64::MAX);
        match &settlement {
            UsageSettlement::Pushed { .. } => report.pushed += n,
            UsageSettlement::Failed { code, .. } => {
                report.failed += n;
                *report.failures.entry(code.clone()).or_default() += n;
            }
            UsageSettlement::Retry { .. } => report.deferred += n,
        }
        Ok(())
    }
}

/// One Lambda invocation. An EventBridge schedule (any event without `usage_records`) runs a
/// push and answers its report (`PushReport::to_json`); the answer is an error — so the
/// function's `Errors` metric and alarm fire — when the run is (`PushReport::is_error`). A
/// direct invocation `{"usage_records": [UsageInput, …]}` — allowed only to principals granted
/// `lambda:InvokeFunction` on this function, which is how the ISV's own systems report usage on
/// AWS — records them and answers per record (`koogate_runtime::usage::answer`); nothing is
/// pushed by it.
pub async fn handle_event(
    pusher: &Pusher,
    event: &serde_json::Value,
) -> Result<serde_json::Value, String> {
    use serde_json::json;
    let Some(records) = event.get("usage_records") else {
        let report = pusher.run().await;
        let out = report.to_json();
        if report.is_error() {
            return Err(format!("usage push run failed: {out}"));
        }
        return Ok(out);
    };
    let Some(records) = records.as_array() else {
        return Ok(json!({"error": "usage_records must be an array"}));
    };
    let now = koogate_runtime::pipeline::now_ms();
    let mut results = Vec::with_capacity(records.len());
    for r in records {
        let outcome = match serde_json::from_value::<koogate_runtime::usage::UsageInput>(r.clone())
        {
            Err(e) => {
                json!({"status": "rejected", "reason": "invalid", "error": format!("not a usage record: {e}"), "retryable": false})
            }
            Ok(input) => koogate_runtime::usage::answer(
                &koogate_runtime::usage::record_at(&*pusher.store, &input, now).await,
            ),
        };
        results.push(outcome);
    }
    Ok(json!({ "results": results }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(transient: bool, code: Option<&str>) -> MarketplaceError {
        MarketplaceError {
            operation: "usage-push",
            transient,
            code: code.map(str::to_string),
            http_status: Some(500),
            message: "m".into(),
        }
    }

    #[test]
    fn failures_are_disposed_by_kind() {
        let o = PushOptions::default();
        let retry = |after| Disposition::Defer {
            after,
            config: false,
        };
        let config = Disposition::Defer {
            after: o.config_retry_after,
            config: true,
        };
        assert_eq!(dispose(&err(true, None), 5, 1, &o), retry(o.retry_after));
        assert_eq!(
            dispose(&err(true, Some("MKT.0999")), 5, 3, &o),
            retry(o.retry_after * 4)
        );
        assert_eq!(
            dispose(&err(true, Some("MKT.9999")), 5, 99, &o),
            retry(o.retry_after * 32)
        );
        assert_eq!(
            dispose(&err(false, Some("MKT.9003")), 2, 1, &o),
            Disposition::Split
        );
        assert_eq!(
            dispose(&err(false, Some("MKT.9001")), 2, 1, &o),
            Disposition::Split
        );
        assert_eq!(
            dispose(&err(false, Some("MKT.9001")), 1, 1, &o),
            Disposition::Fail("MKT.9001: m".into())
        );
        assert_eq!(dispose(&err(false, Some("MKT.0102")), 5, 1, &o), config);
        let gateway = MarketplaceError {
            http_status: Some(401),
            ..err(false, Some("APIGW.0301"))
        };
        assert_eq!(dispose(&gateway, 5, 1, &o), config);
        assert_eq!(
            dispose(&err(false, Some("MKT.9002")), 1, 1, &o),
            Disposition::Fail("MKT.9002: m".into())
        );
    }
}
