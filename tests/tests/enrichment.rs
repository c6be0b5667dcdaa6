//! Query Order enrichment inside the callbacks, against the fake marketplace: a thin
//! newInstance, an upgradeInstance and an orderNotify record product, SKU, period, expiry,
//! charging mode and buyer; a marketplace that does not answer in time leaves the details out
//! and changes nothing in the answer.

use std::sync::Arc;
use std::time::Duration;

use koogate_runtime::routes::InterfaceType;
use koogate_runtime::secrets::{IamCredentials, Secrets};
use koogate_runtime::App;
use koogate_store::records::OrderNotification;
use koogate_store::{keys, Partition, Store};
use koogate_tests::fake_marketplace::{Api, FakeMarketplace, Fault, AK, SK};
use koogate_tests::{config, invoke_function, post, post_event, GENERAL_KEY, KEY};

fn app_with_marketplace(fake: &FakeMarketplace) -> Arc<App> {
    let mut secrets = Secrets::with_keys(&[
        (InterfaceType::Basic, &[KEY]),
        (InterfaceType::General, &[GENERAL_KEY]),
    ]);
    secrets.iam = Some(IamCredentials {
        ak: AK.into(),
        sk: SK.into(),
    });
    let store: Arc<dyn Store> = Arc::new(koogate_store::sqlite::SqliteStore::in_memory().unwrap());
    App::assemble(
        config(&[
            ("KOOGATE_MARKETPLACE_URL", &fake.url),
            ("KOOGATE_MARKETPLACE_TIMEOUT_MS", "300"),
        ]),
        secrets,
        store,
    )
}

