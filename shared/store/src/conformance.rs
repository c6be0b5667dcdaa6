//! The conformance suite: the semantics every [`Store`] backend must have, written once and run
//! against each backend (SQLite in this crate's tests, DynamoDB on a local moto server in the
//! workspace tests).
//!
//! Use [`conformance_tests!`](crate::conformance_tests) to expand one `#[tokio::test]` per check.
//! Each check uses keys of its own, so the checks may share one database or table.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::idempotency::{Acquire, AcquireOutcome, Completion, Nonce};
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

/// The replay guard and the lock together: a fresh nonce is recorded with the lock; a seen nonce
/// writes nothing, not even the lock it came with; a lock this call cannot take still records
/// its fresh nonce.
pub async fn acquire_fresh_guards_then_locks(store: &dyn Store) {
    let now = NOW_MS / 1000;
    let nonce = |key| Nonce {
        key,
        now_s: now,
        expires_at: now + 120,
    };
    let (n1, n2) = (unique("nonce"), unique("nonce"));
    let (k1, k2) = (unique("idem"), unique("idem"));

    let first = store
        .acquire_fresh(&nonce(&n1), &acquire(&k1, "owner-a", "ref-a", NOW_MS))
        .await
        .unwrap();
    assert_eq!(
        first,
        Some(AcquireOutcome::Acquired {
            reference: "ref-a".into()
        })
    );
    assert!(
        !store.remember_nonce(&n1, now, now + 120).await.unwrap(),
        "the nonce was recorded with the lock"
    );

    let replayed = store
        .acquire_fresh(&nonce(&n1), &acquire(&k2, "owner-b", "ref-b", NOW_MS))
        .await
        .unwrap();
    assert_eq!(replayed, None, "a seen nonce is refused");
    assert_eq!(
        store
            .acquire(&acquire(&k2, "owner-c", "ref-c", NOW_MS))
            .await
            .unwrap(),
        AcquireOutcome::Acquired {
            reference: "ref-c".into()
        },
        "the refused call took no lock"
    );

    let busy = store
        .acquire_fresh(&nonce(&n2), &acquire(&k1, "owner-d", "ref-d", NOW_MS + 1))
        .await
        .unwrap();
    assert_eq!(
        busy,
        Some(AcquireOutcome::InFlight {
            reference: "ref-a".into()
        })
    );
    assert!(
        !store.remember_nonce(&n2, now, now + 120).await.unwrap(),
        "a fresh nonce is recorded even when the lock is held"
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
            .complete(&k, "owner-b", "{\"x\":1}", "000000", None)
            .await
            .unwrap(),
        "a non-owner never completes"
    );
    assert!(
        store
            .complete(&k, "owner-a", "{\"x\":2}", "000004", None)
            .await
            .unwrap(),
        "the owner completes"
    );
    assert!(
        !store
            .complete(&k, "owner-a", "{\"x\":3}", "000000", None)
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
            response: "{\"x\":2}".into(),
            code: Some("000004".into())
        },
        "completed records replay forever, with their code, even after the lease"
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
    store
        .complete(&k, "o1", "{}", "000000", None)
        .await
        .unwrap();
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
        !store
            .complete(&k, "crashed", "{}", "000000", None)
            .await
            .unwrap(),
        "the old owner lost the lock"
    );
    assert!(
        !store.abandon(&k, "crashed").await.unwrap(),
        "nor may it abandon it"
    );
    assert!(store
        .complete(&k, "retry", "{\"ok\":1}", "000000", None)
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
        .complete(
            &k,
            "o1",
            "{\"first\":1}",
            "000000",
            Some(NOW_MS / 1000 + 60),
        )
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

/// An active instance record with every field set, for tests of a store.
pub fn sample_instance(id: &str, debug: bool) -> Instance {
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
        order_details: None,
        event_ids: Vec::new(),
        customer_id: None,
    }
}

