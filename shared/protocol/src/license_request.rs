//! Typed, validated License 2.0 merchant requests (docs/protocol.md, inbound-basic §6): `refreshLicenseCode`,
//! `updateLicenseCodeStatus`, `releaseLicenseCode`.
//!
//! Same transport and conventions as [`crate::request::parse_basic`] (V2 URL signature with the
//! License授权码交付接口 key; `testFlag` `"1"` or `1`; unknown fields ignored; last duplicate
//! wins), on a body whose signature has been verified. Every failure is a [`RequestError`]
//! naming the field, all `000002` (D13). The license code is the marketplace's: an unknown one
//! is recorded, not refused (D21) — that is the handler's business, not the parser's.

use std::fmt;

use crate::json::Json;
use crate::request::fields::Fields;
use crate::request::{
    activity_of, expire_time, json_object, required_status, InstanceStatusChange, RequestError,
    Scene,
};

/// The activities of the License 2.0 merchant interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LicenseActivity {
    /// `refreshLicenseCode`: a renewal or renewal refund set a new expiry.
    RefreshLicenseCode,
    /// `updateLicenseCodeStatus`: freeze or unfreeze.
    UpdateLicenseCodeStatus,
    /// `releaseLicenseCode`: release the resources behind the code.
    ReleaseLicenseCode,
}

/// The supported names joined by `", "`, for error messages (D13).
const SUPPORTED: &str = "refreshLicenseCode, updateLicenseCodeStatus, releaseLicenseCode";

impl LicenseActivity {
    /// Every activity, in the order of the spec.
    pub const ALL: &'static [LicenseActivity] = &[
        LicenseActivity::RefreshLicenseCode,
        LicenseActivity::UpdateLicenseCodeStatus,
        LicenseActivity::ReleaseLicenseCode,
    ];

    /// The wire name.
    pub fn name(&self) -> &'static str {
        match self {
            LicenseActivity::RefreshLicenseCode => "refreshLicenseCode",
            LicenseActivity::UpdateLicenseCodeStatus => "updateLicenseCodeStatus",
            LicenseActivity::ReleaseLicenseCode => "releaseLicenseCode",
        }
    }

    /// Parses a wire name (exact, case-sensitive).
    pub fn parse(s: &str) -> Option<LicenseActivity> {
        LicenseActivity::ALL.iter().copied().find(|a| a.name() == s)
    }

    /// The supported names joined by `", "`.
    pub fn supported_list() -> &'static str {
        SUPPORTED
    }
}

impl fmt::Display for LicenseActivity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A parsed License 2.0 request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LicenseRequest {
    /// `refreshLicenseCode`.
    RefreshLicenseCode(RefreshLicenseCode),
    /// `updateLicenseCodeStatus`.
    UpdateLicenseCodeStatus(UpdateLicenseCodeStatus),
    /// `releaseLicenseCode`.
    ReleaseLicenseCode(ReleaseLicenseCode),
}

impl LicenseRequest {
    /// The activity of this request.
    pub fn activity(&self) -> LicenseActivity {
        match self {
            LicenseRequest::RefreshLicenseCode(_) => LicenseActivity::RefreshLicenseCode,
            LicenseRequest::UpdateLicenseCodeStatus(_) => LicenseActivity::UpdateLicenseCodeStatus,
            LicenseRequest::ReleaseLicenseCode(_) => LicenseActivity::ReleaseLicenseCode,
        }
    }

    /// `true` for debug traffic (`testFlag` `"1"` or `1`, D6).
    pub fn is_debug(&self) -> bool {
        match self {
            LicenseRequest::RefreshLicenseCode(r) => r.test_flag,
            LicenseRequest::UpdateLicenseCodeStatus(r) => r.test_flag,
            LicenseRequest::ReleaseLicenseCode(r) => r.test_flag,
        }
    }

    /// The license code every activity targets.
    pub fn license(&self) -> &str {
        match self {
            LicenseRequest::RefreshLicenseCode(r) => &r.license,
            LicenseRequest::UpdateLicenseCodeStatus(r) => &r.license,
            LicenseRequest::ReleaseLicenseCode(r) => &r.license,
        }
    }
}

