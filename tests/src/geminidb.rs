//! The subset of the DynamoDB API that GeminiDB's DynamoDB-compatible API documents, as koogate
//! uses it (docs/geminidb.md has the table and the sources), and two ways to hold every request
//! to it:
//!
//! * [`Guard`], an aws-sdk interceptor for in-process clients ([`crate::MotoServer::client`] has
//!   one): it checks each serialized request and fails it on a violation;
//! * [`GeminiProxy`], an HTTP proxy between a `koogate` process (`AWS_ENDPOINT_URL_DYNAMODB`) and
//!   moto: it answers a violation with HTTP 400 and a DynamoDB-shaped `ValidationException`.
//!
//! Both check the wire format (the `X-Amz-Target` action and the JSON body) with [`check`], and
//! both can run in [`Mode::Strip`]: `ReturnValues` and `ReturnValuesOnConditionCheckFailure`
//! removed before moto sees the request, as a GeminiDB that ignores them would behave, so that
//! the store's consistent-read fallbacks run. Both also stand in for GeminiDB's CreateTable,
//! which takes no billing mode where moto (like Amazon DynamoDB) requires one: see [`rewrite`].

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use serde_json::{Map, Value};

/// What a guard or proxy does besides checking.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Check, and forward the request unchanged.
    Check,
    /// Check, then remove `ReturnValues` and `ReturnValuesOnConditionCheckFailure`.
    Strip,
}

/// The parameters GeminiDB's DynamoDB-compatible API takes that may be silently ignored (their
/// support is not established by Huawei's pages): the store must stay correct without them.
pub const MAY_BE_IGNORED: [&str; 2] = ["ReturnValues", "ReturnValuesOnConditionCheckFailure"];

/// Every operation koogate may send, with the request parameters it may carry. Anything else (an
/// operation such as Scan, TransactWriteItems or ExecuteStatement, or a parameter such as
/// FilterExpression, ProjectionExpression, BillingMode) is outside the subset.
pub const OPERATIONS: &[(&str, &[&str])] = &[
    ("GetItem", &["TableName", "Key", "ConsistentRead"]),
    ("BatchGetItem", &["RequestItems"]),
    (
        "PutItem",
        &[
            "TableName",
            "Item",
            "ConditionExpression",
            "ExpressionAttributeNames",
            "ExpressionAttributeValues",
            "ReturnValuesOnConditionCheckFailure",
        ],
    ),
    (
        "UpdateItem",
        &[
            "TableName",
            "Key",
            "UpdateExpression",
            "ConditionExpression",
            "ExpressionAttributeNames",
            "ExpressionAttributeValues",
            "ReturnValues",
            "ReturnValuesOnConditionCheckFailure",
        ],
    ),
    (
        "DeleteItem",
        &[
            "TableName",
            "Key",
            "ConditionExpression",
            "ExpressionAttributeNames",
            "ExpressionAttributeValues",
        ],
    ),
    ("BatchWriteItem", &["RequestItems"]),
    (
        "Query",
        &[
            "TableName",
            "KeyConditionExpression",
            "ExpressionAttributeNames",
            "ExpressionAttributeValues",
            "ConsistentRead",
            "ExclusiveStartKey",
            "Limit",
            "ScanIndexForward",
        ],
    ),
    (
        "CreateTable",
        &["TableName", "AttributeDefinitions", "KeySchema"],
    ),
    ("DescribeTable", &["TableName"]),
    ("DescribeTimeToLive", &["TableName"]),
    (
        "UpdateTimeToLive",
        &["TableName", "TimeToLiveSpecification"],
    ),
];

/// The ConditionExpression functions GeminiDB documents (no `size`).
const CONDITION_FUNCTIONS: [&str; 5] = [
    "attribute_exists",
    "attribute_not_exists",
    "attribute_type",
    "begins_with",
    "contains",
];

/// BatchWriteItem and BatchGetItem limits koogate keeps (Amazon DynamoDB's).
const BATCH_WRITE_MAX: usize = 25;
const BATCH_GET_MAX: usize = 100;

