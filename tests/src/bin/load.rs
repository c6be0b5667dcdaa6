//! `koogate-load`: the load run of `make bench` (design §8) against a real `koogate serve` on
//! SQLite, over loopback HTTP/1.1 keep-alive connections.
//!
//! It builds nothing: it expects `target/release/koogate`, `target/release/saas` and
//! `target/release/koogate-baseline` (the `bench` target of the Makefile builds them first). It
//! measures:
//!
//! * cold start: spawn → the port accepts → the first signed queryInstance is answered (5 runs,
//!   median);
//! * throughput and latency of signed V2 requests at concurrency 1, 32 and 128 (one connection
//!   per worker), for first-time newInstance, duplicate newInstance, queryInstance and debug
//!   newInstance, and of the kit tenantSync (1, 32, 128) and authSync of 500 users (1, 8), each
//!   run bounded by a request count and a time; every answer is verified
//!   (HTTP 200, `application/json`, `resultCode` 000000, the expected instanceId, `Body-Sign`);
//! * the CPU time the server and the load generator spent per request (from /proc);
//! * the size of the release binaries and the serve process's peak RSS (VmHWM);
//! * the baseline (`koogate-baseline`, a minimal hyper server answering a fixed signed body) at
//!   the same concurrencies, and every koogate run as a ratio to it.
//!
//! The report is a Markdown table on stdout, also written to `docs/bench-output/load.md`.
//! `koogate-load --quick` is the short run for working on the server: no cold starts, only
//! first-time newInstance and queryInstance at concurrency 32 and the baseline at 32; its table
//! goes to stdout only.
//!
//! Traffic goes to 127.0.0.1 only. Each server is killed at the end, on error too (drop guard).

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::Request;
use hyper_util::rt::TokioIo;
use koogate_protocol::{basic_signature, body_sign, kit_signature};
use serde_json::Value;

/// Requests per measured run, at most.
const MAX_REQUESTS: u64 = 20_000;
/// Wall time per measured run, at most.
const MAX_RUN: Duration = Duration::from_secs(12);
/// Concurrent workers (one keep-alive connection each) per run.
const CONCURRENCY: [usize; 3] = [1, 32, 128];
/// Concurrency of the tenantSync runs (as the basic runs).
const KIT_CONCURRENCY: [usize; 3] = [1, 32, 128];
/// Concurrency of the authSync runs: a 500-user sync is ~70 KiB and ~1,000 item writes, and the
/// marketplace sends a tenant's syncs one after another, a few tenants at once.
const AUTH_CONCURRENCY: [usize; 2] = [1, 8];
/// Requests per baseline run, at most: the baseline answers 10–100× faster, so its runs need
/// more requests to last as long as koogate's.
const BASELINE_MAX_REQUESTS: u64 = 200_000;
/// Requests per kit run, at most.
const KIT_MAX_REQUESTS: u64 = 5_000;
/// Cold starts measured; the median is reported.
const COLD_STARTS: usize = 5;
/// Instances created before the queryInstance runs (queried round-robin).
const QUERY_IDS: usize = 1_000;
/// Unreported warm-up requests before the measured runs.
const WARM_UP_REQUESTS: u64 = 2_000;
/// One request's answer must come within this (the marketplace waits 5 s).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a starting server may take before the run gives up.
const START_TIMEOUT: Duration = Duration::from_secs(15);
/// Linux USER_HZ: the unit of utime/stime in /proc/<pid>/stat.
const CLOCK_TICKS_PER_SEC: u64 = 100;

fn main() -> ExitCode {
    let quick = match std::env::args().skip(1).collect::<Vec<_>>().as_slice() {
        [] => false,
        [flag] if flag == "--quick" => true,
        _ => {
            eprintln!(
                "usage: koogate-load [--quick]\n\n\
                 The load run of `make bench` against target/release/koogate serve (SQLite).\n\
                 --quick  only first-time newInstance and queryInstance at concurrency 32, and\n\
                 \x20        the baseline at 32; no cold starts; the table is not written to docs/"
            );
            return ExitCode::from(2);
        }
    };
    match run(quick) {
        Ok(0) => ExitCode::SUCCESS,
        Ok(failures) => {
            eprintln!("koogate-load: {failures} request(s) failed verification");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("koogate-load: {e}");
            ExitCode::FAILURE
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Paths, the server process
// ---------------------------------------------------------------------------------------------

fn workspace_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).to_path_buf()
}

fn release_dir(root: &Path) -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => root.join(dir).join("release"),
        None => root.join("target").join("release"),
    }
}

