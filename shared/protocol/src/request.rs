//! Typed, validated V2 basic requests (docs/protocol.md, inbound-basic §4 and §5).
//!
//! [`parse_basic`] runs pipeline steps 9–11 (JSON object, supported `activity`, mandatory
//! fields) on a body whose signature has already been verified, and yields one struct per
//! activity. Every failure is a [`RequestError`] whose message names the field; all of them
//! answer `000002` (D13).
//!
//! Leniency (D22): `testFlag` is `"1"` or `1`; integers may arrive as numbers or numeric
//! strings; `changeInstanceCheck.productInfo` may be an object or a string holding one; an
//! unknown `refreshInstance.scene` is kept. Unknown fields are ignored. Received values are kept
//! verbatim (not trimmed); "non-empty" means non-blank after trimming.

use std::fmt;

use thiserror::Error;

use crate::activity::Activity;
use crate::json::{self, Json};
use crate::result_code::ResultCode;
use crate::timestamp::{parse_expire_time, parse_license_time};

pub use crate::activity::peek_activity;

/// Largest accepted request body, in bytes (D13).
pub const MAX_BODY_BYTES: usize = 1 << 20;

/// Largest number of distinct IDs in one `queryInstance` (D8).
pub const MAX_QUERY_IDS: usize = 100;

/// Why a request body was rejected. Every variant answers `000002`.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RequestError {
    /// The body is larger than [`MAX_BODY_BYTES`].
    #[error("request body exceeds {MAX_BODY_BYTES} bytes")]
    BodyTooLarge,
    /// The body is not a JSON object; the text says what is wrong and where.
    #[error("malformed JSON: {0}")]
    Malformed(String),
    /// `activity` is absent, null or blank.
    #[error("missing mandatory field: activity")]
    MissingActivity,
    /// `activity` is not one of [`Activity::ALL`]; the message lists the supported ones.
    #[error("{}", unknown_activity_message(.0, &Activity::supported_list()))]
    UnknownActivity(String),
    /// `activity` is not served on this route (V1 GET, License 2.0, `orderNotify`); the message
    /// lists the activities that are.
    #[error("{}", unknown_activity_message(activity, supported))]
    UnsupportedActivity {
        /// The received value.
        activity: String,
        /// The activities of the route, joined by `", "`.
        supported: &'static str,
    },
    /// A mandatory field is absent, null or blank.
    #[error("missing mandatory field: {0}")]
    MissingField(&'static str),
    /// A field is present but unusable (wrong type, bad format, out of range).
    #[error("invalid field {field}: {reason}")]
    InvalidField {
        /// The field's name (a path such as `productInfo.linearValue` for nested fields).
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
}

impl RequestError {
    /// The result code to answer with: always `000002` (D13).
    pub fn result_code(&self) -> ResultCode {
        ResultCode::InvalidParam
    }

    pub(crate) fn invalid(field: &'static str, reason: impl Into<String>) -> RequestError {
        RequestError::InvalidField {
            field,
            reason: reason.into(),
        }
    }
}

impl From<RequestError> for crate::envelope::Answer {
    fn from(e: RequestError) -> Self {
        crate::envelope::Answer::error(e.result_code(), e.to_string())
    }
}

fn unknown_activity_message(name: &str, supported: &str) -> String {
    // Echo at most 40 bytes of the unknown name (whole characters) so the list of supported
    // activities fits in the 255-character resultMsg whatever the script of the name.
    const ECHO_BYTES: usize = 40;
    let mut shown = String::new();
    for c in name.chars() {
        if shown.len() + c.len_utf8() > ECHO_BYTES {
            shown.push_str("...");
            break;
        }
        shown.push(c);
    }
    format!("unsupported activity \"{shown}\"; supported activities: {supported}")
}

/// A parsed V2 basic request, one variant per [`Activity`].
// The fat `newInstance` makes one variant ~0.5 KiB; one value per request, so boxing it would
// only cost an allocation and an API indirection.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BasicRequest {
    /// `newInstance` (thin or fat body).
    NewInstance(NewInstance),
    /// `queryInstance`.
    QueryInstance(QueryInstance),
    /// `refreshInstance`.
    RefreshInstance(RefreshInstance),
    /// `updateInstanceStatus`.
    UpdateInstanceStatus(UpdateInstanceStatus),
    /// `releaseInstance`.
    ReleaseInstance(ReleaseInstance),
    /// `upgradeInstance`.
    UpgradeInstance(UpgradeInstance),
    /// `changeInstanceCheck`.
    ChangeInstanceCheck(ChangeInstanceCheck),
    /// `getLicenseAsync`.
    GetLicenseAsync(GetLicenseAsync),
}

