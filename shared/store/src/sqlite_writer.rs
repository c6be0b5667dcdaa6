//! The SQLite backend's writer: one thread owns the write connection and commits the writes of
//! many concurrent callers in one transaction (group commit).
//!
//! SQLite admits one writer at a time, so the writes of all requests are serialised anyway; what
//! costs is everything around them — a hop to a blocking thread, a mutex, and one `BEGIN
//! IMMEDIATE … COMMIT` per write. Here a caller sends its write as a job over a channel; the
//! thread takes every job waiting (up to [`MAX_BATCH`]), opens one transaction, runs each job in
//! its own savepoint, commits once, and only then answers each caller.
//!
//! Why this is as safe as one transaction per write:
//!
//! * A job is atomic on its own: it runs inside `SAVEPOINT`, and a job that fails (or panics) is
//!   rolled back to it, leaving the other jobs' writes alone.
//! * No caller hears "written" before the commit: answers are sent after `COMMIT` succeeded; if
//!   it fails, the transaction is rolled back and every caller of the batch gets the error. So
//!   "an event exists if and only if its change committed" and the idempotency states hold as
//!   before: what a caller was told is what is on disk.
//! * A job that reads sees the writes of the jobs before it in the same batch. That is what it
//!   would have seen had those committed first, and they commit together with it or not at all.
//!
//! The thread also owns the replay guard's in-memory index ([`NonceIndex`]): a job gets both
//! ([`Tx`]), and whatever rolls back a job's or a batch's writes rolls back its nonces too.

use std::panic::AssertUnwindSafe;
use std::sync::mpsc;

use rusqlite::Connection;

use crate::sqlite_checkpoint::Checkpointer;
use crate::sqlite_nonces::NonceIndex;
use crate::StoreError;

/// Jobs committed together at most (bounds how long the first caller of a batch waits).
const MAX_BATCH: usize = 64;

/// Delivers a job's result once the batch's fate is known.
type Finish = Box<dyn FnOnce(Result<(), StoreError>) + Send>;

/// One write: runs in the writer's transaction (or learns why it could not, `Err`). Returns how
/// to deliver its result, and whether it left the transaction clean (see [`in_savepoint`]).
type Job = Box<dyn FnOnce(Result<&mut Tx<'_>, StoreError>) -> (Finish, bool) + Send>;

/// What a write job runs on: the write connection, inside the batch's transaction and the job's
/// savepoint, and the replay guard's index, whose changes follow the same rollbacks.
pub(crate) struct Tx<'a> {
    pub(crate) conn: &'a Connection,
    pub(crate) nonces: &'a mut NonceIndex,
}

/// The handle callers write through. Cheap to clone; the thread stops when the last is dropped.
#[derive(Clone)]
pub(crate) struct Writer {
    jobs: mpsc::Sender<Job>,
}

impl Writer {
    /// Moves `conn` and `nonces` (the index of the nonces `conn`'s database holds) to a new
    /// writer thread. With a `checkpointer`, the writer nudges it after every commit (see
    /// [`crate::sqlite_checkpoint`]); it stops with the writer.
    pub(crate) fn start(
        conn: Connection,
        nonces: NonceIndex,
        checkpointer: Option<Checkpointer>,
    ) -> Result<Writer, StoreError> {
        let (jobs, queue) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("koogate-sqlite-writer".into())
            .spawn(move || run(&conn, nonces, &queue, checkpointer.as_ref()))
            .map_err(|e| StoreError::Unavailable(format!("cannot start the sqlite writer: {e}")))?;
        Ok(Writer { jobs })
    }

    /// Runs `f` as one atomic write, committed (possibly with other callers' writes) before this
    /// returns `Ok`.
    pub(crate) async fn write<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        self.write_tx(move |tx| f(tx.conn)).await
    }

    /// [`Writer::write`] for a write that also records nonces ([`Tx::nonces`]).
    pub(crate) async fn write_tx<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Tx<'_>) -> Result<T, StoreError> + Send + 'static,
    {
        let (answer, answered) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move |tx: Result<&mut Tx<'_>, StoreError>| {
            let (result, clean) = match tx {
                Ok(tx) => in_savepoint(tx, f),
                Err(e) => (Err(e), true),
            };
            let finish: Finish = Box::new(move |committed: Result<(), StoreError>| {
                let _ = answer.send(committed.and(result));
            });
            (finish, clean)
        });
        self.jobs
            .send(job)
            .map_err(|_| StoreError::Unavailable("the sqlite writer has stopped".into()))?;
        answered
            .await
            .map_err(|_| StoreError::Unavailable("the sqlite writer dropped the write".into()))?
    }
}

/// The writer thread: batches until every handle is gone.
fn run(
    conn: &Connection,
    mut nonces: NonceIndex,
    queue: &mpsc::Receiver<Job>,
    checkpointer: Option<&Checkpointer>,
) {
    while let Ok(first) = queue.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        if let Err(e) = execute(conn, "BEGIN IMMEDIATE") {
            for job in batch {
                let (finish, _) = job(Err(e.clone()));
                finish(Ok(()));
            }
            continue;
        }
        let mut clean = true;
        let mut finishes = Vec::with_capacity(batch.len());
        let batch_start = nonces.mark();
        let mut tx = Tx {
            conn,
            nonces: &mut nonces,
        };
        for job in batch {
            let (finish, job_clean) = job(Ok(&mut tx));
            clean &= job_clean;
            finishes.push(finish);
        }
        let committed = if clean {
            execute(conn, "COMMIT")
        } else {
            Err(StoreError::Unavailable(
                "sqlite: a failed write could not be rolled back alone; the batch was".into(),
            ))
        };
        if committed.is_err() {
            let _ = execute(conn, "ROLLBACK");
            nonces.rollback_to(batch_start);
        } else if let Some(checkpointer) = checkpointer {
            checkpointer.nudge();
        }
        nonces.settle();
        for finish in finishes {
            finish(committed.clone());
        }
    }
}

