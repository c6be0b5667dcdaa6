//! Test support shared by the workspace tests: a local moto server for DynamoDB, a DynamoDB
//! store on it, apps wired to any store, signed API Gateway v2 events, and stores that fail.

#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod fake_marketplace;
pub mod fake_product;
pub mod geminidb;
pub mod request_counter;

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use koogate_protocol::basic_signature;
use koogate_runtime::config::Config;
use koogate_runtime::lambda::{inbound_from_event, ProxyResponse};
use koogate_runtime::routes::InterfaceType;
use koogate_runtime::secrets::Secrets;
use koogate_runtime::{pipeline, App};
use koogate_store::dynamodb::DynamoStore;
use koogate_store::{
    Acquire, AcquireOutcome, DirectoryItem, DirectoryWrite, Instance, Partition, Record, Store,
    StoreError, VersionedWrite,
};
use lambda_http::aws_lambda_events::apigw::ApiGatewayV2httpRequest;
use request_counter::RequestCounter;

/// The current basic key of test apps.
pub const KEY: &str = "test-access-key-123";
/// The previous basic key of test apps (rotation).
pub const PREVIOUS_KEY: &str = "previous-access-key-456";

/// A free TCP port on loopback.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Finds an executable on PATH.
pub fn which(name: &str) -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// A tool the tests need is missing: fail when `make test` demands it, otherwise say so loudly.
/// Returns `true` when the caller should skip.
pub fn missing_tool(tool: &str, require_var: &str) -> bool {
    if which(tool).is_some() {
        return false;
    }
    if std::env::var_os(require_var).is_some() {
        panic!(
            "{tool} is not on PATH; `make test` installs it into .venv from tests/requirements.txt"
        );
    }
    eprintln!("SKIPPED: {tool} is not on PATH (run `make test`, which installs it)");
    true
}

/// A moto server on a free loopback port, killed on drop.
pub struct MotoServer {
    child: Child,
    pub endpoint: String,
}

impl Drop for MotoServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl MotoServer {
    /// Starts moto (from the virtualenv that has `moto_server`), serving one request at a time
    /// (see `tests/moto_serial.py` for why), and waits until it accepts connections.
    pub fn start() -> MotoServer {
        let port = free_port();
        let moto = which("moto_server").expect("moto_server is on PATH");
        let python = moto.with_file_name("python");
        let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("moto_serial.py");
        let child = Command::new(python)
            .arg(script)
            .args(["127.0.0.1", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("moto_server could not be started");
        let endpoint = format!("http://127.0.0.1:{port}");
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "moto_server did not start in 30 s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        MotoServer { child, endpoint }
    }

    /// One moto server for the whole test binary (None when moto is not installed and not
    /// required).
    pub fn shared() -> Option<&'static MotoServer> {
        static MOTO: OnceLock<Option<MotoServer>> = OnceLock::new();
        MOTO.get_or_init(|| {
            (!missing_tool("moto_server", "KOOGATE_REQUIRE_MOTO")).then(MotoServer::start)
        })
        .as_ref()
    }

    /// A DynamoDB client for this server (static test credentials) that fails every request
    /// outside GeminiDB's documented subset (see [`geminidb`]; the violations are also kept in
    /// [`geminidb::shared_violations`]).
    pub fn client(&self) -> aws_sdk_dynamodb::Client {
        self.client_with(geminidb::Mode::Check)
    }

    /// Like [`MotoServer::client`], and the requests lose `ReturnValues` and
    /// `ReturnValuesOnConditionCheckFailure` on the way, as GeminiDB may ignore them: the store
    /// must then fall back to consistent reads.
    pub fn client_stripping(&self) -> aws_sdk_dynamodb::Client {
        self.client_with(geminidb::Mode::Strip)
    }

    fn client_with(&self, mode: geminidb::Mode) -> aws_sdk_dynamodb::Client {
        aws_sdk_dynamodb::Client::from_conf(self.client_builder(mode).build())
    }

    fn client_builder(&self, mode: geminidb::Mode) -> aws_sdk_dynamodb::config::Builder {
        aws_sdk_dynamodb::Config::builder()
            .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
            .region(aws_sdk_dynamodb::config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
                "test", "test", None, None, "moto",
            ))
            .endpoint_url(&self.endpoint)
            .http_client(aws_smithy_http_client::Builder::new().build_http())
            .interceptor(geminidb::Guard::new(mode, geminidb::shared_violations()))
    }

