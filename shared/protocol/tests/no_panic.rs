//! Property tests: no public entry point panics on any input, and the round trips hold.

use koogate_protocol::aes_credentials::{self, EncryptType};
use koogate_protocol::envelope;
use koogate_protocol::legacy_request::decode_extend_params;
use koogate_protocol::v1_auth::encode_component as percent_encode;
use koogate_protocol::v1_auth::{self, Decoding};
use koogate_protocol::{
    basic_signature, body_sign, canonical_form, kit_signature, parse_basic, parse_legacy,
    parse_license, parse_order_notify, peek_activity, timestamp, verify_get, verify_post, Activity,
    LegacyActivity, LicenseActivity, ResultCode, V1Verification,
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

/// A License 2.0 or `orderNotify` shaped body.
fn license_body() -> impl Strategy<Value = String> {
    let activity = prop_oneof![
        4 => prop::sample::select(
            LicenseActivity::ALL
                .iter()
                .map(|a| a.name())
                .chain(["orderNotify"])
                .collect::<Vec<_>>()
        )
        .prop_map(|a| format!("\"{a}\"")),
        1 => json_value(),
    ];
    let field = prop::sample::select(vec![
        "license",
        "orderId",
        "orderLineId",
        "scene",
        "productId",
        "expireTime",
        "status",
        "testFlag",
    ]);
    let value = prop_oneof![
        3 => "[A-Z_a-z0-9-]{0,20}".prop_map(|s| format!("\"{s}\"")),
        1 => "[0-9]{14}|[0-9]{17}".prop_map(|s| format!("\"{s}\"")),
        1 => prop::sample::select(vec!["\"FREEZE\"", "\"UNFREEZE\"", "\"RENEWAL\"", "1", "null"])
            .prop_map(str::to_owned),
        1 => json_value(),
    ];
    (activity, prop::collection::vec((field, value), 0..10)).prop_map(|(a, fields)| {
        let mut parts = vec![format!("\"activity\":{a}")];
        parts.extend(fields.iter().map(|(k, v)| format!("\"{k}\":{v}")));
        format!("{{{}}}", parts.join(","))
    })
}

/// A V1 parameter name: the spec's, or anything.
fn v1_name() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(vec![
            "activity", "authToken", "timeStamp", "testFlag", "orderId", "instanceId",
            "customerId", "productId", "businessId", "expireTime", "instanceStatus", "skuCode",
            "periodNumber", "amount", "diskSize", "bandWidth", "mobilePhone", "email",
            "saasExtendParams", "trialToFormal",
        ])
        .prop_map(str::to_owned),
        1 => ".{0,8}",
    ]
}

/// A V1 parameter value: activity names, digits, Base64-ish text, or anything.
fn v1_value() -> impl Strategy<Value = String> {
    prop_oneof![
        2 => prop::sample::select(LegacyActivity::ALL.iter().map(|a| a.name()).collect::<Vec<_>>())
            .prop_map(str::to_owned),
        1 => "[0-9]{14}|[0-9]{17}|[0-9]{0,25}",
        2 => "[A-Za-z0-9+/= ,]{0,40}",
        1 => prop::sample::select(vec!["FREEZE", "NORMAL", "1", "0", "", " "]).prop_map(str::to_owned),
        1 => ".{0,20}",
    ]
}

