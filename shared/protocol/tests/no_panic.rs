//! Property tests: no public entry point panics on any input, and the round trips hold.

use koogate_protocol::aes_credentials::{self, EncryptType};
use koogate_protocol::envelope;
use koogate_protocol::{
    basic_signature, body_sign, canonical_form, kit_signature, parse_basic, peek_activity,
    timestamp, Activity, ResultCode,
};
use proptest::prelude::*;

// ---- generators --------------------------------------------------------------------------------

/// A JSON string literal (quotes included) mixing plain text, escapes and non-ASCII.
fn json_string() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        "[a-zA-Z0-9 _./-]{0,6}",
        Just("\\\"".to_owned()),
        Just("\\\\".to_owned()),
        Just("\\/".to_owned()),
        Just("\\b\\f\\n\\r\\t".to_owned()),
        Just("\\u001f\\u0000".to_owned()),
        Just("\\u4e2d".to_owned()),
        Just("\\uD83D\\uDE00".to_owned()),
        any::<char>()
            .prop_filter("raw JSON string char", |c| *c >= ' '
                && *c != '"'
                && *c != '\\')
            .prop_map(String::from),
    ];
    prop::collection::vec(piece, 0..6).prop_map(|parts| format!("\"{}\"", parts.concat()))
}

fn json_number() -> impl Strategy<Value = String> {
    "-?(0|[1-9][0-9]{0,20})(\\.[0-9]{1,4})?([eE][+-]?[0-9]{1,3})?"
}

fn ws() -> impl Strategy<Value = &'static str> {
    prop_oneof![4 => Just(""), 1 => Just(" "), 1 => Just("\n\t "), 1 => Just("\r\n")]
}

/// Any JSON value as text, nested a few levels.
fn json_value() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        Just("null".to_owned()),
        Just("true".to_owned()),
        Just("false".to_owned()),
        json_number(),
        json_string(),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            (prop::collection::vec(inner.clone(), 0..6), ws())
                .prop_map(|(items, w)| format!("[{w}{}{w}]", items.join(&format!("{w},{w}")))),
            (prop::collection::vec((member_name(), inner), 0..6), ws()).prop_map(|(members, w)| {
                let body: Vec<String> = members
                    .iter()
                    .map(|(k, v)| format!("{k}{w}:{w}{v}"))
                    .collect();
                format!("{{{w}{}{w}}}", body.join(","))
            }),
        ]
    })
}

/// Member names from a small pool (so duplicates happen) or arbitrary strings.
fn member_name() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(vec![
            "\"activity\"", "\"a\"", "\"B\"", "\"b\"", "\"instanceId\"", "\"testFlag\"",
            "\"\\u00e9\"", "\"\u{ff21}\"", "\"\u{1f600}\"", "\"\"",
        ])
        .prop_map(str::to_owned),
        1 => json_string(),
    ]
}

/// A JSON object as text: the kind of body the canonical form applies to.
fn json_object() -> impl Strategy<Value = String> {
    (
        prop::collection::vec((member_name(), json_value()), 0..10),
        ws(),
    )
        .prop_map(|(members, w)| {
            let body: Vec<String> = members
                .iter()
                .map(|(k, v)| format!("{w}{k}:{w}{v}"))
                .collect();
            format!("{w}{{{}}}{w}", body.join(","))
        })
}

