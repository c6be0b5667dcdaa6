//! The drift test, and what the generator guarantees about its output.

use std::path::PathBuf;

use serde_yaml::Value;

use super::*;
use functions::DEPLOYED;

fn template_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("infra/generator has a parent directory")
        .join("template.yaml")
}

fn generated() -> String {
    generate().unwrap_or_else(|e| panic!("cannot generate the template: {e}"))
}

#[test]
fn checked_in_template_is_what_the_generator_writes() {
    let path = template_path();
    let checked_in = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    if let Some(difference) = first_difference(&checked_in, &generated()) {
        panic!(
            "{} has drifted from the generator (infra/generator): run `make template` and \
             commit the result.\nFirst difference, {difference}",
            path.display()
        );
    }
}

/// The generated text is YAML whose resources are those the tables say: one function and one log
/// group per deployed function, one HttpApi event per route, on its function.
#[test]
fn every_route_is_an_http_api_event_of_its_function() {
    let t: Value = serde_yaml::from_str(&generated()).expect("the template is YAML");
    let resources = t["Resources"].as_mapping().expect("Resources");
    let mut declared = Vec::new();
    for f in DEPLOYED {
        let function = &resources[f.logical_id().as_str()];
        assert_eq!(
            function["Metadata"]["BuildProperties"]["Binary"].as_str(),
            Some(f.name)
        );
        assert_eq!(
            resources[f.log_group_id().as_str()]["Type"].as_str(),
            Some("AWS::Logs::LogGroup")
        );
        let events = function["Properties"]["Events"].as_mapping().unwrap();
        for event in events.values() {
            if event["Type"].as_str() == Some("HttpApi") {
                let p = &event["Properties"];
                assert_eq!(p["PayloadFormatVersion"].as_str(), Some("2.0"));
                assert_eq!(p["ApiId"]["Ref"].as_str(), Some("HttpApi"));
                declared.push((
                    p["Method"].as_str().unwrap().to_string(),
                    p["Path"].as_str().unwrap().to_string(),
                    f.name.to_string(),
                ));
            }
        }
    }
    let mut expected: Vec<_> = crate::routes::table()
        .iter()
        .map(|r| {
            (
                r.method.to_string(),
                r.path.to_string(),
                r.function.to_string(),
            )
        })
        .collect();
    declared.sort();
    expected.sort();
    assert_eq!(declared, expected);
}

#[test]
fn a_route_of_a_function_that_is_not_deployed_fails_generation() {
    let stray = Route {
        function: "not-deployed",
        ..koogate_saas::ROUTE
    };
    let error = generate_for(DEPLOYED, &[stray]).unwrap_err();
    assert!(
        error.contains("not-deployed") && error.contains("functions.rs"),
        "{error}"
    );
}

#[test]
fn every_function_is_watched_by_a_lambda_errors_alarm_of_at_most_ten_metrics() {
    let t: Value = serde_yaml::from_str(&generated()).unwrap();
    let mut watched = Vec::new();
    for alarm in t["Resources"].as_mapping().unwrap().values() {
        if alarm["Type"].as_str() != Some("AWS::CloudWatch::Alarm") {
            continue;
        }
        let p = &alarm["Properties"];
        let metrics: Vec<&Value> = match p["Metrics"].as_sequence() {
            Some(queries) => queries
                .iter()
                .map(|q| &q["MetricStat"]["Metric"])
                .filter(|m| !m.is_null())
                .collect(),
            None => vec![p],
        };
        assert!(metrics.len() <= alarms::MAX_METRICS_PER_ALARM);
        for m in metrics {
            if m["Namespace"].as_str() == Some("AWS/Lambda")
                && m["MetricName"].as_str() == Some("Errors")
            {
                let d = &m["Dimensions"][0];
                assert_eq!(d["Name"].as_str(), Some("FunctionName"));
                watched.push(d["Value"]["Ref"].as_str().unwrap().to_string());
            }
        }
    }
    for f in DEPLOYED {
        assert_eq!(
            watched.iter().filter(|w| **w == f.logical_id()).count(),
            1,
            "{} must be in exactly one alarm on AWS/Lambda Errors",
            f.name
        );
    }
}

/// Function environments hold references, never values: the secrets stay in Secrets Manager.
#[test]
fn function_environments_hold_no_literal_values_and_no_secrets() {
    for f in DEPLOYED {
        for var in f.env {
            assert!(
                var.value.starts_with("Ref: ") || var.value.starts_with("Fn::"),
                "{}: {} must reference a parameter or an intrinsic, not a literal",
                f.name,
                var.name
            );
            let secretish = ["SECRET", "PASSWORD", "TOKEN", "PRIVATE", "KEY", "SK"];
            assert!(
                !var.name.split('_').any(|part| secretish.contains(&part)),
                "{}: {} looks like a secret; secrets belong in the secrets document",
                f.name,
                var.name
            );
        }
    }
}

#[test]
fn logical_ids_are_derived_from_the_function_names() {
    assert_eq!(functions::pascal_case("order-notify"), "OrderNotify");
    let saas = DEPLOYED.iter().find(|f| f.name == "saas").unwrap();
    assert_eq!(saas.logical_id(), "SaasFunction");
    assert_eq!(saas.log_group_id(), "SaasLogGroup");
}
