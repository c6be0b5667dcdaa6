//! The local HTTP adapter behind `koogate serve`: every route of the route table in one process.
//!
//! HTTP/1.1 with title-case header names, so that `Body-Sign` and `Content-Type` go on the wire
//! capitalised exactly as the console expects.

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use crate::app::App;
use crate::inbound::Inbound;
use crate::pipeline::{self, Function};
use crate::routes::Route;
use crate::web::{WebFunction, WebRequest, WebResponse, MAX_WEB_BODY_BYTES};

/// The functions of a process, by route method and path.
#[derive(Clone)]
pub struct Router {
    functions: Vec<Arc<dyn Function>>,
    /// Browser functions (SSO), served before the marketplace ones on their exact routes.
    web: Vec<Arc<dyn WebFunction>>,
}

impl Router {
    /// Mounts `functions` at their routes.
    pub fn new(functions: Vec<Arc<dyn Function>>) -> Router {
        Router {
            functions,
            web: Vec::new(),
        }
    }

    /// Also mounts browser functions at their routes.
    pub fn with_web(mut self, web: Vec<Arc<dyn WebFunction>>) -> Router {
        self.web.extend(web);
        self
    }

    /// The web function and route for a method and path (`{name}` segments match any one).
    pub fn web(&self, method: &str, path: &str) -> Option<(&Arc<dyn WebFunction>, &'static Route)> {
        self.web.iter().find_map(|f| {
            f.routes()
                .into_iter()
                .find(|r| {
                    r.method.eq_ignore_ascii_case(method)
                        && crate::routes::path_matches(r.path, path)
                })
                .map(|r| (f, r))
        })
    }

    /// The function for a method and path. A method no route declares on a known path goes to
    /// that path's V2 (POST) function, whose pipeline answers it `000002` in the D5 framing.
    pub fn get(&self, method: &str, path: &str) -> Option<&Arc<dyn Function>> {
        let on_path = |m: &str| {
            self.functions
                .iter()
                .find(|f| f.route().method.eq_ignore_ascii_case(m) && f.route().path == path)
        };
        on_path(method).or_else(|| on_path("POST"))
    }
}

/// Reads at most `cap` bytes of the body; returns the bytes and whether there was more.
async fn read_capped(mut body: Incoming, cap: usize) -> (Vec<u8>, bool) {
    let mut buf = Vec::new();
    while let Some(frame) = body.frame().await {
        let Ok(frame) = frame else { break };
        if let Ok(data) = frame.into_data() {
            if buf.len() + data.len() > cap {
                let room = cap - buf.len();
                buf.extend_from_slice(data.get(..room).unwrap_or_default());
                return (buf, true);
            }
            buf.extend_from_slice(&data);
        }
    }
    (buf, false)
}

async fn handle(
    app: Arc<App>,
    router: Router,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    if let Some((web, route)) = router.web(req.method().as_str(), req.uri().path()) {
        let web = Arc::clone(web);
        return Ok(handle_web(&app, web.as_ref(), route, req).await);
    }
    let Some(function) = router.get(req.method().as_str(), req.uri().path()).cloned() else {
        let mut resp = Response::new(Full::new(Bytes::from_static(
            b"{\"error\":\"no such route\"}",
        )));
        *resp.status_mut() = StatusCode::NOT_FOUND;
        return Ok(resp);
    };
    let method = req.method().as_str().to_string();
    let raw_query = req.uri().query().unwrap_or("").to_string();
    let headers = crate::inbound::header_pairs(req.headers());
    let (body, body_too_large) =
        read_capped(req.into_body(), koogate_protocol::request::MAX_BODY_BYTES).await;
    let inbound = Inbound {
        method,
        raw_query,
        headers,
        body,
        body_too_large,
        request_id: uuid::Uuid::new_v4().to_string(),
        deadline_ms: None,
    };
    let out = pipeline::process(&app, function.as_ref(), &inbound).await;
    let mut builder = Response::builder().status(StatusCode::OK);
    for (name, value) in out.headers() {
        builder = builder.header(name, value);
    }
    Ok(builder
        .body(Full::new(Bytes::from(out.body)))
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::new()))))
}

/// One browser request: a [`WebRequest`] in, the [`WebResponse`] with its cookies out.
async fn handle_web(
    app: &Arc<App>,
    function: &dyn WebFunction,
    route: &'static Route,
    req: Request<Incoming>,
) -> Response<Full<Bytes>> {
    let headers = crate::inbound::header_pairs(req.headers());
    let web_req = WebRequest {
        method: req.method().as_str().to_string(),
        path: req.uri().path().to_string(),
        raw_query: req.uri().query().unwrap_or("").to_string(),
        headers,
        cookies: Vec::new(),
        request_id: uuid::Uuid::new_v4().to_string(),
        body: Vec::new(),
    };
    let (body, too_large) = read_capped(req.into_body(), MAX_WEB_BODY_BYTES).await;
    let out: WebResponse = if too_large {
        WebResponse::json(
            413,
            &serde_json::json!({"error": "too_large", "message": "the body is larger than 1 MiB"}),
        )
    } else {
        let web_req = WebRequest { body, ..web_req };
        function.handle(app, route, &web_req).await
    };
    let mut builder = Response::builder()
        .status(StatusCode::from_u16(out.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR));
    for (name, value) in &out.headers {
        builder = builder.header(name.as_str(), value.as_str());
    }
    for cookie in &out.cookies {
        builder = builder.header("Set-Cookie", cookie.as_str());
    }
    builder
        .body(Full::new(Bytes::from(out.body)))
        .unwrap_or_else(|_| {
            let mut resp = Response::new(Full::new(Bytes::new()));
            *resp.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
            resp
        })
}

/// Serves `router` on `listener` until the process ends.
pub async fn serve(listener: TcpListener, app: Arc<App>, router: Router) -> std::io::Result<()> {
    loop {
        let (stream, _) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        let app = Arc::clone(&app);
        let router = router.clone();
        tokio::spawn(async move {
            let svc = service_fn(move |req| handle(Arc::clone(&app), router.clone(), req));
            let _ = http1::Builder::new()
                .title_case_headers(true)
                .keep_alive(true)
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    }
}
