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

use crate::activity::Activity;
use crate::json::{self, Json};
use crate::timestamp::{parse_expire_time, parse_license_time};

use super::fields::{name_value_pairs, Fields};
use super::{
    activity_of, expire_time, json_object, required_status, split_instance_ids,
    InstanceStatusChange, Redacted, RequestError, Scene,
};

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

/// `releaseInstance` (§4.5, D10).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleaseInstance {
    /// `instanceId`.
    pub instance_id: String,
    /// `orderId` of the unsubscription, when the release comes from one.
    pub order_id: Option<String>,
    /// `orderLineId` of the unsubscription.
    pub order_line_id: Option<String>,
    /// `scene`, as received, when it is a JSON string (blank included); otherwise `None`. Not
    /// validated: it is only recorded with the release, so an odd value is no reason to refuse.
    pub scene: Option<String>,
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
    /// The members of [`UPGRADE_SIZE_MEMBERS`] the body carried, as their JSON values (a number
    /// stays a number, a string a string, `null` is kept), for the `instance.upgraded` event.
    /// Not validated: the new size is the order's business, and the event records what came. A
    /// number `serde_json` cannot represent (e.g. `1e400`), at any depth, leaves its member out.
    pub sizes: serde_json::Map<String, serde_json::Value>,
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
/// Order of checks: size (≤ [`MAX_BODY_BYTES`](super::MAX_BODY_BYTES)), JSON object, `activity`
/// present and supported, then the activity's fields. For a repeated top-level member the last
/// occurrence wins.
pub fn parse_basic(body: &[u8]) -> Result<BasicRequest, RequestError> {
    parse_basic_refusing(body).map_err(|refusal| refusal.error)
}

/// Why a basic body was refused, and the activity it named when that much was readable: the
/// refusal's log line and metric name the activity without the body being parsed again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BasicRefusal {
    /// The body's `activity`, when the body is an object naming a supported one.
    pub activity: Option<Activity>,
    /// What is wrong with the body.
    pub error: RequestError,
}

/// [`parse_basic`], with the activity of a refused body ([`BasicRefusal`]).
pub fn parse_basic_refusing(body: &[u8]) -> Result<BasicRequest, BasicRefusal> {
    let unnamed = |error| BasicRefusal {
        activity: None,
        error,
    };
    let root = json_object(body).map_err(unnamed)?;
    let name = activity_of(&root).map_err(unnamed)?;
    let activity =
        Activity::parse(&name).ok_or_else(|| unnamed(RequestError::UnknownActivity(name)))?;
    let r = &root;
    let parsed = match activity {
        Activity::NewInstance => new_instance(r).map(BasicRequest::NewInstance),
        Activity::QueryInstance => query_instance(r).map(BasicRequest::QueryInstance),
        Activity::RefreshInstance => refresh_instance(r).map(BasicRequest::RefreshInstance),
        Activity::UpdateInstanceStatus => {
            update_instance_status(r).map(BasicRequest::UpdateInstanceStatus)
        }
        Activity::ReleaseInstance => release_instance(r).map(BasicRequest::ReleaseInstance),
        Activity::UpgradeInstance => upgrade_instance(r).map(BasicRequest::UpgradeInstance),
        Activity::ChangeInstanceCheck => {
            change_instance_check(r).map(BasicRequest::ChangeInstanceCheck)
        }
        Activity::GetLicenseAsync => get_license_async(r).map(BasicRequest::GetLicenseAsync),
    };
    parsed.map_err(|error| BasicRefusal {
        activity: Some(activity),
        error,
    })
}

// ---------------------------------------------------------------------------------------------
// Activities

