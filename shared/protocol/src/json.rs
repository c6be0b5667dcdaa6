//! A small, strict JSON reader (RFC 8259) used by the canonical form and by request parsing.
//!
//! Why not `serde_json::Value`: the canonical form must write number literals exactly as received
//! (`12.780` stays `12.780`) and must see every member of an object in received order, duplicates
//! included. This reader keeps both, bounds nesting depth so hostile input cannot exhaust the
//! stack, and rejects lone surrogates and raw control characters the way Jackson does.

use std::fmt;

/// Maximum nesting depth of objects and arrays; the top-level object counts as depth 1.
pub(crate) const MAX_DEPTH: usize = 128;

/// A parsed JSON value. Numbers keep their literal text; objects keep every member in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Json {
    Null,
    Bool(bool),
    /// The number exactly as written in the input (already checked against the JSON grammar).
    Number(String),
    String(String),
    Array(Vec<Json>),
    /// Members in received order; a repeated name appears more than once.
    Object(Vec<(String, Json)>),
}

impl Json {
    /// Member `name` of an object; for a repeated name the **last** occurrence wins, as with
    /// Jackson map binding and `serde_json::Map`. `None` for a non-object or an absent member.
    pub(crate) fn get(&self, name: &str) -> Option<&Json> {
        match self {
            Json::Object(members) => members
                .iter()
                .rev()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v),
            _ => None,
        }
    }

    /// A short name of the value's JSON type, for error messages.
    pub(crate) fn type_name(&self) -> &'static str {
        match self {
            Json::Null => "null",
            Json::Bool(_) => "a boolean",
            Json::Number(_) => "a number",
            Json::String(_) => "a string",
            Json::Array(_) => "an array",
            Json::Object(_) => "an object",
        }
    }
}

/// An object's members sorted by name in UTF-16 code units (Java `compareTo`), one per name: for
/// a repeated name the last occurrence wins, as with map binding. The order of the canonical
/// form's top level, the V1 POST token and the deep-sorted usage-push body.
pub(crate) fn sorted_members(members: &[(String, Json)]) -> Vec<&(String, Json)> {
    let mut sorted: Vec<&(String, Json)> = members.iter().collect();
    // Stable sort: members with equal names stay in received order, so the last of each run is
    // the last occurrence in the body.
    sorted.sort_by(|a, b| a.0.encode_utf16().cmp(b.0.encode_utf16()));
    let mut out: Vec<&(String, Json)> = Vec::with_capacity(sorted.len());
    for member in sorted {
        match out.last_mut() {
            Some(last) if last.0 == member.0 => *last = member,
            _ => out.push(member),
        }
    }
    out
}

/// A `serde_json` value as a [`Json`] one, so that values built in code (answer fields) go
/// through the same writer as received ones. Numbers become their `serde_json` text (`12.78`,
/// `-0.0`, `1.5e+300`), objects keep the map's iteration order.
impl From<&serde_json::Value> for Json {
    fn from(value: &serde_json::Value) -> Json {
        match value {
            serde_json::Value::Null => Json::Null,
            serde_json::Value::Bool(b) => Json::Bool(*b),
            serde_json::Value::Number(n) => Json::Number(n.to_string()),
            serde_json::Value::String(s) => Json::String(s.clone()),
            serde_json::Value::Array(items) => Json::Array(items.iter().map(Json::from).collect()),
            serde_json::Value::Object(map) => Json::Object(
                map.iter()
                    .map(|(name, item)| (name.clone(), Json::from(item)))
                    .collect(),
            ),
        }
    }
}

impl Json {
    /// The value as `serde_json` would have parsed it from the same text: numbers from their
    /// literal, a repeated member name keeping its last value. `None` when a number (at any
    /// depth) is one `serde_json` cannot represent, such as `1e400`, where parsing the text with
    /// `serde_json` would have failed.
    pub(crate) fn to_serde(&self) -> Option<serde_json::Value> {
        Some(match self {
            Json::Null => serde_json::Value::Null,
            Json::Bool(b) => serde_json::Value::Bool(*b),
            Json::Number(literal) => serde_json::Value::Number(literal.parse().ok()?),
            Json::String(s) => serde_json::Value::String(s.clone()),
            Json::Array(items) => {
                serde_json::Value::Array(items.iter().map(Json::to_serde).collect::<Option<_>>()?)
            }
            Json::Object(members) => {
                let mut map = serde_json::Map::new();
                for (name, item) in members {
                    map.insert(name.clone(), item.to_serde()?);
                }
                serde_json::Value::Object(map)
            }
        })
    }
}