/// An instance write with the lock's completion: both when the write succeeds and the caller
/// owns the lock; no completion when the write conflicts; the
/// write without the completion when another caller took the lock over.
pub async fn put_instance_completing_writes_both_or_neither(store: &dyn Store) {
    let completion = |key, owner| Completion {
        key,
        owner,
        response: "{\"resultCode\":\"000000\"}",
        code: "000000",
        expires_at: None,
    };
    let (k1, k2) = (unique("idem"), unique("idem"));
    let (id1, id2) = (unique("inst"), unique("inst"));
    for (k, owner) in [(&k1, "owner-a"), (&k2, "owner-b")] {
        store
            .acquire(&acquire(k, owner, "ref", NOW_MS))
            .await
            .unwrap();
    }

    let inst = sample_instance(&id1, false);
    assert_eq!(
        store
            .put_instance_completing(&inst, None, &[], &completion(&k1, "owner-a"))
            .await
            .unwrap(),
        (VersionedWrite::Written, true)
    );
    assert_eq!(
        store
            .get_instance(Partition::Production, &id1)
            .await
            .unwrap(),
        Some(inst.clone())
    );
    assert_eq!(
        store
            .acquire(&acquire(&k1, "owner-x", "ref-x", NOW_MS + 1))
            .await
            .unwrap(),
        AcquireOutcome::Completed {
            reference: "ref".into(),
            response: "{\"resultCode\":\"000000\"}".into(),
            code: Some("000000".into())
        },
        "the lock was completed with the write"
    );

    assert_eq!(
        store
            .put_instance_completing(&inst, None, &[], &completion(&k2, "owner-b"))
            .await
            .unwrap(),
        (VersionedWrite::Conflict, false),
        "the instance exists"
    );
    assert_eq!(
        store
            .acquire(&acquire(&k2, "owner-y", "ref-y", NOW_MS + 1))
            .await
            .unwrap(),
        AcquireOutcome::InFlight {
            reference: "ref".into()
        },
        "a conflicting write completes nothing"
    );

    let other = sample_instance(&id2, false);
    assert_eq!(
        store
            .put_instance_completing(&other, None, &[], &completion(&k2, "owner-z"))
            .await
            .unwrap(),
        (VersionedWrite::Written, false),
        "not the lock's owner: written, not completed"
    );
    assert!(store
        .get_instance(Partition::Production, &id2)
        .await
        .unwrap()
        .is_some());
}