    /// A fresh table laid out like infra/template.yaml's, and a store on it.
    pub async fn store(&self) -> DynamoStore {
        self.store_on(self.client()).await
    }

    /// A store like [`MotoServer::store`] (or, with [`geminidb::Mode::Strip`],
    /// [`MotoServer::store_stripping`]), and a counter of the requests it sends.
    pub async fn counted_store(&self, mode: geminidb::Mode) -> (DynamoStore, RequestCounter) {
        let counter = RequestCounter::default();
        let client = aws_sdk_dynamodb::Client::from_conf(
            self.client_builder(mode)
                .interceptor(counter.clone())
                .build(),
        );
        (self.store_on(client).await, counter)
    }

    /// [`MotoServer::store`] on [`MotoServer::client_stripping`].
    pub async fn store_stripping(&self) -> DynamoStore {
        self.store_on(self.client_stripping()).await
    }

    async fn store_on(&self, client: aws_sdk_dynamodb::Client) -> DynamoStore {
        static SEQ: AtomicU64 = AtomicU64::new(0);
        let table = format!(
            "koogate-test-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        );
        create_table(&client, &table).await;
        DynamoStore::new(&client, table)
    }
}

/// Creates the koogate table as `koogate store init` does for GeminiDB (pk/sk, TTL on
/// expires_at, no billing parameter; on a [`MotoServer`] client the guard supplies the billing
/// mode moto needs).
pub async fn create_table(client: &aws_sdk_dynamodb::Client, table: &str) {
    koogate_store::dynamodb_init::init_table(
        client,
        &koogate_store::dynamodb_init::InitOptions {
            table: table.to_string(),
            billing: koogate_store::dynamodb_init::Billing::None,
            ttl: true,
        },
    )
    .await
    .expect("create the table on moto");
}

/// Test configuration: `overrides` as environment variables on top of a secrets file setting.
pub fn config(overrides: &[(&str, &str)]) -> Config {
    let mut vars: Vec<(String, String)> = vec![("KOOGATE_SECRETS_FILE".into(), "unused".into())];
    vars.extend(
        overrides
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string())),
    );
    Config::from_lookup("sqlite:unused", |k| {
        vars.iter()
            .rev()
            .find(|(name, _)| name == k)
            .map(|(_, v)| v.clone())
    })
    .unwrap()
}

/// The legacy (V1) key of test apps: the key of the spec's V1 vector.
pub const LEGACY_KEY: &str = "TestAccessKey123";
/// The License 2.0 interface key of test apps.
pub const LICENSE_KEY: &str = "license-interface-key-789";
/// The general interface key of test apps.
pub const GENERAL_KEY: &str = "general-interface-key-012";
/// The joint-operation kit key of test apps.
pub const KIT_KEY: &str = "kit-interface-key-345";
/// The merchant's RSA private key of test apps (3072 bit, PKCS#8), which decrypts clientSecret.
pub const MERCHANT_RSA_PEM: &str = include_str!("../fixtures/merchant_rsa_pkcs8.pem");

