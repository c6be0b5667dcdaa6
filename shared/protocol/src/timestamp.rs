//! Timestamps: request freshness (docs/protocol.md, signatures §5, D3) and the calendar formats of the
//! activities (`expireTime` D11, `getLicenseAsync` times, `statisticalTime`).
//!
//! All calendar values are UTC. The civil-date arithmetic is Howard Hinnant's
//! `days_from_civil` / `civil_from_days` (proleptic Gregorian calendar), done here so the crate
//! needs no date library.

use thiserror::Error;

const MS_PER_SECOND: i64 = 1_000;
const MS_PER_DAY: i64 = 86_400_000;
/// D3: a value at or above 10^12 is milliseconds, below it seconds.
const MS_THRESHOLD: i64 = 1_000_000_000_000;

/// Why a timestamp or date text was rejected.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TimestampError {
    /// The value is empty.
    #[error("timestamp is empty")]
    Empty,
    /// A character other than an ASCII digit where digits are required.
    #[error("timestamp must contain only ASCII digits")]
    NotDigits,
    /// The number does not fit in 64 bits.
    #[error("timestamp is out of range")]
    OutOfRange,
    /// The text has the wrong length for its format.
    #[error("expected {expected}, got {got} characters")]
    BadLength {
        /// The accepted format(s).
        expected: &'static str,
        /// The length received, in characters.
        got: usize,
    },
    /// The text does not follow the expected layout.
    #[error("expected the format {0}")]
    BadFormat(&'static str),
    /// The digits do not name a real calendar instant (month 13, 30 February, hour 24, ...).
    #[error("invalid {0}")]
    InvalidDate(&'static str),
}

/// Parses a request timestamp (`timestamp`, `x-timestamp`) into epoch milliseconds (D3).
///
/// One or more ASCII digits, no sign, no spaces, value within `i64`. A value ≥ 10^12 is taken as
/// milliseconds, a smaller one as seconds and multiplied by 1000.
pub fn parse_epoch_ms(s: &str) -> Result<i64, TimestampError> {
    if s.is_empty() {
        return Err(TimestampError::Empty);
    }
    let mut value: u64 = 0;
    for b in s.bytes() {
        if !b.is_ascii_digit() {
            return Err(TimestampError::NotDigits);
        }
        value = value
            .checked_mul(10)
            .and_then(|v| v.checked_add(u64::from(b - b'0')))
            .ok_or(TimestampError::OutOfRange)?;
    }
    let value = i64::try_from(value).map_err(|_| TimestampError::OutOfRange)?;
    if value >= MS_THRESHOLD {
        Ok(value)
    } else {
        Ok(value.saturating_mul(MS_PER_SECOND))
    }
}

/// `true` when `|now_ms − ts_ms| ≤ window_ms` (both directions are checked, D3). A negative
/// window accepts nothing.
pub fn within_window(ts_ms: i64, now_ms: i64, window_ms: i64) -> bool {
    match u64::try_from(window_ms) {
        Ok(window) => ts_ms.abs_diff(now_ms) <= window,
        Err(_) => false,
    }
}

/// Parses an absolute UTC expiry, `yyyyMMddHHmmss` (14 digits) or `yyyyMMddHHmmssSSS`
/// (17 digits), into epoch milliseconds (D11). Calendar values are validated (leap years
/// included); any other length is rejected.
pub fn parse_expire_time(s: &str) -> Result<i64, TimestampError> {
    const FORMATS: &str = "yyyyMMddHHmmss or yyyyMMddHHmmssSSS (14 or 17 digits)";
    let b = s.as_bytes();
    if !b.iter().all(u8::is_ascii_digit) {
        return Err(TimestampError::NotDigits);
    }
    if b.len() != 14 && b.len() != 17 {
        return Err(TimestampError::BadLength {
            expected: FORMATS,
            got: s.chars().count(),
        });
    }
    let field =
        |start: usize, len: usize| digits(b, start, len).ok_or(TimestampError::BadFormat(FORMATS));
    let millis = if b.len() == 17 { field(14, 3)? } else { 0 };
    to_epoch_ms(
        field(0, 4)?,
        field(4, 2)?,
        field(6, 2)?,
        field(8, 2)?,
        field(10, 2)?,
        field(12, 2)?,
        millis,
    )
}

/// Parses exactly 17 digits `yyyyMMddHHmmssSSS`, read as UTC, into epoch milliseconds: the V1
/// `timeStamp` (docs/protocol.md, signatures §6.2, D16) and the form written by [`format_compact_ms`].
///
/// Unlike [`parse_expire_time`] the 14-digit form is refused: a V1 `timeStamp` is always sent with
/// milliseconds, and it is also part of the HMAC key, so a shorter value is not what was signed.
pub fn parse_compact_ms(s: &str) -> Result<i64, TimestampError> {
    const FORMAT: &str = "yyyyMMddHHmmssSSS (17 digits)";
    if s.is_empty() {
        return Err(TimestampError::Empty);
    }
    if !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(TimestampError::NotDigits);
    }
    if s.len() != 17 {
        return Err(TimestampError::BadLength {
            expected: FORMAT,
            got: s.len(),
        });
    }
    parse_expire_time(s)
}

