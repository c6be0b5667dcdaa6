//! "What happened to order X?" from the log lines alone: every answered callback's line carries
//! the business identifiers it concerns, refused signatures are WARN, failures ERROR, and no
//! phone number, e-mail address or key reaches the log.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use koogate_tests::{free_port, http_request, koogate_bin, signed_query, KillOnDrop, KEY};
use serde_json::{json, Value};

fn log_lines(path: &std::path::Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_lines_carry_the_order_and_instance_and_no_contact_data() {
    let dir = std::env::temp_dir().join(format!("koogate-trace-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let secrets = dir.join("secrets.json");
    let doc = json!({"access_keys": {"basic": [KEY], "kit": ["k"], "license": ["l"],
                     "general": ["g"], "legacy": ["v"]}});
    std::fs::write(&secrets, doc.to_string()).unwrap();
    let log = dir.join("serve.log");
    let port = free_port();
    let _serve = KillOnDrop(
        Command::new(koogate_bin())
            .args(["serve", "--addr", &format!("127.0.0.1:{port}")])
            .env("KOOGATE_SECRETS_FILE", &secrets)
            .env(
                "KOOGATE_STORE",
                format!("sqlite:{}", dir.join("s.db").display()),
            )
            .env("KOOGATE_USAGE_PUSH_INTERVAL_SECS", "0")
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap(),
    );
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "serve did not start"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let fat = json!({"activity": "newInstance",
        "buyerInfo": {"customerId": "c-1", "mobilePhone": "13800000000", "email": "buyer@example.com"},
        "orderInfo": [{"businessId": "trace-inst-1", "orderId": "CSTRACE1", "trialFlag": "0",
                       "chargingMode": "PERIOD", "periodType": "month", "periodNumber": 1,
                       "productInfo": [{"skuCode": "s", "productId": "p", "linearValue": 1}],
                       "createTime": "20221024194509", "expireTime": "20321224194509"}],
        "testFlag": "0"})
    .to_string();
    let base = format!("http://127.0.0.1:{port}/saas");
    let url = format!("{base}?{}", signed_query(KEY, fat.as_bytes()));
    let a = http_request("POST", &url, &[], fat.clone().into_bytes())
        .await
        .unwrap();
    assert!(String::from_utf8_lossy(&a.2).contains("000000"));
    let forged = format!("{base}?{}", signed_query("not-the-key", fat.as_bytes()));
    let a = http_request("POST", &forged, &[], fat.into_bytes())
        .await
        .unwrap();
    assert!(String::from_utf8_lossy(&a.2).contains("000001"));
    // A browser route (the Product API, no token): its own line too.
    let product = format!("http://127.0.0.1:{port}/isv/v1/instances/trace-inst-1");
    let a = http_request("GET", &product, &[], Vec::new())
        .await
        .unwrap();
    assert_eq!(a.0, 401);

    let deadline = Instant::now() + Duration::from_secs(10);
    let lines = loop {
        let lines = log_lines(&log);
        if (lines.iter().filter(|l| l["function"] == "saas").count() >= 2
            && lines.iter().any(|l| l["function"] == "product-api"))
            || Instant::now() > deadline
        {
            break lines;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let answered = lines
        .iter()
        .find(|l| l["result_code"] == "000000" && l["function"] == "saas")
        .expect("the newInstance line");
    assert_eq!(answered["order_id"], "CSTRACE1", "{answered}");
    assert_eq!(answered["instance_id"], "trace-inst-1", "{answered}");
    assert_eq!(answered["business_id"], "trace-inst-1", "{answered}");
    assert_eq!(answered["level"], "INFO");
    let refused = lines
        .iter()
        .find(|l| l["result_code"] == "000001")
        .expect("the refused line");
    assert_eq!(refused["level"], "WARN", "{refused}");
    assert!(refused["reason"].as_str().is_some_and(|r| !r.is_empty()));
    assert!(
        refused.get("order_id").is_none() || refused["order_id"].is_null(),
        "an unverified body names nobody's order: {refused}"
    );
    let browser = lines
        .iter()
        .find(|l| l["function"] == "product-api")
        .expect("the Product API line");
    assert_eq!(browser["result_code"], "401", "{browser}");
    assert_eq!(
        browser["route"], "/isv/v1/instances/{instanceId}",
        "{browser}"
    );
    assert_eq!(browser["level"], "INFO", "{browser}");
    let text = std::fs::read_to_string(&log).unwrap();
    for secret in ["13800000000", "buyer@example.com", KEY] {
        assert!(!text.contains(secret), "{secret} reached the log");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
