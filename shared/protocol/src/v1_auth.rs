//! The V1 `authToken` (docs/protocol.md, signatures §6, docs/protocol.md, inbound-legacy §1.2 and §4, D16).
//!
//! ```text
//! joined    = name=value&name=value…   (every parameter but authToken, sorted by name)
//! authToken = Base64(HMAC-SHA256(key = accessKey ‖ timeStamp, msg = joined))
//! ```
//!
//! Two carriers: the GET form ([`verify_get`]: the token and every parameter in the URL query,
//! values percent-decoded) and the POST form ([`verify_post`]: the token in the `authToken`
//! header, the parameters the top-level members of a JSON body, blank ones skipped). Both are
//! keyed with the legacy key (Key值) plus the request's own `timeStamp`, so a token is only as
//! fresh as that value: check it with [`parse_v1_timestamp`] and [`v1_fresh`], and refuse a
//! token seen again inside the window (D16).

use std::collections::HashSet;
use std::fmt;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;

use crate::json::{self, sorted_members, Json};
use crate::json_write::{write_value, Escape, Order};
use crate::mac::{ct_eq_32, hmac_sha256};
use crate::request::MAX_BODY_BYTES;
use crate::timestamp::{parse_compact_ms, within_window, TimestampError};

/// Name of the token parameter (GET) and header (POST).
pub const AUTH_TOKEN: &str = "authToken";

/// Name of the time parameter (GET) and body member (POST); note the capital `S`.
pub const TIME_STAMP: &str = "timeStamp";

/// Default freshness window of a V1 `timeStamp`: ±15 minutes (D16).
pub const DEFAULT_WINDOW_MS: i64 = 15 * 60 * 1_000;

/// UTC+8, the zone some kit pages give the V1 body `timeStamp` in (docs/protocol.md, inbound-kit §8).
const UTC8_OFFSET_MS: i64 = 8 * 3_600_000;

// ---------------------------------------------------------------------------------------------
// Query decoding

/// How to percent-decode a query component (docs/protocol.md, inbound-legacy §1.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Decoding {
    /// `%XY` decoded, `+` kept as `+`: the primary form (D16).
    Strict,
    /// `%XY` decoded and `+` turned into a space (HTML form rules): the fallback.
    Form,
}

/// Percent-decodes one query component.
///
/// A `%` not followed by two hex digits is kept literally (the marketplace never sends one, and
/// refusing here would only turn a stray character into a different error than a mismatch). The
/// decoded bytes are read as UTF-8; invalid sequences become U+FFFD.
pub fn decode_component(raw: &str, decoding: Decoding) -> String {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'%' => {
                let hi = bytes.get(i + 1).copied().and_then(hex_value);
                let lo = bytes.get(i + 2).copied().and_then(hex_value);
                if let (Some(hi), Some(lo)) = (hi, lo) {
                    out.push((hi << 4) | lo);
                    i += 3;
                    continue;
                }
                out.push(b'%');
            }
            b'+' if decoding == Decoding::Form => out.push(b' '),
            other => out.push(other),
        }
        i += 1;
    }
    match String::from_utf8(out) {
        Ok(s) => s,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    }
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Percent-encodes a query value the way the marketplace does: every byte except the unreserved
/// characters (`A–Z a–z 0–9 - _ . ~`), so that [`decode_component`] reads it back exactly.
pub fn encode_component(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Splits a raw query string (without the leading `?`) into decoded `(name, value)` pairs, in
/// received order, repeats included.
///
/// Pairs are separated by `&` and split at the first `=`; a pair without `=` has the value `""`.
/// Empty pairs (`&&`) and pairs with an empty name (`=x`) are dropped, as servlet containers do.
pub fn decode_query(raw_query: &str, decoding: Decoding) -> Vec<(String, String)> {
    raw_query
        .split('&')
        .filter_map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            if name.is_empty() {
                return None;
            }
            Some((
                decode_component(name, decoding),
                decode_component(value, decoding),
            ))
        })
        .collect()
}

/// The first value of `name` (docs/protocol.md, inbound-legacy §1.2 rule 4: the first value counts).
pub fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

/// The parameters the token covers: every name but `authToken`, each with its first value, in
/// received order.
fn signed_params(params: &[(String, String)]) -> Vec<(String, String)> {
    let mut seen: HashSet<&str> = HashSet::with_capacity(params.len());
    params
        .iter()
        .filter(|(name, _)| name != AUTH_TOKEN && seen.insert(name.as_str()))
        .cloned()
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Token computation

/// The signed message: `name=value` pairs sorted by name (UTF-16 code units, Java
/// `compareTo`), joined with `&`, values not re-encoded. `pairs` must hold one entry per name.
fn message<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    let mut sorted: Vec<(&str, &str)> = pairs.into_iter().collect();
    sorted.sort_by(|a, b| a.0.encode_utf16().cmp(b.0.encode_utf16()));
    let mut joined = String::new();
    for (i, (name, value)) in sorted.iter().enumerate() {
        if i > 0 {
            joined.push('&');
        }
        joined.push_str(name);
        joined.push('=');
        joined.push_str(value);
    }
    joined
}

