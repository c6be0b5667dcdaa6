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

/// The functions of a process, by route method and path.
#[derive(Clone)]
pub struct Router {
    functions: Vec<Arc<dyn Function>>,
}

impl Router {
    /// Mounts `functions` at their routes.
    pub fn new(functions: Vec<Arc<dyn Function>>) -> Router {
        Router { functions }
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
    let Some(function) = router.get(req.method().as_str(), req.uri().path()).cloned() else {
        let mut resp = Response::new(Full::new(Bytes::from_static(
            b"{\"error\":\"no such route\"}",
        )));
        *resp.status_mut() = StatusCode::NOT_FOUND;
        return Ok(resp);
    };
    let method = req.method().as_str().to_string();
    let raw_query = req.uri().query().unwrap_or("").to_string();
    let headers = req
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
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
