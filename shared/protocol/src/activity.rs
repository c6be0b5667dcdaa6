//! The `activity` routing value of the V2 basic interface (docs/protocol.md, inbound-basic §1, §4, §5).

use std::fmt;

use crate::json::{self, Json};

/// An activity served on the basic (基础接口) route: the SaaS V2 lifecycle plus the online-License
/// `getLicenseAsync`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Activity {
    /// `newInstance`: the buyer has paid; create the instance.
    NewInstance,
    /// `queryInstance`: report access details (and usage) of instances.
    QueryInstance,
    /// `refreshInstance`: set a new absolute expiry (renewal, trial to paid, ...).
    RefreshInstance,
    /// `updateInstanceStatus`: freeze or unfreeze.
    UpdateInstanceStatus,
    /// `releaseInstance`: release the instance for good.
    ReleaseInstance,
    /// `upgradeInstance`: an upgrade or scale-out order was paid.
    UpgradeInstance,
    /// `changeInstanceCheck`: may the instance change to the target spec?
    ChangeInstanceCheck,
    /// `getLicenseAsync`: the buyer applies for a license (online License).
    GetLicenseAsync,
}

impl Activity {
    /// Every activity, in the order of the spec.
    pub const ALL: &'static [Activity] = &[
        Activity::NewInstance,
        Activity::QueryInstance,
        Activity::RefreshInstance,
        Activity::UpdateInstanceStatus,
        Activity::ReleaseInstance,
        Activity::UpgradeInstance,
        Activity::ChangeInstanceCheck,
        Activity::GetLicenseAsync,
    ];

    /// The wire name, e.g. `"newInstance"`.
    pub fn name(&self) -> &'static str {
        match self {
            Activity::NewInstance => "newInstance",
            Activity::QueryInstance => "queryInstance",
            Activity::RefreshInstance => "refreshInstance",
            Activity::UpdateInstanceStatus => "updateInstanceStatus",
            Activity::ReleaseInstance => "releaseInstance",
            Activity::UpgradeInstance => "upgradeInstance",
            Activity::ChangeInstanceCheck => "changeInstanceCheck",
            Activity::GetLicenseAsync => "getLicenseAsync",
        }
    }

    /// Parses a wire name (exact, case-sensitive).
    pub fn parse(s: &str) -> Option<Activity> {
        Activity::ALL.iter().copied().find(|a| a.name() == s)
    }

    /// The supported names joined by `", "`, for error messages (D13).
    pub fn supported_list() -> String {
        Activity::ALL
            .iter()
            .map(Activity::name)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl fmt::Display for Activity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Reads the top-level `"activity"` string of an **unverified** body, or `None` when the body
/// is not a JSON object or has no string `activity` (last occurrence wins).
///
/// Used only to choose the key set before the signature is checked (pipeline step 3); nothing
/// else may be trusted before verification. Any string is returned, supported or not, so a
/// caller can map other families' activities (License 2.0, `orderNotify`) to their key types.
pub fn peek_activity(body: &[u8]) -> Option<String> {
    match json::parse(body).ok()?.get("activity")? {
        Json::String(s) => Some(s.clone()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for a in Activity::ALL {
            assert_eq!(Activity::parse(a.name()), Some(*a));
        }
        assert_eq!(Activity::parse("NewInstance"), None);
        assert_eq!(Activity::parse("orderNotify"), None);
        assert!(Activity::supported_list().starts_with("newInstance, queryInstance"));
    }

    #[test]
    fn peek() {
        assert_eq!(
            peek_activity(br#"{"activity":"queryInstance","instanceId":"x"}"#).as_deref(),
            Some("queryInstance")
        );
        assert_eq!(
            peek_activity(br#"{"activity":"orderNotify"}"#).as_deref(),
            Some("orderNotify")
        );
        assert_eq!(peek_activity(br#"{"activity":1}"#), None);
        assert_eq!(peek_activity(br#"{"nested":{"activity":"x"}}"#), None);
        assert_eq!(peek_activity(br#"["activity"]"#), None);
        assert_eq!(peek_activity(b"{\"activity\":\"x\""), None);
        assert_eq!(peek_activity(b""), None);
    }
}
