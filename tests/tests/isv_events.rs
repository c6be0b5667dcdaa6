//! koogate ↔ the ISV's own product, black box: a real `koogate serve` (SQLite, and DynamoDB on
//! moto for the lifecycle and the crash), the marketplace's signed callbacks sent over HTTP, and
//! a fake product (`koogate_tests::fake_product`) that receives koogate's events and
//! provisioning requests, checks every Standard Webhooks signature and records every delivery,
//! and calls the Product API. What is checked:
//!
//! * signing: the Standard Webhooks published vector, and every delivery of every test;
//! * events: one per committed state change (create, renew, freeze, unfreeze, upgrade, release,
//!   order notification, tenant sync, license code change), none for repeated, refused or
//!   (unless enabled) debug callbacks, `data.version` increasing by one per change;
//! * delivery: retries with the same `webhook-id` and body, `410` stops at once, a receiver that
//!   was down, giving up and redelivering by hand, a process killed with pending events;
//! * provisioning requests: `200`, `202` completed through the Product API, `409` refusals, an
//!   answer too late for the marketplace, change checks;
//! * the Product API's authentication, instance reads and usage recording;
//! * `koogate events test`.
//!
//! Needs `target/debug/koogate` (`make test` builds it first).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use koogate_tests::fake_product::{
    any, new_secret, on_instance, on_type, on_type_and_instance, product_api, sign, verify,
    ApiAnswer, Delivery, FakeProduct, Reply,
};
use koogate_tests::geminidb::{GeminiProxy, Mode};
use koogate_tests::{
    create_table, free_port, http_request, kit_headers, koogate_bin, signed_query, spawn_serve,
    KillOnDrop, MotoServer,
};
use serde_json::{json, Value};

// Keys of the marketplace interfaces, one per interface type.
const BASIC: &str = "isv-events-basic-key";
const KIT: &str = "isv-events-kit-key";
const LICENSE: &str = "isv-events-license-key";
const GENERAL: &str = "isv-events-general-key";
const LEGACY: &str = "IsvEventsLegacyKey1";

/// A short retry schedule: plenty of one-second retries.
const FAST_RETRIES: &str = "1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1";

fn unique(label: &str) -> String {
    format!("{label}-{}", uuid::Uuid::new_v4().simple())
}

/// Where `koogate serve` keeps its state.
#[derive(Clone)]
enum Backend {
    Sqlite,
    Dynamo { endpoint: String, table: String },
}

impl Backend {
    /// A fresh table on the shared moto server, or `None` when moto is missing and not required
    /// (the test is then skipped, as the other DynamoDB tests are).
    /// koogate reaches moto through a `GeminiProxy` in strip mode: every request must stay in
    /// GeminiDB's subset, and none gets `ReturnValues` or `ReturnValuesOnConditionCheckFailure`
    /// honoured, so the store's fallbacks carry these tests.
    async fn dynamodb() -> Option<Backend> {
        let moto = MotoServer::shared()?;
        let table = unique("koogate-isv");
        create_table(&moto.client(), &table).await;
        Some(Backend::Dynamo {
            endpoint: geminidb_proxy(moto).endpoint.clone(),
            table,
        })
    }
}

/// The one GeminiDB proxy in front of moto for this test binary.
fn geminidb_proxy(moto: &MotoServer) -> &'static GeminiProxy {
    static PROXY: std::sync::OnceLock<GeminiProxy> = std::sync::OnceLock::new();
    PROXY.get_or_init(|| GeminiProxy::start(&moto.endpoint, Mode::Strip))
}

impl Backend {
    /// Panics if koogate sent DynamoDB anything outside GeminiDB's subset.
    fn assert_geminidb_subset(&self) {
        if let (Backend::Dynamo { .. }, Some(moto)) = (self, MotoServer::shared()) {
            geminidb_proxy(moto).assert_clean();
        }
    }
}

/// One koogate deployment: its directory, secrets document, environment, and (when started)
/// its `koogate serve` process, killed when dropped.
struct Koogate {
    dir: PathBuf,
    secrets_path: PathBuf,
    tokens: Vec<String>,
    port: u16,
    env: Vec<(String, String)>,
    serve: Option<KillOnDrop>,
}

