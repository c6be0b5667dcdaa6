//! The crate's one JSON writer: compact output of a [`Json`] value, strings escaped in the mode
//! the bytes are for.
//!
//! Two kinds of output are signed, and each must be reproduced to the byte by the peer that
//! checks it, so the writer never chooses an escape on its own: the caller names the mode.
//! Numbers are written as their literal text, `true`, `false` and `null` as themselves, with no
//! white space anywhere.

use crate::json::{sorted_members, Json};

/// How a string is escaped.
///
/// Both modes write `"` as `\"`, `\` as `\\`, and U+0008, U+0009, U+000A, U+000C, U+000D as `\b`,
/// `\t`, `\n`, `\f`, `\r`. They differ in every other character:
///
/// | character                            | [`Canonical`](Escape::Canonical) | [`Answer`](Escape::Answer)          |
/// |--------------------------------------|----------------------------------|-------------------------------------|
/// | other controls U+0000–U+001F         | `\u00XX`, upper-case hex         | `\u00xx`, lower-case hex            |
/// | printable ASCII (`/` included)       | itself                           | itself                              |
/// | DEL U+007F                           | itself                           | `\u007f`                            |
/// | non-ASCII (U+2028, emoji included)   | itself, in UTF-8                 | `\uxxxx` per UTF-16 unit (pairs)    |
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Escape {
    /// Jackson's default, minimal escaping: for text a signature is computed over by
    /// re-serialising JSON the way Huawei's Java side does (the canonical form of D1/D2, the
    /// nested members of a V1 POST token, the deep-sorted usage-push body of D17). Any other
    /// escape would change the signed bytes and the signature with them.
    Canonical,
    /// ASCII only: for the answer bodies koogate renders and signs with `Body-Sign` (D5). The
    /// pages escape non-ASCII text this way (the `memo` example), and a pure-ASCII body reaches
    /// the verifier unchanged whatever charset a proxy assumes, so the signature still holds.
    Answer,
}

impl Escape {
    /// Whether `c` (not one of the short escapes) is written as itself.
    fn writes_as_itself(self, c: char) -> bool {
        match self {
            Escape::Canonical => u32::from(c) >= 0x20,
            Escape::Answer => c.is_ascii() && !c.is_ascii_control(),
        }
    }

    /// Whether the byte `b` of a UTF-8 string is copied as it is: not `"` nor `\\`, and part of a
    /// character [`Escape::writes_as_itself`] (a byte of a multi-byte character, in the canonical
    /// mode; in the answer mode those are escaped).
    fn writes_byte_as_itself(self, b: u8) -> bool {
        b != b'"'
            && b != b'\\'
            && match self {
                Escape::Canonical => b >= 0x20,
                Escape::Answer => (0x20..0x7f).contains(&b),
            }
    }

    /// The digits of a `\uXXXX` escape.
    fn hex_digits(self) -> &'static [u8; 16] {
        match self {
            Escape::Canonical => b"0123456789ABCDEF",
            Escape::Answer => b"0123456789abcdef",
        }
    }
}

/// The order in which an object's members are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Order {
    /// As received (or as the map iterates), repeated names included.
    Received,
    /// At every level, one member per name in [`sorted_members`] order (UTF-16 code units, the
    /// last occurrence winning): the usage-push body (D17).
    Sorted,
}

/// Writes `value` compactly.
pub(crate) fn write_value(out: &mut String, value: &Json, escape: Escape, order: Order) {
    match value {
        Json::Null => out.push_str("null"),
        Json::Bool(true) => out.push_str("true"),
        Json::Bool(false) => out.push_str("false"),
        Json::Number(literal) => out.push_str(literal),
        Json::String(s) => write_string(out, s, escape),
        Json::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_value(out, item, escape, order);
            }
            out.push(']');
        }
        Json::Object(members) => {
            let ordered: Vec<&(String, Json)> = match order {
                Order::Sorted => sorted_members(members),
                Order::Received => members.iter().collect(),
            };
            out.push('{');
            for (i, (name, item)) in ordered.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_member(out, name, item, escape, order);
            }
            out.push('}');
        }
    }
}

/// Writes `"name":value` (no separator before it).
pub(crate) fn write_member(
    out: &mut String,
    name: &str,
    value: &Json,
    escape: Escape,
    order: Order,
) {
    write_string(out, name, escape);
    out.push(':');
    write_value(out, value, escape, order);
}

