//! The cases of each suite: the console's saved cases (docs/protocol.md, console §1 step 7), its replay and
//! idempotency expectations (§6.2) and the negative cases (§6.3, §6.4).
//!
//! Every case builds a fresh request as the console would (compact JSON, sorted top-level names,
//! fresh timestamp and nonce) unless it deliberately breaks one of those rules.

use base64::Engine;
use koogate_protocol::{basic_signature, canonical_form, kit_signature, timestamp, v1_auth};
use koogate_runtime::pipeline::now_ms;
use koogate_runtime::routes::InterfaceType;
use serde_json::{json, Map, Value};

use super::console::{app_info_lengths, require};
use super::{Expect, Request, Runner};

/// Runs one suite by name.
pub async fn run(r: &mut Runner, suite: &str) {
    match suite {
        "saas" => saas(r).await,
        "kit" => kit(r).await,
        "license" => license(r).await,
        "notify" => notify(r).await,
        "legacy" => legacy(r).await,
        _ => {}
    }
}

fn none(_: &Value) -> Result<(), String> {
    Ok(())
}

fn unique(prefix: &str) -> String {
    format!("{prefix}{}", uuid::Uuid::new_v4().simple()).to_uppercase()
}

fn nonce() -> String {
    hex::encode_upper(rand::random::<[u8; 32]>())
}

/// A compact body with sorted top-level names (serde_json's map is ordered), plus `testFlag`.
fn basic_body(r: &Runner, activity: &str, fields: Value) -> Vec<u8> {
    let mut m: Map<String, Value> = match fields {
        Value::Object(m) => m,
        _ => Map::new(),
    };
    m.insert("activity".into(), json!(activity));
    m.insert("testFlag".into(), json!(r.test_flag()));
    Value::Object(m).to_string().into_bytes()
}

/// A V2 URL-signed POST to `path` with these query parts (a case may drop or alter one).
fn basic_post(path: &str, query: &str, body: Vec<u8>) -> Request {
    Request::Post {
        path_and_query: format!("{path}?{query}"),
        headers: Vec::new(),
        body,
    }
}

/// `signature`, `timestamp` and `nonce` for `body`, at `ts_ms`.
fn basic_query_at(key: &str, body: &[u8], ts_ms: i64, nonce: &str) -> (String, String, String) {
    let ts = ts_ms.to_string();
    let sig = basic_signature::sign(key, nonce, &ts, body).to_uppercase();
    (sig, ts, nonce.to_string())
}

fn signed(key: &str, body: &[u8]) -> String {
    let (s, t, n) = basic_query_at(key, body, now_ms(), &nonce());
    format!("signature={s}&timestamp={t}&nonce={n}")
}

// ---------------------------------------------------------------------------------------------
// V2 basic: POST /saas