/// A scratch folder, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Result<TempDir, String> {
        let path = std::env::temp_dir().join(format!("koogate-load-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&path)
            .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
        Ok(TempDir(path))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A running `koogate serve`, killed on drop.
struct Server {
    child: Child,
    addr: SocketAddr,
    stderr_path: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// Starts `koogate serve` on a free loopback port with its own SQLite file in `dir`.
    fn spawn(koogate: &Path, dir: &Path, name: &str) -> Result<Server, String> {
        let addr = free_loopback_addr()?;
        let mut cmd = Command::new(koogate);
        cmd.args(["serve", "--addr", &addr.to_string()]);
        // Only our settings: nothing from the caller's environment may change what is measured.
        for (k, _) in std::env::vars_os() {
            let k = k.to_string_lossy();
            if k.starts_with("KOOGATE_") || k.starts_with("AWS_LAMBDA_") || k == "RUST_LOG" {
                cmd.env_remove(k.as_ref());
            }
        }
        cmd.env("KOOGATE_SECRETS_FILE", dir.join("secrets.json"))
            .env(
                "KOOGATE_STORE",
                format!("sqlite:{}", dir.join(format!("{name}.db")).display()),
            )
            .env("RUST_LOG", "warn");
        Server::launch(cmd, addr, dir, name)
    }

    /// Starts the baseline server (`koogate-baseline`) answering a fixed body signed with `key`.
    fn spawn_baseline(bin: &Path, dir: &Path, key: &str) -> Result<Server, String> {
        let addr = free_loopback_addr()?;
        let mut cmd = Command::new(bin);
        cmd.args(["--addr", &addr.to_string(), "--key", key]);
        Server::launch(cmd, addr, dir, "baseline")
    }

    fn launch(
        mut cmd: Command,
        addr: SocketAddr,
        dir: &Path,
        name: &str,
    ) -> Result<Server, String> {
        let stderr_path = dir.join(format!("{name}.stderr"));
        let stderr = std::fs::File::create(&stderr_path)
            .map_err(|e| format!("cannot create {}: {e}", stderr_path.display()))?;
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .map_err(|e| format!("cannot start {:?}: {e}", cmd.get_program()))?;
        Ok(Server {
            child,
            addr,
            stderr_path,
        })
    }

    /// Waits until the server accepts connections.
    fn wait_listening(&mut self) -> Result<(), String> {
        let started = Instant::now();
        while std::net::TcpStream::connect(self.addr).is_err() {
            self.check_alive()?;
            if started.elapsed() > START_TIMEOUT {
                return Err(format!(
                    "the server did not listen within {START_TIMEOUT:?}"
                ));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        Ok(())
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Fails if the process has exited, with what it wrote to stderr.
    fn check_alive(&mut self) -> Result<(), String> {
        match self.child.try_wait() {
            Ok(None) => Ok(()),
            Ok(Some(status)) => Err(format!(
                "the server exited ({status}): {}",
                std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
            )),
            Err(e) => Err(format!("cannot check the server: {e}")),
        }
    }
}

/// A free port on 127.0.0.1.
fn free_loopback_addr() -> Result<SocketAddr, String> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| format!("no free port: {e}"))?
        .port();
    Ok(SocketAddr::from(([127, 0, 0, 1], port)))
}

/// `VmHWM` and `VmRSS` of a process, in KiB.
fn memory_kib(pid: u32) -> Result<(u64, u64), String> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .map_err(|e| format!("cannot read /proc/{pid}/status: {e}"))?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .ok_or_else(|| format!("no {name} in /proc/{pid}/status"))
    };
    Ok((field("VmHWM:")?, field("VmRSS:")?))
}

/// User + system CPU time of a process so far (`self` for this one).
fn cpu_time(pid: &str) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The command name is in parentheses and may hold spaces: count fields after the last ')'.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // Fields 14 (utime) and 15 (stime) of proc(5); `rest` starts at field 3.
    let ticks: u64 = [11, 12]
        .iter()
        .filter_map(|&i| fields.get(i).and_then(|v| v.parse::<u64>().ok()))
        .sum();
    Duration::from_millis(ticks * 1000 / CLOCK_TICKS_PER_SEC)
}

fn machine_description() -> String {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|v| v.trim_start_matches([' ', '\t', ':']).trim().to_string())
        .unwrap_or_else(|| "unknown CPU".into());
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem_gib = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0.0, |kib| kib as f64 / 1024.0 / 1024.0);
    format!(
        "{cores} cores ({model}), {mem_gib:.1} GiB RAM, {}",
        std::env::consts::ARCH
    )
}

// ---------------------------------------------------------------------------------------------
// Signed requests over keep-alive connections
// ---------------------------------------------------------------------------------------------

type Sender = SendRequest<Full<Bytes>>;

