//! The DynamoDB backend: one table (`pk`, `sk`), conditional writes for everything that can race,
//! `ReturnValuesOnConditionCheckFailure=ALL_OLD` so that a duplicate learns the stored state
//! without a second read.
//!
//! Each trait method is exactly one DynamoDB request (BatchGetItem may repeat for unprocessed
//! keys), except the directory's: a directory write is one BatchWriteItem per 25 items and a
//! listing one Query per page. The actions used are listed in [`crate::dynamodb_actions::ACTIONS_USED`], which the
//! infrastructure test holds the IAM policy to.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::types::{
    AttributeValue, DeleteRequest, KeysAndAttributes, PutRequest, ReturnValue,
    ReturnValuesOnConditionCheckFailure, WriteRequest,
};
use aws_sdk_dynamodb::Client;

use crate::dynamodb_events::Target;
use crate::events::{self, EventDraft, EventQuery, EventRecord, EventSettlement};
use crate::idempotency::{Acquire, AcquireOutcome, IdemRecord, IdemStatus};
use crate::records::{Instance, Record};
use crate::{keys, DirectoryItem, DirectoryWrite, Partition, Store, StoreError, VersionedWrite};

/// The sort key of every single-item entity.
const SK: &str = "-";
/// BatchGetItem rounds before unprocessed keys count as a failure.
const BATCH_GET_ROUNDS: usize = 4;
/// BatchWriteItem takes at most 25 writes per request.
const BATCH_WRITE_SIZE: usize = 25;
/// BatchWriteItem rounds (unprocessed items are resent) before they count as a failure.
const BATCH_WRITE_ROUNDS: usize = 5;
/// BatchWriteItem requests in flight at once for one directory write (500 users = 40 requests).
const BATCH_WRITE_PARALLEL: usize = 8;

/// The DynamoDB store.
#[derive(Clone)]
pub struct DynamoStore {
    pub(crate) client: Client,
    pub(crate) table: String,
}

impl DynamoStore {
    /// Wraps a configured client (its interceptors are kept: the tests count and vet requests
    /// with theirs) and bounds every operation's time.
    pub fn new(client: &Client, table: impl Into<String>) -> Self {
        // The operation timeout bounds how long a started write can still land, which the event
        // outbox's crash-safety argument relies on (see `dynamodb_events`).
        let timeouts = aws_sdk_dynamodb::config::timeout::TimeoutConfig::builder()
            .operation_timeout(std::time::Duration::from_secs(10))
            .build();
        let conf = client
            .config()
            .to_builder()
            .timeout_config(timeouts)
            .build();
        DynamoStore {
            client: Client::from_conf(conf),
            table: table.into(),
        }
    }

    /// The table this store writes to.
    pub fn table(&self) -> &str {
        &self.table
    }

    /// The underlying client (tests create the table with it).
    pub fn client(&self) -> &Client {
        &self.client
    }
}

pub(crate) fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

pub(crate) fn n(v: i64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn key(pk: &str) -> HashMap<String, AttributeValue> {
    item_key(pk, SK)
}

fn item_key(pk: &str, sk: &str) -> HashMap<String, AttributeValue> {
    HashMap::from([("pk".to_string(), s(pk)), ("sk".to_string(), s(sk))])
}

pub(crate) fn unavailable<E: std::fmt::Debug>(op: &str, e: &SdkError<E>) -> StoreError {
    // DisplayErrorContext would be nicer, but the Debug of SdkError names the service error code.
    StoreError::Unavailable(format!("dynamodb {op}: {}", sdk_error_summary(e)))
}

fn sdk_error_summary<E: std::fmt::Debug>(e: &SdkError<E>) -> String {
    match e {
        SdkError::ServiceError(se) => format!("service error {:?}", se.err()),
        SdkError::TimeoutError(_) => "timeout".to_string(),
        SdkError::DispatchFailure(d) => format!("dispatch failure ({:?})", d),
        SdkError::ResponseError(_) => "unreadable response".to_string(),
        SdkError::ConstructionFailure(_) => "request could not be built".to_string(),
        other => format!("{other:?}"),
    }
}

pub(crate) fn get_s<'a>(item: &'a HashMap<String, AttributeValue>, name: &str) -> Option<&'a str> {
    item.get(name)
        .and_then(|v| v.as_s().ok())
        .map(String::as_str)
}

pub(crate) fn get_n(item: &HashMap<String, AttributeValue>, name: &str) -> Option<i64> {
    item.get(name)
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse().ok())
}

