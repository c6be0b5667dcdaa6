//! Entity records, stored as one JSON document per item in both backends (plus the few attributes
//! that conditions need: `version`, `state`).

use serde::{Deserialize, Serialize};

use crate::Partition;

/// The instance states of docs/protocol.md, inbound-basic §3. `Released` is final.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InstanceState {
    Provisioning,
    Active,
    Frozen,
    Released,
    Failed,
}

impl InstanceState {
    pub fn as_str(self) -> &'static str {
        match self {
            InstanceState::Provisioning => "provisioning",
            InstanceState::Active => "active",
            InstanceState::Frozen => "frozen",
            InstanceState::Released => "released",
            InstanceState::Failed => "failed",
        }
    }
}

/// How the buyer reaches the product (queryInstance `appInfo`).
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppInfo {
    pub front_end_url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admin_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memo: Option<String>,
}

/// Never prints the account or the password: records are logged when something goes wrong.
impl std::fmt::Debug for AppInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppInfo")
            .field("front_end_url", &self.front_end_url)
            .field("admin_url", &self.admin_url)
            .field("user_name", &self.user_name.as_ref().map(|_| "<redacted>"))
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// One marketplace order applied to an instance: the history that makes renewals and upgrades
/// idempotent on `(orderId, orderLineId)` without a separate lock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppliedOrder {
    pub activity: String,
    pub order_id: String,
    pub order_line_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scene: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expire_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product_id: Option<String>,
    pub applied_at_ms: i64,
}

impl AppliedOrder {
    /// An order applied at `now_ms` with no scene, expiry or product of its own.
    pub fn new(activity: &str, order_id: &str, order_line_id: &str, now_ms: i64) -> AppliedOrder {
        AppliedOrder {
            activity: activity.to_string(),
            order_id: order_id.to_string(),
            order_line_id: order_line_id.to_string(),
            scene: None,
            expire_time: None,
            product_id: None,
            applied_at_ms: now_ms,
        }
    }
}

/// A merchant-side instance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Instance {
    pub instance_id: String,
    pub debug: bool,
    pub state: InstanceState,
    /// The purchase order that created the instance.
    pub order_id: String,
    pub order_line_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sku_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub charging_mode: Option<String>,
    /// Absolute expiry as last sent by the marketplace (14 or 17 digits, UTC) and in epoch ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expire_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expire_time_ms: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_info: Option<AppInfo>,
    /// The license string issued for an old-License (V1 `getLicense`) purchase.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub license: Option<String>,
    /// Why provisioning failed, for queryInstance's `000005` message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
    #[serde(default)]
    pub orders: Vec<AppliedOrder>,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
    /// Optimistic-concurrency version: every write is conditioned on the previous one.
    pub version: u64,
    /// The buyer's customer id, when the callback or Query Order said it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_id: Option<String>,
    /// What Query Order said about the order that created or last changed the instance.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_details: Option<OrderDetails>,
    /// The ids of the events recorded with the last changes of this record (at most
    /// [`crate::events::EVENT_ID_HISTORY`]): how the DynamoDB backend tells whether an event's
    /// change committed. Kept by the store; handlers carry it over unchanged.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub event_ids: Vec<String>,
}

impl Instance {
    pub fn partition(&self) -> Partition {
        Partition::from_debug_flag(self.debug)
    }

    /// Whether the order `(order_id, order_line_id)` was already applied to this instance.
    pub fn has_applied(&self, order_id: &str, order_line_id: &str) -> bool {
        self.orders
            .iter()
            .any(|o| o.order_id == order_id && o.order_line_id == order_line_id)
    }
}

/// A versioned JSON document: the storage form of entities that need no attribute of their own
/// in conditions (license codes, order notifications).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub version: u64,
    pub doc: String,
}

