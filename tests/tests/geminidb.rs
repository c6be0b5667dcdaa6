//! koogate against GeminiDB's documented DynamoDB subset (docs/geminidb.md), on moto:
//!
//! * `koogate serve` on DynamoDB behind a `GeminiProxy` in strip mode (no `ReturnValues`, no
//!   `ReturnValuesOnConditionCheckFailure` honoured): the instance lifecycle with duplicates, a
//!   kit tenantSync and its event, and every request inside the subset;
//! * the store's fallback reads happen only when the item did not come back;
//! * `koogate store init` through the proxy (GeminiDB's CreateTable), idempotent, `--help`;
//! * the proxy refuses what GeminiDB does not document (Scan, transactions, …).
//!
//! Needs `target/debug/koogate` (`make test` builds it first).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::{Command, Output, Stdio};

use koogate_store::{Acquire, AcquireOutcome, Store};
use koogate_tests::fake_product::{new_secret, FakeProduct};
use koogate_tests::geminidb::{GeminiProxy, Mode};
use koogate_tests::{
    create_table, free_port, http_request, kit_headers, koogate_bin, signed_query, spawn_serve,
    MotoServer,
};
use serde_json::{json, Value};

fn unique(label: &str) -> String {
    format!("{label}-{}", uuid::Uuid::new_v4().simple())
}

