//! The event outbox on DynamoDB, with conditional writes only: no `TransactWriteItems` (GeminiDB's
//! DynamoDB-compatible API has none) and no Scan.
//!
//! Items:
//! * `events-open#<shard>` / `<eventId>`: an event not yet settled (4 shards by a hash of the
//!   id, so the dispatcher reads open events with one strongly consistent Query per shard);
//! * `events-done` / `<eventId>`: delivered, kept 30 days (`expires_at`);
//! * `events-failed` / `<eventId>`: given up, kept until redelivered.
//!
//! **Why an event exists if and only if its change committed.** A state change and its events
//! are two items, and nothing writes two items atomically here, so the events are written first,
//! as *intents*, and become events only once the change is seen committed:
//! 1. The writer puts each event as an intent naming its target: the instance or record key and
//!    the version the change will create, or (for a directory sync, which is many items) a
//!    commit marker key. The intent carries `commit_by` = now + [`INTENT_WINDOW_MS`].
//! 2. The writer makes the change. An instance or record write is the usual conditional put and
//!    carries the intents' ids in its document's `event_ids` (the last 16 changes). A directory
//!    sync writes its intents in the same batches as its items (their order does not matter:
//!    nothing is an event before the marker) and then the marker `events-commit#<first event id>`. A writer
//!    never starts step 2 after `commit_by`, and the client's operation timeout (10 s, set in
//!    `DynamoStore::new`) bounds how long a started request can still land.
//! 3. A reader (the dispatcher, a listing) that finds an intent resolves it with one consistent
//!    read of its target: the id is in the target's `event_ids` (or the marker exists) → the
//!    change committed, and the intent is a pending event. Not there and `commit_by` +
//!    [`INTENT_GRACE_MS`] has passed → the change can no longer commit, and the intent is
//!    deleted: it never was an event. Otherwise it is left for later.
//!
//! A crash after step 1 leaves an intent that step 3 deletes; a crash after step 2 leaves an
//! intent that step 3 turns into an event; a refused conditional write (someone else changed the
//! record) deletes its intents at once, and were that delete lost, step 3 would find the id absent
//! from the target. One corner is decided for at-least-once: when a target has moved on by more
//! than 16 versions since the intent's own version, its history no longer says, and the intent is
//! delivered. A directory sync that dies before its marker is not answered `000000`; the
//! marketplace resends it, and the resend's events are the ones delivered.
//!
//! Cost on the callback path: one extra write per change (the intent; for a directory sync the
//! marker, its intents riding in the sync's own batches of 25). The dispatcher adds one read to resolve an
//! intent, and a put plus a delete to settle it.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{AttributeValue, DeleteRequest, PutRequest, WriteRequest};

use crate::dynamodb::{corrupt, get_n, get_s, n, s, unavailable, DynamoStore};
use crate::events::{
    event_ids_of, EventDraft, EventQuery, EventRecord, EventSettlement, EventState,
    EVENT_ID_HISTORY,
};
use crate::StoreError;

/// How long after writing its intents a writer may still make the change.
pub(crate) const INTENT_WINDOW_MS: i64 = 30_000;
/// How long after `commit_by` an unresolved intent is kept before it is deleted: more than the
/// client's operation timeout, so no request started before `commit_by` can still land.
pub(crate) const INTENT_GRACE_MS: i64 = 60_000;
/// Shards of the open events.
const SHARDS: u64 = 4;
/// Delivered events are kept this long.
const DONE_RETENTION_S: i64 = 30 * 24 * 3600;
/// Query pages read per shard and sweep.
const MAX_PAGES: usize = 10;

const DONE_PK: &str = "events-done";
const FAILED_PK: &str = "events-failed";
const INTENT: &str = "intent";

/// What an intent's change writes, to tell later whether it committed.
#[derive(Debug, Clone)]
pub(crate) enum Target {
    /// An instance or record item (`pk`, sort key `-`) at this version.
    Versioned { pk: String, version: u64 },
    /// A directory sync: committed once this marker item exists.
    Marker { pk: String },
}

impl Target {
    /// The marker of a directory sync whose first event is `drafts[0]`.
    pub(crate) fn marker(drafts: &[EventDraft]) -> Option<Target> {
        drafts.first().map(|d| Target::Marker {
            pk: format!("events-commit#{}", d.id),
        })
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

fn shard(id: &str) -> u64 {
    // FNV-1a: stable across processes and releases (std's hasher is neither).
    id.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    }) % SHARDS
}