impl Koogate {
    /// Writes a secrets document with the marketplace keys, `webhook_secrets` and two fresh
    /// Product API tokens, and the environment for `backend` plus `extra`.
    fn new(
        label: &str,
        backend: &Backend,
        webhook_secrets: &[String],
        extra: &[(&str, &str)],
    ) -> Koogate {
        let dir =
            std::env::temp_dir().join(format!("koogate-isv-{label}-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let tokens = vec![
            hex::encode(rand::random::<[u8; 32]>()),
            hex::encode(rand::random::<[u8; 32]>()),
        ];
        let doc = json!({
            "access_keys": {"basic": [BASIC], "kit": [KIT], "license": [LICENSE],
                            "general": [GENERAL], "legacy": [LEGACY]},
            "webhook_secrets": webhook_secrets,
            "isv_api_tokens": tokens,
        });
        let secrets_path = dir.join("secrets.json");
        std::fs::write(&secrets_path, doc.to_string()).unwrap();
        let mut env: Vec<(String, String)> = match backend {
            Backend::Sqlite => vec![(
                "KOOGATE_STORE".into(),
                format!("sqlite:{}", dir.join("store.db").display()),
            )],
            Backend::Dynamo { endpoint, table } => vec![
                ("KOOGATE_STORE".into(), "dynamodb".into()),
                ("KOOGATE_TABLE".into(), table.clone()),
                ("AWS_ENDPOINT_URL_DYNAMODB".into(), endpoint.clone()),
                ("AWS_ACCESS_KEY_ID".into(), "test".into()),
                ("AWS_SECRET_ACCESS_KEY".into(), "test".into()),
                ("AWS_REGION".into(), "us-east-1".into()),
                ("AWS_EC2_METADATA_DISABLED".into(), "true".into()),
            ],
        };
        env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        Koogate {
            dir,
            secrets_path,
            tokens,
            port: free_port(),
            env,
            serve: None,
        }
    }

    /// Starts (or restarts) `koogate serve` on this deployment's port.
    fn start(&mut self) {
        let env: Vec<(&str, &str)> = self
            .env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        self.serve = Some(spawn_serve(&self.dir, &self.secrets_path, self.port, &env));
    }

    /// kill -9 of the serve process.
    fn kill(&mut self) {
        let mut serve = self.serve.take().expect("serve is running");
        serve.0.kill().unwrap();
        serve.0.wait().unwrap();
    }

    fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// A V2 callback to `path`, signed with `key`, as the marketplace sends it; the answer's JSON.
    async fn call(&self, path: &str, key: &str, body: &Value) -> Value {
        let body = body.to_string();
        let url = format!(
            "{}{path}?{}",
            self.base(),
            signed_query(key, body.as_bytes())
        );
        let (status, _, bytes) = http_request("POST", &url, &[], body.clone().into_bytes())
            .await
            .unwrap_or_else(|e| panic!("POST {path} {body}: {e}"));
        assert_eq!(status, 200, "POST {path} {body}");
        serde_json::from_slice(&bytes).unwrap_or_else(|e| {
            panic!(
                "POST {path} {body}: not JSON ({e}): {}",
                String::from_utf8_lossy(&bytes)
            )
        })
    }

    /// A basic callback on `/saas`.
    async fn saas(&self, body: &Value) -> Value {
        self.call("/saas", BASIC, body).await
    }

    /// A basic callback that must answer `code`.
    async fn saas_expect(&self, body: &Value, code: &str) -> Value {
        let a = self.saas(body).await;
        assert_eq!(a["resultCode"], code, "{body} answered {a}");
        a
    }

    /// The Product API with the current token.
    async fn api(&self, method: &str, path: &str, body: Option<&Value>) -> ApiAnswer {
        product_api(&self.base(), method, path, Some(&self.tokens[0]), body).await
    }

    /// Runs `koogate <args>` with this deployment's environment (the CLI reads the same settings
    /// as serve); killed if it has not finished after 60 s.
    async fn cli(&self, args: &[&str]) -> Output {
        let name = uuid::Uuid::new_v4().simple().to_string();
        let out_path = self.dir.join(format!("cli-{name}.out"));
        let err_path = self.dir.join(format!("cli-{name}.err"));
        let mut cmd = Command::new(koogate_bin());
        cmd.args(args)
            .env("KOOGATE_SECRETS_FILE", &self.secrets_path)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&out_path).unwrap())
            .stderr(std::fs::File::create(&err_path).unwrap());
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        let what = format!("koogate {}", args.join(" "));
        tokio::task::spawn_blocking(move || {
            let mut child = KillOnDrop(cmd.spawn().unwrap());
            let deadline = Instant::now() + Duration::from_secs(60);
            let status = loop {
                if let Some(status) = child.0.try_wait().unwrap() {
                    break status;
                }
                assert!(Instant::now() < deadline, "{what} did not finish in 60 s");
                std::thread::sleep(Duration::from_millis(20));
            };
            Output {
                status,
                stdout: std::fs::read(&out_path).unwrap(),
                stderr: std::fs::read(&err_path).unwrap(),
            }
        })
        .await
        .unwrap()
    }

    /// `koogate events list --json` (with `--failed` when asked): the array it prints.
    async fn events_list(&self, failed: bool) -> Vec<Value> {
        let mut args = vec!["events", "list", "--json"];
        if failed {
            args.push("--failed");
        }
        let out = self.cli(&args).await;
        assert!(
            out.status.success(),
            "koogate {}: {}",
            args.join(" "),
            text(&out)
        );
        let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "koogate {} does not print JSON ({e}): {}",
                args.join(" "),
                text(&out)
            )
        });
        let list = v
            .as_array()
            .unwrap_or_else(|| panic!("koogate events list --json prints an array: {v}"))
            .clone();
        for e in &list {
            for field in ["id", "type", "state", "attempts"] {
                assert!(!e[field].is_null(), "event list entry without {field}: {e}");
            }
            assert!(
                e.get("last_error").is_some(),
                "event list entry without last_error: {e}"
            );
            assert!(
                matches!(
                    e["state"].as_str(),
                    Some("pending" | "delivered" | "failed")
                ),
                "state of {e}"
            );
        }
        list
    }

    /// Polls `events list` until `cond` holds over it.
    async fn wait_list(
        &self,
        what: &str,
        failed: bool,
        cond: impl Fn(&[Value]) -> bool,
    ) -> Vec<Value> {
        let deadline = Instant::now() + koogate_tests::fake_product::WAIT;
        loop {
            let list = self.events_list(failed).await;
            if cond(&list) {
                return list;
            }
            if Instant::now() > deadline {
                panic!(
                    "waited for {what}; koogate events list --json{} shows {list:#?}",
                    if failed { " --failed" } else { "" }
                );
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn entry<'a>(list: &'a [Value], id: &str) -> Option<&'a Value> {
    list.iter().find(|e| e["id"] == id)
}

// ---- marketplace callback bodies (docs/protocol.md (inbound-basic)), thin production shapes

fn new_instance(order: &str, business: &str, test_flag: &str) -> Value {
    json!({"activity": "newInstance", "businessId": business, "orderId": order,
           "orderLineId": format!("{order}-000001"), "testFlag": test_flag})
}

fn query_instance(id: &str) -> Value {
    json!({"activity": "queryInstance", "instanceId": id, "testFlag": "0"})
}

fn refresh_instance(id: &str, order: &str, expire: &str) -> Value {
    json!({"activity": "refreshInstance", "instanceId": id, "orderId": order,
           "orderLineId": format!("{order}-000001"), "expireTime": expire, "scene": "RENEWAL",
           "testFlag": "0"})
}

fn update_status(id: &str, status: &str) -> Value {
    json!({"activity": "updateInstanceStatus", "instanceId": id, "status": status, "testFlag": "0"})
}

fn upgrade_instance(id: &str, order: &str) -> Value {
    json!({"activity": "upgradeInstance", "instanceId": id, "orderId": order,
           "orderLineId": format!("{order}-000001"), "testFlag": "0"})
}

fn release_instance(id: &str) -> Value {
    json!({"activity": "releaseInstance", "instanceId": id, "testFlag": "0"})
}

/// An `appInfo` as a product answers it.
fn product_app_info(id: &str) -> Value {
    json!({"frontEndUrl": format!("https://tenant.example.com/{id}"),
           "adminUrl": format!("https://tenant.example.com/{id}/admin"),
           "userName": format!("admin-{id}"),
           "password": "Init#Pass-42",
           "memo": "change the password at first login"})
}

fn assert_app_info_eq(got: &Value, want: &Value) {
    for f in ["frontEndUrl", "adminUrl", "userName", "password", "memo"] {
        assert_eq!(got[f], want[f], "appInfo.{f}: got {got}, want {want}");
    }
}

/// The instance events of one instance received by the product, by type.
fn instance_events(fake: &FakeProduct, id: &str) -> Vec<Delivery> {
    fake.received_events()
        .into_iter()
        .filter(|d| d.instance_id() == Some(id))
        .collect()
}

// =============================================================================================
// 1. Signing

#[test]
fn the_published_standard_webhooks_vector_verifies_and_tampering_fails() {
    let secret = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
    let id = "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk";
    let ts = "1649367553";
    let body = br#"{"email":"test@example.com","username":"test_user"}"#;
    let expected = "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=";
    assert_eq!(sign(secret, id, ts, body), expected);
    assert!(verify(secret, id, ts, body, expected));
    // Several entries (rotation): any valid one is enough.
    assert!(verify(
        secret,
        id,
        ts,
        body,
        &format!("v1,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA= {expected}")
    ));
    // Tampered body, id, timestamp, signature, or another secret: no match.
    let tampered_body = br#"{"email":"test@example.com","username":"test_usex"}"#;
    assert!(!verify(secret, id, ts, tampered_body, expected));
    assert!(!verify(
        secret,
        "msg_27UH4WbU6Z5A5EzD8u03UvzRbpK",
        ts,
        body,
        expected
    ));
    assert!(!verify(secret, id, "1649367554", body, expected));
    assert!(!verify(
        secret,
        id,
        ts,
        body,
        "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkx="
    ));
    assert!(!verify(
        secret,
        id,
        ts,
        body,
        "v2,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw="
    ));
    assert!(!verify(&new_secret(), id, ts, body, expected));
}

// =============================================================================================
// 2. Lifecycle events

/// newInstance, refresh ×2, freeze, unfreeze, upgrade, release: one event each, versions one
/// apart; repeats, a refused (bad signature) call and debug traffic emit nothing.
async fn lifecycle_events(backend: Backend) {
    let secrets = vec![new_secret(), new_secret()];
    let fake = FakeProduct::start(&secrets).await;
    let mut k = Koogate::new(
        "lifecycle",
        &backend,
        &secrets,
        &[
            ("KOOGATE_WEBHOOK_URL", &fake.events_url()),
            ("KOOGATE_EVENTS_RETRY_SCHEDULE", FAST_RETRIES),
        ],
    );
    k.start();

    let order = unique("CSLIFE");
    let id = unique("life");
    let a = k
        .saas_expect(&new_instance(&order, &id, "0"), "000000")
        .await;
    assert_eq!(a["instanceId"], id.as_str());
    let created = fake.wait_for_event("instance.created", &id).await;
    let d = created.data();
    assert_eq!(d["debug"], false, "{d}");
    assert_eq!(d["orderId"], order.as_str(), "{d}");
    assert_eq!(d["orderLineId"], format!("{order}-000001").as_str(), "{d}");
    assert!(
        d["appInfo"]["frontEndUrl"]
            .as_str()
            .is_some_and(|s| !s.is_empty()),
        "instance.created carries appInfo.frontEndUrl: {d}"
    );
    assert!(
        d["appInfo"]["password"]
            .as_str()
            .is_some_and(|s| !s.is_empty()),
        "the template provisioner generated the password: the event carries it: {d}"
    );
    let v0 = created.version().unwrap();

    // A resend of the same order (new businessId, new nonce) changes nothing.
    let again = k
        .saas_expect(&new_instance(&order, &unique("resend"), "0"), "000000")
        .await;
    assert_eq!(again["instanceId"], id.as_str());

    // A refused call: wrong signature.
    let refused = k
        .call(
            "/saas",
            "not-the-basic-key",
            &new_instance(&unique("CSBAD"), &unique("bad"), "0"),
        )
        .await;
    assert_eq!(refused["resultCode"], "000001", "{refused}");

    // Debug traffic (testFlag 1) with events for debug traffic off (the default).
    let debug_id = unique("dbg");
    k.saas_expect(&new_instance(&unique("CSDBG"), &debug_id, "1"), "000000")
        .await;

    // refreshInstance: renewed, with the previous expiry.
    let r1 = unique("CSREN");
    k.saas_expect(&refresh_instance(&id, &r1, "20351124023618256"), "000000")
        .await;
    let renewed1 = fake
        .wait_for("instance.renewed for the first renewal", |e| {
            e.accepted() && e.kind() == "instance.renewed" && e.data()["orderId"] == r1.as_str()
        })
        .await;
    let d = renewed1.data();
    assert_eq!(renewed1.instance_id(), Some(id.as_str()));
    assert_eq!(renewed1.version(), Some(v0 + 1), "{d}");
    assert_eq!(d["scene"], "RENEWAL", "{d}");
    assert!(
        d["expireTime"].is_string(),
        "renewed carries expireTime: {d}"
    );
    assert!(
        d.get("previousExpireTime").is_some(),
        "renewed carries previousExpireTime: {d}"
    );
    k.saas_expect(&refresh_instance(&id, &r1, "20351124023618256"), "000000")
        .await;
    let r2 = unique("CSREN");
    k.saas_expect(&refresh_instance(&id, &r2, "20361124023618256"), "000000")
        .await;
    let renewed2 = fake
        .wait_for("instance.renewed for the second renewal", |e| {
            e.accepted() && e.kind() == "instance.renewed" && e.data()["orderId"] == r2.as_str()
        })
        .await;
    assert_eq!(renewed2.version(), Some(v0 + 2));
    assert_eq!(
        renewed2.data()["previousExpireTime"],
        renewed1.data()["expireTime"],
        "the second renewal's previous expiry is the first renewal's expiry"
    );
    assert_ne!(renewed2.data()["expireTime"], renewed1.data()["expireTime"]);

    // Freeze (twice), unfreeze.
    k.saas_expect(&update_status(&id, "FREEZE"), "000000").await;
    let frozen = fake.wait_for_event("instance.frozen", &id).await;
    assert_eq!(frozen.version(), Some(v0 + 3));
    k.saas_expect(&update_status(&id, "FREEZE"), "000000").await;
    k.saas_expect(&update_status(&id, "UNFREEZE"), "000000")
        .await;
    let unfrozen = fake.wait_for_event("instance.unfrozen", &id).await;
    assert_eq!(unfrozen.version(), Some(v0 + 4));

    // Upgrade (twice).
    let u = unique("CSUPG");
    k.saas_expect(&upgrade_instance(&id, &u), "000000").await;
    k.saas_expect(&upgrade_instance(&id, &u), "000000").await;
    let upgraded = fake.wait_for_event("instance.upgraded", &id).await;
    assert_eq!(upgraded.version(), Some(v0 + 5));
    assert_eq!(upgraded.data()["orderId"], u.as_str());

    // Release (twice).
    k.saas_expect(&release_instance(&id), "000000").await;
    k.saas_expect(&release_instance(&id), "000000").await;
    let released = fake.wait_for_event("instance.released", &id).await;
    assert_eq!(released.version(), Some(v0 + 6));

    // Exactly seven events were recorded, all delivered, and the product saw each once.
    let expected = [
        "instance.created",
        "instance.renewed",
        "instance.renewed",
        "instance.frozen",
        "instance.unfrozen",
        "instance.upgraded",
        "instance.released",
    ];
    let list = k
        .wait_list("every recorded event delivered", false, |l| {
            !l.is_empty() && l.iter().all(|e| e["state"] == "delivered")
        })
        .await;
    let mut types: Vec<&str> = list.iter().map(|e| e["type"].as_str().unwrap()).collect();
    types.sort_unstable();
    let mut want = expected.to_vec();
    want.sort_unstable();
    assert_eq!(types, want, "recorded events: {list:#?}");
    let received = fake.received_events();
    let mut got: Vec<&str> = received.iter().map(|e| e.kind()).collect();
    got.sort_unstable();
    assert_eq!(got, want, "received events:\n{}", fake.summary());
    for e in &received {
        assert_eq!(e.instance_id(), Some(id.as_str()));
        assert_eq!(e.data()["debug"], false);
        assert!(
            entry(&list, &e.webhook_id).is_some(),
            "{} is listed",
            e.webhook_id
        );
    }
    let mut versions: Vec<u64> = received.iter().map(|e| e.version().unwrap()).collect();
    versions.sort_unstable();
    assert_eq!(versions, (v0..v0 + 7).collect::<Vec<_>>());
    assert!(instance_events(&fake, &debug_id).is_empty());
    fake.assert_verified();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lifecycle_events_sqlite() {
    lifecycle_events(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lifecycle_events_dynamodb() {
    let Some(backend) = Backend::dynamodb().await else {
        return;
    };
    lifecycle_events(backend.clone()).await;
    backend.assert_geminidb_subset();
}

/// With events for debug traffic on, a debug newInstance emits instance.created with
/// `data.debug = true`; production traffic still says `false`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn debug_traffic_emits_events_only_when_enabled_sqlite() {
    let secrets = vec![new_secret()];
    let fake = FakeProduct::start(&secrets).await;
    let mut k = Koogate::new(
        "debug",
        &Backend::Sqlite,
        &secrets,
        &[
            ("KOOGATE_WEBHOOK_URL", &fake.events_url()),
            ("KOOGATE_EVENTS_DEBUG", "true"),
            ("KOOGATE_EVENTS_RETRY_SCHEDULE", FAST_RETRIES),
        ],
    );
    k.start();
    let debug_id = unique("dbg");
    k.saas_expect(&new_instance(&unique("CSDBG"), &debug_id, "1"), "000000")
        .await;
    let e = fake.wait_for_event("instance.created", &debug_id).await;
    assert_eq!(e.data()["debug"], true, "{}", e.body_text());
    let prod_id = unique("prod");
    k.saas_expect(&new_instance(&unique("CSPROD"), &prod_id, "0"), "000000")
        .await;
    let e = fake.wait_for_event("instance.created", &prod_id).await;
    assert_eq!(e.data()["debug"], false, "{}", e.body_text());
    fake.assert_verified();
}

/// The launch-version (fat) newInstance body: the event carries what it says about the product
/// and the buyer, never the buyer's contact data.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instance_created_from_a_fat_body_carries_the_order_details_and_no_contact_data_sqlite() {
    let secrets = vec![new_secret()];
    let fake = FakeProduct::start(&secrets).await;
    let mut k = Koogate::new(
        "fat",
        &Backend::Sqlite,
        &secrets,
        &[
            ("KOOGATE_WEBHOOK_URL", &fake.events_url()),
            ("KOOGATE_EVENTS_RETRY_SCHEDULE", FAST_RETRIES),
        ],
    );
    k.start();
    let id = unique("fat");
    let order = unique("CSFAT");
    let body = json!({"activity": "newInstance",
        "buyerInfo": {"customerId": "688055390f3049f283fe9f1aa90f1858", "customerName": "buyer_demo_01",
                      "userId": "1e86066c22754361933f607df834e4fe", "userName": "buyer_demo_01",
                      "mobilePhone": "13800000000", "email": "buyer@example.com"},
        "orderInfo": [{"businessId": id, "orderId": order, "trialFlag": "0", "orderAmount": 12.78,
                       "chargingMode": "PERIOD", "periodType": "month", "periodNumber": 5, "provisionType": 1,
                       "productInfo": [{"skuCode": "sku-fat-1", "productId": "OFFI788963615933718528", "linearValue": 20}],
                       "createTime": "20221024194509", "expireTime": "20321224194509",
                       "extendParams": [{"name": "emailDomainName", "value": "test.example.com"}]}],
        "testFlag": "0"});
    let a = k.saas_expect(&body, "000000").await;
    assert_eq!(a["instanceId"], id.as_str());
    let e = fake.wait_for_event("instance.created", &id).await;
    let d = e.data();
    assert_eq!(d["orderId"], order.as_str(), "{d}");
    assert_eq!(d["productId"], "OFFI788963615933718528", "{d}");
    assert_eq!(d["skuCode"], "sku-fat-1", "{d}");
    assert_eq!(d["customerId"], "688055390f3049f283fe9f1aa90f1858", "{d}");
    assert!(d["chargingMode"].is_string(), "{d}");
    assert!(d["expireTime"].is_string(), "{d}");
    let body = e.body_text();
    assert!(
        !body.contains("13800000000") && !body.contains("buyer@example.com"),
        "contact data in an event: {body}"
    );
    fake.assert_verified();
}

/// orderNotify → order.notified, kit tenantSync → tenant.synced, License 2.0 refreshLicenseCode
/// → license_code.changed; repeats of orderNotify and refreshLicenseCode emit nothing new.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn order_tenant_and_license_code_callbacks_emit_their_events_sqlite() {
    let secrets = vec![new_secret()];
    let fake = FakeProduct::start(&secrets).await;
    let mut k = Koogate::new(
        "others",
        &Backend::Sqlite,
        &secrets,
        &[
            ("KOOGATE_WEBHOOK_URL", &fake.events_url()),
            ("KOOGATE_EVENTS_RETRY_SCHEDULE", FAST_RETRIES),
        ],
    );
    k.start();

    // orderNotify (general key, /order-notify), twice.
    let order = unique("CSNOTE");
    let notify = json!({"activity": "orderNotify", "orderId": order,
                        "orderLineId": format!("{order}-000001"), "testFlag": "0"});
    for _ in 0..2 {
        let a = k.call("/order-notify", GENERAL, &notify).await;
        assert_eq!(a["resultCode"], "000000", "{a}");
    }
    let e = fake
        .wait_for("order.notified", |d| {
            d.accepted() && d.kind() == "order.notified"
        })
        .await;
    assert_eq!(e.data()["orderId"], order.as_str(), "{}", e.body_text());
    assert_eq!(
        e.data()["orderLineId"],
        format!("{order}-000001").as_str(),
        "{}",
        e.body_text()
    );
    assert_eq!(e.data()["debug"], false);

    // Kit V2 tenantSync (kit key in x-sign headers).
    let tenant = unique("tenant");
    let now_utc8 = koogate_protocol::timestamp::format_compact_ms(
        koogate_runtime::pipeline::now_ms() + 8 * 3600 * 1000,
    );
    let body = json!({"instanceId": "inst-kit-1", "orderId": unique("CSKIT"), "tenantId": tenant,
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
        &format!("{}/saas/produceAPI/v2/tenantSync", k.base()),
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
    let e = fake
        .wait_for("tenant.synced", |d| {
            d.accepted() && d.kind() == "tenant.synced"
        })
        .await;
    let d = e.data();
    assert_eq!(d["tenantId"], tenant.as_str(), "{d}");
    assert_eq!(d["tenantCode"], "acme", "{d}");
    assert_eq!(d["name"], "Acme Testing Ltd", "{d}");
    assert_eq!(d["domainName"], "https://idp.example.com", "{d}");

    // License 2.0 refreshLicenseCode (license key, /license), twice.
    let code = unique("LC");
    let lorder = unique("CSLIC");
    let refresh = json!({"activity": "refreshLicenseCode", "expireTime": "20330523201932",
        "license": code, "orderId": lorder, "orderLineId": format!("{lorder}-000001"),
        "productId": "OFFI000000000000000001", "scene": "RENEWAL", "testFlag": "0"});
    for _ in 0..2 {
        let a = k.call("/license", LICENSE, &refresh).await;
        assert_eq!(a["resultCode"], "000000", "{a}");
    }
    let e = fake
        .wait_for("license_code.changed", |d| {
            d.accepted() && d.kind() == "license_code.changed"
        })
        .await;
    let d = e.data();
    assert_eq!(d["license"], code.as_str(), "{d}");
    assert_eq!(d["activity"], "refreshLicenseCode", "{d}");
    assert_eq!(d["state"], "active", "{d}");
    assert!(d["expireTime"].is_string(), "{d}");
    assert_eq!(d["orderId"], lorder.as_str(), "{d}");

    let list = k
        .wait_list("every event delivered", false, |l| {
            l.len() >= 3 && l.iter().all(|e| e["state"] == "delivered")
        })
        .await;
    let count = |t: &str| list.iter().filter(|e| e["type"] == t).count();
    assert_eq!(count("order.notified"), 1, "{list:#?}");
    assert_eq!(count("license_code.changed"), 1, "{list:#?}");
    assert_eq!(count("tenant.synced"), 1, "{list:#?}");
    assert_eq!(fake.received_of_type("order.notified").len(), 1);
    assert_eq!(fake.received_of_type("license_code.changed").len(), 1);
    fake.assert_verified();
}

// =============================================================================================
// 3. Retries

/// 500, 500, 200: delivered on the third attempt with the same id and body; 410: failed after
/// one attempt; a receiver that is down: delivered once it is up again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_deliveries_are_retried_410_stops_and_a_receiver_back_up_gets_the_event_sqlite() {
    let secrets = vec![new_secret(), new_secret()];
    let fake = FakeProduct::start(&secrets).await;
    let mut k = Koogate::new(
        "retries",
        &Backend::Sqlite,
        &secrets,
        &[
            ("KOOGATE_WEBHOOK_URL", &fake.events_url()),
            ("KOOGATE_EVENTS_RETRY_SCHEDULE", FAST_RETRIES),
        ],
    );
    k.start();

    // 500 twice, then 200.
    let flaky = unique("flaky");
    fake.script(
        on_type_and_instance("instance.created", &flaky),
        Reply::json(500, json!({"error": "try later"})),
        Some(2),
    );
    k.saas_expect(&new_instance(&unique("CSFLAKY"), &flaky, "0"), "000000")
        .await;
    let ok = fake.wait_for_event("instance.created", &flaky).await;
    let attempts = fake.attempts_of(&ok.webhook_id);
    let statuses: Vec<u16> = attempts.iter().map(|a| a.answered).collect();
    assert_eq!(statuses, [500, 500, 200], "{}", fake.summary());
    for a in &attempts {
        assert_eq!(a.body, ok.body, "every attempt carries the identical body");
        assert_eq!(a.webhook_id, ok.webhook_id);
    }
    k.wait_list("the flaky event delivered after 3 attempts", false, |l| {
        entry(l, &ok.webhook_id).is_some_and(|e| e["state"] == "delivered" && e["attempts"] == 3)
    })
    .await;

    // 410 Gone: failed at once, never tried again.
    let gone = unique("gone");
    fake.script(on_instance(&gone), Reply::status(410), None);
    k.saas_expect(&new_instance(&unique("CSGONE"), &gone, "0"), "000000")
        .await;
    let first = fake
        .wait_for("the 410 attempt", |d| {
            d.instance_id() == Some(gone.as_str())
        })
        .await;
    let failed = k
        .wait_list("the 410 event listed as failed", true, |l| {
            entry(l, &first.webhook_id).is_some_and(|e| e["state"] == "failed")
        })
        .await;
    let e = entry(&failed, &first.webhook_id).unwrap();
    assert_eq!(e["type"], "instance.created", "{e}");
    assert_eq!(e["attempts"], 1, "{e}");
    assert!(
        e["last_error"].as_str().is_some_and(|s| s.contains("410")),
        "last_error names the 410: {e}"
    );
    assert!(
        failed.iter().all(|e| e["state"] == "failed"),
        "--failed lists failed events only: {failed:#?}"
    );
    // Several retry delays later, still one attempt.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        fake.attempts_of(&first.webhook_id).len(),
        1,
        "{}",
        fake.summary()
    );

    // Receiver down, then up.
    fake.down().await;
    let late = unique("late");
    k.saas_expect(&new_instance(&unique("CSDOWN"), &late, "0"), "000000")
        .await;
    let pending = k
        .wait_list("the event pending after a failed attempt", false, |l| {
            l.iter().any(|e| {
                e["type"] == "instance.created"
                    && e["state"] == "pending"
                    && e["attempts"].as_u64().is_some_and(|n| n >= 1)
            })
        })
        .await;
    let p = pending
        .iter()
        .find(|e| e["state"] == "pending")
        .unwrap()
        .clone();
    assert!(
        p["last_error"].as_str().is_some_and(|s| !s.is_empty()),
        "a failed attempt leaves last_error: {p}"
    );
    fake.up().await;
    let arrived = fake.wait_for_event("instance.created", &late).await;
    assert_eq!(arrived.webhook_id, p["id"].as_str().unwrap());
    k.wait_list("the late event delivered", false, |l| {
        entry(l, &arrived.webhook_id).is_some_and(|e| e["state"] == "delivered")
    })
    .await;
    fake.assert_verified();
}

/// A receiver failing past the give-up time: the event is `failed`, no longer attempted, and
/// `koogate events redeliver` delivers it with the same id and body once the receiver is fixed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_given_up_is_failed_and_redelivered_by_hand_sqlite() {
    let secrets = vec![new_secret()];
    let fake = FakeProduct::start(&secrets).await;
    let mut k = Koogate::new(
        "give-up",
        &Backend::Sqlite,
        &secrets,
        &[
            ("KOOGATE_WEBHOOK_URL", &fake.events_url()),
            ("KOOGATE_EVENTS_RETRY_SCHEDULE", FAST_RETRIES),
            ("KOOGATE_EVENTS_GIVE_UP_SECS", "2"),
        ],
    );
    k.start();
    fake.script(any(), Reply::status(500), None);
    let id = unique("giveup");
    k.saas_expect(&new_instance(&unique("CSGIVE"), &id, "0"), "000000")
        .await;
    let first = fake
        .wait_for("a first attempt", |d| d.instance_id() == Some(id.as_str()))
        .await;
    let failed = k
        .wait_list("the event given up", true, |l| {
            entry(l, &first.webhook_id).is_some_and(|e| e["state"] == "failed")
        })
        .await;
    assert_eq!(
        entry(&failed, &first.webhook_id).unwrap()["type"],
        "instance.created"
    );
    let before = fake.attempts_of(&first.webhook_id).len();
    assert!(before >= 1);
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        fake.attempts_of(&first.webhook_id).len(),
        before,
        "a failed event is not attempted again by itself: {}",
        fake.summary()
    );

    fake.clear_script();
    let out = k.cli(&["events", "redeliver", &first.webhook_id]).await;
    assert!(
        out.status.success(),
        "koogate events redeliver: {}",
        text(&out)
    );
    let ok = fake.wait_for_event("instance.created", &id).await;
    assert_eq!(ok.webhook_id, first.webhook_id);
    assert_eq!(ok.body, first.body, "redelivered with the identical body");
    k.wait_list("the redelivered event delivered", false, |l| {
        entry(l, &first.webhook_id).is_some_and(|e| e["state"] == "delivered")
    })
    .await;
    assert!(k
        .events_list(true)
        .await
        .iter()
        .all(|e| e["id"] != first.webhook_id.as_str()));
    fake.assert_verified();
}

