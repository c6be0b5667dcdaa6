//! newInstance (D7): one instance per order, whatever the marketplace resends.
//!
//! The order record `order#<orderId>#<orderLineId>` is both the permanent order → instanceId
//! mapping and the idempotency lock: the first delivery's `businessId` becomes the instanceId, a
//! duplicate during processing answers `000004`, a duplicate after success replays the stored
//! answer. A first delivery costs the replay guard's write plus three: acquire, instance,
//! complete; a duplicate costs the replay guard's write plus the refused acquire.

use std::sync::Arc;
use std::time::Duration;

use koogate_protocol::envelope::Answer;
use koogate_protocol::request::NewInstance;
use koogate_protocol::result_code::ResultCode;
use koogate_runtime::config::ProvisioningMode;
use koogate_runtime::pipeline::store_failure;
use koogate_runtime::provisioner::{ProvisionError, ProvisionRequest};
use koogate_runtime::{App, Call, Outcome, Reply};
use koogate_store::{
    keys, AcquireOutcome, AppliedOrder, Instance, InstanceState, Partition, VersionedWrite,
};
use sha2::{Digest, Sha256};

const ACTIVITY: &str = "newInstance";

/// Time kept back from the budget for writing the answer after provisioning.
const ANSWER_MARGIN_MS: i64 = 500;

/// An asynchronous provisioning that has made no progress for this long is started again by
/// the next delivery (the process that ran it is presumed gone).
const STALE_PROVISIONING_MS: i64 = 60_000;

/// One purchase, as the V2 and V1 newInstance bodies both describe it.
#[derive(Debug, Clone)]
pub struct Purchase {
    pub debug: bool,
    /// The idempotency lock and permanent order → instanceId mapping.
    pub key: String,
    /// Hash of the fields that must not change between deliveries (design §5).
    pub validation: String,
    /// This delivery's proposal for the instanceId (its businessId, D7).
    pub proposed_id: String,
    pub order_id: String,
    pub order_line_id: String,
    pub product_id: Option<String>,
    pub sku_code: Option<String>,
    pub charging_mode: Option<String>,
    pub expire_time: Option<String>,
}

/// How a purchase ended.
pub enum Purchased {
    /// The order has its instance (`000000`) or is being provisioned (`000004`); `stored` is the
    /// V2 answer, replayed byte for byte on later deliveries.
    Done {
        instance_id: String,
        code: ResultCode,
        stored: Vec<u8>,
    },
    /// Anything else (mismatch, store or provisioning failure): answer this.
    Refused(Outcome),
}

/// The fields of `parts` hashed, for [`Purchase::validation`].
pub fn validation_of(parts: &[Option<&str>]) -> String {
    let mut h = Sha256::new();
    for part in parts {
        h.update(part.unwrap_or("").as_bytes());
        h.update([0u8]);
    }
    hex::encode(h.finalize())
}

/// The instanceId a delivery proposes: its businessId, or a UUID when that is absent or longer
/// than 64 characters (D7).
pub fn proposed_instance_id(business_id: Option<&str>) -> String {
    business_id
        .map(str::trim)
        .filter(|b| !b.is_empty() && b.chars().count() <= 64)
        .map(str::to_string)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string())
}

fn answer_with_id(code: ResultCode, instance_id: &str) -> Answer {
    Answer::code(code).with("instanceId", instance_id.to_string())
}

/// The V2 body as a [`Purchase`]: key `(orderId, orderLineId)`, or `(orderId, productId)` for a
/// pay-per-use order (D7; the thin body names no charging mode, so it always uses the line).
fn purchase_of(r: &NewInstance) -> Purchase {
    let partition = Partition::from_debug_flag(r.test_flag);
    let key = match (r.charging_mode(), r.product_id()) {
        (Some("ON_DEMAND"), Some(product)) => keys::order(partition, &r.order_id, product),
        _ => keys::order(partition, &r.order_id, &r.order_line_id),
    };
    // The thin body fixes nothing besides the key; the fat body fixes buyer and product.
    let validation = match &r.fat {
        None => String::new(),
        Some(f) => validation_of(&[
            f.customer_id.as_deref(),
            f.product_id.as_deref(),
            f.sku_code.as_deref(),
        ]),
    };
    let fat = r.fat.as_ref();
    Purchase {
        debug: r.test_flag,
        key,
        validation,
        proposed_id: proposed_instance_id(r.business_id.as_deref()),
        order_id: r.order_id.clone(),
        order_line_id: r.order_line_id.clone(),
        product_id: r.product_id().map(str::to_string),
        sku_code: fat.and_then(|f| f.sku_code.clone()),
        charging_mode: r.charging_mode().map(str::to_string),
        expire_time: fat.and_then(|f| f.expire_time.clone()),
    }
}