impl BasicRequest {
    /// The activity of this request.
    pub fn activity(&self) -> Activity {
        match self {
            BasicRequest::NewInstance(_) => Activity::NewInstance,
            BasicRequest::QueryInstance(_) => Activity::QueryInstance,
            BasicRequest::RefreshInstance(_) => Activity::RefreshInstance,
            BasicRequest::UpdateInstanceStatus(_) => Activity::UpdateInstanceStatus,
            BasicRequest::ReleaseInstance(_) => Activity::ReleaseInstance,
            BasicRequest::UpgradeInstance(_) => Activity::UpgradeInstance,
            BasicRequest::ChangeInstanceCheck(_) => Activity::ChangeInstanceCheck,
            BasicRequest::GetLicenseAsync(_) => Activity::GetLicenseAsync,
        }
    }

    /// `true` for debug traffic (`testFlag` `"1"` or `1`, D6).
    pub fn is_debug(&self) -> bool {
        match self {
            BasicRequest::NewInstance(r) => r.test_flag,
            BasicRequest::QueryInstance(r) => r.test_flag,
            BasicRequest::RefreshInstance(r) => r.test_flag,
            BasicRequest::UpdateInstanceStatus(r) => r.test_flag,
            BasicRequest::ReleaseInstance(r) => r.test_flag,
            BasicRequest::UpgradeInstance(r) => r.test_flag,
            BasicRequest::ChangeInstanceCheck(r) => r.test_flag,
            BasicRequest::GetLicenseAsync(r) => r.test_flag,
        }
    }

    /// The single target `instanceId`, for activities that have one (not `newInstance`, not
    /// `queryInstance`). Handy for log lines.
    pub fn instance_id(&self) -> Option<&str> {
        match self {
            BasicRequest::NewInstance(_) | BasicRequest::QueryInstance(_) => None,
            BasicRequest::RefreshInstance(r) => Some(&r.instance_id),
            BasicRequest::UpdateInstanceStatus(r) => Some(&r.instance_id),
            BasicRequest::ReleaseInstance(r) => Some(&r.instance_id),
            BasicRequest::UpgradeInstance(r) => Some(&r.instance_id),
            BasicRequest::ChangeInstanceCheck(r) => Some(&r.instance_id),
            BasicRequest::GetLicenseAsync(r) => Some(&r.instance_id),
        }
    }
}

/// `newInstance` (§4.1). Thin body: order identifiers only; fat body (launch version): the
/// order details inline, in [`NewInstance::fat`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewInstance {
    /// `orderId` (fat body: `orderInfo[0].orderId`).
    pub order_id: String,
    /// `orderLineId`; `""` for the fat body, which has none.
    pub order_line_id: String,
    /// `businessId`: the `instanceId` to use on the first call (D7). `None` when absent or blank;
    /// the caller then generates a UUID.
    pub business_id: Option<String>,
    /// Debug traffic (D6).
    pub test_flag: bool,
    /// The inline order details of the fat body; `None` for the thin body.
    pub fat: Option<FatOrder>,
}

impl NewInstance {
    /// `productId` of the fat body's first product, if any (pay-per-use idempotency key, D7).
    pub fn product_id(&self) -> Option<&str> {
        self.fat.as_ref()?.product_id.as_deref()
    }

    /// `chargingMode` of the fat body (`PERIOD`, `ONE_TIME`, `ON_DEMAND`, ...), if any.
    pub fn charging_mode(&self) -> Option<&str> {
        self.fat.as_ref()?.charging_mode.as_deref()
    }
}

