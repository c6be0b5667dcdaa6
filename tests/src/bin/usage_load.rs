//! `koogate-usage-load`: push throughput of the usage push for N pending records (default
//! 100,000) against the local fake marketplace, which verifies every call (gateway signature,
//! header signature, sorted body) as in the tests.
//!
//! `cargo run -p koogate-tests --bin koogate-usage-load -- [--records N] [--store sqlite|moto]`
//!
//! SQLite: an on-disk database in a temporary folder (WAL, as `koogate serve` uses). moto: the
//! DynamoDB backend on a local moto server; moto's speed says nothing about DynamoDB's, so the
//! figure to read there is the requests per record.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use koogate_protocol::usage_push;
use koogate_runtime::marketplace::{Marketplace, MarketplaceSettings};
use koogate_runtime::secrets::IamCredentials;
use koogate_runtime::usage::{self, UsageInput};
use koogate_store::Store;
use koogate_tests::fake_marketplace::{FakeMarketplace, AK, SK};
use koogate_usage_push::{PushOptions, Pusher};

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let n: usize = arg("--records").map_or(100_000, |v| v.parse().unwrap());
    let backend = arg("--store").unwrap_or_else(|| "sqlite".into());
    let moto;
    let mut dynamo_requests = None;
    let store: Arc<dyn Store> = match backend.as_str() {
        "sqlite" => {
            let dir =
                std::env::temp_dir().join(format!("koogate-usage-load-{}", std::process::id()));
            Arc::new(koogate_store::sqlite::SqliteStore::open(&dir.join("load.db")).unwrap())
        }
        "moto" => {
            moto = koogate_tests::MotoServer::start();
            let (s, counter) = moto
                .counted_store(koogate_tests::geminidb::Mode::Check)
                .await;
            dynamo_requests = Some(counter);
            Arc::new(s)
        }
        other => panic!("--store {other}: sqlite or moto"),
    };
    let fake = FakeMarketplace::start(koogate_tests::KEY).await;
    let settings = MarketplaceSettings::from_lookup(|k| {
        (k == "KOOGATE_MARKETPLACE_URL").then(|| fake.url.clone())
    })
    .unwrap();
    let m = Marketplace::new(
        settings,
        Some(IamCredentials {
            ak: AK.into(),
            sk: SK.into(),
        }),
    )
    .unwrap();

    // 100 instances × hourly records over the past days (all due, none older than 21 days).
    let now = koogate_runtime::pipeline::now_ms();
    let hour = 3_600_000i64;
    let top = now - now.rem_euclid(hour);
    for i in 0..100 {
        koogate_tests::put_usage_instance(&*store, &format!("load-instance-{i:03}")).await;
    }
    let started = Instant::now();
    for i in 0..n {
        let h = i64::try_from(i / 100).unwrap() % 480 + 1;
        let minute = i64::try_from(i / 48_000).unwrap() * 60_000;
        let input = UsageInput {
            instance_id: format!("load-instance-{:03}", i % 100),
            begin_time: usage_push::format_time(top - (h + 1) * hour + minute),
            end_time: usage_push::format_time(top - h * hour + minute),
            usage_value: format!("{}.{:04}", i % 1000 + 1, i % 10_000),
            product_id: None,
            relate_pkg_instance: None,
        };
        usage::record_at(&*store, &input, now).await.unwrap();
    }
    let recorded_in = started.elapsed();
    let before = dynamo_requests.as_ref().map(|d| d.snapshot());

    let pusher = Pusher {
        store: Arc::clone(&store),
        marketplace: m,
        basic_key: Some(koogate_tests::KEY.into()),
        options: PushOptions {
            lease: Duration::from_secs(600),
            ..PushOptions::default()
        },
        emit_metrics: false,
    };
    let started = Instant::now();
    let report = pusher.run().await;
    let pushed_in = started.elapsed();
    assert!(report.stopped_by.is_none(), "{report:?}");
    assert!(fake.rejections().is_empty(), "{:?}", fake.rejections());
    assert_eq!(fake.billed().len(), n, "every record billed once");
    assert_eq!(report.pushed, u64::try_from(n).unwrap());

    println!("backend: {backend}; records: {n}");
    println!(
        "record: {:.1} s, {:.0} records/s",
        recorded_in.as_secs_f64(),
        n as f64 / recorded_in.as_secs_f64()
    );
    println!(
        "push:   {:.1} s, {:.0} records/s, {} calls of <= 1000 records",
        pushed_in.as_secs_f64(),
        n as f64 / pushed_in.as_secs_f64(),
        report.calls
    );
    if let (Some(d), Some(before)) = (dynamo_requests, before) {
        let used = d.snapshot().since(&before);
        let total: u64 = used.0.values().sum();
        println!(
            "dynamodb requests during the push: {total} ({:.2} per record): {:?}",
            total as f64 / n as f64,
            used.0
        );
    }
}
