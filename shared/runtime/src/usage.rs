//! Recording pay-per-use usage: the library call the ISV's own systems use (directly, through
//! `koogate usage record`, the usage-push Lambda's direct invocation, or an HTTP route of
//! their own behind authorisation). See docs/usage.md for the whole life of a record.
//!
//! A record is one instance and one closed interval. It is validated against the documented
//! timing rules (docs/protocol.md, outbound §3.3) and against the instance it bills, and stored once with a
//! `metering_sn` derived from its key and revision:
//! * the same interval with the same value again: `AlreadyRecorded`, nothing changes;
//! * another value for an interval that is pending or pushed: refused (`conflict`): an interval
//!   is never changed once it may have been sent (§3.4);
//! * another value for an interval the marketplace refused (status failed): the correction
//!   replaces it as a new revision with a new `metering_sn`, pending again ([`resend`] re-queues
//!   a failed record unchanged the same way).

use koogate_protocol::usage_push;
use koogate_store::{
    Instance, InstanceState, Partition, Store, StoreError, UsageData, UsageInsert, UsageKey,
    UsageRecord, UsageStatus,
};
use serde::Deserialize;
use serde_json::json;

use crate::App;

/// What the ISV reports.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct UsageInput {
    /// The pay-per-use instance (never a package instance).
    pub instance_id: String,
    /// UTC `yyyyMMdd'T'HHmmss'Z'`.
    pub begin_time: String,
    /// UTC `yyyyMMdd'T'HHmmss'Z'`; at or before now.
    pub end_time: String,
    /// Decimal text, > 0, at most 4 decimals.
    pub usage_value: String,
    /// Required by the old endpoint (`KOOGATE_USAGE_ENDPOINT=old`).
    #[serde(default)]
    pub product_id: Option<String>,
    /// The 用完即停 package the usage is charged against, if any.
    #[serde(default)]
    pub relate_pkg_instance: Option<String>,
}

/// A record that was accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordOutcome {
    /// Stored, pending push. `replaced` holds the failure of the refused record this one
    /// corrects (a new revision with a new `metering_sn`), if it replaced one.
    Recorded {
        metering_sn: String,
        replaced: Option<String>,
    },
    /// The same interval with the same value was recorded before: nothing changed. `status` is
    /// where that record is (pending, pushed, or failed: use [`resend`] to send it again).
    AlreadyRecorded {
        metering_sn: String,
        status: UsageStatus,
    },
}

impl RecordOutcome {
    /// `recorded` or `already_recorded`.
    pub fn status(&self) -> &'static str {
        match self {
            RecordOutcome::Recorded { .. } => "recorded",
            RecordOutcome::AlreadyRecorded { .. } => "already_recorded",
        }
    }
}

/// Why a record was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum RecordRejection {
    /// The record itself is malformed or breaks a timing rule (§3.3).
    #[error("usage rejected: {0}")]
    Invalid(#[from] usage_push::UsageError),
    /// No instance with this ID was ever issued here (or only as a debug/testFlag instance,
    /// which is never billed).
    #[error("unknown instance: no production instance with this ID was issued")]
    UnknownInstance,
    /// The instance's provisioning failed: it was never usable.
    #[error("the instance's provisioning failed; it cannot have usage")]
    InstanceFailed,
    /// The instance was released at `released_at` and the interval ends after it (§3.3: after
    /// the resource closed, `end_time` ≤ its close time).
    #[error("the instance was released at {released_at}; the interval must end by then")]
    EndsAfterRelease { released_at: String },
    /// The interval was recorded with another value and is pending or pushed.
    #[error(
        "usage for this instance and interval was already recorded with another value \
         ({existing}, {status}); intervals are immutable once recorded"
    )]
    Conflict {
        existing: String,
        status: &'static str,
    },
    /// [`resend`] only: there is no failed record for this instance and interval.
    #[error("no failed usage record for this instance and interval ({0})")]
    NotFailed(&'static str),
    /// The store failed: nothing is known to be recorded; retry the same record.
    #[error(transparent)]
    Unavailable(#[from] StoreError),
}

impl RecordRejection {
    /// A stable machine-readable reason: `invalid`, `unknown_instance`, `instance_failed`,
    /// `ends_after_release`, `conflict`, `not_failed`, `unavailable`.
    pub fn reason(&self) -> &'static str {
        match self {
            RecordRejection::Invalid(_) => "invalid",
            RecordRejection::UnknownInstance => "unknown_instance",
            RecordRejection::InstanceFailed => "instance_failed",
            RecordRejection::EndsAfterRelease { .. } => "ends_after_release",
            RecordRejection::Conflict { .. } => "conflict",
            RecordRejection::NotFailed(_) => "not_failed",
            RecordRejection::Unavailable(_) => "unavailable",
        }
    }

    /// Whether sending the same record again later may succeed (only a store failure).
    pub fn retryable(&self) -> bool {
        matches!(self, RecordRejection::Unavailable(_))
    }
}

