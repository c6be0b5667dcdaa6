//! The test vectors of docs/protocol.md (signatures), copied here (the crate never reads the spec at build or
//! test time), exercised through the public API.

use koogate_protocol::aes_credentials::{self, EncryptType};
use koogate_protocol::envelope::Answer;
use koogate_protocol::{basic_signature, body_sign, canonical_form, kit_signature, AesError};

const KEY: &str = "test-access-key-123";
const NONCE: &str = "50D83FDECAED6CCD8EF597F2A577950527928BA287D04E6036E92B2806FD17DA";
const TIMESTAMP: &str = "1680508066618";
const BODY: &str = r#"{"activity":"newInstance","businessId":"87b94795-0603-4e24-8ae5-69420d60e3c8","orderId":"CS2211181819B4LVS","orderLineId":"CS2211181819B4LVS-000001","testFlag":"0"}"#;
const BASIC_SIGNATURE: &str = "180f5821c295923fc04bd6b4ed0121cc182c351e8e5fe1052a026db9aced85ce";
const BASIC_SIGNATURE_UPPER: &str =
    "180F5821C295923FC04BD6B4ED0121CC182C351E8E5FE1052A026DB9ACED85CE";
const KIT_SIGNATURE: &str = "7942de36be79466e6152bd09323b92f3630b2b5cf94b62f8206e8b892f7e4660";

fn keys(list: &[&str]) -> Vec<String> {
    list.iter().map(|k| (*k).to_owned()).collect()
}

// ---- §3 V2 basic -------------------------------------------------------------------------------

#[test]
fn basic_sign_vector() {
    assert_eq!(
        basic_signature::sign(KEY, NONCE, TIMESTAMP, BODY.as_bytes()),
        BASIC_SIGNATURE
    );
}

#[test]
fn basic_verify_vector_lower_and_upper_case() {
    let k = keys(&[KEY]);
    assert_eq!(
        basic_signature::verify(&k, NONCE, TIMESTAMP, BASIC_SIGNATURE, BODY.as_bytes()),
        Some(0)
    );
    assert_eq!(
        basic_signature::verify(&k, NONCE, TIMESTAMP, BASIC_SIGNATURE_UPPER, BODY.as_bytes()),
        Some(0)
    );
}

#[test]
fn basic_verify_rejects_alterations() {
    let k = keys(&[KEY]);
    let body = BODY.as_bytes();
    // One hex digit changed.
    let altered = format!("0{}", &BASIC_SIGNATURE[1..]);
    assert_eq!(
        basic_signature::verify(&k, NONCE, TIMESTAMP, &altered, body),
        None
    );
    // Wrong key, nonce, timestamp, body.
    assert_eq!(
        basic_signature::verify(&keys(&["other"]), NONCE, TIMESTAMP, BASIC_SIGNATURE, body),
        None
    );
    assert_eq!(
        basic_signature::verify(&k, "x", TIMESTAMP, BASIC_SIGNATURE, body),
        None
    );
    assert_eq!(
        basic_signature::verify(&k, NONCE, "1680508066619", BASIC_SIGNATURE, body),
        None
    );
    assert_eq!(
        basic_signature::verify(
            &k,
            NONCE,
            TIMESTAMP,
            BASIC_SIGNATURE,
            &body[..body.len() - 1]
        ),
        None
    );
    // Missing, truncated, padded or non-hex signatures.
    for bad in [
        "",
        &BASIC_SIGNATURE[..63],
        &format!("{BASIC_SIGNATURE}0"),
        "zz",
    ] {
        assert_eq!(
            basic_signature::verify(&k, NONCE, TIMESTAMP, bad, body),
            None
        );
    }
    // No keys.
    assert_eq!(
        basic_signature::verify(&[], NONCE, TIMESTAMP, BASIC_SIGNATURE, body),
        None
    );
}

#[test]
fn basic_verify_with_previous_key_returns_index_1() {
    let k = keys(&["new-current-key", KEY]);
    assert_eq!(
        basic_signature::verify(&k, NONCE, TIMESTAMP, BASIC_SIGNATURE_UPPER, BODY.as_bytes()),
        Some(1)
    );
}

