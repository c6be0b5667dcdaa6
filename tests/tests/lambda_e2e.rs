//! End to end through the real Lambda runtime: `cargo lambda watch` runs the `saas` function
//! binary against its Lambda runtime API emulator, with DynamoDB on a local moto server, and a
//! signed newInstance goes in over HTTP as the marketplace would send it.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use koogate_protocol::body_sign;
use koogate_store::{InstanceState, Partition, Store};
use koogate_tests::{
    free_port, http_request, missing_tool, signed_query, KillOnDrop, MotoServer, KEY, PREVIOUS_KEY,
};

/// POSTs and returns (status, headers, body as text).
async fn post(url: &str, body: &str) -> Result<(u16, Vec<(String, String)>, String), String> {
    let (status, headers, bytes) = http_request("POST", url, &[], body.as_bytes().to_vec()).await?;
    Ok((
        status,
        headers,
        String::from_utf8_lossy(&bytes).into_owned(),
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_instance_through_cargo_lambda_watch_and_moto() {
    if missing_tool("cargo-lambda", "KOOGATE_REQUIRE_CARGO_LAMBDA") {
        return;
    }
    let moto = MotoServer::shared().expect("moto_server is required");
    let store = moto.store().await;
    let dir = std::env::temp_dir().join(format!("koogate-e2e-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let secrets = dir.join("secrets.json");
    std::fs::write(
        &secrets,
        format!(r#"{{"access_keys":{{"basic":["{KEY}","{PREVIOUS_KEY}"]}}}}"#),
    )
    .unwrap();

    let port = free_port();
    let workspace = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap();
    let env = [
        ("KOOGATE_STORE", "dynamodb".to_string()),
        ("KOOGATE_TABLE", store.table().to_string()),
        ("KOOGATE_SECRETS_FILE", secrets.display().to_string()),
        ("AWS_ENDPOINT_URL_DYNAMODB", moto.endpoint.clone()),
        ("AWS_ACCESS_KEY_ID", "test".to_string()),
        ("AWS_SECRET_ACCESS_KEY", "test".to_string()),
        ("AWS_REGION", "us-east-1".to_string()),
        ("RUST_LOG", "info".to_string()),
    ];
    let env_arg = env
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",");
    let mut cmd = Command::new("cargo");
    koogate_tests::in_own_group(&mut cmd);
    let child = cmd
        .current_dir(workspace)
        .args([
            "lambda",
            "watch",
            "--ignore-changes",
            "-q",
            "-p",
            "koogate-saas",
            "--bin",
            "saas",
        ])
        .args([
            "-A",
            "127.0.0.1",
            "-P",
            &port.to_string(),
            "--env-vars",
            &env_arg,
        ])
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("cargo lambda watch could not be started");
    let _watch = KillOnDrop(child);

    let url_base = format!("http://127.0.0.1:{port}/lambda-url/saas");
    // The first invocation compiles the function and is held until it runs: warm up with a debug
    // query (its signature may go stale while waiting; any framed answer means the function runs).
    let started = Instant::now();
    let warm_up = r#"{"activity":"queryInstance","instanceId":"warm-up","testFlag":"1"}"#;
    loop {
        let url = format!("{url_base}?{}", signed_query(KEY, warm_up.as_bytes()));
        match post(&url, warm_up).await {
            Ok((200, _, text)) if text.contains("resultCode") => break,
            Ok((status, _, text)) if started.elapsed() > Duration::from_secs(900) => {
                panic!("no answer from the function: HTTP {status} {text}")
            }
            Err(e) if started.elapsed() > Duration::from_secs(900) => {
                panic!("cargo lambda watch unreachable: {e}")
            }
            Ok((status, _, text)) => {
                eprintln!(
                    "waiting for the function: HTTP {status} {}",
                    text.chars().take(300).collect::<String>()
                );
                tokio::time::sleep(Duration::from_millis(500)).await
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(500)).await,
        }
    }

    let body = r#"{"activity":"newInstance","businessId":"e2e-business-1","orderId":"CSE2E","orderLineId":"CSE2E-000001","testFlag":"0"}"#;
    let url = format!("{url_base}?{}", signed_query(KEY, body.as_bytes()));
    let (status, headers, text) = post(&url, body).await.unwrap();
    assert_eq!(status, 200);
    assert_eq!(
        text,
        r#"{"resultCode":"000000","resultMsg":"success.","instanceId":"e2e-business-1"}"#
    );
    let header = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    assert_eq!(header("content-type"), "application/json");
    body_sign::verify(KEY, text.as_bytes(), &header("body-sign"))
        .expect("Body-Sign over the exact bytes");

    // A redelivery with a new businessId: same instance, through the same process.
    let again = r#"{"activity":"newInstance","businessId":"e2e-business-2","orderId":"CSE2E","orderLineId":"CSE2E-000001","testFlag":"0"}"#;
    let url = format!("{url_base}?{}", signed_query(KEY, again.as_bytes()));
    let (status, _, text) = post(&url, again).await.unwrap();
    assert_eq!(status, 200);
    assert!(text.contains(r#""instanceId":"e2e-business-1""#), "{text}");

    let inst = store
        .get_instance(Partition::Production, "e2e-business-1")
        .await
        .unwrap()
        .expect("written to DynamoDB");
    assert_eq!(inst.state, InstanceState::Active);
    println!("cargo lambda watch end-to-end: newInstance answered 000000 in {:?} (including the function's build)", started.elapsed());
}
