//! The joint-operation kit sync interfaces (docs/protocol.md (inbound-kit)) through the Lambda adapter and the
//! pipeline, on SQLite and on DynamoDB (moto): verification of both schemes, every flag of every
//! interface, both list forms, the directory each call leaves behind, repeats and debug traffic.

use std::sync::Arc;

use base64::Engine;
use koogate_kit::KitFunction;
use koogate_protocol::kit_request::{KitOp, KitVersion};
use koogate_protocol::{canonical_form, timestamp};
use koogate_runtime::{pipeline, App};
use koogate_store::directory::Directory;
use koogate_store::{Partition, Store};
use koogate_tests::geminidb::Mode;
use koogate_tests::*;
use rsa::pkcs8::DecodePrivateKey;
use serde_json::{json, Value};

fn path(op: KitOp, v: KitVersion) -> String {
    match v {
        KitVersion::V2 => format!("/saas/produceAPI/v2/{}", op.name()),
        KitVersion::V1 => format!("/saas/produceAPI/{}", op.name()),
    }
}

/// Sends `body` to `op` on its V2 route, signed over the raw bytes with the kit key.
async fn v2(app: &Arc<App>, op: KitOp, body: &Value) -> Answered {
    let body = body.to_string();
    v2_with(app, op, &kit_headers(KIT_KEY, body.as_bytes()), &body).await
}

async fn v2_with(app: &Arc<App>, op: KitOp, headers: &[(String, String)], body: &str) -> Answered {
    let f = KitFunction::new(op, KitVersion::V2);
    let e = post_to(&path(op, KitVersion::V2), headers, body.as_bytes());
    invoke_function(app, &f, e, &uuid::Uuid::new_v4().to_string()).await
}

/// Sends `body` (which must carry `timeStamp`) to `op` on its V1 route with the legacy key.
async fn v1(app: &Arc<App>, op: KitOp, body: &Value) -> Answered {
    let body = body.to_string();
    let headers = v1_post_headers(LEGACY_KEY, body.as_bytes());
    v1_with(app, op, &headers, &body).await
}

async fn v1_with(app: &Arc<App>, op: KitOp, headers: &[(String, String)], body: &str) -> Answered {
    let f = KitFunction::new(op, KitVersion::V1);
    let e = post_to(&path(op, KitVersion::V1), headers, body.as_bytes());
    invoke_function(app, &f, e, &uuid::Uuid::new_v4().to_string()).await
}

fn now_utc8() -> String {
    timestamp::format_compact_ms(pipeline::now_ms() + 8 * 3600 * 1000)
}

fn tenant_body(tenant: &str, flag: u8) -> Value {
    json!({"instanceId":"inst-1","orderId":"CS1906666666ABCDE","tenantId":tenant,
           "tenantCode":"huawei","name":"华为测试企业","domainName":"https://idp.example.com",
           "flag":flag,"testFlag":0,"timeStamp":now_utc8()})
}

fn user(name: &str, org: &str, enable: bool) -> Value {
    json!({"userName":name,"name":format!("用户 {name}"),"orgCode":org,"position":"engineer",
           "role":if name.ends_with("0") {"admin"} else {"user"},"enable":enable.to_string(),
           "employeeType":1,"mobile":"13800000000","email":"someone@example.com"})
}

fn auth_body(tenant: &str, app_id: &str, users: Vec<Value>, flag: u8) -> Value {
    json!({"instanceId":"inst-1","tenantId":tenant,"appId":app_id,"userList":users,
           "currentSyncTime":now_utc8(),"flag":flag,"testFlag":0,"timeStamp":now_utc8()})
}

/// A `clientSecret` as the marketplace produces it: RSA-OAEP to the merchant's public key.
fn encrypted_secret(plain: &str) -> String {
    let key = rsa::RsaPrivateKey::from_pkcs8_pem(MERCHANT_RSA_PEM).unwrap();
    let cipher = key
        .to_public_key()
        .encrypt(
            &mut rand::rngs::OsRng,
            rsa::Oaep::new_with_mgf_hash::<sha2::Sha256, sha1::Sha1>(),
            plain.as_bytes(),
        )
        .unwrap();
    base64::engine::general_purpose::STANDARD.encode(cipher)
}

