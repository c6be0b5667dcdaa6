//! The time parsers (D3, D11, D16): `parse_epoch_ms`, `parse_expire_time`, `parse_compact_ms`,
//! `parse_license_time`, `parse_v1_timestamp`, and the window checks `within_window`, `v1_fresh`.
//!
//! Input: the first 24 bytes are three little-endian i64 (a, b, w) for the window checks and
//! `format_compact_ms`; the whole input as text is given to every parser.
//!
//! Proves: no panic or overflow on any text or any i64; the window check is symmetric; the
//! V1 parser is the compact one; a 17-digit time that parses formats back to the same digits;
//! every instant of years 0000–9999 formats to a 17-digit text that parses back to it.
#![no_main]

use koogate_protocol::timestamp::{
    format_compact_ms, parse_compact_ms, parse_epoch_ms, parse_expire_time, parse_license_time,
    within_window,
};
use koogate_protocol::v1_auth::{parse_v1_timestamp, v1_fresh};
use koogate_protocol_fuzz::text;
use libfuzzer_sys::fuzz_target;

/// 10000-01-01T00:00:00Z in epoch milliseconds: the first instant that needs five year digits.
const YEAR_10000_MS: i64 = 253_402_300_800_000;
/// 0000-01-01T00:00:00Z in epoch milliseconds (proleptic Gregorian).
const YEAR_0_MS: i64 = -62_167_219_200_000;

fn i64_at(data: &[u8], at: usize) -> i64 {
    let mut b = [0u8; 8];
    if let Some(src) = data.get(at..at + 8) {
        b.copy_from_slice(src);
    }
    i64::from_le_bytes(b)
}

fuzz_target!(|data: &[u8]| {
    let s = text(data);
    let _ = parse_epoch_ms(&s);
    let _ = parse_expire_time(&s);
    let _ = parse_license_time(&s);
    let compact = parse_compact_ms(&s);
    assert_eq!(parse_v1_timestamp(&s), compact);
    if let Ok(ms) = compact {
        assert_eq!(format_compact_ms(ms), s);
    }

    let (a, b, w) = (i64_at(data, 0), i64_at(data, 8), i64_at(data, 16));
    assert_eq!(within_window(a, b, w), within_window(b, a, w));
    let _ = (v1_fresh(a, b, w, true), v1_fresh(a, b, w, false));
    let formatted = format_compact_ms(a);
    if (YEAR_0_MS..YEAR_10000_MS).contains(&a) {
        assert_eq!(formatted.len(), 17, "{a} -> {formatted}");
        assert_eq!(parse_expire_time(&formatted), Ok(a));
    }
});