/// `refreshLicenseCode` (§6.1, D11).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshLicenseCode {
    /// `license`: the license code (授权码).
    pub license: String,
    /// `orderId` of the renewal or renewal-refund order.
    pub order_id: String,
    /// `orderLineId`.
    pub order_line_id: String,
    /// `scene`: `RENEWAL` or `UNSUBSCRIBE_RENEWAL_PERIOD`; other values are kept (D22).
    pub scene: Scene,
    /// `productId`, when the period type changed.
    pub product_id: Option<String>,
    /// `expireTime` as received (14 or 17 digits, UTC).
    pub expire_time: String,
    /// `expireTime` as epoch milliseconds.
    pub expire_time_ms: i64,
    /// Debug traffic (D6).
    pub test_flag: bool,
}

/// `updateLicenseCodeStatus` (§6.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpdateLicenseCodeStatus {
    /// `license`.
    pub license: String,
    /// `status`: `FREEZE` or `UNFREEZE` (the same values as `updateInstanceStatus`).
    pub status: InstanceStatusChange,
    /// Debug traffic (D6).
    pub test_flag: bool,
}

/// `releaseLicenseCode` (§6.3, D21).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleaseLicenseCode {
    /// `license`.
    pub license: String,
    /// `orderId` of the unsubscription, when the release comes from one.
    pub order_id: Option<String>,
    /// `orderLineId`.
    pub order_line_id: Option<String>,
    /// Debug traffic (D6).
    pub test_flag: bool,
}

/// Parses and validates a verified License 2.0 request body.
///
/// Order of checks: size, JSON object, `activity` present and one of [`LicenseActivity::ALL`]
/// (else [`RequestError::UnsupportedActivity`] listing them), then the activity's fields.
pub fn parse_license(body: &[u8]) -> Result<LicenseRequest, RequestError> {
    let root = json_object(body)?;
    let name = activity_of(&root)?;
    let activity = LicenseActivity::parse(&name).ok_or(RequestError::UnsupportedActivity {
        activity: name,
        supported: SUPPORTED,
    })?;
    let r = &root;
    Ok(match activity {
        LicenseActivity::RefreshLicenseCode => {
            LicenseRequest::RefreshLicenseCode(refresh_license_code(r)?)
        }
        LicenseActivity::UpdateLicenseCodeStatus => {
            LicenseRequest::UpdateLicenseCodeStatus(update_license_code_status(r)?)
        }
        LicenseActivity::ReleaseLicenseCode => {
            LicenseRequest::ReleaseLicenseCode(ReleaseLicenseCode {
                license: r.required("license")?,
                order_id: r.optional("orderId")?,
                order_line_id: r.optional("orderLineId")?,
                test_flag: r.test_flag(),
            })
        }
    })
}

fn refresh_license_code(obj: &Json) -> Result<RefreshLicenseCode, RequestError> {
    let scene = Scene::parse(&obj.required("scene")?);
    let order_id = obj.required("orderId")?;
    let order_line_id = obj.required("orderLineId")?;
    let license = obj.required("license")?;
    let product_id = obj.optional("productId")?;
    let (expire_time, expire_time_ms) = expire_time(obj.required("expireTime")?)?;
    Ok(RefreshLicenseCode {
        license,
        order_id,
        order_line_id,
        scene,
        product_id,
        expire_time,
        expire_time_ms,
        test_flag: obj.test_flag(),
    })
}

fn update_license_code_status(obj: &Json) -> Result<UpdateLicenseCodeStatus, RequestError> {
    let license = obj.required("license")?;
    let status = required_status(obj)?;
    Ok(UpdateLicenseCodeStatus {
        license,
        status,
        test_flag: obj.test_flag(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn supported_list_matches() {
        let names: Vec<&str> = LicenseActivity::ALL.iter().map(|a| a.name()).collect();
        assert_eq!(names.join(", "), SUPPORTED);
        for a in LicenseActivity::ALL {
            assert_eq!(LicenseActivity::parse(a.name()), Some(*a));
        }
    }
}
