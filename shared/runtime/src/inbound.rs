//! What an adapter (Lambda, the local HTTP server) hands the pipeline, and what it gets back.
//! Both are plain data: the adapters do I/O, the pipeline never sees a framework type.

use koogate_protocol::body_sign;

/// One HTTP request as received, before anything is interpreted.
#[derive(Debug, Clone, Default)]
pub struct Inbound {
    pub method: String,
    /// The query string exactly as sent (API Gateway payload 2.0 `rawQueryString`), without `?`.
    pub raw_query: String,
    /// Header names lower-cased, values as received.
    pub headers: Vec<(String, String)>,
    /// The raw body bytes, at most [`koogate_protocol::request::MAX_BODY_BYTES`].
    pub body: Vec<u8>,
    /// The body was longer than the cap; the adapter stopped reading (D13: `000002`).
    pub body_too_large: bool,
    /// Who is asking (the Lambda request id, or one made up locally): owner of idempotency locks.
    pub request_id: String,
    /// Epoch ms by which the answer must be out (the Lambda deadline), if the platform has one.
    pub deadline_ms: Option<i64>,
}

impl Inbound {
    /// The first header of that (lower-case) name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The first query parameter of that name, percent-decoded with `+` kept as `+` (the V2
    /// values are hex, digits and opaque nonces; form decoding would corrupt a nonce with `+`).
    pub fn query_param(&self, name: &str) -> Option<String> {
        // Names and values are decoded only when they hold an escape: the marketplace's never
        // do, and this runs three times per signed call.
        let decoded = |s: &str| {
            if s.contains('%') {
                percent_decode(s)
            } else {
                s.to_string()
            }
        };
        self.raw_query.split('&').find_map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let named = if k.contains('%') {
                percent_decode(k) == name
            } else {
                k == name
            };
            named.then(|| decoded(v))
        })
    }
}

/// Percent-decoding that never fails: an invalid escape is kept as written.
pub fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes.get(i).copied().unwrap_or(0);
        if b == b'%' {
            let hi = bytes.get(i + 1).and_then(|c| (*c as char).to_digit(16));
            let lo = bytes.get(i + 2).and_then(|c| (*c as char).to_digit(16));
            if let (Some(hi), Some(lo)) = (hi, lo) {
                out.push((hi * 16 + lo) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The answer: always HTTP 200, `application/json`, `Body-Sign` over exactly `body` (D5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outbound {
    pub body: Vec<u8>,
    /// The `Body-Sign` header value.
    pub body_sign: String,
}

impl Outbound {
    pub const STATUS: u16 = 200;
    pub const CONTENT_TYPE: &'static str = "application/json";

    /// Signs `body` with `key`.
    pub fn signed(body: Vec<u8>, key: &str) -> Outbound {
        let body_sign = body_sign::header_value(key, &body);
        Outbound { body, body_sign }
    }

    /// The response headers with their names capitalised exactly as the console expects.
    pub fn headers(&self) -> [(&'static str, &str); 2] {
        [
            ("Content-Type", Self::CONTENT_TYPE),
            (body_sign::HEADER_NAME, self.body_sign.as_str()),
        ]
    }
}

/// Header (name, value) pairs as text, from an HTTP header map (the Lambda event's or hyper's):
/// names as the map holds them (lower case), values decoded lossily.
pub fn header_pairs(map: &hyper::HeaderMap) -> Vec<(String, String)> {
    map.iter()
        .map(|(k, v)| {
            (
                k.as_str().to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_params_are_percent_decoded_without_touching_plus() {
        let i = Inbound {
            raw_query: "signature=AB&timestamp=1680508066618&nonce=a%2Bb+c&x".into(),
            ..Inbound::default()
        };
        assert_eq!(i.query_param("signature").as_deref(), Some("AB"));
        assert_eq!(i.query_param("nonce").as_deref(), Some("a+b+c"));
        assert_eq!(i.query_param("x").as_deref(), Some(""));
        assert_eq!(i.query_param("missing"), None);
    }

    #[test]
    fn broken_escapes_are_kept() {
        assert_eq!(percent_decode("%zz%4"), "%zz%4");
        assert_eq!(percent_decode("%E4%B8%AD"), "中");
    }
}