fn unique(label: &str) -> String {
    format!("{label}-{}", uuid::Uuid::new_v4().simple())
}

#[tokio::test]
async fn tenant_sync_verifies_the_headers_in_the_documented_order() {
    let app = sqlite_app(&[]);
    let tenant = unique("t");
    let body = tenant_body(&tenant, 1).to_string();
    let good = kit_headers(KIT_KEY, body.as_bytes());
    let with = |name: &str, value: Option<&str>| -> Vec<(String, String)> {
        let mut h: Vec<(String, String)> =
            good.iter().filter(|(k, _)| k != name).cloned().collect();
        if let Some(v) = value {
            h.push((name.to_string(), v.to_string()));
        }
        h
    };
    let stale = (pipeline::now_ms() - 120_000).to_string();
    type Case<'a> = (&'a str, Vec<(String, String)>, &'a str);
    let cases: Vec<Case> = vec![
        (
            "wrong x-sign",
            with("x-sign", Some(&"0".repeat(64))),
            "000001",
        ),
        ("missing x-sign", with("x-sign", None), "000001"),
        ("missing x-nonce", with("x-nonce", None), "000002"),
        (
            "stale x-timestamp",
            with("x-timestamp", Some(&stale)),
            "000002",
        ),
        ("missing x-timestamp", with("x-timestamp", None), "000002"),
        (
            "non-numeric x-timestamp",
            with("x-timestamp", Some("yesterday")),
            "000002",
        ),
    ];
    for (label, headers, code) in cases {
        let a = v2_with(&app, KitOp::TenantSync, &headers, &body).await;
        assert_eq!(a.code(), code, "{label}: {}", a.body);
        assert!(
            a.signed_with(KIT_KEY),
            "{label}: answer signed with the kit key"
        );
    }
    // Another interface type's key does not verify a kit call.
    let basic = kit_headers(KEY, body.as_bytes());
    assert_eq!(
        v2_with(&app, KitOp::TenantSync, &basic, &body).await.code(),
        "000001"
    );

    let dir = Directory::new(app.store.as_ref(), Partition::Production, &tenant);
    assert_eq!(
        dir.tenant().await.unwrap(),
        None,
        "nothing stored by refused calls"
    );

    let ok = v2_with(&app, KitOp::TenantSync, &good, &body).await;
    assert_eq!(ok.code(), "000000", "{}", ok.body);
    assert!(ok.signed_with(KIT_KEY));
    assert_eq!(ok.content_type, "application/json");
    let replay = v2_with(&app, KitOp::TenantSync, &good, &body).await;
    assert_eq!(replay.code(), "000001", "a replayed nonce");
    let stored = dir.tenant().await.unwrap().expect("tenant stored");
    assert_eq!(stored.domain_name, "https://idp.example.com");
    assert_eq!(stored.name, "华为测试企业");
    assert!(!stored.deleted);
}

#[tokio::test]
async fn a_body_signed_over_its_canonical_form_with_unsorted_keys_and_chinese_text_verifies() {
    let app = sqlite_app(&[]);
    let tenant = unique("t");
    // Unsorted members, non-ASCII text and a slash: the canonical form differs from the bytes.
    let body = format!(
        r#"{{"timeStamp":"{}","testFlag":0,"flag":1,"name":"联营企业/研发","tenantId":"{tenant}","instanceId":"i","orderId":"o","tenantCode":"c","domainName":"https://idp.example.com"}}"#,
        now_utc8()
    );
    let canonical = canonical_form(body.as_bytes()).unwrap();
    assert_ne!(&canonical[..], body.as_bytes());
    let headers = kit_headers(KIT_KEY, &canonical[..]);
    let a = v2_with(&app, KitOp::TenantSync, &headers, &body).await;
    assert_eq!(a.code(), "000000", "{}", a.body);
    let dir = Directory::new(app.store.as_ref(), Partition::Production, &tenant);
    assert_eq!(dir.tenant().await.unwrap().unwrap().name, "联营企业/研发");
}

