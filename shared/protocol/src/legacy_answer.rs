//! Answers of the V1 GET activities that carry fields beyond `resultCode` / `resultMsg`
//! (docs/protocol.md, inbound-legacy §2.1, §2.7, §3.1).
//!
//! The builders take values already decided by the caller and return an [`Answer`] whose
//! top-level fields are in the documented order. Credentials are always encrypted in V1
//! (documented; D9's plain default is V2 only): fill [`V1AppInfo::user_name`] and
//! [`V1AppInfo::password`] with [`crate::aes_credentials::encrypt`] under the legacy key, a fresh
//! IV per value, and pass the same [`EncryptType`] here.
//!
//! Nested objects (`appInfo`, `info[]` entries) are `serde_json` maps, which the envelope writes
//! in their iteration order (sorted by name); member order inside them carries no meaning.
//! Every other V1 answer is the bare envelope: [`Answer::ok`], [`Answer::code`].

use std::fmt;

use serde_json::{Map, Number, Value};

use crate::aes_credentials::EncryptType;
use crate::envelope::Answer;
use crate::request::Redacted;
use crate::result_code::ResultCode;
use crate::timestamp::format_compact_ms;

/// `appInfo`: how the buyer reaches the product.
///
/// `Debug` redacts `user_name` and `password` (ciphertext, but decryptable with the legacy key).
#[derive(Clone, PartialEq, Eq)]
pub struct V1AppInfo {
    /// `frontEndUrl` (mandatory; the console checks it in the `newInstance` answer).
    pub front_end_url: String,
    /// `adminUrl`.
    pub admin_url: Option<String>,
    /// `userName`, already encrypted (`IV ‖ Base64`).
    pub user_name: Option<String>,
    /// `password`, already encrypted (`IV ‖ Base64`).
    pub password: Option<String>,
    /// `memo`: free text; non-ASCII is escaped by the envelope.
    pub memo: Option<String>,
}

impl V1AppInfo {
    /// The `appInfo` object; absent optional members are left out.
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("frontEndUrl".into(), self.front_end_url.clone().into());
        let optional = [
            ("adminUrl", &self.admin_url),
            ("userName", &self.user_name),
            ("password", &self.password),
            ("memo", &self.memo),
        ];
        for (name, value) in optional {
            if let Some(v) = value {
                m.insert(name.into(), v.clone().into());
            }
        }
        Value::Object(m)
    }
}

impl fmt::Debug for V1AppInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("V1AppInfo")
            .field("front_end_url", &self.front_end_url)
            .field("admin_url", &self.admin_url)
            .field("user_name", &Redacted(self.user_name.is_some()))
            .field("password", &Redacted(self.password.is_some()))
            .field("memo", &self.memo)
            .finish()
    }
}

/// One `usageInfo` entry (pay-per-use instances and packages; docs/protocol.md, inbound-basic §4.2).
#[derive(Debug, Clone, PartialEq)]
pub struct V1UsageInfo {
    /// `relatedInstanceId`: packages only, the pay-per-use instance that consumed it.
    pub related_instance_id: Option<String>,
    /// `usageValue`: at most 4 decimals (round before building the number).
    pub usage_value: Number,
    /// `statisticalTime` as epoch milliseconds; written as UTC `yyyyMMddHHmmssSSS`.
    pub statistical_time_ms: i64,
    /// `dashboardUrl`.
    pub dashboard_url: Option<String>,
}

impl V1UsageInfo {
    /// The `usageInfo` element.
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        if let Some(v) = &self.related_instance_id {
            m.insert("relatedInstanceId".into(), v.clone().into());
        }
        m.insert("usageValue".into(), Value::Number(self.usage_value.clone()));
        m.insert(
            "statisticalTime".into(),
            format_compact_ms(self.statistical_time_ms).into(),
        );
        if let Some(v) = &self.dashboard_url {
            m.insert("dashboardUrl".into(), v.clone().into());
        }
        Value::Object(m)
    }
}

