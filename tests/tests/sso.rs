//! The joint-operation login end to end (docs/protocol.md (sso)): a browser (an HTTP client with a cookie jar,
//! following redirects) signs in through the koogate local server against a fake identity
//! provider serving `/api/v1/oauth2/token`, `/api/v1/oauth2/userinfo` and `/api/v1/logout` as
//! docs/protocol.md (sso) documents them, plus the sign-in step of the unified login page. Everything runs on
//! 127.0.0.1; the directory is seeded through `koogate_store::directory`, with a client secret
//! RSA-OAEP-encrypted in the test to a key generated here, whose PEM is in the test secrets.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex, OnceLock};

use base64::Engine as _;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use koogate_protocol::sso::{encode_component, query_value};
use koogate_runtime::local::{self, Router};
use koogate_runtime::secrets::Secrets;
use koogate_runtime::web::WebFunction;
use koogate_runtime::App;
use koogate_sso::{Settings, SsoFunction};
use koogate_store::directory::{Access, AppCredential, Directory, Entry, Tenant, User};
use koogate_store::sqlite::SqliteStore;
use koogate_store::{Partition, Store};
use rsa::pkcs8::{EncodePrivateKey, LineEnding};
use rsa::{Oaep, RsaPrivateKey, RsaPublicKey};
use tokio::net::{TcpListener, TcpStream};

const APP_ID: &str = "app-0001";
const CLIENT_ID: &str = "client-0001";
/// The plaintext client secret; the directory holds only its ciphertext.
const CLIENT_SECRET: &str = "plain-client-secret+/=中";
const TENANT: &str = "tenant-1";

// ------------------------------------------------------------------------------------------------
// The merchant's key pair and the encrypted client secret
// ------------------------------------------------------------------------------------------------

struct Keys {
    private_pem: String,
    public: RsaPublicKey,
}

/// One key pair per test binary (generation is the slow part).
fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| {
        let private = RsaPrivateKey::new(&mut rand::rngs::OsRng, 2048).unwrap();
        Keys {
            private_pem: private.to_pkcs8_pem(LineEnding::LF).unwrap().to_string(),
            public: RsaPublicKey::from(&private),
        }
    })
}

/// The clientSecret as the marketplace pushes it: Base64 RSA-OAEP (SHA-256, MGF1-SHA-1).
fn encrypted_secret() -> String {
    let ct = keys()
        .public
        .encrypt(
            &mut rand::rngs::OsRng,
            Oaep::new_with_mgf_hash::<sha2::Sha256, sha1::Sha1>(),
            CLIENT_SECRET.as_bytes(),
        )
        .unwrap();
    base64::engine::general_purpose::STANDARD.encode(ct)
}

// ------------------------------------------------------------------------------------------------
// The fake identity provider
// ------------------------------------------------------------------------------------------------

#[derive(Default)]
struct IdpState {
    /// Where the unified login page sends the browser back (koogate's callback).
    callback: String,
    next: u64,
    /// code → user name (single use).
    codes: HashMap<String, String>,
    /// access token → user name.
    access: HashMap<String, String>,
    /// user name → the one refresh token currently valid (rotated on every use).
    refresh: HashMap<String, String>,
    /// `expires_in` of issued access tokens.
    expires_in: i64,
    /// Answer every code exchange `invalid_grant`.
    reject_codes: bool,
    /// Answer every refresh `invalid_grant`.
    reject_refresh: bool,
    /// Every token call, for assertions: (grant_type, redirect_uri).
    token_calls: Vec<(String, Option<String>)>,
    refreshes: usize,
    logouts: Vec<Option<String>>,
    /// Client-authentication failures (must stay empty: the secret is sent decrypted).
    bad_client: usize,
}

#[derive(Clone)]
struct FakeIdp {
    base: String,
    state: Arc<Mutex<IdpState>>,
}

