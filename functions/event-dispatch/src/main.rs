//! The Lambda entry of `event-dispatch`: the app once per cold start, then one sweep per
//! invocation (stream batch or schedule).

use std::sync::Arc;

use koogate_runtime::config::Config;
use koogate_runtime::{telemetry, App};
use lambda_http::lambda_runtime::{self, service_fn, LambdaEvent};

koogate_runtime::use_mimalloc!();

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    telemetry::init_logging();
    let app: Arc<App> = App::build(Config::from_env("dynamodb")?, &[]).await?;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<serde_json::Value>| {
        let app = Arc::clone(&app);
        async move {
            koogate_event_dispatch::handle(&app, &event.payload)
                .await
                .map(|r| serde_json::json!({"delivered": r.delivered, "retried": r.retried, "failed": r.failed}))
                .map_err(lambda_runtime::Error::from)
        }
    }))
    .await
}
