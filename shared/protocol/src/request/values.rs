//! Value types and rules that several request families share: the `scene` and `status` values
//! (V2 basic, License 2.0 and V1), the `queryInstance` ID list (V2 and V1), the absolute
//! `expireTime` (D11), and the redaction of personal data in `Debug`.

use std::fmt;

use crate::timestamp::parse_expire_time;

use super::fields::Fields;
use super::RequestError;

/// Largest number of distinct IDs in one `queryInstance` (D8).
pub const MAX_QUERY_IDS: usize = 100;

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

/// A mandatory absolute `expireTime` (D11): the text as sent and its epoch milliseconds.
pub(crate) fn expire_time(text: String) -> Result<(String, i64), RequestError> {
    let ms =
        parse_expire_time(&text).map_err(|e| RequestError::invalid("expireTime", e.to_string()))?;
    Ok((text, ms))
}

/// A mandatory `status` of FREEZE or UNFREEZE.
pub(crate) fn required_status<F: Fields + ?Sized>(
    fields: &F,
) -> Result<InstanceStatusChange, RequestError> {
    InstanceStatusChange::parse(&fields.required("status")?)
        .ok_or_else(|| RequestError::invalid("status", "must be FREEZE or UNFREEZE"))
}

/// Prints `<redacted>` for a present value and `None` for an absent one.
pub(crate) struct Redacted(pub(crate) bool);

impl fmt::Debug for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0 { "<redacted>" } else { "None" })
    }
}
