//! AES-CBC credentials keyed by SHA1PRNG (§8, D9): `aes_credentials::decrypt` and
//! `legacy_request::decrypt_contact`, both key sizes.
//!
//! Input: `access key ␟ IV ␟ value` (␟ = 0xFF).
//!
//! Proves: decryption never panics on any value or key (short, non-ASCII IV, bad Base64, bad
//! length, bad padding, non-UTF-8 plaintext); `encrypt_with_iv` accepts exactly the IVs of 16
//! ASCII characters and its output decrypts back to the plaintext with both decrypters (also
//! after `+` was turned into spaces, for `decrypt_contact`, when the IV itself has no space).
#![no_main]

use koogate_protocol::aes_credentials::{decrypt, encrypt_with_iv, EncryptType};
use koogate_protocol::legacy_request::decrypt_contact;
use koogate_protocol_fuzz::{fields, text};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let [key, iv, value] = fields::<3>(data);
    let (key, iv, value) = (text(key), text(iv), text(value));
    for t in [EncryptType::Aes256, EncryptType::Aes128] {
        let _ = decrypt(&key, t, &value);
        let _ = decrypt_contact(&key, t, &value);
        match encrypt_with_iv(&key, t, &iv, &value) {
            Ok(sealed) => {
                assert!(iv.len() == 16 && iv.is_ascii());
                assert!(sealed.starts_with(&*iv));
                assert_eq!(decrypt(&key, t, &sealed).as_deref(), Ok(&*value));
                if !iv.contains(' ') {
                    let spaced = sealed.replace('+', " ");
                    assert_eq!(decrypt_contact(&key, t, &spaced).as_deref(), Ok(&*value));
                }
            }
            Err(_) => assert!(!(iv.len() == 16 && iv.is_ascii())),
        }
    }
});
