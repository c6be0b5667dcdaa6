//! GET /saas (V1), POST and GET /license, POST /order-notify in process: every activity, the V1
//! decoding pitfalls ('+' in a raw token, percent-encoded values), keys of the wrong interface
//! type, repeats, and the sharing of instance records between V1 and V2.

use std::sync::Arc;

use koogate_protocol::aes_credentials::{self, EncryptType};
use koogate_runtime::App;
use koogate_tests::{
    get_event, invoke_function, post, post_event, sqlite_app, v1_query, v1_query_at, Answered,
    TokenInUrl, GENERAL_KEY, KEY, LEGACY_KEY, LICENSE_KEY,
};

async fn v1(app: &Arc<App>, path: &str, params: &[(&str, &str)], token: TokenInUrl) -> Answered {
    // A repeat is a new delivery with a new timeStamp, hence a new authToken: never the same
    // millisecond (the same token would rightly be refused as a replay).
    tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    let q = v1_query(LEGACY_KEY, params, token);
    send_get(app, path, &q).await
}

async fn send_get(app: &Arc<App>, path: &str, q: &str) -> Answered {
    let event = get_event(path, q);
    let id = uuid::Uuid::new_v4().to_string();
    match path {
        "/saas" => invoke_function(app, &koogate_saas_legacy::SaasLegacyFunction, event, &id).await,
        _ => {
            invoke_function(
                app,
                &koogate_license_legacy::LicenseLegacyFunction,
                event,
                &id,
            )
            .await
        }
    }
}

async fn license(app: &Arc<App>, key: &str, body: &str) -> Answered {
    invoke_function(
        app,
        &koogate_license::LicenseFunction,
        post_event(key, body),
        &uuid::Uuid::new_v4().to_string(),
    )
    .await
}

async fn notify(app: &Arc<App>, key: &str, body: &str) -> Answered {
    invoke_function(
        app,
        &koogate_order_notify::OrderNotifyFunction,
        post_event(key, body),
        &uuid::Uuid::new_v4().to_string(),
    )
    .await
}

fn new_instance_params<'a>(
    order: &'a str,
    business: &'a str,
    test_flag: &'a str,
) -> Vec<(&'a str, &'a str)> {
    vec![
        ("activity", "newInstance"),
        ("businessId", business),
        ("customerId", "68cbc86abc2018ab880d92f36422fa0e"),
        ("expireTime", "20300727153156"),
        ("orderId", order),
        ("productId", "00301-666666-0--0"),
        ("testFlag", test_flag),
    ]
}

/// Tries tokens until one contains '+', so the raw-'+' pitfall is really exercised.
fn params_with_plus_token(order: &str) -> (String, String) {
    for i in 0..500 {
        let business = format!("biz-{i}");
        let q = v1_query(
            LEGACY_KEY,
            &new_instance_params(order, &business, "0"),
            TokenInUrl::Raw,
        );
        let token = q.rsplit("authToken=").next().unwrap_or("").to_string();
        if token.contains('+') {
            return (business, q);
        }
    }
    panic!("no token with '+' in 500 tries");
}