pub(crate) fn corrupt(key: &str, reason: impl Into<String>) -> StoreError {
    StoreError::Corrupt {
        key: key.to_string(),
        reason: reason.into(),
    }
}

fn idem_from_item(
    k: &str,
    item: &HashMap<String, AttributeValue>,
) -> Result<IdemRecord, StoreError> {
    let status = get_s(item, "status")
        .and_then(IdemStatus::parse)
        .ok_or_else(|| corrupt(k, "missing or unknown status"))?;
    Ok(IdemRecord {
        status,
        lease_until_ms: get_n(item, "lease_until").unwrap_or(0),
        validation: get_s(item, "validation").unwrap_or_default().to_string(),
        reference: get_s(item, "reference").unwrap_or_default().to_string(),
        response: get_s(item, "response").map(str::to_string),
        code: get_s(item, "result_code").map(str::to_string),
        expires_at: get_n(item, "expires_at"),
    })
}

fn instance_from_item(item: &HashMap<String, AttributeValue>) -> Result<Instance, StoreError> {
    let pk = get_s(item, "pk").unwrap_or("?");
    let doc = get_s(item, "doc").ok_or_else(|| corrupt(pk, "missing doc"))?;
    serde_json::from_str(doc).map_err(|e| corrupt(pk, e.to_string()))
}

