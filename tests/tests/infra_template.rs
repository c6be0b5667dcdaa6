//! Offline checks of `infra/template.yaml` that cfn-lint does not make.
//!
//! The template is generated (infra/generator, `make template`), and that crate's tests prove
//! what generating guarantees by construction: the file is what the generator writes; the HTTP API
//! declares exactly the routes of `koogate_infra::routes::table()`, each on the function whose
//! `BuildProperties.Binary` is the route's function, with payload format 2.0 on the declared API;
//! every function has its own log group and is in one alarm on its Lambda errors; no alarm reads
//! more than 10 metrics. cfn-lint proves the template is a valid SAM/CloudFormation document.
//! These tests prove the properties that the generator's tables and skeleton could still get wrong:
//!
//! * routes are declared only as function HttpApi events, and HTTP functions answer within the
//!   marketplace's 5 s;
//! * IAM grants no wildcard action and no `dynamodb:Scan`; the DynamoDB actions granted are exactly
//!   `koogate_store::dynamodb_actions::ACTIONS_USED`, on the table only; Secrets Manager access is
//!   `GetSecretValue` on the secrets document only;
//! * IAM grants no wildcard resource either; the table stream's read actions are granted on the
//!   stream only, to the function an event source mapping on the stream invokes, and no function
//!   has a SAM stream or queue event (SAM would attach a managed policy these checks cannot see);
//! * the table has the keys, TTL attribute, recovery, billing and stream the store relies on;
//! * the ISV's side (README, "Connecting your product"): the Product API routes are served by `product-api`; the ISV
//!   settings reach every function; `event-dispatch` is triggered by the open-event pointers on
//!   the stream and every minute, and alone may `events:PutEvents`, on the configured bus only
//!   and only when one is configured;
//! * `FailedAlarm` reads the aggregate dimension set (no dimension) that the code's EMF line
//!   writes, so one metric covers every function; `EventsFailedAlarm` watches failed events in
//!   the code's metric namespace; `make build` builds every deployed function.
//!
//! Properties a function takes from the template's `Globals.Function` section (SAM merges them into
//! every function; a function's own value wins, and its `Environment.Variables` add to and override
//! the global ones) count as the function's: the checks below look there too.
//!
//! The template is read with a plain YAML parser. It is written with long-form intrinsics
//! (`Ref: X`, `Fn::GetAtt: [X, Arn]`); short tags (`!Ref X`) are normalised to the long form first so
//! that a stray short tag does not make a check pass or fail for the wrong reason.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::PathBuf;

use serde_yaml::{Mapping, Value};

// ------------------------------------------------------------------------------------------------
// Reading the template
// ------------------------------------------------------------------------------------------------

fn template_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../infra/template.yaml")
}

/// The parsed template, short-tag intrinsics rewritten to their long form.
fn template() -> Value {
    let path = template_path();
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read the SAM template {}: {e}", path.display()));
    let value: Value = serde_yaml::from_str(&text)
        .unwrap_or_else(|e| panic!("{} is not valid YAML: {e}", path.display()));
    normalise(value)
}

/// Rewrites `!Ref X` to `{Ref: X}` and `!Name x` to `{Fn::Name: x}`, recursively.
fn normalise(value: Value) -> Value {
    match value {
        Value::Tagged(tagged) => {
            let tag = tagged.tag.to_string();
            let name = tag.trim_start_matches('!');
            let key = if name == "Ref" || name == "Condition" {
                name.to_string()
            } else {
                format!("Fn::{name}")
            };
            let mut m = Mapping::new();
            m.insert(Value::String(key), normalise(tagged.value));
            Value::Mapping(m)
        }
        Value::Mapping(m) => Value::Mapping(
            m.into_iter()
                .map(|(k, v)| (normalise(k), normalise(v)))
                .collect(),
        ),
        Value::Sequence(s) => Value::Sequence(s.into_iter().map(normalise).collect()),
        other => other,
    }
}

/// `Resources`, as (logical ID, resource) pairs.
fn resources(t: &Value) -> Vec<(String, &Value)> {
    let resources = t
        .get("Resources")
        .and_then(Value::as_mapping)
        .expect("the template has no Resources mapping");
    resources
        .iter()
        .map(|(id, r)| {
            let id = id
                .as_str()
                .unwrap_or_else(|| panic!("resource logical ID {id:?} is not a string"));
            (id.to_string(), r)
        })
        .collect()
}

fn resources_of_type<'a>(t: &'a Value, ty: &str) -> Vec<(String, &'a Value)> {
    resources(t)
        .into_iter()
        .filter(|(_, r)| r.get("Type").and_then(Value::as_str) == Some(ty))
        .collect()
}

/// The logical ID and resource of the one resource of type `ty`.
fn single_resource<'a>(t: &'a Value, ty: &str) -> (String, &'a Value) {
    let mut found = resources_of_type(t, ty);
    assert_eq!(
        found.len(),
        1,
        "expected exactly one {ty} resource in {}, found {:?}",
        template_path().display(),
        found.iter().map(|(id, _)| id).collect::<Vec<_>>()
    );
    found.remove(0)
}

fn properties(resource: &Value) -> &Value {
    resource.get("Properties").unwrap_or(&Value::Null)
}

/// `Globals.Function`: the properties SAM merges into every `AWS::Serverless::Function`.
fn function_globals(t: &Value) -> &Value {
    t.get("Globals")
        .and_then(|g| g.get("Function"))
        .unwrap_or(&Value::Null)
}

/// A function's property as SAM resolves it for a scalar: the function's own value, else the one
/// in `Globals.Function`.
fn function_property<'a>(t: &'a Value, function: &'a Value, key: &str) -> Option<&'a Value> {
    properties(function)
        .get(key)
        .or_else(|| function_globals(t).get(key))
}

/// A function's environment variable as SAM merges `Environment.Variables`: the function's own
/// value, else the one in `Globals.Function`.
fn function_env_var<'a>(t: &'a Value, function: &'a Value, name: &str) -> Option<&'a Value> {
    let vars = |props: &'a Value| {
        props
            .get("Environment")
            .and_then(|e| e.get("Variables"))
            .and_then(|v| v.get(name))
    };
    vars(properties(function)).or_else(|| vars(function_globals(t)))
}

/// `{Ref: id}`.
fn is_ref(v: &Value, id: &str) -> bool {
    match v.as_mapping() {
        Some(m) if m.len() == 1 => m.get("Ref").and_then(Value::as_str) == Some(id),
        _ => false,
    }
}

/// `{Fn::GetAtt: [id, Arn]}` or `{Fn::GetAtt: "id.Arn"}`.
fn is_get_att_arn(v: &Value, id: &str) -> bool {
    is_get_att(v, id, "Arn")
}

/// `{Fn::GetAtt: [id, attribute]}` or `{Fn::GetAtt: "id.attribute"}`.
fn is_get_att(v: &Value, id: &str, attribute: &str) -> bool {
    let Some(m) = v.as_mapping().filter(|m| m.len() == 1) else {
        return false;
    };
    match m.get("Fn::GetAtt") {
        Some(Value::Sequence(s)) => {
            s.len() == 2 && s[0].as_str() == Some(id) && s[1].as_str() == Some(attribute)
        }
        Some(Value::String(s)) => *s == format!("{id}.{attribute}"),
        _ => false,
    }
}

