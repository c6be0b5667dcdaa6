//! The usage push (outbound.md §3): claims due usage records in batches of at most 1000, pushes
//! each batch in one call, and settles the records by the answer.
//!
//! Exactly once, as far as the merchant can make it:
//! * a record's bytes and `metering_sn` are fixed when it is recorded; every send, first or
//!   retry, carries them unchanged, so a resend after a lost answer is a duplicate the
//!   marketplace drops (§3.4), never a second charge;
//! * a record is claimed (leased) before it is sent, so two runs never send it at once, and a
//!   run that dies mid-call leaves it to be re-sent identically once the lease has run out;
//! * it is marked pushed only after `MKT.0000` for a call that carried it; a transient failure
//!   (network, timeout, 5xx, `MKT.0999`, throttling — after the client's own retries) leaves it
//!   pending for a later run; a data error marks it failed with the code; a configuration error
//!   (bad signature or credentials) leaves it pending and is logged as an error, so nothing is
//!   lost while the configuration is fixed.
//!
//! Timing (§3.3): a record is due as soon as its interval has ended (`end_time <= now`); the
//! schedule runs every 5 minutes, so hourly records go out within the first quarter hour and
//! daily totals between 00:00 and 00:15. Records whose `begin_time` is older than 21 days are not
//! sent (the marketplace would refuse them with `MKT.9004`) and are marked failed with that code.

use std::sync::Arc;
use std::time::{Duration, Instant};

use koogate_protocol::usage_push::{self, UsageEntry};
use koogate_runtime::marketplace::{Marketplace, MarketplaceError, Retry, UsageEndpointChoice};
use koogate_runtime::routes::InterfaceType;
use koogate_runtime::App;
use koogate_store::{Store, UsageClaim, UsageKey, UsageRecord, UsageSettlement};

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
    /// The first error met, if the run stopped early.
    pub stopped_by: Option<String>,
}

/// What to do with a batch after a failed call.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Disposition {
    /// Keep pending, retry after this long.
    Defer(Duration),
    /// The call was refused as too large: split it and send the halves.
    Split,
    /// Final: mark failed with this code.
    Fail(String),
}