fn thin(order: &str) -> String {
    format!(
        r#"{{"activity":"newInstance","businessId":"{}","orderId":"{order}","orderLineId":"{order}-000001","testFlag":"0"}}"#,
        uuid::Uuid::new_v4()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thin_new_instance_records_the_order_details() {
    let fake = FakeMarketplace::start(KEY).await;
    let app = app_with_marketplace(&fake);
    let a = post(&app, &thin("MOCKPERIODYEARNEW")).await;
    assert_eq!(a.code(), "000000", "{a:?}");
    let id = a.json["instanceId"].as_str().unwrap().to_string();
    let inst = app
        .store
        .get_instance(Partition::Production, &id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(inst.charging_mode.as_deref(), Some("PERIOD"));
    assert_eq!(
        inst.sku_code.as_deref(),
        Some("0a4d1578-5295-46a7-92d4-7c803dccc51d")
    );
    assert_eq!(inst.product_id.as_deref(), Some("OFFI846204237451911168"));
    assert_eq!(inst.expire_time.as_deref(), Some("20251121235959"));
    let d = inst.order_details.unwrap();
    assert_eq!(
        (d.period_type.as_deref(), d.period_number.as_deref()),
        (Some("year"), Some("1"))
    );
    assert_eq!(d.customer_name.as_deref(), Some("mock_user_01"));
    assert_eq!(d.order_type.as_deref(), Some("NEW"));
    assert!(fake.rejections().is_empty(), "{:?}", fake.rejections());
    // A duplicate delivery replays the stored answer without asking again.
    let asked = fake.query_orders().len();
    let again = post(
        &app,
        r#"{"activity":"newInstance","businessId":"other","orderId":"MOCKPERIODYEARNEW","orderLineId":"MOCKPERIODYEARNEW-000001","testFlag":"0"}"#,
    )
    .await;
    assert_eq!(again.json["instanceId"].as_str(), Some(id.as_str()));
    assert_eq!(fake.query_orders().len(), asked);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_marketplace_that_does_not_answer_leaves_the_answer_unchanged() {
    let fake = FakeMarketplace::start(KEY).await;
    let app = app_with_marketplace(&fake);
    for _ in 0..5 {
        fake.inject(
            Api::QueryOrder,
            Fault::DelayAfterAccept(Duration::from_secs(10)),
        );
    }
    let a = post(&app, &thin("MOCKONDEMAND")).await;
    assert_eq!(a.code(), "000000", "{a:?}");
    assert!(a.signed_with(KEY));
    let id = a.json["instanceId"].as_str().unwrap();
    let inst = app
        .store
        .get_instance(Partition::Production, id)
        .await
        .unwrap()
        .unwrap();
    assert!(inst.order_details.is_none());
    assert!(inst.charging_mode.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn debug_traffic_is_not_enriched() {
    let fake = FakeMarketplace::start(KEY).await;
    let app = app_with_marketplace(&fake);
    let body = thin("MOCKONETIMENEW").replace(r#""testFlag":"0""#, r#""testFlag":"1""#);
    assert_eq!(post(&app, &body).await.code(), "000000");
    assert!(fake.query_orders().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upgrade_instance_takes_the_new_spec_from_query_order() {
    let fake = FakeMarketplace::start(KEY).await;
    let app = app_with_marketplace(&fake);
    let a = post(&app, &thin("MOCKPERIODYEARNEW")).await;
    let id = a.json["instanceId"].as_str().unwrap().to_string();
    let up = post(
        &app,
        &format!(
            r#"{{"activity":"upgradeInstance","instanceId":"{id}","orderId":"MOCKMONTYCHANGE","orderLineId":"MOCKMONTYCHANGE-000001","testFlag":"0"}}"#
        ),
    )
    .await;
    assert_eq!(up.code(), "000000", "{up:?}");
    let inst = app
        .store
        .get_instance(Partition::Production, &id)
        .await
        .unwrap()
        .unwrap();
    let d = inst.order_details.clone().unwrap();
    assert_eq!(d.order_type.as_deref(), Some("CHANGE"));
    assert_eq!(d.period_type.as_deref(), Some("month"));
    assert!(inst.has_applied("MOCKMONTYCHANGE", "MOCKMONTYCHANGE-000001"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn order_notify_records_the_order_details_once() {
    let fake = FakeMarketplace::start(KEY).await;
    let app = app_with_marketplace(&fake);
    let body = r#"{"activity":"orderNotify","orderId":"MOCKMONTYRENEW","orderLineId":"MOCKMONTYRENEW-000001","testFlag":"0"}"#;
    for _ in 0..2 {
        let a = invoke_function(
            &app,
            &koogate_order_notify::OrderNotifyFunction,
            post_event(GENERAL_KEY, body),
            &uuid::Uuid::new_v4().to_string(),
        )
        .await;
        assert_eq!(a.code(), "000000", "{a:?}");
    }
    let key = keys::order_notification(
        Partition::Production,
        "MOCKMONTYRENEW",
        "MOCKMONTYRENEW-000001",
    );
    let rec = app.store.get_record(&key).await.unwrap().unwrap();
    let n: OrderNotification = serde_json::from_str(&rec.doc).unwrap();
    assert_eq!(n.enrichment, "done");
    let d = n.details.unwrap();
    assert_eq!(d.order_type.as_deref(), Some("RENEW"));
    assert_eq!(d.charging_mode.as_deref(), Some("PERIOD"));
    assert!(
        !rec.doc.contains("18688888888"),
        "the buyer's phone is never stored"
    );
    assert_eq!(
        fake.query_orders(),
        vec!["MOCKMONTYRENEW".to_string()],
        "asked once"
    );
}

/// A license issuer that always answers later (the product's `202`).
struct Later;

#[async_trait::async_trait]
impl koogate_runtime::provisioner::LicenseIssuer for Later {
    async fn issue(
        &self,
        _: &koogate_runtime::provisioner::LicenseIssueRequest<'_>,
    ) -> Result<koogate_runtime::provisioner::Issued, koogate_runtime::provisioner::ProvisionError>
    {
        Ok(koogate_runtime::provisioner::Issued::Accepted)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_asynchronous_license_is_uploaded_once() {
    use koogate_saas::license_async::{deliver, Delivery};
    let fake = FakeMarketplace::start(KEY).await;
    let assembled = app_with_marketplace(&fake);
    let app = App::builder(assembled.config.clone())
        .secrets((*assembled.secrets()).clone())
        .store(Arc::clone(&assembled.store))
        .license_issuer(Arc::new(Later))
        .build()
        .await
        .unwrap();
    koogate_tests::put_usage_instance(app.store.as_ref(), "inst-lic").await;
    assert_eq!(
        deliver(&app, "evt-42", "LIC-XYZ").await.unwrap(),
        Delivery::UnknownApplication,
        "no application, nothing uploaded"
    );
    for event in ["evt-42", "evt-43"] {
        let body = format!(
            r#"{{"activity":"getLicenseAsync","eventId":"{event}","instanceId":"inst-lic","effectiveTime":"2023-10-27 10:30:15 z","testFlag":"0"}}"#
        );
        assert_eq!(koogate_tests::post(&app, &body).await.code(), "000004");
    }
    assert_eq!(
        deliver(&app, "evt-42", "LIC-XYZ").await.unwrap(),
        Delivery::Uploaded
    );
    assert_eq!(
        deliver(&app, "evt-42", "LIC-XYZ").await.unwrap(),
        Delivery::AlreadyDelivered
    );
    assert_eq!(
        deliver(&app, "evt-42", "LIC-OTHER").await.unwrap(),
        Delivery::Conflict
    );
    let long = "L".repeat(2000);
    assert_eq!(
        deliver(&app, "evt-43", &long).await.unwrap(),
        Delivery::Uploaded
    );
    let ups = fake.uploads();
    assert_eq!(ups.len(), 2, "one upload per event");
    assert_eq!(ups[0].0, "evt-42");
    assert_eq!(ups[0].1["characters"], "LIC-XYZ");
    assert_eq!(ups[1].1["type"], "FILE");
    assert_eq!(ups[1].2.as_deref(), Some(long.as_bytes()));
    assert!(fake.rejections().is_empty(), "{:?}", fake.rejections());
    let issued = app
        .store
        .list_events(&koogate_store::EventQuery::default())
        .await
        .unwrap();
    assert_eq!(
        issued
            .iter()
            .filter(|e| e.event_type == "license.issued")
            .count(),
        2,
        "license.issued once per delivered license"
    );
}
