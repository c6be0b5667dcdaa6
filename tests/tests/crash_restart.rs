//! Fault injection at the process level: `koogate serve` is killed (SIGKILL) in the middle of a
//! burst of first-time newInstance calls and started again on the same SQLite file. The
//! marketplace then resends every order, as it does after a failed or unanswered call: every order
//! must end with exactly one instanceId, answered `000000` on every later delivery, with no lock
//! left behind once its lease has passed. Needs `target/debug/koogate` (`make test` builds it).

use std::path::Path;
use std::time::{Duration, Instant};

use koogate_tests::{free_port, http_request, spawn_serve, KillOnDrop};
use serde_json::Value;

/// The request budget of the server under test, which is also the idempotency lease: short, so
/// that locks left by the killed process expire quickly.
const BUDGET_MS: u64 = 1_000;

fn serve(dir: &Path, port: u16) -> KillOnDrop {
    let budget = BUDGET_MS.to_string();
    spawn_serve(
        dir,
        &dir.join("secrets.json"),
        port,
        &[("KOOGATE_REQUEST_BUDGET_MS", &budget)],
    )
}

/// One signed newInstance for `order` with a fresh businessId; the answer's JSON, or the
/// transport error (the process may be dead).
async fn new_instance(port: u16, key: &str, order: &str) -> Result<Value, String> {
    let business = uuid::Uuid::new_v4().to_string();
    let body = format!(
        r#"{{"activity":"newInstance","businessId":"{business}","orderId":"{order}","orderLineId":"{order}-000001","testFlag":"0"}}"#
    );
    let query = koogate_tests::signed_query(key, body.as_bytes());
    let url = format!("http://127.0.0.1:{port}/saas?{query}");
    let (_, _, bytes) = http_request("POST", &url, &[], body.into_bytes()).await?;
    serde_json::from_slice(&bytes).map_err(|e| e.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_process_killed_mid_burst_loses_nothing_and_leaves_no_lock() {
    let dir = std::env::temp_dir().join(format!("koogate-crash-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let key = "crash-test-basic-key";
    let secrets = serde_json::json!({"access_keys": {"basic": [key], "kit": ["k"], "license": ["l"],
        "general": ["g"], "legacy": ["v1"]}});
    std::fs::write(dir.join("secrets.json"), secrets.to_string()).unwrap();
    let port = free_port();
    let orders: Vec<String> = (0..200).map(|i| format!("CSCRASH{i:04}")).collect();

    // A burst of first deliveries; the process is killed while they are in flight.
    let mut server = serve(&dir, port);
    let burst: Vec<_> = orders
        .iter()
        .cloned()
        .map(|order| tokio::spawn(async move { new_instance(port, key, &order).await }))
        .collect();
    tokio::time::sleep(Duration::from_millis(30)).await;
    server.0.kill().unwrap();
    server.0.wait().unwrap();
    let mut answered_before = 0;
    let mut first_ids = std::collections::HashMap::new();
    for (order, task) in orders.iter().zip(burst) {
        if let Ok(Ok(json)) = task.await {
            if json["resultCode"] == "000000" {
                answered_before += 1;
                first_ids.insert(
                    order.clone(),
                    json["instanceId"].as_str().unwrap().to_string(),
                );
            }
        }
    }
    assert!(
        answered_before < orders.len(),
        "the kill came after every call was answered; nothing was tested"
    );

    // Restart on the same file; the marketplace resends every order until it gets an answer.
    let _server = serve(&dir, port);
    let deadline = Instant::now() + Duration::from_millis(BUDGET_MS * 10);
    let mut final_ids = std::collections::HashMap::new();
    for order in &orders {
        loop {
            let json = new_instance(port, key, order)
                .await
                .expect("the restarted server answers");
            match json["resultCode"].as_str() {
                Some("000000") => {
                    final_ids.insert(
                        order.clone(),
                        json["instanceId"].as_str().unwrap().to_string(),
                    );
                    break;
                }
                // A lock of the killed process, until its lease has passed.
                Some("000004") => {
                    assert!(
                        Instant::now() < deadline,
                        "{order}: still locked long after the lease"
                    );
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                other => panic!("{order}: answered {other:?}: {json}"),
            }
        }
    }
    for (order, id) in &first_ids {
        assert_eq!(
            &final_ids[order], id,
            "{order}: an answered instanceId changed after the restart"
        );
    }
    // Every later delivery gets the same instanceId again.
    for order in orders.iter().step_by(17) {
        let json = new_instance(port, key, order).await.unwrap();
        assert_eq!(json["resultCode"], "000000");
        assert_eq!(json["instanceId"].as_str().unwrap(), final_ids[order]);
    }
    let distinct: std::collections::HashSet<&String> = final_ids.values().collect();
    assert_eq!(distinct.len(), orders.len(), "one instance per order");
}