// =============================================================================================
// 4. Crash

/// One newInstance answered while the receiver is down, a burst of them in flight, then kill -9.
/// Restarted with the receiver up (and a retry delay longer than the wait, so only the restart
/// can deliver), every committed instance's instance.created arrives exactly once per
/// webhook-id, with one webhook-id per instance.
async fn crash_with_pending_events(backend: Backend, burst: usize) {
    let secrets = vec![new_secret()];
    let fake = FakeProduct::start(&secrets).await;
    fake.down().await;
    let mut k = Koogate::new(
        "crash",
        &backend,
        &secrets,
        &[
            ("KOOGATE_WEBHOOK_URL", &fake.events_url()),
            ("KOOGATE_EVENTS_RETRY_SCHEDULE", "120"),
            ("KOOGATE_REQUEST_BUDGET_MS", "2000"),
        ],
    );
    k.start();

    let first = unique("crash0");
    k.saas_expect(&new_instance(&unique("CSCRASH"), &first, "0"), "000000")
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await;

    // A burst in flight when the process dies.
    let orders: Vec<(String, String)> = (0..burst)
        .map(|i| {
            (
                unique(&format!("CSBURST{i}")),
                unique(&format!("crash{}", i + 1)),
            )
        })
        .collect();
    let base = k.base();
    let tasks: Vec<_> = orders
        .iter()
        .cloned()
        .map(|(order, business)| {
            let base = base.clone();
            tokio::spawn(async move {
                let body = new_instance(&order, &business, "0").to_string();
                let url = format!("{base}/saas?{}", signed_query(BASIC, body.as_bytes()));
                http_request("POST", &url, &[], body.into_bytes()).await
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(30)).await;
    k.kill();
    for t in tasks {
        let _ = t.await;
    }

    fake.up().await;
    k.start();
    // The marketplace resends every order of the burst until it is answered 000000.
    let mut ids = vec![first.clone()];
    for (order, _first_business) in &orders {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let a = k.saas(&new_instance(order, &unique("retry"), "0")).await;
            match a["resultCode"].as_str() {
                Some("000000") => {
                    // The burst's businessId when its delivery reached the process before the
                    // kill, the resend's otherwise.
                    ids.push(a["instanceId"].as_str().unwrap().to_string());
                    break;
                }
                Some("000004") => {
                    assert!(
                        Instant::now() < deadline,
                        "{order} locked long after the lease"
                    );
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                _ => panic!("{order}: {a}"),
            }
        }
    }
    for id in &ids {
        fake.wait_for_event("instance.created", id).await;
    }
    // Settle, then count: one instance.created webhook-id per instance, nothing else.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let attempts = fake.event_attempts();
    for id in &ids {
        let distinct: std::collections::BTreeSet<&str> = attempts
            .iter()
            .filter(|d| d.kind() == "instance.created" && d.instance_id() == Some(id.as_str()))
            .map(|d| d.webhook_id.as_str())
            .collect();
        assert_eq!(distinct.len(), 1, "{id}: instance.created ids {distinct:?}");
    }
    let received = fake.received_events();
    assert_eq!(received.len(), ids.len(), "received:\n{}", fake.summary());
    assert!(received.iter().all(|e| e.kind() == "instance.created"));
    let list = k
        .wait_list("every event delivered after the restart", false, |l| {
            l.len() >= ids.len() && l.iter().all(|e| e["state"] == "delivered")
        })
        .await;
    assert_eq!(list.len(), ids.len(), "{list:#?}");
    fake.assert_verified();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_committed_before_a_kill_are_delivered_after_the_restart_sqlite() {
    crash_with_pending_events(Backend::Sqlite, 20).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_committed_before_a_kill_are_delivered_after_the_restart_dynamodb() {
    let Some(backend) = Backend::dynamodb().await else {
        return;
    };
    crash_with_pending_events(backend.clone(), 8).await;
    backend.assert_geminidb_subset();
}

// =============================================================================================
// 5. Provisioning requests

/// A deployment whose provisioner is the product's webhook, with a short request budget.
async fn provisioning(label: &str) -> (FakeProduct, Koogate) {
    let secrets = vec![new_secret(), new_secret()];
    let fake = FakeProduct::start(&secrets).await;
    let mut k = Koogate::new(
        label,
        &Backend::Sqlite,
        &secrets,
        &[
            ("KOOGATE_WEBHOOK_URL", &fake.events_url()),
            ("KOOGATE_PROVISIONER", "webhook"),
            ("KOOGATE_PROVISION_URL", &fake.provision_url()),
            ("KOOGATE_EVENTS_RETRY_SCHEDULE", FAST_RETRIES),
            ("KOOGATE_REQUEST_BUDGET_MS", "1500"),
        ],
    );
    k.start();
    (fake, k)
}

fn provision_requests_for(fake: &FakeProduct, id: &str) -> Vec<Delivery> {
    fake.provision_requests()
        .into_iter()
        .filter(|d| d.kind() == "instance.provision" && d.instance_id() == Some(id))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provisioning_answered_200_gives_the_products_app_info_sqlite() {
    let (fake, k) = provisioning("prov-200").await;
    let id = unique("p200");
    let order = unique("CSP200");
    let app_info = product_app_info(&id);
    fake.script(
        on_type_and_instance("instance.provision", &id),
        Reply::json(200, json!({"appInfo": app_info})),
        None,
    );
    let a = k
        .saas_expect(&new_instance(&order, &id, "0"), "000000")
        .await;
    assert_eq!(a["instanceId"], id.as_str());
    let reqs = provision_requests_for(&fake, &id);
    assert_eq!(reqs.len(), 1, "{}", fake.summary());
    let r = &reqs[0];
    assert_eq!(r.webhook_id, format!("prov_{id}"));
    assert_eq!(r.data()["orderId"], order.as_str(), "{}", r.body_text());
    assert_eq!(
        r.data()["orderLineId"],
        format!("{order}-000001").as_str(),
        "{}",
        r.body_text()
    );

    let q = k.saas_expect(&query_instance(&id), "000000").await;
    assert_eq!(q["info"][0]["instanceId"], id.as_str(), "{q}");
    assert_app_info_eq(&q["info"][0]["appInfo"], &app_info);

    // A resend of the same order is answered from the stored answer.
    let again = k
        .saas_expect(&new_instance(&order, &unique("resend"), "0"), "000000")
        .await;
    assert_eq!(again["instanceId"], id.as_str());
    assert_eq!(
        provision_requests_for(&fake, &id).len(),
        1,
        "{}",
        fake.summary()
    );

    // instance.created, with the product's appInfo and no password (the product made it).
    let e = fake.wait_for_event("instance.created", &id).await;
    let info = &e.data()["appInfo"];
    assert_eq!(
        info["frontEndUrl"],
        app_info["frontEndUrl"],
        "{}",
        e.body_text()
    );
    assert!(
        info.get("password").is_none_or(Value::is_null),
        "no password in the event when the product created the account: {}",
        e.body_text()
    );

    // Debug traffic is never sent to the product.
    let debug_id = unique("pdbg");
    k.saas_expect(&new_instance(&unique("CSPDBG"), &debug_id, "1"), "000000")
        .await;
    assert!(provision_requests_for(&fake, &debug_id).is_empty());
    fake.assert_verified();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provisioning_answered_202_is_completed_through_the_product_api_sqlite() {
    let (fake, k) = provisioning("prov-202").await;
    let id = unique("p202");
    let order = unique("CSP202");
    fake.script(
        on_type_and_instance("instance.provision", &id),
        Reply::status(202),
        None,
    );
    let a = k
        .saas_expect(&new_instance(&order, &id, "0"), "000004")
        .await;
    assert_eq!(a["instanceId"], id.as_str());
    k.saas_expect(&query_instance(&id), "000004").await;
    let got = k.api("GET", &format!("/isv/v1/instances/{id}"), None).await;
    assert_eq!(got.status, 200, "{}", got.text);
    assert_eq!(got.json["state"], "provisioning", "{}", got.text);

    // While unfinished, every delivery asks again with the same webhook-id.
    let again = k
        .saas_expect(&new_instance(&order, &unique("resend"), "0"), "000004")
        .await;
    assert_eq!(again["instanceId"], id.as_str());
    let reqs = provision_requests_for(&fake, &id);
    assert_eq!(reqs.len(), 2, "{}", fake.summary());
    assert!(reqs.iter().all(|r| r.webhook_id == format!("prov_{id}")));

    let app_info = product_app_info(&id);
    let path = format!("/isv/v1/instances/{id}/provisioned");
    let done = k
        .api("POST", &path, Some(&json!({"appInfo": app_info})))
        .await;
    assert_eq!(done.status, 200, "{}", done.text);
    let q = k.saas_expect(&query_instance(&id), "000000").await;
    assert_app_info_eq(&q["info"][0]["appInfo"], &app_info);
    let later = k
        .saas_expect(&new_instance(&order, &unique("later"), "0"), "000000")
        .await;
    assert_eq!(later["instanceId"], id.as_str());
    assert_eq!(
        provision_requests_for(&fake, &id).len(),
        2,
        "not asked again once completed"
    );
    let e = fake.wait_for_event("instance.created", &id).await;
    assert_eq!(e.data()["appInfo"]["frontEndUrl"], app_info["frontEndUrl"]);

    let same = k
        .api("POST", &path, Some(&json!({"appInfo": app_info})))
        .await;
    assert_eq!(same.status, 200, "the same completion again: {}", same.text);
    let mut other = app_info.clone();
    other["frontEndUrl"] = json!("https://elsewhere.example.com/");
    let conflict = k.api("POST", &path, Some(&json!({"appInfo": other}))).await;
    assert_eq!(conflict.status, 409, "{}", conflict.text);
    assert!(conflict.json["error"].is_string() && conflict.json["message"].is_string());
    let q = k.saas_expect(&query_instance(&id), "000000").await;
    assert_app_info_eq(&q["info"][0]["appInfo"], &app_info);

    let list = k
        .wait_list("instance.created delivered", false, |l| {
            l.iter()
                .any(|e| e["type"] == "instance.created" && e["state"] == "delivered")
        })
        .await;
    assert_eq!(
        list.iter()
            .filter(|e| e["type"] == "instance.created")
            .count(),
        1,
        "{list:#?}"
    );
    assert_eq!(fake.received_of_type("instance.created").len(), 1);
    fake.assert_verified();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provisioning_refused_with_409_answers_the_products_code_and_reason_sqlite() {
    let (fake, k) = provisioning("prov-409").await;
    let id = unique("p409");
    let order = unique("CSP409");
    let reason = "tenant quota exhausted for this region";
    fake.script(
        on_type_and_instance("instance.provision", &id),
        Reply::json(409, json!({"resultCode": "000102", "reason": reason})),
        Some(2),
    );
    let a = k
        .saas_expect(&new_instance(&order, &id, "0"), "000102")
        .await;
    assert!(
        a["resultMsg"].as_str().is_some_and(|m| m.contains(reason)),
        "the product's reason reaches the marketplace: {a}"
    );
    // A later delivery asks again (refused again), then one that the product accepts.
    k.saas_expect(&new_instance(&order, &unique("again"), "0"), "000102")
        .await;
    let app_info = product_app_info(&id);
    fake.script(
        on_type_and_instance("instance.provision", &id),
        Reply::json(200, json!({"appInfo": app_info})),
        None,
    );
    let ok = k
        .saas_expect(&new_instance(&order, &unique("third"), "0"), "000000")
        .await;
    assert_eq!(
        ok["instanceId"],
        id.as_str(),
        "the same instanceId after a refusal"
    );
    assert_eq!(
        provision_requests_for(&fake, &id).len(),
        3,
        "{}",
        fake.summary()
    );
    fake.wait_for_event("instance.created", &id).await;
    let list = k
        .wait_list("instance.created delivered", false, |l| {
            l.iter().all(|e| e["state"] == "delivered") && !l.is_empty()
        })
        .await;
    assert_eq!(list.len(), 1, "the refusals emitted nothing: {list:#?}");
    fake.assert_verified();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provisioning_answered_too_late_answers_000005_and_leaves_nothing_sqlite() {
    let (fake, k) = provisioning("prov-late").await;
    let id = unique("plate");
    let order = unique("CSPLATE");
    fake.script(
        on_type_and_instance("instance.provision", &id),
        Reply::json(200, json!({"appInfo": product_app_info(&id)})).after(Duration::from_secs(4)),
        Some(1),
    );
    k.saas_expect(&new_instance(&order, &id, "0"), "000005")
        .await;
    let reqs = provision_requests_for(&fake, &id);
    assert_eq!(reqs.len(), 1, "{}", fake.summary());
    assert_eq!(reqs[0].webhook_id, format!("prov_{id}"));
    k.saas_expect(&query_instance(&id), "000003").await;
    // After the product's late answer, still nothing.
    tokio::time::sleep(Duration::from_millis(4500)).await;
    k.saas_expect(&query_instance(&id), "000003").await;
    let got = k.api("GET", &format!("/isv/v1/instances/{id}"), None).await;
    assert_eq!(got.status, 404, "{}", got.text);
    assert!(
        k.events_list(false).await.is_empty(),
        "no event for an instance that does not exist"
    );

    // The marketplace's next delivery provisions it, with the same webhook-id.
    let app_info = product_app_info(&id);
    fake.script(
        on_type_and_instance("instance.provision", &id),
        Reply::json(200, json!({"appInfo": app_info})),
        None,
    );
    let ok = k
        .saas_expect(&new_instance(&order, &unique("retry"), "0"), "000000")
        .await;
    let new_id = ok["instanceId"].as_str().unwrap().to_string();
    let q = k.saas_expect(&query_instance(&new_id), "000000").await;
    assert_eq!(q["info"][0]["instanceId"], new_id.as_str());
    fake.wait_for_event("instance.created", &new_id).await;
    fake.assert_verified();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn change_checks_ask_the_product_sqlite() {
    let (fake, k) = provisioning("change-check").await;
    let id = unique("pchk");
    fake.script(
        on_type_and_instance("instance.provision", &id),
        Reply::json(200, json!({"appInfo": product_app_info(&id)})),
        None,
    );
    k.saas_expect(&new_instance(&unique("CSPCHK"), &id, "0"), "000000")
        .await;
    let check = json!({"activity": "changeInstanceCheck", "instanceId": id,
        "productInfo": {"productId": "OFFI461867333479178240", "skuCode": "sku-target-50",
                        "linearValue": 50, "productName": "Basic edition"},
        "testFlag": "0"});
    let reason = "current usage 80 users exceeds target 50";
    fake.script(
        on_type("instance.change_check"),
        Reply::status(200),
        Some(1),
    );
    fake.script(
        on_type("instance.change_check"),
        Reply::json(409, json!({"reason": reason})),
        Some(1),
    );
    fake.script(
        on_type("instance.change_check"),
        Reply::status(500),
        Some(1),
    );

    k.saas_expect(&check, "000000").await;
    let refused = k.saas_expect(&check, "000005").await;
    assert!(
        refused["resultMsg"]
            .as_str()
            .is_some_and(|m| m.contains(reason)),
        "{refused}"
    );
    k.saas_expect(&check, "000005").await;

    let checks: Vec<Delivery> = fake
        .provision_requests()
        .into_iter()
        .filter(|d| d.kind() == "instance.change_check")
        .collect();
    assert_eq!(checks.len(), 3, "{}", fake.summary());
    for c in &checks {
        assert!(c.webhook_id.starts_with("chk_"), "{}", c.webhook_id);
        assert_eq!(c.instance_id(), Some(id.as_str()), "{}", c.body_text());
        assert_eq!(
            c.data()["productInfo"]["skuCode"],
            "sku-target-50",
            "{}",
            c.body_text()
        );
    }
    fake.assert_verified();
}

// =============================================================================================
// 6. Product API

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_product_api_authenticates_reads_instances_and_records_usage_sqlite() {
    let secrets = vec![new_secret()];
    let fake = FakeProduct::start(&secrets).await;
    let mut k = Koogate::new(
        "api",
        &Backend::Sqlite,
        &secrets,
        &[
            ("KOOGATE_WEBHOOK_URL", &fake.events_url()),
            ("KOOGATE_EVENTS_RETRY_SCHEDULE", FAST_RETRIES),
        ],
    );
    k.start();
    let id = unique("api");
    let order = unique("CSAPI");
    k.saas_expect(&new_instance(&order, &id, "0"), "000000")
        .await;
    let path = format!("/isv/v1/instances/{id}");
    let base = k.base();

    // Authentication.
    let wrong = hex::encode(rand::random::<[u8; 32]>());
    let almost = format!("{}x", k.tokens[0]);
    for (label, token) in [
        ("no token", None),
        ("wrong token", Some(wrong.as_str())),
        ("token plus a byte", Some(almost.as_str())),
    ] {
        let a = product_api(&base, "GET", &path, token, None).await;
        assert_eq!(a.status, 401, "{label}: {}", a.text);
        assert!(
            a.json["error"].is_string() && a.json["message"].is_string(),
            "{label}: error JSON {}",
            a.text
        );
    }
    let basic_auth = format!("Basic {}", k.tokens[0]);
    let (status, _, _) = http_request(
        "GET",
        &format!("{base}{path}"),
        &[("Authorization", basic_auth.as_str())],
        Vec::new(),
    )
    .await
    .unwrap();
    assert_eq!(status, 401, "only Bearer authenticates");

    // Reads, with the current and the previous token.
    for token in &k.tokens {
        let a = product_api(&base, "GET", &path, Some(token), None).await;
        assert_eq!(a.status, 200, "{}", a.text);
        let j = &a.json;
        assert_eq!(j["instanceId"], id.as_str(), "{j}");
        assert_eq!(j["state"], "active", "{j}");
        assert!(j["version"].is_u64(), "{j}");
        assert!(j["appInfo"]["frontEndUrl"].is_string(), "{j}");
        assert!(
            j["appInfo"].get("password").is_none_or(Value::is_null),
            "no password through the Product API: {j}"
        );
        let orders = j["orders"]
            .as_array()
            .unwrap_or_else(|| panic!("orders: {j}"));
        assert!(
            Value::Array(orders.clone()).to_string().contains(&order),
            "the applied order is listed: {j}"
        );
    }
    let unknown = k
        .api(
            "GET",
            &format!("/isv/v1/instances/{}", unique("nobody")),
            None,
        )
        .await;
    assert_eq!(unknown.status, 404, "{}", unknown.text);
    assert!(unknown.json["error"].is_string() && unknown.json["message"].is_string());

    // Usage: one good record, one for an unknown instance, in order.
    let now = koogate_tests::fake_product::now_secs() * 1000;
    let top = now - now.rem_euclid(3_600_000);
    let record = |instance: &str| {
        json!({"instance_id": instance,
               "begin_time": koogate_tests::fake_product::usage_time(top - 7_200_000),
               "end_time": koogate_tests::fake_product::usage_time(top - 3_600_000),
               "usage_value": "12.5"})
    };
    let unauthorised = product_api(
        &base,
        "POST",
        "/isv/v1/usage",
        None,
        Some(&json!({"usage_records": [record(&id)]})),
    )
    .await;
    assert_eq!(unauthorised.status, 401, "{}", unauthorised.text);
    let body = json!({"usage_records": [record(&id), record(&unique("nobody"))]});
    let a = k.api("POST", "/isv/v1/usage", Some(&body)).await;
    assert_eq!(a.status, 200, "{}", a.text);
    let results = a.json["results"]
        .as_array()
        .unwrap_or_else(|| panic!("{}", a.text));
    assert_eq!(results.len(), 2, "{}", a.text);
    assert_eq!(results[0]["status"], "recorded", "{}", a.text);
    assert_eq!(results[1]["status"], "rejected", "{}", a.text);
    assert!(results[1]["reason"].is_string(), "{}", a.text);
    let again = k
        .api(
            "POST",
            "/isv/v1/usage",
            Some(&json!({"usage_records": [record(&id)]})),
        )
        .await;
    assert_eq!(
        again.json["results"][0]["status"], "already_recorded",
        "{}",
        again.text
    );

    // A state change shows in the next read, one version later.
    let v0 = k.api("GET", &path, None).await.json["version"]
        .as_u64()
        .unwrap();
    k.saas_expect(&update_status(&id, "FREEZE"), "000000").await;
    let frozen = k.api("GET", &path, None).await;
    assert_eq!(frozen.json["state"], "frozen", "{}", frozen.text);
    assert_eq!(frozen.json["version"], v0 + 1, "{}", frozen.text);
    fake.assert_verified();
}

// =============================================================================================
// 7. koogate events test

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_test_sends_a_ping_and_prints_the_receivers_answer_sqlite() {
    let secrets = vec![new_secret(), new_secret()];
    let fake = FakeProduct::start(&secrets).await;
    let k = Koogate::new(
        "ping",
        &Backend::Sqlite,
        &secrets,
        &[("KOOGATE_WEBHOOK_URL", &fake.events_url())],
    );
    let marker = unique("pong");
    fake.script(
        on_type("ping"),
        Reply::json(200, json!({"pong": marker})),
        Some(1),
    );
    let out = k.cli(&["events", "test"]).await;
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    assert!(t.contains("200"), "prints the status: {t}");
    assert!(t.contains(&marker), "prints the receiver's body: {t}");
    let ping = fake.wait_for("a ping", |d| d.kind() == "ping").await;
    assert!(ping.webhook_id.starts_with("evt_"));
    assert!(ping.data()["message"]
        .as_str()
        .is_some_and(|m| !m.is_empty()));

    // A receiver answering 503: the command says so and fails.
    let marker = unique("broken");
    fake.script(
        on_type("ping"),
        Reply::json(503, json!({"down": marker})),
        Some(1),
    );
    let out = k.cli(&["events", "test"]).await;
    let t = text(&out);
    assert!(!out.status.success(), "a 503 is a failure: {t}");
    assert!(t.contains("503"), "prints the status: {t}");
    assert_eq!(fake.received_of_type("ping").len(), 1, "{}", fake.summary());
    fake.assert_verified();
}

// =============================================================================================
// The harness itself: the fake product rejects what it must and follows its script (so that a
// passing test above means koogate did it right, not that the fake looked away).

/// One raw HTTP/1.1 POST with exactly these headers; the answer's status.
async fn raw_post(
    port: u16,
    path: &str,
    headers: &[(&str, String)],
    body: &[u8],
) -> Result<u16, String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .map_err(|e| e.to_string())?;
    let mut req = format!("POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\nContent-Length: {}\r\n", body.len());
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    s.write_all(body).await.map_err(|e| e.to_string())?;
    let mut answer = Vec::new();
    s.read_to_end(&mut answer)
        .await
        .map_err(|e| e.to_string())?;
    let head = String::from_utf8_lossy(&answer);
    head.split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("no HTTP answer: {head:?}"))
}

fn signed_headers(secrets: &[String], id: &str, body: &[u8]) -> Vec<(&'static str, String)> {
    let ts = koogate_tests::fake_product::now_secs().to_string();
    let sigs: Vec<String> = secrets.iter().map(|s| sign(s, id, &ts, body)).collect();
    vec![
        ("content-type", "application/json".to_string()),
        ("webhook-id", id.to_string()),
        ("webhook-timestamp", ts),
        ("webhook-signature", sigs.join(" ")),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fake_product_verifies_deliveries_and_follows_its_script() {
    let secrets = vec![new_secret(), new_secret()];
    let fake = FakeProduct::start(&secrets).await;
    let port = fake.port();
    let ts_ms = koogate_tests::fake_product::now_secs() * 1000;
    let stamp = {
        // RFC 3339 with ms, built from the usage-time helper (yyyyMMddTHHmmssZ).
        let u = koogate_tests::fake_product::usage_time(ts_ms);
        format!(
            "{}-{}-{}T{}:{}:{}.000Z",
            &u[0..4],
            &u[4..6],
            &u[6..8],
            &u[9..11],
            &u[11..13],
            &u[13..15]
        )
    };
    let body = json!({"type": "instance.frozen", "timestamp": stamp,
        "data": {"debug": false, "instanceId": "i-1", "version": 3}})
    .to_string();

    // A valid event, scripted 500 once then the default 200.
    fake.script(on_instance("i-1"), Reply::status(500), Some(1));
    let h = signed_headers(&secrets, "evt_1", body.as_bytes());
    assert_eq!(
        raw_post(port, "/events", &h, body.as_bytes()).await,
        Ok(500)
    );
    assert_eq!(
        raw_post(port, "/events", &h, body.as_bytes()).await,
        Ok(200)
    );
    assert_eq!(fake.received_events().len(), 1);
    assert_eq!(fake.attempts_of("evt_1").len(), 2);

    // Down: nothing listens; up again: received.
    fake.down().await;
    assert!(raw_post(port, "/events", &h, body.as_bytes())
        .await
        .is_err());
    fake.up().await;
    assert_eq!(
        raw_post(port, "/events", &h, body.as_bytes()).await,
        Ok(200)
    );
    fake.assert_verified();

    // Each of these is caught: a signature by one secret only, a tampered body, a content type
    // with parameters, a provision id that is not prov_<instanceId>, contact data in an event.
    let only_one = signed_headers(&secrets[..1], "evt_2", body.as_bytes());
    let mut wrong_type = signed_headers(&secrets, "evt_3", body.as_bytes());
    wrong_type[0].1 = "application/json; charset=utf-8".into();
    let tampered = body.replace("\"version\":3", "\"version\":4");
    let prov = json!({"type": "instance.provision", "timestamp": stamp,
        "data": {"instanceId": "i-9", "orderId": "CS1"}})
    .to_string();
    let contact = json!({"type": "instance.created", "timestamp": stamp,
        "data": {"debug": false, "instanceId": "i-1", "version": 1, "email": "a@b.example"}})
    .to_string();
    type Case<'a> = (&'a str, Vec<(&'a str, String)>, String);
    let cases: Vec<Case> = vec![
        ("/events", only_one, body.clone()),
        (
            "/events",
            signed_headers(&secrets, "evt_4", body.as_bytes()),
            tampered,
        ),
        ("/events", wrong_type, body.clone()),
        (
            "/provision",
            signed_headers(&secrets, "prov_i-8", prov.as_bytes()),
            prov.clone(),
        ),
        (
            "/events",
            signed_headers(&secrets, "evt_5", contact.as_bytes()),
            contact.clone(),
        ),
    ];
    for (path, headers, body) in cases {
        let fresh = FakeProduct::start(&secrets).await;
        raw_post(fresh.port(), path, &headers, body.as_bytes())
            .await
            .unwrap();
        let caught =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| fresh.assert_verified()));
        assert!(
            caught.is_err(),
            "the fake accepted a bad delivery to {path}: {body}"
        );
    }
}