/// The expressions of one request, built apart from the SDK call so that a unit test can prove
/// every placeholder is used: DynamoDB rejects unused `ExpressionAttributeValues` (moto does not).
#[derive(Debug, Default)]
pub(crate) struct Expr {
    pub update: Option<String>,
    pub condition: String,
    pub names: Vec<(&'static str, &'static str)>,
    pub values: Vec<(&'static str, AttributeValue)>,
}

/// Every attribute is referred to through a `#name` alias: DynamoDB reserves hundreds of words
/// (`status`, `owner`, `reference`, `version`, …) and rejects expressions that use them bare.
const IDEM_NAMES: [(&str, &str); 9] = [
    ("#st", "status"),
    ("#ow", "owner"),
    ("#lu", "lease_until"),
    ("#va", "validation"),
    ("#rf", "reference"),
    ("#rs", "response"),
    ("#rc", "result_code"),
    ("#ex", "expires_at"),
    ("#ca", "created_at"),
];

/// The aliases of `IDEM_NAMES` that `text` uses.
fn idem_names(text: &str) -> Vec<(&'static str, &'static str)> {
    aliases_used(&IDEM_NAMES, text)
}

/// The `(#alias, attribute)` pairs of `table` whose alias `text` uses as a whole word: an
/// expression must declare exactly the names it uses (DynamoDB rejects unused ones).
pub(crate) fn aliases_used(
    table: &[(&'static str, &'static str)],
    text: &str,
) -> Vec<(&'static str, &'static str)> {
    table
        .iter()
        .copied()
        .filter(|(alias, _)| {
            text.match_indices(alias).any(|(i, _)| {
                !text[i + alias.len()..]
                    .chars()
                    .next()
                    .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
            })
        })
        .collect()
}

fn with_names(
    update: Option<String>,
    condition: String,
    values: Vec<(&'static str, AttributeValue)>,
) -> Expr {
    let text = format!("{} {condition}", update.as_deref().unwrap_or(""));
    Expr {
        names: idem_names(&text),
        update,
        condition,
        values,
    }
}

pub(crate) fn nonce_expr(now_s: i64) -> Expr {
    with_names(
        None,
        "attribute_not_exists(pk) OR #ex < :now_s".into(),
        vec![(":now_s", n(now_s))],
    )
}

pub(crate) fn acquire_expr(a: &Acquire<'_>) -> Expr {
    let mut set = "SET #st = :inprogress, #ow = :owner, #lu = :lease, #va = :v, \
                   #rf = if_not_exists(#rf, :ref), #ca = if_not_exists(#ca, :now_ms)"
        .to_string();
    let mut values = vec![
        (":inprogress", s(IdemStatus::InProgress.as_str())),
        (":owner", s(a.owner)),
        (":lease", n(a.lease_until_ms)),
        (":v", s(a.validation)),
        (":ref", s(a.reference)),
        (":now_ms", n(a.now_ms)),
        (":now_s", n(a.now_ms.div_euclid(1000))),
        (":completed", s(IdemStatus::Completed.as_str())),
    ];
    let remove = match a.expires_at {
        Some(e) => {
            set.push_str(", #ex = :exp");
            values.push((":exp", n(e)));
            " REMOVE #rs, #rc"
        }
        None => " REMOVE #rs, #rc, #ex",
    };
    // Mirrors IdemRecord::can_acquire.
    with_names(
        Some(format!("{set}{remove}")),
        "attribute_not_exists(pk) OR #ex < :now_s OR \
         (#va = :v AND #st <> :completed AND #lu < :now_ms)"
            .into(),
        values,
    )
}

pub(crate) fn complete_expr(
    owner: &str,
    response: &str,
    code: &str,
    expires_at: Option<i64>,
) -> Expr {
    let mut values = vec![
        (":completed", s(IdemStatus::Completed.as_str())),
        (":inprogress", s(IdemStatus::InProgress.as_str())),
        (":owner", s(owner)),
        (":resp", s(response)),
        (":code", s(code)),
    ];
    let update = match expires_at {
        Some(e) => {
            values.push((":exp", n(e)));
            "SET #st = :completed, #rs = :resp, #rc = :code, #ex = :exp"
        }
        None => "SET #st = :completed, #rs = :resp, #rc = :code REMOVE #ex",
    };
    with_names(
        Some(update.into()),
        "#ow = :owner AND #st = :inprogress".into(),
        values,
    )
}

pub(crate) fn abandon_expr(owner: &str) -> Expr {
    with_names(
        Some("SET #lu = :zero".into()),
        "#ow = :owner AND #st = :inprogress".into(),
        vec![
            (":zero", n(0)),
            (":owner", s(owner)),
            (":inprogress", s(IdemStatus::InProgress.as_str())),
        ],
    )
}

pub(crate) fn versioned_put_expr(expected_version: Option<u64>) -> Expr {
    match expected_version {
        None => Expr {
            condition: "attribute_not_exists(pk)".into(),
            ..Expr::default()
        },
        Some(v) => Expr {
            condition: "#ver = :expected".into(),
            names: vec![("#ver", "version")],
            values: vec![(":expected", n(i64::try_from(v).unwrap_or(i64::MAX)))],
            ..Expr::default()
        },
    }
}

pub(crate) fn names_map(e: &Expr) -> Option<HashMap<String, String>> {
    (!e.names.is_empty()).then(|| {
        e.names
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    })
}

pub(crate) fn values_map(e: &Expr) -> Option<HashMap<String, AttributeValue>> {
    (!e.values.is_empty()).then(|| {
        e.values
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect()
    })
}

impl DynamoStore {
    /// Writes `item` with its `version` and `doc`, conditioned on the stored version (instances
    /// and records share this shape).
    async fn put_versioned(
        &self,
        op: &str,
        mut item: HashMap<String, AttributeValue>,
        version: u64,
        doc: String,
        expected_version: Option<u64>,
    ) -> Result<VersionedWrite, StoreError> {
        item.insert(
            "version".into(),
            n(i64::try_from(version).unwrap_or(i64::MAX)),
        );
        item.insert("doc".into(), s(doc));
        let e = versioned_put_expr(expected_version);
        let res = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression(&e.condition)
            .set_expression_attribute_names(names_map(&e))
            .set_expression_attribute_values(values_map(&e))
            .send()
            .await;
        match res {
            Ok(_) => Ok(VersionedWrite::Written),
            Err(err) => match err.as_service_error() {
                Some(se) if se.is_conditional_check_failed_exception() => {
                    Ok(VersionedWrite::Conflict)
                }
                _ => Err(unavailable(op, &err)),
            },
        }
    }

    /// [`DynamoStore::put_versioned`] with the event intents of `events` written first and
    /// dropped again when the write is refused (see `dynamodb_events`).
    async fn put_versioned_with_events(
        &self,
        op: &str,
        item: HashMap<String, AttributeValue>,
        version: u64,
        doc: String,
        expected_version: Option<u64>,
        events: &[EventDraft],
    ) -> Result<VersionedWrite, StoreError> {
        let pk = get_s(&item, "pk").unwrap_or("").to_string();
        // A record created now goes into its kind's index first (operators list it), in the
        // same request as the events' intents when there are any.
        let index = match expected_version {
            None => index_request(&pk)?,
            Some(_) => None,
        };
        if events.is_empty() {
            if let Some(index) = index {
                self.batch_write_all("BatchWriteItem(index)", vec![index])
                    .await?;
            }
            return self
                .put_versioned(op, item, version, doc, expected_version)
                .await;
        }
        let target = Target::Versioned { pk, version };
        let (mut requests, commit_by) = crate::dynamodb_events::intent_requests(&target, events)?;
        requests.extend(index);
        self.batch_write_all("BatchWriteItem(event intents)", requests)
            .await?;
        if let Err(e) = Self::check_commit_window(commit_by) {
            self.drop_intents(events).await;
            return Err(e);
        }
        let written = self
            .put_versioned(op, item, version, doc, expected_version)
            .await;
        if !matches!(written, Ok(VersionedWrite::Written)) {
            self.drop_intents(events).await;
        }
        written
    }

    /// Sends `requests` as BatchWriteItem calls of 25, up to 8 at once.
    pub(crate) async fn batch_write_all(
        &self,
        op: &'static str,
        requests: Vec<WriteRequest>,
    ) -> Result<(), StoreError> {
        let mut chunks = requests.chunks(BATCH_WRITE_SIZE);
        let mut running = tokio::task::JoinSet::new();
        loop {
            while running.len() < BATCH_WRITE_PARALLEL {
                let Some(chunk) = chunks.next() else { break };
                let (client, table, chunk) =
                    (self.client.clone(), self.table.clone(), chunk.to_vec());
                running.spawn(async move { batch_write(&client, &table, op, chunk).await });
            }
            match running.join_next().await {
                None => return Ok(()),
                Some(Ok(Ok(()))) => {}
                Some(Ok(Err(e))) => return Err(e),
                Some(Err(e)) => {
                    return Err(StoreError::Unavailable(format!(
                        "dynamodb {op} task failed: {e}"
                    )))
                }
            }
        }
    }

    /// One item by key, strongly consistent: the fallback where a write's returned item (its
    /// `ReturnValues` or `ReturnValuesOnConditionCheckFailure`) did not come back, as GeminiDB's
    /// documentation does not establish either parameter (docs/geminidb.md). On DynamoDB the
    /// item always comes back, so this read never happens there.
    pub(crate) async fn get_consistent(
        &self,
        op: &str,
        key: HashMap<String, AttributeValue>,
    ) -> Result<Option<HashMap<String, AttributeValue>>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| unavailable(op, &e))?;
        Ok(out.item)
    }

