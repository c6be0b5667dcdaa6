//! The event catalogue (README, "Connecting your product"): what each event type carries.
//!
//! Handlers build the events of a change with these functions and hand them to the store with
//! the change itself, so an event exists exactly when its change committed. Every `data` has
//! `debug`; instance events have `instanceId` and `version` (the record's version after the
//! change, so a consumer applies only newer ones). No phone number, e-mail address, client
//! secret or access key is ever put in an event.

use koogate_store::records::LicenseCode;
use koogate_store::{EventDraft, Instance};
use serde_json::{json, Map, Value};

use crate::app::App;

/// One event of type `event_type`, or none for debug traffic unless `KOOGATE_EVENTS_DEBUG` is on.
pub fn event(
    app: &App,
    event_type: &str,
    debug: bool,
    now_ms: i64,
    instance_id: Option<&str>,
    mut data: Map<String, Value>,
) -> Option<EventDraft> {
    if debug && !app.config.isv.events_debug {
        return None;
    }
    data.insert("debug".into(), Value::Bool(debug));
    Some(draft(
        koogate_store::events::new_event_id(now_ms),
        event_type,
        now_ms,
        instance_id,
        data,
    ))
}

/// An event with a given id (the caller's, when a retried step must record the same event).
pub fn draft(
    id: String,
    event_type: &str,
    now_ms: i64,
    instance_id: Option<&str>,
    data: Map<String, Value>,
) -> EventDraft {
    let body = json!({
        "type": event_type,
        "timestamp": koogate_protocol::timestamp::format_rfc3339_ms(now_ms),
        "data": Value::Object(data),
    });
    EventDraft {
        id,
        event_type: event_type.to_string(),
        body: body.to_string(),
        instance_id: instance_id.map(str::to_string),
        created_at_ms: now_ms,
    }
}

/// `usage.failed`: the marketplace refused a usage record (production only: debug traffic is
/// never billed). The id is derived from the record's revision (`metering_sn`) and the code, so
/// a push that records it again after a crash records the same event, once.
pub fn usage_failed(
    now_ms: i64,
    recorded_at_ms: i64,
    instance_id: &str,
    begin_time: &str,
    end_time: &str,
    metering_sn: &str,
    code: &str,
) -> EventDraft {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(format!(
        "{instance_id}|{begin_time}|{end_time}|{metering_sn}|{code}"
    ));
    let id = format!(
        "evt_{:012x}{}",
        recorded_at_ms.max(0),
        hex::encode(digest.get(..8).unwrap_or_default())
    );
    let data = object(json!({
        "debug": false,
        "instanceId": instance_id,
        "beginTime": begin_time,
        "endTime": end_time,
        "code": code,
    }));
    draft(id, "usage.failed", now_ms, Some(instance_id), data)
}

/// Keeps the members of `value` (a JSON object) whose value is not null.
fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(mut m) => {
            m.retain(|_, v| !v.is_null());
            m
        }
        _ => Map::new(),
    }
}

/// An instance event about `inst` as it is after the change; `order_id` is the order behind
/// the change, if any; `extra` the type's own members.
pub fn instance_event(
    app: &App,
    event_type: &str,
    inst: &Instance,
    order_id: Option<&str>,
    now_ms: i64,
    extra: Value,
) -> Vec<EventDraft> {
    let mut data = object(json!({
        "instanceId": inst.instance_id,
        "version": inst.version,
        "orderId": order_id,
    }));
    data.extend(object(extra));
    event(
        app,
        event_type,
        inst.debug,
        now_ms,
        Some(&inst.instance_id),
        data,
    )
    .into_iter()
    .collect()
}

/// `instance.created`: the instance is usable. The password is included only when koogate
/// generated it (then the product must create that account).
pub fn instance_created(app: &App, inst: &Instance, now_ms: i64) -> Vec<EventDraft> {
    let details = inst.order_details.as_ref();
    let app_info = inst.app_info.as_ref().map(|a| {
        object(json!({
            "frontEndUrl": a.front_end_url,
            "adminUrl": a.admin_url,
            "userName": a.user_name,
            "password": if app.provisioner.generates_credentials() { a.password.clone() } else { None },
            "memo": a.memo,
        }))
    });
    instance_event(
        app,
        "instance.created",
        inst,
        Some(&inst.order_id),
        now_ms,
        json!({
            "orderLineId": inst.order_line_id,
            "productId": inst.product_id,
            "skuCode": inst.sku_code,
            "chargingMode": inst.charging_mode,
            "expireTime": inst.expire_time,
            "customerId": inst.customer_id.clone().or_else(|| details.and_then(|d| d.customer_id.clone())),
            "appInfo": app_info,
        }),
    )
}

/// `license.issued`.
pub fn license_issued(
    app: &App,
    debug: bool,
    now_ms: i64,
    order_id: &str,
    instance_id: Option<&str>,
    event_id: Option<&str>,
    license: &str,
) -> Vec<EventDraft> {
    event(
        app,
        "license.issued",
        debug,
        now_ms,
        instance_id,
        object(json!({
            "orderId": order_id,
            "instanceId": instance_id,
            "eventId": event_id,
            "license": license,
        })),
    )
    .into_iter()
    .collect()
}

/// `license_code.changed`: a License 2.0 code after `activity` changed it.
pub fn license_code_changed(
    app: &App,
    code: &LicenseCode,
    activity: &str,
    order_id: Option<&str>,
    now_ms: i64,
) -> Vec<EventDraft> {
    let state = match code.state {
        koogate_store::InstanceState::Frozen => "frozen",
        koogate_store::InstanceState::Released => "released",
        _ => "active",
    };
    event(
        app,
        "license_code.changed",
        code.debug,
        now_ms,
        None,
        object(json!({
            "license": code.license,
            "activity": activity,
            "state": state,
            "expireTime": code.expire_time,
            "orderId": order_id,
        })),
    )
    .into_iter()
    .collect()
}

/// A directory event of a kit sync (`tenant.synced`, `user.deleted`, …).
pub fn directory_event(
    app: &App,
    event_type: &str,
    debug: bool,
    now_ms: i64,
    data: Value,
) -> Option<EventDraft> {
    event(app, event_type, debug, now_ms, None, object(data))
}
