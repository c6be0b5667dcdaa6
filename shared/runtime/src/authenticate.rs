//! Authentication of each scheme, in the order the spec gives (docs/protocol.md, inbound-basic §2.3 for the V2
//! URL signature, docs/protocol.md, inbound-legacy §1.3 for the V1 authToken): the first failure decides.
//!
//! This is the pure half; the replay guard (which needs the store) runs in the pipeline right
//! after, so that only verified nonces and tokens are ever stored.

use std::time::Duration;

use koogate_protocol::envelope::Answer;
use koogate_protocol::result_code::ResultCode;
use koogate_protocol::v1_auth::{self, Decoding, V1Verification};
use koogate_protocol::{basic_signature, kit_signature, timestamp};

use crate::inbound::Inbound;

/// A request whose signature matched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// Index of the key that matched (0 = current, 1 = previous): it signs the answer (D5).
    pub key_index: usize,
    /// What the replay guard remembers: the V2 nonce, or the V1 authToken.
    pub replay_token: String,
    /// V1: the verified, decoded query parameters (without authToken). V2: empty.
    pub params: Vec<(String, String)>,
}

/// V1 GET: authToken present, `timeStamp` valid and fresh, token matching a legacy key.
pub fn v1_query(
    inbound: &Inbound,
    keys: &[String],
    now_ms: i64,
    window: Option<Duration>,
) -> Result<Verified, Answer> {
    let strict = v1_auth::decode_query(&inbound.raw_query, Decoding::Strict);
    if v1_auth::param(&strict, v1_auth::AUTH_TOKEN).is_none_or(|t| t.trim().is_empty()) {
        return Err(Answer::error(
            ResultCode::AuthFailed,
            "authToken is missing",
        ));
    }
    let ts = v1_auth::param(&strict, v1_auth::TIME_STAMP).unwrap_or("");
    if ts.is_empty() {
        return Err(Answer::error(
            ResultCode::InvalidParam,
            "timeStamp is missing",
        ));
    }
    let ts_ms = v1_auth::parse_v1_timestamp(ts).map_err(|_| {
        Answer::error(
            ResultCode::InvalidParam,
            "timeStamp is not a UTC time yyyyMMddHHmmssSSS",
        )
    })?;
    v1_fresh(ts_ms, now_ms, window, false)?;
    match v1_auth::verify_get(keys, &inbound.raw_query) {
        V1Verification::Verified {
            key_index,
            params,
            auth_token,
        } => Ok(Verified {
            key_index,
            replay_token: auth_token,
            params,
        }),
        V1Verification::MissingToken => Err(Answer::error(
            ResultCode::AuthFailed,
            "authToken is missing",
        )),
        V1Verification::MissingTimestamp => Err(Answer::error(
            ResultCode::InvalidParam,
            "timeStamp is missing",
        )),
        V1Verification::Mismatch => Err(Answer::error(
            ResultCode::AuthFailed,
            "authToken does not match",
        )),
    }
}

/// Kit V2 (docs/protocol.md, inbound-kit §1.1): method, size, `x-timestamp`, `x-nonce`, `x-sign`, in that
/// order; the signature over the canonical body first, then the raw bytes (D2).
pub fn kit_headers(
    inbound: &Inbound,
    keys: &[String],
    now_ms: i64,
    window_ms: i64,
) -> Result<Verified, Answer> {
    post_within_cap(inbound, "the kit interfaces are POST")?;
    let ts = inbound.header("x-timestamp").unwrap_or_default().trim();
    fresh_epoch(ts, "x-timestamp", now_ms, window_ms)?;
    let nonce = inbound.header("x-nonce").unwrap_or_default().trim();
    if nonce.is_empty() {
        return Err(Answer::error(
            ResultCode::InvalidParam,
            "x-nonce is missing",
        ));
    }
    let signature = inbound.header("x-sign").unwrap_or_default().trim();
    if signature.is_empty() {
        return Err(Answer::error(ResultCode::AuthFailed, "x-sign is missing"));
    }
    match kit_signature::verify(keys, nonce, ts, signature, &inbound.body) {
        Some(key_index) => Ok(Verified {
            key_index,
            replay_token: nonce.to_string(),
            params: Vec::new(),
        }),
        None => Err(Answer::error(
            ResultCode::AuthFailed,
            "x-sign does not match",
        )),
    }
}

