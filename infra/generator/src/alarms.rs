//! The alarms on `AWS/Lambda` `Errors`: crashes, timeouts and init failures, which write no
//! metric line of koogate's own.
//!
//! koogate's own metrics have an aggregate dimension set (`emf_line`'s `[]`), so `FailedAlarm`
//! (in the skeleton) reads one metric for every function. Lambda's metrics have none that selects
//! this stack's functions: its dimensionless aggregate counts every function of the account and
//! Region, and a Metrics Insights query alarm cannot pick a set of functions, because its `WHERE`
//! supports only `=`, `!=` and `AND` (no `OR`, `IN` or `LIKE`), and a filter on a resource tag
//! needs the account-wide "resource tags for telemetry" setting, which the stack cannot count on.
//! So these alarms add up one metric per function with metric math, generated from
//! [`crate::functions::DEPLOYED`] so that no function is forgotten; CloudWatch takes at most 10
//! metrics per alarm (a hard limit), hence more than one alarm.

use crate::functions::Function;
use crate::yaml::{folded, Out};

/// CloudWatch's hard limit on the metrics one metric-math alarm reads.
pub const MAX_METRICS_PER_ALARM: usize = 10;

/// One alarm on the `Errors` of the functions that name it.
#[derive(Debug)]
pub struct ErrorsAlarm {
    pub logical_id: &'static str,
    /// Comment lines above it, without the `# `.
    pub comment: &'static str,
    /// The label of the summed series.
    pub label: &'static str,
    /// What firing means, in prose; the generator appends the functions it watches.
    pub description: &'static str,
    pub period_s: u32,
}

/// The marketplace interfaces, the login, the Product API and the dispatcher.
pub const ERRORS: ErrorsAlarm = ErrorsAlarm {
    logical_id: "ErrorsAlarm",
    comment: "\
AWS/Lambda Errors: crashes, timeouts and init failures, which write no metric
line of koogate's own. Unlike FailedAlarm these cannot read one aggregate:
Lambda has no dimension that selects this stack's functions, and a Metrics
Insights query alarm cannot pick them (its WHERE has only =, != and AND; a
tag filter needs the account-wide resource tags for telemetry setting). So
each alarm adds up one metric per function, generated from
infra/generator/src/functions.rs so that every function is in one; an alarm
reads at most 10 metrics (a hard limit), hence ErrorsAlarm, KitErrorsAlarm
and UsagePushErrorsAlarm.",
    label: "Errors, summed",
    description: "Lambda invocation errors of a koogate function (panic, timeout, init \
failure): for a marketplace interface the marketplace saw no valid answer within 5 s; for sso \
a buyer's login failed; for product-api the ISV's product got no answer; for event-dispatch a \
delivery run failed (events stay open and are retried). AWS/Lambda Errors by FunctionName tells \
which function.",
    period_s: 300,
};

/// The joint-operation kit functions.
pub const KIT_ERRORS: ErrorsAlarm = ErrorsAlarm {
    logical_id: "KitErrorsAlarm",
    comment: "",
    label: "Errors, kit functions, summed",
    description: "A joint-operation kit function crashed, timed out or failed to start (Lambda \
Errors): the buyer's directory did not reach the merchant.",
    period_s: 300,
};

/// The scheduled usage push: its own period, as it runs every 5 minutes.
pub const USAGE_PUSH_ERRORS: ErrorsAlarm = ErrorsAlarm {
    logical_id: "UsagePushErrorsAlarm",
    comment: "The usage push failing (crash or timeout) means usage is not billed on time.",
    label: "Errors, usage push",
    description: "The scheduled usage push failed (Lambda error or timeout): records were \
refused for good, a configuration error (wrong key, signature, credentials) stopped it, or the \
store failed; its answer and log say which. Pending usage stays stored and is pushed by a later \
run; hourly records are late after 2 hours, and records older than 21 days can no longer be \
pushed.",
    period_s: 900,
};

