//! One JSON log line and one CloudWatch embedded-metric-format (EMF) line per request.
//!
//! The log line carries identifiers and outcomes only: never a body, a query string, a header, a
//! key, a credential, a phone number or an e-mail address. Those are simply not passed in.

use std::io::Write;

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// Installs the JSON log formatter once (stderr). `RUST_LOG` filters by level and target
/// (`warn`, `koogate_runtime=debug,info`); unset or unparsable, the level is `info`.
pub fn init_logging() {
    let _ = tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_current_span(false)
        .with_span_list(false)
        .with_writer(std::io::stderr)
        .finish()
        .with(log_filter(std::env::var("RUST_LOG").ok().as_deref()))
        .try_init();
}

/// The filter `RUST_LOG` asks for: `target=level` pairs and a bare default level, comma-separated.
/// A value that does not parse falls back to `info` rather than silencing the log.
fn log_filter(spec: Option<&str>) -> tracing_subscriber::filter::Targets {
    use tracing_subscriber::filter::{LevelFilter, Targets};
    spec.filter(|s| !s.trim().is_empty())
        .and_then(|s| s.parse::<Targets>().ok())
        .unwrap_or_else(|| Targets::new().with_default(LevelFilter::INFO))
}

/// What is known about one request when it is answered.
#[derive(Debug, Clone)]
pub struct RequestRecord<'a> {
    pub function: &'static str,
    pub route: &'static str,
    pub activity: Option<&'static str>,
    pub result_code: &'a str,
    pub debug: bool,
    pub request_id: &'a str,
    pub latency_us: u64,
    /// Which key verified the request (0 current, 1 previous), if any did.
    pub key_index: Option<usize>,
    /// Why the answer is not a success, in words safe to log.
    pub reason: Option<&'a str>,
    /// The business identifiers the request concerns.
    pub ids: &'a crate::trace_ids::TraceIds,
}

/// Whether a request failed, for the `Failed` metric: any result code but `000000`; on a browser
/// route, whose "code" is the HTTP status, a `5xx`.
pub fn failed(result_code: &str) -> bool {
    match result_code.len() {
        3 => result_code.starts_with('5'),
        _ => result_code != "000000",
    }
}

/// Writes the log line: INFO, WARN for a refused signature or replay (`000001`), ERROR for an
/// internal failure such as storage (`000005`, or a browser route's `5xx`), each with its reason.
pub fn log_request(r: &RequestRecord<'_>) {
    macro_rules! line {
        ($level:ident, $message:literal) => {
            tracing::$level!(
                target: "koogate::request",
                function = r.function,
                route = r.route,
                activity = r.activity.unwrap_or("-"),
                result_code = r.result_code,
                debug = r.debug,
                request_id = r.request_id,
                latency_us = r.latency_us,
                key_index = r.key_index.map(|k| k as i64).unwrap_or(-1),
                reason = r.reason.unwrap_or(""),
                order_id = r.ids.order_id.as_deref(),
                order_line_id = r.ids.order_line_id.as_deref(),
                instance_id = r.ids.instance_id.as_deref(),
                business_id = r.ids.business_id.as_deref(),
                tenant_id = r.ids.tenant_id.as_deref(),
                event_id = r.ids.event_id.as_deref(),
                $message
            )
        };
    }
    match r.result_code {
        "000001" => line!(warn, "refused"),
        "000005" => line!(error, "failed"),
        code if code.len() == 3 && failed(code) => line!(error, "failed"),
        _ => line!(info, "answered"),
    }
}

/// The EMF line for a request: namespace `Koogate`, metrics `Requests`, `Failed` and `Latency`.
///
/// Three dimension sets, each a metric of its own in CloudWatch: `[]`, the aggregate over every
/// function (the EMF specification: "A DimensionSet MAY be empty"), which infra/template.yaml's
/// `FailedAlarm` reads so that one metric covers every function, present and future; `[Function]`
/// and `[Function, Activity, ResultCode]`, which tell which function and activity failed.
pub fn emf_line(r: &RequestRecord<'_>, timestamp_ms: i64) -> String {
    let failed = u8::from(failed(r.result_code));
    serde_json::json!({
        "_aws": {
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": "Koogate",
                "Dimensions": [[], ["Function"], ["Function", "Activity", "ResultCode"]],
                "Metrics": [
                    {"Name": "Requests", "Unit": "Count"},
                    {"Name": "Failed", "Unit": "Count"},
                    {"Name": "Latency", "Unit": "Microseconds"}
                ]
            }]
        },
        "Function": r.function,
        "Activity": r.activity.unwrap_or("-"),
        "ResultCode": r.result_code,
        "Requests": 1,
        "Failed": failed,
        "Latency": r.latency_us,
    })
    .to_string()
}

/// Writes the EMF line to stdout (CloudWatch Logs turns it into metrics).
pub fn emit_metric(r: &RequestRecord<'_>, timestamp_ms: i64) {
    emit_line(&emf_line(r, timestamp_ms));
}