async fn connect(addr: SocketAddr) -> Result<Sender, String> {
    let stream = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect {addr}: {e}"))?;
    let _ = stream.set_nodelay(true);
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender)
}

fn now_ms() -> i64 {
    koogate_runtime::pipeline::now_ms()
}

/// The V2 basic query string for `body`, signed now with a fresh 64-hex-digit nonce.
fn signed_query(key: &str, body: &[u8]) -> String {
    let timestamp = now_ms().to_string();
    let nonce = hex::encode_upper(rand::random::<[u8; 32]>());
    let signature = basic_signature::sign(key, &nonce, &timestamp, body).to_uppercase();
    format!("signature={signature}&timestamp={timestamp}&nonce={nonce}")
}

/// Where a request goes and how it is signed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    /// `POST /saas` with the V2 URL signature.
    Basic,
    /// `POST /saas/produceAPI/v2/<op>` with the kit `x-sign` headers.
    Kit(&'static str),
}

/// Signs and sends `body`; verifies the answer's framing and signature; returns the answer's
/// JSON and the time from sending to the whole answer being read.
async fn call(
    sender: &mut Sender,
    addr: SocketAddr,
    key: &str,
    target: Target,
    body: String,
) -> Result<(Value, Duration), String> {
    let builder = match target {
        Target::Basic => Request::post(format!("/saas?{}", signed_query(key, body.as_bytes()))),
        Target::Kit(op) => {
            let timestamp = now_ms().to_string();
            let nonce = hex::encode_upper(rand::random::<[u8; 32]>());
            let sign = kit_signature::sign(key, &nonce, &timestamp, body.as_bytes());
            Request::post(format!("/saas/produceAPI/v2/{op}"))
                .header("x-timestamp", timestamp)
                .header("x-nonce", nonce)
                .header("x-sign", sign)
        }
    };
    let req = builder
        .header("Host", addr.to_string())
        .header("Accept", "application/json")
        .header("Content-Type", "application/json;charset=utf8")
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| format!("request: {e}"))?;
    sender
        .ready()
        .await
        .map_err(|e| format!("connection: {e}"))?;
    let started = Instant::now();
    let exchange = async {
        let resp = sender
            .send_request(req)
            .await
            .map_err(|e| format!("send: {e}"))?;
        let status = resp.status().as_u16();
        let header = |name: &str| {
            resp.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string()
        };
        let (content_type, sign) = (header("content-type"), header(body_sign::HEADER_NAME));
        let bytes = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| format!("body: {e}"))?
            .to_bytes();
        Ok::<_, String>((status, content_type, sign, bytes))
    };
    let (status, content_type, sign, bytes) = tokio::time::timeout(REQUEST_TIMEOUT, exchange)
        .await
        .map_err(|_| format!("no answer within {} s", REQUEST_TIMEOUT.as_secs()))??;
    let latency = started.elapsed();
    if status != 200 {
        return Err(format!("HTTP {status}"));
    }
    if content_type != "application/json" {
        return Err(format!("Content-Type {content_type:?}"));
    }
    body_sign::verify(key, &bytes, &sign).map_err(|e| format!("Body-Sign: {e}"))?;
    let json: Value =
        serde_json::from_slice(&bytes).map_err(|e| format!("answer is not JSON: {e}"))?;
    match json["resultCode"].as_str() {
        Some("000000") => Ok((json, latency)),
        _ => Err(format!(
            "answer {}",
            String::from_utf8_lossy(&bytes)
                .chars()
                .take(200)
                .collect::<String>()
        )),
    }
}

// ---------------------------------------------------------------------------------------------
// Scenarios
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scenario {
    /// Real traffic, a new order on every request.
    NewFirstTime,
    /// The same order every time, a new businessId each delivery (as the marketplace retries).
    NewDuplicate,
    /// Real traffic, instances created before the run.
    Query,
    /// Debug-console traffic (testFlag 1), a new order on every request.
    NewDebug,
    /// Joint-operation tenantSync (kit key), a new tenant on every request.
    KitTenant,
    /// Joint-operation authSync granting 500 users (V1's cap per call), a new tenant each time.
    KitAuth500,
    /// The baseline server: a queryInstance-sized signed request, answered with its fixed body.
    Baseline,
}

impl Scenario {
    fn label(self) -> &'static str {
        match self {
            Scenario::NewFirstTime => "newInstance, first delivery",
            Scenario::NewDuplicate => "newInstance, duplicate",
            Scenario::Query => "queryInstance",
            Scenario::NewDebug => "newInstance, debug (testFlag 1)",
            Scenario::KitTenant => "kit tenantSync",
            Scenario::KitAuth500 => "kit authSync, 500 users",
            Scenario::Baseline => "baseline server (fixed signed answer)",
        }
    }

    fn target(self) -> Target {
        match self {
            Scenario::KitTenant => Target::Kit("tenantSync"),
            Scenario::KitAuth500 => Target::Kit("authSync"),
            _ => Target::Basic,
        }
    }
}

