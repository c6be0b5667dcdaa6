//! The joint-operation `clientSecret` decryption (D15): `MerchantKey::decrypt` with a fixed
//! 1024-bit test key (fuzz/keys/, made for fuzzing only; production keys are ≥ 3072 bits, whose
//! private-key operations would cut the rate a hundredfold).
//!
//! Input: the `clientSecret` text as received.
//!
//! Proves: no panic on any text — empty, not Base64 in any of the accepted alphabets, line
//! breaks, a ciphertext of the wrong length, or of the right length that no OAEP parameter set
//! unpads (three blinded RSA decryptions each); `Empty` exactly for blank input, and never a
//! key error once the key has parsed.
#![no_main]

use std::sync::OnceLock;

use koogate_protocol::client_secret::{ClientSecretError, MerchantKey};
use koogate_protocol_fuzz::text;
use libfuzzer_sys::fuzz_target;

const KEY_PEM: &str = include_str!("../keys/fuzz_rsa1024.pem");

fn key() -> &'static MerchantKey {
    static KEY: OnceLock<MerchantKey> = OnceLock::new();
    KEY.get_or_init(|| MerchantKey::from_pem(KEY_PEM).expect("the fuzz key parses"))
}

fuzz_target!(|data: &[u8]| {
    let secret = text(data);
    let blank = secret.chars().all(|c| c.is_ascii_whitespace());
    match key().decrypt(&secret) {
        Ok(_) => assert!(!blank),
        Err(e) => {
            assert_eq!(e == ClientSecretError::Empty, blank);
            assert!(!matches!(
                e,
                ClientSecretError::BadPrivateKey | ClientSecretError::NoPrivateKey
            ));
        }
    }
});