/// Instances: insert once, read back equal, update only on the expected version, batch reads
/// return the known ones, partitions never mix.
pub async fn instance_versioning_and_partitions(store: &dyn Store) {
    let id = unique("inst");
    let inst = sample_instance(&id, false);
    assert_eq!(
        store.put_instance(&inst, None, &[]).await.unwrap(),
        VersionedWrite::Written
    );
    assert_eq!(
        store.put_instance(&inst, None, &[]).await.unwrap(),
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
        store.put_instance(&next, Some(1), &[]).await.unwrap(),
        VersionedWrite::Written
    );
    let mut stale = inst.clone();
    stale.state = InstanceState::Released;
    stale.version = 2;
    assert_eq!(
        store.put_instance(&stale, Some(1), &[]).await.unwrap(),
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
        store.put_instance(&debug, None, &[]).await.unwrap(),
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
        .put_instance(&sample_instance(&other, false), None, &[])
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
            .put_instance(&sample_instance(id, false), None, &[])
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
        store.put_record(&k, &r1, None, &[]).await.unwrap(),
        VersionedWrite::Written
    );
    assert_eq!(
        store.put_record(&k, &r1, None, &[]).await.unwrap(),
        VersionedWrite::Conflict,
        "insert once"
    );
    assert_eq!(store.get_record(&k).await.unwrap().as_ref(), Some(&r1));
    let r2 = crate::Record {
        version: 2,
        doc: "{\"a\":2}".into(),
    };
    assert_eq!(
        store.put_record(&k, &r2, Some(1), &[]).await.unwrap(),
        VersionedWrite::Written
    );
    assert_eq!(
        store.put_record(&k, &r2, Some(1), &[]).await.unwrap(),
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
    dir.apply(&writes, &[]).await.unwrap();
    dir.apply(&writes, &[]).await.unwrap();
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

    dir.apply(
        &[DirectoryWrite::Delete {
            sk: sk::access("zhangsan", "app#1"),
        }],
        &[],
    )
    .await
    .unwrap();
    assert_eq!(dir.access("zhangsan", "app#1").await.unwrap(), None);
    dir.apply(
        &[DirectoryWrite::Delete {
            sk: sk::access("zhangsan", "app#1"),
        }],
        &[],
    )
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
    dir.apply(&many, &[]).await.unwrap();
    let all = dir.departments().await.unwrap();
    assert_eq!(all.len(), 602);
    assert!(all.iter().any(|d| d.org_code == "m0000" && d.deleted));
    assert!(other.departments().await.unwrap().is_empty());
}

// ---- usage metering ------------------------------------------------------------------------------
// The usage checks claim whatever is due in the whole store, so each needs a store of its own
// (every backend's test harness builds one per check).

fn usage_data(instance_id: &str, begin: &str, end: &str, value: &str) -> crate::UsageData {
    crate::UsageData {
        instance_id: instance_id.to_string(),
        begin_time: begin.to_string(),
        end_time: end.to_string(),
        usage_value: value.to_string(),
        metering_sn: format!("sn-{instance_id}-{begin}"),
        record_time: end.to_string(),
        product_id: Some("OFFI1".into()),
        relate_pkg_instance: None,
        recorded_at_ms: NOW_MS,
        revision: 0,
    }
}

fn claim<'a>(owner: &'a str, now_ms: i64, due: &'a str, limit: usize) -> crate::UsageClaim<'a> {
    crate::UsageClaim {
        owner,
        now_ms,
        lease_until_ms: now_ms + 60_000,
        due_end_time: due,
        limit,
    }
}

/// Usage is recorded once per (instance, begin, end); a second recording returns the stored
/// record unchanged, whatever value it carries.
pub async fn usage_is_recorded_once(store: &dyn Store) {
    use crate::{UsageInsert, UsageStatus};
    let id = unique("usage-once");
    let a = usage_data(&id, "20240101T000000Z", "20240101T010000Z", "1.5");
    assert_eq!(store.record_usage(&a).await.unwrap(), UsageInsert::Recorded);
    let b = usage_data(&id, "20240101T000000Z", "20240101T010000Z", "7");
    match store.record_usage(&b).await.unwrap() {
        UsageInsert::Exists(r) => {
            assert_eq!(r.data, a, "the first recording wins");
            assert_eq!(r.status, UsageStatus::Pending);
        }
        other => panic!("expected Exists, got {other:?}"),
    }
    let next = usage_data(&id, "20240101T010000Z", "20240101T020000Z", "2");
    assert_eq!(
        store.record_usage(&next).await.unwrap(),
        UsageInsert::Recorded
    );
    let all = store.instance_usage(&id).await.unwrap();
    assert_eq!(all.len(), 2);
    assert_eq!(all[0].data, a);
    assert_eq!(all[1].data, next);
    assert!(store
        .instance_usage(&unique("none"))
        .await
        .unwrap()
        .is_empty());
}

/// Claims take only due, pending, unleased records; settling is final for pushed and failed,
/// and a retry hides the record until its back-off ends.
pub async fn usage_claim_and_settle(store: &dyn Store) {
    use crate::{UsageSettlement, UsageStatus};
    let id = unique("usage-claim");
    let early = usage_data(&id, "20240101T000000Z", "20240101T010000Z", "1");
    let mid = usage_data(&id, "20240101T010000Z", "20240101T020000Z", "2");
    let late = usage_data(&id, "20240101T020000Z", "20240101T030000Z", "3");
    for d in [&early, &mid, &late] {
        store.record_usage(d).await.unwrap();
    }
    let got = store
        .claim_usage(&claim("run-1", NOW_MS, "20240101T020000Z", 10))
        .await
        .unwrap();
    let mut keys: Vec<_> = got.iter().map(|r| r.data.key()).collect();
    keys.sort();
    assert_eq!(
        keys,
        vec![early.key(), mid.key()],
        "only intervals ended by the due time"
    );
    assert!(got.iter().all(|r| r.attempts == 1));
    assert!(
        store
            .claim_usage(&claim("run-2", NOW_MS + 1, "20240101T020000Z", 10))
            .await
            .unwrap()
            .is_empty(),
        "a live claim is not claimed again"
    );
    assert_eq!(
        store
            .settle_usage(
                "run-2",
                &[early.key()],
                &UsageSettlement::Pushed { at_ms: NOW_MS }
            )
            .await
            .unwrap(),
        0,
        "only the owner settles"
    );
    assert_eq!(
        store
            .settle_usage(
                "run-1",
                &[early.key()],
                &UsageSettlement::Pushed { at_ms: NOW_MS }
            )
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        store
            .settle_usage(
                "run-1",
                &[mid.key()],
                &UsageSettlement::Retry {
                    not_before_ms: NOW_MS + 120_000
                }
            )
            .await
            .unwrap(),
        1
    );
    assert!(
        store
            .claim_usage(&claim("run-3", NOW_MS + 100_000, "20240101T020000Z", 10))
            .await
            .unwrap()
            .is_empty(),
        "pushed is final and a retry waits for its back-off"
    );
    let again = store
        .claim_usage(&claim("run-4", NOW_MS + 130_000, "20240101T030000Z", 10))
        .await
        .unwrap();
    let mut keys: Vec<_> = again.iter().map(|r| (r.data.key(), r.attempts)).collect();
    keys.sort();
    assert_eq!(keys, vec![(mid.key(), 2), (late.key(), 1)]);
    assert_eq!(
        store
            .settle_usage(
                "run-4",
                &[mid.key(), late.key()],
                &UsageSettlement::Failed {
                    code: "MKT.9002".into(),
                    at_ms: NOW_MS
                }
            )
            .await
            .unwrap(),
        2
    );
    assert!(store
        .claim_usage(&claim("run-5", NOW_MS + 999_999, "20991231T000000Z", 10))
        .await
        .unwrap()
        .is_empty());
    let all = store.instance_usage(&id).await.unwrap();
    let states: Vec<_> = all.iter().map(|r| (r.status, r.failure.clone())).collect();
    assert_eq!(
        states,
        vec![
            (UsageStatus::Pushed, None),
            (UsageStatus::Failed, Some("MKT.9002".into())),
            (UsageStatus::Failed, Some("MKT.9002".into())),
        ]
    );
    // Recording a settled interval again changes nothing and does not make it due again.
    store.record_usage(&early).await.unwrap();
    assert!(store
        .claim_usage(&claim("run-6", NOW_MS + 999_999, "20991231T000000Z", 10))
        .await
        .unwrap()
        .is_empty());
}

/// A failed record is re-queued with a new generation (only from failed, only with the sn
/// read); the backlog tells why due records are pending.
pub async fn usage_requeue_and_backlog(store: &dyn Store) {
    use crate::UsageSettlement;
    let id = unique("usage-requeue");
    let bad = usage_data(&id, "20240103T000000Z", "20240103T010000Z", "5");
    let other = usage_data(&id, "20240103T010000Z", "20240103T020000Z", "6");
    let fresh = usage_data(&id, "20240103T020000Z", "20240103T030000Z", "7");
    for d in [&bad, &other, &fresh] {
        store.record_usage(d).await.unwrap();
    }
    let due = "20240103T030000Z";
    let b = store.usage_backlog(due, NOW_MS).await.unwrap();
    assert_eq!((b.due, b.never_attempted), (3, 3), "{b:?}");
    assert_eq!(b.oldest_due_end_time.as_deref(), Some("20240103T010000Z"));
    let got = store
        .claim_usage(&claim("run-1", NOW_MS, "20240103T020000Z", 10))
        .await
        .unwrap();
    assert_eq!(got.len(), 2);
    let k_bad = [bad.key()];
    let failed = UsageSettlement::Failed {
        code: "MKT.9001".into(),
        at_ms: NOW_MS,
    };
    assert_eq!(
        store.settle_usage("run-1", &k_bad, &failed).await.unwrap(),
        1
    );
    let retry = UsageSettlement::Retry {
        not_before_ms: NOW_MS + 5_000,
    };
    assert_eq!(
        store
            .settle_usage("run-1", &[other.key()], &retry)
            .await
            .unwrap(),
        1
    );
    let b = store.usage_backlog(due, NOW_MS + 1).await.unwrap();
    assert_eq!(
        (b.due, b.backing_off, b.never_attempted, b.leased),
        (2, 1, 1, 0),
        "{b:?}"
    );
    assert_eq!(b.retry_not_before_ms, Some(NOW_MS + 5_000));
    // Not failed: no re-queue.
    let mut wrong = other.clone();
    wrong.revision = 1;
    assert!(!store
        .requeue_usage(&other.metering_sn, &wrong)
        .await
        .unwrap());
    // Failed, but the caller read another generation: no re-queue.
    let mut corrected = bad.clone();
    corrected.usage_value = "5.5".into();
    corrected.revision = 1;
    corrected.metering_sn = format!("{}-r1", bad.metering_sn);
    assert!(!store.requeue_usage("not-the-sn", &corrected).await.unwrap());
    assert!(store
        .requeue_usage(&bad.metering_sn, &corrected)
        .await
        .unwrap());
    assert!(!store
        .requeue_usage(&bad.metering_sn, &corrected)
        .await
        .unwrap());
    let again = store
        .claim_usage(&claim("run-2", NOW_MS + 10_000, "20240103T010000Z", 10))
        .await
        .unwrap();
    assert_eq!(again.len(), 1, "the corrected record is due again");
    assert_eq!(again[0].data, corrected);
    assert_eq!((again[0].attempts, again[0].failure.as_deref()), (1, None));
    let pushed = UsageSettlement::Pushed { at_ms: NOW_MS };
    assert_eq!(
        store.settle_usage("run-2", &k_bad, &pushed).await.unwrap(),
        1
    );
    let all = store.instance_usage(&id).await.unwrap();
    assert_eq!(all[0].status, crate::UsageStatus::Pushed);
    assert_eq!(all[0].data.usage_value, "5.5");
}

/// A claim whose lease ran out is taken over; the old owner can no longer settle it.
pub async fn usage_lease_takeover(store: &dyn Store) {
    use crate::UsageSettlement;
    let id = unique("usage-lease");
    let d = usage_data(&id, "20240102T000000Z", "20240102T010000Z", "4");
    store.record_usage(&d).await.unwrap();
    let a = store
        .claim_usage(&claim("crashed", NOW_MS, "20240102T010000Z", 10))
        .await
        .unwrap();
    assert_eq!(a.len(), 1);
    let b = store
        .claim_usage(&claim("next", NOW_MS + 60_001, "20240102T010000Z", 10))
        .await
        .unwrap();
    assert_eq!(b.len(), 1);
    assert_eq!(
        b[0].data, d,
        "the same bytes go out again: same metering_sn"
    );
    assert_eq!(b[0].attempts, 2);
    let pushed = UsageSettlement::Pushed { at_ms: NOW_MS };
    assert_eq!(
        store
            .settle_usage("crashed", &[d.key()], &pushed)
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        store
            .settle_usage("next", &[d.key()], &pushed)
            .await
            .unwrap(),
        1
    );
}

/// Concurrent claims never hand one record to two runs, and respect the limit.
pub async fn usage_concurrent_claims_are_disjoint(store: Arc<dyn Store>) {
    let id = unique("usage-race");
    for h in 0..20 {
        let begin = format!("20240103T{h:02}0000Z");
        let end = format!("20240103T{:02}0000Z", h + 1);
        store
            .record_usage(&usage_data(&id, &begin, &end, "1"))
            .await
            .unwrap();
    }
    let mut tasks = Vec::new();
    for w in 0..4 {
        let s = Arc::clone(&store);
        tasks.push(tokio::spawn(async move {
            let owner = format!("worker-{w}");
            s.claim_usage(&claim(&owner, NOW_MS, "20240104T000000Z", 7))
                .await
                .unwrap()
        }));
    }
    let mut seen = std::collections::BTreeSet::new();
    let mut total = 0;
    for t in tasks {
        let got = t.await.unwrap();
        assert!(got.len() <= 7, "limit respected");
        total += got.len();
        for r in got {
            assert!(
                seen.insert(r.data.key()),
                "claimed twice: {:?}",
                r.data.key()
            );
        }
    }
    assert_eq!(total, 20, "every due record claimed exactly once");
}

fn draft(id: &str, instance_id: &str) -> crate::EventDraft {
    crate::EventDraft {
        id: id.to_string(),
        event_type: "instance.renewed".into(),
        body: format!(
            "{{\"type\":\"instance.renewed\",\"data\":{{\"instanceId\":\"{instance_id}\"}}}}"
        ),
        instance_id: Some(instance_id.to_string()),
        created_at_ms: NOW_MS,
    }
}

/// The outbox: events are recorded with a change that is written and never with one that is
/// refused; they are due at once, listed, settled, and found by id in every state.
pub async fn events_exist_only_with_their_change(store: &dyn Store) {
    use crate::events::new_event_id;
    use crate::{EventQuery, EventSettlement, EventState};
    let id = unique("evt-inst");
    let inst = sample_instance(&id, false);
    let created = draft(&new_event_id(NOW_MS), &id);
    assert_eq!(
        store
            .put_instance(&inst, None, std::slice::from_ref(&created))
            .await
            .unwrap(),
        VersionedWrite::Written
    );
    // A refused write (stale version) records nothing.
    let refused = draft(&new_event_id(NOW_MS), &id);
    assert_eq!(
        store
            .put_instance(&inst, Some(7), std::slice::from_ref(&refused))
            .await
            .unwrap(),
        VersionedWrite::Conflict
    );
    let mine = EventQuery {
        instance_id: Some(id.clone()),
        ..Default::default()
    };
    let listed = store.list_events(&mine).await.unwrap();
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0].id, created.id);
    assert_eq!(
        listed[0].body, created.body,
        "the body is kept byte for byte"
    );
    assert!(store.get_event(&refused.id).await.unwrap().is_none());
    let stored = store
        .get_instance(Partition::Production, &id)
        .await
        .unwrap()
        .unwrap();
    assert!(
        stored.event_ids.contains(&created.id),
        "the record remembers its events"
    );

    // Due now; a retry moves it out of the due set until its time.
    let due = store.due_events(i64::MAX / 2, 10_000).await.unwrap();
    let event = due.into_iter().find(|e| e.id == created.id).expect("due");
    store
        .settle_event(
            &event,
            &EventSettlement::Retry {
                at_ms: NOW_MS,
                next_attempt_ms: i64::MAX / 2 + 1,
                error: "HTTP 500".into(),
            },
        )
        .await
        .unwrap();
    let after = store.get_event(&created.id).await.unwrap().unwrap();
    assert_eq!((after.state, after.attempts), (EventState::Pending, 1));
    assert_eq!(after.last_error.as_deref(), Some("HTTP 500"));
    assert!(!store
        .due_events(i64::MAX / 2, 10_000)
        .await
        .unwrap()
        .iter()
        .any(|e| e.id == created.id));
    store
        .settle_event(
            &after,
            &EventSettlement::Failed {
                at_ms: NOW_MS,
                error: "HTTP 410".into(),
            },
        )
        .await
        .unwrap();
    let failed = store.get_event(&created.id).await.unwrap().unwrap();
    assert_eq!(failed.state, EventState::Failed);
    let only_failed = EventQuery {
        failed_only: true,
        instance_id: Some(id.clone()),
        limit: 0,
    };
    assert_eq!(store.list_events(&only_failed).await.unwrap().len(), 1);
    store
        .settle_event(&failed, &EventSettlement::Delivered { at_ms: NOW_MS })
        .await
        .unwrap();
    let delivered = store.get_event(&created.id).await.unwrap().unwrap();
    assert_eq!(
        (delivered.state, delivered.attempts),
        (EventState::Delivered, 3)
    );
    assert!(store.list_events(&only_failed).await.unwrap().is_empty());

    // A record and a directory sync carry their events the same way; a standalone event too.
    let rec_event = draft(&new_event_id(NOW_MS), &id);
    let key = unique("evt-record");
    let record = crate::Record {
        version: 1,
        doc: "{\"a\":1}".into(),
    };
    store
        .put_record(&key, &record, None, std::slice::from_ref(&rec_event))
        .await
        .unwrap();
    let dir_event = draft(&new_event_id(NOW_MS), &id);
    let tenant = unique("evt-tenant");
    let put = crate::DirectoryWrite::Put(crate::DirectoryItem {
        sk: "tenant".into(),
        doc: "{}".into(),
    });
    store
        .write_directory(
            Partition::Production,
            &tenant,
            &[put],
            std::slice::from_ref(&dir_event),
        )
        .await
        .unwrap();
    let ping = draft(&new_event_id(NOW_MS), &id);
    store
        .record_events(std::slice::from_ref(&ping))
        .await
        .unwrap();
    store
        .record_events(std::slice::from_ref(&ping))
        .await
        .unwrap();
    let all = store.list_events(&mine).await.unwrap();
    for e in [&rec_event, &dir_event, &ping] {
        assert_eq!(
            all.iter().filter(|x| x.id == e.id).count(),
            1,
            "{} once in {all:?}",
            e.id
        );
    }
}