impl FakeIdp {
    async fn start() -> FakeIdp {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let state = Arc::new(Mutex::new(IdpState {
            expires_in: 7200,
            ..Default::default()
        }));
        let shared = Arc::clone(&state);
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let state = Arc::clone(&shared);
                tokio::spawn(async move {
                    let svc = service_fn(move |req| idp_handle(Arc::clone(&state), req));
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        FakeIdp { base, state }
    }

    fn with<T>(&self, f: impl FnOnce(&mut IdpState) -> T) -> T {
        f(&mut self.state.lock().unwrap())
    }
}

fn json_response(status: u16, body: serde_json::Value) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("Content-Type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap()
}

fn redirect_response(location: &str) -> Response<Full<Bytes>> {
    Response::builder()
        .status(302)
        .header("Location", location)
        .body(Full::new(Bytes::new()))
        .unwrap()
}

async fn idp_handle(
    state: Arc<Mutex<IdpState>>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let method = req.method().as_str().to_string();
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or("").to_string();
    let auth = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let content_type = req
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let body = req.into_body().collect().await.unwrap().to_bytes();
    let body = String::from_utf8_lossy(&body).into_owned();
    let mut s = state.lock().unwrap();
    let resp = match (method.as_str(), path.as_str()) {
        // The sign-in step of the unified login page: the user signs in as `user` of `tenant`,
        // and the page sends the browser to the registered callback with a code and the tenant
        // (docs/protocol.md, sso §3). It does not echo `state`.
        ("GET", "/unified-login/sign-in") => {
            let user = query_value(&query, "user").unwrap();
            let tenant = query_value(&query, "tenant").unwrap();
            s.next += 1;
            let code = format!("CODE-SECRET-{}", s.next);
            s.codes.insert(code.clone(), user);
            redirect_response(&format!(
                "{}?code={code}&tenant={}",
                s.callback,
                encode_component(&tenant)
            ))
        }
        ("POST", "/api/v1/oauth2/token") => {
            assert!(
                content_type.starts_with("application/x-www-form-urlencoded"),
                "token call with Content-Type {content_type:?}"
            );
            let field = |k: &str| query_value(&body, k);
            let grant = field("grant_type").unwrap_or_default();
            s.token_calls.push((grant.clone(), field("redirect_uri")));
            if field("client_id").as_deref() != Some(CLIENT_ID)
                || field("client_secret").as_deref() != Some(CLIENT_SECRET)
            {
                s.bad_client += 1;
                json_response(
                    401,
                    serde_json::json!({"error":"invalid_client","error_description":"Bad client credentials"}),
                )
            } else if grant == "authorization_code" {
                let user = field("code").and_then(|c| s.codes.remove(&c));
                match user {
                    Some(user) if !s.reject_codes => issue(&mut s, &user),
                    _ => json_response(
                        400,
                        serde_json::json!({"error":"invalid_grant","error_description":"Invalid authorization code"}),
                    ),
                }
            } else if grant == "refresh_token" {
                let presented = field("refresh_token").unwrap_or_default();
                let user = s
                    .refresh
                    .iter()
                    .find(|(_, t)| **t == presented)
                    .map(|(u, _)| u.clone());
                match user {
                    Some(user) if !s.reject_refresh => {
                        s.refreshes += 1;
                        issue(&mut s, &user)
                    }
                    _ => json_response(
                        400,
                        serde_json::json!({"error":"invalid_grant","error_description":"Invalid refresh token"}),
                    ),
                }
            } else {
                json_response(400, serde_json::json!({"error":"unsupported_grant_type"}))
            }
        }
        ("GET", "/api/v1/oauth2/userinfo") => {
            let token = auth
                .as_deref()
                .and_then(|a| a.strip_prefix("Bearer "))
                .unwrap_or("");
            match s.access.get(token) {
                Some(user) => json_response(
                    200,
                    serde_json::json!({
                        "id": format!("id-{user}"), "userId": format!("id-{user}"),
                        "userName": user, "name": format!("Name of {user}"),
                        "email": "someone@example.com", "mobile": "13800000000",
                        "role": "user", "organizationName": "R&D", "organizationCode": "org-1",
                        "projectName": "Tenant One", "tenant": TENANT,
                    }),
                ),
                None => json_response(
                    401,
                    serde_json::json!({"error":"unauthorized","error_description":"Full authentication is required to access this resource"}),
                ),
            }
        }
        ("GET", "/api/v1/logout") => {
            let target = query_value(&query, "redirect_url");
            s.logouts.push(target.clone());
            redirect_response(target.as_deref().unwrap_or("/unified-login/"))
        }
        _ => json_response(404, serde_json::json!({"error":"not_found"})),
    };
    Ok(resp)
}

fn issue(s: &mut IdpState, user: &str) -> Response<Full<Bytes>> {
    s.next += 1;
    let access = format!("AT-SECRET-{}", s.next);
    let refresh = format!("RT-SECRET-{}", s.next);
    s.access.insert(access.clone(), user.to_string());
    s.refresh.insert(user.to_string(), refresh.clone());
    json_response(
        200,
        serde_json::json!({"access_token": access, "token_type": "Bearer",
            "expires_in": s.expires_in, "scope": "get_user_info", "refresh_token": refresh}),
    )
}

// ------------------------------------------------------------------------------------------------
// koogate, on a private SQLite store
// ------------------------------------------------------------------------------------------------

struct Harness {
    idp: FakeIdp,
    koogate: String,
    store: Arc<dyn Store>,
}

impl Harness {
    async fn start() -> Harness {
        capture_logs();
        let idp = FakeIdp::start().await;
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let koogate = format!("http://{}", listener.local_addr().unwrap());
        idp.with(|s| s.callback = format!("{koogate}/sso/callback"));
        let vars: HashMap<&str, String> = HashMap::from([
            ("KOOGATE_SSO_APP_ID", APP_ID.to_string()),
            (
                "KOOGATE_SSO_LOGIN_PAGE",
                format!("{}/unified-login/#/portal-login", idp.base),
            ),
            ("KOOGATE_SSO_PUBLIC_URL", koogate.clone()),
            ("KOOGATE_SSO_RETURN_HOSTS", "app.example.com".to_string()),
            ("KOOGATE_SSO_ALLOW_HTTP_IDP", "true".to_string()),
        ]);
        let settings = Settings::from_lookup(|k| vars.get(k).cloned()).unwrap();
        let sso: Arc<dyn WebFunction> = Arc::new(SsoFunction::new(settings).unwrap());
        let store: Arc<dyn Store> = Arc::new(SqliteStore::in_memory().unwrap());
        let mut secrets = Secrets::default();
        secrets.rsa_private_key_pem = Some(keys().private_pem.clone());
        let app: Arc<App> = App::assemble(koogate_tests::config(&[]), secrets, Arc::clone(&store));
        tokio::spawn(local::serve(
            listener,
            app,
            Router::new(Vec::new()).with_web(vec![sso]),
        ));
        let h = Harness {
            idp,
            koogate,
            store,
        };
        h.seed_tenant(false).await;
        h.seed_user("alice", "admin", true).await;
        h
    }

    fn dir(&self) -> Directory<'_> {
        Directory::new(self.store.as_ref(), Partition::Production, TENANT)
    }

    async fn seed_tenant(&self, deleted: bool) {
        let tenant = Entry::Tenant(Tenant {
            tenant_id: TENANT.into(),
            tenant_code: "T1".into(),
            name: "Tenant One".into(),
            domain_name: self.idp.base.clone(),
            instance_id: "inst-1".into(),
            order_id: "order-1".into(),
            deleted,
            updated_at_ms: 1,
        });
        let app = Entry::App(AppCredential {
            tenant_id: TENANT.into(),
            app_id: APP_ID.into(),
            client_id: CLIENT_ID.into(),
            client_secret: encrypted_secret(),
            instance_id: "inst-1".into(),
            updated_at_ms: 1,
        });
        self.dir()
            .apply(&[tenant.put(), app.put()], &[])
            .await
            .unwrap();
    }

    async fn seed_user(&self, name: &str, role: &str, enable: bool) {
        let user = Entry::User(User {
            tenant_id: TENANT.into(),
            user_name: name.into(),
            name: format!("Directory {name}"),
            org_code: "org-1".into(),
            position: None,
            employee_code: None,
            employee_type: None,
            role: role.into(),
            enable,
            mobile: None,
            email: None,
            work_place: None,
            entry_date: None,
            sync_time: "1".into(),
            updated_at_ms: 1,
        });
        let access = Entry::Access(Access {
            user_name: name.into(),
            app_id: APP_ID.into(),
            granted_at_ms: 1,
        });
        self.dir()
            .apply(&[user.put(), access.put()], &[])
            .await
            .unwrap();
    }

    fn browser(&self) -> Browser {
        Browser::default()
    }

    /// The whole login of `user` (signing in at the fake login page as `tenant`), from
    /// `/sso/login?{login_query}`; returns the last answer.
    async fn login(&self, b: &mut Browser, login_query: &str, user: &str, tenant: &str) -> Hop {
        let start = b
            .get(&format!("{}/sso/login?{login_query}", self.koogate))
            .await;
        assert_eq!(start.status, 302, "{}", start.body);
        let page = start.location().unwrap();
        assert_login_page(&page, &self.idp.base);
        let sign_in = format!(
            "{}/unified-login/sign-in?user={}&tenant={}",
            self.idp.base,
            encode_component(user),
            encode_component(tenant)
        );
        b.follow(&sign_in).await
    }

    async fn session(&self, b: &mut Browser) -> Hop {
        b.get(&format!("{}/sso/session", self.koogate)).await
    }
}

/// The unified login page, per docs/protocol.md, sso §3: `ind=UNOP` and the appId after the `#` route.
fn assert_login_page(location: &str, idp_base: &str) {
    let (before, fragment) = location.split_once('#').expect("a # route");
    assert_eq!(before, format!("{idp_base}/unified-login/"));
    let (route, query) = fragment.split_once('?').unwrap();
    assert_eq!(route, "/portal-login");
    assert_eq!(query_value(query, "ind").as_deref(), Some("UNOP"));
    assert_eq!(query_value(query, "appId").as_deref(), Some(APP_ID));
}

// ------------------------------------------------------------------------------------------------
// Logs: every line of this test binary, to check that no secret reaches one
// ------------------------------------------------------------------------------------------------

fn log_buffer() -> &'static Arc<Mutex<Vec<u8>>> {
    static BUF: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    BUF.get_or_init(Arc::default)
}

