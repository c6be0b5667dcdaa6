//! Entity records, stored as one JSON document per item in both backends (plus the few attributes
//! that conditions need: `version`, `state`).

use serde::{Deserialize, Serialize};

use crate::Partition;

/// The instance states of inbound-basic.md §3. `Released` is final.
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
    /// `pending` until the order details have been fetched with Query Order (not built yet).
    pub enrichment: String,
}