/// `{Fn::Sub: text}` with exactly this text.
fn is_sub(v: &Value, text: &str) -> bool {
    match v.as_mapping() {
        Some(m) if m.len() == 1 => m.get("Fn::Sub").and_then(Value::as_str) == Some(text),
        _ => false,
    }
}

/// The three arguments of `{Fn::If: [condition, then, else]}`.
fn fn_if(v: &Value) -> Option<(&str, &Value, &Value)> {
    let args = v
        .as_mapping()
        .filter(|m| m.len() == 1)?
        .get("Fn::If")?
        .as_sequence()?;
    match args.as_slice() {
        [condition, then, otherwise] => Some((condition.as_str()?, then, otherwise)),
        _ => None,
    }
}

/// `Conditions.<name>` is `{Fn::Not: [{Fn::Equals: [{Ref: parameter}, ""]}]}` (either order):
/// true exactly when the parameter is set.
fn condition_is_parameter_set(t: &Value, name: &str, parameter: &str) -> bool {
    let Some(condition) = t.get("Conditions").and_then(|c| c.get(name)) else {
        return false;
    };
    let Some([equals]) = condition
        .get("Fn::Not")
        .and_then(Value::as_sequence)
        .map(Vec::as_slice)
    else {
        return false;
    };
    let Some([a, b]) = equals
        .get("Fn::Equals")
        .and_then(Value::as_sequence)
        .map(Vec::as_slice)
    else {
        return false;
    };
    let empty = |v: &Value| v.as_str() == Some("");
    (is_ref(a, parameter) && empty(b)) || (is_ref(b, parameter) && empty(a))
}

/// The logical ID and resource of the function whose `BuildProperties.Binary` is `binary`.
fn function_by_binary<'a>(t: &'a Value, binary: &str) -> (String, &'a Value) {
    let mut found: Vec<_> = resources_of_type(t, "AWS::Serverless::Function")
        .into_iter()
        .filter(|(_, f)| function_binary(f).as_deref() == Some(binary))
        .collect();
    assert_eq!(
        found.len(),
        1,
        "expected exactly one AWS::Serverless::Function with Metadata.BuildProperties.Binary \
         {binary:?}, found {:?}",
        found.iter().map(|(id, _)| id).collect::<Vec<_>>()
    );
    found.remove(0)
}

/// `Metadata.BuildProperties.Binary` of a function: its name in the route table and in metrics.
fn function_binary(function: &Value) -> Option<String> {
    function
        .get("Metadata")
        .and_then(|m| m.get("BuildProperties"))
        .and_then(|b| b.get("Binary"))
        .and_then(Value::as_str)
        .map(str::to_string)
}

/// The events of a function (`Properties.Events`), as (event ID, event) pairs.
fn function_events(function: &Value) -> Vec<(String, &Value)> {
    properties(function)
        .get("Events")
        .and_then(Value::as_mapping)
        .map(|events| {
            events
                .iter()
                .map(|(id, e)| (id.as_str().unwrap_or("?").to_string(), e))
                .collect()
        })
        .unwrap_or_default()
}

/// CloudFormation accepts `true` and `"true"` alike.
fn is_true(v: Option<&Value>) -> bool {
    match v {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s.eq_ignore_ascii_case("true"),
        _ => false,
    }
}

fn show(v: &Value) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| format!("{v:?}"))
}

/// A string or a list of strings (IAM `Action`, `Resource`); `None` when something else (an
/// intrinsic function, a number) is in the way, since that cannot be checked offline.
fn string_or_list(v: &Value) -> Option<Vec<String>> {
    match v {
        Value::String(s) => Some(vec![s.clone()]),
        Value::Sequence(items) => items
            .iter()
            .map(|i| i.as_str().map(str::to_string))
            .collect(),
        _ => None,
    }
}

/// A value or a list of values (IAM `Resource`), as a list.
fn one_or_list(v: &Value) -> Vec<&Value> {
    match v {
        Value::Sequence(items) => items.iter().collect(),
        other => vec![other],
    }
}

// ------------------------------------------------------------------------------------------------
// HTTP API events
// ------------------------------------------------------------------------------------------------

/// One `Type: HttpApi` event of an `AWS::Serverless::Function`.
struct HttpEvent<'a> {
    function_id: String,
    event_id: String,
    /// `Metadata.BuildProperties.Binary` of the function: the route table's function name.
    binary: Option<String>,
    properties: &'a Value,
}

impl HttpEvent<'_> {
    fn name(&self) -> String {
        format!("{}.Events.{}", self.function_id, self.event_id)
    }
}

fn http_events(t: &Value) -> Vec<HttpEvent<'_>> {
    let mut out = Vec::new();
    for (function_id, function) in resources_of_type(t, "AWS::Serverless::Function") {
        let binary = function_binary(function);
        for (event_id, event) in function_events(function) {
            if event.get("Type").and_then(Value::as_str) != Some("HttpApi") {
                continue;
            }
            out.push(HttpEvent {
                function_id: function_id.clone(),
                event_id,
                binary: binary.clone(),
                properties: properties(event),
            });
        }
    }
    out
}

/// (method, path, function) of every HttpApi event, as declared (duplicates kept).
fn declared_routes(t: &Value) -> Vec<(String, String, String)> {
    http_events(t)
        .iter()
        .map(|e| {
            let method = e
                .properties
                .get("Method")
                .and_then(Value::as_str)
                .unwrap_or_else(|| panic!("{} has no string Method", e.name()))
                .to_ascii_uppercase();
            let path = e
                .properties
                .get("Path")
                .and_then(Value::as_str)
                .unwrap_or_else(|| panic!("{} has no string Path", e.name()))
                .to_string();
            let function = e.binary.clone().unwrap_or_else(|| {
                panic!(
                    "function {} has an HttpApi event but no Metadata.BuildProperties.Binary, so \
                     the route's function cannot be told",
                    e.function_id
                )
            });
            (method, path, function)
        })
        .collect()
}

