//! Recording pay-per-use usage: the library call the ISV's own systems use (directly, through
//! `koogate usage record`, or through a route of their own behind IAM authorisation).
//!
//! A record is one instance and one closed interval. It is validated against the documented
//! timing rules (outbound.md §3.3) and stored once, with a `metering_sn` derived from its key, so
//! recording the same interval again is harmless (same value: `AlreadyRecorded`) and recording a
//! different value for it is refused (`Conflict`): an interval is never re-split or changed once
//! it may have been sent (§3.4).

use koogate_protocol::usage_push;
use koogate_store::{Store, StoreError, UsageData, UsageInsert, UsageRecord, UsageStatus};
use serde::Deserialize;

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

/// The outcome of [`record`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recorded {
    /// Stored, pending push.
    New { metering_sn: String },
    /// The same interval with the same value was recorded before (nothing changed).
    AlreadyRecorded {
        metering_sn: String,
        status: UsageStatus,
    },
}

/// Why usage was not recorded.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("usage rejected: {0}")]
    Invalid(#[from] usage_push::UsageError),
    #[error(
        "usage for this instance and interval was already recorded with another value \
         ({existing}); intervals are immutable once recorded"
    )]
    Conflict { existing: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Validates and stores one usage record at `now_ms`.
pub async fn record(
    store: &dyn Store,
    input: &UsageInput,
    now_ms: i64,
) -> Result<Recorded, RecordError> {
    usage_push::check_id("instance_id", &input.instance_id)?;
    if let Some(p) = &input.product_id {
        usage_push::check_id("product_id", p)?;
    }
    if let Some(p) = &input.relate_pkg_instance {
        usage_push::check_id("relate_pkg_instance", p)?;
    }
    usage_push::check_interval(&input.begin_time, &input.end_time, now_ms)?;
    let value = usage_push::normalise_value(&input.usage_value)?;
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
    };
    match store.record_usage(&data).await? {
        UsageInsert::Recorded => Ok(Recorded::New { metering_sn }),
        UsageInsert::Exists(r) if same_usage(&r, &data) => Ok(Recorded::AlreadyRecorded {
            metering_sn: r.data.metering_sn,
            status: r.status,
        }),
        UsageInsert::Exists(r) => Err(RecordError::Conflict {
            existing: r.data.usage_value,
        }),
    }
}

fn same_usage(stored: &UsageRecord, new: &UsageData) -> bool {
    stored.data.usage_value == new.usage_value
        && stored.data.product_id == new.product_id
        && stored.data.relate_pkg_instance == new.relate_pkg_instance
}

/// The cumulative usage of an instance for queryInstance's `usageInfo` (inbound-basic.md):
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

    #[tokio::test]
    async fn recording_is_idempotent_and_immutable() {
        let store = SqliteStore::in_memory().unwrap();
        let now = usage_push::parse_time("20240101T011000Z").unwrap();
        let first = record(&store, &input("1.50"), now).await.unwrap();
        let Recorded::New { metering_sn } = first else {
            panic!("{first:?}")
        };
        assert_eq!(
            record(&store, &input("1.5"), now + 1000).await.unwrap(),
            Recorded::AlreadyRecorded {
                metering_sn,
                status: UsageStatus::Pending
            }
        );
        assert!(matches!(
            record(&store, &input("2"), now).await,
            Err(RecordError::Conflict { .. })
        ));
        assert!(matches!(
            record(&store, &input("0"), now).await,
            Err(RecordError::Invalid(_))
        ));
        let future = usage_push::parse_time("20240101T005959Z").unwrap();
        assert!(matches!(
            record(&store, &input("1"), future).await,
            Err(RecordError::Invalid(usage_push::UsageError::EndsInFuture))
        ));
    }

    #[tokio::test]
    async fn cumulative_usage_adds_exactly() {
        let store = SqliteStore::in_memory().unwrap();
        let now = usage_push::parse_time("20240101T031000Z").unwrap();
        for (b, e, v) in [
            ("20240101T000000Z", "20240101T010000Z", "0.1"),
            ("20240101T010000Z", "20240101T020000Z", "0.2"),
            ("20240101T020000Z", "20240101T030000Z", "12"),
        ] {
            let mut i = input(v);
            i.begin_time = b.into();
            i.end_time = e.into();
            record(&store, &i, now).await.unwrap();
        }
        let all = store.instance_usage("inst-1").await.unwrap();
        assert_eq!(
            cumulative(&all),
            Some(("12.3".into(), "20240101030000000".into()))
        );
        assert_eq!(cumulative(&[]), None);
    }
}
