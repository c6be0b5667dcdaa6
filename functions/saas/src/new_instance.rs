//! newInstance (D7): one instance per order, whatever the marketplace resends.
//!
//! The order record `order#<orderId>#<orderLineId>` is both the permanent order → instanceId
//! mapping and the idempotency lock: the first delivery's `businessId` becomes the instanceId, a
//! duplicate during processing answers `000004`, a duplicate after success replays the stored
//! answer. A first delivery costs the replay guard's write plus three: acquire, instance,
//! complete; a duplicate costs the replay guard's write plus the refused acquire. The guard's
//! write is taken with the acquire ([`Call::once`]), and the instance with the completion
//! ([`Call::put_instance_completing`]): on SQLite each pair commits in one transaction.

use std::sync::Arc;
use std::time::Duration;

use koogate_protocol::envelope::Answer;
use koogate_protocol::request::NewInstance;
use koogate_protocol::result_code::ResultCode;
use koogate_runtime::config::ProvisioningMode;
use koogate_runtime::isv::catalogue;
use koogate_runtime::pipeline::{Done, Held, Lock, Locked, Saved, Stored};
use koogate_runtime::provisioner::{ProvisionError, ProvisionRequest, Provisioned};
use koogate_runtime::{App, Call, Failure, Reply};
use koogate_store::{keys, AppliedOrder, Instance, InstanceState, Partition, VersionedWrite};
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
    /// Period and amount, passed on to a provisioning request when the body or Query Order
    /// says them.
    pub period_type: Option<String>,
    pub period_number: Option<String>,
    pub amount: Option<String>,
    pub customer_id: Option<String>,
}

/// A purchase that has its instance (`000000`) or is being provisioned (`000004`). Anything else
/// (mismatch, store or provisioning failure) is a [`Failure`].
pub struct Purchased {
    pub instance_id: String,
    pub code: ResultCode,
    /// The V2 answer, replayed byte for byte on later deliveries.
    pub stored: Vec<u8>,
}

impl Purchased {
    fn answered(instance_id: &str, code: ResultCode) -> Purchased {
        Purchased {
            instance_id: instance_id.to_string(),
            code,
            stored: answer_with_id(code, instance_id).render(),
        }
    }
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
        period_type: None,
        period_number: None,
        amount: None,
        customer_id: fat.and_then(|f| f.customer_id.clone()),
    }
}

/// V2 newInstance.
pub async fn handle(call: &Call<'_>, r: &NewInstance) -> Result<Reply, Failure> {
    let done = purchase(call, &purchase_of(r)).await?;
    Ok(Reply::Stored {
        body: done.stored,
        code: done.code.as_str().to_string(),
    })
}

/// newInstance, whatever the interface generation: one instance per order, forever.
pub async fn purchase(call: &Call<'_>, p: &Purchase) -> Result<Purchased, Failure> {
    let lock = Lock {
        key: &p.key,
        validation: &p.validation,
        reference: &p.proposed_id,
        expires_at: None,
    };
    match call.once(&lock, |held| create(call, p, held)).await? {
        Locked::Done { reference, stored } => Ok(Purchased {
            instance_id: reference,
            code: stored.code,
            stored: stored.body,
        }),
        Locked::Mismatch => Err(Failure::new(
            Answer::error(
                ResultCode::InvalidParam,
                "orderId was already used for a different buyer or product",
            ),
            "idempotency validation mismatch",
        )),
        Locked::InFlight { reference } => {
            Ok(Purchased::answered(&reference, ResultCode::Processing))
        }
        Locked::Replayed {
            reference,
            response,
            code,
        } => {
            let code = ResultCode::parse(&code).unwrap_or(ResultCode::Success);
            if !p.debug && code == ResultCode::Processing {
                let partition = Partition::from_debug_flag(p.debug);
                if let Some(code) = resume(call, p, partition, &reference).await? {
                    return Ok(Purchased::answered(&reference, code));
                }
            }
            Ok(Purchased {
                instance_id: reference,
                code,
                stored: response.into_bytes(),
            })
        }
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
        event_ids: Vec::new(),
        customer_id: p.customer_id.clone(),
    }
}

