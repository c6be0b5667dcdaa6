//! Offline checks of `infra/template.yaml` that cfn-lint does not make.
//!
//! cfn-lint proves the template is a valid SAM/CloudFormation document. These tests prove that it
//! matches the code:
//!
//! * the HTTP API declares exactly the routes of `koogate_runtime::routes::ROUTES`, each on the
//!   function whose `BuildProperties.Binary` is the route's function, with payload format 2.0;
//! * IAM grants no wildcard action and no `dynamodb:Scan`; the DynamoDB actions granted are exactly
//!   `koogate_store::dynamodb_actions::ACTIONS_USED`, on the table only; Secrets Manager access is
//!   `GetSecretValue` on the secrets document only;
//! * the table has the keys, TTL attribute, recovery, billing and stream the store relies on.
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
    let Some(m) = v.as_mapping().filter(|m| m.len() == 1) else {
        return false;
    };
    match m.get("Fn::GetAtt") {
        Some(Value::Sequence(s)) => {
            s.len() == 2 && s[0].as_str() == Some(id) && s[1].as_str() == Some("Arn")
        }
        Some(Value::String(s)) => *s == format!("{id}.Arn"),
        _ => false,
    }
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
        let binary = function
            .get("Metadata")
            .and_then(|m| m.get("BuildProperties"))
            .and_then(|b| b.get("Binary"))
            .and_then(Value::as_str)
            .map(str::to_string);
        let Some(events) = properties(function)
            .get("Events")
            .and_then(Value::as_mapping)
        else {
            continue;
        };
        for (event_id, event) in events {
            if event.get("Type").and_then(Value::as_str) != Some("HttpApi") {
                continue;
            }
            out.push(HttpEvent {
                function_id: function_id.clone(),
                event_id: event_id.as_str().unwrap_or("?").to_string(),
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
fn http_api_routes_equal_the_route_table() {
    let t = template();
    let declared = declared_routes(&t);

    let mut seen = BTreeSet::new();
    let duplicates: Vec<_> = declared.iter().filter(|r| !seen.insert(*r)).collect();
    assert!(
        duplicates.is_empty(),
        "routes declared more than once in the template: {duplicates:?}"
    );

    let declared: BTreeSet<(String, String, String)> = declared.into_iter().collect();
    let expected: BTreeSet<(String, String, String)> = koogate_runtime::routes::ROUTES
        .iter()
        .map(|r| {
            (
                r.method.to_ascii_uppercase(),
                r.path.to_string(),
                r.function.to_string(),
            )
        })
        .collect();

    let missing: Vec<_> = expected.difference(&declared).collect();
    let extra: Vec<_> = declared.difference(&expected).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "infra/template.yaml and koogate_runtime::routes::ROUTES disagree (method, path, function).\n\
         In ROUTES but not in the template (add an AWS::Serverless::Function with \
         Metadata.BuildProperties.Binary = <function> and an HttpApi event): {missing:?}\n\
         In the template but not in ROUTES (remove it, or add the route to ROUTES): {extra:?}"
    );
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
fn every_http_api_event_uses_payload_format_2_0() {
    let t = template();
    let events = http_events(&t);
    assert!(
        !events.is_empty(),
        "the template declares no HttpApi events at all"
    );
    let wrong: Vec<String> = events
        .iter()
        .filter(|e| {
            e.properties
                .get("PayloadFormatVersion")
                .and_then(Value::as_str)
                != Some("2.0")
        })
        .map(|e| {
            format!(
                "{}: PayloadFormatVersion is {} but must be the string \"2.0\" (payload 2.0 keeps \
                 rawQueryString, which signature verification needs)",
                e.name(),
                e.properties
                    .get("PayloadFormatVersion")
                    .map(show)
                    .unwrap_or_else(|| "missing".into())
            )
        })
        .collect();
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn every_http_api_event_is_attached_to_the_declared_http_api() {
    let t = template();
    let (api_id, _) = single_resource(&t, "AWS::Serverless::HttpApi");
    let wrong: Vec<String> = http_events(&t)
        .iter()
        .filter(|e| {
            !e.properties
                .get("ApiId")
                .is_some_and(|v| is_ref(v, &api_id))
        })
        .map(|e| {
            format!(
                "{}: ApiId must be {{Ref: {api_id}}} (without it SAM creates a second, implicit \
                 API with default settings), found {}",
                e.name(),
                e.properties
                    .get("ApiId")
                    .map(show)
                    .unwrap_or_else(|| "nothing".into())
            )
        })
        .collect();
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
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
/// (SAM function `Policies`, IAM roles and policies, assume-role documents alike).
fn statements(t: &Value) -> Vec<Statement<'_>> {
    fn walk<'a>(v: &'a Value, location: &str, out: &mut Vec<Statement<'a>>) {
        match v {
            Value::Mapping(m) => {
                for (k, child) in m {
                    let key = k.as_str().map(str::to_string).unwrap_or_else(|| show(k));
                    let here = format!("{location}.{key}");
                    if key == "Statement" {
                        for (i, s) in one_or_list(child).into_iter().enumerate() {
                            out.push(Statement {
                                location: format!("{here}[{i}]"),
                                value: s,
                            });
                        }
                    } else {
                        walk(child, &here, out);
                    }
                }
            }
            Value::Sequence(items) => {
                for (i, child) in items.iter().enumerate() {
                    walk(child, &format!("{location}[{i}]"), out);
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(
        t.get("Resources").expect("the template has no Resources"),
        "Resources",
        &mut out,
    );
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

#[test]
fn dynamodb_actions_equal_the_store_actions_on_the_table_only() {
    let t = template();
    let (table_id, _) = single_resource(&t, "AWS::DynamoDB::Table");
    let granted_statements = allow_statements_for(&t, "dynamodb");

    let mut wrong_resources = Vec::new();
    let mut granted = BTreeSet::new();
    for (s, actions) in &granted_statements {
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