/// An app on `store` with the test keys (current and previous basic key, one key per other type).
pub fn app(store: Arc<dyn Store>, overrides: &[(&str, &str)]) -> Arc<App> {
    let secrets = Secrets::with_keys(&[
        (InterfaceType::Basic, &[KEY, PREVIOUS_KEY]),
        (InterfaceType::Legacy, &[LEGACY_KEY]),
        (InterfaceType::License, &[LICENSE_KEY]),
        (InterfaceType::General, &[GENERAL_KEY]),
        (InterfaceType::Kit, &[KIT_KEY]),
    ]);
    let mut secrets = secrets;
    secrets.rsa_private_key_pem = Some(MERCHANT_RSA_PEM.to_string());
    App::assemble(config(overrides), secrets, store)
}

/// Writes an active production instance `id` (pay-per-use), so that usage can be recorded for
/// it. Does nothing when it exists.
pub async fn put_usage_instance(store: &dyn Store, id: &str) {
    let inst = koogate_store::Instance {
        instance_id: id.into(),
        debug: false,
        state: koogate_store::InstanceState::Active,
        order_id: format!("order-{id}"),
        order_line_id: format!("order-{id}-000001"),
        product_id: None,
        sku_code: None,
        charging_mode: Some("ON_DEMAND".into()),
        expire_time: None,
        expire_time_ms: None,
        app_info: None,
        license: None,
        failure: None,
        orders: Vec::new(),
        created_at_ms: 0,
        updated_at_ms: 0,
        version: 1,
        order_details: None,
        event_ids: Vec::new(),
        customer_id: None,
    };
    store.put_instance(&inst, None, &[]).await.unwrap();
}

/// An app on a private in-memory SQLite store.
pub fn sqlite_app(overrides: &[(&str, &str)]) -> Arc<App> {
    app(
        Arc::new(koogate_store::sqlite::SqliteStore::in_memory().unwrap()),
        overrides,
    )
}

/// A fresh 64-hex-digit nonce, as the marketplace sends.
pub fn nonce() -> String {
    hex::encode_upper(rand::random::<[u8; 32]>())
}

/// The V2 basic query string for `body`, signed with `key` now.
pub fn signed_query(key: &str, body: &[u8]) -> String {
    let ts = pipeline::now_ms().to_string();
    let n = nonce();
    let sig = basic_signature::sign(key, &n, &ts, body).to_uppercase();
    format!("signature={sig}&timestamp={ts}&nonce={n}")
}

/// An API Gateway HTTP API (payload 2.0) event, from the JSON fixture shape API Gateway sends.
pub fn event(method: &str, raw_query: &str, body: &[u8]) -> ApiGatewayV2httpRequest {
    let fixture = include_str!("../fixtures/apigw-v2-post-saas.json");
    let mut v: serde_json::Value = serde_json::from_str(fixture).unwrap();
    v["rawQueryString"] = raw_query.into();
    v["requestContext"]["http"]["method"] = method.into();
    v["routeKey"] = format!("{method} /saas").into();
    v["body"] = String::from_utf8_lossy(body).into_owned().into();
    serde_json::from_value(v).unwrap()
}

/// An API Gateway event for a POST to `path` with extra `headers` (the kit interfaces sign in
/// headers, not in the query).
pub fn post_to(path: &str, headers: &[(String, String)], body: &[u8]) -> ApiGatewayV2httpRequest {
    let mut e = event("POST", "", body);
    e.route_key = Some(format!("POST {path}"));
    e.raw_path = Some(format!("/prod{path}"));
    for (k, v) in headers {
        e.headers.insert(
            lambda_http::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
            lambda_http::http::HeaderValue::from_str(v).unwrap(),
        );
    }
    e
}

/// The kit V2 headers for `body`, signed with `key` now over `signed` (the raw body, or its
/// canonical form as the marketplace's Java side produces it).
pub fn kit_headers(key: &str, signed: &[u8]) -> Vec<(String, String)> {
    let ts = pipeline::now_ms().to_string();
    let n = nonce();
    let sign = koogate_protocol::kit_signature::sign(key, &n, &ts, signed);
    vec![
        ("x-timestamp".into(), ts),
        ("x-nonce".into(), n),
        ("x-sign".into(), sign),
    ]
}