/// Checks one request: `target` is the `X-Amz-Target` header (`DynamoDB_20120810.<Action>`),
/// `body` its JSON. `Err` says what lies outside the subset.
pub fn check(target: &str, body: &Value) -> Result<(), String> {
    let action = target.rsplit('.').next().unwrap_or(target);
    let Some((_, allowed)) = OPERATIONS.iter().find(|(op, _)| *op == action) else {
        return Err(format!("operation {action} is not in the GeminiDB subset"));
    };
    let obj = body
        .as_object()
        .ok_or_else(|| format!("{action}: body is not a JSON object"))?;
    for k in obj.keys() {
        if !allowed.contains(&k.as_str()) {
            return Err(format!(
                "{action}: parameter {k} is not in the GeminiDB subset"
            ));
        }
    }
    if let Some(t) = obj.get("TableName").and_then(Value::as_str) {
        check_table_name(action, t)?;
    }
    match obj.get("ReturnValues").and_then(Value::as_str) {
        None | Some("ALL_NEW" | "NONE") => {}
        Some(v) => return Err(format!("{action}: ReturnValues {v} is not used by koogate")),
    }
    match obj
        .get("ReturnValuesOnConditionCheckFailure")
        .and_then(Value::as_str)
    {
        None | Some("ALL_OLD" | "NONE") => {}
        Some(v) => {
            return Err(format!(
                "{action}: ReturnValuesOnConditionCheckFailure {v} is not used by koogate"
            ))
        }
    }
    if let Some(c) = obj.get("ConsistentRead") {
        if !c.is_boolean() {
            return Err(format!("{action}: ConsistentRead must be a boolean"));
        }
    }
    match action {
        "BatchWriteItem" => check_batch_write(obj)?,
        "BatchGetItem" => check_batch_get(obj)?,
        "UpdateTimeToLive" => {
            let spec = obj
                .get("TimeToLiveSpecification")
                .and_then(Value::as_object)
                .ok_or("UpdateTimeToLive: TimeToLiveSpecification missing")?;
            only_keys(
                "TimeToLiveSpecification",
                spec,
                &["AttributeName", "Enabled"],
            )?;
        }
        _ => {}
    }
    check_expressions(action, obj)
}

fn check_table_name(action: &str, t: &str) -> Result<(), String> {
    // "The table or index name cannot contain periods"; Serverless: 3 to 48 characters.
    if t.contains('.') || !(3..=48).contains(&t.chars().count()) {
        return Err(format!(
            "{action}: table name {t:?} must have 3 to 48 characters and no '.'"
        ));
    }
    Ok(())
}

fn only_keys(what: &str, obj: &Map<String, Value>, allowed: &[&str]) -> Result<(), String> {
    match obj.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => Err(format!("{what}: {k} is not in the GeminiDB subset")),
        None => Ok(()),
    }
}

fn request_items(obj: &Map<String, Value>) -> Result<&Map<String, Value>, String> {
    obj.get("RequestItems")
        .and_then(Value::as_object)
        .ok_or_else(|| "RequestItems missing".to_string())
}

fn check_batch_write(obj: &Map<String, Value>) -> Result<(), String> {
    let mut n = 0;
    for (table, writes) in request_items(obj)? {
        check_table_name("BatchWriteItem", table)?;
        for w in writes
            .as_array()
            .ok_or("BatchWriteItem: writes are not a list")?
        {
            let w = w
                .as_object()
                .ok_or("BatchWriteItem: a write is not an object")?;
            only_keys("BatchWriteItem write", w, &["PutRequest", "DeleteRequest"])?;
            if let Some(p) = w.get("PutRequest").and_then(Value::as_object) {
                only_keys("PutRequest", p, &["Item"])?;
            }
            if let Some(d) = w.get("DeleteRequest").and_then(Value::as_object) {
                only_keys("DeleteRequest", d, &["Key"])?;
            }
            n += 1;
        }
    }
    if n == 0 || n > BATCH_WRITE_MAX {
        return Err(format!(
            "BatchWriteItem: {n} writes (1 to {BATCH_WRITE_MAX} allowed)"
        ));
    }
    Ok(())
}

fn check_batch_get(obj: &Map<String, Value>) -> Result<(), String> {
    let mut n = 0;
    for (table, ka) in request_items(obj)? {
        check_table_name("BatchGetItem", table)?;
        let ka = ka.as_object().ok_or("BatchGetItem: KeysAndAttributes")?;
        only_keys(
            "BatchGetItem KeysAndAttributes",
            ka,
            &["Keys", "ConsistentRead"],
        )?;
        n += ka.get("Keys").and_then(Value::as_array).map_or(0, Vec::len);
    }
    if n == 0 || n > BATCH_GET_MAX {
        return Err(format!(
            "BatchGetItem: {n} keys (1 to {BATCH_GET_MAX} allowed)"
        ));
    }
    Ok(())
}

/// The placeholders an expression used, to compare with the declared ones.
#[derive(Default)]
struct Used {
    names: BTreeSet<String>,
    values: BTreeSet<String>,
}