    /// A conditional UpdateItem. `Ok(Ok(new))` when written (`new`: the item after the write
    /// when `return_new` and the backend returned it); `Ok(Err(old))` when the condition failed
    /// (`old`: the stored item when `want_old` and the backend returned it).
    async fn conditional_update(
        &self,
        op: &str,
        pk: &str,
        e: Expr,
        return_new: bool,
        want_old: bool,
    ) -> Result<
        Result<Option<HashMap<String, AttributeValue>>, Option<HashMap<String, AttributeValue>>>,
        StoreError,
    > {
        let mut req = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(pk)))
            .set_update_expression(e.update.clone())
            .condition_expression(&e.condition)
            .set_expression_attribute_names(names_map(&e))
            .set_expression_attribute_values(values_map(&e));
        if want_old {
            req = req.return_values_on_condition_check_failure(
                ReturnValuesOnConditionCheckFailure::AllOld,
            );
        }
        if return_new {
            req = req.return_values(ReturnValue::AllNew);
        }
        match req.send().await {
            Ok(out) => Ok(Ok(out.attributes)),
            Err(err) => match err.as_service_error() {
                Some(se) if se.is_conditional_check_failed_exception() => {
                    let old = match se {
                        aws_sdk_dynamodb::operation::update_item::UpdateItemError::ConditionalCheckFailedException(c) => {
                            c.item().cloned()
                        }
                        _ => None,
                    };
                    Ok(Err(old))
                }
                _ => Err(unavailable(op, &err)),
            },
        }
    }
}

#[async_trait]
impl Store for DynamoStore {
    async fn remember_nonce(
        &self,
        nonce_key: &str,
        now_s: i64,
        expires_at: i64,
    ) -> Result<bool, StoreError> {
        let e = nonce_expr(now_s);
        let mut item = key(nonce_key);
        item.insert("expires_at".into(), n(expires_at));
        let res = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression(&e.condition)
            .set_expression_attribute_names(names_map(&e))
            .set_expression_attribute_values(values_map(&e))
            .send()
            .await;
        match res {
            Ok(_) => Ok(true),
            Err(err) => match err.as_service_error() {
                Some(se) if se.is_conditional_check_failed_exception() => Ok(false),
                _ => Err(unavailable("PutItem(nonce)", &err)),
            },
        }
    }

