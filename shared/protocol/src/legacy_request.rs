//! Typed, validated V1 GET requests: the SaaS V1 interface and the old License interface
//! (docs/protocol.md, inbound-legacy §2, §3).
//!
//! Input: the parameters of a verified request, i.e. the `params` of
//! [`crate::v1_auth::V1Verification::Verified`] (decoded, first value of each name). Output: one
//! struct per activity. Failures are [`RequestError`]s naming the parameter, all `000002`
//! (docs/protocol.md, inbound-legacy §1.3 steps 6–7).
//!
//! Values are kept as received (not trimmed); "present" means non-blank after trimming. Integer
//! parameters must be decimal integers when present; informational parameters whose format the
//! pages leave open (`orderAmount`, `chargingMode`, `provisionType`) are kept as text. Unknown
//! parameters are ignored (the token still covers them).
//!
//! `mobilePhone` and `email` stay ciphertext here: decrypt them with [`decrypt_contact`] after
//! verification (§5). `saasExtendParams` is decoded while parsing (§6) so that an undecodable
//! value answers `000002` naming it.

use std::fmt;

use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine as _;

use crate::aes_credentials::{self, AesError, EncryptType};
use crate::json::{self, Json};
use crate::request::fields::{name_value_pairs, Fields};
use crate::request::{
    activity_of, expire_time, split_instance_ids, InstanceStatusChange, Redacted, RequestError,
};
use crate::timestamp::parse_expire_time;

// ---------------------------------------------------------------------------------------------
// Activities and routes

/// Which V1 interface an activity belongs to. Both are GET with an `authToken`; they are
/// separate because a product registers them separately (and they may be mounted apart).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LegacyRoute {
    /// The SaaS V1 interface (docs/protocol.md, inbound-legacy §2).
    Saas,
    /// The old (first-generation) License interface (§3).
    License,
}

impl LegacyRoute {
    /// The activities served on this route, in the order of the spec.
    pub fn activities(&self) -> &'static [LegacyActivity] {
        match self {
            LegacyRoute::Saas => SAAS_ACTIVITIES,
            LegacyRoute::License => LICENSE_ACTIVITIES,
        }
    }

    /// The route's activity names joined by `", "`, for error messages (D13).
    pub fn supported_list(&self) -> &'static str {
        match self {
            LegacyRoute::Saas => SAAS_LIST,
            LegacyRoute::License => LICENSE_LIST,
        }
    }
}

const SAAS_ACTIVITIES: &[LegacyActivity] = &[
    LegacyActivity::NewInstance,
    LegacyActivity::RefreshInstance,
    LegacyActivity::ExpireInstance,
    LegacyActivity::ReleaseInstance,
    LegacyActivity::Upgrade,
    LegacyActivity::InstanceStatus,
    LegacyActivity::QueryInstance,
];
const LICENSE_ACTIVITIES: &[LegacyActivity] = &[
    LegacyActivity::GetLicense,
    LegacyActivity::RefreshLicense,
    LegacyActivity::ExpireLicense,
    LegacyActivity::ReleaseLicense,
];
const SAAS_LIST: &str = "newInstance, refreshInstance, expireInstance, releaseInstance, upgrade, \
                         instanceStatus, queryInstance";
const LICENSE_LIST: &str = "getLicense, refreshLicense, expireLicense, releaseLicense";
const ALL_LIST: &str = "newInstance, refreshInstance, expireInstance, releaseInstance, upgrade, \
                        instanceStatus, queryInstance, getLicense, refreshLicense, expireLicense, \
                        releaseLicense";