fn check_expressions(action: &str, obj: &Map<String, Value>) -> Result<(), String> {
    let names: Map<String, Value> = obj
        .get("ExpressionAttributeNames")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let values: Map<String, Value> = obj
        .get("ExpressionAttributeValues")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let mut used = Used::default();
    let ctx = Ctx { names: &names };
    let mut any = false;
    if let Some(e) = obj.get("ConditionExpression").and_then(Value::as_str) {
        any = true;
        Parser::new(e, &ctx, &mut used)
            .and_then(|mut p| p.condition_expression())
            .map_err(|m| format!("{action}: ConditionExpression {e:?}: {m}"))?;
    }
    if let Some(e) = obj.get("UpdateExpression").and_then(Value::as_str) {
        any = true;
        Parser::new(e, &ctx, &mut used)
            .and_then(|mut p| p.update_expression())
            .map_err(|m| format!("{action}: UpdateExpression {e:?}: {m}"))?;
    }
    if let Some(e) = obj.get("KeyConditionExpression").and_then(Value::as_str) {
        any = true;
        Parser::new(e, &ctx, &mut used)
            .and_then(|mut p| p.key_condition_expression())
            .map_err(|m| format!("{action}: KeyConditionExpression {e:?}: {m}"))?;
    }
    if !any && (!names.is_empty() || !values.is_empty()) {
        return Err(format!(
            "{action}: expression attributes without an expression"
        ));
    }
    let declared_names: BTreeSet<String> = names.keys().cloned().collect();
    let declared_values: BTreeSet<String> = values.keys().cloned().collect();
    if declared_names != used.names {
        return Err(format!(
            "{action}: ExpressionAttributeNames {declared_names:?} but the expressions use {:?}",
            used.names
        ));
    }
    if declared_values != used.values {
        return Err(format!(
            "{action}: ExpressionAttributeValues {declared_values:?} but the expressions use {:?}",
            used.values
        ));
    }
    Ok(())
}

struct Ctx<'a> {
    names: &'a Map<String, Value>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    /// `#alias`
    Name(String),
    /// `:value`
    Value(String),
    /// A bare word: an attribute name, a function or a keyword.
    Word(String),
    LParen,
    RParen,
    Comma,
    /// `=`, `<>`, `<`, `<=`, `>`, `>=`
    Cmp(&'static str),
    Plus,
    Minus,
}

fn tokenize(text: &str) -> Result<Vec<Tok>, String> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    let word_char = |c: char| c.is_ascii_alphanumeric() || c == '_';
    while i < chars.len() {
        let c = chars[i];
        match c {
            ' ' | '\t' | '\n' | '\r' => i += 1,
            '(' => {
                out.push(Tok::LParen);
                i += 1;
            }
            ')' => {
                out.push(Tok::RParen);
                i += 1;
            }
            ',' => {
                out.push(Tok::Comma);
                i += 1;
            }
            '+' => {
                out.push(Tok::Plus);
                i += 1;
            }
            '-' => {
                out.push(Tok::Minus);
                i += 1;
            }
            '=' => {
                out.push(Tok::Cmp("="));
                i += 1;
            }
            '<' | '>' => {
                let next = chars.get(i + 1).copied();
                let (op, len) = match (c, next) {
                    ('<', Some('>')) => ("<>", 2),
                    ('<', Some('=')) => ("<=", 2),
                    ('>', Some('=')) => (">=", 2),
                    ('<', _) => ("<", 1),
                    _ => (">", 1),
                };
                out.push(Tok::Cmp(op));
                i += len;
            }
            '#' | ':' => {
                let start = i;
                i += 1;
                while i < chars.len() && word_char(chars[i]) {
                    i += 1;
                }
                let s: String = chars[start..i].iter().collect();
                if s.len() < 2 {
                    return Err(format!("empty placeholder at {start}"));
                }
                out.push(if c == '#' {
                    Tok::Name(s)
                } else {
                    Tok::Value(s)
                });
            }
            c if word_char(c) => {
                let start = i;
                while i < chars.len() && word_char(chars[i]) {
                    i += 1;
                }
                out.push(Tok::Word(chars[start..i].iter().collect()));
            }
            other => {
                return Err(format!(
                "{other:?} is not in the subset (nested paths, lists and other syntax are unused)"
            ))
            }
        }
    }
    Ok(out)
}

const KEYWORDS: [&str; 9] = [
    "AND", "OR", "NOT", "BETWEEN", "IN", "SET", "REMOVE", "ADD", "DELETE",
];

fn is_keyword(w: &str, k: &str) -> bool {
    w.eq_ignore_ascii_case(k)
}

struct Parser<'a, 'u> {
    toks: Vec<Tok>,
    pos: usize,
    ctx: &'a Ctx<'a>,
    used: &'u mut Used,
}

