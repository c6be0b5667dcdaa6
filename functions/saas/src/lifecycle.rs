//! The activities that change an existing instance: refreshInstance, updateInstanceStatus,
//! releaseInstance, upgradeInstance.
//!
//! Each is a read-modify-write of the instance record conditioned on its version, so concurrent
//! deliveries cannot lose an update; repeats are recognised from the record itself (the applied
//! orders, the current state), so no separate lock is needed and a repeat years later still
//! answers `000000` without a change (D10, D11).

use koogate_protocol::envelope::Answer;
use koogate_protocol::request::InstanceStatusChange;
use koogate_protocol::result_code::ResultCode;
use koogate_runtime::isv::catalogue::{instance_event, instance_event_with, instance_members};
use koogate_runtime::{Call, Failure, Reply};
use koogate_store::{AppliedOrder, EventDraft, Instance, InstanceState, Partition, VersionedWrite};
use serde_json::json;

use crate::answers::{not_found, ok};

/// Attempts of a read-modify-write before giving up with `000005`.
const ATTEMPTS: usize = 4;

/// What a change decided.
enum Change {
    /// Already in the requested state: answer `000000`, write nothing.
    Unchanged,
    /// Write the modified record.
    Changed,
}

/// Applies `change` to the instance with optimistic concurrency; `describe` names the events of
/// a change from the record before and after it, recorded with the write.
async fn mutate(
    call: &Call<'_>,
    t: Target<'_>,
    released_counts_as_unknown: bool,
    change: impl Fn(&mut Instance) -> Change,
    describe: impl Fn(&Instance, &Instance) -> Vec<EventDraft>,
) -> Result<Reply, Failure> {
    let (debug, instance_id) = (t.debug, t.instance_id);
    let store = &call.app.store;
    let partition = Partition::from_debug_flag(debug);
    for _ in 0..ATTEMPTS {
        let current = match store.get_instance(partition, instance_id).await? {
            Some(i) if !(released_counts_as_unknown && i.state == InstanceState::Released) => i,
            _ => return not_found(debug, instance_id),
        };
        let mut next = current.clone();
        match change(&mut next) {
            Change::Unchanged => return ok(),
            Change::Changed => {
                next.version = current.version + 1;
                next.updated_at_ms = call.now_ms;
                let events = describe(&current, &next);
                match call
                    .app
                    .put_instance(&next, Some(current.version), &events)
                    .await?
                {
                    VersionedWrite::Written => return ok(),
                    VersionedWrite::Conflict => continue,
                }
            }
        }
    }
    Err(Failure::new(
        Answer::error(
            ResultCode::InternalError,
            "the instance is being changed concurrently, please retry",
        ),
        "optimistic concurrency attempts exhausted",
    ))
}

/// The instance an activity targets, and how to answer for it.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    /// The activity name the instance's order history records (`refreshInstance`, V1
    /// `expireInstance`, …).
    pub activity: &'static str,
    pub debug: bool,
    pub instance_id: &'a str,
}

/// The marketplace order behind a change. V1 orders have no line: `order_line_id` is "".
#[derive(Debug, Clone, Copy)]
pub struct OrderRef<'a> {
    pub order_id: &'a str,
    pub order_line_id: &'a str,
}

/// Renewal (refreshInstance, V1 refreshInstance and refreshLicense; D11): the absolute expiry
/// replaces the stored one, once per order.
pub async fn renew(
    call: &Call<'_>,
    t: Target<'_>,
    order: OrderRef<'_>,
    scene: &str,
    product_id: Option<&str>,
    expire_time: &str,
    expire_time_ms: i64,
) -> Result<Reply, Failure> {
    let now = call.now_ms;
    let describe = |before: &Instance, after: &Instance| {
        let mut data = instance_members(after, Some(order.order_id));
        data.insert("scene".into(), scene.into());
        if let Some(expire_time) = &after.expire_time {
            data.insert("expireTime".into(), expire_time.clone().into());
        }
        // Present even when no expiry was known before (null then).
        data.insert("previousExpireTime".into(), json!(before.expire_time));
        instance_event_with(call.app, "instance.renewed", after, now, data)
    };
    let change = |inst: &mut Instance| {
        if inst.has_applied(order.order_id, order.order_line_id) {
            return Change::Unchanged;
        }
        inst.expire_time = Some(expire_time.to_string());
        inst.expire_time_ms = Some(expire_time_ms);
        if let Some(p) = product_id {
            inst.product_id = Some(p.to_string());
        }
        let mut applied_order =
            AppliedOrder::new(t.activity, order.order_id, order.order_line_id, now);
        // Unknown scenes are kept as sent (D22): the expiry is what matters.
        applied_order.scene = Some(scene.to_string());
        applied_order.expire_time = Some(expire_time.to_string());
        applied_order.product_id = product_id.map(str::to_string);
        inst.orders.push(applied_order);
        Change::Changed
    };
    mutate(call, t, true, change, describe).await
}

