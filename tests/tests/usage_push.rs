//! Usage push end to end against the fake marketplace: exactly once under injected failures
//! (an answer lost after the marketplace accepted, 5xx, throttling, MKT.9003), on SQLite and on
//! DynamoDB (moto); one refused record isolated from the valid ones of its call, corrected and
//! re-sent; unknown codes, 5xx and throttling retried; a wrong key or an auth failure making
//! the run an error; the metric lines; `koogate usage` exit codes; the old endpoint; the new
//! endpoint without API Gateway signing (D17).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use koogate_protocol::usage_push;
use koogate_runtime::marketplace::{Marketplace, MarketplaceSettings};
use koogate_runtime::pipeline::now_ms;
use koogate_runtime::secrets::IamCredentials;
use koogate_runtime::usage::{self, UsageInput};
use koogate_store::sqlite::SqliteStore;
use koogate_store::{Store, UsageKey, UsageStatus};
use koogate_tests::fake_marketplace::{Api, FakeMarketplace, Fault, AK, SK};
use koogate_tests::{put_usage_instance, MotoServer, KEY};
use koogate_usage_push::{PushOptions, PushReport, Pusher};

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
        emit_metrics: false,
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
        if i < 3 {
            put_usage_instance(store, &instance).await;
        }
        let h = i64::try_from(i / 3).unwrap() + 1;
        let input = UsageInput {
            instance_id: instance,
            begin_time: usage_push::format_time(top - (h + 1) * hour),
            end_time: usage_push::format_time(top - h * hour),
            usage_value: format!("{}.{}", i + 1, i % 10),
            product_id: Some("OFFI846204237451911168".into()),
            relate_pkg_instance: None,
        };
        usage::record_at(store, &input, now).await.unwrap();
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
        usage::record(&app, &input).await.unwrap();
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
    put_usage_instance(&*store, "lambda-1").await;
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
    let out = out.unwrap();
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
    let out = koogate_usage_push::handle_event(&p, &scheduled)
        .await
        .unwrap();
    assert_eq!(out["pushed"], 1, "{out}");
    assert_eq!(fake.billed().len(), 1);
}

/// The due records of `prefix` (3 instances) as the store holds them, by instance.
async fn states(store: &dyn Store, prefix: &str) -> Vec<Vec<(UsageStatus, Option<String>)>> {
    let mut out = Vec::new();
    for i in 0..3 {
        let all = store
            .instance_usage(&format!("{prefix}-{i}"))
            .await
            .unwrap();
        out.push(all.into_iter().map(|r| (r.status, r.failure)).collect());
    }
    out
}

fn metric(report: &PushReport, name: &str) -> serde_json::Value {
    let v: serde_json::Value = serde_json::from_str(&report.emf_line()).unwrap();
    assert_eq!(v["_aws"]["CloudWatchMetrics"][0]["Namespace"], "Koogate");
    assert_eq!(v["Function"], "usage-push");
    v[name].clone()
}

/// Every accepted occurrence is a distinct interval: nothing was pushed twice.
fn assert_nothing_pushed_twice(fake: &FakeMarketplace) {
    assert_eq!(
        fake.occurrences().len(),
        fake.billed().len(),
        "a record pushed twice"
    );
}

