//! A fake of the ISV's own product, as an independent harness sees koogate's contract with it:
//! an HTTP server in the test process that receives koogate's events (`/events`) and its
//! provisioning, change-check and license-issue requests (`/provision`), checks every Standard
//! Webhooks signature and header, records every delivery, and answers as a test scripts it
//! (a status, a body, a delay), or is "down" (not listening, connections cut).
//!
//! The signature check is written here from the Standard Webhooks definition (HMAC-SHA256 over
//! `{id}.{timestamp}.{body}`, keyed with the Base64-decoded part of a `whsec_` secret), not taken
//! from koogate, so that koogate's signer and this verifier are checked against each other and
//! against the specification's published vector.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::Value;
use sha2::{Digest, Sha256};
use tokio::task::AbortHandle;

/// How long [`FakeProduct::wait_for`] and friends poll before failing.
pub const WAIT: Duration = Duration::from_secs(15);

// ---------------------------------------------------------------------------------------------
// Standard Webhooks signing, written from the definition

/// HMAC-SHA256 (RFC 2104) over SHA-256.
pub fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    let mut block = [0u8; 64];
    if key.len() > 64 {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let mut ipad = [0x36u8; 64];
    let mut opad = [0x5cu8; 64];
    for i in 0..64 {
        ipad[i] ^= block[i];
        opad[i] ^= block[i];
    }
    let inner = Sha256::new()
        .chain_update(ipad)
        .chain_update(message)
        .finalize();
    Sha256::new()
        .chain_update(opad)
        .chain_update(inner)
        .finalize()
        .into()
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard Base64 with padding.
pub fn base64_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        out.push(B64[(n >> 18) as usize & 63] as char);
        out.push(B64[(n >> 12) as usize & 63] as char);
        out.push(if chunk.len() > 1 {
            B64[(n >> 6) as usize & 63] as char
        } else {
            '='
        });
        out.push(if chunk.len() > 2 {
            B64[n as usize & 63] as char
        } else {
            '='
        });
    }
    out
}

