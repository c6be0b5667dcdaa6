//! The event outbox: every committed state change records the events that describe it in the
//! same atomic step as the change itself, and a dispatcher (koogate-runtime) delivers them to the
//! ISV's product afterwards, at least once.
//!
//! The store only keeps events and their delivery state; what an event says is built by the
//! runtime. How each backend makes "an event exists if and only if its change committed" true
//! is explained where it is done: [`crate::sqlite`] (one transaction) and the DynamoDB backend's
//! `dynamodb_events` module (conditional writes only: no transactions, no Scan).

use serde::Deserialize;

/// How many event ids a versioned document remembers (`event_ids`): the DynamoDB backend checks
/// an unresolved intent against them (see `dynamodb_events`).
pub const EVENT_ID_HISTORY: usize = 16;

/// An event about to be recorded with a state change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventDraft {
    /// `evt_<12 hex digits of epoch ms><16 random hex digits>`: sorts by creation time, and is
    /// the `webhook-id` of every delivery attempt.
    pub id: String,
    pub event_type: String,
    /// The exact JSON body delivered (`{"type","timestamp","data"}`), never changed afterwards.
    pub body: String,
    /// The instance it concerns, for `koogate inspect` and listings.
    pub instance_id: Option<String>,
    pub created_at_ms: i64,
}

/// Where an event is in its delivery life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventState {
    /// Not yet delivered; attempted again at `next_attempt_ms`.
    Pending,
    /// A sink answered 2xx. Final.
    Delivered,
    /// Given up (3 days of failures, or `410 Gone`). Final until redelivered by hand.
    Failed,
}

impl EventState {
    pub fn as_str(self) -> &'static str {
        match self {
            EventState::Pending => "pending",
            EventState::Delivered => "delivered",
            EventState::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<EventState> {
        match s {
            "pending" => Some(EventState::Pending),
            "delivered" => Some(EventState::Delivered),
            "failed" => Some(EventState::Failed),
            _ => None,
        }
    }
}

/// A recorded event and its delivery state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventRecord {
    pub id: String,
    pub event_type: String,
    pub body: String,
    pub instance_id: Option<String>,
    pub state: EventState,
    pub attempts: u32,
    pub next_attempt_ms: i64,
    pub last_error: Option<String>,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
}

impl EventRecord {
    /// A freshly recorded, pending event.
    pub fn pending(draft: &EventDraft) -> EventRecord {
        EventRecord {
            id: draft.id.clone(),
            event_type: draft.event_type.clone(),
            body: draft.body.clone(),
            instance_id: draft.instance_id.clone(),
            state: EventState::Pending,
            attempts: 0,
            next_attempt_ms: draft.created_at_ms,
            last_error: None,
            created_at_ms: draft.created_at_ms,
            updated_at_ms: draft.created_at_ms,
        }
    }
}

/// How a delivery attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventSettlement {
    Delivered {
        at_ms: i64,
    },
    /// Failed, to be tried again at `next_attempt_ms`.
    Retry {
        at_ms: i64,
        next_attempt_ms: i64,
        error: String,
    },
    /// Given up.
    Failed {
        at_ms: i64,
        error: String,
    },
}

impl EventSettlement {
    /// The record after this settlement (attempts grow by one).
    pub fn apply(&self, event: &EventRecord) -> EventRecord {
        let mut next = event.clone();
        next.attempts = event.attempts.saturating_add(1);
        match self {
            EventSettlement::Delivered { at_ms } => {
                next.state = EventState::Delivered;
                next.updated_at_ms = *at_ms;
                next.last_error = None;
            }
            EventSettlement::Retry {
                at_ms,
                next_attempt_ms,
                error,
            } => {
                next.state = EventState::Pending;
                next.updated_at_ms = *at_ms;
                next.next_attempt_ms = *next_attempt_ms;
                next.last_error = Some(error.clone());
            }
            EventSettlement::Failed { at_ms, error } => {
                next.state = EventState::Failed;
                next.updated_at_ms = *at_ms;
                next.last_error = Some(error.clone());
            }
        }
        next
    }
}

