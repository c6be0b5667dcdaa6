//! The answer side (D5): `envelope::render` of any message and field, and the `Body-Sign`
//! header over those exact bytes, as the console checks them (`body_sign::verify`).
//!
//! Input: `code selector ␟ message ␟ field name ␟ field value ␟ access key` (␟ = 0xFF).
//!
//! Proves: the body is ASCII-only JSON that an independent parser (serde_json) reads back with
//! the chosen `resultCode`, a `resultMsg` that is a prefix of the message of at most 255 UTF-16
//! units, and the field's value intact; it has a canonical form; and its `Body-Sign` verifies
//! under the key, and not under a different key.
#![no_main]

use koogate_protocol::{body_sign, canonical_form, envelope, ResultCode};
use koogate_protocol_fuzz::{fields, text};
use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value};

fuzz_target!(|data: &[u8]| {
    let [code, message, name, value, key] = fields::<5>(data);
    let code =
        ResultCode::ALL[usize::from(code.first().copied().unwrap_or(0)) % ResultCode::ALL.len()];
    let (message, name, value, key) = (text(message), text(name), text(value), text(key));

    let body = envelope::render(code, &message, &[(&name, Value::String(value.to_string()))]);
    assert!(body.is_ascii());
    let parsed: Map<String, Value> = serde_json::from_slice(&body).expect("the answer is JSON");
    assert_eq!(parsed["resultCode"], code.as_str());
    let msg = parsed["resultMsg"].as_str().expect("resultMsg is a string");
    assert!(msg.encode_utf16().count() <= 255 && message.starts_with(msg));
    if name != "resultCode" && name != "resultMsg" {
        assert_eq!(parsed[&*name], Value::String(value.to_string()));
    }
    assert!(canonical_form(&body).is_some());

    let header = body_sign::header_value(&key, &body);
    assert_eq!(body_sign::verify(&key, &body, &header), Ok(()));
    let other = format!("{key}x");
    assert!(body_sign::verify(&other, &body, &header).is_err());
});
