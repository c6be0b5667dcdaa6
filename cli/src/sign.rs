//! `koogate sign`: builds a request of any interface koogate serves the way the marketplace
//! does (the seller console's 生成请求命令: compact JSON, sorted top-level names, `testFlag` 1
//! unless `--production`), signs it with the current key of its interface type, and prints the
//! curl command — or, with `--send`, sends it and checks the answer like the console: HTTP 200,
//! `application/json`, a valid `Body-Sign`, and `resultCode` `000000`.
//!
//! | activities | request | signature | key |
//! |---|---|---|---|
//! | newInstance … getLicenseAsync | POST the URL | `signature`/`timestamp`/`nonce` query | basic |
//! | refreshLicenseCode, updateLicenseCodeStatus, releaseLicenseCode | POST `/license` | query | license |
//! | orderNotify | POST `/order-notify` | query | general |
//! | tenantSync … allOrgSync | POST `<URL>/produceAPI/v2/<op>` | `x-sign`/`x-timestamp`/`x-nonce` over the canonical body | kit |
//! | `--v1` kit syncs | POST `<URL>/produceAPI/<op>` | `authToken` header over the body | legacy |
//! | `--v1` newInstance …, expireInstance, upgrade, instanceStatus | GET the URL | `authToken` in the query | legacy |
//! | getLicense, refreshLicense, expireLicense, releaseLicense | GET `/license` | `authToken` in the query | legacy |

use std::path::PathBuf;
use std::time::Duration;

use base64::Engine;
use clap::builder::PossibleValuesParser;
use koogate_protocol::{
    basic_signature, body_sign, canonical_form, kit_signature, timestamp, v1_auth,
};
use koogate_runtime::pipeline::now_ms;
use koogate_runtime::routes::InterfaceType;
use koogate_runtime::secrets::Secrets;
use serde_json::{json, Map, Value};

pub const EXAMPLES: &str = "Examples:
  koogate sign --url http://127.0.0.1:8080/saas --activity newInstance --send
  koogate sign --url http://127.0.0.1:8080/saas --activity releaseInstance --set instanceId=ID --production
  koogate sign --url http://127.0.0.1:8080/saas --activity tenantSync --send
  koogate sign --url http://127.0.0.1:8080/saas --activity refreshLicenseCode --send
  koogate sign --url http://127.0.0.1:8080/saas --activity orderNotify --send
  koogate sign --url http://127.0.0.1:8080/saas --activity newInstance --v1 --send

The key comes from the secrets document named by KOOGATE_SECRETS_FILE.";

pub const LONG: &str = "Examples:
  koogate sign --url http://127.0.0.1:8080/saas --activity newInstance --send
  koogate sign --url http://127.0.0.1:8080/saas --activity releaseInstance --set instanceId=ID --production
  koogate sign --url http://127.0.0.1:8080/saas --activity tenantSync --send
  koogate sign --url http://127.0.0.1:8080/saas --activity refreshLicenseCode --send
  koogate sign --url http://127.0.0.1:8080/saas --activity orderNotify --send
  koogate sign --url http://127.0.0.1:8080/saas --activity newInstance --v1 --send

Each activity is signed as the marketplace signs it, with the key of its interface type:
  newInstance, queryInstance, refreshInstance, updateInstanceStatus, releaseInstance,
  upgradeInstance, changeInstanceCheck, getLicenseAsync
      POST URL, signature/timestamp/nonce in the query, basic key
  refreshLicenseCode, updateLicenseCodeStatus, releaseLicenseCode
      POST /license (beside URL), signature in the query, license key
  orderNotify
      POST /order-notify (beside URL), signature in the query, general key
  tenantSync, applicationSync, authSync, singleOrgSync, allOrgSync
      POST URL/produceAPI/v2/<activity>, x-sign/x-timestamp/x-nonce headers, kit key;
      with --v1: POST URL/produceAPI/<activity>, authToken header, legacy key
  expireInstance, upgrade, instanceStatus; newInstance, queryInstance, refreshInstance and
  releaseInstance with --v1
      GET URL (V1), authToken in the query, legacy key
  getLicense, refreshLicense, expireLicense, releaseLicense
      GET /license (V1, old License), authToken in the query, legacy key

