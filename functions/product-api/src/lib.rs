//! The Product API (`/isv/v1`): the ISV's product calls koogate to complete an asynchronous
//! provisioning, deliver an asynchronous license, record usage and read an instance.
//!
//! Authenticated with `Authorization: Bearer <token>`, one of `isv_api_tokens` in the secrets
//! document (compared in constant time). Answers are JSON; errors are
//! `{"error":"<code>","message":"…"}` with 400, 401, 404 or 409 (503 when the marketplace or
//! the store cannot be reached; retry). Nothing here answers the marketplace, so nothing is
//! signed with an access key. Production records only: debug-console instances never reach the
//! product.

#![forbid(unsafe_code)]

use std::sync::Arc;

use async_trait::async_trait;
use koogate_runtime::isv::provision::parse_app_info;
use koogate_runtime::routes::{AuthScheme, InterfaceType, Route};
use koogate_runtime::usage::UsageInput;
use koogate_runtime::web::{WebFunction, WebRequest, WebResponse};
use koogate_runtime::App;
use koogate_saas::license_async::{deliver, Delivery};
use koogate_saas::new_instance::{complete_provisioning, Completion};
use koogate_store::{InstanceState, Partition};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// The routes' common prefix.
pub const PREFIX: &str = "/isv/v1/";
/// The largest request body read.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// The Product API's routes, called by the ISV's product with a bearer token.
pub const ROUTES: &[Route] = &[INSTANCE, PROVISIONED, LICENSE, USAGE];

/// `GET /isv/v1/instances/{instanceId}`.
pub const INSTANCE: Route = Route {
    method: "GET",
    path: "/isv/v1/instances/{instanceId}",
    function: "product-api",
    interface: InterfaceType::Browser,
    scheme: AuthScheme::Browser,
};

/// `POST /isv/v1/instances/{instanceId}/provisioned`.
pub const PROVISIONED: Route = Route {
    method: "POST",
    path: "/isv/v1/instances/{instanceId}/provisioned",
    function: "product-api",
    interface: InterfaceType::Browser,
    scheme: AuthScheme::Browser,
};

/// `POST /isv/v1/licenses/{eventId}`.
pub const LICENSE: Route = Route {
    method: "POST",
    path: "/isv/v1/licenses/{eventId}",
    function: "product-api",
    interface: InterfaceType::Browser,
    scheme: AuthScheme::Browser,
};

/// `POST /isv/v1/usage`.
pub const USAGE: Route = Route {
    method: "POST",
    path: "/isv/v1/usage",
    function: "product-api",
    interface: InterfaceType::Browser,
    scheme: AuthScheme::Browser,
};

/// The Product API as a web function.
#[derive(Debug, Default, Clone, Copy)]
pub struct ProductApi;

#[async_trait]
impl WebFunction for ProductApi {
    fn name(&self) -> &'static str {
        "product-api"
    }

    fn routes(&self) -> &'static [Route] {
        ROUTES
    }

    async fn handle(
        &self,
        app: &Arc<App>,
        _route: &'static Route,
        req: &WebRequest,
    ) -> WebResponse {
        handle(app, req).await
    }
}

fn error(status: u16, code: &str, message: impl Into<String>) -> WebResponse {
    WebResponse::json(status, &json!({"error": code, "message": message.into()}))
}

fn store_error(e: &koogate_store::StoreError) -> WebResponse {
    tracing::error!(error = %e, "product api: storage failed");
    error(503, "unavailable", "storage is unavailable, please retry")
}

/// Whether `presented` is one of `tokens`, comparing digests so that neither the length nor
/// the content leaks through timing.
fn token_ok(tokens: &[String], presented: &str) -> bool {
    let p = Sha256::digest(presented.as_bytes());
    tokens.iter().fold(false, |ok, t| {
        let t = Sha256::digest(t.as_bytes());
        let same = p
            .iter()
            .zip(t.iter())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0;
        ok | same
    })
}

/// Answers one request (method, path and body in `req`).
pub async fn handle(app: &Arc<App>, req: &WebRequest) -> WebResponse {
    app.refresh_secrets().await;
    let secrets = app.secrets();
    let tokens = &secrets.isv_api_tokens;
    let presented = req
        .header("authorization")
        .and_then(|h| {
            h.strip_prefix("Bearer ")
                .or_else(|| h.strip_prefix("bearer "))
        })
        .map(str::trim);
    match presented {
        _ if tokens.is_empty() => {
            return error(
                401,
                "unauthorized",
                "the Product API has no isv_api_tokens configured",
            )
        }
        None => {
            return error(
                401,
                "unauthorized",
                "Authorization: Bearer <token> is required",
            )
        }
        Some(t) if !token_ok(tokens, t) => {
            tracing::warn!(request_id = %req.request_id, "product api: token refused");
            return error(401, "unauthorized", "the bearer token is not valid");
        }
        Some(_) => {}
    }
    let Some(rest) = req.path.strip_prefix(PREFIX) else {
        return error(404, "not_found", "no such route");
    };
    let parts: Vec<&str> = rest.split('/').collect();
    let body = || -> Result<Value, WebResponse> {
        serde_json::from_slice::<Value>(&req.body)
            .ok()
            .filter(Value::is_object)
            .ok_or_else(|| error(400, "bad_request", "the body must be a JSON object"))
    };
    let answer = match (req.method.as_str(), parts.as_slice()) {
        ("GET", ["instances", id]) => get_instance(app, id).await,
        ("POST", ["instances", id, "provisioned"]) => match body() {
            Ok(b) => provisioned(app, id, &b).await,
            Err(e) => e,
        },
        ("POST", ["licenses", event_id]) => match body() {
            Ok(b) => license(app, event_id, &b).await,
            Err(e) => e,
        },
        ("POST", ["usage"]) => match body() {
            Ok(b) => usage(app, &b).await,
            Err(e) => e,
        },
        _ => error(404, "not_found", "no such route"),
    };
    tracing::info!(target: "koogate::request", function = "product-api", method = %req.method,
        route = %req.path, status = answer.status, request_id = %req.request_id, "answered");
    answer
}

