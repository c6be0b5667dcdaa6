//! The one reader of request fields, over JSON objects and V1 query parameters alike.
//!
//! Every family reads the same few kinds of field (a mandatory string, an optional one, a `"1"`
//! flag, a lenient integer, informational text), and the V1 query parameters are read exactly
//! as JSON strings would be. So the rules — which JSON types each kind accepts, what is blank,
//! which [`RequestError`] names the field — live here once: [`Fields`] finds a member, [`Field`]
//! reads it. Family-specific rules (the kit's bounded IDs and checked flags) build on [`Field`].
//!
//! Common to every kind: an absent member and a JSON `null` are the same; "blank" means empty
//! or white space only; values are returned as received, never trimmed (only integers are
//! parsed after trimming).

use crate::json::Json;
use crate::v1_auth::param;

use super::RequestError;

/// One received value, as the readers see it: a JSON value, or a V1 query parameter, which is
/// always a [`Value::String`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Value<'a> {
    Null,
    Bool(bool),
    /// A JSON number, as its literal text.
    Number(&'a str),
    String(&'a str),
    /// An array or an object.
    Nested(&'a Json),
}

impl<'a> From<&'a Json> for Value<'a> {
    fn from(json: &'a Json) -> Value<'a> {
        match json {
            Json::Null => Value::Null,
            Json::Bool(b) => Value::Bool(*b),
            Json::Number(literal) => Value::Number(literal),
            Json::String(s) => Value::String(s),
            nested @ (Json::Array(_) | Json::Object(_)) => Value::Nested(nested),
        }
    }
}

impl Value<'_> {
    /// A short name of the value's JSON type, for error messages.
    fn type_name(self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Number(_) => "a number",
            Value::String(_) => "a string",
            Value::Nested(json) => json.type_name(),
        }
    }
}

fn is_blank(s: &str) -> bool {
    s.trim().is_empty()
}

/// Where fields are read from: finds a member by name. Every reading rule is a provided method,
/// through [`Field`].
pub(crate) trait Fields {
    /// The member `name`, if present (a JSON `null` is present here; [`Field`] treats it as
    /// absent).
    fn value(&self, name: &str) -> Option<Value<'_>>;

    /// The member `name`, named `name` in errors.
    fn field(&self, name: &'static str) -> Field<'_> {
        Field::new(name, self.value(name))
    }

    /// The member `key`, named `field` in errors (a path such as `productInfo.linearValue`).
    fn field_at(&self, key: &str, field: &'static str) -> Field<'_> {
        Field::new(field, self.value(key))
    }

    /// See [`Field::required`].
    fn required(&self, name: &'static str) -> Result<String, RequestError> {
        self.field(name).required()
    }

    /// See [`Field::optional`].
    fn optional(&self, name: &'static str) -> Result<Option<String>, RequestError> {
        self.field(name).optional()
    }

    /// See [`Field::optional_integer`].
    fn optional_integer(&self, name: &'static str) -> Result<Option<i64>, RequestError> {
        self.field(name).optional_integer()
    }

    /// See [`Field::flag`].
    fn flag(&self, name: &'static str) -> bool {
        self.field(name).flag()
    }

    /// `testFlag` (D6): see [`Field::flag`].
    fn test_flag(&self) -> bool {
        self.flag("testFlag")
    }

    /// See [`Field::integer`].
    fn integer(&self, name: &'static str) -> Option<i64> {
        self.field(name).integer()
    }

    /// See [`Field::text`].
    fn text(&self, name: &'static str) -> Option<String> {
        self.field(name).text()
    }
}

/// A JSON object: for a repeated name the last occurrence wins (as with map binding); any other
/// JSON value has no members.
impl Fields for Json {
    fn value(&self, name: &str) -> Option<Value<'_>> {
        self.get(name).map(Value::from)
    }
}

/// V1 query parameters, decoded: for a repeated name the first value counts (docs/protocol.md,
/// inbound-legacy §1.2 rule 4).
impl Fields for [(String, String)] {
    fn value(&self, name: &str) -> Option<Value<'_>> {
        param(self, name).map(Value::String)
    }
}