/// A raw query: encoded, raw and broken escapes, `+`, stray `=` and `&`.
fn raw_query() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        "[A-Za-z0-9]{0,8}",
        Just("+".to_owned()),
        Just("=".to_owned()),
        Just("&".to_owned()),
        Just("%2B".to_owned()),
        Just("%3D".to_owned()),
        Just("%E4%B8%AD".to_owned()),
        Just("%ff".to_owned()),
        Just("%".to_owned()),
        Just("%4".to_owned()),
        Just("authToken=".to_owned()),
        Just("timeStamp=20170621185532100".to_owned()),
        ".{0,4}",
    ];
    prop::collection::vec(piece, 0..24).prop_map(|p| p.concat())
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
    fn license_and_notify_parsers_never_panic(body in hostile_bytes(), shaped in license_body()) {
        for b in [body.as_slice(), shaped.as_bytes()] {
            match parse_license(b) {
                Ok(r) => {
                    let _ = (r.activity(), r.is_debug(), r.license(), format!("{r:?}"));
                }
                Err(e) => {
                    prop_assert_eq!(e.result_code(), ResultCode::InvalidParam);
                    prop_assert!(!e.to_string().is_empty() && e.to_string().len() <= 255);
                }
            }
            if let Err(e) = parse_order_notify(b) {
                prop_assert!(!e.to_string().is_empty() && e.to_string().len() <= 255);
            }
        }
    }

    #[test]
    fn verify_get_never_panics(
        query in prop_oneof![raw_query(), ".{0,200}"],
        keys in prop::collection::vec(".{0,24}", 0..3),
    ) {
        let _ = verify_get(&keys, &query);
        let _ = v1_auth::decode_query(&query, Decoding::Form);
    }

    #[test]
    fn verify_post_never_panics(
        body in hostile_bytes(),
        token in "[A-Za-z0-9+/ ]{43}=|.{0,60}",
        keys in prop::collection::vec(".{0,24}", 0..3),
    ) {
        let _ = verify_post(&keys, &token, &body);
        let _ = v1_auth::post_timestamp(&body);
    }

    #[test]
    fn parse_legacy_never_panics(params in prop::collection::vec((v1_name(), v1_value()), 0..16)) {
        match parse_legacy(&params) {
            Ok(r) => {
                let _ = (r.activity(), r.is_debug(), r.instance_id(), format!("{r:?}"));
            }
            Err(e) => {
                prop_assert_eq!(e.result_code(), ResultCode::InvalidParam);
                prop_assert!(!e.to_string().is_empty() && e.to_string().len() <= 255);
            }
        }
    }

    #[test]
    fn decode_extend_params_never_panics(
        text in ".{0,80}|[A-Za-z0-9+/= \r\n]{0,80}",
        json in json_value(),
    ) {
        let _ = decode_extend_params(&text);
        use base64::Engine as _;
        let encoded = base64::engine::general_purpose::STANDARD.encode(json.as_bytes());
        if let Err(e) = decode_extend_params(&encoded) {
            prop_assert!(e.to_string().contains("saasExtendParams"));
        }
    }

    #[test]
    fn v1_timestamps_never_panic(s in ".{0,30}|[0-9]{0,20}", a: i64, b: i64, w: i64, utc8: bool) {
        let _ = v1_auth::parse_v1_timestamp(&s);
        let _ = timestamp::parse_compact_ms(&s);
        let _ = v1_auth::v1_fresh(a, b, w, utc8);
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
        let value = aes_credentials::encrypt(&mut rand::rngs::OsRng, &key, t, &text).unwrap();
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
    fn v1_get_round_trip(
        key in "[ -~]{1,40}",
        params in prop::collection::vec(("[A-Za-z][A-Za-z0-9]{0,8}", ".{0,16}"), 0..8),
        ts in "[0-9]{17}",
        raw_token: bool,
    ) {
        let mut params = params;
        params.retain(|(n, _)| n != "authToken" && n != "timeStamp");
        params.push(("timeStamp".to_owned(), ts));
        let token = v1_auth::sign_get(&key, &params);
        let token_text = if raw_token { token.clone() } else { percent_encode(&token) };
        let query: Vec<String> = params
            .iter()
            .map(|(n, v)| format!("{}={}", percent_encode(n), percent_encode(v)))
            .chain([format!("authToken={token_text}")])
            .collect();
        let keys = vec!["unrelated-current-key".to_owned(), key];
        match verify_get(&keys, &query.join("&")) {
            V1Verification::Verified { key_index, params: got, auth_token } => {
                prop_assert_eq!(key_index, 1);
                prop_assert_eq!(auth_token, token);
                let mut expected: Vec<(String, String)> = Vec::new();
                for (n, v) in params {
                    if !expected.iter().any(|(e, _)| *e == n) {
                        expected.push((n, v));
                    }
                }
                prop_assert_eq!(got, expected);
            }
            other => prop_assert!(false, "not verified: {:?}", other),
        }
    }

    #[test]
    fn v1_post_round_trip(key in "[ -~]{1,40}", body in json_object(), ts in "[0-9]{17}") {
        // Add a timeStamp member to any object body.
        let trimmed = body.trim();
        let inner = trimmed.get(1..trimmed.len().saturating_sub(1)).unwrap_or_default();
        let sep = if inner.trim().is_empty() { "" } else { "," };
        let body = format!("{{{inner}{sep}\"timeStamp\":\"{ts}\"}}");
        let token = v1_auth::sign_post(&key, body.as_bytes());
        prop_assert!(token.is_some(), "no token for {}", body);
        let token = token.unwrap_or_default();
        let keys = vec!["unrelated-current-key".to_owned(), key];
        prop_assert_eq!(verify_post(&keys, &token, body.as_bytes()), Some(1));
    }

    #[test]
    fn compact_time_round_trip(ms in 0i64..253_402_300_800_000) {
        let text = timestamp::format_compact_ms(ms);
        prop_assert_eq!(text.len(), 17);
        prop_assert_eq!(timestamp::parse_expire_time(&text), Ok(ms));
    }

    #[test]
    fn kit_parsers_never_panic(body in hostile_bytes(), shaped in kit_body()) {
        use koogate_protocol::kit_request::{parse_kit, KitOp, KitVersion};
        for op in KitOp::ALL {
            for version in [KitVersion::V2, KitVersion::V1] {
                for b in [&body[..], shaped.as_bytes()] {
                    match parse_kit(op, version, b) {
                        Ok(r) => { let _ = (r.tenant_id(), format!("{r:?}")); }
                        Err(e) => prop_assert_eq!(e.result_code(), ResultCode::InvalidParam),
                    }
                }
            }
        }
    }
}

