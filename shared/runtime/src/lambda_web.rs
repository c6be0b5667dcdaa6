//! The AWS Lambda adapter of browser functions ([`WebFunction`]): API Gateway HTTP API (payload
//! 2.0) events in, proxy responses with status, headers and `cookies` out.
//!
//! One function serves several routes (the login's four), so the route is taken from the event's
//! `routeKey` (`GET /sso/login`), which API Gateway sets to the matched route whatever the stage.

use std::collections::BTreeMap;
use std::sync::Arc;

use lambda_http::aws_lambda_events::apigw::ApiGatewayV2httpRequest;
use lambda_http::lambda_runtime::{self, service_fn, LambdaEvent};
use serde::Serialize;

use crate::app::App;
use crate::config::Config;
use crate::routes::Route;
use crate::telemetry;
use crate::web::{WebFunction, WebRequest, WebResponse};

/// The payload 2.0 proxy response of a browser answer. `Set-Cookie` goes in `cookies`, one per
/// cookie, because a headers map cannot repeat a name.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WebProxyResponse {
    pub status_code: u16,
    pub headers: BTreeMap<String, String>,
    pub body: String,
    pub is_base64_encoded: bool,
    pub cookies: Vec<String>,
}

impl From<WebResponse> for WebProxyResponse {
    fn from(out: WebResponse) -> Self {
        WebProxyResponse {
            status_code: out.status,
            headers: out.headers.into_iter().collect(),
            body: out.body,
            is_base64_encoded: false,
            cookies: out.cookies,
        }
    }
}

/// The route of `function` an event was matched to (see [`crate::lambda::route_of`]).
pub fn route_of_event(
    function: &dyn WebFunction,
    event: &ApiGatewayV2httpRequest,
) -> Option<&'static Route> {
    let routes: Vec<&'static Route> = function.routes().iter().collect();
    crate::lambda::route_of(&routes, event)
}

/// Turns an API Gateway event into a [`WebRequest`].
pub fn web_request_from_event(
    event: &ApiGatewayV2httpRequest,
    route: &Route,
    request_id: String,
) -> WebRequest {
    // A templated route (`/isv/v1/instances/{instanceId}`) needs the real path: the raw path
    // from the route's fixed prefix on (execute-api URLs carry the stage name in front).
    let raw_path = event.raw_path.as_deref().unwrap_or_default();
    let fixed = route.path.split('{').next().unwrap_or(route.path);
    let path = match raw_path.find(fixed) {
        Some(i) if route.path.contains('{') => raw_path.get(i..).unwrap_or(route.path),
        _ => route.path,
    };
    let body = match (&event.body, event.is_base64_encoded) {
        (Some(b), true) => base64::Engine::decode(&base64::engine::general_purpose::STANDARD, b)
            .unwrap_or_default(),
        (Some(b), false) => b.clone().into_bytes(),
        (None, _) => Vec::new(),
    };
    WebRequest {
        method: event.request_context.http.method.as_str().to_string(),
        path: path.to_string(),
        raw_query: event.raw_query_string.clone().unwrap_or_default(),
        headers: crate::inbound::header_pairs(&event.headers),
        cookies: event.cookies.clone().unwrap_or_default(),
        request_id,
        body,
    }
}

/// Answers one event (exposed for tests).
pub async fn answer_event(
    app: &Arc<App>,
    function: &dyn WebFunction,
    event: &ApiGatewayV2httpRequest,
    request_id: String,
) -> WebProxyResponse {
    match route_of_event(function, event) {
        Some(route) => {
            let req = web_request_from_event(event, route, request_id);
            crate::web::answer(app, function, route, &req).await.into()
        }
        None => WebResponse::json(404, &serde_json::json!({"error": "no such route"})).into(),
    }
}

/// The whole `main` of a browser function: configuration and clients once, then the Lambda loop.
/// Browser routes need no access key, so none is required at start-up.
pub async fn run_web(function: Arc<dyn WebFunction>) -> Result<(), lambda_runtime::Error> {
    telemetry::init_logging();
    let config = Config::from_env("dynamodb")?;
    let app = App::build(config, &[]).await?;
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<ApiGatewayV2httpRequest>| {
            let app = Arc::clone(&app);
            let function = Arc::clone(&function);
            async move {
                let out = answer_event(
                    &app,
                    function.as_ref(),
                    &event.payload,
                    event.context.request_id,
                )
                .await;
                Ok::<WebProxyResponse, lambda_runtime::Error>(out)
            }
        },
    ))
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_trait::async_trait;

    /// Echoes the route and the request's cookie and query, and sets two cookies.
    struct Echo;

    #[async_trait]
    impl WebFunction for Echo {
        fn name(&self) -> &'static str {
            "sso"
        }

        fn routes(&self) -> &'static [Route] {
            use crate::routes::test_route;
            const ROUTES: [Route; 2] = [
                test_route("GET", "/sso/callback"),
                test_route("GET", "/sso/logout"),
            ];
            &ROUTES
        }

        async fn handle(
            &self,
            _app: &Arc<App>,
            route: &'static Route,
            req: &WebRequest,
        ) -> WebResponse {
            WebResponse::redirect(&format!(
                "{}?c={}&q={}",
                route.path,
                req.cookie("a").unwrap_or_default(),
                req.query("x").unwrap_or_default()
            ))
            .with_cookie("a=1; Path=/".into())
            .with_cookie("b=2; Path=/".into())
        }
    }

    fn event(route_key: &str, raw_path: &str) -> ApiGatewayV2httpRequest {
        serde_json::from_value(serde_json::json!({
            "version": "2.0", "routeKey": route_key, "rawPath": raw_path,
            "rawQueryString": "x=a+b", "cookies": ["a=7", "z=0"],
            "headers": {}, "requestContext": {"http": {"method": "GET", "path": raw_path},
            "requestId": "r"}, "isBase64Encoded": false
        }))
        .unwrap()
    }

    #[test]
    fn the_route_comes_from_the_route_key_and_cookies_go_out_apart() {
        let e = event("GET /sso/callback", "/prod/sso/callback");
        let route = route_of_event(&Echo, &e).unwrap();
        assert_eq!(route.path, "/sso/callback");
        let req = web_request_from_event(&e, route, "id".into());
        assert_eq!(req.cookie("a").as_deref(), Some("7"));
        assert_eq!(req.query("x").as_deref(), Some("a b"));
        // Without a usable routeKey, the end of the path decides.
        assert_eq!(
            route_of_event(&Echo, &event("$default", "/prod/sso/logout"))
                .unwrap()
                .path,
            "/sso/logout"
        );
        assert!(route_of_event(&Echo, &event("GET /saas", "/saas")).is_none());

        let out: WebProxyResponse = WebResponse::redirect("/x")
            .with_cookie("a=1".into())
            .with_cookie("b=2".into())
            .into();
        let json = serde_json::to_value(&out).unwrap();
        assert_eq!(json["statusCode"], 302);
        assert_eq!(json["headers"]["Location"], "/x");
        assert_eq!(json["cookies"], serde_json::json!(["a=1", "b=2"]));
    }
}