impl<'a, 'u> Parser<'a, 'u> {
    fn new(text: &str, ctx: &'a Ctx<'a>, used: &'u mut Used) -> Result<Self, String> {
        Ok(Parser {
            toks: tokenize(text)?,
            pos: 0,
            ctx,
            used,
        })
    }

    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }

    fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.pos).cloned();
        self.pos += 1;
        t
    }

    fn expect(&mut self, t: &Tok) -> Result<(), String> {
        match self.next() {
            Some(ref got) if got == t => Ok(()),
            got => Err(format!("expected {t:?}, found {got:?}")),
        }
    }

    fn peek_keyword(&self, k: &str) -> bool {
        matches!(self.peek(), Some(Tok::Word(w)) if is_keyword(w, k))
    }

    fn end(&self) -> Result<(), String> {
        match self.peek() {
            None => Ok(()),
            Some(t) => Err(format!("unexpected {t:?}")),
        }
    }

    /// A path (an attribute name, bare or `#alias`), resolved to the attribute's name.
    fn path(&mut self) -> Result<String, String> {
        match self.next() {
            Some(Tok::Name(n)) => {
                let resolved = self
                    .ctx
                    .names
                    .get(&n)
                    .and_then(Value::as_str)
                    .ok_or_else(|| format!("{n} is not declared"))?
                    .to_string();
                self.used.names.insert(n);
                Ok(resolved)
            }
            Some(Tok::Word(w)) if !KEYWORDS.iter().any(|k| is_keyword(&w, k)) => {
                if self.peek() == Some(&Tok::LParen) {
                    return Err(format!("function {w} where a path was expected"));
                }
                Ok(w)
            }
            other => Err(format!("expected an attribute path, found {other:?}")),
        }
    }

    /// A value: only ever a `:placeholder` ("all values can only be placeholders").
    fn value(&mut self) -> Result<(), String> {
        match self.next() {
            Some(Tok::Value(v)) => {
                self.used.values.insert(v);
                Ok(())
            }
            other => Err(format!("expected a :value placeholder, found {other:?}")),
        }
    }

    // ---- ConditionExpression ------------------------------------------------------------------

    fn condition_expression(&mut self) -> Result<(), String> {
        self.disjunction()?;
        self.end()
    }

    fn disjunction(&mut self) -> Result<(), String> {
        self.conjunction()?;
        while self.peek_keyword("OR") {
            self.pos += 1;
            self.conjunction()?;
        }
        Ok(())
    }

    fn conjunction(&mut self) -> Result<(), String> {
        self.primary()?;
        while self.peek_keyword("AND") {
            self.pos += 1;
            self.primary()?;
        }
        Ok(())
    }

    fn primary(&mut self) -> Result<(), String> {
        match self.peek().cloned() {
            Some(Tok::LParen) => {
                self.pos += 1;
                self.disjunction()?;
                self.expect(&Tok::RParen)
            }
            Some(Tok::Word(w)) if self.toks.get(self.pos + 1) == Some(&Tok::LParen) => {
                self.pos += 2;
                self.condition_function(&w)
            }
            Some(Tok::Word(w)) if is_keyword(&w, "NOT") => {
                Err("NOT is not used by koogate (not in the subset)".into())
            }
            _ => {
                self.path()?;
                match self.next() {
                    Some(Tok::Cmp(_)) => {}
                    Some(Tok::Word(w)) if is_keyword(&w, "BETWEEN") || is_keyword(&w, "IN") => {
                        return Err(format!("{w} is not used by koogate (not in the subset)"))
                    }
                    other => return Err(format!("expected a comparison, found {other:?}")),
                }
                self.value()
            }
        }
    }

    /// After `name(`: the documented function syntax.
    fn condition_function(&mut self, name: &str) -> Result<(), String> {
        if !CONDITION_FUNCTIONS.contains(&name) {
            return Err(format!(
                "function {name} is not in GeminiDB's ConditionExpression functions"
            ));
        }
        self.path()?;
        if name != "attribute_exists" && name != "attribute_not_exists" {
            self.expect(&Tok::Comma)?;
            // contains(path, operand): "operand can only be an attribute value".
            self.value()?;
        }
        self.expect(&Tok::RParen)
    }

    // ---- KeyConditionExpression ---------------------------------------------------------------

    /// `pk = :v` optionally `AND sk <cmp> :v` or `AND begins_with(sk, :v)`.
    fn key_condition_expression(&mut self) -> Result<(), String> {
        self.path()?;
        self.expect(&Tok::Cmp("="))?;
        self.value()?;
        if self.peek_keyword("AND") {
            self.pos += 1;
            match self.peek().cloned() {
                Some(Tok::Word(w)) if w == "begins_with" => {
                    self.pos += 1;
                    self.expect(&Tok::LParen)?;
                    self.path()?;
                    self.expect(&Tok::Comma)?;
                    self.value()?;
                    self.expect(&Tok::RParen)?;
                }
                _ => {
                    self.path()?;
                    match self.next() {
                        Some(Tok::Cmp(op)) if op != "<>" => {}
                        other => {
                            return Err(format!("expected a sort key comparison, found {other:?}"))
                        }
                    }
                    self.value()?;
                }
            }
        }
        self.end()
    }

    // ---- UpdateExpression ---------------------------------------------------------------------

    fn update_expression(&mut self) -> Result<(), String> {
        let mut seen: BTreeSet<String> = BTreeSet::new();
        while let Some(t) = self.next() {
            let Tok::Word(clause) = t else {
                return Err(format!("expected SET, REMOVE, ADD or DELETE, found {t:?}"));
            };
            let clause = clause.to_ascii_uppercase();
            if !seen.insert(clause.clone()) {
                return Err(format!("{clause} appears twice"));
            }
            loop {
                match clause.as_str() {
                    "SET" => self.set_action()?,
                    "REMOVE" => {
                        self.path()?;
                    }
                    "ADD" | "DELETE" => {
                        self.path()?;
                        self.value()?;
                    }
                    other => return Err(format!("unknown clause {other}")),
                }
                if self.peek() == Some(&Tok::Comma) {
                    self.pos += 1;
                } else {
                    break;
                }
            }
        }
        if seen.is_empty() {
            return Err("empty update expression".into());
        }
        Ok(())
    }

    /// `path = value`, with GeminiDB's rules: the value is a placeholder, `if_not_exists(path,
    /// :v)` of the same path, `path +|- :v` of the same path, or `list_append`; never a path.
    fn set_action(&mut self) -> Result<(), String> {
        let target = self.path()?;
        self.expect(&Tok::Cmp("="))?;
        match self.peek().cloned() {
            Some(Tok::Value(_)) => self.value(),
            Some(Tok::Word(w)) if self.toks.get(self.pos + 1) == Some(&Tok::LParen) => {
                self.pos += 2;
                match w.as_str() {
                    "if_not_exists" => {
                        let p = self.path()?;
                        if p != target {
                            return Err(format!(
                                "SET {target} = if_not_exists({p}, …): the two paths must be equal"
                            ));
                        }
                        self.expect(&Tok::Comma)?;
                        self.value()?;
                        self.expect(&Tok::RParen)
                    }
                    "list_append" => {
                        for i in 0..2 {
                            match self.peek() {
                                Some(Tok::Value(_)) => self.value()?,
                                _ => {
                                    self.path()?;
                                }
                            }
                            if i == 0 {
                                self.expect(&Tok::Comma)?;
                            }
                        }
                        self.expect(&Tok::RParen)
                    }
                    other => Err(format!("function {other} is not in GeminiDB's SET syntax")),
                }
            }
            _ => {
                let p = self.path()?;
                match self.next() {
                    Some(Tok::Plus | Tok::Minus) if p == target => self.value(),
                    Some(Tok::Plus | Tok::Minus) => Err(format!(
                        "SET {target} = {p} ± …: the first operand must be {target}"
                    )),
                    _ => Err(format!("SET {target} = {p}: the value cannot be a path")),
                }
            }
        }
    }
}