struct LogWriter(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for LogWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(data);
        Ok(data.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Sends every log line of the process (all tests) to [`log_buffer`], once.
fn capture_logs() {
    static INIT: OnceLock<()> = OnceLock::new();
    INIT.get_or_init(|| {
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing_subscriber::filter::LevelFilter::INFO)
            .with_writer(|| LogWriter(Arc::clone(log_buffer())))
            .finish();
        tracing::subscriber::set_global_default(subscriber).unwrap();
    });
}

fn logs() -> String {
    String::from_utf8_lossy(&log_buffer().lock().unwrap()).into_owned()
}

// ------------------------------------------------------------------------------------------------
// The browser: cookies per host, redirects followed on 127.0.0.1
// ------------------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
struct Hop {
    url: String,
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Hop {
    fn header(&self, name: &str) -> Option<String> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    }

    fn set_cookies(&self) -> Vec<String> {
        self.headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case("set-cookie"))
            .map(|(_, v)| v.clone())
            .collect()
    }

    fn location(&self) -> Option<String> {
        self.header("location")
    }

    fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("{} answered non-JSON ({e}): {}", self.url, self.body))
    }
}

#[derive(Default)]
struct Browser {
    /// authority → cookie name → value.
    jar: HashMap<String, HashMap<String, String>>,
    /// Every URL requested, in order.
    visited: Vec<String>,
}