/// V2 newInstance.
pub async fn handle(call: &Call<'_>, r: &NewInstance) -> Outcome {
    match purchase(call, &purchase_of(r)).await {
        Purchased::Done { stored, .. } => Outcome {
            reply: Reply::Stored(stored),
            activity: Some(ACTIVITY),
            debug: r.test_flag,
            reason: None,
        },
        Purchased::Refused(outcome) => outcome,
    }
}

/// newInstance, whatever the interface generation: one instance per order, forever.
pub async fn purchase(call: &Call<'_>, p: &Purchase) -> Purchased {
    let debug = p.debug;
    let partition = Partition::from_debug_flag(debug);
    match call
        .acquire(&p.key, &p.validation, &p.proposed_id, None)
        .await
    {
        Err(e) => Purchased::Refused(store_failure(Some(ACTIVITY), debug, &e)),
        Ok(AcquireOutcome::Mismatch) => Purchased::Refused(
            Outcome::answer(
                Answer::error(
                    ResultCode::InvalidParam,
                    "orderId was already used for a different buyer or product",
                ),
                Some(ACTIVITY),
                debug,
            )
            .because("idempotency validation mismatch"),
        ),
        Ok(AcquireOutcome::InFlight { reference }) => Purchased::Done {
            stored: answer_with_id(ResultCode::Processing, &reference).render(),
            instance_id: reference,
            code: ResultCode::Processing,
        },
        Ok(AcquireOutcome::Completed {
            reference,
            response,
        }) => {
            if !debug && call.app.config.provisioning == ProvisioningMode::Async {
                if let Some(done) = resume_async(call, partition, &reference, &response).await {
                    return done;
                }
            }
            let code = if response.contains("\"resultCode\":\"000004\"") {
                ResultCode::Processing
            } else {
                ResultCode::Success
            };
            Purchased::Done {
                instance_id: reference,
                code,
                stored: response.into_bytes(),
            }
        }
        Ok(AcquireOutcome::Acquired { reference }) => create(call, p, &reference).await,
    }
}

fn new_record(call: &Call<'_>, p: &Purchase, instance_id: &str, state: InstanceState) -> Instance {
    Instance {
        instance_id: instance_id.to_string(),
        debug: p.debug,
        state,
        order_id: p.order_id.clone(),
        order_line_id: p.order_line_id.clone(),
        product_id: p.product_id.clone(),
        sku_code: p.sku_code.clone(),
        charging_mode: p.charging_mode.clone(),
        expire_time: p.expire_time.clone(),
        expire_time_ms: p
            .expire_time
            .as_deref()
            .and_then(|t| koogate_protocol::timestamp::parse_expire_time(t).ok()),
        app_info: None,
        failure: None,
        license: None,
        orders: vec![AppliedOrder::new(
            ACTIVITY,
            &p.order_id,
            &p.order_line_id,
            call.now_ms,
        )],
        created_at_ms: call.now_ms,
        updated_at_ms: call.now_ms,
        version: 1,
        order_details: None,
    }
}

/// The purchase completed with what Query Order said (what the body said wins).
fn with_details(p: &Purchase, d: &koogate_store::records::OrderDetails) -> Purchase {
    let mut p = p.clone();
    p.product_id = p.product_id.or_else(|| d.product_id.clone());
    p.sku_code = p.sku_code.or_else(|| d.sku_code.clone());
    p.charging_mode = p.charging_mode.or_else(|| d.charging_mode.clone());
    p.expire_time = p.expire_time.or_else(|| d.expire_time.clone());
    p
}