/// The inline details of a fat `newInstance` body: `buyerInfo` and the first `orderInfo`
/// element. Informational fields are read leniently (wrong types become `None`) so a paid order
/// is never refused over a detail; `orderInfo[0].orderId` is the only mandatory one.
///
/// `Debug` redacts `mobile_phone` and `email`: they must never reach a log line.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct FatOrder {
    /// `buyerInfo.customerId`: the buyer's Huawei Cloud account ID.
    pub customer_id: Option<String>,
    /// `buyerInfo.customerName`.
    pub customer_name: Option<String>,
    /// `buyerInfo.userId` (IAM user).
    pub user_id: Option<String>,
    /// `buyerInfo.userName`.
    pub user_name: Option<String>,
    /// `buyerInfo.mobilePhone` (personal data; redacted in `Debug`).
    pub mobile_phone: Option<String>,
    /// `buyerInfo.email` (personal data; redacted in `Debug`).
    pub email: Option<String>,
    /// `orderInfo[0].businessId`.
    pub business_id: Option<String>,
    /// `orderInfo[0].orderId`.
    pub order_id: String,
    /// `orderInfo[0].trialFlag` is `"1"` / `1`.
    pub trial_flag: bool,
    /// `orderInfo[0].orderAmount`, the number's literal text (e.g. `"12.78"`).
    pub order_amount: Option<String>,
    /// `orderInfo[0].chargingMode`, e.g. `PERIOD`.
    pub charging_mode: Option<String>,
    /// `orderInfo[0].periodType`: `month` / `year`.
    pub period_type: Option<String>,
    /// `orderInfo[0].periodNumber` (number or numeric string).
    pub period_number: Option<i64>,
    /// `orderInfo[0].provisionType`.
    pub provision_type: Option<i64>,
    /// `orderInfo[0].productInfo[0].skuCode`.
    pub sku_code: Option<String>,
    /// `orderInfo[0].productInfo[0].productId`.
    pub product_id: Option<String>,
    /// `orderInfo[0].productInfo[0].linearValue`.
    pub linear_value: Option<i64>,
    /// `orderInfo[0].createTime` as received (`yyyyMMddHHmmss`).
    pub create_time: Option<String>,
    /// `orderInfo[0].expireTime` as received (`yyyyMMddHHmmss`).
    pub expire_time: Option<String>,
    /// `orderInfo[0].extendParams` as `(name, value)` pairs in received order.
    pub extend_params: Vec<(String, String)>,
}

/// Prints `<redacted>` for a present value and `None` for an absent one.
pub(crate) struct Redacted(pub(crate) bool);

impl fmt::Debug for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0 { "<redacted>" } else { "None" })
    }
}

impl fmt::Debug for FatOrder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FatOrder")
            .field("customer_id", &self.customer_id)
            .field("customer_name", &self.customer_name)
            .field("user_id", &self.user_id)
            .field("user_name", &self.user_name)
            .field("mobile_phone", &Redacted(self.mobile_phone.is_some()))
            .field("email", &Redacted(self.email.is_some()))
            .field("business_id", &self.business_id)
            .field("order_id", &self.order_id)
            .field("trial_flag", &self.trial_flag)
            .field("order_amount", &self.order_amount)
            .field("charging_mode", &self.charging_mode)
            .field("period_type", &self.period_type)
            .field("period_number", &self.period_number)
            .field("provision_type", &self.provision_type)
            .field("sku_code", &self.sku_code)
            .field("product_id", &self.product_id)
            .field("linear_value", &self.linear_value)
            .field("create_time", &self.create_time)
            .field("expire_time", &self.expire_time)
            .field("extend_params", &self.extend_params)
            .finish()
    }
}

/// `queryInstance` (§4.2, D8).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryInstance {
    /// The requested IDs: split on `,`, trimmed, empties and duplicates dropped, first
    /// occurrence order kept; 1 to 100 entries.
    pub instance_ids: Vec<String>,
    /// Debug traffic (D6).
    pub test_flag: bool,
}