/// Writes one EMF line to stdout.
pub fn emit_line(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
}

/// The outcome of one usage push run, as metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UsagePushMetrics {
    /// Records the marketplace accepted in this run.
    pub pushed: u64,
    /// Records refused for good in this run (they need correcting or re-sending).
    pub failed: u64,
    /// Due records still pending after the run.
    pub pending: u64,
    /// Age of the oldest due pending record (now minus its interval end), seconds; 0 if none.
    pub oldest_due_age_s: u64,
    /// 1 when a configuration error (key, signature, credentials) stopped the run.
    pub config_errors: u64,
}

/// The EMF line of a usage push run: namespace `Koogate`, dimension `Function` (`usage-push`
/// for the scheduled function and `koogate usage push` alike), metrics `UsagePushed`,
/// `UsageFailed`, `UsagePending`, `UsageOldestDueAge` (seconds) and `UsageConfigErrors`; the
/// alarms of infra/template.yaml read `UsageFailed` and `UsageOldestDueAge`.
pub fn usage_push_emf_line(function: &str, m: &UsagePushMetrics, timestamp_ms: i64) -> String {
    serde_json::json!({
        "_aws": {
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": "Koogate",
                "Dimensions": [["Function"]],
                "Metrics": [
                    {"Name": "UsagePushed", "Unit": "Count"},
                    {"Name": "UsageFailed", "Unit": "Count"},
                    {"Name": "UsagePending", "Unit": "Count"},
                    {"Name": "UsageOldestDueAge", "Unit": "Seconds"},
                    {"Name": "UsageConfigErrors", "Unit": "Count"}
                ]
            }]
        },
        "Function": function,
        "UsagePushed": m.pushed,
        "UsageFailed": m.failed,
        "UsagePending": m.pending,
        "UsageOldestDueAge": m.oldest_due_age_s,
        "UsageConfigErrors": m.config_errors,
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emf_line_counts_a_failure() {
        let ids = crate::trace_ids::TraceIds::default();
        let r = RequestRecord {
            function: "saas",
            route: "POST /saas",
            activity: Some("newInstance"),
            result_code: "000005",
            debug: false,
            request_id: "r1",
            latency_us: 42,
            key_index: Some(0),
            reason: None,
            ids: &ids,
        };
        let v: serde_json::Value = serde_json::from_str(&emf_line(&r, 1)).unwrap();
        assert_eq!(v["Failed"], 1);
        assert_eq!(v["Function"], "saas");
        assert_eq!(v["_aws"]["CloudWatchMetrics"][0]["Namespace"], "Koogate");
        let ok = RequestRecord {
            result_code: "000000",
            ..r
        };
        let v: serde_json::Value = serde_json::from_str(&emf_line(&ok, 1)).unwrap();
        assert_eq!(v["Failed"], 0);
    }

    #[test]
    fn emf_line_has_an_aggregate_dimension_set_over_every_function() {
        let ids = crate::trace_ids::TraceIds::default();
        let r = RequestRecord {
            function: "tenant-sync",
            route: "POST /saas/produceAPI/v2/tenantSync",
            activity: None,
            result_code: "000000",
            debug: false,
            request_id: "r1",
            latency_us: 7,
            key_index: None,
            reason: None,
            ids: &ids,
        };
        let v: serde_json::Value = serde_json::from_str(&emf_line(&r, 1)).unwrap();
        let sets = &v["_aws"]["CloudWatchMetrics"][0]["Dimensions"];
        assert_eq!(
            *sets,
            serde_json::json!([[], ["Function"], ["Function", "Activity", "ResultCode"]]),
            "the empty set is the one FailedAlarm reads"
        );
        // Every dimension key named by a set is a member of the line (a target member).
        for key in sets
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|s| s.as_array().unwrap())
        {
            assert!(
                v[key.as_str().unwrap()].is_string(),
                "{key} is not a string member"
            );
        }
    }

    #[test]
    fn rust_log_sets_levels_per_target_and_falls_back_to_info() {
        use tracing::Level;
        let f = log_filter(Some("koogate_runtime=debug,warn"));
        assert!(f.would_enable("koogate_runtime::pipeline", &Level::DEBUG));
        assert!(!f.would_enable("hyper", &Level::INFO));
        assert!(f.would_enable("hyper", &Level::WARN));
        for unset in [None, Some(""), Some("koogate=loud")] {
            let f = log_filter(unset);
            assert!(f.would_enable("any", &Level::INFO), "{unset:?}");
            assert!(!f.would_enable("any", &Level::DEBUG), "{unset:?}");
        }
    }

    #[test]
    fn a_browser_route_fails_on_5xx_only() {
        assert!(!failed("000000"));
        assert!(failed("000001") && failed("000005"));
        assert!(!failed("200") && !failed("302") && !failed("400"));
        assert!(failed("500") && failed("503"));
    }
}
