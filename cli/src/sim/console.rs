//! The seller console's checks of an answer (docs/protocol.md, console §3), in its order and with its messages.
//!
//! Pure: given what came back, say whether the console would accept it and, if not, print what
//! the console prints, so that a failure here reads like the failure an ISV would see online.

use std::time::Duration;

use koogate_protocol::body_sign::{self, BodySignError};
use serde_json::Value;

/// An answer as received.
pub struct Received<'a> {
    pub status: u16,
    pub headers: &'a [(String, String)],
    pub body: &'a [u8],
    pub elapsed: Duration,
}

impl Received<'_> {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// The result code a case expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// `000000`, as every saved console case.
    Success,
    /// A negative case: this code (the framing checks still apply).
    Code(&'static str),
}

/// Checks 2–8 of docs/protocol.md, console §3 on `answer`, with `key` the key bound to the interface type and
/// `limit` the wait limit (20 s for the console, 5 s for production traffic). On success, the
/// parsed body for the case's own field checks (9, 10).
pub fn check(
    answer: &Received<'_>,
    key: &str,
    limit: Duration,
    expect: Expect,
) -> Result<Value, String> {
    if answer.elapsed > limit {
        return Err(format!("调测失败,调用接口超时{}s", limit.as_secs()));
    }
    if answer.status != 200 {
        return Err(format!("调测失败,接口响应httpCode={}", answer.status));
    }
    let content_type = answer.header("content-type").unwrap_or("");
    if content_type != "application/json" {
        return Err(format!(
            "调测失败,响应content-type格式错误 (received {content_type:?}),正确的格式为\"application/json\""
        ));
    }
    let json: Value = serde_json::from_slice(answer.body)
        .ok()
        .filter(|v: &Value| v.get("resultCode").is_some() && v.get("resultMsg").is_some())
        .ok_or_else(|| {
            "调测失败,解析响应体失败,响应格式参考{\"resultCode\":\"000000\",\"resultMsg\":\"success.\"}"
                .to_string()
        })?;
    let sign = answer.header(body_sign::HEADER_NAME).unwrap_or("");
    body_sign::verify(key, answer.body, sign).map_err(|e| match e {
        BodySignError::Empty | BodySignError::Malformed(_) => {
            format!("生产接口响应头缺少Body-Sign,或Body-Sign格式错误 ({e})")
        }
        other => other.to_string(),
    })?;
    let code = json["resultCode"].as_str().unwrap_or("");
    let msg = json["resultMsg"].as_str().unwrap_or("");
    match expect {
        Expect::Success if code != "000000" => Err(format!(
            "调用失败,生产接口resultCode返回错误 (resultCode {code}: {msg})"
        )),
        Expect::Code(want) if code != want => {
            Err(format!("expected resultCode {want}, got {code} ({msg})"))
        }
        _ => Ok(json),
    }
}

/// Check 9: a mandatory field of the answer.
pub fn require<'v>(json: &'v Value, field: &str) -> Result<&'v Value, String> {
    match json.get(field) {
        Some(Value::Null) | None => Err(format!("调测失败,接口响应缺少{field}")),
        Some(Value::String(s)) if s.is_empty() => Err(format!("调测失败,接口响应缺少{field}")),
        Some(v) => Ok(v),
    }
}

/// Check 10: a text field within its length limit, when present.
pub fn within(json: &Value, field: &str, max_chars: usize) -> Result<(), String> {
    match json.get(field).and_then(Value::as_str) {
        Some(s) if s.chars().count() > max_chars => Err(format!("调测失败,字段{field}长度不合法")),
        _ => Ok(()),
    }
}

/// The fields of a create answer (`appInfo` or top level, V1 flat): lengths of console check 10.
pub fn app_info_lengths(json: &Value) -> Result<(), String> {
    let info = json.get("appInfo").unwrap_or(json);
    within(info, "frontEndUrl", 512)?;
    within(info, "adminUrl", 512)?;
    within(info, "userName", 128)?;
    within(info, "password", 128)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer<'a>(headers: &'a [(String, String)], body: &'a [u8]) -> Received<'a> {
        Received {
            status: 200,
            headers,
            body,
            elapsed: Duration::from_millis(5),
        }
    }

    fn headers(ct: &str, sign: Option<String>) -> Vec<(String, String)> {
        let mut h = vec![("content-type".to_string(), ct.to_string())];
        if let Some(s) = sign {
            h.push(("body-sign".to_string(), s));
        }
        h
    }

    const BODY: &[u8] = br#"{"resultCode":"000000","resultMsg":"success."}"#;

    #[test]
    fn a_correct_answer_passes_and_every_framing_fault_has_the_console_message() {
        let good = headers("application/json", Some(body_sign::header_value("k", BODY)));
        let limit = Duration::from_secs(20);
        assert!(check(&answer(&good, BODY), "k", limit, Expect::Success).is_ok());

        let e = check(&answer(&good, BODY), "other-key", limit, Expect::Success).unwrap_err();
        assert!(
            e.starts_with("Failed to verify the HTTP Body signature"),
            "{e}"
        );
        let missing = headers("application/json", None);
        let e = check(&answer(&missing, BODY), "k", limit, Expect::Success).unwrap_err();
        assert!(e.contains("生产接口响应头缺少Body-Sign"), "{e}");
        let wrong_ct = headers("text/plain", Some(body_sign::header_value("k", BODY)));
        let e = check(&answer(&wrong_ct, BODY), "k", limit, Expect::Success).unwrap_err();
        assert!(e.contains("content-type格式错误"), "{e}");
        let slow = Received {
            elapsed: Duration::from_secs(6),
            ..answer(&good, BODY)
        };
        let e = check(&slow, "k", Duration::from_secs(5), Expect::Success).unwrap_err();
        assert_eq!(e, "调测失败,调用接口超时5s");
        let e = check(&answer(&good, BODY), "k", limit, Expect::Code("000001")).unwrap_err();
        assert!(e.contains("expected resultCode 000001"), "{e}");
        let not_json = b"<html>";
        let h = headers(
            "application/json",
            Some(body_sign::header_value("k", not_json)),
        );
        let e = check(&answer(&h, not_json), "k", limit, Expect::Success).unwrap_err();
        assert!(e.contains("解析响应体失败"), "{e}");
    }

    #[test]
    fn field_checks() {
        let v: Value =
            serde_json::json!({"instanceId":"i","appInfo":{"frontEndUrl":"x".repeat(513)}});
        assert!(require(&v, "instanceId").is_ok());
        assert_eq!(
            require(&v, "license").unwrap_err(),
            "调测失败,接口响应缺少license"
        );
        assert_eq!(
            app_info_lengths(&v).unwrap_err(),
            "调测失败,字段frontEndUrl长度不合法"
        );
    }
}