/// `http://host:port/path?q#f` → (authority, path and query); the fragment is not sent.
fn split_url(url: &str) -> (String, String) {
    let rest = url.strip_prefix("http://").expect("test URLs are http://");
    let rest = rest.split('#').next().unwrap();
    match rest.find('/') {
        Some(i) => (rest[..i].to_string(), rest[i..].to_string()),
        None => (rest.to_string(), "/".to_string()),
    }
}

impl Browser {
    fn cookie(&self, authority: &str, name: &str) -> Option<String> {
        self.jar.get(authority).and_then(|c| c.get(name)).cloned()
    }

    async fn get(&mut self, url: &str) -> Hop {
        self.visited.push(url.to_string());
        let (authority, path) = split_url(url);
        let stream = TcpStream::connect(&authority).await.unwrap();
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .unwrap();
        tokio::spawn(conn);
        let mut req = Request::get(path).header("Host", &authority);
        if let Some(cookies) = self.jar.get(&authority).filter(|c| !c.is_empty()) {
            let header: Vec<String> = cookies.iter().map(|(k, v)| format!("{k}={v}")).collect();
            req = req.header("Cookie", header.join("; "));
        }
        let resp = sender
            .send_request(req.body(Full::new(Bytes::new())).unwrap())
            .await
            .unwrap();
        let status = resp.status().as_u16();
        let headers: Vec<(String, String)> = resp
            .headers()
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap().to_string()))
            .collect();
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        let hop = Hop {
            url: url.to_string(),
            status,
            headers,
            body: String::from_utf8_lossy(&body).into_owned(),
        };
        for set in hop.set_cookies() {
            let first = set.split(';').next().unwrap();
            let (name, value) = first.split_once('=').unwrap();
            let jar = self.jar.entry(authority.clone()).or_default();
            if set.contains("Max-Age=0") {
                jar.remove(name);
            } else {
                jar.insert(name.to_string(), value.to_string());
            }
        }
        hop
    }

    /// Follows redirects while they stay on 127.0.0.1 and lead to a login or identity route;
    /// returns the first answer that is not such a redirect.
    async fn follow(&mut self, url: &str) -> Hop {
        let mut url = url.to_string();
        for _ in 0..10 {
            let hop = self.get(&url).await;
            let Some(next) = hop.location().filter(|_| hop.status == 302) else {
                return hop;
            };
            let next = if next.starts_with('/') {
                format!("http://{}{next}", split_url(&url).0)
            } else {
                next
            };
            let followable = next.starts_with("http://127.0.0.1:")
                && ["/sso/", "/api/v1/", "/unified-login/sign-in"]
                    .iter()
                    .any(|p| split_url(&next).1.starts_with(p));
            if !followable {
                return hop;
            }
            url = next;
        }
        panic!("redirect loop: {:?}", self.visited);
    }
}

