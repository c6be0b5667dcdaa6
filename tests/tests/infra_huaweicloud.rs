//! Offline checks of the Huawei Cloud Terraform (`infra/huaweicloud/*.tf`) and of the packaging
//! files it deploys (`packaging/huaweicloud`), the counterpart of `infra_template.rs` for SAM.
//!
//! The Terraform is parsed with python-hcl2 (pinned in `tests/requirements.txt`, installed into
//! `.venv` by `make test`) into JSON; these tests then prove:
//!
//! * the APIG APIs are exactly the route table (`koogate_infra::routes::table()`) under the base
//!   path, for the default `/saas` and for `/` (where `/saas` becomes `/` and `/saas/x` becomes
//!   `/x`; `/license`, `/order-notify`, `/sso/*`, `/isv/v1/*` stay), each API one exact-match
//!   route to the one koogate function, published;
//! * no IAM custom policy grants a wildcard action or resource, and the function's agency holds
//!   only that policy;
//! * the function is an HTTP function (`runtime = "http"`, `handler = "bootstrap"`) listening on
//!   port 8000, and the bootstrap execs `koogate serve` on 0.0.0.0:8000 by default;
//! * the secrets travel only in the KMS-encrypted environment, and the variables holding them are
//!   sensitive;
//! * the LTS keyword alarm on non-000000 answers reads the stream the function logs to, and Cloud
//!   Eye alarms on the function's errors.
//!
//! Without python-hcl2 the HCL tests are skipped with a notice, unless `KOOGATE_REQUIRE_HCL2` is
//! set (as `make test` does), when they fail.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn tf_dir() -> PathBuf {
    workspace().join("infra/huaweicloud")
}

/// `{file name: python-hcl2 JSON}` of every `.tf` file, or `None` (skip) without python-hcl2.
fn parsed() -> Option<Value> {
    const SCRIPT: &str = r#"
import json, pathlib, sys
try:
    import hcl2
except ImportError:
    print("NO_HCL2")
    sys.exit(0)
out = {}
for f in sorted(pathlib.Path(sys.argv[1]).glob("*.tf")):
    with open(f) as fh:
        out[f.name] = hcl2.load(fh)
print(json.dumps(out))
"#;
    let venv = workspace().join(".venv/bin/python");
    let candidates: Vec<PathBuf> = if venv.exists() {
        vec![venv]
    } else {
        vec!["python3".into(), "python".into()]
    };
    for python in candidates {
        let Ok(output) = Command::new(&python)
            .arg("-c")
            .arg(SCRIPT)
            .arg(tf_dir())
            .output()
        else {
            continue;
        };
        assert!(
            output.status.success(),
            "python-hcl2 could not parse infra/huaweicloud: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let text = String::from_utf8(output.stdout).unwrap();
        if text.trim() == "NO_HCL2" {
            break;
        }
        return Some(serde_json::from_str(&text).expect("python-hcl2 printed JSON"));
    }
    if std::env::var_os("KOOGATE_REQUIRE_HCL2").is_some() {
        panic!("python-hcl2 is not installed; `make test` installs it into .venv from tests/requirements.txt");
    }
    eprintln!("SKIPPED: python-hcl2 is not installed (run `make test`, which installs it)");
    None
}

/// Every `resource "<ty>" "<name>"` block: (type, name, body).
fn resources(files: &Value) -> Vec<(String, String, Value)> {
    let mut out = Vec::new();
    for file in files.as_object().unwrap().values() {
        for block in file
            .get("resource")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            for (ty, named) in block.as_object().unwrap() {
                for (name, body) in named.as_object().unwrap() {
                    out.push((ty.clone(), name.clone(), body.clone()));
                }
            }
        }
    }
    out
}

fn resource(files: &Value, ty: &str, name: &str) -> Value {
    resources(files)
        .into_iter()
        .find(|(t, n, _)| t == ty && n == name)
        .unwrap_or_else(|| panic!("infra/huaweicloud declares no resource {ty}.{name}"))
        .2
}

fn of_type(files: &Value, ty: &str) -> Vec<(String, Value)> {
    resources(files)
        .into_iter()
        .filter(|(t, _, _)| t == ty)
        .map(|(_, n, b)| (n, b))
        .collect()
}

/// A named value of any `locals` block.
fn local(files: &Value, name: &str) -> Value {
    for file in files.as_object().unwrap().values() {
        for block in file
            .get("locals")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(v) = block.get(name) {
                return v.clone();
            }
        }
    }
    panic!("infra/huaweicloud has no local.{name}")
}

