//! The embedded SQLite backend: the default store of `koogate serve`.
//!
//! WAL mode. Writes go to one writer thread, which commits the writes of concurrent callers
//! together (group commit, see [`crate::sqlite_writer`]): each write is atomic on its own and
//! answered only once committed. Another thread copies committed WAL frames into the database
//! file (see [`crate::sqlite_checkpoint`]), so the writer does not stop for it. Reads run on the
//! caller's thread on a small pool of read-only connections — in WAL a reader never waits for
//! the writer, and a point read takes microseconds, less than a hop to another thread. Every
//! statement is prepared once per connection. The tables, and why the order and instance tables
//! keep their rows in arrival order, are in [`crate::sqlite_schema`]. The conditional logic is
//! the same as the DynamoDB backend's condition expressions (see [`crate::idempotency`]), only
//! evaluated inside a transaction instead of by the server.

use std::path::Path;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use rusqlite::{params, Connection, OptionalExtension};

use crate::events::{self, EventDraft, EventQuery, EventRecord, EventSettlement, EventState};
use crate::idempotency::{Acquire, AcquireOutcome, Completion, IdemRecord, IdemStatus, Nonce};
use crate::records::{Instance, Record};
use crate::records::{
    UsageBacklog, UsageClaim, UsageData, UsageInsert, UsageKey, UsageRecord, UsageSettlement,
    UsageStatus,
};
use crate::sqlite_checkpoint::{Checkpointer, WRITER_AUTOCHECKPOINT_PAGES};
use crate::sqlite_nonces::{self, NonceIndex};
use crate::sqlite_schema;
use crate::sqlite_writer::Writer;
use crate::{keys, DirectoryItem, DirectoryWrite, Partition, Store, StoreError, VersionedWrite};

/// Prepared statements kept per connection (there are about 40 distinct ones).
const STATEMENT_CACHE: usize = 64;

/// How many nonce inserts between two sweeps of expired nonces.
const NONCE_SWEEP_EVERY: u64 = 1024;

/// Read connections of a file database (the writer has its own). A point read holds one for
/// microseconds, so two keep the request threads of a small machine from waiting on each other;
/// each costs two file descriptors (the database and its WAL), taken at start-up.
const READERS: usize = 2;