/// Why the input is not acceptable JSON, and at which byte offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct JsonError {
    pub(crate) offset: usize,
    pub(crate) reason: &'static str,
}

impl fmt::Display for JsonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at byte {}", self.reason, self.offset)
    }
}

/// Parses one complete JSON text (any value at the top level, surrounded by optional whitespace).
pub(crate) fn parse(bytes: &[u8]) -> Result<Json, JsonError> {
    parse_with(bytes, false)
}

/// Like [`parse`], but member names may also be written without quotes, as bare identifiers
/// (`{orgCode:"1"}`): the form of allOrgSync's `orgInfoList` string in the published example
/// (D14). Everything else is as strict as [`parse`].
pub(crate) fn parse_lenient(bytes: &[u8]) -> Result<Json, JsonError> {
    parse_with(bytes, true)
}

fn parse_with(bytes: &[u8], bare_names: bool) -> Result<Json, JsonError> {
    let src = std::str::from_utf8(bytes).map_err(|e| JsonError {
        offset: e.valid_up_to(),
        reason: "invalid UTF-8",
    })?;
    let mut p = Parser {
        src,
        pos: 0,
        bare_names,
    };
    let value = p.value(0)?;
    p.skip_ws();
    if p.pos != src.len() {
        return Err(p.error("unexpected characters after the JSON value"));
    }
    Ok(value)
}

fn is_bare_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'$'
}