#[test]
fn routes_are_declared_only_as_function_http_api_events() {
    let t = template();
    let mut problems = Vec::new();
    for ty in [
        "AWS::ApiGatewayV2::Route",
        "AWS::ApiGatewayV2::Integration",
        "AWS::ApiGateway::Method",
        "AWS::Serverless::Api",
        "AWS::Lambda::Url",
    ] {
        for (id, _) in resources_of_type(&t, ty) {
            problems.push(format!(
                "{id} is a raw {ty}: routes must be HttpApi events of AWS::Serverless::Function \
                 resources so that the route-table test sees them"
            ));
        }
    }
    for (id, api) in resources_of_type(&t, "AWS::Serverless::HttpApi") {
        for key in ["DefinitionBody", "DefinitionUri"] {
            if properties(api).get(key).is_some() {
                problems.push(format!(
                    "{id} has {key}: an OpenAPI definition declares routes the route-table test \
                     does not see; declare them as function HttpApi events"
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn http_functions_finish_within_the_marketplace_timeout() {
    let t = template();
    let mut wrong = Vec::new();
    let functions: BTreeSet<String> = http_events(&t).into_iter().map(|e| e.function_id).collect();
    for (id, function) in resources_of_type(&t, "AWS::Serverless::Function") {
        if !functions.contains(&id) {
            continue;
        }
        match function_property(&t, function, "Timeout").and_then(Value::as_u64) {
            Some(secs) if secs <= 5 => {}
            other => wrong.push(format!(
                "{id}: Timeout (its own or Globals.Function's) is {other:?}; it must be set and at \
                 most 5 s, the time the marketplace waits for an answer"
            )),
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn functions_are_wired_to_the_table_and_the_secrets() {
    let t = template();
    let (table_id, _) = single_resource(&t, "AWS::DynamoDB::Table");
    let (secret_id, _) = single_resource(&t, "AWS::SecretsManager::Secret");
    let mut wrong = Vec::new();
    for (id, function) in resources_of_type(&t, "AWS::Serverless::Function") {
        // The function's own Environment.Variables, merged over Globals.Function's.
        let var = |name: &str| function_env_var(&t, function, name);
        if var("KOOGATE_STORE").and_then(Value::as_str) != Some("dynamodb") {
            wrong.push(format!("{id}: KOOGATE_STORE must be \"dynamodb\""));
        }
        if !var("KOOGATE_TABLE").is_some_and(|v| is_ref(v, &table_id)) {
            wrong.push(format!("{id}: KOOGATE_TABLE must be {{Ref: {table_id}}}"));
        }
        if !var("KOOGATE_SECRET_ID").is_some_and(|v| is_ref(v, &secret_id)) {
            wrong.push(format!(
                "{id}: KOOGATE_SECRET_ID must be {{Ref: {secret_id}}}"
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

// ------------------------------------------------------------------------------------------------
// IAM
// ------------------------------------------------------------------------------------------------

/// One IAM policy statement found anywhere in the template.
struct Statement<'a> {
    /// Where it is: `Resources.<id>.Properties...`.
    location: String,
    /// The logical ID of the resource that holds it (for a SAM function: the function's role).
    resource_id: String,
    /// The conditions under which it exists: the `Fn::If` branches it sits in, outermost first;
    /// `name` for the first branch of `Fn::If: [name, …]`, `!name` for the second.
    conditions: Vec<String>,
    value: &'a Value,
}

impl Statement<'_> {
    fn is_allow(&self) -> bool {
        self.value.get("Effect").and_then(Value::as_str) == Some("Allow")
    }

    /// The `Action` list; panics with the location when it is not a string or list of strings.
    fn actions(&self) -> Vec<String> {
        let action = self.value.get("Action").unwrap_or_else(|| {
            panic!(
                "{}: IAM statement has no Action (NotAction grants everything else and is not \
                 allowed): {}",
                self.location,
                show(self.value)
            )
        });
        string_or_list(action).unwrap_or_else(|| {
            panic!(
                "{}: IAM Action must be literal strings so it can be checked, found {}",
                self.location,
                show(action)
            )
        })
    }

    fn resources(&self) -> Vec<&Value> {
        self.value
            .get("Resource")
            .map(one_or_list)
            .unwrap_or_default()
    }
}

/// Every policy statement in the template: every element of every `Statement` key, at any depth
/// (SAM function `Policies`, IAM roles and policies, assume-role documents alike). A statement
/// inside `Fn::If` counts in each branch, with the branch's condition; `{Ref: AWS::NoValue}` is
/// no statement.
fn statements(t: &Value) -> Vec<Statement<'_>> {
    /// The statements of a `Statement` value (or of one `Fn::If` branch of it).
    fn expand<'a>(
        v: &'a Value,
        location: String,
        resource_id: &str,
        conditions: &[String],
        out: &mut Vec<Statement<'a>>,
    ) {
        if let Some((condition, then, otherwise)) = fn_if(v) {
            for (i, branch, c) in [
                (1, then, condition.to_string()),
                (2, otherwise, format!("!{condition}")),
            ] {
                let mut conditions = conditions.to_vec();
                conditions.push(c);
                expand(
                    branch,
                    format!("{location}.Fn::If[{i}]"),
                    resource_id,
                    &conditions,
                    out,
                );
            }
        } else if let Value::Sequence(items) = v {
            for (i, item) in items.iter().enumerate() {
                expand(
                    item,
                    format!("{location}[{i}]"),
                    resource_id,
                    conditions,
                    out,
                );
            }
        } else if !is_ref(v, "AWS::NoValue") {
            out.push(Statement {
                location,
                resource_id: resource_id.to_string(),
                conditions: conditions.to_vec(),
                value: v,
            });
        }
    }
    fn walk<'a>(v: &'a Value, location: &str, resource_id: &str, out: &mut Vec<Statement<'a>>) {
        match v {
            Value::Mapping(m) => {
                for (k, child) in m {
                    let key = k.as_str().map(str::to_string).unwrap_or_else(|| show(k));
                    let here = format!("{location}.{key}");
                    if key == "Statement" {
                        expand(child, here, resource_id, &[], out);
                    } else {
                        walk(child, &here, resource_id, out);
                    }
                }
            }
            Value::Sequence(items) => {
                for (i, child) in items.iter().enumerate() {
                    walk(child, &format!("{location}[{i}]"), resource_id, out);
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    for (id, resource) in resources(t) {
        walk(resource, &format!("Resources.{id}"), &id, &mut out);
    }
    out
}

/// Allow statements that grant at least one action with the given service prefix.
fn allow_statements_for<'a>(t: &'a Value, service: &str) -> Vec<(Statement<'a>, Vec<String>)> {
    let prefix = format!("{service}:");
    statements(t)
        .into_iter()
        .filter(Statement::is_allow)
        .filter_map(|s| {
            let actions: Vec<String> = s
                .actions()
                .into_iter()
                .filter(|a| a.to_ascii_lowercase().starts_with(&prefix))
                .collect();
            (!actions.is_empty()).then_some((s, actions))
        })
        .collect()
}

#[test]
fn no_iam_statement_grants_a_wildcard_or_a_scan() {
    let t = template();
    let all = statements(&t);
    assert!(
        !all.is_empty(),
        "no IAM statement found at all: the function policies should be inline documents"
    );
    let mut wrong = Vec::new();
    for s in &all {
        if s.value.get("NotAction").is_some() {
            wrong.push(format!("{}: NotAction grants everything else", s.location));
            continue;
        }
        if !s.is_allow() {
            continue;
        }
        for action in s.actions() {
            if action.contains('*') {
                wrong.push(format!("{}: wildcard action {action:?}", s.location));
            }
            if action.eq_ignore_ascii_case("dynamodb:Scan") {
                wrong.push(format!(
                    "{}: dynamodb:Scan is granted; the store never scans the table",
                    s.location
                ));
            }
        }
        if s.value.get("NotResource").is_some() {
            wrong.push(format!(
                "{}: NotResource grants on every other resource",
                s.location
            ));
        }
        for resource in s.resources() {
            // A literal ARN, or the text of an Fn::Sub (string or [string, variables] form).
            let text = match resource {
                Value::String(text) => Some(text.as_str()),
                other => match other.get("Fn::Sub") {
                    Some(Value::String(text)) => Some(text.as_str()),
                    Some(Value::Sequence(args)) => args.first().and_then(Value::as_str),
                    _ => None,
                },
            };
            if text.is_some_and(|text| text.contains('*')) {
                wrong.push(format!(
                    "{}: wildcard resource {}",
                    s.location,
                    show(resource)
                ));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "IAM grants more than least privilege:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn function_permissions_are_inline_documents_only() {
    // SAM policy templates (e.g. DynamoDBCrudPolicy), managed policy names or ARNs and external
    // roles grant actions this file cannot read, so they would bypass the checks below.
    let t = template();
    let mut wrong = Vec::new();
    for (id, function) in resources_of_type(&t, "AWS::Serverless::Function") {
        let props = properties(function);
        if let Some(role) = props.get("Role") {
            wrong.push(format!(
                "{id}: Role {} replaces the SAM-generated role; grant permissions with inline \
                 Policies instead",
                show(role)
            ));
        }
        let policies = props.get("Policies").map(one_or_list).unwrap_or_default();
        for (i, p) in policies.into_iter().enumerate() {
            if p.get("Statement").is_none() {
                wrong.push(format!(
                    "{id}.Policies[{i}] is {}, not an inline policy document with a Statement \
                     (SAM policy templates and managed policies cannot be checked here)",
                    show(p)
                ));
            }
        }
    }
    let mut managed = Vec::new();
    fn find_managed(v: &Value, location: &str, out: &mut Vec<String>) {
        match v {
            Value::Mapping(m) => {
                for (k, child) in m {
                    let key = k.as_str().unwrap_or("?");
                    if key == "ManagedPolicyArns" {
                        out.push(format!("{location}.{key} = {}", show(child)));
                    }
                    find_managed(child, &format!("{location}.{key}"), out);
                }
            }
            Value::Sequence(items) => {
                for (i, child) in items.iter().enumerate() {
                    find_managed(child, &format!("{location}[{i}]"), out);
                }
            }
            _ => {}
        }
    }
    find_managed(
        t.get("Resources").unwrap_or(&Value::Null),
        "Resources",
        &mut managed,
    );
    for m in managed {
        wrong.push(format!(
            "{m}: managed policies cannot be checked here (SAM adds AWSLambdaBasicExecutionRole \
             itself)"
        ));
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// The DynamoDB Streams actions a stream event source mapping needs from its function's role.
const STREAM_READ_ACTIONS: &[&str] = &[
    "dynamodb:DescribeStream",
    "dynamodb:GetRecords",
    "dynamodb:GetShardIterator",
    "dynamodb:ListStreams",
];

fn is_stream_read_action(action: &str) -> bool {
    STREAM_READ_ACTIONS
        .iter()
        .any(|a| a.eq_ignore_ascii_case(action))
}

#[test]
fn dynamodb_actions_equal_the_store_actions_on_the_table_only() {
    let t = template();
    let (table_id, _) = single_resource(&t, "AWS::DynamoDB::Table");
    let granted_statements = allow_statements_for(&t, "dynamodb");

    let mut wrong_resources = Vec::new();
    let mut granted = BTreeSet::new();
    for (s, actions) in &granted_statements {
        // Statements of stream actions only are checked by the stream test below.
        let actions: Vec<String> = actions
            .iter()
            .filter(|a| !is_stream_read_action(a))
            .cloned()
            .collect();
        if actions.is_empty() {
            continue;
        }
        granted.extend(actions.iter().cloned());
        let resources = s.resources();
        if resources.is_empty() || !resources.iter().all(|r| is_get_att_arn(r, &table_id)) {
            wrong_resources.push(format!(
                "{}: DynamoDB actions {actions:?} must be granted on {{Fn::GetAtt: [{table_id}, \
                 Arn]}} only, found Resource {}",
                s.location,
                s.value
                    .get("Resource")
                    .map(show)
                    .unwrap_or_else(|| "missing".into())
            ));
        }
    }

    let expected: BTreeSet<String> = koogate_store::dynamodb_actions::ACTIONS_USED
        .iter()
        .map(|a| a.to_string())
        .collect();
    let missing: Vec<_> = expected.difference(&granted).collect();
    let extra: Vec<_> = granted.difference(&expected).collect();
    let mut message = String::new();
    if !missing.is_empty() || !extra.is_empty() {
        let _ = writeln!(
            message,
            "the DynamoDB actions granted differ from koogate_store::dynamodb_actions::ACTIONS_USED.\n\
             Used by the store but not granted (calls would fail with AccessDenied): {missing:?}\n\
             Granted but not used by the store (remove them): {extra:?}"
        );
    }
    for w in wrong_resources {
        let _ = writeln!(message, "{w}");
    }
    assert!(message.is_empty(), "{message}");
}

#[test]
fn secrets_are_readable_only_from_the_secrets_document() {
    let t = template();
    let (secret_id, _) = single_resource(&t, "AWS::SecretsManager::Secret");
    let granted_statements = allow_statements_for(&t, "secretsmanager");
    assert!(
        !granted_statements.is_empty(),
        "no statement grants secretsmanager:GetSecretValue: the functions could not load their \
         keys (KOOGATE_SECRET_ID)"
    );
    let mut wrong = Vec::new();
    for (s, actions) in &granted_statements {
        for action in actions {
            if action != "secretsmanager:GetSecretValue" {
                wrong.push(format!(
                    "{}: {action} is granted; the functions only read the secrets document \
                     (secretsmanager:GetSecretValue)",
                    s.location
                ));
            }
        }
        let resources = s.resources();
        if resources.is_empty() || !resources.iter().all(|r| is_ref(r, &secret_id)) {
            wrong.push(format!(
                "{}: secretsmanager actions must be granted on {{Ref: {secret_id}}} only, found \
                 Resource {}",
                s.location,
                s.value
                    .get("Resource")
                    .map(show)
                    .unwrap_or_else(|| "missing".into())
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

// ------------------------------------------------------------------------------------------------
// Table
// ------------------------------------------------------------------------------------------------

fn table_properties(t: &Value) -> &Value {
    let (_, table) = single_resource(t, "AWS::DynamoDB::Table");
    properties(table)
}

#[test]
fn table_has_string_keys_pk_and_sk() {
    let t = template();
    let props = table_properties(&t);

    let key_schema: BTreeMap<String, String> = props
        .get("KeySchema")
        .and_then(Value::as_sequence)
        .expect("the table has no KeySchema list")
        .iter()
        .map(|k| {
            (
                k.get("AttributeName")
                    .and_then(Value::as_str)
                    .unwrap_or("?")
                    .to_string(),
                k.get("KeyType")
                    .and_then(Value::as_str)
                    .unwrap_or("?")
                    .to_string(),
            )
        })
        .collect();
    let expected_keys: BTreeMap<String, String> = [("pk", "HASH"), ("sk", "RANGE")]
        .into_iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    assert_eq!(
        key_schema, expected_keys,
        "the table's KeySchema must be pk (HASH) and sk (RANGE), as the store addresses items"
    );

    let attribute_types: BTreeMap<String, String> = props
        .get("AttributeDefinitions")
        .and_then(Value::as_sequence)
        .expect("the table has no AttributeDefinitions list")
        .iter()
        .map(|a| {
            (
                a.get("AttributeName")
                    .and_then(Value::as_str)
                    .unwrap_or("?")
                    .to_string(),
                a.get("AttributeType")
                    .and_then(Value::as_str)
                    .unwrap_or("?")
                    .to_string(),
            )
        })
        .collect();
    for key in ["pk", "sk"] {
        assert_eq!(
            attribute_types.get(key).map(String::as_str),
            Some("S"),
            "the table's key attribute {key} must be defined with AttributeType S (string), \
             found AttributeDefinitions {attribute_types:?}"
        );
    }
}

#[test]
fn table_expires_items_on_expires_at() {
    let t = template();
    let ttl = table_properties(&t)
        .get("TimeToLiveSpecification")
        .expect("the table has no TimeToLiveSpecification: nonces and idempotency records would pile up forever");
    assert_eq!(
        ttl.get("AttributeName").and_then(Value::as_str),
        Some("expires_at"),
        "the table's TTL attribute must be expires_at (the store writes epoch seconds there), \
         found {}",
        show(ttl)
    );
    assert!(
        is_true(ttl.get("Enabled")),
        "the table's TTL must be Enabled: true, found {}",
        show(ttl)
    );
}

#[test]
fn table_has_point_in_time_recovery() {
    let t = template();
    let pitr = table_properties(&t).get("PointInTimeRecoverySpecification");
    assert!(
        is_true(pitr.and_then(|p| p.get("PointInTimeRecoveryEnabled"))),
        "the table must have PointInTimeRecoverySpecification.PointInTimeRecoveryEnabled: true \
         (order -> instance mappings are permanent and must survive mistakes), found {}",
        pitr.map(show).unwrap_or_else(|| "nothing".into())
    );
}

#[test]
fn table_bills_per_request() {
    let t = template();
    let billing = table_properties(&t).get("BillingMode");
    assert_eq!(
        billing.and_then(Value::as_str),
        Some("PAY_PER_REQUEST"),
        "the table must use BillingMode PAY_PER_REQUEST (on-demand: marketplace traffic is \
         sparse and bursty), found {}",
        billing.map(show).unwrap_or_else(|| "nothing".into())
    );
}

#[test]
fn table_has_a_stream_with_both_images() {
    let t = template();
    let stream = table_properties(&t).get("StreamSpecification");
    assert_eq!(
        stream
            .and_then(|s| s.get("StreamViewType"))
            .and_then(Value::as_str),
        Some("NEW_AND_OLD_IMAGES"),
        "the table must have StreamSpecification.StreamViewType NEW_AND_OLD_IMAGES, so that ISV \
         systems can react to state changes and see what changed, found {}",
        stream.map(show).unwrap_or_else(|| "nothing".into())
    );
}

#[test]
fn table_is_retained_on_stack_deletion_and_replacement() {
    let t = template();
    let (id, table) = single_resource(&t, "AWS::DynamoDB::Table");
    for policy in ["DeletionPolicy", "UpdateReplacePolicy"] {
        assert_eq!(
            table.get(policy).and_then(Value::as_str),
            Some("Retain"),
            "{id} must have {policy}: Retain; deleting or replacing the stack must never delete \
             the order -> instance mappings"
        );
    }
}

// ------------------------------------------------------------------------------------------------
// The ISV's side: Product API, event dispatch, event bus
// ------------------------------------------------------------------------------------------------

/// The Product API (README, "Connecting your product"), served by the function `product-api`.
const PRODUCT_API_ROUTES: &[(&str, &str)] = &[
    ("GET", "/isv/v1/instances/{instanceId}"),
    ("POST", "/isv/v1/instances/{instanceId}/provisioned"),
    ("POST", "/isv/v1/licenses/{eventId}"),
    ("POST", "/isv/v1/usage"),
];

/// The function that delivers events.
const EVENT_DISPATCH: &str = "event-dispatch";

/// The ARN of the bus named by the `EventBusName` parameter, as the template must build it.
const EVENT_BUS_ARN: &str =
    "arn:${AWS::Partition}:events:${AWS::Region}:${AWS::AccountId}:event-bus/${EventBusName}";

/// The stream filter of the event dispatcher: only the open-event pointers.
const OPEN_EVENTS_PREFIX: &str = "events-open#";

/// The name of the condition that is true exactly when `EventBusName` is set.
fn event_bus_condition(t: &Value) -> String {
    let names: Vec<String> = t
        .get("Conditions")
        .and_then(Value::as_mapping)
        .map(|m| {
            m.keys()
                .filter_map(Value::as_str)
                .filter(|name| condition_is_parameter_set(t, name, "EventBusName"))
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(
        names.len(),
        1,
        "expected one condition defined as Fn::Not [Fn::Equals [Ref EventBusName, \"\"]] (the bus \
         is configured), found {names:?}"
    );
    names.into_iter().next().unwrap()
}

#[test]
fn product_api_routes_are_served_by_the_product_api_function() {
    let t = template();
    let (function_id, _) = function_by_binary(&t, "product-api");
    let expected: BTreeSet<(String, String)> = PRODUCT_API_ROUTES
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    let served: BTreeSet<(String, String)> = declared_routes(&t)
        .into_iter()
        .filter(|(_, _, function)| function == "product-api")
        .map(|(m, p, _)| (m, p))
        .collect();
    assert_eq!(
        served, expected,
        "{function_id} (product-api) must serve exactly the Product API routes of the README (Connecting your product)"
    );
    // Nothing else under /isv/: those paths are the Product API's, behind its bearer tokens.
    let strays: Vec<_> = declared_routes(&t)
        .into_iter()
        .filter(|(_, p, f)| p.starts_with("/isv/") && f != "product-api")
        .collect();
    assert!(
        strays.is_empty(),
        "routes under /isv/ served by another function than product-api: {strays:?}"
    );
    for e in http_events(&t)
        .iter()
        .filter(|e| e.function_id == function_id)
    {
        assert_eq!(
            e.properties
                .get("PayloadFormatVersion")
                .and_then(Value::as_str),
            Some("2.0"),
            "{}: the Product API uses payload format 2.0 like every route",
            e.name()
        );
    }
}

#[test]
fn isv_settings_reach_every_function_with_defaults_that_change_nothing() {
    let t = template();
    let parameters = t.get("Parameters").expect("the template has no Parameters");
    // (variable, parameter, default): the defaults keep koogate's behaviour without an ISV side.
    let settings = [
        ("KOOGATE_WEBHOOK_URL", "WebhookUrl", ""),
        ("KOOGATE_EVENTS_DEBUG", "EventsDebug", "false"),
        ("KOOGATE_PROVISIONER", "Provisioner", "template"),
        ("KOOGATE_LICENSE_ISSUER", "LicenseIssuer", "random"),
        ("KOOGATE_PROVISION_URL", "ProvisionUrl", ""),
    ];
    let mut wrong = Vec::new();
    for (variable, parameter, default) in settings {
        match parameters.get(parameter) {
            None => wrong.push(format!("parameter {parameter} ({variable}) is missing")),
            Some(p) => {
                let found = p.get("Default").and_then(Value::as_str);
                if found != Some(default) {
                    wrong.push(format!(
                        "parameter {parameter}: Default must be {default:?}, found {found:?}"
                    ));
                }
            }
        }
        for (id, function) in resources_of_type(&t, "AWS::Serverless::Function") {
            if !function_env_var(&t, function, variable).is_some_and(|v| is_ref(v, parameter)) {
                wrong.push(format!("{id}: {variable} must be {{Ref: {parameter}}}"));
            }
        }
    }
    match parameters.get("EventBusName") {
        None => wrong.push("parameter EventBusName (KOOGATE_EVENT_BUS) is missing".into()),
        Some(p) => {
            if p.get("Default").and_then(Value::as_str) != Some("") {
                wrong.push("parameter EventBusName: Default must be \"\" (no bus)".into());
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn event_bus_is_put_to_only_by_the_dispatcher_only_on_the_configured_bus() {
    let t = template();
    let condition = event_bus_condition(&t);
    let (dispatch_id, dispatch) = function_by_binary(&t, EVENT_DISPATCH);

    let granted = allow_statements_for(&t, "events");
    assert_eq!(
        granted.len(),
        1,
        "expected exactly one statement granting EventBridge actions (event-dispatch's \
         events:PutEvents), found {:?}",
        granted.iter().map(|(s, _)| &s.location).collect::<Vec<_>>()
    );
    let (s, _) = &granted[0];
    assert_eq!(
        s.resource_id, dispatch_id,
        "{}: only {dispatch_id} (event-dispatch) puts events to the bus",
        s.location
    );
    assert_eq!(
        s.actions(),
        vec!["events:PutEvents".to_string()],
        "{}: the dispatcher needs events:PutEvents and nothing else",
        s.location
    );
    let resources = s.resources();
    assert!(
        resources.len() == 1 && is_sub(resources[0], EVENT_BUS_ARN),
        "{}: events:PutEvents must be granted on exactly {{Fn::Sub: {EVENT_BUS_ARN}}} (the \
         configured bus, no wildcard), found Resource {}",
        s.location,
        s.value
            .get("Resource")
            .map(show)
            .unwrap_or_else(|| "missing".into())
    );
    assert_eq!(
        s.conditions,
        vec![condition.clone()],
        "{}: the PutEvents statement must exist only when a bus is configured: put it in the \
         first branch of Fn::If [{condition}, <statement>, Ref AWS::NoValue]",
        s.location
    );

    // The dispatcher learns the bus ARN from KOOGATE_EVENT_BUS, set only when there is a bus.
    let bus = function_env_var(&t, dispatch, "KOOGATE_EVENT_BUS");
    let ok = bus.and_then(fn_if).is_some_and(|(c, then, otherwise)| {
        c == condition && is_sub(then, EVENT_BUS_ARN) && is_ref(otherwise, "AWS::NoValue")
    });
    assert!(
        ok,
        "{dispatch_id}: KOOGATE_EVENT_BUS must be Fn::If [{condition}, {{Fn::Sub: \
         {EVENT_BUS_ARN}}}, Ref AWS::NoValue], found {}",
        bus.map(show).unwrap_or_else(|| "nothing".into())
    );
    for (id, function) in resources_of_type(&t, "AWS::Serverless::Function") {
        if id != dispatch_id && function_env_var(&t, function, "KOOGATE_EVENT_BUS").is_some() {
            panic!(
                "{id}: KOOGATE_EVENT_BUS is event-dispatch's alone (only it may put events), \
                 including through Globals.Function"
            );
        }
    }
}

#[test]
fn no_function_has_a_sam_stream_or_queue_event() {
    // SAM attaches an AWS managed policy for these (e.g. AWSLambdaDynamoDBExecutionRole, whose
    // stream actions are on every stream): permissions these tests cannot see. Declare an
    // AWS::Lambda::EventSourceMapping and grant the actions inline instead.
    let t = template();
    let mut wrong = Vec::new();
    for (id, function) in resources_of_type(&t, "AWS::Serverless::Function") {
        for (event_id, event) in function_events(function) {
            let ty = event.get("Type").and_then(Value::as_str).unwrap_or("?");
            if [
                "DynamoDB",
                "Kinesis",
                "SQS",
                "MSK",
                "MQ",
                "SelfManagedKafka",
                "DocumentDB",
            ]
            .contains(&ty)
            {
                wrong.push(format!(
                    "{id}.Events.{event_id}: a SAM {ty} event attaches an AWS managed policy; use \
                     an AWS::Lambda::EventSourceMapping and an inline statement"
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn table_stream_is_read_only_by_the_function_it_triggers_on_the_stream_only() {
    let t = template();
    let (table_id, _) = single_resource(&t, "AWS::DynamoDB::Table");
    // The functions an event source mapping on the table's stream invokes.
    let consumers: BTreeSet<String> = resources_of_type(&t, "AWS::Lambda::EventSourceMapping")
        .into_iter()
        .filter(|(_, m)| {
            properties(m)
                .get("EventSourceArn")
                .is_some_and(|a| is_get_att(a, &table_id, "StreamArn"))
        })
        .filter_map(|(_, m)| {
            properties(m)
                .get("FunctionName")
                .and_then(|f| f.get("Ref"))
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .collect();
    let mut wrong = Vec::new();
    let mut granted_to = BTreeSet::new();
    for (s, actions) in allow_statements_for(&t, "dynamodb") {
        let stream: Vec<&String> = actions
            .iter()
            .filter(|a| is_stream_read_action(a))
            .collect();
        if stream.is_empty() {
            continue;
        }
        if stream.len() != actions.len() {
            wrong.push(format!(
                "{}: stream actions {stream:?} and table actions in one statement; the stream \
                 actions go on the stream ARN, the table actions on the table ARN",
                s.location
            ));
        }
        let resources = s.resources();
        if resources.is_empty()
            || !resources
                .iter()
                .all(|r| is_get_att(r, &table_id, "StreamArn"))
        {
            wrong.push(format!(
                "{}: stream actions must be granted on {{Fn::GetAtt: [{table_id}, StreamArn]}} \
                 only, found Resource {}",
                s.location,
                s.value
                    .get("Resource")
                    .map(show)
                    .unwrap_or_else(|| "missing".into())
            ));
        }
        if !consumers.contains(&s.resource_id) {
            wrong.push(format!(
                "{}: {} reads the table stream but no event source mapping on the stream \
                 invokes it",
                s.location, s.resource_id
            ));
        }
        let granted: BTreeSet<String> = stream.into_iter().cloned().collect();
        let needed: BTreeSet<String> = STREAM_READ_ACTIONS.iter().map(|a| a.to_string()).collect();
        if granted != needed {
            wrong.push(format!(
                "{}: a stream consumer needs exactly {needed:?}, found {granted:?}",
                s.location
            ));
        }
        granted_to.insert(s.resource_id.clone());
    }
    for consumer in &consumers {
        if !granted_to.contains(consumer) {
            wrong.push(format!(
                "{consumer} is invoked by the table stream but its policy does not grant \
                 {STREAM_READ_ACTIONS:?} on the stream"
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn event_dispatch_is_triggered_by_open_events_on_the_table_stream() {
    let t = template();
    let (table_id, _) = single_resource(&t, "AWS::DynamoDB::Table");
    let (dispatch_id, _) = function_by_binary(&t, EVENT_DISPATCH);
    let mappings: Vec<_> = resources_of_type(&t, "AWS::Lambda::EventSourceMapping")
        .into_iter()
        .filter(|(_, m)| {
            properties(m)
                .get("FunctionName")
                .is_some_and(|f| is_ref(f, &dispatch_id))
        })
        .collect();
    assert_eq!(
        mappings.len(),
        1,
        "expected one AWS::Lambda::EventSourceMapping with FunctionName {{Ref: {dispatch_id}}}, \
         found {:?}",
        mappings.iter().map(|(id, _)| id).collect::<Vec<_>>()
    );
    let (id, mapping) = &mappings[0];
    let props = properties(mapping);
    assert!(
        props
            .get("EventSourceArn")
            .is_some_and(|a| is_get_att(a, &table_id, "StreamArn")),
        "{id}: EventSourceArn must be {{Fn::GetAtt: [{table_id}, StreamArn]}}"
    );
    assert!(
        !matches!(props.get("Enabled"), Some(Value::Bool(false)))
            && props.get("Enabled").and_then(Value::as_str) != Some("false"),
        "{id}: the mapping must be enabled"
    );
    let int = |key: &str| props.get(key).and_then(Value::as_i64);
    assert_eq!(
        props.get("StartingPosition").and_then(Value::as_str),
        Some("LATEST"),
        "{id}: StartingPosition must be LATEST (older events are the scheduled run's)"
    );
    assert_eq!(int("BatchSize"), Some(100), "{id}: BatchSize must be 100");
    assert_eq!(
        int("MaximumBatchingWindowInSeconds"),
        Some(1),
        "{id}: MaximumBatchingWindowInSeconds must be 1 (events are delivered within about a \
         second of the commit)"
    );
    assert_eq!(
        int("MaximumRetryAttempts"),
        Some(2),
        "{id}: MaximumRetryAttempts must be 2 (after that the scheduled run takes over; the \
         default, -1, retries a failing batch until it expires and blocks the shard)"
    );

    let filters = props
        .get("FilterCriteria")
        .and_then(|f| f.get("Filters"))
        .and_then(Value::as_sequence)
        .unwrap_or_else(|| {
            panic!(
                "{id}: FilterCriteria.Filters is missing: every table change would invoke the \
                 dispatcher"
            )
        });
    assert_eq!(
        filters.len(),
        1,
        "{id}: expected one filter (filters are ORed), found {}",
        show(&Value::Sequence(filters.clone()))
    );
    let pattern = filters[0]
        .get("Pattern")
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("{id}: the filter has no string Pattern"));
    let pattern: serde_json::Value = serde_json::from_str(pattern)
        .unwrap_or_else(|e| panic!("{id}: the filter Pattern is not JSON ({e}): {pattern}"));
    assert_eq!(
        pattern,
        serde_json::json!({"dynamodb": {"Keys": {"pk": {"S": [{"prefix": OPEN_EVENTS_PREFIX}]}}}}),
        "{id}: the filter must pass exactly the records whose key pk begins with \
         {OPEN_EVENTS_PREFIX}"
    );
}

#[test]
fn event_dispatch_also_runs_every_minute_with_time_for_its_deliveries() {
    let t = template();
    let (id, dispatch) = function_by_binary(&t, EVENT_DISPATCH);
    let schedules: Vec<String> = function_events(dispatch)
        .into_iter()
        .filter(|(_, e)| e.get("Type").and_then(Value::as_str) == Some("Schedule"))
        .filter(|(_, e)| {
            let p = properties(e);
            !matches!(p.get("Enabled"), Some(Value::Bool(false)))
                && p.get("State").and_then(Value::as_str) != Some("DISABLED")
        })
        .filter_map(|(_, e)| {
            properties(e)
                .get("Schedule")
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .collect();
    assert!(
        schedules.iter().any(|s| s == "rate(1 minute)"),
        "{id}: needs an enabled Schedule event rate(1 minute) (retries that come due, recovery \
         of what the stream trigger missed), found {schedules:?}"
    );
    let timeout = function_property(&t, dispatch, "Timeout").and_then(Value::as_u64);
    assert!(
        timeout.is_some_and(|s| (20..=60).contains(&s)),
        "{id}: Timeout must leave room for deliveries of 10 s each (at least 20 s) and stay \
         within the 1-minute schedule (at most 60 s), found {timeout:?}"
    );
}

#[test]
fn outputs_name_the_product_api_and_the_dispatcher() {
    let t = template();
    let outputs = t.get("Outputs").expect("the template has no Outputs");
    let url = outputs
        .get("ProductApiUrl")
        .and_then(|o| o.get("Value"))
        .and_then(|v| v.get("Fn::Sub"))
        .and_then(|s| match s {
            Value::String(text) => Some(text.as_str()),
            Value::Sequence(args) => args.first().and_then(Value::as_str),
            _ => None,
        });
    assert!(
        url.is_some_and(|u| u.starts_with("https://${HttpApi}.") && u.ends_with("/isv/v1")),
        "output ProductApiUrl must be the HTTP API's URL ending in /isv/v1, found {url:?}"
    );
    let (dispatch_id, _) = function_by_binary(&t, EVENT_DISPATCH);
    assert!(
        outputs
            .get("EventDispatchFunctionArn")
            .and_then(|o| o.get("Value"))
            .is_some_and(|v| is_get_att_arn(v, &dispatch_id)),
        "output EventDispatchFunctionArn must be {{Fn::GetAtt: [{dispatch_id}, Arn]}}"
    );
}

// ------------------------------------------------------------------------------------------------
// Alarms and logs
// ------------------------------------------------------------------------------------------------

/// The namespace of koogate's own metrics, as the code writes it.
fn metrics_namespace() -> String {
    request_emf_line()["_aws"]["CloudWatchMetrics"][0]["Namespace"]
        .as_str()
        .expect("the EMF line names a namespace")
        .to_string()
}

/// Every metric an alarm reads: its own (`Namespace`, `MetricName`, `Dimensions`) or the
/// `MetricStat` of each `Metrics` entry.
fn alarm_metrics(alarm: &Value) -> Vec<&Value> {
    let props = properties(alarm);
    if props.get("MetricName").is_some() {
        return vec![props];
    }
    props
        .get("Metrics")
        .and_then(Value::as_sequence)
        .map(|ms| {
            ms.iter()
                .filter_map(|m| m.get("MetricStat").and_then(|s| s.get("Metric")))
                .collect()
        })
        .unwrap_or_default()
}

/// The value of a metric's dimension.
fn dimension<'a>(metric: &'a Value, name: &str) -> Option<&'a Value> {
    metric
        .get("Dimensions")
        .and_then(Value::as_sequence)?
        .iter()
        .find(|d| d.get("Name").and_then(Value::as_str) == Some(name))?
        .get("Value")
}

/// Whether the value references the resource (`Ref`), at any depth.
fn mentions_ref(v: &Value, id: &str) -> bool {
    match v {
        Value::Mapping(m) => is_ref(v, id) || m.values().any(|c| mentions_ref(c, id)),
        Value::Sequence(items) => items.iter().any(|c| mentions_ref(c, id)),
        _ => false,
    }
}

#[test]
fn events_failed_alarm_watches_the_dispatchers_failed_events() {
    let t = template();
    let alarm = resources(&t)
        .into_iter()
        .find(|(id, _)| id == "EventsFailedAlarm")
        .map(|(_, a)| a)
        .expect("EventsFailedAlarm is missing");
    assert_eq!(
        alarm.get("Type").and_then(Value::as_str),
        Some("AWS::CloudWatch::Alarm")
    );
    let props = properties(alarm);
    let namespace = metrics_namespace();
    assert_eq!(
        props.get("Namespace").and_then(Value::as_str),
        Some(namespace.as_str()),
        "EventsFailedAlarm must read koogate's metric namespace"
    );
    assert_eq!(
        props.get("MetricName").and_then(Value::as_str),
        Some("EventsFailed"),
        "EventsFailedAlarm must watch EventsFailed"
    );
    let dimensions = props.get("Dimensions").and_then(Value::as_sequence);
    assert!(
        dimensions.is_some_and(|d| d.len() == 1)
            && dimension(props, "Function").and_then(Value::as_str) == Some(EVENT_DISPATCH),
        "EventsFailedAlarm must have the one dimension Function = {EVENT_DISPATCH} (the \
         dimension set the dispatcher writes), found {}",
        props
            .get("Dimensions")
            .map(show)
            .unwrap_or_else(|| "none".into())
    );
    assert_eq!(props.get("Statistic").and_then(Value::as_str), Some("Sum"));
    assert_eq!(props.get("Period").and_then(Value::as_u64), Some(300));
    let threshold = props.get("Threshold").and_then(Value::as_f64);
    let operator = props.get("ComparisonOperator").and_then(Value::as_str);
    assert!(
        matches!(
            (operator, threshold),
            (Some("GreaterThanThreshold"), Some(t)) if t == 0.0
        ) || matches!(
            (operator, threshold),
            (Some("GreaterThanOrEqualToThreshold"), Some(t)) if t == 1.0
        ),
        "EventsFailedAlarm must fire on any failed event (> 0), found {operator:?} {threshold:?}"
    );
    assert!(
        props
            .get("AlarmActions")
            .is_some_and(|a| mentions_ref(a, "AlarmTopic")),
        "EventsFailedAlarm must notify the AlarmTopic like the other alarms"
    );
}

/// The EMF line of a request, as the code writes it.
fn request_emf_line() -> serde_json::Value {
    let record = koogate_runtime::telemetry::RequestRecord {
        function: "saas",
        route: "POST /saas",
        activity: None,
        result_code: "000005",
        debug: false,
        request_id: "r",
        latency_us: 0,
        key_index: None,
        reason: None,
        ids: &koogate_runtime::trace_ids::TraceIds::default(),
    };
    serde_json::from_str(&koogate_runtime::telemetry::emf_line(&record, 0))
        .expect("the EMF line is JSON")
}

#[test]
fn failed_alarm_reads_the_aggregate_of_every_function_that_the_code_writes() {
    let line = request_emf_line();
    let directive = &line["_aws"]["CloudWatchMetrics"][0];
    assert!(
        directive["Dimensions"].as_array().is_some_and(|sets| sets
            .iter()
            .any(|set| set.as_array().is_some_and(Vec::is_empty))),
        "emf_line must write the empty dimension set (the aggregate over every function) that \
         FailedAlarm reads, found {}",
        directive["Dimensions"]
    );
    assert_eq!(line["Failed"], 1, "a 000005 answer counts as Failed");

    let t = template();
    let alarm = resources(&t)
        .into_iter()
        .find(|(id, _)| id == "FailedAlarm")
        .map(|(_, a)| a)
        .expect("FailedAlarm is missing");
    let metrics = alarm_metrics(alarm);
    assert_eq!(
        metrics.len(),
        1,
        "FailedAlarm reads one metric, the aggregate over every function"
    );
    let metric = metrics[0];
    assert_eq!(
        metric.get("Namespace").and_then(Value::as_str),
        directive["Namespace"].as_str(),
        "FailedAlarm must read koogate's metric namespace"
    );
    assert_eq!(
        metric.get("MetricName").and_then(Value::as_str),
        Some("Failed")
    );
    assert!(
        metric
            .get("Dimensions")
            .is_none_or(|d| d.as_sequence().is_some_and(Vec::is_empty)),
        "FailedAlarm must read the aggregate (no dimension), which covers every function; found \
         Dimensions {}",
        metric.get("Dimensions").map(show).unwrap_or_default()
    );
    let props = properties(alarm);
    assert!(
        props
            .get("AlarmActions")
            .is_some_and(|a| mentions_ref(a, "AlarmTopic")),
        "FailedAlarm must notify the AlarmTopic like the other alarms"
    );
}

/// `make build` (and `make sizes`) builds every function the template deploys, and nothing else:
/// the Makefile's `FUNCTIONS` list is the set of `BuildProperties.Binary` values.
#[test]
fn make_build_builds_every_deployed_function() {
    let t = template();
    let mut deployed: Vec<String> = resources_of_type(&t, "AWS::Serverless::Function")
        .into_iter()
        .filter_map(|(_, f)| function_binary(f))
        .collect();
    deployed.sort();
    let makefile_path = template_path()
        .parent()
        .and_then(|infra| infra.parent())
        .map(|root| root.join("Makefile"))
        .unwrap();
    let makefile = std::fs::read_to_string(&makefile_path).unwrap();
    let mut built: Vec<String> = makefile
        .lines()
        .find_map(|l| l.strip_prefix("FUNCTIONS := "))
        .expect("a `FUNCTIONS := …` line in the Makefile")
        .split_whitespace()
        .map(str::to_string)
        .collect();
    built.sort();
    assert_eq!(
        built, deployed,
        "Makefile FUNCTIONS vs the template's functions"
    );
}
