//! Browser routes (the joint-operation login): plain HTTP requests and answers with status codes,
//! `Location`, `Set-Cookie` and JSON or HTML bodies.
//!
//! They do not go through the signed pipeline: the marketplace never calls them, the users'
//! browsers do. A [`WebFunction`] serves one or more routes of the route table whose scheme is
//! [`crate::routes::AuthScheme::Browser`]; the local server and the Lambda adapter
//! (`lambda_web`) feed it the same [`WebRequest`].

use std::sync::Arc;

use async_trait::async_trait;

use crate::app::App;
use crate::routes::Route;

/// At most this many bytes of a web request body are read (the login routes are GETs; the
/// Product API takes usage batches).
pub const MAX_WEB_BODY_BYTES: usize = 1024 * 1024;

/// A browser request.
#[derive(Debug, Clone, Default)]
pub struct WebRequest {
    pub method: String,
    /// The route's path (without an API Gateway stage prefix).
    pub path: String,
    pub raw_query: String,
    /// Header names as received (compare case-insensitively).
    pub headers: Vec<(String, String)>,
    /// The cookies, each `name=value` (API Gateway payload 2.0 hands them apart from the headers).
    pub cookies: Vec<String>,
    pub request_id: String,
    /// The body (at most [`MAX_WEB_BODY_BYTES`]; the Product API's JSON).
    pub body: Vec<u8>,
}

impl WebRequest {
    /// The first header of that name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The first query parameter of that name, form-decoded (browsers encode a space as `+`).
    pub fn query(&self, name: &str) -> Option<String> {
        koogate_protocol::sso::query_value(&self.raw_query, name)
    }

    /// The value of cookie `name`, from the payload 2.0 `cookies` or the `Cookie` header(s).
    pub fn cookie(&self, name: &str) -> Option<String> {
        self.cookies
            .iter()
            .find_map(|c| koogate_protocol::sso::cookie_value(c, name))
            .or_else(|| {
                self.headers
                    .iter()
                    .filter(|(k, _)| k.eq_ignore_ascii_case("cookie"))
                    .find_map(|(_, v)| koogate_protocol::sso::cookie_value(v, name))
            })
    }
}

/// A browser answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    /// `Set-Cookie` values, one cookie each (API Gateway payload 2.0 takes them apart).
    pub cookies: Vec<String>,
    pub body: String,
}

impl WebResponse {
    /// `302 Found` to `location`.
    pub fn redirect(location: &str) -> WebResponse {
        WebResponse {
            status: 302,
            headers: vec![
                ("Location".into(), location.into()),
                ("Cache-Control".into(), "no-store".into()),
            ],
            cookies: Vec::new(),
            body: String::new(),
        }
    }

    /// A JSON answer.
    pub fn json(status: u16, value: &serde_json::Value) -> WebResponse {
        WebResponse {
            status,
            headers: vec![
                ("Content-Type".into(), "application/json".into()),
                ("Cache-Control".into(), "no-store".into()),
            ],
            cookies: Vec::new(),
            body: value.to_string(),
        }
    }

    /// A small HTML page saying what happened; `message` is escaped.
    pub fn page(status: u16, title: &str, message: &str) -> WebResponse {
        let body = format!(
            "<!doctype html><html><head><meta charset=\"utf-8\"><title>{t}</title></head>\
             <body><h1>{t}</h1><p>{m}</p></body></html>",
            t = escape_html(title),
            m = escape_html(message)
        );
        WebResponse {
            status,
            headers: vec![
                ("Content-Type".into(), "text/html; charset=utf-8".into()),
                ("Cache-Control".into(), "no-store".into()),
            ],
            cookies: Vec::new(),
            body,
        }
    }

    /// Adds a `Set-Cookie`.
    pub fn with_cookie(mut self, set_cookie: String) -> WebResponse {
        self.cookies.push(set_cookie);
        self
    }

    /// The first header of that name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

fn escape_html(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Answers one browser request with `function`, as the signed pipeline answers a callback: within
/// the request budget (`503` after it), then one log line and, when metrics are on, one metric.
/// The HTTP status stands in for the result code; a `5xx` counts as failed. Both adapters (the
/// local server and Lambda) answer browser routes through here.
pub async fn answer(
    app: &Arc<App>,
    function: &dyn WebFunction,
    route: &'static Route,
    req: &WebRequest,
) -> WebResponse {
    let started = std::time::Instant::now();
    let budget = app.config.request_budget;
    let (out, reason) = match tokio::time::timeout(budget, function.handle(app, route, req)).await {
        Ok(out) => (out, None),
        Err(_) => (
            WebResponse::json(
                503,
                &serde_json::json!({"error": "the request took too long, please retry"}),
            ),
            Some(format!("no answer within {} ms", budget.as_millis())),
        ),
    };
    let status = out.status.to_string();
    let ids = crate::trace_ids::TraceIds::default();
    let record = crate::telemetry::RequestRecord {
        function: route.function,
        route: route.path,
        activity: None,
        result_code: &status,
        debug: false,
        request_id: &req.request_id,
        latency_us: u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX),
        key_index: None,
        reason: reason.as_deref(),
        ids: &ids,
    };
    crate::telemetry::log_request(&record);
    if app.config.emit_metrics {
        crate::telemetry::emit_metric(&record, crate::pipeline::now_ms());
    }
    out
}

/// A function serving browser routes.
#[async_trait]
pub trait WebFunction: Send + Sync + 'static {
    /// The function's name in the route table (`Route::function`).
    fn name(&self) -> &'static str;

    /// Answers one request on one of the function's routes. Never fails: every error is an answer.
    async fn handle(&self, app: &Arc<App>, route: &'static Route, req: &WebRequest) -> WebResponse;

    /// The routes this function serves (constants its crate declares).
    fn routes(&self) -> &'static [Route];
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_come_from_either_place_and_queries_are_form_decoded() {
        let req = WebRequest {
            raw_query: "return_to=%2Fa+b&x=1".into(),
            headers: vec![("Cookie".into(), "a=1; b=2".into())],
            cookies: vec!["c=3".into()],
            ..Default::default()
        };
        assert_eq!(req.query("return_to").as_deref(), Some("/a b"));
        assert_eq!(req.cookie("b").as_deref(), Some("2"));
        assert_eq!(req.cookie("c").as_deref(), Some("3"));
        assert_eq!(req.cookie("d"), None);
    }

    #[test]
    fn pages_escape_their_message() {
        let p = WebResponse::page(400, "t", "<script>");
        assert!(p.body.contains("&lt;script&gt;"));
        assert_eq!(WebResponse::redirect("/x").header("location"), Some("/x"));
    }
}