/// The `activity` query parameter of a V1 GET call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LegacyActivity {
    /// `newInstance`: a purchase was paid (also repeated whenever the buyer views the resource).
    NewInstance,
    /// `refreshInstance`: renewal, trial converted, renewal refund.
    RefreshInstance,
    /// `expireInstance`: the instance expired; freeze it (V2 `updateInstanceStatus FREEZE`).
    ExpireInstance,
    /// `releaseInstance`: delete the instance.
    ReleaseInstance,
    /// `upgrade` (not `upgradeInstance`): an upgrade order was paid.
    Upgrade,
    /// `instanceStatus`: freeze or unfreeze a pay-per-use instance or package.
    InstanceStatus,
    /// `queryInstance`: access details of up to 100 instances.
    QueryInstance,
    /// `getLicense`: a purchase of an old-License product; the merchant issues the license.
    GetLicense,
    /// `refreshLicense`: renewal or trial conversion.
    RefreshLicense,
    /// `expireLicense`: freeze the license.
    ExpireLicense,
    /// `releaseLicense`: release the license.
    ReleaseLicense,
}

impl LegacyActivity {
    /// Every V1 GET activity: the SaaS ones, then the License ones.
    pub const ALL: &'static [LegacyActivity] = &[
        LegacyActivity::NewInstance,
        LegacyActivity::RefreshInstance,
        LegacyActivity::ExpireInstance,
        LegacyActivity::ReleaseInstance,
        LegacyActivity::Upgrade,
        LegacyActivity::InstanceStatus,
        LegacyActivity::QueryInstance,
        LegacyActivity::GetLicense,
        LegacyActivity::RefreshLicense,
        LegacyActivity::ExpireLicense,
        LegacyActivity::ReleaseLicense,
    ];

    /// The wire name, e.g. `"upgrade"`.
    pub fn name(&self) -> &'static str {
        match self {
            LegacyActivity::NewInstance => "newInstance",
            LegacyActivity::RefreshInstance => "refreshInstance",
            LegacyActivity::ExpireInstance => "expireInstance",
            LegacyActivity::ReleaseInstance => "releaseInstance",
            LegacyActivity::Upgrade => "upgrade",
            LegacyActivity::InstanceStatus => "instanceStatus",
            LegacyActivity::QueryInstance => "queryInstance",
            LegacyActivity::GetLicense => "getLicense",
            LegacyActivity::RefreshLicense => "refreshLicense",
            LegacyActivity::ExpireLicense => "expireLicense",
            LegacyActivity::ReleaseLicense => "releaseLicense",
        }
    }

    /// Parses a wire name (exact, case-sensitive).
    pub fn parse(s: &str) -> Option<LegacyActivity> {
        LegacyActivity::ALL.iter().copied().find(|a| a.name() == s)
    }

    /// The route the activity belongs to.
    pub fn route(&self) -> LegacyRoute {
        match self {
            LegacyActivity::GetLicense
            | LegacyActivity::RefreshLicense
            | LegacyActivity::ExpireLicense
            | LegacyActivity::ReleaseLicense => LegacyRoute::License,
            _ => LegacyRoute::Saas,
        }
    }
}

impl fmt::Display for LegacyActivity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

// ---------------------------------------------------------------------------------------------
// Requests

/// A parsed V1 GET request, one variant per [`LegacyActivity`].
#[allow(clippy::large_enum_variant)] // one value per request; see `BasicRequest`
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LegacyRequest {
    /// `newInstance`.
    NewInstance(V1NewInstance),
    /// `refreshInstance`.
    RefreshInstance(V1RefreshInstance),
    /// `expireInstance`.
    ExpireInstance(V1ExpireInstance),
    /// `releaseInstance`.
    ReleaseInstance(V1ReleaseInstance),
    /// `upgrade`.
    Upgrade(V1Upgrade),
    /// `instanceStatus`.
    InstanceStatus(V1InstanceStatus),
    /// `queryInstance`.
    QueryInstance(V1QueryInstance),
    /// `getLicense`.
    GetLicense(V1GetLicense),
    /// `refreshLicense`.
    RefreshLicense(V1RefreshLicense),
    /// `expireLicense`.
    ExpireLicense(V1ExpireLicense),
    /// `releaseLicense`.
    ReleaseLicense(V1ReleaseLicense),
}

