//! The EventBridge sink (AWS): every event is also put on the configured bus, with `Source`
//! `koogate`, `DetailType` the event type and `Detail` the event body plus its `id`.

use async_trait::async_trait;
use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use koogate_store::EventRecord;

use crate::isv::dispatch::{EventSink, SinkError};

/// Puts events on one bus (`KOOGATE_EVENT_BUS`, a name or an ARN).
pub struct EventBridgeSink {
    client: aws_sdk_eventbridge::Client,
    bus: String,
}

impl EventBridgeSink {
    pub fn new(conf: &aws_config::SdkConfig, bus: impl Into<String>) -> EventBridgeSink {
        EventBridgeSink {
            client: aws_sdk_eventbridge::Client::new(conf),
            bus: bus.into(),
        }
    }
}

/// The `Detail` of an event: its body with `id` added.
pub fn detail(event: &EventRecord) -> String {
    match serde_json::from_str::<serde_json::Value>(&event.body) {
        Ok(serde_json::Value::Object(mut m)) => {
            m.insert("id".into(), serde_json::Value::String(event.id.clone()));
            serde_json::Value::Object(m).to_string()
        }
        _ => event.body.clone(),
    }
}

#[async_trait]
impl EventSink for EventBridgeSink {
    fn name(&self) -> String {
        format!("eventbridge {}", self.bus)
    }

    async fn deliver(&self, event: &EventRecord) -> Result<String, SinkError> {
        let entry = PutEventsRequestEntry::builder()
            .event_bus_name(&self.bus)
            .source("koogate")
            .detail_type(&event.event_type)
            .detail(detail(event))
            .build();
        let transient = |message: String| SinkError {
            message,
            permanent: false,
        };
        let out = self
            .client
            .put_events()
            .entries(entry)
            .send()
            .await
            .map_err(|e| {
                transient(format!(
                    "EventBridge PutEvents: {}",
                    crate::marketplace::source_chain(&e)
                ))
            })?;
        if out.failed_entry_count() > 0 {
            let why = out
                .entries()
                .iter()
                .filter_map(|e| e.error_code())
                .collect::<Vec<_>>()
                .join(", ");
            return Err(transient(format!(
                "EventBridge PutEvents refused the entry: {why}"
            )));
        }
        Ok("PutEvents accepted".into())
    }
}
