//! The joint-operation `clientSecret` (D15): a Base64 RSA-OAEP ciphertext made by the marketplace
//! with the public key the merchant uploaded with its app credential.
//!
//! The pages name only "RSA ≥ 3072, OAEP", so decryption tries the parameter sets in the order of
//! D15 — (SHA-256, MGF1-SHA-1) as Java's `OAEPWithSHA-256AndMGF1Padding` does by default, then
//! (SHA-256, MGF1-SHA-256), then (SHA-1, MGF1-SHA-1) — and takes the first that unpads. OAEP's
//! label check makes a wrong parameter set fail rather than yield garbage.
//!
//! The secret is stored as received and decrypted only at the moment it is used (token and
//! refresh calls, and applicationSync's validation); the plaintext is never logged, so
//! [`ClientSecretError`] carries no part of the input.

use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use base64::Engine as _;
use rsa::pkcs1::DecodeRsaPrivateKey;
use rsa::pkcs8::DecodePrivateKey;
use rsa::{Oaep, RsaPrivateKey};
use sha1::Sha1;
use sha2::Sha256;

/// Why a `clientSecret` could not be decrypted. Messages say what failed and never carry the
/// key, the ciphertext or any plaintext.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientSecretError {
    /// The configured private key is neither a PKCS#8 (`BEGIN PRIVATE KEY`) nor a PKCS#1
    /// (`BEGIN RSA PRIVATE KEY`) PEM RSA key.
    #[error("the RSA private key (rsa_private_key_pem) is not a PKCS#8 or PKCS#1 PEM RSA key")]
    BadPrivateKey,
    /// The ciphertext is empty.
    #[error("clientSecret is empty")]
    Empty,
    /// The ciphertext is not Base64.
    #[error("clientSecret is not Base64")]
    NotBase64,
    /// No OAEP parameter set of D15 unpads the ciphertext with this key.
    #[error(
        "clientSecret does not decrypt with the merchant's RSA private key under any OAEP \
         parameter set (SHA-256/MGF1-SHA-1, SHA-256/MGF1-SHA-256, SHA-1/MGF1-SHA-1): it was \
         encrypted to another public key, or it is not an RSA-OAEP ciphertext"
    )]
    Undecryptable,
    /// The plaintext is not UTF-8 text.
    #[error("the decrypted clientSecret is not UTF-8 text")]
    NotUtf8,
}

/// The merchant's RSA private key, parsed once and reused for every decryption.
#[derive(Clone)]
pub struct MerchantKey(RsaPrivateKey);

impl std::fmt::Debug for MerchantKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MerchantKey(<redacted>)")
    }
}

impl MerchantKey {
    /// Parses a PEM private key: PKCS#8 (`BEGIN PRIVATE KEY`, what `koogate keygen` and
    /// `openssl genpkey` write) or PKCS#1 (`BEGIN RSA PRIVATE KEY`, older OpenSSL and Java tools).
    pub fn from_pem(pem: &str) -> Result<Self, ClientSecretError> {
        let pem = pem.trim();
        RsaPrivateKey::from_pkcs8_pem(pem)
            .or_else(|_| RsaPrivateKey::from_pkcs1_pem(pem))
            .map(MerchantKey)
            .map_err(|_| ClientSecretError::BadPrivateKey)
    }

    /// Decrypts a Base64 `clientSecret` with the parameter sets of D15, in order.
    pub fn decrypt(&self, base64_ciphertext: &str) -> Result<String, ClientSecretError> {
        let ciphertext = decode_base64(base64_ciphertext)?;
        let mut rng = rand::rngs::OsRng;
        let attempts: [fn() -> Oaep; 3] = [
            Oaep::new_with_mgf_hash::<Sha256, Sha1>,
            Oaep::new::<Sha256>,
            Oaep::new::<Sha1>,
        ];
        for padding in attempts {
            // Blinded: the decryption time does not depend on the key (the ciphertext comes
            // from the network).
            if let Ok(plain) = self.0.decrypt_blinded(&mut rng, padding(), &ciphertext) {
                return String::from_utf8(plain).map_err(|_| ClientSecretError::NotUtf8);
            }
        }
        Err(ClientSecretError::Undecryptable)
    }
}

/// Decrypts a Base64 `clientSecret` with the merchant's PEM private key (D15). Parse the key once
/// with [`MerchantKey::from_pem`] when decrypting many.
pub fn decrypt(
    private_key_pem: &str,
    base64_ciphertext: &str,
) -> Result<String, ClientSecretError> {
    MerchantKey::from_pem(private_key_pem)?.decrypt(base64_ciphertext)
}

