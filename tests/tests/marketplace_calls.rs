//! The marketplace client against the fake marketplace: Query Order with the mock orders,
//! license activation and query, uploads, the fallback host, and the error codes it reports.

use std::time::Duration;

use koogate_protocol::open_api::Upload;
use koogate_runtime::marketplace::{Marketplace, MarketplaceSettings, Retry};
use koogate_runtime::secrets::IamCredentials;
use koogate_tests::fake_marketplace::{Api, FakeMarketplace, Fault, AK, SK};
use koogate_tests::KEY;

fn client(vars: &[(&str, String)], iam: bool) -> Marketplace {
    let settings = MarketplaceSettings::from_lookup(|k| {
        vars.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone())
    })
    .unwrap();
    let iam = iam.then(|| IamCredentials {
        ak: AK.into(),
        sk: SK.into(),
    });
    Marketplace::new(settings, iam).unwrap()
}

fn retry() -> Retry {
    Retry {
        max_attempts: 3,
        attempt_timeout: Duration::from_millis(500),
        backoff: Duration::from_millis(10),
        deadline: None,
    }
}

#[tokio::test]
async fn query_order_reads_the_mock_orders() {
    let fake = FakeMarketplace::start(KEY).await;
    let m = client(&[("KOOGATE_MARKETPLACE_URL", fake.url.clone())], true);
    let o = m
        .query_order(
            "MOCKPERIODYEARNEW",
            Some("MOCKPERIODYEARNEW-000001"),
            retry(),
        )
        .await
        .unwrap();
    assert_eq!(o.charging_mode.as_deref(), Some("PERIOD"));
    assert_eq!(o.period_type.as_deref(), Some("year"));
    assert_eq!(o.period_number.as_deref(), Some("1"));
    assert_eq!(o.expire_time.as_deref(), Some("20251121235959"));
    assert_eq!(
        o.sku_code.as_deref(),
        Some("0a4d1578-5295-46a7-92d4-7c803dccc51d")
    );
    assert_eq!(o.customer_name.as_deref(), Some("mock_user_01"));
    let od = m.query_order("MOCKONDEMAND", None, retry()).await.unwrap();
    assert_eq!(od.charging_mode.as_deref(), Some("ON_DEMAND"));
    // A business error is not retried and carries its code.
    let e = m
        .query_order("NOSUCHORDER", None, retry())
        .await
        .unwrap_err();
    assert_eq!(e.code.as_deref(), Some("MKT.0101"));
    assert!(!e.transient);
    assert!(fake.rejections().is_empty(), "{:?}", fake.rejections());
    assert_eq!(
        fake.query_orders().len(),
        3,
        "no retry of the business error"
    );
}

#[tokio::test]
async fn transient_failures_are_retried_within_the_budget() {
    let fake = FakeMarketplace::start(KEY).await;
    let m = client(&[("KOOGATE_MARKETPLACE_URL", fake.url.clone())], true);
    fake.inject(Api::QueryOrder, Fault::Answer(502, "APIGW.0201"));
    fake.inject(Api::QueryOrder, Fault::Answer(429, "APIGW.0308"));
    let o = m
        .query_order("MOCKONETIMENEW", None, retry())
        .await
        .unwrap();
    assert_eq!(o.charging_mode.as_deref(), Some("ONE_TIME"));
    // Three slow answers exhaust the attempts: the error is transient, without a code.
    for _ in 0..3 {
        fake.inject(
            Api::QueryOrder,
            Fault::DelayAfterAccept(Duration::from_secs(2)),
        );
    }
    let e = m
        .query_order("MOCKONETIMENEW", None, retry())
        .await
        .unwrap_err();
    assert!(e.transient && e.code.is_none(), "{e}");
    // A deadline bounds the whole call, attempts and back-off included.
    fake.inject(
        Api::QueryOrder,
        Fault::DelayAfterAccept(Duration::from_secs(2)),
    );
    let started = std::time::Instant::now();
    let within = Retry::within(started + Duration::from_millis(300), Duration::from_secs(5));
    assert!(m.query_order("MOCKONETIMENEW", None, within).await.is_err());
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn an_unreachable_primary_host_falls_back() {
    let fake = FakeMarketplace::start(KEY).await;
    let closed = koogate_tests::free_port();
    let m = client(
        &[
            (
                "KOOGATE_MARKETPLACE_URL",
                format!("http://127.0.0.1:{closed}"),
            ),
            ("KOOGATE_MARKETPLACE_FALLBACK_URL", fake.url.clone()),
        ],
        true,
    );
    let o = m
        .query_order("MOCKMONTYRENEW", None, retry())
        .await
        .unwrap();
    assert_eq!(o.order_type.as_deref(), Some("RENEW"));
    assert!(
        fake.rejections().is_empty(),
        "re-signed for the fallback host: {:?}",
        fake.rejections()
    );
}

#[tokio::test]
async fn calls_that_need_the_gateway_refuse_without_iam() {
    let fake = FakeMarketplace::start(KEY).await;
    let m = client(&[("KOOGATE_MARKETPLACE_URL", fake.url.clone())], false);
    let e = m
        .query_order("MOCKONDEMAND", None, retry())
        .await
        .unwrap_err();
    assert!(e.message.contains("IAM"), "{e}");
    assert_eq!(fake.requests(), 0);
}

#[tokio::test]
async fn licenses_are_activated_once_and_queried() {
    let fake = FakeMarketplace::start(KEY).await;
    let m = client(&[("KOOGATE_MARKETPLACE_URL", fake.url.clone())], true);
    let e = m
        .query_license("PL-1", None, None, retry())
        .await
        .unwrap_err();
    assert_eq!(e.code.as_deref(), Some("92020011"), "not activated yet");
    let a = m
        .activate_license("PL-1", Some("20240101000000"), retry())
        .await
        .unwrap();
    assert!(!a.already_active);
    assert!(a.data.unwrap()["license_code_info"]
        .as_str()
        .unwrap()
        .contains("ALIVE"));
    let again = m.activate_license("PL-1", None, retry()).await.unwrap();
    assert!(again.already_active, "92020003 means already active");
    let info = m
        .query_license("PL-1", Some("user-1"), Some("10.0.0.1"), retry())
        .await
        .unwrap();
    assert_eq!(info["status"], "ALIVE");
    let e = m
        .activate_license("XX-unknown", None, retry())
        .await
        .unwrap_err();
    assert_eq!(e.code.as_deref(), Some("92020005"));
    assert!(fake.rejections().is_empty(), "{:?}", fake.rejections());
}

#[tokio::test]
async fn uploads_send_the_multipart_body_the_gateway_signed() {
    let fake = FakeMarketplace::start(KEY).await;
    let m = client(&[("KOOGATE_MARKETPLACE_URL", fake.url.clone())], true);
    m.upload("evt-1", Upload::Characters("LIC-ABC"), retry())
        .await
        .unwrap();
    m.upload(
        "evt-2",
        Upload::File {
            name: "license.lic",
            bytes: b"\x00binary\r\n--not-a-boundary",
        },
        retry(),
    )
    .await
    .unwrap();
    assert!(fake.rejections().is_empty(), "{:?}", fake.rejections());
    let ups = fake.uploads();
    assert_eq!(ups[0].0, "evt-1");
    assert_eq!(ups[0].1["characters"], "LIC-ABC");
    assert_eq!(ups[1].1["type"], "FILE");
    assert_eq!(
        ups[1].2.as_deref(),
        Some(&b"\x00binary\r\n--not-a-boundary"[..])
    );
}