/// One member, about to be read by one of the rules below, with the name errors give it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Field<'a> {
    /// The name errors give (the member's name, or a path to it).
    pub(crate) name: &'static str,
    /// The member; `None` when absent or JSON `null`.
    pub(crate) value: Option<Value<'a>>,
}

impl<'a> Field<'a> {
    /// A field over any value, e.g. one found with a fallback; a JSON `null` counts as absent.
    pub(crate) fn new(name: &'static str, value: Option<Value<'a>>) -> Field<'a> {
        Field {
            name,
            value: value.filter(|v| *v != Value::Null),
        }
    }

    /// [`RequestError::MissingField`] naming this field.
    pub(crate) fn missing(self) -> RequestError {
        RequestError::MissingField(self.name)
    }

    /// [`RequestError::InvalidField`] naming this field.
    pub(crate) fn invalid(self, reason: impl Into<String>) -> RequestError {
        RequestError::invalid(self.name, reason)
    }

    fn not_a_string(self, got: Value<'_>) -> RequestError {
        self.invalid(format!("must be a string, got {}", got.type_name()))
    }

    /// A string, blank included; absent is `None`; another type is an error.
    pub(crate) fn string(self) -> Result<Option<&'a str>, RequestError> {
        match self.value {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(other) => Err(self.not_a_string(other)),
        }
    }

    /// A mandatory string: absent or blank is [`RequestError::MissingField`], another type
    /// [`RequestError::InvalidField`].
    pub(crate) fn required(self) -> Result<String, RequestError> {
        self.optional()?.ok_or(self.missing())
    }

    /// An optional string: absent or blank is `None`; another type is an error.
    pub(crate) fn optional(self) -> Result<Option<String>, RequestError> {
        Ok(self.string()?.filter(|s| !is_blank(s)).map(str::to_owned))
    }

    /// A string that may be blank, or a number as its literal; absent is `""`; another type is
    /// an error (kit fields that are empty during credential application).
    pub(crate) fn string_or_number(self) -> Result<String, RequestError> {
        match self.value {
            Some(Value::Number(literal)) => Ok(literal.to_owned()),
            _ => Ok(self.string()?.unwrap_or_default().to_owned()),
        }
    }

    /// Only a JSON string, as received (blank included); anything else is `None`. For members
    /// copied into events as they came, where a wrong type is not worth refusing the call.
    pub(crate) fn string_if_any(self) -> Option<String> {
        match self.value {
            Some(Value::String(s)) => Some(s.to_owned()),
            _ => None,
        }
    }

    /// A yes/no flag (D6, D22): the string `"1"` or the number `1`, exactly; anything else,
    /// absence included, is `false`.
    pub(crate) fn flag(self) -> bool {
        matches!(self.value, Some(Value::String("1") | Value::Number("1")))
    }

    /// A lenient integer (D22): a JSON integer, or a string holding one (surrounding white space
    /// allowed); anything else, or out of `i64` range, is `None`.
    pub(crate) fn integer(self) -> Option<i64> {
        match self.value? {
            Value::Number(literal) => literal.parse().ok(),
            Value::String(s) => s.trim().parse().ok(),
            _ => None,
        }
    }

    /// An optional integer: absent or a blank string is `None`; present but not an
    /// [`integer`](Field::integer) is an error.
    pub(crate) fn optional_integer(self) -> Result<Option<i64>, RequestError> {
        match self.value {
            None => Ok(None),
            Some(Value::String(s)) if is_blank(s) => Ok(None),
            Some(_) => self
                .integer()
                .map(Some)
                .ok_or_else(|| self.invalid("must be an integer")),
        }
    }

    /// Lenient text of an informational value: a string as is (blank is `None`), a number as its
    /// literal, a boolean as `true` / `false`; anything else `None`.
    pub(crate) fn text(self) -> Option<String> {
        match self.value? {
            Value::String(s) if is_blank(s) => None,
            Value::String(s) | Value::Number(s) => Some(s.to_owned()),
            Value::Bool(b) => Some(b.to_string()),
            Value::Null | Value::Nested(_) => None,
        }
    }

    /// Mandatory [`text`](Field::text): none is [`RequestError::MissingField`].
    pub(crate) fn required_text(self) -> Result<String, RequestError> {
        self.text().ok_or(self.missing())
    }
}