/// `refreshInstance` (§4.3, D11).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshInstance {
    /// `instanceId`.
    pub instance_id: String,
    /// `orderId` of the renewal / conversion / refund order.
    pub order_id: String,
    /// `orderLineId`.
    pub order_line_id: String,
    /// `scene`.
    pub scene: Scene,
    /// `productId`, when the period type changed or a trial became paid.
    pub product_id: Option<String>,
    /// `expireTime` as received (14 or 17 digits, UTC).
    pub expire_time: String,
    /// `expireTime` as epoch milliseconds.
    pub expire_time_ms: i64,
    /// Debug traffic (D6).
    pub test_flag: bool,
}

/// Why `refreshInstance` was sent. Unknown values are kept (D22): the absolute expiry is what
/// matters.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Scene {
    /// `TRIAL_TO_FORMAL`: a trial was converted to a paid order.
    TrialToFormal,
    /// `RENEWAL`.
    Renewal,
    /// `UNSUBSCRIBE_RENEWAL_PERIOD`: a renewal period that had not started was refunded.
    UnsubscribeRenewalPeriod,
    /// `RENEWAL_CHANGE`: renewal with a spec change (2025).
    RenewalChange,
    /// Any other value, as received (e.g. `CANCEL_RENEW`).
    Other(String),
}

impl Scene {
    /// Maps a wire value; unknown values become [`Scene::Other`].
    pub fn parse(s: &str) -> Scene {
        match s {
            "TRIAL_TO_FORMAL" => Scene::TrialToFormal,
            "RENEWAL" => Scene::Renewal,
            "UNSUBSCRIBE_RENEWAL_PERIOD" => Scene::UnsubscribeRenewalPeriod,
            "RENEWAL_CHANGE" => Scene::RenewalChange,
            other => Scene::Other(other.to_owned()),
        }
    }

    /// The wire value (the received text for [`Scene::Other`]).
    pub fn as_str(&self) -> &str {
        match self {
            Scene::TrialToFormal => "TRIAL_TO_FORMAL",
            Scene::Renewal => "RENEWAL",
            Scene::UnsubscribeRenewalPeriod => "UNSUBSCRIBE_RENEWAL_PERIOD",
            Scene::RenewalChange => "RENEWAL_CHANGE",
            Scene::Other(s) => s,
        }
    }
}

impl fmt::Display for Scene {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `updateInstanceStatus` (§4.4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpdateInstanceStatus {
    /// `instanceId`.
    pub instance_id: String,
    /// `status`.
    pub status: InstanceStatusChange,
    /// Debug traffic (D6).
    pub test_flag: bool,
}

/// The `status` of `updateInstanceStatus`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InstanceStatusChange {
    /// `FREEZE`: expiry or violation; block use, keep data ≥ 15 days.
    Freeze,
    /// `UNFREEZE`: renewal or violation lifted; restore use.
    Unfreeze,
}

impl InstanceStatusChange {
    /// Parses `FREEZE` / `UNFREEZE` (exact, upper case).
    pub fn parse(s: &str) -> Option<InstanceStatusChange> {
        match s {
            "FREEZE" => Some(InstanceStatusChange::Freeze),
            "UNFREEZE" => Some(InstanceStatusChange::Unfreeze),
            _ => None,
        }
    }

    /// The wire value.
    pub fn as_str(&self) -> &'static str {
        match self {
            InstanceStatusChange::Freeze => "FREEZE",
            InstanceStatusChange::Unfreeze => "UNFREEZE",
        }
    }
}

impl fmt::Display for InstanceStatusChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `releaseInstance` (§4.5, D10).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleaseInstance {
    /// `instanceId`.
    pub instance_id: String,
    /// `orderId` of the unsubscription, when the release comes from one.
    pub order_id: Option<String>,
    /// `orderLineId` of the unsubscription.
    pub order_line_id: Option<String>,
    /// Debug traffic (D6).
    pub test_flag: bool,
}