impl LegacyRequest {
    /// The activity of this request.
    pub fn activity(&self) -> LegacyActivity {
        match self {
            LegacyRequest::NewInstance(_) => LegacyActivity::NewInstance,
            LegacyRequest::RefreshInstance(_) => LegacyActivity::RefreshInstance,
            LegacyRequest::ExpireInstance(_) => LegacyActivity::ExpireInstance,
            LegacyRequest::ReleaseInstance(_) => LegacyActivity::ReleaseInstance,
            LegacyRequest::Upgrade(_) => LegacyActivity::Upgrade,
            LegacyRequest::InstanceStatus(_) => LegacyActivity::InstanceStatus,
            LegacyRequest::QueryInstance(_) => LegacyActivity::QueryInstance,
            LegacyRequest::GetLicense(_) => LegacyActivity::GetLicense,
            LegacyRequest::RefreshLicense(_) => LegacyActivity::RefreshLicense,
            LegacyRequest::ExpireLicense(_) => LegacyActivity::ExpireLicense,
            LegacyRequest::ReleaseLicense(_) => LegacyActivity::ReleaseLicense,
        }
    }

    /// `true` for debug traffic (`testFlag` `1`, D6).
    pub fn is_debug(&self) -> bool {
        match self {
            LegacyRequest::NewInstance(r) => r.test_flag,
            LegacyRequest::RefreshInstance(r) => r.test_flag,
            LegacyRequest::ExpireInstance(r) => r.test_flag,
            LegacyRequest::ReleaseInstance(r) => r.test_flag,
            LegacyRequest::Upgrade(r) => r.test_flag,
            LegacyRequest::InstanceStatus(r) => r.test_flag,
            LegacyRequest::QueryInstance(r) => r.test_flag,
            LegacyRequest::GetLicense(r) => r.test_flag,
            LegacyRequest::RefreshLicense(r) => r.test_flag,
            LegacyRequest::ExpireLicense(r) => r.test_flag,
            LegacyRequest::ReleaseLicense(r) => r.test_flag,
        }
    }

    /// The single target `instanceId`, for activities that have one (not the two purchases, not
    /// `queryInstance`). Handy for log lines.
    pub fn instance_id(&self) -> Option<&str> {
        match self {
            LegacyRequest::NewInstance(_)
            | LegacyRequest::GetLicense(_)
            | LegacyRequest::QueryInstance(_) => None,
            LegacyRequest::RefreshInstance(r) => Some(&r.instance_id),
            LegacyRequest::ExpireInstance(r) => Some(&r.instance_id),
            LegacyRequest::ReleaseInstance(r) => Some(&r.instance_id),
            LegacyRequest::Upgrade(r) => Some(&r.instance_id),
            LegacyRequest::InstanceStatus(r) => Some(&r.instance_id),
            LegacyRequest::RefreshLicense(r) => Some(&r.instance_id),
            LegacyRequest::ExpireLicense(r) => Some(&r.instance_id),
            LegacyRequest::ReleaseLicense(r) => Some(&r.instance_id),
        }
    }
}

/// The linear attributes of a V1 purchase or upgrade (integers when present).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LinearValues {
    /// `amount`: a count (users, accounts, ...).
    pub amount: Option<i64>,
    /// `diskSize`, in GB.
    pub disk_size: Option<i64>,
    /// `bandWidth`, in Mbit/s.
    pub band_width: Option<i64>,
}