fn variable(files: &Value, name: &str) -> Value {
    for file in files.as_object().unwrap().values() {
        for block in file
            .get("variable")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(v) = block.get(name) {
                return v.clone();
            }
        }
    }
    panic!("infra/huaweicloud has no variable {name:?}")
}

/// The first (only) instance of a nested block, which python-hcl2 renders as a list.
fn block<'a>(body: &'a Value, name: &str) -> &'a Value {
    body.get(name)
        .and_then(Value::as_array)
        .and_then(|a| a.first())
        .unwrap_or_else(|| panic!("no {name} block in {body}"))
}

fn string<'a>(body: &'a Value, key: &str) -> &'a str {
    body.get(key)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("no string {key} in {body}"))
}

/// An expression with its whitespace removed (python-hcl2 re-spaces expressions).
fn squeeze(s: &str) -> String {
    s.chars().filter(|c| !c.is_whitespace()).collect()
}

/// The route table with the base-path mapping koogate serve applies (KOOGATE_BASE_PATH).
fn expected_routes(base_path: &str) -> BTreeSet<(String, String, String)> {
    let prefix = base_path.trim_end_matches('/');
    koogate_infra::routes::table()
        .iter()
        .map(|r| {
            let path = if r.path == "/saas" {
                base_path.to_string()
            } else if let Some(rest) = r.path.strip_prefix("/saas/") {
                format!("{prefix}/{rest}")
            } else {
                r.path.to_string()
            };
            (r.method.to_string(), path, r.function.to_string())
        })
        .collect()
}

/// `local.routes` evaluated as `local.route_paths` does, for one base path.
fn declared_routes(files: &Value, base_path: &str) -> BTreeSet<(String, String, String)> {
    let routes = local(files, "routes");
    let prefix = base_path.trim_end_matches('/');
    let mut out = BTreeSet::new();
    for (key, r) in routes.as_object().expect("local.routes is a map") {
        let method = string(r, "method");
        let path = string(r, "path");
        let function = string(r, "function");
        let under_base = r
            .get("base")
            .and_then(Value::as_bool)
            .unwrap_or_else(|| panic!("local.routes.{key}.base is not a literal bool"));
        let full = match (under_base, path) {
            (true, "") => base_path.to_string(),
            (true, p) => format!("{prefix}{p}"),
            (false, p) => p.to_string(),
        };
        assert!(
            out.insert((method.to_string(), full.clone(), function.to_string())),
            "route {method} {full} declared twice in local.routes"
        );
    }
    out
}

#[test]
fn apig_apis_are_the_route_table_under_the_base_path() {
    let Some(files) = parsed() else { return };

    // The evaluation above must be the one Terraform performs.
    assert_eq!(
        squeeze(local(&files, "base_root").as_str().unwrap()),
        "${var.base_path}"
    );
    assert_eq!(
        squeeze(local(&files, "base_prefix").as_str().unwrap()),
        r#"${trimsuffix(var.base_path,"/")}"#
    );
    assert_eq!(
        squeeze(local(&files, "route_paths").as_str().unwrap()),
        squeeze(
            r#"${{for key, route in local.routes : key => route.base ? (route.path == "" ? local.base_root : "${local.base_prefix}${route.path}") : route.path}}"#
        ),
        "local.route_paths changed: update this test's evaluation (declared_routes) with it"
    );
    let base = variable(&files, "base_path");
    assert_eq!(base["default"], "/saas", "base_path defaults to /saas");

    for base_path in ["/saas", "/"] {
        let declared = declared_routes(&files, base_path);
        let expected = expected_routes(base_path);
        let missing: Vec<_> = expected.difference(&declared).collect();
        let extra: Vec<_> = declared.difference(&expected).collect();
        assert!(
            missing.is_empty() && extra.is_empty(),
            "infra/huaweicloud/routes.tf and the route table disagree with base_path {base_path} \
             (method, path, function).\nIn the route table only: {missing:?}\nIn routes.tf only: {extra:?}"
        );
    }

    // One APIG API per entry of local.routes, exactly that method and path, to the function.
    let apis = of_type(&files, "huaweicloud_apig_api");
    assert_eq!(
        apis.len(),
        1,
        "routes are declared only by huaweicloud_apig_api.route"
    );
    let (_, api) = &apis[0];
    assert_eq!(
        squeeze(string(api, "for_each")),
        "${local.serverless?local.routes:{}}"
    );
    assert_eq!(string(api, "request_method"), "${each.value.method}");
    assert_eq!(
        string(api, "request_path"),
        "${local.route_paths[each.key]}"
    );
    assert_eq!(string(api, "matching"), "Exact");
    assert_eq!(string(api, "request_protocol"), "HTTPS");
    assert_eq!(
        string(block(api, "func_graph"), "function_urn"),
        "${huaweicloud_fgs_function.koogate[0].urn}"
    );
    let publish = resource(&files, "huaweicloud_apig_api_publishment", "route");
    assert_eq!(
        string(&publish, "for_each"),
        "${huaweicloud_apig_api.route}"
    );
    assert_eq!(string(&publish, "env_id"), "DEFAULT_ENVIRONMENT_RELEASE_ID");
}