/// Which events a listing returns, newest first.
#[derive(Debug, Clone, Default)]
pub struct EventQuery {
    /// Only `failed` events.
    pub failed_only: bool,
    /// Only events of this instance.
    pub instance_id: Option<String>,
    /// At most this many (0: a default of 1,000).
    pub limit: usize,
}

impl EventQuery {
    pub fn limit(&self) -> usize {
        if self.limit == 0 {
            1000
        } else {
            self.limit
        }
    }
}

/// A new event id for an event created at `now_ms`.
pub fn new_event_id(now_ms: i64) -> String {
    let random: u64 = rand::random();
    format!("evt_{:012x}{random:016x}", now_ms.max(0))
}

/// The creation time encoded in an event id, if it is one of ours.
pub fn event_id_time_ms(id: &str) -> Option<i64> {
    let hex = id.strip_prefix("evt_")?.get(..12)?;
    i64::from_str_radix(hex, 16).ok()
}

/// Appends `drafts`' ids to a document's remembered ids, keeping the last [`EVENT_ID_HISTORY`].
pub fn remember_ids(ids: &mut Vec<String>, drafts: &[EventDraft]) {
    ids.extend(drafts.iter().map(|d| d.id.clone()));
    let excess = ids.len().saturating_sub(EVENT_ID_HISTORY);
    ids.drain(..excess);
}

/// A JSON document (license code, order notification, …) with the ids of `drafts` appended to
/// its `event_ids` member. A document that is not a JSON object is returned unchanged.
pub fn doc_with_event_ids(doc: &str, drafts: &[EventDraft]) -> String {
    if drafts.is_empty() {
        return doc.to_string();
    }
    let Ok(serde_json::Value::Object(mut map)) = serde_json::from_str::<serde_json::Value>(doc)
    else {
        return doc.to_string();
    };
    let mut ids: Vec<String> = map
        .get("event_ids")
        .and_then(|v| serde_json::from_value(v.clone()).ok())
        .unwrap_or_default();
    remember_ids(&mut ids, drafts);
    map.insert("event_ids".into(), serde_json::json!(ids));
    serde_json::Value::Object(map).to_string()
}

/// The `event_ids` a stored document remembers.
pub fn event_ids_of(doc: &str) -> Vec<String> {
    #[derive(Deserialize)]
    struct Ids {
        #[serde(default)]
        event_ids: Vec<String>,
    }
    serde_json::from_str::<Ids>(doc)
        .map(|i| i.event_ids)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draft(id: &str) -> EventDraft {
        EventDraft {
            id: id.into(),
            event_type: "t".into(),
            body: "{}".into(),
            instance_id: None,
            created_at_ms: 0,
        }
    }

    #[test]
    fn ids_sort_by_time_and_carry_it() {
        let a = new_event_id(1_700_000_000_000);
        let b = new_event_id(1_700_000_000_001);
        assert!(a < b, "{a} < {b}");
        assert_eq!(event_id_time_ms(&a), Some(1_700_000_000_000));
        assert_eq!(a.len(), 4 + 12 + 16);
        assert_eq!(event_id_time_ms("prov_x"), None);
    }

    #[test]
    fn documents_remember_a_bounded_history() {
        let mut doc = r#"{"a":1}"#.to_string();
        for i in 0..20 {
            doc = doc_with_event_ids(&doc, &[draft(&format!("evt_{i:02}"))]);
        }
        let ids = event_ids_of(&doc);
        assert_eq!(ids.len(), EVENT_ID_HISTORY);
        assert_eq!(ids.first().map(String::as_str), Some("evt_04"));
        assert_eq!(ids.last().map(String::as_str), Some("evt_19"));
        assert!(doc.contains("\"a\":1"));
        assert_eq!(doc_with_event_ids("[1]", &[draft("x")]), "[1]");
    }
}