URL is the production interface URL (ending in /saas); /license and /order-notify replace its
/saas unless URL already ends in them. --set replaces or adds a member (a V1 GET parameter);
a JSON object or array stays structured, a number stays a number where the example has one,
anything else is a string. With --send, the exit status is 0 only for HTTP 200,
application/json, a valid Body-Sign and resultCode 000000; the answer is printed either way.

Environment:
  KOOGATE_SECRETS_FILE   the secrets document whose current keys sign (required)";

pub const INIT_EXAMPLES: &str = "Examples:
  koogate init-secrets .koogate/secrets.json
  KOOGATE_SECRETS_FILE=.koogate/secrets.json koogate serve

Writes a key for every interface type, an RSA key (rsa_private_key_pem), a webhook secret and a
Product API token; refuses to overwrite an existing file. For local use: production keys come
from the seller console.";

/// The key types `--key-type` accepts.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyType {
    Basic,
    Kit,
    License,
    General,
    Legacy,
}

impl From<KeyType> for InterfaceType {
    fn from(k: KeyType) -> InterfaceType {
        match k {
            KeyType::Basic => InterfaceType::Basic,
            KeyType::Kit => InterfaceType::Kit,
            KeyType::License => InterfaceType::License,
            KeyType::General => InterfaceType::General,
            KeyType::Legacy => InterfaceType::Legacy,
        }
    }
}

/// V2 basic activities (POST /saas).
const BASIC: [&str; 8] = [
    "newInstance",
    "queryInstance",
    "refreshInstance",
    "updateInstanceStatus",
    "releaseInstance",
    "upgradeInstance",
    "changeInstanceCheck",
    "getLicenseAsync",
];
/// License 2.0 activities (POST /license).
const LICENSE: [&str; 3] = [
    "refreshLicenseCode",
    "updateLicenseCodeStatus",
    "releaseLicenseCode",
];
/// Kit syncs (POST /saas/produceAPI/v2/<op>, or the V1 path).
const KIT: [&str; 5] = [
    "tenantSync",
    "applicationSync",
    "authSync",
    "singleOrgSync",
    "allOrgSync",
];
/// V1 GET /saas activities; the first four also exist in V2 (then `--v1` picks this form).
const V1_SAAS: [&str; 7] = [
    "newInstance",
    "queryInstance",
    "refreshInstance",
    "releaseInstance",
    "expireInstance",
    "upgrade",
    "instanceStatus",
];
/// Old License activities (V1 GET /license).
const V1_LICENSE: [&str; 4] = [
    "getLicense",
    "refreshLicense",
    "expireLicense",
    "releaseLicense",
];

/// Every activity `--activity` accepts.
const ACTIVITIES: [&str; 24] = [
    "newInstance",
    "queryInstance",
    "refreshInstance",
    "updateInstanceStatus",
    "releaseInstance",
    "upgradeInstance",
    "changeInstanceCheck",
    "getLicenseAsync",
    "refreshLicenseCode",
    "updateLicenseCodeStatus",
    "releaseLicenseCode",
    "orderNotify",
    "tenantSync",
    "applicationSync",
    "authSync",
    "singleOrgSync",
    "allOrgSync",
    "expireInstance",
    "upgrade",
    "instanceStatus",
    "getLicense",
    "refreshLicense",
    "expireLicense",
    "releaseLicense",
];

fn activity_parser() -> PossibleValuesParser {
    PossibleValuesParser::new(ACTIVITIES)
}

/// `koogate sign`.
#[derive(clap::Args, Debug)]
pub struct SignArgs {
    /// The production interface URL, e.g. http://127.0.0.1:8080/saas
    #[arg(long, value_name = "URL")]
    pub url: String,
    /// The activity to sign (--help lists them with their interface types)
    #[arg(long, value_name = "NAME", value_parser = activity_parser(), hide_possible_values = true)]
    pub activity: String,
    /// Set (or add) a member of the example body, a parameter of a V1 query; repeatable
    #[arg(long = "set", value_name = "KEY=VALUE", value_parser = parse_set)]
    pub set: Vec<(String, String)>,
    /// Production traffic: testFlag 0 (default: console debug traffic, testFlag 1)
    #[arg(long)]
    pub production: bool,
    /// Sign with this interface type's key instead of the activity's own
    #[arg(long, value_enum, value_name = "TYPE")]
    pub key_type: Option<KeyType>,
    /// The V1 form: GET with authToken in the query (SaaS, old License), authToken header (kit)
    #[arg(long)]
    pub v1: bool,
    /// Send the request and check the answer (exit 0 only for resultCode 000000)
    #[arg(long)]
    pub send: bool,
}

