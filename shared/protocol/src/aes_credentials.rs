//! AES-CBC credential encryption (docs/protocol.md, signatures §8, D9).
//!
//! ```text
//! value = IV ‖ Base64(AES-CBC-PKCS7(key = SHA1PRNG(accessKey), iv = ASCII(IV), UTF-8(text)))
//! ```
//!
//! Used for `userName` / `password` in `queryInstance` answers in AES mode and in V1 answers,
//! and for decrypting V1 `mobilePhone` / `email`. The key is not the accessKey's bytes but the
//! output of Java's `SecureRandom("SHA1PRNG")` seeded with them, reproduced byte for byte here.

use std::fmt;
use std::str::FromStr;

use aes::cipher::block_padding::Pkcs7;
use aes::cipher::{BlockDecryptMut, BlockEncryptMut, KeyIvInit};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use rand::RngCore;
use sha1::{Digest, Sha1};
use thiserror::Error;

use crate::mac::copy_prefix;

/// The IV length in characters (and bytes: it is ASCII).
pub const IV_LEN: usize = 16;

/// The characters a generated IV is drawn from.
const IV_ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// Key size, as carried by the `encryptType` field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum EncryptType {
    /// `"1"`: AES-256-CBC, the default.
    #[default]
    Aes256,
    /// `"2"`: AES-128-CBC.
    Aes128,
}

impl EncryptType {
    /// The `encryptType` wire value: `"1"` or `"2"`.
    pub fn as_str(&self) -> &'static str {
        match self {
            EncryptType::Aes256 => "1",
            EncryptType::Aes128 => "2",
        }
    }

    /// Parses the wire value `"1"` / `"2"`; anything else is `None`.
    pub fn parse(s: &str) -> Option<EncryptType> {
        match s {
            "1" => Some(EncryptType::Aes256),
            "2" => Some(EncryptType::Aes128),
            _ => None,
        }
    }

    /// Key length in bytes: 32 or 16.
    pub fn key_len(&self) -> usize {
        match self {
            EncryptType::Aes256 => 32,
            EncryptType::Aes128 => 16,
        }
    }
}

impl fmt::Display for EncryptType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for EncryptType {
    type Err = AesError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        EncryptType::parse(s).ok_or(AesError::UnknownEncryptType)
    }
}

/// Why an encryption or decryption failed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum AesError {
    /// `encryptType` is neither `"1"` nor `"2"`.
    #[error("encryptType must be \"1\" (AES-256) or \"2\" (AES-128)")]
    UnknownEncryptType,
    /// The IV is not 16 ASCII characters.
    #[error("the IV must be 16 ASCII characters")]
    InvalidIv,
    /// The value is shorter than its 16-character IV prefix or the prefix is not ASCII.
    #[error("the value must start with a 16-character ASCII IV")]
    MissingIv,
    /// The part after the IV is not standard Base64.
    #[error("the ciphertext is not valid Base64")]
    InvalidBase64,
    /// The ciphertext is empty or not a whole number of 16-byte blocks.
    #[error("the ciphertext length is not a positive multiple of 16 bytes")]
    InvalidLength,
    /// Decryption produced invalid PKCS#7 padding (wrong key, key size or data).
    #[error("decryption failed: invalid padding (wrong key or key size?)")]
    BadPadding,
    /// The decrypted bytes are not UTF-8.
    #[error("the decrypted text is not UTF-8")]
    NotUtf8,
    /// The random source failed (the operating system's, in production).
    #[error("the random source failed")]
    Random,
}

/// Derives the AES key from the accessKey: the first 16 or 32 bytes of Java's `SHA1PRNG`
/// seeded with the key's UTF-8 bytes (docs/protocol.md, signatures §8.2, signed carry).
pub fn derive_key(access_key: &str, t: EncryptType) -> Vec<u8> {
    let full = sha1prng_32(access_key.as_bytes());
    full.get(..t.key_len())
        .map(<[u8]>::to_vec)
        .unwrap_or_default()
}

/// The first 32 output bytes of a fresh Java `SHA1PRNG` after `setSeed(seed)`.
fn sha1prng_32(seed: &[u8]) -> [u8; 32] {
    let mut state = [0u8; 20];
    copy_prefix(&mut state, &Sha1::digest(seed));
    let mut out = [0u8; 32];
    let mut filled = 0;
    while filled < out.len() {
        let mut block = [0u8; 20];
        copy_prefix(&mut block, &Sha1::digest(state));
        if let Some(rest) = out.get_mut(filled..) {
            copy_prefix(rest, &block);
        }
        filled += block.len();
        update_state(&mut state, &block);
    }
    out
}

