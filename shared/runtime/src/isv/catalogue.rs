//! The event catalogue (README, "Connecting your product"): what each event type carries.
//!
//! Handlers build the events of a change with these functions and hand them to the store with
//! the change itself, so an event exists exactly when its change committed. Every `data` has
//! `debug`; instance events have `instanceId` and `version` (the record's version after the
//! change, so a consumer applies only newer ones). No phone number, e-mail address, client
//! secret or access key is ever put in an event.

use koogate_store::records::LicenseCode;
use koogate_store::{EventDraft, Instance};
use serde::Serialize;
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
    // Written through the `Body` struct, not a `json!` map around `data`: the same bytes (its
    // members are in the map's sorted order) without building the wrapper. A map of JSON values
    // and two strings always serialise (`Value::to_string` assumes the same).
    let body = Body {
        data: &data,
        timestamp: koogate_protocol::timestamp::format_rfc3339_ms(now_ms),
        event_type,
    };
    EventDraft {
        id,
        event_type: event_type.to_string(),
        body: serde_json::to_string(&body).unwrap_or_default(),
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
/// the change, if any; `extra` the type's own members (null ones left out).
pub fn instance_event(
    app: &App,
    event_type: &str,
    inst: &Instance,
    order_id: Option<&str>,
    now_ms: i64,
    extra: Value,
) -> Vec<EventDraft> {
    let mut data = instance_members(inst, order_id);
    data.extend(object(extra));
    instance_event_with(app, event_type, inst, now_ms, data)
}

/// The members every instance event has: `instanceId`, `version` and, when there is one, the
/// `orderId` behind the change.
pub fn instance_members(inst: &Instance, order_id: Option<&str>) -> Map<String, Value> {
    let mut data = Map::new();
    data.insert("instanceId".into(), inst.instance_id.clone().into());
    data.insert("version".into(), inst.version.into());
    if let Some(order_id) = order_id {
        data.insert("orderId".into(), order_id.into());
    }
    data
}

/// An instance event with its whole `data` given (from [`instance_members`]).
pub fn instance_event_with(
    app: &App,
    event_type: &str,
    inst: &Instance,
    now_ms: i64,
    data: Map<String, Value>,
) -> Vec<EventDraft> {
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
    if inst.debug && !app.config.isv.events_debug {
        return Vec::new();
    }
    let generated = app.provisioner.generates_credentials();
    let id = koogate_store::events::new_event_id(now_ms);
    let body = match created_body(inst, generated, now_ms) {
        Ok(body) => body,
        // Strings, booleans and integers always serialise; kept total all the same.
        Err(_) => {
            return vec![draft(
                id,
                CREATED,
                now_ms,
                Some(&inst.instance_id),
                created_data(inst, generated),
            )]
        }
    };
    vec![EventDraft {
        id,
        event_type: CREATED.into(),
        body,
        instance_id: Some(inst.instance_id.clone()),
        created_at_ms: now_ms,
    }]
}

const CREATED: &str = "instance.created";

/// `instance.created`'s body written straight from the record ([`Created`]). Every first
/// newInstance records this event, and building it through a `serde_json` map was a quarter of
/// that callback's CPU; the bytes are those of [`created_data`] in [`draft`] (members sorted,
/// absent ones left out), which a test checks.
fn created_body(inst: &Instance, generated: bool, now_ms: i64) -> serde_json::Result<String> {
    let data = Created {
        app_info: inst.app_info.as_ref().map(|a| CreatedAppInfo {
            admin_url: a.admin_url.as_deref(),
            front_end_url: &a.front_end_url,
            memo: a.memo.as_deref(),
            password: a.password.as_deref().filter(|_| generated),
            user_name: a.user_name.as_deref(),
        }),
        charging_mode: inst.charging_mode.as_deref(),
        customer_id: created_customer(inst),
        debug: inst.debug,
        expire_time: inst.expire_time.as_deref(),
        instance_id: &inst.instance_id,
        order_id: &inst.order_id,
        order_line_id: &inst.order_line_id,
        product_id: inst.product_id.as_deref(),
        sku_code: inst.sku_code.as_deref(),
        version: inst.version,
    };
    serde_json::to_string(&Body {
        data: &data,
        timestamp: koogate_protocol::timestamp::format_rfc3339_ms(now_ms),
        event_type: CREATED,
    })
}

/// The buyer: the record's, or the one Query Order named.
fn created_customer(inst: &Instance) -> Option<&str> {
    inst.customer_id.as_deref().or_else(|| {
        inst.order_details
            .as_ref()
            .and_then(|d| d.customer_id.as_deref())
    })
}

/// `instance.created`'s `data` as a map, the way every other event's is built.
fn created_data(inst: &Instance, generated: bool) -> Map<String, Value> {
    let app_info = inst.app_info.as_ref().map(|a| {
        object(json!({
            "frontEndUrl": a.front_end_url,
            "adminUrl": a.admin_url,
            "userName": a.user_name,
            "password": if generated { a.password.clone() } else { None },
            "memo": a.memo,
        }))
    });
    let mut data = object(json!({
        "instanceId": inst.instance_id,
        "version": inst.version,
        "orderId": inst.order_id,
        "orderLineId": inst.order_line_id,
        "productId": inst.product_id,
        "skuCode": inst.sku_code,
        "chargingMode": inst.charging_mode,
        "expireTime": inst.expire_time,
        "customerId": created_customer(inst),
        "appInfo": app_info,
    }));
    data.insert("debug".into(), Value::Bool(inst.debug));
    data
}

/// An event body, `{"data","timestamp","type"}`: the order of a map-built body.
#[derive(Serialize)]
struct Body<'a, D> {
    data: D,
    timestamp: String,
    #[serde(rename = "type")]
    event_type: &'a str,
}

