//! POST /saas in process: API Gateway v2 events through the Lambda adapter and the pipeline, on
//! an in-memory SQLite store. One test per rule of docs/protocol.md, inbound-basic §2.3 and per activity.

use koogate_protocol::basic_signature;
use koogate_runtime::pipeline::now_ms;
use koogate_tests::{
    event, invoke, nonce, post, signed_query, sqlite_app, Answered, KEY, PREVIOUS_KEY,
};

fn assert_framed(a: &Answered, key: &str) {
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(a.content_type, "application/json");
    assert!(
        a.signed_with(key),
        "Body-Sign must verify with the expected key: {a:?}"
    );
    assert!(a.body.is_ascii(), "body is ASCII (non-ASCII escaped)");
    assert!(!a.body.ends_with('\n'));
}

fn new_instance(order: &str, business: &str, debug: bool) -> String {
    format!(
        r#"{{"activity":"newInstance","businessId":"{business}","orderId":"{order}","orderLineId":"{order}-000001","testFlag":"{}"}}"#,
        if debug { "1" } else { "0" }
    )
}

async fn created(app: &std::sync::Arc<koogate_runtime::App>, order: &str, debug: bool) -> String {
    let a = post(
        app,
        &new_instance(order, &uuid::Uuid::new_v4().to_string(), debug),
    )
    .await;
    assert_eq!(a.code(), "000000", "{a:?}");
    a.json["instanceId"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn the_spec_vector_request_is_accepted_and_answered_with_the_business_id() {
    let app = sqlite_app(&[]);
    let body = r#"{"activity":"newInstance","businessId":"87b94795-0603-4e24-8ae5-69420d60e3c8","orderId":"CS2211181819B4LVS","orderLineId":"CS2211181819B4LVS-000001","testFlag":"0"}"#;
    let a = post(&app, body).await;
    assert_framed(&a, KEY);
    assert_eq!(
        a.body,
        r#"{"resultCode":"000000","resultMsg":"success.","instanceId":"87b94795-0603-4e24-8ae5-69420d60e3c8"}"#
    );
}

#[tokio::test]
async fn a_redelivery_with_a_new_business_id_gets_the_first_instance_id() {
    let app = sqlite_app(&[]);
    let first = post(&app, &new_instance("CSREDELIVER", "biz-1", false)).await;
    let again = post(&app, &new_instance("CSREDELIVER", "biz-2", false)).await;
    assert_eq!(first.json["instanceId"], "biz-1");
    assert_eq!(again.code(), "000000");
    assert_eq!(
        again.json["instanceId"], "biz-1",
        "instanceId = first businessId forever (D7)"
    );
    assert_eq!(
        again.body, first.body,
        "the stored answer is replayed byte for byte"
    );
    assert_framed(&again, KEY);
}

#[tokio::test]
async fn a_missing_or_oversized_business_id_gets_a_uuid() {
    let app = sqlite_app(&[]);
    let body = r#"{"activity":"newInstance","orderId":"CSNOBIZ","orderLineId":"CSNOBIZ-1","testFlag":"0"}"#;
    let a = post(&app, body).await;
    assert_eq!(a.code(), "000000", "{a:?}");
    let id = a.json["instanceId"].as_str().unwrap();
    assert!(uuid::Uuid::parse_str(id).is_ok(), "{id}");
    let long = "x".repeat(65);
    let a = post(&app, &new_instance("CSLONGBIZ", &long, false)).await;
    let id = a.json["instanceId"].as_str().unwrap();
    assert!(id.len() <= 64 && id != long);
}

#[tokio::test]
async fn the_fat_launch_body_is_accepted() {
    let app = sqlite_app(&[]);
    let body = r#"{"activity":"newInstance","buyerInfo":{"customerId":"688055390f3049f283fe9f1aa90f1858","customerName":"buyer_demo_01","userId":"1e86066c22754361933f607df834e4fe","userName":"buyer_demo_01","mobilePhone":"13800000000","email":"buyer@example.com"},"orderInfo":[{"businessId":"8a2c4e6f-405a-4f8d-8e24-f41090522646","orderId":"CS2210101920BWXLK","trialFlag":"0","orderAmount":12.78,"chargingMode":"PERIOD","periodType":"month","periodNumber":5,"provisionType":1,"productInfo":[{"skuCode":"a63ee5c9-4f86-11ed-9f95-fa163e8cb3b2","productId":"OFFI788963615933718528","linearValue":20}],"createTime":"20221024194509","expireTime":"20221224194509","extendParams":[{"name":"emailDomainName","value":"test.example.com"}]}],"testFlag":"1"}"#;
    let a = post(&app, body).await;
    assert_eq!(a.code(), "000000", "{a:?}");
    assert_eq!(a.json["instanceId"], "8a2c4e6f-405a-4f8d-8e24-f41090522646");
}

#[tokio::test]
async fn unsorted_keys_signed_over_the_canonical_form_are_accepted() {
    let app = sqlite_app(&[]);
    let raw = r#"{"orderLineId":"CSCANON-1","testFlag":"1","businessId":"b-canon","activity":"newInstance","orderId":"CSCANON","extra":null}"#;
    let canonical = koogate_protocol::canonical::canonical_form(raw.as_bytes()).unwrap();
    assert_ne!(canonical, raw.as_bytes());
    let a = invoke(
        &app,
        event("POST", &signed_query(KEY, &canonical), raw.as_bytes()),
    )
    .await;
    assert_eq!(a.code(), "000000", "{a:?}");
}

#[tokio::test]
async fn the_previous_key_is_accepted_and_signs_the_answer() {
    let app = sqlite_app(&[]);
    let body = new_instance("CSROTATE", "b-rot", true);
    let a = invoke(
        &app,
        event(
            "POST",
            &signed_query(PREVIOUS_KEY, body.as_bytes()),
            body.as_bytes(),
        ),
    )
    .await;
    assert_eq!(a.code(), "000000");
    assert_framed(&a, PREVIOUS_KEY);
    assert!(!a.signed_with(KEY));
}

#[tokio::test]
async fn a_lower_case_signature_is_accepted_and_a_wrong_one_is_not() {
    let app = sqlite_app(&[]);
    let body = new_instance("CSCASE", "b", true);
    let ts = now_ms().to_string();
    let n = nonce();
    let sig = basic_signature::sign(KEY, &n, &ts, body.as_bytes());
    let a = invoke(
        &app,
        event(
            "POST",
            &format!("signature={sig}&timestamp={ts}&nonce={n}"),
            body.as_bytes(),
        ),
    )
    .await;
    assert_eq!(a.code(), "000000");

    let mut wrong = sig.clone().into_bytes();
    wrong[10] = if wrong[10] == b'0' { b'1' } else { b'0' };
    let wrong = String::from_utf8(wrong).unwrap();
    let a = invoke(
        &app,
        event(
            "POST",
            &format!("signature={wrong}&timestamp={ts}&nonce={}", nonce()),
            body.as_bytes(),
        ),
    )
    .await;
    assert_eq!(a.code(), "000001");
    assert_framed(&a, KEY);
}

#[tokio::test]
async fn a_key_of_another_merchant_is_refused() {
    let app = sqlite_app(&[]);
    let body = new_instance("CSOTHER", "b", true);
    let a = invoke(
        &app,
        event(
            "POST",
            &signed_query("someone-elses-key", body.as_bytes()),
            body.as_bytes(),
        ),
    )
    .await;
    assert_eq!(a.code(), "000001");
    assert_framed(&a, KEY);
}

#[tokio::test]
async fn a_replayed_nonce_is_refused() {
    let app = sqlite_app(&[]);
    let body = new_instance("CSREPLAY", "b", true);
    let q = signed_query(KEY, body.as_bytes());
    assert_eq!(
        invoke(&app, event("POST", &q, body.as_bytes()))
            .await
            .code(),
        "000000"
    );
    let again = invoke(&app, event("POST", &q, body.as_bytes())).await;
    assert_eq!(again.code(), "000001", "{again:?}");
    assert_framed(&again, KEY);
}

/// `POST /saas` takes the replay guard itself (with the lock for newInstance and
/// getLicenseAsync, first for the other activities, after the function for a refused body): a
/// replay is answered `000001` on every one of those paths, not with the first answer again.
#[tokio::test]
async fn a_replay_is_refused_on_every_path_of_the_function() {
    let app = sqlite_app(&[]);
    let id = created(&app, "CSREPLAYPATHS", false).await;
    let bodies = [
        // The lock path: a replay must not replay the stored answer.
        new_instance("CSREPLAYLOCK", "b", false),
        // Guarded before the handler's read.
        format!(r#"{{"activity":"queryInstance","instanceId":"{id}","testFlag":"0"}}"#),
        format!(
            r#"{{"activity":"updateInstanceStatus","instanceId":"{id}","status":"FREEZE","testFlag":"0"}}"#
        ),
        // Answered without a lock (debug getLicenseAsync), and refused bodies: guarded after.
        format!(
            r#"{{"activity":"getLicenseAsync","instanceId":"{id}","eventId":"e1","effectiveTime":"20260101000000","testFlag":"1"}}"#
        ),
        r#"{"activity":"newInstance","businessId":"b","orderId":"CS1","testFlag":"1"}"#.to_string(),
        r#"{"activity":"newInstance","#.to_string(),
    ];
    for body in bodies {
        let q = signed_query(KEY, body.as_bytes());
        let first = invoke(&app, event("POST", &q, body.as_bytes())).await;
        assert_ne!(first.code(), "000001", "{body}: {first:?}");
        let again = invoke(&app, event("POST", &q, body.as_bytes())).await;
        assert_eq!(again.code(), "000001", "{body}: {again:?}");
        assert_framed(&again, KEY);
    }
}

#[tokio::test]
async fn timestamps_follow_d3() {
    let app = sqlite_app(&[]);
    let body = new_instance("CSTIME", "b", true);
    let send = |ts: String| {
        let app = app.clone();
        let body = body.clone();
        async move {
            let n = nonce();
            let sig = basic_signature::sign(KEY, &n, &ts, body.as_bytes());
            invoke(
                &app,
                event(
                    "POST",
                    &format!("signature={sig}&timestamp={ts}&nonce={n}"),
                    body.as_bytes(),
                ),
            )
            .await
        }
    };
    let now = now_ms();
    assert_eq!(
        send((now - 61_000).to_string()).await.code(),
        "000002",
        "61 s in the past"
    );
    assert_eq!(
        send((now + 61_000).to_string()).await.code(),
        "000002",
        "61 s in the future"
    );
    assert_eq!(send("12ab".into()).await.code(), "000002", "not numeric");
    assert_eq!(
        send((now / 1000).to_string()).await.code(),
        "000000",
        "10-digit seconds inside the window"
    );
    assert_eq!(
        send((now - 30_000).to_string()).await.code(),
        "000000",
        "30 s old is fine"
    );
    let n = nonce();
    let missing = invoke(
        &app,
        event("POST", &format!("signature=AB&nonce={n}"), body.as_bytes()),
    )
    .await;
    assert_eq!(missing.code(), "000002");
}

#[tokio::test]
async fn missing_nonce_and_signature_have_their_codes() {
    let app = sqlite_app(&[]);
    let body = new_instance("CSMISS", "b", true);
    let ts = now_ms();
    let a = invoke(
        &app,
        event(
            "POST",
            &format!("signature=AB&timestamp={ts}"),
            body.as_bytes(),
        ),
    )
    .await;
    assert_eq!(a.code(), "000002", "nonce missing");
    let a = invoke(
        &app,
        event(
            "POST",
            &format!("signature=&timestamp={ts}&nonce=x"),
            body.as_bytes(),
        ),
    )
    .await;
    assert_eq!(a.code(), "000001", "signature empty");
    let a = invoke(
        &app,
        event("POST", &format!("timestamp={ts}&nonce=x"), body.as_bytes()),
    )
    .await;
    assert_eq!(a.code(), "000001", "signature missing");
    assert_framed(&a, KEY);
}

#[tokio::test]
async fn bad_bodies_get_000002_naming_the_problem() {
    let app = sqlite_app(&[]);
    let malformed = r#"{"activity":"newInstance","#;
    let a = post(&app, malformed).await;
    assert_eq!(a.code(), "000002");
    let a = post(&app, r#"{"activity":"renewEverything","testFlag":"1"}"#).await;
    assert_eq!(a.code(), "000002");
    assert!(
        a.json["resultMsg"]
            .as_str()
            .unwrap()
            .contains("queryInstance"),
        "lists the supported activities: {a:?}"
    );
    let a = post(
        &app,
        r#"{"activity":"newInstance","businessId":"b","orderId":"CS1","testFlag":"1"}"#,
    )
    .await;
    assert_eq!(a.code(), "000002");
    assert!(
        a.json["resultMsg"]
            .as_str()
            .unwrap()
            .contains("orderLineId"),
        "{a:?}"
    );
    let a = post(&app, r#"{"businessId":"b"}"#).await;
    assert_eq!(a.code(), "000002");
    assert!(
        a.json["resultMsg"].as_str().unwrap().contains("activity"),
        "{a:?}"
    );
    assert_framed(&a, KEY);
}

#[tokio::test]
async fn an_oversized_body_is_refused_and_get_is_not_the_v2_interface() {
    let app = sqlite_app(&[]);
    let big = format!(
        r#"{{"activity":"queryInstance","instanceId":"x","pad":"{}"}}"#,
        "a".repeat(1 << 20)
    );
    let a = post(&app, &big).await;
    assert_eq!(a.code(), "000002", "{}", a.body);
    assert_framed(&a, KEY);
    let body = new_instance("CSGET", "b", true);
    let a = invoke(
        &app,
        event("GET", &signed_query(KEY, body.as_bytes()), body.as_bytes()),
    )
    .await;
    assert_eq!(a.code(), "000002");
}

#[tokio::test]
async fn query_instance_follows_d8() {
    let app = sqlite_app(&[]);
    let a_id = created(&app, "CSQ1", false).await;
    let b_id = created(&app, "CSQ2", false).await;
    let q = format!(
        r#"{{"activity":"queryInstance","instanceId":"{b_id}, unknown-id ,{a_id},{a_id}","testFlag":"0"}}"#
    );
    let a = post(&app, &q).await;
    assert_eq!(a.code(), "000000", "{a:?}");
    let info = a.json["info"].as_array().unwrap();
    assert_eq!(info.len(), 2, "one entry per known id, duplicates dropped");
    assert_eq!(info[0]["instanceId"], b_id.as_str(), "request order");
    assert_eq!(info[1]["instanceId"], a_id.as_str());
    let app_info = &info[0]["appInfo"];
    assert!(app_info["frontEndUrl"].as_str().unwrap().contains(&b_id));
    assert!(app_info["password"].as_str().unwrap().len() >= 12);
    assert!(
        a.json.get("encryptType").is_none(),
        "plain credentials by default (D9)"
    );

    let none = post(
        &app,
        r#"{"activity":"queryInstance","instanceId":"nope","testFlag":"0"}"#,
    )
    .await;
    assert_eq!(none.code(), "000003");
    let debug = post(
        &app,
        r#"{"activity":"queryInstance","instanceId":"nope","testFlag":"1"}"#,
    )
    .await;
    assert_eq!(debug.code(), "000000", "debug: demo entry (D6)");
    assert_eq!(debug.json["info"][0]["instanceId"], "nope");
    assert!(debug.json["info"][0]["appInfo"]["frontEndUrl"].is_string());

    let many: Vec<String> = (0..101).map(|i| format!("id{i}")).collect();
    let too_many = post(
        &app,
        &format!(
            r#"{{"activity":"queryInstance","instanceId":"{}","testFlag":"0"}}"#,
            many.join(",")
        ),
    )
    .await;
    assert_eq!(too_many.code(), "000002");
}

#[tokio::test]
async fn query_instance_encrypts_credentials_in_aes_mode() {
    let app = sqlite_app(&[("KOOGATE_CREDENTIAL_ENCRYPTION", "aes256")]);
    let id = created(&app, "CSAES", false).await;
    let a = post(
        &app,
        &format!(r#"{{"activity":"queryInstance","instanceId":"{id}","testFlag":"0"}}"#),
    )
    .await;
    assert_eq!(a.json["encryptType"], "1");
    let user = a.json["info"][0]["appInfo"]["userName"].as_str().unwrap();
    let clear = koogate_protocol::aes_credentials::decrypt(
        KEY,
        koogate_protocol::aes_credentials::EncryptType::Aes256,
        user,
    )
    .unwrap();
    assert_eq!(clear, "admin");
}

#[tokio::test]
async fn lifecycle_of_a_real_instance() {
    let app = sqlite_app(&[]);
    let id = created(&app, "CSLIFE", false).await;
    let refresh = |order: &str, expire: &str| {
        format!(
            r#"{{"activity":"refreshInstance","expireTime":"{expire}","instanceId":"{id}","orderId":"{order}","orderLineId":"{order}-1","productId":"OFFI2","scene":"RENEWAL","testFlag":"0"}}"#
        )
    };
    assert_eq!(
        post(&app, &refresh("CSREN1", "20301124023618256"))
            .await
            .code(),
        "000000"
    );
    assert_eq!(
        post(&app, &refresh("CSREN1", "20301124023618256"))
            .await
            .code(),
        "000000",
        "repeat"
    );
    let bad = post(&app, &refresh("CSREN2", "2030112402")).await;
    assert_eq!(bad.code(), "000002", "expireTime must have 14 or 17 digits");
    let unknown_scene = refresh("CSREN3", "20311124023618").replace("RENEWAL", "CANCEL_RENEW");
    assert_eq!(
        post(&app, &unknown_scene).await.code(),
        "000000",
        "unknown scenes are accepted (D22)"
    );

    let status = |s: &str| {
        format!(
            r#"{{"activity":"updateInstanceStatus","instanceId":"{id}","status":"{s}","testFlag":"0"}}"#
        )
    };
    assert_eq!(post(&app, &status("FREEZE")).await.code(), "000000");
    assert_eq!(
        post(&app, &status("FREEZE")).await.code(),
        "000000",
        "already frozen"
    );
    assert_eq!(post(&app, &status("UNFREEZE")).await.code(), "000000");
    assert_eq!(post(&app, &status("SUSPEND")).await.code(), "000002");

    let upgrade = format!(
        r#"{{"activity":"upgradeInstance","instanceId":"{id}","orderId":"CSUP","orderLineId":"CSUP-1","testFlag":"0"}}"#
    );
    assert_eq!(post(&app, &upgrade).await.code(), "000000");
    assert_eq!(post(&app, &upgrade).await.code(), "000000");

    let check = format!(
        r#"{{"activity":"changeInstanceCheck","instanceId":"{id}","productInfo":"{{\"productId\":\"OFFI3\",\"skuCode\":\"sku\",\"linearValue\":50,\"productName\":\"Basic\"}}","testFlag":"0"}}"#
    );
    assert_eq!(
        post(&app, &check).await.code(),
        "000000",
        "productInfo as a JSON string (D22)"
    );

    let license = format!(
        r#"{{"activity":"getLicenseAsync","eventId":"ev1","instanceId":"{id}","effectiveTime":"2023-10-27 10:30:15 z","testFlag":"0"}}"#
    );
    let first = post(&app, &license).await;
    assert_eq!(
        first.code(),
        "000000",
        "the default issuer is synchronous: {first:?}"
    );
    assert!(first.json["license"].as_str().unwrap().starts_with("LIC-"));
    assert_eq!(
        post(&app, &license).await.body,
        first.body,
        "same application, same license"
    );

    let release = format!(r#"{{"activity":"releaseInstance","instanceId":"{id}","testFlag":"0"}}"#);
    assert_eq!(post(&app, &release).await.code(), "000000");
    assert_eq!(
        post(&app, &release).await.code(),
        "000000",
        "release twice (D10)"
    );
    assert_eq!(
        post(&app, &status("FREEZE")).await.code(),
        "000003",
        "released is final"
    );
    assert_eq!(
        post(&app, &refresh("CSREN9", "20321124023618"))
            .await
            .code(),
        "000003"
    );
    let q = post(
        &app,
        &format!(r#"{{"activity":"queryInstance","instanceId":"{id}","testFlag":"0"}}"#),
    )
    .await;
    assert_eq!(q.code(), "000000", "a released instance is still known");
    assert!(
        q.json["info"][0].get("appInfo").is_none(),
        "but has no access any more"
    );
}

#[tokio::test]
async fn state_dependent_failures_differ_between_real_and_debug_traffic() {
    let app = sqlite_app(&[]);
    for activity in [
        r#""activity":"releaseInstance","instanceId":"never-issued""#,
        r#""activity":"updateInstanceStatus","instanceId":"never-issued","status":"FREEZE""#,
        r#""activity":"refreshInstance","expireTime":"20301124023618","instanceId":"never-issued","orderId":"o","orderLineId":"l","scene":"RENEWAL""#,
        r#""activity":"upgradeInstance","instanceId":"never-issued","orderId":"o","orderLineId":"l""#,
        r#""activity":"changeInstanceCheck","instanceId":"never-issued","productInfo":{"productId":"p","skuCode":"s","productName":"n"}"#,
        r#""activity":"getLicenseAsync","eventId":"e","instanceId":"never-issued","effectiveTime":"2023-10-27 10:30:15""#,
    ] {
        let real = post(&app, &format!(r#"{{{activity},"testFlag":"0"}}"#)).await;
        assert_eq!(real.code(), "000003", "real traffic: {activity}");
        let debug = post(&app, &format!(r#"{{{activity},"testFlag":"1"}}"#)).await;
        assert_eq!(debug.code(), "000000", "debug traffic: {activity}");
    }
}

#[tokio::test]
async fn debug_and_production_records_never_mix() {
    let app = sqlite_app(&[]);
    let debug_id = created(&app, "CSMIX", true).await;
    let q = post(
        &app,
        &format!(r#"{{"activity":"queryInstance","instanceId":"{debug_id}","testFlag":"0"}}"#),
    )
    .await;
    assert_eq!(
        q.code(),
        "000003",
        "a debug instance is unknown to production traffic"
    );
    let prod = post(&app, &new_instance("CSMIX", "another-business-id", false)).await;
    assert_eq!(
        prod.json["instanceId"], "another-business-id",
        "the same order in production is a new instance"
    );
    let replay = post(&app, &new_instance("CSMIX", "third", true)).await;
    assert_eq!(
        replay.json["instanceId"],
        debug_id.as_str(),
        "the saved console case gets its instance back"
    );
}

#[tokio::test]
async fn async_provisioning_answers_000004_then_000000() {
    let app = sqlite_app(&[("KOOGATE_PROVISIONING", "async")]);
    let first = post(&app, &new_instance("CSASYNC", "b-async", false)).await;
    assert_eq!(first.code(), "000004", "{first:?}");
    assert_eq!(first.json["instanceId"], "b-async");
    let mut last = String::new();
    for _ in 0..50 {
        let q = post(
            &app,
            r#"{"activity":"queryInstance","instanceId":"b-async","testFlag":"0"}"#,
        )
        .await;
        last = q.code().to_string();
        if last == "000000" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(last, "000000", "provisioning completes in the background");
    let dup = post(&app, &new_instance("CSASYNC", "b-other", false)).await;
    assert_eq!(
        dup.code(),
        "000000",
        "a duplicate after success answers 000000"
    );
    assert_eq!(dup.json["instanceId"], "b-async");
    let debug = post(&app, &new_instance("CSASYNCDBG", "b-dbg", true)).await;
    assert_eq!(
        debug.code(),
        "000000",
        "debug newInstance answers 000000 even in async mode (D6)"
    );
}

#[tokio::test]
async fn non_ascii_text_is_escaped_in_answers() {
    let app = sqlite_app(&[]);
    let a = post(&app, r#"{"activity":"中文","testFlag":"1"}"#).await;
    assert_eq!(a.code(), "000002");
    assert!(a.body.is_ascii(), "{}", a.body);
}