async fn saas(r: &mut Runner) {
    const S: &str = "saas";
    let key = r.key(InterfaceType::Basic);
    let order = unique("SIMCS");
    let business = uuid::Uuid::new_v4().to_string();
    let create = |r: &Runner, business: &str, with_line: bool| {
        let mut f = json!({"businessId": business, "orderId": order, "customerId": "68cbc86abc2018ab880d92f36422fa0e",
            "productId": "OFFI461867333479178240", "skuCode": "a63ee5c9-4f86-11ed-9f95-fa163e8cb3b2",
            "chargingMode": "1", "periodType": "month", "periodNumber": "1",
            "expireTime": "20301124023618256"});
        if with_line {
            f["orderLineId"] = json!(format!("{order}-000001"));
        }
        basic_body(r, "newInstance", f)
    };
    let body = create(r, &business, true);
    let first = r
        .case(
            S,
            "newInstance (create)",
            &key,
            basic_post("/saas", &signed(&key, &body), body),
            Expect::Success,
            |j| {
                require(j, "instanceId")?;
                app_info_lengths(j)
            },
        )
        .await;
    let instance = first
        .as_ref()
        .and_then(|j| j["instanceId"].as_str())
        .unwrap_or("")
        .to_string();

    let again = uuid::Uuid::new_v4().to_string();
    let body = create(r, &again, true);
    let expected = instance.clone();
    r.case(
        S,
        "newInstance resent with a new businessId: same instanceId",
        &key,
        basic_post("/saas", &signed(&key, &body), body),
        Expect::Success,
        move |j| match j["instanceId"].as_str() {
            Some(id) if id == expected => Ok(()),
            other => Err(format!(
                "idempotency: instanceId {other:?}, the first delivery got {expected:?}"
            )),
        },
    )
    .await;

    let query = basic_body(r, "queryInstance", json!({"instanceId": instance}));
    r.case(
        S,
        "queryInstance",
        &key,
        basic_post("/saas", &signed(&key, &query), query.clone()),
        Expect::Success,
        |j| {
            let info = j["info"].as_array().ok_or("调测失败,接口响应缺少info")?;
            info.iter()
                .try_for_each(|e| require(e, "instanceId").map(drop))?;
            info.iter()
                .filter_map(|e| e["usageInfo"].as_array())
                .flatten()
                .try_for_each(|u| {
                    require(u, "usageValue")?;
                    require(u, "statisticalTime").map(drop)
                })
        },
    )
    .await;

    let refresh = basic_body(
        r,
        "refreshInstance",
        json!({"instanceId": instance, "orderId": unique("SIMREN"),
        "orderLineId": unique("SIMREN"), "productId": "OFFI461867333479178240", "expireTime": "20311124023618256", "scene": "RENEWAL"}),
    );
    r.case(
        S,
        "refreshInstance",
        &key,
        basic_post("/saas", &signed(&key, &refresh), refresh),
        Expect::Success,
        none,
    )
    .await;
    for status in ["FREEZE", "UNFREEZE"] {
        let b = basic_body(
            r,
            "updateInstanceStatus",
            json!({"instanceId": instance, "status": status}),
        );
        r.case(
            S,
            format!("updateInstanceStatus {status}"),
            &key,
            basic_post("/saas", &signed(&key, &b), b),
            Expect::Success,
            none,
        )
        .await;
    }
    let upgrade = basic_body(
        r,
        "upgradeInstance",
        json!({"instanceId": instance, "orderId": unique("SIMUPG"),
        "orderLineId": unique("SIMUPG"), "productId": "OFFI461867333479178241", "skuCode": "b63ee5c9-4f86-11ed-9f95-fa163e8cb3b2"}),
    );
    r.case(
        S,
        "upgradeInstance",
        &key,
        basic_post("/saas", &signed(&key, &upgrade), upgrade),
        Expect::Success,
        none,
    )
    .await;
    for n in ["releaseInstance", "releaseInstance again (idempotent)"] {
        let b = basic_body(r, "releaseInstance", json!({"instanceId": instance}));
        r.case(
            S,
            n,
            &key,
            basic_post("/saas", &signed(&key, &b), b),
            Expect::Success,
            none,
        )
        .await;
    }

    // Replay and negative cases (§6.2, §6.3), on queryInstance of the same instance.
    let replayed = signed(&key, &query);
    r.case(
        S,
        "queryInstance (nonce used the first time)",
        &key,
        basic_post("/saas", &replayed, query.clone()),
        Expect::Success,
        none,
    )
    .await;
    r.case(
        S,
        "same nonce again: replay refused",
        &key,
        basic_post("/saas", &replayed, query.clone()),
        Expect::Code("000001"),
        none,
    )
    .await;
    let (sig, ts, n) = basic_query_at(&key, &query, now_ms(), &nonce());
    let flipped: String = sig
        .char_indices()
        .map(|(i, c)| {
            if i == 0 {
                if c == 'A' {
                    'B'
                } else {
                    'A'
                }
            } else {
                c
            }
        })
        .collect();
    r.case(
        S,
        "signature altered by one hex digit",
        &key,
        basic_post(
            "/saas",
            &format!("signature={flipped}&timestamp={ts}&nonce={n}"),
            query.clone(),
        ),
        Expect::Code("000001"),
        none,
    )
    .await;
    let (sig, ts, n) = basic_query_at(&key, &query, now_ms(), &nonce());
    r.case(
        S,
        "signature in lower case: accepted",
        &key,
        basic_post(
            "/saas",
            &format!("signature={}&timestamp={ts}&nonce={n}", sig.to_lowercase()),
            query.clone(),
        ),
        Expect::Success,
        none,
    )
    .await;
    let (_, ts, n) = basic_query_at(&key, &query, now_ms(), &nonce());
    r.case(
        S,
        "signature missing",
        &key,
        basic_post("/saas", &format!("timestamp={ts}&nonce={n}"), query.clone()),
        Expect::Code("000001"),
        none,
    )
    .await;
    let (sig, ts, n) = basic_query_at(&key, &query, now_ms() - 61_000, &nonce());
    r.case(
        S,
        "timestamp 61 s in the past",
        &key,
        basic_post(
            "/saas",
            &format!("signature={sig}&timestamp={ts}&nonce={n}"),
            query.clone(),
        ),
        Expect::Code("000002"),
        none,
    )
    .await;
    let (sig, ts, _) = basic_query_at(&key, &query, now_ms(), "");
    r.case(
        S,
        "nonce missing",
        &key,
        basic_post(
            "/saas",
            &format!("signature={sig}&timestamp={ts}"),
            query.clone(),
        ),
        Expect::Code("000002"),
        none,
    )
    .await;
    let (n, secs) = (nonce(), (now_ms() / 1000).to_string());
    let sig_s = basic_signature::sign(&key, &n, &secs, &query).to_uppercase();
    r.case(
        S,
        "10-digit timestamp (seconds): accepted",
        &key,
        basic_post(
            "/saas",
            &format!("signature={sig_s}&timestamp={secs}&nonce={n}"),
            query.clone(),
        ),
        Expect::Success,
        none,
    )
    .await;
    let unknown = basic_body(r, "deleteEverything", json!({}));
    r.case(
        S,
        "unknown activity",
        &key,
        basic_post("/saas", &signed(&key, &unknown), unknown),
        Expect::Code("000002"),
        |j| {
            let msg = j["resultMsg"].as_str().unwrap_or("");
            if msg.contains("newInstance") {
                Ok(())
            } else {
                Err(format!(
                    "the message should list the supported activities: {msg}"
                ))
            }
        },
    )
    .await;
    let missing = create(r, &uuid::Uuid::new_v4().to_string(), false);
    r.case(
        S,
        "mandatory field missing (orderLineId)",
        &key,
        basic_post("/saas", &signed(&key, &missing), missing),
        Expect::Code("000002"),
        |j| {
            let msg = j["resultMsg"].as_str().unwrap_or("");
            if msg.contains("orderLineId") {
                Ok(())
            } else {
                Err(format!("the message should name orderLineId: {msg}"))
            }
        },
    )
    .await;
    let unsorted = format!(
        r#"{{"testFlag":"{}","instanceId":"{instance}","activity":"queryInstance"}}"#,
        r.test_flag()
    )
    .into_bytes();
    let sorted = canonical_form(&unsorted).unwrap_or_default();
    r.case(
        S,
        "unsorted body signed over its sorted form: accepted",
        &key,
        basic_post("/saas", &signed(&key, &sorted), unsorted),
        Expect::Success,
        none,
    )
    .await;
    let big = basic_body(
        r,
        "queryInstance",
        json!({"instanceId": instance, "padding": "x".repeat(1 << 20)}),
    );
    r.case(
        S,
        "body larger than 1 MiB",
        &key,
        basic_post("/saas", &signed(&key, &big), big),
        Expect::Code("000002"),
        none,
    )
    .await;
}

