//! The Huawei API Gateway request signer, `SDK-HMAC-SHA256` (docs/protocol.md, signatures §11, D18).
//!
//! Every open-API call the merchant makes (Query Order, usage push, license activation, uploads)
//! is authenticated with the merchant's IAM AK/SK this way. The functions here only compute: the
//! caller supplies the method, path, query, headers, body and the `X-Sdk-Date`, and sends what
//! [`sign`] returns. The same functions let a test server verify a request the way the gateway
//! would ([`canonical_request`] over what it received).

use sha2::{Digest, Sha256};

use crate::mac::hmac_sha256;

/// The algorithm name, first word of the `Authorization` header and of the string to sign.
pub const ALGORITHM: &str = "SDK-HMAC-SHA256";

/// SHA-256 of the empty body, lower-case hex.
pub const EMPTY_BODY_SHA256: &str =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// One request to sign. `headers` are the headers that will be sent (name, value); the signed
/// set is chosen from them by [`signed_header_names`] (D18).
#[derive(Debug, Clone, Copy)]
pub struct SignInput<'a> {
    /// `GET`, `POST`, … (upper-cased for signing).
    pub method: &'a str,
    /// The request path as sent, without the query (`/api/…`).
    pub path: &'a str,
    /// The raw query string without `?` (percent-encoded as sent), or empty.
    pub query: &'a str,
    /// Every header that is sent, including `Host` and `X-Sdk-Date`.
    pub headers: &'a [(&'a str, &'a str)],
    /// The exact body bytes transmitted.
    pub body: &'a [u8],
}

/// What to add to the request: the `Authorization` header value (the caller already sends
/// `X-Sdk-Date` and `Host` among `headers`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signed {
    /// `SDK-HMAC-SHA256 Access=…, SignedHeaders=…, Signature=…`.
    pub authorization: String,
    /// The signed header list, `;`-joined.
    pub signed_headers: String,
    /// The lower-case hex signature.
    pub signature: String,
}

/// Formats epoch milliseconds as the `X-Sdk-Date` value, UTC `yyyyMMdd'T'HHmmss'Z'`.
pub fn sdk_date(epoch_ms: i64) -> String {
    let compact = crate::timestamp::format_compact_ms(epoch_ms);
    // yyyyMMddHHmmssSSS → yyyyMMdd 'T' HHmmss 'Z'; outside years 0–9999 the compact form is
    // longer, and the split still never panics (get returns None → empty parts).
    let date = compact.get(..8).unwrap_or("");
    let time = compact.get(8..14).unwrap_or("");
    format!("{date}T{time}Z")
}

/// Percent-encodes per RFC 3986: unreserved characters kept, every other UTF-8 byte `%XY`
/// with upper-case hex (space → `%20`, `*` → `%2A`, `/` → `%2F`).
pub fn encode(s: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(
                HEX.get(usize::from(b >> 4)).copied().unwrap_or(b'0'),
            ));
            out.push(char::from(
                HEX.get(usize::from(b & 0xF)).copied().unwrap_or(b'0'),
            ));
        }
    }
    out
}

/// Percent-decodes (`%XY` → byte; a malformed escape is kept literally; `+` stays `+`). Bytes
/// that are not UTF-8 after decoding are replaced, as no real path or query carries them.
pub fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        if c == b'%' {
            let hex = b
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok());
            if let Some(v) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(c);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The canonical URI: the decoded path, each segment re-encoded, with a trailing `/`.
pub fn canonical_uri(path: &str) -> String {
    let encoded: Vec<String> = path.split('/').map(|seg| encode(&decode(seg))).collect();
    let mut uri = encoded.join("/");
    if !uri.ends_with('/') {
        uri.push('/');
    }
    uri
}

