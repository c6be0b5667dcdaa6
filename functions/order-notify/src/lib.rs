//! `POST /order-notify`: order notifications (docs/protocol.md, inbound-basic §7). Each `(orderId,
//! orderLineId)` is recorded once (a conditional insert) and every delivery answers `000000`.
//! The first delivery asks Query Order for the order's details inside the callback's budget and
//! keeps them on the record (`enrichment: done`); when the marketplace does not answer in time
//! the record says `pending` and the answer is the same.

#![forbid(unsafe_code)]

use async_trait::async_trait;
use koogate_protocol::envelope::Answer;
use koogate_protocol::order_notify::parse_order_notify;
use koogate_runtime::routes::{AuthScheme, InterfaceType, Route};
use koogate_runtime::trace_ids::TraceIds;
use koogate_runtime::{Call, Failure, Function, Reply};
use koogate_store::records::OrderNotification;
use koogate_store::{keys, Partition, Record};

const ACTIVITY: &str = "orderNotify";

/// `POST /order-notify`.
pub const ROUTE: Route = Route {
    method: "POST",
    path: "/order-notify",
    function: "order-notify",
    interface: InterfaceType::General,
    scheme: AuthScheme::UrlSignature,
};

/// The routes this crate declares: [`ROUTE`].
pub const ROUTES: &[Route] = &[ROUTE];

/// The function behind `POST /order-notify`.
#[derive(Debug, Default, Clone, Copy)]
pub struct OrderNotifyFunction;

#[async_trait]
impl Function for OrderNotifyFunction {
    fn route(&self) -> &'static Route {
        &ROUTE
    }

    async fn handle(&self, call: &Call<'_>) -> Result<Reply, Failure> {
        let r = parse_order_notify(call.body)?;
        let debug = r.test_flag;
        call.label(ACTIVITY, debug);
        call.trace(TraceIds {
            order_id: Some(r.order_id.clone()),
            order_line_id: Some(r.order_line_id.clone()),
            ..TraceIds::default()
        });
        let partition = Partition::from_debug_flag(debug);
        let key = keys::order_notification(partition, &r.order_id, &r.order_line_id);
        // A repeat delivery of a recorded notification changes nothing: answer it without
        // asking the marketplace again.
        if call.app.store.get_record(&key).await?.is_some() {
            return Ok(Answer::ok().into());
        }
        let details = koogate_runtime::marketplace::order_details(
            call.app,
            debug,
            &r.order_id,
            Some(&r.order_line_id),
            call.now_ms,
            call.deadline_ms,
        )
        .await;
        let notification = OrderNotification {
            order_id: r.order_id.clone(),
            order_line_id: r.order_line_id.clone(),
            debug,
            received_at_ms: call.now_ms,
            enrichment: if details.is_some() { "done" } else { "pending" }.into(),
            details,
            event_ids: Vec::new(),
        };
        let events = notified_event(call, &notification);
        let doc = serde_json::to_string(&notification).map_err(|e| {
            Failure::new(
                Answer::error(
                    koogate_protocol::result_code::ResultCode::InternalError,
                    "cannot record the notification",
                ),
                format!("cannot serialise the notification: {e}"),
            )
        })?;
        // Written (first delivery) or Conflict (a repeat): both are success.
        call.app
            .put_record(&key, &Record { version: 1, doc }, None, &events)
            .await?;
        Ok(Answer::ok().into())
    }
}

/// `order.notified`, with Query Order's details when they were fetched (never the buyer's phone
/// or e-mail address, which the details do not keep).
fn notified_event(call: &Call<'_>, n: &OrderNotification) -> Vec<koogate_store::EventDraft> {
    let mut data = serde_json::Map::new();
    data.insert("orderId".into(), n.order_id.clone().into());
    data.insert("orderLineId".into(), n.order_line_id.clone().into());
    if let Some(d) = &n.details {
        let details = serde_json::json!({
            "orderType": d.order_type, "productId": d.product_id, "skuCode": d.sku_code,
            "productName": d.product_name, "chargingMode": d.charging_mode,
            "periodType": d.period_type, "periodNumber": d.period_number,
            "expireTime": d.expire_time, "customerId": d.customer_id,
        });
        if let serde_json::Value::Object(m) = details {
            data.extend(m.into_iter().filter(|(_, v)| !v.is_null()));
        }
    }
    koogate_runtime::isv::catalogue::event(
        call.app,
        "order.notified",
        n.debug,
        call.now_ms,
        None,
        data,
    )
    .into_iter()
    .collect()
}