/// FREEZE / UNFREEZE (updateInstanceStatus, V1 expireInstance, instanceStatus, expireLicense);
/// already in that state → `000000`.
pub async fn set_status(
    call: &Call<'_>,
    t: Target<'_>,
    change: InstanceStatusChange,
) -> Result<Reply, Failure> {
    let event_type = match change {
        InstanceStatusChange::Freeze => "instance.frozen",
        InstanceStatusChange::Unfreeze => "instance.unfrozen",
    };
    let describe = |_: &Instance, after: &Instance| {
        instance_event(call.app, event_type, after, None, call.now_ms, json!({}))
    };
    mutate(
        call,
        t,
        true,
        |inst| match (change, inst.state) {
            (InstanceStatusChange::Freeze, InstanceState::Frozen) => Change::Unchanged,
            (InstanceStatusChange::Freeze, _) => {
                inst.state = InstanceState::Frozen;
                Change::Changed
            }
            (InstanceStatusChange::Unfreeze, InstanceState::Frozen) => {
                inst.state = InstanceState::Active;
                Change::Changed
            }
            // Active already, or not yet provisioned: nothing to lift.
            (InstanceStatusChange::Unfreeze, _) => Change::Unchanged,
        },
        describe,
    )
    .await
}

/// Release (D10): released once; a repeat answers `000000`. `scene` is the callback's, if any.
pub async fn release(
    call: &Call<'_>,
    t: Target<'_>,
    order: Option<OrderRef<'_>>,
    scene: Option<&str>,
) -> Result<Reply, Failure> {
    let now = call.now_ms;
    let describe = |_: &Instance, after: &Instance| {
        instance_event(
            call.app,
            "instance.released",
            after,
            order.map(|o| o.order_id),
            now,
            json!({ "scene": scene }),
        )
    };
    let change = |inst: &mut Instance| {
        if inst.state == InstanceState::Released {
            return Change::Unchanged;
        }
        inst.state = InstanceState::Released;
        if let Some(o) = order {
            inst.orders.push(AppliedOrder::new(
                t.activity,
                o.order_id,
                o.order_line_id,
                now,
            ));
        }
        Change::Changed
    };
    mutate(call, t, false, change, describe).await
}

/// Upgrade (upgradeInstance, V1 upgrade): the order is recorded once; the new product, SKU,
/// charging mode and expiry come from Query Order, inside the callback's budget (when it does
/// not answer in time, the order is still recorded and the spec stays as it was).
pub async fn upgrade(
    call: &Call<'_>,
    t: Target<'_>,
    order: OrderRef<'_>,
    sizes: &serde_json::Map<String, serde_json::Value>,
) -> Result<Reply, Failure> {
    let now = call.now_ms;
    let line = (!order.order_line_id.is_empty()).then_some(order.order_line_id);
    let details = koogate_runtime::marketplace::order_details(
        call.app,
        t.debug,
        order.order_id,
        line,
        now,
        call.deadline_ms,
    )
    .await;
    let describe = |before: &Instance, after: &Instance| {
        let mut extra = json!({
            "productId": after.product_id,
            "skuCode": after.sku_code,
            "previousProductId": before.product_id,
            "previousSkuCode": before.sku_code,
        });
        if let Some(e) = extra.as_object_mut() {
            e.extend(sizes.clone());
        }
        instance_event(
            call.app,
            "instance.upgraded",
            after,
            Some(order.order_id),
            now,
            extra,
        )
    };
    let change = |inst: &mut Instance| {
        if inst.has_applied(order.order_id, order.order_line_id) {
            return Change::Unchanged;
        }
        if let Some(d) = &details {
            let keep = |new: &Option<String>, old: &mut Option<String>| {
                if new.is_some() {
                    old.clone_from(new);
                }
            };
            keep(&d.product_id, &mut inst.product_id);
            keep(&d.sku_code, &mut inst.sku_code);
            keep(&d.charging_mode, &mut inst.charging_mode);
            if let Some(ms) = d
                .expire_time
                .as_deref()
                .and_then(|e| koogate_protocol::timestamp::parse_expire_time(e).ok())
            {
                inst.expire_time.clone_from(&d.expire_time);
                inst.expire_time_ms = Some(ms);
            }
            inst.order_details = Some(d.clone());
        }
        inst.orders.push(AppliedOrder::new(
            t.activity,
            order.order_id,
            order.order_line_id,
            now,
        ));
        Change::Changed
    };
    mutate(call, t, true, change, describe).await
}