/// Every Lambda-errors alarm, in the order of the template.
pub const ALL: &[&ErrorsAlarm] = &[&ERRORS, &KIT_ERRORS, &USAGE_PUSH_ERRORS];

/// Writes every alarm of [`ALL`] on the functions that name it.
pub fn render(out: &mut Out, functions: &[Function]) -> Result<(), String> {
    for function in functions {
        if !ALL
            .iter()
            .any(|a| a.logical_id == function.errors_alarm.logical_id)
        {
            return Err(format!(
                "function {}: errors alarm {} is not in alarms::ALL",
                function.name, function.errors_alarm.logical_id
            ));
        }
    }
    for alarm in ALL {
        let watched: Vec<&Function> = functions
            .iter()
            .filter(|f| f.errors_alarm.logical_id == alarm.logical_id)
            .collect();
        match watched.len() {
            0 => {
                return Err(format!(
                    "{} watches no function: remove it from alarms::ALL",
                    alarm.logical_id
                ))
            }
            n if n > MAX_METRICS_PER_ALARM => {
                return Err(format!(
                    "{} would read {n} metrics; CloudWatch allows at most {MAX_METRICS_PER_ALARM} \
                     per alarm: give some of its functions another errors_alarm in \
                     infra/generator/src/functions.rs",
                    alarm.logical_id
                ))
            }
            _ => render_one(out, alarm, &watched),
        }
    }
    Ok(())
}

/// `AWS/Lambda` `Errors` of one function, its keys at `indent`: read directly by a one-function
/// alarm, or as one `MetricStat` of a metric-math alarm.
fn errors_metric(out: &mut Out, indent: usize, function: &Function) {
    out.line(indent, "Namespace: AWS/Lambda");
    out.line(indent, "MetricName: Errors");
    out.line(indent, "Dimensions:");
    out.line(indent + 2, "- Name: FunctionName");
    out.line(indent + 4, "Value:");
    out.line(indent + 6, &format!("Ref: {}", function.logical_id()));
}

fn render_one(out: &mut Out, alarm: &ErrorsAlarm, watched: &[&Function]) {
    out.comment(2, alarm.comment);
    out.line(2, &format!("{}:", alarm.logical_id));
    out.line(4, "Type: AWS::CloudWatch::Alarm");
    out.line(4, "Properties:");
    out.line(6, "AlarmDescription: >-");
    let names: Vec<&str> = watched.iter().map(|f| f.name).collect();
    let description = format!("{} Watched: {}.", alarm.description, names.join(", "));
    for line in folded(&description, 80 - 8) {
        out.line(8, &line);
    }
    if let [function] = watched {
        // One function: the alarm reads its metric directly.
        errors_metric(out, 6, function);
        out.line(6, "Statistic: Sum");
        out.line(6, &format!("Period: {}", alarm.period_s));
    } else {
        out.line(6, "Metrics:");
        out.line(8, "- Id: errors");
        out.line(10, &format!("Label: {}", alarm.label));
        out.line(10, "Expression: SUM(FILL(METRICS(), 0))");
        out.line(10, "ReturnData: true");
        for function in watched {
            out.line(8, &format!("- Id: {}", function.name.replace('-', "_")));
            out.line(10, &format!("Label: {}", function.name));
            out.line(10, "ReturnData: false");
            out.line(10, "MetricStat:");
            out.line(12, "Metric:");
            errors_metric(out, 14, function);
            out.line(12, &format!("Period: {}", alarm.period_s));
            out.line(12, "Stat: Sum");
        }
    }
    out.line(6, "EvaluationPeriods: 1");
    out.line(6, "Threshold: 1");
    out.line(6, "ComparisonOperator: GreaterThanOrEqualToThreshold");
    out.line(6, "TreatMissingData: notBreaching");
    out.line(6, "AlarmActions:");
    out.line(8, "Fn::If:");
    out.line(10, "- HasAlarmEmail");
    out.line(10, "- - Ref: AlarmTopic");
    out.line(10, "- Ref: AWS::NoValue");
    out.blank();
}