/// A License 2.0 code (授权码): the marketplace's, recorded when first seen (D21).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LicenseCode {
    pub license: String,
    pub debug: bool,
    pub state: InstanceState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expire_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expire_time_ms: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product_id: Option<String>,
    #[serde(default)]
    pub orders: Vec<AppliedOrder>,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
    /// The ids of the events recorded with the last changes of this record (at most
    /// [`crate::events::EVENT_ID_HISTORY`]): how the DynamoDB backend tells whether an event's
    /// change committed. Kept by the store; handlers carry it over unchanged.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub event_ids: Vec<String>,
}

impl LicenseCode {
    pub fn has_applied(&self, order_id: &str, order_line_id: &str) -> bool {
        self.orders
            .iter()
            .any(|o| o.order_id == order_id && o.order_line_id == order_line_id)
    }
}

/// An order notification (orderNotify), kept for enrichment by Query Order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderNotification {
    pub order_id: String,
    pub order_line_id: String,
    pub debug: bool,
    pub received_at_ms: i64,
    /// `done` once the order details were fetched with Query Order, `pending` otherwise.
    pub enrichment: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<OrderDetails>,
    /// The ids of the events recorded with the last changes of this record (at most
    /// [`crate::events::EVENT_ID_HISTORY`]): how the DynamoDB backend tells whether an event's
    /// change committed. Kept by the store; handlers carry it over unchanged.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub event_ids: Vec<String>,
}

/// An order line as Query Order describes it (docs/protocol.md, outbound §2), kept on the records it concerns.
/// The buyer's phone and e-mail are not kept.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderDetails {
    pub order_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_line_id: Option<String>,
    /// `NEW`, `TRIAL`, `TRIAL_TO_FORMAL`, `UNSUBSCRIBE`, `RENEW`, `CHANGE`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub create_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sku_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub linear_value: Option<String>,
    /// `ON_DEMAND`, `ONE_TIME`, `PERIOD`, `ON_DEMAND_PKG`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub charging_mode: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period_number: Option<String>,
    /// `yyyyMMddHHmmss`, UTC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expire_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_name: Option<String>,
    pub fetched_at_ms: i64,
}

// ---- usage metering (pay-per-use) ----------------------------------------------------------------

/// The identity of a usage record: one instance, one interval (docs/protocol.md, outbound §3.4: the marketplace
/// treats a second record with the same bounds as a duplicate, so this is also the merchant's key).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UsageKey {
    pub instance_id: String,
    /// UTC `yyyyMMdd'T'HHmmss'Z'`.
    pub begin_time: String,
    /// UTC `yyyyMMdd'T'HHmmss'Z'`.
    pub end_time: String,
}

/// What was metered: fixed once recorded and never changed, so that every push of it (first
/// send, retry after a timeout) carries identical bytes and the same `metering_sn`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageData {
    pub instance_id: String,
    pub begin_time: String,
    pub end_time: String,
    /// Normalised decimal text (> 0, at most 4 decimals).
    pub usage_value: String,
    pub metering_sn: String,
    /// When the record was produced, UTC `yyyyMMdd'T'HHmmss'Z'`.
    pub record_time: String,
    /// Needed by the old endpoint only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relate_pkg_instance: Option<String>,
    pub recorded_at_ms: i64,
    /// 0 for the first content of the interval; one more each time a failed record is
    /// corrected or re-queued, which gives it a new `metering_sn` (docs/usage.md).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub revision: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl UsageData {
    pub fn key(&self) -> UsageKey {
        UsageKey {
            instance_id: self.instance_id.clone(),
            begin_time: self.begin_time.clone(),
            end_time: self.end_time.clone(),
        }
    }
}

/// Where a usage record is in its push life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UsageStatus {
    /// Not yet accepted by the marketplace (never sent, or sent without a `MKT.0000` seen).
    Pending,
    /// The marketplace answered `MKT.0000` for a call that carried it. Final.
    Pushed,
    /// The marketplace refused it with a permanent code (kept in `failure`). Final: fix and alert.
    Failed,
}