/// The per-record answer of every recording front end (CLI, Lambda direct invocation, HTTP):
/// `{"status":"recorded","metering_sn":…[,"replaced":failure]}`,
/// `{"status":"already_recorded","metering_sn":…,"push":"pending|pushed|failed"}`, or
/// `{"status":"rejected","reason":…,"error":…,"retryable":bool}`.
pub fn answer(result: &Result<RecordOutcome, RecordRejection>) -> serde_json::Value {
    match result {
        Ok(RecordOutcome::Recorded {
            metering_sn,
            replaced: None,
        }) => json!({"status": "recorded", "metering_sn": metering_sn}),
        Ok(RecordOutcome::Recorded {
            metering_sn,
            replaced: Some(failure),
        }) => json!({"status": "recorded", "metering_sn": metering_sn, "replaced": failure}),
        Ok(RecordOutcome::AlreadyRecorded {
            metering_sn,
            status,
        }) => {
            json!({"status": "already_recorded", "metering_sn": metering_sn, "push": status.as_str()})
        }
        Err(e) => json!({
            "status": "rejected",
            "reason": e.reason(),
            "error": e.to_string(),
            "retryable": e.retryable(),
        }),
    }
}

/// Records one usage record now: the call for any front end, one record per call (an HTTP
/// `POST /isv/v1/usage` with several records calls it once per record and answers each with
/// [`answer`]).
///
/// Accepted: the instance was issued here as a production instance, its provisioning did not
/// fail, and, when it is released, the interval ends at or before the release time (the
/// applied time of its last `releaseInstance` order, or else its last update, which for a
/// released instance is the release). Then the timing rules of §3.3 and the idempotency rules of
/// the module doc apply.
pub async fn record(app: &App, input: &UsageInput) -> Result<RecordOutcome, RecordRejection> {
    record_at(&*app.store, input, crate::pipeline::now_ms()).await
}

/// [`record`] against a store at `now_ms`.
pub async fn record_at(
    store: &dyn Store,
    input: &UsageInput,
    now_ms: i64,
) -> Result<RecordOutcome, RecordRejection> {
    usage_push::check_id("instance_id", &input.instance_id)?;
    if let Some(p) = &input.product_id {
        usage_push::check_id("product_id", p)?;
    }
    if let Some(p) = &input.relate_pkg_instance {
        usage_push::check_id("relate_pkg_instance", p)?;
    }
    let (_, end_ms) = usage_push::check_interval(&input.begin_time, &input.end_time, now_ms)?;
    let value = usage_push::normalise_value(&input.usage_value)?;
    check_instance(store, &input.instance_id, end_ms).await?;
    let metering_sn =
        usage_push::metering_sn(&input.instance_id, &input.begin_time, &input.end_time);
    let data = UsageData {
        instance_id: input.instance_id.clone(),
        begin_time: input.begin_time.clone(),
        end_time: input.end_time.clone(),
        usage_value: value,
        metering_sn: metering_sn.clone(),
        record_time: usage_push::format_time(now_ms),
        product_id: input.product_id.clone(),
        relate_pkg_instance: input.relate_pkg_instance.clone(),
        recorded_at_ms: now_ms,
        revision: 0,
    };
    match store.record_usage(&data).await? {
        UsageInsert::Recorded => Ok(RecordOutcome::Recorded {
            metering_sn,
            replaced: None,
        }),
        UsageInsert::Exists(r) if same_usage(&r, &data) => Ok(RecordOutcome::AlreadyRecorded {
            metering_sn: r.data.metering_sn,
            status: r.status,
        }),
        UsageInsert::Exists(r) if r.status == UsageStatus::Failed => {
            // A correction of a refused record: a new revision (docs/usage.md).
            let replacement = next_revision(&r, data);
            let sn = replacement.metering_sn.clone();
            if store
                .requeue_usage(&r.data.metering_sn, &replacement)
                .await?
            {
                Ok(RecordOutcome::Recorded {
                    metering_sn: sn,
                    replaced: r.failure.clone(),
                })
            } else {
                Err(StoreError::Unavailable(
                    "the failed record changed while it was being corrected; try again".into(),
                )
                .into())
            }
        }
        UsageInsert::Exists(r) => Err(RecordRejection::Conflict {
            existing: r.data.usage_value,
            status: r.status.as_str(),
        }),
    }
}