/// What a run sends, and the data it needs.
struct Plan {
    scenario: Scenario,
    /// NewDuplicate: the order and the instanceId its first delivery got.
    duplicate: Option<(String, String)>,
    /// Query: the instances to ask for.
    query_ids: Vec<String>,
}

fn order_id() -> String {
    format!("CS{}", uuid::Uuid::new_v4().simple())
}

/// Compact JSON with sorted top-level keys, as the marketplace sends it.
fn new_instance_body(business_id: &str, order_id: &str, test_flag: &str) -> String {
    format!(
        r#"{{"activity":"newInstance","businessId":"{business_id}","orderId":"{order_id}","orderLineId":"{order_id}-000001","testFlag":"{test_flag}"}}"#
    )
}

fn query_body(instance_id: &str, test_flag: &str) -> String {
    format!(
        r#"{{"activity":"queryInstance","instanceId":"{instance_id}","testFlag":"{test_flag}"}}"#
    )
}

/// A tenantSync body for a new tenant, as the marketplace sends it (unsorted, Chinese text).
fn tenant_sync_body(tenant: &str) -> String {
    serde_json::json!({"instanceId": "inst-load", "orderId": order_id(), "tenantId": tenant,
        "tenantCode": "load", "name": "负载测试企业", "domainName": "https://idp.example.com",
        "flag": 1, "testFlag": 0, "timeStamp": "20260101120000000"})
    .to_string()
}

/// An authSync body granting `users` users of a new tenant the app.
fn auth_sync_body(tenant: &str, users: usize) -> String {
    let list: Vec<Value> = (0..users)
        .map(|i| {
            serde_json::json!({"userName": format!("user{i:04}"), "name": format!("用户{i}"),
                "orgCode": format!("org{}", i % 20), "position": "engineer", "role": "user",
                "enable": "true", "employeeType": 1})
        })
        .collect();
    serde_json::json!({"instanceId": "inst-load", "tenantId": tenant, "appId": "app-load",
        "userList": list, "currentSyncTime": "20260101120000000", "flag": 1, "testFlag": 0,
        "timeStamp": "20260101120000000"})
    .to_string()
}

/// The `seq`-th request of a run, and the instanceId its answer must carry (kit answers carry
/// none: an empty expectation).
fn request(plan: &Plan, seq: u64) -> (String, String) {
    match plan.scenario {
        Scenario::KitTenant => (tenant_sync_body(&order_id()), String::new()),
        Scenario::KitAuth500 => (auth_sync_body(&order_id(), 500), String::new()),
        Scenario::Baseline => (query_body(&order_id(), "0"), String::new()),
        Scenario::NewFirstTime | Scenario::NewDebug => {
            let business_id = uuid::Uuid::new_v4().to_string();
            let flag = if plan.scenario == Scenario::NewDebug {
                "1"
            } else {
                "0"
            };
            (
                new_instance_body(&business_id, &order_id(), flag),
                business_id,
            )
        }
        Scenario::NewDuplicate => {
            let (order, instance) = plan.duplicate.clone().unwrap_or_default();
            let business_id = uuid::Uuid::new_v4().to_string();
            (new_instance_body(&business_id, &order, "0"), instance)
        }
        Scenario::Query => {
            let n = plan.query_ids.len().max(1);
            let id = usize::try_from(seq)
                .ok()
                .and_then(|s| plan.query_ids.get(s % n))
                .cloned()
                .unwrap_or_default();
            (query_body(&id, "0"), id)
        }
    }
}

/// The instanceId an answer carries (newInstance: top level; queryInstance: the first entry).
fn answered_instance(json: &Value) -> Option<&str> {
    json["instanceId"]
        .as_str()
        .or_else(|| json["info"][0]["instanceId"].as_str())
}

#[derive(Default)]
struct WorkerResult {
    latencies_us: Vec<u32>,
    failures: u64,
    reasons: Vec<String>,
}