/// Kit V1 (docs/protocol.md, inbound-kit §8): `authToken` header over the body members, the body's `timeStamp`
/// fresh under either time-zone reading (D16), then the token against every legacy key.
pub fn v1_body(
    inbound: &Inbound,
    keys: &[String],
    now_ms: i64,
    window: Option<Duration>,
) -> Result<Verified, Answer> {
    post_within_cap(inbound, "the V1 kit interfaces are POST")?;
    let token = inbound
        .header(v1_auth::AUTH_TOKEN)
        .unwrap_or_default()
        .trim();
    if token.is_empty() {
        return Err(Answer::error(
            ResultCode::AuthFailed,
            "authToken header is missing",
        ));
    }
    let ts = v1_auth::post_timestamp(&inbound.body).ok_or_else(|| {
        Answer::error(
            ResultCode::InvalidParam,
            "timeStamp is missing from the body",
        )
    })?;
    let ts_ms = v1_auth::parse_v1_timestamp(&ts).map_err(|_| {
        Answer::error(
            ResultCode::InvalidParam,
            "timeStamp is not a time yyyyMMddHHmmssSSS",
        )
    })?;
    v1_fresh(ts_ms, now_ms, window, true)?;
    match v1_auth::verify_post(keys, token, &inbound.body) {
        Some(key_index) => Ok(Verified {
            key_index,
            replay_token: token.to_string(),
            params: Vec::new(),
        }),
        None => Err(Answer::error(
            ResultCode::AuthFailed,
            "authToken does not match",
        )),
    }
}

/// The V1 freshness rule (D16): within `window` of now (no window: always fresh), read as UTC,
/// or also as UTC+8 for kit bodies; else 000002.
fn v1_fresh(
    ts_ms: i64,
    now_ms: i64,
    window: Option<Duration>,
    also_utc8: bool,
) -> Result<(), Answer> {
    let Some(w) = window else {
        return Ok(());
    };
    let w_ms = i64::try_from(w.as_millis()).unwrap_or(i64::MAX);
    if v1_auth::v1_fresh(ts_ms, now_ms, w_ms, also_utc8) {
        return Ok(());
    }
    Err(Answer::error(
        ResultCode::InvalidParam,
        format!(
            "timeStamp is outside the accepted window of {} s",
            w.as_secs()
        ),
    ))
}

/// Method POST and a body within the cap (000002 otherwise).
fn post_within_cap(inbound: &Inbound, what: &str) -> Result<(), Answer> {
    if !inbound.method.eq_ignore_ascii_case("POST") {
        return Err(Answer::error(
            ResultCode::InvalidParam,
            format!("method {} is not supported here: {what}", inbound.method),
        ));
    }
    if inbound.body_too_large {
        return Err(Answer::error(
            ResultCode::InvalidParam,
            "request body is larger than 1 MiB",
        ));
    }
    Ok(())
}

/// A present, decimal epoch timestamp within the window (D3), else 000002 naming `name`.
fn fresh_epoch(ts: &str, name: &str, now_ms: i64, window_ms: i64) -> Result<(), Answer> {
    if ts.is_empty() {
        return Err(Answer::error(
            ResultCode::InvalidParam,
            format!("{name} is missing"),
        ));
    }
    let ts_ms = timestamp::parse_epoch_ms(ts).map_err(|_| {
        Answer::error(
            ResultCode::InvalidParam,
            format!("{name} is not a decimal epoch time"),
        )
    })?;
    if !timestamp::within_window(ts_ms, now_ms, window_ms) {
        return Err(Answer::error(
            ResultCode::InvalidParam,
            format!(
                "{name} is outside the accepted window of {} s",
                window_ms / 1000
            ),
        ));
    }
    Ok(())
}

/// Checks method, size, timestamp, nonce and signature. On failure, the answer to send (signed
/// with the current key by the caller).
pub fn basic(
    inbound: &Inbound,
    keys: &[String],
    now_ms: i64,
    window_ms: i64,
) -> Result<Verified, Answer> {
    post_within_cap(inbound, "the V2 interface is POST")?;
    let ts = inbound.query_param("timestamp").unwrap_or_default();
    fresh_epoch(&ts, "timestamp", now_ms, window_ms)?;
    let nonce = inbound.query_param("nonce").unwrap_or_default();
    if nonce.is_empty() {
        return Err(Answer::error(ResultCode::InvalidParam, "nonce is missing"));
    }
    let signature = inbound.query_param("signature").unwrap_or_default();
    if signature.is_empty() {
        return Err(Answer::error(
            ResultCode::AuthFailed,
            "signature is missing",
        ));
    }
    match basic_signature::verify(keys, &nonce, &ts, &signature, &inbound.body) {
        Some(key_index) => Ok(Verified {
            key_index,
            replay_token: nonce,
            params: Vec::new(),
        }),
        None => Err(Answer::error(
            ResultCode::AuthFailed,
            "signature does not match",
        )),
    }
}