impl UsageStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            UsageStatus::Pending => "pending",
            UsageStatus::Pushed => "pushed",
            UsageStatus::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "pending" => Some(UsageStatus::Pending),
            "pushed" => Some(UsageStatus::Pushed),
            "failed" => Some(UsageStatus::Failed),
            _ => None,
        }
    }
}

/// A usage record and its push state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageRecord {
    pub data: UsageData,
    pub status: UsageStatus,
    /// The permanent result code (and message) of a failed record.
    pub failure: Option<String>,
    /// How many times it was claimed for a push.
    pub attempts: u32,
    pub settled_at_ms: Option<i64>,
}

/// The outcome of recording usage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UsageInsert {
    /// Newly recorded, pending.
    Recorded,
    /// A record with the same key exists (returned as stored): the caller compares values.
    Exists(Box<UsageRecord>),
}

/// A request to claim pending usage for one push.
#[derive(Debug, Clone, Copy)]
pub struct UsageClaim<'a> {
    /// The pushing run (a claim is settled only by its owner).
    pub owner: &'a str,
    pub now_ms: i64,
    /// Until when the claimed records belong to this run; after that another run may take them.
    pub lease_until_ms: i64,
    /// Only records whose interval ended at or before this time (UTC `yyyyMMdd'T'HHmmss'Z'`).
    pub due_end_time: &'a str,
    /// At most this many records.
    pub limit: usize,
}

/// How a claimed push ended for a set of records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UsageSettlement {
    /// `MKT.0000`: final.
    Pushed { at_ms: i64 },
    /// A permanent refusal: final, with its code.
    Failed { code: String, at_ms: i64 },
    /// A transient failure: stays pending, not claimable before `not_before_ms`; the run gives
    /// its claim up (the record is then backing off, no longer leased).
    Retry { not_before_ms: i64 },
}

/// What is pending and why (see [`crate::Store::usage_backlog`]): the due pending records
/// (interval ended), split by why they are not pushed yet.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UsageBacklog {
    /// Every due pending record.
    pub due: u64,
    /// Held by a live claim of a run (which may have died: the lease then runs out).
    pub leased: u64,
    /// The latest end of those leases (epoch ms).
    pub leased_until_ms: Option<i64>,
    /// Backing off after a transient or configuration failure.
    pub backing_off: u64,
    /// The earliest moment one of those may be retried (epoch ms).
    pub retry_not_before_ms: Option<i64>,
    /// Claimable now and never sent.
    pub never_attempted: u64,
    /// Claimable now, sent before without a verdict (lease ran out or back-off over).
    pub retry_ready: u64,
    /// The end of the oldest due interval (UTC `yyyyMMdd'T'HHmmss'Z'`).
    pub oldest_due_end_time: Option<String>,
}

impl UsageBacklog {
    /// Counts one due pending record.
    pub fn add(
        &mut self,
        end_time: &str,
        owner: Option<&str>,
        lease_until_ms: i64,
        attempts: u32,
        now_ms: i64,
    ) {
        self.due += 1;
        if self
            .oldest_due_end_time
            .as_deref()
            .is_none_or(|o| end_time < o)
        {
            self.oldest_due_end_time = Some(end_time.to_string());
        }
        let held = owner.is_some_and(|o| !o.is_empty());
        if lease_until_ms >= now_ms && held {
            self.leased += 1;
            self.leased_until_ms = Some(
                self.leased_until_ms
                    .map_or(lease_until_ms, |t| t.max(lease_until_ms)),
            );
        } else if lease_until_ms >= now_ms {
            self.backing_off += 1;
            self.retry_not_before_ms = Some(
                self.retry_not_before_ms
                    .map_or(lease_until_ms, |t| t.min(lease_until_ms)),
            );
        } else if attempts == 0 {
            self.never_attempted += 1;
        } else {
            self.retry_ready += 1;
        }
    }
}
