//! The `event-dispatch` Lambda handler: a stream batch or a scheduled tick delivers the recorded
//! events, and a retry that falls due soon is waited for within the same invocation.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use koogate_runtime::isv::dispatch::{EventSink, SinkError};
use koogate_runtime::routes::InterfaceType;
use koogate_runtime::secrets::Secrets;
use koogate_runtime::App;
use koogate_store::EventRecord;
use koogate_tests::{config, post, KEY};
use serde_json::json;

/// Refuses the first `fail_first` deliveries, then keeps what it is given.
struct Flaky {
    fail_first: usize,
    seen: AtomicUsize,
    kept: Mutex<Vec<EventRecord>>,
}

#[async_trait]
impl EventSink for Flaky {
    fn name(&self) -> String {
        "flaky".into()
    }
    async fn deliver(&self, event: &EventRecord) -> Result<String, SinkError> {
        if self.seen.fetch_add(1, Ordering::SeqCst) < self.fail_first {
            return Err(SinkError {
                message: "HTTP 503".into(),
                permanent: false,
            });
        }
        self.kept.lock().unwrap().push(event.clone());
        Ok("kept".into())
    }
}

async fn app_with(sink: Arc<Flaky>) -> Arc<App> {
    App::builder(config(&[("KOOGATE_EVENTS_RETRY_SCHEDULE", "1")]))
        .serves(&[InterfaceType::Basic])
        .secrets(Secrets::with_keys(&[(InterfaceType::Basic, &[KEY])]))
        .store(Arc::new(
            koogate_store::sqlite::SqliteStore::in_memory().unwrap(),
        ))
        .sinks(vec![sink])
        .build()
        .await
        .unwrap()
}

fn new_instance(n: u32) -> String {
    format!(
        r#"{{"activity":"newInstance","businessId":"ed-{n}","orderId":"CSED{n}","orderLineId":"CSED{n}-1","testFlag":"0"}}"#
    )
}

#[tokio::test]
async fn a_stream_batch_delivers_the_recorded_events() {
    let sink = Arc::new(Flaky {
        fail_first: 0,
        seen: AtomicUsize::new(0),
        kept: Mutex::new(Vec::new()),
    });
    let app = app_with(sink.clone()).await;
    for n in 0..3 {
        assert_eq!(post(&app, &new_instance(n)).await.code(), "000000");
    }
    let stream = json!({"Records": [{"eventName": "INSERT", "dynamodb": {"Keys": {"pk": {"S": "events-open#0"}}}}]});
    assert!(koogate_event_dispatch::is_stream_event(&stream));
    let report = koogate_event_dispatch::handle(&app, &stream).await.unwrap();
    assert_eq!(report.delivered, 3, "{report:?}");
    assert_eq!(sink.kept.lock().unwrap().len(), 3);
    // A scheduled tick afterwards finds nothing left.
    let tick = json!({"source": "aws.events", "detail-type": "Scheduled Event"});
    assert!(!koogate_event_dispatch::is_stream_event(&tick));
    let again = koogate_event_dispatch::handle(&app, &tick).await.unwrap();
    assert_eq!(again.delivered, 0, "{again:?}");
}

#[tokio::test]
async fn a_retry_due_soon_is_delivered_in_the_same_invocation() {
    let sink = Arc::new(Flaky {
        fail_first: 1,
        seen: AtomicUsize::new(0),
        kept: Mutex::new(Vec::new()),
    });
    let app = app_with(sink.clone()).await;
    assert_eq!(post(&app, &new_instance(9)).await.code(), "000000");
    let tick = json!({"source": "aws.events"});
    let report = koogate_event_dispatch::handle(&app, &tick).await.unwrap();
    assert_eq!((report.retried, report.delivered), (1, 1), "{report:?}");
    let kept = sink.kept.lock().unwrap().clone();
    assert_eq!(kept.len(), 1);
    let stored = app.store.get_event(&kept[0].id).await.unwrap().unwrap();
    assert_eq!(stored.attempts, 2, "one failed attempt, one delivery");
}
