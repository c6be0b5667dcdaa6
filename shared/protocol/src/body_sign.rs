//! The `Body-Sign` response header (docs/protocol.md, signatures §7, D5).
//!
//! ```text
//! Body-Sign: sign_type="HMAC-SHA256", signature="<Base64(HMAC-SHA256(accessKey, body))>"
//! ```
//!
//! Serialise the body once, compute [`header_value`] over those exact bytes, then write exactly
//! those bytes. [`verify`] applies the Seller Console's response checks 6 and 7 (docs/protocol.md, console §3)
//! and is what the console emulator uses on our own answers.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use thiserror::Error;

use crate::mac::{ct_eq_32, hmac_sha256};

/// The header name, capitalised exactly as the console expects it.
pub const HEADER_NAME: &str = "Body-Sign";

/// The only accepted `sign_type`.
pub const SIGN_TYPE: &str = "HMAC-SHA256";

/// Builds the header value for `body`: `sign_type="HMAC-SHA256", signature="<base64>"`
/// (comma and one space between the items, no space around `=`).
pub fn header_value(access_key: &str, body: &[u8]) -> String {
    format!(
        "sign_type=\"{SIGN_TYPE}\", signature=\"{}\"",
        signature(access_key, body)
    )
}

/// The bare Base64 signature of `body` (44 characters).
pub fn signature(access_key: &str, body: &[u8]) -> String {
    STANDARD.encode(hmac_sha256(access_key.as_bytes(), &[body]))
}

/// Why a `Body-Sign` value was rejected; the messages follow the console's.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum BodySignError {
    /// The header is absent or blank (console check 6).
    #[error("http header->bodySign is empty")]
    Empty,
    /// The value does not have the form `sign_type="…", signature="…"` (console check 6).
    #[error(
        "Body-Sign format error ({0}); expected sign_type=\"HMAC-SHA256\", signature=\"<base64>\""
    )]
    Malformed(&'static str),
    /// `sign_type` is not `HMAC-SHA256` or the signature is empty (console check 6).
    #[error("http header->sign_type is not equals HMAC-SHA256 or signature is empty")]
    WrongTypeOrEmptySignature,
    /// The signature does not match the body under the key (console check 7).
    #[error("Failed to verify the HTTP Body signature. Expected signature value: {expected}")]
    Mismatch {
        /// The signature the body should have carried.
        expected: String,
    },
}

/// Checks a received `Body-Sign` value against `body` and `access_key`.
///
/// The syntax is checked strictly in the D5 form: after trimming surrounding whitespace, exactly
/// `sign_type="<type>", signature="<value>"` with both values in double quotes. Then the type
/// must be `HMAC-SHA256` and the signature non-empty; finally the signature must decode (standard
/// Base64) to the 32-byte HMAC of the body, compared in constant time.
pub fn verify(access_key: &str, body: &[u8], header_value: &str) -> Result<(), BodySignError> {
    let value = header_value.trim();
    if value.is_empty() {
        return Err(BodySignError::Empty);
    }
    let rest = value
        .strip_prefix("sign_type=\"")
        .ok_or(BodySignError::Malformed("must start with sign_type=\""))?;
    let (sign_type, rest) = rest
        .split_once('"')
        .ok_or(BodySignError::Malformed("unterminated sign_type value"))?;
    let rest = rest
        .strip_prefix(", signature=\"")
        .ok_or(BodySignError::Malformed(
            "sign_type must be followed by exactly ', signature=\"'",
        ))?;
    let received = rest.strip_suffix('"').ok_or(BodySignError::Malformed(
        "signature value must end with '\"'",
    ))?;
    if received.contains('"') {
        return Err(BodySignError::Malformed(
            "unexpected '\"' inside the signature",
        ));
    }
    if sign_type != SIGN_TYPE || received.is_empty() {
        return Err(BodySignError::WrongTypeOrEmptySignature);
    }
    let expected = hmac_sha256(access_key.as_bytes(), &[body]);
    let matches = STANDARD
        .decode(received)
        .ok()
        .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
        .is_some_and(|bytes| ct_eq_32(&bytes, &expected));
    if matches {
        Ok(())
    } else {
        Err(BodySignError::Mismatch {
            expected: STANDARD.encode(expected),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "test-access-key-123";
    const BODY: &str = r#"{"resultCode":"000000","resultMsg":"success.","instanceId":"87b94795-0603-4e24-8ae5-69420d60e3c8"}"#;
    const HEADER: &str =
        r#"sign_type="HMAC-SHA256", signature="WRohkDi+DQPtr3MYn5+ZV3ZOERmQr14EXdMqUY+GDDQ=""#;

    #[test]
    fn spec_vector() {
        assert_eq!(header_value(KEY, BODY.as_bytes()), HEADER);
        assert_eq!(verify(KEY, BODY.as_bytes(), HEADER), Ok(()));
    }

    #[test]
    fn rejects() {
        let body = BODY.as_bytes();
        assert_eq!(verify(KEY, body, ""), Err(BodySignError::Empty));
        assert_eq!(verify(KEY, body, "   "), Err(BodySignError::Empty));
        for malformed in [
            r#"signature="WRohkDi+DQPtr3MYn5+ZV3ZOERmQr14EXdMqUY+GDDQ=", sign_type="HMAC-SHA256""#,
            r#"sign_type=HMAC-SHA256, signature="WRohkDi+DQPtr3MYn5+ZV3ZOERmQr14EXdMqUY+GDDQ=""#,
            r#"sign_type="HMAC-SHA256",signature="WRohkDi+DQPtr3MYn5+ZV3ZOERmQr14EXdMqUY+GDDQ=""#,
            r#"sign_type="HMAC-SHA256", signature= "WRohkDi+DQPtr3MYn5+ZV3ZOERmQr14EXdMqUY+GDDQ=""#,
            r#"sign_type="HMAC-SHA256", signature=WRohkDi+DQPtr3MYn5+ZV3ZOERmQr14EXdMqUY+GDDQ="#,
            r#"sign_type="HMAC-SHA256", signature="a"b""#,
            r#"sign_type="HMAC-SHA256"#,
        ] {
            assert!(
                matches!(
                    verify(KEY, body, malformed),
                    Err(BodySignError::Malformed(_))
                ),
                "{malformed}"
            );
        }
        assert_eq!(
            verify(KEY, body, r#"sign_type="HMAC-SHA1", signature="abc""#),
            Err(BodySignError::WrongTypeOrEmptySignature)
        );
        assert_eq!(
            verify(KEY, body, r#"sign_type="HMAC-SHA256", signature="""#),
            Err(BodySignError::WrongTypeOrEmptySignature)
        );
        let expected = "WRohkDi+DQPtr3MYn5+ZV3ZOERmQr14EXdMqUY+GDDQ=".to_owned();
        for wrong in [
            "AAAA",
            "not base64!",
            "WRohkDi+DQPtr3MYn5+ZV3ZOERmQr14EXdMqUY+GDDA=",
        ] {
            let header = format!(r#"sign_type="HMAC-SHA256", signature="{wrong}""#);
            assert_eq!(
                verify(KEY, body, &header),
                Err(BodySignError::Mismatch {
                    expected: expected.clone()
                })
            );
        }
        let err = verify("other-key", body, HEADER).unwrap_err();
        assert!(err
            .to_string()
            .starts_with("Failed to verify the HTTP Body signature. Expected signature value: "));
        // A body with a trailing newline is a different body.
        assert!(verify(KEY, format!("{BODY}\n").as_bytes(), HEADER).is_err());
    }
}
