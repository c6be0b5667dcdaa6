//! Operator commands: what koogate holds, on either store, for people (a table) and for scripts
//! (`--json`).
//!
//! * `koogate list instances [--state S] [--debug]`, `list orders`, `list notifications`,
//!   `list licenses`, `list tenants`, `list users --tenant ID`, `list usage [--failed|--pending]`;
//! * `koogate inspect instance ID`: the record, its applied orders, its events and its usage;
//! * `koogate inspect order ORDER_ID`: the instances the order created or changed, and the events
//!   that name it.
//!
//! DynamoDB is never scanned: the kinds are read through their index (see
//! `koogate_store::Store::list_ids`), then by key. Nothing printed holds a password, a phone
//! number or an e-mail address.

use std::sync::Arc;

use koogate_runtime::config::Config;
use koogate_runtime::App;
use koogate_store::directory::Directory;
use koogate_store::records::{LicenseCode, OrderNotification};
use koogate_store::{EventQuery, Instance, Listing, Partition, UsageStatus};
use serde_json::{json, Value};

/// Identifiers read per page.
const PAGE: usize = 500;

pub const LIST_EXAMPLES: &str = "Examples:
  koogate list instances --state frozen
  koogate list orders --json
  koogate list users --tenant 68cbc86abc2018ab880d92f36422fa0e
  koogate list usage --failed";

pub const INSPECT_EXAMPLES: &str = "Examples:
  koogate inspect instance 10e758d0-31ad-4c4b-8f1b-81d03469a10e
  koogate inspect order CS2211181819B4LVS
  koogate inspect instance demo-1 --debug";

/// What `koogate list` lists.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct ListArgs {
    /// instances, orders, notifications, licenses, tenants, users or usage
    #[arg(value_parser = ["instances", "orders", "notifications", "licenses", "tenants", "users", "usage"])]
    pub kind: String,
    /// Instances in this state only (provisioning, active, frozen, released, failed)
    #[arg(long, value_parser = ["provisioning", "active", "frozen", "released", "failed"])]
    pub state: Option<String>,
    /// The tenant whose users to list (list users)
    #[arg(long, value_name = "ID")]
    pub tenant: Option<String>,
    /// The debug partition (the console's test traffic) instead of production
    #[arg(long)]
    pub debug: bool,
    /// Usage records the marketplace refused (list usage)
    #[arg(long, conflicts_with = "pending")]
    pub failed: bool,
    /// Usage records not pushed yet (list usage)
    #[arg(long)]
    pub pending: bool,
    /// One JSON array instead of a table
    #[arg(long)]
    pub json: bool,
}

/// What `koogate inspect` shows.
#[derive(clap::Args, Debug, Clone)]
pub struct InspectArgs {
    /// instance or order
    #[arg(value_parser = ["instance", "order"])]
    pub what: String,
    /// The instanceId or the orderId
    pub id: String,
    /// The debug partition instead of production
    #[arg(long)]
    pub debug: bool,
}

async fn app() -> Result<Arc<App>, String> {
    let config = Config::from_env("sqlite:.koogate/koogate.db").map_err(|e| e.to_string())?;
    App::build(config, &[]).await.map_err(|e| e.to_string())
}

fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))
}

/// Every identifier of a kind, page by page.
async fn all_ids(app: &App, kind: Listing, partition: Partition) -> Result<Vec<String>, String> {
    let mut ids: Vec<String> = Vec::new();
    loop {
        let page = app
            .store
            .list_ids(kind, partition, ids.last().map(String::as_str), PAGE)
            .await
            .map_err(|e| e.to_string())?;
        let done = page.len() < PAGE;
        ids.extend(page);
        if done {
            return Ok(ids);
        }
    }
}

/// Every instance of a partition, 100 per batch read.
async fn instances(app: &App, partition: Partition) -> Result<Vec<Instance>, String> {
    let ids = all_ids(app, Listing::Instances, partition).await?;
    let mut out = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(100) {
        out.extend(
            app.store
                .get_instances(partition, chunk)
                .await
                .map_err(|e| e.to_string())?,
        );
    }
    out.sort_by(|a, b| a.instance_id.cmp(&b.instance_id));
    Ok(out)
}

fn instance_json(i: &Instance) -> Value {
    json!({
        "instanceId": i.instance_id,
        "state": i.state.as_str(),
        "debug": i.debug,
        "orderId": i.order_id,
        "orderLineId": i.order_line_id,
        "productId": i.product_id,
        "skuCode": i.sku_code,
        "chargingMode": i.charging_mode,
        "expireTime": i.expire_time,
        "frontEndUrl": i.app_info.as_ref().map(|a| a.front_end_url.clone()),
        "version": i.version,
        "createdAt": koogate_protocol::timestamp::format_rfc3339_ms(i.created_at_ms),
        "updatedAt": koogate_protocol::timestamp::format_rfc3339_ms(i.updated_at_ms),
    })
}