/// A request-shaped body: a known or unknown activity plus fields from the spec's tables with
/// values of any type.
fn request_body() -> impl Strategy<Value = String> {
    let activity = prop_oneof![
        4 => prop::sample::select(Activity::ALL.iter().map(|a| a.name()).collect::<Vec<_>>())
            .prop_map(|a| format!("\"{a}\"")),
        1 => json_value(),
    ];
    let field = prop::sample::select(vec![
        "orderId",
        "orderLineId",
        "businessId",
        "instanceId",
        "testFlag",
        "scene",
        "productId",
        "expireTime",
        "status",
        "productInfo",
        "eventId",
        "effectiveTime",
        "deviceFingerprint",
        "orderInfo",
        "buyerInfo",
        "linearValue",
    ]);
    let value = prop_oneof![
        3 => "[a-zA-Z0-9 ,-]{0,20}".prop_map(|s| format!("\"{s}\"")),
        1 => "[0-9]{14}|[0-9]{17}|[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}( z)?"
            .prop_map(|s| format!("\"{s}\"")),
        1 => json_value(),
        1 => Just(r#"[{"orderId":"o","productInfo":[{"productId":"p","linearValue":"x"}],"extendParams":[{"name":1},{}]}]"#.to_owned()),
        1 => Just(r#"{"productId":"p","skuCode":"s","productName":"n","linearValue":"9"}"#.to_owned()),
        1 => Just(r#""{\"productId\":\"p\",\"skuCode\":\"s\",\"productName\":\"n\"}""#.to_owned()),
    ];
    (activity, prop::collection::vec((field, value), 0..10)).prop_map(|(a, fields)| {
        let mut parts = vec![format!("\"activity\":{a}")];
        parts.extend(fields.iter().map(|(k, v)| format!("\"{k}\":{v}")));
        format!("{{{}}}", parts.join(","))
    })
}

/// Arbitrary bytes, or a valid JSON text with one byte changed.
fn hostile_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..256),
        (json_object(), any::<prop::sample::Index>(), any::<u8>()).prop_map(|(s, i, b)| {
            let mut v = s.into_bytes();
            if !v.is_empty() {
                let at = i.index(v.len());
                v[at] = b;
            }
            v
        }),
        request_body().prop_map(String::into_bytes),
    ]
}

// ---- no panics ---------------------------------------------------------------------------------

proptest! {
    #[test]
    fn canonical_form_never_panics(body in hostile_bytes()) {
        let _ = canonical_form(&body);
    }

    #[test]
    fn peek_and_parse_never_panic(body in hostile_bytes()) {
        let _ = peek_activity(&body);
        if let Err(e) = parse_basic(&body) {
            prop_assert_eq!(e.result_code(), ResultCode::InvalidParam);
            prop_assert!(!e.to_string().is_empty());
        }
    }

    #[test]
    fn parse_never_panics_on_request_shaped_bodies(body in request_body()) {
        match parse_basic(body.as_bytes()) {
            Ok(r) => {
                let _ = (r.activity(), r.is_debug(), r.instance_id(), format!("{r:?}"));
            }
            Err(e) => prop_assert!(!e.to_string().is_empty()),
        }
    }

    #[test]
    fn verifiers_never_panic(
        body in hostile_bytes(),
        keys in prop::collection::vec(".{0,24}", 0..3),
        nonce in ".{0,40}",
        ts in "[0-9]{0,14}|.{0,8}",
        signature in "[0-9a-fA-F]{64}|.{0,70}",
    ) {
        let _ = basic_signature::verify(&keys, &nonce, &ts, &signature, &body);
        let _ = kit_signature::verify(&keys, &nonce, &ts, &signature, &body);
    }

    #[test]
    fn timestamp_parsers_never_panic(s in ".{0,30}|[0-9]{0,25}|[0-9 :zZ-]{0,24}", a: i64, b: i64, w: i64) {
        let _ = timestamp::parse_epoch_ms(&s);
        let _ = timestamp::parse_expire_time(&s);
        let _ = timestamp::parse_license_time(&s);
        let _ = timestamp::within_window(a, b, w);
        let _ = timestamp::format_compact_ms(a);
    }

    #[test]
    fn body_sign_verify_never_panics(
        key in ".{0,20}",
        body in prop::collection::vec(any::<u8>(), 0..64),
        header in ".{0,80}",
        sign_type in ".{0,12}",
        sig in "[A-Za-z0-9+/=]{0,48}|.{0,10}",
    ) {
        let _ = body_sign::verify(&key, &body, &header);
        let structured = format!("sign_type=\"{sign_type}\", signature=\"{sig}\"");
        let _ = body_sign::verify(&key, &body, &structured);
    }

    #[test]
    fn aes_decrypt_never_panics(
        key in ".{0,20}",
        value in ".{0,80}|[A-Za-z0-9]{16}[A-Za-z0-9+/=]{0,64}",
    ) {
        let _ = aes_credentials::decrypt(&key, EncryptType::Aes256, &value);
        let _ = aes_credentials::decrypt(&key, EncryptType::Aes128, &value);
    }
}