/// The request as GeminiDB would take it, for moto: in [`Mode::Strip`] the parameters of
/// [`MAY_BE_IGNORED`] are removed; a CreateTable without a billing mode (GeminiDB's form) gets
/// `BillingMode=PAY_PER_REQUEST`, which moto, like Amazon DynamoDB, requires. Returns whether the
/// body changed.
pub fn rewrite(target: &str, body: &mut Value, mode: Mode) -> bool {
    let action = target.rsplit('.').next().unwrap_or(target);
    let Some(obj) = body.as_object_mut() else {
        return false;
    };
    let mut changed = false;
    if mode == Mode::Strip {
        for p in MAY_BE_IGNORED {
            changed |= obj.remove(p).is_some();
        }
    }
    if action == "CreateTable"
        && !obj.contains_key("BillingMode")
        && !obj.contains_key("ProvisionedThroughput")
    {
        obj.insert("BillingMode".into(), Value::from("PAY_PER_REQUEST"));
        changed = true;
    }
    changed
}

/// Violations seen by a guard or proxy.
pub type Violations = Arc<Mutex<Vec<String>>>;

/// The interceptor: checks every request an in-process client sends, fails it (and records
/// the violation) when it lies outside the subset, and applies [`rewrite`].
#[derive(Debug, Clone)]
pub struct Guard {
    mode: Mode,
    violations: Violations,
}

impl Guard {
    pub fn new(mode: Mode, violations: Violations) -> Guard {
        Guard { mode, violations }
    }
}

/// The violations of every [`crate::MotoServer`] client of this test binary.
pub fn shared_violations() -> Violations {
    static V: std::sync::OnceLock<Violations> = std::sync::OnceLock::new();
    V.get_or_init(Violations::default).clone()
}

/// Panics if a client of this test binary sent a request outside the subset.
pub fn assert_no_violations() {
    let v = shared_violations();
    let v = v.lock().unwrap();
    assert!(v.is_empty(), "requests outside the GeminiDB subset: {v:#?}");
}