/// `upgradeInstance` (§4.6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpgradeInstance {
    /// `instanceId` (unchanged by the upgrade).
    pub instance_id: String,
    /// `orderId` of the upgrade order.
    pub order_id: String,
    /// `orderLineId`.
    pub order_line_id: String,
    /// Debug traffic (D6).
    pub test_flag: bool,
}

/// `changeInstanceCheck` (§4.7, D12).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeInstanceCheck {
    /// `instanceId`.
    pub instance_id: String,
    /// `productInfo`: the target spec.
    pub product: TargetProduct,
    /// Debug traffic (D6).
    pub test_flag: bool,
}

/// The target spec of `changeInstanceCheck`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetProduct {
    /// `productInfo.productId` (differs per period type of one SKU).
    pub product_id: String,
    /// `productInfo.skuCode` (stable across period types).
    pub sku_code: String,
    /// `productInfo.productName`.
    pub product_name: String,
    /// `productInfo.linearValue`: the chosen quantity, e.g. number of users.
    pub linear_value: Option<i64>,
}

/// `getLicenseAsync` (§5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GetLicenseAsync {
    /// `instanceId`.
    pub instance_id: String,
    /// `eventId`: the marketplace's serial number of this application.
    pub event_id: String,
    /// `effectiveTime` as received.
    pub effective_time: String,
    /// `effectiveTime` as epoch milliseconds (UTC).
    pub effective_time_ms: i64,
    /// `expireTime` as received (mandatory for periodic licenses; the handler checks, `000902`).
    pub expire_time: Option<String>,
    /// `expireTime` as epoch milliseconds.
    pub expire_time_ms: Option<i64>,
    /// `deviceFingerprint`, for machine-bound licenses.
    pub device_fingerprint: Option<String>,
    /// Debug traffic (D6).
    pub test_flag: bool,
}

/// Parses and validates a verified V2 basic request body.
///
/// Order of checks: size (≤ [`MAX_BODY_BYTES`]), JSON object, `activity` present and supported,
/// then the activity's fields. For a repeated top-level member the last occurrence wins.
pub fn parse_basic(body: &[u8]) -> Result<BasicRequest, RequestError> {
    let root = json_object(body)?;
    let name = activity_of(&root)?;
    let activity =
        Activity::parse(name).ok_or_else(|| RequestError::UnknownActivity(name.clone()))?;
    let r = &root;
    Ok(match activity {
        Activity::NewInstance => BasicRequest::NewInstance(new_instance(r)?),
        Activity::QueryInstance => BasicRequest::QueryInstance(query_instance(r)?),
        Activity::RefreshInstance => BasicRequest::RefreshInstance(refresh_instance(r)?),
        Activity::UpdateInstanceStatus => {
            BasicRequest::UpdateInstanceStatus(update_instance_status(r)?)
        }
        Activity::ReleaseInstance => BasicRequest::ReleaseInstance(release_instance(r)?),
        Activity::UpgradeInstance => BasicRequest::UpgradeInstance(upgrade_instance(r)?),
        Activity::ChangeInstanceCheck => {
            BasicRequest::ChangeInstanceCheck(change_instance_check(r)?)
        }
        Activity::GetLicenseAsync => BasicRequest::GetLicenseAsync(get_license_async(r)?),
    })
}

// ---------------------------------------------------------------------------------------------
// Field helpers (some shared with the License 2.0, `orderNotify` and V1 parsers)

/// Steps 9 and the size check: the body, at most [`MAX_BODY_BYTES`], parsed as a JSON object.
pub(crate) fn json_object(body: &[u8]) -> Result<Json, RequestError> {
    if body.len() > MAX_BODY_BYTES {
        return Err(RequestError::BodyTooLarge);
    }
    let root = json::parse(body).map_err(|e| RequestError::Malformed(e.to_string()))?;
    if !matches!(root, Json::Object(_)) {
        return Err(RequestError::Malformed(format!(
            "the body must be a JSON object, got {}",
            root.type_name()
        )));
    }
    Ok(root)
}