/// The purchase completed with what Query Order said (what the body said wins).
fn with_details(p: &Purchase, d: &koogate_store::records::OrderDetails) -> Purchase {
    let mut p = p.clone();
    p.product_id = p.product_id.or_else(|| d.product_id.clone());
    p.sku_code = p.sku_code.or_else(|| d.sku_code.clone());
    p.charging_mode = p.charging_mode.or_else(|| d.charging_mode.clone());
    p.expire_time = p.expire_time.or_else(|| d.expire_time.clone());
    p.period_type = p.period_type.or_else(|| d.period_type.clone());
    p.period_number = p.period_number.or_else(|| d.period_number.clone());
    p.customer_id = p.customer_id.or_else(|| d.customer_id.clone());
    p
}

/// What the provisioner is asked for a purchase.
fn provision_request<'a>(p: &'a Purchase, instance_id: &'a str) -> ProvisionRequest<'a> {
    ProvisionRequest {
        instance_id,
        order_id: &p.order_id,
        order_line_id: &p.order_line_id,
        product_id: p.product_id.as_deref(),
        sku_code: p.sku_code.as_deref(),
        charging_mode: p.charging_mode.as_deref(),
        period_type: p.period_type.as_deref(),
        period_number: p.period_number.as_deref(),
        expire_time: p.expire_time.as_deref(),
        customer_id: p.customer_id.as_deref(),
        amount: p.amount.as_deref(),
    }
}

/// The provisioner's answer, bounded by the callback's budget less the answer margin: a late
/// answer is a transient failure (`000005`) and leaves nothing half-done.
async fn provision_within_budget(
    call: &Call<'_>,
    req: &ProvisionRequest<'_>,
) -> Result<Provisioned, ProvisionError> {
    let room = Duration::from_millis(
        u64::try_from(call.deadline_ms - koogate_runtime::pipeline::now_ms() - ANSWER_MARGIN_MS)
            .unwrap_or(0),
    );
    match tokio::time::timeout(room, call.app.provisioner.provision(req)).await {
        Ok(result) => result,
        Err(_) => Err(ProvisionError::Transient(
            "provisioning did not finish within the callback budget".into(),
        )),
    }
}

/// The events of writing `inst`: `instance.created` once it is usable.
fn created_events(app: &App, inst: &Instance) -> Vec<koogate_store::EventDraft> {
    if inst.state == InstanceState::Active {
        catalogue::instance_created(app, inst, inst.updated_at_ms)
    } else {
        Vec::new()
    }
}

/// Writes a new instance record (with `instance.created` when it is usable) and completes the
/// order's lock with `stored`, in one transaction where the store allows. A record left by a
/// crashed earlier attempt for the same order (same instanceId) is replaced unless it already
/// reached a settled state; the lock is then completed by [`Call::once`]. Returns the record
/// now stored and what the work hands back.
async fn save_new(
    call: &Call<'_>,
    held: &Held,
    inst: &Instance,
    stored: Stored,
) -> Result<(Instance, Done), koogate_store::StoreError> {
    let events = created_events(call.app, inst);
    match call
        .put_instance_completing(held, inst, None, &events, stored)
        .await?
    {
        Saved::Completed(done) => Ok((inst.clone(), done)),
        Saved::Conflict(stored) => Ok((replace_leftover(call.app, inst).await?, stored.into())),
    }
}