/// One worker: its own connection, requests until the run's count or time is used up.
async fn worker(
    addr: SocketAddr,
    key: Arc<str>,
    plan: Arc<Plan>,
    mut sender: Sender,
    issued: Arc<AtomicU64>,
    max_requests: u64,
    deadline: Instant,
) -> WorkerResult {
    let mut out = WorkerResult::default();
    loop {
        if Instant::now() >= deadline {
            break;
        }
        let seq = issued.fetch_add(1, Ordering::Relaxed);
        if seq >= max_requests {
            break;
        }
        let (body, expected) = request(&plan, seq);
        let result = call(&mut sender, addr, &key, plan.scenario.target(), body)
            .await
            .and_then(|(json, l)| match answered_instance(&json) {
                _ if expected.is_empty() => Ok(l),
                Some(id) if id == expected => Ok(l),
                other => Err(format!("instanceId {other:?}, expected {expected:?}")),
            });
        match result {
            Ok(latency) => out
                .latencies_us
                .push(u32::try_from(latency.as_micros()).unwrap_or(u32::MAX)),
            Err(reason) => {
                out.failures += 1;
                if out.reasons.len() < 3 {
                    out.reasons.push(reason);
                }
                if sender.is_closed() {
                    match connect(addr).await {
                        Ok(s) => sender = s,
                        Err(e) => {
                            out.reasons.push(format!("reconnect failed: {e}"));
                            break;
                        }
                    }
                }
            }
        }
    }
    out
}

struct RunResult {
    scenario: Scenario,
    concurrency: usize,
    requests: u64,
    failures: u64,
    elapsed: Duration,
    p50_us: u32,
    p99_us: u32,
    server_cpu: Duration,
    client_cpu: Duration,
    reasons: Vec<String>,
}

impl RunResult {
    fn throughput(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    fn cpu_us_per_request(&self, cpu: Duration) -> f64 {
        cpu.as_secs_f64() * 1e6 / (self.requests.max(1) as f64)
    }
}

/// Nearest-rank percentile of sorted values.
fn percentile(sorted: &[u32], p: f64) -> u32 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = (p / 100.0 * sorted.len() as f64).ceil() as usize;
    sorted
        .get(rank.clamp(1, sorted.len()) - 1)
        .copied()
        .unwrap_or(0)
}

async fn run_load(
    server_pid: u32,
    addr: SocketAddr,
    key: &Arc<str>,
    plan: &Arc<Plan>,
    concurrency: usize,
    max_requests: u64,
) -> Result<RunResult, String> {
    let mut senders = Vec::with_capacity(concurrency);
    for _ in 0..concurrency {
        senders.push(connect(addr).await?);
    }
    let issued = Arc::new(AtomicU64::new(0));
    let server_cpu_before = cpu_time(&server_pid.to_string());
    let client_cpu_before = cpu_time("self");
    let started = Instant::now();
    let deadline = started + MAX_RUN;
    let tasks: Vec<_> = senders
        .into_iter()
        .map(|sender| {
            tokio::spawn(worker(
                addr,
                Arc::clone(key),
                Arc::clone(plan),
                sender,
                Arc::clone(&issued),
                max_requests,
                deadline,
            ))
        })
        .collect();
    let mut latencies = Vec::new();
    let mut failures = 0;
    let mut reasons = Vec::new();
    for task in tasks {
        let r = task.await.map_err(|e| format!("worker failed: {e}"))?;
        latencies.extend(r.latencies_us);
        failures += r.failures;
        reasons.extend(r.reasons);
    }
    let elapsed = started.elapsed();
    let server_cpu = cpu_time(&server_pid.to_string()).saturating_sub(server_cpu_before);
    let client_cpu = cpu_time("self").saturating_sub(client_cpu_before);
    latencies.sort_unstable();
    reasons.truncate(5);
    Ok(RunResult {
        scenario: plan.scenario,
        concurrency,
        requests: latencies.len() as u64 + failures,
        failures,
        elapsed,
        p50_us: percentile(&latencies, 50.0),
        p99_us: percentile(&latencies, 99.0),
        server_cpu,
        client_cpu,
        reasons,
    })
}

// ---------------------------------------------------------------------------------------------
// Cold start
// ---------------------------------------------------------------------------------------------

struct ColdStart {
    port_ms: f64,
    answer_ms: f64,
}

