//! Standard Webhooks v1 (standardwebhooks.com): how koogate signs every request it sends to the
//! ISV's product (events, provisioning requests), and how a receiver checks one.
//!
//! The signed content is `{webhook-id}.{webhook-timestamp}.{body}` over the exact body bytes; the
//! key is the Base64-decoded part of a `whsec_…` secret; the `webhook-signature` header holds one
//! space-separated `v1,<base64 HMAC-SHA256>` entry per secret, so a receiver that knows either
//! the current or the previous secret accepts the message during a rotation.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// The prefix of a webhook secret.
pub const SECRET_PREFIX: &str = "whsec_";
/// The shortest secret koogate accepts: 24 random bytes, as the specification recommends.
pub const MIN_SECRET_BYTES: usize = 24;

/// Why a secret or a signature was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookError {
    /// The secret does not start with `whsec_`.
    #[error("webhook secret does not start with whsec_")]
    SecretPrefix,
    /// The part after `whsec_` is not Base64.
    #[error("webhook secret is not Base64 after whsec_")]
    SecretEncoding,
    /// The decoded secret is shorter than [`MIN_SECRET_BYTES`].
    #[error("webhook secret has {0} bytes; at least 24 are required")]
    SecretTooShort(usize),
    /// No `v1,` entry of the header matches.
    #[error("no webhook-signature entry matches")]
    NoMatch,
    /// The timestamp is not whole seconds or lies outside the tolerance.
    #[error("webhook-timestamp is malformed or outside the tolerance")]
    Timestamp,
}

/// One signing secret, decoded once.
#[derive(Clone)]
pub struct WebhookSecret {
    key: Vec<u8>,
}

/// Never prints the key.
impl std::fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebhookSecret(<redacted>)")
    }
}

impl WebhookSecret {
    /// Parses `whsec_<base64>`; `strict` also requires [`MIN_SECRET_BYTES`] (koogate's own
    /// secrets; a receiver checking the published test vector is not strict).
    pub fn parse(secret: &str, strict: bool) -> Result<WebhookSecret, WebhookError> {
        let encoded = secret
            .trim()
            .strip_prefix(SECRET_PREFIX)
            .ok_or(WebhookError::SecretPrefix)?;
        let key = B64
            .decode(encoded)
            .map_err(|_| WebhookError::SecretEncoding)?;
        if strict && key.len() < MIN_SECRET_BYTES {
            return Err(WebhookError::SecretTooShort(key.len()));
        }
        Ok(WebhookSecret { key })
    }

    /// A fresh secret of 32 random bytes, as `whsec_<base64>`.
    pub fn generate() -> String {
        let bytes: [u8; 32] = rand::random();
        format!("{SECRET_PREFIX}{}", B64.encode(bytes))
    }

    /// The `v1,<base64>` entry for one message.
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        format!("v1,{}", B64.encode(self.mac(id, timestamp, body)))
    }

    fn mac(&self, id: &str, timestamp: i64, body: &[u8]) -> Vec<u8> {
        // HMAC accepts keys of any length; new_from_slice cannot fail for it.
        let mut mac = match <Hmac<Sha256> as Mac>::new_from_slice(&self.key) {
            Ok(m) => m,
            Err(_) => return Vec::new(),
        };
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        mac.finalize().into_bytes().to_vec()
    }

    /// Checks a `webhook-signature` header (any matching `v1,` entry, compared in constant time)
    /// and that `timestamp` is within `tolerance_s` of `now_s`.
    pub fn verify(
        &self,
        id: &str,
        timestamp: &str,
        body: &[u8],
        header: &str,
        now_s: i64,
        tolerance_s: i64,
    ) -> Result<(), WebhookError> {
        let ts: i64 = timestamp
            .trim()
            .parse()
            .map_err(|_| WebhookError::Timestamp)?;
        if (now_s - ts).abs() > tolerance_s {
            return Err(WebhookError::Timestamp);
        }
        let expected = self.mac(id, ts, body);
        let matched = header
            .split(' ')
            .filter_map(|entry| entry.strip_prefix("v1,"))
            .filter_map(|sig| B64.decode(sig).ok())
            .any(|sig| bool::from(sig.ct_eq(&expected)));
        if matched {
            Ok(())
        } else {
            Err(WebhookError::NoMatch)
        }
    }
}

/// The `webhook-signature` header value: one entry per secret, current first.
pub fn signature_header(
    secrets: &[WebhookSecret],
    id: &str,
    timestamp: i64,
    body: &[u8],
) -> String {
    secrets
        .iter()
        .map(|s| s.sign(id, timestamp, body))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
    const ID: &str = "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk";
    const TS: i64 = 1649367553;
    const BODY: &[u8] = br#"{"email":"test@example.com","username":"test_user"}"#;
    const SIGNATURE: &str = "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=";

    #[test]
    fn the_published_vector_signs_and_verifies() {
        let secret = WebhookSecret::parse(SECRET, false).unwrap();
        assert_eq!(secret.sign(ID, TS, BODY), SIGNATURE);
        assert!(
            WebhookSecret::parse(SECRET, true).is_ok(),
            "24 bytes are enough"
        );
        assert_eq!(
            secret.verify(ID, "1649367553", BODY, SIGNATURE, TS, 300),
            Ok(())
        );
    }

    #[test]
    fn tampering_and_stale_timestamps_fail() {
        let secret = WebhookSecret::parse(SECRET, false).unwrap();
        let tampered = br#"{"email":"test@example.com","username":"test_user2"}"#;
        assert_eq!(
            secret.verify(ID, "1649367553", tampered, SIGNATURE, TS, 300),
            Err(WebhookError::NoMatch)
        );
        assert_eq!(
            secret.verify(ID, "1649367553", BODY, SIGNATURE, TS + 301, 300),
            Err(WebhookError::Timestamp)
        );
    }

    #[test]
    fn a_rotated_header_carries_one_entry_per_secret() {
        let old = WebhookSecret::parse(SECRET, false).unwrap();
        let new = WebhookSecret::parse(&WebhookSecret::generate(), true).unwrap();
        let header = signature_header(&[new.clone(), old.clone()], ID, TS, BODY);
        assert_eq!(header.split(' ').count(), 2);
        assert!(header.ends_with(SIGNATURE));
        assert_eq!(old.verify(ID, "1649367553", BODY, &header, TS, 5), Ok(()));
        assert_eq!(new.verify(ID, "1649367553", BODY, &header, TS, 5), Ok(()));
    }

    #[test]
    fn bad_secrets_say_why() {
        assert_eq!(
            WebhookSecret::parse("C2FV", false).unwrap_err(),
            WebhookError::SecretPrefix
        );
        assert_eq!(
            WebhookSecret::parse("whsec_***", false).unwrap_err(),
            WebhookError::SecretEncoding
        );
        assert_eq!(
            WebhookSecret::parse("whsec_MDEyMzQ1Njc4OWFiY2RlZg==", true).unwrap_err(),
            WebhookError::SecretTooShort(16)
        );
    }
}
