//! The local HTTP adapter behind `koogate serve`: every route of the route table in one process,
//! hardened to face the internet directly (an ECS, a FunctionGraph HTTP function).
//!
//! HTTP/1.1 with title-case header names, so that `Body-Sign` and `Content-Type` go on the wire
//! capitalised exactly as the console expects.
//!
//! What protects it (settings in [`ServeOptions`]):
//!
//! * every connection goes through [`Guarded`]: header, body and idle timeouts, and the
//!   request-smuggling check (see [`crate::http_guard`]);
//! * at most [`ServeOptions::max_connections`] connections are open (fitted to the
//!   file-descriptor limit at start-up); at the cap, accepting pauses;
//! * an accept error (out of descriptors, a connection aborted before it was accepted) is logged
//!   and retried after a short pause: the server never stops because of one connection;
//! * a request reaches the pipeline only with its whole body: a body error, a premature end, a
//!   missing last chunk or a timeout aborts it; bodies are held against a shared memory budget;
//! * SIGTERM/SIGINT (the `shutdown` future of [`serve_with`]) stop accepting, let in-flight
//!   requests finish within the grace period, and return.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::{Body as _, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};

use crate::app::App;
use crate::http_guard::{ConnShared, Guarded, Timeouts, Verdict, MAX_HEAD_BYTES};
use crate::inbound::Inbound;
use crate::pipeline::{self, Function};
use crate::routes::{InterfaceType, Route};
pub use crate::serve_options::{BasePath, ServeOptions};
use crate::web::{WebFunction, WebRequest, WebResponse, MAX_WEB_BODY_BYTES};

/// The functions of a process, by route method and path.
#[derive(Clone)]
pub struct Router {
    functions: Vec<Arc<dyn Function>>,
    /// Browser functions (SSO), served before the marketplace ones on their exact routes.
    web: Vec<Arc<dyn WebFunction>>,
    /// Where the production-address routes are mounted (`/saas` in the route table).
    base_path: BasePath,
}

impl Router {
    /// Mounts `functions` at their routes.
    pub fn new(functions: Vec<Arc<dyn Function>>) -> Router {
        Router {
            functions,
            web: Vec::new(),
            base_path: BasePath::default(),
        }
    }

    /// Mounts the routes under `/saas` under `base` instead (see [`BasePath`]).
    pub fn with_base_path(mut self, base: BasePath) -> Router {
        self.base_path = base;
        self
    }

    /// The base path of the production-address routes.
    pub fn base_path(&self) -> &BasePath {
        &self.base_path
    }

    /// Also mounts browser functions at their routes.
    pub fn with_web(mut self, web: Vec<Arc<dyn WebFunction>>) -> Router {
        self.web.extend(web);
        self
    }

    /// The web function and route for a method and path (`{name}` segments match any one).
    pub fn web(&self, method: &str, path: &str) -> Option<(&Arc<dyn WebFunction>, &'static Route)> {
        let path = self.base_path.to_table(path)?;
        let path = path.as_ref();
        self.web
            .iter()
            .find_map(|f| crate::routes::matching(f.routes(), method, path).map(|r| (f, r)))
    }

    /// The function for a method and path. A method no route declares on a known path goes to
    /// that path's V2 (POST) function, whose pipeline answers it `000002` in the D5 framing.
    pub fn get(&self, method: &str, path: &str) -> Option<&Arc<dyn Function>> {
        let path = self.base_path.to_table(path)?;
        let path = path.as_ref();
        let on_path = |m: &str| self.functions.iter().find(|f| f.route().matches(m, path));
        on_path(method).or_else(|| on_path("POST"))
    }
}

/// A request id (a UUID v4) from the thread's CSPRNG: `Uuid::new_v4` makes a system call for
/// each, a noticeable share of a request's CPU here. (The in-process tests and benchmark name
/// their calls with it too.)
pub fn request_id() -> String {
    use rand::Rng;
    uuid::Builder::from_random_bytes(rand::thread_rng().gen())
        .into_uuid()
        .to_string()
}

