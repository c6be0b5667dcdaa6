//! The response body: `{"resultCode":"…","resultMsg":"…",<fields>}` (docs/protocol.md, inbound-basic §2.4, D5).
//!
//! The body is produced once, as pure ASCII: every non-ASCII character is written as a `\uXXXX`
//! escape (a surrogate pair above U+FFFF), as the pages require for `memo`. Sign exactly the
//! returned bytes with [`crate::body_sign::header_value`] and send exactly those bytes.

use serde_json::Value;

use crate::json::Json;
use crate::json_write::{write_member, write_string, Escape, Order};
use crate::result_code::ResultCode;

/// Maximum length of `resultMsg`, counted in UTF-16 code units (Java `String.length()`).
pub const MAX_RESULT_MSG: usize = 255;

/// Renders the answer body: compact JSON with `resultCode`, `resultMsg` (truncated to 255
/// characters, never splitting a surrogate pair) and then `fields` in the given order.
///
/// Fields named `resultCode` or `resultMsg` are skipped so the object never has duplicate names.
/// Nested objects are written in the map's iteration order.
pub fn render(code: ResultCode, message: &str, fields: &[(&str, Value)]) -> Vec<u8> {
    let mut out = String::with_capacity(64 + message.len());
    out.push_str("{\"resultCode\":\"");
    out.push_str(code.as_str());
    out.push_str("\",\"resultMsg\":");
    write_string(
        &mut out,
        truncate_utf16(message, MAX_RESULT_MSG),
        Escape::Answer,
    );
    for (name, value) in fields {
        if *name == "resultCode" || *name == "resultMsg" {
            continue;
        }
        out.push(',');
        write_member(
            &mut out,
            name,
            &Json::from(value),
            Escape::Answer,
            Order::Received,
        );
    }
    out.push('}');
    out.into_bytes()
}

/// The longest prefix of `s` that is at most `max` UTF-16 code units long.
fn truncate_utf16(s: &str, max: usize) -> &str {
    let mut units = 0;
    for (index, c) in s.char_indices() {
        units += c.len_utf16();
        if units > max {
            return s.get(..index).unwrap_or_default();
        }
    }
    s
}

/// An answer under construction: result code, message and activity fields in order.
///
/// ```
/// use koogate_protocol::envelope::Answer;
/// let body = Answer::ok().with("instanceId", "87b94795").render();
/// assert_eq!(body, br#"{"resultCode":"000000","resultMsg":"success.","instanceId":"87b94795"}"#);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    /// The `resultCode`.
    pub code: ResultCode,
    /// The `resultMsg` (truncated to 255 characters when rendered).
    pub message: String,
    /// Activity-specific fields, written after `resultMsg` in this order.
    pub fields: Vec<(&'static str, Value)>,
}

impl Answer {
    /// `000000` with the message `success.`.
    pub fn ok() -> Answer {
        Answer::code(ResultCode::Success)
    }

    /// `code` with its default message.
    pub fn code(code: ResultCode) -> Answer {
        Answer {
            code,
            message: code.default_message().to_owned(),
            fields: Vec::new(),
        }
    }

    /// `code` with a specific message (e.g. the field that is missing, the refusal reason).
    pub fn error(code: ResultCode, message: impl Into<String>) -> Answer {
        Answer {
            code,
            message: message.into(),
            fields: Vec::new(),
        }
    }

    /// Appends a field; a field of the same name added earlier is replaced in place.
    #[must_use]
    pub fn with(mut self, field: &'static str, value: impl Into<Value>) -> Answer {
        let value = value.into();
        match self.fields.iter_mut().find(|(name, _)| *name == field) {
            Some(slot) => slot.1 = value,
            None => self.fields.push((field, value)),
        }
        self
    }

    /// The body bytes (see [`render`]).
    pub fn render(&self) -> Vec<u8> {
        render(self.code, &self.message, &self.fields)
    }
}

