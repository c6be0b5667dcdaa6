//! The Lambda entry of the usage push: configuration and clients once per cold start; then a
//! push run per scheduled (EventBridge) event, stopping in time for the function's own timeout,
//! or the recording of usage for a direct invocation (see `handle_event`).

use std::time::{Duration, Instant};

use koogate_runtime::config::Config;
use koogate_runtime::routes::InterfaceType;
use koogate_runtime::App;
use koogate_usage_push::{PushOptions, Pusher};
use lambda_http::lambda_runtime::{self, service_fn, LambdaEvent};

/// Time kept back from the invocation deadline: one call with all its retries (4 attempts of
/// at most 10 s plus back-off) and its settlement must fit after the last claim.
const RESERVE: Duration = Duration::from_secs(60);

koogate_runtime::use_mimalloc!();

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    koogate_runtime::telemetry::init_logging();
    let config = Config::from_env("dynamodb")?;
    let app = App::build(config, &[InterfaceType::Basic]).await?;
    let pusher = Pusher::from_app(&app, PushOptions::default())?;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<serde_json::Value>| {
        let mut run = pusher.clone();
        async move {
            let now_ms = u64::try_from(koogate_runtime::pipeline::now_ms()).unwrap_or(0);
            let left = Duration::from_millis(event.context.deadline.saturating_sub(now_ms));
            run.options.deadline = Some(Instant::now() + left.saturating_sub(RESERVE));
            // An error answer counts in the function's Errors metric (UsagePushErrorsAlarm).
            koogate_usage_push::handle_event(&run, &event.payload)
                .await
                .map_err(lambda_runtime::Error::from)
        }
    }))
    .await
}