/// The canonical query string: each `name=value` decoded then re-encoded, names keeping their
/// case (D18), sorted by encoded name then encoded value, joined with `&`.
pub fn canonical_query(query: &str) -> String {
    let mut pairs: Vec<(String, String)> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (encode(&decode(k)), encode(&decode(v)))
        })
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// The signed header names (D18): `content-type`, `host`, `x-sdk-date` and every `x-*` header
/// that is sent, lower-cased, sorted, de-duplicated. A header is only signed if it is sent.
pub fn signed_header_names(headers: &[(&str, &str)]) -> Vec<String> {
    let mut names: Vec<String> = headers
        .iter()
        .map(|(n, _)| n.to_ascii_lowercase())
        .filter(|n| n == "content-type" || n == "host" || n.starts_with("x-"))
        .collect();
    names.sort();
    names.dedup();
    names
}

/// Lower-case hex SHA-256 of `body`.
pub fn body_hash(body: &[u8]) -> String {
    hex::encode(Sha256::digest(body))
}

/// The canonical request of §11.2 over the given signed header list.
pub fn canonical_request(input: &SignInput<'_>, signed: &[String]) -> String {
    let mut out = String::new();
    out.push_str(&input.method.to_ascii_uppercase());
    out.push('\n');
    out.push_str(&canonical_uri(input.path));
    out.push('\n');
    out.push_str(&canonical_query(input.query));
    out.push('\n');
    for name in signed {
        let value = input
            .headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim())
            .unwrap_or("");
        out.push_str(name);
        out.push(':');
        out.push_str(value);
        out.push('\n');
    }
    out.push('\n');
    out.push_str(&signed.join(";"));
    out.push('\n');
    out.push_str(&body_hash(input.body));
    out
}

/// The string to sign of §11.3.
pub fn string_to_sign(sdk_date: &str, canonical_request: &str) -> String {
    format!(
        "{ALGORITHM}\n{sdk_date}\n{}",
        hex::encode(Sha256::digest(canonical_request.as_bytes()))
    )
}

/// Signs with an explicit signed-header list (the gateway's view, and the §11.4 vector).
pub fn sign_with_headers(ak: &str, sk: &str, input: &SignInput<'_>, signed: &[String]) -> Signed {
    let date = input
        .headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("x-sdk-date"))
        .map(|(_, v)| v.trim())
        .unwrap_or("");
    let sts = string_to_sign(date, &canonical_request(input, signed));
    let signature = hex::encode(hmac_sha256(sk.as_bytes(), &[sts.as_bytes()]));
    let signed_headers = signed.join(";");
    Signed {
        authorization: format!(
            "{ALGORITHM} Access={ak}, SignedHeaders={signed_headers}, Signature={signature}"
        ),
        signed_headers,
        signature,
    }
}

/// Signs `input` with the AK/SK, choosing the signed headers by D18.
pub fn sign(ak: &str, sk: &str, input: &SignInput<'_>) -> Signed {
    sign_with_headers(ak, sk, input, &signed_header_names(input.headers))
}

/// The parts of an `Authorization` header, for a verifier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorization<'a> {
    /// The AK.
    pub access: &'a str,
    /// The signed header names as sent.
    pub signed_headers: Vec<&'a str>,
    /// The hex signature as sent.
    pub signature: &'a str,
}

/// Parses `SDK-HMAC-SHA256 Access=…, SignedHeaders=…, Signature=…`; `None` when malformed.
pub fn parse_authorization(header: &str) -> Option<Authorization<'_>> {
    let rest = header.strip_prefix(ALGORITHM)?.strip_prefix(' ')?;
    let mut access = None;
    let mut signed = None;
    let mut signature = None;
    for part in rest.split(", ") {
        let (k, v) = part.split_once('=')?;
        match k {
            "Access" => access = Some(v),
            "SignedHeaders" => signed = Some(v),
            "Signature" => signature = Some(v),
            _ => return None,
        }
    }
    Some(Authorization {
        access: access?,
        signed_headers: signed?.split(';').collect(),
        signature: signature?,
    })
}