// ---- properties --------------------------------------------------------------------------------

proptest! {
    #[test]
    fn canonical_form_is_idempotent(body in json_object()) {
        let once = canonical_form(body.as_bytes());
        prop_assert!(once.is_some(), "valid object without canonical form: {}", body);
        let once = once.unwrap_or_default();
        prop_assert_eq!(canonical_form(&once), Some(once.clone()));
        // And it is valid JSON for an independent parser (which refuses e.g. 1e999).
        if serde_json::from_str::<serde_json::Value>(&body).is_ok() {
            prop_assert!(serde_json::from_slice::<serde_json::Value>(&once).is_ok());
        }
    }

    #[test]
    fn canonical_form_agrees_with_serde_on_top_level(body in json_object()) {
        // Same members as a map-binding parser, minus nulls, in sorted order.
        // (serde_json refuses some valid literals, e.g. 1e999; skip those cases.)
        let theirs = serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(&body);
        prop_assume!(theirs.is_ok());
        let theirs = theirs.unwrap_or_default();
        let once = canonical_form(body.as_bytes()).unwrap_or_default();
        let ours: serde_json::Map<String, serde_json::Value> =
            serde_json::from_slice(&once).unwrap_or_default();
        let expected: Vec<&String> = theirs.iter().filter(|(_, v)| !v.is_null()).map(|(k, _)| k).collect();
        let mut got: Vec<&String> = ours.keys().collect();
        got.sort();
        let mut expected_sorted = expected.clone();
        expected_sorted.sort();
        prop_assert_eq!(got, expected_sorted);
    }

    #[test]
    fn signatures_round_trip(
        key in "[ -~]{1,40}",
        nonce in "[A-F0-9]{0,64}",
        ts in "[0-9]{13}",
        body in json_object(),
    ) {
        let keys = vec!["unrelated-current-key".to_owned(), key.clone()];
        let b = body.as_bytes();
        let sig = basic_signature::sign(&key, &nonce, &ts, b);
        prop_assert_eq!(basic_signature::verify(&keys, &nonce, &ts, &sig.to_uppercase(), b), Some(1));
        let kit = kit_signature::sign(&key, &nonce, &ts, b);
        prop_assert_eq!(kit_signature::verify(&keys, &nonce, &ts, &kit, b), Some(1));
        // Signed over the canonical form, verified from the raw bytes.
        if let Some(c) = canonical_form(b) {
            let over_canonical = basic_signature::sign(&key, &nonce, &ts, &c);
            prop_assert_eq!(basic_signature::verify(&keys, &nonce, &ts, &over_canonical, b), Some(1));
        }
        let header = body_sign::header_value(&key, b);
        prop_assert_eq!(body_sign::verify(&key, b, &header), Ok(()));
    }

    #[test]
    fn aes_round_trip(key in ".{0,40}", text in ".{0,60}", aes128: bool) {
        let t = if aes128 { EncryptType::Aes128 } else { EncryptType::Aes256 };
        let value = aes_credentials::encrypt(&key, t, &text);
        prop_assert_eq!(aes_credentials::decrypt(&key, t, &value), Ok(text));
    }

    #[test]
    fn envelope_is_ascii_json(message in ".{0,300}", value in ".{0,40}") {
        let body = envelope::render(
            ResultCode::InternalError,
            &message,
            &[("memo", serde_json::Value::String(value.clone()))],
        );
        prop_assert!(body.is_ascii());
        let parsed: serde_json::Value = serde_json::from_slice(&body)
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(&parsed["resultCode"], "000005");
        prop_assert_eq!(&parsed["memo"], &serde_json::Value::String(value));
        let msg = parsed["resultMsg"].as_str().unwrap_or_default();
        prop_assert!(msg.encode_utf16().count() <= 255);
        prop_assert!(message.starts_with(msg));
    }

    #[test]
    fn compact_time_round_trip(ms in 0i64..253_402_300_800_000) {
        let text = timestamp::format_compact_ms(ms);
        prop_assert_eq!(text.len(), 17);
        prop_assert_eq!(timestamp::parse_expire_time(&text), Ok(ms));
    }
}