/// A kit-shaped body: the kit fields with values of any type, lists as arrays or as strings
/// (with quoted or bare member names).
fn kit_body() -> impl Strategy<Value = String> {
    let name = prop::sample::select(vec![
        "instanceId",
        "tenantId",
        "tenantCode",
        "name",
        "domainName",
        "appId",
        "clientId",
        "clientSecret",
        "flag",
        "testFlag",
        "timeStamp",
        "orderId",
        "orgCode",
        "orgName",
        "parentCode",
        "currentSyncTime",
    ]);
    let entry = prop::collection::vec(
        (
            prop::sample::select(vec![
                "userName",
                "name",
                "orgCode",
                "orgName",
                "role",
                "enable",
                "employeeType",
                "extension",
                "parentCode",
            ]),
            json_value(),
        ),
        0..6,
    )
    .prop_map(|m| {
        let members: Vec<String> = m.iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
        format!("{{{}}}", members.join(","))
    });
    // The list as an array, as a string holding it, or as a string with bare member names.
    let list_value = (prop::collection::vec(entry, 0..4), 0u8..3).prop_map(|(e, form)| {
        let list = format!("[{}]", e.join(","));
        match form {
            0 => list,
            1 => format!("{list:?}"),
            _ => format!("{:?}", list.replace('"', "")),
        }
    });
    (
        prop::collection::vec((name, json_value()), 0..12),
        prop::sample::select(vec!["userList", "orgInfoList", "orgInfo"]),
        list_value,
    )
        .prop_map(|(members, list_name, list)| {
            let mut parts: Vec<String> = members
                .iter()
                .map(|(k, v)| format!("\"{k}\":{v}"))
                .collect();
            parts.push(format!("\"{list_name}\":{list}"));
            format!("{{{}}}", parts.join(","))
        })
}

// ---- outbound: API Gateway signer, usage push, open-API answers ------------------------------------

mod outbound {
    use koogate_protocol::{apigw_signer, open_api, usage_push};
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn apigw_signer_is_total(
            method in ".{0,8}", path in ".{0,40}", query in ".{0,60}",
            name in ".{0,12}", value in ".{0,30}", body in prop::collection::vec(any::<u8>(), 0..64),
            auth in ".{0,120}",
        ) {
            let headers = [(name.as_str(), value.as_str()), ("X-Sdk-Date", "20240317T144237Z")];
            let input = apigw_signer::SignInput { method: &method, path: &path, query: &query, headers: &headers, body: &body };
            let s = apigw_signer::sign("ak", "sk", &input);
            let parsed = apigw_signer::parse_authorization(&s.authorization).expect("own header parses");
            prop_assert!(apigw_signer::verify("sk", &input, &parsed));
            if let Some(a) = apigw_signer::parse_authorization(&auth) {
                let _ = apigw_signer::verify("sk", &input, &a);
            }
            let _ = apigw_signer::decode(&query);
            let _ = apigw_signer::sdk_date(i64::from_le_bytes([body.first().copied().unwrap_or(0); 8]));
        }

        #[test]
        fn usage_push_is_total(
            bytes in prop::collection::vec(any::<u8>(), 0..128), text in ".{0,40}", n in any::<i64>(),
        ) {
            if let Some(sorted) = usage_push::sorted_compact(&bytes) {
                // Sorting is idempotent.
                prop_assert_eq!(usage_push::sorted_compact(sorted.as_bytes()), Some(sorted.clone()));
            }
            let _ = usage_push::parse_time(&text);
            let _ = usage_push::normalise_value(&text);
            let _ = usage_push::check_interval(&text, &text, n);
            let _ = usage_push::format_time(n);
            let _ = usage_push::verify("k", &text, &text, &text, &text);
        }

        #[test]
        fn open_api_answers_are_total(bytes in prop::collection::vec(any::<u8>(), 0..128), status in any::<u16>(), code in ".{0,12}") {
            let _ = open_api::parse_query_order(&bytes);
            let _ = open_api::parse_license_answer(&bytes);
            let _ = open_api::result_code(&bytes);
            let _ = open_api::classify(status, Some(&code));
            let _ = open_api::upload_path(&code);
        }
    }
}