/// `sun.security.provider.SecureRandom.updateState`: state = state + output + 1 over 20 bytes,
/// least significant byte first, with Java's **signed** bytes and an arithmetic-shift carry.
fn update_state(state: &mut [u8; 20], output: &[u8; 20]) {
    let mut carry: i32 = 1;
    let mut changed = false;
    for (s, o) in state.iter_mut().zip(output) {
        let v = i32::from(i8::from_ne_bytes([*s])) + i32::from(i8::from_ne_bytes([*o])) + carry;
        let t = v.to_le_bytes()[0];
        changed |= t != *s;
        *s = t;
        carry = v >> 8;
    }
    if !changed {
        if let Some(first) = state.first_mut() {
            *first = first.wrapping_add(1);
        }
    }
}

/// The derived key in the fixed-size form the cipher needs.
enum CipherKey {
    Aes256([u8; 32]),
    Aes128([u8; 16]),
}

impl CipherKey {
    fn derive(access_key: &str, t: EncryptType) -> CipherKey {
        let full = sha1prng_32(access_key.as_bytes());
        match t {
            EncryptType::Aes256 => CipherKey::Aes256(full),
            EncryptType::Aes128 => {
                let mut k = [0u8; 16];
                copy_prefix(&mut k, &full);
                CipherKey::Aes128(k)
            }
        }
    }

    fn encrypt(&self, iv: &[u8; 16], plaintext: &[u8]) -> Vec<u8> {
        match self {
            CipherKey::Aes256(k) => cbc::Encryptor::<aes::Aes256>::new(k.into(), iv.into())
                .encrypt_padded_vec_mut::<Pkcs7>(plaintext),
            CipherKey::Aes128(k) => cbc::Encryptor::<aes::Aes128>::new(k.into(), iv.into())
                .encrypt_padded_vec_mut::<Pkcs7>(plaintext),
        }
    }

    fn decrypt(&self, iv: &[u8; 16], ciphertext: &[u8]) -> Result<Vec<u8>, AesError> {
        match self {
            CipherKey::Aes256(k) => cbc::Decryptor::<aes::Aes256>::new(k.into(), iv.into())
                .decrypt_padded_vec_mut::<Pkcs7>(ciphertext),
            CipherKey::Aes128(k) => cbc::Decryptor::<aes::Aes128>::new(k.into(), iv.into())
                .decrypt_padded_vec_mut::<Pkcs7>(ciphertext),
        }
        .map_err(|_| AesError::BadPadding)
    }
}

fn iv_bytes(iv: &str) -> Option<[u8; 16]> {
    if !iv.is_ascii() {
        return None;
    }
    <[u8; 16]>::try_from(iv.as_bytes()).ok()
}

fn encrypt_raw(access_key: &str, t: EncryptType, iv: &[u8; 16], plaintext: &str) -> String {
    let ciphertext = CipherKey::derive(access_key, t).encrypt(iv, plaintext.as_bytes());
    let mut out = String::with_capacity(IV_LEN + ciphertext.len().div_ceil(3) * 4);
    out.extend(iv.iter().map(|&b| char::from(b)));
    STANDARD.encode_string(ciphertext, &mut out);
    out
}

/// Encrypts `plaintext` with a caller-chosen IV (16 ASCII characters). Deterministic; meant for
/// tests and vectors — production values need a fresh random IV, see [`encrypt`].
pub fn encrypt_with_iv(
    access_key: &str,
    t: EncryptType,
    iv: &str,
    plaintext: &str,
) -> Result<String, AesError> {
    let iv = iv_bytes(iv).ok_or(AesError::InvalidIv)?;
    Ok(encrypt_raw(access_key, t, &iv, plaintext))
}

/// Encrypts `plaintext` with a fresh IV of 16 characters drawn uniformly from `[0-9A-Za-z]` by
/// `rng` (production passes the operating system's source, `rand::rngs::OsRng`; tests a seeded
/// one). Fails only if `rng` fails: there is no fallback IV, because an IV that is merely unique
/// is not what the caller asked for, and the callback can answer `000005` and be resent.
pub fn encrypt<R: RngCore + ?Sized>(
    rng: &mut R,
    access_key: &str,
    t: EncryptType,
    plaintext: &str,
) -> Result<String, AesError> {
    let iv = random_iv(rng).map_err(|_| AesError::Random)?;
    Ok(encrypt_raw(access_key, t, &iv, plaintext))
}

/// 16 characters uniform over `[0-9A-Za-z]` by rejection sampling (248 = 4 × 62).
fn random_iv<R: RngCore + ?Sized>(rng: &mut R) -> Result<[u8; 16], rand::Error> {
    let mut iv = [0u8; 16];
    let mut filled = 0;
    let mut buf = [0u8; 32];
    while filled < iv.len() {
        rng.try_fill_bytes(&mut buf)?;
        for &b in buf.iter().filter(|&&b| b < 248) {
            if let (Some(slot), Some(&c)) =
                (iv.get_mut(filled), IV_ALPHABET.get(usize::from(b % 62)))
            {
                *slot = c;
                filled += 1;
            }
        }
    }
    Ok(iv)
}