/// Operators list instances, license codes, notifications and tenants by kind and partition,
/// in identifier order and by pages, without reading anything else.
pub async fn records_are_listed_for_operators(store: &dyn Store) {
    use crate::Listing;
    let tag = unique("list");
    let ids: Vec<String> = (0..5).map(|i| format!("{tag}-{i}")).collect();
    for id in &ids {
        store
            .put_instance(&sample_instance(id, false), None, &[])
            .await
            .unwrap();
    }
    store
        .put_instance(&sample_instance(&format!("{tag}-debug"), true), None, &[])
        .await
        .unwrap();
    let record = crate::Record {
        version: 1,
        doc: "{}".into(),
    };
    let code = format!("{tag}-code");
    let key = crate::keys::license_code(Partition::Production, &code);
    store.put_record(&key, &record, None, &[]).await.unwrap();
    let note = crate::keys::order_notification(Partition::Production, &tag, "line-1");
    store.put_record(&note, &record, None, &[]).await.unwrap();
    let tenant = format!("{tag}-tenant");
    let put = crate::DirectoryWrite::Put(crate::DirectoryItem {
        sk: "tenant".into(),
        doc: "{}".into(),
    });
    store
        .write_directory(Partition::Production, &tenant, &[put], &[])
        .await
        .unwrap();

    let all = store
        .list_ids(Listing::Instances, Partition::Production, None, 100_000)
        .await
        .unwrap();
    let mine: Vec<&String> = all.iter().filter(|i| i.starts_with(&tag)).collect();
    assert_eq!(
        mine,
        ids.iter().collect::<Vec<_>>(),
        "production only, in order"
    );
    let page = store
        .list_ids(Listing::Instances, Partition::Production, Some(&ids[1]), 2)
        .await
        .unwrap();
    assert_eq!(page.len(), 2);
    assert!(
        page.iter().all(|p| p.as_str() > ids[1].as_str()),
        "{page:?}"
    );
    let debug = store
        .list_ids(Listing::Instances, Partition::Debug, None, 100_000)
        .await
        .unwrap();
    assert!(debug.contains(&format!("{tag}-debug")));
    let licenses = store
        .list_ids(Listing::Licenses, Partition::Production, None, 100_000)
        .await
        .unwrap();
    assert!(licenses.contains(&code), "{licenses:?}");
    let notes = store
        .list_ids(Listing::Notifications, Partition::Production, None, 100_000)
        .await
        .unwrap();
    assert!(notes.contains(&format!("{tag}#line-1")), "{notes:?}");
    let tenants = store
        .list_ids(Listing::Tenants, Partition::Production, None, 100_000)
        .await
        .unwrap();
    assert!(tenants.contains(&tenant), "{tenants:?}");
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
        async fn conformance_acquire_fresh_guards_then_locks() {
            let s = $make.await;
            $crate::conformance::acquire_fresh_guards_then_locks(&*s).await;
        }
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn conformance_put_instance_completing_writes_both_or_neither() {
            let s = $make.await;
            $crate::conformance::put_instance_completing_writes_both_or_neither(&*s).await;
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
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn conformance_usage_is_recorded_once() {
            let s = $make.await;
            $crate::conformance::usage_is_recorded_once(&*s).await;
        }
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn conformance_usage_claim_and_settle() {
            let s = $make.await;
            $crate::conformance::usage_claim_and_settle(&*s).await;
        }
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn conformance_usage_requeue_and_backlog() {
            let s = $make.await;
            $crate::conformance::usage_requeue_and_backlog(&*s).await;
        }
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn conformance_usage_lease_takeover() {
            let s = $make.await;
            $crate::conformance::usage_lease_takeover(&*s).await;
        }
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn conformance_usage_concurrent_claims_are_disjoint() {
            let s = $make.await;
            $crate::conformance::usage_concurrent_claims_are_disjoint(s).await;
        }
        #[tokio::test]
        async fn conformance_records_are_listed_for_operators() {
            let s = $make.await;
            $crate::conformance::records_are_listed_for_operators(&*s).await;
        }
        #[tokio::test]
        async fn conformance_events_exist_only_with_their_change() {
            let s = $make.await;
            $crate::conformance::events_exist_only_with_their_change(&*s).await;
        }
    };
}