// ------------------------------------------------------------------------------------------------
// The tests
// ------------------------------------------------------------------------------------------------

#[tokio::test]
async fn login_opens_a_session_with_the_directory_user_and_role() {
    let h = Harness::start().await;
    let mut b = h.browser();
    let end = h
        .login(
            &mut b,
            "tenant=tenant-1&return_to=%2Fdashboard%3Fx%3D1",
            "alice",
            TENANT,
        )
        .await;
    assert_eq!(end.status, 302, "{}", end.body);
    assert_eq!(end.location().as_deref(), Some("/dashboard?x=1"));
    let session_cookie = end
        .set_cookies()
        .into_iter()
        .find(|c| c.starts_with("__Host-koogate_session="))
        .expect("a session cookie");
    for attr in ["HttpOnly", "Secure", "SameSite=Lax", "Path=/"] {
        assert!(session_cookie.contains(attr), "{session_cookie}");
    }

    let who = h.session(&mut b).await;
    assert_eq!(who.status, 200, "{}", who.body);
    let who = who.json();
    assert_eq!(who["tenant"], TENANT);
    assert_eq!(who["userName"], "alice");
    assert_eq!(who["name"], "Directory alice");
    assert_eq!(who["role"], "admin");
    assert_eq!(who["admin"], true);

    // The token call carried the decrypted secret (the fake refuses anything else) and the
    // registered callback.
    h.idp.with(|s| {
        assert_eq!(s.bad_client, 0);
        assert_eq!(
            s.token_calls,
            vec![(
                "authorization_code".to_string(),
                Some(format!("{}/sso/callback", h.koogate))
            )]
        );
    });
    // A browser without the cookie is not signed in.
    let other = Browser::default()
        .get(&format!("{}/sso/session", h.koogate))
        .await;
    assert_eq!(other.status, 401);
    assert_eq!(other.json()["error"], "not_signed_in");
}