/// Runs `f` inside a savepoint: released when it succeeds, rolled back when it fails or panics.
/// The flag is `false` when a failed job's writes could not be rolled back: they would commit
/// with the batch although its caller hears of a failure, so the whole batch must be rolled back.
fn in_savepoint<T>(
    tx: &mut Tx<'_>,
    f: impl FnOnce(&mut Tx<'_>) -> Result<T, StoreError>,
) -> (Result<T, StoreError>, bool) {
    let conn = tx.conn;
    if let Err(e) = execute(conn, "SAVEPOINT job") {
        return (Err(e), true);
    }
    let mark = tx.nonces.mark();
    let result = std::panic::catch_unwind(AssertUnwindSafe(|| f(tx))).unwrap_or_else(|_| {
        Err(StoreError::Unavailable(
            "a sqlite write panicked; it was rolled back".into(),
        ))
    });
    let result = match result {
        Ok(value) => execute(conn, "RELEASE job").map(|()| value),
        Err(e) => Err(e),
    };
    match result {
        Ok(value) => (Ok(value), true),
        Err(e) => {
            tx.nonces.rollback_to(mark);
            let clean = execute(conn, "ROLLBACK TO job")
                .and_then(|()| execute(conn, "RELEASE job"))
                .is_ok();
            (Err(e), clean)
        }
    }
}

/// One statement without results, prepared once per connection.
fn execute(conn: &Connection, sql: &str) -> Result<(), StoreError> {
    conn.prepare_cached(sql)
        .and_then(|mut stmt| stmt.execute([]))
        .map(|_| ())
        .map_err(|e| StoreError::Unavailable(format!("sqlite: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn writer() -> Writer {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE t (k TEXT PRIMARY KEY)")
            .unwrap();
        Writer::start(conn, NonceIndex::default(), None).unwrap()
    }

    async fn insert(w: &Writer, k: &'static str) -> Result<(), StoreError> {
        w.write(move |c| {
            c.execute("INSERT INTO t (k) VALUES (?1)", [k])
                .map(|_| ())
                .map_err(|e| StoreError::Unavailable(e.to_string()))
        })
        .await
    }

    async fn keys(w: &Writer) -> Vec<String> {
        w.write(|c| {
            let mut stmt = c.prepare("SELECT k FROM t ORDER BY k").unwrap();
            let rows = stmt.query_map([], |r| r.get(0)).unwrap();
            Ok(rows.map(Result::unwrap).collect())
        })
        .await
        .unwrap()
    }

    /// A write that fails or panics in a batch is rolled back alone; the others of its batch
    /// commit, and the writer goes on.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failing_or_panicking_write_is_rolled_back_alone() {
        let w = writer();
        // Hold the writer so that the next writes queue up and are committed as one batch.
        let hold = w.write(|_| {
            std::thread::sleep(std::time::Duration::from_millis(100));
            Ok(())
        });
        let fails = w.write(|c| {
            c.execute("INSERT INTO t (k) VALUES ('failed')", [])
                .unwrap();
            Err::<(), _>(StoreError::Unavailable("refused".into()))
        });
        let panics = w.write(|c| -> Result<(), StoreError> {
            c.execute("INSERT INTO t (k) VALUES ('panicked')", [])
                .unwrap();
            panic!("a bug in a write");
        });
        let (held, a, failed, panicked, b) =
            tokio::join!(hold, insert(&w, "a"), fails, panics, insert(&w, "b"));
        held.unwrap();
        a.unwrap();
        b.unwrap();
        assert!(matches!(failed, Err(StoreError::Unavailable(m)) if m == "refused"));
        assert!(matches!(panicked, Err(StoreError::Unavailable(m)) if m.contains("panicked")));
        assert_eq!(keys(&w).await, ["a", "b"]);
    }

    /// A write that records a nonce and then fails forgets the nonce with its other writes: the
    /// nonce is fresh to the next write.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failed_write_forgets_its_nonces() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(crate::sqlite_nonces::SCHEMA).unwrap();
        let w = Writer::start(conn, NonceIndex::default(), None).unwrap();
        let record = |fail: bool| {
            w.write_tx(move |tx| {
                let fresh = crate::sqlite_nonces::insert(tx, "n#1", 100, 220, false)?;
                if fail {
                    return Err(StoreError::Unavailable("refused".into()));
                }
                Ok(fresh)
            })
        };
        assert!(record(true).await.is_err());
        assert!(record(false).await.unwrap(), "fresh after the failed write");
        assert!(!record(false).await.unwrap(), "seen once committed");
    }

    /// Many concurrent writers: every write that was answered `Ok` is there, once.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_writes_all_commit() {
        let w = writer();
        let names: Vec<&'static str> = (0..300)
            .map(|i| &*Box::leak(format!("k{i:03}").into_boxed_str()))
            .collect();
        let tasks: Vec<_> = names
            .iter()
            .map(|&k| {
                let w = w.clone();
                tokio::spawn(async move { insert(&w, k).await })
            })
            .collect();
        for task in tasks {
            task.await.unwrap().unwrap();
        }
        assert_eq!(keys(&w).await.len(), 300);
        // A duplicate key fails alone.
        assert!(insert(&w, "k000").await.is_err());
        assert_eq!(keys(&w).await.len(), 300);
    }
}