/// HMAC-SHA256 of `message` keyed with `access_key ‖ time_stamp`.
fn mac(access_key: &str, time_stamp: &str, message: &str) -> [u8; 32] {
    let mut key = Vec::with_capacity(access_key.len() + time_stamp.len());
    key.extend_from_slice(access_key.as_bytes());
    key.extend_from_slice(time_stamp.as_bytes());
    hmac_sha256(&key, &[message.as_bytes()])
}

/// The index of the first key under which `params` (one entry per name) give the `received`
/// token, or `None`. Empty keys are skipped: an unset key must not become an HMAC key anyone
/// can compute.
fn match_key(keys: &[String], params: &[(String, String)], received: &[u8; 32]) -> Option<usize> {
    let time_stamp = param(params, TIME_STAMP).unwrap_or_default();
    let joined = message(params.iter().map(|(n, v)| (n.as_str(), v.as_str())));
    keys.iter()
        .position(|key| !key.is_empty() && ct_eq_32(&mac(key, time_stamp, &joined), received))
}

/// Decodes a received token to its 32 bytes. Spaces are mapped back to `+` first: a Base64 token
/// never contains a space, so a space can only be a `+` that some layer form-decoded
/// (docs/protocol.md, inbound-legacy §1.2 rule 3).
fn decode_token(token: &str) -> Option<[u8; 32]> {
    let token = token.replace(' ', "+");
    let bytes = STANDARD.decode(token.as_bytes()).ok()?;
    <[u8; 32]>::try_from(bytes).ok()
}

/// Computes the GET-form token of already decoded parameters (docs/protocol.md, signatures §6.1).
///
/// `params` are the decoded query parameters in any order; a parameter named `authToken` is
/// ignored, and for a repeated name the first value counts. The key is `access_key` followed by
/// the `timeStamp` value (nothing when there is none). Returns standard Base64 (44 characters).
pub fn sign_get(access_key: &str, params: &[(String, String)]) -> String {
    let params = signed_params(params);
    let time_stamp = param(&params, TIME_STAMP).unwrap_or_default();
    let joined = message(params.iter().map(|(n, v)| (n.as_str(), v.as_str())));
    STANDARD.encode(mac(access_key, time_stamp, &joined))
}

/// Outcome of [`verify_get`].
#[derive(Clone, PartialEq, Eq)]
pub enum V1Verification {
    /// The token matched.
    Verified {
        /// Index in `keys` of the key that matched (sign the answer with it, D5).
        key_index: usize,
        /// Exactly the parameters the token covers, in the decoding that matched: decoded,
        /// `authToken` removed, one entry per name (the first value), in received order. Later
        /// repeats of a name are dropped because the token does not cover them.
        params: Vec<(String, String)>,
        /// The received token (`+` preserved), for the replay check (D16).
        auth_token: String,
    },
    /// No `authToken`, or a blank one: `000001`.
    MissingToken,
    /// No `timeStamp`, or a blank one: `000002` (docs/protocol.md, inbound-legacy §1.3 step 2).
    MissingTimestamp,
    /// The token does not match under any key in either decoding: `000001`.
    Mismatch,
}

impl fmt::Debug for V1Verification {
    /// Values of `mobilePhone` and `email` are redacted, even though they are ciphertext.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            V1Verification::Verified {
                key_index,
                params,
                auth_token,
            } => {
                let shown: Vec<(&str, &str)> = params
                    .iter()
                    .map(|(n, v)| match n.as_str() {
                        "mobilePhone" | "email" => (n.as_str(), "<redacted>"),
                        _ => (n.as_str(), v.as_str()),
                    })
                    .collect();
                f.debug_struct("Verified")
                    .field("key_index", key_index)
                    .field("params", &shown)
                    .field("auth_token", auth_token)
                    .finish()
            }
            V1Verification::MissingToken => f.write_str("MissingToken"),
            V1Verification::MissingTimestamp => f.write_str("MissingTimestamp"),
            V1Verification::Mismatch => f.write_str("Mismatch"),
        }
    }
}

