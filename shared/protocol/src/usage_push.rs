//! Pay-per-use usage push (docs/protocol.md, outbound §3, docs/protocol.md, signatures §10, D17): the record and body formats
//! of the new and the old endpoint, the deep-sorted compact body, the `ts`/`nonce`/`signature`
//! header signature, and the validation of a usage interval and value.
//!
//! D17: the body is serialised with object keys sorted at every level, compactly, and that exact
//! string is both signed and sent, so a verifier that checks the raw body and one that re-sorts
//! before checking agree.

use base64::Engine;
use serde::{Deserialize, Serialize};

use crate::json;
use crate::json_write::{write_value, Escape, Order};
use crate::mac::hmac_sha256;

/// At most this many records per call (`MKT.9003` above it).
pub const MAX_RECORDS_PER_CALL: usize = 1000;

/// `begin_time` may be at most this old when pushed (`MKT.9004`): 21 days.
pub const MAX_AGE_MS: i64 = 21 * 24 * 3600 * 1000;

/// One usage record as sent (`UsagePushData`). Field names are the wire names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageEntry {
    /// The pay-per-use instance (never a package instance).
    pub instance_id: String,
    /// When the record was produced, UTC `yyyyMMdd'T'HHmmss'Z'`.
    pub record_time: String,
    /// Start of the metered interval, same format.
    pub begin_time: String,
    /// End of the metered interval, same format.
    pub end_time: String,
    /// Decimal text, > 0, at most 4 decimals.
    pub usage_value: String,
    /// The merchant's unique, stable ID of the record (new endpoint only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metering_sn: Option<String>,
    /// The product (old endpoint only, where it is mandatory).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product_id: Option<String>,
    /// The package instance the usage is charged against (用完即停套餐包).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relate_pkg_instance: Option<String>,
}

/// Which endpoint a body is for: they differ in `metering_sn` and `product_id`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// `POST /api/mkp-openapi-public/global/v1/isv/usage-data`: `metering_sn`, no `product_id`.
    New,
    /// `POST /rest/marketplace/v1/isv/usage-data`: `product_id`, no `metering_sn`.
    Old,
}

impl Endpoint {
    /// The request path.
    pub fn path(self) -> &'static str {
        match self {
            Endpoint::New => "/api/mkp-openapi-public/global/v1/isv/usage-data",
            Endpoint::Old => "/rest/marketplace/v1/isv/usage-data",
        }
    }
}

/// The body `{"usage_records":[…]}` for `endpoint`, keys sorted at every level, compact (D17).
/// Fields the endpoint does not know are left out.
pub fn body(endpoint: Endpoint, records: &[UsageEntry]) -> String {
    let records: Vec<UsageEntry> = records
        .iter()
        .map(|r| {
            let mut r = r.clone();
            match endpoint {
                Endpoint::New => r.product_id = None,
                Endpoint::Old => r.metering_sn = None,
            }
            r
        })
        .collect();
    let raw = serde_json::json!({ "usage_records": records }).to_string();
    // serde_json output of owned strings is always valid JSON, so the fallback is unreachable;
    // it keeps this function total without an unwrap.
    sorted_compact(raw.as_bytes()).unwrap_or(raw)
}

/// Re-serialises any JSON text with object keys sorted at every level (UTF-16 code units, the
/// last occurrence of a repeated name winning), compactly, strings minimally escaped
/// (docs/protocol.md, signatures §2 step 5), number literals kept. `None` when `bytes` is not JSON.
pub fn sorted_compact(bytes: &[u8]) -> Option<String> {
    let value = json::parse(bytes).ok()?;
    let mut out = String::with_capacity(bytes.len());
    write_value(&mut out, &value, Escape::Canonical, Order::Sorted);
    Some(out)
}

/// The header signature of §10: `Base64(HMAC-SHA256(accessKey, "ts=…&nonce=…&body=…"))`.
pub fn sign(access_key: &str, ts: &str, nonce: &str, body: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(mac(access_key, ts, nonce, body))
}

