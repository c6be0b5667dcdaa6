//! The Rust extension point: an `App` built with the caller's provisioner and event sink (the
//! parts of `tests/examples/custom_provisioner.rs`) answers with that provisioner's `appInfo` and
//! delivers its events to that sink.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use koogate_runtime::isv::dispatch::{EventSink, SinkError};
use koogate_runtime::routes::InterfaceType;
use koogate_runtime::secrets::Secrets;
use koogate_runtime::App;
use koogate_store::EventRecord;
use koogate_tests::{config, post, KEY};

#[allow(dead_code)]
#[path = "../examples/custom_provisioner.rs"]
mod example;

/// Keeps what it is given.
#[derive(Default)]
struct Recorder(Mutex<Vec<EventRecord>>);

#[async_trait]
impl EventSink for Recorder {
    fn name(&self) -> String {
        "recorder".into()
    }
    async fn deliver(&self, event: &EventRecord) -> Result<String, SinkError> {
        self.0.lock().unwrap().push(event.clone());
        Ok("kept".into())
    }
}

#[tokio::test]
async fn a_built_app_uses_the_callers_provisioner_and_sinks() {
    let recorder = Arc::new(Recorder::default());
    let app = App::builder(config(&[]))
        .serves(&[InterfaceType::Basic])
        .secrets(Secrets::with_keys(&[(InterfaceType::Basic, &[KEY])]))
        .store(Arc::new(
            koogate_store::sqlite::SqliteStore::in_memory().unwrap(),
        ))
        .provisioner(Arc::new(example::MyProvisioner))
        .sink(Arc::new(example::LogSink))
        .sink(recorder.clone())
        .build()
        .await
        .unwrap();
    let body = r#"{"activity":"newInstance","businessId":"ext-1","orderId":"CSEXT1","orderLineId":"CSEXT1-1","testFlag":"0"}"#;
    assert_eq!(post(&app, body).await.code(), "000000");
    let report = app.dispatcher.sweep().await.unwrap();
    assert_eq!(report.delivered, 1, "{report:?}");
    let events = recorder.0.lock().unwrap().clone();
    assert_eq!(events.len(), 1);
    let body: serde_json::Value = serde_json::from_str(&events[0].body).unwrap();
    assert_eq!(body["type"], "instance.created");
    assert_eq!(
        body["data"]["appInfo"]["frontEndUrl"],
        "https://my.example.com/t/ext-1"
    );
    assert!(
        body["data"]["appInfo"].get("password").is_none(),
        "koogate did not generate this account"
    );
    // A second sweep finds nothing due: the event is delivered.
    assert_eq!(app.dispatcher.sweep().await.unwrap().delivered, 0);
}