/// How reading a request body ended.
enum BodyRead {
    /// The whole body, and its share of the body-memory budget (released when dropped).
    Complete(Vec<u8>, Option<OwnedSemaphorePermit>),
    /// Longer than the cap: not read further.
    TooLarge,
    /// A transport error, a premature end (shorter than `Content-Length`, no last chunk) or a
    /// timeout of the connection guard: the message is incomplete.
    Failed(String),
    /// Not complete within the body timeout.
    TimedOut,
}

/// The first bytes of every body are not counted against the body-memory budget, so that the
/// marketplace's calls (a few KiB) never wait for room while large bodies hold it. Bounded by the
/// connection cap like hyper's own per-connection buffer.
const UNCOUNTED_BODY_BYTES: usize = 64 * 1024;

/// Reads a whole body of at most `cap` bytes within `timeout`, holding its bytes beyond
/// [`UNCOUNTED_BODY_BYTES`] against the shared body-memory `budget` (in KiB) as they arrive (a
/// client must send the bytes it holds). Only a body hyper reports as ended is complete: a body
/// error is never taken for its end.
async fn read_body(
    body: Incoming,
    cap: usize,
    budget: &Arc<Semaphore>,
    timeout: Duration,
) -> BodyRead {
    match tokio::time::timeout(timeout, read_body_inner(body, cap, budget)).await {
        Ok(read) => read,
        Err(_) => BodyRead::TimedOut,
    }
}

async fn read_body_inner(mut body: Incoming, cap: usize, budget: &Arc<Semaphore>) -> BodyRead {
    let declared = usize::try_from(body.size_hint().lower()).unwrap_or(usize::MAX);
    if declared > cap {
        if declared <= DRAIN_LIMIT {
            drain(&mut body, 0).await;
        }
        return BodyRead::TooLarge;
    }
    let kib = |bytes: usize| {
        u32::try_from(bytes.saturating_sub(UNCOUNTED_BODY_BYTES).div_ceil(1024)).unwrap_or(u32::MAX)
    };
    let mut held: u32 = 0;
    let mut permit: Option<OwnedSemaphorePermit> = None;
    // Reserved, not touched: pages count as memory only once bytes are written to them.
    let mut buf = Vec::with_capacity(declared);
    while let Some(frame) = body.frame().await {
        let frame = match frame {
            Ok(frame) => frame,
            Err(e) => return BodyRead::Failed(e.to_string()),
        };
        let Ok(data) = frame.into_data() else {
            continue; // trailers
        };
        if buf.len() + data.len() > cap {
            drain(&mut body, buf.len() + data.len()).await;
            return BodyRead::TooLarge;
        }
        let need = kib(buf.len() + data.len());
        if need > held {
            match Arc::clone(budget).acquire_many_owned(need - held).await {
                Ok(more) => match permit.as_mut() {
                    Some(p) => p.merge(more),
                    None => permit = Some(more),
                },
                Err(_) => return BodyRead::Failed("the server is stopping".into()),
            }
            held = need;
        }
        buf.extend_from_slice(&data);
    }
    BodyRead::Complete(buf, permit)
}

/// A body over the cap is still read, and thrown away, up to this many bytes in all and for at
/// most [`DRAIN_TIME`]: a client that sends its whole body before it reads the answer (most do)
/// then reads the `000002` answer instead of a reset connection. Beyond that the connection is
/// closed unread. Nothing drained is kept, so this costs no memory.
const DRAIN_LIMIT: usize = 4 * 1024 * 1024;
const DRAIN_TIME: Duration = Duration::from_secs(2);

/// Reads and discards what is left of `body`, `seen` bytes of which were read already.
async fn drain(body: &mut Incoming, mut seen: usize) {
    let discard = async {
        while seen <= DRAIN_LIMIT {
            match body.frame().await {
                Some(Ok(frame)) => seen += frame.data_ref().map_or(0, Bytes::len),
                _ => return,
            }
        }
    };
    let _ = tokio::time::timeout(DRAIN_TIME, discard).await;
}

/// A JSON answer of the server itself (not the pipeline's), optionally closing the connection.
fn server_answer(
    status: StatusCode,
    json: serde_json::Value,
    close: bool,
) -> Response<Full<Bytes>> {
    let mut builder = Response::builder()
        .status(status)
        .header("Content-Type", "application/json")
        .header("Cache-Control", "no-store");
    if close {
        builder = builder.header("Connection", "close");
    }
    builder
        .body(Full::new(Bytes::from(json.to_string())))
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::new())))
}

