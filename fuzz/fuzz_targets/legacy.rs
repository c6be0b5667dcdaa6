//! The V1 GET parsers (docs/protocol.md (inbound-legacy)): `decode_query` in both decodings, then `parse_legacy`
//! and `parse_legacy_on` for both routes; `decode_extend_params` and `decrypt_contact` on the
//! same text.
//!
//! Input: a raw query string (`activity=newInstance&...`).
//!
//! Proves: no panic; errors answer `000002` with a non-empty message of at most 255 bytes; an
//! accepted request is accepted identically on its own route and refused on the other route;
//! a bad `saasExtendParams` error names the parameter.
#![no_main]

use koogate_protocol::aes_credentials::EncryptType;
use koogate_protocol::legacy_request::{decode_extend_params, decrypt_contact, parse_legacy_on};
use koogate_protocol::v1_auth::{decode_query, Decoding};
use koogate_protocol::{parse_legacy, LegacyRoute, ResultCode};
use koogate_protocol_fuzz::text;
use libfuzzer_sys::fuzz_target;

const LEGACY_KEY: &str = "fuzz-legacy-key";

fuzz_target!(|data: &[u8]| {
    let query = text(data);
    for decoding in [Decoding::Strict, Decoding::Form] {
        let params = decode_query(&query, decoding);
        match parse_legacy(&params) {
            Ok(r) => {
                let _ = (r.is_debug(), r.instance_id(), format!("{r:?}"));
                let route = r.activity().route();
                assert_eq!(parse_legacy_on(route, &params).as_ref(), Ok(&r));
                let other = match route {
                    LegacyRoute::Saas => LegacyRoute::License,
                    LegacyRoute::License => LegacyRoute::Saas,
                };
                assert!(parse_legacy_on(other, &params).is_err());
            }
            Err(e) => {
                assert_eq!(e.result_code(), ResultCode::InvalidParam);
                let msg = e.to_string();
                assert!(!msg.is_empty() && msg.len() <= 255, "resultMsg: {msg:?}");
            }
        }
    }
    if let Err(e) = decode_extend_params(&query) {
        assert!(e.to_string().contains("saasExtendParams"));
    }
    for t in [EncryptType::Aes256, EncryptType::Aes128] {
        let _ = decrypt_contact(LEGACY_KEY, t, &query);
    }
});