#[test]
fn iam_grants_no_wildcard_and_the_agency_holds_only_the_vpc_policy() {
    let Some(files) = parsed() else { return };
    let roles = of_type(&files, "huaweicloud_identity_role");
    assert!(
        !roles.is_empty(),
        "the function's agency needs its custom policy"
    );
    for (name, role) in &roles {
        let policy: Value = serde_json::from_str(string(role, "policy")).unwrap_or_else(|e| {
            panic!("huaweicloud_identity_role.{name}.policy is not a JSON literal: {e}")
        });
        for statement in policy["Statement"].as_array().expect("Statement list") {
            assert_eq!(statement["Effect"], "Allow");
            for field in ["Action", "Resource"] {
                let values: Vec<&str> = match &statement[field] {
                    Value::Null => vec![],
                    Value::String(s) => vec![s],
                    Value::Array(a) => a.iter().map(|v| v.as_str().unwrap()).collect(),
                    other => panic!("{field} of {name} is {other}"),
                };
                assert!(
                    field == "Resource" || !values.is_empty(),
                    "{name}: a statement without actions"
                );
                for v in values {
                    assert!(
                        !v.contains('*'),
                        "huaweicloud_identity_role.{name} grants a wildcard {field}: {v}"
                    );
                }
            }
        }
    }
    for (name, agency) in of_type(&files, "huaweicloud_identity_agency") {
        for broad in [
            "domain_roles",
            "all_resources_roles",
            "enterprise_project_roles",
        ] {
            assert!(
                agency.get(broad).is_none(),
                "agency {name} must not hold {broad}"
            );
        }
        for assignment in agency["project_role"].as_array().unwrap() {
            for role in assignment["roles"].as_array().unwrap() {
                let role = role.as_str().unwrap();
                assert!(
                    role.starts_with("${huaweicloud_identity_role."),
                    "agency {name} holds the system role {role:?}: grant the custom policy only"
                );
            }
        }
    }
}