#[tokio::test]
async fn tenant_flags_add_modify_delete_and_repeats() {
    let app = sqlite_app(&[]);
    let tenant = unique("t");
    let dir = Directory::new(app.store.as_ref(), Partition::Production, &tenant);

    // Delete of an unknown tenant succeeds and stores nothing.
    assert_eq!(
        v2(&app, KitOp::TenantSync, &tenant_body(&tenant, 0))
            .await
            .code(),
        "000000"
    );
    assert_eq!(dir.tenant().await.unwrap(), None);

    for _ in 0..2 {
        assert_eq!(
            v2(&app, KitOp::TenantSync, &tenant_body(&tenant, 1))
                .await
                .code(),
            "000000"
        );
    }
    let mut modify = tenant_body(&tenant, 2);
    modify["domainName"] = json!("https://new-idp.example.com");
    assert_eq!(v2(&app, KitOp::TenantSync, &modify).await.code(), "000000");
    assert_eq!(
        dir.tenant().await.unwrap().unwrap().domain_name,
        "https://new-idp.example.com"
    );
    for _ in 0..2 {
        assert_eq!(
            v2(&app, KitOp::TenantSync, &tenant_body(&tenant, 0))
                .await
                .code(),
            "000000"
        );
    }
    let deleted = dir.tenant().await.unwrap().unwrap();
    assert!(deleted.deleted, "kept, marked deleted");
    assert_eq!(deleted.domain_name, "https://new-idp.example.com");

    // Flag 2 is V2 only; a bad flag names the field.
    let mut v1_modify = tenant_body(&tenant, 2);
    v1_modify["timeStamp"] = json!(now_utc8());
    let a = v1(&app, KitOp::TenantSync, &v1_modify).await;
    assert_eq!(a.code(), "000002");
    assert!(
        a.json["resultMsg"].as_str().unwrap().contains("flag"),
        "{}",
        a.body
    );
}

#[tokio::test]
async fn application_sync_checks_the_client_secret_with_the_merchant_key() {
    let app = sqlite_app(&[]);
    let tenant = unique("t");
    let dir = Directory::new(app.store.as_ref(), Partition::Production, &tenant);
    let secret = encrypted_secret("oauth-client-secret-001");
    let body = |secret: &str, flag: u8| {
        json!({"instanceId":"inst-1","tenantId":tenant,"appId":"KSIDJF1234456",
               "clientId":"bc20a1b2c3d4880d92f3","clientSecret":secret,"flag":flag,
               "testFlag":0,"timeStamp":now_utc8()})
    };
    // The app may arrive before its tenant (docs/protocol.md, inbound-kit §2.5).
    let a = v2(&app, KitOp::ApplicationSync, &body(&secret, 1)).await;
    assert_eq!(a.code(), "000000", "{}", a.body);
    let stored = dir.app("KSIDJF1234456").await.unwrap().unwrap();
    assert_eq!(
        stored.client_secret, secret,
        "ciphertext stored exactly as received"
    );
    assert_eq!(stored.client_id, "bc20a1b2c3d4880d92f3");

    for garbage in [
        "not base64 at all!",
        "AAAA",
        &base64::engine::general_purpose::STANDARD.encode([7u8; 384]),
    ] {
        let a = v2(&app, KitOp::ApplicationSync, &body(garbage, 2)).await;
        assert_eq!(a.code(), "000002", "{garbage}: {}", a.body);
        assert!(
            a.json["resultMsg"]
                .as_str()
                .unwrap()
                .contains("clientSecret"),
            "{}",
            a.body
        );
    }
    assert_eq!(
        dir.app("KSIDJF1234456")
            .await
            .unwrap()
            .unwrap()
            .client_secret,
        secret,
        "a refused modify changes nothing"
    );

    // Delete needs no secret, and repeats succeed.
    for _ in 0..2 {
        assert_eq!(
            v2(&app, KitOp::ApplicationSync, &body("", 0)).await.code(),
            "000000"
        );
    }
    assert_eq!(dir.app("KSIDJF1234456").await.unwrap(), None);

    // V1, and a secret encrypted with SHA-1 OAEP.
    let key = rsa::RsaPrivateKey::from_pkcs8_pem(MERCHANT_RSA_PEM).unwrap();
    let sha1 = key
        .to_public_key()
        .encrypt(&mut rand::rngs::OsRng, rsa::Oaep::new::<sha1::Sha1>(), b"s")
        .unwrap();
    let sha1 = base64::engine::general_purpose::STANDARD.encode(sha1);
    assert_eq!(
        v1(&app, KitOp::ApplicationSync, &body(&sha1, 1))
            .await
            .code(),
        "000000"
    );
}