/// Standard Base64 with or without padding, and the URL-safe alphabet as a fallback; line breaks
/// and spaces (Java's MIME encoder, copy-paste) are ignored.
fn decode_base64(text: &str) -> Result<Vec<u8>, ClientSecretError> {
    let compact: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    if compact.is_empty() {
        return Err(ClientSecretError::Empty);
    }
    [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD]
        .iter()
        .find_map(|engine| engine.decode(&compact).ok())
        .ok_or(ClientSecretError::NotBase64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rsa::RsaPublicKey;

    /// Generated once with `openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:3072`.
    const PKCS8_PEM: &str = include_str!("../tests/fixtures/client_secret_pkcs8.pem");
    /// Generated once with `openssl genrsa -traditional 3072`.
    const PKCS1_PEM: &str = include_str!("../tests/fixtures/client_secret_pkcs1.pem");
    /// The plaintext of the three OpenSSL ciphertexts below.
    const OPENSSL_PLAIN: &str = "S3cr3t-客户端-0001";

    fn encrypt(pem: &str, padding: Oaep, plain: &str) -> String {
        let key = MerchantKey::from_pem(pem).unwrap();
        let public = RsaPublicKey::from(&key.0);
        let ct = public
            .encrypt(&mut rand::rngs::OsRng, padding, plain.as_bytes())
            .unwrap();
        STANDARD.encode(ct)
    }

    #[test]
    fn sha256_with_mgf1_sha1_decrypts() {
        let ct = encrypt(PKCS8_PEM, Oaep::new_with_mgf_hash::<Sha256, Sha1>(), "s-1");
        assert_eq!(decrypt(PKCS8_PEM, &ct).unwrap(), "s-1");
    }

    #[test]
    fn sha256_with_mgf1_sha256_decrypts() {
        let ct = encrypt(PKCS8_PEM, Oaep::new::<Sha256>(), "s-2");
        assert_eq!(decrypt(PKCS8_PEM, &ct).unwrap(), "s-2");
    }

    #[test]
    fn sha1_with_mgf1_sha1_decrypts() {
        let ct = encrypt(PKCS8_PEM, Oaep::new::<Sha1>(), "s-3");
        assert_eq!(decrypt(PKCS8_PEM, &ct).unwrap(), "s-3");
    }

    #[test]
    fn openssl_ciphertexts_of_every_parameter_set_decrypt() {
        for ct in [
            include_str!("../tests/fixtures/oaep_sha256_mgf1_sha1.b64"),
            include_str!("../tests/fixtures/oaep_sha256_mgf1_sha256.b64"),
            include_str!("../tests/fixtures/oaep_sha1_mgf1_sha1.b64"),
        ] {
            assert_eq!(decrypt(PKCS8_PEM, ct).unwrap(), OPENSSL_PLAIN);
        }
    }

    #[test]
    fn pkcs1_pem_key_loads_and_decrypts() {
        let ct = encrypt(PKCS1_PEM, Oaep::new_with_mgf_hash::<Sha256, Sha1>(), "p1");
        assert!(PKCS1_PEM.contains("BEGIN RSA PRIVATE KEY"));
        assert_eq!(decrypt(PKCS1_PEM, &ct).unwrap(), "p1");
    }

    #[test]
    fn line_broken_base64_decrypts() {
        let ct = encrypt(PKCS8_PEM, Oaep::new::<Sha1>(), "wrapped");
        let wrapped: String = ct
            .as_bytes()
            .chunks(76)
            .map(|c| format!("{}\r\n", std::str::from_utf8(c).unwrap()))
            .collect();
        assert_eq!(decrypt(PKCS8_PEM, &wrapped).unwrap(), "wrapped");
    }

    #[test]
    fn ciphertext_for_another_key_is_undecryptable() {
        let ct = encrypt(PKCS1_PEM, Oaep::new::<Sha256>(), "other");
        assert_eq!(
            decrypt(PKCS8_PEM, &ct),
            Err(ClientSecretError::Undecryptable)
        );
    }

    #[test]
    fn garbage_is_an_error() {
        assert_eq!(decrypt(PKCS8_PEM, ""), Err(ClientSecretError::Empty));
        assert_eq!(
            decrypt(PKCS8_PEM, "not base64 at all!"),
            Err(ClientSecretError::NotBase64)
        );
        assert_eq!(
            decrypt(PKCS8_PEM, &STANDARD.encode(b"short")),
            Err(ClientSecretError::Undecryptable)
        );
        assert_eq!(
            decrypt(PKCS8_PEM, &STANDARD.encode(vec![0x5a_u8; 384])),
            Err(ClientSecretError::Undecryptable)
        );
        assert_eq!(
            decrypt(
                "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----",
                "AAAA"
            ),
            Err(ClientSecretError::BadPrivateKey)
        );
        assert_eq!(decrypt("", "AAAA"), Err(ClientSecretError::BadPrivateKey));
    }

    #[test]
    fn errors_do_not_echo_the_input() {
        let msg = decrypt(PKCS8_PEM, "c2VjcmV0LXZhbHVl")
            .unwrap_err()
            .to_string();
        assert!(!msg.contains("c2VjcmV0LXZhbHVl"));
        assert!(format!("{:?}", MerchantKey::from_pem(PKCS8_PEM).unwrap()).contains("redacted"));
    }
}