/// The top-level `activity` string; absent, null or blank is [`RequestError::MissingActivity`].
pub(crate) fn activity_of(root: &Json) -> Result<&String, RequestError> {
    match root.get("activity") {
        None | Some(Json::Null) => Err(RequestError::MissingActivity),
        Some(Json::String(s)) if s.trim().is_empty() => Err(RequestError::MissingActivity),
        Some(Json::String(s)) => Ok(s),
        Some(other) => Err(RequestError::invalid(
            "activity",
            format!("must be a string, got {}", other.type_name()),
        )),
    }
}

/// A mandatory string member `key` of `obj`, reported as `field` in errors.
fn required_at(obj: &Json, key: &str, field: &'static str) -> Result<String, RequestError> {
    match obj.get(key) {
        None | Some(Json::Null) => Err(RequestError::MissingField(field)),
        Some(Json::String(s)) if s.trim().is_empty() => Err(RequestError::MissingField(field)),
        Some(Json::String(s)) => Ok(s.clone()),
        Some(other) => Err(RequestError::invalid(
            field,
            format!("must be a string, got {}", other.type_name()),
        )),
    }
}

/// A mandatory absolute `expireTime` (D11): the text as sent and its epoch milliseconds.
pub(crate) fn expire_time(text: String) -> Result<(String, i64), RequestError> {
    let ms =
        parse_expire_time(&text).map_err(|e| RequestError::invalid("expireTime", e.to_string()))?;
    Ok((text, ms))
}

/// A mandatory `status` of FREEZE or UNFREEZE.
pub(crate) fn required_status(obj: &Json) -> Result<InstanceStatusChange, RequestError> {
    InstanceStatusChange::parse(&required(obj, "status")?)
        .ok_or_else(|| RequestError::invalid("status", "must be FREEZE or UNFREEZE"))
}

pub(crate) fn required(obj: &Json, field: &'static str) -> Result<String, RequestError> {
    required_at(obj, field, field)
}