async fn auth_sync_flow(store: Arc<dyn Store>) {
    let app = app(store, &[]);
    let tenant = unique("t");
    let dir = Directory::new(app.store.as_ref(), Partition::Production, &tenant);
    let users: Vec<Value> = (0..500)
        .map(|i| user(&format!("user{i:03}"), "dept-not-synced-yet", i % 7 != 0))
        .collect();
    let a = v2(
        &app,
        KitOp::AuthSync,
        &auth_body(&tenant, "app-1", users.clone(), 1),
    )
    .await;
    assert_eq!(a.code(), "000000", "{}", a.body);
    let a = v2(
        &app,
        KitOp::AuthSync,
        &auth_body(&tenant, "app-1", users, 1),
    )
    .await;
    assert_eq!(a.code(), "000000", "a repeat succeeds");
    let stored = dir.users().await.unwrap();
    assert_eq!(
        stored.len(),
        500,
        "one record per user, whatever the repeats"
    );
    let u7 = dir.user("user007").await.unwrap().unwrap();
    assert!(!u7.enable);
    assert_eq!(u7.org_code, "dept-not-synced-yet");
    assert_eq!(u7.email.as_deref(), Some("someone@example.com"));
    assert_eq!(dir.user("user010").await.unwrap().unwrap().role, "admin");
    assert!(dir.access("user001", "app-1").await.unwrap().is_some());

    // Modify: role and enable change.
    let mut changed = user("user001", "d2", false);
    changed["role"] = json!("admin");
    assert_eq!(
        v2(
            &app,
            KitOp::AuthSync,
            &auth_body(&tenant, "app-1", vec![changed], 2)
        )
        .await
        .code(),
        "000000"
    );
    let u1 = dir.user("user001").await.unwrap().unwrap();
    assert_eq!(
        (u1.role.as_str(), u1.enable, u1.org_code.as_str()),
        ("admin", false, "d2")
    );

    // Revoke (3): the grant goes, the record stays.
    let revoke = auth_body(&tenant, "app-1", vec![json!({"userName":"user002"})], 3);
    assert_eq!(v2(&app, KitOp::AuthSync, &revoke).await.code(), "000000");
    assert!(dir.user("user002").await.unwrap().is_some());
    assert_eq!(dir.access("user002", "app-1").await.unwrap(), None);

    // Delete (0): both go; deleting an unknown user succeeds.
    let delete = auth_body(
        &tenant,
        "app-1",
        vec![json!({"userName":"user003"}), json!({"userName":"nobody"})],
        0,
    );
    for _ in 0..2 {
        assert_eq!(v2(&app, KitOp::AuthSync, &delete).await.code(), "000000");
    }
    assert_eq!(dir.user("user003").await.unwrap(), None);
    assert_eq!(dir.access("user003", "app-1").await.unwrap(), None);
    assert_eq!(dir.users().await.unwrap().len(), 499);
}

#[tokio::test]
async fn auth_sync_of_500_users_with_every_flag_on_sqlite() {
    auth_sync_flow(Arc::new(
        koogate_store::sqlite::SqliteStore::in_memory().unwrap(),
    ))
    .await;
}

#[tokio::test]
async fn auth_sync_of_500_users_with_every_flag_on_dynamodb() {
    let Some(moto) = MotoServer::shared() else {
        return;
    };
    auth_sync_flow(Arc::new(moto.store().await)).await;
}