/// Writes a new instance record. A record left by a crashed earlier attempt for the same order
/// (same instanceId) is replaced unless it already reached a settled state.
async fn save_new(app: &App, inst: &Instance) -> Result<Instance, koogate_store::StoreError> {
    match app.store.put_instance(inst, None).await? {
        VersionedWrite::Written => Ok(inst.clone()),
        VersionedWrite::Conflict => {
            let existing = app
                .store
                .get_instance(inst.partition(), &inst.instance_id)
                .await?;
            match existing {
                Some(e)
                    if !matches!(e.state, InstanceState::Provisioning | InstanceState::Failed) =>
                {
                    Ok(e)
                }
                Some(e) => {
                    let mut next = inst.clone();
                    next.version = e.version + 1;
                    next.created_at_ms = e.created_at_ms;
                    match app.store.put_instance(&next, Some(e.version)).await? {
                        VersionedWrite::Written => Ok(next),
                        VersionedWrite::Conflict => Err(koogate_store::StoreError::Unavailable(
                            "instance record changed concurrently".into(),
                        )),
                    }
                }
                None => Err(koogate_store::StoreError::Unavailable(
                    "instance record vanished during creation".into(),
                )),
            }
        }
    }
}

/// First delivery: we own the lock on `p.key`, the instanceId is `instance_id`.
async fn create(call: &Call<'_>, p: &Purchase, instance_id: &str) -> Purchased {
    let app = call.app;
    let debug = p.debug;
    let key = p.key.as_str();

    // Debug traffic never provisions (D6) and always answers 000000, even in async mode.
    if debug {
        let mut inst = new_record(call, p, instance_id, InstanceState::Active);
        inst.app_info = Some(app.provisioner.demo_app_info(instance_id));
        return finish(
            call,
            key,
            save_new(app, &inst).await.map(|_| ()),
            ResultCode::Success,
            instance_id,
            debug,
        )
        .await;
    }

    // A thin body names no product, SKU, period or expiry: ask Query Order, within the budget
    // (see koogate_runtime::marketplace::enrich for why inside the callback).
    let details = if p.sku_code.is_none() || p.charging_mode.is_none() {
        koogate_runtime::marketplace::order_details(
            app,
            debug,
            &p.order_id,
            Some(&p.order_line_id),
            call.now_ms,
            call.deadline_ms,
        )
        .await
    } else {
        None
    };
    let enriched;
    let p = match &details {
        Some(d) => {
            enriched = with_details(p, d);
            &enriched
        }
        None => p,
    };
    let new_record = |call: &Call<'_>, p: &Purchase, id: &str, state: InstanceState| {
        let mut inst = new_record(call, p, id, state);
        inst.order_details = details.clone();
        inst
    };

    if app.config.provisioning == ProvisioningMode::Async {
        let inst = new_record(call, p, instance_id, InstanceState::Provisioning);
        let saved = save_new(app, &inst).await;
        if let Ok(saved) = &saved {
            if saved.state == InstanceState::Provisioning {
                spawn_provisioning(Arc::clone(app), saved.clone());
            }
        }
        return finish(
            call,
            key,
            saved.map(|_| ()),
            ResultCode::Processing,
            instance_id,
            debug,
        )
        .await;
    }

    let req = ProvisionRequest {
        instance_id,
        order_id: &p.order_id,
        order_line_id: &p.order_line_id,
        product_id: p.product_id.as_deref(),
        sku_code: p.sku_code.as_deref(),
    };
    let room = Duration::from_millis(
        u64::try_from(call.deadline_ms - call.now_ms - ANSWER_MARGIN_MS).unwrap_or(0),
    );
    let provisioned = match tokio::time::timeout(room, app.provisioner.provision(&req)).await {
        Ok(result) => result,
        Err(_) => Err(ProvisionError::Transient(
            "provisioning did not finish within the callback budget".into(),
        )),
    };
    match provisioned {
        Ok(app_info) => {
            let mut inst = new_record(call, p, instance_id, InstanceState::Active);
            inst.app_info = Some(app_info);
            finish(
                call,
                key,
                save_new(app, &inst).await.map(|_| ()),
                ResultCode::Success,
                instance_id,
                debug,
            )
            .await
        }
        Err(e) => {
            // Free the lock at once and keep the instanceId: the next delivery retries (D7).
            let _ = app.store.abandon(key, call.request_id).await;
            Purchased::Refused(
                Outcome::answer(
                    e.answer("provisioning")
                        .with("instanceId", instance_id.to_string()),
                    Some(ACTIVITY),
                    debug,
                )
                .because(e.to_string()),
            )
        }
    }
}