/// The answer to a body that could not be read whole; the connection is closed.
fn unread_answer(read: BodyRead) -> Response<Full<Bytes>> {
    match read {
        BodyRead::TimedOut => {
            tracing::info!("request body not complete within the body timeout; closing");
            server_answer(
                StatusCode::REQUEST_TIMEOUT,
                serde_json::json!({"error": "timeout", "message": "the request body did not arrive in time"}),
                true,
            )
        }
        BodyRead::Failed(why) => {
            tracing::info!(reason = %why, "incomplete request body; not processed");
            server_answer(
                StatusCode::BAD_REQUEST,
                serde_json::json!({"error": "incomplete_body", "message": "the request body is incomplete"}),
                true,
            )
        }
        BodyRead::TooLarge | BodyRead::Complete(..) => server_answer(
            StatusCode::PAYLOAD_TOO_LARGE,
            serde_json::json!({"error": "too_large", "message": "the body is larger than 1 MiB"}),
            true,
        ),
    }
}

/// What every connection of a server shares.
struct Shared {
    app: Arc<App>,
    router: Router,
    /// The body-memory budget, in KiB.
    budget: Arc<Semaphore>,
    body_timeout: Duration,
}

async fn handle(
    shared: Arc<Shared>,
    verdict: Verdict,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    if let Verdict::Refuse(why) = verdict {
        tracing::warn!(reason = why, "request refused (framing)");
        return Ok(server_answer(
            StatusCode::BAD_REQUEST,
            serde_json::json!({"error": "bad_request", "message": why}),
            true,
        ));
    }
    let app = &shared.app;
    let router = &shared.router;
    let path = req.uri().path().to_string();
    if path == "/healthz" && (req.method() == Method::GET || req.method() == Method::HEAD) {
        return Ok(health(app).await);
    }
    if let Some((web, route)) = router.web(req.method().as_str(), &path) {
        let web = Arc::clone(web);
        return Ok(handle_web(&shared, web.as_ref(), route, req).await);
    }
    let Some(function) = router.get(req.method().as_str(), &path).cloned() else {
        let mut resp = Response::new(Full::new(Bytes::from_static(
            b"{\"error\":\"no such route\"}",
        )));
        *resp.status_mut() = StatusCode::NOT_FOUND;
        return Ok(resp);
    };
    let method = req.method().as_str().to_string();
    let raw_query = req.uri().query().unwrap_or("").to_string();
    let headers = crate::inbound::header_pairs(req.headers());
    let read = read_body(
        req.into_body(),
        koogate_protocol::request::MAX_BODY_BYTES,
        &shared.budget,
        shared.body_timeout,
    )
    .await;
    let (body, body_too_large, _held) = match read {
        BodyRead::Complete(body, held) => (body, false, held),
        // D13: the pipeline answers 000002; the rest of the body is not read, so the
        // connection is closed after the answer.
        BodyRead::TooLarge => (Vec::new(), true, None),
        other => return Ok(unread_answer(other)),
    };
    let inbound = Inbound {
        method,
        raw_query,
        headers,
        body,
        body_too_large,
        request_id: request_id(),
        deadline_ms: None,
    };
    let out = pipeline::process(app, function.as_ref(), &inbound).await;
    let mut builder = Response::builder().status(StatusCode::OK);
    for (name, value) in out.headers() {
        builder = builder.header(name, value);
    }
    if body_too_large {
        builder = builder.header("Connection", "close");
    }
    Ok(builder
        .body(Full::new(Bytes::from(out.body)))
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::new()))))
}

