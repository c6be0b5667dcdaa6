//! The AWS Lambda adapter: API Gateway HTTP API (payload 2.0) events in, proxy responses out.
//!
//! The response is built as the API Gateway proxy JSON directly rather than through
//! `lambda_http`'s `http::Response`, because `http::HeaderMap` lower-cases header names and the
//! console may check `Body-Sign` case-sensitively (design §3 step 8): here the name is written
//! exactly as `Body-Sign`.

use std::collections::BTreeMap;
use std::sync::Arc;

use base64::Engine;
use lambda_http::aws_lambda_events::apigw::ApiGatewayV2httpRequest;
use lambda_http::lambda_runtime::{self, service_fn, LambdaEvent};
use serde::Serialize;

use crate::app::App;
use crate::config::Config;
use crate::inbound::{Inbound, Outbound};
use crate::pipeline::{self, Function};
use crate::routes::Route;
use crate::telemetry;

/// The proxy response API Gateway expects from a payload 2.0 integration.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProxyResponse {
    pub status_code: u16,
    pub headers: BTreeMap<&'static str, String>,
    pub body: String,
    pub is_base64_encoded: bool,
    /// Always empty; present because strict readers of the proxy format (cargo-lambda's
    /// emulator, `aws_lambda_events`) require the member.
    pub cookies: Vec<String>,
}

impl From<Outbound> for ProxyResponse {
    fn from(out: Outbound) -> Self {
        let headers = out
            .headers()
            .iter()
            .map(|(k, v)| (*k, v.to_string()))
            .collect();
        // Rendered bodies are ASCII (non-ASCII is \u-escaped), so this is lossless.
        let body = String::from_utf8_lossy(&out.body).into_owned();
        ProxyResponse {
            status_code: Outbound::STATUS,
            headers,
            body,
            is_base64_encoded: false,
            cookies: Vec::new(),
        }
    }
}

/// Turns an API Gateway event into the pipeline's input. The route is the function's own (one
/// function per route), so the path, which carries the stage name on execute-api URLs, is not
/// consulted.
pub fn inbound_from_event(
    event: ApiGatewayV2httpRequest,
    request_id: String,
    deadline_ms: i64,
) -> Inbound {
    let headers = crate::inbound::header_pairs(&event.headers);
    let mut body = match (event.body, event.is_base64_encoded) {
        (None, _) => Vec::new(),
        (Some(b), false) => b.into_bytes(),
        (Some(b), true) => base64::engine::general_purpose::STANDARD
            .decode(b.as_bytes())
            .unwrap_or_default(),
    };
    let cap = koogate_protocol::request::MAX_BODY_BYTES;
    let body_too_large = body.len() > cap;
    if body_too_large {
        body.truncate(cap);
    }
    Inbound {
        method: event.request_context.http.method.as_str().to_string(),
        headers,
        raw_query: event.raw_query_string.unwrap_or_default(),
        body,
        body_too_large,
        request_id,
        deadline_ms: Some(deadline_ms),
    }
}

/// The whole `main` of a function: configuration and clients once, then the Lambda loop.
pub async fn run(function: Arc<dyn Function>) -> Result<(), lambda_runtime::Error> {
    run_routes(vec![function]).await
}

/// Like [`run`] for a function that serves several routes (the kit functions serve their V2 and
/// their V1 path), one [`Function`] per route: each event goes to the one its route names.
pub async fn run_routes(functions: Vec<Arc<dyn Function>>) -> Result<(), lambda_runtime::Error> {
    telemetry::init_logging();
    let config = Config::from_env("dynamodb")?;
    let interfaces: Vec<_> = functions.iter().map(|f| f.route().interface).collect();
    let app = App::builder(config).serves(&interfaces).build().await?;
    run_app(app, functions).await
}

/// The Lambda loop over an [`App`] built by the caller ([`App::builder`]): how a Rust ISV runs
/// a function with its own provisioner, license issuer or event sinks.
pub async fn run_app(
    app: Arc<App>,
    functions: Vec<Arc<dyn Function>>,
) -> Result<(), lambda_runtime::Error> {
    telemetry::init_logging();
    let Some(first) = functions.first().cloned() else {
        return Err("run_app needs at least one function".into());
    };
    let routes: Arc<[&'static Route]> = functions.iter().map(|f| f.route()).collect();
    let functions = Arc::new(functions);
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<ApiGatewayV2httpRequest>| {
            let app = Arc::clone(&app);
            let functions = Arc::clone(&functions);
            let routes = Arc::clone(&routes);
            let first = Arc::clone(&first);
            async move {
                let deadline = i64::try_from(event.context.deadline).unwrap_or(i64::MAX);
                let function = route_of(&routes, &event.payload)
                    .and_then(|r| functions.iter().find(|f| f.route() == r).cloned())
                    .unwrap_or(first);
                let inbound = inbound_from_event(event.payload, event.context.request_id, deadline);
                let out = pipeline::process(&app, function.as_ref(), &inbound).await;
                Ok::<ProxyResponse, lambda_runtime::Error>(out.into())
            }
        },
    ))
    .await
}