/// Stores the answer on the lock and sends it; on a store failure, frees the lock and answers
/// `000005` so the marketplace's retry runs again with the same instanceId.
async fn finish(
    call: &Call<'_>,
    key: &str,
    saved: Result<(), koogate_store::StoreError>,
    code: ResultCode,
    instance_id: &str,
    debug: bool,
) -> Purchased {
    let store = &call.app.store;
    if let Err(e) = saved {
        let _ = store.abandon(key, call.request_id).await;
        return Purchased::Refused(store_failure(Some(ACTIVITY), debug, &e));
    }
    let body = answer_with_id(code, instance_id).render();
    let stored = String::from_utf8_lossy(&body).into_owned();
    match store.complete(key, call.request_id, &stored, None).await {
        // Not the owner any more (our lease ran out and a retry took over): the retry stores its
        // own, identical answer; ours is still true.
        Ok(_) => Purchased::Done {
            instance_id: instance_id.to_string(),
            code,
            stored: body,
        },
        Err(e) => {
            let _ = store.abandon(key, call.request_id).await;
            Purchased::Refused(store_failure(Some(ACTIVITY), debug, &e))
        }
    }
}

/// A duplicate of an asynchronously accepted order: answer from the instance's state, and
/// restart provisioning that failed or stalled (D7, asynchronous column).
async fn resume_async(
    call: &Call<'_>,
    partition: Partition,
    instance_id: &str,
    stored: &str,
) -> Option<Purchased> {
    if !stored.contains("\"resultCode\":\"000004\"") {
        return None;
    }
    let app = call.app;
    let inst = match app.store.get_instance(partition, instance_id).await {
        Ok(Some(i)) => i,
        Ok(None) => return None,
        Err(e) => return Some(Purchased::Refused(store_failure(Some(ACTIVITY), false, &e))),
    };
    let code = match inst.state {
        InstanceState::Provisioning if call.now_ms - inst.updated_at_ms < STALE_PROVISIONING_MS => {
            ResultCode::Processing
        }
        InstanceState::Provisioning | InstanceState::Failed => {
            let mut next = inst.clone();
            next.state = InstanceState::Provisioning;
            next.failure = None;
            next.version = inst.version + 1;
            next.updated_at_ms = call.now_ms;
            match app.store.put_instance(&next, Some(inst.version)).await {
                Ok(VersionedWrite::Written) => spawn_provisioning(Arc::clone(app), next),
                Ok(VersionedWrite::Conflict) => {}
                Err(e) => {
                    return Some(Purchased::Refused(store_failure(Some(ACTIVITY), false, &e)))
                }
            }
            ResultCode::Processing
        }
        _ => ResultCode::Success,
    };
    Some(Purchased::Done {
        instance_id: instance_id.to_string(),
        code,
        stored: answer_with_id(code, instance_id).render(),
    })
}

/// Asynchronous mode: provision after answering, then record the result on the instance.
/// Runs in this process; a Lambda environment may be frozen after the answer, in which case the
/// marketplace's next delivery finds the provisioning stale and starts it again.
fn spawn_provisioning(app: Arc<App>, inst: Instance) {
    tokio::spawn(async move {
        let req = ProvisionRequest {
            instance_id: &inst.instance_id,
            order_id: &inst.order_id,
            order_line_id: &inst.order_line_id,
            product_id: inst.product_id.as_deref(),
            sku_code: inst.sku_code.as_deref(),
        };
        let result = app.provisioner.provision(&req).await;
        let mut next = inst.clone();
        next.version = inst.version + 1;
        next.updated_at_ms = koogate_runtime::pipeline::now_ms();
        match result {
            Ok(info) => {
                next.state = InstanceState::Active;
                next.app_info = Some(info);
            }
            Err(e) => {
                next.state = InstanceState::Failed;
                next.failure = Some(e.to_string());
            }
        }
        match app.store.put_instance(&next, Some(inst.version)).await {
            Ok(VersionedWrite::Written) => {}
            Ok(VersionedWrite::Conflict) => tracing::warn!(
                instance_id = %inst.instance_id,
                "instance changed while provisioning; the provisioning result was not recorded"
            ),
            Err(e) => {
                tracing::warn!(instance_id = %inst.instance_id, error = %e, "cannot record provisioning result")
            }
        }
    });
}