/// The kit V1 `authToken` header for `body` (which carries its own `timeStamp`).
pub fn v1_post_headers(key: &str, body: &[u8]) -> Vec<(String, String)> {
    vec![(
        "authToken".into(),
        koogate_protocol::v1_auth::sign_post(key, body).unwrap(),
    )]
}

/// A decoded proxy response.
#[derive(Debug, Clone)]
pub struct Answered {
    pub status: u16,
    pub content_type: String,
    pub body_sign: String,
    pub body: String,
    pub json: serde_json::Value,
}

impl Answered {
    pub fn code(&self) -> &str {
        self.json["resultCode"].as_str().unwrap_or("")
    }

    /// Whether `Body-Sign` is valid for `key` over the exact body bytes.
    pub fn signed_with(&self, key: &str) -> bool {
        koogate_protocol::body_sign::verify(key, self.body.as_bytes(), &self.body_sign).is_ok()
    }
}

/// Sends `event` through the Lambda adapter and the pipeline of POST /saas, in process. The
/// request id is made like `koogate serve` makes it (Lambda's comes with the event): the
/// benchmark counts no system call the function does not make.
pub async fn invoke(app: &Arc<App>, event: ApiGatewayV2httpRequest) -> Answered {
    invoke_as(app, event, &koogate_runtime::local::request_id()).await
}

/// Like [`invoke`] with a chosen Lambda request id (the idempotency lock owner).
pub async fn invoke_as(
    app: &Arc<App>,
    event: ApiGatewayV2httpRequest,
    request_id: &str,
) -> Answered {
    invoke_function(app, &koogate_saas::SaasFunction, event, request_id).await
}

/// Sends `event` through the Lambda adapter and the pipeline of any function, in process.
pub async fn invoke_function(
    app: &Arc<App>,
    function: &dyn koogate_runtime::Function,
    event: ApiGatewayV2httpRequest,
    request_id: &str,
) -> Answered {
    let deadline = pipeline::now_ms() + 5_000;
    let inbound = inbound_from_event(event, request_id.to_string(), deadline);
    let out = pipeline::process(app, function, &inbound).await;
    let resp: ProxyResponse = out.into();
    let json = serde_json::from_str(&resp.body).unwrap_or(serde_json::Value::Null);
    Answered {
        status: resp.status_code,
        content_type: resp
            .headers
            .get("Content-Type")
            .cloned()
            .unwrap_or_default(),
        body_sign: resp.headers.get("Body-Sign").cloned().unwrap_or_default(),
        body: resp.body,
        json,
    }
}

/// Signs `body` with the current key and sends it.
pub async fn post(app: &Arc<App>, body: &str) -> Answered {
    invoke(
        app,
        event("POST", &signed_query(KEY, body.as_bytes()), body.as_bytes()),
    )
    .await
}

/// What a [`FaultyStore`] does to the calls it intercepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Pass every call through.
    None,
    /// Fail calls after the first `n` pass.
    FailAfter(u64),
    /// Hang (never answer) calls after the first `n` pass.
    HangAfter(u64),
    /// Answer every call, each after this latency (a slow network or a throttled table).
    Latency(Duration),
}

/// A store that passes calls to `inner` until its fault triggers.
pub struct FaultyStore {
    pub inner: Arc<dyn Store>,
    pub fault: Fault,
    calls: AtomicU64,
}

impl FaultyStore {
    pub fn new(inner: Arc<dyn Store>, fault: Fault) -> Self {
        FaultyStore {
            inner,
            fault,
            calls: AtomicU64::new(0),
        }
    }

    async fn gate(&self) -> Result<(), StoreError> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst);
        match self.fault {
            Fault::FailAfter(k) if n >= k => {
                Err(StoreError::Unavailable("injected failure".into()))
            }
            Fault::HangAfter(k) if n >= k => {
                std::future::pending::<()>().await;
                Ok(())
            }
            Fault::Latency(d) => {
                tokio::time::sleep(d).await;
                Ok(())
            }
            _ => Ok(()),
        }
    }
}