#[tokio::test]
async fn invalid_grant_from_the_identity_provider_is_a_502_and_no_session() {
    let h = Harness::start().await;
    h.idp.with(|s| s.reject_codes = true);
    let mut b = h.browser();
    let end = h.login(&mut b, "tenant=tenant-1", "alice", TENANT).await;
    assert_eq!(end.status, 502, "{}", end.body);
    assert!(end.body.contains("invalid_grant"), "{}", end.body);
    assert_eq!(h.session(&mut b).await.status, 401);
}

#[tokio::test]
async fn an_unknown_tenant_is_refused() {
    let h = Harness::start().await;
    let mut b = h.browser();
    let end = h.login(&mut b, "", "alice", "tenant-unknown").await;
    assert_eq!(end.status, 403, "{}", end.body);
    assert!(end.body.contains("not known"), "{}", end.body);
    assert!(h.idp.with(|s| s.token_calls.is_empty()));
    assert_eq!(h.session(&mut b).await.status, 401);
}

#[tokio::test]
async fn a_disabled_user_is_refused() {
    let h = Harness::start().await;
    h.seed_user("bob", "user", false).await;
    let mut b = h.browser();
    let end = h.login(&mut b, "tenant=tenant-1", "bob", TENANT).await;
    assert_eq!(end.status, 403, "{}", end.body);
    assert!(end.body.contains("disabled"), "{}", end.body);
    assert_eq!(h.session(&mut b).await.status, 401);
}

#[tokio::test]
async fn a_user_missing_from_the_directory_is_refused() {
    let h = Harness::start().await;
    let mut b = h.browser();
    let end = h.login(&mut b, "tenant=tenant-1", "mallory", TENANT).await;
    assert_eq!(end.status, 403, "{}", end.body);
    assert_eq!(h.session(&mut b).await.status, 401);
}

#[tokio::test]
async fn a_deleted_tenant_is_refused() {
    let h = Harness::start().await;
    h.seed_tenant(true).await;
    let mut b = h.browser();
    let end = h.login(&mut b, "tenant=tenant-1", "alice", TENANT).await;
    assert_eq!(end.status, 403, "{}", end.body);
    assert!(end.body.contains("deleted"), "{}", end.body);
}