#[tokio::test]
async fn v1_new_instance_with_a_raw_plus_token_answers_with_encrypted_credentials() {
    let app = sqlite_app(&[]);
    let (business, q) = params_with_plus_token("CSV1PLUS");
    let a = send_get(&app, "/saas", &q).await;
    assert_eq!(a.code(), "000000", "{a:?}");
    assert!(
        a.signed_with(LEGACY_KEY),
        "Body-Sign with the legacy key alone"
    );
    assert_eq!(a.json["instanceId"], business.as_str());
    assert_eq!(a.json["encryptType"], "1");
    let app_info = &a.json["appInfo"];
    assert!(app_info["frontEndUrl"]
        .as_str()
        .unwrap()
        .contains(&business));
    let user = app_info["userName"].as_str().unwrap();
    assert_eq!(
        aes_credentials::decrypt(LEGACY_KEY, EncryptType::Aes256, user).unwrap(),
        "admin"
    );
    let password = app_info["password"].as_str().unwrap();
    assert!(password.len() <= 128);

    // V1 repeats newInstance to show the credentials: same instance, same plaintext.
    let again = v1(
        &app,
        "/saas",
        &new_instance_params("CSV1PLUS", "another", "0"),
        TokenInUrl::PercentEncoded,
    )
    .await;
    assert_eq!(again.json["instanceId"], business.as_str());
    let again_password = again.json["appInfo"]["password"].as_str().unwrap();
    assert_eq!(
        aes_credentials::decrypt(LEGACY_KEY, EncryptType::Aes256, again_password).unwrap(),
        aes_credentials::decrypt(LEGACY_KEY, EncryptType::Aes256, password).unwrap()
    );
}

#[tokio::test]
async fn v1_authentication_failures_have_their_codes() {
    let app = sqlite_app(&[]);
    let params = new_instance_params("CSV1AUTH", "b", "1");
    let wrong_type = v1_query(KEY, &params, TokenInUrl::PercentEncoded);
    let a = send_get(&app, "/saas", &wrong_type).await;
    assert_eq!(a.code(), "000001", "a basic key does not verify a V1 call");
    assert!(a.signed_with(LEGACY_KEY));

    let q = v1_query(LEGACY_KEY, &params, TokenInUrl::PercentEncoded);
    assert_eq!(send_get(&app, "/saas", &q).await.code(), "000000");
    assert_eq!(
        send_get(&app, "/saas", &q).await.code(),
        "000001",
        "a reused authToken is refused"
    );

    let stale = v1_query_at(
        LEGACY_KEY,
        &params,
        TokenInUrl::PercentEncoded,
        "20170725025113409",
    );
    assert_eq!(
        send_get(&app, "/saas", &stale).await.code(),
        "000002",
        "stale timeStamp"
    );
    let bad = v1_query_at(
        LEGACY_KEY,
        &params,
        TokenInUrl::PercentEncoded,
        "2017072502",
    );
    assert_eq!(
        send_get(&app, "/saas", &bad).await.code(),
        "000002",
        "malformed timeStamp"
    );
    let no_token = q.split("&authToken=").next().unwrap();
    assert_eq!(send_get(&app, "/saas", no_token).await.code(), "000001");
    let tampered = q.replace("CSV1AUTH", "CSV1AUTX");
    assert_eq!(send_get(&app, "/saas", &tampered).await.code(), "000001");
}

#[tokio::test]
async fn percent_encoded_values_are_decoded_before_signing_and_use() {
    let app = sqlite_app(&[]);
    // A value with '+', '/', '=' and a space, percent-encoded in the URL.
    let params = new_instance_params("CS V1+ENC/=", "biz-enc", "1");
    let a = v1(&app, "/saas", &params, TokenInUrl::PercentEncoded).await;
    assert_eq!(a.code(), "000000", "{a:?}");
    assert_eq!(a.json["instanceId"], "biz-enc");
}