/// Parses a `getLicenseAsync` time: `yyyy-MM-dd HH:mm:ss` followed by nothing, `Z`, `z`, ` Z`
/// or ` z`, all meaning UTC (docs/protocol.md, inbound-basic §5), into epoch milliseconds.
pub fn parse_license_time(s: &str) -> Result<i64, TimestampError> {
    const FORMAT: &str = "yyyy-MM-dd HH:mm:ss with an optional Z (UTC)";
    let b = s.as_bytes();
    let (main, zone) = (b.get(..19), b.get(19..));
    let Some(main) = main else {
        return Err(TimestampError::BadFormat(FORMAT));
    };
    match zone {
        None | Some(b"" | b"Z" | b"z" | b" Z" | b" z") => {}
        Some(_) => return Err(TimestampError::BadFormat(FORMAT)),
    }
    // Layout: 0123-56-89 12:45:78
    for (i, &c) in main.iter().enumerate() {
        let ok = match i {
            4 | 7 => c == b'-',
            10 => c == b' ',
            13 | 16 => c == b':',
            _ => c.is_ascii_digit(),
        };
        if !ok {
            return Err(TimestampError::BadFormat(FORMAT));
        }
    }
    let field = |start: usize, len: usize| {
        digits(main, start, len).ok_or(TimestampError::BadFormat(FORMAT))
    };
    to_epoch_ms(
        field(0, 4)?,
        field(5, 2)?,
        field(8, 2)?,
        field(11, 2)?,
        field(14, 2)?,
        field(17, 2)?,
        0,
    )
}

/// Formats epoch milliseconds as UTC `yyyyMMddHHmmssSSS` (e.g. `statisticalTime`).
///
/// Exactly 17 digits for instants in years 0000–9999; outside that range the year is written
/// with as many digits (and sign) as it needs. Never panics.
pub fn format_compact_ms(epoch_ms: i64) -> String {
    let days = epoch_ms.div_euclid(MS_PER_DAY);
    let ms_of_day = epoch_ms.rem_euclid(MS_PER_DAY);
    let (y, m, d) = civil_from_days(days);
    let hour = ms_of_day / 3_600_000;
    let minute = ms_of_day / 60_000 % 60;
    let second = ms_of_day / 1_000 % 60;
    let millis = ms_of_day % 1_000;
    format!("{y:04}{m:02}{d:02}{hour:02}{minute:02}{second:02}{millis:03}")
}

/// Formats epoch milliseconds as RFC 3339 UTC with milliseconds (`2026-12-01T17:11:24.123Z`),
/// the `timestamp` of koogate's events. Never panics.
pub fn format_rfc3339_ms(epoch_ms: i64) -> String {
    let c = format_compact_ms(epoch_ms);
    // The last 13 characters are MMddHHmmssSSS whatever the year's width.
    let (year, rest) = c.split_at(c.len().saturating_sub(13));
    let part = |a: usize, b: usize| rest.get(a..b).unwrap_or("00");
    format!(
        "{year}-{}-{}T{}:{}:{}.{}Z",
        part(0, 2),
        part(2, 4),
        part(4, 6),
        part(6, 8),
        part(8, 10),
        part(10, 13)
    )
}

/// Reads `len` ASCII digits at `start`; `None` when out of bounds or not digits.
fn digits(b: &[u8], start: usize, len: usize) -> Option<i64> {
    let slice = b.get(start..start.checked_add(len)?)?;
    slice.iter().try_fold(0i64, |acc, &c| {
        c.is_ascii_digit().then(|| acc * 10 + i64::from(c - b'0'))
    })
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(y) => 29,
        2 => 28,
        _ => 0,
    }
}

