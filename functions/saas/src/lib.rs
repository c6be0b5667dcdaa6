//! `POST /saas`: the SaaS V2 basic interface. The marketplace sends every lifecycle activity of a
//! product to this one URL; [`SaasFunction`] parses the verified body and dispatches on
//! `activity`. One module per activity group, each a plain async function of the verified call
//! and its typed request.

#![forbid(unsafe_code)]

pub mod answers;
mod change_check;
pub mod license_async;
pub mod lifecycle;
pub mod new_instance;
pub mod query_instance;

use async_trait::async_trait;
use koogate_protocol::request::{parse_basic, BasicRequest};
use koogate_runtime::routes::{self, Route};
use koogate_runtime::{Call, Failure, Function, Reply};
use lifecycle::{OrderRef, Target};

fn target<'a>(activity: &'static str, debug: bool, instance_id: &'a str) -> Target<'a> {
    Target {
        activity,
        debug,
        instance_id,
    }
}

/// A member of the (verified) body, for the event data the typed request does not keep.
fn body_member(body: &[u8], name: &str) -> Option<serde_json::Value> {
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()?
        .get(name)
        .cloned()
}

/// The amount and size members an upgrade body carried, for `instance.upgraded`.
pub fn size_fields(body: &[u8]) -> serde_json::Value {
    const NAMES: [&str; 5] = [
        "amount",
        "diskSize",
        "bandWidth",
        "linearValue",
        "periodNumber",
    ];
    let parsed: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    let picked: serde_json::Map<String, serde_json::Value> = NAMES
        .iter()
        .filter_map(|n| parsed.get(*n).map(|v| (n.to_string(), v.clone())))
        .collect();
    serde_json::Value::Object(picked)
}

/// The function behind `POST /saas`.
#[derive(Debug, Default, Clone, Copy)]
pub struct SaasFunction;

/// The route of this function in the route table.
pub fn route() -> &'static Route {
    &routes::SAAS
}

#[async_trait]
impl Function for SaasFunction {
    fn route(&self) -> &'static Route {
        route()
    }

    async fn handle(&self, call: &Call<'_>) -> Result<Reply, Failure> {
        let request = match parse_basic(call.body) {
            Ok(r) => r,
            Err(e) => {
                // The activity, when the body names a known one, for the log line and metric.
                if let Some(a) = koogate_protocol::activity::peek_activity(call.body)
                    .and_then(|a| koogate_protocol::activity::Activity::parse(&a))
                {
                    call.label(a.name(), false);
                }
                return Err(e.into());
            }
        };
        call.label(request.activity().name(), request.is_debug());
        match &request {
            BasicRequest::NewInstance(r) => new_instance::handle(call, r).await,
            BasicRequest::QueryInstance(r) => query_instance::handle(call, r).await,
            BasicRequest::RefreshInstance(r) => {
                let order = OrderRef {
                    order_id: &r.order_id,
                    order_line_id: &r.order_line_id,
                };
                let t = target("refreshInstance", r.test_flag, &r.instance_id);
                lifecycle::renew(
                    call,
                    t,
                    order,
                    r.scene.as_str(),
                    r.product_id.as_deref(),
                    &r.expire_time,
                    r.expire_time_ms,
                )
                .await
            }
            BasicRequest::UpdateInstanceStatus(r) => {
                lifecycle::set_status(
                    call,
                    target("updateInstanceStatus", r.test_flag, &r.instance_id),
                    r.status,
                )
                .await
            }
            BasicRequest::ReleaseInstance(r) => {
                let order = r.order_id.as_deref().map(|order_id| OrderRef {
                    order_id,
                    order_line_id: r.order_line_id.as_deref().unwrap_or(""),
                });
                let scene = body_member(call.body, "scene");
                lifecycle::release(
                    call,
                    target("releaseInstance", r.test_flag, &r.instance_id),
                    order,
                    scene.as_ref().and_then(|v| v.as_str()),
                )
                .await
            }
            BasicRequest::UpgradeInstance(r) => {
                let order = OrderRef {
                    order_id: &r.order_id,
                    order_line_id: &r.order_line_id,
                };
                lifecycle::upgrade(
                    call,
                    target("upgradeInstance", r.test_flag, &r.instance_id),
                    order,
                    size_fields(call.body),
                )
                .await
            }
            BasicRequest::ChangeInstanceCheck(r) => change_check::handle(call, r).await,
            BasicRequest::GetLicenseAsync(r) => license_async::handle(call, r).await,
        }
    }
}