/// DynamoDB requests per kit call, counted on the wire: a tenantSync is a read of the stored
/// tenant, the nonce, one batch write (the tenant and its event's intent) and the events' commit
/// marker; an authSync of 500 users is two Queries (stored users and grants), the nonce, 60
/// batches of 25 (user + grant + event intent per user) and the marker.
#[tokio::test]
async fn dynamodb_requests_per_kit_call() {
    let Some(moto) = MotoServer::shared() else {
        return;
    };
    let (store, counter) = moto.counted_store(Mode::Check).await;
    let app = app(Arc::new(store), &[]);
    let tenant = unique("t");
    let before = counter.snapshot();
    assert_eq!(
        v2(&app, KitOp::TenantSync, &tenant_body(&tenant, 1))
            .await
            .code(),
        "000000"
    );
    let t = counter.snapshot().since(&before);
    assert_eq!((t.get("PutItem"), t.get("BatchWriteItem")), (2, 1), "{t:?}");
    // One read: the stored tenant, so that a resent sync emits no event.
    assert_eq!((t.writes(), t.reads()), (3, 1), "{t:?}");

    let users: Vec<Value> = (0..500)
        .map(|i| user(&format!("u{i}"), "o", true))
        .collect();
    let before = counter.snapshot();
    let a = v2(
        &app,
        KitOp::AuthSync,
        &auth_body(&tenant, "app-1", users, 1),
    )
    .await;
    assert_eq!(a.code(), "000000");
    let c = counter.snapshot().since(&before);
    assert_eq!(
        (c.get("PutItem"), c.get("BatchWriteItem")),
        (2, 60),
        "{c:?}"
    );
    // The stored users and grants, one Query each: only what changed is an event.
    assert_eq!(c.get("Query"), 2, "{c:?}");
    assert_eq!(c.reads(), 2, "{c:?}");
}

#[tokio::test]
async fn v1_auth_sync_takes_user_list_as_a_string_and_has_no_flag_3() {
    let app = sqlite_app(&[]);
    let tenant = unique("t");
    let dir = Directory::new(app.store.as_ref(), Partition::Production, &tenant);
    let users = r#"[{"userName":"li.si","name":"李四","orgCode":"10","role":"user","enable":"true","extension":{"entryDate":"2022-11-9","employeeType":"4","workPlace":"南京"}}]"#;
    let body = json!({"instanceId":"i","tenantId":tenant,"appId":"app-1","userList":users,
                      "currentSyncTime":now_utc8(),"flag":1,"testFlag":0,"timeStamp":now_utc8()});
    let a = v1(&app, KitOp::AuthSync, &body).await;
    assert_eq!(a.code(), "000000", "{}", a.body);
    assert!(
        a.signed_with(LEGACY_KEY),
        "V1 answers are signed with the legacy key"
    );
    let u = dir.user("li.si").await.unwrap().unwrap();
    assert_eq!(u.work_place.as_deref(), Some("南京"));
    assert_eq!(u.employee_type, Some(4));

    let mut revoke = body.clone();
    revoke["flag"] = json!(3);
    revoke["timeStamp"] = json!(now_utc8());
    assert_eq!(v1(&app, KitOp::AuthSync, &revoke).await.code(), "000002");
}

#[tokio::test]
async fn v1_authentication_failures_have_their_codes() {
    let app = sqlite_app(&[]);
    let tenant = unique("t");
    let body = tenant_body(&tenant, 1);
    let text = body.to_string();
    let good = v1_post_headers(LEGACY_KEY, text.as_bytes());

    assert_eq!(
        v1_with(&app, KitOp::TenantSync, &[], &text).await.code(),
        "000001"
    );
    let wrong = v1_post_headers("another-key", text.as_bytes());
    assert_eq!(
        v1_with(&app, KitOp::TenantSync, &wrong, &text).await.code(),
        "000001"
    );
    // The kit V2 key is not the V1 key.
    let kit = v1_post_headers(KIT_KEY, text.as_bytes());
    assert_eq!(
        v1_with(&app, KitOp::TenantSync, &kit, &text).await.code(),
        "000001"
    );

    let mut stale = body.clone();
    stale["timeStamp"] = json!(timestamp::format_compact_ms(pipeline::now_ms() - 3_600_000));
    let stale_text = stale.to_string();
    let h = v1_post_headers(LEGACY_KEY, stale_text.as_bytes());
    assert_eq!(
        v1_with(&app, KitOp::TenantSync, &h, &stale_text)
            .await
            .code(),
        "000002"
    );

    // timeStamp read as UTC (the V1 GET convention) is fresh too (D16).
    let mut utc = body.clone();
    utc["timeStamp"] = json!(timestamp::format_compact_ms(pipeline::now_ms()));
    let utc_text = utc.to_string();
    let h = v1_post_headers(LEGACY_KEY, utc_text.as_bytes());
    assert_eq!(
        v1_with(&app, KitOp::TenantSync, &h, &utc_text).await.code(),
        "000000"
    );

    let a = v1_with(&app, KitOp::TenantSync, &good, &text).await;
    assert_eq!(a.code(), "000000", "{}", a.body);
    let again = v1_with(&app, KitOp::TenantSync, &good, &text).await;
    assert_eq!(again.code(), "000001", "a reused authToken");
}