/// Standard Base64 (padding required when the length is not a multiple of 4 is not enforced).
pub fn base64_decode(text: &str) -> Result<Vec<u8>, String> {
    let text = text.trim_end_matches('=');
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let mut acc: u32 = 0;
    let mut bits = 0;
    for c in text.bytes() {
        let v = B64
            .iter()
            .position(|&x| x == c)
            .ok_or_else(|| format!("not Base64: {:?}", c as char))? as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    if bits >= 6 {
        return Err("truncated Base64".into());
    }
    Ok(out)
}

/// The HMAC key of a `whsec_<base64>` secret.
pub fn secret_key(secret: &str) -> Result<Vec<u8>, String> {
    let encoded = secret
        .strip_prefix("whsec_")
        .ok_or("a webhook secret starts with whsec_")?;
    base64_decode(encoded)
}

/// The `v1,<base64>` signature of one message under one secret.
pub fn sign(secret: &str, id: &str, timestamp: &str, body: &[u8]) -> String {
    let key = secret_key(secret).expect("a valid whsec_ secret");
    let mut content = format!("{id}.{timestamp}.").into_bytes();
    content.extend_from_slice(body);
    format!("v1,{}", base64_encode(&hmac_sha256(&key, &content)))
}

/// Whether `header` (space-separated `v1,<base64>` entries) holds a valid signature of the
/// message under `secret` (a receiver accepts any entry that verifies).
pub fn verify(secret: &str, id: &str, timestamp: &str, body: &[u8], header: &str) -> bool {
    let expected = sign(secret, id, timestamp, body);
    header.split(' ').any(|entry| entry == expected)
}

/// A fresh `whsec_` secret of 32 random bytes.
pub fn new_secret() -> String {
    format!("whsec_{}", base64_encode(&rand::random::<[u8; 32]>()))
}

// ---------------------------------------------------------------------------------------------
// Time helpers

/// Unix seconds now.
pub fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Parses `YYYY-MM-DDTHH:MM:SS.mmmZ` (RFC 3339, UTC, milliseconds) to Unix milliseconds.
pub fn parse_rfc3339_ms(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    if b.len() != 24 {
        return None;
    }
    let shape = b"dddd-dd-ddTdd:dd:dd.dddZ";
    for (c, s) in b.iter().zip(shape.iter()) {
        let ok = if *s == b'd' {
            c.is_ascii_digit()
        } else {
            c == s
        };
        if !ok {
            return None;
        }
    }
    let n = |r: std::ops::Range<usize>| text[r].parse::<i64>().ok();
    let (y, mo, d) = (n(0..4)?, n(5..7)?, n(8..10)?);
    let (h, mi, s, ms) = (n(11..13)?, n(14..16)?, n(17..19)?, n(20..23)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || s > 60 {
        return None;
    }
    Some((((days_from_civil(y, mo, d) * 24 + h) * 60 + mi) * 60 + s) * 1000 + ms)
}

/// `yyyyMMdd'T'HHmmss'Z'` (UTC) of Unix milliseconds: the usage record time format.
pub fn usage_time(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // civil_from_days
    let z = days + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

// ---------------------------------------------------------------------------------------------
// Deliveries and scripted answers

/// One HTTP request the fake received, with what the harness found wrong in it.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// Arrival order, from 0.
    pub seq: usize,
    pub method: String,
    pub path: String,
    /// Lower-case names.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// The body parsed (Null when it is not JSON).
    pub json: Value,
    pub webhook_id: String,
    pub webhook_timestamp: String,
    pub webhook_signature: String,
    /// Everything the checks found wrong; empty when the delivery is a valid signed message.
    pub problems: Vec<String>,
    /// The status the fake answered (or was about to answer when the caller hung up).
    pub answered: u16,
    pub received_at: Instant,
}

impl Delivery {
    /// The body's `type`.
    pub fn kind(&self) -> &str {
        self.json["type"].as_str().unwrap_or("")
    }
    /// The body's `data`.
    pub fn data(&self) -> &Value {
        &self.json["data"]
    }
    /// `data.instanceId`.
    pub fn instance_id(&self) -> Option<&str> {
        self.json["data"]["instanceId"].as_str()
    }
    /// `data.version`.
    pub fn version(&self) -> Option<u64> {
        self.json["data"]["version"].as_u64()
    }
    /// Whether the fake answered 2xx (the message counts as delivered).
    pub fn accepted(&self) -> bool {
        (200..300).contains(&self.answered)
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// What the fake answers to one request.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub body: String,
    pub delay: Duration,
}

impl Reply {
    /// `status` with the body `{}`.
    pub fn status(status: u16) -> Reply {
        Reply {
            status,
            body: "{}".into(),
            delay: Duration::ZERO,
        }
    }
    /// `status` with a JSON body.
    pub fn json(status: u16, body: Value) -> Reply {
        Reply {
            status,
            body: body.to_string(),
            delay: Duration::ZERO,
        }
    }
    /// The same answer, sent after `delay`.
    pub fn after(mut self, delay: Duration) -> Reply {
        self.delay = delay;
        self
    }
}

/// Which requests a scripted answer applies to.
pub type Matcher = Arc<dyn Fn(&Delivery) -> bool + Send + Sync>;

/// Every request.
pub fn any() -> Matcher {
    Arc::new(|_| true)
}
/// Requests whose body `type` is `t`.
pub fn on_type(t: &str) -> Matcher {
    let t = t.to_string();
    Arc::new(move |d| d.kind() == t)
}
/// Requests whose `data.instanceId` is `id`.
pub fn on_instance(id: &str) -> Matcher {
    let id = id.to_string();
    Arc::new(move |d| d.instance_id() == Some(id.as_str()))
}
/// Requests of body type `t` about instance `id`.
pub fn on_type_and_instance(t: &str, id: &str) -> Matcher {
    let (t, id) = (t.to_string(), id.to_string());
    Arc::new(move |d| d.kind() == t && d.instance_id() == Some(id.as_str()))
}

struct Rule {
    matcher: Matcher,
    reply: Reply,
    /// `None`: forever.
    remaining: Option<usize>,
}

struct State {
    deliveries: Vec<Delivery>,
    rules: Vec<Rule>,
    default: Reply,
    up: bool,
    accept: Option<AbortHandle>,
    connections: Vec<AbortHandle>,
}

struct Inner {
    port: u16,
    secrets: Vec<String>,
    state: Mutex<State>,
}

/// The fake product. Dropping it stops its server.
pub struct FakeProduct {
    inner: Arc<Inner>,
}

impl Drop for FakeProduct {
    fn drop(&mut self) {
        let mut s = self.inner.state.lock().unwrap_or_else(|e| e.into_inner());
        s.up = false;
        if let Some(a) = s.accept.take() {
            a.abort();
        }
        for c in s.connections.drain(..) {
            c.abort();
        }
    }
}

impl FakeProduct {
    /// Starts the fake on a free loopback port; it verifies signatures with `secrets` (every
    /// one of them must have signed every request: koogate signs with each configured secret).
    pub async fn start(secrets: &[String]) -> FakeProduct {
        let listener = bind(0).await.expect("bind the fake product");
        let port = listener.local_addr().unwrap().port();
        let inner = Arc::new(Inner {
            port,
            secrets: secrets.to_vec(),
            state: Mutex::new(State {
                deliveries: Vec::new(),
                rules: Vec::new(),
                default: Reply::status(200),
                up: true,
                accept: None,
                connections: Vec::new(),
            }),
        });
        let accept = spawn_accept(Arc::clone(&inner), listener);
        inner.state.lock().unwrap().accept = Some(accept);
        FakeProduct { inner }
    }

    pub fn port(&self) -> u16 {
        self.inner.port
    }

    /// `http://127.0.0.1:<port><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.inner.port)
    }

    /// The events receiver (`KOOGATE_WEBHOOK_URL`).
    pub fn events_url(&self) -> String {
        self.url("/events")
    }

    /// The provisioning receiver (`KOOGATE_PROVISION_URL`).
    pub fn provision_url(&self) -> String {
        self.url("/provision")
    }

    /// Answers requests matching `matcher` with `reply`, `times` times (`None`: always). Rules
    /// are tried in the order they were added; the first one left applies.
    pub fn script(&self, matcher: Matcher, reply: Reply, times: Option<usize>) {
        self.lock().rules.push(Rule {
            matcher,
            reply,
            remaining: times,
        });
    }

    /// Forgets every scripted rule (the default answer applies again).
    pub fn clear_script(&self) {
        self.lock().rules.clear();
    }

    /// The answer when no rule applies (initially 200 `{}`).
    pub fn set_default(&self, reply: Reply) {
        self.lock().default = reply;
    }

    /// Stops listening and cuts every open connection (koogate's pooled ones too).
    pub async fn down(&self) {
        let accept = {
            let mut s = self.lock();
            s.up = false;
            s.accept.take()
        };
        if let Some(a) = accept {
            a.abort();
        }
        // A connection accepted while the abort was landing registers itself: let it, then cut.
        tokio::time::sleep(Duration::from_millis(50)).await;
        let conns: Vec<AbortHandle> = self.lock().connections.drain(..).collect();
        for c in conns {
            c.abort();
        }
        // The listener is dropped with its task; wait until the port refuses connections.
        let deadline = Instant::now() + Duration::from_secs(5);
        while tokio::net::TcpStream::connect(("127.0.0.1", self.inner.port))
            .await
            .is_ok()
        {
            assert!(
                Instant::now() < deadline,
                "the fake product did not go down"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Listens again on the same port.
    pub async fn up(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        let listener = loop {
            match bind(self.inner.port).await {
                Ok(l) => break l,
                Err(e) => {
                    assert!(
                        Instant::now() < deadline,
                        "the fake product could not listen on {} again: {e}",
                        self.inner.port
                    );
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        };
        self.lock().up = true;
        let accept = spawn_accept(Arc::clone(&self.inner), listener);
        self.lock().accept = Some(accept);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.inner.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Every request received so far, in arrival order. Panics if any of them failed a check
    /// (signature, headers, body shape): every test verifies every delivery this way.
    pub fn deliveries(&self) -> Vec<Delivery> {
        let all = self.lock().deliveries.clone();
        let bad: Vec<String> = all
            .iter()
            .filter(|d| !d.problems.is_empty())
            .map(|d| {
                format!(
                    "#{} {} {} webhook-id {:?}: {}\n  body: {}",
                    d.seq,
                    d.method,
                    d.path,
                    d.webhook_id,
                    d.problems.join("; "),
                    d.body_text()
                )
            })
            .collect();
        assert!(
            bad.is_empty(),
            "the fake product received invalid deliveries:\n{}",
            bad.join("\n")
        );
        all
    }

    /// Panics unless every delivery so far passed every check.
    pub fn assert_verified(&self) {
        let _ = self.deliveries();
    }

    /// Event deliveries (to `/events`), every attempt.
    pub fn event_attempts(&self) -> Vec<Delivery> {
        self.deliveries()
            .into_iter()
            .filter(|d| d.path == "/events")
            .collect()
    }

    /// Requests to `/provision` (provisioning, change checks, license issues), every attempt.
    pub fn provision_requests(&self) -> Vec<Delivery> {
        self.deliveries()
            .into_iter()
            .filter(|d| d.path == "/provision")
            .collect()
    }

    /// Every attempt of the message with this `webhook-id`.
    pub fn attempts_of(&self, webhook_id: &str) -> Vec<Delivery> {
        self.deliveries()
            .into_iter()
            .filter(|d| d.webhook_id == webhook_id)
            .collect()
    }

    /// The events the product has accepted, deduplicated on `webhook-id` as a receiver does (the
    /// first accepted attempt of each), in arrival order. Panics if two attempts of one
    /// `webhook-id` carried different bodies.
    pub fn received_events(&self) -> Vec<Delivery> {
        let attempts = self.event_attempts();
        let mut bodies: BTreeMap<&str, &Vec<u8>> = BTreeMap::new();
        for d in &attempts {
            if let Some(b) = bodies.insert(&d.webhook_id, &d.body) {
                assert_eq!(
                    b, &d.body,
                    "webhook-id {} was delivered with two different bodies",
                    d.webhook_id
                );
            }
        }
        let mut seen = std::collections::HashSet::new();
        attempts
            .iter()
            .filter(|d| d.accepted() && seen.insert(d.webhook_id.clone()))
            .cloned()
            .collect()
    }

    /// Accepted events of type `t` (deduplicated).
    pub fn received_of_type(&self, t: &str) -> Vec<Delivery> {
        self.received_events()
            .into_iter()
            .filter(|d| d.kind() == t)
            .collect()
    }

    /// Waits (up to [`WAIT`]) until some delivery satisfies `pred`, and returns the first one.
    pub async fn wait_for(&self, what: &str, pred: impl Fn(&Delivery) -> bool) -> Delivery {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(d) = self.deliveries().into_iter().find(|d| pred(d)) {
                return d;
            }
            if Instant::now() > deadline {
                panic!(
                    "waited {WAIT:?} for {what}; the fake product received:\n{}",
                    self.summary()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits for the first accepted event of type `t` about instance `instance_id`.
    pub async fn wait_for_event(&self, t: &str, instance_id: &str) -> Delivery {
        self.wait_for(&format!("an accepted {t} event for {instance_id}"), |d| {
            d.path == "/events"
                && d.accepted()
                && d.kind() == t
                && d.instance_id() == Some(instance_id)
        })
        .await
    }

    /// Waits until `cond` holds over every delivery so far.
    pub async fn wait_until(&self, what: &str, cond: impl Fn(&[Delivery]) -> bool) {
        let deadline = Instant::now() + WAIT;
        loop {
            if cond(&self.deliveries()) {
                return;
            }
            if Instant::now() > deadline {
                panic!(
                    "waited {WAIT:?} for {what}; the fake product received:\n{}",
                    self.summary()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// One line per delivery, for failure messages.
    pub fn summary(&self) -> String {
        self.lock()
            .deliveries
            .iter()
            .map(|d| {
                format!(
                    "  #{} {} {} id={} answered {} problems={:?} body={}",
                    d.seq,
                    d.method,
                    d.path,
                    d.webhook_id,
                    d.answered,
                    d.problems,
                    d.body_text()
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

async fn bind(port: u16) -> std::io::Result<tokio::net::TcpListener> {
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.set_reuseaddr(true)?;
    socket.bind(([127, 0, 0, 1], port).into())?;
    socket.listen(1024)
}

fn spawn_accept(inner: Arc<Inner>, listener: tokio::net::TcpListener) -> AbortHandle {
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            };
            let conn_inner = Arc::clone(&inner);
            let task = tokio::spawn(async move {
                let svc = service_fn(move |req| handle(Arc::clone(&conn_inner), req));
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
            let mut s = inner.state.lock().unwrap_or_else(|e| e.into_inner());
            s.connections.retain(|c| !c.is_finished());
            s.connections.push(task.abort_handle());
        }
    })
    .abort_handle()
}

#[derive(Debug)]
struct Down;

impl std::fmt::Display for Down {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the fake product is down")
    }
}

impl std::error::Error for Down {}

async fn handle(
    inner: Arc<Inner>,
    req: hyper::Request<hyper::body::Incoming>,
) -> Result<hyper::Response<Full<Bytes>>, Down> {
    if !inner.state.lock().unwrap_or_else(|e| e.into_inner()).up {
        return Err(Down);
    }
    let method = req.method().as_str().to_string();
    let path = req.uri().path().to_string();
    let headers: Vec<(String, String)> = req
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_ascii_lowercase(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let body = match req.into_body().collect().await {
        Ok(b) => b.to_bytes().to_vec(),
        Err(_) => return Err(Down),
    };
    let header = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let json: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let mut d = Delivery {
        seq: 0,
        method,
        path,
        webhook_id: header("webhook-id"),
        webhook_timestamp: header("webhook-timestamp"),
        webhook_signature: header("webhook-signature"),
        headers,
        body,
        json,
        problems: Vec::new(),
        answered: 0,
        received_at: Instant::now(),
    };
    d.problems = check(&inner.secrets, &d);
    let reply = {
        let mut s = inner.state.lock().unwrap_or_else(|e| e.into_inner());
        let mut chosen = None;
        for rule in s.rules.iter_mut() {
            if rule.remaining != Some(0) && (rule.matcher)(&d) {
                if let Some(n) = rule.remaining.as_mut() {
                    *n -= 1;
                }
                chosen = Some(rule.reply.clone());
                break;
            }
        }
        let reply = chosen.unwrap_or_else(|| s.default.clone());
        d.seq = s.deliveries.len();
        d.answered = reply.status;
        s.deliveries.push(d);
        reply
    };
    if !reply.delay.is_zero() {
        tokio::time::sleep(reply.delay).await;
    }
    Ok(hyper::Response::builder()
        .status(reply.status)
        .header("Content-Type", "application/json")
        .body(Full::new(Bytes::from(reply.body)))
        .unwrap())
}

/// Keys that would carry a buyer's personal contact data.
const CONTACT_KEYS: &[&str] = &[
    "mobile",
    "mobilePhone",
    "mobile_phone",
    "email",
    "phone",
    "phoneNumber",
];

fn find_contact_keys(v: &Value, path: &str, found: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                if CONTACT_KEYS.contains(&k.as_str()) {
                    found.push(format!("{path}.{k}"));
                }
                find_contact_keys(x, &format!("{path}.{k}"), found);
            }
        }
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                find_contact_keys(x, &format!("{path}[{i}]"), found);
            }
        }
        _ => {}
    }
}

/// Everything wrong with one request, judged against the contract (Standard Webhooks v1 and the
/// body shape of koogate's messages).
fn check(secrets: &[String], d: &Delivery) -> Vec<String> {
    let mut p = Vec::new();
    if d.method != "POST" {
        p.push(format!("method {} (POST expected)", d.method));
    }
    match d.header("content-type") {
        Some("application/json") => {}
        other => p.push(format!(
            "content-type {other:?} (exactly application/json expected)"
        )),
    }
    let id = d.webhook_id.as_str();
    if id.is_empty() {
        p.push("no webhook-id".into());
    }
    let ts = d.webhook_timestamp.as_str();
    match ts.parse::<i64>() {
        Ok(t) if !ts.is_empty() && ts.bytes().all(|b| b.is_ascii_digit()) => {
            if (now_secs() - t).abs() > 300 {
                p.push(format!("webhook-timestamp {t} is not now (Unix seconds)"));
            }
        }
        _ => p.push(format!("webhook-timestamp {ts:?} is not Unix seconds")),
    }
    let sig = d.webhook_signature.as_str();
    if sig.is_empty() {
        p.push("no webhook-signature".into());
    } else {
        for entry in sig.split(' ') {
            if !entry.starts_with("v1,") {
                p.push(format!(
                    "webhook-signature entry {entry:?} is not v1,<base64>"
                ));
            }
        }
        for (i, secret) in secrets.iter().enumerate() {
            if !verify(secret, id, ts, &d.body, sig) {
                p.push(format!(
                    "webhook-signature has no valid entry for configured secret #{i}"
                ));
            }
        }
    }
    let Value::Object(obj) = &d.json else {
        p.push("body is not a JSON object".into());
        return p;
    };
    if d.body.contains(&b'\n') {
        p.push("body is not compact JSON".into());
    }
    let kind = obj.get("type").and_then(Value::as_str).unwrap_or("");
    if kind.is_empty() {
        p.push("body has no type".into());
    }
    match obj.get("timestamp").and_then(Value::as_str) {
        Some(t) => match parse_rfc3339_ms(t) {
            Some(ms) => {
                if (now_secs() * 1000 - ms).abs() > 3_600_000 {
                    p.push(format!("body timestamp {t} is not recent"));
                }
            }
            None => p.push(format!(
                "body timestamp {t:?} is not RFC 3339 UTC with milliseconds"
            )),
        },
        None => p.push("body has no timestamp".into()),
    }
    let Some(data) = obj.get("data").filter(|v| v.is_object()) else {
        p.push("body has no data object".into());
        return p;
    };
    match d.path.as_str() {
        "/events" => {
            if !id.starts_with("evt_") {
                p.push(format!("event webhook-id {id:?} does not start with evt_"));
            }
            if !data["debug"].is_boolean() {
                p.push("data.debug is not a JSON boolean".into());
            }
            let mut found = Vec::new();
            find_contact_keys(data, "data", &mut found);
            if !found.is_empty() {
                p.push(format!("personal contact fields in an event: {found:?}"));
            }
            if kind.starts_with("instance.") {
                if !data["instanceId"].is_string() {
                    p.push("instance event without data.instanceId".into());
                }
                if !data["version"].is_u64() {
                    p.push("instance event without an integer data.version".into());
                }
            }
            if kind == "ping" && !data["message"].is_string() {
                p.push("ping without data.message".into());
            }
        }
        "/provision" => match kind {
            "instance.provision" => {
                let want = format!("prov_{}", data["instanceId"].as_str().unwrap_or("?"));
                if id != want {
                    p.push(format!("provision webhook-id {id:?}, {want:?} expected"));
                }
            }
            "instance.change_check" => {
                if !id.starts_with("chk_") {
                    p.push(format!(
                        "change-check webhook-id {id:?} does not start with chk_"
                    ));
                }
            }
            "license.issue" => {
                if !id.starts_with("lic_") {
                    p.push(format!(
                        "license-issue webhook-id {id:?} does not start with lic_"
                    ));
                }
            }
            other => p.push(format!("unexpected request type {other:?} on /provision")),
        },
        other => p.push(format!("request to an unexpected path {other}")),
    }
    p
}

// ---------------------------------------------------------------------------------------------
// Product API client

/// An answer of the Product API: status and JSON body (Null when not JSON), and the raw text.
#[derive(Debug, Clone)]
pub struct ApiAnswer {
    pub status: u16,
    pub json: Value,
    pub text: String,
}

/// Calls koogate's Product API at `base` (`http://127.0.0.1:<port>`) as the product does.
pub async fn product_api(
    base: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&Value>,
) -> ApiAnswer {
    let auth = token.map(|t| format!("Bearer {t}"));
    let mut headers: Vec<(&str, &str)> = Vec::new();
    if let Some(a) = &auth {
        headers.push(("Authorization", a.as_str()));
    }
    let bytes = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
    let (status, _, body) = crate::http_request(method, &format!("{base}{path}"), &headers, bytes)
        .await
        .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
    let text = String::from_utf8_lossy(&body).into_owned();
    ApiAnswer {
        status,
        json: serde_json::from_str(&text).unwrap_or(Value::Null),
        text,
    }
}

/// Polls `f` until it returns `Some`, up to [`WAIT`]; panics with `what` otherwise.
pub async fn poll<T, F, Fut>(what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < deadline, "waited {WAIT:?} for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trips() {
        for n in 0..40 {
            let bytes: Vec<u8> = (0..n).map(|i| (i * 37 + 11) as u8).collect();
            assert_eq!(base64_decode(&base64_encode(&bytes)).unwrap(), bytes);
        }
        assert_eq!(base64_encode(b"foobar"), "Zm9vYmFy");
        assert_eq!(base64_encode(b"fo"), "Zm8=");
    }

    #[test]
    fn time_helpers() {
        assert_eq!(parse_rfc3339_ms("1970-01-01T00:00:01.500Z"), Some(1500));
        assert_eq!(
            parse_rfc3339_ms("2022-04-07T21:39:13.000Z"),
            Some(1_649_367_553_000)
        );
        assert_eq!(parse_rfc3339_ms("2022-04-07T21:39:13Z"), None);
        assert_eq!(parse_rfc3339_ms("2022-04-07T21:39:13.000+00:00"), None);
        assert_eq!(usage_time(1_649_367_553_000), "20220407T213913Z");
    }
}