// ---------------------------------------------------------------------------------------------
// Kit: POST /saas/produceAPI/v2/<op> and the V1 paths

fn kit_post(key: &str, op: &str, body: &str) -> Request {
    let ts = now_ms().to_string();
    let n = nonce();
    let signed = canonical_form(body.as_bytes()).unwrap_or_else(|| body.as_bytes().to_vec());
    let sign = kit_signature::sign(key, &n, &ts, &signed);
    kit_request(op, &ts, &n, &sign, body)
}

fn kit_request(op: &str, ts: &str, nonce: &str, sign: &str, body: &str) -> Request {
    Request::Post {
        path_and_query: format!("/saas/produceAPI/v2/{op}"),
        headers: vec![
            ("x-timestamp".into(), ts.into()),
            ("x-nonce".into(), nonce.into()),
            ("x-sign".into(), sign.into()),
        ],
        body: body.as_bytes().to_vec(),
    }
}

fn utc8_now() -> String {
    timestamp::format_compact_ms(now_ms() + 8 * 3_600_000)
}

async fn kit(r: &mut Runner) {
    const S: &str = "kit";
    let key = r.key(InterfaceType::Kit);
    let flag = u8::from(r.debug);
    let tenant = unique("simtenant").to_lowercase();
    // Published member order (unsorted), empty instanceId/orderId as during credential application.
    let tenant_body = format!(
        r#"{{"instanceId":"","orderId":"","tenantId":"{tenant}","tenantCode":"sim","name":"模拟企业","domainName":"https://idp.example.com","flag":1,"testFlag":{flag},"timeStamp":"{}"}}"#,
        utc8_now()
    );
    r.case(
        S,
        "tenantSync (credential application, unsorted body)",
        &key,
        kit_post(&key, "tenantSync", &tenant_body),
        Expect::Success,
        none,
    )
    .await;
    r.case(
        S,
        "tenantSync repeated",
        &key,
        kit_post(&key, "tenantSync", &tenant_body),
        Expect::Success,
        none,
    )
    .await;

    match r.secrets().rsa_private_key_pem.clone().map(|pem| public_encryptions(&pem)) {
        Some(Ok(secrets)) => {
            for (label, secret) in secrets {
                let body = json!({"instanceId":"","tenantId":tenant,"appId":"SIMAPP","clientId":"sim-client",
                    "clientSecret":secret,"flag":1,"testFlag":flag,"timeStamp":utc8_now()}).to_string();
                r.case(S, format!("applicationSync, clientSecret {label}"), &key, kit_post(&key, "applicationSync", &body), Expect::Success, none).await;
            }
        }
        Some(Err(e)) => r.cannot_run(S, "applicationSync", e),
        None => r.cannot_run(S, "applicationSync", "the keys file has no rsa_private_key_pem: its public key encrypts clientSecret (koogate keygen)".into()),
    }
    let garbage = json!({"instanceId":"","tenantId":tenant,"appId":"SIMAPP","clientId":"c",
        "clientSecret":"bm90IGEgY2lwaGVydGV4dA==","flag":1,"testFlag":flag,"timeStamp":utc8_now()})
    .to_string();
    r.case(
        S,
        "applicationSync with an undecryptable clientSecret",
        &key,
        kit_post(&key, "applicationSync", &garbage),
        Expect::Code("000002"),
        none,
    )
    .await;

    let auth = json!({"instanceId":"","tenantId":tenant,"appId":"SIMAPP","userList":[
        {"userName":"sim.admin","name":"管理员","orgCode":"265789314","role":"admin","enable":"true"},
        {"userName":"sim.user","name":"用户","orgCode":"00000001","role":"user","enable":"true","employeeType":4}],
        "currentSyncTime":utc8_now(),"flag":1,"testFlag":flag,"timeStamp":utc8_now()}).to_string();
    r.case(
        S,
        "authSync",
        &key,
        kit_post(&key, "authSync", &auth),
        Expect::Success,
        none,
    )
    .await;
    let revoke = json!({"instanceId":"","tenantId":tenant,"appId":"SIMAPP","userList":[{"userName":"sim.user"}],
        "currentSyncTime":utc8_now(),"flag":3,"testFlag":flag,"timeStamp":utc8_now()}).to_string();
    r.case(
        S,
        "authSync flag 3 (revoke)",
        &key,
        kit_post(&key, "authSync", &revoke),
        Expect::Success,
        none,
    )
    .await;
    let single =
        json!({"instanceId":"","tenantId":tenant,"orgCode":"10000","orgName":"Development",
        "parentCode":"","flag":1,"testFlag":flag,"timeStamp":utc8_now()})
        .to_string();
    r.case(
        S,
        "singleOrgSync",
        &key,
        kit_post(&key, "singleOrgSync", &single),
        Expect::Success,
        none,
    )
    .await;
    let array = json!({"instanceId":"","tenantId":tenant,"orgInfoList":[
        {"orgCode":"00000001","orgName":"Product","parentCode":"265789314"},
        {"orgCode":"265789314","orgName":"Headquarters","parentCode":""}],"testFlag":flag,"timeStamp":utc8_now()}).to_string();
    r.case(
        S,
        "allOrgSync, orgInfoList as an array",
        &key,
        kit_post(&key, "allOrgSync", &array),
        Expect::Success,
        none,
    )
    .await;
    let lenient = json!({"instanceId":"","tenantId":tenant,
        "orgInfoList":"[{orgCode:\"00000001\", orgName:\"Product\", parentCode:\"265789314\"},{orgCode:\"265789314\",orgName:\"Headquarters\",parentCode:\"\"}]",
        "flag":1,"testFlag":flag,"timeStamp":utc8_now()}).to_string();
    r.case(
        S,
        "allOrgSync, orgInfoList as a lenient string",
        &key,
        kit_post(&key, "allOrgSync", &lenient),
        Expect::Success,
        none,
    )
    .await;

    let ts = now_ms().to_string();
    let n = nonce();
    r.case(
        S,
        "x-sign wrong",
        &key,
        kit_request("tenantSync", &ts, &n, &"0".repeat(64), &tenant_body),
        Expect::Code("000001"),
        none,
    )
    .await;
    let stale = (now_ms() - 61_000).to_string();
    let n = nonce();
    let sign = kit_signature::sign(&key, &n, &stale, tenant_body.as_bytes());
    r.case(
        S,
        "x-timestamp 61 s old",
        &key,
        kit_request("tenantSync", &stale, &n, &sign, &tenant_body),
        Expect::Code("000002"),
        none,
    )
    .await;
    let ts = now_ms().to_string();
    let n = nonce();
    let sign = kit_signature::sign(&key, &n, &ts, tenant_body.as_bytes());
    r.case(
        S,
        "tenantSync signed over the raw body",
        &key,
        kit_request("tenantSync", &ts, &n, &sign, &tenant_body),
        Expect::Success,
        none,
    )
    .await;
    r.case(
        S,
        "same x-nonce again: replay refused",
        &key,
        kit_request("tenantSync", &ts, &n, &sign, &tenant_body),
        Expect::Code("000001"),
        none,
    )
    .await;

    // V1 kit: authToken header, legacy key.
    let legacy = r.key(InterfaceType::Legacy);
    let v1 =
        json!({"instanceId":"","orderId":"","tenantId":tenant,"tenantCode":"sim","name":"模拟企业",
        "domainName":"https://idp.example.com","flag":1,"testFlag":flag,"timeStamp":utc8_now()})
        .to_string();
    let token = v1_auth::sign_post(&legacy, v1.as_bytes()).unwrap_or_default();
    let v1_request = || Request::Post {
        path_and_query: "/saas/produceAPI/tenantSync".into(),
        headers: vec![("authToken".into(), token.clone())],
        body: v1.as_bytes().to_vec(),
    };
    r.case(
        S,
        "V1 tenantSync (authToken header)",
        &legacy,
        v1_request(),
        Expect::Success,
        none,
    )
    .await;
    r.case(
        S,
        "V1 same authToken again: replay refused",
        &legacy,
        v1_request(),
        Expect::Code("000001"),
        none,
    )
    .await;
    let users =
        r#"[{"userName":"v1.user","name":"V1","orgCode":"1","role":"user","enable":"true"}]"#;
    let v1_auth_body = json!({"instanceId":"","tenantId":tenant,"appId":"SIMAPP","userList":users,
        "currentSyncTime":utc8_now(),"flag":1,"testFlag":flag,"timeStamp":utc8_now()})
    .to_string();
    let token = v1_auth::sign_post(&legacy, v1_auth_body.as_bytes()).unwrap_or_default();
    r.case(
        S,
        "V1 authSync (userList as a string)",
        &legacy,
        Request::Post {
            path_and_query: "/saas/produceAPI/authSync".into(),
            headers: vec![("authToken".into(), token)],
            body: v1_auth_body.into_bytes(),
        },
        Expect::Success,
        none,
    )
    .await;
}