use koogate_store::{EventDraft, EventRecord};

#[async_trait]
impl Store for FaultyStore {
    async fn remember_nonce(
        &self,
        key: &str,
        now_s: i64,
        expires_at: i64,
    ) -> Result<bool, StoreError> {
        self.gate().await?;
        self.inner.remember_nonce(key, now_s, expires_at).await
    }
    async fn acquire(&self, req: &Acquire<'_>) -> Result<AcquireOutcome, StoreError> {
        self.gate().await?;
        self.inner.acquire(req).await
    }
    async fn complete(
        &self,
        key: &str,
        owner: &str,
        response: &str,
        code: &str,
        expires_at: Option<i64>,
    ) -> Result<bool, StoreError> {
        self.gate().await?;
        self.inner
            .complete(key, owner, response, code, expires_at)
            .await
    }
    async fn abandon(&self, key: &str, owner: &str) -> Result<bool, StoreError> {
        // Abandon is the clean-up after a failure: let it through so the lock is freed.
        self.inner.abandon(key, owner).await
    }
    async fn get_instance(&self, p: Partition, id: &str) -> Result<Option<Instance>, StoreError> {
        self.gate().await?;
        self.inner.get_instance(p, id).await
    }
    async fn get_instances(
        &self,
        p: Partition,
        ids: &[String],
    ) -> Result<Vec<Instance>, StoreError> {
        self.gate().await?;
        self.inner.get_instances(p, ids).await
    }
    async fn put_instance(
        &self,
        i: &Instance,
        v: Option<u64>,
        events: &[EventDraft],
    ) -> Result<VersionedWrite, StoreError> {
        self.gate().await?;
        self.inner.put_instance(i, v, events).await
    }
    async fn get_record(&self, key: &str) -> Result<Option<Record>, StoreError> {
        self.gate().await?;
        self.inner.get_record(key).await
    }
    async fn put_record(
        &self,
        key: &str,
        r: &Record,
        v: Option<u64>,
        events: &[EventDraft],
    ) -> Result<VersionedWrite, StoreError> {
        self.gate().await?;
        self.inner.put_record(key, r, v, events).await
    }
    async fn write_directory(
        &self,
        p: Partition,
        tenant_id: &str,
        writes: &[DirectoryWrite],
        events: &[EventDraft],
    ) -> Result<(), StoreError> {
        self.gate().await?;
        self.inner
            .write_directory(p, tenant_id, writes, events)
            .await
    }
    async fn get_directory_item(
        &self,
        p: Partition,
        tenant_id: &str,
        sk: &str,
    ) -> Result<Option<DirectoryItem>, StoreError> {
        self.gate().await?;
        self.inner.get_directory_item(p, tenant_id, sk).await
    }
    async fn list_directory(
        &self,
        p: Partition,
        tenant_id: &str,
        sk_prefix: &str,
    ) -> Result<Vec<DirectoryItem>, StoreError> {
        self.gate().await?;
        self.inner.list_directory(p, tenant_id, sk_prefix).await
    }

    // ---- usage metering
    async fn record_usage(
        &self,
        data: &koogate_store::UsageData,
    ) -> Result<koogate_store::UsageInsert, StoreError> {
        self.gate().await?;
        self.inner.record_usage(data).await
    }
    async fn claim_usage(
        &self,
        claim: &koogate_store::UsageClaim<'_>,
    ) -> Result<Vec<koogate_store::UsageRecord>, StoreError> {
        self.gate().await?;
        self.inner.claim_usage(claim).await
    }
    async fn settle_usage(
        &self,
        owner: &str,
        keys: &[koogate_store::UsageKey],
        settlement: &koogate_store::UsageSettlement,
    ) -> Result<usize, StoreError> {
        self.gate().await?;
        self.inner.settle_usage(owner, keys, settlement).await
    }
    async fn instance_usage(
        &self,
        instance_id: &str,
    ) -> Result<Vec<koogate_store::UsageRecord>, StoreError> {
        self.gate().await?;
        self.inner.instance_usage(instance_id).await
    }

