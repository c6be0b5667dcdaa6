//! The V1 `authToken` verifiers (docs/protocol.md, signatures §6, D16): `verify_get` on a raw query,
//! `verify_post` on a header and a JSON body, `post_timestamp`, and `decode_query`.
//!
//! Input: `key0 ␟ key1 ␟ raw query ␟ header token ␟ POST body` (␟ = 0xFF).
//!
//! Proves: no panic on any query, token or body; a match never names an empty key nor returns
//! `authToken` among the covered parameters; and the round trips hold: a POST body with a
//! `timeStamp` signed by `sign_post` with `key1` verifies at key1's index, and the query's
//! parameters (alphanumeric names), signed by `sign_get` with `key1` and sent fully
//! percent-encoded, verify at key1's index.
#![no_main]

use koogate_protocol::v1_auth::{self, decode_query, Decoding, AUTH_TOKEN, TIME_STAMP};
use koogate_protocol::{verify_get, verify_post, V1Verification};
use koogate_protocol_fuzz::{fields, percent_encode, text};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let [k0, k1, query, token, body] = fields::<5>(data);
    let keys = vec![text(k0).into_owned(), text(k1).into_owned()];
    let (query, token) = (text(query), text(token));

    let _ = decode_query(&query, Decoding::Form);
    if let V1Verification::Verified {
        key_index, params, ..
    } = verify_get(&keys, &query)
    {
        assert!(!keys[key_index].is_empty());
        assert!(params.iter().all(|(n, _)| n != AUTH_TOKEN));
    }
    if let Some(i) = verify_post(&keys, &token, body) {
        assert!(!keys[i].is_empty());
    }

    let key = &keys[1];
    if key.is_empty() {
        return;
    }
    let expected = Some(usize::from(keys[0] != *key));
    if v1_auth::post_timestamp(body).is_some() {
        let signed = v1_auth::sign_post(key, body);
        assert!(
            signed.is_some(),
            "an object body with a timeStamp has a token"
        );
        let signed = signed.unwrap_or_default();
        assert_eq!(verify_post(&keys, &signed, body), expected);
        // A form-decoded header (`+` read as a space) still verifies, unless the token starts
        // with `+`: that space is indistinguishable from the header's optional whitespace,
        // which HTTP strips (and so does the verifier).
        if !signed.starts_with('+') {
            assert_eq!(
                verify_post(&keys, &signed.replace('+', " "), body),
                expected
            );
        }
    }

    let mut params: Vec<(String, String)> = decode_query(&query, Decoding::Strict)
        .into_iter()
        .filter(|(n, _)| {
            !n.is_empty()
                && n.bytes().all(|b| b.is_ascii_alphanumeric())
                && n != AUTH_TOKEN
                && n != TIME_STAMP
        })
        .collect();
    params.push((TIME_STAMP.to_owned(), "20170621185532100".to_owned()));
    let signed = v1_auth::sign_get(key, &params);
    let mut sent: Vec<String> = params
        .iter()
        .map(|(n, v)| format!("{}={}", percent_encode(n), percent_encode(v)))
        .collect();
    sent.push(format!("{AUTH_TOKEN}={}", percent_encode(&signed)));
    match verify_get(&keys, &sent.join("&")) {
        V1Verification::Verified { key_index, .. } => assert_eq!(Some(key_index), expected),
        other => panic!("round trip not verified: {other:?}"),
    }
});
