//! The conformance suite: the semantics every [`Store`] backend must have, written once and run
//! against each backend (SQLite in this crate's tests, DynamoDB on a local moto server in the
//! workspace tests).
//!
//! Use [`conformance_tests!`](crate::conformance_tests) to expand one `#[tokio::test]` per check.
//! Each check uses keys of its own, so the checks may share one database or table.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::idempotency::{Acquire, AcquireOutcome};
use crate::records::{AppInfo, AppliedOrder, Instance, InstanceState};
use crate::{Partition, Store, VersionedWrite};

/// A key part no other check (or earlier run against the same table) uses.
fn unique(label: &str) -> String {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("{label}-{nanos}-{}", SEQ.fetch_add(1, Ordering::Relaxed))
}

const NOW_MS: i64 = 1_700_000_000_000;

fn acquire<'a>(key: &'a str, owner: &'a str, reference: &'a str, now_ms: i64) -> Acquire<'a> {
    Acquire {
        key,
        owner,
        lease_until_ms: now_ms + 5_000,
        validation: "v1",
        reference,
        expires_at: None,
        now_ms,
    }
}

/// A fresh nonce is recorded; the same nonce again is refused until it expires, and readers do
/// not rely on TTL to have removed the expired entry.
pub async fn nonce_replay_guard(store: &dyn Store) {
    let k = unique("nonce");
    let now = NOW_MS / 1000;
    assert!(
        store.remember_nonce(&k, now, now + 120).await.unwrap(),
        "first sighting is fresh"
    );
    assert!(
        !store.remember_nonce(&k, now + 1, now + 121).await.unwrap(),
        "replay inside retention is refused"
    );
    assert!(
        !store
            .remember_nonce(&k, now + 120, now + 240)
            .await
            .unwrap(),
        "still refused at the expiry second"
    );
    assert!(
        store
            .remember_nonce(&k, now + 121, now + 241)
            .await
            .unwrap(),
        "expired entry counts as absent"
    );
    assert!(
        !store
            .remember_nonce(&k, now + 122, now + 242)
            .await
            .unwrap(),
        "and is guarded again"
    );
}

/// First acquire wins and keeps its reference; a duplicate during the lease is in flight; only the
/// owner completes; later duplicates replay the stored answer.
pub async fn acquire_complete_replay(store: &dyn Store) {
    let k = unique("idem");
    let first = store
        .acquire(&acquire(&k, "owner-a", "ref-a", NOW_MS))
        .await
        .unwrap();
    assert_eq!(
        first,
        AcquireOutcome::Acquired {
            reference: "ref-a".into()
        }
    );

    let dup = store
        .acquire(&acquire(&k, "owner-b", "ref-b", NOW_MS + 1))
        .await
        .unwrap();
    assert_eq!(
        dup,
        AcquireOutcome::InFlight {
            reference: "ref-a".into()
        },
        "live lease: in flight"
    );

    assert!(
        !store
            .complete(&k, "owner-b", "{\"x\":1}", None)
            .await
            .unwrap(),
        "a non-owner never completes"
    );
    assert!(
        store
            .complete(&k, "owner-a", "{\"x\":2}", None)
            .await
            .unwrap(),
        "the owner completes"
    );
    assert!(
        !store
            .complete(&k, "owner-a", "{\"x\":3}", None)
            .await
            .unwrap(),
        "completing twice is refused"
    );

    let replay = store
        .acquire(&acquire(&k, "owner-c", "ref-c", NOW_MS + 60_000))
        .await
        .unwrap();
    assert_eq!(
        replay,
        AcquireOutcome::Completed {
            reference: "ref-a".into(),
            response: "{\"x\":2}".into()
        },
        "completed records replay forever, even after the lease"
    );
}

/// The same key with different fixed fields is a mismatch, whatever the record's state.
pub async fn validation_mismatch(store: &dyn Store) {
    let k = unique("mismatch");
    store
        .acquire(&acquire(&k, "o1", "r1", NOW_MS))
        .await
        .unwrap();
    let mut other = acquire(&k, "o2", "r2", NOW_MS + 10_000);
    other.validation = "v2";
    assert_eq!(
        store.acquire(&other).await.unwrap(),
        AcquireOutcome::Mismatch,
        "in flight, other fields"
    );
    store.complete(&k, "o1", "{}", None).await.unwrap();
    assert_eq!(
        store.acquire(&other).await.unwrap(),
        AcquireOutcome::Mismatch,
        "completed, other fields"
    );
}