/// Prints `rows` as JSON (an array) or as a table of `columns`.
fn print(rows: &[Value], columns: &[&str], as_json: bool) {
    if as_json {
        println!("{}", Value::Array(rows.to_vec()));
        return;
    }
    let cell = |v: &Value| match v {
        Value::Null => "-".to_string(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let widths: Vec<usize> = columns
        .iter()
        .map(|c| {
            rows.iter()
                .map(|r| cell(&r[*c]).chars().count())
                .chain([c.len()])
                .max()
                .unwrap_or(0)
                .min(48)
        })
        .collect();
    let line = |cells: Vec<String>| {
        cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_string()
    };
    println!("{}", line(columns.iter().map(|c| c.to_string()).collect()));
    for r in rows {
        println!("{}", line(columns.iter().map(|c| cell(&r[*c])).collect()));
    }
}

pub fn list(args: &ListArgs) -> Result<(), String> {
    runtime()?.block_on(async {
        let app = app().await?;
        let partition = Partition::from_debug_flag(args.debug);
        match args.kind.as_str() {
            "instances" => {
                let rows: Vec<Value> = instances(&app, partition)
                    .await?
                    .iter()
                    .filter(|i| args.state.as_deref().is_none_or(|s| i.state.as_str() == s))
                    .map(instance_json)
                    .collect();
                let cols = ["instanceId", "state", "orderId", "productId", "expireTime", "version"];
                print(&rows, &cols, args.json);
            }
            "orders" => {
                let mut rows = Vec::new();
                for i in instances(&app, partition).await? {
                    for o in &i.orders {
                        rows.push(json!({
                            "orderId": o.order_id, "orderLineId": o.order_line_id,
                            "activity": o.activity, "instanceId": i.instance_id,
                            "scene": o.scene, "expireTime": o.expire_time,
                            "appliedAt": koogate_protocol::timestamp::format_rfc3339_ms(o.applied_at_ms),
                        }));
                    }
                }
                rows.sort_by(|a, b| a["appliedAt"].as_str().cmp(&b["appliedAt"].as_str()));
                let cols = ["appliedAt", "orderId", "orderLineId", "activity", "instanceId"];
                print(&rows, &cols, args.json);
            }
            "notifications" => {
                let mut rows = Vec::new();
                for id in all_ids(&app, Listing::Notifications, partition).await? {
                    let key = format!("{}{id}", Listing::Notifications.key_prefix(partition));
                    let Some(r) = app.store.get_record(&key).await.map_err(|e| e.to_string())? else {
                        continue;
                    };
                    let n: OrderNotification =
                        serde_json::from_str(&r.doc).map_err(|e| format!("{key}: {e}"))?;
                    rows.push(json!({
                        "orderId": n.order_id, "orderLineId": n.order_line_id,
                        "enrichment": n.enrichment,
                        "orderType": n.details.as_ref().and_then(|d| d.order_type.clone()),
                        "receivedAt": koogate_protocol::timestamp::format_rfc3339_ms(n.received_at_ms),
                    }));
                }
                let cols = ["receivedAt", "orderId", "orderLineId", "orderType", "enrichment"];
                print(&rows, &cols, args.json);
            }
            "licenses" => {
                let mut rows = Vec::new();
                for id in all_ids(&app, Listing::Licenses, partition).await? {
                    let key = format!("{}{id}", Listing::Licenses.key_prefix(partition));
                    let Some(r) = app.store.get_record(&key).await.map_err(|e| e.to_string())? else {
                        continue;
                    };
                    let c: LicenseCode =
                        serde_json::from_str(&r.doc).map_err(|e| format!("{key}: {e}"))?;
                    rows.push(json!({
                        "license": c.license, "state": c.state.as_str(),
                        "productId": c.product_id, "expireTime": c.expire_time,
                        "orders": c.orders.len(),
                    }));
                }
                print(&rows, &["license", "state", "productId", "expireTime", "orders"], args.json);
            }
            "tenants" => {
                let mut rows = Vec::new();
                for id in all_ids(&app, Listing::Tenants, partition).await? {
                    let dir = Directory::new(app.store.as_ref(), partition, &id);
                    if let Some(t) = dir.tenant().await.map_err(|e| e.to_string())? {
                        rows.push(json!({
                            "tenantId": t.tenant_id, "tenantCode": t.tenant_code, "name": t.name,
                            "domainName": t.domain_name, "instanceId": t.instance_id,
                            "deleted": t.deleted,
                        }));
                    }
                }
                let cols = ["tenantId", "tenantCode", "name", "domainName", "instanceId", "deleted"];
                print(&rows, &cols, args.json);
            }
            "users" => {
                let tenant = args.tenant.as_deref().ok_or("list users needs --tenant ID")?;
                let dir = Directory::new(app.store.as_ref(), partition, tenant);
                let rows: Vec<Value> = dir
                    .users()
                    .await
                    .map_err(|e| e.to_string())?
                    .iter()
                    .map(|u| {
                        json!({"userName": u.user_name, "name": u.name, "orgCode": u.org_code,
                               "role": u.role, "enabled": u.enable})
                    })
                    .collect();
                print(&rows, &["userName", "name", "orgCode", "role", "enabled"], args.json);
            }
            "usage" => {
                let mut rows = Vec::new();
                for i in instances(&app, Partition::Production).await? {
                    for r in app
                        .store
                        .instance_usage(&i.instance_id)
                        .await
                        .map_err(|e| e.to_string())?
                    {
                        let keep = match (args.failed, args.pending) {
                            (true, _) => r.status == UsageStatus::Failed,
                            (_, true) => r.status == UsageStatus::Pending,
                            _ => true,
                        };
                        if keep {
                            rows.push(json!({
                                "instanceId": r.data.instance_id, "beginTime": r.data.begin_time,
                                "endTime": r.data.end_time, "value": r.data.usage_value,
                                "status": r.status.as_str(), "attempts": r.attempts,
                                "failure": r.failure, "meteringSn": r.data.metering_sn,
                            }));
                        }
                    }
                }
                let cols = ["instanceId", "beginTime", "endTime", "value", "status", "attempts", "failure"];
                print(&rows, &cols, args.json);
            }
            other => {
                return Err(format!(
                    "unknown kind {other:?}: instances, orders, notifications, licenses, tenants, users, usage"
                ))
            }
        }
        Ok(())
    })
}

fn events_of(events: &[koogate_store::EventRecord]) -> Vec<Value> {
    events
        .iter()
        .map(|e| {
            json!({
                "id": e.id, "type": e.event_type, "state": e.state.as_str(),
                "attempts": e.attempts, "lastError": e.last_error,
                "createdAt": koogate_protocol::timestamp::format_rfc3339_ms(e.created_at_ms),
                "data": serde_json::from_str::<Value>(&e.body).ok().and_then(|b| b.get("data").cloned()),
            })
        })
        .collect()
}

/// `koogate inspect instance ID` / `koogate inspect order ORDER_ID`: one JSON document.
pub fn inspect(args: &InspectArgs) -> Result<(), String> {
    let (what, id, debug) = (args.what.as_str(), args.id.as_str(), args.debug);
    runtime()?.block_on(async {
        let app = app().await?;
        let partition = Partition::from_debug_flag(debug);
        let doc = match what {
            "instance" => {
                let i = app
                    .store
                    .get_instance(partition, id)
                    .await
                    .map_err(|e| e.to_string())?
                    .ok_or_else(|| format!("no instance {id} (debug traffic: add --debug)"))?;
                let events = app
                    .store
                    .list_events(&EventQuery {
                        instance_id: Some(id.to_string()),
                        ..Default::default()
                    })
                    .await
                    .map_err(|e| e.to_string())?;
                let usage = app
                    .store
                    .instance_usage(id)
                    .await
                    .map_err(|e| e.to_string())?;
                let mut doc = instance_json(&i);
                doc["orders"] = serde_json::to_value(&i.orders).unwrap_or_default();
                doc["failure"] = json!(i.failure);
                doc["orderDetails"] = serde_json::to_value(&i.order_details).unwrap_or_default();
                doc["events"] = Value::Array(events_of(&events));
                doc["usage"] = Value::Array(
                    usage
                        .iter()
                        .map(|r| {
                            json!({"beginTime": r.data.begin_time, "endTime": r.data.end_time,
                                        "value": r.data.usage_value, "status": r.status.as_str(),
                                        "failure": r.failure})
                        })
                        .collect(),
                );
                doc
            }
            "order" => {
                let touched: Vec<Value> = instances(&app, partition)
                    .await?
                    .iter()
                    .filter(|i| i.order_id == id || i.orders.iter().any(|o| o.order_id == id))
                    .map(|i| {
                        let mut v = instance_json(i);
                        v["applied"] = serde_json::to_value(
                            i.orders
                                .iter()
                                .filter(|o| o.order_id == id)
                                .collect::<Vec<_>>(),
                        )
                        .unwrap_or_default();
                        v
                    })
                    .collect();
                let events: Vec<Value> = events_of(
                    &app.store
                        .list_events(&EventQuery::default())
                        .await
                        .map_err(|e| e.to_string())?,
                )
                .into_iter()
                .filter(|e| e["data"]["orderId"] == id)
                .collect();
                if touched.is_empty() && events.is_empty() {
                    return Err(format!("no instance or event names order {id}"));
                }
                json!({"orderId": id, "instances": touched, "events": events})
            }
            other => return Err(format!("inspect what? {other:?}: instance or order")),
        };
        println!(
            "{}",
            serde_json::to_string_pretty(&doc).map_err(|e| e.to_string())?
        );
        Ok(())
    })
}