    async fn acquire(&self, a: &Acquire<'_>) -> Result<AcquireOutcome, StoreError> {
        match self
            .conditional_update("UpdateItem(acquire)", a.key, acquire_expr(a), true, true)
            .await?
        {
            Ok(Some(new)) => Ok(AcquireOutcome::Acquired {
                reference: get_s(&new, "reference").unwrap_or(a.reference).to_string(),
            }),
            // `ReturnValues` ignored (GeminiDB): the reference is the stored one, which a retry
            // must reuse (D7), so read it back. The record is this caller's now and `reference`
            // is only ever set once, so the read sees the value the write kept.
            Ok(None) => {
                let stored = self
                    .get_consistent("GetItem(acquire fallback)", key(a.key))
                    .await?;
                let reference = stored
                    .as_ref()
                    .and_then(|item| get_s(item, "reference"))
                    .unwrap_or(a.reference)
                    .to_string();
                Ok(AcquireOutcome::Acquired { reference })
            }
            Err(Some(old)) => Ok(idem_from_item(a.key, &old)?.refusal(a)),
            // The refusal brought no old item back (`ReturnValuesOnConditionCheckFailure`
            // ignored, as GeminiDB may): a condition only fails on an existing record, so read
            // it. Whatever changed since, the read is the record's latest state.
            Err(None) => {
                match self
                    .get_consistent("GetItem(acquire fallback)", key(a.key))
                    .await?
                {
                    Some(old) => Ok(idem_from_item(a.key, &old)?.refusal(a)),
                    // Gone in between: a live lock is the safe answer (the marketplace retries).
                    None => Ok(AcquireOutcome::InFlight {
                        reference: a.reference.to_string(),
                    }),
                }
            }
        }
    }

    async fn complete(
        &self,
        k: &str,
        owner: &str,
        response: &str,
        code: &str,
        expires_at: Option<i64>,
    ) -> Result<bool, StoreError> {
        let r = self
            .conditional_update(
                "UpdateItem(complete)",
                k,
                complete_expr(owner, response, code, expires_at),
                false,
                false,
            )
            .await?;
        Ok(r.is_ok())
    }

    async fn abandon(&self, k: &str, owner: &str) -> Result<bool, StoreError> {
        let r = self
            .conditional_update("UpdateItem(abandon)", k, abandon_expr(owner), false, false)
            .await?;
        Ok(r.is_ok())
    }

