//! `koogate sim` against a real `koogate serve` (every suite, debug and production traffic), and
//! against endpoints broken the ways the console rejects: a wrong key, a missing `Body-Sign`, a
//! wrong content type, a slow answer. Needs `target/debug/koogate` (`make test` builds it first).

use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use koogate_protocol::body_sign;
use koogate_tests::{free_port, koogate_bin, spawn_serve, KillOnDrop};
use serde_json::Value;

fn temp_dir(label: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("koogate-sim-{label}-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn init_secrets(dir: &Path, name: &str) -> PathBuf {
    let path = dir.join(name);
    let out = Command::new(koogate_bin())
        .arg("init-secrets")
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    path
}

/// Starts `koogate serve` on a free port with its own store and `secrets`.
fn serve(dir: &Path, secrets: &Path) -> (KillOnDrop, u16) {
    let port = free_port();
    (spawn_serve(dir, secrets, port, &[]), port)
}

fn sim(port: u16, keys: &Path, extra: &[&str]) -> Output {
    Command::new(koogate_bin())
        .args([
            "sim",
            "--url",
            &format!("http://127.0.0.1:{port}/saas"),
            "--keys",
        ])
        .arg(keys)
        .args(extra)
        .output()
        .unwrap()
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn every_suite_passes_against_koogate_serve_in_debug_and_production_traffic() {
    let dir = temp_dir("pass");
    let secrets = init_secrets(&dir, "secrets.json");
    let (_serve, port) = serve(&dir, &secrets);
    let json_path = dir.join("report.json");
    let junit_path = dir.join("report.xml");
    let out = sim(
        port,
        &secrets,
        &[
            "--json",
            json_path.to_str().unwrap(),
            "--junit",
            junit_path.to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(&json_path).unwrap()).unwrap();
    assert_eq!(report["failed"], 0, "{report:#}");
    let cases = report["cases"].as_array().unwrap();
    for suite in ["saas", "kit", "license", "notify", "legacy"] {
        assert!(
            cases.iter().filter(|c| c["suite"] == suite).count() >= 3,
            "suite {suite} ran: {report:#}"
        );
    }
    let junit = std::fs::read_to_string(&junit_path).unwrap();
    assert!(
        junit.contains(&format!("tests=\"{}\" failures=\"0\"", cases.len())),
        "{junit}"
    );

    let out = sim(port, &secrets, &["--production"]);
    assert!(out.status.success(), "{}", text(&out));
}

#[test]
fn a_wrong_key_fails_with_the_console_message() {
    let dir = temp_dir("wrong-key");
    let served = init_secrets(&dir, "served.json");
    let other = init_secrets(&dir, "other.json");
    let (_serve, port) = serve(&dir, &served);
    let out = sim(port, &other, &["--suite", "notify"]);
    assert!(!out.status.success());
    let t = text(&out);
    assert!(
        t.contains("Failed to verify the HTTP Body signature"),
        "{t}"
    );
}

/// How the fake endpoint breaks its answers.
#[derive(Clone, Copy)]
enum Fault {
    NoBodySign,
    TextPlain,
    Slow(Duration),
}

/// An endpoint that answers every request `000000`, broken by `fault`, signed with `key`.
async fn broken_endpoint(fault: Fault, key: String) -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let key = key.clone();
            tokio::spawn(async move {
                let svc = service_fn(move |_req| {
                    let key = key.clone();
                    async move {
                        let body = br#"{"resultCode":"000000","resultMsg":"success."}"#;
                        if let Fault::Slow(d) = fault {
                            tokio::time::sleep(d).await;
                        }
                        let mut resp = hyper::Response::builder().status(200).header(
                            "Content-Type",
                            if matches!(fault, Fault::TextPlain) {
                                "text/plain"
                            } else {
                                "application/json"
                            },
                        );
                        if !matches!(fault, Fault::NoBodySign) {
                            resp = resp.header("Body-Sign", body_sign::header_value(&key, body));
                        }
                        Ok::<_, Infallible>(resp.body(Full::new(Bytes::from_static(body))).unwrap())
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    port
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_endpoints_fail_with_the_console_messages() {
    let dir = temp_dir("broken");
    let secrets = init_secrets(&dir, "secrets.json");
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&secrets).unwrap()).unwrap();
    let general = doc["access_keys"]["general"][0]
        .as_str()
        .unwrap()
        .to_string();
    for (fault, extra, message) in [
        (Fault::NoBodySign, vec![], "生产接口响应头缺少Body-Sign"),
        (Fault::TextPlain, vec![], "响应content-type格式错误"),
        (
            Fault::Slow(Duration::from_millis(1500)),
            vec!["--time-limit-ms", "1000"],
            "调用接口超时1s",
        ),
    ] {
        let port = broken_endpoint(fault, general.clone()).await;
        let mut args = vec!["--suite", "notify"];
        args.extend(extra);
        let keys = secrets.clone();
        let out = tokio::task::spawn_blocking(move || sim(port, &keys, &args))
            .await
            .unwrap();
        assert!(!out.status.success(), "{message}");
        let t = text(&out);
        assert!(t.contains(message), "expected {message:?} in:\n{t}");
    }
}