#[tokio::test]
async fn v1_lifecycle_shares_instances_with_v2() {
    let app = sqlite_app(&[]);
    let created = v1(
        &app,
        "/saas",
        &new_instance_params("CSV1LIFE", "v1-instance", "0"),
        TokenInUrl::PercentEncoded,
    )
    .await;
    assert_eq!(created.code(), "000000");
    let id = "v1-instance";
    let v2_query = post(
        &app,
        &format!(r#"{{"activity":"queryInstance","instanceId":"{id}","testFlag":"0"}}"#),
    )
    .await;
    assert_eq!(v2_query.code(), "000000", "V2 sees the V1 instance");

    let refresh = [
        ("activity", "refreshInstance"),
        ("expireTime", "20310725000000"),
        ("instanceId", id),
        ("orderId", "HWSREN1"),
        ("testFlag", "0"),
    ];
    assert_eq!(
        v1(&app, "/saas", &refresh, TokenInUrl::Raw).await.code(),
        "000000"
    );
    assert_eq!(
        v1(&app, "/saas", &refresh, TokenInUrl::Raw).await.code(),
        "000000",
        "repeat"
    );
    let expire = [
        ("activity", "expireInstance"),
        ("instanceId", id),
        ("orderId", "CSV1LIFE"),
        ("testFlag", "0"),
    ];
    assert_eq!(
        v1(&app, "/saas", &expire, TokenInUrl::PercentEncoded)
            .await
            .code(),
        "000000"
    );
    let normal = [
        ("activity", "instanceStatus"),
        ("instanceId", id),
        ("instanceStatus", "NORMAL"),
        ("testFlag", "0"),
    ];
    assert_eq!(
        v1(&app, "/saas", &normal, TokenInUrl::PercentEncoded)
            .await
            .code(),
        "000000"
    );
    let upgrade = [
        ("activity", "upgrade"),
        ("instanceId", id),
        ("orderId", "CSUPG"),
        ("productId", "P2"),
        ("skuCode", "S2"),
        ("testFlag", "0"),
    ];
    assert_eq!(
        v1(&app, "/saas", &upgrade, TokenInUrl::PercentEncoded)
            .await
            .code(),
        "000000"
    );
    let query = [
        ("activity", "queryInstance"),
        ("instanceId", "v1-instance,unknown"),
        ("testFlag", "0"),
    ];
    let q = v1(&app, "/saas", &query, TokenInUrl::PercentEncoded).await;
    assert_eq!(q.code(), "000000");
    assert_eq!(q.json["encryptType"], "1");
    assert_eq!(q.json["info"].as_array().unwrap().len(), 1);
    let release = [
        ("activity", "releaseInstance"),
        ("instanceId", id),
        ("orderId", "CSV1LIFE"),
        ("testFlag", "0"),
    ];
    assert_eq!(
        v1(&app, "/saas", &release, TokenInUrl::PercentEncoded)
            .await
            .code(),
        "000000"
    );
    assert_eq!(
        v1(&app, "/saas", &release, TokenInUrl::PercentEncoded)
            .await
            .code(),
        "000000",
        "release twice"
    );
    let never = [
        ("activity", "releaseInstance"),
        ("instanceId", "never"),
        ("orderId", "x"),
        ("testFlag", "0"),
    ];
    assert_eq!(
        v1(&app, "/saas", &never, TokenInUrl::PercentEncoded)
            .await
            .code(),
        "000003"
    );
    let never_debug = [
        ("activity", "releaseInstance"),
        ("instanceId", "never"),
        ("orderId", "x"),
        ("testFlag", "1"),
    ];
    assert_eq!(
        v1(&app, "/saas", &never_debug, TokenInUrl::PercentEncoded)
            .await
            .code(),
        "000000"
    );

    let unknown = [("activity", "getLicense"), ("testFlag", "1")];
    let a = v1(&app, "/saas", &unknown, TokenInUrl::PercentEncoded).await;
    assert_eq!(
        a.code(),
        "000002",
        "License activities are not served on GET /saas"
    );
}

#[tokio::test]
async fn v1_bad_encrypted_contact_and_extend_params_are_000002() {
    let app = sqlite_app(&[]);
    let mut params = new_instance_params("CSV1BAD", "b", "0");
    params.push(("mobilePhone", "not-a-ciphertext"));
    let a = v1(&app, "/saas", &params, TokenInUrl::PercentEncoded).await;
    assert_eq!(a.code(), "000002");
    assert!(a.json["resultMsg"]
        .as_str()
        .unwrap()
        .contains("mobilePhone"));

    let phone = aes_credentials::encrypt(
        &mut rand::rngs::OsRng,
        LEGACY_KEY,
        EncryptType::Aes256,
        "13800000000",
    )
    .unwrap();
    let mut params = new_instance_params("CSV1GOOD", "b-good", "0");
    params.push(("mobilePhone", &phone));
    let extend = "W3sibmFtZSI6ImlkTnVtYmVyIiwidmFsdWUiOiIxMjMifV0="; // [{"name":"idNumber","value":"123"}]
    params.push(("saasExtendParams", extend));
    let a = v1(&app, "/saas", &params, TokenInUrl::Raw).await;
    assert_eq!(a.code(), "000000", "{a:?}");

    let mut params = new_instance_params("CSV1EXT", "b", "0");
    params.push(("saasExtendParams", "%%%not-base64"));
    let a = v1(&app, "/saas", &params, TokenInUrl::PercentEncoded).await;
    assert_eq!(a.code(), "000002");
}

#[tokio::test]
async fn get_license_issues_one_license_per_order_forever() {
    let app = sqlite_app(&[]);
    let params = |business: &'static str| {
        vec![
            ("activity", "getLicense"),
            ("businessId", business),
            ("customerId", "c1"),
            ("orderId", "CSLIC1"),
            ("productId", "P1"),
            ("testFlag", "0"),
        ]
    };
    let first = v1(
        &app,
        "/license",
        &params("lic-biz-1"),
        TokenInUrl::PercentEncoded,
    )
    .await;
    assert_eq!(first.code(), "000000", "{first:?}");
    assert!(first.signed_with(LEGACY_KEY));
    let license = first.json["license"].as_str().unwrap().to_string();
    assert!(license.starts_with("LIC-"));
    assert_eq!(first.json["instanceId"], "lic-biz-1");
    let again = v1(&app, "/license", &params("lic-biz-2"), TokenInUrl::Raw).await;
    assert_eq!(
        again.body, first.body,
        "same license and instanceId for the same orderId"
    );

    let id = "lic-biz-1";
    let refresh = [
        ("activity", "refreshLicense"),
        ("expireTime", "20310725000000"),
        ("instanceId", id),
        ("orderId", "CSLICREN"),
        ("testFlag", "0"),
    ];
    assert_eq!(
        v1(&app, "/license", &refresh, TokenInUrl::PercentEncoded)
            .await
            .code(),
        "000000"
    );
    let expire = [
        ("activity", "expireLicense"),
        ("instanceId", id),
        ("orderId", "CSLIC1"),
        ("testFlag", "0"),
    ];
    assert_eq!(
        v1(&app, "/license", &expire, TokenInUrl::PercentEncoded)
            .await
            .code(),
        "000000"
    );
    let release = [
        ("activity", "releaseLicense"),
        ("instanceId", id),
        ("orderId", "CSLIC1"),
        ("testFlag", "0"),
    ];
    assert_eq!(
        v1(&app, "/license", &release, TokenInUrl::PercentEncoded)
            .await
            .code(),
        "000000"
    );
    assert_eq!(
        v1(&app, "/license", &release, TokenInUrl::PercentEncoded)
            .await
            .code(),
        "000000"
    );
    let unknown = [
        ("activity", "refreshLicense"),
        ("expireTime", "20310725000000"),
        ("instanceId", "nope"),
        ("orderId", "o"),
        ("testFlag", "0"),
    ];
    assert_eq!(
        v1(&app, "/license", &unknown, TokenInUrl::PercentEncoded)
            .await
            .code(),
        "000003"
    );

    let debug = [
        ("activity", "getLicense"),
        ("businessId", "dbg"),
        ("customerId", "c"),
        ("orderId", "CSLICDBG"),
        ("productId", "P"),
        ("testFlag", "1"),
    ];
    let d = v1(&app, "/license", &debug, TokenInUrl::PercentEncoded).await;
    assert_eq!(d.code(), "000000");
    assert_eq!(
        d.json["license"], "DEBUG-dbg",
        "debug traffic issues no real license"
    );
}