/// The record of `inst`'s instanceId exists already: kept when settled, replaced by `inst` when
/// a crashed earlier attempt left it provisioning or failed.
async fn replace_leftover(
    app: &App,
    inst: &Instance,
) -> Result<Instance, koogate_store::StoreError> {
    let existing = app
        .store
        .get_instance(inst.partition(), &inst.instance_id)
        .await?;
    match existing {
        Some(e) if !matches!(e.state, InstanceState::Provisioning | InstanceState::Failed) => Ok(e),
        Some(e) => {
            let mut next = inst.clone();
            next.version = e.version + 1;
            next.created_at_ms = e.created_at_ms;
            next.event_ids = e.event_ids.clone();
            let events = created_events(app, &next);
            match app.put_instance(&next, Some(e.version), &events).await? {
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

/// First delivery (run under the order's lock by [`Call::once`]): the instanceId is the held
/// lock's reference. Returns the answer, stored with the instance record, or the refusal (the
/// lock is then freed and the marketplace's retry provisions again with the same instanceId).
async fn create(call: &Call<'_>, p: &Purchase, held: Held) -> Result<Done, Failure> {
    let app = call.app;
    let debug = p.debug;
    let instance_id = held.reference.as_str();

    // Debug traffic never provisions (D6) and always answers 000000, even in async mode.
    if debug {
        let mut inst = new_record(call, p, instance_id, InstanceState::Active);
        inst.app_info = Some(app.provisioner.demo_app_info(instance_id));
        let answer = stored_answer(ResultCode::Success, instance_id);
        let (_, done) = save_new(call, &held, &inst, answer).await?;
        return Ok(done);
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
        let answer = stored_answer(ResultCode::Processing, instance_id);
        let (saved, done) = save_new(call, &held, &inst, answer).await?;
        if saved.state == InstanceState::Provisioning {
            spawn_provisioning(Arc::clone(app), saved);
        }
        return Ok(done);
    }

    match provision_within_budget(call, &provision_request(p, instance_id)).await {
        Ok(provisioned) => {
            let (state, code) = match &provisioned {
                Provisioned::Ready(_) => (InstanceState::Active, ResultCode::Success),
                Provisioned::Accepted => (InstanceState::Provisioning, ResultCode::Processing),
            };
            let mut inst = new_record(call, p, instance_id, state);
            if let Provisioned::Ready(app_info) = provisioned {
                inst.app_info = Some(app_info);
            }
            let (_, done) = save_new(call, &held, &inst, stored_answer(code, instance_id)).await?;
            Ok(done)
        }
        // The lock is freed and the instanceId kept: the next delivery retries (D7).
        Err(e) => Err(provisioning_failure(&e, instance_id)),
    }
}

/// The answer to store once the instance record is written.
fn stored_answer(code: ResultCode, instance_id: &str) -> Stored {
    Stored::of(&answer_with_id(code, instance_id))
}

/// The provisioner failed: its code and words, with the instanceId the retry will keep.
fn provisioning_failure(e: &ProvisionError, instance_id: &str) -> Failure {
    Failure::new(
        e.answer("provisioning")
            .with("instanceId", instance_id.to_string()),
        e.to_string(),
    )
}

/// A duplicate of an order answered `000004` (provisioning accepted asynchronously): the code to
/// answer from the instance's state, `None` when there is no instance record. In asynchronous
/// mode, restart provisioning that failed or stalled (D7, asynchronous column); otherwise ask the
/// provisioner again (the product answers the same `appInfo` for the same instance) and complete
/// the instance when it is ready.
async fn resume(
    call: &Call<'_>,
    p: &Purchase,
    partition: Partition,
    instance_id: &str,
) -> Result<Option<ResultCode>, Failure> {
    let app = call.app;
    let Some(inst) = app.store.get_instance(partition, instance_id).await? else {
        return Ok(None);
    };
    let asynchronous = app.config.provisioning == ProvisioningMode::Async;
    let code = match inst.state {
        InstanceState::Provisioning
            if asynchronous && call.now_ms - inst.updated_at_ms < STALE_PROVISIONING_MS =>
        {
            ResultCode::Processing
        }
        InstanceState::Provisioning | InstanceState::Failed if asynchronous => {
            let mut next = inst.clone();
            next.state = InstanceState::Provisioning;
            next.failure = None;
            next.version = inst.version + 1;
            next.updated_at_ms = call.now_ms;
            if app.put_instance(&next, Some(inst.version), &[]).await? == VersionedWrite::Written {
                spawn_provisioning(Arc::clone(app), next);
            }
            ResultCode::Processing
        }
        InstanceState::Provisioning => {
            match provision_within_budget(call, &provision_request(p, instance_id)).await {
                Ok(Provisioned::Accepted) => ResultCode::Processing,
                Ok(Provisioned::Ready(info)) => {
                    complete_provisioning(app, &inst, info).await?;
                    ResultCode::Success
                }
                Err(e) => return Err(provisioning_failure(&e, instance_id)),
            }
        }
        _ => ResultCode::Success,
    };
    Ok(Some(code))
}

/// How completing an asynchronous provisioning ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Completion {
    /// The instance is now active with this `appInfo` (`instance.created` was recorded).
    Completed,
    /// It was completed before with the same `appInfo`: nothing changed.
    AlreadyCompleted,
    /// It was completed before with a different `appInfo`, or is no longer provisioning.
    Conflict(String),
}

/// Completes the provisioning of `inst` with `info` (the Product API's `provisioned` call, or a
/// provisioner that answers a later delivery): the instance becomes active and
/// `instance.created` is recorded with it. Retries a concurrent change a few times.
pub async fn complete_provisioning(
    app: &App,
    inst: &Instance,
    info: koogate_store::AppInfo,
) -> Result<Completion, koogate_store::StoreError> {
    let mut current = inst.clone();
    for _ in 0..4 {
        match current.state {
            InstanceState::Provisioning | InstanceState::Failed => {}
            InstanceState::Active | InstanceState::Frozen
                if current.app_info.as_ref() == Some(&info) =>
            {
                return Ok(Completion::AlreadyCompleted)
            }
            InstanceState::Active | InstanceState::Frozen => {
                return Ok(Completion::Conflict(
                    "the instance was provisioned with a different appInfo".into(),
                ))
            }
            InstanceState::Released => {
                return Ok(Completion::Conflict("the instance was released".into()))
            }
        }
        let mut next = current.clone();
        next.state = InstanceState::Active;
        next.app_info = Some(info.clone());
        next.failure = None;
        next.version = current.version + 1;
        next.updated_at_ms = koogate_runtime::pipeline::now_ms();
        let events = created_events(app, &next);
        match app
            .put_instance(&next, Some(current.version), &events)
            .await?
        {
            VersionedWrite::Written => return Ok(Completion::Completed),
            VersionedWrite::Conflict => {
                match app
                    .store
                    .get_instance(inst.partition(), &inst.instance_id)
                    .await?
                {
                    Some(i) => current = i,
                    None => {
                        return Err(koogate_store::StoreError::Unavailable(
                            "instance record vanished".into(),
                        ))
                    }
                }
            }
        }
    }
    Err(koogate_store::StoreError::Unavailable(
        "the instance is being changed concurrently".into(),
    ))
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
            charging_mode: inst.charging_mode.as_deref(),
            expire_time: inst.expire_time.as_deref(),
            ..Default::default()
        };
        let result = app.provisioner.provision(&req).await;
        let mut next = inst.clone();
        next.version = inst.version + 1;
        next.updated_at_ms = koogate_runtime::pipeline::now_ms();
        match result {
            Ok(Provisioned::Ready(info)) => {
                next.state = InstanceState::Active;
                next.app_info = Some(info);
            }
            // The product completes it through the Product API.
            Ok(Provisioned::Accepted) => return,
            Err(e) => {
                next.state = InstanceState::Failed;
                next.failure = Some(e.to_string());
            }
        }
        let events = created_events(&app, &next);
        match app.put_instance(&next, Some(inst.version), &events).await {
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