/// Decides a failed call (outbound.md §3.5, §6).
fn dispose(e: &MarketplaceError, opts: &PushOptions) -> Disposition {
    if e.transient {
        return Disposition::Defer(opts.retry_after);
    }
    match e.code.as_deref() {
        // The whole call was refused for its size (some pages say 100 per call): nothing was
        // taken, so smaller calls with the same records are not a change of the records.
        Some("MKT.9003") => Disposition::Split,
        // Configuration and authorisation: fixing them must not require re-reporting.
        Some("MKT.0102" | "MKT.0150" | "MKT.0151" | "MKT.0154") | None => {
            Disposition::Defer(opts.config_retry_after)
        }
        Some(c) if c.starts_with("APIGW.") => Disposition::Defer(opts.config_retry_after),
        Some(c) => Disposition::Fail(format!("{c}: {}", e.message)),
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
}

impl Pusher {
    /// From an assembled app.
    pub fn from_app(app: &App, options: PushOptions) -> Result<Pusher, String> {
        let marketplace = app
            .marketplace()
            .cloned()
            .ok_or("the marketplace client could not be built (its TLS setup failed; see the error log line)")?;
        Ok(Pusher {
            store: Arc::clone(&app.store),
            marketplace,
            basic_key: app.secrets.keys(InterfaceType::Basic).first().cloned(),
            options,
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
        tracing::info!(
            calls = report.calls,
            pushed = report.pushed,
            failed = report.failed,
            deferred = report.deferred,
            stopped = report.stopped_by.is_some(),
            "usage push run finished"
        );
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
                Err(e) => match dispose(&e, &self.options) {
                    Disposition::Split if part.len() > 1 => {
                        let mut left = part;
                        let right = left.split_off(left.len() / 2);
                        queue.push(right);
                        queue.push(left);
                    }
                    Disposition::Split => {
                        let code = format!("{}: {}", e.code.unwrap_or_default(), e.message);
                        self.settle(
                            owner,
                            &refs,
                            UsageSettlement::Failed { code, at_ms },
                            report,
                        )
                        .await?;
                    }
                    Disposition::Fail(code) => {
                        tracing::error!(error = %e, records = refs.len(), "usage records refused by the marketplace; fix and report them again");
                        self.settle(
                            owner,
                            &refs,
                            UsageSettlement::Failed { code, at_ms },
                            report,
                        )
                        .await?;
                    }
                    Disposition::Defer(after) => {
                        if after == self.options.config_retry_after {
                            tracing::error!(error = %e, "usage push refused for configuration or credentials; records stay pending");
                        }
                        let not_before_ms = at_ms
                            .saturating_add(i64::try_from(after.as_millis()).unwrap_or(i64::MAX));
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
                },
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
        let n = self
            .store
            .settle_usage(owner, &keys, &settlement)
            .await
            .map_err(|e| {
                // The records stay claimed until the lease runs out, then go out again
                // identically: a duplicate the marketplace drops, never a loss.
                tracing::error!(error = %e, "usage push: cannot record the outcome");
                e.to_string()
            })?;
        let n = u64::try_from(n).unwrap_or(u64::MAX);
        match settlement {
            UsageSettlement::Pushed { .. } => report.pushed += n,
            UsageSettlement::Failed { .. } => report.failed += n,
            UsageSettlement::Retry { .. } => report.deferred += n,
        }
        Ok(())
    }
}

/// One Lambda invocation. An EventBridge schedule (any event without `usage_records`) runs a
/// push. A direct invocation `{"usage_records": [UsageInput, …]}` — allowed only to principals
/// granted `lambda:InvokeFunction` on this function, which is how the ISV's own systems report
/// usage on AWS — records them and answers per record; nothing is pushed by it.
pub async fn handle_event(pusher: &Pusher, event: &serde_json::Value) -> serde_json::Value {
    use serde_json::json;
    let Some(records) = event.get("usage_records") else {
        let report = pusher.run().await;
        return json!({
            "calls": report.calls,
            "pushed": report.pushed,
            "failed": report.failed,
            "deferred": report.deferred,
            "stopped_by": report.stopped_by,
        });
    };
    let Some(records) = records.as_array() else {
        return json!({"error": "usage_records must be an array"});
    };
    let now = koogate_runtime::pipeline::now_ms();
    let mut results = Vec::with_capacity(records.len());
    for r in records {
        let outcome = match serde_json::from_value::<koogate_runtime::usage::UsageInput>(r.clone())
        {
            Err(e) => json!({"status": "rejected", "error": format!("not a usage record: {e}")}),
            Ok(input) => match koogate_runtime::usage::record(&*pusher.store, &input, now).await {
                Ok(koogate_runtime::usage::Recorded::New { metering_sn }) => {
                    json!({"status": "recorded", "metering_sn": metering_sn})
                }
                Ok(koogate_runtime::usage::Recorded::AlreadyRecorded {
                    metering_sn,
                    status,
                }) => {
                    json!({"status": "already_recorded", "metering_sn": metering_sn, "push": status.as_str()})
                }
                Err(e @ koogate_runtime::usage::RecordError::Store(_)) => {
                    json!({"status": "retry", "error": e.to_string()})
                }
                Err(e) => json!({"status": "rejected", "error": e.to_string()}),
            },
        };
        results.push(outcome);
    }
    json!({ "results": results })
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
        assert_eq!(
            dispose(&err(true, None), &o),
            Disposition::Defer(o.retry_after)
        );
        assert_eq!(
            dispose(&err(true, Some("MKT.0999")), &o),
            Disposition::Defer(o.retry_after)
        );
        assert_eq!(
            dispose(&err(false, Some("MKT.9003")), &o),
            Disposition::Split
        );
        assert_eq!(
            dispose(&err(false, Some("MKT.0102")), &o),
            Disposition::Defer(o.config_retry_after)
        );
        assert_eq!(
            dispose(&err(false, Some("APIGW.0301")), &o),
            Disposition::Defer(o.config_retry_after)
        );
        assert_eq!(
            dispose(&err(false, Some("MKT.9002")), &o),
            Disposition::Fail("MKT.9002: m".into())
        );
    }
}