/// Verifies a received header signature in constant time (the fake marketplace, and anyone
/// checking what koogate sends).
pub fn verify(access_key: &str, ts: &str, nonce: &str, body: &str, signature: &str) -> bool {
    let Ok(got) = base64::engine::general_purpose::STANDARD.decode(signature) else {
        return false;
    };
    let Ok(got) = <[u8; 32]>::try_from(got.as_slice()) else {
        return false;
    };
    crate::mac::ct_eq_32(&mac(access_key, ts, nonce, body), &got)
}

fn mac(access_key: &str, ts: &str, nonce: &str, body: &str) -> [u8; 32] {
    hmac_sha256(
        access_key.as_bytes(),
        &[
            b"ts=",
            ts.as_bytes(),
            b"&nonce=",
            nonce.as_bytes(),
            b"&body=",
            body.as_bytes(),
        ],
    )
}

/// Formats epoch milliseconds as a usage time, UTC `yyyyMMdd'T'HHmmss'Z'` (seconds precision).
pub fn format_time(epoch_ms: i64) -> String {
    crate::apigw_signer::sdk_date(epoch_ms)
}

/// Parses a usage time `yyyyMMdd'T'HHmmss'Z'` (exactly 16 characters) into epoch milliseconds.
pub fn parse_time(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() != 16 || b.get(8) != Some(&b'T') || b.get(15) != Some(&b'Z') {
        return None;
    }
    let compact = format!("{}{}", s.get(..8)?, s.get(9..15)?);
    crate::timestamp::parse_expire_time(&compact).ok()
}