fn new_instance(obj: &Json) -> Result<NewInstance, RequestError> {
    let test_flag = obj.test_flag();
    let order_info = match obj.get("orderInfo") {
        None | Some(Json::Null) => {
            return Ok(NewInstance {
                order_id: obj.required("orderId")?,
                order_line_id: obj.required("orderLineId")?,
                business_id: obj.optional("businessId")?,
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
    let order_id = first
        .field_at("orderId", "orderInfo[0].orderId")
        .required()?;
    let buyer = obj.get("buyerInfo").unwrap_or(&Json::Null);
    let product = match first.get("productInfo") {
        Some(Json::Array(items)) => items.first().unwrap_or(&Json::Null),
        Some(o @ Json::Object(_)) => o,
        _ => &Json::Null,
    };
    let extend_params = match first.get("extendParams") {
        Some(Json::Array(items)) => name_value_pairs(items),
        _ => Vec::new(),
    };
    let fat = FatOrder {
        customer_id: buyer.text("customerId"),
        customer_name: buyer.text("customerName"),
        user_id: buyer.text("userId"),
        user_name: buyer.text("userName"),
        mobile_phone: buyer.text("mobilePhone"),
        email: buyer.text("email"),
        business_id: first.text("businessId"),
        order_id: order_id.clone(),
        trial_flag: first.flag("trialFlag"),
        order_amount: first.text("orderAmount"),
        charging_mode: first.text("chargingMode"),
        period_type: first.text("periodType"),
        period_number: first.integer("periodNumber"),
        provision_type: first.integer("provisionType"),
        sku_code: product.text("skuCode"),
        product_id: product.text("productId"),
        linear_value: product.integer("linearValue"),
        create_time: first.text("createTime"),
        expire_time: first.text("expireTime"),
        extend_params,
    };
    Ok(NewInstance {
        order_id,
        order_line_id: obj.text("orderLineId").unwrap_or_default(),
        business_id: fat.business_id.clone().or_else(|| obj.text("businessId")),
        test_flag,
        fat: Some(fat),
    })
}

fn query_instance(obj: &Json) -> Result<QueryInstance, RequestError> {
    Ok(QueryInstance {
        instance_ids: split_instance_ids(&obj.required("instanceId")?)?,
        test_flag: obj.test_flag(),
    })
}

fn refresh_instance(obj: &Json) -> Result<RefreshInstance, RequestError> {
    let instance_id = obj.required("instanceId")?;
    let order_id = obj.required("orderId")?;
    let order_line_id = obj.required("orderLineId")?;
    let scene = Scene::parse(&obj.required("scene")?);
    let product_id = obj.optional("productId")?;
    let (expire_time, expire_time_ms) = expire_time(obj.required("expireTime")?)?;
    Ok(RefreshInstance {
        instance_id,
        order_id,
        order_line_id,
        scene,
        product_id,
        expire_time,
        expire_time_ms,
        test_flag: obj.test_flag(),
    })
}

fn update_instance_status(obj: &Json) -> Result<UpdateInstanceStatus, RequestError> {
    let instance_id = obj.required("instanceId")?;
    let status = required_status(obj)?;
    Ok(UpdateInstanceStatus {
        instance_id,
        status,
        test_flag: obj.test_flag(),
    })
}

fn release_instance(obj: &Json) -> Result<ReleaseInstance, RequestError> {
    Ok(ReleaseInstance {
        instance_id: obj.required("instanceId")?,
        order_id: obj.optional("orderId")?,
        order_line_id: obj.optional("orderLineId")?,
        scene: obj.field("scene").string_if_any(),
        test_flag: obj.test_flag(),
    })
}

fn upgrade_instance(obj: &Json) -> Result<UpgradeInstance, RequestError> {
    Ok(UpgradeInstance {
        instance_id: obj.required("instanceId")?,
        order_id: obj.required("orderId")?,
        order_line_id: obj.required("orderLineId")?,
        sizes: upgrade_sizes(obj),
        test_flag: obj.test_flag(),
    })
}

/// The amount and size members of an `upgradeInstance` body, the ones [`UpgradeInstance::sizes`]
/// keeps, in this order.
pub const UPGRADE_SIZE_MEMBERS: [&str; 5] = [
    "amount",
    "diskSize",
    "bandWidth",
    "linearValue",
    "periodNumber",
];

/// See [`UpgradeInstance::sizes`]; a repeated member keeps its last value, as with map binding.
fn upgrade_sizes(obj: &Json) -> serde_json::Map<String, serde_json::Value> {
    UPGRADE_SIZE_MEMBERS
        .iter()
        .filter_map(|name| Some(((*name).to_owned(), obj.get(name)?.to_serde()?)))
        .collect()
}

fn change_instance_check(obj: &Json) -> Result<ChangeInstanceCheck, RequestError> {
    let instance_id = obj.required("instanceId")?;
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
        product_id: product
            .field_at("productId", "productInfo.productId")
            .required()?,
        sku_code: product
            .field_at("skuCode", "productInfo.skuCode")
            .required()?,
        product_name: product
            .field_at("productName", "productInfo.productName")
            .required()?,
        linear_value: product
            .field_at("linearValue", "productInfo.linearValue")
            .optional_integer()?,
    };
    Ok(ChangeInstanceCheck {
        instance_id,
        product: target,
        test_flag: obj.test_flag(),
    })
}

/// `yyyy-MM-dd HH:mm:ss[ ][zZ]`, or as a fallback the compact 14/17-digit form.
fn license_time(field: &'static str, value: &str) -> Result<i64, RequestError> {
    parse_license_time(value)
        .or_else(|e| parse_expire_time(value).map_err(|_| e))
        .map_err(|e| RequestError::invalid(field, e.to_string()))
}

fn get_license_async(obj: &Json) -> Result<GetLicenseAsync, RequestError> {
    let instance_id = obj.required("instanceId")?;
    let event_id = obj.required("eventId")?;
    let effective_time = obj.required("effectiveTime")?;
    let effective_time_ms = license_time("effectiveTime", &effective_time)?;
    let expire_time = obj.optional("expireTime")?;
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
        device_fingerprint: obj.optional("deviceFingerprint")?,
        test_flag: obj.test_flag(),
    })
}