/// An optional string member: absent, null or blank is `None`; another type is an error.
pub(crate) fn optional(obj: &Json, field: &'static str) -> Result<Option<String>, RequestError> {
    match obj.get(field) {
        None | Some(Json::Null) => Ok(None),
        Some(Json::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Json::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(RequestError::invalid(
            field,
            format!("must be a string, got {}", other.type_name()),
        )),
    }
}

/// `"1"` or `1` (D6, D22); anything else, absence included, is `false`.
fn flag(value: Option<&Json>) -> bool {
    match value {
        Some(Json::String(s)) => s == "1",
        Some(Json::Number(n)) => n == "1",
        _ => false,
    }
}

pub(crate) fn test_flag(obj: &Json) -> bool {
    flag(obj.get("testFlag"))
}

/// An integer given as a JSON integer or a numeric string (D22).
fn integer(value: &Json) -> Option<i64> {
    match value {
        Json::Number(n) => n.parse().ok(),
        Json::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// An optional integer member; present but not an integer is an error.
fn optional_integer_at(
    obj: &Json,
    key: &str,
    field: &'static str,
) -> Result<Option<i64>, RequestError> {
    match obj.get(key) {
        None | Some(Json::Null) => Ok(None),
        Some(Json::String(s)) if s.trim().is_empty() => Ok(None),
        Some(v) => integer(v)
            .map(Some)
            .ok_or_else(|| RequestError::invalid(field, "must be an integer")),
    }
}

/// Lenient text of an informational value: strings as is (blank → `None`), numbers as their
/// literal, booleans as words; anything else `None`.
pub(crate) fn text(value: Option<&Json>) -> Option<String> {
    match value? {
        Json::String(s) if s.trim().is_empty() => None,
        Json::String(s) => Some(s.clone()),
        Json::Number(n) => Some(n.clone()),
        Json::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

// ---------------------------------------------------------------------------------------------
// Activities

fn new_instance(obj: &Json) -> Result<NewInstance, RequestError> {
    let test_flag = test_flag(obj);
    let order_info = match obj.get("orderInfo") {
        None | Some(Json::Null) => {
            return Ok(NewInstance {
                order_id: required(obj, "orderId")?,
                order_line_id: required(obj, "orderLineId")?,
                business_id: optional(obj, "businessId")?,
                test_flag,
                fat: None,
            })
        }
        Some(v) => v,
    };
    let Json::Array(orders) = order_info else {
        return Err(RequestError::invalid(
            "orderInfo",
            format!("must be an array of orders, got {}", order_info.type_name()),
        ));
    };
    let first = match orders.first() {
        Some(o @ Json::Object(_)) => o,
        Some(other) => {
            return Err(RequestError::invalid(
                "orderInfo",
                format!("elements must be objects, got {}", other.type_name()),
            ))
        }
        None => return Err(RequestError::invalid("orderInfo", "must contain an order")),
    };
    let order_id = required_at(first, "orderId", "orderInfo[0].orderId")?;
    let buyer = obj.get("buyerInfo").unwrap_or(&Json::Null);
    let product = match first.get("productInfo") {
        Some(Json::Array(items)) => items.first().unwrap_or(&Json::Null),
        Some(o @ Json::Object(_)) => o,
        _ => &Json::Null,
    };
    let extend_params = match first.get("extendParams") {
        Some(Json::Array(items)) => items
            .iter()
            .filter_map(|p| {
                let name = text(p.get("name"))?;
                Some((name, text(p.get("value")).unwrap_or_default()))
            })
            .collect(),
        _ => Vec::new(),
    };
    let fat = FatOrder {
        customer_id: text(buyer.get("customerId")),
        customer_name: text(buyer.get("customerName")),
        user_id: text(buyer.get("userId")),
        user_name: text(buyer.get("userName")),
        mobile_phone: text(buyer.get("mobilePhone")),
        email: text(buyer.get("email")),
        business_id: text(first.get("businessId")),
        order_id: order_id.clone(),
        trial_flag: flag(first.get("trialFlag")),
        order_amount: text(first.get("orderAmount")),
        charging_mode: text(first.get("chargingMode")),
        period_type: text(first.get("periodType")),
        period_number: first.get("periodNumber").and_then(integer),
        provision_type: first.get("provisionType").and_then(integer),
        sku_code: text(product.get("skuCode")),
        product_id: text(product.get("productId")),
        linear_value: product.get("linearValue").and_then(integer),
        create_time: text(first.get("createTime")),
        expire_time: text(first.get("expireTime")),
        extend_params,
    };
    Ok(NewInstance {
        order_id,
        order_line_id: text(obj.get("orderLineId")).unwrap_or_default(),
        business_id: fat
            .business_id
            .clone()
            .or_else(|| text(obj.get("businessId"))),
        test_flag,
        fat: Some(fat),
    })
}

fn query_instance(obj: &Json) -> Result<QueryInstance, RequestError> {
    Ok(QueryInstance {
        instance_ids: split_instance_ids(&required(obj, "instanceId")?)?,
        test_flag: test_flag(obj),
    })
}

/// The `instanceId` list of `queryInstance` (D8, V2 and V1): split on `,`, trimmed, empties and
/// duplicates dropped, first-occurrence order kept; 1 to [`MAX_QUERY_IDS`] entries.
pub(crate) fn split_instance_ids(raw: &str) -> Result<Vec<String>, RequestError> {
    let mut instance_ids: Vec<String> = Vec::new();
    for id in raw.split(',').map(str::trim).filter(|id| !id.is_empty()) {
        if instance_ids.iter().any(|known| known == id) {
            continue;
        }
        if instance_ids.len() == MAX_QUERY_IDS {
            return Err(RequestError::invalid(
                "instanceId",
                format!("more than {MAX_QUERY_IDS} IDs"),
            ));
        }
        instance_ids.push(id.to_owned());
    }
    if instance_ids.is_empty() {
        return Err(RequestError::MissingField("instanceId"));
    }
    Ok(instance_ids)
}

fn refresh_instance(obj: &Json) -> Result<RefreshInstance, RequestError> {
    let instance_id = required(obj, "instanceId")?;
    let order_id = required(obj, "orderId")?;
    let order_line_id = required(obj, "orderLineId")?;
    let scene = Scene::parse(&required(obj, "scene")?);
    let product_id = optional(obj, "productId")?;
    let (expire_time, expire_time_ms) = expire_time(required(obj, "expireTime")?)?;
    Ok(RefreshInstance {
        instance_id,
        order_id,
        order_line_id,
        scene,
        product_id,
        expire_time,
        expire_time_ms,
        test_flag: test_flag(obj),
    })
}

fn update_instance_status(obj: &Json) -> Result<UpdateInstanceStatus, RequestError> {
    let instance_id = required(obj, "instanceId")?;
    let status = required_status(obj)?;
    Ok(UpdateInstanceStatus {
        instance_id,
        status,
        test_flag: test_flag(obj),
    })
}

fn release_instance(obj: &Json) -> Result<ReleaseInstance, RequestError> {
    Ok(ReleaseInstance {
        instance_id: required(obj, "instanceId")?,
        order_id: optional(obj, "orderId")?,
        order_line_id: optional(obj, "orderLineId")?,
        test_flag: test_flag(obj),
    })
}

fn upgrade_instance(obj: &Json) -> Result<UpgradeInstance, RequestError> {
    Ok(UpgradeInstance {
        instance_id: required(obj, "instanceId")?,
        order_id: required(obj, "orderId")?,
        order_line_id: required(obj, "orderLineId")?,
        test_flag: test_flag(obj),
    })
}

fn change_instance_check(obj: &Json) -> Result<ChangeInstanceCheck, RequestError> {
    let instance_id = required(obj, "instanceId")?;
    let from_string;
    let product = match obj.get("productInfo") {
        None | Some(Json::Null) => return Err(RequestError::MissingField("productInfo")),
        Some(p @ Json::Object(_)) => p,
        Some(Json::String(s)) if s.trim().is_empty() => {
            return Err(RequestError::MissingField("productInfo"))
        }
        Some(Json::String(s)) => {
            // D22: a JSON string holding the object.
            from_string = json::parse(s.as_bytes()).map_err(|e| {
                RequestError::invalid("productInfo", format!("string is not valid JSON: {e}"))
            })?;
            if !matches!(from_string, Json::Object(_)) {
                return Err(RequestError::invalid(
                    "productInfo",
                    format!(
                        "string must hold a JSON object, got {}",
                        from_string.type_name()
                    ),
                ));
            }
            &from_string
        }
        Some(other) => {
            return Err(RequestError::invalid(
                "productInfo",
                format!(
                    "must be an object or a string holding one, got {}",
                    other.type_name()
                ),
            ))
        }
    };
    let target = TargetProduct {
        product_id: required_at(product, "productId", "productInfo.productId")?,
        sku_code: required_at(product, "skuCode", "productInfo.skuCode")?,
        product_name: required_at(product, "productName", "productInfo.productName")?,
        linear_value: optional_integer_at(product, "linearValue", "productInfo.linearValue")?,
    };
    Ok(ChangeInstanceCheck {
        instance_id,
        product: target,
        test_flag: test_flag(obj),
    })
}

/// `yyyy-MM-dd HH:mm:ss[ ][zZ]`, or as a fallback the compact 14/17-digit form.
fn license_time(field: &'static str, value: &str) -> Result<i64, RequestError> {
    parse_license_time(value)
        .or_else(|e| parse_expire_time(value).map_err(|_| e))
        .map_err(|e| RequestError::invalid(field, e.to_string()))
}

fn get_license_async(obj: &Json) -> Result<GetLicenseAsync, RequestError> {
    let instance_id = required(obj, "instanceId")?;
    let event_id = required(obj, "eventId")?;
    let effective_time = required(obj, "effectiveTime")?;
    let effective_time_ms = license_time("effectiveTime", &effective_time)?;
    let expire_time = optional(obj, "expireTime")?;
    let expire_time_ms = match &expire_time {
        Some(t) => Some(license_time("expireTime", t)?),
        None => None,
    };
    Ok(GetLicenseAsync {
        instance_id,
        event_id,
        effective_time,
        effective_time_ms,
        expire_time,
        expire_time_ms,
        device_fingerprint: optional(obj, "deviceFingerprint")?,
        test_flag: test_flag(obj),
    })
}
