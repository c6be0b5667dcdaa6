//! Usage records on DynamoDB, without a Scan and without a secondary index.
//!
//! A usage record lives at `usage#<instanceId>` / `<begin>#<end>` (design §4). While it is
//! pending, a pointer item at `usage-pending#<shard>` / `<end>#<instanceId>#<begin>` names it, so
//! the pusher finds due records with a strongly consistent `Query` on a handful of partitions
//! (sorted by end time, `sk < "<due>$"`), never reading settled records. Unlike a GSI, the base
//! table's Query can be consistent, so a record settled a moment ago is never seen as pending.
//!
//! No transaction is needed to keep pointer and record in step:
//! * recording writes the pointer first, then the record (conditional insert): a crash between
//!   the two leaves a pointer without a record, which a claim deletes; a retry rewrites both;
//! * settling updates the record first (conditional on the claim), then deletes the pointer: a
//!   crash between the two leaves a pointer to a settled record, which a claim deletes;
//! * a claim is a conditional update of the record itself (`status = pending AND lease_until <
//!   now`), so two pushers never own one record at once, whatever the pointers say.

use std::collections::HashMap;
use std::future::Future;

use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue, ReturnValuesOnConditionCheckFailure};

use crate::dynamodb::{
    corrupt, get_n, get_s, n, names_map, s, unavailable, values_map, DynamoStore, Expr,
};
use crate::records::{
    UsageClaim, UsageData, UsageInsert, UsageKey, UsageRecord, UsageSettlement, UsageStatus,
};
use crate::{keys, StoreError};

/// How many single-item requests one call keeps in flight.
const CONCURRENCY: usize = 32;
/// Query pages read per shard and claim before giving up on finding more claimable records.
const MAX_PAGES_PER_SHARD: usize = 8;

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
            "SET #lu = :nb"
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

/// Deletes a pointer (unconditionally: pointers are hints, the record decides).
async fn delete_pointer(store: &DynamoStore, k: &UsageKey) -> Result<(), StoreError> {
    store
        .client
        .delete_item()
        .table_name(&store.table)
        .set_key(Some(pointer_key(k)))
        .send()
        .await
        .map_err(|e| unavailable("DeleteItem(usage pointer)", &e))?;
    Ok(())
}

/// The outcome of claiming one record.
enum Claimed {
    Mine(Box<UsageRecord>),
    /// Held by a live claim, or backing off: leave it.
    Busy,
}

async fn claim_one(
    store: DynamoStore,
    k: UsageKey,
    e: std::sync::Arc<Expr>,
) -> Result<Claimed, StoreError> {
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
        .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
        .send()
        .await;
    match res {
        Ok(out) => {
            let item = out
                .attributes
                .ok_or_else(|| corrupt(&keys::usage(&k.instance_id), "claim returned no item"))?;
            Ok(Claimed::Mine(Box::new(usage_from_item(&item)?)))
        }
        Err(err) => {
            use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
            match err.as_service_error() {
                Some(UpdateItemError::ConditionalCheckFailedException(c)) => {
                    let old = c.item().map(usage_from_item).transpose()?;
                    match old {
                        // A live claim or a back-off: the pointer stays.
                        Some(r) if r.status == UsageStatus::Pending => Ok(Claimed::Busy),
                        // Settled, or never written (crash while recording): a stale pointer.
                        _ => {
                            delete_pointer(&store, &k).await?;
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
        let mut pointer = pointer_key(&k);
        pointer.insert("instance_id".into(), s(k.instance_id.as_str()));
        pointer.insert("begin_time".into(), s(k.begin_time.as_str()));
        pointer.insert("end_time".into(), s(k.end_time.as_str()));
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(pointer))
            .send()
            .await
            .map_err(|e| unavailable("PutItem(usage pointer)", &e))?;
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
                        let old = c.item().map(usage_from_item).transpose()?.ok_or_else(|| {
                            corrupt(&keys::usage(&k.instance_id), "no old item returned")
                        })?;
                        if old.status != UsageStatus::Pending {
                            // Step 1 re-created a pointer to a settled record.
                            delete_pointer(self, &k).await?;
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
                let keys: Vec<UsageKey> = page
                    .items()
                    .iter()
                    .filter_map(|p| {
                        Some(UsageKey {
                            instance_id: get_s(p, "instance_id")?.to_string(),
                            begin_time: get_s(p, "begin_time")?.to_string(),
                            end_time: get_s(p, "end_time")?.to_string(),
                        })
                    })
                    .collect();
                let store = self.clone();
                let e = expr.clone();
                let claimed =
                    bounded(keys, move |k| claim_one(store.clone(), k, e.clone())).await?;
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
        let settled = bounded(keys.to_vec(), move |k| {
            let store = store.clone();
            let e = expr.clone();
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
                    .send()
                    .await;
                match res {
                    Ok(_) => {
                        if final_state {
                            delete_pointer(&store, &k).await?;
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