/// The environment that points a koogate process at `endpoint` for DynamoDB.
fn dynamo_env(endpoint: &str, table: &str) -> Vec<(String, String)> {
    [
        ("KOOGATE_STORE", "dynamodb"),
        ("KOOGATE_TABLE", table),
        ("AWS_ENDPOINT_URL_DYNAMODB", endpoint),
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
        ("AWS_REGION", "us-east-1"),
        ("AWS_EC2_METADATA_DISABLED", "true"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

const BASIC: &str = "geminidb-basic-key";
const KIT: &str = "geminidb-kit-key";

async fn saas(base: &str, body: &Value) -> Value {
    let body = body.to_string();
    let url = format!("{base}/saas?{}", signed_query(BASIC, body.as_bytes()));
    let (status, _, bytes) = http_request("POST", &url, &[], body.clone().into_bytes())
        .await
        .unwrap();
    assert_eq!(status, 200, "{body}");
    serde_json::from_slice(&bytes).unwrap()
}

async fn saas_expect(base: &str, body: &Value, code: &str) -> Value {
    let a = saas(base, body).await;
    assert_eq!(a["resultCode"], code, "{body} answered {a}");
    a
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn koogate_serve_on_dynamodb_stays_in_the_geminidb_subset_without_return_values() {
    let Some(moto) = MotoServer::shared() else {
        return;
    };
    let proxy = GeminiProxy::start(&moto.endpoint, Mode::Strip);
    let table = unique("koogate-gdb");
    create_table(&moto.client(), &table).await;

    let secrets = vec![new_secret()];
    let fake = FakeProduct::start(&secrets).await;
    let dir = std::env::temp_dir().join(unique("koogate-geminidb"));
    std::fs::create_dir_all(&dir).unwrap();
    let doc = json!({
        "access_keys": {"basic": [BASIC], "kit": [KIT], "license": ["geminidb-license-key"],
                        "general": ["geminidb-general-key"], "legacy": ["GeminiDbLegacyKey1"]},
        "webhook_secrets": secrets,
    });
    let secrets_path = dir.join("secrets.json");
    std::fs::write(&secrets_path, doc.to_string()).unwrap();
    let mut env = dynamo_env(&proxy.endpoint, &table);
    env.push(("KOOGATE_WEBHOOK_URL".into(), fake.events_url()));
    env.push((
        "KOOGATE_EVENTS_RETRY_SCHEDULE".into(),
        "1,1,1,1,1,1,1,1,1,1".into(),
    ));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let port = free_port();
    let _serve = spawn_serve(&dir, &secrets_path, port, &env);
    let base = format!("http://127.0.0.1:{port}");

    // newInstance, then a duplicate delivery of the same order: the refused acquire brings no
    // old record back (stripped), so the store reads it; the answer is the first instanceId.
    let order = unique("CSGDB");
    let id = unique("gdb");
    let new = json!({"activity": "newInstance", "businessId": id, "orderId": order,
                     "orderLineId": format!("{order}-000001"), "testFlag": "0"});
    let a = saas_expect(&base, &new, "000000").await;
    assert_eq!(a["instanceId"], id.as_str());
    let mut again = new.clone();
    again["businessId"] = unique("resend").into();
    let b = saas_expect(&base, &again, "000000").await;
    assert_eq!(
        b["instanceId"],
        id.as_str(),
        "a resend keeps the first instanceId"
    );

    let q = saas_expect(
        &base,
        &json!({"activity": "queryInstance", "instanceId": id, "testFlag": "0"}),
        "000000",
    )
    .await;
    assert!(q.to_string().contains(&id), "{q}");
    let renew = unique("CSREN");
    let refresh = json!({"activity": "refreshInstance", "instanceId": id, "orderId": renew,
        "orderLineId": format!("{renew}-000001"), "expireTime": "20351124023618256",
        "scene": "RENEWAL", "testFlag": "0"});
    saas_expect(&base, &refresh, "000000").await;
    saas_expect(&base, &refresh, "000000").await;
    let release = json!({"activity": "releaseInstance", "instanceId": id, "testFlag": "0"});
    saas_expect(&base, &release, "000000").await;
    saas_expect(&base, &release, "000000").await;

    // Kit V2 tenantSync: a directory write in batches plus its event's commit marker.
    let tenant = unique("tenant");
    let now_utc8 = koogate_protocol::timestamp::format_compact_ms(
        koogate_runtime::pipeline::now_ms() + 8 * 3600 * 1000,
    );
    let body = json!({"instanceId": id, "orderId": order, "tenantId": tenant,
        "tenantCode": "acme", "name": "Acme Testing Ltd", "domainName": "https://idp.example.com",
        "flag": 1, "testFlag": 0, "timeStamp": now_utc8})
    .to_string();
    let headers = kit_headers(KIT, body.as_bytes());
    let headers: Vec<(&str, &str)> = headers
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    let (status, _, bytes) = http_request(
        "POST",
        &format!("{base}/saas/produceAPI/v2/tenantSync"),
        &headers,
        body.into_bytes(),
    )
    .await
    .unwrap();
    let a: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(
        (status, a["resultCode"].as_str()),
        (200, Some("000000")),
        "{a}"
    );

    // The events path: each change's event reaches the product once.
    for kind in ["instance.created", "instance.renewed", "instance.released"] {
        fake.wait_for_event(kind, &id).await;
    }
    fake.wait_for("tenant.synced", |d| {
        d.accepted() && d.kind() == "tenant.synced"
    })
    .await;
    fake.assert_verified();
    assert!(
        proxy.forwarded() > 10,
        "koogate reached moto through the proxy"
    );
    proxy.assert_clean();
}

/// An acquire refused on a live lock: the old record comes back on DynamoDB (no extra read),
/// and is read once, consistently, where it does not (GeminiDB ignoring the parameter).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fallback_read_happens_only_when_the_old_item_did_not_come_back() {
    let Some(moto) = MotoServer::shared() else {
        return;
    };
    for (mode, fallback_reads) in [(Mode::Check, 0), (Mode::Strip, 1)] {
        let (store, counter) = moto.counted_store(mode).await;
        let key = unique("idem");
        let acquire = |owner: &'static str, reference: &'static str| Acquire {
            key: "",
            owner,
            lease_until_ms: i64::MAX / 2,
            validation: "v",
            reference,
            expires_at: None,
            now_ms: 1_700_000_000_000,
        };
        let first = Acquire {
            key: &key,
            ..acquire("a", "ref-a")
        };
        assert_eq!(
            store.acquire(&first).await.unwrap(),
            AcquireOutcome::Acquired {
                reference: "ref-a".into()
            }
        );
        let before = counter.snapshot();
        let second = Acquire {
            key: &key,
            ..acquire("b", "ref-b")
        };
        assert_eq!(
            store.acquire(&second).await.unwrap(),
            AcquireOutcome::InFlight {
                reference: "ref-a".into()
            }
        );
        let used = counter.snapshot().since(&before);
        assert_eq!(used.get("UpdateItem"), 1);
        assert_eq!(used.get("GetItem"), fallback_reads, "{used:?}");
    }
    koogate_tests::geminidb::assert_no_violations();
}

fn koogate(args: &[&str], env: &[(String, String)]) -> Output {
    let mut cmd = Command::new(koogate_bin());
    cmd.args(args)
        .env_remove("KOOGATE_TABLE")
        .stdin(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_init_creates_the_table_with_geminidb_parameters_and_is_idempotent() {
    let Some(moto) = MotoServer::shared() else {
        return;
    };
    let proxy = GeminiProxy::start(&moto.endpoint, Mode::Check);
    let table = unique("koogate-init");
    let env = dynamo_env(&proxy.endpoint, &table);

    // --help does nothing else.
    let help = koogate(&["store", "init", "--help"], &env);
    assert!(help.status.success(), "{}", text(&help));
    assert!(text(&help).contains("--billing"), "{}", text(&help));
    assert_eq!(proxy.forwarded(), 0, "--help sent no request");

    // The endpoint is not AWS: no billing parameter by default (GeminiDB's CreateTable).
    let first = koogate(&["store", "init"], &env);
    assert!(first.status.success(), "{}", text(&first));
    assert!(text(&first).contains("created"), "{}", text(&first));
    assert!(
        text(&first).contains("TTL on expires_at: enabled"),
        "{}",
        text(&first)
    );
    let second = koogate(&["store", "init", "--table", &table], &env);
    assert!(second.status.success(), "{}", text(&second));
    assert!(text(&second).contains("exists"), "{}", text(&second));
    assert!(
        text(&second).contains("already enabled"),
        "{}",
        text(&second)
    );
    proxy.assert_clean();

    let client = moto.client();
    let desc = client
        .describe_table()
        .table_name(&table)
        .send()
        .await
        .unwrap()
        .table
        .unwrap();
    let keys: Vec<(String, String)> = desc
        .key_schema()
        .iter()
        .map(|k| {
            (
                k.attribute_name().to_string(),
                k.key_type().as_str().to_string(),
            )
        })
        .collect();
    assert_eq!(
        keys,
        [
            ("pk".to_string(), "HASH".to_string()),
            ("sk".into(), "RANGE".into())
        ]
    );
    let ttl = client
        .describe_time_to_live()
        .table_name(&table)
        .send()
        .await
        .unwrap()
        .time_to_live_description
        .unwrap();
    assert_eq!(ttl.attribute_name(), Some("expires_at"));

    // The store works on it, through the proxy.
    let store = koogate_store::dynamodb::DynamoStore::new(&client, table.clone());
    assert!(store.remember_nonce("n", 1, 2).await.unwrap());

    // Amazon DynamoDB's form (moto direct), --no-ttl, and a bad option.
    let aws_table = unique("koogate-init-aws");
    let aws = koogate(
        &[
            "store",
            "init",
            "--table",
            &aws_table,
            "--billing",
            "pay-per-request",
            "--no-ttl",
        ],
        &dynamo_env(&moto.endpoint, &aws_table),
    );
    assert!(aws.status.success(), "{}", text(&aws));
    assert!(text(&aws).contains("not asked for"), "{}", text(&aws));
    let bad = koogate(&["store", "init", "--billing", "free"], &env);
    assert!(!bad.status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_proxy_refuses_what_geminidb_does_not_document() {
    let Some(moto) = MotoServer::shared() else {
        return;
    };
    let proxy = GeminiProxy::start(&moto.endpoint, Mode::Check);
    let table = unique("koogate-refused");
    create_table(&moto.client(), &table).await;
    for (target, body) in [
        ("Scan", json!({"TableName": table})),
        (
            "TransactWriteItems",
            json!({"TransactItems": [{"Put": {"TableName": table, "Item": {}}}]}),
        ),
        ("ExecuteStatement", json!({"Statement": "SELECT * FROM t"})),
        (
            "Query",
            json!({"TableName": table, "KeyConditionExpression": "pk = :p",
                   "ExpressionAttributeValues": {":p": {"S": "x"}},
                   "FilterExpression": "size(doc) > :p"}),
        ),
    ] {
        let (status, _, bytes) = http_request(
            "POST",
            &format!("{}/", proxy.endpoint),
            &[
                ("X-Amz-Target", &format!("DynamoDB_20120810.{target}")),
                ("Content-Type", "application/x-amz-json-1.0"),
            ],
            body.to_string().into_bytes(),
        )
        .await
        .unwrap();
        let err: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(status, 400, "{target}: {err}");
        assert!(
            err["__type"]
                .as_str()
                .unwrap()
                .ends_with("ValidationException"),
            "{err}"
        );
    }
    assert_eq!(proxy.violations().len(), 4);
    assert_eq!(proxy.forwarded(), 0);
}

/// Every seller-console case of every interface (`koogate sim`, debug and production traffic)
/// against `koogate serve` on DynamoDB behind the proxy: once checking only, once also dropping
/// `ReturnValues` and `ReturnValuesOnConditionCheckFailure`. Nothing outside the subset is sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_console_case_passes_through_the_geminidb_proxy_in_both_modes() {
    let Some(moto) = MotoServer::shared() else {
        return;
    };
    for mode in [Mode::Check, Mode::Strip] {
        let proxy = GeminiProxy::start(&moto.endpoint, mode);
        let table = unique("koogate-sim-gdb");
        create_table(&moto.client(), &table).await;
        let dir = std::env::temp_dir().join(unique("koogate-sim-gdb"));
        std::fs::create_dir_all(&dir).unwrap();
        let secrets = dir.join("secrets.json");
        let out = Command::new(koogate_bin())
            .arg("init-secrets")
            .arg(&secrets)
            .output()
            .unwrap();
        assert!(out.status.success());
        let env = dynamo_env(&proxy.endpoint, &table);
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let port = free_port();
        let _serve = spawn_serve(&dir, &secrets, port, &env);
        for extra in [&[][..], &["--production"][..]] {
            let out = Command::new(koogate_bin())
                .args([
                    "sim",
                    "--url",
                    &format!("http://127.0.0.1:{port}/saas"),
                    "--keys",
                ])
                .arg(&secrets)
                .args(extra)
                .stdout(Stdio::piped())
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{mode:?} {extra:?}: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        proxy.assert_clean();
        assert!(proxy.forwarded() > 50, "the cases reached the store");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
