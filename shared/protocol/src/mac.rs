//! HMAC-SHA256 and constant-time comparison shared by every signature scheme.

use hmac::digest::{Key, KeyInit};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

type HmacSha256 = Hmac<Sha256>;

/// HMAC-SHA256 over the concatenation of `parts`, keyed with `key` (any length).
///
/// The key is brought to the 64-byte block size here exactly as RFC 2104 prescribes (hashed when
/// longer, zero-padded when shorter), so the infallible fixed-size constructor can be used and no
/// `Result` that can never fail has to be unwrapped.
pub(crate) fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let mut block = Key::<HmacSha256>::default();
    if key.len() > block.len() {
        copy_prefix(&mut block, &Sha256::digest(key));
    } else {
        copy_prefix(&mut block, key);
    }
    let mut mac = <HmacSha256 as KeyInit>::new(&block);
    for part in parts {
        mac.update(part);
    }
    let mut out = [0u8; 32];
    copy_prefix(&mut out, &mac.finalize().into_bytes());
    out
}

/// Copies `min(dst.len(), src.len())` bytes from the start of `src` to the start of `dst`.
pub(crate) fn copy_prefix(dst: &mut [u8], src: &[u8]) {
    for (d, s) in dst.iter_mut().zip(src) {
        *d = *s;
    }
}

/// Constant-time equality of two 32-byte values.
pub(crate) fn ct_eq_32(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.ct_eq(b).into()
}

/// Decodes hex (either case) into exactly 32 bytes; `None` when it is not 64 hex digits.
pub(crate) fn decode_hex_32(text: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(text, &mut out).ok()?;
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_hmac_crate_for_every_key_length() {
        for len in [0usize, 1, 19, 63, 64, 65, 128, 300] {
            let key: Vec<u8> = (0..len).map(|i| (i * 7 + 3) as u8).collect();
            let mut reference = <HmacSha256 as Mac>::new_from_slice(&key).unwrap();
            reference.update(b"hello world");
            let expected: [u8; 32] = reference.finalize().into_bytes().into();
            assert_eq!(
                hmac_sha256(&key, &[b"hello", b" ", b"world"]),
                expected,
                "len {len}"
            );
        }
    }

    #[test]
    fn rfc4231_case_2() {
        let out = hmac_sha256(b"Jefe", &[b"what do ya want for nothing?"]);
        assert_eq!(
            hex::encode(out),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn hex_decoding() {
        let lower = "180f5821c295923fc04bd6b4ed0121cc182c351e8e5fe1052a026db9aced85ce";
        assert_eq!(decode_hex_32(lower), decode_hex_32(&lower.to_uppercase()));
        assert!(decode_hex_32(lower).is_some());
        assert!(decode_hex_32(&lower[..62]).is_none());
        assert!(decode_hex_32(&format!("{lower}00")).is_none());
        assert!(decode_hex_32(&lower.replace('f', "g")).is_none());
        assert!(decode_hex_32("").is_none());
    }
}