struct Parser<'a> {
    src: &'a str,
    pos: usize,
    /// Accept unquoted member names (see [`parse_lenient`]).
    bare_names: bool,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.src.as_bytes().get(self.pos).copied()
    }

    fn error(&self, reason: &'static str) -> JsonError {
        JsonError {
            offset: self.pos,
            reason,
        }
    }

    fn skip_ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.pos += 1;
        }
    }

    /// Consumes `byte` or fails with `reason`.
    fn expect(&mut self, byte: u8, reason: &'static str) -> Result<(), JsonError> {
        if self.peek() == Some(byte) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.error(reason))
        }
    }

    /// `depth` is the nesting depth of the container holding this value (0 at the top).
    fn value(&mut self, depth: usize) -> Result<Json, JsonError> {
        self.skip_ws();
        match self.peek() {
            None => Err(self.error("unexpected end of input")),
            Some(b'{') => self.object(depth + 1),
            Some(b'[') => self.array(depth + 1),
            Some(b'"') => self.string().map(Json::String),
            Some(b't') => self.literal("true", Json::Bool(true)),
            Some(b'f') => self.literal("false", Json::Bool(false)),
            Some(b'n') => self.literal("null", Json::Null),
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(_) => Err(self.error("unexpected character")),
        }
    }

    fn literal(&mut self, word: &'static str, value: Json) -> Result<Json, JsonError> {
        let end = self.pos.saturating_add(word.len());
        if self.src.as_bytes().get(self.pos..end) == Some(word.as_bytes()) {
            self.pos = end;
            Ok(value)
        } else {
            Err(self.error("invalid literal"))
        }
    }

    fn object(&mut self, depth: usize) -> Result<Json, JsonError> {
        if depth > MAX_DEPTH {
            return Err(self.error("nesting too deep"));
        }
        self.pos += 1; // '{'
        let mut members = Vec::new();
        self.skip_ws();
        if self.peek() == Some(b'}') {
            self.pos += 1;
            return Ok(Json::Object(members));
        }
        loop {
            self.skip_ws();
            let name = match self.peek() {
                Some(b'"') => self.string()?,
                Some(b) if self.bare_names && is_bare_name_byte(b) => self.bare_name(),
                _ => return Err(self.error("expected a member name")),
            };
            self.skip_ws();
            self.expect(b':', "expected ':' after a member name")?;
            let value = self.value(depth)?;
            members.push((name, value));
            self.skip_ws();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b'}') => {
                    self.pos += 1;
                    return Ok(Json::Object(members));
                }
                _ => return Err(self.error("expected ',' or '}' in an object")),
            }
        }
    }

    /// An unquoted member name: ASCII letters, digits, `_` and `$` (JavaScript identifiers).
    fn bare_name(&mut self) -> String {
        let start = self.pos;
        while self.peek().is_some_and(is_bare_name_byte) {
            self.pos += 1;
        }
        self.src
            .get(start..self.pos)
            .unwrap_or_default()
            .to_string()
    }

    fn array(&mut self, depth: usize) -> Result<Json, JsonError> {
        if depth > MAX_DEPTH {
            return Err(self.error("nesting too deep"));
        }
        self.pos += 1; // '['
        let mut items = Vec::new();
        self.skip_ws();
        if self.peek() == Some(b']') {
            self.pos += 1;
            return Ok(Json::Array(items));
        }
        loop {
            items.push(self.value(depth)?);
            self.skip_ws();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b']') => {
                    self.pos += 1;
                    return Ok(Json::Array(items));
                }
                _ => return Err(self.error("expected ',' or ']' in an array")),
            }
        }
    }

    fn digits(&mut self) -> usize {
        let start = self.pos;
        while let Some(b'0'..=b'9') = self.peek() {
            self.pos += 1;
        }
        self.pos - start
    }

    fn number(&mut self) -> Result<Json, JsonError> {
        let start = self.pos;
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        match self.peek() {
            Some(b'0') => self.pos += 1,
            Some(b'1'..=b'9') => {
                self.digits();
            }
            _ => return Err(self.error("invalid number")),
        }
        if self.peek() == Some(b'.') {
            self.pos += 1;
            if self.digits() == 0 {
                return Err(self.error("invalid number: no digit after '.'"));
            }
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.pos += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.pos += 1;
            }
            if self.digits() == 0 {
                return Err(self.error("invalid number: no digit in the exponent"));
            }
        }
        match self.src.get(start..self.pos) {
            Some(text) => Ok(Json::Number(text.to_owned())),
            None => Err(self.error("invalid number")),
        }
    }

    fn hex4(&mut self) -> Result<u32, JsonError> {
        let mut v = 0u32;
        for _ in 0..4 {
            let d = match self.peek() {
                Some(b @ b'0'..=b'9') => b - b'0',
                Some(b @ b'a'..=b'f') => b - b'a' + 10,
                Some(b @ b'A'..=b'F') => b - b'A' + 10,
                _ => return Err(self.error("invalid \\u escape")),
            };
            v = (v << 4) | u32::from(d);
            self.pos += 1;
        }
        Ok(v)
    }

    /// Reads a string starting at its opening quote and returns its decoded content.
    fn string(&mut self) -> Result<String, JsonError> {
        self.pos += 1; // opening '"'
        let mut out = String::new();
        loop {
            // Copy the run of plain characters. The run ends at an ASCII byte, so both ends are
            // character boundaries of the (already validated) UTF-8 source.
            let run_start = self.pos;
            while let Some(b) = self.peek() {
                if b == b'"' || b == b'\\' || b < 0x20 {
                    break;
                }
                self.pos += 1;
            }
            match self.src.get(run_start..self.pos) {
                Some(run) => out.push_str(run),
                None => return Err(self.error("invalid string")),
            }
            match self.peek() {
                None => return Err(self.error("unterminated string")),
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some(b'\\') => {
                    self.pos += 1;
                    self.escape(&mut out)?;
                }
                Some(_) => return Err(self.error("unescaped control character in a string")),
            }
        }
    }

    /// Decodes one escape sequence (the backslash is already consumed).
    fn escape(&mut self, out: &mut String) -> Result<(), JsonError> {
        let c = match self.peek() {
            Some(b'"') => '"',
            Some(b'\\') => '\\',
            Some(b'/') => '/',
            Some(b'b') => '\u{8}',
            Some(b'f') => '\u{c}',
            Some(b'n') => '\n',
            Some(b'r') => '\r',
            Some(b't') => '\t',
            Some(b'u') => {
                self.pos += 1;
                let unit = self.hex4()?;
                let code = match unit {
                    0xD800..=0xDBFF => {
                        if self.peek() != Some(b'\\') {
                            return Err(self.error("lone surrogate in \\u escape"));
                        }
                        self.pos += 1;
                        if self.peek() != Some(b'u') {
                            return Err(self.error("lone surrogate in \\u escape"));
                        }
                        self.pos += 1;
                        let low = self.hex4()?;
                        if !(0xDC00..=0xDFFF).contains(&low) {
                            return Err(self.error("lone surrogate in \\u escape"));
                        }
                        0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00)
                    }
                    0xDC00..=0xDFFF => return Err(self.error("lone surrogate in \\u escape")),
                    other => other,
                };
                return match char::from_u32(code) {
                    Some(c) => {
                        out.push(c);
                        Ok(())
                    }
                    None => Err(self.error("invalid \\u escape")),
                };
            }
            _ => return Err(self.error("invalid escape sequence")),
        };
        self.pos += 1;
        out.push(c);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(s: &str) -> Json {
        parse(s.as_bytes()).unwrap()
    }

    #[test]
    fn parses_values_and_keeps_literals() {
        let v =
            obj(r#" {"a": 12.780, "b": [true, false, null, -0, 1E+5], "c": {"z": 1, "a": 2}} "#);
        let Json::Object(m) = &v else { panic!() };
        assert_eq!(m[0], ("a".into(), Json::Number("12.780".into())));
        assert_eq!(
            v.get("b"),
            Some(&Json::Array(vec![
                Json::Bool(true),
                Json::Bool(false),
                Json::Null,
                Json::Number("-0".into()),
                Json::Number("1E+5".into())
            ]))
        );
        assert_eq!(
            v.get("c"),
            Some(&Json::Object(vec![
                ("z".into(), Json::Number("1".into())),
                ("a".into(), Json::Number("2".into()))
            ]))
        );
    }

    #[test]
    fn last_duplicate_wins_on_get() {
        let v = obj(r#"{"a":"1","a":"2"}"#);
        assert_eq!(v.get("a"), Some(&Json::String("2".into())));
    }

    #[test]
    fn decodes_escapes_and_surrogate_pairs() {
        let v = obj(r#"["\u4e2d\/\"\\\b\f\n\r\t\ud83d\ude00"]"#);
        assert_eq!(
            v,
            Json::Array(vec![Json::String("中/\"\\\u{8}\u{c}\n\r\t😀".into())])
        );
    }

    #[test]
    fn rejects_invalid_input() {
        for bad in [
            "",
            "{",
            "{\"a\"}",
            "{\"a\":}",
            "{\"a\":1,}",
            "[1,]",
            "01",
            "1.",
            "1e",
            "-",
            "+1",
            ".5",
            "\"\\ud800\"",
            "\"\\udc00\"",
            "\"\\ud800\\u0041\"",
            "\"\\x\"",
            "\"a\u{1}\"",
            "tru",
            "nul",
            "{} x",
            "{'a':1}",
            "\"abc",
            "NaN",
        ] {
            assert!(parse(bad.as_bytes()).is_err(), "{bad:?} should fail");
        }
        assert!(parse(b"\"\xff\"").is_err());
    }

    #[test]
    fn converts_to_serde_json_as_serde_json_parses() {
        for text in [
            r#"{"a":12.780,"b":-0,"c":1E+5,"d":[true,null,"\u00e9"],"e":{"x":1,"x":2},"f":18446744073709551615,"g":-9223372036854775808,"h":123456789012345678901234567890}"#,
            r#"[]"#,
            r#""s""#,
        ] {
            let expected: serde_json::Value = serde_json::from_str(text).unwrap();
            assert_eq!(obj(text).to_serde(), Some(expected), "{text}");
        }
        // Numbers serde_json refuses make the whole value unrepresentable.
        assert_eq!(obj("1e400").to_serde(), None);
        assert_eq!(obj(r#"{"a":[1,{"b":-1e400}]}"#).to_serde(), None);
    }

    #[test]
    fn converts_from_serde_json_in_map_order() {
        let value = serde_json::json!({"z": [1, 2.5, null], "a": {"s": "t", "b": false}});
        assert_eq!(
            Json::from(&value),
            obj(r#"{"a":{"b":false,"s":"t"},"z":[1,2.5,null]}"#)
        );
    }

    #[test]
    fn sorted_members_are_in_utf16_order_with_the_last_duplicate() {
        let Json::Object(members) = obj("{\"b\":1,\"\u{ff21}\":2,\"\u{1f600}\":3,\"b\":4}") else {
            panic!()
        };
        let names: Vec<(&str, &Json)> = sorted_members(&members)
            .into_iter()
            .map(|(n, v)| (n.as_str(), v))
            .collect();
        assert_eq!(
            names,
            [
                ("b", &Json::Number("4".into())),
                ("\u{1f600}", &Json::Number("3".into())),
                ("\u{ff21}", &Json::Number("2".into())),
            ]
        );
    }

    #[test]
    fn depth_limit() {
        let ok = format!("{}{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
        assert!(parse(ok.as_bytes()).is_ok());
        let deep = format!("{}{}", "[".repeat(MAX_DEPTH + 1), "]".repeat(MAX_DEPTH + 1));
        assert_eq!(
            parse(deep.as_bytes()).unwrap_err().reason,
            "nesting too deep"
        );
        let very_deep = "[".repeat(1_000_000);
        assert!(parse(very_deep.as_bytes()).is_err());
    }
}