/// One instance unknown to the marketplace (MKT.9001 on HTTP 500) refuses every call that
/// carries one of its records: the calls are split until its records are alone, the valid
/// records of the same calls are pushed, the refused ones fail with their code (the run is an
/// error), and they can be corrected or re-sent, with a new metering_sn, once fixed.
async fn a_refused_record_is_isolated_corrected_and_resent(store: Arc<dyn Store>) {
    let fake = FakeMarketplace::start(KEY).await;
    let recorded = record_hours(&*store, "isolate", 12).await;
    fake.refuse_instance("isolate-1", 500, "MKT.9001");
    let p = pusher(Arc::clone(&store), marketplace(&fake, &[], true), 1000);
    let r = p.run().await;
    assert_eq!((r.pushed, r.failed, r.deferred), (8, 4, 0), "{r:?}");
    assert!(r.is_error(), "{r:?}");
    assert!(r.config_error.is_none() && r.stopped_by.is_none(), "{r:?}");
    assert!(
        r.failures.keys().all(|k| k.starts_with("MKT.9001")),
        "{r:?}"
    );
    assert!(
        fake.refused_calls() >= 4,
        "each refused record was sent alone"
    );
    assert_eq!(metric(&r, "UsageFailed"), 4);
    assert_eq!(metric(&r, "UsagePushed"), 8);
    assert_eq!(metric(&r, "UsagePending"), 0);
    let st = states(&*store, "isolate").await;
    assert!(
        st[0]
            .iter()
            .chain(&st[2])
            .all(|(s, _)| *s == UsageStatus::Pushed),
        "{st:?}"
    );
    assert!(
        st[1].iter().all(|(s, f)| *s == UsageStatus::Failed
            && f.as_deref().is_some_and(|f| f.starts_with("MKT.9001"))),
        "{st:?}"
    );
    assert_eq!(fake.billed().len(), 8);
    assert!(fake.billed().iter().all(|b| b.instance_id != "isolate-1"));
    // The product hears of each refusal: one usage.failed event per refused record.
    let refused = koogate_store::EventQuery {
        instance_id: Some("isolate-1".into()),
        ..Default::default()
    };
    let events = store.list_events(&refused).await.unwrap();
    assert_eq!(events.len(), 4, "{events:?}");
    for e in &events {
        let body: serde_json::Value = serde_json::from_str(&e.body).unwrap();
        assert_eq!(body["type"], "usage.failed");
        assert!(
            body["data"]["code"]
                .as_str()
                .unwrap()
                .starts_with("MKT.9001"),
            "{body}"
        );
        assert!(body["data"]["beginTime"].is_string() && body["data"]["endTime"].is_string());
    }
    // Recording the same value again says so and changes nothing.
    let bad: Vec<&UsageInput> = recorded
        .iter()
        .filter(|i| i.instance_id == "isolate-1")
        .collect();
    let again = usage::record_at(&*store, bad[0], now_ms()).await;
    assert_eq!(usage::answer(&again)["push"], "failed", "{again:?}");
    // The instance is fixed at the marketplace: one record is corrected (a new value), one is
    // re-sent unchanged; the others stay failed.
    fake.accept_instance("isolate-1");
    let mut corrected = bad[0].clone();
    corrected.usage_value = "42.5".into();
    let out = usage::record_at(&*store, &corrected, now_ms()).await;
    let answer = usage::answer(&out);
    assert_eq!(answer["status"], "recorded", "{answer}");
    assert!(answer["replaced"].as_str().unwrap().starts_with("MKT.9001"));
    let key = UsageKey {
        instance_id: bad[1].instance_id.clone(),
        begin_time: bad[1].begin_time.clone(),
        end_time: bad[1].end_time.clone(),
    };
    let resent = usage::resend(&*store, &key, now_ms()).await;
    assert_eq!(usage::answer(&resent)["status"], "recorded", "{resent:?}");
    let r = p.run().await;
    assert_eq!((r.pushed, r.failed), (2, 0), "{r:?}");
    assert!(!r.is_error(), "{r:?}");
    let billed = fake.billed();
    assert_eq!(billed.len(), 10);
    for (input, value) in [(bad[0], "42.5"), (bad[1], bad[1].usage_value.as_str())] {
        let b = billed
            .iter()
            .find(|b| b.instance_id == input.instance_id && b.begin_time == input.begin_time)
            .unwrap();
        assert_eq!(b.usage_value, usage_push::normalise_value(value).unwrap());
        assert_ne!(
            b.metering_sn.as_deref(),
            Some(
                usage_push::metering_sn(&input.instance_id, &input.begin_time, &input.end_time)
                    .as_str()
            ),
            "a re-queued record carries a new metering_sn"
        );
    }
    assert_nothing_pushed_twice(&fake);
    assert!(fake.rejections().is_empty(), "{:?}", fake.rejections());
    let st = states(&*store, "isolate").await;
    assert_eq!(
        st[1]
            .iter()
            .filter(|(s, _)| *s == UsageStatus::Failed)
            .count(),
        2,
        "the records not corrected stay failed: {st:?}"
    );
    // Nothing more to send.
    let r = p.run().await;
    assert_eq!((r.calls, r.pushed, r.failed), (0, 0, 0), "{r:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_record_is_isolated_corrected_and_resent_on_sqlite() {
    a_refused_record_is_isolated_corrected_and_resent(Arc::new(SqliteStore::in_memory().unwrap()))
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_record_is_isolated_corrected_and_resent_on_dynamodb() {
    let Some(moto) = MotoServer::shared() else {
        return;
    };
    a_refused_record_is_isolated_corrected_and_resent(Arc::new(moto.store().await)).await;
}

/// An unknown code on HTTP 500 (MKT.9999) and throttling are not final: the records stay
/// pending (backing off), the run is not an error, and they are pushed later.
async fn unknown_codes_and_throttling_are_retried(store: Arc<dyn Store>) {
    let fake = FakeMarketplace::start(KEY).await;
    record_hours(&*store, "retried", 6).await;
    let p = pusher(Arc::clone(&store), marketplace(&fake, &[], true), 1000);
    // More MKT.9999 answers than one call's attempts: the run stops with all pending.
    for _ in 0..4 {
        fake.inject(Api::Usage, Fault::Answer(500, "MKT.9999"));
    }
    let r = p.run().await;
    assert_eq!((r.pushed, r.failed, r.deferred), (0, 0, 6), "{r:?}");
    assert!(r.stopped_by.is_some() && !r.is_error(), "{r:?}");
    assert_eq!(metric(&r, "UsagePending"), 6);
    assert!(
        metric(&r, "UsageOldestDueAge").as_u64().unwrap() >= 3600,
        "{}",
        r.emf_line()
    );
    let st = states(&*store, "retried").await;
    assert!(
        st.iter().flatten().all(|(s, _)| *s == UsageStatus::Pending),
        "{st:?}"
    );
    tokio::time::sleep(Duration::from_millis(5)).await;
    // Throttling, with a long back-off: the records wait, and the report says until when.
    let patient = Pusher {
        options: PushOptions {
            retry_after: Duration::from_secs(3600),
            ..p.options
        },
        ..p.clone()
    };
    for _ in 0..4 {
        fake.inject(Api::Usage, Fault::Answer(429, "APIGW.0308"));
    }
    let r = patient.run().await;
    assert_eq!((r.pushed, r.failed, r.deferred), (0, 0, 6), "{r:?}");
    assert!(!r.is_error(), "{r:?}");
    let j = r.to_json();
    assert_eq!(j["pending"]["due"], 6, "{j}");
    assert_eq!(j["pending"]["backing_off"], 6, "{j}");
    assert!(j["pending"]["retry_not_before"].is_string(), "{j}");
    // Once the back-off is over (another set of records, same rule): pushed once.
    let fresh = pusher(Arc::clone(&store), marketplace(&fake, &[], true), 1000);
    let r = fresh.run().await;
    assert_eq!(r.calls, 0, "backing-off records are not claimed: {r:?}");
    assert_eq!(fake.billed().len(), 0);
    assert_nothing_pushed_twice(&fake);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_codes_and_throttling_are_retried_on_sqlite() {
    unknown_codes_and_throttling_are_retried(Arc::new(SqliteStore::in_memory().unwrap())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_codes_and_throttling_are_retried_on_dynamodb() {
    let Some(moto) = MotoServer::shared() else {
        return;
    };
    unknown_codes_and_throttling_are_retried(Arc::new(moto.store().await)).await;
}

/// After MKT.9999 the records are pushed by the next run, each once.
async fn a_5xx_with_an_unknown_code_is_pushed_later(store: Arc<dyn Store>) {
    let fake = FakeMarketplace::start(KEY).await;
    record_hours(&*store, "later", 6).await;
    let p = pusher(Arc::clone(&store), marketplace(&fake, &[], true), 1000);
    for _ in 0..4 {
        fake.inject(Api::Usage, Fault::Answer(500, "MKT.9999"));
    }
    let r = p.run().await;
    assert_eq!((r.pushed, r.deferred), (0, 6), "{r:?}");
    tokio::time::sleep(Duration::from_millis(5)).await;
    let r = p.run().await;
    assert_eq!((r.pushed, r.failed), (6, 0), "{r:?}");
    assert_eq!(fake.billed().len(), 6);
    assert_nothing_pushed_twice(&fake);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_5xx_with_an_unknown_code_is_pushed_later_on_sqlite() {
    a_5xx_with_an_unknown_code_is_pushed_later(Arc::new(SqliteStore::in_memory().unwrap())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_5xx_with_an_unknown_code_is_pushed_later_on_dynamodb() {
    let Some(moto) = MotoServer::shared() else {
        return;
    };
    a_5xx_with_an_unknown_code_is_pushed_later(Arc::new(moto.store().await)).await;
}

/// A wrong key (MKT.0102) or an authentication failure (MKT.0154) stops the run with an error —
/// the scheduled Lambda answers an error — and the records stay pending until it is fixed.
async fn a_configuration_error_makes_the_run_an_error(store: Arc<dyn Store>) {
    let fake = FakeMarketplace::start(KEY).await;
    record_hours(&*store, "config", 3).await;
    let p = pusher(Arc::clone(&store), marketplace(&fake, &[], true), 1000);
    let wrong_key = Pusher {
        basic_key: Some("not-the-key".into()),
        ..p.clone()
    };
    let scheduled = serde_json::json!({"source": "aws.events", "detail-type": "Scheduled Event"});
    let err = koogate_usage_push::handle_event(&wrong_key, &scheduled)
        .await
        .unwrap_err();
    assert!(err.contains("MKT.0102"), "{err}");
    assert_eq!(fake.rejections().len(), 1, "the fake saw the bad signature");
    // A zero back-off still ends at the millisecond of the failure.
    tokio::time::sleep(Duration::from_millis(5)).await;
    let r = wrong_key.run().await;
    assert!(r.config_error.is_some() && r.is_error(), "{r:?}");
    assert_eq!((r.failed, r.pushed, r.deferred), (0, 0, 3), "{r:?}");
    assert_eq!(metric(&r, "UsageConfigErrors"), 1);
    tokio::time::sleep(Duration::from_millis(5)).await;
    fake.inject(Api::Usage, Fault::Answer(401, "MKT.0154"));
    let err = koogate_usage_push::handle_event(&p, &scheduled)
        .await
        .unwrap_err();
    assert!(err.contains("MKT.0154"), "{err}");
    let st = states(&*store, "config").await;
    assert!(
        st.iter().flatten().all(|(s, _)| *s == UsageStatus::Pending),
        "{st:?}"
    );
    tokio::time::sleep(Duration::from_millis(5)).await;
    let out = koogate_usage_push::handle_event(&p, &scheduled)
        .await
        .unwrap();
    assert_eq!(out["pushed"], 3, "pushed once the key is right: {out}");
    assert_eq!(out["error"], false, "{out}");
    assert_nothing_pushed_twice(&fake);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_configuration_error_makes_the_run_an_error_on_sqlite() {
    a_configuration_error_makes_the_run_an_error(Arc::new(SqliteStore::in_memory().unwrap())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_configuration_error_makes_the_run_an_error_on_dynamodb() {
    let Some(moto) = MotoServer::shared() else {
        return;
    };
    a_configuration_error_makes_the_run_an_error(Arc::new(moto.store().await)).await;
}

/// Recording refuses what cannot be billed: unknown, debug and released instances.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recording_refuses_unknown_and_released_instances() {
    let app = koogate_tests::sqlite_app(&[]);
    let body = format!(
        r#"{{"activity":"newInstance","businessId":"{}","orderId":"CSREL","orderLineId":"CSREL-000001","testFlag":"0"}}"#,
        uuid::Uuid::new_v4()
    );
    let a = koogate_tests::post(&app, &body).await;
    let id = a.json["instanceId"].as_str().unwrap().to_string();
    let now = now_ms();
    let top = now - now.rem_euclid(3_600_000);
    let input = |id: &str, h: i64| UsageInput {
        instance_id: id.into(),
        begin_time: usage_push::format_time(top - (h + 1) * 3_600_000),
        end_time: usage_push::format_time(top - h * 3_600_000),
        usage_value: "1".into(),
        product_id: None,
        relate_pkg_instance: None,
    };
    let unknown = usage::record(&app, &input("no-such-instance", 1)).await;
    assert_eq!(usage::answer(&unknown)["reason"], "unknown_instance");
    assert!(usage::record(&app, &input(&id, 2)).await.is_ok());
    let release = format!(
        r#"{{"activity":"releaseInstance","instanceId":"{id}","orderId":"CSREL","orderLineId":"CSREL-000001","testFlag":"0"}}"#
    );
    assert_eq!(koogate_tests::post(&app, &release).await.code(), "000000");
    // Released now: an interval that ended before is still accepted; one ending after is not.
    assert!(usage::record(&app, &input(&id, 1)).await.is_ok());
    let mut late = input(&id, 0);
    late.end_time = usage_push::format_time(now_ms() + 60_000);
    let late_out = usage::record_at(&*app.store, &late, now_ms() + 120_000).await;
    assert_eq!(
        usage::answer(&late_out)["reason"],
        "ends_after_release",
        "{late_out:?}"
    );
}

/// `koogate usage record|resend|push` as a process: exit codes, the per-record answers, the
/// pending summary, and the EMF line with KOOGATE_METRICS=emf.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_exits_non_zero_when_records_fail_and_prints_metrics() {
    let fake = FakeMarketplace::start(KEY).await;
    let dir = std::env::temp_dir().join(format!("koogate-usage-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let secrets = dir.join("secrets.json");
    std::fs::write(
        &secrets,
        serde_json::json!({"access_keys": {"basic": [KEY]}, "iam": {"ak": AK, "sk": SK}})
            .to_string(),
    )
    .unwrap();
    let db = dir.join("store.db");
    {
        let store = SqliteStore::open(&db).unwrap();
        put_usage_instance(&store, "cli-good").await;
        put_usage_instance(&store, "cli-bad").await;
    }
    let run = |args: &[&str]| {
        let out = std::process::Command::new(koogate_tests::koogate_bin())
            .args(args)
            .env("KOOGATE_SECRETS_FILE", &secrets)
            .env("KOOGATE_STORE", format!("sqlite:{}", db.display()))
            .env("KOOGATE_MARKETPLACE_URL", &fake.url)
            .env("KOOGATE_METRICS", "emf")
            .env("RUST_LOG", "off")
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).to_string(),
        )
    };
    let now = now_ms();
    let top = now - now.rem_euclid(3_600_000);
    let (begin, end) = (
        usage_push::format_time(top - 7_200_000),
        usage_push::format_time(top - 3_600_000),
    );
    let record = |id: &str, value: &str| {
        run(&[
            "usage",
            "record",
            "--instance",
            id,
            "--begin",
            &begin,
            "--end",
            &end,
            "--value",
            value,
        ])
    };
    let (ok, out) = record("cli-unknown", "1");
    assert!(!ok && out.contains("unknown_instance"), "{out}");
    assert!(record("cli-good", "1").0);
    assert!(record("cli-bad", "2").0);
    fake.refuse_instance("cli-bad", 500, "MKT.9001");
    let (ok, out) = run(&["usage", "push"]);
    assert!(!ok, "a failed record makes the push fail: {out}");
    let lines: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let emf = lines
        .iter()
        .find(|l| l.get("_aws").is_some())
        .expect("an EMF line");
    assert_eq!(
        (emf["UsagePushed"].as_u64(), emf["UsageFailed"].as_u64()),
        (Some(1), Some(1)),
        "{out}"
    );
    let report = lines
        .iter()
        .find(|l| l.get("pending").is_some())
        .expect("the report");
    assert_eq!(report["failed"], 1, "{out}");
    // The wrong value is corrected; pushed at the next run, which succeeds.
    fake.accept_instance("cli-bad");
    let (ok, out) = record("cli-bad", "3");
    assert!(ok && out.contains("\"replaced\""), "{out}");
    let (ok, out) = run(&["usage", "push"]);
    assert!(ok, "{out}");
    assert!(out.contains("\"UsagePushed\":1"), "{out}");
    // Nothing failed to resend now.
    let (ok, out) = run(&[
        "usage",
        "resend",
        "--instance",
        "cli-bad",
        "--begin",
        &begin,
        "--end",
        &end,
    ]);
    assert!(!ok && out.contains("not_failed"), "{out}");
    // A wrong key: exit non-zero, the records stay pending, and the report says so.
    assert!(record("cli-good", "1").0, "same value: already recorded");
    let mut other_begin = begin.clone();
    other_begin.replace_range(9..11, "00");
    let b2 = usage_push::format_time(top - 3 * 3_600_000);
    let e2 = usage_push::format_time(top - 2 * 3_600_000);
    assert!(
        run(&[
            "usage",
            "record",
            "--instance",
            "cli-good",
            "--begin",
            &b2,
            "--end",
            &e2,
            "--value",
            "5"
        ])
        .0
    );
    std::fs::write(
        &secrets,
        serde_json::json!({"access_keys": {"basic": ["wrong-key"]}, "iam": {"ak": AK, "sk": SK}})
            .to_string(),
    )
    .unwrap();
    let (ok, out) = run(&["usage", "push"]);
    assert!(!ok, "{out}");
    assert!(
        out.contains("\"UsageConfigErrors\":1") && out.contains("\"due\":1"),
        "{out}"
    );
    let billed = fake.billed();
    assert_eq!(billed.len(), 2, "{billed:?}");
    assert_nothing_pushed_twice(&fake);
    let _ = std::fs::remove_dir_all(&dir);
}