/// Validates the fields (each already a small non-negative number) and converts to epoch ms.
fn to_epoch_ms(
    y: i64,
    mo: i64,
    d: i64,
    h: i64,
    mi: i64,
    s: i64,
    ms: i64,
) -> Result<i64, TimestampError> {
    if !(1..=12).contains(&mo) {
        return Err(TimestampError::InvalidDate("month"));
    }
    if d < 1 || d > days_in_month(y, mo) {
        return Err(TimestampError::InvalidDate("day of month"));
    }
    if h > 23 {
        return Err(TimestampError::InvalidDate("hour"));
    }
    if mi > 59 {
        return Err(TimestampError::InvalidDate("minute"));
    }
    if s > 59 {
        return Err(TimestampError::InvalidDate("second"));
    }
    let days = days_from_civil(y, mo, d);
    Ok(days * MS_PER_DAY + ((h * 60 + mi) * 60 + s) * MS_PER_SECOND + ms)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (month 1–12, day valid).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400; // [0, 399]
    let mp = (m + 9) % 12; // March = 0
    let doy = (153 * mp + 2) / 5 + d - 1; // [0, 365]
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy; // [0, 146096]
    era * 146_097 + doe - 719_468
}

/// The proleptic Gregorian date of a day count since 1970-01-01. Defined for every `i64` day
/// count reachable from an `i64` of milliseconds (no overflow).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097; // [0, 146096]
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365]
    let mp = (5 * doy + 2) / 153; // [0, 11]
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epoch_units() {
        assert_eq!(parse_epoch_ms("1680508066618"), Ok(1_680_508_066_618));
        assert_eq!(parse_epoch_ms("1680508066"), Ok(1_680_508_066_000));
        assert_eq!(parse_epoch_ms("999999999999"), Ok(999_999_999_999_000));
        assert_eq!(parse_epoch_ms("1000000000000"), Ok(1_000_000_000_000));
        assert_eq!(parse_epoch_ms("0"), Ok(0));
        assert_eq!(parse_epoch_ms("0001680508066618"), Ok(1_680_508_066_618));
        assert_eq!(parse_epoch_ms("9223372036854775807"), Ok(i64::MAX));
    }

    #[test]
    fn epoch_rejects() {
        assert_eq!(parse_epoch_ms(""), Err(TimestampError::Empty));
        for bad in ["-1", "+1", " 1", "1 ", "1.5", "１", "1e3", "0x10"] {
            assert_eq!(parse_epoch_ms(bad), Err(TimestampError::NotDigits), "{bad}");
        }
        assert_eq!(
            parse_epoch_ms("9223372036854775808"),
            Err(TimestampError::OutOfRange)
        );
        assert_eq!(
            parse_epoch_ms("18446744073709551616"),
            Err(TimestampError::OutOfRange)
        );
        assert_eq!(
            parse_epoch_ms(&"9".repeat(100)),
            Err(TimestampError::OutOfRange)
        );
    }

    #[test]
    fn window_both_directions() {
        let now = 1_680_508_066_618;
        assert!(within_window(now, now, 60_000));
        assert!(within_window(now - 60_000, now, 60_000));
        assert!(within_window(now + 60_000, now, 60_000));
        assert!(!within_window(now - 60_001, now, 60_000));
        assert!(!within_window(now + 60_001, now, 60_000));
        assert!(!within_window(now, now, -1));
        assert!(!within_window(i64::MIN, i64::MAX, i64::MAX));
        assert!(within_window(i64::MAX, i64::MAX, 0));
    }

    #[test]
    fn expire_time_formats() {
        // 2022-11-24T02:36:18.256Z
        assert_eq!(
            parse_expire_time("20221124023618256"),
            Ok(1_669_257_378_256)
        );
        assert_eq!(parse_expire_time("20221124023618"), Ok(1_669_257_378_000));
        assert_eq!(parse_expire_time("19700101000000"), Ok(0));
        assert_eq!(
            parse_expire_time("20240229235959999"),
            Ok(1_709_251_199_999)
        );
        assert_eq!(parse_expire_time("20000229000000"), Ok(951_782_400_000));
    }

    #[test]
    fn expire_time_rejects() {
        for bad in [
            "2022112402361",
            "202211240236182",
            "2022112402361825",
            "202211240236182560",
            "",
        ] {
            assert!(
                matches!(
                    parse_expire_time(bad),
                    Err(TimestampError::BadLength { .. })
                ),
                "{bad}"
            );
        }
        assert_eq!(
            parse_expire_time("2022-11-24 02:3"),
            Err(TimestampError::NotDigits)
        );
        let invalid = |s| parse_expire_time(s).unwrap_err();
        assert_eq!(
            invalid("20221324023618"),
            TimestampError::InvalidDate("month")
        );
        assert_eq!(
            invalid("20220024023618"),
            TimestampError::InvalidDate("month")
        );
        assert_eq!(
            invalid("20230229000000"),
            TimestampError::InvalidDate("day of month")
        );
        assert_eq!(
            invalid("19000229000000"),
            TimestampError::InvalidDate("day of month")
        );
        assert_eq!(
            invalid("20220431000000"),
            TimestampError::InvalidDate("day of month")
        );
        assert_eq!(
            invalid("20220400000000"),
            TimestampError::InvalidDate("day of month")
        );
        assert_eq!(
            invalid("20220401240000"),
            TimestampError::InvalidDate("hour")
        );
        assert_eq!(
            invalid("20220401236000"),
            TimestampError::InvalidDate("minute")
        );
        assert_eq!(
            invalid("20220401235960"),
            TimestampError::InvalidDate("second")
        );
    }

    #[test]
    fn compact_ms_is_17_digits_only() {
        // 2017-06-21T18:55:32.100Z, the timeStamp of the V1 vector.
        assert_eq!(parse_compact_ms("20170621185532100"), Ok(1_498_071_332_100));
        assert_eq!(parse_compact_ms(""), Err(TimestampError::Empty));
        assert!(matches!(
            parse_compact_ms("20170621185532"),
            Err(TimestampError::BadLength { got: 14, .. })
        ));
        assert!(matches!(
            parse_compact_ms("201706211855321000"),
            Err(TimestampError::BadLength { got: 18, .. })
        ));
        for bad in [
            "2017062118553210x",
            "2017-06-21 18:55",
            "2017062118553210\u{663}",
            " 20170621185532100",
        ] {
            assert_eq!(
                parse_compact_ms(bad),
                Err(TimestampError::NotDigits),
                "{bad}"
            );
        }
        assert_eq!(
            parse_compact_ms("20171321185532100"),
            Err(TimestampError::InvalidDate("month"))
        );
    }

    #[test]
    fn license_time_formats() {
        let expected = 1_698_402_615_000; // 2023-10-27T10:30:15Z
        for ok in [
            "2023-10-27 10:30:15 z",
            "2023-10-27 10:30:15 Z",
            "2023-10-27 10:30:15Z",
            "2023-10-27 10:30:15z",
            "2023-10-27 10:30:15",
        ] {
            assert_eq!(parse_license_time(ok), Ok(expected), "{ok}");
        }
        for bad in [
            "2023-10-27T10:30:15Z",
            "2023-10-27 10:30:15 +08:00",
            "2023-10-27 10:30",
            "2023/10/27 10:30:15",
            "2023-10-27 10:30:15  z",
            "2023-1０-27 10:30:15",
            "",
        ] {
            assert!(
                matches!(parse_license_time(bad), Err(TimestampError::BadFormat(_))),
                "{bad}"
            );
        }
        assert_eq!(
            parse_license_time("2023-02-29 10:30:15 z"),
            Err(TimestampError::InvalidDate("day of month"))
        );
    }

    #[test]
    fn compact_format() {
        assert_eq!(format_compact_ms(0), "19700101000000000");
        assert_eq!(format_compact_ms(1_669_257_378_256), "20221124023618256");
        assert_eq!(format_compact_ms(1_709_251_199_999), "20240229235959999");
        assert_eq!(format_compact_ms(-1), "19691231235959999");
        // Extremes do not panic.
        let _ = format_compact_ms(i64::MIN);
        let _ = format_compact_ms(i64::MAX);
    }

    #[test]
    fn rfc3339_has_milliseconds_and_zulu() {
        assert_eq!(format_rfc3339_ms(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            format_rfc3339_ms(1_764_609_084_123),
            "2025-12-01T17:11:24.123Z"
        );
    }

    #[test]
    fn civil_round_trip() {
        for days in (-800_000i64..800_000).step_by(997) {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
            assert!((1..=12).contains(&m) && d >= 1 && d <= days_in_month(y, m));
        }
        for ms in [
            0i64,
            1_669_257_378_256,
            253_402_300_799_999,
            951_782_400_000,
        ] {
            assert_eq!(parse_expire_time(&format_compact_ms(ms)), Ok(ms));
        }
    }
}