#[tokio::test]
async fn a_wrong_or_missing_state_is_refused() {
    let h = Harness::start().await;
    let mut b = h.browser();
    let start = b
        .get(&format!("{}/sso/login?tenant=tenant-1", h.koogate))
        .await;
    assert_eq!(start.status, 302);
    // A code minted for the attacker, delivered with a state that is not this browser's.
    let code = h.idp.with(|s| {
        s.codes.insert("attacker-code".into(), "alice".into());
        "attacker-code"
    });
    let forged = b
        .get(&format!(
            "{}/sso/callback?code={code}&tenant={TENANT}&state=forged",
            h.koogate
        ))
        .await;
    assert_eq!(forged.status, 400, "{}", forged.body);
    assert!(forged.body.contains("state"), "{}", forged.body);
    // A browser that never started a login here.
    let mut stranger = Browser::default();
    let cold = stranger
        .get(&format!(
            "{}/sso/callback?code={code}&tenant={TENANT}",
            h.koogate
        ))
        .await;
    assert_eq!(cold.status, 400, "{}", cold.body);
    assert!(h.idp.with(|s| s.token_calls.is_empty()));
    assert_eq!(h.session(&mut b).await.status, 401);
    assert_eq!(h.session(&mut stranger).await.status, 401);

    // The right state, echoed, passes; the same login cannot be finished twice.
    let state = b
        .cookie(&split_url(&h.koogate).0, "__Host-koogate_sso_state")
        .unwrap();
    let ok = b
        .get(&format!(
            "{}/sso/callback?code={code}&tenant={TENANT}&state={state}",
            h.koogate
        ))
        .await;
    assert_eq!(ok.status, 302, "{}", ok.body);
    assert_eq!(h.session(&mut b).await.status, 200);
}

#[tokio::test]
async fn return_targets_outside_the_allow_list_are_refused() {
    let h = Harness::start().await;
    let mut b = h.browser();
    for evil in [
        "https://evil.example/",
        "//evil.example/x",
        "/\\evil.example",
        "https://app.example.com@evil.example/",
        "javascript:alert(1)",
    ] {
        let hop = b
            .get(&format!(
                "{}/sso/login?tenant=tenant-1&return_to={}",
                h.koogate,
                encode_component(evil)
            ))
            .await;
        assert_eq!(hop.status, 400, "{evil}: {}", hop.body);
        assert!(hop.location().is_none());
    }
    let logout = b
        .get(&format!(
            "{}/sso/logout?return_to={}",
            h.koogate,
            encode_component("https://evil.example/")
        ))
        .await;
    assert_eq!(logout.status, 400);
    // An allow-listed host is a valid target.
    let end = h
        .login(
            &mut b,
            "tenant=tenant-1&return_to=https%3A%2F%2Fapp.example.com%2Fhome",
            "alice",
            TENANT,
        )
        .await;
    assert_eq!(
        end.location().as_deref(),
        Some("https://app.example.com/home")
    );
}

#[tokio::test]
async fn an_expiring_access_token_is_refreshed_and_the_new_refresh_token_kept() {
    let h = Harness::start().await;
    // Tokens that are already inside the refresh margin when issued.
    h.idp.with(|s| s.expires_in = 0);
    let mut b = h.browser();
    let end = h.login(&mut b, "tenant=tenant-1", "alice", TENANT).await;
    assert_eq!(end.status, 302, "{}", end.body);
    for round in 1..=3 {
        let who = h.session(&mut b).await;
        assert_eq!(who.status, 200, "round {round}: {}", who.body);
        assert_eq!(who.json()["userName"], "alice");
        // The fake accepts only the latest refresh token: each round used the one stored by the
        // round before.
        assert_eq!(h.idp.with(|s| s.refreshes), round);
    }
    // A refused refresh ends the session.
    h.idp.with(|s| s.reject_refresh = true);
    let who = h.session(&mut b).await;
    assert_eq!(who.status, 401, "{}", who.body);
    h.idp.with(|s| s.reject_refresh = false);
    assert_eq!(h.session(&mut b).await.status, 401);
}

#[tokio::test]
async fn a_fresh_access_token_is_not_refreshed() {
    let h = Harness::start().await;
    let mut b = h.browser();
    h.login(&mut b, "tenant=tenant-1", "alice", TENANT).await;
    assert_eq!(h.session(&mut b).await.status, 200);
    assert_eq!(h.idp.with(|s| s.refreshes), 0);
}

