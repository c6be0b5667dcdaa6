//! The joint-operation kit request signature: the `x-sign` header (docs/protocol.md, signatures §4, D2).
//!
//! ```text
//! x-sign = hex(HMAC-SHA256(accessKey, accessKey ‖ x-nonce ‖ x-timestamp ‖ payload))
//! ```
//!
//! A single HMAC over the payload itself, unlike the basic scheme's double HMAC. Huawei's sample
//! verifies the canonical form, so that form is tried before the raw bytes.

use crate::canonical::canonical_form;
use crate::mac::{ct_eq_32, decode_hex_32, hmac_sha256};

/// Computes `x-sign` for `payload` in lower-case hex (64 characters). Header values verbatim.
pub fn sign(access_key: &str, nonce: &str, timestamp: &str, payload: &[u8]) -> String {
    hex::encode(digest(access_key, nonce, timestamp, payload))
}

fn digest(access_key: &str, nonce: &str, timestamp: &str, payload: &[u8]) -> [u8; 32] {
    let key = access_key.as_bytes();
    hmac_sha256(key, &[key, nonce.as_bytes(), timestamp.as_bytes(), payload])
}

/// Verifies a received `x-sign` and returns the index in `keys` of the first key that matches,
/// or `None` (answer `000001`).
///
/// For each key in order (current first, then previous): the canonical form of the body first
/// (when the body has one), then the raw bytes when they differ from it (D2). The canonical form
/// is computed once per call. Hex is compared case-insensitively on the decoded 32 bytes in
/// constant time. Empty keys are skipped.
pub fn verify(
    keys: &[String],
    nonce: &str,
    timestamp: &str,
    signature: &str,
    body: &[u8],
) -> Option<usize> {
    let received = decode_hex_32(signature)?;
    if keys.iter().all(String::is_empty) {
        return None;
    }
    let canonical = canonical_form(body);
    let raw_differs = canonical.as_deref() != Some(body);
    for (index, key) in keys.iter().enumerate() {
        if key.is_empty() {
            continue;
        }
        if let Some(c) = &canonical {
            if ct_eq_32(&digest(key, nonce, timestamp, c), &received) {
                return Some(index);
            }
        }
        if raw_differs && ct_eq_32(&digest(key, nonce, timestamp, body), &received) {
            return Some(index);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_vector() {
        let body = r#"{"activity":"newInstance","businessId":"87b94795-0603-4e24-8ae5-69420d60e3c8","orderId":"CS2211181819B4LVS","orderLineId":"CS2211181819B4LVS-000001","testFlag":"0"}"#;
        assert_eq!(
            sign(
                "test-access-key-123",
                "50D83FDECAED6CCD8EF597F2A577950527928BA287D04E6036E92B2806FD17DA",
                "1680508066618",
                body.as_bytes()
            ),
            "7942de36be79466e6152bd09323b92f3630b2b5cf94b62f8206e8b892f7e4660"
        );
    }
}