    async fn get_instance(
        &self,
        partition: Partition,
        instance_id: &str,
    ) -> Result<Option<Instance>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(&keys::instance(partition, instance_id))))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| unavailable("GetItem(instance)", &e))?;
        out.item.as_ref().map(instance_from_item).transpose()
    }

    async fn get_instances(
        &self,
        partition: Partition,
        ids: &[String],
    ) -> Result<Vec<Instance>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut pending: Vec<HashMap<String, AttributeValue>> = ids
            .iter()
            .map(|id| key(&keys::instance(partition, id)))
            .collect();
        pending.dedup();
        let mut found = Vec::new();
        for _ in 0..BATCH_GET_ROUNDS {
            let ka = KeysAndAttributes::builder()
                .set_keys(Some(std::mem::take(&mut pending)))
                .consistent_read(true)
                .build()
                .map_err(|e| StoreError::Unavailable(format!("dynamodb BatchGetItem: {e}")))?;
            let out = self
                .client
                .batch_get_item()
                .request_items(&self.table, ka)
                .send()
                .await
                .map_err(|e| unavailable("BatchGetItem(instances)", &e))?;
            if let Some(mut responses) = out.responses {
                for item in responses.remove(&self.table).unwrap_or_default() {
                    found.push(instance_from_item(&item)?);
                }
            }
            pending = out
                .unprocessed_keys
                .and_then(|mut u| u.remove(&self.table))
                .map(|ka| ka.keys)
                .unwrap_or_default();
            if pending.is_empty() {
                return Ok(found);
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        Err(StoreError::Unavailable(format!(
            "dynamodb BatchGetItem: {} keys still unprocessed after {BATCH_GET_ROUNDS} rounds",
            pending.len()
        )))
    }

    async fn put_instance(
        &self,
        instance: &Instance,
        expected_version: Option<u64>,
        events: &[EventDraft],
    ) -> Result<VersionedWrite, StoreError> {
        let pk = keys::instance(instance.partition(), &instance.instance_id);
        let mut stored = instance.clone();
        events::remember_ids(&mut stored.event_ids, events);
        let doc = serde_json::to_string(&stored).map_err(|e| corrupt(&pk, e.to_string()))?;
        let mut item = key(&pk);
        item.insert("state".into(), s(instance.state.as_str()));
        self.put_versioned_with_events(
            "PutItem(instance)",
            item,
            instance.version,
            doc,
            expected_version,
            events,
        )
        .await
    }

    async fn get_record(&self, k: &str) -> Result<Option<Record>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(k)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| unavailable("GetItem(record)", &e))?;
        let Some(item) = out.item else {
            return Ok(None);
        };
        let doc = get_s(&item, "doc").ok_or_else(|| corrupt(k, "missing doc"))?;
        let version = get_n(&item, "version").ok_or_else(|| corrupt(k, "missing version"))?;
        Ok(Some(Record {
            version: u64::try_from(version).unwrap_or(0),
            doc: doc.to_string(),
        }))
    }

    async fn put_record(
        &self,
        k: &str,
        record: &Record,
        expected_version: Option<u64>,
        events: &[EventDraft],
    ) -> Result<VersionedWrite, StoreError> {
        self.put_versioned_with_events(
            "PutItem(record)",
            key(k),
            record.version,
            events::doc_with_event_ids(&record.doc, events),
            expected_version,
            events,
        )
        .await
    }

    async fn write_directory(
        &self,
        partition: Partition,
        tenant_id: &str,
        writes: &[DirectoryWrite],
        events: &[EventDraft],
    ) -> Result<(), StoreError> {
        let pk = keys::tenant(partition, tenant_id);
        // A batch may not name one key twice, and only the last write of a key matters: keep
        // that one, so that the batches are independent and may run side by side.
        let mut last: HashMap<&str, &DirectoryWrite> = HashMap::new();
        for w in writes {
            let sk = match w {
                DirectoryWrite::Put(item) => item.sk.as_str(),
                DirectoryWrite::Delete { sk } => sk.as_str(),
            };
            last.insert(sk, w);
        }
        let mut requests: Vec<WriteRequest> = last
            .into_values()
            .map(|w| directory_write_request(&pk, w))
            .collect::<Result<_, _>>()?;
        let writes_tenant = writes
            .iter()
            .any(|w| matches!(w, DirectoryWrite::Put(i) if i.sk == crate::directory::sk::TENANT));
        if writes_tenant {
            requests.extend(index_request(&pk)?);
        }
        // The events' intents ride in the same batches; the marker, written last, makes them
        // events (see `dynamodb_events`).
        let marker = Target::marker(events);
        let commit_by = match &marker {
            Some(target) => {
                let (intents, commit_by) = crate::dynamodb_events::intent_requests(target, events)?;
                requests.extend(intents);
                Some(commit_by)
            }
            None => None,
        };
        self.batch_write_all("BatchWriteItem(directory)", requests)
            .await?;
        if let (Some(target), Some(commit_by)) = (&marker, commit_by) {
            Self::check_commit_window(commit_by)?;
            self.write_marker(target).await?;
        }
        Ok(())
    }

    async fn get_directory_item(
        &self,
        partition: Partition,
        tenant_id: &str,
        sk: &str,
    ) -> Result<Option<DirectoryItem>, StoreError> {
        let pk = keys::tenant(partition, tenant_id);
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(item_key(&pk, sk)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| unavailable("GetItem(directory)", &e))?;
        out.item.map(|item| directory_item(&pk, &item)).transpose()
    }

    async fn list_directory(
        &self,
        partition: Partition,
        tenant_id: &str,
        sk_prefix: &str,
    ) -> Result<Vec<DirectoryItem>, StoreError> {
        let pk = keys::tenant(partition, tenant_id);
        let mut found = Vec::new();
        let mut start: Option<HashMap<String, AttributeValue>> = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("#pk = :pk AND begins_with(#sk, :prefix)")
                .expression_attribute_names("#pk", "pk")
                .expression_attribute_names("#sk", "sk")
                .expression_attribute_values(":pk", s(pk.as_str()))
                .expression_attribute_values(":prefix", s(sk_prefix))
                .consistent_read(true)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| unavailable("Query(directory)", &e))?;
            for item in out.items.unwrap_or_default() {
                found.push(directory_item(&pk, &item)?);
            }
            match out.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => return Ok(found),
            }
        }
    }

    async fn list_ids(
        &self,
        kind: crate::Listing,
        partition: Partition,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<String>, StoreError> {
        let pk = kind.index_pk(partition);
        let mut ids = Vec::new();
        let mut start = after.map(|a| item_key(&pk, a));
        while ids.len() < limit {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("#pk = :pk")
                .expression_attribute_names("#pk", "pk")
                .expression_attribute_values(":pk", s(pk.as_str()))
                .set_exclusive_start_key(start.take())
                .limit(
                    i32::try_from(limit - ids.len())
                        .unwrap_or(i32::MAX)
                        .min(1000),
                )
                .send()
                .await
                .map_err(|e| unavailable("Query(index)", &e))?;
            ids.extend(
                out.items
                    .unwrap_or_default()
                    .iter()
                    .filter_map(|i| get_s(i, "sk").map(str::to_string)),
            );
            match out.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => break,
            }
        }
        Ok(ids)
    }

    // ---- events (crate::dynamodb_events) ------------------------------------------------------

    async fn record_events(&self, events: &[EventDraft]) -> Result<(), StoreError> {
        self.dynamo_record_events(events).await
    }

    async fn due_events(&self, now_ms: i64, limit: usize) -> Result<Vec<EventRecord>, StoreError> {
        self.dynamo_due_events(now_ms, limit).await
    }

    async fn settle_event(
        &self,
        event: &EventRecord,
        settlement: &EventSettlement,
    ) -> Result<(), StoreError> {
        self.dynamo_settle_event(event, settlement).await
    }

    async fn get_event(&self, id: &str) -> Result<Option<EventRecord>, StoreError> {
        self.dynamo_get_event(id).await
    }

    async fn list_events(&self, query: &EventQuery) -> Result<Vec<EventRecord>, StoreError> {
        self.dynamo_list_events(query).await
    }

    // ---- usage metering (crate::dynamodb_usage) -----------------------------------------------

    async fn record_usage(
        &self,
        data: &crate::UsageData,
    ) -> Result<crate::UsageInsert, StoreError> {
        self.dynamo_record_usage(data).await
    }

    async fn claim_usage(
        &self,
        claim: &crate::UsageClaim<'_>,
    ) -> Result<Vec<crate::UsageRecord>, StoreError> {
        self.dynamo_claim_usage(claim).await
    }

    async fn settle_usage(
        &self,
        owner: &str,
        keys: &[crate::UsageKey],
        settlement: &crate::UsageSettlement,
    ) -> Result<usize, StoreError> {
        self.dynamo_settle_usage(owner, keys, settlement).await
    }

    async fn instance_usage(
        &self,
        instance_id: &str,
    ) -> Result<Vec<crate::UsageRecord>, StoreError> {
        self.dynamo_instance_usage(instance_id).await
    }

    async fn requeue_usage(
        &self,
        current_sn: &str,
        replacement: &crate::UsageData,
    ) -> Result<bool, StoreError> {
        self.dynamo_requeue_usage(current_sn, replacement).await
    }

    async fn usage_backlog(
        &self,
        due_end_time: &str,
        now_ms: i64,
    ) -> Result<crate::UsageBacklog, StoreError> {
        self.dynamo_usage_backlog(due_end_time, now_ms).await
    }
}