/// `GET /healthz`: a cheap store read (one record that never exists) and which interface types
/// have keys; `200` when the store answers, `503` naming the failing part otherwise. Not signed;
/// carries no key, no secret and no store detail.
async fn health(app: &App) -> Response<Full<Bytes>> {
    const PROBE: Duration = Duration::from_secs(2);
    let secrets = app.secrets();
    let keys: Vec<&str> = [
        InterfaceType::Basic,
        InterfaceType::Kit,
        InterfaceType::License,
        InterfaceType::General,
        InterfaceType::Legacy,
    ]
    .into_iter()
    .filter(|i| !secrets.keys(*i).is_empty())
    .map(InterfaceType::name)
    .collect();
    let store = match tokio::time::timeout(PROBE, app.store.get_record("koogate-healthz")).await {
        Ok(Ok(_)) => "ok",
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "health check: the store failed");
            "error"
        }
        Err(_) => {
            tracing::warn!("health check: the store did not answer within 2 s");
            "timeout"
        }
    };
    let ok = store == "ok";
    server_answer(
        if ok {
            StatusCode::OK
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        },
        serde_json::json!({"status": if ok { "ok" } else { "unavailable" }, "store": store, "keys": keys}),
        false,
    )
}

/// One browser request: a [`WebRequest`] in, the [`WebResponse`] with its cookies out.
async fn handle_web(
    shared: &Shared,
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
        request_id: request_id(),
        body: Vec::new(),
    };
    let read = read_body(
        req.into_body(),
        MAX_WEB_BODY_BYTES,
        &shared.budget,
        shared.body_timeout,
    )
    .await;
    let out: WebResponse = match read {
        BodyRead::Complete(body, _held) => {
            let web_req = WebRequest { body, ..web_req };
            crate::web::answer(&shared.app, function, route, &web_req).await
        }
        other => return unread_answer(other),
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

/// Serves `router` on `listener` with the default [`ServeOptions`] until the process ends.
pub async fn serve(listener: TcpListener, app: Arc<App>, router: Router) -> std::io::Result<()> {
    serve_with(
        listener,
        app,
        router,
        ServeOptions::default(),
        std::future::pending(),
    )
    .await
}

/// Serves `router` on `listener` until `shutdown` completes, then stops accepting, lets the open
/// connections finish their requests for up to [`ServeOptions::shutdown_grace`], and returns.
/// Accept and connection errors never end it.
pub async fn serve_with(
    listener: TcpListener,
    app: Arc<App>,
    router: Router,
    options: ServeOptions,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let max = options.max_connections.max(1);
    let slots = Arc::new(Semaphore::new(max));
    let budget_kib = (options.body_memory_bytes / 1024).clamp(1, Semaphore::MAX_PERMITS);
    let shared = Arc::new(Shared {
        app,
        router,
        budget: Arc::new(Semaphore::new(budget_kib)),
        body_timeout: options.timeouts.body,
    });
    let timeouts = options.timeouts;
    let mut builder = http1::Builder::new();
    builder
        .title_case_headers(true)
        .keep_alive(true)
        .max_buf_size(MAX_HEAD_BYTES)
        .timer(TokioTimer::new())
        // A backstop only: the guard's header and idle timeouts are shorter.
        .header_read_timeout(timeouts.header + timeouts.idle + Duration::from_secs(1));
    let tls = options.tls.clone().map(tokio_rustls::TlsAcceptor::from);
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut errors = AcceptErrors::default();
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            biased;
            _ = &mut shutdown => break,
            permit = Arc::clone(&slots).acquire_owned() => match permit {
                Ok(p) => p,
                Err(_) => break,
            },
        };
        let stream = tokio::select! {
            biased;
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => stream,
                Err(e) => {
                    drop(permit);
                    let pause = errors.note(&e);
                    tokio::select! {
                        biased;
                        _ = &mut shutdown => break,
                        _ = tokio::time::sleep(pause) => continue,
                    }
                }
            },
        };
        errors.clear();
        let _ = stream.set_nodelay(true);
        let shared = Arc::clone(&shared);
        let builder = builder.clone();
        let mut stop = stop_rx.clone();
        let tls = tls.clone();
        let handshake_timeout = options.tls_handshake_timeout;
        tokio::spawn(async move {
            let _slot = permit;
            match tls {
                None => serve_connection(stream, shared, builder, timeouts, stop).await,
                Some(acceptor) => {
                    let handshake = tokio::select! {
                        r = tokio::time::timeout(handshake_timeout, acceptor.accept(stream)) => r,
                        _ = stop.wait_for(|s| *s) => return,
                    };
                    match handshake {
                        Ok(Ok(tls_stream)) => {
                            serve_connection(tls_stream, shared, builder, timeouts, stop).await
                        }
                        Ok(Err(e)) => tracing::debug!(error = %e, "TLS handshake failed"),
                        Err(_) => tracing::debug!("TLS handshake timed out"),
                    }
                }
            }
        });
    }
    drop(listener);
    let _ = stop_tx.send(true);
    let open = max - slots.available_permits();
    tracing::info!(
        open_connections = open,
        grace_secs = options.shutdown_grace.as_secs(),
        "shutting down: no longer accepting, finishing in-flight requests"
    );
    let all = u32::try_from(max).unwrap_or(u32::MAX);
    match tokio::time::timeout(options.shutdown_grace, slots.acquire_many(all)).await {
        Ok(_) => tracing::info!("shut down: every connection closed"),
        Err(_) => tracing::warn!(
            open_connections = max - slots.available_permits(),
            "shut down: grace period over, closing the remaining connections"
        ),
    }
    Ok(())
}