/// The route an event came by, among `routes`: by API Gateway's `routeKey` (`POST /saas/…`),
/// else by the method and the raw path, as sent or without its first segment (the stage name on
/// execute-api URLs). Both through [`Route::matches`], like `koogate serve`. API Gateway sends a
/// function only its own routes, so `None` happens only under an emulator; `run_routes` then
/// uses the first route, whose pipeline answers like for any request it cannot verify.
pub(crate) fn route_of(
    routes: &[&'static Route],
    event: &ApiGatewayV2httpRequest,
) -> Option<&'static Route> {
    let route_key = event.route_key.as_deref().unwrap_or_default();
    let raw_path = event.raw_path.as_deref().unwrap_or_default();
    let method = event.request_context.http.method.as_str();
    let unstaged = raw_path
        .strip_prefix('/')
        .and_then(|p| p.split_once('/'))
        .map(|(_stage, rest)| format!("/{rest}"));
    let candidates = route_key
        .split_once(' ')
        .into_iter()
        .chain(std::iter::once((method, raw_path)))
        .chain(unstaged.as_deref().map(|p| (method, p)));
    for (m, p) in candidates {
        if let Some(route) = crate::routes::matching(routes.iter().copied(), m, p) {
            return Some(route);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_response_keeps_the_body_sign_header_name_and_the_raw_query_survives() {
        let event: ApiGatewayV2httpRequest = serde_json::from_str(
            r#"{"version":"2.0","routeKey":"POST /saas","rawPath":"/prod/saas",
                "rawQueryString":"signature=AB%2B&timestamp=1&nonce=n",
                "headers":{"content-type":"application/json;charset=utf8"},
                "requestContext":{"http":{"method":"POST","path":"/prod/saas"},"requestId":"r"},
                "body":"eyJhIjoxfQ==","isBase64Encoded":true}"#,
        )
        .unwrap();
        let inbound = inbound_from_event(event, "req-1".into(), 99);
        assert_eq!(inbound.method, "POST");
        assert_eq!(inbound.body, br#"{"a":1}"#);
        assert_eq!(inbound.query_param("signature").as_deref(), Some("AB+"));
        assert_eq!(
            inbound.header("content-type"),
            Some("application/json;charset=utf8")
        );

        let resp: ProxyResponse =
            Outbound::signed(br#"{"resultCode":"000000"}"#.to_vec(), "k").into();
        let json = serde_json::to_string(&resp).unwrap();
        assert!(
            json.contains(r#""Body-Sign":"sign_type=\"HMAC-SHA256\", signature=\""#),
            "{json}"
        );
        assert!(
            json.contains(r#""Content-Type":"application/json""#),
            "{json}"
        );
        assert!(json.contains(r#""statusCode":200"#), "{json}");
    }

    fn event(route_key: &str, method: &str, raw_path: &str) -> ApiGatewayV2httpRequest {
        serde_json::from_value(serde_json::json!({
            "version": "2.0", "routeKey": route_key, "rawPath": raw_path,
            "requestContext": {"http": {"method": method, "path": raw_path}, "requestId": "r"}
        }))
        .unwrap()
    }

    #[test]
    fn an_event_finds_its_route_by_key_then_by_path_with_or_without_the_stage() {
        use crate::routes::test_route as route;
        const TENANT_SYNC_V2: Route = route("POST", "/saas/produceAPI/v2/tenantSync");
        const TENANT_SYNC_V1: Route = route("POST", "/saas/produceAPI/tenantSync");
        const SAAS: Route = route("POST", "/saas");
        const PRODUCT_API_USAGE: Route = route("POST", "/isv/v1/usage");
        const PRODUCT_API_INSTANCE: Route = route("GET", "/isv/v1/instances/{instanceId}");
        let kit = [&TENANT_SYNC_V2, &TENANT_SYNC_V1];
        let key = format!("POST {}", TENANT_SYNC_V1.path);
        assert_eq!(
            route_of(&kit, &event(&key, "POST", "/x")),
            Some(&TENANT_SYNC_V1)
        );
        // No usable route key (an emulator's `$default`): the raw path, staged or not.
        let staged = format!("/prod{}", TENANT_SYNC_V2.path);
        assert_eq!(
            route_of(&kit, &event("$default", "POST", &staged)),
            Some(&TENANT_SYNC_V2)
        );
        assert_eq!(
            route_of(&kit, &event("$default", "POST", TENANT_SYNC_V1.path)),
            Some(&TENANT_SYNC_V1)
        );
        assert_eq!(
            route_of(&kit, &event("$default", "GET", TENANT_SYNC_V1.path)),
            None
        );
        assert_eq!(
            route_of(&[&SAAS], &event("$default", "POST", "/prod/other")),
            None
        );
        // Templates: the route key carries the template, the raw path a value.
        let api = [&PRODUCT_API_USAGE, &PRODUCT_API_INSTANCE];
        let key = format!(
            "{} {}",
            PRODUCT_API_INSTANCE.method, PRODUCT_API_INSTANCE.path
        );
        assert_eq!(
            route_of(&api, &event(&key, "GET", "/x")),
            Some(&PRODUCT_API_INSTANCE)
        );
        let path = format!(
            "/prod{}",
            PRODUCT_API_INSTANCE.path.replace("{instanceId}", "i-1")
        );
        assert_eq!(
            route_of(&api, &event("$default", PRODUCT_API_INSTANCE.method, &path)),
            Some(&PRODUCT_API_INSTANCE)
        );
    }
}