/// The next revision of `stored` with the content of `data` (which may be `stored`'s own).
fn next_revision(stored: &UsageRecord, mut data: UsageData) -> UsageData {
    data.revision = stored.data.revision.saturating_add(1);
    data.metering_sn = usage_push::metering_sn_revision(
        &data.instance_id,
        &data.begin_time,
        &data.end_time,
        data.revision,
    );
    data
}

/// Re-queues the failed record of `key` unchanged (same value, same record time), as a new
/// revision with a new `metering_sn`, for the next push. Refused when no such failed record
/// exists, when its instance is no longer billable for it, or when `begin_time` is now more than
/// 21 days old (the marketplace would refuse it with `MKT.9004`).
pub async fn resend(
    store: &dyn Store,
    key: &UsageKey,
    now_ms: i64,
) -> Result<RecordOutcome, RecordRejection> {
    let all = store.instance_usage(&key.instance_id).await?;
    let Some(r) = all.into_iter().find(|r| r.data.key() == *key) else {
        return Err(RecordRejection::NotFailed("nothing recorded"));
    };
    if r.status != UsageStatus::Failed {
        return Err(RecordRejection::NotFailed(r.status.as_str()));
    }
    let begin = usage_push::parse_time(&key.begin_time)
        .ok_or(usage_push::UsageError::BadTime("begin_time"))?;
    if now_ms.saturating_sub(begin) > usage_push::MAX_AGE_MS {
        return Err(usage_push::UsageError::TooOld.into());
    }
    let end =
        usage_push::parse_time(&key.end_time).ok_or(usage_push::UsageError::BadTime("end_time"))?;
    check_instance(store, &key.instance_id, end).await?;
    let replacement = next_revision(&r, r.data.clone());
    let sn = replacement.metering_sn.clone();
    if store
        .requeue_usage(&r.data.metering_sn, &replacement)
        .await?
    {
        Ok(RecordOutcome::Recorded {
            metering_sn: sn,
            replaced: r.failure,
        })
    } else {
        Err(RecordRejection::NotFailed("changed meanwhile"))
    }
}

/// The instance rules of [`record`].
async fn check_instance(
    store: &dyn Store,
    instance_id: &str,
    end_ms: i64,
) -> Result<(), RecordRejection> {
    // Usage is production data only: a debug (testFlag) instance is never billed.
    let Some(inst) = store
        .get_instance(Partition::Production, instance_id)
        .await?
    else {
        return Err(RecordRejection::UnknownInstance);
    };
    if inst.state == InstanceState::Failed {
        return Err(RecordRejection::InstanceFailed);
    }
    if let Some(released) = release_time_ms(&inst) {
        if end_ms > released {
            return Err(RecordRejection::EndsAfterRelease {
                released_at: usage_push::format_time(released),
            });
        }
    }
    Ok(())
}

/// When a released instance was released: the applied time of its last `releaseInstance`
/// order, or else its last update (a released instance is final, so that update is the
/// release). `None` while it is not released.
pub fn release_time_ms(inst: &Instance) -> Option<i64> {
    if inst.state != InstanceState::Released {
        return None;
    }
    Some(
        inst.orders
            .iter()
            .rev()
            .find(|o| o.activity == "releaseInstance")
            .map_or(inst.updated_at_ms, |o| o.applied_at_ms),
    )
}

fn same_usage(stored: &UsageRecord, new: &UsageData) -> bool {
    stored.data.usage_value == new.usage_value
        && stored.data.product_id == new.product_id
        && stored.data.relate_pkg_instance == new.relate_pkg_instance
}