/// One connection: hyper's HTTP/1 state machine over the [`Guarded`] stream, shut down
/// gracefully (the current request is answered, then the connection closes) when `stop` is set.
async fn serve_connection<T>(
    io: T,
    shared: Arc<Shared>,
    builder: http1::Builder,
    timeouts: Timeouts,
    mut stop: watch::Receiver<bool>,
) where
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let conn_state = ConnShared::new();
    let guarded = Guarded::new(io, Arc::clone(&conn_state), timeouts);
    let svc = service_fn(move |req| {
        let (verdict, in_flight) = conn_state.begin();
        let shared = Arc::clone(&shared);
        async move {
            let answer = handle(shared, verdict, req).await;
            drop(in_flight);
            answer
        }
    });
    let conn = builder.serve_connection(TokioIo::new(guarded), svc);
    tokio::pin!(conn);
    let stopping = async move {
        let _ = stop.wait_for(|s| *s).await;
    };
    let ended = tokio::select! {
        ended = conn.as_mut() => ended,
        () = stopping => {
            conn.as_mut().graceful_shutdown();
            conn.as_mut().await
        }
    };
    if let Err(e) = ended {
        tracing::debug!(error = %e, "connection ended with an error");
    }
}

/// Accept errors: logged (at most once a second, with a count of the ones not logged) and paused
/// after, longer when the process is out of a resource.
#[derive(Default)]
struct AcceptErrors {
    last_logged: Option<tokio::time::Instant>,
    unlogged: u64,
}

impl AcceptErrors {
    /// Logs `e` (rate-limited) and returns how long to pause before accepting again.
    fn note(&mut self, e: &std::io::Error) -> Duration {
        let exhausted = is_resource_exhaustion(e);
        let now = tokio::time::Instant::now();
        let due = self
            .last_logged
            .is_none_or(|t| now.duration_since(t) >= Duration::from_secs(1));
        if due {
            if exhausted {
                tracing::error!(error = %e, repeated = self.unlogged,
                    "accept failed: out of file descriptors or memory; pausing 100 ms");
            } else {
                tracing::warn!(error = %e, repeated = self.unlogged, "accept failed; continuing");
            }
            self.last_logged = Some(now);
            self.unlogged = 0;
        } else {
            self.unlogged += 1;
        }
        if exhausted {
            Duration::from_millis(100)
        } else {
            Duration::from_millis(10)
        }
    }

    fn clear(&mut self) {
        if self.unlogged > 0 {
            tracing::warn!(
                repeated = self.unlogged,
                "accepting again after accept errors"
            );
        }
        self.unlogged = 0;
    }
}

#[cfg(unix)]
fn is_resource_exhaustion(e: &std::io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
    )
}

#[cfg(not(unix))]
fn is_resource_exhaustion(_e: &std::io::Error) -> bool {
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_distinct_version_4_uuids() {
        let (a, b) = (request_id(), request_id());
        assert_ne!(a, b);
        for id in [a, b] {
            let parsed = uuid::Uuid::parse_str(&id).unwrap();
            assert_eq!(parsed.get_version_num(), 4, "{id}");
            assert_eq!(parsed.get_variant(), uuid::Variant::RFC4122, "{id}");
        }
    }
}