    // ---- events
    async fn record_events(&self, events: &[EventDraft]) -> Result<(), StoreError> {
        self.gate().await?;
        self.inner.record_events(events).await
    }
    async fn due_events(&self, now_ms: i64, limit: usize) -> Result<Vec<EventRecord>, StoreError> {
        self.gate().await?;
        self.inner.due_events(now_ms, limit).await
    }
    async fn settle_event(
        &self,
        event: &EventRecord,
        settlement: &koogate_store::EventSettlement,
    ) -> Result<(), StoreError> {
        self.gate().await?;
        self.inner.settle_event(event, settlement).await
    }
    async fn get_event(&self, id: &str) -> Result<Option<EventRecord>, StoreError> {
        self.gate().await?;
        self.inner.get_event(id).await
    }
    async fn list_events(
        &self,
        query: &koogate_store::EventQuery,
    ) -> Result<Vec<EventRecord>, StoreError> {
        self.gate().await?;
        self.inner.list_events(query).await
    }

    async fn list_ids(
        &self,
        kind: koogate_store::Listing,
        partition: Partition,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<String>, StoreError> {
        self.gate().await?;
        self.inner.list_ids(kind, partition, after, limit).await
    }

    async fn requeue_usage(
        &self,
        current_sn: &str,
        replacement: &koogate_store::UsageData,
    ) -> Result<bool, StoreError> {
        self.gate().await?;
        self.inner.requeue_usage(current_sn, replacement).await
    }
    async fn usage_backlog(
        &self,
        due_end_time: &str,
        now_ms: i64,
    ) -> Result<koogate_store::UsageBacklog, StoreError> {
        self.gate().await?;
        self.inner.usage_backlog(due_end_time, now_ms).await
    }
}

/// Percent-encodes a query value the way the marketplace does (everything but unreserved).
pub fn percent_encode(s: &str) -> String {
    koogate_protocol::v1_auth::encode_component(s)
}

/// How the V1 authToken goes into the URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenInUrl {
    /// `%2B`, `%2F`, `%3D`.
    PercentEncoded,
    /// As Base64 is written: a raw `+` that form decoding would turn into a space.
    Raw,
}

/// A V1 GET query: `params` (activity included) plus `timeStamp` now, signed with `key`.
pub fn v1_query(key: &str, params: &[(&str, &str)], token: TokenInUrl) -> String {
    v1_query_at(
        key,
        params,
        token,
        &koogate_protocol::timestamp::format_compact_ms(pipeline::now_ms()),
    )
}

/// Like [`v1_query`] with a chosen `timeStamp`.
pub fn v1_query_at(
    key: &str,
    params: &[(&str, &str)],
    token: TokenInUrl,
    time_stamp: &str,
) -> String {
    let mut all: Vec<(String, String)> = params
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    all.push(("timeStamp".into(), time_stamp.to_string()));
    let auth = koogate_protocol::v1_auth::sign_get(key, &all);
    let mut q: Vec<String> = all
        .iter()
        .map(|(k, v)| format!("{k}={}", percent_encode(v)))
        .collect();
    q.push(match token {
        TokenInUrl::PercentEncoded => format!("authToken={}", percent_encode(&auth)),
        TokenInUrl::Raw => format!("authToken={auth}"),
    });
    q.join("&")
}

/// A GET event on `path` with `query`.
pub fn get_event(path: &str, query: &str) -> ApiGatewayV2httpRequest {
    let mut e = event("GET", query, b"");
    e.raw_path = Some(path.to_string());
    e.body = None;
    e
}

