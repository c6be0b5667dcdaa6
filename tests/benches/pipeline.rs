//! CPU time of one whole callback through the in-process pipeline, per activity (design §8):
//! the Lambda adapter (event → inbound), authentication, the replay guard, parsing, idempotency,
//! the handler, rendering, `Body-Sign`, and the proxy response.
//!
//! The store is an in-memory map (below) with the SQLite backend's semantics, so the figures are
//! CPU, not disk or network. Its maps are sized for a whole run ([`MemoryStore::sized`]) and the
//! setup empties its nonce and event tables now and then ([`MemoryStore::trim`]), so that the
//! tables' growth is not charged to the timed calls. Every iteration sends a freshly signed request (unique nonce); the
//! signing, which is the marketplace's cost, and any records an iteration needs are prepared in
//! criterion's untimed setup (`iter_batched`).
//!
//! The measurement is the benchmark thread's CPU time (`CLOCK_THREAD_CPUTIME_ID`), not wall time:
//! everything runs on that thread (a current-thread runtime, a store without threads), and other
//! work on a shared machine does not inflate the figure.
//!
//! `cargo bench -p koogate-tests --bench pipeline` (add `-- --quick` for a short run).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
// The allocator of the Lambda functions whose pipeline this measures.
koogate_runtime::use_mimalloc!();

use criterion::measurement::{Measurement, ValueFormatter};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use koogate_runtime::App;
use koogate_store::idempotency::IdemRecord;
use koogate_store::{
    keys, Acquire, AcquireOutcome, DirectoryItem, DirectoryWrite, EventDraft, EventQuery,
    EventRecord, EventSettlement, IdemStatus, Instance, Partition, Record, Store, StoreError,
    VersionedWrite,
};
use koogate_tests::{event, invoke, signed_query, Answered, KEY};
use lambda_http::aws_lambda_events::apigw::ApiGatewayV2httpRequest;
use tokio::runtime::Runtime;
use tracing_subscriber::util::SubscriberInitExt;

// ---------------------------------------------------------------------------------------------
// CPU time of the benchmark thread as criterion's measurement
// ---------------------------------------------------------------------------------------------

/// CPU time consumed by the calling thread so far, in nanoseconds.
fn thread_cpu_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_THREAD_CPUTIME_ID exists on Linux.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID) failed");
    u64::try_from(ts.tv_sec).unwrap_or(0) * 1_000_000_000 + u64::try_from(ts.tv_nsec).unwrap_or(0)
}

/// Criterion measurement: CPU time of the benchmark thread (user + system), in nanoseconds.
struct ThreadCpuTime;

impl Measurement for ThreadCpuTime {
    type Intermediate = u64;
    type Value = u64;

    fn start(&self) -> u64 {
        thread_cpu_ns()
    }
    fn end(&self, started: u64) -> u64 {
        thread_cpu_ns().saturating_sub(started)
    }
    fn add(&self, a: &u64, b: &u64) -> u64 {
        a + b
    }
    fn zero(&self) -> u64 {
        0
    }
    fn to_f64(&self, value: &u64) -> f64 {
        *value as f64
    }
    fn formatter(&self) -> &dyn ValueFormatter {
        &CpuFormatter
    }
}

/// Formats nanoseconds of CPU time like criterion's wall-time formatter.
struct CpuFormatter;

impl ValueFormatter for CpuFormatter {
    fn scale_values(&self, typical_ns: f64, values: &mut [f64]) -> &'static str {
        let (factor, unit) = if typical_ns < 1e3 {
            (1.0, "ns")
        } else if typical_ns < 1e6 {
            (1e-3, "µs")
        } else {
            (1e-6, "ms")
        };
        for v in values {
            *v *= factor;
        }
        unit
    }

    fn scale_throughputs(
        &self,
        _typical_ns: f64,
        throughput: &Throughput,
        values: &mut [f64],
    ) -> &'static str {
        let per = match *throughput {
            Throughput::Bytes(n) | Throughput::BytesDecimal(n) | Throughput::Elements(n) => n,
        } as f64;
        for v in values {
            *v = per * 1e9 / *v;
        }
        "/s (CPU)"
    }

    fn scale_for_machines(&self, _values: &mut [f64]) -> &'static str {
        "ns"
    }
}

