//! What every inbound request family shares, and the V2 basic requests.
//!
//! A request body becomes a typed request in three steps, the same for the V2 basic, License
//! 2.0 and `orderNotify` families (docs/protocol.md, inbound-basic §2, pipeline steps 9–11):
//! `json_object` (size and JSON), `activity_of` (which activity), then the family's fields,
//! read with the crate's one field reader, `fields` (which also reads the V1 query parameters
//! of [`crate::legacy_request`] and the kit bodies of [`crate::kit_request`]). Every failure is
//! a [`RequestError`].
//!
//! The modules: `basic` (the V2 basic activities, [`parse_basic`]), `error`
//! ([`RequestError`]), `fields` (the field reader), `values` (value types and rules several
//! families share). Their public items are re-exported here, so `request::X` paths stay
//! as they were.

mod basic;
mod error;
pub(crate) mod fields;
mod values;

pub use crate::activity::peek_activity;
pub use basic::{
    parse_basic, parse_basic_refusing, BasicRefusal, BasicRequest, ChangeInstanceCheck, FatOrder,
    GetLicenseAsync, NewInstance, QueryInstance, RefreshInstance, ReleaseInstance, TargetProduct,
    UpdateInstanceStatus, UpgradeInstance, UPGRADE_SIZE_MEMBERS,
};
pub use error::RequestError;
pub(crate) use values::{expire_time, required_status, split_instance_ids, Redacted};
pub use values::{InstanceStatusChange, Scene, MAX_QUERY_IDS};

use crate::json::{self, Json};
use fields::Fields;

/// Largest accepted request body, in bytes (D13).
pub const MAX_BODY_BYTES: usize = 1 << 20;

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

/// The `activity` (a JSON member or a V1 query parameter); absent, null or blank is
/// [`RequestError::MissingActivity`], a JSON non-string [`RequestError::InvalidField`].
pub(crate) fn activity_of<F: Fields + ?Sized>(fields: &F) -> Result<String, RequestError> {
    fields.required("activity").map_err(|e| match e {
        RequestError::MissingField(_) => RequestError::MissingActivity,
        other => other,
    })
}