/// `newInstance` (docs/protocol.md, inbound-legacy §2.1).
///
/// `Debug` redacts `mobile_phone` and `email`.
#[derive(Clone, PartialEq, Eq)]
pub struct V1NewInstance {
    /// `customerId`: the buyer's Huawei Cloud account ID.
    pub customer_id: String,
    /// `customerName` (mandatory on one page, optional on another: optional here).
    pub customer_name: Option<String>,
    /// `userId`: IAM user ID.
    pub user_id: Option<String>,
    /// `userName`: IAM user name.
    pub user_name: Option<String>,
    /// `mobilePhone`, **ciphertext** as received (`IV ‖ Base64`); see [`decrypt_contact`].
    pub mobile_phone: Option<String>,
    /// `email`, **ciphertext** as received; see [`decrypt_contact`].
    pub email: Option<String>,
    /// `businessId`: the `instanceId` to use on the first call. The table marks it mandatory,
    /// but D7 says a UUID replaces a missing one, so a paid order is not refused over it.
    pub business_id: Option<String>,
    /// `orderId`: the idempotency key (pay-per-use: with `productId`, D7).
    pub order_id: String,
    /// `skuCode`.
    pub sku_code: Option<String>,
    /// `productId`.
    pub product_id: String,
    /// `trialFlag` is `1`.
    pub trial_flag: bool,
    /// `expireTime` as received (`yyyyMMddHHmmss`; an estimate, the renewal calls are
    /// authoritative).
    pub expire_time: Option<String>,
    /// `expireTime` as epoch milliseconds (UTC) when it parses; an unparsable informational
    /// expiry is not a reason to refuse a paid order.
    pub expire_time_ms: Option<i64>,
    /// `chargingMode`: `1` periodic, `3` one-time.
    pub charging_mode: Option<String>,
    /// `periodType`: `year` / `month`.
    pub period_type: Option<String>,
    /// `periodNumber`.
    pub period_number: Option<i64>,
    /// `orderAmount` as received (decimal text).
    pub order_amount: Option<String>,
    /// `provisionType` as received (undescribed).
    pub provision_type: Option<String>,
    /// `amount`, `diskSize`, `bandWidth`.
    pub linear: LinearValues,
    /// `saasExtendParams` as received (Base64): the text the token covers.
    pub saas_extend_params: Option<String>,
    /// `saasExtendParams` decoded: `(name, value)` pairs in received order.
    pub extend_params: Vec<(String, String)>,
    /// Debug traffic (D6).
    pub test_flag: bool,
}

impl fmt::Debug for V1NewInstance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("V1NewInstance")
            .field("customer_id", &self.customer_id)
            .field("customer_name", &self.customer_name)
            .field("user_id", &self.user_id)
            .field("user_name", &self.user_name)
            .field("mobile_phone", &Redacted(self.mobile_phone.is_some()))
            .field("email", &Redacted(self.email.is_some()))
            .field("business_id", &self.business_id)
            .field("order_id", &self.order_id)
            .field("sku_code", &self.sku_code)
            .field("product_id", &self.product_id)
            .field("trial_flag", &self.trial_flag)
            .field("expire_time", &self.expire_time)
            .field("expire_time_ms", &self.expire_time_ms)
            .field("charging_mode", &self.charging_mode)
            .field("period_type", &self.period_type)
            .field("period_number", &self.period_number)
            .field("order_amount", &self.order_amount)
            .field("provision_type", &self.provision_type)
            .field("linear", &self.linear)
            .field("saas_extend_params", &self.saas_extend_params)
            .field("extend_params", &self.extend_params)
            .field("test_flag", &self.test_flag)
            .finish()
    }
}

/// `refreshInstance` (§2.2, D11).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct V1RefreshInstance {
    /// `orderId` of the renewal (or renewal-refund) order: the idempotency key.
    pub order_id: String,
    /// `instanceId`.
    pub instance_id: String,
    /// `productId`, when the period type changed.
    pub product_id: Option<String>,
    /// `expireTime` as received (14 or 17 digits, UTC).
    pub expire_time: String,
    /// `expireTime` as epoch milliseconds.
    pub expire_time_ms: i64,
    /// `trialToFormal` is `1`: a trial was converted to a periodic order.
    pub trial_to_formal: bool,
    /// `periodType`.
    pub period_type: Option<String>,
    /// `periodNumber`.
    pub period_number: Option<i64>,
    /// `orderAmount` as received; negative for a renewal refund.
    pub order_amount: Option<String>,
    /// Debug traffic (D6).
    pub test_flag: bool,
}

/// `expireInstance` (§2.3): freeze, keep the data up to 15 days.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct V1ExpireInstance {
    /// `instanceId`.
    pub instance_id: String,
    /// `orderId` of the purchase.
    pub order_id: String,
    /// Debug traffic (D6).
    pub test_flag: bool,
}

/// `releaseInstance` (§2.4, D10).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct V1ReleaseInstance {
    /// `instanceId`.
    pub instance_id: String,
    /// `orderId` of the purchase.
    pub order_id: String,
    /// `orderAmount` as received.
    pub order_amount: Option<String>,
    /// Debug traffic (D6).
    pub test_flag: bool,
}