fn directory_item(
    pk: &str,
    item: &HashMap<String, AttributeValue>,
) -> Result<DirectoryItem, StoreError> {
    let sk = get_s(item, "sk").ok_or_else(|| corrupt(pk, "missing sk"))?;
    let doc = get_s(item, "doc").ok_or_else(|| corrupt(pk, format!("{sk}: missing doc")))?;
    Ok(DirectoryItem {
        sk: sk.to_string(),
        doc: doc.to_string(),
    })
}

/// The index item of the record at `pk`, when it is a kind an operator lists (see
/// [`crate::Listing`]): written once, when the record is created.
fn index_request(pk: &str) -> Result<Option<WriteRequest>, StoreError> {
    let found = [Partition::Production, Partition::Debug]
        .into_iter()
        .find_map(|p| crate::Listing::of_key(p, pk).map(|(kind, id)| (p, kind, id)));
    let Some((partition, kind, id)) = found else {
        return Ok(None);
    };
    PutRequest::builder()
        .set_item(Some(item_key(&kind.index_pk(partition), id)))
        .build()
        .map(|p| Some(WriteRequest::builder().put_request(p).build()))
        .map_err(|e| StoreError::Unavailable(format!("dynamodb BatchWriteItem: {e}")))
}

fn directory_write_request(pk: &str, w: &DirectoryWrite) -> Result<WriteRequest, StoreError> {
    let built = match w {
        DirectoryWrite::Put(item) => {
            let mut attrs = item_key(pk, &item.sk);
            attrs.insert("doc".into(), s(item.doc.as_str()));
            PutRequest::builder()
                .set_item(Some(attrs))
                .build()
                .map(|p| WriteRequest::builder().put_request(p).build())
        }
        DirectoryWrite::Delete { sk } => DeleteRequest::builder()
            .set_key(Some(item_key(pk, sk)))
            .build()
            .map(|d| WriteRequest::builder().delete_request(d).build()),
    };
    built.map_err(|e| StoreError::Unavailable(format!("dynamodb BatchWriteItem: {e}")))
}

