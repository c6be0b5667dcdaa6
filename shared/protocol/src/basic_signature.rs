//! The V2 basic request signature: the `signature` URL query parameter (docs/protocol.md, signatures §3, D1).
//!
//! ```text
//! inner     = hex(HMAC-SHA256(accessKey, payload))
//! signature = hex(HMAC-SHA256(accessKey, accessKey ‖ nonce ‖ timestamp ‖ inner))
//! ```
//!
//! Used by every activity of the SaaS V2, online-License, License 2.0 and order-notification
//! interfaces. Timestamp and nonce checks are separate (see [`crate::timestamp`]).

use crate::canonical::canonical_form;
use crate::mac::{ct_eq_32, decode_hex_32, hmac_sha256};

/// Computes the signature of `payload` in lower-case hex (64 characters).
///
/// `nonce` and `timestamp` are used exactly as received in the query (after URL decoding).
pub fn sign(access_key: &str, nonce: &str, timestamp: &str, payload: &[u8]) -> String {
    hex::encode(digest(access_key, nonce, timestamp, payload))
}

fn digest(access_key: &str, nonce: &str, timestamp: &str, payload: &[u8]) -> [u8; 32] {
    let key = access_key.as_bytes();
    let inner = hex::encode(hmac_sha256(key, &[payload]));
    hmac_sha256(
        key,
        &[
            key,
            nonce.as_bytes(),
            timestamp.as_bytes(),
            inner.as_bytes(),
        ],
    )
}

/// Verifies a received `signature` and returns the index in `keys` of the first key that
/// matches, or `None` (answer `000001`).
///
/// For each key in order (current first, then previous), the raw body is tried first and then
/// its canonical form (docs/protocol.md, signatures §2) if one exists and differs from the raw bytes (D1). The
/// canonical form is computed at most once per call, and only when a raw attempt has failed.
/// The signature is compared case-insensitively by decoding it to 32 bytes, in constant time; a
/// value that is not 64 hex digits never matches. Empty keys are skipped: an unset key must not
/// turn into an HMAC key that anyone can compute.
pub fn verify(
    keys: &[String],
    nonce: &str,
    timestamp: &str,
    signature: &str,
    body: &[u8],
) -> Option<usize> {
    let received = decode_hex_32(signature)?;
    // None = not computed yet; Some(None) = the body has no canonical form or it equals the raw.
    let mut canonical: Option<Option<Vec<u8>>> = None;
    for (index, key) in keys.iter().enumerate() {
        if key.is_empty() {
            continue;
        }
        if ct_eq_32(&digest(key, nonce, timestamp, body), &received) {
            return Some(index);
        }
        let alt =
            canonical.get_or_insert_with(|| canonical_form(body).filter(|c| c.as_slice() != body));
        if let Some(alt) = alt {
            if ct_eq_32(&digest(key, nonce, timestamp, alt), &received) {
                return Some(index);
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "test-access-key-123";
    const NONCE: &str = "50D83FDECAED6CCD8EF597F2A577950527928BA287D04E6036E92B2806FD17DA";
    const TS: &str = "1680508066618";
    const BODY: &str = r#"{"activity":"newInstance","businessId":"87b94795-0603-4e24-8ae5-69420d60e3c8","orderId":"CS2211181819B4LVS","orderLineId":"CS2211181819B4LVS-000001","testFlag":"0"}"#;
    const SIG: &str = "180f5821c295923fc04bd6b4ed0121cc182c351e8e5fe1052a026db9aced85ce";

    #[test]
    fn spec_vector_intermediate_values() {
        let inner = hex::encode(hmac_sha256(KEY.as_bytes(), &[BODY.as_bytes()]));
        assert_eq!(
            inner,
            "1976b4d4604f895cff9dbef30f1c88d328b887ddc5cb7bd8e266e017a4f47c04"
        );
        assert_eq!(sign(KEY, NONCE, TS, BODY.as_bytes()), SIG);
    }

    #[test]
    fn canonical_is_computed_lazily_and_skipped_when_equal() {
        let keys = vec![KEY.to_owned()];
        assert_eq!(verify(&keys, NONCE, TS, SIG, BODY.as_bytes()), Some(0));
        assert_eq!(
            verify(&keys, NONCE, TS, &"0".repeat(64), BODY.as_bytes()),
            None
        );
    }

    #[test]
    fn empty_keys_are_skipped() {
        let sig = sign("", NONCE, TS, BODY.as_bytes());
        let keys = vec![String::new()];
        assert_eq!(verify(&keys, NONCE, TS, &sig, BODY.as_bytes()), None);
    }
}