/// `(name, value)` pairs of an array of `{"name": …, "value": …}` objects (`extendParams`,
/// `saasExtendParams`), in received order: both read as [`Field::text`], an element without a
/// name skipped, a missing value `""`.
pub(crate) fn name_value_pairs(items: &[Json]) -> Vec<(String, String)> {
    items
        .iter()
        .filter_map(|item| {
            let name = item.text("name")?;
            Some((name, item.text("value").unwrap_or_default()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(text: &str) -> Json {
        crate::json::parse(text.as_bytes()).unwrap()
    }

    /// Reads member `v` of `{"v": <literal>}` with `read`, errors as their message.
    fn read<T: std::fmt::Debug>(
        literal: &str,
        read: &impl Fn(Field<'_>) -> Result<T, RequestError>,
    ) -> String {
        let obj = json(&format!(r#"{{"v":{literal}}}"#));
        match read(obj.field("v")) {
            Ok(v) => format!("{v:?}"),
            Err(e) => e.to_string(),
        }
    }

    /// Asserts `rule` over `{"v": <literal>}` for each `(literal, expected)`.
    fn table<T: std::fmt::Debug>(
        name: &str,
        rule: impl Fn(Field<'_>) -> Result<T, RequestError>,
        rows: &[(&str, &str)],
    ) {
        for (literal, expected) in rows {
            assert_eq!(read(literal, &rule), *expected, "{name} of {literal}");
        }
    }

    const NUMBER: &str = "invalid field v: must be a string, got a number";
    const BOOLEAN: &str = "invalid field v: must be a string, got a boolean";
    const ARRAY: &str = "invalid field v: must be a string, got an array";
    const MISSING: &str = "missing mandatory field: v";
    const NOT_INTEGER: &str = "invalid field v: must be an integer";

    #[test]
    fn strings_accept_only_json_strings() {
        let rows = [
            (r#"" a ""#, r#"" a ""#),
            (r#"" ""#, MISSING),
            ("null", MISSING),
            ("1", NUMBER),
            ("true", BOOLEAN),
            ("[1]", ARRAY),
            ("{}", "invalid field v: must be a string, got an object"),
        ];
        table("required", |f: Field<'_>| f.required(), &rows);
        let rows = [
            (r#"" a ""#, r#"Some(" a ")"#),
            (r#"" ""#, "None"),
            ("null", "None"),
            ("1", NUMBER),
            ("true", BOOLEAN),
        ];
        table("optional", |f: Field<'_>| f.optional(), &rows);
        let rows = [
            (r#"" ""#, r#"" ""#),
            ("null", r#""""#),
            ("12.50", r#""12.50""#),
            ("true", BOOLEAN),
            ("[1]", ARRAY),
        ];
        table(
            "string_or_number",
            |f: Field<'_>| f.string_or_number(),
            &rows,
        );
    }

    #[test]
    fn text_takes_scalars_as_written() {
        let rows = [
            (r#"" a ""#, r#"Some(" a ")"#),
            (r#"" ""#, "None"),
            ("-0", r#"Some("-0")"#),
            ("1.0", r#"Some("1.0")"#),
            ("false", r#"Some("false")"#),
            ("null", "None"),
            ("[1]", "None"),
            ("{}", "None"),
        ];
        table("text", |f: Field<'_>| Ok(f.text()), &rows);
        let rows = [("7", r#""7""#), (r#"" ""#, MISSING), ("[]", MISSING)];
        table("required_text", |f: Field<'_>| f.required_text(), &rows);
    }

    #[test]
    fn integers_take_numbers_and_numeric_strings() {
        let rows = [
            ("7", "Some(7)"),
            ("-0", "Some(0)"),
            (r#"" 7 ""#, "Some(7)"),
            ("1.0", "None"),
            ("1e2", "None"),
            ("99999999999999999999", "None"),
            (r#""""#, "None"),
            ("true", "None"),
            ("null", "None"),
        ];
        table("integer", |f: Field<'_>| Ok(f.integer()), &rows);
        let rows = [
            ("7", "Some(7)"),
            (r#"" 7 ""#, "Some(7)"),
            (r#""  ""#, "None"),
            ("null", "None"),
            ("1.0", NOT_INTEGER),
            (r#""x""#, NOT_INTEGER),
            ("true", NOT_INTEGER),
            ("[7]", NOT_INTEGER),
        ];
        table(
            "optional_integer",
            |f: Field<'_>| f.optional_integer(),
            &rows,
        );
    }

    #[test]
    fn a_flag_is_exactly_string_or_number_one() {
        let rows = [
            ("1", "true"),
            (r#""1""#, "true"),
            (r#"" 1""#, "false"),
            ("1.0", "false"),
            ("true", "false"),
            (r#""true""#, "false"),
            ("0", "false"),
            ("null", "false"),
        ];
        table("flag", |f: Field<'_>| Ok(f.flag()), &rows);
    }

    #[test]
    fn absent_is_like_null() {
        let obj = json("{}");
        assert_eq!(obj.required("v"), Err(RequestError::MissingField("v")));
        assert_eq!(obj.optional("v"), Ok(None));
        assert_eq!(obj.field("v").string_or_number(), Ok(String::new()));
        assert_eq!(obj.optional_integer("v"), Ok(None));
        assert_eq!(obj.text("v"), None);
        assert!(!obj.flag("v"));
        assert_eq!(
            obj.field("v").required_text(),
            Err(RequestError::MissingField("v"))
        );
    }

    #[test]
    fn string_if_any_takes_only_strings_blank_included() {
        assert_eq!(
            read(r#"" ""#, &|f: Field<'_>| Ok(f.string_if_any())),
            r#"Some(" ")"#
        );
        assert_eq!(read("1", &|f: Field<'_>| Ok(f.string_if_any())), "None");
        assert_eq!(read("null", &|f: Field<'_>| Ok(f.string_if_any())), "None");
    }

    #[test]
    fn paths_name_the_field() {
        let obj = json(r#"{"linearValue":"x"}"#);
        assert_eq!(
            obj.field_at("linearValue", "productInfo.linearValue")
                .optional_integer(),
            Err(RequestError::invalid(
                "productInfo.linearValue",
                "must be an integer"
            ))
        );
    }

    #[test]
    fn query_parameters_read_as_json_strings_first_value_counting() {
        let params: Vec<(String, String)> = [("a", " 5 "), ("b", " "), ("a", "6"), ("t", "1")]
            .iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect();
        let p: &[(String, String)] = &params;
        assert_eq!(p.required("a"), Ok(" 5 ".to_owned()));
        assert_eq!(p.optional_integer("a"), Ok(Some(5)));
        assert_eq!(p.required("b"), Err(RequestError::MissingField("b")));
        assert_eq!(p.optional("b"), Ok(None));
        assert!(!p.test_flag() && p.flag("t"));
    }

    #[test]
    fn json_members_last_duplicate_wins() {
        assert_eq!(
            json(r#"{"a":"1","a":"2"}"#).required("a"),
            Ok("2".to_owned())
        );
    }

    #[test]
    fn name_value_pairs_skip_nameless_elements() {
        let Json::Array(items) =
            json(r#"[{"name":"a","value":1},{"value":"x"},{"name":true},{"name":" "},7]"#)
        else {
            panic!()
        };
        assert_eq!(
            name_value_pairs(&items),
            [
                ("a".to_owned(), "1".to_owned()),
                ("true".to_owned(), String::new())
            ]
        );
    }
}
