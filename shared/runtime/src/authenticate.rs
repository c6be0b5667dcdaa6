//! Authentication of the V2 basic scheme (URL query `signature`, `timestamp`, `nonce`), in the
//! order of inbound-basic.md §2.3: the first failure decides the answer.
//!
//! This is the pure half; the replay guard (which needs the store) runs in the pipeline right
//! after, so that only verified nonces are ever stored.

use koogate_protocol::envelope::Answer;
use koogate_protocol::result_code::ResultCode;
use koogate_protocol::{basic_signature, timestamp};

use crate::inbound::Inbound;

/// A request whose signature matched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// Index of the key that matched (0 = current, 1 = previous): it signs the answer (D5).
    pub key_index: usize,
    pub nonce: String,
}

/// Checks method, size, timestamp, nonce and signature. On failure, the answer to send (signed
/// with the current key by the caller).
pub fn basic(
    inbound: &Inbound,
    keys: &[String],
    now_ms: i64,
    window_ms: i64,
) -> Result<Verified, Answer> {
    if !inbound.method.eq_ignore_ascii_case("POST") {
        return Err(Answer::error(
            ResultCode::InvalidParam,
            format!(
                "method {} is not supported here: the V2 interface is POST",
                inbound.method
            ),
        ));
    }
    if inbound.body_too_large {
        return Err(Answer::error(
            ResultCode::InvalidParam,
            "request body is larger than 1 MiB",
        ));
    }
    let ts = inbound.query_param("timestamp").unwrap_or_default();
    if ts.is_empty() {
        return Err(Answer::error(
            ResultCode::InvalidParam,
            "timestamp is missing",
        ));
    }
    let ts_ms = timestamp::parse_epoch_ms(&ts).map_err(|_| {
        Answer::error(
            ResultCode::InvalidParam,
            "timestamp is not a decimal epoch time",
        )
    })?;
    if !timestamp::within_window(ts_ms, now_ms, window_ms) {
        return Err(Answer::error(
            ResultCode::InvalidParam,
            format!(
                "timestamp is outside the accepted window of {} s",
                window_ms / 1000
            ),
        ));
    }
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
        Some(key_index) => Ok(Verified { key_index, nonce }),
        None => Err(Answer::error(
            ResultCode::AuthFailed,
            "signature does not match",
        )),
    }
}