async fn get_instance(app: &App, id: &str) -> WebResponse {
    let inst = match app.store.get_instance(Partition::Production, id).await {
        Ok(Some(i)) => i,
        Ok(None) => return error(404, "not_found", format!("no instance {id}")),
        Err(e) => return store_error(&e),
    };
    let state = match inst.state {
        InstanceState::Provisioning | InstanceState::Failed => "provisioning",
        InstanceState::Active => "active",
        InstanceState::Frozen => "frozen",
        InstanceState::Released => "released",
    };
    let app_info = inst.app_info.as_ref().map(|a| {
        json!({"frontEndUrl": a.front_end_url, "adminUrl": a.admin_url,
               "userName": a.user_name, "memo": a.memo})
    });
    let orders: Vec<Value> = inst
        .orders
        .iter()
        .map(|o| {
            json!({"activity": o.activity, "orderId": o.order_id, "orderLineId": o.order_line_id,
                   "scene": o.scene, "expireTime": o.expire_time, "productId": o.product_id,
                   "appliedAt": koogate_protocol_time(o.applied_at_ms)})
        })
        .collect();
    WebResponse::json(
        200,
        &json!({
            "instanceId": inst.instance_id,
            "state": state,
            "productId": inst.product_id,
            "skuCode": inst.sku_code,
            "expireTime": inst.expire_time,
            "version": inst.version,
            "appInfo": app_info,
            "orders": orders,
        }),
    )
}

fn koogate_protocol_time(ms: i64) -> String {
    koogate_protocol::timestamp::format_rfc3339_ms(ms)
}

async fn provisioned(app: &App, id: &str, body: &Value) -> WebResponse {
    let info = match parse_app_info(body.get("appInfo").unwrap_or(&Value::Null)) {
        Ok(i) => i,
        Err(e) => return error(400, "bad_request", e),
    };
    let inst = match app.store.get_instance(Partition::Production, id).await {
        Ok(Some(i)) => i,
        Ok(None) => return error(404, "not_found", format!("no instance {id}")),
        Err(e) => return store_error(&e),
    };
    match complete_provisioning(app, &inst, info).await {
        Ok(Completion::Completed) | Ok(Completion::AlreadyCompleted) => {
            WebResponse::json(200, &json!({"instanceId": id, "state": "active"}))
        }
        Ok(Completion::Conflict(why)) => error(409, "conflict", why),
        Err(e) => store_error(&e),
    }
}

async fn license(app: &App, event_id: &str, body: &Value) -> WebResponse {
    let Some(license) = body
        .get("license")
        .and_then(Value::as_str)
        .filter(|l| !l.is_empty())
    else {
        return error(
            400,
            "bad_request",
            "license (a non-empty string) is required",
        );
    };
    match deliver(app, event_id, license).await {
        Ok(Delivery::Uploaded) | Ok(Delivery::AlreadyDelivered) => {
            WebResponse::json(200, &json!({"eventId": event_id, "delivered": true}))
        }
        Ok(Delivery::Conflict) => error(
            409,
            "conflict",
            "a different license was delivered for this eventId",
        ),
        Ok(Delivery::UnknownApplication) => error(
            404,
            "not_found",
            format!("no asynchronous license application {event_id}"),
        ),
        Err(e) => {
            tracing::error!(event_id, error = %e, "product api: license delivery failed");
            error(
                503,
                "unavailable",
                format!("the license could not be delivered: {e}"),
            )
        }
    }
}

async fn usage(app: &App, body: &Value) -> WebResponse {
    let Some(records) = body.get("usage_records").and_then(Value::as_array) else {
        return error(400, "bad_request", "usage_records (an array) is required");
    };
    let mut results = Vec::with_capacity(records.len());
    for r in records {
        let result = match serde_json::from_value::<UsageInput>(r.clone()) {
            Err(e) => json!({"status": "rejected", "reason": format!("malformed record: {e}")}),
            Ok(input) => record_one(app, &input).await,
        };
        results.push(result);
    }
    WebResponse::json(200, &json!({"results": results}))
}

/// One record through the same rules as every other way of recording (unknown, failed and
/// released instances are refused; see docs/usage.md).
async fn record_one(app: &App, input: &UsageInput) -> Value {
    koogate_runtime::usage::answer(&koogate_runtime::usage::record(app, input).await)
}