/// `upgrade` (§2.5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct V1Upgrade {
    /// `instanceId` (unchanged).
    pub instance_id: String,
    /// `orderId` of the upgrade order: the idempotency key.
    pub order_id: String,
    /// `skuCode` (changes only with a non-linear attribute).
    pub sku_code: String,
    /// `productId`.
    pub product_id: String,
    /// The new `amount`, `diskSize`, `bandWidth`.
    pub linear: LinearValues,
    /// `saasExtendParams` as received (Base64).
    pub saas_extend_params: Option<String>,
    /// `saasExtendParams` decoded.
    pub extend_params: Vec<(String, String)>,
    /// Debug traffic (D6).
    pub test_flag: bool,
}

/// `instanceStatus` (§2.6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct V1InstanceStatus {
    /// `instanceId` of the pay-per-use instance or package.
    pub instance_id: String,
    /// `instanceStatus`: `FREEZE`, or `NORMAL` (= [`InstanceStatusChange::Unfreeze`]; V2's
    /// `UNFREEZE` is accepted too).
    pub status: InstanceStatusChange,
    /// Debug traffic (D6).
    pub test_flag: bool,
}

/// `queryInstance` (§2.7, D8).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct V1QueryInstance {
    /// The requested IDs: split on `,`, trimmed, empties and duplicates dropped, first occurrence
    /// order kept; 1 to 100 entries.
    pub instance_ids: Vec<String>,
    /// Debug traffic (D6).
    pub test_flag: bool,
}

/// `getLicense` (§3.1): the merchant issues the license.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct V1GetLicense {
    /// `customerId`.
    pub customer_id: String,
    /// `customerName`.
    pub customer_name: Option<String>,
    /// `businessId`: the `instanceId` of the first call; `None` → a UUID (D7, as newInstance).
    pub business_id: Option<String>,
    /// `orderId`: the idempotency key (same license, same `instanceId`).
    pub order_id: String,
    /// `skuCode`.
    pub sku_code: Option<String>,
    /// `productId`.
    pub product_id: String,
    /// `expireTime` as received (periodic only; an estimate).
    pub expire_time: Option<String>,
    /// `expireTime` as epoch milliseconds when it parses.
    pub expire_time_ms: Option<i64>,
    /// `periodType`.
    pub period_type: Option<String>,
    /// `amount`: quantity.
    pub amount: Option<i64>,
    /// Debug traffic (D6).
    pub test_flag: bool,
}

/// `refreshLicense` (§3.2, D11; sent once, never retried).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct V1RefreshLicense {
    /// `orderId` of the renewal order.
    pub order_id: String,
    /// `instanceId`.
    pub instance_id: String,
    /// `productId`, when the period type changed.
    pub product_id: Option<String>,
    /// `expireTime` as received (14 or 17 digits, UTC).
    pub expire_time: String,
    /// `expireTime` as epoch milliseconds.
    pub expire_time_ms: i64,
    /// `periodType`.
    pub period_type: Option<String>,
    /// `periodNumber`.
    pub period_number: Option<i64>,
    /// Debug traffic (D6).
    pub test_flag: bool,
}

/// `expireLicense` (§3.3, parameters inferred from `expireInstance`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct V1ExpireLicense {
    /// `instanceId`.
    pub instance_id: String,
    /// `orderId` of the purchase.
    pub order_id: String,
    /// Debug traffic (D6).
    pub test_flag: bool,
}

/// `releaseLicense` (§3.4, D10; sent once).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct V1ReleaseLicense {
    /// `orderId` of the purchase.
    pub order_id: String,
    /// `instanceId`.
    pub instance_id: String,
    /// Debug traffic (D6).
    pub test_flag: bool,
}

// ---------------------------------------------------------------------------------------------
// Parsing