#[tokio::test]
async fn license_2_codes_follow_d21_and_d11() {
    let app = sqlite_app(&[]);
    let refresh = r#"{"activity":"refreshLicenseCode","expireTime":"20230523201932","license":"LC-0001","orderId":"CS2305231900AAAAA","orderLineId":"CS2305231900AAAAA-000001","productId":"OFFI000000000000000001","scene":"RENEWAL","testFlag":"0"}"#;
    let a = license(&app, LICENSE_KEY, refresh).await;
    assert_eq!(
        a.code(),
        "000000",
        "an unknown code is recorded (D21): {a:?}"
    );
    assert!(a.signed_with(LICENSE_KEY));
    assert_eq!(
        license(&app, LICENSE_KEY, refresh).await.code(),
        "000000",
        "repeat"
    );
    let freeze = r#"{"activity":"updateLicenseCodeStatus","license":"LC-0001","status":"FREEZE","testFlag":"0"}"#;
    assert_eq!(license(&app, LICENSE_KEY, freeze).await.code(), "000000");
    assert_eq!(license(&app, LICENSE_KEY, freeze).await.code(), "000000");
    let bad = r#"{"activity":"updateLicenseCodeStatus","license":"LC-0001","status":"PAUSE","testFlag":"0"}"#;
    assert_eq!(license(&app, LICENSE_KEY, bad).await.code(), "000002");
    let release = r#"{"activity":"releaseLicenseCode","license":"LC-0001","orderId":"CS2305231900BBBBB","orderLineId":"CS2305231900BBBBB-000001","testFlag":"0"}"#;
    assert_eq!(license(&app, LICENSE_KEY, release).await.code(), "000000");
    assert_eq!(license(&app, LICENSE_KEY, release).await.code(), "000000");
    let never = r#"{"activity":"releaseLicenseCode","license":"LC-NEVER","testFlag":"0"}"#;
    assert_eq!(
        license(&app, LICENSE_KEY, never).await.code(),
        "000000",
        "D21"
    );

    let wrong_key = license(&app, KEY, freeze).await;
    assert_eq!(
        wrong_key.code(),
        "000001",
        "a basic key does not verify a License 2.0 call"
    );
    assert!(wrong_key.signed_with(LICENSE_KEY));
    let saas = r#"{"activity":"newInstance","businessId":"b","orderId":"o","orderLineId":"l","testFlag":"1"}"#;
    assert_eq!(
        license(&app, LICENSE_KEY, saas).await.code(),
        "000002",
        "SaaS activities are not served on /license"
    );
}