impl aws_sdk_dynamodb::config::Intercept for Guard {
    fn name(&self) -> &'static str {
        "koogate-geminidb-guard"
    }

    fn modify_before_transmit(
        &self,
        context: &mut aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextMut<
            '_,
        >,
        _rc: &aws_sdk_dynamodb::config::RuntimeComponents,
        _cfg: &mut aws_sdk_dynamodb::config::ConfigBag,
    ) -> Result<(), aws_sdk_dynamodb::error::BoxError> {
        let req = context.request_mut();
        let target = req.headers().get("x-amz-target").unwrap_or("").to_string();
        let bytes = req.body().bytes().unwrap_or(b"{}").to_vec();
        let mut body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        if let Err(v) = check(&target, &body) {
            eprintln!("GeminiDB subset violation: {v}");
            self.violations.lock().unwrap().push(v.clone());
            return Err(format!("outside the GeminiDB subset: {v}").into());
        }
        if rewrite(&target, &mut body, self.mode) {
            let new = serde_json::to_vec(&body)?;
            req.headers_mut()
                .insert("content-length", new.len().to_string());
            *req.body_mut() = aws_smithy_types::body::SdkBody::from(new);
        }
        Ok(())
    }
}

/// An HTTP proxy in front of a DynamoDB endpoint (moto) that lets only the subset through: for
/// `koogate` processes, which cannot take an interceptor. Stops when dropped.
pub struct GeminiProxy {
    /// `http://127.0.0.1:<port>`: the value for `AWS_ENDPOINT_URL_DYNAMODB`.
    pub endpoint: String,
    violations: Violations,
    forwarded: Arc<std::sync::atomic::AtomicU64>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl GeminiProxy {
    /// Starts a proxy to `upstream` (`http://host:port`) on a free loopback port.
    pub fn start(upstream: &str, mode: Mode) -> GeminiProxy {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let violations = Violations::default();
        let forwarded = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let (tx, mut rx) = tokio::sync::oneshot::channel::<()>();
        let upstream = upstream
            .strip_prefix("http://")
            .expect("an http:// upstream")
            .trim_end_matches('/')
            .to_string();
        let (v, f) = (violations.clone(), forwarded.clone());
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                loop {
                    tokio::select! {
                        _ = &mut rx => break,
                        accepted = listener.accept() => {
                            let Ok((stream, _)) = accepted else { continue };
                            let (v, f, upstream) = (v.clone(), f.clone(), upstream.clone());
                            tokio::spawn(async move {
                                let service = hyper::service::service_fn(move |req| {
                                    proxy_one(req, upstream.clone(), mode, v.clone(), f.clone())
                                });
                                let _ = hyper::server::conn::http1::Builder::new()
                                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                                    .await;
                            });
                        }
                    }
                }
            });
        });
        GeminiProxy {
            endpoint,
            violations,
            forwarded,
            shutdown: Some(tx),
            thread: Some(thread),
        }
    }

    /// What the proxy refused so far.
    pub fn violations(&self) -> Vec<String> {
        self.violations.lock().unwrap().clone()
    }

    /// Requests passed on to the upstream so far.
    pub fn forwarded(&self) -> u64 {
        self.forwarded.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Panics if anything was refused.
    pub fn assert_clean(&self) {
        let v = self.violations();
        assert!(v.is_empty(), "requests outside the GeminiDB subset: {v:#?}");
    }
}

impl Drop for GeminiProxy {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

type ProxyBody = http_body_util::Full<bytes::Bytes>;

fn answer(status: u16, content_type: &str, body: Vec<u8>) -> hyper::Response<ProxyBody> {
    hyper::Response::builder()
        .status(status)
        .header("content-type", content_type)
        .body(http_body_util::Full::new(bytes::Bytes::from(body)))
        .unwrap()
}

async fn proxy_one(
    req: hyper::Request<hyper::body::Incoming>,
    upstream: String,
    mode: Mode,
    violations: Violations,
    forwarded: Arc<std::sync::atomic::AtomicU64>,
) -> Result<hyper::Response<ProxyBody>, std::convert::Infallible> {
    use http_body_util::BodyExt;
    let (parts, body) = req.into_parts();
    let bytes = match body.collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => return Ok(answer(502, "text/plain", e.to_string().into_bytes())),
    };
    let target = parts
        .headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let mut json: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    if let Err(v) = check(&target, &json) {
        eprintln!("GeminiDB proxy refused: {v}");
        violations.lock().unwrap().push(v.clone());
        let err = serde_json::json!({
            "__type": "com.amazon.coral.validate#ValidationException",
            "message": format!("outside the GeminiDB subset: {v}"),
        });
        return Ok(answer(
            400,
            "application/x-amz-json-1.0",
            err.to_string().into_bytes(),
        ));
    }
    let out_body = if rewrite(&target, &mut json, mode) {
        bytes::Bytes::from(serde_json::to_vec(&json).unwrap())
    } else {
        bytes
    };
    forwarded.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    match forward(&upstream, &parts, out_body).await {
        Ok(resp) => Ok(resp),
        Err(e) => Ok(answer(502, "text/plain", e.into_bytes())),
    }
}

