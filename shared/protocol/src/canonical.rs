//! The canonical JSON form of a request body (docs/protocol.md, signatures §2).
//!
//! It reproduces what Huawei's sample verifier signs: the body bound to a map, `null` members
//! dropped, top-level keys sorted, re-serialised compactly with Jackson's defaults. It is the
//! fallback form of the V2 basic signature (D1) and the primary form of the kit `x-sign` (D2).

use crate::json::{self, sorted_members, Json};
use crate::json_write::{write_member, Escape, Order};

/// Returns the canonical payload of `body`, or `None` when no canonical form exists.
///
/// The rules, in order:
/// 1. the body must be valid UTF-8 JSON whose top level is an object (nesting at most
///    128 levels, no lone surrogates);
/// 2. for a repeated top-level name the last occurrence wins;
/// 3. top-level members whose value is `null` are removed (nested `null`s are kept);
/// 4. top-level members are sorted by name, comparing UTF-16 code units (Java `compareTo`);
/// 5. output is compact; nested objects and arrays keep their received order; number
///    literals, `true`, `false` and nested `null` are written exactly as received; strings are
///    decoded and re-escaped with the minimal Jackson escapes (`\"`, `\\`, `\b`, `\t`, `\n`,
///    `\f`, `\r`, other controls as upper-case `\u00XX`; everything else, `/` and non-ASCII
///    included, written as itself).
///
/// The function is idempotent: the canonical form of a canonical form is itself.
pub fn canonical_form(body: &[u8]) -> Option<Vec<u8>> {
    let Json::Object(members) = json::parse(body).ok()? else {
        return None;
    };
    let mut out = String::with_capacity(body.len());
    out.push('{');
    let mut first = true;
    for (name, value) in sorted_members(&members) {
        if *value == Json::Null {
            continue;
        }
        if !first {
            out.push(',');
        }
        first = false;
        write_member(&mut out, name, value, Escape::Canonical, Order::Received);
    }
    out.push('}');
    Some(out.into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canon(s: &str) -> Option<String> {
        canonical_form(s.as_bytes()).map(|b| String::from_utf8(b).unwrap())
    }

    #[test]
    fn sorts_top_level_keys() {
        assert_eq!(
            canon(r#"{"orderId":"1","activity":"newInstance","Zeta":"z","businessId":"b"}"#)
                .unwrap(),
            r#"{"Zeta":"z","activity":"newInstance","businessId":"b","orderId":"1"}"#
        );
    }

    #[test]
    fn already_canonical_body_is_unchanged() {
        let body = r#"{"activity":"newInstance","businessId":"87b94795-0603-4e24-8ae5-69420d60e3c8","orderId":"CS2211181819B4LVS","orderLineId":"CS2211181819B4LVS-000001","testFlag":"0"}"#;
        assert_eq!(canon(body).unwrap(), body);
    }

    #[test]
    fn drops_top_level_nulls_only() {
        assert_eq!(
            canon(r#"{"b":null,"a":{"x":null},"c":[null],"d":"","e":0,"f":false,"g":{},"h":[]}"#)
                .unwrap(),
            r#"{"a":{"x":null},"c":[null],"d":"","e":0,"f":false,"g":{},"h":[]}"#
        );
    }

    #[test]
    fn nested_order_is_kept() {
        assert_eq!(
            canon(r#"{"p":{"z":1,"a":{"y":2,"b":3}},"l":[{"k":1,"c":2}]}"#).unwrap(),
            r#"{"l":[{"k":1,"c":2}],"p":{"z":1,"a":{"y":2,"b":3}}}"#
        );
    }

    #[test]
    fn whitespace_is_removed() {
        assert_eq!(
            canon(" {\n \"b\" : [ 1 , 2 ] ,\t\"a\" : { \"x\" : true } }\r\n").unwrap(),
            r#"{"a":{"x":true},"b":[1,2]}"#
        );
    }

    #[test]
    fn escapes_are_decoded_and_re_escaped() {
        assert_eq!(
            canon(
                r#"{"a":"http:\/\/x\/y","b":"\u4e2d\u6587","c":"\ud83d\ude00","d":"\u007f\u2028"}"#
            )
            .unwrap(),
            "{\"a\":\"http://x/y\",\"b\":\"中文\",\"c\":\"😀\",\"d\":\"\u{7f}\u{2028}\"}"
        );
        assert_eq!(
            canon(r#"{"a":"\"\\\b\t\n\f\r\u0000\u001f\u001F\u0001"}"#).unwrap(),
            r#"{"a":"\"\\\b\t\n\f\r\u0000\u001F\u001F\u0001"}"#
        );
        // Escaped names are decoded and sorted by their decoded value.
        assert_eq!(canon(r#"{"\u0062":1,"a":2}"#).unwrap(), r#"{"a":2,"b":1}"#);
    }

    #[test]
    fn number_literals_are_kept_verbatim() {
        assert_eq!(
            canon(r#"{"a":12.780,"b":1E+5,"c":-0,"d":1e-7,"e":12345678901234567890123}"#).unwrap(),
            r#"{"a":12.780,"b":1E+5,"c":-0,"d":1e-7,"e":12345678901234567890123}"#
        );
    }

    #[test]
    fn last_duplicate_wins() {
        assert_eq!(
            canon(r#"{"a":"1","b":2,"a":"3"}"#).unwrap(),
            r#"{"a":"3","b":2}"#
        );
        assert_eq!(canon(r#"{"a":"1","a":null}"#).unwrap(), "{}");
        assert_eq!(canon(r#"{"a":null,"a":"x"}"#).unwrap(), r#"{"a":"x"}"#);
        // Nested duplicates are left as received.
        assert_eq!(
            canon(r#"{"n":{"a":1,"a":2}}"#).unwrap(),
            r#"{"n":{"a":1,"a":2}}"#
        );
    }

    #[test]
    fn utf16_order_differs_from_code_point_order() {
        // By code point (and UTF-8 bytes) U+FF21 sorts first; by UTF-16 units U+1F600
        // (0xD83D 0xDE00) sorts first, as in Java.
        assert_eq!(
            canon("{\"\u{ff21}\":1,\"\u{1f600}\":2}").unwrap(),
            "{\"\u{1f600}\":2,\"\u{ff21}\":1}"
        );
    }

    #[test]
    fn no_canonical_form_for_non_objects_and_invalid_input() {
        for bad in [
            "[]",
            "\"s\"",
            "1",
            "null",
            "",
            "{",
            "{\"a\":1}x",
            "{\"a\":\"\\ud800\"}",
            "{\"a\":\"\\udc00x\"}",
            "{\"a\":01}",
            "{\"a\":'x'}",
        ] {
            assert_eq!(canon(bad), None, "{bad:?}");
        }
        assert_eq!(canonical_form(b"{\"a\":\"\xc3\x28\"}"), None);
    }

    #[test]
    fn depth_limit() {
        let ok = format!("{{\"a\":{}1{}}}", "[".repeat(127), "]".repeat(127));
        assert!(canon(&ok).is_some());
        let deep = format!("{{\"a\":{}1{}}}", "[".repeat(128), "]".repeat(128));
        assert_eq!(canon(&deep), None);
        let hostile = format!("{{\"a\":{}", "{\"a\":".repeat(200_000));
        assert_eq!(canon(&hostile), None);
    }

    #[test]
    fn idempotent_on_examples() {
        for s in [
            r#"{"b":1,"a":{"z":"\u0001","y":[1,2.50,{"q":null}]},"c":null}"#,
            r#"{"x":"\/\u4e2d","\u00e9":true,"e":"é"}"#,
        ] {
            let once = canonical_form(s.as_bytes()).unwrap();
            assert_eq!(canonical_form(&once).unwrap(), once);
        }
    }
}