/// Verifies a received request against `sk`: recomputes the signature over the header list the
/// request names and compares in constant time. The caller checks the AK, the date's freshness
/// and that the mandatory headers are among the signed ones.
pub fn verify(sk: &str, input: &SignInput<'_>, authorization: &Authorization<'_>) -> bool {
    let signed: Vec<String> = authorization
        .signed_headers
        .iter()
        .map(|s| s.to_string())
        .collect();
    let expected = sign_with_headers("", sk, input, &signed);
    match (
        crate::mac::decode_hex_32(&expected.signature),
        crate::mac::decode_hex_32(authorization.signature),
    ) {
        (Some(a), Some(b)) => crate::mac::ct_eq_32(&a, &b),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// docs/protocol.md, signatures §11.4 (Huawei Go SDK signer test 1).
    #[test]
    fn the_spec_vector() {
        let headers = [("X-Sdk-Date", "20060102T150405Z")];
        let input = SignInput {
            method: "GET",
            path: "/path",
            query: "limit=1",
            headers: &headers,
            body: b"",
        };
        let signed = vec!["x-sdk-date".to_string()];
        assert_eq!(
            canonical_request(&input, &signed),
            "GET\n/path/\nlimit=1\nx-sdk-date:20060102T150405Z\n\nx-sdk-date\n\
             e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        let s = sign_with_headers("AccessKey", "SecretKey", &input, &signed);
        assert_eq!(
            s.authorization,
            "SDK-HMAC-SHA256 Access=AccessKey, SignedHeaders=x-sdk-date, \
             Signature=5a2ce64c865e0e6046321c6f3d5a77ba8413eeaf355c3166c03d58d02ac79624"
        );
        // D18 picks the same list here (only x-sdk-date is sent).
        assert_eq!(sign("AccessKey", "SecretKey", &input), s);
        let parsed = parse_authorization(&s.authorization).unwrap();
        assert_eq!(parsed.access, "AccessKey");
        assert!(verify("SecretKey", &input, &parsed));
        assert!(!verify("OtherKey", &input, &parsed));
    }

    #[test]
    fn query_names_keep_their_case_and_sort_by_encoded_bytes() {
        assert_eq!(
            canonical_query("orderLineId=b&orderId=a%2Fb&x=a b&e="),
            "e=&orderId=a%2Fb&orderLineId=b&x=a%20b"
        );
        assert_eq!(canonical_query(""), "");
        assert_eq!(canonical_query("a=2&a=1"), "a=1&a=2");
    }

    #[test]
    fn uri_is_re_encoded_with_a_trailing_slash() {
        assert_eq!(
            canonical_uri("/api/mkp-openapi-public/global/v1/order/query"),
            "/api/mkp-openapi-public/global/v1/order/query/"
        );
        assert_eq!(canonical_uri("/a%20b/c*d/"), "/a%20b/c%2Ad/");
        assert_eq!(canonical_uri(""), "/");
    }

    #[test]
    fn signed_headers_follow_d18() {
        let h = [
            ("Host", "mkt.myhuaweicloud.com"),
            ("Content-Type", "application/json"),
            ("X-Sdk-Date", "20240317T144237Z"),
            ("ts", "1"),
            ("nonce", "n"),
            ("X-Request-Id", "r"),
        ];
        assert_eq!(
            signed_header_names(&h),
            ["content-type", "host", "x-request-id", "x-sdk-date"]
        );
    }

    #[test]
    fn sdk_date_format() {
        assert_eq!(sdk_date(1_136_214_245_000), "20060102T150405Z");
    }

    #[test]
    fn the_body_and_every_signed_header_are_covered() {
        let headers = [
            ("Host", "mkt.myhuaweicloud.com"),
            ("Content-Type", "application/json"),
            ("X-Sdk-Date", "20240317T144237Z"),
        ];
        let input = SignInput {
            method: "POST",
            path: "/api/x",
            query: "",
            headers: &headers,
            body: b"{}",
        };
        let s = sign("ak", "sk", &input);
        let a = parse_authorization(&s.authorization).unwrap();
        assert!(verify("sk", &input, &a));
        let other_body = SignInput {
            body: b"{ }",
            ..input
        };
        assert!(!verify("sk", &other_body, &a));
        let other_host = [
            ("Host", "mkt.myhuaweicloud.cn"),
            ("Content-Type", "application/json"),
            ("X-Sdk-Date", "20240317T144237Z"),
        ];
        assert!(!verify(
            "sk",
            &SignInput {
                headers: &other_host,
                ..input
            },
            &a
        ));
    }
}
