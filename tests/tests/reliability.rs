//! Reliability of newInstance under races, store failures, hangs and crashes (design §8), on
//! SQLite and on DynamoDB (moto), and the DynamoDB request count of a first and a duplicate
//! delivery.

use std::sync::Arc;
use std::time::{Duration, Instant};

use koogate_runtime::pipeline::now_ms;
use koogate_store::{keys, Acquire, Instance, InstanceState, Partition, Store};
use koogate_tests::geminidb::Mode;
use koogate_tests::{app, post, Fault, FaultyStore, MotoServer};

fn new_instance(order: &str, business: &str) -> String {
    format!(
        r#"{{"activity":"newInstance","businessId":"{business}","orderId":"{order}","orderLineId":"{order}-000001","testFlag":"0"}}"#
    )
}

async fn sixteen_concurrent_deliveries_create_one_instance(store: Arc<dyn Store>) {
    let app = app(Arc::clone(&store), &[]);
    let order = format!("CSRACE{}", uuid::Uuid::new_v4().simple());
    let mut tasks = Vec::new();
    for i in 0..16 {
        let app = Arc::clone(&app);
        let body = new_instance(&order, &format!("business-{i}"));
        tasks.push(tokio::spawn(async move { post(&app, &body).await }));
    }
    let mut ids = std::collections::BTreeSet::new();
    for t in tasks {
        let a = t.await.unwrap();
        assert!(matches!(a.code(), "000000" | "000004"), "{a:?}");
        ids.insert(a.json["instanceId"].as_str().unwrap().to_string());
    }
    assert_eq!(ids.len(), 1, "one instanceId for all deliveries: {ids:?}");
    let id = ids.into_iter().next().unwrap();
    let settled = post(&app, &new_instance(&order, "business-late")).await;
    assert_eq!(settled.code(), "000000");
    assert_eq!(settled.json["instanceId"], id.as_str());
    let inst = store
        .get_instance(Partition::Production, &id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(inst.state, InstanceState::Active);
    for i in 0..16 {
        let other = format!("business-{i}");
        if other != id {
            assert!(
                store
                    .get_instance(Partition::Production, &other)
                    .await
                    .unwrap()
                    .is_none(),
                "no second instance {other}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_deliveries_sqlite() {
    sixteen_concurrent_deliveries_create_one_instance(Arc::new(
        koogate_store::sqlite::SqliteStore::in_memory().unwrap(),
    ))
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_deliveries_dynamodb() {
    let moto = MotoServer::shared().expect("moto_server is required");
    sixteen_concurrent_deliveries_create_one_instance(Arc::new(moto.store().await)).await;
}

/// A store failing at every possible step of a first delivery answers 000005 and leaves a state
/// from which the marketplace's next delivery completes the order with one instance.
#[tokio::test]
async fn a_failing_store_answers_000005_and_the_retry_completes() {
    for fail_after in 0..5u64 {
        let inner: Arc<dyn Store> =
            Arc::new(koogate_store::sqlite::SqliteStore::in_memory().unwrap());
        let faulty = app(
            Arc::new(FaultyStore::new(
                Arc::clone(&inner),
                Fault::FailAfter(fail_after),
            )),
            &[],
        );
        let order = format!("CSFAIL{fail_after}");
        let first = post(&faulty, &new_instance(&order, "first-business")).await;
        if fail_after < 4 {
            assert_eq!(
                first.code(),
                "000005",
                "failure after {fail_after} store calls: {first:?}"
            );
        }
        let healthy = app(Arc::clone(&inner), &[]);
        let retry = post(&healthy, &new_instance(&order, "retry-business")).await;
        assert_eq!(
            retry.code(),
            "000000",
            "retry after failure at step {fail_after}: {retry:?}"
        );
        let id = retry.json["instanceId"].as_str().unwrap().to_string();
        let inst = inner
            .get_instance(Partition::Production, &id)
            .await
            .unwrap()
            .expect("instance exists");
        assert_eq!(inst.state, InstanceState::Active);
        let other = if id == "first-business" {
            "retry-business"
        } else {
            "first-business"
        };
        assert!(
            inner
                .get_instance(Partition::Production, other)
                .await
                .unwrap()
                .is_none(),
            "one instance only"
        );
        if fail_after >= 2 {
            assert_eq!(
                id, "first-business",
                "once the lock was taken, the instanceId stays the first businessId"
            );
        }
    }
}

/// A store that never answers: the request answers 000005 within its budget, and the next
/// delivery (after the lease, which ends with the budget) completes the order with the same
/// instanceId.
#[tokio::test]
async fn a_hanging_store_answers_000005_within_the_budget() {
    let inner: Arc<dyn Store> = Arc::new(koogate_store::sqlite::SqliteStore::in_memory().unwrap());
    let budget = [("KOOGATE_REQUEST_BUDGET_MS", "300")];
    let hanging = app(
        Arc::new(FaultyStore::new(Arc::clone(&inner), Fault::HangAfter(2))),
        &budget,
    );
    let started = Instant::now();
    let a = post(&hanging, &new_instance("CSHANG", "hang-business")).await;
    assert_eq!(a.code(), "000005", "{a:?}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "answered inside the marketplace's 5 s"
    );

    // The hung call's lease ends with its budget, so the next delivery takes the order over.
    let healthy = app(Arc::clone(&inner), &budget);
    let after = post(&healthy, &new_instance("CSHANG", "third-business")).await;
    assert_eq!(after.code(), "000000", "{after:?}");
    assert_eq!(after.json["instanceId"], "hang-business");
}

/// A slow store (every call 150 ms): the answers are those of a fast one as long as the whole call
/// fits in the budget, and a call that does not fit answers 000005 and loses nothing.
#[tokio::test]
async fn a_slow_store_gives_the_same_answers_within_the_budget() {
    let inner: Arc<dyn Store> = Arc::new(koogate_store::sqlite::SqliteStore::in_memory().unwrap());
    let slow = app(
        Arc::new(FaultyStore::new(
            Arc::clone(&inner),
            Fault::Latency(Duration::from_millis(150)),
        )),
        &[("KOOGATE_REQUEST_BUDGET_MS", "2000")],
    );
    let first = post(&slow, &new_instance("CSSLOW", "slow-business")).await;
    assert_eq!(first.code(), "000000", "{first:?}");
    assert_eq!(first.json["instanceId"], "slow-business");
    let again = post(&slow, &new_instance("CSSLOW", "slow-business-2")).await;
    assert_eq!(
        again.body, first.body,
        "the duplicate replays the stored answer"
    );

    // Four store calls of 150 ms do not fit in 400 ms.
    let too_slow = app(
        Arc::new(FaultyStore::new(
            Arc::clone(&inner),
            Fault::Latency(Duration::from_millis(150)),
        )),
        &[("KOOGATE_REQUEST_BUDGET_MS", "400")],
    );
    let a = post(&too_slow, &new_instance("CSSLOW2", "late-business")).await;
    assert_eq!(a.code(), "000005", "{a:?}");
    tokio::time::sleep(Duration::from_millis(450)).await;
    let healthy = app(Arc::clone(&inner), &[]);
    let after = post(&healthy, &new_instance("CSSLOW2", "retry-business")).await;
    assert_eq!(after.code(), "000000", "{after:?}");
    assert_eq!(
        after.json["instanceId"], "late-business",
        "the first delivery's id is kept"
    );
}

/// A process that died between acquire and complete: a duplicate during its lease answers
/// 000004, the first delivery after the lease takes over with the same instanceId.
#[tokio::test]
async fn a_crash_between_acquire_and_complete_heals_after_the_lease() {
    let store: Arc<dyn Store> = Arc::new(koogate_store::sqlite::SqliteStore::in_memory().unwrap());
    let key = keys::order(Partition::Production, "CSCRASH", "CSCRASH-000001");
    let lease_until = now_ms() + 300;
    store
        .acquire(&Acquire {
            key: &key,
            owner: "crashed-lambda",
            lease_until_ms: lease_until,
            validation: "",
            reference: "crashed-business",
            expires_at: None,
            now_ms: now_ms(),
        })
        .await
        .unwrap();
    let app = app(Arc::clone(&store), &[]);
    let during = post(&app, &new_instance("CSCRASH", "second")).await;
    assert_eq!(during.code(), "000004");
    assert_eq!(during.json["instanceId"], "crashed-business");
    tokio::time::sleep(Duration::from_millis(350)).await;
    let after = post(&app, &new_instance("CSCRASH", "third")).await;
    assert_eq!(after.code(), "000000", "{after:?}");
    assert_eq!(after.json["instanceId"], "crashed-business");
    let inst: Instance = store
        .get_instance(Partition::Production, "crashed-business")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(inst.state, InstanceState::Active);
}

/// A process that died after writing the instance record (still provisioning) but before the
/// lock was completed: the first delivery after the lease replaces the leftover record, keeps
/// its instanceId, and completes the lock, so the next delivery replays the answer.
#[tokio::test]
async fn a_crash_after_the_instance_write_heals_with_the_same_record() {
    let store: Arc<dyn Store> = Arc::new(koogate_store::sqlite::SqliteStore::in_memory().unwrap());
    let app = app(Arc::clone(&store), &[]);
    assert_eq!(
        post(&app, &new_instance("CSLEFT1", "left-template"))
            .await
            .code(),
        "000000"
    );
    let mut leftover = store
        .get_instance(Partition::Production, "left-template")
        .await
        .unwrap()
        .unwrap();
    leftover.instance_id = "left-over".into();
    leftover.order_id = "CSLEFT2".into();
    leftover.order_line_id = "CSLEFT2-000001".into();
    leftover.state = InstanceState::Provisioning;
    leftover.app_info = None;
    leftover.event_ids.clear();
    store.put_instance(&leftover, None, &[]).await.unwrap();
    let key = keys::order(Partition::Production, "CSLEFT2", "CSLEFT2-000001");
    store
        .acquire(&Acquire {
            key: &key,
            owner: "crashed-lambda",
            lease_until_ms: now_ms() + 300,
            validation: "",
            reference: "left-over",
            expires_at: None,
            now_ms: now_ms(),
        })
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(350)).await;

    let after = post(&app, &new_instance("CSLEFT2", "other")).await;
    assert_eq!(after.code(), "000000", "{after:?}");
    assert_eq!(after.json["instanceId"], "left-over");
    let inst = store
        .get_instance(Partition::Production, "left-over")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(inst.state, InstanceState::Active);
    assert_eq!(inst.version, 2, "the leftover record was replaced");
    assert!(inst.app_info.is_some());

    let again = post(&app, &new_instance("CSLEFT2", "yet-another")).await;
    assert_eq!(again.body, after.body, "the lock was completed: a replay");
}

/// DynamoDB requests per first-time and per duplicate newInstance, counted on the wire.
#[tokio::test]
async fn dynamodb_request_counts() {
    let moto = MotoServer::shared().expect("moto_server is required");
    let (store, counter) = moto.counted_store(Mode::Check).await;
    let app = app(Arc::new(store), &[]);
    let before = counter.snapshot();
    assert_eq!(
        post(&app, &new_instance("CSCOUNT", "count-1")).await.code(),
        "000000"
    );
    let first = counter.snapshot().since(&before);
    let before = counter.snapshot();
    assert_eq!(
        post(&app, &new_instance("CSCOUNT", "count-2")).await.code(),
        "000000"
    );
    let duplicate = counter.snapshot().since(&before);
    let before = counter.snapshot();
    let q = post(
        &app,
        r#"{"activity":"queryInstance","instanceId":"count-1","testFlag":"0"}"#,
    )
    .await;
    assert_eq!(q.code(), "000000");
    let query = counter.snapshot().since(&before);
    println!(
        "DynamoDB requests: first newInstance {} writes + {} reads; duplicate {} writes + {} reads; queryInstance {} writes + {} reads",
        first.writes(),
        first.reads(),
        duplicate.writes(),
        duplicate.reads(),
        query.writes(),
        query.reads()
    );
    // nonce, acquire, instance, complete, and the instance.created intent (the outbox's one
    // extra write per state change).
    assert!(
        first.writes() <= 5 && first.reads() <= 1,
        "first delivery: {first:?}"
    );
    assert!(
        duplicate.writes() + duplicate.reads() <= 2,
        "duplicate: {duplicate:?}"
    );
    assert_eq!(
        query.writes(),
        1,
        "queryInstance writes only its nonce: {query:?}"
    );
    // The instance came from a thin body with no Query Order enrichment (no IAM AK/SK), so its
    // charging mode is unknown and its usage records are read for usageInfo: one Query.
    assert_eq!(query.get("BatchGetItem"), 1, "one batch read: {query:?}");
    assert_eq!(
        query.get("Query"),
        1,
        "one usage Query per instance that may be pay-per-use: {query:?}"
    );
}