// ---------------------------------------------------------------------------------------------
// An in-memory store with the SQLite backend's semantics (shared/store/src/sqlite.rs).
// ---------------------------------------------------------------------------------------------

struct IdemRow {
    owner: String,
    record: IdemRecord,
}

struct Tables {
    /// nonce key → expires_at (epoch s)
    nonces: HashMap<String, i64>,
    idempotency: HashMap<String, IdemRow>,
    /// instance key → (version, JSON document), as both real backends store it
    instances: HashMap<String, (u64, String)>,
    /// versioned documents (license codes, order notifications)
    records: HashMap<String, Record>,
    /// (tenant partition, sk) → JSON document: the joint-operation directory
    directory: std::collections::BTreeMap<(String, String), String>,
    /// the event outbox, as both real backends keep it with the change
    events: Vec<EventRecord>,
}

/// Rows of a trimmed table kept before [`MemoryStore::trim`] empties it.
const TRIM_ABOVE: usize = 4096;

/// A `HashMap` behind a `std::sync::Mutex`. Instances are kept as JSON documents, as the SQLite
/// and DynamoDB backends keep them, so (de)serialising the record is part of the measured cost.
struct MemoryStore {
    tables: Mutex<Tables>,
}

impl MemoryStore {
    /// Forgets the nonces and events of earlier iterations once there are many (no case reads
    /// them again). Called in the untimed setup: otherwise the tables grow with every iteration,
    /// and the timed calls pay for their growth — rehashing, and the kernel zeroing the fresh
    /// (huge) pages the allocator maps for them, about a fifth of a refreshInstance's samples —
    /// which neither real backend's process does per callback.
    fn trim(&self) {
        let mut t = self.tables().unwrap();
        if t.nonces.len() > TRIM_ABOVE {
            t.nonces.clear();
        }
        if t.events.len() > TRIM_ABOVE {
            t.events.clear();
        }
    }

    /// A store whose maps hold a whole run's records without growing: a map that doubles
    /// rehashes every entry inside one timed call (a million entries by the later cases), which
    /// neither real backend does (a B-tree insert touches a few pages).
    fn sized() -> MemoryStore {
        let rows = 1 << 20;
        MemoryStore {
            tables: Mutex::new(Tables {
                nonces: HashMap::with_capacity(TRIM_ABOVE * 2),
                idempotency: HashMap::with_capacity(rows),
                instances: HashMap::with_capacity(rows),
                records: HashMap::with_capacity(rows),
                directory: Default::default(),
                events: Vec::with_capacity(TRIM_ABOVE * 2),
            }),
        }
    }

    fn tables(&self) -> Result<std::sync::MutexGuard<'_, Tables>, StoreError> {
        self.tables
            .lock()
            .map_err(|_| StoreError::Unavailable("memory store lock poisoned".into()))
    }
}

fn decode(key: &str, doc: &str) -> Result<Instance, StoreError> {
    serde_json::from_str(doc).map_err(|e| StoreError::Corrupt {
        key: key.to_string(),
        reason: e.to_string(),
    })
}

#[async_trait]
impl Store for MemoryStore {
    async fn remember_nonce(
        &self,
        key: &str,
        now_s: i64,
        expires_at: i64,
    ) -> Result<bool, StoreError> {
        let mut t = self.tables()?;
        match t.nonces.get_mut(key) {
            Some(e) if *e >= now_s => Ok(false),
            Some(e) => {
                *e = expires_at;
                Ok(true)
            }
            None => {
                t.nonces.insert(key.to_string(), expires_at);
                Ok(true)
            }
        }
    }

    async fn acquire(&self, req: &Acquire<'_>) -> Result<AcquireOutcome, StoreError> {
        let mut t = self.tables()?;
        let reference = match t.idempotency.get(req.key) {
            Some(row) if !row.record.can_acquire(req) => return Ok(row.record.refusal(req)),
            // The first delivery's reference is kept, even across an expired record (D7).
            Some(row) => row.record.reference.clone(),
            None => req.reference.to_string(),
        };
        t.idempotency.insert(
            req.key.to_string(),
            IdemRow {
                owner: req.owner.to_string(),
                record: IdemRecord {
                    status: IdemStatus::InProgress,
                    lease_until_ms: req.lease_until_ms,
                    validation: req.validation.to_string(),
                    reference: reference.clone(),
                    response: None,
                    code: None,
                    expires_at: req.expires_at,
                },
            },
        );
        Ok(AcquireOutcome::Acquired { reference })
    }