/// `instance.created`'s `data`, members in sorted order; absent ones are left out.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Created<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    app_info: Option<CreatedAppInfo<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    charging_mode: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    customer_id: Option<&'a str>,
    debug: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    expire_time: Option<&'a str>,
    instance_id: &'a str,
    order_id: &'a str,
    order_line_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    product_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sku_code: Option<&'a str>,
    version: u64,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct CreatedAppInfo<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    admin_url: Option<&'a str>,
    front_end_url: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    memo: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    password: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user_name: Option<&'a str>,
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

#[cfg(test)]
mod tests {
    use super::*;
    use koogate_store::records::OrderDetails;
    use koogate_store::{AppInfo, InstanceState};

    fn instance() -> Instance {
        serde_json::from_value(json!({
            "instance_id": "i-1", "debug": false, "state": "active", "order_id": "CS1",
            "order_line_id": "CS1-000001", "orders": [], "created_at_ms": 1, "updated_at_ms": 2,
            "version": 7
        }))
        .unwrap()
    }

    /// An event body is byte for byte what a `json!` map of its three members writes.
    #[test]
    fn a_draft_body_is_the_map_built_body() {
        let data = object(json!({
            "instanceId": "i\"1\u{2028}",
            "version": 3,
            "nested": {"b": [1, null], "a": "\u{e9}\n"},
        }));
        let d = draft(
            "evt_1".into(),
            "instance.re\"newed",
            1_700_000_000_123,
            None,
            data.clone(),
        );
        let expected = json!({
            "type": "instance.re\"newed",
            "timestamp": koogate_protocol::timestamp::format_rfc3339_ms(1_700_000_000_123),
            "data": Value::Object(data),
        });
        assert_eq!(d.body, expected.to_string());
    }

    /// The typed body is byte for byte the map-built one, whatever is present or absent.
    #[test]
    fn the_typed_created_body_is_the_map_built_body() {
        let bare = instance();
        let mut full = instance();
        full.debug = true;
        full.state = InstanceState::Active;
        full.product_id = Some("P\u{e9}\"q".into());
        full.sku_code = Some("sku".into());
        full.charging_mode = Some("ON_DEMAND".into());
        full.expire_time = Some("20271231235959".into());
        full.app_info = Some(AppInfo {
            front_end_url: "https://x/\u{2028}".into(),
            admin_url: Some("https://a".into()),
            user_name: Some("u".into()),
            password: Some("p\n".into()),
            memo: Some("m".into()),
        });
        let mut from_details = instance();
        from_details.order_details = Some(OrderDetails {
            customer_id: Some("cust".into()),
            ..Default::default()
        });
        let mut both = from_details.clone();
        both.customer_id = Some("own".into());
        for inst in [bare, full, from_details, both] {
            for generated in [false, true] {
                let reference = draft(
                    "id".into(),
                    CREATED,
                    1_700_000_000_123,
                    None,
                    created_data(&inst, generated),
                );
                let typed = created_body(&inst, generated, 1_700_000_000_123).unwrap();
                assert_eq!(typed, reference.body, "{inst:?} generated={generated}");
            }
        }
    }
}