/// Parses the verified parameters of a V1 GET call on either route.
///
/// Order of checks: `activity` present (else [`RequestError::MissingActivity`]) and one of the
/// eleven V1 activities (else [`RequestError::UnsupportedActivity`] listing them), then the
/// activity's parameters in table order. For a repeated name the first value counts.
pub fn parse_legacy(params: &[(String, String)]) -> Result<LegacyRequest, RequestError> {
    let activity = legacy_activity(params, LegacyActivity::ALL, ALL_LIST)?;
    parse_activity(activity, params)
}

/// Like [`parse_legacy`], but only the activities of `route` are accepted; another one (even a
/// V1 activity of the other route) is [`RequestError::UnsupportedActivity`] listing the route's.
pub fn parse_legacy_on(
    route: LegacyRoute,
    params: &[(String, String)],
) -> Result<LegacyRequest, RequestError> {
    let activity = legacy_activity(params, route.activities(), route.supported_list())?;
    parse_activity(activity, params)
}

fn legacy_activity(
    params: &[(String, String)],
    allowed: &[LegacyActivity],
    supported: &'static str,
) -> Result<LegacyActivity, RequestError> {
    let name = activity_of(params)?;
    LegacyActivity::parse(&name)
        .filter(|a| allowed.contains(a))
        .ok_or(RequestError::UnsupportedActivity {
            activity: name,
            supported,
        })
}

fn parse_activity(
    activity: LegacyActivity,
    p: &[(String, String)],
) -> Result<LegacyRequest, RequestError> {
    Ok(match activity {
        LegacyActivity::NewInstance => LegacyRequest::NewInstance(new_instance(p)?),
        LegacyActivity::RefreshInstance => LegacyRequest::RefreshInstance(refresh_instance(p)?),
        LegacyActivity::ExpireInstance => LegacyRequest::ExpireInstance(V1ExpireInstance {
            instance_id: p.required("instanceId")?,
            order_id: p.required("orderId")?,
            test_flag: p.test_flag(),
        }),
        LegacyActivity::ReleaseInstance => LegacyRequest::ReleaseInstance(V1ReleaseInstance {
            instance_id: p.required("instanceId")?,
            order_id: p.required("orderId")?,
            order_amount: p.optional("orderAmount")?,
            test_flag: p.test_flag(),
        }),
        LegacyActivity::Upgrade => LegacyRequest::Upgrade(upgrade(p)?),
        LegacyActivity::InstanceStatus => LegacyRequest::InstanceStatus(instance_status(p)?),
        LegacyActivity::QueryInstance => LegacyRequest::QueryInstance(V1QueryInstance {
            instance_ids: split_instance_ids(&p.required("instanceId")?)?,
            test_flag: p.test_flag(),
        }),
        LegacyActivity::GetLicense => LegacyRequest::GetLicense(get_license(p)?),
        LegacyActivity::RefreshLicense => LegacyRequest::RefreshLicense(refresh_license(p)?),
        LegacyActivity::ExpireLicense => LegacyRequest::ExpireLicense(V1ExpireLicense {
            instance_id: p.required("instanceId")?,
            order_id: p.required("orderId")?,
            test_flag: p.test_flag(),
        }),
        LegacyActivity::ReleaseLicense => LegacyRequest::ReleaseLicense(V1ReleaseLicense {
            order_id: p.required("orderId")?,
            instance_id: p.required("instanceId")?,
            test_flag: p.test_flag(),
        }),
    })
}

// ---- parameter helpers ----------------------------------------------------------------------

/// A mandatory absolute expiry, 14 or 17 digits UTC (D11).
fn required_expire_time(p: &[(String, String)]) -> Result<(String, i64), RequestError> {
    expire_time(p.required("expireTime")?)
}

/// An informational expiry: kept as text, epoch ms only when it parses.
fn informational_expire_time(
    p: &[(String, String)],
) -> Result<(Option<String>, Option<i64>), RequestError> {
    let text = p.optional("expireTime")?;
    let ms = text.as_deref().and_then(|t| parse_expire_time(t).ok());
    Ok((text, ms))
}

