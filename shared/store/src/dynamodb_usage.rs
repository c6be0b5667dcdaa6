//! Usage records on DynamoDB, without a Scan and without a secondary index.
//!
//! A usage record lives at `usage#<instanceId>` / `<begin>#<end>` (design §4). While it is
//! pending, a pointer item at `usage-pending#<shard>` / `<end>#<instanceId>#<begin>` names it, so
//! the pusher finds due records with a strongly consistent `Query` on a handful of partitions
//! (sorted by end time, `sk < "<due>$"`), never reading settled records. Unlike a GSI, the base
//! table's Query can be consistent, so a record settled a moment ago is never seen as pending.
//!
//! A pointer carries `written_at` (epoch ms of its last write), `ptr_token` (random, new at every
//! write) and `ptr_sn` (the `metering_sn` of the generation of the record it was written for).
//! No transaction is needed to keep pointer and record in step; the invariant is "a pending
//! record always has a pointer", and a pointer is only ever deleted by someone who knows it is
//! no longer needed:
//! * recording writes (or refreshes) the pointer first, then the record (conditional insert). A
//!   crash between the two leaves a pointer without a record; a retry refreshes both. When the
//!   record already exists settled, the recorder deletes the pointer it wrote only if nobody
//!   rewrote it since (condition on its own `ptr_token`);
//! * re-queueing a failed record (correction or resend: a new generation with a new
//!   `metering_sn`) also writes the pointer first (with the new `ptr_sn`), then turns the record
//!   pending (conditional on it still being that failed record);
//! * settling updates the record first (conditional on the claim), then deletes the pointer only
//!   if it still names the settled generation (`ptr_sn`): if a re-queue slipped in between, its
//!   pointer (new `ptr_sn`) survives. A crash between the two leaves a pointer to a settled
//!   record;
//! * a claim that finds a pointer whose record is missing or settled deletes it only when the
//!   pointer is older than [`STALE_POINTER_MS`] and unchanged since read (`ptr_token`): a young
//!   one may belong to a recording or re-queue still between its two writes, which a claim must
//!   not undo (it would leave a pending record without a pointer, never pushed);
//! * a claim is a conditional update of the record itself (`status = pending AND lease_until <
//!   now`), so two pushers never own one record at once, whatever the pointers say.
//!
//! Pointers written before `ptr_token` existed have none; they count as old.

use std::collections::HashMap;
use std::future::Future;

use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue, ReturnValuesOnConditionCheckFailure};

use crate::dynamodb::{
    corrupt, get_n, get_s, n, names_map, s, unavailable, values_map, DynamoStore, Expr,
};
use crate::records::{
    UsageBacklog, UsageClaim, UsageData, UsageInsert, UsageKey, UsageRecord, UsageSettlement,
    UsageStatus,
};
use crate::{keys, StoreError};

/// How many single-item requests one call keeps in flight.
const CONCURRENCY: usize = 32;
/// Query pages read per shard and claim before giving up on finding more claimable records.
const MAX_PAGES_PER_SHARD: usize = 8;
/// A pointer whose record is missing or settled is removed by a claim only once it is this old:
/// far longer than a recording or a re-queue takes between its two writes.
pub(crate) const STALE_POINTER_MS: i64 = 10 * 60 * 1000;

const USAGE_NAMES: [(&str, &str); 6] = [
    ("#st", "status"),
    ("#ow", "owner"),
    ("#lu", "lease_until"),
    ("#at", "attempts"),
    ("#fa", "failure"),
    ("#sa", "settled_at"),
];