#[test]
fn basic_verify_unsorted_body_signed_over_sorted_form_uses_canonical_fallback() {
    let unsorted = r#"{"testFlag":"1","orderLineId":"L-1","orderId":"O-1","businessId":"b","activity":"newInstance","extra":null}"#;
    let sorted = r#"{"activity":"newInstance","businessId":"b","orderId":"O-1","orderLineId":"L-1","testFlag":"1"}"#;
    assert_eq!(
        canonical_form(unsorted.as_bytes()).unwrap(),
        sorted.as_bytes()
    );
    let signature = basic_signature::sign(KEY, NONCE, TIMESTAMP, sorted.as_bytes()).to_uppercase();
    let k = keys(&["current", KEY]);
    assert_eq!(
        basic_signature::verify(&k, NONCE, TIMESTAMP, &signature, unsorted.as_bytes()),
        Some(1)
    );
    // The raw form also verifies when it was what was signed.
    let raw_signature = basic_signature::sign(KEY, NONCE, TIMESTAMP, unsorted.as_bytes());
    assert_eq!(
        basic_signature::verify(&k, NONCE, TIMESTAMP, &raw_signature, unsorted.as_bytes()),
        Some(1)
    );
}

#[test]
fn basic_verify_non_json_body_verifies_raw_only() {
    let body = b"not json at all";
    let signature = basic_signature::sign(KEY, NONCE, TIMESTAMP, body);
    assert_eq!(
        basic_signature::verify(&keys(&[KEY]), NONCE, TIMESTAMP, &signature, body),
        Some(0)
    );
}

// ---- §4 kit ------------------------------------------------------------------------------------

#[test]
fn kit_sign_vector() {
    assert_eq!(
        kit_signature::sign(KEY, NONCE, TIMESTAMP, BODY.as_bytes()),
        KIT_SIGNATURE
    );
}

#[test]
fn kit_verify_vector_and_previous_key() {
    let body = BODY.as_bytes();
    assert_eq!(
        kit_signature::verify(&keys(&[KEY]), NONCE, TIMESTAMP, KIT_SIGNATURE, body),
        Some(0)
    );
    assert_eq!(
        kit_signature::verify(
            &keys(&["other", KEY]),
            NONCE,
            TIMESTAMP,
            &KIT_SIGNATURE.to_uppercase(),
            body
        ),
        Some(1)
    );
    assert_eq!(
        kit_signature::verify(&keys(&["other"]), NONCE, TIMESTAMP, KIT_SIGNATURE, body),
        None
    );
    // The basic signature is not a kit signature.
    assert_eq!(
        kit_signature::verify(&keys(&[KEY]), NONCE, TIMESTAMP, BASIC_SIGNATURE, body),
        None
    );
}

#[test]
fn kit_verify_canonical_first_then_raw() {
    let unsorted = r#"{"instanceId":"","orderId":"","tenantId":"t1","flag":1,"testFlag":1}"#;
    let sorted = canonical_form(unsorted.as_bytes()).unwrap();
    assert_eq!(
        sorted,
        br#"{"flag":1,"instanceId":"","orderId":"","tenantId":"t1","testFlag":1}"#
    );
    let over_canonical = kit_signature::sign(KEY, NONCE, TIMESTAMP, &sorted);
    let over_raw = kit_signature::sign(KEY, NONCE, TIMESTAMP, unsorted.as_bytes());
    let k = keys(&[KEY]);
    for signature in [over_canonical, over_raw] {
        assert_eq!(
            kit_signature::verify(&k, NONCE, TIMESTAMP, &signature, unsorted.as_bytes()),
            Some(0)
        );
    }
}

// ---- §7 Body-Sign ------------------------------------------------------------------------------

const RESPONSE: &str = r#"{"resultCode":"000000","resultMsg":"success.","instanceId":"87b94795-0603-4e24-8ae5-69420d60e3c8"}"#;
const BODY_SIGN: &str =
    r#"sign_type="HMAC-SHA256", signature="WRohkDi+DQPtr3MYn5+ZV3ZOERmQr14EXdMqUY+GDDQ=""#;

#[test]
fn body_sign_vector() {
    assert_eq!(body_sign::HEADER_NAME, "Body-Sign");
    assert_eq!(body_sign::header_value(KEY, RESPONSE.as_bytes()), BODY_SIGN);
    assert_eq!(
        body_sign::verify(KEY, RESPONSE.as_bytes(), BODY_SIGN),
        Ok(())
    );
}

#[test]
fn envelope_renders_the_body_sign_vector_body() {
    let body = Answer::ok()
        .with("instanceId", "87b94795-0603-4e24-8ae5-69420d60e3c8")
        .render();
    assert_eq!(body, RESPONSE.as_bytes());
    assert_eq!(body_sign::header_value(KEY, &body), BODY_SIGN);
}

#[test]
fn body_sign_mismatch_prints_expected_value() {
    let err = body_sign::verify(KEY, b"{}", BODY_SIGN).unwrap_err();
    let expected = body_sign::signature(KEY, b"{}");
    assert_eq!(
        err.to_string(),
        format!("Failed to verify the HTTP Body signature. Expected signature value: {expected}")
    );
}

