//! A Rust ISV's own `saas` Lambda function: koogate's handlers, the ISV's provisioner and an
//! extra event sink, put together with the same builder every koogate main uses.
//!
//! Built by `cargo test` (examples are compiled with the test suite); the provisioner and sink
//! below are exercised by `tests/tests/extension.rs`.

use std::sync::Arc;

use async_trait::async_trait;
use koogate_protocol::request::TargetProduct;
use koogate_runtime::config::Config;
use koogate_runtime::isv::dispatch::{EventSink, SinkError};
use koogate_runtime::provisioner::{ProvisionError, ProvisionRequest, Provisioned, Provisioner};
use koogate_runtime::routes::InterfaceType;
use koogate_runtime::App;
use koogate_store::{AppInfo, EventRecord, Instance};

/// Creates the buyer's tenant in the ISV's own system.
pub struct MyProvisioner;

#[async_trait]
impl Provisioner for MyProvisioner {
    async fn provision(&self, req: &ProvisionRequest<'_>) -> Result<Provisioned, ProvisionError> {
        // Call your own service here; it must be idempotent per instanceId.
        Ok(Provisioned::Ready(AppInfo {
            front_end_url: format!("https://my.example.com/t/{}", req.instance_id),
            ..Default::default()
        }))
    }

    async fn check_change(&self, _: &Instance, _: &TargetProduct) -> Result<(), String> {
        Ok(())
    }

    fn demo_app_info(&self, instance_id: &str) -> AppInfo {
        AppInfo {
            front_end_url: format!("https://my.example.com/demo/{instance_id}"),
            ..Default::default()
        }
    }
}

/// Logs every event (a queue or a database would go here).
pub struct LogSink;

#[async_trait]
impl EventSink for LogSink {
    fn name(&self) -> String {
        "log".into()
    }

    async fn deliver(&self, event: &EventRecord) -> Result<String, SinkError> {
        println!("{} {}", event.id, event.event_type);
        Ok("logged".into())
    }
}

#[tokio::main]
async fn main() -> Result<(), lambda_http::lambda_runtime::Error> {
    let app = App::builder(Config::from_env("dynamodb")?)
        .serves(&[InterfaceType::Basic])
        .provisioner(Arc::new(MyProvisioner))
        .sink(Arc::new(LogSink))
        .build()
        .await?;
    koogate_runtime::lambda::run_app(app, vec![Arc::new(koogate_saas::SaasFunction)]).await
}
