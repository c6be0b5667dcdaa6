//! `POST /saas`: the SaaS V2 basic interface. The marketplace sends every lifecycle activity of a
//! product to this one URL; [`SaasFunction`] parses the verified body and dispatches on
//! `activity`. One module per activity group, each a plain async function of the verified call
//! and its typed request.

#![forbid(unsafe_code)]

mod answers;
mod change_check;
mod license_async;
mod lifecycle;
mod new_instance;
mod query_instance;

use async_trait::async_trait;
use koogate_protocol::envelope::Answer;
use koogate_protocol::request::{parse_basic, BasicRequest};
use koogate_runtime::routes::{self, Route};
use koogate_runtime::{Call, Function, Outcome};

/// The function behind `POST /saas`.
#[derive(Debug, Default, Clone, Copy)]
pub struct SaasFunction;

/// The route of this function in the route table.
pub fn route() -> &'static Route {
    routes::find("POST", "/saas").unwrap_or(&routes::ROUTES[0])
}

#[async_trait]
impl Function for SaasFunction {
    fn route(&self) -> &'static Route {
        route()
    }

    async fn handle(&self, call: &Call<'_>) -> Outcome {
        let request = match parse_basic(call.body) {
            Ok(r) => r,
            Err(e) => {
                let activity = koogate_protocol::activity::peek_activity(call.body)
                    .and_then(|a| koogate_protocol::activity::Activity::parse(&a))
                    .map(|a| a.name());
                return Outcome::answer(
                    Answer::error(e.result_code(), e.to_string()),
                    activity,
                    false,
                )
                .because(e.to_string());
            }
        };
        match &request {
            BasicRequest::NewInstance(r) => new_instance::handle(call, r).await,
            BasicRequest::QueryInstance(r) => query_instance::handle(call, r).await,
            BasicRequest::RefreshInstance(r) => lifecycle::refresh(call, r).await,
            BasicRequest::UpdateInstanceStatus(r) => lifecycle::update_status(call, r).await,
            BasicRequest::ReleaseInstance(r) => lifecycle::release(call, r).await,
            BasicRequest::UpgradeInstance(r) => lifecycle::upgrade(call, r).await,
            BasicRequest::ChangeInstanceCheck(r) => change_check::handle(call, r).await,
            BasicRequest::GetLicenseAsync(r) => license_async::handle(call, r).await,
        }
    }
}