/// Decrypts a value of the form `IV ‖ Base64(ciphertext)`.
pub fn decrypt(access_key: &str, t: EncryptType, value: &str) -> Result<String, AesError> {
    let (iv, rest) = match (value.get(..IV_LEN), value.get(IV_LEN..)) {
        (Some(iv), Some(rest)) => (iv, rest),
        _ => return Err(AesError::MissingIv),
    };
    let iv = iv_bytes(iv).ok_or(AesError::MissingIv)?;
    let ciphertext = STANDARD.decode(rest).map_err(|_| AesError::InvalidBase64)?;
    if ciphertext.is_empty() || ciphertext.len() % 16 != 0 {
        return Err(AesError::InvalidLength);
    }
    let plaintext = CipherKey::derive(access_key, t).decrypt(&iv, &ciphertext)?;
    String::from_utf8(plaintext).map_err(|_| AesError::NotUtf8)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "test-access-key-123";

    #[test]
    fn key_vectors() {
        assert_eq!(
            hex::encode(derive_key(KEY, EncryptType::Aes128)),
            "c9e3a8e3a2c2e5497d975cbdea2fbd5a"
        );
        assert_eq!(
            hex::encode(derive_key(KEY, EncryptType::Aes256)),
            "c9e3a8e3a2c2e5497d975cbdea2fbd5aa15283155960dbd281c147b0e511caee"
        );
    }

    #[test]
    fn signed_carry_differs_from_unsigned() {
        // Unsigned addition would give a different second block; the vector above pins the signed
        // one. Check the carry rule directly on a byte pair where it matters.
        let mut state = [0u8; 20];
        state[0] = 0x80; // -128
        let mut out = [0u8; 20];
        out[0] = 0x80; // -128
        update_state(&mut state, &out);
        // -128 + -128 + 1 = -255 → low byte 0x01, carry -1 → next byte 0xFF.
        assert_eq!(state[0], 0x01);
        assert_eq!(state[1], 0xFF);
    }

    #[test]
    fn unchanged_state_increments_first_byte() {
        // With non-negative state bytes, output [-1, 0, 0, ...] plus the initial carry of 1
        // leaves every byte unchanged, so Java bumps byte 0.
        let mut state = [7u8; 20];
        let mut out = [0u8; 20];
        out[0] = 0xFF;
        update_state(&mut state, &out);
        assert_eq!(state, {
            let mut s = [7u8; 20];
            s[0] = 8;
            s
        });
    }

    #[test]
    fn encryption_vectors() {
        assert_eq!(
            encrypt_with_iv(KEY, EncryptType::Aes128, "A1b2C3d4E5f6G7h8", "Huawei@123").unwrap(),
            "A1b2C3d4E5f6G7h8SpyPxk2ptlw5nkM8sgKHbA=="
        );
        assert_eq!(
            encrypt_with_iv(KEY, EncryptType::Aes256, "A1b2C3d4E5f6G7h8", "Huawei@123").unwrap(),
            "A1b2C3d4E5f6G7h88LoV0O8xvmyy1wlKoHCbaA=="
        );
    }

    #[test]
    fn the_iv_comes_from_the_caller_s_source_and_its_failure_is_an_error() {
        use rand::SeedableRng;
        let seeded = |seed| {
            let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
            encrypt(&mut rng, KEY, EncryptType::Aes256, "Huawei@123").unwrap()
        };
        assert_eq!(seeded(7), seeded(7));
        assert_ne!(seeded(7), seeded(8));
        assert_eq!(
            decrypt(KEY, EncryptType::Aes256, &seeded(7)).unwrap(),
            "Huawei@123"
        );

        struct Broken;
        impl RngCore for Broken {
            fn next_u32(&mut self) -> u32 {
                0
            }
            fn next_u64(&mut self) -> u64 {
                0
            }
            fn fill_bytes(&mut self, _: &mut [u8]) {}
            fn try_fill_bytes(&mut self, _: &mut [u8]) -> Result<(), rand::Error> {
                Err(rand::Error::new("no entropy"))
            }
        }
        assert_eq!(
            encrypt(&mut Broken, KEY, EncryptType::Aes256, "x"),
            Err(AesError::Random)
        );
    }

    #[test]
    fn random_iv_alphabet() {
        for _ in 0..50 {
            let iv = random_iv(&mut rand::rngs::OsRng).unwrap();
            assert!(iv.iter().all(u8::is_ascii_alphanumeric));
        }
    }
}