/// Writes `s` as a JSON string in the given mode (see [`Escape`]). Runs of characters written as
/// themselves are copied whole: answers and canonical forms are mostly such runs.
pub(crate) fn write_string(out: &mut String, s: &str, escape: Escape) {
    out.push('"');
    let mut rest = s;
    // Every byte before `at` is written as itself, and the byte at `at` starts a character (in
    // the canonical mode only ASCII bytes are escaped; in the answer mode every byte written as
    // itself is ASCII), so both splits fall on character boundaries.
    while let Some(at) = rest.bytes().position(|b| !escape.writes_byte_as_itself(b)) {
        let (plain, tail) = rest.split_at(at);
        out.push_str(plain);
        let mut chars = tail.chars();
        if let Some(c) = chars.next() {
            push_escaped(out, c, escape);
        }
        rest = chars.as_str();
    }
    out.push_str(rest);
    out.push('"');
}

/// One character that is not written as itself.
fn push_escaped(out: &mut String, c: char, escape: Escape) {
    match c {
        '"' => out.push_str("\\\""),
        '\\' => out.push_str("\\\\"),
        '\u{8}' => out.push_str("\\b"),
        '\t' => out.push_str("\\t"),
        '\n' => out.push_str("\\n"),
        '\u{c}' => out.push_str("\\f"),
        '\r' => out.push_str("\\r"),
        c if escape.writes_as_itself(c) => out.push(c),
        c => {
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                push_unicode_escape(out, *unit, escape.hex_digits());
            }
        }
    }
}

/// `\u` and the four hex digits of one UTF-16 code unit.
fn push_unicode_escape(out: &mut String, unit: u16, digits: &[u8; 16]) {
    out.push_str("\\u");
    for shift in [12u16, 8, 4, 0] {
        let nibble = usize::from((unit >> shift) & 0xF);
        out.push(char::from(digits.get(nibble).copied().unwrap_or(b'0')));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn string(s: &str, escape: Escape) -> String {
        let mut out = String::new();
        write_string(&mut out, s, escape);
        out
    }

    #[test]
    fn the_modes_differ_only_where_documented() {
        for (input, canonical, answer) in [
            ("\"\\", r#""\"\\""#, r#""\"\\""#),
            ("\u{8}\t\n\u{c}\r", r#""\b\t\n\f\r""#, r#""\b\t\n\f\r""#),
            ("\u{0}\u{1f}", r#""\u0000\u001F""#, r#""\u0000\u001f""#),
            ("/ ~", r#""/ ~""#, r#""/ ~""#),
            ("\u{7f}", "\"\u{7f}\"", r#""\u007f""#),
            ("\u{e9}\u{2028}", "\"\u{e9}\u{2028}\"", r#""\u00e9\u2028""#),
            ("\u{1f600}", "\"\u{1f600}\"", r#""\ud83d\ude00""#),
        ] {
            assert_eq!(string(input, Escape::Canonical), canonical, "{input:?}");
            assert_eq!(string(input, Escape::Answer), answer, "{input:?}");
        }
    }

    /// Character by character, the plainest way to write the modes: what the run-copying
    /// [`write_string`] must equal.
    fn reference(s: &str, escape: Escape) -> String {
        let mut out = String::from('"');
        for c in s.chars() {
            push_escaped_or_plain(&mut out, c, escape);
        }
        out.push('"');
        out
    }

    fn push_escaped_or_plain(out: &mut String, c: char, escape: Escape) {
        if c != '"' && c != '\\' && escape.writes_as_itself(c) {
            out.push(c);
        } else {
            push_escaped(out, c, escape);
        }
    }

    proptest::proptest! {
        #[test]
        fn copying_runs_writes_what_escaping_each_character_writes(s in "\\PC*|[\\x00-\\x7f\u{80}-\u{2030}\u{1f600}]*") {
            for escape in [Escape::Canonical, Escape::Answer] {
                proptest::prop_assert_eq!(string(&s, escape), reference(&s, escape));
            }
        }
    }

    #[test]
    fn order_applies_at_every_level_and_arrays_keep_theirs() {
        let value =
            crate::json::parse(br#"{"b":[{"d":1,"c":2}],"a":{"y":1,"x":2,"y":3}}"#).unwrap();
        let mut received = String::new();
        write_value(&mut received, &value, Escape::Canonical, Order::Received);
        assert_eq!(received, r#"{"b":[{"d":1,"c":2}],"a":{"y":1,"x":2,"y":3}}"#);
        let mut sorted = String::new();
        write_value(&mut sorted, &value, Escape::Canonical, Order::Sorted);
        assert_eq!(sorted, r#"{"a":{"x":2,"y":3},"b":[{"c":2,"d":1}]}"#);
    }
}
