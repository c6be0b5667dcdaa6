//! Helpers shared by the fuzz targets.
//!
//! A target that needs several inputs reads them from one byte string split on [`SEP`] (0xFF,
//! a byte that never occurs in UTF-8, so bodies and query strings stay intact and seed files stay
//! readable). Text arguments are the lossy UTF-8 reading of their field: the entry points take
//! `&str`, which is always valid UTF-8.

use std::borrow::Cow;

/// The field separator of multi-argument targets.
pub const SEP: u8 = 0xFF;

/// Splits `data` into exactly `N` fields on [`SEP`]: missing fields are empty and the last field
/// takes the rest of the input (separators included).
pub fn fields<const N: usize>(data: &[u8]) -> [&[u8]; N] {
    let mut out: [&[u8]; N] = [&[]; N];
    let mut rest = data;
    for (i, slot) in out.iter_mut().enumerate() {
        if i + 1 == N {
            *slot = rest;
            break;
        }
        match rest.iter().position(|&b| b == SEP) {
            Some(p) => {
                *slot = rest.get(..p).unwrap_or_default();
                rest = rest.get(p + 1..).unwrap_or_default();
            }
            None => {
                *slot = rest;
                rest = &[];
            }
        }
    }
    out
}

/// The field as text (invalid UTF-8 replaced by U+FFFD).
pub fn text(field: &[u8]) -> Cow<'_, str> {
    String::from_utf8_lossy(field)
}

/// Percent-encodes every byte outside the RFC 3986 unreserved set (what a careful client sends).
pub fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                out.push(char::from(b))
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits() {
        assert_eq!(
            fields::<3>(b"a\xffb\xffc\xffd"),
            [&b"a"[..], b"b", b"c\xffd"]
        );
        assert_eq!(fields::<3>(b"a"), [&b"a"[..], b"", b""]);
        assert_eq!(fields::<1>(b"a\xffb"), [&b"a\xffb"[..]]);
    }
}