/// Why a usage record cannot be accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UsageError {
    /// A time is not `yyyyMMdd'T'HHmmss'Z'`.
    #[error("{0} is not a UTC time yyyyMMddTHHmmssZ")]
    BadTime(&'static str),
    /// `begin_time` is not before `end_time`.
    #[error("begin_time must be before end_time")]
    EmptyInterval,
    /// The interval ends in the future (`end_time` ≤ time of reporting).
    #[error("end_time is in the future")]
    EndsInFuture,
    /// `begin_time` is more than 21 days old (`MKT.9004`).
    #[error("begin_time is more than 21 days old (MKT.9004)")]
    TooOld,
    /// The value is not a positive decimal with at most 4 decimals and 20 characters.
    #[error("usage_value must be a decimal > 0 with at most 4 decimals and 20 characters")]
    BadValue,
    /// A field is empty or longer than 64 characters.
    #[error("{0} must be 1 to 64 characters")]
    BadId(&'static str),
}

/// Checks a usage value: decimal digits with an optional `.` and 1–4 decimals, > 0, ≤ 20
/// characters. Returns it normalised (trailing zeros after the point removed) so that `1.50`
/// and `1.5` are the same record.
pub fn normalise_value(v: &str) -> Result<String, UsageError> {
    if v.is_empty() || v.len() > 20 {
        return Err(UsageError::BadValue);
    }
    let (int, frac) = v.split_once('.').unwrap_or((v, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if int.is_empty() || !digits(int) || !digits(frac) || frac.len() > 4 {
        return Err(UsageError::BadValue);
    }
    if v.contains('.') && frac.is_empty() {
        return Err(UsageError::BadValue);
    }
    let int = int.trim_start_matches('0');
    let frac = frac.trim_end_matches('0');
    if int.is_empty() && frac.is_empty() {
        return Err(UsageError::BadValue); // zero
    }
    let int = if int.is_empty() { "0" } else { int };
    Ok(if frac.is_empty() {
        int.to_string()
    } else {
        format!("{int}.{frac}")
    })
}

/// Validates an interval for recording at `now_ms` (docs/protocol.md, outbound §3.3): both times well formed,
/// `begin < end ≤ now`, `begin` not older than 21 days. Returns `(begin_ms, end_ms)`.
pub fn check_interval(begin: &str, end: &str, now_ms: i64) -> Result<(i64, i64), UsageError> {
    let b = parse_time(begin).ok_or(UsageError::BadTime("begin_time"))?;
    let e = parse_time(end).ok_or(UsageError::BadTime("end_time"))?;
    if b >= e {
        return Err(UsageError::EmptyInterval);
    }
    if e > now_ms {
        return Err(UsageError::EndsInFuture);
    }
    if now_ms.saturating_sub(b) > MAX_AGE_MS {
        return Err(UsageError::TooOld);
    }
    Ok((b, e))
}

/// Checks an identifier field (`instance_id`, `product_id`, `relate_pkg_instance`).
pub fn check_id(name: &'static str, v: &str) -> Result<(), UsageError> {
    if v.is_empty() || v.chars().count() > 64 {
        return Err(UsageError::BadId(name));
    }
    Ok(())
}

/// The `metering_sn` of an interval's first revision: derived from `(instance_id, begin, end)`
/// alone, so a record recorded twice, or re-sent after a timeout, always carries the same number.
/// 32 lower-case hex digits of SHA-256. Same as [`metering_sn_revision`] with revision 0.
pub fn metering_sn(instance_id: &str, begin: &str, end: &str) -> String {
    metering_sn_revision(instance_id, begin, end, 0)
}

/// The `metering_sn` of revision `revision` of an interval.
///
/// The rule (see docs/usage.md): the marketplace treats a second record with the same instance
/// and bounds as a duplicate, and `metering_sn` is the merchant's unique ID of one record. A
/// record keeps its number across every re-send of the same content (timeouts, 5xx), so a
/// resend after a lost answer is dropped as a duplicate. A record the marketplace refused
/// (status failed) and that is then corrected or re-queued becomes a new revision with a new
/// number: one number never names two different contents, and the refused number is never
/// reused. Revision 0 is the historical formula (`instance\nbegin\nend`); revision n ≥ 1 hashes
/// `instance\nbegin\nend\nn`.
pub fn metering_sn_revision(instance_id: &str, begin: &str, end: &str, revision: u32) -> String {
    use sha2::{Digest, Sha256};
    let text = if revision == 0 {
        format!("{instance_id}\n{begin}\n{end}")
    } else {
        format!("{instance_id}\n{begin}\n{end}\n{revision}")
    };
    let d = Sha256::digest(text.as_bytes());
    hex::encode(d.get(..16).unwrap_or(&[]))
}

/// What a refused usage-push call means for the records it carried (docs/protocol.md, outbound §3.5, §6.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// A documented, permanent data error about the content of records (`MKT.0100`,
    /// `MKT.0101`, `MKT.0199`, `MKT.9001`, `MKT.9002`, `MKT.9004`, `CBC.0101`), whatever HTTP
    /// status carried it. One bad record refuses the whole call, so a call of several records
    /// is split until the refused ones are alone; a refused single record is final.
    Data,
    /// `MKT.9003`: too many records in one call: split (nothing was taken).
    TooLarge,
    /// The key, the header signature, the credentials or the merchant's authority (`MKT.0102`,
    /// `MKT.0150`, `MKT.0151`, `MKT.0154`, `CBC.0150`, gateway 4xx other than throttling, HTTP
    /// 401/403, or a local configuration fault): nothing is wrong with the records; they stay
    /// pending, the run stops and reports an error.
    Configuration,
    /// Anything else (network, 5xx, `MKT.0999`, throttling, a code the tables do not
    /// document): not final; the records stay pending and are retried with back-off.
    Retry,
}

/// Data-error codes that are final for a single record (see [`Refusal::Data`]).
pub const DATA_ERROR_CODES: &[&str] = &[
    "MKT.0100", "MKT.0101", "MKT.0199", "MKT.9001", "MKT.9002", "MKT.9004", "CBC.0101",
];

/// Classifies a refused usage-push call by its HTTP status (if an answer came) and result
/// code. `transient` is the HTTP client's verdict ([`crate::open_api::classify`]); an error
/// without status and code that is not transient is a local configuration fault.
pub fn refusal(http_status: Option<u16>, code: Option<&str>, transient: bool) -> Refusal {
    match code {
        Some("MKT.9003") => return Refusal::TooLarge,
        Some(c) if DATA_ERROR_CODES.contains(&c) => return Refusal::Data,
        Some("MKT.0102" | "MKT.0150" | "MKT.0151" | "MKT.0154" | "CBC.0150") => {
            return Refusal::Configuration
        }
        Some("APIGW.0308") => return Refusal::Retry,
        Some(c) if c.starts_with("APIGW.") && http_status.is_some_and(|s| s < 500) => {
            return Refusal::Configuration
        }
        _ => {}
    }
    match http_status {
        Some(429) => Refusal::Retry,
        Some(401 | 403) => Refusal::Configuration,
        None if !transient && code.is_none() => Refusal::Configuration,
        _ => Refusal::Retry,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry() -> UsageEntry {
        UsageEntry {
            instance_id: "7f141bf1-aec8-4859-8323-fb3a8ad50721".into(),
            record_time: "20220809T091000Z".into(),
            begin_time: "20220809T080000Z".into(),
            end_time: "20220809T090000Z".into(),
            usage_value: "99".into(),
            metering_sn: Some("<unique id>".into()),
            product_id: Some("OFFI000000000000000001".into()),
            relate_pkg_instance: None,
        }
    }

    /// The bodies of docs/protocol.md, outbound §3.1 and §3.2, byte for byte.
    #[test]
    fn bodies_match_the_published_examples() {
        assert_eq!(
            body(Endpoint::New, &[entry()]),
            r#"{"usage_records":[{"begin_time":"20220809T080000Z","end_time":"20220809T090000Z","instance_id":"7f141bf1-aec8-4859-8323-fb3a8ad50721","metering_sn":"<unique id>","record_time":"20220809T091000Z","usage_value":"99"}]}"#
        );
        assert_eq!(
            body(Endpoint::Old, &[entry()]),
            r#"{"usage_records":[{"begin_time":"20220809T080000Z","end_time":"20220809T090000Z","instance_id":"7f141bf1-aec8-4859-8323-fb3a8ad50721","product_id":"OFFI000000000000000001","record_time":"20220809T091000Z","usage_value":"99"}]}"#
        );
    }

    #[test]
    fn sorting_is_deep_and_keeps_array_order() {
        assert_eq!(
            sorted_compact(br#" {"b":[{"z":1,"a":"\u4e2d"},2], "a":{"y":null,"x":1.50}} "#)
                .unwrap(),
            r#"{"a":{"x":1.50,"y":null},"b":[{"a":"中","z":1},2]}"#
        );
        assert!(sorted_compact(b"{").is_none());
    }

    #[test]
    fn header_signature_round_trip_and_recomputation() {
        let b = body(Endpoint::New, &[entry()]);
        let sig = sign(
            "k",
            "1709690865879",
            "6c63c221-1f6b-4141-8ff4-22f5dfe82b65",
            &b,
        );
        // Independent recomputation with the hmac crate.
        use hmac::{Hmac, Mac};
        let mut m = Hmac::<sha2::Sha256>::new_from_slice(b"k").unwrap();
        m.update(
            format!("ts=1709690865879&nonce=6c63c221-1f6b-4141-8ff4-22f5dfe82b65&body={b}")
                .as_bytes(),
        );
        let expected = base64::engine::general_purpose::STANDARD.encode(m.finalize().into_bytes());
        assert_eq!(sig, expected);
        assert!(verify(
            "k",
            "1709690865879",
            "6c63c221-1f6b-4141-8ff4-22f5dfe82b65",
            &b,
            &sig
        ));
        assert!(!verify(
            "k",
            "1709690865880",
            "6c63c221-1f6b-4141-8ff4-22f5dfe82b65",
            &b,
            &sig
        ));
        assert!(!verify("k", "1", "n", &b, "not base64"));
    }

    #[test]
    fn values_are_validated_and_normalised() {
        assert_eq!(normalise_value("99").unwrap(), "99");
        assert_eq!(normalise_value("001.5000").unwrap(), "1.5");
        assert_eq!(normalise_value("0.0001").unwrap(), "0.0001");
        for bad in [
            "", "0", "0.0", "-1", "1.", ".5", "1.23456", "1e3", "abc", "1,5",
        ] {
            assert!(normalise_value(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn intervals_follow_the_timing_rules() {
        let now = parse_time("20220809T091000Z").unwrap();
        assert!(check_interval("20220809T080000Z", "20220809T090000Z", now).is_ok());
        assert_eq!(
            check_interval("20220809T090000Z", "20220809T080000Z", now),
            Err(UsageError::EmptyInterval)
        );
        assert_eq!(
            check_interval("20220809T090000Z", "20220809T100000Z", now),
            Err(UsageError::EndsInFuture)
        );
        assert_eq!(
            check_interval("20220701T000000Z", "20220701T010000Z", now),
            Err(UsageError::TooOld)
        );
        assert!(check_interval("2022-08-09", "20220809T080000Z", now).is_err());
        assert_eq!(format_time(now), "20220809T091000Z");
    }

    #[test]
    fn metering_sn_is_stable_and_distinct() {
        let a = metering_sn("i", "20220809T080000Z", "20220809T090000Z");
        assert_eq!(a, metering_sn("i", "20220809T080000Z", "20220809T090000Z"));
        assert_ne!(a, metering_sn("i", "20220809T090000Z", "20220809T100000Z"));
        assert_eq!(a.len(), 32);
        assert_eq!(
            a,
            metering_sn_revision("i", "20220809T080000Z", "20220809T090000Z", 0)
        );
        let r1 = metering_sn_revision("i", "20220809T080000Z", "20220809T090000Z", 1);
        assert_ne!(a, r1);
        assert_ne!(
            r1,
            metering_sn_revision("i", "20220809T080000Z", "20220809T090000Z", 2)
        );
    }

    #[test]
    fn refusals_are_classified_by_the_documented_codes() {
        assert_eq!(refusal(Some(500), Some("MKT.9001"), false), Refusal::Data);
        assert_eq!(refusal(Some(400), Some("MKT.9001"), false), Refusal::Data);
        assert_eq!(refusal(Some(500), Some("MKT.9004"), false), Refusal::Data);
        assert_eq!(
            refusal(Some(500), Some("MKT.9003"), false),
            Refusal::TooLarge
        );
        assert_eq!(refusal(Some(500), Some("MKT.9999"), true), Refusal::Retry);
        assert_eq!(refusal(Some(400), Some("MKT.9999"), false), Refusal::Retry);
        assert_eq!(refusal(Some(500), Some("MKT.0999"), true), Refusal::Retry);
        assert_eq!(refusal(Some(429), Some("APIGW.0308"), true), Refusal::Retry);
        assert_eq!(refusal(Some(429), None, true), Refusal::Retry);
        assert_eq!(refusal(None, None, true), Refusal::Retry);
        assert_eq!(
            refusal(Some(400), Some("MKT.0102"), false),
            Refusal::Configuration
        );
        assert_eq!(
            refusal(Some(401), Some("MKT.0154"), false),
            Refusal::Configuration
        );
        assert_eq!(
            refusal(Some(401), Some("APIGW.0301"), false),
            Refusal::Configuration
        );
        assert_eq!(refusal(Some(502), Some("APIGW.0201"), true), Refusal::Retry);
        assert_eq!(refusal(Some(403), None, false), Refusal::Configuration);
        assert_eq!(refusal(None, None, false), Refusal::Configuration);
    }
}