/// The cumulative usage of an instance for queryInstance's `usageInfo` (docs/protocol.md (inbound-basic)):
/// the sum of every record not refused by the marketplace, and the end of the latest interval
/// as `statisticalTime` (`yyyyMMddHHmmssSSS`, UTC). `None` when nothing was recorded.
pub fn cumulative(records: &[UsageRecord]) -> Option<(String, String)> {
    let counted: Vec<&UsageRecord> = records
        .iter()
        .filter(|r| r.status != UsageStatus::Failed)
        .collect();
    let latest = counted.iter().map(|r| r.data.end_time.as_str()).max()?;
    // Values have at most 4 decimals: add them exactly as integers of 1/10000.
    let total: i128 = counted
        .iter()
        .filter_map(|r| ten_thousandths(&r.data.usage_value))
        .sum();
    let text = if total % 10_000 == 0 {
        (total / 10_000).to_string()
    } else {
        let frac = format!("{:04}", total % 10_000);
        format!("{}.{}", total / 10_000, frac.trim_end_matches('0'))
    };
    let at = usage_push::parse_time(latest)?;
    Some((text, koogate_protocol::timestamp::format_compact_ms(at)))
}

fn ten_thousandths(v: &str) -> Option<i128> {
    let (int, frac) = v.split_once('.').unwrap_or((v, ""));
    let int: i128 = int.parse().ok()?;
    let frac: i128 = format!("{frac:0<4}").get(..4)?.parse().ok()?;
    Some(int * 10_000 + frac)
}

#[cfg(test)]
mod tests {
    use super::*;
    use koogate_store::sqlite::SqliteStore;
    use koogate_store::{AppliedOrder, UsageClaim, UsageSettlement};

    fn input(value: &str) -> UsageInput {
        UsageInput {
            instance_id: "inst-1".into(),
            begin_time: "20240101T000000Z".into(),
            end_time: "20240101T010000Z".into(),
            usage_value: value.into(),
            product_id: None,
            relate_pkg_instance: None,
        }
    }

    async fn instance(
        store: &dyn Store,
        id: &str,
        state: InstanceState,
        orders: Vec<AppliedOrder>,
    ) {
        let inst = Instance {
            instance_id: id.into(),
            debug: false,
            state,
            order_id: "o".into(),
            order_line_id: "o-1".into(),
            product_id: None,
            sku_code: None,
            charging_mode: Some("ON_DEMAND".into()),
            expire_time: None,
            expire_time_ms: None,
            app_info: None,
            license: None,
            failure: None,
            orders,
            created_at_ms: 0,
            updated_at_ms: usage_push::parse_time("20240101T003000Z").unwrap(),
            version: 1,
            order_details: None,
            event_ids: Vec::new(),
            customer_id: None,
        };
        store.put_instance(&inst, None, &[]).await.unwrap();
    }

    #[tokio::test]
    async fn recording_is_idempotent_and_immutable() {
        let store = SqliteStore::in_memory().unwrap();
        instance(&store, "inst-1", InstanceState::Active, vec![]).await;
        let now = usage_push::parse_time("20240101T011000Z").unwrap();
        let first = record_at(&store, &input("1.50"), now).await.unwrap();
        let RecordOutcome::Recorded {
            metering_sn,
            replaced: None,
        } = first
        else {
            panic!("{first:?}")
        };
        assert_eq!(
            record_at(&store, &input("1.5"), now + 1000).await.unwrap(),
            RecordOutcome::AlreadyRecorded {
                metering_sn,
                status: UsageStatus::Pending
            }
        );
        let conflict = record_at(&store, &input("2"), now).await;
        assert!(matches!(conflict, Err(RecordRejection::Conflict { .. })));
        assert_eq!(answer(&conflict)["reason"], "conflict");
        assert!(matches!(
            record_at(&store, &input("0"), now).await,
            Err(RecordRejection::Invalid(_))
        ));
        let future = usage_push::parse_time("20240101T005959Z").unwrap();
        assert!(matches!(
            record_at(&store, &input("1"), future).await,
            Err(RecordRejection::Invalid(
                usage_push::UsageError::EndsInFuture
            ))
        ));
    }

