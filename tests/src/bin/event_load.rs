//! `koogate-event-load`: how fast events reach the ISV's product from a release `koogate serve`
//! on SQLite (run by `make bench`; figures in docs/PERFORMANCE.md).
//!
//! 1. **Latency**: `--calls` first-time newInstance calls one after another, each answered, then
//!    the time from the answer reaching the client to its `instance.created` reaching the
//!    receiver (p50, p99, max; negative values, an event that arrived before the answer did,
//!    count as 0).
//! 2. **Throughput**: `--backlog` events recorded with no receiver configured, then serve
//!    restarted with one: events per second from the restart until the receiver has them all.
//!
//! The receiver is the test suite's fake product, which verifies every signature. Everything
//! runs on loopback; both server processes are stopped when it ends, also on failure.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use koogate_tests::fake_product::{new_secret, FakeProduct};
use koogate_tests::{free_port, http_request, signed_query, KillOnDrop, KEY};

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn release_koogate() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    target.join("release").join("koogate")
}

fn serve(dir: &Path, port: u16, webhook: Option<&str>) -> KillOnDrop {
    let mut cmd = Command::new(release_koogate());
    cmd.args(["serve", "--addr", &format!("127.0.0.1:{port}")])
        .env("KOOGATE_SECRETS_FILE", dir.join("secrets.json"))
        .env(
            "KOOGATE_STORE",
            format!("sqlite:{}", dir.join("store.db").display()),
        )
        .env("KOOGATE_USAGE_PUSH_INTERVAL_SECS", "0")
        .env("RUST_LOG", "error")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if let Some(url) = webhook {
        cmd.env("KOOGATE_WEBHOOK_URL", url);
    }
    let child = KillOnDrop(cmd.spawn().expect("start koogate serve"));
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "serve did not start"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    child
}

async fn new_instance(port: u16, id: &str) {
    let body = format!(
        r#"{{"activity":"newInstance","businessId":"{id}","orderId":"CS{id}","orderLineId":"CS{id}-1","testFlag":"0"}}"#
    );
    let url = format!(
        "http://127.0.0.1:{port}/saas?{}",
        signed_query(KEY, body.as_bytes())
    );
    let a = http_request("POST", &url, &[], body.into_bytes())
        .await
        .expect("newInstance answered");
    assert!(
        String::from_utf8_lossy(&a.2).contains("000000"),
        "newInstance failed"
    );
}

async fn wait_for(fake: &FakeProduct, n: usize, limit: Duration) -> bool {
    let started = Instant::now();
    while fake.received_of_type("instance.created").len() < n {
        if started.elapsed() > limit {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    true
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(i).copied().unwrap_or(0.0)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> ExitCode {
    if !release_koogate().exists() {
        eprintln!("build it first: cargo build --release -p koogate-cli (make bench does)");
        return ExitCode::FAILURE;
    }
    let calls = arg("--calls", 500);
    let backlog = arg("--backlog", 5000);
    let dir = std::env::temp_dir().join(format!("koogate-event-load-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    let secret = new_secret();
    let doc = serde_json::json!({
        "access_keys": {"basic": [KEY], "kit": ["k2"], "license": ["k3"], "general": ["k4"], "legacy": ["k5"]},
        "webhook_secrets": [secret],
    });
    std::fs::write(dir.join("secrets.json"), doc.to_string()).expect("write secrets");
    let fake = FakeProduct::start(&[secret]).await;

    // 1. latency
    let port = free_port();
    let server = serve(&dir, port, Some(&fake.events_url()));
    let mut answered = Vec::with_capacity(calls);
    for i in 0..calls {
        let id = format!("lat-{i}");
        new_instance(port, &id).await;
        answered.push((id, Instant::now()));
    }
    if !wait_for(&fake, calls, Duration::from_secs(60)).await {
        eprintln!("not every event arrived");
        return ExitCode::FAILURE;
    }
    let received = fake.received_of_type("instance.created");
    let mut early = 0;
    let mut lat: Vec<f64> = answered
        .iter()
        .filter_map(|(id, at)| {
            let d = received
                .iter()
                .find(|d| d.instance_id() == Some(id.as_str()))?;
            match d.received_at.checked_duration_since(*at) {
                Some(x) => Some(x.as_secs_f64() * 1000.0),
                None => {
                    early += 1;
                    Some(0.0)
                }
            }
        })
        .collect();
    lat.sort_by(f64::total_cmp);
    println!(
        "answer -> receiver latency over {} events: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms ({early} arrived before the answer)",
        lat.len(),
        percentile(&lat, 0.5),
        percentile(&lat, 0.99),
        lat.last().copied().unwrap_or(0.0)
    );
    drop(server);

    // 2. throughput from a backlog
    let _ = std::fs::remove_file(dir.join("store.db"));
    let port = free_port();
    let recorder = serve(&dir, port, None);
    let ids: Vec<String> = (0..backlog).map(|i| format!("bl-{i}")).collect();
    for chunk in ids.chunks(16) {
        let calls: Vec<_> = chunk
            .iter()
            .map(|id| {
                let id = id.clone();
                tokio::spawn(async move { new_instance(port, &id).await })
            })
            .collect();
        for c in calls {
            let _ = c.await;
        }
    }
    drop(recorder);
    let before = fake.received_of_type("instance.created").len();
    let port = free_port();
    let started = Instant::now();
    let _server = serve(&dir, port, Some(&fake.events_url()));
    if !wait_for(&fake, before + backlog, Duration::from_secs(300)).await {
        eprintln!("the backlog was not delivered within 300 s");
        return ExitCode::FAILURE;
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "backlog of {backlog} events delivered in {secs:.2} s after the restart: {:.0} events/s",
        backlog as f64 / secs
    );
    fake.assert_verified();
    let _ = std::fs::remove_dir_all(&dir);
    ExitCode::SUCCESS
}