/// Spawn → the port accepts → a first signed (debug) queryInstance is answered and verified.
async fn cold_start(koogate: &Path, dir: &Path, key: &str, i: usize) -> Result<ColdStart, String> {
    let started = Instant::now();
    let mut server = Server::spawn(koogate, dir, &format!("cold-{i}"))?;
    let addr = server.addr;
    let stream = loop {
        if let Ok(s) = tokio::net::TcpStream::connect(addr).await {
            break s;
        }
        server.check_alive()?;
        if started.elapsed() > START_TIMEOUT {
            return Err(format!(
                "koogate serve did not listen within {START_TIMEOUT:?}"
            ));
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    };
    let port_ms = started.elapsed().as_secs_f64() * 1e3;
    let _ = stream.set_nodelay(true);
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let id = uuid::Uuid::new_v4().to_string();
    let (json, _) = call(&mut sender, addr, key, Target::Basic, query_body(&id, "1")).await?;
    if answered_instance(&json) != Some(id.as_str()) {
        return Err(format!("cold-start queryInstance answered {json}"));
    }
    let answer_ms = started.elapsed().as_secs_f64() * 1e3;
    drop(server);
    Ok(ColdStart { port_ms, answer_ms })
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    match values.len() {
        0 => 0.0,
        n if n % 2 == 1 => values[n / 2],
        n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

// ---------------------------------------------------------------------------------------------
// The run
// ---------------------------------------------------------------------------------------------

/// Sends `count` first-time newInstance requests on one connection; returns the instanceIds.
async fn create_instances(
    addr: SocketAddr,
    key: &str,
    count: usize,
    test_flag: &str,
) -> Result<Vec<(String, String)>, String> {
    let mut sender = connect(addr).await?;
    let mut made = Vec::with_capacity(count);
    for _ in 0..count {
        let business_id = uuid::Uuid::new_v4().to_string();
        let order = order_id();
        let (json, _) = call(
            &mut sender,
            addr,
            key,
            Target::Basic,
            new_instance_body(&business_id, &order, test_flag),
        )
        .await?;
        if answered_instance(&json) != Some(business_id.as_str()) {
            return Err(format!("setup newInstance answered {json}"));
        }
        made.push((order, business_id));
    }
    Ok(made)
}

fn file_size(path: &Path) -> Result<u64, String> {
    std::fs::metadata(path).map(|m| m.len()).map_err(|e| {
        format!(
            "{}: {e} (run `make bench`, which builds it with cargo build --release)",
            path.display()
        )
    })
}

/// What `file` says about a binary's symbols, when `file` is installed.
fn strip_state(path: &Path) -> &'static str {
    match Command::new("file").arg("-b").arg(path).output() {
        Ok(o) => {
            let text = String::from_utf8_lossy(&o.stdout);
            if text.contains("not stripped") {
                "not stripped"
            } else if text.contains("stripped") {
                "stripped"
            } else {
                "?"
            }
        }
        Err(_) => "release profile strip = true",
    }
}

fn run(quick: bool) -> Result<u64, String> {
    let concurrencies: &[usize] = if quick { &[32] } else { &CONCURRENCY };
    let root = workspace_root();
    let release = release_dir(&root);
    let koogate = release.join("koogate");
    let saas = release.join("saas");
    let baseline_bin = release.join("koogate-baseline");
    let koogate_size = file_size(&koogate)?;
    let saas_size = file_size(&saas)?;
    file_size(&baseline_bin)?;

    let dir = TempDir::new()?;
    let key: Arc<str> = Arc::from(uuid::Uuid::new_v4().to_string());
    // The basic key signs the traffic; every other interface type gets its own random key,
    // because `serve` refuses to start without a key for each route it mounts.
    let other = || uuid::Uuid::new_v4().to_string();
    let kit_key: Arc<str> = Arc::from(other());
    let secrets = serde_json::json!({"access_keys": {"basic": [key.as_ref()], "kit": [kit_key.as_ref()],
        "license": [other()], "general": [other()], "legacy": [other()]}});
    std::fs::write(dir.0.join("secrets.json"), secrets.to_string())
        .map_err(|e| format!("cannot write the secrets file: {e}"))?;

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;

    // Cold starts, each on a fresh database.
    let mut cold = Vec::new();
    for i in 0..if quick { 0 } else { COLD_STARTS } {
        let c = rt.block_on(cold_start(&koogate, &dir.0, &key, i))?;
        eprintln!(
            "koogate-load: cold start {}: port {:.1} ms, first answer {:.1} ms",
            i + 1,
            c.port_ms,
            c.answer_ms
        );
        cold.push(c);
    }
    let cold_port = median(&mut cold.iter().map(|c| c.port_ms).collect::<Vec<_>>());
    let cold_answer = median(&mut cold.iter().map(|c| c.answer_ms).collect::<Vec<_>>());
    let cold_all: Vec<String> = cold.iter().map(|c| format!("{:.1}", c.answer_ms)).collect();

    // The load server: one process for every run, as `koogate serve` runs in production.
    let mut server = Server::spawn(&koogate, &dir.0, "load")?;
    let addr = server.addr;
    let pid = server.pid();
    server.wait_listening()?;

    let results = rt.block_on(async {
        // Warm-up (not reported), then the records the duplicate and query runs need.
        let warm = Arc::new(Plan {
            scenario: Scenario::NewDebug,
            duplicate: None,
            query_ids: Vec::new(),
        });
        let w = run_load(pid, addr, &key, &warm, 32, WARM_UP_REQUESTS).await?;
        if w.failures > 0 {
            return Err(format!("warm-up failed: {:?}", w.reasons));
        }
        let duplicate = create_instances(addr, &key, 1, "0").await?.pop();
        let query_ids = create_instances(addr, &key, QUERY_IDS, "0")
            .await?
            .into_iter()
            .map(|(_, id)| id)
            .collect();
        let mut plans = vec![
            Plan {
                scenario: Scenario::NewFirstTime,
                duplicate: None,
                query_ids: Vec::new(),
            },
            Plan {
                scenario: Scenario::NewDuplicate,
                duplicate,
                query_ids: Vec::new(),
            },
            Plan {
                scenario: Scenario::Query,
                duplicate: None,
                query_ids,
            },
            Plan {
                scenario: Scenario::NewDebug,
                duplicate: None,
                query_ids: Vec::new(),
            },
        ];
        if quick {
            plans.retain(|p| matches!(p.scenario, Scenario::NewFirstTime | Scenario::Query));
        }
        let kit = |scenario| Plan {
            scenario,
            duplicate: None,
            query_ids: Vec::new(),
        };
        let kit_plans = [
            (kit(Scenario::KitTenant), &KIT_CONCURRENCY[..]),
            (kit(Scenario::KitAuth500), &AUTH_CONCURRENCY[..]),
        ];
        let kit_runs = if quick { 0 } else { kit_plans.len() };
        let runs = plans
            .into_iter()
            .map(|p| (p, &key, concurrencies, MAX_REQUESTS))
            .chain(
                kit_plans
                    .into_iter()
                    .take(kit_runs)
                    .map(|(p, c)| (p, &kit_key, c, KIT_MAX_REQUESTS)),
            );
        let mut results = Vec::new();
        for (plan, key, concurrency, max_requests) in runs {
            let plan = Arc::new(plan);
            for &c in concurrency {
                let r = run_load(pid, addr, key, &plan, c, max_requests).await?;
                eprintln!(
                    "koogate-load: {} x{}: {} requests, {:.0} req/s, p50 {} us, p99 {} us, {} failed",
                    r.scenario.label(),
                    r.concurrency,
                    r.requests,
                    r.throughput(),
                    r.p50_us,
                    r.p99_us,
                    r.failures
                );
                for reason in &r.reasons {
                    eprintln!("koogate-load:   failure: {reason}");
                }
                results.push(r);
            }
        }
        Ok::<_, String>(results)
    })?;
    server.check_alive()?;
    let (hwm_kib, rss_kib) = memory_kib(pid)?;
    let server_warnings = std::fs::read_to_string(&server.stderr_path)
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.starts_with("koogate serve:"))
        .count();
    drop(server);

    // The baseline server, driven the same way, after koogate serve has stopped.
    let mut baseline_server = Server::spawn_baseline(&baseline_bin, &dir.0, &key)?;
    baseline_server.wait_listening()?;
    let baseline = rt.block_on(async {
        let plan = Arc::new(Plan {
            scenario: Scenario::Baseline,
            duplicate: None,
            query_ids: Vec::new(),
        });
        let (pid, addr) = (baseline_server.pid(), baseline_server.addr);
        run_load(pid, addr, &key, &plan, 32, WARM_UP_REQUESTS).await?;
        let mut results = Vec::new();
        for &c in concurrencies {
            let r = run_load(pid, addr, &key, &plan, c, BASELINE_MAX_REQUESTS).await?;
            eprintln!(
                "koogate-load: {} x{}: {:.0} req/s, server CPU {:.1} us/req",
                r.scenario.label(),
                r.concurrency,
                r.throughput(),
                r.cpu_us_per_request(r.server_cpu)
            );
            results.push(r);
        }
        Ok::<_, String>(results)
    })?;
    baseline_server.check_alive()?;
    drop(baseline_server);

    let failures: u64 = results.iter().chain(&baseline).map(|r| r.failures).sum();
    let report = render(&Report {
        machine: machine_description(),
        results: &results,
        baseline: &baseline,
        cold_port,
        cold_answer,
        cold_all: &cold_all,
        koogate: (koogate_size, strip_state(&koogate)),
        saas: (saas_size, strip_state(&saas)),
        hwm_kib,
        rss_kib,
        server_warnings,
        failures,
    });
    print!("{report}");
    if quick {
        return Ok(failures);
    }
    let out_dir = root.join("docs").join("bench-output");
    std::fs::create_dir_all(&out_dir)
        .map_err(|e| format!("cannot create {}: {e}", out_dir.display()))?;
    let out = out_dir.join("load.md");
    std::fs::write(&out, &report).map_err(|e| format!("cannot write {}: {e}", out.display()))?;
    eprintln!("koogate-load: written to {}", out.display());
    Ok(failures)
}

struct Report<'a> {
    machine: String,
    results: &'a [RunResult],
    /// The baseline server's runs, one per concurrency of [`CONCURRENCY`].
    baseline: &'a [RunResult],
    cold_port: f64,
    cold_answer: f64,
    cold_all: &'a [String],
    koogate: (u64, &'static str),
    saas: (u64, &'static str),
    hwm_kib: u64,
    rss_kib: u64,
    server_warnings: usize,
    failures: u64,
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / 1024.0 / 1024.0
}

fn render(r: &Report<'_>) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# koogate load run\n");
    let _ = writeln!(
        s,
        "Machine: {}. **The server (`koogate serve`, SQLite store) and this load generator \
         (one thread) share these cores**, so throughput is a lower bound of what the server \
         alone could do; latency includes the loopback HTTP/1.1 round trip.\n",
        r.machine
    );
    let _ = writeln!(
        s,
        "Each run: at most {MAX_REQUESTS} requests or {} s, one keep-alive connection per \
         concurrent worker; every answer verified (HTTP 200, `application/json`, resultCode \
         000000, expected instanceId, `Body-Sign`). CPU columns: server and load-generator CPU \
         time (user + system, /proc, 10 ms resolution) divided by requests.\n",
        MAX_RUN.as_secs()
    );
    let _ = writeln!(
        s,
        "Baseline: `koogate-baseline`, a minimal hyper HTTP/1.1 server on the same runtime shape \
         that reads each body and answers one fixed signed body, driven by the same generator \
         after `koogate serve` has stopped. The ratio columns compare each run with the baseline \
         run of the same concurrency: req/s as a share of the baseline's, server CPU as a \
         multiple of the baseline's.\n"
    );
    let _ = writeln!(
        s,
        "| scenario | concurrency | requests | failures | req/s | req/s ÷ baseline | p50 µs | p99 µs | server CPU µs/req | server CPU × baseline | load-gen CPU µs/req |"
    );
    let _ = writeln!(s, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for x in r.results.iter().chain(r.baseline) {
        let base = r.baseline.iter().find(|b| b.concurrency == x.concurrency);
        let ratio = |num: f64, den: Option<f64>| match den {
            Some(d) if d > 0.0 => format!("{:.2}", num / d),
            _ => "–".to_string(),
        };
        let cpu = x.cpu_us_per_request(x.server_cpu);
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {:.0} | {} | {} | {} | {:.0} | {} | {:.0} |",
            x.scenario.label(),
            x.concurrency,
            x.requests,
            x.failures,
            x.throughput(),
            ratio(x.throughput(), base.map(RunResult::throughput)),
            x.p50_us,
            x.p99_us,
            cpu,
            ratio(cpu, base.map(|b| b.cpu_us_per_request(b.server_cpu))),
            x.cpu_us_per_request(x.client_cpu),
        );
    }
    let _ = writeln!(s);
    let _ = writeln!(s, "| measure | value |");
    let _ = writeln!(s, "|---|---:|");
    // A quick run measures no cold start.
    if !r.cold_all.is_empty() {
        let _ = writeln!(
            s,
            "| cold start, spawn → port accepts (median of {COLD_STARTS}) | {:.1} ms |",
            r.cold_port
        );
        let _ = writeln!(
            s,
            "| cold start, spawn → first signed queryInstance answered (median of {COLD_STARTS}; runs: {}) | {:.1} ms |",
            r.cold_all.join(", "),
            r.cold_answer
        );
    }
    let _ = writeln!(
        s,
        "| target/release/saas ({}) | {} bytes ({:.2} MiB) |",
        r.saas.1,
        r.saas.0,
        mib(r.saas.0)
    );
    let _ = writeln!(
        s,
        "| target/release/koogate ({}) | {} bytes ({:.2} MiB) |",
        r.koogate.1,
        r.koogate.0,
        mib(r.koogate.0)
    );
    let _ = writeln!(
        s,
        "| koogate serve peak RSS (VmHWM) after all runs | {:.1} MiB |",
        r.hwm_kib as f64 / 1024.0
    );
    let _ = writeln!(
        s,
        "| koogate serve RSS (VmRSS) after all runs | {:.1} MiB |",
        r.rss_kib as f64 / 1024.0
    );
    let _ = writeln!(
        s,
        "| server log lines at RUST_LOG=warn | {} |",
        r.server_warnings
    );
    let _ = writeln!(s, "| failed requests, all runs | {} |", r.failures);
    s
}
