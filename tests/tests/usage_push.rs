//! Usage push end to end against the fake marketplace: exactly once under injected failures
//! (an answer lost after the marketplace accepted, 5xx, throttling, MKT.9003), on SQLite and on
//! DynamoDB (moto); the old endpoint; the new endpoint without API Gateway signing (D17).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use koogate_protocol::usage_push;
use koogate_runtime::marketplace::{Marketplace, MarketplaceSettings};
use koogate_runtime::pipeline::now_ms;
use koogate_runtime::secrets::IamCredentials;
use koogate_runtime::usage::{self, UsageInput};
use koogate_store::sqlite::SqliteStore;
use koogate_store::{Store, UsageStatus};
use koogate_tests::fake_marketplace::{Api, FakeMarketplace, Fault, AK, SK};
use koogate_tests::{MotoServer, KEY};
use koogate_usage_push::{PushOptions, Pusher};

fn marketplace(fake: &FakeMarketplace, extra: &[(&str, &str)], iam: bool) -> Marketplace {
    let mut vars: Vec<(String, String)> = vec![
        ("KOOGATE_MARKETPLACE_URL".into(), fake.url.clone()),
        ("KOOGATE_MARKETPLACE_PUSH_TIMEOUT_MS".into(), "400".into()),
    ];
    vars.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let settings = MarketplaceSettings::from_lookup(|k| {
        vars.iter()
            .rev()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
    })
    .unwrap();
    let iam = iam.then(|| IamCredentials {
        ak: AK.into(),
        sk: SK.into(),
    });
    Marketplace::new(settings, iam).unwrap()
}

fn pusher(store: Arc<dyn Store>, m: Marketplace, batch_size: usize) -> Pusher {
    Pusher {
        store,
        marketplace: m,
        basic_key: Some(KEY.to_string()),
        options: PushOptions {
            batch_size,
            lease: Duration::from_secs(120),
            retry_after: Duration::ZERO,
            config_retry_after: Duration::ZERO,
            deadline: None,
        },
    }
}

/// Records `count` hourly records spread over 3 instances, ended within the last days.
async fn record_hours(store: &dyn Store, prefix: &str, count: usize) -> Vec<UsageInput> {
    let now = now_ms();
    let hour = 3_600_000;
    let top = now - now.rem_euclid(hour);
    let mut out = Vec::new();
    for i in 0..count {
        let instance = format!("{prefix}-{}", i % 3);
        let h = i64::try_from(i / 3).unwrap() + 1;
        let input = UsageInput {
            instance_id: instance,
            begin_time: usage_push::format_time(top - (h + 1) * hour),
            end_time: usage_push::format_time(top - h * hour),
            usage_value: format!("{}.{}", i + 1, i % 10),
            product_id: Some("OFFI846204237451911168".into()),
            relate_pkg_instance: None,
        };
        usage::record(store, &input, now).await.unwrap();
        out.push(input);
    }
    out
}