/// A signed POST event with `key` (V2 URL signature).
pub fn post_event(key: &str, body: &str) -> ApiGatewayV2httpRequest {
    event("POST", &signed_query(key, body.as_bytes()), body.as_bytes())
}

/// `target/debug/koogate`, which `make test` builds before the tests (`cargo build -p
/// koogate-cli`): the tests that run `koogate serve` or `koogate sim` as real processes use it.
/// `KOOGATE_BIN` overrides the path (a target directory shared by several checkouts).
pub fn koogate_bin() -> std::path::PathBuf {
    if let Some(bin) = std::env::var_os("KOOGATE_BIN") {
        return bin.into();
    }
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let bin = target.join("debug").join("koogate");
    assert!(
        bin.exists(),
        "{} is missing: `cargo build -p koogate-cli` (make test does it)",
        bin.display()
    );
    bin
}

/// A child process, killed and reaped when dropped (a failing test leaves no server behind).
pub struct KillOnDrop(pub Child);

impl Drop for KillOnDrop {
    /// Kills the child and, when it leads a process group (see [`in_own_group`]), every process
    /// of that group: `cargo lambda watch` runs the function as a grandchild that would
    /// otherwise outlive the test.
    fn drop(&mut self) {
        let pid = self.0.id();
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{pid}")])
            .stderr(Stdio::null())
            .status();
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Makes `cmd`'s process the leader of a new process group, so that [`KillOnDrop`] stops its
/// descendants too.
pub fn in_own_group(cmd: &mut Command) -> &mut Command {
    use std::os::unix::process::CommandExt;
    cmd.process_group(0)
}

/// A received HTTP answer: status, headers (lower-case names), body.
pub type HttpAnswer = (u16, Vec<(String, String)>, Vec<u8>);

/// One HTTP/1.1 request to an `http://host:port/path?query` URL over a new connection, with
/// `Content-Type: application/json;charset=utf8` and the extra `headers`.
pub async fn http_request(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> Result<HttpAnswer, String> {
    use http_body_util::{BodyExt, Full};
    let rest = url.strip_prefix("http://").ok_or("http:// URLs only")?;
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let stream = tokio::net::TcpStream::connect(authority)
        .await
        .map_err(|e| e.to_string())?;
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .map_err(|e| e.to_string())?;
    tokio::spawn(conn);
    let mut req = hyper::Request::builder()
        .method(method)
        .uri(if path.is_empty() { "/" } else { path })
        .header("Host", authority)
        .header("Content-Type", "application/json;charset=utf8");
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let req = req
        .body(Full::new(bytes::Bytes::from(body)))
        .map_err(|e| e.to_string())?;
    let resp = sender.send_request(req).await.map_err(|e| e.to_string())?;
    let status = resp.status().as_u16();
    let headers = resp
        .headers()
        .iter()
        .map(|(k, v)| (k.as_str().to_string(), v.to_str().unwrap_or("").to_string()))
        .collect();
    let body = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes()
        .to_vec();
    Ok((status, headers, body))
}

/// Starts the real `koogate serve` on 127.0.0.1:`port` with its own SQLite file in `dir`, the
/// secrets document `secrets` and the extra environment `env`, and waits until it accepts
/// connections.
pub fn spawn_serve(
    dir: &std::path::Path,
    secrets: &std::path::Path,
    port: u16,
    env: &[(&str, &str)],
) -> KillOnDrop {
    let mut cmd = Command::new(koogate_bin());
    cmd.args(["serve", "--addr", &format!("127.0.0.1:{port}")])
        .env("KOOGATE_SECRETS_FILE", secrets)
        .env(
            "KOOGATE_STORE",
            format!("sqlite:{}", dir.join("store.db").display()),
        )
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let server = KillOnDrop(cmd.spawn().unwrap());
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "koogate serve did not start"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    server
}
