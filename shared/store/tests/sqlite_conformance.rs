//! The conformance suite against the SQLite backend: in memory, and on disk (WAL, a file per
//! check, since the usage checks claim whatever is due in the whole store).

use std::sync::Arc;

use koogate_store::sqlite::SqliteStore;
use koogate_store::Store;

mod in_memory {
    use super::*;
    koogate_store::conformance_tests!(async {
        Arc::new(SqliteStore::in_memory().unwrap()) as Arc<dyn Store>
    });
}

mod on_disk {
    use super::*;
    async fn make() -> Arc<dyn Store> {
        // One file per check: the usage checks claim whatever is due in the whole store.
        static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("koogate-conformance-{}", std::process::id()));
        Arc::new(SqliteStore::open(&dir.join(format!("store-{n}.db"))).unwrap())
    }
    koogate_store::conformance_tests!(make());
}

/// A database made before the answer's result code was stored beside it: opening it adds the
/// column, and its completed records replay with no stored code (the caller reads it from the
/// answer).
#[tokio::test]
async fn a_database_from_before_the_code_column_is_upgraded_in_place() {
    let dir = std::env::temp_dir().join(format!("koogate-upgrade-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("old.db");
    let _ = std::fs::remove_file(&path);
    {
        let old = rusqlite::Connection::open(&path).unwrap();
        old.execute_batch(
            "CREATE TABLE idempotency (
                key TEXT PRIMARY KEY, status TEXT NOT NULL, owner TEXT NOT NULL,
                lease_until INTEGER NOT NULL, validation TEXT NOT NULL, reference TEXT NOT NULL,
                response TEXT, expires_at INTEGER, created_at INTEGER NOT NULL
            ) WITHOUT ROWID;
            INSERT INTO idempotency VALUES ('order#old', 'COMPLETED', 'o', 0, 'v', 'i-old',
                '{\"resultCode\":\"000004\"}', NULL, 1);",
        )
        .unwrap();
    }
    let store = SqliteStore::open(&path).unwrap();
    let again = store
        .acquire(&koogate_store::Acquire {
            key: "order#old",
            owner: "o2",
            lease_until_ms: 2_000_000_000_000,
            validation: "v",
            reference: "i-new",
            expires_at: None,
            now_ms: 1_700_000_000_000,
        })
        .await
        .unwrap();
    assert_eq!(
        again,
        koogate_store::AcquireOutcome::Completed {
            reference: "i-old".into(),
            response: "{\"resultCode\":\"000004\"}".into(),
            code: None,
        }
    );
    // New records keep their code; opening the upgraded file again changes nothing.
    drop(store);
    let store = SqliteStore::open(&path).unwrap();
    let fresh = koogate_store::Acquire {
        key: "order#new",
        owner: "o3",
        lease_until_ms: 2_000_000_000_000,
        validation: "v",
        reference: "i-3",
        expires_at: None,
        now_ms: 1_700_000_000_000,
    };
    store.acquire(&fresh).await.unwrap();
    assert!(store
        .complete("order#new", "o3", "{}", "000000", None)
        .await
        .unwrap());
    let replay = store
        .acquire(&koogate_store::Acquire {
            owner: "o4",
            ..fresh
        })
        .await
        .unwrap();
    assert!(
        matches!(replay, koogate_store::AcquireOutcome::Completed { code: Some(ref c), .. } if c == "000000"),
        "{replay:?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// A database whose order and instance tables were made `WITHOUT ROWID` (before they kept their
/// rows in arrival order) is rebuilt when opened: its records read and replay as before, and
/// opening it again changes nothing.
#[tokio::test]
async fn a_database_with_key_ordered_tables_is_rebuilt_with_its_rows() {
    let dir = std::env::temp_dir().join(format!("koogate-rowid-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("keyed.db");
    let _ = std::fs::remove_file(&path);
    let inst = koogate_store::conformance::sample_instance("i-keyed", false);
    let lock = koogate_store::Acquire {
        key: "order#keyed",
        owner: "o1",
        lease_until_ms: 2_000_000_000_000,
        validation: "v",
        reference: "i-keyed",
        expires_at: None,
        now_ms: 1_700_000_000_000,
    };
    {
        let store = SqliteStore::open(&path).unwrap();
        store.put_instance(&inst, None, &[]).await.unwrap();
        store.acquire(&lock).await.unwrap();
        assert!(store
            .complete(
                "order#keyed",
                "o1",
                "{\"resultCode\":\"000000\"}",
                "000000",
                None
            )
            .await
            .unwrap());
    }
    // Back to the old layout, rows and all.
    let sql_of = |conn: &rusqlite::Connection, table: &str| -> String {
        conn.query_row(
            "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?1",
            [table],
            |r| r.get(0),
        )
        .unwrap()
    };
    {
        let old = rusqlite::Connection::open(&path).unwrap();
        for table in ["idempotency", "instances"] {
            let declaration = sql_of(&old, table).replacen(table, "old_layout", 1);
            old.execute_batch(&format!(
                "{declaration} WITHOUT ROWID;
                 INSERT INTO old_layout SELECT * FROM {table};
                 DROP TABLE {table};
                 ALTER TABLE old_layout RENAME TO {table};"
            ))
            .unwrap();
            assert!(sql_of(&old, table).ends_with("WITHOUT ROWID"));
        }
    }
    for _ in 0..2 {
        let store = SqliteStore::open(&path).unwrap();
        let read = store
            .get_instance(inst.partition(), "i-keyed")
            .await
            .unwrap();
        assert_eq!(read, Some(inst.clone()));
        let replay = store
            .acquire(&koogate_store::Acquire {
                owner: "o2",
                ..lock
            })
            .await
            .unwrap();
        assert_eq!(
            replay,
            koogate_store::AcquireOutcome::Completed {
                reference: "i-keyed".into(),
                response: "{\"resultCode\":\"000000\"}".into(),
                code: Some("000000".into()),
            }
        );
        drop(store);
        let conn = rusqlite::Connection::open(&path).unwrap();
        for table in ["idempotency", "instances"] {
            assert!(!sql_of(&conn, table).contains("WITHOUT ROWID"), "{table}");
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// The replay guard survives a restart: the nonces of the log are read back when the database is
/// opened again, including those of a database from before the log (its `nonces` table).
#[tokio::test]
async fn a_reopened_database_still_refuses_its_nonces() {
    let dir = std::env::temp_dir().join(format!("koogate-reopen-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("nonces.db");
    let _ = std::fs::remove_file(&path);
    let now = i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
    .unwrap();
    {
        let old = rusqlite::Connection::open(&path).unwrap();
        old.execute_batch(
            "CREATE TABLE nonces (key TEXT PRIMARY KEY, expires_at INTEGER NOT NULL)
                 WITHOUT ROWID;",
        )
        .unwrap();
        old.execute(
            "INSERT INTO nonces VALUES ('nonce#basic#old', ?1)",
            [now + 120],
        )
        .unwrap();
    }
    let store = SqliteStore::open(&path).unwrap();
    assert!(!store
        .remember_nonce("nonce#basic#old", now, now + 120)
        .await
        .unwrap());
    assert!(store
        .remember_nonce("nonce#basic#new", now, now + 120)
        .await
        .unwrap());
    drop(store);
    let store = SqliteStore::open(&path).unwrap();
    for key in ["nonce#basic#old", "nonce#basic#new"] {
        assert!(
            !store.remember_nonce(key, now + 1, now + 121).await.unwrap(),
            "{key} was accepted again after a restart"
        );
    }
    assert!(store
        .remember_nonce("nonce#basic#other", now + 1, now + 121)
        .await
        .unwrap());
    let _ = std::fs::remove_dir_all(&dir);
}
