//! The activities that change an existing instance: refreshInstance, updateInstanceStatus,
//! releaseInstance, upgradeInstance.
//!
//! Each is a read-modify-write of the instance record conditioned on its version, so concurrent
//! deliveries cannot lose an update; repeats are recognised from the record itself (the applied
//! orders, the current state), so no separate lock is needed and a repeat years later still
//! answers `000000` without a change (D10, D11).

use koogate_protocol::envelope::Answer;
use koogate_protocol::request::{
    InstanceStatusChange, RefreshInstance, ReleaseInstance, UpdateInstanceStatus, UpgradeInstance,
};
use koogate_protocol::result_code::ResultCode;
use koogate_runtime::pipeline::store_failure;
use koogate_runtime::{Call, Outcome};
use koogate_store::{AppliedOrder, Instance, InstanceState, Partition, VersionedWrite};

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

/// Applies `change` to the instance with optimistic concurrency.
async fn mutate(
    call: &Call<'_>,
    activity: &'static str,
    debug: bool,
    instance_id: &str,
    released_counts_as_unknown: bool,
    change: impl Fn(&mut Instance) -> Change,
) -> Outcome {
    let store = &call.app.store;
    let partition = Partition::from_debug_flag(debug);
    for _ in 0..ATTEMPTS {
        let current = match store.get_instance(partition, instance_id).await {
            Ok(Some(i)) => i,
            Ok(None) => return not_found(activity, debug, instance_id),
            Err(e) => return store_failure(Some(activity), debug, &e),
        };
        if released_counts_as_unknown && current.state == InstanceState::Released {
            return not_found(activity, debug, instance_id);
        }
        let mut next = current.clone();
        match change(&mut next) {
            Change::Unchanged => return ok(activity, debug),
            Change::Changed => {
                next.version = current.version + 1;
                next.updated_at_ms = call.now_ms;
                match store.put_instance(&next, Some(current.version)).await {
                    Ok(VersionedWrite::Written) => return ok(activity, debug),
                    Ok(VersionedWrite::Conflict) => continue,
                    Err(e) => return store_failure(Some(activity), debug, &e),
                }
            }
        }
    }
    Outcome::answer(
        Answer::error(
            ResultCode::InternalError,
            "the instance is being changed concurrently, please retry",
        ),
        Some(activity),
        debug,
    )
    .because("optimistic concurrency attempts exhausted")
}

fn applied(activity: &str, order_id: &str, order_line_id: &str, now_ms: i64) -> AppliedOrder {
    AppliedOrder {
        activity: activity.to_string(),
        order_id: order_id.to_string(),
        order_line_id: order_line_id.to_string(),
        scene: None,
        expire_time: None,
        product_id: None,
        applied_at_ms: now_ms,
    }
}

/// refreshInstance (D11): the absolute expiry replaces the stored one, once per order.
pub async fn refresh(call: &Call<'_>, r: &RefreshInstance) -> Outcome {
    let now = call.now_ms;
    mutate(
        call,
        "refreshInstance",
        r.test_flag,
        &r.instance_id,
        true,
        |inst| {
            if inst.has_applied(&r.order_id, &r.order_line_id) {
                return Change::Unchanged;
            }
            inst.expire_time = Some(r.expire_time.clone());
            inst.expire_time_ms = Some(r.expire_time_ms);
            if let Some(p) = &r.product_id {
                inst.product_id = Some(p.clone());
            }
            let mut order = applied("refreshInstance", &r.order_id, &r.order_line_id, now);
            // Unknown scenes are kept as sent (D22): the expiry is what matters.
            order.scene = Some(r.scene.as_str().to_string());
            order.expire_time = Some(r.expire_time.clone());
            order.product_id = r.product_id.clone();
            inst.orders.push(order);
            Change::Changed
        },
    )
    .await
}

/// updateInstanceStatus: FREEZE / UNFREEZE; already in that state → `000000`.
pub async fn update_status(call: &Call<'_>, r: &UpdateInstanceStatus) -> Outcome {
    mutate(
        call,
        "updateInstanceStatus",
        r.test_flag,
        &r.instance_id,
        true,
        |inst| {
            match (r.status, inst.state) {
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
            }
        },
    )
    .await
}

/// releaseInstance (D10): released once; a repeat answers `000000`.
pub async fn release(call: &Call<'_>, r: &ReleaseInstance) -> Outcome {
    let now = call.now_ms;
    mutate(
        call,
        "releaseInstance",
        r.test_flag,
        &r.instance_id,
        false,
        |inst| {
            if inst.state == InstanceState::Released {
                return Change::Unchanged;
            }
            inst.state = InstanceState::Released;
            if let Some(order_id) = &r.order_id {
                let line = r.order_line_id.as_deref().unwrap_or("");
                inst.orders
                    .push(applied("releaseInstance", order_id, line, now));
            }
            Change::Changed
        },
    )
    .await
}

/// upgradeInstance: the order is recorded once; the new spec comes from Query Order, which is
/// not built yet (the order is kept on the record for that enrichment).
pub async fn upgrade(call: &Call<'_>, r: &UpgradeInstance) -> Outcome {
    let now = call.now_ms;
    mutate(
        call,
        "upgradeInstance",
        r.test_flag,
        &r.instance_id,
        true,
        |inst| {
            if inst.has_applied(&r.order_id, &r.order_line_id) {
                return Change::Unchanged;
            }
            inst.orders.push(applied(
                "upgradeInstance",
                &r.order_id,
                &r.order_line_id,
                now,
            ));
            Change::Changed
        },
    )
    .await
}
