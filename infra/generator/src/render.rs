//! The per-function part of the template: each deployed function, its events and its log group.

use koogate_runtime::routes::Route;
use koogate_store::dynamodb_actions::ACTIONS_USED;

use crate::events::event_name;
use crate::functions::{Function, TableAccess};
use crate::yaml::{scalar, Out};

/// Writes every function of `functions` with the routes of `routes` it serves. Fails when a route
/// names a function that is not deployed, or when two names collide.
pub fn render_functions(
    out: &mut Out,
    functions: &[Function],
    routes: &[Route],
) -> Result<(), String> {
    check(functions, routes)?;
    for function in functions {
        let served: Vec<&Route> = routes
            .iter()
            .filter(|r| r.function == function.name)
            .collect();
        render_function(out, function, &served)?;
    }
    Ok(())
}

/// What generating relies on: every route's function is deployed, names are unique.
fn check(functions: &[Function], routes: &[Route]) -> Result<(), String> {
    for route in routes {
        if !functions.iter().any(|f| f.name == route.function) {
            return Err(format!(
                "route {} {} is served by function {:?}, which is not deployed: add it to \
                 DEPLOYED in infra/generator/src/functions.rs",
                route.method, route.path, route.function
            ));
        }
    }
    let mut ids = std::collections::BTreeSet::new();
    for function in functions {
        if function.name.is_empty() {
            return Err("a function in DEPLOYED has no name".into());
        }
        for id in [function.logical_id(), function.log_group_id()] {
            if !ids.insert(id.clone()) {
                return Err(format!("logical ID {id} ({}) is used twice", function.name));
            }
        }
    }
    Ok(())
}

fn render_function(out: &mut Out, f: &Function, routes: &[&Route]) -> Result<(), String> {
    out.comment(2, f.comment);
    out.line(2, &format!("{}:", f.logical_id()));
    out.line(4, "Type: AWS::Serverless::Function");
    out.line(4, "Metadata:");
    out.line(6, "BuildMethod: rust-cargolambda");
    out.line(6, "BuildProperties:");
    out.line(8, &format!("Binary: {}", f.name));
    out.line(4, "Properties:");
    out.line(6, &format!("Description: {}", scalar(f.description)));
    if let Some(s) = f.timeout_s {
        out.line(6, &format!("Timeout: {s}"));
    }
    if let Some(mb) = f.memory_mb {
        out.line(6, &format!("MemorySize: {mb}"));
    }
    if let Some(n) = f.reserved_concurrency {
        out.line(6, &format!("ReservedConcurrentExecutions: {n}"));
    }
    out.line(6, "LoggingConfig:");
    out.line(8, "LogGroup:");
    out.line(10, &format!("Ref: {}", f.log_group_id()));
    if !f.env.is_empty() {
        out.line(6, "Environment:");
        out.line(8, "Variables:");
        for var in f.env {
            if let Some(comment) = var.comment {
                out.comment(10, comment);
            }
            out.line(10, &format!("{}:", var.name));
            out.block(12, var.value);
        }
    }
    render_policies(out, f)?;
    render_events(out, f, routes)?;
    out.blank();
    render_log_group(out, f);
    Ok(())
}

/// The common statements (table items, the secrets document) and the function's own.
fn render_policies(out: &mut Out, f: &Function) -> Result<(), String> {
    let (actions, comment): (&[&str], &str) = match &f.table {
        TableAccess::Store => (
            ACTIONS_USED,
            "Exactly ACTIONS_USED of shared/store/src/dynamodb_actions.rs.",
        ),
        TableAccess::Subset { actions, comment } => {
            if let Some(extra) = actions.iter().find(|a| !ACTIONS_USED.contains(a)) {
                return Err(format!(
                    "function {}: {extra} is not in ACTIONS_USED \
                     (shared/store/src/dynamodb_actions.rs): the store never calls it",
                    f.name
                ));
            }
            (actions, comment)
        }
    };
    out.line(6, "Policies:");
    out.line(8, "- Version: \"2012-10-17\"");
    out.line(10, "Statement:");
    out.line(12, "- Sid: TableItems");
    out.line(14, "Effect: Allow");
    out.comment(14, comment);
    out.line(14, "Action:");
    for action in actions {
        out.line(16, &format!("- {action}"));
    }
    out.line(14, "Resource:");
    out.line(16, "Fn::GetAtt:");
    out.line(18, "- Table");
    out.line(18, "- Arn");
    out.line(12, "- Sid: ReadSecrets");
    out.line(14, "Effect: Allow");
    out.line(14, "Action:");
    out.line(16, "- secretsmanager:GetSecretValue");
    out.line(14, "Resource:");
    out.line(16, "Ref: Secrets");
    out.block(12, f.extra_statements);
    Ok(())
}

/// One HttpApi event per route, then the schedule if any.
fn render_events(out: &mut Out, f: &Function, routes: &[&Route]) -> Result<(), String> {
    if routes.is_empty() && f.schedule.is_none() {
        return Err(format!(
            "function {} has no route in the route table and no schedule: nothing would invoke it",
            f.name
        ));
    }
    out.line(6, "Events:");
    let mut names = std::collections::BTreeSet::new();
    for route in routes {
        let name = event_name(route);
        if !names.insert(name.clone()) {
            return Err(format!(
                "function {}: two routes have the event name {name}; name one in \
                 infra/generator/src/events.rs",
                f.name
            ));
        }
        out.line(8, &format!("{name}:"));
        out.line(10, "Type: HttpApi");
        out.line(10, "Properties:");
        out.line(12, "ApiId:");
        out.line(14, "Ref: HttpApi");
        out.line(
            12,
            &format!("Method: {}", route.method.to_ascii_uppercase()),
        );
        out.line(12, &format!("Path: {}", scalar(route.path)));
        // Payload 2.0 keeps rawQueryString, which signature verification needs.
        out.line(12, "PayloadFormatVersion: \"2.0\"");
    }
    if let Some(s) = &f.schedule {
        out.line(8, &format!("{}:", s.event));
        out.line(10, "Type: Schedule");
        out.line(10, "Properties:");
        out.line(12, &format!("Schedule: {}", s.rate));
        out.line(12, &format!("Description: {}", scalar(s.description)));
    }
    Ok(())
}

fn render_log_group(out: &mut Out, f: &Function) {
    out.line(2, &format!("{}:", f.log_group_id()));
    out.line(4, "Type: AWS::Logs::LogGroup");
    out.line(4, "DeletionPolicy: Delete");
    out.line(4, "UpdateReplacePolicy: Delete");
    out.line(4, "Properties:");
    out.line(6, "LogGroupName:");
    out.line(
        8,
        &format!("Fn::Sub: /aws/lambda/${{AWS::StackName}}/{}", f.name),
    );
    out.line(6, "RetentionInDays: 30");
    out.blank();
}