    async fn complete(
        &self,
        key: &str,
        owner: &str,
        response: &str,
        code: &str,
        expires_at: Option<i64>,
    ) -> Result<bool, StoreError> {
        let mut t = self.tables()?;
        match t.idempotency.get_mut(key) {
            Some(row) if row.owner == owner && row.record.status == IdemStatus::InProgress => {
                row.record.status = IdemStatus::Completed;
                row.record.response = Some(response.to_string());
                row.record.code = Some(code.to_string());
                row.record.expires_at = expires_at;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn abandon(&self, key: &str, owner: &str) -> Result<bool, StoreError> {
        let mut t = self.tables()?;
        match t.idempotency.get_mut(key) {
            Some(row) if row.owner == owner && row.record.status == IdemStatus::InProgress => {
                row.record.lease_until_ms = 0;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn get_instance(
        &self,
        partition: Partition,
        instance_id: &str,
    ) -> Result<Option<Instance>, StoreError> {
        let key = keys::instance(partition, instance_id);
        let t = self.tables()?;
        t.instances
            .get(&key)
            .map(|(_, doc)| decode(&key, doc))
            .transpose()
    }

    async fn get_instances(
        &self,
        partition: Partition,
        ids: &[String],
    ) -> Result<Vec<Instance>, StoreError> {
        let t = self.tables()?;
        let mut found = Vec::new();
        for id in ids {
            let key = keys::instance(partition, id);
            if let Some((_, doc)) = t.instances.get(&key) {
                found.push(decode(&key, doc)?);
            }
        }
        Ok(found)
    }

    async fn put_instance(
        &self,
        instance: &Instance,
        expected_version: Option<u64>,
        events: &[EventDraft],
    ) -> Result<VersionedWrite, StoreError> {
        let key = keys::instance(instance.partition(), &instance.instance_id);
        let doc = serde_json::to_string(instance).map_err(|e| StoreError::Corrupt {
            key: key.clone(),
            reason: e.to_string(),
        })?;
        let mut t = self.tables()?;
        let written = match (expected_version, t.instances.get_mut(&key)) {
            (None, None) => {
                t.instances.insert(key, (instance.version, doc));
                true
            }
            (Some(expected), Some(row)) if row.0 == expected => {
                *row = (instance.version, doc);
                true
            }
            _ => false,
        };
        if written {
            t.events.extend(events.iter().map(EventRecord::pending));
        }
        Ok(if written {
            VersionedWrite::Written
        } else {
            VersionedWrite::Conflict
        })
    }

    async fn get_record(&self, key: &str) -> Result<Option<Record>, StoreError> {
        Ok(self.tables()?.records.get(key).cloned())
    }

    async fn put_record(
        &self,
        key: &str,
        record: &Record,
        expected_version: Option<u64>,
        events: &[EventDraft],
    ) -> Result<VersionedWrite, StoreError> {
        let mut t = self.tables()?;
        let written = match (expected_version, t.records.get_mut(key)) {
            (None, None) => {
                t.records.insert(key.to_string(), record.clone());
                true
            }
            (Some(expected), Some(row)) if row.version == expected => {
                *row = record.clone();
                true
            }
            _ => false,
        };
        if written {
            t.events.extend(events.iter().map(EventRecord::pending));
        }
        Ok(if written {
            VersionedWrite::Written
        } else {
            VersionedWrite::Conflict
        })
    }
    async fn write_directory(
        &self,
        partition: Partition,
        tenant_id: &str,
        writes: &[DirectoryWrite],
        events: &[EventDraft],
    ) -> Result<(), StoreError> {
        let pk = keys::tenant(partition, tenant_id);
        let mut t = self.tables()?;
        t.events.extend(events.iter().map(EventRecord::pending));
        for w in writes {
            match w {
                DirectoryWrite::Put(item) => {
                    t.directory
                        .insert((pk.clone(), item.sk.clone()), item.doc.clone());
                }
                DirectoryWrite::Delete { sk } => {
                    t.directory.remove(&(pk.clone(), sk.clone()));
                }
            }
        }
        Ok(())
    }

    async fn get_directory_item(
        &self,
        partition: Partition,
        tenant_id: &str,
        sk: &str,
    ) -> Result<Option<DirectoryItem>, StoreError> {
        let pk = keys::tenant(partition, tenant_id);
        let t = self.tables()?;
        Ok(t.directory
            .get(&(pk, sk.to_string()))
            .map(|doc| DirectoryItem {
                sk: sk.to_string(),
                doc: doc.clone(),
            }))
    }

    async fn list_directory(
        &self,
        partition: Partition,
        tenant_id: &str,
        sk_prefix: &str,
    ) -> Result<Vec<DirectoryItem>, StoreError> {
        let pk = keys::tenant(partition, tenant_id);
        let t = self.tables()?;
        Ok(t.directory
            .range((pk.clone(), sk_prefix.to_string())..)
            .take_while(|((p, sk), _)| *p == pk && sk.starts_with(sk_prefix))
            .map(|((_, sk), doc)| DirectoryItem {
                sk: sk.clone(),
                doc: doc.clone(),
            })
            .collect())
    }

    // Usage metering is not on the callback path measured here: refuse rather than pretend.
    async fn record_usage(
        &self,
        _: &koogate_store::UsageData,
    ) -> Result<koogate_store::UsageInsert, StoreError> {
        Err(unsupported())
    }
    async fn claim_usage(
        &self,
        _: &koogate_store::UsageClaim<'_>,
    ) -> Result<Vec<koogate_store::UsageRecord>, StoreError> {
        Err(unsupported())
    }
    async fn settle_usage(
        &self,
        _: &str,
        _: &[koogate_store::UsageKey],
        _: &koogate_store::UsageSettlement,
    ) -> Result<usize, StoreError> {
        Err(unsupported())
    }
    /// No benchmark records usage, so every instance has none (queryInstance of a production
    /// instance asks, as it does on the real stores).
    async fn instance_usage(&self, _: &str) -> Result<Vec<koogate_store::UsageRecord>, StoreError> {
        Ok(Vec::new())
    }

    async fn record_events(&self, events: &[EventDraft]) -> Result<(), StoreError> {
        self.tables()?
            .events
            .extend(events.iter().map(EventRecord::pending));
        Ok(())
    }
    async fn due_events(&self, _: i64, _: usize) -> Result<Vec<EventRecord>, StoreError> {
        Ok(Vec::new())
    }
    async fn settle_event(&self, _: &EventRecord, _: &EventSettlement) -> Result<(), StoreError> {
        Ok(())
    }
    async fn get_event(&self, _: &str) -> Result<Option<EventRecord>, StoreError> {
        Ok(None)
    }
    async fn list_events(&self, _: &EventQuery) -> Result<Vec<EventRecord>, StoreError> {
        Ok(self.tables()?.events.clone())
    }

    async fn list_ids(
        &self,
        _: koogate_store::Listing,
        _: Partition,
        _: Option<&str>,
        _: usize,
    ) -> Result<Vec<String>, StoreError> {
        Ok(Vec::new())
    }

    async fn requeue_usage(
        &self,
        _: &str,
        _: &koogate_store::UsageData,
    ) -> Result<bool, StoreError> {
        Err(unsupported())
    }
    async fn usage_backlog(
        &self,
        _: &str,
        _: i64,
    ) -> Result<koogate_store::UsageBacklog, StoreError> {
        Ok(koogate_store::UsageBacklog::default())
    }
}

fn unsupported() -> StoreError {
    StoreError::Unavailable("the benchmark's memory store has no usage records".into())
}

// ---------------------------------------------------------------------------------------------
// Requests
// ---------------------------------------------------------------------------------------------

fn uuid() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// A freshly signed event for `body` (new nonce, current timestamp).
fn signed(body: &str) -> ApiGatewayV2httpRequest {
    event("POST", &signed_query(KEY, body.as_bytes()), body.as_bytes())
}

fn new_instance_body(business_id: &str, order_id: &str, test_flag: &str) -> String {
    format!(
        r#"{{"activity":"newInstance","businessId":"{business_id}","orderId":"{order_id}","orderLineId":"{order_id}-000001","testFlag":"{test_flag}"}}"#
    )
}

/// Creates a real-traffic instance through the pipeline and returns its instanceId.
fn create_instance(rt: &Runtime, app: &Arc<App>) -> String {
    let id = uuid();
    let order = format!("CS{}", uuid::Uuid::new_v4().simple());
    let a = rt.block_on(invoke(app, signed(&new_instance_body(&id, &order, "0"))));
    assert_eq!(a.code(), "000000", "setup newInstance failed: {}", a.body);
    id
}

/// Makes one iteration's signed event (and any record it needs), outside the timed part.
type Prepare = Box<dyn Fn(&Runtime, &Arc<App>) -> ApiGatewayV2httpRequest>;

/// One benchmarked activity: how to prepare an iteration (untimed) and the answer it must get.
struct Case {
    name: &'static str,
    expect: &'static str,
    prepare: Prepare,
}

fn cases(rt: &Runtime, app: &Arc<App>) -> Vec<Case> {
    // Records that the read-only and repeat cases work on, made once.
    let existing = create_instance(rt, app);
    let dup_order = format!("CS{}", uuid::Uuid::new_v4().simple());
    let first = rt.block_on(invoke(
        app,
        signed(&new_instance_body(&uuid(), &dup_order, "0")),
    ));
    assert_eq!(first.code(), "000000", "{}", first.body);
    let released = create_instance(rt, app);
    let rel =
        format!(r#"{{"activity":"releaseInstance","instanceId":"{released}","testFlag":"0"}}"#);
    assert_eq!(rt.block_on(invoke(app, signed(&rel))).code(), "000000");

    let q_existing = existing.clone();
    let c_existing = existing.clone();
    vec![
        Case {
            name: "newInstance/first_time",
            expect: "000000",
            prepare: Box::new(|_, _| {
                let order = format!("CS{}", uuid::Uuid::new_v4().simple());
                signed(&new_instance_body(&uuid(), &order, "0"))
            }),
        },
        Case {
            name: "newInstance/duplicate",
            expect: "000000",
            prepare: Box::new(move |_, _| signed(&new_instance_body(&uuid(), &dup_order, "0"))),
        },
        Case {
            name: "newInstance/debug_first_time",
            expect: "000000",
            prepare: Box::new(|_, _| {
                let order = format!("CS{}", uuid::Uuid::new_v4().simple());
                signed(&new_instance_body(&uuid(), &order, "1"))
            }),
        },
        Case {
            name: "queryInstance",
            expect: "000000",
            prepare: Box::new(move |_, _| {
                signed(&format!(
                    r#"{{"activity":"queryInstance","instanceId":"{q_existing}","testFlag":"0"}}"#
                ))
            }),
        },
        Case {
            name: "refreshInstance/first_time",
            expect: "000000",
            prepare: Box::new(|rt, app| {
                let id = create_instance(rt, app);
                let order = format!("CS{}", uuid::Uuid::new_v4().simple());
                signed(&format!(
                    r#"{{"activity":"refreshInstance","expireTime":"20301124023618256","instanceId":"{id}","orderId":"{order}","orderLineId":"{order}-000001","productId":"OFFI461867333479178240","scene":"RENEWAL","testFlag":"0"}}"#
                ))
            }),
        },
        Case {
            name: "updateInstanceStatus/freeze",
            expect: "000000",
            prepare: Box::new(|rt, app| {
                let id = create_instance(rt, app);
                signed(&format!(
                    r#"{{"activity":"updateInstanceStatus","instanceId":"{id}","status":"FREEZE","testFlag":"0"}}"#
                ))
            }),
        },
        Case {
            name: "releaseInstance/first_time",
            expect: "000000",
            prepare: Box::new(|rt, app| {
                let id = create_instance(rt, app);
                signed(&format!(
                    r#"{{"activity":"releaseInstance","instanceId":"{id}","testFlag":"0"}}"#
                ))
            }),
        },
        Case {
            name: "releaseInstance/repeat",
            expect: "000000",
            prepare: Box::new(move |_, _| signed(&rel)),
        },
        Case {
            name: "upgradeInstance/first_time",
            expect: "000000",
            prepare: Box::new(|rt, app| {
                let id = create_instance(rt, app);
                let order = format!("CS{}", uuid::Uuid::new_v4().simple());
                signed(&format!(
                    r#"{{"activity":"upgradeInstance","instanceId":"{id}","orderId":"{order}","orderLineId":"{order}-000001","testFlag":"0"}}"#
                ))
            }),
        },
        Case {
            name: "changeInstanceCheck",
            expect: "000000",
            prepare: Box::new(move |_, _| {
                signed(&format!(
                    r#"{{"activity":"changeInstanceCheck","instanceId":"{c_existing}","productInfo":{{"productId":"OFFI461867333479178240","skuCode":"a63ee5c9-4f86-11ed-9f95-fa163e8cb3b2","linearValue":50,"productName":"Basic edition"}},"testFlag":"0"}}"#
                ))
            }),
        },
        Case {
            // Real traffic: a new application; the default (synchronous) issuer answers at once.
            name: "getLicenseAsync/first_time",
            expect: "000000",
            prepare: Box::new(move |_, _| {
                let event_id = uuid::Uuid::new_v4().simple().to_string();
                signed(&format!(
                    r#"{{"activity":"getLicenseAsync","deviceFingerprint":"86034e260e1","effectiveTime":"2023-10-27 10:30:15 z","eventId":"{event_id}","expireTime":"2030-10-27 10:30:15 z","instanceId":"{existing}","testFlag":"0"}}"#
                ))
            }),
        },
        Case {
            name: "auth_failure/bad_signature",
            expect: "000001",
            prepare: Box::new(|_, _| {
                let body = new_instance_body(&uuid(), "CS2211181819B4LVS", "0");
                let query = signed_query("not-the-key", body.as_bytes());
                event("POST", &query, body.as_bytes())
            }),
        },
    ]
}

fn check(a: &Answered, case: &Case) {
    assert_eq!(a.status, 200, "{}: {}", case.name, a.body);
    assert_eq!(a.code(), case.expect, "{}: {}", case.name, a.body);
    assert!(a.signed_with(KEY), "{}: bad Body-Sign", case.name);
}

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn bench_cases(c: &mut Criterion<ThreadCpuTime>, group_name: &str, only: Option<&[&str]>) {
    let rt = runtime();
    let store = Arc::new(MemoryStore::sized());
    let app = koogate_tests::app(Arc::clone(&store) as Arc<dyn Store>, &[]);
    let cases = cases(&rt, &app);
    let mut group = c.benchmark_group(group_name);
    for case in cases
        .iter()
        .filter(|c| only.is_none_or(|names| names.contains(&c.name)))
    {
        // Every case is checked once before it is timed: a benchmark of a wrong answer is noise.
        let answer = rt.block_on(invoke(&app, (case.prepare)(&rt, &app)));
        check(&answer, case);
        group.bench_function(case.name, |b| {
            b.iter_batched(
                || {
                    store.trim();
                    (case.prepare)(&rt, &app)
                },
                |ev| rt.block_on(invoke(&app, ev)),
                BatchSize::SmallInput,
            )
        });
    }
    group.finish();
}

/// Per activity, with no log subscriber (the log line's macro is a no-op).
fn pipeline(c: &mut Criterion<ThreadCpuTime>) {
    bench_cases(c, "pipeline", None);
}

/// The same with the production JSON log line formatted (written to a sink), to show its cost.
fn pipeline_with_log_line(c: &mut Criterion<ThreadCpuTime>) {
    let subscriber = tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_current_span(false)
        .with_span_list(false)
        .with_max_level(tracing::Level::INFO)
        .with_writer(std::io::sink)
        .finish();
    let _guard = subscriber.set_default();
    bench_cases(
        c,
        "pipeline_with_log_line",
        Some(&["newInstance/first_time", "queryInstance"]),
    );
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .with_measurement(ThreadCpuTime)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = pipeline, pipeline_with_log_line
}
criterion_main!(benches);