/// The heart of the acceptance: every recorded interval is billed exactly once with its
/// recorded value and stable metering_sn; the only repeats are re-sends of identical records
/// after a lost answer; the store says pushed for all; a further run sends nothing.
async fn exactly_once_under_failures(store: Arc<dyn Store>) {
    let fake = FakeMarketplace::start(KEY).await;
    let recorded = record_hours(&*store, "exactly-once", 300).await;
    let p = pusher(Arc::clone(&store), marketplace(&fake, &[], true), 100);

    // Run 1, first call: the answer is lost after the marketplace accepted (client timeout),
    // then 5xx, then throttling, then MKT.9003 (the call is split and goes through).
    fake.inject(
        Api::Usage,
        Fault::DelayAfterAccept(Duration::from_millis(1500)),
    );
    fake.inject(Api::Usage, Fault::Answer(500, "MKT.0999"));
    fake.inject(Api::Usage, Fault::Answer(429, "APIGW.0308"));
    fake.inject(Api::Usage, Fault::Answer(500, "MKT.9003"));
    let r1 = p.run().await;
    assert!(r1.stopped_by.is_none(), "{r1:?}");
    assert_eq!((r1.pushed, r1.failed, r1.deferred), (300, 0, 0), "{r1:?}");
    assert_eq!(
        r1.calls, 5,
        "three batches, the first refused for size and sent as two halves: {r1:?}"
    );

    // Later usage: four 5xx in a row exhaust a call's retries; the run stops, the records stay
    // pending and go out, identically, on the next run.
    let later = record_hours(&*store, "exactly-once-later", 30).await;
    for _ in 0..4 {
        fake.inject(Api::Usage, Fault::Answer(503, "MKT.0999"));
    }
    let r2 = p.run().await;
    assert!(r2.stopped_by.is_some(), "{r2:?}");
    assert_eq!((r2.pushed, r2.deferred), (0, 30), "{r2:?}");
    tokio::time::sleep(Duration::from_millis(5)).await;
    let r3 = p.run().await;
    assert_eq!((r3.pushed, r3.calls), (30, 1), "{r3:?}");
    let recorded: Vec<UsageInput> = recorded.into_iter().chain(later).collect();

    assert!(fake.rejections().is_empty(), "{:?}", fake.rejections());
    let billed: BTreeMap<(String, String, String), _> = fake
        .billed()
        .into_iter()
        .map(|b| {
            (
                (
                    b.instance_id.clone(),
                    b.begin_time.clone(),
                    b.end_time.clone(),
                ),
                b,
            )
        })
        .collect();
    assert_eq!(billed.len(), recorded.len(), "nothing lost");
    for input in &recorded {
        let key = (
            input.instance_id.clone(),
            input.begin_time.clone(),
            input.end_time.clone(),
        );
        let b = &billed[&key];
        assert_eq!(
            b.usage_value,
            usage_push::normalise_value(&input.usage_value).unwrap()
        );
        assert_eq!(
            b.metering_sn.as_deref(),
            Some(
                usage_push::metering_sn(&input.instance_id, &input.begin_time, &input.end_time)
                    .as_str()
            )
        );
    }
    // Repeats: only the first call's records (accepted, answer lost), identical every time.
    let occurrences = fake.occurrences();
    assert_eq!(
        occurrences.len(),
        330 + 100,
        "the lost answer's batch went out twice, nothing else"
    );
    for o in &occurrences {
        let b = &billed[&(
            o.instance_id.clone(),
            o.begin_time.clone(),
            o.end_time.clone(),
        )];
        assert_eq!(o, b, "a re-send carries the identical record");
    }
    for i in 0..3 {
        let all = store
            .instance_usage(&format!("exactly-once-{i}"))
            .await
            .unwrap();
        assert_eq!(all.len(), 100);
        assert!(all.iter().all(|r| r.status == UsageStatus::Pushed));
    }
    let calls = fake.usage_calls();
    let r4 = p.run().await;
    assert_eq!((r4.calls, r4.pushed), (0, 0));
    assert_eq!(fake.usage_calls(), calls, "nothing is sent again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_push_is_exactly_once_under_failures_on_sqlite() {
    exactly_once_under_failures(Arc::new(SqliteStore::in_memory().unwrap())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_push_is_exactly_once_under_failures_on_dynamodb() {
    let Some(moto) = MotoServer::shared() else {
        return;
    };
    exactly_once_under_failures(Arc::new(moto.store().await)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn permanent_refusals_mark_records_failed_with_their_code() {
    let store: Arc<dyn Store> = Arc::new(SqliteStore::in_memory().unwrap());
    let fake = FakeMarketplace::start(KEY).await;
    record_hours(&*store, "refused", 3).await;
    let p = pusher(Arc::clone(&store), marketplace(&fake, &[], true), 1000);
    fake.inject(Api::Usage, Fault::Answer(500, "MKT.9002"));
    let r = p.run().await;
    assert_eq!((r.failed, r.pushed), (3, 0), "{r:?}");
    let all = store.instance_usage("refused-0").await.unwrap();
    assert_eq!(all[0].status, UsageStatus::Failed);
    assert!(all[0].failure.as_deref().unwrap().starts_with("MKT.9002"));
    assert!(fake.billed().is_empty());
    // A configuration refusal (bad header signature) keeps records pending instead.
    record_hours(&*store, "misconfigured", 3).await;
    let wrong_key = Pusher {
        basic_key: Some("not-the-key".into()),
        ..pusher(Arc::clone(&store), marketplace(&fake, &[], true), 1000)
    };
    let r = wrong_key.run().await;
    assert_eq!((r.failed, r.pushed, r.deferred), (0, 0, 3), "{r:?}");
    assert_eq!(fake.rejections().len(), 1, "the fake saw the bad signature");
    tokio::time::sleep(Duration::from_millis(5)).await;
    let r = p.run().await;
    assert_eq!(r.pushed, 3, "pushed once the key is right: {r:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_old_endpoint_and_the_new_one_without_gateway_signing() {
    let store: Arc<dyn Store> = Arc::new(SqliteStore::in_memory().unwrap());
    let fake = FakeMarketplace::start(KEY).await;
    record_hours(&*store, "old", 6).await;
    let old = pusher(
        Arc::clone(&store),
        marketplace(&fake, &[("KOOGATE_USAGE_ENDPOINT", "old")], true),
        1000,
    );
    assert_eq!(old.run().await.pushed, 6);
    assert!(fake.occurrences().iter().all(|o| o.metering_sn.is_none()));
    record_hours(&*store, "header-only", 6).await;
    let header_only = pusher(Arc::clone(&store), marketplace(&fake, &[], false), 1000);
    assert_eq!(header_only.run().await.pushed, 6);
    assert!(fake.rejections().is_empty(), "{:?}", fake.rejections());
    assert_eq!(fake.billed().len(), 12);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_instance_answers_usage_info_from_the_usage_records() {
    let app = koogate_tests::sqlite_app(&[]);
    let body = format!(
        r#"{{"activity":"newInstance","businessId":"{}","orderId":"CSUSAGE","orderLineId":"CSUSAGE-000001","testFlag":"0"}}"#,
        uuid::Uuid::new_v4()
    );
    let a = koogate_tests::post(&app, &body).await;
    let id = a.json["instanceId"].as_str().unwrap().to_string();
    let query = format!(r#"{{"activity":"queryInstance","instanceId":"{id}","testFlag":"0"}}"#);
    let before = koogate_tests::post(&app, &query).await;
    assert!(
        before.json["info"][0].get("usageInfo").is_none(),
        "{}",
        before.body
    );

    let now = now_ms();
    let top = now - now.rem_euclid(3_600_000);
    for (h, v) in [(2, "1.25"), (1, "2.5")] {
        let input = UsageInput {
            instance_id: id.clone(),
            begin_time: usage_push::format_time(top - (h + 1) * 3_600_000),
            end_time: usage_push::format_time(top - h * 3_600_000),
            usage_value: v.into(),
            product_id: None,
            relate_pkg_instance: None,
        };
        usage::record(&*app.store, &input, now).await.unwrap();
    }
    let after = koogate_tests::post(&app, &query).await;
    assert_eq!(after.code(), "000000");
    assert!(after.signed_with(KEY));
    let info = &after.json["info"][0]["usageInfo"][0];
    assert_eq!(
        info["usageValue"],
        serde_json::json!(3.75),
        "{}",
        after.body
    );
    assert_eq!(
        info["statisticalTime"].as_str().unwrap(),
        koogate_protocol::timestamp::format_compact_ms(top - 3_600_000)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lambda_records_usage_on_direct_invocation_and_pushes_on_schedule() {
    let store: Arc<dyn Store> = Arc::new(SqliteStore::in_memory().unwrap());
    let fake = FakeMarketplace::start(KEY).await;
    let p = pusher(Arc::clone(&store), marketplace(&fake, &[], true), 1000);
    let now = now_ms();
    let top = now - now.rem_euclid(3_600_000);
    let record = |value: &str| {
        serde_json::json!({
            "instance_id": "lambda-1",
            "begin_time": usage_push::format_time(top - 7_200_000),
            "end_time": usage_push::format_time(top - 3_600_000),
            "usage_value": value,
        })
    };
    let out = koogate_usage_push::handle_event(
        &p,
        &serde_json::json!({"usage_records": [record("2"), record("2"), record("3"), {"instance_id": 1}]}),
    )
    .await;
    let statuses: Vec<&str> = out["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["status"].as_str().unwrap())
        .collect();
    assert_eq!(
        statuses,
        ["recorded", "already_recorded", "rejected", "rejected"],
        "{out}"
    );
    assert_eq!(fake.usage_calls(), 0, "recording pushes nothing");
    // An EventBridge scheduled event runs a push.
    let scheduled =
        serde_json::json!({"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}});
    let out = koogate_usage_push::handle_event(&p, &scheduled).await;
    assert_eq!(out["pushed"], 1, "{out}");
    assert_eq!(fake.billed().len(), 1);
}