/// Verifies a V1 GET request from its raw query string, exactly as received (D16).
///
/// 1. Decode strictly (`%XY`, `+` kept) and take `authToken` (absent or blank →
///    [`V1Verification::MissingToken`]) and `timeStamp` (absent or blank →
///    [`V1Verification::MissingTimestamp`]).
/// 2. Compare the token against every key in order (current, then previous).
/// 3. No match: decode again with form rules (`+` → space) and compare again, unless that
///    decoding yields the same parameters.
///
/// The received token is decoded strictly in both passes, with any space mapped back to `+`
/// (form-decoding it would only turn its `+` into spaces that are then mapped back); it must be
/// Base64 of 32 bytes, compared in constant time. Freshness and replay are the caller's (§6.2):
/// use [`parse_v1_timestamp`] on the `timeStamp` of [`decode_query`] before this call to keep
/// the order of docs/protocol.md, inbound-legacy §1.3.
pub fn verify_get(keys: &[String], raw_query: &str) -> V1Verification {
    let strict = decode_query(raw_query, Decoding::Strict);
    let auth_token = match param(&strict, AUTH_TOKEN) {
        Some(t) if !t.trim().is_empty() => t.replace(' ', "+"),
        _ => return V1Verification::MissingToken,
    };
    let params = signed_params(&strict);
    if param(&params, TIME_STAMP).is_none_or(|t| t.trim().is_empty()) {
        return V1Verification::MissingTimestamp;
    }
    let Some(received) = decode_token(&auth_token) else {
        return V1Verification::Mismatch;
    };
    if let Some(key_index) = match_key(keys, &params, &received) {
        return V1Verification::Verified {
            key_index,
            params,
            auth_token,
        };
    }
    let form = signed_params(&decode_query(raw_query, Decoding::Form));
    if form != params {
        if let Some(key_index) = match_key(keys, &form, &received) {
            return V1Verification::Verified {
                key_index,
                params: form,
                auth_token,
            };
        }
    }
    V1Verification::Mismatch
}

// ---------------------------------------------------------------------------------------------
// POST form

/// The text a top-level body member contributes to the POST token, or `None` when it is skipped
/// (null, empty or whitespace-only). Strings give their decoded content, numbers their literal,
/// booleans `true`/`false`; a nested object or array gives its compact JSON in received order
/// (the pages define none; a JSON library's `toString` would do the same).
fn member_text(value: &Json) -> Option<String> {
    let text = match value {
        Json::Null => return None,
        Json::String(s) => s.clone(),
        Json::Number(n) => n.clone(),
        Json::Bool(b) => b.to_string(),
        nested @ (Json::Array(_) | Json::Object(_)) => {
            let mut out = String::new();
            write_value(&mut out, nested, Escape::Canonical, Order::Received);
            out
        }
    };
    (!text.trim().is_empty()).then_some(text)
}

/// The body's top-level members as `(name, text)` with one entry per name (the last occurrence,
/// as with map binding), `authToken` and skipped members left out; `None` when the body is not a
/// JSON object of at most [`MAX_BODY_BYTES`].
fn post_pairs(body: &[u8]) -> Option<Vec<(String, String)>> {
    if body.len() > MAX_BODY_BYTES {
        return None;
    }
    let Json::Object(members) = json::parse(body).ok()? else {
        return None;
    };
    Some(
        sorted_members(&members)
            .into_iter()
            .filter(|(name, _)| name != AUTH_TOKEN)
            .filter_map(|(name, value)| member_text(value).map(|text| (name.clone(), text)))
            .collect(),
    )
}

/// The `timeStamp` of a V1 POST body as text (a string's content or a number's literal), or
/// `None` when the body is not a JSON object or has no non-blank `timeStamp`. Unverified: use it
/// only for the freshness check that precedes [`verify_post`].
pub fn post_timestamp(body: &[u8]) -> Option<String> {
    if body.len() > MAX_BODY_BYTES {
        return None;
    }
    member_text(json::parse(body).ok()?.get(TIME_STAMP)?)
}

/// Computes the POST-form token of a JSON body (docs/protocol.md, signatures §6.3); `None` when the body is not
/// a JSON object. The key is `access_key` followed by the body's `timeStamp` text.
pub fn sign_post(access_key: &str, body: &[u8]) -> Option<String> {
    let pairs = post_pairs(body)?;
    let time_stamp = param(&pairs, TIME_STAMP).unwrap_or_default();
    let joined = message(pairs.iter().map(|(n, v)| (n.as_str(), v.as_str())));
    Some(STANDARD.encode(mac(access_key, time_stamp, &joined)))
}

/// Verifies the `authToken` header of a V1 POST call (docs/protocol.md, signatures §6.3) and returns the index
/// in `keys` of the first key that matches, or `None` (answer `000001`).
///
/// The message is built from the top-level members except `authToken`, rendered as text (see
/// [`post_timestamp`] for the time), null and blank ones skipped, sorted by name; nothing is
/// URL-decoded. A body that is not a JSON object, has no `timeStamp`, or a header that is not
/// Base64 of 32 bytes (surrounding whitespace trimmed, spaces read as `+`) never matches.
pub fn verify_post(keys: &[String], header_token: &str, body: &[u8]) -> Option<usize> {
    let received = decode_token(header_token.trim())?;
    let pairs = post_pairs(body)?;
    param(&pairs, TIME_STAMP)?;
    match_key(keys, &pairs, &received)
}