/// `clientSecret` encrypted to the public key of `pem` with each OAEP variant of D15.
fn public_encryptions(pem: &str) -> Result<Vec<(&'static str, String)>, String> {
    use rsa::pkcs1::DecodeRsaPrivateKey;
    use rsa::pkcs8::DecodePrivateKey;
    let key = rsa::RsaPrivateKey::from_pkcs8_pem(pem.trim())
        .or_else(|_| rsa::RsaPrivateKey::from_pkcs1_pem(pem.trim()))
        .map_err(|_| "rsa_private_key_pem is not a PEM RSA key".to_string())?;
    let public = key.to_public_key();
    let mut rng = rand::rngs::OsRng;
    let plain = b"sim-client-secret";
    let variants: [(&'static str, rsa::Oaep); 3] = [
        (
            "OAEP SHA-256/MGF1-SHA-1",
            rsa::Oaep::new_with_mgf_hash::<sha2::Sha256, sha1::Sha1>(),
        ),
        (
            "OAEP SHA-256/MGF1-SHA-256",
            rsa::Oaep::new::<sha2::Sha256>(),
        ),
        ("OAEP SHA-1/MGF1-SHA-1", rsa::Oaep::new::<sha1::Sha1>()),
    ];
    variants
        .into_iter()
        .map(|(label, padding)| {
            public
                .encrypt(&mut rng, padding, plain)
                .map(|c| (label, base64::engine::general_purpose::STANDARD.encode(c)))
                .map_err(|e| format!("cannot encrypt a test clientSecret: {e}"))
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// License 2.0 (POST /license), order notification (POST /order-notify)

async fn license(r: &mut Runner) {
    const S: &str = "license";
    let key = r.key(InterfaceType::License);
    let code = unique("SIMLIC");
    let refresh = basic_body(
        r,
        "refreshLicenseCode",
        json!({"license": code, "orderId": unique("SIMCS"),
        "orderLineId": unique("SIMCS"), "productId": "OFFI000000000000000001", "expireTime": "20310523201932", "scene": "RENEWAL"}),
    );
    r.case(
        S,
        "refreshLicenseCode",
        &key,
        basic_post("/license", &signed(&key, &refresh), refresh),
        Expect::Success,
        none,
    )
    .await;
    for status in ["FREEZE", "UNFREEZE"] {
        let b = basic_body(
            r,
            "updateLicenseCodeStatus",
            json!({"license": code, "status": status}),
        );
        r.case(
            S,
            format!("updateLicenseCodeStatus {status}"),
            &key,
            basic_post("/license", &signed(&key, &b), b),
            Expect::Success,
            none,
        )
        .await;
    }
    let release_order = unique("SIMCS");
    for n in [
        "releaseLicenseCode",
        "releaseLicenseCode again (idempotent)",
    ] {
        let b = basic_body(
            r,
            "releaseLicenseCode",
            json!({"license": code, "orderId": release_order, "orderLineId": format!("{release_order}-000001")}),
        );
        r.case(
            S,
            n,
            &key,
            basic_post("/license", &signed(&key, &b), b),
            Expect::Success,
            none,
        )
        .await;
    }
    let basic = r.key(InterfaceType::Basic);
    let b = basic_body(r, "releaseLicenseCode", json!({"license": code}));
    r.case(
        S,
        "signed with another interface type's key",
        &key,
        basic_post("/license", &signed(&basic, &b), b),
        Expect::Code("000001"),
        none,
    )
    .await;
}

async fn notify(r: &mut Runner) {
    const S: &str = "notify";
    let key = r.key(InterfaceType::General);
    let order = unique("SIMCS");
    for n in ["orderNotify", "orderNotify repeated"] {
        let b = basic_body(
            r,
            "orderNotify",
            json!({"orderId": order, "orderLineId": format!("{order}-000001")}),
        );
        r.case(
            S,
            n,
            &key,
            basic_post("/order-notify", &signed(&key, &b), b),
            Expect::Success,
            none,
        )
        .await;
    }
    let b = basic_body(r, "orderNotify", json!({"orderId": order}));
    r.case(
        S,
        "orderNotify without orderLineId",
        &key,
        basic_post("/order-notify", &signed(&key, &b), b),
        Expect::Code("000002"),
        none,
    )
    .await;
}

// ---------------------------------------------------------------------------------------------
// V1: GET /saas and GET /license (legacy key)

/// A V1 GET query: `params` plus `timeStamp` (UTC) and the authToken, raw or percent-encoded.
fn v1_query(key: &str, params: &[(&str, String)], raw_token: bool) -> String {
    let mut all: Vec<(String, String)> = params
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    all.push(("timeStamp".into(), timestamp::format_compact_ms(now_ms())));
    let token = v1_auth::sign_get(key, &all);
    let mut q: Vec<String> = all
        .iter()
        .map(|(k, v)| format!("{k}={}", v1_auth::encode_component(v)))
        .collect();
    q.push(if raw_token {
        format!("authToken={token}")
    } else {
        format!("authToken={}", v1_auth::encode_component(&token))
    });
    q.join("&")
}

async fn legacy(r: &mut Runner) {
    const S: &str = "legacy";
    let key = r.key(InterfaceType::Legacy);
    let flag = r.test_flag().to_string();
    let order = unique("SIMV1");
    let business = uuid::Uuid::new_v4().to_string();
    let params = |business: &str| -> Vec<(&'static str, String)> {
        vec![
            ("activity", "newInstance".into()),
            ("businessId", business.into()),
            ("customerId", "68cbc86abc2018ab880d92f36422fa0e".into()),
            ("expireTime", "20300727153156".into()),
            ("orderId", order.clone()),
            ("productId", "00301-666666-0--0".into()),
            ("testFlag", flag.clone()),
        ]
    };
    // Find a token with '+' to send raw, as some V1 callers do (D16).
    let mut raw = v1_query(&key, &params(&business), true);
    for _ in 0..200 {
        if raw
            .rsplit("authToken=")
            .next()
            .is_some_and(|t| t.contains('+'))
        {
            break;
        }
        raw = v1_query(&key, &params(&business), true);
    }
    let created = r
        .case(
            S,
            "V1 newInstance (raw token with '+')",
            &key,
            Request::Get {
                path_and_query: format!("/saas?{raw}"),
            },
            Expect::Success,
            |j| {
                require(j, "instanceId")?;
                require(j.get("appInfo").unwrap_or(j), "frontEndUrl")?;
                app_info_lengths(j)
            },
        )
        .await;
    r.case(
        S,
        "V1 same authToken again: replay refused",
        &key,
        Request::Get {
            path_and_query: format!("/saas?{raw}"),
        },
        Expect::Code("000001"),
        none,
    )
    .await;
    let instance = created
        .as_ref()
        .and_then(|j| j["instanceId"].as_str())
        .unwrap_or("")
        .to_string();
    let steps: [(&str, Vec<(&str, String)>); 4] = [
        (
            "V1 refreshInstance",
            vec![
                ("activity", "refreshInstance".into()),
                ("expireTime", "20310725000000".into()),
                ("instanceId", instance.clone()),
                ("orderId", unique("SIMV1REN")),
                ("testFlag", flag.clone()),
            ],
        ),
        (
            "V1 expireInstance",
            vec![
                ("activity", "expireInstance".into()),
                ("instanceId", instance.clone()),
                ("orderId", order.clone()),
                ("testFlag", flag.clone()),
            ],
        ),
        (
            "V1 releaseInstance",
            vec![
                ("activity", "releaseInstance".into()),
                ("instanceId", instance.clone()),
                ("orderId", order.clone()),
                ("testFlag", flag.clone()),
            ],
        ),
        (
            "V1 releaseInstance again (idempotent)",
            vec![
                ("activity", "releaseInstance".into()),
                ("instanceId", instance.clone()),
                ("orderId", order.clone()),
                ("testFlag", flag.clone()),
            ],
        ),
    ];
    for (name, p) in steps {
        let q = v1_query(&key, &p, false);
        r.case(
            S,
            name,
            &key,
            Request::Get {
                path_and_query: format!("/saas?{q}"),
            },
            Expect::Success,
            none,
        )
        .await;
    }
    let wrong = v1_query(
        &r.key(InterfaceType::Basic),
        &params(&uuid::Uuid::new_v4().to_string()),
        false,
    );
    r.case(
        S,
        "V1 signed with the V2 basic key",
        &key,
        Request::Get {
            path_and_query: format!("/saas?{wrong}"),
        },
        Expect::Code("000001"),
        none,
    )
    .await;
    let lic = vec![
        ("activity", "getLicense".into()),
        ("businessId", uuid::Uuid::new_v4().to_string()),
        ("customerId", "c1".into()),
        ("orderId", unique("SIMLIC")),
        ("productId", "P1".into()),
        ("testFlag", flag.clone()),
    ];
    let q = v1_query(&key, &lic, false);
    r.case(
        S,
        "old License getLicense",
        &key,
        Request::Get {
            path_and_query: format!("/license?{q}"),
        },
        Expect::Success,
        |j| require(j, "license").map(drop),
    )
    .await;
}