#[tokio::test]
async fn department_syncs_keep_a_tree_and_soft_delete() {
    let app = sqlite_app(&[]);
    let tenant = unique("t");
    let dir = Directory::new(app.store.as_ref(), Partition::Production, &tenant);
    let single = |code: &str, name: &str, parent: &str, flag: u8| {
        json!({"instanceId":"i","tenantId":tenant,"orgCode":code,"orgName":name,
               "parentCode":parent,"flag":flag,"testFlag":0,"timeStamp":now_utc8()})
    };
    // A child before its parent is kept as given.
    assert_eq!(
        v2(
            &app,
            KitOp::SingleOrgSync,
            &single("20", "研发一部", "10", 1)
        )
        .await
        .code(),
        "000000"
    );
    assert_eq!(
        v2(&app, KitOp::SingleOrgSync, &single("10", "研发", "", 1))
            .await
            .code(),
        "000000"
    );
    assert_eq!(
        v2(&app, KitOp::SingleOrgSync, &single("20", "研发1部", "", 2))
            .await
            .code(),
        "000000"
    );
    let d20 = dir.department("20").await.unwrap().unwrap();
    assert_eq!(
        (d20.org_name.as_str(), d20.parent_code.as_str()),
        ("研发1部", "")
    );
    for _ in 0..2 {
        assert_eq!(
            v2(&app, KitOp::SingleOrgSync, &single("20", "", "", 0))
                .await
                .code(),
            "000000"
        );
    }
    assert!(dir.department("20").await.unwrap().unwrap().deleted);
    assert_eq!(
        v2(&app, KitOp::SingleOrgSync, &single("99", "", "", 0))
            .await
            .code(),
        "000000"
    );
    assert_eq!(dir.department("99").await.unwrap(), None);

    // Full sync as a string with bare member names (the published example, extra flag member).
    let list = r#"[{orgCode:"00000001", orgName:"Product", parentCode:"265789314"},{orgCode:"265789314",orgName:"Headquarters",parentCode:""}]"#;
    let full = json!({"instanceId":"i","tenantId":tenant,"orgInfoList":list,"flag":1,
                      "testFlag":0,"timeStamp":now_utc8()});
    for _ in 0..2 {
        let a = v2(&app, KitOp::AllOrgSync, &full).await;
        assert_eq!(a.code(), "000000", "{}", a.body);
    }
    let all = dir.departments().await.unwrap();
    let live: Vec<&str> = all
        .iter()
        .filter(|d| !d.deleted)
        .map(|d| d.org_code.as_str())
        .collect();
    assert_eq!(
        live,
        ["00000001", "265789314"],
        "absent departments soft-deleted"
    );
    assert!(dir.department("10").await.unwrap().unwrap().deleted);

    // As an array, and V1's orgInfo string with `name`.
    let array = json!({"instanceId":"i","tenantId":tenant,"testFlag":0,"timeStamp":now_utc8(),
        "orgInfoList":[{"orgCode":"265789314","orgName":"总部","parentCode":""}]});
    assert_eq!(v2(&app, KitOp::AllOrgSync, &array).await.code(), "000000");
    assert_eq!(
        dir.department("265789314").await.unwrap().unwrap().org_name,
        "总部"
    );
    assert!(dir.department("00000001").await.unwrap().unwrap().deleted);
    let v1_body = json!({"instanceId":"i","tenantId":tenant,"testFlag":0,"timeStamp":now_utc8(),
        "orgInfo":r#"[{"orgCode":"1","name":"一部","parentCode":""}]"#});
    assert_eq!(v1(&app, KitOp::AllOrgSync, &v1_body).await.code(), "000000");
    assert!(!dir.department("1").await.unwrap().unwrap().deleted);

    let garbage = json!({"instanceId":"i","tenantId":tenant,"orgInfoList":"[{orgCode:","testFlag":0,"timeStamp":now_utc8()});
    let a = v2(&app, KitOp::AllOrgSync, &garbage).await;
    assert_eq!(a.code(), "000002");
    assert!(
        a.json["resultMsg"]
            .as_str()
            .unwrap()
            .contains("orgInfoList"),
        "{}",
        a.body
    );
}

#[tokio::test]
async fn debug_traffic_lives_apart() {
    let app = sqlite_app(&[]);
    let tenant = unique("t");
    let mut body = tenant_body(&tenant, 1);
    body["testFlag"] = json!(1);
    body["instanceId"] = json!("");
    body["orderId"] = json!("");
    assert_eq!(v2(&app, KitOp::TenantSync, &body).await.code(), "000000");
    let prod = Directory::new(app.store.as_ref(), Partition::Production, &tenant);
    let debug = Directory::new(app.store.as_ref(), Partition::Debug, &tenant);
    assert_eq!(prod.tenant().await.unwrap(), None);
    assert!(debug.tenant().await.unwrap().is_some());
}

#[tokio::test]
async fn malformed_bodies_and_missing_fields_answer_000002_naming_the_field() {
    let app = sqlite_app(&[]);
    for (op, body, field) in [
        (KitOp::TenantSync, "{not json".to_string(), "malformed"),
        (KitOp::TenantSync, json!({"instanceId":"i","flag":1,"testFlag":0,"timeStamp":"1"}).to_string(), "tenantId"),
        (KitOp::AuthSync, json!({"instanceId":"i","tenantId":"t","appId":"a","flag":1,"testFlag":0,"timeStamp":"1"}).to_string(), "userList"),
        (KitOp::SingleOrgSync, json!({"instanceId":"i","tenantId":"t","orgCode":"o","flag":1,"testFlag":0,"timeStamp":"1"}).to_string(), "orgName"),
    ] {
        let h = kit_headers(KIT_KEY, body.as_bytes());
        let a = v2_with(&app, op, &h, &body).await;
        assert_eq!(a.code(), "000002", "{body}");
        assert!(a.json["resultMsg"].as_str().unwrap().contains(field), "{}", a.body);
    }
}

/// Only what a sync changes is an event: a resent sync (the marketplace retries freely) emits
/// nothing, a real change emits again; for users, per user. SQLite and DynamoDB.
async fn resent_syncs_emit_nothing(app: Arc<App>) {
    let tenant = unique("t-ev");
    let types = |events: &[koogate_store::EventRecord], t: &str| {
        events.iter().filter(|e| e.event_type == t).count()
    };
    let all = |app: Arc<App>, tenant: String| async move {
        app.store
            .list_events(&koogate_store::EventQuery::default())
            .await
            .unwrap()
            .into_iter()
            .filter(|e| e.body.contains(&tenant))
            .collect::<Vec<_>>()
    };
    for _ in 0..2 {
        assert_eq!(
            v2(&app, KitOp::TenantSync, &tenant_body(&tenant, 1))
                .await
                .code(),
            "000000"
        );
    }
    let mut renamed = tenant_body(&tenant, 2);
    renamed["name"] = json!("renamed");
    assert_eq!(v2(&app, KitOp::TenantSync, &renamed).await.code(), "000000");
    let users = vec![user("u0", "o", true), user("u1", "o", true)];
    for _ in 0..2 {
        let body = auth_body(&tenant, "app-1", users.clone(), 1);
        assert_eq!(v2(&app, KitOp::AuthSync, &body).await.code(), "000000");
    }
    let changed = vec![user("u0", "o", true), user("u1", "o", false)];
    let body = auth_body(&tenant, "app-1", changed, 2);
    assert_eq!(v2(&app, KitOp::AuthSync, &body).await.code(), "000000");
    let events = all(Arc::clone(&app), tenant.clone()).await;
    assert_eq!(
        types(&events, "tenant.synced"),
        2,
        "added, then renamed: {events:?}"
    );
    assert_eq!(
        types(&events, "user.synced"),
        3,
        "two users added, then u1 disabled: {events:?}"
    );
}

#[tokio::test]
async fn resent_syncs_emit_nothing_on_sqlite() {
    resent_syncs_emit_nothing(sqlite_app(&[])).await;
}

#[tokio::test]
async fn resent_syncs_emit_nothing_on_dynamodb() {
    let Some(moto) = MotoServer::shared() else {
        return;
    };
    resent_syncs_emit_nothing(app(Arc::new(moto.store().await), &[])).await;
}