/// A crash between acquire and complete heals when the lease runs out: the next caller takes the
/// lock over with the first reference, and the crashed owner can no longer complete.
pub async fn lease_takeover(store: &dyn Store) {
    let k = unique("lease");
    store
        .acquire(&acquire(&k, "crashed", "ref-1", NOW_MS))
        .await
        .unwrap();
    let later = NOW_MS + 5_001;
    let next = store
        .acquire(&acquire(&k, "retry", "ref-2", later))
        .await
        .unwrap();
    assert_eq!(
        next,
        AcquireOutcome::Acquired {
            reference: "ref-1".into()
        },
        "takeover keeps the reference"
    );
    assert!(
        !store.complete(&k, "crashed", "{}", None).await.unwrap(),
        "the old owner lost the lock"
    );
    assert!(
        !store.abandon(&k, "crashed").await.unwrap(),
        "nor may it abandon it"
    );
    assert!(store
        .complete(&k, "retry", "{\"ok\":1}", None)
        .await
        .unwrap());
}

/// Abandoning after a transient failure frees the lock at once and keeps the reference.
pub async fn abandon_keeps_reference(store: &dyn Store) {
    let k = unique("abandon");
    store
        .acquire(&acquire(&k, "o1", "ref-1", NOW_MS))
        .await
        .unwrap();
    assert!(store.abandon(&k, "o1").await.unwrap());
    let again = store
        .acquire(&acquire(&k, "o2", "ref-2", NOW_MS + 1))
        .await
        .unwrap();
    assert_eq!(
        again,
        AcquireOutcome::Acquired {
            reference: "ref-1".into()
        }
    );
}

/// An expiring record counts as absent once expired, even completed, and even if TTL has not
/// deleted it (moto never does).
pub async fn expired_record_is_absent(store: &dyn Store) {
    let k = unique("expiring");
    let mut a = acquire(&k, "o1", "ref-1", NOW_MS);
    a.expires_at = Some(NOW_MS / 1000 + 60);
    store.acquire(&a).await.unwrap();
    store
        .complete(&k, "o1", "{\"first\":1}", Some(NOW_MS / 1000 + 60))
        .await
        .unwrap();
    let mut b = acquire(&k, "o2", "ref-2", NOW_MS + 61_000);
    b.validation = "other";
    b.expires_at = Some(NOW_MS / 1000 + 200);
    assert!(matches!(
        store.acquire(&b).await.unwrap(),
        AcquireOutcome::Acquired { .. }
    ));
}

/// Sixteen concurrent callers: exactly one owns the lock, all see the same reference.
pub async fn concurrent_acquire_has_one_winner(store: Arc<dyn Store>) {
    let k = unique("race");
    let mut tasks = Vec::new();
    for i in 0..16 {
        let store = Arc::clone(&store);
        let k = k.clone();
        tasks.push(tokio::spawn(async move {
            let owner = format!("owner-{i}");
            let reference = format!("ref-{i}");
            store
                .acquire(&acquire(&k, &owner, &reference, NOW_MS))
                .await
                .unwrap()
        }));
    }
    let mut winners = 0;
    let mut refs = std::collections::BTreeSet::new();
    for t in tasks {
        match t.await.unwrap() {
            AcquireOutcome::Acquired { reference } => {
                winners += 1;
                refs.insert(reference);
            }
            AcquireOutcome::InFlight { reference } => {
                refs.insert(reference);
            }
            other => panic!("unexpected outcome {other:?}"),
        }
    }
    assert_eq!(winners, 1, "exactly one caller owns the lock");
    assert_eq!(
        refs.len(),
        1,
        "everyone sees the winner's reference: {refs:?}"
    );
}

fn sample_instance(id: &str, debug: bool) -> Instance {
    Instance {
        instance_id: id.to_string(),
        debug,
        state: InstanceState::Active,
        order_id: "CS1".into(),
        order_line_id: "CS1-000001".into(),
        product_id: Some("OFFI1".into()),
        sku_code: None,
        charging_mode: None,
        expire_time: None,
        expire_time_ms: None,
        app_info: Some(AppInfo {
            front_end_url: "https://app.example.com/x".into(),
            admin_url: None,
            user_name: Some("admin".into()),
            password: Some("secret".into()),
            memo: Some("中文".into()),
        }),
        failure: None,
        license: None,
        orders: vec![AppliedOrder {
            activity: "newInstance".into(),
            order_id: "CS1".into(),
            order_line_id: "CS1-000001".into(),
            scene: None,
            expire_time: None,
            product_id: None,
            applied_at_ms: NOW_MS,
        }],
        created_at_ms: NOW_MS,
        updated_at_ms: NOW_MS,
        version: 1,
    }
}