// ---------------------------------------------------------------------------------------------
// Freshness

/// Parses a V1 `timeStamp`: exactly 17 digits `yyyyMMddHHmmssSSS`, read as UTC, into epoch
/// milliseconds (§6.2). Missing, malformed or impossible values answer `000002`.
pub fn parse_v1_timestamp(s: &str) -> Result<i64, TimestampError> {
    parse_compact_ms(s)
}

/// `true` when the `timeStamp` (as parsed by [`parse_v1_timestamp`], i.e. read as UTC) is within
/// `window_ms` of `now_ms` in either direction, or, when `also_utc8` is set, when the same text
/// read as UTC+8 local time (8 hours earlier) is (D16: some kit pages give V1 body times in
/// UTC+8; set it for V1 POST bodies, not for GET queries).
pub fn v1_fresh(ts_ms: i64, now_ms: i64, window_ms: i64, also_utc8: bool) -> bool {
    within_window(ts_ms, now_ms, window_ms)
        || (also_utc8 && within_window(ts_ms.saturating_sub(UTC8_OFFSET_MS), now_ms, window_ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "TestAccessKey123";

    #[test]
    fn encoded_components_decode_back_exactly() {
        for v in ["a+b/c=", "中文 & ~", "", "%25"] {
            let e = encode_component(v);
            assert!(e
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.~%".contains(&b)));
            assert_eq!(decode_component(&e, Decoding::Strict), v);
        }
    }
    const TOKEN: &str = "jLorLNOlvR4+IuMNNJ6CD0/vKJZpCuWMx7EKRowK6ms=";

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn spec_vector() {
        let params = pairs(&[
            ("timeStamp", "20170621185532100"),
            ("productId", "P1"),
            ("activity", "getLicense"),
            ("orderId", "CS1"),
            ("customerId", "c1"),
            ("businessId", "b1"),
        ]);
        assert_eq!(sign_get(KEY, &params), TOKEN);
        // authToken in the input and later repeats are ignored.
        let mut with_extra = params.clone();
        with_extra.push(("authToken".into(), "x".into()));
        with_extra.push(("orderId".into(), "other".into()));
        assert_eq!(sign_get(KEY, &with_extra), TOKEN);
    }

    #[test]
    fn decoding() {
        assert_eq!(decode_component("a%2Bb+c", Decoding::Strict), "a+b+c");
        assert_eq!(decode_component("a%2Bb+c", Decoding::Form), "a+b c");
        assert_eq!(decode_component("%E4%B8%AD%2c", Decoding::Strict), "中,");
        assert_eq!(decode_component("100%", Decoding::Strict), "100%");
        assert_eq!(decode_component("%zz%4", Decoding::Strict), "%zz%4");
        assert_eq!(decode_component("%ff", Decoding::Strict), "\u{fffd}");
        assert_eq!(
            decode_query("a=1&&=x&b&c=d=e&a=2", Decoding::Strict),
            pairs(&[("a", "1"), ("b", ""), ("c", "d=e"), ("a", "2")])
        );
        assert!(decode_query("", Decoding::Strict).is_empty());
    }

    #[test]
    fn utf16_order() {
        let a = pairs(&[("\u{ff21}", "1"), ("\u{1f600}", "2"), ("timeStamp", "t")]);
        // By code point U+FF21 sorts before U+1F600; by UTF-16 units (0xD83D…) it sorts after.
        let joined = "timeStamp=t&\u{1f600}=2&\u{ff21}=1";
        let expected = STANDARD.encode(hmac_sha256(b"kt", &[joined.as_bytes()]));
        assert_eq!(sign_get("k", &a), expected);
    }

    #[test]
    fn freshness_readings() {
        let now = 1_498_071_332_100;
        assert!(v1_fresh(
            now + DEFAULT_WINDOW_MS,
            now,
            DEFAULT_WINDOW_MS,
            false
        ));
        assert!(!v1_fresh(
            now + DEFAULT_WINDOW_MS + 1,
            now,
            DEFAULT_WINDOW_MS,
            false
        ));
        // The same wall-clock text written in UTC+8 reads 8 h in the future as UTC.
        let utc8_text = now + UTC8_OFFSET_MS;
        assert!(!v1_fresh(utc8_text, now, DEFAULT_WINDOW_MS, false));
        assert!(v1_fresh(utc8_text, now, DEFAULT_WINDOW_MS, true));
        assert!(!v1_fresh(
            now - UTC8_OFFSET_MS,
            now,
            DEFAULT_WINDOW_MS,
            true
        ));
        assert!(!v1_fresh(i64::MIN, i64::MAX, i64::MAX, true));
    }
}
