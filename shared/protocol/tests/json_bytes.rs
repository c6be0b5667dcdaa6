//! Pins the exact bytes of the crate's two JSON writers, through the public API: the canonical
//! form and the deep-sorted usage-push body (Jackson's minimal escaping, what signatures are
//! computed over) and the answer body (ASCII only, what `Body-Sign` covers). A changed byte here
//! changes a signature, so these expectations were taken from the writers as they were before
//! they were merged into one, and must never be edited to make a refactor pass.

use koogate_protocol::envelope::render;
use koogate_protocol::usage_push::sorted_compact;
use koogate_protocol::{canonical_form, ResultCode};
use serde_json::json;

/// Every character class the two escape modes treat differently, as JSON source text.
const TRICKY_SOURCE: &str = r#""a\u0001b\u001fc\u007fd\u2028e\u00e9f\u4e2dg\ud83d\ude00h\/i/j\"k\\l\b\f\n\r\t\u0000m \u0080 ~""#;

/// The same string, decoded.
const TRICKY: &str = "a\u{1}b\u{1f}c\u{7f}d\u{2028}e\u{e9}f\u{4e2d}g\u{1f600}h/i/j\"k\\l\u{8}\u{c}\n\r\t\u{0}m \u{80} ~";

/// [`TRICKY`] with Jackson's minimal escapes: short escapes, other controls as upper-case
/// `\u00XX`, everything else (DEL, U+2028, non-ASCII, `/`) as itself.
const TRICKY_CANONICAL: &str = "\"a\\u0001b\\u001Fc\u{7f}d\u{2028}e\u{e9}f\u{4e2d}g\u{1f600}h/i/j\\\"k\\\\l\\b\\f\\n\\r\\t\\u0000m \u{80} ~\"";

/// [`TRICKY`] in ASCII only: short escapes, every other control, DEL and every non-ASCII UTF-16
/// unit as lower-case `\uxxxx`.
const TRICKY_ASCII: &str = r#""a\u0001b\u001fc\u007fd\u2028e\u00e9f\u4e2dg\ud83d\ude00h/i/j\"k\\l\b\f\n\r\t\u0000m \u0080 ~""#;

fn canon(source: &str) -> String {
    String::from_utf8(canonical_form(source.as_bytes()).expect("canonical form")).unwrap()
}

fn body() -> String {
    format!(
        r#"{{"s":{TRICKY_SOURCE},"n":[12.780,-0,1e5,1E+5,-1.5e-3,0,12345678901234567890123],"o":{{"z":[{{"b":null,"a":true}},[],{{}}],"a":false,"e":""}},"\u00e9\n":"x","\/":1}}"#
    )
}

#[test]
fn canonical_form_bytes_are_pinned() {
    let expected = format!(
        r#"{{"/":1,"n":[12.780,-0,1e5,1E+5,-1.5e-3,0,12345678901234567890123],"o":{{"z":[{{"b":null,"a":true}},[],{{}}],"a":false,"e":""}},"s":{TRICKY_CANONICAL},"{}":"x"}}"#,
        "\u{e9}\\n"
    );
    assert_eq!(canon(&body()), expected);
}

#[test]
fn deep_sorted_bytes_are_pinned() {
    let expected = format!(
        r#"{{"/":1,"n":[12.780,-0,1e5,1E+5,-1.5e-3,0,12345678901234567890123],"o":{{"a":false,"e":"","z":[{{"a":true,"b":null}},[],{{}}]}},"s":{TRICKY_CANONICAL},"{}":"x"}}"#,
        "\u{e9}\\n"
    );
    assert_eq!(sorted_compact(body().as_bytes()).unwrap(), expected);
}

#[test]
fn canonical_names_are_escaped_like_values() {
    let source = format!(r#"{{{TRICKY_SOURCE}:{TRICKY_SOURCE}}}"#);
    assert_eq!(
        canon(&source),
        format!("{{{TRICKY_CANONICAL}:{TRICKY_CANONICAL}}}")
    );
}

#[test]
fn answer_bytes_are_pinned() {
    let rendered = render(
        ResultCode::Success,
        TRICKY,
        &[
            ("s", json!(TRICKY)),
            (
                "n",
                json!([12.780, -0.0, 1e5, 1, -1, u64::MAX, i64::MIN, 0.1, 1.5e300]),
            ),
            (
                "o",
                json!({"z": [{"b": null, "a": true}, [], {}], "a": false, "e": ""}),
            ),
            ("\u{e9}\u{1}", json!(null)),
            ("resultMsg", json!("skipped")),
            ("/", json!("/")),
        ],
    );
    let expected = format!(
        r#"{{"resultCode":"000000","resultMsg":{TRICKY_ASCII},"s":{TRICKY_ASCII},"n":[12.78,-0.0,100000.0,1,-1,18446744073709551615,-9223372036854775808,0.1,1.5e+300],"o":{{"a":false,"e":"","z":[{{"a":true,"b":null}},[],{{}}]}},"\u00e9\u0001":null,"/":"/"}}"#
    );
    assert_eq!(String::from_utf8(rendered).unwrap(), expected);
}