#[tokio::test]
async fn directory_changes_end_live_sessions() {
    let h = Harness::start().await;
    let mut b = h.browser();
    h.login(&mut b, "tenant=tenant-1", "alice", TENANT).await;
    assert_eq!(h.session(&mut b).await.status, 200);
    h.seed_user("alice", "admin", false).await;
    let who = h.session(&mut b).await;
    assert_eq!(who.status, 401, "{}", who.body);
    assert!(who.body.contains("disabled"), "{}", who.body);
    // Re-enabled later, the ended session stays ended: the user signs in again.
    h.seed_user("alice", "admin", true).await;
    assert_eq!(h.session(&mut b).await.status, 401);

    let mut b2 = h.browser();
    h.login(&mut b2, "tenant=tenant-1", "alice", TENANT).await;
    assert_eq!(h.session(&mut b2).await.status, 200);
    h.seed_tenant(true).await;
    assert_eq!(h.session(&mut b2).await.status, 401);
}

#[tokio::test]
async fn logout_ends_the_session_and_signs_out_at_the_identity_provider() {
    let h = Harness::start().await;
    let mut b = h.browser();
    h.login(&mut b, "tenant=tenant-1", "alice", TENANT).await;
    let authority = split_url(&h.koogate).0;
    let old_cookie = b.cookie(&authority, "__Host-koogate_session").unwrap();
    assert_eq!(h.session(&mut b).await.status, 200);

    let first = b.get(&format!("{}/sso/logout", h.koogate)).await;
    assert_eq!(first.status, 302);
    let expected = format!(
        "{}/api/v1/logout?redirect_url={}",
        h.idp.base,
        encode_component(&format!("{}/", h.koogate))
    );
    assert_eq!(first.location().as_deref(), Some(expected.as_str()));
    let end = b.follow(&expected).await;
    assert_eq!(end.status, 302);
    assert_eq!(
        h.idp.with(|s| s.logouts.clone()),
        vec![Some(format!("{}/", h.koogate))]
    );
    assert!(b.cookie(&authority, "__Host-koogate_session").is_none());
    assert_eq!(h.session(&mut b).await.status, 401);

    // The old cookie, replayed, is dead in the store.
    b.jar
        .entry(authority)
        .or_default()
        .insert("__Host-koogate_session".into(), old_cookie);
    assert_eq!(h.session(&mut b).await.status, 401);
}

#[tokio::test]
async fn no_token_code_or_secret_reaches_a_log_line() {
    let h = Harness::start().await;
    h.idp.with(|s| s.expires_in = 0);
    let mut b = h.browser();
    let end = h.login(&mut b, "tenant=tenant-1", "alice", TENANT).await;
    assert_eq!(end.status, 302, "{}", end.body);
    let session_cookie = b
        .cookie(&split_url(&h.koogate).0, "__Host-koogate_session")
        .unwrap();
    assert_eq!(h.session(&mut b).await.status, 200);
    h.idp.with(|s| s.reject_refresh = true);
    assert_eq!(h.session(&mut b).await.status, 401);
    h.idp.with(|s| s.reject_codes = true);
    let mut b2 = h.browser();
    assert_eq!(h.login(&mut b2, "", "alice", TENANT).await.status, 502);
    b2.get(&format!("{}/sso/logout", h.koogate)).await;

    let logs = logs();
    // The lines were captured (so the check below can fail)...
    assert!(logs.contains("sso signed in"), "{logs}");
    assert!(logs.contains("invalid_grant"), "{logs}");
    // ...and carry no token, code, client secret or session cookie.
    for secret in ["SECRET-", CLIENT_SECRET, "client_secret=", "Bearer"] {
        assert!(
            !logs.contains(secret),
            "{secret:?} reached a log line:\n{logs}"
        );
    }
    assert!(
        !logs.contains(&session_cookie),
        "the session cookie reached a log line"
    );
}