/// One `info` entry of a `queryInstance` answer.
#[derive(Debug, Clone, PartialEq)]
pub struct V1InstanceInfo {
    /// `instanceId`.
    pub instance_id: String,
    /// `appInfo`, when the buyer reaches the product through it.
    pub app_info: Option<V1AppInfo>,
    /// `usageInfo` (left out when empty).
    pub usage_info: Vec<V1UsageInfo>,
}

impl V1InstanceInfo {
    /// The `info` element.
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("instanceId".into(), self.instance_id.clone().into());
        if let Some(app) = &self.app_info {
            m.insert("appInfo".into(), app.to_json());
        }
        if !self.usage_info.is_empty() {
            let usage = self.usage_info.iter().map(V1UsageInfo::to_json).collect();
            m.insert("usageInfo".into(), Value::Array(usage));
        }
        Value::Object(m)
    }
}

/// The `newInstance` success answer (§2.1): `encryptType`, `instanceId`, then `appInfo` when
/// given (the debug console requires it, with `frontEndUrl`).
pub fn new_instance_answer(
    instance_id: &str,
    encrypt_type: EncryptType,
    app_info: Option<&V1AppInfo>,
) -> Answer {
    let answer = Answer::ok()
        .with("encryptType", encrypt_type.as_str())
        .with("instanceId", instance_id);
    match app_info {
        Some(app) => answer.with("appInfo", app.to_json()),
        None => answer,
    }
}

/// The `queryInstance` answer (§2.7, D8): `code` (`000000`, or `000004` while an instance is
/// provisioning), `encryptType`, then `info` with the given entries in order (left out when
/// there are none).
pub fn query_instance_answer(
    code: ResultCode,
    encrypt_type: EncryptType,
    info: &[V1InstanceInfo],
) -> Answer {
    let answer = Answer::code(code).with("encryptType", encrypt_type.as_str());
    if info.is_empty() {
        return answer;
    }
    let entries = info.iter().map(V1InstanceInfo::to_json).collect();
    answer.with("info", Value::Array(entries))
}

/// The `getLicense` success answer (§3.1): `license`, then `instanceId`, in the order of the
/// published example (the table lists them the other way round).
pub fn get_license_answer(instance_id: &str, license: &str) -> Answer {
    Answer::ok()
        .with("license", license)
        .with("instanceId", instance_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(answer: &Answer) -> String {
        String::from_utf8(answer.render()).unwrap()
    }

    #[test]
    fn spec_examples() {
        let app = V1AppInfo {
            front_end_url: "https://app.example.com".into(),
            admin_url: Some("https://app.example.com/admin".into()),
            user_name: None,
            password: Some("A1b2C3d4E5f6G7h88LoV0O8xvmyy1wlKoHCbaA==".into()),
            memo: None,
        };
        assert_eq!(
            text(&new_instance_answer(
                "61e834ba-7b97-4418-b8f7-e5345137278c",
                EncryptType::Aes256,
                Some(&app)
            )),
            r#"{"resultCode":"000000","resultMsg":"success.","encryptType":"1","instanceId":"61e834ba-7b97-4418-b8f7-e5345137278c","appInfo":{"adminUrl":"https://app.example.com/admin","frontEndUrl":"https://app.example.com","password":"A1b2C3d4E5f6G7h88LoV0O8xvmyy1wlKoHCbaA=="}}"#
        );
        assert_eq!(
            text(&get_license_answer(
                "4ef28f-312d3d-gad335f-3132hkf",
                "LIC-EXAMPLE-0001"
            )),
            r#"{"resultCode":"000000","resultMsg":"success.","license":"LIC-EXAMPLE-0001","instanceId":"4ef28f-312d3d-gad335f-3132hkf"}"#
        );
        let printed = format!("{app:?}");
        assert!(!printed.contains("8LoV0O8x"), "{printed}");
    }
}
