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
use koogate_protocol::request::{parse_basic_refusing, BasicRequest};
use koogate_runtime::routes::{AuthScheme, InterfaceType, Route};
use koogate_runtime::trace_ids::TraceIds;
use koogate_runtime::{Call, Failure, Function, Reply};
use lifecycle::{OrderRef, Target};

fn target<'a>(activity: &'static str, debug: bool, instance_id: &'a str) -> Target<'a> {
    Target {
        activity,
        debug,
        instance_id,
    }
}

/// `POST /saas`.
pub const ROUTE: Route = Route {
    method: "POST",
    path: "/saas",
    function: "saas",
    interface: InterfaceType::Basic,
    scheme: AuthScheme::UrlSignature,
};

/// The routes this crate declares: [`ROUTE`].
pub const ROUTES: &[Route] = &[ROUTE];

/// The identifiers a request names, for its log line.
fn trace_ids(request: &BasicRequest) -> TraceIds {
    let order = |order_id: &str, line: &str| TraceIds {
        order_id: Some(order_id.to_string()),
        order_line_id: Some(line.to_string()),
        ..TraceIds::default()
    };
    let (mut ids, instance_id) = match request {
        BasicRequest::NewInstance(r) => (
            TraceIds {
                business_id: r.business_id.clone(),
                ..order(&r.order_id, &r.order_line_id)
            },
            None,
        ),
        BasicRequest::QueryInstance(r) => (TraceIds::default(), Some(r.instance_ids.join(","))),
        BasicRequest::RefreshInstance(r) => (
            order(&r.order_id, &r.order_line_id),
            Some(r.instance_id.clone()),
        ),
        BasicRequest::UpgradeInstance(r) => (
            order(&r.order_id, &r.order_line_id),
            Some(r.instance_id.clone()),
        ),
        BasicRequest::ReleaseInstance(r) => (
            TraceIds {
                order_id: r.order_id.clone(),
                order_line_id: r.order_line_id.clone(),
                ..TraceIds::default()
            },
            Some(r.instance_id.clone()),
        ),
        BasicRequest::GetLicenseAsync(r) => (
            TraceIds {
                event_id: Some(r.event_id.clone()),
                ..TraceIds::default()
            },
            Some(r.instance_id.clone()),
        ),
        BasicRequest::UpdateInstanceStatus(r) => (TraceIds::default(), Some(r.instance_id.clone())),
        BasicRequest::ChangeInstanceCheck(r) => (TraceIds::default(), Some(r.instance_id.clone())),
    };
    ids.instance_id = instance_id;
    ids
}

/// The function behind `POST /saas`.
#[derive(Debug, Default, Clone, Copy)]
pub struct SaasFunction;

/// The route of this function in the route table.
pub fn route() -> &'static Route {
    &ROUTE
}

#[async_trait]
impl Function for SaasFunction {
    fn route(&self) -> &'static Route {
        route()
    }

    /// newInstance and getLicenseAsync take the replay guard with their idempotency lock (on
    /// SQLite the nonce then commits in the lock's transaction); every other activity takes it
    /// before anything else.
    fn guards_replay(&self) -> bool {
        true
    }

    async fn handle(&self, call: &Call<'_>) -> Result<Reply, Failure> {
        let request = parse_basic_refusing(call.body).map_err(|refusal| {
            // The activity, when the body names a known one, for the log line and metric.
            if let Some(a) = refusal.activity {
                call.label(a.name(), false);
            }
            Failure::from(refusal.error)
        })?;
        call.label(request.activity().name(), request.is_debug());
        call.trace(trace_ids(&request));
        if !matches!(
            request,
            BasicRequest::NewInstance(_) | BasicRequest::GetLicenseAsync(_)
        ) {
            call.guard_replay().await?;
        }
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
                lifecycle::release(
                    call,
                    target("releaseInstance", r.test_flag, &r.instance_id),
                    order,
                    r.scene.as_deref(),
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
                    &r.sizes,
                )
                .await
            }
            BasicRequest::ChangeInstanceCheck(r) => change_check::handle(call, r).await,
            BasicRequest::GetLicenseAsync(r) => license_async::handle(call, r).await,
        }
    }
}