fn parse_set(kv: &str) -> Result<(String, String), String> {
    let (k, v) = kv
        .split_once('=')
        .ok_or_else(|| format!("{kv:?}: expected KEY=VALUE"))?;
    if k.is_empty() {
        return Err(format!("{kv:?}: the KEY is empty"));
    }
    Ok((k.to_string(), v.to_string()))
}

/// `koogate init-secrets`.
#[derive(clap::Args, Debug)]
pub struct InitSecretsArgs {
    /// Where to write the secrets document (must not exist)
    #[arg(value_name = "PATH")]
    pub path: PathBuf,
}

/// How an activity is sent and signed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Form {
    /// V2 URL signature (`signature`, `timestamp`, `nonce` in the query) over the JSON body, POST
    /// to the URL (`None`) or beside it (`/license`, `/order-notify`).
    Basic(Option<&'static str>),
    /// Kit V2: `x-sign`, `x-timestamp`, `x-nonce` over the canonical body.
    Kit,
    /// Kit V1: `authToken` header over the body members.
    KitV1,
    /// V1 GET: `authToken` in the query, to the URL (`None`) or beside it (`/license`).
    V1Get(Option<&'static str>),
}

/// The form and default key type of `activity` (`v1`: the V1 form was asked for).
fn plan(activity: &str, v1: bool) -> Result<(Form, InterfaceType), String> {
    let has = |list: &[&str]| list.contains(&activity);
    Ok(if has(&KIT) {
        if v1 {
            (Form::KitV1, InterfaceType::Legacy)
        } else {
            (Form::Kit, InterfaceType::Kit)
        }
    } else if has(&V1_LICENSE) {
        (Form::V1Get(Some("/license")), InterfaceType::Legacy)
    } else if has(&V1_SAAS) && (v1 || !has(&BASIC)) {
        (Form::V1Get(None), InterfaceType::Legacy)
    } else if v1 {
        return Err(format!("{activity} has no V1 form"));
    } else if has(&BASIC) {
        (Form::Basic(None), InterfaceType::Basic)
    } else if has(&LICENSE) {
        (Form::Basic(Some("/license")), InterfaceType::License)
    } else if activity == "orderNotify" {
        (Form::Basic(Some("/order-notify")), InterfaceType::General)
    } else {
        return Err(format!("no example for activity {activity:?}"));
    })
}

/// Where `form` is sent, for the production interface URL `url`.
fn target(url: &str, form: Form, activity: &str) -> String {
    let trimmed = url.trim_end_matches('/');
    let beside = |path: &str| {
        if trimmed.ends_with(path) {
            trimmed.to_string()
        } else {
            format!("{}{path}", trimmed.strip_suffix("/saas").unwrap_or(trimmed))
        }
    };
    match form {
        Form::Basic(None) | Form::V1Get(None) => url.to_string(),
        Form::Basic(Some(path)) | Form::V1Get(Some(path)) => beside(path),
        Form::Kit => format!("{trimmed}/produceAPI/v2/{activity}"),
        Form::KitV1 => format!("{trimmed}/produceAPI/{activity}"),
    }
}

const INSTANCE: &str = "10e758d0-31ad-4c4b-8f1b-81d03469a10e";
const TENANT: &str = "68cbc86abc2018ab880d92f36422fa0e";

/// Console-like example bodies (spec examples) of the V2 JSON activities, without `testFlag`.
fn example_body(activity: &str, secrets: &Secrets) -> Result<Map<String, Value>, String> {
    let instance = INSTANCE;
    let license = "LIC-EXAMPLE-0001";
    let v = match activity {
        "newInstance" => json!({"businessId": uuid::Uuid::new_v4().to_string(),
            "orderId": "CS2211181819B4LVS", "orderLineId": "CS2211181819B4LVS-000001"}),
        "queryInstance" => json!({"instanceId": instance}),
        "refreshInstance" => json!({"expireTime": "20301124023618256", "instanceId": instance,
            "orderId": "CS2211181819B4LVT", "orderLineId": "CS2211181819B4LVT-000001",
            "productId": "OFFI461867333479178240", "scene": "RENEWAL"}),
        "updateInstanceStatus" => json!({"instanceId": instance, "status": "FREEZE"}),
        "releaseInstance" => json!({"instanceId": instance}),
        "upgradeInstance" => json!({"instanceId": instance, "orderId": "CS2211181819B4LVU",
            "orderLineId": "CS2211181819B4LVU-000001"}),
        "changeInstanceCheck" => {
            json!({"instanceId": instance, "productInfo": {"productId": "OFFI461867333479178240",
            "skuCode": "a63ee5c9-4f86-11ed-9f95-fa163e8cb3b2", "linearValue": 50, "productName": "Basic edition"}})
        }
        "getLicenseAsync" => json!({"eventId": "8e5694c8", "instanceId": instance,
            "effectiveTime": "2023-10-27 10:30:15 z", "expireTime": "2030-10-27 10:30:15 z"}),
        "refreshLicenseCode" => json!({"license": license, "orderId": "CS2305232019DDVUY",
            "orderLineId": "CS2305232019DDVUY-000001", "productId": "OFFI000000000000000001",
            "expireTime": "20310523201932", "scene": "RENEWAL"}),
        "updateLicenseCodeStatus" => json!({"license": license, "status": "FREEZE"}),
        "releaseLicenseCode" => json!({"license": license, "orderId": "CS2305232019DDVUZ",
            "orderLineId": "CS2305232019DDVUZ-000001"}),
        "orderNotify" => json!({"orderId": "CS2211181819B4LVS",
            "orderLineId": "CS2211181819B4LVS-000001"}),
        "tenantSync" => json!({"instanceId": "", "orderId": "", "tenantId": TENANT,
            "tenantCode": "example", "name": "示例企业", "domainName": "https://idp.example.com",
            "flag": 1}),
        "applicationSync" => json!({"instanceId": "", "tenantId": TENANT, "appId": "EXAMPLEAPP",
            "clientId": "example-client", "clientSecret": client_secret(secrets)?, "flag": 1}),
        "authSync" => json!({"instanceId": "", "tenantId": TENANT, "appId": "EXAMPLEAPP",
            "userList": [{"userName": "example.user", "name": "示例用户", "orgCode": "00000001",
                "role": "user", "enable": "true"}],
            "currentSyncTime": utc8_now(), "flag": 1}),
        "singleOrgSync" => json!({"instanceId": "", "tenantId": TENANT, "orgCode": "00000001",
            "orgName": "Development", "parentCode": "", "flag": 1}),
        "allOrgSync" => json!({"instanceId": "", "tenantId": TENANT, "orgInfoList": [
            {"orgCode": "00000001", "orgName": "Development", "parentCode": "265789314"},
            {"orgCode": "265789314", "orgName": "Headquarters", "parentCode": ""}]}),
        other => return Err(format!("no example for activity {other:?}")),
    };
    let Value::Object(m) = v else {
        return Err("example is not an object".into());
    };
    Ok(m)
}

/// Example parameters of the V1 GET activities, without `activity`, `testFlag` and `timeStamp`.
fn example_params(activity: &str) -> Result<Vec<(String, String)>, String> {
    let business = uuid::Uuid::new_v4().to_string();
    let p: Vec<(&str, &str)> = match activity {
        "newInstance" => vec![
            ("businessId", &business),
            ("customerId", TENANT),
            ("expireTime", "20300727153156"),
            ("orderId", "CSV1EXAMPLE0001"),
            ("productId", "00301-666666-0--0"),
        ],
        "queryInstance" => vec![("instanceId", INSTANCE)],
        "refreshInstance" | "refreshLicense" => vec![
            ("expireTime", "20310725000000"),
            ("instanceId", INSTANCE),
            ("orderId", "CSV1EXAMPLE0002"),
        ],
        "expireInstance" | "releaseInstance" | "expireLicense" | "releaseLicense" => {
            vec![("instanceId", INSTANCE), ("orderId", "CSV1EXAMPLE0001")]
        }
        "upgrade" => vec![
            ("instanceId", INSTANCE),
            ("orderId", "CSV1EXAMPLE0003"),
            ("productId", "00301-666666-0--1"),
            ("skuCode", "example-sku"),
        ],
        "instanceStatus" => vec![("instanceId", INSTANCE), ("instanceStatus", "NORMAL")],
        "getLicense" => vec![
            ("businessId", &business),
            ("customerId", TENANT),
            ("orderId", "CSV1EXAMPLE0004"),
            ("productId", "00301-666666-0--0"),
        ],
        other => return Err(format!("no V1 example for activity {other:?}")),
    };
    Ok(p.into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect())
}

/// A `clientSecret` as the marketplace sends it: encrypted to the public key of the secrets
/// document's `rsa_private_key_pem` (RSA-OAEP SHA-256, MGF1 SHA-1). Without a key, a placeholder
/// (the endpoint then answers 000002).
fn client_secret(secrets: &Secrets) -> Result<String, String> {
    use rsa::pkcs1::DecodeRsaPrivateKey;
    use rsa::pkcs8::DecodePrivateKey;
    let Some(pem) = secrets.rsa_private_key_pem.as_deref() else {
        return Ok(base64::engine::general_purpose::STANDARD.encode("no rsa_private_key_pem"));
    };
    let key = rsa::RsaPrivateKey::from_pkcs8_pem(pem.trim())
        .or_else(|_| rsa::RsaPrivateKey::from_pkcs1_pem(pem.trim()))
        .map_err(|_| "rsa_private_key_pem is not a PEM RSA key".to_string())?;
    let cipher = key
        .to_public_key()
        .encrypt(
            &mut rand::rngs::OsRng,
            rsa::Oaep::new_with_mgf_hash::<sha2::Sha256, sha1::Sha1>(),
            b"example-client-secret",
        )
        .map_err(|e| format!("cannot encrypt the example clientSecret: {e}"))?;
    Ok(base64::engine::general_purpose::STANDARD.encode(cipher))
}

/// Now in UTC+8, as the kit's `timeStamp` (yyyyMMddHHmmssSSS).
fn utc8_now() -> String {
    timestamp::format_compact_ms(now_ms() + 8 * 3_600_000)
}

fn nonce() -> String {
    hex::encode_upper(rand::random::<[u8; 32]>())
}

/// The value of `--set KEY=VALUE`: a JSON object or array stays structured, a number stays a
/// number where the example has one, anything else is a string, as the console sends.
fn set_value(previous: Option<&Value>, v: &str) -> Value {
    match serde_json::from_str::<Value>(v) {
        Ok(j @ (Value::Object(_) | Value::Array(_))) => j,
        Ok(n @ Value::Number(_)) if matches!(previous, Some(Value::Number(_))) => n,
        _ => json!(v),
    }
}

fn load_secrets() -> Result<Secrets, String> {
    let path = std::env::var("KOOGATE_SECRETS_FILE")
        .map_err(|_| "set KOOGATE_SECRETS_FILE to the secrets document".to_string())?;
    let text = std::fs::read_to_string(&path).map_err(|e| format!("cannot read {path}: {e}"))?;
    Secrets::parse(&text).map_err(|e| e.to_string())
}

/// Adds `signature`, `timestamp` and `nonce` to `url` for `body`.
pub fn signed_url(url: &str, key: &str, body: &[u8]) -> String {
    let timestamp = now_ms().to_string();
    let nonce = nonce();
    let signature = basic_signature::sign(key, &nonce, &timestamp, body).to_uppercase();
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}signature={signature}&timestamp={timestamp}&nonce={nonce}")
}