fn linear(p: &[(String, String)]) -> Result<LinearValues, RequestError> {
    Ok(LinearValues {
        amount: p.optional_integer("amount")?,
        disk_size: p.optional_integer("diskSize")?,
        band_width: p.optional_integer("bandWidth")?,
    })
}

type ExtendParams = (Option<String>, Vec<(String, String)>);

fn extend_params_of(p: &[(String, String)]) -> Result<ExtendParams, RequestError> {
    match p.optional("saasExtendParams")? {
        None => Ok((None, Vec::new())),
        Some(raw) => {
            let decoded = decode_extend_params(&raw)?;
            Ok((Some(raw), decoded))
        }
    }
}

// ---- activities -----------------------------------------------------------------------------

fn new_instance(p: &[(String, String)]) -> Result<V1NewInstance, RequestError> {
    let customer_id = p.required("customerId")?;
    let business_id = p.optional("businessId")?;
    let order_id = p.required("orderId")?;
    let product_id = p.required("productId")?;
    let (expire_time, expire_time_ms) = informational_expire_time(p)?;
    let (saas_extend_params, extend_params) = extend_params_of(p)?;
    Ok(V1NewInstance {
        customer_id,
        customer_name: p.optional("customerName")?,
        user_id: p.optional("userId")?,
        user_name: p.optional("userName")?,
        mobile_phone: p.optional("mobilePhone")?,
        email: p.optional("email")?,
        business_id,
        order_id,
        sku_code: p.optional("skuCode")?,
        product_id,
        trial_flag: p.flag("trialFlag"),
        expire_time,
        expire_time_ms,
        charging_mode: p.optional("chargingMode")?,
        period_type: p.optional("periodType")?,
        period_number: p.optional_integer("periodNumber")?,
        order_amount: p.optional("orderAmount")?,
        provision_type: p.optional("provisionType")?,
        linear: linear(p)?,
        saas_extend_params,
        extend_params,
        test_flag: p.test_flag(),
    })
}

fn refresh_instance(p: &[(String, String)]) -> Result<V1RefreshInstance, RequestError> {
    let order_id = p.required("orderId")?;
    let instance_id = p.required("instanceId")?;
    let product_id = p.optional("productId")?;
    let (expire_time, expire_time_ms) = required_expire_time(p)?;
    Ok(V1RefreshInstance {
        order_id,
        instance_id,
        product_id,
        expire_time,
        expire_time_ms,
        trial_to_formal: p.flag("trialToFormal"),
        period_type: p.optional("periodType")?,
        period_number: p.optional_integer("periodNumber")?,
        order_amount: p.optional("orderAmount")?,
        test_flag: p.test_flag(),
    })
}

fn upgrade(p: &[(String, String)]) -> Result<V1Upgrade, RequestError> {
    let instance_id = p.required("instanceId")?;
    let order_id = p.required("orderId")?;
    let sku_code = p.required("skuCode")?;
    let product_id = p.required("productId")?;
    let linear = linear(p)?;
    let (saas_extend_params, extend_params) = extend_params_of(p)?;
    Ok(V1Upgrade {
        instance_id,
        order_id,
        sku_code,
        product_id,
        linear,
        saas_extend_params,
        extend_params,
        test_flag: p.test_flag(),
    })
}

fn instance_status(p: &[(String, String)]) -> Result<V1InstanceStatus, RequestError> {
    let instance_id = p.required("instanceId")?;
    let status = match p.required("instanceStatus")?.as_str() {
        "FREEZE" => InstanceStatusChange::Freeze,
        "NORMAL" | "UNFREEZE" => InstanceStatusChange::Unfreeze,
        _ => {
            return Err(RequestError::invalid(
                "instanceStatus",
                "must be FREEZE or NORMAL",
            ))
        }
    };
    Ok(V1InstanceStatus {
        instance_id,
        status,
        test_flag: p.test_flag(),
    })
}