    #[tokio::test]
    async fn unknown_failed_and_released_instances_are_refused() {
        let store = SqliteStore::in_memory().unwrap();
        let now = usage_push::parse_time("20240101T011000Z").unwrap();
        let r = record_at(&store, &input("1"), now).await;
        assert!(matches!(r, Err(RecordRejection::UnknownInstance)), "{r:?}");
        assert_eq!(answer(&r)["status"], "rejected");
        instance(&store, "inst-1", InstanceState::Failed, vec![]).await;
        let r = record_at(&store, &input("1"), now).await;
        assert!(matches!(r, Err(RecordRejection::InstanceFailed)), "{r:?}");
        // Released at 00:45 by its order: usage up to 00:45 is accepted, later refused.
        let mut release = AppliedOrder::new("releaseInstance", "o", "o-1", 0);
        release.applied_at_ms = usage_push::parse_time("20240101T004500Z").unwrap();
        let released = |id: &str| {
            let mut i = input("1");
            i.instance_id = id.into();
            i
        };
        instance(&store, "gone", InstanceState::Released, vec![release]).await;
        let r = record_at(&store, &released("gone"), now).await;
        let Err(RecordRejection::EndsAfterRelease { released_at }) = &r else {
            panic!("{r:?}")
        };
        assert_eq!(released_at, "20240101T004500Z");
        let mut early = released("gone");
        early.begin_time = "20240101T000000Z".into();
        early.end_time = "20240101T004500Z".into();
        assert!(record_at(&store, &early, now).await.is_ok());
        // Without a release order: the last update (00:30) is the release.
        instance(&store, "gone-2", InstanceState::Released, vec![]).await;
        assert!(matches!(
            record_at(&store, &released("gone-2"), now).await,
            Err(RecordRejection::EndsAfterRelease { .. })
        ));
    }

    #[tokio::test]
    async fn a_failed_record_is_corrected_or_resent_with_a_new_metering_sn() {
        let store = SqliteStore::in_memory().unwrap();
        instance(&store, "inst-1", InstanceState::Active, vec![]).await;
        let now = usage_push::parse_time("20240101T011000Z").unwrap();
        record_at(&store, &input("1"), now).await.unwrap();
        let key = UsageKey {
            instance_id: "inst-1".into(),
            begin_time: "20240101T000000Z".into(),
            end_time: "20240101T010000Z".into(),
        };
        // Not failed: nothing to resend.
        assert!(matches!(
            resend(&store, &key, now).await,
            Err(RecordRejection::NotFailed("pending"))
        ));
        let fail = |run: &'static str| {
            let store = store.clone();
            let key = key.clone();
            async move {
                let claim = UsageClaim {
                    owner: run,
                    now_ms: now,
                    lease_until_ms: now + 1000,
                    due_end_time: "20240101T010000Z",
                    limit: 10,
                };
                assert_eq!(store.claim_usage(&claim).await.unwrap().len(), 1);
                let failed = UsageSettlement::Failed {
                    code: "MKT.9002: bad".into(),
                    at_ms: now,
                };
                store.settle_usage(run, &[key], &failed).await.unwrap();
            }
        };
        fail("run-1").await;
        let sn0 = usage_push::metering_sn("inst-1", &key.begin_time, &key.end_time);
        let corrected = record_at(&store, &input("2"), now).await.unwrap();
        let RecordOutcome::Recorded {
            metering_sn: sn1,
            replaced,
        } = corrected
        else {
            panic!("{corrected:?}")
        };
        assert_eq!(replaced.as_deref(), Some("MKT.9002: bad"));
        assert_ne!(sn1, sn0);
        let all = store.instance_usage("inst-1").await.unwrap();
        assert_eq!(
            (all[0].status, all[0].data.usage_value.as_str()),
            (UsageStatus::Pending, "2")
        );
        fail("run-2").await;
        let resent = resend(&store, &key, now).await.unwrap();
        let RecordOutcome::Recorded {
            metering_sn: sn2, ..
        } = resent
        else {
            panic!("{resent:?}")
        };
        assert!(sn2 != sn1 && sn2 != sn0);
        let all = store.instance_usage("inst-1").await.unwrap();
        assert_eq!(
            (all[0].status, all[0].data.usage_value.as_str()),
            (UsageStatus::Pending, "2")
        );
        assert_eq!(all[0].data.revision, 2);
    }

    #[tokio::test]
    async fn cumulative_usage_adds_exactly() {
        let store = SqliteStore::in_memory().unwrap();
        instance(&store, "inst-1", InstanceState::Active, vec![]).await;
        let now = usage_push::parse_time("20240101T031000Z").unwrap();
        for (b, e, v) in [
            ("20240101T000000Z", "20240101T010000Z", "0.1"),
            ("20240101T010000Z", "20240101T020000Z", "0.2"),
            ("20240101T020000Z", "20240101T030000Z", "12"),
        ] {
            let mut i = input(v);
            i.begin_time = b.into();
            i.end_time = e.into();
            record_at(&store, &i, now).await.unwrap();
        }
        let all = store.instance_usage("inst-1").await.unwrap();
        assert_eq!(
            cumulative(&all),
            Some(("12.3".into(), "20240101030000000".into()))
        );
        assert_eq!(cumulative(&[]), None);
    }
}