/// An expression with the aliases of [`USAGE_NAMES`] that it uses.
fn usage_expr(
    update: Option<String>,
    condition: &str,
    values: Vec<(&'static str, AttributeValue)>,
) -> Expr {
    let text = format!("{} {condition}", update.as_deref().unwrap_or(""));
    let names = crate::dynamodb::aliases_used(&USAGE_NAMES, &text);
    Expr {
        update,
        condition: condition.to_string(),
        names,
        values,
    }
}

pub(crate) fn claim_expr(claim: &UsageClaim<'_>) -> Expr {
    usage_expr(
        Some("SET #ow = :owner, #lu = :lease ADD #at :one".into()),
        "#st = :pending AND #lu < :now",
        vec![
            (":owner", s(claim.owner)),
            (":lease", n(claim.lease_until_ms)),
            (":one", n(1)),
            (":pending", s(UsageStatus::Pending.as_str())),
            (":now", n(claim.now_ms)),
        ],
    )
}

pub(crate) fn settle_expr(owner: &str, settlement: &UsageSettlement) -> Expr {
    let condition = "#st = :pending AND #ow = :owner";
    let mut values = vec![
        (":pending", s(UsageStatus::Pending.as_str())),
        (":owner", s(owner)),
    ];
    let update = match settlement {
        UsageSettlement::Pushed { at_ms } => {
            values.push((":done", s(UsageStatus::Pushed.as_str())));
            values.push((":at", n(*at_ms)));
            "SET #st = :done, #sa = :at REMOVE #fa"
        }
        UsageSettlement::Failed { code, at_ms } => {
            values.push((":done", s(UsageStatus::Failed.as_str())));
            values.push((":at", n(*at_ms)));
            values.push((":code", s(code.as_str())));
            "SET #st = :done, #sa = :at, #fa = :code"
        }
        UsageSettlement::Retry { not_before_ms } => {
            values.push((":nb", n(*not_before_ms)));
            "SET #lu = :nb REMOVE #ow"
        }
    };
    usage_expr(Some(update.into()), condition, values)
}

fn record_key(k: &UsageKey) -> HashMap<String, AttributeValue> {
    HashMap::from([
        ("pk".to_string(), s(keys::usage(&k.instance_id))),
        (
            "sk".to_string(),
            s(keys::usage_sk(&k.begin_time, &k.end_time)),
        ),
    ])
}

fn pointer_key(k: &UsageKey) -> HashMap<String, AttributeValue> {
    HashMap::from([
        ("pk".to_string(), s(keys::usage_pending(&k.instance_id))),
        (
            "sk".to_string(),
            s(keys::usage_pending_sk(
                &k.instance_id,
                &k.begin_time,
                &k.end_time,
            )),
        ),
    ])
}

/// What a claim read from a pointer item.
struct Pointer {
    key: UsageKey,
    written_at: i64,
    token: Option<String>,
}

fn pointer_from_item(p: &HashMap<String, AttributeValue>) -> Option<Pointer> {
    Some(Pointer {
        key: UsageKey {
            instance_id: get_s(p, "instance_id")?.to_string(),
            begin_time: get_s(p, "begin_time")?.to_string(),
            end_time: get_s(p, "end_time")?.to_string(),
        },
        written_at: get_n(p, "written_at").unwrap_or(0),
        token: get_s(p, "ptr_token").map(str::to_string),
    })
}

fn wall_clock_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// A token unique to one pointer write.
fn new_token() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let seq = NEXT.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("{}-{nanos}-{seq}", std::process::id())
}

/// Writes or refreshes the pointer of `k` (new `written_at` and `ptr_token`); `ptr_sn` becomes
/// `sn` when `replace_sn`, otherwise only when the pointer had none. Returns the token written.
async fn write_pointer(
    store: &DynamoStore,
    k: &UsageKey,
    sn: &str,
    replace_sn: bool,
) -> Result<String, StoreError> {
    let token = new_token();
    let sn_update = if replace_sn {
        "ptr_sn = :sn"
    } else {
        "ptr_sn = if_not_exists(ptr_sn, :sn)"
    };
    store
        .client
        .update_item()
        .table_name(&store.table)
        .set_key(Some(pointer_key(k)))
        .update_expression(format!(
            "SET instance_id = :i, begin_time = :b, end_time = :e, written_at = :w, \
             ptr_token = :t, {sn_update}"
        ))
        .expression_attribute_values(":i", s(k.instance_id.as_str()))
        .expression_attribute_values(":b", s(k.begin_time.as_str()))
        .expression_attribute_values(":e", s(k.end_time.as_str()))
        .expression_attribute_values(":w", n(wall_clock_ms()))
        .expression_attribute_values(":t", s(token.as_str()))
        .expression_attribute_values(":sn", s(sn))
        .send()
        .await
        .map_err(|e| unavailable("UpdateItem(usage pointer)", &e))?;
    Ok(token)
}