/// The SQLite store. Cheap to clone.
#[derive(Clone)]
pub struct SqliteStore {
    writer: Writer,
    /// Read-only connections; empty for an in-memory database, whose reads go to the writer
    /// (another connection would open another, empty, database).
    readers: Arc<Vec<Mutex<Connection>>>,
    /// Round-robin start for picking a reader.
    next_reader: Arc<std::sync::atomic::AtomicUsize>,
    /// Nonce inserts so far, for [`SqliteStore::sweep_due`].
    inserts: Arc<std::sync::atomic::AtomicU64>,
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path`, and its parent folder.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| {
                StoreError::Unavailable(format!("cannot create {}: {e}", parent.display()))
            })?;
        }
        let open = || {
            Connection::open(path).map_err(|e| {
                StoreError::Unavailable(format!("cannot open {}: {e}", path.display()))
            })
        };
        let writer = Self::init(open()?)?;
        writer
            .pragma_update(None, "wal_autocheckpoint", WRITER_AUTOCHECKPOINT_PAGES)
            .map_err(unavailable)?;
        let checkpointer = Checkpointer::start(open()?)?;
        let readers = (0..READERS)
            .map(|_| {
                let conn = open()?;
                configure(&conn)?;
                conn.pragma_update(None, "query_only", true)
                    .map_err(unavailable)?;
                // One read now opens the -wal and -shm files: a reader takes every descriptor it
                // needs at start-up, not when the process may have none left.
                conn.query_row("SELECT count(*) FROM sqlite_master", [], |r| {
                    r.get::<_, i64>(0)
                })
                .map_err(unavailable)?;
                Ok(Mutex::new(conn))
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        Self::start(writer, Some(checkpointer), readers)
    }

    /// A private in-memory database (tests, benchmarks).
    pub fn in_memory() -> Result<Self, StoreError> {
        let conn = Connection::open_in_memory().map_err(unavailable)?;
        Self::start(Self::init(conn)?, None, Vec::new())
    }

    /// Starts the writer on `writer`, with the index of the nonces its database holds. An
    /// in-memory database has no WAL, so no `checkpointer`.
    fn start(
        writer: Connection,
        checkpointer: Option<Checkpointer>,
        readers: Vec<Mutex<Connection>>,
    ) -> Result<Self, StoreError> {
        let now_s = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
        let nonces = NonceIndex::load(&writer, now_s).map_err(unavailable)?;
        Ok(SqliteStore {
            writer: Writer::start(writer, nonces, checkpointer)?,
            readers: Arc::new(readers),
            next_reader: Arc::new(std::sync::atomic::AtomicUsize::new(0)),
            inserts: Arc::new(std::sync::atomic::AtomicU64::new(0)),
        })
    }

    /// Configures the write connection and creates the schema.
    fn init(conn: Connection) -> Result<Connection, StoreError> {
        configure(&conn)?;
        // Switching a new file to WAL takes an exclusive lock for which SQLite does not always call
        // the busy handler, so two processes opening one new file at once can see "database is
        // locked" here: retry for as long as the busy timeout would have waited.
        let started = std::time::Instant::now();
        while let Err(e) = Self::prepare(&conn) {
            if !is_busy(&e) || started.elapsed() > std::time::Duration::from_secs(2) {
                return Err(unavailable(e));
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        Ok(conn)
    }

    /// WAL + NORMAL: a commit is durable against a process crash, and fsyncs only at checkpoints.
    fn prepare(conn: &Connection) -> rusqlite::Result<()> {
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        sqlite_schema::create(conn, sqlite_nonces::SCHEMA)
    }

    /// Whether this nonce insert also sweeps expired nonces (one in [`NONCE_SWEEP_EVERY`]).
    fn sweep_due(&self) -> bool {
        self.inserts
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            .is_multiple_of(NONCE_SWEEP_EVERY)
    }

    /// Runs `f` as one atomic write; it has committed when this returns `Ok`. `f` may run twice
    /// and must only touch the database (see [`Writer::write`]).
    async fn write<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: Fn(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        self.writer.write(f).await
    }

    /// Runs `f` on a read connection, on this thread: the first one free, else waits for one.
    async fn read<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: Fn(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        if self.readers.is_empty() {
            return self.write(f).await;
        }
        let n = self.readers.len();
        let start = self
            .next_reader
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        // A read that panicked leaves its connection as good as before: a poisoned lock is taken.
        let free = (0..n).find_map(|i| match self.readers.get((start + i) % n)?.try_lock() {
            Ok(guard) => Some(guard),
            Err(std::sync::TryLockError::Poisoned(p)) => Some(p.into_inner()),
            Err(std::sync::TryLockError::WouldBlock) => None,
        });
        let guard = match free {
            Some(guard) => guard,
            None => self
                .readers
                .get(start % n)
                .ok_or_else(|| StoreError::Unavailable("no sqlite reader".into()))?
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        };
        f(&guard)
    }
}

/// Settings of every connection: the busy timeout (another process may hold the write lock) and
/// the statement cache.
fn configure(conn: &Connection) -> Result<(), StoreError> {
    conn.busy_timeout(std::time::Duration::from_secs(2))
        .map_err(unavailable)?;
    // Every statement is prepared once and reused (`prepare_cached`): re-parsing the SQL of each
    // call showed in the profiles.
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    // Order and instance keys are random, so their inserts land on random pages of key indexes
    // that hold a retention period's worth of entries (hundreds of thousands at full load). With
    // the default 2 MiB page cache most of those pages were read back with one `pread` each: 14 %
    // of the writer thread's CPU in the load profile (measured when the nonces were keyed too). (A memory map was tried instead: it counts
    // the mapped file in the process's resident size, 637 MiB after a load run, which a
    // container's memory limit would see.)
    conn.pragma_update(None, "cache_size", -PAGE_CACHE_KIB)
        .map_err(unavailable)?;
    Ok(())
}

/// Each connection's private page cache (SQLite's default is 2 MiB); three connections.
const PAGE_CACHE_KIB: i64 = 16 * 1024;

/// SQLITE_BUSY or SQLITE_LOCKED: another connection holds the lock for now.
fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    )
}

fn unavailable(e: rusqlite::Error) -> StoreError {
    StoreError::Unavailable(format!("sqlite: {e}"))
}

fn read_idem(conn: &Connection, key: &str) -> Result<Option<IdemRecord>, StoreError> {
    let row = conn
        .prepare_cached(
            "SELECT status, lease_until, validation, reference, response, expires_at, code
             FROM idempotency WHERE key = ?1",
        )
        .and_then(|mut stmt| {
            stmt.query_row(params![key], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, Option<String>>(4)?,
                    r.get::<_, Option<i64>>(5)?,
                    r.get::<_, Option<String>>(6)?,
                ))
            })
        })
        .optional()
        .map_err(unavailable)?;
    let Some((status, lease_until_ms, validation, reference, response, expires_at, code)) = row
    else {
        return Ok(None);
    };
    let status = IdemStatus::parse(&status).ok_or_else(|| StoreError::Corrupt {
        key: key.to_string(),
        reason: format!("unknown status {status:?}"),
    })?;
    Ok(Some(IdemRecord {
        status,
        lease_until_ms,
        validation,
        reference,
        response,
        code,
        expires_at,
    }))
}

fn decode_instance(key: &str, doc: &str) -> Result<Instance, StoreError> {
    serde_json::from_str(doc).map_err(|e| StoreError::Corrupt {
        key: key.to_string(),
        reason: e.to_string(),
    })
}

/// Takes the idempotency lock inside the writer's transaction: the same decision as DynamoDB's
/// condition expression ([`IdemRecord::can_acquire`]).
fn acquire_on(conn: &Connection, a: &Acquire<'_>) -> Result<AcquireOutcome, StoreError> {
    let existing = read_idem(conn, a.key)?;
    let reference = match &existing {
        Some(rec) if !rec.can_acquire(a) => return Ok(rec.refusal(a)),
        // The first delivery's reference is kept, even across an expired record (D7).
        Some(rec) => rec.reference.clone(),
        None => a.reference.to_string(),
    };
    conn.prepare_cached(
        "INSERT INTO idempotency
           (key, status, owner, lease_until, validation, reference, response, expires_at, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, NULL, ?7, ?8)
         ON CONFLICT(key) DO UPDATE SET
           status = excluded.status, owner = excluded.owner,
           lease_until = excluded.lease_until, validation = excluded.validation,
           response = NULL, code = NULL, expires_at = excluded.expires_at",
    )
    .and_then(|mut stmt| {
        stmt.execute(params![
            a.key,
            IdemStatus::InProgress.as_str(),
            a.owner,
            a.lease_until_ms,
            a.validation,
            reference,
            a.expires_at,
            a.now_ms
        ])
    })
    .map_err(unavailable)?;
    Ok(AcquireOutcome::Acquired { reference })
}

/// Marks the lock COMPLETED with its answer, only while `c.owner` holds it in progress.
fn complete_on(conn: &Connection, c: &Completion<'_>) -> Result<bool, StoreError> {
    let n = conn
        .prepare_cached(
            "UPDATE idempotency SET status = ?1, response = ?2, code = ?7, expires_at = ?3
             WHERE key = ?4 AND owner = ?5 AND status = ?6",
        )
        .and_then(|mut stmt| {
            stmt.execute(params![
                IdemStatus::Completed.as_str(),
                c.response,
                c.expires_at,
                c.key,
                c.owner,
                IdemStatus::InProgress.as_str(),
                c.code
            ])
        })
        .map_err(unavailable)?;
    Ok(n == 1)
}

/// An instance write prepared on the caller's thread (the document serialised there), applied
/// on the writer's.
struct InstanceWrite {
    key: String,
    version: i64,
    state: &'static str,
    doc: String,
    expected_version: Option<u64>,
    events: Vec<EventDraft>,
}

impl InstanceWrite {
    fn new(
        instance: &Instance,
        expected_version: Option<u64>,
        events: &[EventDraft],
    ) -> Result<InstanceWrite, StoreError> {
        let key = keys::instance(instance.partition(), &instance.instance_id);
        let mut stored = instance.clone();
        events::remember_ids(&mut stored.event_ids, events);
        let doc = serde_json::to_string(&stored).map_err(|e| StoreError::Corrupt {
            key: key.clone(),
            reason: e.to_string(),
        })?;
        Ok(InstanceWrite {
            key,
            version: i64::try_from(instance.version).unwrap_or(i64::MAX),
            state: instance.state.as_str(),
            doc,
            expected_version,
            events: events.to_vec(),
        })
    }

    /// Inserts (no expected version) or replaces the expected version, with the events if written.
    fn apply(&self, conn: &Connection) -> Result<VersionedWrite, StoreError> {
        let (key, version, state, doc) = (&self.key, self.version, self.state, &self.doc);
        let n = match self.expected_version {
            None => conn
                .prepare_cached(
                    "INSERT INTO instances (key, version, state, doc) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT(key) DO NOTHING",
                )
                .and_then(|mut stmt| stmt.execute(params![key, version, state, doc]))
                .map_err(unavailable)?,
            Some(expected) => conn
                .prepare_cached(
                    "UPDATE instances SET version = ?2, state = ?3, doc = ?4
                     WHERE key = ?1 AND version = ?5",
                )
                .and_then(|mut stmt| {
                    stmt.execute(params![
                        key,
                        version,
                        state,
                        doc,
                        i64::try_from(expected).unwrap_or(i64::MAX)
                    ])
                })
                .map_err(unavailable)?,
        };
        commit_with_events(conn, n == 1, &self.events)
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn remember_nonce(
        &self,
        key: &str,
        now_s: i64,
        expires_at: i64,
    ) -> Result<bool, StoreError> {
        let key = key.to_string();
        let sweep = self.sweep_due();
        self.writer
            .write_tx(move |tx| sqlite_nonces::insert(tx, &key, now_s, expires_at, sweep))
            .await
    }

    async fn acquire(&self, req: &Acquire<'_>) -> Result<AcquireOutcome, StoreError> {
        let req = OwnedAcquire::from(req);
        self.write(move |conn| acquire_on(conn, &req.borrow()))
            .await
    }

    /// One writer job: the nonce, then (if it was fresh) the lock, in one savepoint.
    async fn acquire_fresh(
        &self,
        nonce: &Nonce<'_>,
        req: &Acquire<'_>,
    ) -> Result<Option<AcquireOutcome>, StoreError> {
        let (key, now_s, expires_at) = (nonce.key.to_string(), nonce.now_s, nonce.expires_at);
        let req = OwnedAcquire::from(req);
        let sweep = self.sweep_due();
        self.writer
            .write_tx(move |tx| {
                if !sqlite_nonces::insert(tx, &key, now_s, expires_at, sweep)? {
                    return Ok(None);
                }
                acquire_on(tx.conn, &req.borrow()).map(Some)
            })
            .await
    }

    async fn complete(
        &self,
        key: &str,
        owner: &str,
        response: &str,
        code: &str,
        expires_at: Option<i64>,
    ) -> Result<bool, StoreError> {
        let completion = OwnedCompletion::from(&Completion {
            key,
            owner,
            response,
            code,
            expires_at,
        });
        self.write(move |conn| complete_on(conn, &completion.borrow()))
            .await
    }

    async fn abandon(&self, key: &str, owner: &str) -> Result<bool, StoreError> {
        let (key, owner) = (key.to_string(), owner.to_string());
        self.write(move |conn| {
            let n = conn
                .prepare_cached(
                    "UPDATE idempotency SET lease_until = 0
                     WHERE key = ?1 AND owner = ?2 AND status = ?3",
                )
                .and_then(|mut stmt| {
                    stmt.execute(params![key, owner, IdemStatus::InProgress.as_str()])
                })
                .map_err(unavailable)?;
            Ok(n == 1)
        })
        .await
    }

    async fn get_instance(
        &self,
        partition: Partition,
        instance_id: &str,
    ) -> Result<Option<Instance>, StoreError> {
        let key = keys::instance(partition, instance_id);
        self.read(move |conn| {
            let doc: Option<String> = conn
                .prepare_cached("SELECT doc FROM instances WHERE key = ?1")
                .and_then(|mut stmt| stmt.query_row(params![key], |r| r.get(0)))
                .optional()
                .map_err(unavailable)?;
            doc.map(|d| decode_instance(&key, &d)).transpose()
        })
        .await
    }

    async fn get_instances(
        &self,
        partition: Partition,
        ids: &[String],
    ) -> Result<Vec<Instance>, StoreError> {
        let wanted: Vec<String> = ids.iter().map(|id| keys::instance(partition, id)).collect();
        self.read(move |conn| {
            let mut stmt = conn
                .prepare_cached("SELECT doc FROM instances WHERE key = ?1")
                .map_err(unavailable)?;
            let mut found = Vec::new();
            for key in &wanted {
                let doc: Option<String> = stmt
                    .query_row(params![key], |r| r.get(0))
                    .optional()
                    .map_err(unavailable)?;
                if let Some(doc) = doc {
                    found.push(decode_instance(key, &doc)?);
                }
            }
            Ok(found)
        })
        .await
    }

    async fn put_instance(
        &self,
        instance: &Instance,
        expected_version: Option<u64>,
        events: &[EventDraft],
    ) -> Result<VersionedWrite, StoreError> {
        let write = InstanceWrite::new(instance, expected_version, events)?;
        self.write(move |conn| write.apply(conn)).await
    }

    /// One writer job: the instance and, only if it was written, the lock's completion.
    async fn put_instance_completing(
        &self,
        instance: &Instance,
        expected_version: Option<u64>,
        events: &[EventDraft],
        completion: &Completion<'_>,
    ) -> Result<(VersionedWrite, bool), StoreError> {
        let write = InstanceWrite::new(instance, expected_version, events)?;
        let completion = OwnedCompletion::from(completion);
        self.write(move |conn| match write.apply(conn)? {
            VersionedWrite::Conflict => Ok((VersionedWrite::Conflict, false)),
            VersionedWrite::Written => complete_on(conn, &completion.borrow())
                .map(|owned| (VersionedWrite::Written, owned)),
        })
        .await
    }

    async fn get_record(&self, key: &str) -> Result<Option<Record>, StoreError> {
        let key = key.to_string();
        self.read(move |conn| {
            conn.prepare_cached("SELECT version, doc FROM records WHERE key = ?1")
                .and_then(|mut stmt| {
                    stmt.query_row(params![key], |r| {
                        Ok(Record {
                            version: u64::try_from(r.get::<_, i64>(0)?).unwrap_or(0),
                            doc: r.get(1)?,
                        })
                    })
                })
                .optional()
                .map_err(unavailable)
        })
        .await
    }

    async fn put_record(
        &self,
        key: &str,
        record: &Record,
        expected_version: Option<u64>,
        events: &[EventDraft],
    ) -> Result<VersionedWrite, StoreError> {
        let (key, doc) = (
            key.to_string(),
            events::doc_with_event_ids(&record.doc, events),
        );
        let version = i64::try_from(record.version).unwrap_or(i64::MAX);
        let events = events.to_vec();
        self.write(move |conn| {
            let n = match expected_version {
                None => conn
                    .prepare_cached("INSERT INTO records (key, version, doc) VALUES (?1, ?2, ?3) ON CONFLICT(key) DO NOTHING")
.and_then(|mut stmt| stmt.execute(params![key, version, doc],))
                    .map_err(unavailable)?,
                Some(expected) => conn
                    .prepare_cached("UPDATE records SET version = ?2, doc = ?3 WHERE key = ?1 AND version = ?4")
.and_then(|mut stmt| stmt.execute(params![key, version, doc, i64::try_from(expected).unwrap_or(i64::MAX)],))
                    .map_err(unavailable)?,
            };
            commit_with_events(conn, n == 1, &events)
        })
        .await
    }

    async fn write_directory(
        &self,
        partition: Partition,
        tenant_id: &str,
        writes: &[DirectoryWrite],
        events: &[EventDraft],
    ) -> Result<(), StoreError> {
        let pk = keys::tenant(partition, tenant_id);
        let writes = writes.to_vec();
        let events = events.to_vec();
        self.write(move |conn| {
            {
                let mut put = conn
                    .prepare_cached(
                        "INSERT INTO directory (pk, sk, doc) VALUES (?1, ?2, ?3) \
                         ON CONFLICT(pk, sk) DO UPDATE SET doc = excluded.doc",
                    )
                    .map_err(unavailable)?;
                let mut delete = conn
                    .prepare_cached("DELETE FROM directory WHERE pk = ?1 AND sk = ?2")
                    .map_err(unavailable)?;
                for w in &writes {
                    match w {
                        DirectoryWrite::Put(item) => put.execute(params![pk, item.sk, item.doc]),
                        DirectoryWrite::Delete { sk } => delete.execute(params![pk, sk]),
                    }
                    .map_err(unavailable)?;
                }
            }
            insert_events(conn, &events)?;
            Ok(())
        })
        .await
    }

    async fn get_directory_item(
        &self,
        partition: Partition,
        tenant_id: &str,
        sk: &str,
    ) -> Result<Option<DirectoryItem>, StoreError> {
        let (pk, sk) = (keys::tenant(partition, tenant_id), sk.to_string());
        self.read(move |conn| {
            conn.prepare_cached("SELECT doc FROM directory WHERE pk = ?1 AND sk = ?2")
                .and_then(|mut stmt| stmt.query_row(params![pk, sk], |r| r.get::<_, String>(0)))
                .optional()
                .map(|doc| {
                    doc.map(|doc| DirectoryItem {
                        sk: sk.clone(),
                        doc,
                    })
                })
                .map_err(unavailable)
        })
        .await
    }

    async fn list_directory(
        &self,
        partition: Partition,
        tenant_id: &str,
        sk_prefix: &str,
    ) -> Result<Vec<DirectoryItem>, StoreError> {
        let (pk, prefix) = (keys::tenant(partition, tenant_id), sk_prefix.to_string());
        self.read(move |conn| {
            // A range on the primary key: every string starting with the prefix sorts between the
            // prefix and the prefix followed by the highest code point.
            let mut stmt = conn
                .prepare_cached(
                    "SELECT sk, doc FROM directory \
                     WHERE pk = ?1 AND sk >= ?2 AND sk < ?2 || char(1114111) ORDER BY sk",
                )
                .map_err(unavailable)?;
            let rows = stmt
                .query_map(params![pk, prefix], |r| {
                    Ok(DirectoryItem {
                        sk: r.get(0)?,
                        doc: r.get(1)?,
                    })
                })
                .map_err(unavailable)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(unavailable)
        })
        .await
    }

    // ---- usage metering -----------------------------------------------------------------------

    async fn list_ids(
        &self,
        kind: crate::Listing,
        partition: Partition,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<String>, StoreError> {
        let prefix = kind.key_prefix(partition);
        // Every prefix ends in '#'; '$' is the next character, so [prefix, upper) is the kind.
        let upper = format!("{}$", prefix.trim_end_matches('#'));
        let lower = format!("{prefix}{}", after.unwrap_or(""));
        let strict = after.is_some();
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let sql = match kind {
            crate::Listing::Instances => {
                "SELECT key FROM instances WHERE (key > ?1 OR (?4 = 0 AND key = ?1)) AND key < ?2 ORDER BY key LIMIT ?3"
            }
            crate::Listing::Licenses | crate::Listing::Notifications => {
                "SELECT key FROM records WHERE (key > ?1 OR (?4 = 0 AND key = ?1)) AND key < ?2 ORDER BY key LIMIT ?3"
            }
            crate::Listing::Tenants => {
                "SELECT pk FROM directory WHERE sk = 'tenant' AND (pk > ?1 OR (?4 = 0 AND pk = ?1)) AND pk < ?2 ORDER BY pk LIMIT ?3"
            }
        };
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(sql).map_err(unavailable)?;
            let rows = stmt
                .query_map(params![lower, upper, limit, strict], |r| {
                    r.get::<_, String>(0)
                })
                .map_err(unavailable)?;
            let mut ids = Vec::new();
            for key in rows {
                let key = key.map_err(unavailable)?;
                if let Some(id) = key.strip_prefix(prefix.as_str()) {
                    ids.push(id.to_string());
                }
            }
            Ok(ids)
        })
        .await
    }

    async fn record_events(&self, events: &[EventDraft]) -> Result<(), StoreError> {
        let events = events.to_vec();
        self.write(move |conn| {
            insert_events(conn, &events)?;
            Ok(())
        })
        .await
    }

    async fn due_events(&self, now_ms: i64, limit: usize) -> Result<Vec<EventRecord>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.read(move |conn| {
            let mut stmt = conn
                .prepare_cached(&format!(
                    "SELECT {EVENT_COLUMNS} FROM events
                     WHERE state = 'pending' AND next_attempt <= ?1
                     ORDER BY next_attempt, id LIMIT ?2"
                ))
                .map_err(unavailable)?;
            let rows = stmt
                .query_map(params![now_ms, limit], event_from_row)
                .map_err(unavailable)?;
            rows.map(|r| r.map_err(unavailable)?).collect()
        })
        .await
    }

    async fn settle_event(
        &self,
        event: &EventRecord,
        settlement: &EventSettlement,
    ) -> Result<(), StoreError> {
        let next = settlement.apply(event);
        self.write(move |conn| {
            conn.prepare_cached(
                "UPDATE events SET state = ?2, attempts = attempts + 1, next_attempt = ?3,
                        last_error = ?4, updated_at = ?5 WHERE id = ?1",
            )
            .and_then(|mut stmt| {
                stmt.execute(params![
                    next.id,
                    next.state.as_str(),
                    next.next_attempt_ms,
                    next.last_error,
                    next.updated_at_ms
                ])
            })
            .map_err(unavailable)?;
            Ok(())
        })
        .await
    }

    async fn get_event(&self, id: &str) -> Result<Option<EventRecord>, StoreError> {
        let id = id.to_string();
        self.read(move |conn| {
            conn.query_row(
                &format!("SELECT {EVENT_COLUMNS} FROM events WHERE id = ?1"),
                params![id],
                event_from_row,
            )
            .optional()
            .map_err(unavailable)?
            .transpose()
        })
        .await
    }

    async fn list_events(&self, query: &EventQuery) -> Result<Vec<EventRecord>, StoreError> {
        let limit = i64::try_from(query.limit()).unwrap_or(i64::MAX);
        let failed_only = query.failed_only;
        let instance = query.instance_id.clone();
        self.read(move |conn| {
            let mut stmt = conn
                .prepare_cached(&format!(
                    "SELECT {EVENT_COLUMNS} FROM events
                     WHERE (?1 = 0 OR state = 'failed') AND (?2 IS NULL OR instance_id = ?2)
                     ORDER BY id DESC LIMIT ?3"
                ))
                .map_err(unavailable)?;
            let rows = stmt
                .query_map(params![failed_only, instance, limit], event_from_row)
                .map_err(unavailable)?;
            rows.map(|r| r.map_err(unavailable)?).collect()
        })
        .await
    }

    async fn record_usage(&self, data: &UsageData) -> Result<UsageInsert, StoreError> {
        self.sqlite_record_usage(data).await
    }

    async fn claim_usage(&self, claim: &UsageClaim<'_>) -> Result<Vec<UsageRecord>, StoreError> {
        self.sqlite_claim_usage(claim).await
    }

    async fn settle_usage(
        &self,
        owner: &str,
        keys: &[UsageKey],
        settlement: &UsageSettlement,
    ) -> Result<usize, StoreError> {
        self.sqlite_settle_usage(owner, keys, settlement).await
    }

    async fn instance_usage(&self, instance_id: &str) -> Result<Vec<UsageRecord>, StoreError> {
        self.sqlite_instance_usage(instance_id).await
    }

    async fn requeue_usage(
        &self,
        current_sn: &str,
        replacement: &UsageData,
    ) -> Result<bool, StoreError> {
        self.sqlite_requeue_usage(current_sn, replacement).await
    }

    async fn usage_backlog(
        &self,
        due_end_time: &str,
        now_ms: i64,
    ) -> Result<UsageBacklog, StoreError> {
        self.sqlite_usage_backlog(due_end_time, now_ms).await
    }
}

/// The columns [`usage_from_row`] reads, in order.
const USAGE_COLUMNS: &str =
    "instance_id, begin_time, end_time, status, attempts, failure, settled_at, doc";

const EVENT_COLUMNS: &str =
    "id, type, instance_id, body, state, attempts, next_attempt, last_error, created_at, updated_at";

fn event_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Result<EventRecord, StoreError>> {
    let id: String = r.get(0)?;
    let state: String = r.get(4)?;
    let Some(state) = EventState::parse(&state) else {
        return Ok(Err(StoreError::Corrupt {
            key: format!("events/{id}"),
            reason: format!("unknown state {state:?}"),
        }));
    };
    Ok(Ok(EventRecord {
        event_type: r.get(1)?,
        instance_id: r.get(2)?,
        body: r.get(3)?,
        state,
        attempts: u32::try_from(r.get::<_, i64>(5)?).unwrap_or(u32::MAX),
        next_attempt_ms: r.get(6)?,
        last_error: r.get(7)?,
        created_at_ms: r.get(8)?,
        updated_at_ms: r.get(9)?,
        id,
    }))
}

/// Inserts `events` as pending (an id recorded before stays as it is).
fn insert_events(conn: &Connection, events: &[EventDraft]) -> Result<(), StoreError> {
    if events.is_empty() {
        return Ok(());
    }
    let mut insert = conn
        .prepare_cached(
            "INSERT INTO events (id, type, instance_id, body, state, attempts, next_attempt,
                                 created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, 'pending', 0, ?5, ?5, ?5) ON CONFLICT(id) DO NOTHING",
        )
        .map_err(unavailable)?;
    for e in events {
        insert
            .execute(params![
                e.id,
                e.event_type,
                e.instance_id,
                e.body,
                e.created_at_ms
            ])
            .map_err(unavailable)?;
    }
    Ok(())
}

/// Commits a conditional write and, when it happened (`written`), its events: both or neither.
fn commit_with_events(
    conn: &Connection,
    written: bool,
    events: &[EventDraft],
) -> Result<VersionedWrite, StoreError> {
    if !written {
        return Ok(VersionedWrite::Conflict);
    }
    insert_events(conn, events)?;
    Ok(VersionedWrite::Written)
}

fn usage_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<UsageRow> {
    Ok((
        format!(
            "usage#{}/{}#{}",
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?
        ),
        r.get(3)?,
        u32::try_from(r.get::<_, i64>(4)?).unwrap_or(u32::MAX),
        r.get(5)?,
        r.get(6)?,
        r.get(7)?,
    ))
}

type UsageRow = (String, String, u32, Option<String>, Option<i64>, String);

fn decode_usage(
    (key, status, attempts, failure, settled_at_ms, doc): UsageRow,
) -> Result<UsageRecord, StoreError> {
    let corrupt = |reason: String| StoreError::Corrupt {
        key: key.clone(),
        reason,
    };
    let data: UsageData = serde_json::from_str(&doc).map_err(|e| corrupt(e.to_string()))?;
    let status =
        UsageStatus::parse(&status).ok_or_else(|| corrupt(format!("unknown status {status:?}")))?;
    Ok(UsageRecord {
        data,
        status,
        failure,
        attempts,
        settled_at_ms,
    })
}

impl SqliteStore {
    pub(crate) async fn sqlite_record_usage(
        &self,
        data: &UsageData,
    ) -> Result<UsageInsert, StoreError> {
        let doc = serde_json::to_string(data).map_err(|e| StoreError::Corrupt {
            key: crate::keys::usage(&data.instance_id),
            reason: e.to_string(),
        })?;
        let data = data.clone();
        self.write(move |conn| {
            let n = conn
                .prepare_cached("INSERT INTO usage (instance_id, begin_time, end_time, status, doc)
                     VALUES (?1, ?2, ?3, 'pending', ?4) ON CONFLICT DO NOTHING")
.and_then(|mut stmt| stmt.execute(params![data.instance_id, data.begin_time, data.end_time, doc],))
                .map_err(unavailable)?;
            let out = if n == 1 {
                UsageInsert::Recorded
            } else {
                let row = conn
                    .query_row(
                        &format!("SELECT {USAGE_COLUMNS} FROM usage WHERE instance_id = ?1 AND begin_time = ?2 AND end_time = ?3"),
                        params![data.instance_id, data.begin_time, data.end_time],
                        usage_from_row,
                    )
                    .map_err(unavailable)?;
                UsageInsert::Exists(Box::new(decode_usage(row)?))
            };
            Ok(out)
        })
        .await
    }

    pub(crate) async fn sqlite_claim_usage(
        &self,
        claim: &UsageClaim<'_>,
    ) -> Result<Vec<UsageRecord>, StoreError> {
        let owner = claim.owner.to_string();
        let due = claim.due_end_time.to_string();
        let (now_ms, lease) = (claim.now_ms, claim.lease_until_ms);
        let limit = i64::try_from(claim.limit).unwrap_or(i64::MAX);
        self.write(move |conn| {
            let rows: Vec<UsageRow> = {
                let mut stmt = conn
                    .prepare_cached(&format!(
                        "SELECT {USAGE_COLUMNS} FROM usage
                         WHERE status = 'pending' AND end_time <= ?1 AND lease_until < ?2
                         ORDER BY end_time LIMIT ?3"
                    ))
                    .map_err(unavailable)?;
                let it = stmt
                    .query_map(params![due, now_ms, limit], usage_from_row)
                    .map_err(unavailable)?;
                it.collect::<Result<_, _>>().map_err(unavailable)?
            };
            let mut out = Vec::with_capacity(rows.len());
            {
                let mut upd = conn
                    .prepare_cached(
                        "UPDATE usage SET owner = ?1, lease_until = ?2, attempts = attempts + 1
                         WHERE instance_id = ?3 AND begin_time = ?4 AND end_time = ?5",
                    )
                    .map_err(unavailable)?;
                for row in rows {
                    let mut rec = decode_usage(row)?;
                    upd.execute(params![
                        owner,
                        lease,
                        rec.data.instance_id,
                        rec.data.begin_time,
                        rec.data.end_time
                    ])
                    .map_err(unavailable)?;
                    rec.attempts = rec.attempts.saturating_add(1);
                    out.push(rec);
                }
            }
            Ok(out)
        })
        .await
    }

    pub(crate) async fn sqlite_settle_usage(
        &self,
        owner: &str,
        keys: &[UsageKey],
        settlement: &UsageSettlement,
    ) -> Result<usize, StoreError> {
        let owner = owner.to_string();
        let keys = keys.to_vec();
        let settlement = settlement.clone();
        self.write(move |conn| {
            let mut settled = 0;
            {
                let sql = match settlement {
                    UsageSettlement::Pushed { .. } => {
                        "UPDATE usage SET status = 'pushed', settled_at = ?1, failure = NULL
                         WHERE instance_id = ?2 AND begin_time = ?3 AND end_time = ?4
                           AND owner = ?5 AND status = 'pending'"
                    }
                    UsageSettlement::Failed { .. } => {
                        "UPDATE usage SET status = 'failed', settled_at = ?1, failure = ?6
                         WHERE instance_id = ?2 AND begin_time = ?3 AND end_time = ?4
                           AND owner = ?5 AND status = 'pending'"
                    }
                    UsageSettlement::Retry { .. } => {
                        "UPDATE usage SET lease_until = ?1, owner = ''
                         WHERE instance_id = ?2 AND begin_time = ?3 AND end_time = ?4
                           AND owner = ?5 AND status = 'pending'"
                    }
                };
                let mut stmt = conn.prepare_cached(sql).map_err(unavailable)?;
                for k in &keys {
                    let n = match &settlement {
                        UsageSettlement::Pushed { at_ms } => stmt.execute(params![
                            at_ms,
                            k.instance_id,
                            k.begin_time,
                            k.end_time,
                            owner
                        ]),
                        UsageSettlement::Failed { code, at_ms } => stmt.execute(params![
                            at_ms,
                            k.instance_id,
                            k.begin_time,
                            k.end_time,
                            owner,
                            code
                        ]),
                        UsageSettlement::Retry { not_before_ms } => stmt.execute(params![
                            not_before_ms,
                            k.instance_id,
                            k.begin_time,
                            k.end_time,
                            owner
                        ]),
                    }
                    .map_err(unavailable)?;
                    settled += n;
                }
            }
            Ok(settled)
        })
        .await
    }

    pub(crate) async fn sqlite_requeue_usage(
        &self,
        current_sn: &str,
        replacement: &UsageData,
    ) -> Result<bool, StoreError> {
        let doc = serde_json::to_string(replacement).map_err(|e| StoreError::Corrupt {
            key: crate::keys::usage(&replacement.instance_id),
            reason: e.to_string(),
        })?;
        let data = replacement.clone();
        let sn = current_sn.to_string();
        self.write(move |conn| {
            let n = conn
                .prepare_cached(
                    "UPDATE usage SET doc = ?1, status = 'pending', owner = '', lease_until = 0,
                            attempts = 0, failure = NULL, settled_at = NULL
                     WHERE instance_id = ?2 AND begin_time = ?3 AND end_time = ?4
                       AND status = 'failed' AND json_extract(doc, '$.metering_sn') = ?5",
                )
                .and_then(|mut stmt| {
                    stmt.execute(params![
                        doc,
                        data.instance_id,
                        data.begin_time,
                        data.end_time,
                        sn
                    ])
                })
                .map_err(unavailable)?;
            Ok(n == 1)
        })
        .await
    }

    pub(crate) async fn sqlite_usage_backlog(
        &self,
        due_end_time: &str,
        now_ms: i64,
    ) -> Result<UsageBacklog, StoreError> {
        let due = due_end_time.to_string();
        self.read(move |conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT end_time, owner, lease_until, attempts FROM usage
                     WHERE status = 'pending' AND end_time <= ?1",
                )
                .map_err(unavailable)?;
            let rows = stmt
                .query_map(params![due], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, i64>(2)?,
                        r.get::<_, i64>(3)?,
                    ))
                })
                .map_err(unavailable)?;
            let mut out = UsageBacklog::default();
            for row in rows {
                let (end, owner, lease, attempts) = row.map_err(unavailable)?;
                let attempts = u32::try_from(attempts).unwrap_or(u32::MAX);
                out.add(&end, Some(&owner), lease, attempts, now_ms);
            }
            Ok(out)
        })
        .await
    }

    pub(crate) async fn sqlite_instance_usage(
        &self,
        instance_id: &str,
    ) -> Result<Vec<UsageRecord>, StoreError> {
        let id = instance_id.to_string();
        self.read(move |conn| {
            let mut stmt = conn
                .prepare_cached(&format!(
                    "SELECT {USAGE_COLUMNS} FROM usage WHERE instance_id = ?1 ORDER BY begin_time, end_time"
                ))
                .map_err(unavailable)?;
            let rows: Vec<UsageRow> = stmt
                .query_map(params![id], usage_from_row)
                .map_err(unavailable)?
                .collect::<Result<_, _>>()
                .map_err(unavailable)?;
            rows.into_iter().map(decode_usage).collect()
        })
        .await
    }
}

/// An [`Acquire`] that can move to the writer thread.
struct OwnedAcquire {
    key: String,
    owner: String,
    lease_until_ms: i64,
    validation: String,
    reference: String,
    expires_at: Option<i64>,
    now_ms: i64,
}

impl OwnedAcquire {
    fn from(a: &Acquire<'_>) -> Self {
        OwnedAcquire {
            key: a.key.to_string(),
            owner: a.owner.to_string(),
            lease_until_ms: a.lease_until_ms,
            validation: a.validation.to_string(),
            reference: a.reference.to_string(),
            expires_at: a.expires_at,
            now_ms: a.now_ms,
        }
    }

    fn borrow(&self) -> Acquire<'_> {
        Acquire {
            key: &self.key,
            owner: &self.owner,
            lease_until_ms: self.lease_until_ms,
            validation: &self.validation,
            reference: &self.reference,
            expires_at: self.expires_at,
            now_ms: self.now_ms,
        }
    }
}

/// A [`Completion`] that can move to the writer thread.
struct OwnedCompletion {
    key: String,
    owner: String,
    response: String,
    code: String,
    expires_at: Option<i64>,
}

impl OwnedCompletion {
    fn from(c: &Completion<'_>) -> Self {
        OwnedCompletion {
            key: c.key.to_string(),
            owner: c.owner.to_string(),
            response: c.response.to_string(),
            code: c.code.to_string(),
            expires_at: c.expires_at,
        }
    }

    fn borrow(&self) -> Completion<'_> {
        Completion {
            key: &self.key,
            owner: &self.owner,
            response: &self.response,
            code: &self.code,
            expires_at: self.expires_at,
        }
    }
}