/// The `resultCode` of an answer body as it is on the wire (`None` when the body has none): the
/// code of an answer stored before koogate kept the code beside it. Only that member is decoded.
pub fn result_code_text(body: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Head {
        #[serde(rename = "resultCode")]
        result_code: String,
    }
    serde_json::from_slice::<Head>(body)
        .ok()
        .map(|h| h.result_code)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn text(b: Vec<u8>) -> String {
        String::from_utf8(b).unwrap()
    }

    #[test]
    fn body_sign_vector_body() {
        let body = render(
            ResultCode::Success,
            "success.",
            &[("instanceId", json!("87b94795-0603-4e24-8ae5-69420d60e3c8"))],
        );
        assert_eq!(
            text(body),
            r#"{"resultCode":"000000","resultMsg":"success.","instanceId":"87b94795-0603-4e24-8ae5-69420d60e3c8"}"#
        );
    }

    #[test]
    fn non_ascii_is_escaped_everywhere() {
        let body = text(render(
            ResultCode::InternalError,
            "请修改 😀",
            &[(
                "info",
                json!([{"instanceId": "i1", "appInfo": {"memo": "请修改密码\u{1}\"\\/"}}]),
            )],
        ));
        assert!(body.is_ascii());
        assert_eq!(
            body,
            r#"{"resultCode":"000005","resultMsg":"\u8bf7\u4fee\u6539 \ud83d\ude00","info":[{"appInfo":{"memo":"\u8bf7\u4fee\u6539\u5bc6\u7801\u0001\"\\/"},"instanceId":"i1"}]}"#
        );
        let parsed: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(parsed["resultMsg"], "请修改 😀");
    }

    #[test]
    fn message_is_truncated_to_255_utf16_units() {
        let long = "a".repeat(300);
        let body: Value =
            serde_json::from_slice(&render(ResultCode::InvalidParam, &long, &[])).unwrap();
        assert_eq!(body["resultMsg"].as_str().unwrap().len(), 255);
        // A surrogate pair straddling the limit is dropped whole.
        let msg = format!("{}😀", "a".repeat(254));
        let body: Value =
            serde_json::from_slice(&render(ResultCode::InvalidParam, &msg, &[])).unwrap();
        assert_eq!(body["resultMsg"].as_str().unwrap(), "a".repeat(254));
        let msg = format!("{}😀", "a".repeat(253));
        let body: Value =
            serde_json::from_slice(&render(ResultCode::InvalidParam, &msg, &[])).unwrap();
        assert_eq!(body["resultMsg"].as_str().unwrap(), msg);
    }

    #[test]
    fn answer_builder() {
        let answer = Answer::ok()
            .with("instanceId", "x")
            .with("encryptType", "1")
            .with("instanceId", "y");
        assert_eq!(
            text(answer.render()),
            r#"{"resultCode":"000000","resultMsg":"success.","instanceId":"y","encryptType":"1"}"#
        );
        assert_eq!(
            text(
                Answer::error(ResultCode::InvalidParam, "missing mandatory field: orderId")
                    .render()
            ),
            r#"{"resultCode":"000002","resultMsg":"missing mandatory field: orderId"}"#
        );
        assert_eq!(
            text(
                Answer::code(ResultCode::Processing)
                    .with("resultMsg", "x")
                    .render()
            ),
            r#"{"resultCode":"000004","resultMsg":"request is processing"}"#
        );
    }

    #[test]
    fn numbers_and_literals() {
        let body = text(render(
            ResultCode::Success,
            "success.",
            &[
                ("a", json!(12.78)),
                ("b", json!(-3)),
                ("c", json!(null)),
                ("d", json!(true)),
            ],
        ));
        assert_eq!(
            body,
            r#"{"resultCode":"000000","resultMsg":"success.","a":12.78,"b":-3,"c":null,"d":true}"#
        );
    }

    #[test]
    fn the_code_of_a_stored_answer_is_read_back() {
        let body = Answer::code(ResultCode::Processing)
            .with("instanceId", "i-1")
            .render();
        assert_eq!(result_code_text(&body).as_deref(), Some("000004"));
        assert_eq!(
            result_code_text(br#"{"resultCode":"123456"}"#).as_deref(),
            Some("123456")
        );
        assert_eq!(result_code_text(b"not json"), None);
    }
}