/// Instances: insert once, read back equal, update only on the expected version, batch reads
/// return the known ones, partitions never mix.
pub async fn instance_versioning_and_partitions(store: &dyn Store) {
    let id = unique("inst");
    let inst = sample_instance(&id, false);
    assert_eq!(
        store.put_instance(&inst, None).await.unwrap(),
        VersionedWrite::Written
    );
    assert_eq!(
        store.put_instance(&inst, None).await.unwrap(),
        VersionedWrite::Conflict,
        "insert is once only"
    );
    let read = store
        .get_instance(Partition::Production, &id)
        .await
        .unwrap();
    assert_eq!(read.as_ref(), Some(&inst), "read back exactly");

    let mut next = inst.clone();
    next.state = InstanceState::Frozen;
    next.version = 2;
    assert_eq!(
        store.put_instance(&next, Some(1)).await.unwrap(),
        VersionedWrite::Written
    );
    let mut stale = inst.clone();
    stale.state = InstanceState::Released;
    stale.version = 2;
    assert_eq!(
        store.put_instance(&stale, Some(1)).await.unwrap(),
        VersionedWrite::Conflict,
        "stale version"
    );
    let read = store
        .get_instance(Partition::Production, &id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(read.state, InstanceState::Frozen);

    assert_eq!(
        store.get_instance(Partition::Debug, &id).await.unwrap(),
        None,
        "debug partition is apart"
    );
    let debug = sample_instance(&id, true);
    assert_eq!(
        store.put_instance(&debug, None).await.unwrap(),
        VersionedWrite::Written,
        "same id in debug is another record"
    );
    let prod = store
        .get_instance(Partition::Production, &id)
        .await
        .unwrap()
        .unwrap();
    assert!(!prod.debug);

    let other = unique("inst");
    store
        .put_instance(&sample_instance(&other, false), None)
        .await
        .unwrap();
    let ids = vec![other.clone(), unique("never"), id.clone()];
    let mut found: Vec<String> = store
        .get_instances(Partition::Production, &ids)
        .await
        .unwrap()
        .into_iter()
        .map(|i| i.instance_id)
        .collect();
    found.sort();
    let mut expected = vec![id.clone(), other.clone()];
    expected.sort();
    assert_eq!(
        found, expected,
        "batch read returns exactly the known instances"
    );
    assert!(store
        .get_instances(Partition::Production, &[])
        .await
        .unwrap()
        .is_empty());
}

/// A batch read of 100 ids (the queryInstance maximum) works.
pub async fn batch_read_of_one_hundred(store: &dyn Store) {
    let ids: Vec<String> = (0..100).map(|i| unique(&format!("batch{i}"))).collect();
    for id in ids.iter().step_by(3) {
        store
            .put_instance(&sample_instance(id, false), None)
            .await
            .unwrap();
    }
    let found = store
        .get_instances(Partition::Production, &ids)
        .await
        .unwrap();
    assert_eq!(found.len(), ids.iter().step_by(3).count());
}

/// Versioned records: insert once, update only on the expected version.
pub async fn record_versioning(store: &dyn Store) {
    let k = unique("record");
    assert_eq!(store.get_record(&k).await.unwrap(), None);
    let r1 = crate::Record {
        version: 1,
        doc: "{\"a\":1}".into(),
    };
    assert_eq!(
        store.put_record(&k, &r1, None).await.unwrap(),
        VersionedWrite::Written
    );
    assert_eq!(
        store.put_record(&k, &r1, None).await.unwrap(),
        VersionedWrite::Conflict,
        "insert once"
    );
    assert_eq!(store.get_record(&k).await.unwrap().as_ref(), Some(&r1));
    let r2 = crate::Record {
        version: 2,
        doc: "{\"a\":2}".into(),
    };
    assert_eq!(
        store.put_record(&k, &r2, Some(1)).await.unwrap(),
        VersionedWrite::Written
    );
    assert_eq!(
        store.put_record(&k, &r2, Some(1)).await.unwrap(),
        VersionedWrite::Conflict,
        "stale version"
    );
    assert_eq!(store.get_record(&k).await.unwrap().as_ref(), Some(&r2));
}

/// The directory: typed entries round-trip; a tenant's items are apart from other tenants' and
/// from the debug partition; a prefix lists only its kind; deletes remove; repeats change nothing;
/// a write of hundreds of items (more than one DynamoDB batch) lands whole, and the last write of
/// a key wins.
pub async fn directory_items(store: &dyn Store) {
    use crate::directory::{sk, Access, Department, Directory, Entry, Tenant};
    use crate::{DirectoryItem, DirectoryWrite};

    let tenant_id = unique("tenant");
    let other_id = unique("tenant-other");
    let dir = Directory::new(store, Partition::Production, &tenant_id);
    let debug = Directory::new(store, Partition::Debug, &tenant_id);
    let other = Directory::new(store, Partition::Production, &other_id);
    assert_eq!(dir.tenant().await.unwrap(), None);

    let tenant = Tenant {
        tenant_id: tenant_id.clone(),
        tenant_code: "huawei".into(),
        name: "企业 A".into(),
        domain_name: "https://idp.example.com".into(),
        instance_id: "inst-1".into(),
        order_id: "CS1".into(),
        deleted: false,
        updated_at_ms: 1,
    };
    let dept = |code: &str, parent: &str| Department {
        org_code: code.into(),
        org_name: format!("dept {code}"),
        parent_code: parent.into(),
        deleted: false,
        updated_at_ms: 1,
    };
    let writes = vec![
        Entry::Tenant(tenant.clone()).put(),
        Entry::Department(dept("10", "")).put(),
        Entry::Department(dept("11", "10")).put(),
        Entry::Access(Access {
            user_name: "zhangsan".into(),
            app_id: "app#1".into(),
            granted_at_ms: 1,
        })
        .put(),
    ];
    dir.apply(&writes).await.unwrap();
    dir.apply(&writes).await.unwrap();
    assert_eq!(dir.tenant().await.unwrap().as_ref(), Some(&tenant));
    assert_eq!(debug.tenant().await.unwrap(), None, "debug is apart");
    assert_eq!(other.tenant().await.unwrap(), None, "tenants are apart");
    let codes: Vec<String> = dir
        .departments()
        .await
        .unwrap()
        .into_iter()
        .map(|d| d.org_code)
        .collect();
    assert_eq!(
        codes,
        ["10", "11"],
        "in sk order, no duplicates after a repeat"
    );
    assert!(dir.access("zhangsan", "app#1").await.unwrap().is_some());
    assert_eq!(dir.accesses_of("zhangsan").await.unwrap().len(), 1);
    assert!(
        dir.accesses_of("zhang").await.unwrap().is_empty(),
        "prefix is exact"
    );

    dir.apply(&[DirectoryWrite::Delete {
        sk: sk::access("zhangsan", "app#1"),
    }])
    .await
    .unwrap();
    assert_eq!(dir.access("zhangsan", "app#1").await.unwrap(), None);
    dir.apply(&[DirectoryWrite::Delete {
        sk: sk::access("zhangsan", "app#1"),
    }])
    .await
    .expect("deleting an absent item succeeds");

    // Hundreds of items in one write, with one key written twice: the last write wins.
    let mut many: Vec<DirectoryWrite> = (0..600)
        .map(|i| Entry::Department(dept(&format!("m{i:04}"), "10")).put())
        .collect();
    many.push(DirectoryWrite::Put(DirectoryItem {
        sk: sk::org("m0000"),
        doc: serde_json::to_string(&Department {
            deleted: true,
            ..dept("m0000", "10")
        })
        .unwrap(),
    }));
    dir.apply(&many).await.unwrap();
    let all = dir.departments().await.unwrap();
    assert_eq!(all.len(), 602);
    assert!(all.iter().any(|d| d.org_code == "m0000" && d.deleted));
    assert!(other.departments().await.unwrap().is_empty());
}

/// Expands one `#[tokio::test]` per conformance check, each given the store built by `$make`
/// (an async expression yielding `Arc<dyn Store>`).
#[macro_export]
macro_rules! conformance_tests {
    ($make:expr) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn conformance_nonce_replay_guard() {
            let s = $make.await;
            $crate::conformance::nonce_replay_guard(&*s).await;
        }
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn conformance_acquire_complete_replay() {
            let s = $make.await;
            $crate::conformance::acquire_complete_replay(&*s).await;
        }
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn conformance_validation_mismatch() {
            let s = $make.await;
            $crate::conformance::validation_mismatch(&*s).await;
        }
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn conformance_lease_takeover() {
            let s = $make.await;
            $crate::conformance::lease_takeover(&*s).await;
        }
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn conformance_abandon_keeps_reference() {
            let s = $make.await;
            $crate::conformance::abandon_keeps_reference(&*s).await;
        }
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn conformance_expired_record_is_absent() {
            let s = $make.await;
            $crate::conformance::expired_record_is_absent(&*s).await;
        }
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn conformance_concurrent_acquire_has_one_winner() {
            let s = $make.await;
            $crate::conformance::concurrent_acquire_has_one_winner(s).await;
        }
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn conformance_instance_versioning_and_partitions() {
            let s = $make.await;
            $crate::conformance::instance_versioning_and_partitions(&*s).await;
        }
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn conformance_record_versioning() {
            let s = $make.await;
            $crate::conformance::record_versioning(&*s).await;
        }
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn conformance_batch_read_of_one_hundred() {
            let s = $make.await;
            $crate::conformance::batch_read_of_one_hundred(&*s).await;
        }
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn conformance_directory_items() {
            let s = $make.await;
            $crate::conformance::directory_items(&*s).await;
        }
    };
}