fn open_pk(id: &str) -> String {
    format!("events-open#{}", shard(id))
}

fn key_of(pk: &str, sk: &str) -> HashMap<String, AttributeValue> {
    HashMap::from([("pk".to_string(), s(pk)), ("sk".to_string(), s(sk))])
}

fn item_of(pk: &str, e: &EventRecord) -> HashMap<String, AttributeValue> {
    let mut item = key_of(pk, &e.id);
    item.insert("type".into(), s(e.event_type.as_str()));
    item.insert("body".into(), s(e.body.as_str()));
    if let Some(i) = &e.instance_id {
        item.insert("iid".into(), s(i.as_str()));
    }
    item.insert("state".into(), s(e.state.as_str()));
    item.insert("attempts".into(), n(i64::from(e.attempts)));
    item.insert("next_at".into(), n(e.next_attempt_ms));
    if let Some(err) = &e.last_error {
        item.insert("err".into(), s(err.as_str()));
    }
    item.insert("created".into(), n(e.created_at_ms));
    item.insert("updated".into(), n(e.updated_at_ms));
    item
}

fn record_of(item: &HashMap<String, AttributeValue>) -> Result<EventRecord, StoreError> {
    let id = get_s(item, "sk").unwrap_or("?").to_string();
    let field = |name: &str| {
        get_s(item, name)
            .map(str::to_string)
            .ok_or_else(|| corrupt(&format!("event {id}"), format!("missing {name}")))
    };
    let state = match get_s(item, "state") {
        Some(INTENT) => EventState::Pending,
        Some(other) => EventState::parse(other)
            .ok_or_else(|| corrupt(&format!("event {id}"), "unknown state"))?,
        None => return Err(corrupt(&format!("event {id}"), "missing state")),
    };
    Ok(EventRecord {
        event_type: field("type")?,
        body: field("body")?,
        instance_id: get_s(item, "iid").map(str::to_string),
        state,
        attempts: get_n(item, "attempts")
            .and_then(|a| u32::try_from(a).ok())
            .unwrap_or(0),
        next_attempt_ms: get_n(item, "next_at").unwrap_or(0),
        last_error: get_s(item, "err").map(str::to_string),
        created_at_ms: get_n(item, "created").unwrap_or(0),
        updated_at_ms: get_n(item, "updated").unwrap_or(0),
        id,
    })
}

fn put_request(item: HashMap<String, AttributeValue>) -> Result<WriteRequest, StoreError> {
    PutRequest::builder()
        .set_item(Some(item))
        .build()
        .map(|p| WriteRequest::builder().put_request(p).build())
        .map_err(|e| StoreError::Unavailable(format!("dynamodb BatchWriteItem: {e}")))
}