/// A signed request, ready to print or send.
struct Signed {
    method: &'static str,
    url: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

/// Builds and signs the request of `args` with `key`.
fn build(args: &SignArgs, form: Form, key: &str, secrets: &Secrets) -> Result<Signed, String> {
    let activity = args.activity.as_str();
    let url = target(&args.url, form, activity);
    if let Form::V1Get(_) = form {
        let mut params = vec![("activity".to_string(), activity.to_string())];
        params.extend(example_params(activity)?);
        let flag = if args.production { "0" } else { "1" };
        params.push(("testFlag".into(), flag.into()));
        for (k, v) in &args.set {
            match params.iter_mut().find(|(name, _)| name == k) {
                Some(p) => p.1 = v.clone(),
                None => params.push((k.clone(), v.clone())),
            }
        }
        if !params.iter().any(|(k, _)| k == "timeStamp") {
            params.push(("timeStamp".into(), timestamp::format_compact_ms(now_ms())));
        }
        let token = v1_auth::sign_get(key, &params);
        let mut query: Vec<String> = params
            .iter()
            .map(|(k, v)| format!("{k}={}", v1_auth::encode_component(v)))
            .collect();
        query.push(format!("authToken={}", v1_auth::encode_component(&token)));
        let sep = if url.contains('?') { '&' } else { '?' };
        return Ok(Signed {
            method: "GET",
            url: format!("{url}{sep}{}", query.join("&")),
            headers: Vec::new(),
            body: Vec::new(),
        });
    }

    let mut body = example_body(activity, secrets)?;
    match form {
        Form::Kit | Form::KitV1 => {
            body.insert("testFlag".into(), json!(u8::from(!args.production)));
            body.insert("timeStamp".into(), json!(utc8_now()));
        }
        _ => {
            body.insert("activity".into(), json!(activity));
            body.insert(
                "testFlag".into(),
                json!(if args.production { "0" } else { "1" }),
            );
        }
    }
    for (k, v) in &args.set {
        let value = set_value(body.get(k), v);
        body.insert(k.clone(), value);
    }
    if form == Form::KitV1 {
        // V1 kit calls carry lists as JSON text (the authToken covers members as text).
        for v in body.values_mut() {
            if v.is_array() || v.is_object() {
                *v = Value::String(v.to_string());
            }
        }
    }
    // serde_json's map is ordered by key: this is the console's sorted compact form.
    let bytes = serde_json::to_vec(&Value::Object(body)).map_err(|e| e.to_string())?;
    Ok(match form {
        Form::Kit => {
            let ts = now_ms().to_string();
            let n = nonce();
            let signed = canonical_form(&bytes).unwrap_or_else(|| bytes.clone());
            let sign = kit_signature::sign(key, &n, &ts, &signed);
            Signed {
                method: "POST",
                url,
                headers: vec![
                    ("x-timestamp".into(), ts),
                    ("x-nonce".into(), n),
                    ("x-sign".into(), sign),
                ],
                body: bytes,
            }
        }
        Form::KitV1 => {
            let token =
                v1_auth::sign_post(key, &bytes).ok_or("the V1 kit body is not a JSON object")?;
            Signed {
                method: "POST",
                url,
                headers: vec![("authToken".into(), token)],
                body: bytes,
            }
        }
        _ => Signed {
            method: "POST",
            url: signed_url(&url, key, &bytes),
            headers: Vec::new(),
            body: bytes,
        },
    })
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// The console's wait limit: an answer later than this is a failure.
const SEND_LIMIT: Duration = Duration::from_secs(20);

pub fn run(args: &SignArgs) -> Result<(), String> {
    let (form, default_key) = plan(&args.activity, args.v1)?;
    let key_type = args.key_type.map_or(default_key, InterfaceType::from);
    let secrets = load_secrets()?;
    let key = secrets
        .keys(key_type)
        .first()
        .ok_or_else(|| format!("the secrets document has no {} key", key_type.name()))?
        .clone();
    let req = build(args, form, &key, &secrets)?;

    if !args.send {
        let mut cmd = format!(
            "curl -sS -i -X {} {} -H 'Accept: application/json' -H 'Content-Type: application/json;charset=utf8'",
            req.method,
            shell_quote(&req.url)
        );
        for (k, v) in &req.headers {
            cmd.push_str(&format!(" -H {}", shell_quote(&format!("{k}: {v}"))));
        }
        if req.method == "POST" {
            cmd.push_str(&format!(
                " -d {}",
                shell_quote(&String::from_utf8_lossy(&req.body))
            ));
        }
        println!("{cmd}");
        return Ok(());
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let shown = crate::client::without_query(&req.url).to_string();
    let got = runtime
        .block_on(async {
            tokio::time::timeout(
                SEND_LIMIT,
                crate::client::send(req.method, &req.url, &req.headers, req.body),
            )
            .await
        })
        .map_err(|_| format!("no answer from {shown} in {} s", SEND_LIMIT.as_secs()))??;
    println!("HTTP {}", got.status);
    for (k, v) in &got.headers {
        println!("{k}: {v}");
    }
    println!("\n{}", String::from_utf8_lossy(&got.body));
    let problems = check(&got, &key);
    if problems.is_empty() {
        println!("\nkoogate sign: HTTP 200, application/json, Body-Sign valid, resultCode 000000");
        Ok(())
    } else {
        Err(problems.join("; "))
    }
}

/// What the console would refuse in `got`; empty when it is a success answer.
fn check(got: &crate::client::Received, key: &str) -> Vec<String> {
    let header = |name: &str| {
        got.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .unwrap_or("")
    };
    let mut problems = Vec::new();
    if got.status != 200 {
        problems.push(format!("HTTP status {} is not 200", got.status));
    }
    let content_type = header("content-type");
    if content_type != "application/json" {
        problems.push(format!(
            "Content-Type {content_type:?} is not \"application/json\""
        ));
    }
    if let Err(e) = body_sign::verify(key, &got.body, header(body_sign::HEADER_NAME)) {
        problems.push(format!("Body-Sign: {e}"));
    }
    match serde_json::from_slice::<Value>(&got.body) {
        Ok(json) => {
            let code = json["resultCode"].as_str().unwrap_or("");
            if code != "000000" {
                let msg = json["resultMsg"].as_str().unwrap_or("");
                problems.push(format!("resultCode {code:?} is not \"000000\" ({msg})"));
            }
        }
        Err(_) => problems.push("the answer is not JSON".into()),
    }
    problems
}

/// Writes a secrets document with a fresh random key for every interface type (local use).
pub fn init_secrets(args: &InitSecretsArgs) -> Result<(), String> {
    let path = args.path.as_path();
    if path.exists() {
        return Err(format!(
            "{} exists already; not overwriting it",
            path.display()
        ));
    }
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
    }
    let key = || uuid::Uuid::new_v4().to_string();
    // The RSA key decrypts the kit's clientSecret (D15), so that `make run` serves every route.
    let rsa = crate::keygen::generate(crate::keygen::MIN_BITS)?;
    // A webhook secret signs what koogate sends the ISV's product; an API token lets the
    // product call the Product API (32 random bytes each).
    let token: [u8; 32] = rand::random();
    let doc = json!({"access_keys": {"basic": [key()], "kit": [key()], "license": [key()],
                     "general": [key()], "legacy": [key()]},
                     "rsa_private_key_pem": rsa.private_pem,
                     "webhook_secrets": [koogate_protocol::webhook::WebhookSecret::generate()],
                     "isv_api_tokens": [format!("isv_{}", hex::encode(token))]});
    let text = serde_json::to_string_pretty(&doc).map_err(|e| e.to_string())?;
    write_private(path, &text).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    eprintln!("koogate: wrote {} with fresh local keys", path.display());
    Ok(())
}

/// Replaces `path` with `text`, readable by the owner only: written beside it, then renamed over
/// it, so a failure never leaves half a secrets document.
pub fn replace_private(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    let _ = std::fs::remove_file(&tmp);
    write_private(&tmp, text)?;
    std::fs::rename(&tmp, path)
}

#[cfg(unix)]
fn write_private(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(text.as_bytes())
}

#[cfg(not(unix))]
fn write_private(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    std::fs::write(path, text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secrets() -> Secrets {
        Secrets::with_keys(&[
            (InterfaceType::Basic, &["basic-key"]),
            (InterfaceType::Kit, &["kit-key"]),
            (InterfaceType::License, &["license-key"]),
            (InterfaceType::General, &["general-key"]),
            (InterfaceType::Legacy, &["legacy-key"]),
        ])
    }

    fn args(activity: &str, v1: bool) -> SignArgs {
        SignArgs {
            url: "http://127.0.0.1:8080/saas".into(),
            activity: activity.into(),
            set: vec![("orgCode".into(), "42".into())],
            production: false,
            key_type: None,
            v1,
            send: false,
        }
    }

    #[test]
    fn every_activity_has_a_plan_and_an_example() {
        let s = secrets();
        for a in ACTIVITIES {
            let (form, _) = plan(a, false).unwrap();
            build(&args(a, false), form, "k", &s).unwrap();
        }
        for a in V1_SAAS.iter().chain(KIT.iter()).chain(V1_LICENSE.iter()) {
            let (form, key) = plan(a, true).unwrap();
            assert_eq!(key, InterfaceType::Legacy, "{a}");
            build(&args(a, true), form, "k", &s).unwrap();
        }
        assert!(plan("orderNotify", true).is_err());
    }

    #[test]
    fn each_interface_type_is_signed_its_own_way() {
        let s = secrets();
        let (form, key) = plan("tenantSync", false).unwrap();
        assert_eq!(key, InterfaceType::Kit);
        let r = build(&args("tenantSync", false), form, "kit-key", &s).unwrap();
        assert_eq!(r.url, "http://127.0.0.1:8080/saas/produceAPI/v2/tenantSync");
        let h = |n: &str| r.headers.iter().find(|(k, _)| k == n).unwrap().1.clone();
        let canonical = canonical_form(&r.body).unwrap();
        assert!(kit_signature::verify(
            &["kit-key".to_string()],
            &h("x-nonce"),
            &h("x-timestamp"),
            &h("x-sign"),
            &canonical
        )
        .is_some());

        let (form, key) = plan("refreshLicenseCode", false).unwrap();
        assert_eq!(key, InterfaceType::License);
        let r = build(&args("refreshLicenseCode", false), form, "license-key", &s).unwrap();
        assert!(
            r.url
                .starts_with("http://127.0.0.1:8080/license?signature="),
            "{}",
            r.url
        );

        let (form, key) = plan("orderNotify", false).unwrap();
        assert_eq!(key, InterfaceType::General);
        let r = build(&args("orderNotify", false), form, "general-key", &s).unwrap();
        assert!(r
            .url
            .starts_with("http://127.0.0.1:8080/order-notify?signature="));

        let (form, key) = plan("newInstance", true).unwrap();
        assert_eq!((form, key), (Form::V1Get(None), InterfaceType::Legacy));
        let r = build(&args("newInstance", true), form, "legacy-key", &s).unwrap();
        assert_eq!(r.method, "GET");
        let query = r.url.split_once('?').unwrap().1;
        assert!(matches!(
            v1_auth::verify_get(&["legacy-key".to_string()], query),
            v1_auth::V1Verification::Verified { .. }
        ));
        let (form, _) = plan("getLicense", false).unwrap();
        assert_eq!(form, Form::V1Get(Some("/license")));
        assert_eq!(
            plan("newInstance", false).unwrap(),
            (Form::Basic(None), InterfaceType::Basic)
        );
    }

    #[test]
    fn set_keeps_numbers_where_the_example_has_numbers() {
        assert_eq!(set_value(Some(&json!(1)), "0"), json!(0));
        assert_eq!(set_value(Some(&json!("1")), "0"), json!("0"));
        assert_eq!(set_value(None, "[1]"), json!([1]));
        assert_eq!(set_value(None, "x"), json!("x"));
    }

    #[test]
    fn sibling_routes_replace_saas_unless_given() {
        assert_eq!(
            target("http://h/saas/", Form::Basic(Some("/license")), "x"),
            "http://h/license"
        );
        assert_eq!(
            target("http://h/license", Form::Basic(Some("/license")), "x"),
            "http://h/license"
        );
        assert_eq!(
            target("http://h/saas", Form::KitV1, "authSync"),
            "http://h/saas/produceAPI/authSync"
        );
    }
}