#[tokio::test]
async fn order_notifications_are_recorded_once() {
    let app = sqlite_app(&[]);
    let body = r#"{"activity":"orderNotify","orderId":"CS2211181819B4LVS","orderLineId":"CS2211181819B4LVS-000001","testFlag":"0"}"#;
    let a = notify(&app, GENERAL_KEY, body).await;
    assert_eq!(a.code(), "000000", "{a:?}");
    assert!(a.signed_with(GENERAL_KEY));
    assert_eq!(
        notify(&app, GENERAL_KEY, body).await.code(),
        "000000",
        "repeat"
    );
    let key = koogate_store::keys::order_notification(
        koogate_store::Partition::Production,
        "CS2211181819B4LVS",
        "CS2211181819B4LVS-000001",
    );
    let record = app.store.get_record(&key).await.unwrap().expect("recorded");
    assert_eq!(record.version, 1, "a repeat writes nothing");
    assert!(record.doc.contains("\"enrichment\":\"pending\""));
    assert_eq!(
        notify(&app, LICENSE_KEY, body).await.code(),
        "000001",
        "wrong interface key"
    );
    let missing = r#"{"activity":"orderNotify","orderId":"CS1","testFlag":"1"}"#;
    let a = notify(&app, GENERAL_KEY, missing).await;
    assert_eq!(a.code(), "000002");
    assert!(a.json["resultMsg"]
        .as_str()
        .unwrap()
        .contains("orderLineId"));
}