/// Step 1: the intent items of `drafts` for a change to `target`, and their `commit_by`.
pub(crate) fn intent_requests(
    target: &Target,
    drafts: &[EventDraft],
) -> Result<(Vec<WriteRequest>, i64), StoreError> {
    let commit_by = now_ms().saturating_add(INTENT_WINDOW_MS);
    let requests = drafts
        .iter()
        .map(|d| {
            let mut item = item_of(&open_pk(&d.id), &EventRecord::pending(d));
            item.insert("state".into(), s(INTENT));
            item.insert("commit_by".into(), n(commit_by));
            match target {
                Target::Versioned { pk, version } => {
                    item.insert("tpk".into(), s(pk.as_str()));
                    item.insert(
                        "tver".into(),
                        n(i64::try_from(*version).unwrap_or(i64::MAX)),
                    );
                }
                Target::Marker { pk } => {
                    item.insert("tpk".into(), s(pk.as_str()));
                }
            }
            put_request(item)
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok((requests, commit_by))
}

/// What resolving an intent found.
enum Resolution {
    Committed,
    Abandoned,
    Undecided,
}

impl DynamoStore {
    /// Step 2's guard: a writer whose intents are past `commit_by` must not make the change.
    pub(crate) fn check_commit_window(commit_by: i64) -> Result<(), StoreError> {
        if now_ms() < commit_by {
            Ok(())
        } else {
            Err(StoreError::Unavailable(
                "event intents expired before the change was written".into(),
            ))
        }
    }

    /// A change that did not happen: its intents go (best effort; resolution deletes them
    /// otherwise).
    pub(crate) async fn drop_intents(&self, drafts: &[EventDraft]) {
        let requests: Vec<WriteRequest> = drafts
            .iter()
            .filter_map(|d| {
                DeleteRequest::builder()
                    .set_key(Some(key_of(&open_pk(&d.id), &d.id)))
                    .build()
                    .ok()
                    .map(|r| WriteRequest::builder().delete_request(r).build())
            })
            .collect();
        if let Err(e) = self
            .batch_write_all("BatchWriteItem(drop intents)", requests)
            .await
        {
            tracing::warn!(error = %e, "cannot delete event intents; they are resolved later");
        }
    }

    /// A directory sync's commit marker (step 2, last write).
    pub(crate) async fn write_marker(&self, target: &Target) -> Result<(), StoreError> {
        let Target::Marker { pk } = target else {
            return Ok(());
        };
        let mut item = key_of(pk, "-");
        item.insert("expires_at".into(), n(now_ms() / 1000 + DONE_RETENTION_S));
        self.put(item).await
    }

    /// Step 3 for one intent item.
    async fn resolve(
        &self,
        item: &HashMap<String, AttributeValue>,
        now: i64,
    ) -> Result<Resolution, StoreError> {
        let id = get_s(item, "sk").unwrap_or("");
        let Some(tpk) = get_s(item, "tpk") else {
            return Ok(Resolution::Committed);
        };
        let target = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key_of(tpk, "-")))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| unavailable("GetItem(event target)", &e))?
            .item;
        let committed = match (get_n(item, "tver"), &target) {
            // A directory sync: the marker says it.
            (None, found) => found.is_some(),
            (Some(_), None) => false,
            (Some(tver), Some(t)) => {
                let version = get_n(t, "version").unwrap_or(0);
                let ids = get_s(t, "doc").map(event_ids_of).unwrap_or_default();
                let history = i64::try_from(EVENT_ID_HISTORY).unwrap_or(i64::MAX);
                ids.iter().any(|i| i == id) || version >= tver.saturating_add(history)
            }
        };
        if committed {
            return Ok(Resolution::Committed);
        }
        let commit_by = get_n(item, "commit_by").unwrap_or(0);
        if now > commit_by.saturating_add(INTENT_GRACE_MS) {
            return Ok(Resolution::Abandoned);
        }
        Ok(Resolution::Undecided)
    }

    /// The open events of every shard, intents resolved (committed ones become pending; the
    /// abandoned are deleted when `delete_abandoned`).
    async fn open_events(
        &self,
        now: i64,
        delete_abandoned: bool,
    ) -> Result<Vec<EventRecord>, StoreError> {
        let mut found = Vec::new();
        for shard in 0..SHARDS {
            let pk = format!("events-open#{shard}");
            for item in self.query_all(&pk, false, usize::MAX).await? {
                if get_s(&item, "state") == Some(INTENT) {
                    match self.resolve(&item, now).await? {
                        Resolution::Committed => {}
                        Resolution::Undecided => continue,
                        Resolution::Abandoned => {
                            if delete_abandoned {
                                self.delete(&pk, get_s(&item, "sk").unwrap_or("")).await?;
                            }
                            continue;
                        }
                    }
                }
                found.push(record_of(&item)?);
            }
        }
        Ok(found)
    }

    /// Every item of partition `pk` (newest first when `descending`), at most `limit`.
    async fn query_all(
        &self,
        pk: &str,
        descending: bool,
        limit: usize,
    ) -> Result<Vec<HashMap<String, AttributeValue>>, StoreError> {
        let mut items = Vec::new();
        let mut start: Option<HashMap<String, AttributeValue>> = None;
        for _ in 0..MAX_PAGES {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("#pk = :pk")
                .expression_attribute_names("#pk", "pk")
                .expression_attribute_values(":pk", s(pk))
                .scan_index_forward(!descending)
                .consistent_read(true)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| unavailable("Query(events)", &e))?;
            items.extend(out.items.unwrap_or_default());
            if items.len() >= limit {
                items.truncate(limit);
                break;
            }
            match out.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => break,
            }
        }
        Ok(items)
    }

    async fn delete(&self, pk: &str, sk: &str) -> Result<(), StoreError> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key_of(pk, sk)))
            .send()
            .await
            .map_err(|e| unavailable("DeleteItem(event)", &e))?;
        Ok(())
    }

    async fn put(&self, item: HashMap<String, AttributeValue>) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(|e| unavailable("PutItem(event)", &e))?;
        Ok(())
    }

    pub(crate) async fn dynamo_record_events(
        &self,
        events: &[EventDraft],
    ) -> Result<(), StoreError> {
        for d in events {
            let res = self
                .client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(item_of(&open_pk(&d.id), &EventRecord::pending(d))))
                .condition_expression("attribute_not_exists(#pk)")
                .expression_attribute_names("#pk", "pk")
                .send()
                .await;
            if let Err(err) = res {
                let exists = err
                    .as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception());
                if !exists {
                    return Err(unavailable("PutItem(event)", &err));
                }
            }
        }
        Ok(())
    }

    pub(crate) async fn dynamo_due_events(
        &self,
        now: i64,
        limit: usize,
    ) -> Result<Vec<EventRecord>, StoreError> {
        let mut due: Vec<EventRecord> = self
            .open_events(now, true)
            .await?
            .into_iter()
            .filter(|e| e.next_attempt_ms <= now)
            .collect();
        due.sort_by(|a, b| (a.next_attempt_ms, &a.id).cmp(&(b.next_attempt_ms, &b.id)));
        due.truncate(limit);
        Ok(due)
    }

    pub(crate) async fn dynamo_settle_event(
        &self,
        event: &EventRecord,
        settlement: &EventSettlement,
    ) -> Result<(), StoreError> {
        let next = settlement.apply(event);
        let open = open_pk(&event.id);
        match next.state {
            EventState::Pending => {
                // Replaces the intent or the previous attempt's record in place: once attempted,
                // it is a resolved event.
                self.put(item_of(&open, &next)).await
            }
            EventState::Delivered => {
                let mut item = item_of(DONE_PK, &next);
                item.insert(
                    "expires_at".into(),
                    n(next.updated_at_ms / 1000 + DONE_RETENTION_S),
                );
                self.put(item).await?;
                if event.state == EventState::Failed {
                    self.delete(FAILED_PK, &event.id).await?;
                }
                self.delete(&open, &event.id).await
            }
            EventState::Failed => {
                self.put(item_of(FAILED_PK, &next)).await?;
                self.delete(&open, &event.id).await
            }
        }
    }

    pub(crate) async fn dynamo_get_event(
        &self,
        id: &str,
    ) -> Result<Option<EventRecord>, StoreError> {
        for pk in [open_pk(id), FAILED_PK.to_string(), DONE_PK.to_string()] {
            let out = self
                .client
                .get_item()
                .table_name(&self.table)
                .set_key(Some(key_of(&pk, id)))
                .consistent_read(true)
                .send()
                .await
                .map_err(|e| unavailable("GetItem(event)", &e))?;
            if let Some(item) = out.item {
                if get_s(&item, "state") == Some(INTENT)
                    && !matches!(self.resolve(&item, now_ms()).await?, Resolution::Committed)
                {
                    return Ok(None);
                }
                return record_of(&item).map(Some);
            }
        }
        Ok(None)
    }

    pub(crate) async fn dynamo_list_events(
        &self,
        query: &EventQuery,
    ) -> Result<Vec<EventRecord>, StoreError> {
        let limit = query.limit();
        let mut all: Vec<EventRecord> = Vec::new();
        for item in self.query_all(FAILED_PK, true, limit).await? {
            all.push(record_of(&item)?);
        }
        if !query.failed_only {
            all.extend(self.open_events(now_ms(), false).await?);
            for item in self.query_all(DONE_PK, true, limit).await? {
                all.push(record_of(&item)?);
            }
        }
        if let Some(i) = &query.instance_id {
            all.retain(|e| e.instance_id.as_deref() == Some(i.as_str()));
        }
        all.sort_by(|a, b| b.id.cmp(&a.id));
        all.dedup_by(|a, b| a.id == b.id);
        all.truncate(limit);
        Ok(all)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_are_stable_and_spread() {
        assert_eq!(
            shard("evt_0000000000000000000000000000"),
            shard("evt_0000000000000000000000000000")
        );
        let used: std::collections::BTreeSet<u64> =
            (0..64).map(|i| shard(&format!("evt_{i:028}"))).collect();
        assert_eq!(used.len(), SHARDS as usize);
    }

    #[test]
    fn records_round_trip_through_items() {
        let d = EventDraft {
            id: "evt_1".into(),
            event_type: "instance.created".into(),
            body: "{\"type\":\"instance.created\"}".into(),
            instance_id: Some("i-1".into()),
            created_at_ms: 5,
        };
        let r = EventSettlement::Retry {
            at_ms: 6,
            next_attempt_ms: 10,
            error: "HTTP 500".into(),
        }
        .apply(&EventRecord::pending(&d));
        assert_eq!(record_of(&item_of("events-open#0", &r)).unwrap(), r);
    }
}