fn get_license(p: &[(String, String)]) -> Result<V1GetLicense, RequestError> {
    let customer_id = p.required("customerId")?;
    let business_id = p.optional("businessId")?;
    let order_id = p.required("orderId")?;
    let product_id = p.required("productId")?;
    let (expire_time, expire_time_ms) = informational_expire_time(p)?;
    Ok(V1GetLicense {
        customer_id,
        customer_name: p.optional("customerName")?,
        business_id,
        order_id,
        sku_code: p.optional("skuCode")?,
        product_id,
        expire_time,
        expire_time_ms,
        period_type: p.optional("periodType")?,
        amount: p.optional_integer("amount")?,
        test_flag: p.test_flag(),
    })
}

fn refresh_license(p: &[(String, String)]) -> Result<V1RefreshLicense, RequestError> {
    let order_id = p.required("orderId")?;
    let instance_id = p.required("instanceId")?;
    let product_id = p.optional("productId")?;
    let (expire_time, expire_time_ms) = required_expire_time(p)?;
    Ok(V1RefreshLicense {
        order_id,
        instance_id,
        product_id,
        expire_time,
        expire_time_ms,
        period_type: p.optional("periodType")?,
        period_number: p.optional_integer("periodNumber")?,
        test_flag: p.test_flag(),
    })
}

// ---------------------------------------------------------------------------------------------
// saasExtendParams and encrypted contact data

/// Standard alphabet, padding optional (docs/protocol.md, inbound-legacy §6), trailing bits tolerated.
const LENIENT_BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true),
);

/// Decodes `saasExtendParams` (docs/protocol.md, inbound-legacy §6): standard Base64 (padding optional) of a
/// UTF-8 JSON array of `{"name": …, "value": …}` objects, into `(name, value)` pairs in received
/// order.
///
/// `value` is the URL-decoded parameter, the text the token covers. Spaces are read as `+` and
/// line breaks ignored, so a value that some layer form-decoded or wrapped still decodes. Names
/// and values may be strings, numbers or booleans; an element without a usable `name` is skipped
/// and a missing `value` is `""`. Anything that is not Base64 of such an array is
/// [`RequestError::InvalidField`] naming `saasExtendParams`.
pub fn decode_extend_params(value: &str) -> Result<Vec<(String, String)>, RequestError> {
    const FIELD: &str = "saasExtendParams";
    let cleaned: String = value
        .chars()
        .filter(|c| *c != '\r' && *c != '\n')
        .map(|c| if c == ' ' { '+' } else { c })
        .collect();
    let bytes = LENIENT_BASE64
        .decode(cleaned.as_bytes())
        .map_err(|_| RequestError::invalid(FIELD, "is not valid Base64"))?;
    let root = json::parse(&bytes)
        .map_err(|e| RequestError::invalid(FIELD, format!("does not hold valid JSON: {e}")))?;
    let Json::Array(items) = root else {
        return Err(RequestError::invalid(
            FIELD,
            format!(
                "must hold a JSON array of name/value objects, got {}",
                root.type_name()
            ),
        ));
    };
    Ok(name_value_pairs(&items))
}

/// Decrypts a V1 `mobilePhone` or `email` (docs/protocol.md, inbound-legacy §5) with the legacy key and the
/// product's key size.
///
/// This is [`aes_credentials::decrypt`] after mapping spaces back to `+`: the value is
/// `IV ‖ Base64`, and when only the form-decoded query verified, its `+` arrived as spaces. The
/// caller answers a failure with `000002` naming the parameter.
pub fn decrypt_contact(access_key: &str, t: EncryptType, value: &str) -> Result<String, AesError> {
    aes_credentials::decrypt(access_key, t, &value.replace(' ', "+"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_match_the_activities() {
        for route in [LegacyRoute::Saas, LegacyRoute::License] {
            let names: Vec<&str> = route.activities().iter().map(|a| a.name()).collect();
            assert_eq!(names.join(", "), route.supported_list());
            assert!(route.activities().iter().all(|a| a.route() == route));
        }
        let all: Vec<&str> = LegacyActivity::ALL.iter().map(|a| a.name()).collect();
        assert_eq!(all.join(", "), ALL_LIST);
        for a in LegacyActivity::ALL {
            assert_eq!(LegacyActivity::parse(a.name()), Some(*a));
        }
        assert_eq!(LegacyActivity::parse("upgradeInstance"), None);
    }
}