/// How a pointer may be deleted.
enum PointerGuard<'a> {
    /// Only if nobody rewrote it since this token was read or written (`None`: it had none).
    Token(Option<&'a str>),
    /// Only if it names this generation (or predates `ptr_sn`).
    Sn(&'a str),
}

/// Deletes a pointer under `guard`; a failed condition is not an error (someone else's write
/// now owns the pointer).
async fn delete_pointer_if(
    store: &DynamoStore,
    k: &UsageKey,
    guard: PointerGuard<'_>,
) -> Result<(), StoreError> {
    let req = store
        .client
        .delete_item()
        .table_name(&store.table)
        .set_key(Some(pointer_key(k)));
    let req = match guard {
        PointerGuard::Token(Some(t)) => req
            .condition_expression("ptr_token = :t")
            .expression_attribute_values(":t", s(t)),
        PointerGuard::Token(None) => req.condition_expression("attribute_not_exists(ptr_token)"),
        PointerGuard::Sn(sn) => req
            .condition_expression("attribute_not_exists(ptr_sn) OR ptr_sn = :sn")
            .expression_attribute_values(":sn", s(sn)),
    };
    match req.send().await {
        Ok(_) => Ok(()),
        Err(err) => match err.as_service_error() {
            Some(se) if se.is_conditional_check_failed_exception() => Ok(()),
            _ => Err(unavailable("DeleteItem(usage pointer)", &err)),
        },
    }
}

fn usage_from_item(item: &HashMap<String, AttributeValue>) -> Result<UsageRecord, StoreError> {
    let key = format!(
        "{}/{}",
        get_s(item, "pk").unwrap_or("?"),
        get_s(item, "sk").unwrap_or("?")
    );
    let doc = get_s(item, "doc").ok_or_else(|| corrupt(&key, "missing doc"))?;
    let data: UsageData = serde_json::from_str(doc).map_err(|e| corrupt(&key, e.to_string()))?;
    let status = get_s(item, "status")
        .and_then(UsageStatus::parse)
        .ok_or_else(|| corrupt(&key, "missing or unknown status"))?;
    Ok(UsageRecord {
        data,
        status,
        failure: get_s(item, "failure").map(str::to_string),
        attempts: get_n(item, "attempts")
            .and_then(|a| u32::try_from(a).ok())
            .unwrap_or(0),
        settled_at_ms: get_n(item, "settled_at"),
    })
}

/// Runs `f` over `items` with at most [`CONCURRENCY`] in flight; results in completion order.
async fn bounded<T, R, F, Fut>(items: Vec<T>, f: F) -> Result<Vec<R>, StoreError>
where
    T: Send + 'static,
    R: Send + 'static,
    F: Fn(T) -> Fut,
    Fut: Future<Output = Result<R, StoreError>> + Send + 'static,
{
    let mut set = tokio::task::JoinSet::new();
    let mut out = Vec::with_capacity(items.len());
    let mut first_error = None;
    for item in items {
        if set.len() >= CONCURRENCY {
            if let Some(joined) = set.join_next().await {
                collect(joined, &mut out, &mut first_error);
            }
        }
        set.spawn(f(item));
    }
    while let Some(joined) = set.join_next().await {
        collect(joined, &mut out, &mut first_error);
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(out),
    }
}

fn collect<R>(
    joined: Result<Result<R, StoreError>, tokio::task::JoinError>,
    out: &mut Vec<R>,
    first_error: &mut Option<StoreError>,
) {
    match joined {
        Ok(Ok(r)) => out.push(r),
        Ok(Err(e)) => {
            first_error.get_or_insert(e);
        }
        Err(e) => {
            first_error.get_or_insert(StoreError::Unavailable(format!("dynamodb task: {e}")));
        }
    }
}

/// The outcome of claiming one record.
enum Claimed {
    Mine(Box<UsageRecord>),
    /// Held by a live claim, or backing off: leave it.
    Busy,
}

async fn claim_one(
    store: DynamoStore,
    p: Pointer,
    e: std::sync::Arc<Expr>,
    owner: std::sync::Arc<str>,
    now_ms: i64,
) -> Result<Claimed, StoreError> {
    let k = &p.key;
    let res = store
        .client
        .update_item()
        .table_name(&store.table)
        .set_key(Some(record_key(k)))
        .set_update_expression(e.update.clone())
        .condition_expression(&e.condition)
        .set_expression_attribute_names(names_map(&e))
        .set_expression_attribute_values(values_map(&e))
        .return_values(ReturnValue::AllNew)
        .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
        .send()
        .await;
    match res {
        Ok(out) => {
            let item = match out.attributes {
                Some(item) => item,
                // `ReturnValues` ignored (GeminiDB): read the record just claimed. It is ours
                // for the whole lease; should another owner show, the claim was taken over.
                None => match store
                    .get_consistent("GetItem(claim fallback)", record_key(k))
                    .await?
                {
                    Some(item) if get_s(&item, "owner") == Some(&*owner) => item,
                    _ => return Ok(Claimed::Busy),
                },
            };
            Ok(Claimed::Mine(Box::new(usage_from_item(&item)?)))
        }
        Err(err) => {
            use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
            match err.as_service_error() {
                Some(UpdateItemError::ConditionalCheckFailedException(c)) => {
                    let old = match c.item() {
                        Some(item) => Some(usage_from_item(item)?),
                        // No old item came back (GeminiDB may ignore
                        // `ReturnValuesOnConditionCheckFailure`): read it.
                        None => store
                            .get_consistent("GetItem(claim fallback)", record_key(k))
                            .await?
                            .as_ref()
                            .map(usage_from_item)
                            .transpose()?,
                    };
                    match old {
                        // A live claim or a back-off: the pointer stays.
                        Some(r) if r.status == UsageStatus::Pending => Ok(Claimed::Busy),
                        // Settled, or not (yet) written: stale once old enough (module doc).
                        _ => {
                            if p.written_at < now_ms.saturating_sub(STALE_POINTER_MS) {
                                delete_pointer_if(
                                    &store,
                                    k,
                                    PointerGuard::Token(p.token.as_deref()),
                                )
                                .await?;
                            }
                            Ok(Claimed::Busy)
                        }
                    }
                }
                _ => Err(unavailable("UpdateItem(claim usage)", &err)),
            }
        }
    }
}

impl DynamoStore {
    pub(crate) async fn dynamo_record_usage(
        &self,
        data: &UsageData,
    ) -> Result<UsageInsert, StoreError> {
        let k = data.key();
        let doc = serde_json::to_string(data)
            .map_err(|e| corrupt(&keys::usage(&data.instance_id), e.to_string()))?;
        // 1. The pointer, so that a record can never exist pending without one.
        let token = write_pointer(self, &k, &data.metering_sn, false).await?;
        // 2. The record, once.
        let mut item = record_key(&k);
        item.insert("doc".into(), s(doc));
        item.insert("status".into(), s(UsageStatus::Pending.as_str()));
        item.insert("lease_until".into(), n(0));
        item.insert("attempts".into(), n(0));
        let res = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match res {
            Ok(_) => Ok(UsageInsert::Recorded),
            Err(err) => {
                use aws_sdk_dynamodb::operation::put_item::PutItemError;
                match err.as_service_error() {
                    Some(PutItemError::ConditionalCheckFailedException(c)) => {
                        let old = match c.item() {
                            Some(item) => Some(usage_from_item(item)?),
                            // No old item came back (GeminiDB may ignore
                            // `ReturnValuesOnConditionCheckFailure`): read it.
                            None => self
                                .get_consistent("GetItem(usage fallback)", record_key(&k))
                                .await?
                                .as_ref()
                                .map(usage_from_item)
                                .transpose()?,
                        }
                        .ok_or_else(|| {
                            corrupt(&keys::usage(&k.instance_id), "no old item returned")
                        })?;
                        if old.status != UsageStatus::Pending {
                            // Step 1 wrote a pointer to a settled record: remove it unless
                            // someone (a re-queue) rewrote it since.
                            delete_pointer_if(self, &k, PointerGuard::Token(Some(&token))).await?;
                        }
                        Ok(UsageInsert::Exists(Box::new(old)))
                    }
                    _ => Err(unavailable("PutItem(usage)", &err)),
                }
            }
        }
    }

    pub(crate) async fn dynamo_claim_usage(
        &self,
        claim: &UsageClaim<'_>,
    ) -> Result<Vec<UsageRecord>, StoreError> {
        let expr = std::sync::Arc::new(claim_expr(claim));
        let owner: std::sync::Arc<str> = claim.owner.into();
        // '$' follows '#': every sort key "<end>#…" with end <= due sorts below "<due>$".
        let bound = format!("{}$", claim.due_end_time);
        let mut out: Vec<UsageRecord> = Vec::new();
        for shard in 0..keys::USAGE_PENDING_SHARDS {
            let mut start: Option<HashMap<String, AttributeValue>> = None;
            for _ in 0..MAX_PAGES_PER_SHARD {
                let want = claim.limit.saturating_sub(out.len());
                if want == 0 {
                    return Ok(out);
                }
                let page = self
                    .client
                    .query()
                    .table_name(&self.table)
                    .key_condition_expression("pk = :p AND sk < :due")
                    .expression_attribute_values(":p", s(keys::usage_pending_shard(shard)))
                    .expression_attribute_values(":due", s(bound.as_str()))
                    .consistent_read(true)
                    .limit(i32::try_from(want.min(1000)).unwrap_or(1000))
                    .set_exclusive_start_key(start.take())
                    .send()
                    .await
                    .map_err(|e| unavailable("Query(usage pointers)", &e))?;
                let pointers: Vec<Pointer> =
                    page.items().iter().filter_map(pointer_from_item).collect();
                let store = self.clone();
                let e = expr.clone();
                let owner = owner.clone();
                let now_ms = claim.now_ms;
                let claimed = bounded(pointers, move |p| {
                    claim_one(store.clone(), p, e.clone(), owner.clone(), now_ms)
                })
                .await?;
                out.extend(claimed.into_iter().filter_map(|c| match c {
                    Claimed::Mine(r) => Some(*r),
                    Claimed::Busy => None,
                }));
                start = page.last_evaluated_key;
                if start.is_none() {
                    break;
                }
            }
        }
        out.sort_by(|a, b| a.data.end_time.cmp(&b.data.end_time));
        Ok(out)
    }

    pub(crate) async fn dynamo_settle_usage(
        &self,
        owner: &str,
        keys: &[UsageKey],
        settlement: &UsageSettlement,
    ) -> Result<usize, StoreError> {
        let expr = std::sync::Arc::new(settle_expr(owner, settlement));
        let final_state = !matches!(settlement, UsageSettlement::Retry { .. });
        let store = self.clone();
        let owner: std::sync::Arc<str> = owner.into();
        let settled = bounded(keys.to_vec(), move |k| {
            let store = store.clone();
            let e = expr.clone();
            let owner = owner.clone();
            async move {
                let res = store
                    .client
                    .update_item()
                    .table_name(&store.table)
                    .set_key(Some(record_key(&k)))
                    .set_update_expression(e.update.clone())
                    .condition_expression(&e.condition)
                    .set_expression_attribute_names(names_map(&e))
                    .set_expression_attribute_values(values_map(&e))
                    .return_values(ReturnValue::AllNew)
                    .send()
                    .await;
                match res {
                    Ok(out) => {
                        if final_state {
                            let item = match out.attributes {
                                Some(item) => Some(item),
                                // `ReturnValues` ignored (GeminiDB): read the record back, and
                                // use it only while it is still the generation this owner
                                // settled; a re-queue in between (pending again, owner removed)
                                // needs its pointer, which a stale-pointer sweep removes
                                // otherwise.
                                None => store
                                    .get_consistent("GetItem(settle fallback)", record_key(&k))
                                    .await?
                                    .filter(|i| {
                                        get_s(i, "owner") == Some(&*owner)
                                            && get_s(i, "status")
                                                != Some(UsageStatus::Pending.as_str())
                                    }),
                            };
                            let settled = item.as_ref().map(usage_from_item).transpose()?;
                            if let Some(r) = settled {
                                delete_pointer_if(
                                    &store,
                                    &k,
                                    PointerGuard::Sn(&r.data.metering_sn),
                                )
                                .await?;
                            }
                        }
                        Ok(true)
                    }
                    Err(err) => match err.as_service_error() {
                        Some(se) if se.is_conditional_check_failed_exception() => Ok(false),
                        _ => Err(unavailable("UpdateItem(settle usage)", &err)),
                    },
                }
            }
        })
        .await?;
        Ok(settled.into_iter().filter(|ok| *ok).count())
    }

    pub(crate) async fn dynamo_requeue_usage(
        &self,
        current_sn: &str,
        replacement: &UsageData,
    ) -> Result<bool, StoreError> {
        let k = replacement.key();
        let doc = serde_json::to_string(replacement)
            .map_err(|e| corrupt(&keys::usage(&k.instance_id), e.to_string()))?;
        // 1. The pointer of the new generation (module doc).
        write_pointer(self, &k, &replacement.metering_sn, true).await?;
        // 2. The record, only while it is the failed record the caller read. The doc is
        // serde_json's compact form, so its metering_sn is exactly this text.
        let needle = format!("\"metering_sn\":\"{current_sn}\"");
        let res = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(record_key(&k)))
            .update_expression(
                "SET doc = :doc, #st = :pending, #lu = :zero, #at = :zero REMOVE #ow, #fa, #sa",
            )
            .condition_expression("#st = :failed AND contains(doc, :sn)")
            .expression_attribute_names("#st", "status")
            .expression_attribute_names("#lu", "lease_until")
            .expression_attribute_names("#at", "attempts")
            .expression_attribute_names("#ow", "owner")
            .expression_attribute_names("#fa", "failure")
            .expression_attribute_names("#sa", "settled_at")
            .expression_attribute_values(":doc", s(doc))
            .expression_attribute_values(":pending", s(UsageStatus::Pending.as_str()))
            .expression_attribute_values(":failed", s(UsageStatus::Failed.as_str()))
            .expression_attribute_values(":zero", n(0))
            .expression_attribute_values(":sn", s(needle))
            .send()
            .await;
        match res {
            Ok(_) => Ok(true),
            // Not that failed record (any more): the pointer just written is stale and goes
            // once old (module doc).
            Err(err) => match err.as_service_error() {
                Some(se) if se.is_conditional_check_failed_exception() => Ok(false),
                _ => Err(unavailable("UpdateItem(requeue usage)", &err)),
            },
        }
    }

    pub(crate) async fn dynamo_usage_backlog(
        &self,
        due_end_time: &str,
        now_ms: i64,
    ) -> Result<UsageBacklog, StoreError> {
        let bound = format!("{due_end_time}$");
        let mut keys_due: Vec<UsageKey> = Vec::new();
        for shard in 0..keys::USAGE_PENDING_SHARDS {
            let mut start: Option<HashMap<String, AttributeValue>> = None;
            loop {
                let page = self
                    .client
                    .query()
                    .table_name(&self.table)
                    .key_condition_expression("pk = :p AND sk < :due")
                    .expression_attribute_values(":p", s(keys::usage_pending_shard(shard)))
                    .expression_attribute_values(":due", s(bound.as_str()))
                    .consistent_read(true)
                    .set_exclusive_start_key(start.take())
                    .send()
                    .await
                    .map_err(|e| unavailable("Query(usage pointers)", &e))?;
                keys_due.extend(
                    page.items()
                        .iter()
                        .filter_map(pointer_from_item)
                        .map(|p| p.key),
                );
                start = page.last_evaluated_key;
                if start.is_none() {
                    break;
                }
            }
        }
        let store = self.clone();
        let items = bounded(keys_due, move |k| {
            let store = store.clone();
            async move {
                let out = store
                    .client
                    .get_item()
                    .table_name(&store.table)
                    .set_key(Some(record_key(&k)))
                    .consistent_read(true)
                    .send()
                    .await
                    .map_err(|e| unavailable("GetItem(usage)", &e))?;
                Ok(out.item)
            }
        })
        .await?;
        let mut backlog = UsageBacklog::default();
        for item in items.into_iter().flatten() {
            let r = usage_from_item(&item)?;
            if r.status != UsageStatus::Pending {
                continue; // a stale pointer
            }
            backlog.add(
                &r.data.end_time,
                get_s(&item, "owner"),
                get_n(&item, "lease_until").unwrap_or(0),
                r.attempts,
                now_ms,
            );
        }
        Ok(backlog)
    }

    pub(crate) async fn dynamo_instance_usage(
        &self,
        instance_id: &str,
    ) -> Result<Vec<UsageRecord>, StoreError> {
        let mut out = Vec::new();
        let mut start: Option<HashMap<String, AttributeValue>> = None;
        loop {
            let page = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :p")
                .expression_attribute_values(":p", s(keys::usage(instance_id)))
                .consistent_read(true)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| unavailable("Query(instance usage)", &e))?;
            for item in page.items() {
                out.push(usage_from_item(item)?);
            }
            start = page.last_evaluated_key;
            if start.is_none() {
                return Ok(out);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::dynamodb::placeholders;

    /// DynamoDB rejects unused or undeclared placeholders (moto accepts them).
    #[test]
    fn usage_expressions_use_exactly_their_placeholders() {
        let claim = UsageClaim {
            owner: "o",
            now_ms: 1,
            lease_until_ms: 2,
            due_end_time: "20240101T000000Z",
            limit: 10,
        };
        let exprs = [
            claim_expr(&claim),
            settle_expr("o", &UsageSettlement::Pushed { at_ms: 1 }),
            settle_expr(
                "o",
                &UsageSettlement::Failed {
                    code: "MKT.9003".into(),
                    at_ms: 1,
                },
            ),
            settle_expr("o", &UsageSettlement::Retry { not_before_ms: 1 }),
        ];
        for e in exprs {
            let text = format!("{} {}", e.update.clone().unwrap_or_default(), e.condition);
            let values: std::collections::BTreeSet<String> =
                e.values.iter().map(|(k, _)| k.to_string()).collect();
            let names: std::collections::BTreeSet<String> =
                e.names.iter().map(|(k, _)| k.to_string()).collect();
            assert_eq!(placeholders(&text, ':'), values, "{text}");
            assert_eq!(placeholders(&text, '#'), names, "{text}");
            for word in ["status", "owner"] {
                assert!(!text.split(' ').any(|w| w == word), "{text}");
            }
        }
    }
}
