//! `koogate sign`: builds a request the way the seller console does (compact JSON, sorted
//! top-level keys, `testFlag` "1" unless `--production`), signs it with the current key of the
//! interface type, and prints the curl command — or, with `--send`, sends it and checks the
//! answer's framing and `Body-Sign` like the console.

use koogate_protocol::{basic_signature, body_sign};
use koogate_runtime::routes::InterfaceType;
use koogate_runtime::secrets::Secrets;
use serde_json::{json, Map, Value};

/// Console-like example bodies (spec examples), by activity.
fn example_body(activity: &str) -> Result<Map<String, Value>, String> {
    let instance = "10e758d0-31ad-4c4b-8f1b-81d03469a10e";
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
        other => return Err(format!("no example for activity {other:?}")),
    };
    let Value::Object(mut m) = v else {
        return Err("example is not an object".into());
    };
    m.insert("activity".into(), json!(activity));
    Ok(m)
}

fn interface(name: &str) -> Result<InterfaceType, String> {
    Ok(match name {
        "basic" => InterfaceType::Basic,
        "kit" => InterfaceType::Kit,
        "license" => InterfaceType::License,
        "general" => InterfaceType::General,
        "legacy" => InterfaceType::Legacy,
        other => return Err(format!("unknown key type {other:?}")),
    })
}

fn load_secrets() -> Result<Secrets, String> {
    let path = std::env::var("KOOGATE_SECRETS_FILE")
        .map_err(|_| "set KOOGATE_SECRETS_FILE to the secrets document".to_string())?;
    let text = std::fs::read_to_string(&path).map_err(|e| format!("cannot read {path}: {e}"))?;
    Secrets::parse(&text).map_err(|e| e.to_string())
}

/// Adds `signature`, `timestamp` and `nonce` to `url` for `body`.
pub fn signed_url(url: &str, key: &str, body: &[u8]) -> String {
    let timestamp = koogate_runtime::pipeline::now_ms().to_string();
    let nonce = hex::encode_upper(rand::random::<[u8; 32]>());
    let signature = basic_signature::sign(key, &nonce, &timestamp, body).to_uppercase();
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}signature={signature}&timestamp={timestamp}&nonce={nonce}")
}

pub fn run(args: &[String]) -> Result<(), String> {
    let url = crate::flag_value(args, "--url").ok_or("--url is required")?;
    let activity = crate::flag_value(args, "--activity").ok_or("--activity is required")?;
    let key_type = interface(crate::flag_value(args, "--key-type").unwrap_or("basic"))?;
    let mut body = example_body(activity)?;
    body.insert(
        "testFlag".into(),
        json!(if args.iter().any(|a| a == "--production") {
            "0"
        } else {
            "1"
        }),
    );
    for (i, a) in args.iter().enumerate() {
        if a == "--set" {
            let kv = args.get(i + 1).ok_or("--set needs KEY=VALUE")?;
            let (k, v) = kv
                .split_once('=')
                .ok_or_else(|| format!("--set {kv}: expected KEY=VALUE"))?;
            // A JSON object or array stays structured; anything else is a string, as the console sends.
            let value = match serde_json::from_str::<Value>(v) {
                Ok(j @ (Value::Object(_) | Value::Array(_))) => j,
                _ => json!(v),
            };
            body.insert(k.to_string(), value);
        }
    }
    // serde_json's map is ordered by key: this is the console's sorted compact form.
    let bytes = serde_json::to_vec(&Value::Object(body)).map_err(|e| e.to_string())?;
    let secrets = load_secrets()?;
    let key = secrets
        .keys(key_type)
        .first()
        .ok_or_else(|| format!("the secrets document has no {} key", key_type.name()))?
        .clone();
    let full_url = signed_url(url, &key, &bytes);

    if !args.iter().any(|a| a == "--send") {
        let body_text = String::from_utf8_lossy(&bytes).replace('\'', "'\\''");
        println!(
            "curl -sS -i -X POST '{full_url}' -H 'Accept: application/json' -H 'Content-Type: application/json;charset=utf8' -d '{body_text}'"
        );
        return Ok(());
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let got = runtime.block_on(crate::client::post(&full_url, bytes))?;
    println!("HTTP {}", got.status);
    for (k, v) in &got.headers {
        println!("{k}: {v}");
    }
    println!("\n{}", String::from_utf8_lossy(&got.body));
    let header = got
        .headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(body_sign::HEADER_NAME))
        .map(|(_, v)| v.as_str())
        .unwrap_or("");
    let content_type = got
        .headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-type"))
        .map(|(_, v)| v.as_str())
        .unwrap_or("");
    let mut problems = Vec::new();
    if got.status != 200 {
        problems.push(format!("HTTP status {} is not 200", got.status));
    }
    if content_type != "application/json" {
        problems.push(format!(
            "Content-Type {content_type:?} is not \"application/json\""
        ));
    }
    if let Err(e) = body_sign::verify(&key, &got.body, header) {
        problems.push(format!("Body-Sign: {e}"));
    }
    if problems.is_empty() {
        println!("\nkoogate sign: HTTP 200, application/json, Body-Sign valid");
        Ok(())
    } else {
        Err(problems.join("; "))
    }
}

/// Writes a secrets document with a fresh random key for every interface type (local use).
pub fn init_secrets(args: &[String]) -> Result<(), String> {
    let path = args.first().ok_or("init-secrets needs a PATH")?;
    let path = std::path::Path::new(path);
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