async fn forward(
    upstream: &str,
    parts: &hyper::http::request::Parts,
    body: bytes::Bytes,
) -> Result<hyper::Response<ProxyBody>, String> {
    use http_body_util::BodyExt;
    let stream = tokio::net::TcpStream::connect(upstream)
        .await
        .map_err(|e| e.to_string())?;
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .map_err(|e| e.to_string())?;
    tokio::spawn(conn);
    let mut req = hyper::Request::builder()
        .method(parts.method.clone())
        .uri(
            parts
                .uri
                .path_and_query()
                .map_or("/", |p| p.as_str())
                .to_string(),
        )
        .header("host", upstream);
    for (k, v) in &parts.headers {
        if k != "host" && k != "content-length" && k != "transfer-encoding" {
            req = req.header(k, v);
        }
    }
    let req = req
        .header("content-length", body.len().to_string())
        .body(http_body_util::Full::new(body))
        .map_err(|e| e.to_string())?;
    let resp = sender.send_request(req).await.map_err(|e| e.to_string())?;
    let (rparts, rbody) = resp.into_parts();
    let rbytes = rbody.collect().await.map_err(|e| e.to_string())?.to_bytes();
    let mut out = hyper::Response::builder().status(rparts.status);
    for (k, v) in &rparts.headers {
        if k != "content-length" && k != "transfer-encoding" && k != "connection" {
            out = out.header(k, v);
        }
    }
    out.header("content-length", rbytes.len().to_string())
        .body(http_body_util::Full::new(rbytes))
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const T: &str = "DynamoDB_20120810.";

    fn ok(action: &str, body: Value) {
        if let Err(e) = check(&format!("{T}{action}"), &body) {
            panic!("{action} {body} refused: {e}");
        }
    }

    fn refused(action: &str, body: Value) -> String {
        check(&format!("{T}{action}"), &body).expect_err(&format!("{action} {body} accepted"))
    }

    fn update(expr: &str, cond: Option<&str>, names: Value, values: Value) -> Value {
        let mut b = json!({"TableName": "tbl", "Key": {}, "UpdateExpression": expr,
                           "ExpressionAttributeNames": names, "ExpressionAttributeValues": values});
        if let Some(c) = cond {
            b["ConditionExpression"] = c.into();
        }
        if b["ExpressionAttributeNames"]
            .as_object()
            .unwrap()
            .is_empty()
        {
            b.as_object_mut()
                .unwrap()
                .remove("ExpressionAttributeNames");
        }
        b
    }

    #[test]
    fn unsupported_operations_are_refused() {
        for op in [
            "Scan",
            "TransactWriteItems",
            "TransactGetItems",
            "ExecuteStatement",
            "BatchExecuteStatement",
            "ExecuteTransaction",
            "CreateBackup",
            "UpdateTable",
        ] {
            assert!(refused(op, json!({"TableName": "tbl"})).contains("not in the GeminiDB subset"));
        }
    }

    #[test]
    fn unsupported_parameters_are_refused() {
        refused(
            "Query",
            json!({"TableName": "tbl", "KeyConditionExpression": "pk = :p",
                   "ExpressionAttributeValues": {":p": {"S": "x"}}, "FilterExpression": "a = :p"}),
        );
        refused(
            "GetItem",
            json!({"TableName": "tbl", "Key": {}, "ProjectionExpression": "a"}),
        );
        refused(
            "PutItem",
            json!({"TableName": "tbl", "Item": {}, "ReturnConsumedCapacity": "TOTAL"}),
        );
        refused(
            "CreateTable",
            json!({"TableName": "tbl", "AttributeDefinitions": [], "KeySchema": [],
                   "BillingMode": "PAY_PER_REQUEST"}),
        );
        refused(
            "CreateTable",
            json!({"TableName": "tbl", "AttributeDefinitions": [], "KeySchema": [],
                   "StreamSpecification": {"StreamEnabled": true}}),
        );
        refused(
            "CreateTable",
            json!({"TableName": "tbl", "AttributeDefinitions": [], "KeySchema": [],
                   "SSESpecification": {"Enabled": true}}),
        );
        refused(
            "UpdateItem",
            json!({"TableName": "tbl", "Key": {}, "ReturnValues": "ALL_OLD",
                                     "UpdateExpression": "SET a = :a",
                                     "ExpressionAttributeValues": {":a": {"S": "x"}}}),
        );
        refused("GetItem", json!({"TableName": "a.b", "Key": {}}));
    }

    #[test]
    fn koogate_expressions_pass() {
        ok(
            "UpdateItem",
            update(
                "SET #st = :inprogress, #ow = :owner, #rf = if_not_exists(#rf, :ref) REMOVE #rs, #ex",
                Some("attribute_not_exists(pk) OR #ex < :now_s OR (#va = :v AND #st <> :completed AND #lu < :now_ms)"),
                json!({"#st": "status", "#ow": "owner", "#rf": "reference", "#rs": "response",
                       "#ex": "expires_at", "#va": "validation", "#lu": "lease_until"}),
                json!({":inprogress": {}, ":owner": {}, ":ref": {}, ":now_s": {}, ":v": {},
                       ":completed": {}, ":now_ms": {}}),
            ),
        );
        ok(
            "UpdateItem",
            update(
                "SET #ow = :owner, #lu = :lease ADD #at :one",
                Some("#st = :pending AND #lu < :now"),
                json!({"#ow": "owner", "#lu": "lease_until", "#at": "attempts", "#st": "status"}),
                json!({":owner": {}, ":lease": {}, ":one": {}, ":pending": {}, ":now": {}}),
            ),
        );
        ok(
            "UpdateItem",
            update(
                "SET doc = :doc, #st = :pending",
                Some("#st = :failed AND contains(doc, :sn)"),
                json!({"#st": "status"}),
                json!({":doc": {}, ":pending": {}, ":failed": {}, ":sn": {}}),
            ),
        );
        ok(
            "Query",
            json!({"TableName": "tbl", "KeyConditionExpression": "#pk = :pk AND begins_with(#sk, :prefix)",
                   "ExpressionAttributeNames": {"#pk": "pk", "#sk": "sk"},
                   "ExpressionAttributeValues": {":pk": {}, ":prefix": {}}, "ConsistentRead": true}),
        );
        ok(
            "Query",
            json!({"TableName": "tbl", "KeyConditionExpression": "pk = :p AND sk < :due",
                   "ExpressionAttributeValues": {":p": {}, ":due": {}}, "Limit": 10}),
        );
        ok(
            "DeleteItem",
            json!({"TableName": "tbl", "Key": {},
                   "ConditionExpression": "attribute_not_exists(ptr_sn) OR ptr_sn = :sn",
                   "ExpressionAttributeValues": {":sn": {}}}),
        );
    }

    #[test]
    fn expressions_outside_the_documented_grammar_are_refused() {
        let vals = json!({":a": {}, ":b": {}});
        for (expr, cond) in [
            ("SET a = b", None),
            ("SET a = if_not_exists(b, :a)", None),
            ("SET a = b + :a", None),
            ("SET a = size(b)", None),
            ("SET a.b = :a", None),
            ("SET a = :a", Some("size(a) > :b")),
            ("SET a = :a", Some("NOT attribute_exists(a)")),
            ("SET a = :a", Some("a BETWEEN :a AND :b")),
            ("SET a = :a", Some("a IN (:a, :b)")),
            ("SET a = :a", Some("contains(a, b)")),
        ] {
            refused("UpdateItem", update(expr, cond, json!({}), vals.clone()));
        }
        // Unused or undeclared placeholders: Amazon DynamoDB refuses them, moto does not.
        refused(
            "UpdateItem",
            update("SET a = :a", None, json!({}), vals.clone()),
        );
        refused(
            "UpdateItem",
            update("SET #x = :a", None, json!({}), json!({":a": {}})),
        );
    }

    #[test]
    fn batch_limits_hold() {
        let put = json!({"PutRequest": {"Item": {}}});
        ok(
            "BatchWriteItem",
            json!({"RequestItems": {"tbl": vec![put.clone(); 25]}}),
        );
        refused(
            "BatchWriteItem",
            json!({"RequestItems": {"tbl": vec![put; 26]}}),
        );
        ok(
            "BatchGetItem",
            json!({"RequestItems": {"tbl": {"Keys": vec![json!({}); 100], "ConsistentRead": true}}}),
        );
        refused(
            "BatchGetItem",
            json!({"RequestItems": {"tbl": {"Keys": [{}], "ProjectionExpression": "a"}}}),
        );
    }

    #[test]
    fn strip_mode_removes_only_the_ignorable_parameters() {
        let mut b = json!({"TableName": "tbl", "ReturnValues": "ALL_NEW",
                           "ReturnValuesOnConditionCheckFailure": "ALL_OLD", "Key": {}});
        assert!(rewrite("DynamoDB_20120810.UpdateItem", &mut b, Mode::Strip));
        assert_eq!(b, json!({"TableName": "tbl", "Key": {}}));
        let mut c = json!({"TableName": "tbl", "ReturnValues": "ALL_NEW"});
        assert!(!rewrite(
            "DynamoDB_20120810.UpdateItem",
            &mut c,
            Mode::Check
        ));
    }
}