#[test]
fn function_is_an_http_function_on_port_8000_and_bootstrap_execs_serve() {
    let Some(files) = parsed() else { return };
    let f = resource(&files, "huaweicloud_fgs_function", "koogate");
    assert_eq!(string(&f, "runtime"), "http");
    assert_eq!(string(&f, "handler"), "bootstrap");
    assert_eq!(string(&f, "code_type"), "zip");
    let user_data = squeeze(string(&f, "user_data"));
    assert!(
        user_data.contains(r#""KOOGATE_ADDR":"0.0.0.0:8000""#),
        "user_data sets KOOGATE_ADDR=0.0.0.0:8000: {user_data}"
    );
    assert!(user_data.contains(r#""KOOGATE_BASE_PATH":"${var.base_path}""#));
    assert!(user_data.contains("local.store_env"));
    assert_eq!(
        squeeze(
            local(&files, "store_env")["KOOGATE_STORE"]
                .as_str()
                .unwrap()
        ),
        "dynamodb"
    );

    let bootstrap = std::fs::read_to_string(workspace().join("packaging/huaweicloud/bootstrap"))
        .expect("packaging/huaweicloud/bootstrap");
    assert!(bootstrap.starts_with("#!/bin/sh\n"));
    let exec_line = bootstrap
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .find(|l| l.trim_start().starts_with("exec "))
        .expect("bootstrap execs koogate");
    assert_eq!(
        exec_line.trim(),
        r#"exec "$here/koogate" serve --addr "${KOOGATE_ADDR:-0.0.0.0:8000}""#
    );

    // The other two ways to run it on Huawei Cloud.
    let unit =
        std::fs::read_to_string(workspace().join("packaging/huaweicloud/koogate.service")).unwrap();
    for line in [
        "User=koogate",
        "EnvironmentFile=/etc/koogate/koogate.env",
        "Restart=on-failure",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "ReadWritePaths=/var/lib/koogate",
        "ExecStart=/usr/local/bin/koogate serve --addr ${KOOGATE_ADDR}",
    ] {
        assert!(
            unit.lines().any(|l| l == line),
            "koogate.service lacks {line}"
        );
    }
    assert!(
        !unit.lines().any(|l| l.starts_with("AmbientCapabilities=")),
        "koogate.service binds 8000 behind the ELB: no capability"
    );
    let containerfile =
        std::fs::read_to_string(workspace().join("packaging/huaweicloud/Containerfile")).unwrap();
    let instructions: Vec<&str> = containerfile
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty() && !l.starts_with(' '))
        .map(|l| l.split_whitespace().next().unwrap())
        .collect();
    for i in &instructions {
        assert!(
            [
                "FROM",
                "WORKDIR",
                "COPY",
                "RUN",
                "USER",
                "VOLUME",
                "ENV",
                "EXPOSE",
                "ENTRYPOINT"
            ]
            .contains(i),
            "unexpected Containerfile instruction {i}"
        );
    }
    assert_eq!(instructions.iter().filter(|i| **i == "FROM").count(), 2);
    assert!(containerfile.contains("\nEXPOSE 8000\n"));
    assert!(containerfile.contains("\nUSER 65532:65532\n"));
}

#[test]
fn secrets_travel_only_encrypted() {
    let Some(files) = parsed() else { return };
    let f = resource(&files, "huaweicloud_fgs_function", "koogate");
    let encrypted = squeeze(string(&f, "encrypted_user_data"));
    for key in [
        r#""KOOGATE_SECRETS_JSON":"${var.secrets_json}""#,
        r#""AWS_ACCESS_KEY_ID":"${var.geminidb_access_key_id}""#,
        r#""AWS_SECRET_ACCESS_KEY":"${var.geminidb_secret_access_key}""#,
    ] {
        assert!(
            encrypted.contains(key),
            "encrypted_user_data lacks {key}: {encrypted}"
        );
    }
    let plain = string(&f, "user_data");
    for secret in ["secrets_json", "SECRET", "password", "access_key"] {
        assert!(
            !plain.contains(secret),
            "user_data (plain text) mentions {secret}"
        );
    }
    assert_eq!(
        string(&f, "user_data_encrypt_kms_key_id"),
        "${huaweicloud_kms_key.koogate.id}"
    );
    for v in [
        "secrets_json",
        "geminidb_password",
        "geminidb_access_key_id",
        "geminidb_secret_access_key",
    ] {
        assert_eq!(
            variable(&files, v)["sensitive"],
            true,
            "variable {v} must be sensitive"
        );
    }
}

#[test]
fn alarms_watch_failed_answers_and_function_errors() {
    let Some(files) = parsed() else { return };
    let f = resource(&files, "huaweicloud_fgs_function", "koogate");
    assert_eq!(f["enable_lts_log"], true);
    assert_eq!(
        string(&f, "log_stream_id"),
        "${huaweicloud_lts_stream.koogate.id}"
    );
    let alarm = resource(
        &files,
        "huaweicloud_lts_keywords_alarm_rule",
        "failed_answers",
    );
    let request = block(&alarm, "keywords_requests");
    assert_eq!(
        string(request, "keywords"),
        "answered and result_code and not 000000"
    );
    assert_eq!(string(request, "condition"), ">");
    assert_eq!(request["number"], 0);
    assert_eq!(
        string(request, "log_stream_id"),
        "${huaweicloud_lts_stream.koogate.id}"
    );
    let errors = resource(&files, "huaweicloud_ces_alarmrule", "function_errors");
    assert_eq!(
        string(block(&errors, "metric"), "namespace"),
        "SYS.FunctionGraph"
    );
    assert_eq!(
        string(block(&errors, "condition"), "metric_name"),
        "failcount"
    );

    // The words the alarm looks for are those of koogate's log line.
    let telemetry =
        std::fs::read_to_string(workspace().join("shared/runtime/src/telemetry.rs")).unwrap();
    assert!(
        telemetry.contains("result_code = r.result_code") && telemetry.contains("\"answered\"")
    );
}

#[test]
fn variables_name_region_domain_certificates_and_base_path() {
    let Some(files) = parsed() else { return };
    for v in [
        "region",
        "domain",
        "base_path",
        "apig_certificate_id",
        "elb_certificate_id",
        "deployment",
    ] {
        variable(&files, v);
    }
    let listener = resource(&files, "huaweicloud_elb_listener", "https");
    assert_eq!(string(&listener, "protocol"), "HTTPS");
    assert_eq!(
        string(&listener, "server_certificate"),
        "${var.elb_certificate_id}"
    );
    let member = resource(&files, "huaweicloud_elb_member", "koogate");
    assert_eq!(member["protocol_port"], 8000);
    let store = resource(&files, "huaweicloud_geminidb_instance", "store");
    assert_eq!(string(block(&store, "datastore"), "type"), "dynamodb");
}