/// One BatchWriteItem of at most 25 writes, resending what DynamoDB left unprocessed.
async fn batch_write(
    client: &Client,
    table: &str,
    op: &str,
    mut pending: Vec<WriteRequest>,
) -> Result<(), StoreError> {
    for round in 0..BATCH_WRITE_ROUNDS {
        if round > 0 {
            tokio::time::sleep(std::time::Duration::from_millis(20 << round)).await;
        }
        let out = client
            .batch_write_item()
            .request_items(table, std::mem::take(&mut pending))
            .send()
            .await
            .map_err(|e| unavailable(op, &e))?;
        pending = out
            .unprocessed_items
            .and_then(|mut u| u.remove(table))
            .unwrap_or_default();
        if pending.is_empty() {
            return Ok(());
        }
    }
    Err(StoreError::Unavailable(format!(
        "dynamodb BatchWriteItem: {} writes still unprocessed after {BATCH_WRITE_ROUNDS} rounds",
        pending.len()
    )))
}

/// The `:value` or `#name` placeholders (by `prefix`) an expression text uses.
#[cfg(test)]
pub(crate) fn placeholders(text: &str, prefix: char) -> std::collections::BTreeSet<String> {
    let mut out = std::collections::BTreeSet::new();
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        if chars[i] == prefix {
            let start = i;
            i += 1;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            out.insert(chars[start..i].iter().collect());
        } else {
            i += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every `:value` and `#name` an expression declares must appear in it, and every one it
    /// uses must be declared: DynamoDB rejects both mistakes, moto accepts them.
    fn assert_placeholders_match(label: &str, e: &Expr) {
        let text = format!("{} {}", e.update.clone().unwrap_or_default(), e.condition);
        let used = |prefix: char| placeholders(&text, prefix);
        let declared_values: std::collections::BTreeSet<String> =
            e.values.iter().map(|(k, _)| k.to_string()).collect();
        let declared_names: std::collections::BTreeSet<String> =
            e.names.iter().map(|(k, _)| k.to_string()).collect();
        assert_eq!(
            used(':'),
            declared_values,
            "{label}: values used vs declared"
        );
        assert_eq!(used('#'), declared_names, "{label}: names used vs declared");
    }

    fn acquire(expires_at: Option<i64>) -> Acquire<'static> {
        Acquire {
            key: "k",
            owner: "o",
            lease_until_ms: 10,
            validation: "v",
            reference: "r",
            expires_at,
            now_ms: 5,
        }
    }

    /// The attribute names koogate stores that DynamoDB reserves: they may only appear aliased.
    const RESERVED: [&str; 6] = [
        "status",
        "owner",
        "reference",
        "response",
        "version",
        "validation",
    ];

    fn assert_no_bare_reserved_words(label: &str, e: &Expr) {
        let text =
            format!("{} {}", e.update.clone().unwrap_or_default(), e.condition).to_lowercase();
        for word in
            text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '#' || c == ':'))
        {
            assert!(
                !RESERVED.contains(&word),
                "{label}: reserved word {word:?} used bare"
            );
        }
    }

    #[test]
    fn no_expression_uses_a_reserved_word_bare() {
        for (label, e) in [
            ("nonce", nonce_expr(1)),
            ("acquire", acquire_expr(&acquire(Some(1)))),
            ("complete", complete_expr("o", "{}", "000000", None)),
            ("abandon", abandon_expr("o")),
            ("update instance", versioned_put_expr(Some(1))),
        ] {
            assert_no_bare_reserved_words(label, &e);
        }
    }

    #[test]
    fn every_expression_uses_exactly_its_placeholders() {
        assert_placeholders_match("nonce", &nonce_expr(1));
        assert_placeholders_match("acquire forever", &acquire_expr(&acquire(None)));
        assert_placeholders_match("acquire expiring", &acquire_expr(&acquire(Some(9))));
        assert_placeholders_match(
            "complete forever",
            &complete_expr("o", "{}", "000000", None),
        );
        assert_placeholders_match(
            "complete expiring",
            &complete_expr("o", "{}", "000000", Some(9)),
        );
        assert_placeholders_match("abandon", &abandon_expr("o"));
        assert_placeholders_match("insert instance", &versioned_put_expr(None));
        assert_placeholders_match("update instance", &versioned_put_expr(Some(3)));
    }

    #[test]
    fn the_placeholder_check_catches_an_unused_value() {
        let mut e = nonce_expr(1);
        e.values.push((":unused", n(1)));
        let caught = std::panic::catch_unwind(|| assert_placeholders_match("bad", &e));
        assert!(caught.is_err(), "an unused :value must be reported");
    }
}