// ---- §8 AES ------------------------------------------------------------------------------------

#[test]
fn aes_key_vectors() {
    assert_eq!(
        hex::encode(aes_credentials::derive_key(KEY, EncryptType::Aes128)),
        "c9e3a8e3a2c2e5497d975cbdea2fbd5a"
    );
    assert_eq!(
        hex::encode(aes_credentials::derive_key(KEY, EncryptType::Aes256)),
        "c9e3a8e3a2c2e5497d975cbdea2fbd5aa15283155960dbd281c147b0e511caee"
    );
}

#[test]
fn aes_encryption_vectors() {
    let iv = "A1b2C3d4E5f6G7h8";
    assert_eq!(
        aes_credentials::encrypt_with_iv(KEY, EncryptType::Aes128, iv, "Huawei@123").unwrap(),
        "A1b2C3d4E5f6G7h8SpyPxk2ptlw5nkM8sgKHbA=="
    );
    assert_eq!(
        aes_credentials::encrypt_with_iv(KEY, EncryptType::Aes256, iv, "Huawei@123").unwrap(),
        "A1b2C3d4E5f6G7h88LoV0O8xvmyy1wlKoHCbaA=="
    );
}

#[test]
fn aes_decrypt_vectors_and_round_trip() {
    assert_eq!(
        aes_credentials::decrypt(
            KEY,
            EncryptType::Aes128,
            "A1b2C3d4E5f6G7h8SpyPxk2ptlw5nkM8sgKHbA=="
        )
        .unwrap(),
        "Huawei@123"
    );
    assert_eq!(
        aes_credentials::decrypt(
            KEY,
            EncryptType::Aes256,
            "A1b2C3d4E5f6G7h88LoV0O8xvmyy1wlKoHCbaA=="
        )
        .unwrap(),
        "Huawei@123"
    );
    for t in [EncryptType::Aes128, EncryptType::Aes256] {
        for text in ["", "Huawei@123", "密码 with ünïcode 😀", &"x".repeat(100)] {
            let value = aes_credentials::encrypt(&mut rand::rngs::OsRng, KEY, t, text).unwrap();
            assert_eq!(value.len() % 4, 0);
            assert!(value[..16].bytes().all(|b| b.is_ascii_alphanumeric()));
            assert_eq!(aes_credentials::decrypt(KEY, t, &value).unwrap(), text);
        }
    }
    // Fresh IVs: two encryptions of the same text differ.
    assert_ne!(
        aes_credentials::encrypt(&mut rand::rngs::OsRng, KEY, EncryptType::Aes256, "same").unwrap(),
        aes_credentials::encrypt(&mut rand::rngs::OsRng, KEY, EncryptType::Aes256, "same").unwrap()
    );
}

#[test]
fn aes_errors() {
    use EncryptType::*;
    assert_eq!(
        aes_credentials::encrypt_with_iv(KEY, Aes256, "short", "x"),
        Err(AesError::InvalidIv)
    );
    assert_eq!(
        aes_credentials::encrypt_with_iv(KEY, Aes256, "A1b2C3d4E5f6G7h\u{e9}", "x"),
        Err(AesError::InvalidIv)
    );
    assert_eq!(
        aes_credentials::decrypt(KEY, Aes256, "short"),
        Err(AesError::MissingIv)
    );
    assert_eq!(
        aes_credentials::decrypt(KEY, Aes256, "A1b2C3d4E5f6G7h8***"),
        Err(AesError::InvalidBase64)
    );
    assert_eq!(
        aes_credentials::decrypt(KEY, Aes256, "A1b2C3d4E5f6G7h8"),
        Err(AesError::InvalidLength)
    );
    assert_eq!(
        aes_credentials::decrypt(KEY, Aes256, "A1b2C3d4E5f6G7h8AAAA"),
        Err(AesError::InvalidLength)
    );
    // Wrong key size or key: padding check fails (or, rarely, garbage that is not UTF-8).
    let wrong = aes_credentials::decrypt(KEY, Aes256, "A1b2C3d4E5f6G7h8SpyPxk2ptlw5nkM8sgKHbA==");
    assert!(
        matches!(wrong, Err(AesError::BadPadding | AesError::NotUtf8)),
        "{wrong:?}"
    );
    assert_eq!("1".parse::<EncryptType>(), Ok(Aes256));
    assert_eq!(EncryptType::parse("2"), Some(Aes128));
    assert_eq!(EncryptType::parse("3"), None);
    assert_eq!(Aes256.as_str(), "1");
    assert_eq!(Aes128.as_str(), "2");
    assert_eq!(EncryptType::default(), Aes256);
}
