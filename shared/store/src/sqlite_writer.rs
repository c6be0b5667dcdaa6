//! The SQLite backend's writer: one thread owns the write connection and commits the writes of
//! many concurrent callers in one transaction (group commit).
//!
//! SQLite admits one writer at a time, so the writes of all requests are serialised anyway; what
//! costs is everything around them — a hop to a blocking thread, a mutex, and one `BEGIN
//! IMMEDIATE … COMMIT` per write. Here a caller sends its write as a job over a channel; the
//! thread takes every job waiting (up to [`MAX_BATCH`]), runs them all in one transaction,
//! commits once, and only then answers each caller.
//!
//! A batch runs in two passes at most:
//!
//! * **Optimistically:** every job one after the other, with nothing around it. Nearly always
//!   every job succeeds and the batch commits. (A savepoint per job cost a first newInstance 8–10 %
//!   of its throughput in the load run: SQLite copies each page a savepoint's job changes into a
//!   sub-journal before changing it.)
//! * **Carefully,** only when a job failed or panicked in the first pass: the batch is rolled
//!   back, and every job runs again, each in its own savepoint, so that a job that fails again
//!   is rolled back alone while the others commit. Jobs are `Fn` so that they can run twice; a
//!   job only reads and writes the database (and the nonce index), so a run that was rolled back
//!   left nothing behind.
//!
//! Why this is as safe as one transaction per write:
//!
//! * A job is atomic on its own: the second pass rolls a failed job back to its savepoint,
//!   leaving the other jobs' writes alone.
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

/// One write as the writer thread sees it: run (once or twice, see the module doc), then told
/// whether its batch committed.
trait Job: Send {
    /// Runs the write in the current transaction; `false` if it failed or panicked. Each run
    /// replaces the result of the one before.
    fn run(&mut self, tx: &mut Tx<'_>) -> bool;

    /// Makes the result `e`: the writes of its last run were rolled back, or it did not run.
    fn fail(&mut self, e: StoreError);

    /// Answers the caller: the last run's result if the batch `committed`, else the error.
    fn finish(self: Box<Self>, committed: Result<(), StoreError>);
}

/// A caller's write `f` and where its answer goes.
struct Write<T, F> {
    f: F,
    result: Result<T, StoreError>,
    answer: tokio::sync::oneshot::Sender<Result<T, StoreError>>,
}

impl<T, F> Job for Write<T, F>
where
    T: Send,
    F: Fn(&mut Tx<'_>) -> Result<T, StoreError> + Send,
{
    fn run(&mut self, tx: &mut Tx<'_>) -> bool {
        let f = &self.f;
        self.result = std::panic::catch_unwind(AssertUnwindSafe(|| f(tx))).unwrap_or_else(|_| {
            Err(StoreError::Unavailable(
                "a sqlite write panicked; it was rolled back".into(),
            ))
        });
        self.result.is_ok()
    }

    fn fail(&mut self, e: StoreError) {
        self.result = Err(e);
    }

    fn finish(self: Box<Self>, committed: Result<(), StoreError>) {
        let _ = self.answer.send(committed.and(self.result));
    }
}

/// What a write job runs on: the write connection, inside the batch's transaction (and, in the
/// second pass, the job's savepoint), and the replay guard's index, whose changes follow the
/// same rollbacks.
pub(crate) struct Tx<'a> {
    pub(crate) conn: &'a Connection,
    pub(crate) nonces: &'a mut NonceIndex,
}

/// The handle callers write through. Cheap to clone; the thread stops when the last is dropped.
#[derive(Clone)]
pub(crate) struct Writer {
    jobs: mpsc::Sender<Box<dyn Job>>,
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
        let (jobs, queue) = mpsc::channel::<Box<dyn Job>>();
        std::thread::Builder::new()
            .name("koogate-sqlite-writer".into())
            .spawn(move || run(&conn, nonces, &queue, checkpointer.as_ref()))
            .map_err(|e| StoreError::Unavailable(format!("cannot start the sqlite writer: {e}")))?;
        Ok(Writer { jobs })
    }

    /// Runs `f` as one atomic write, committed (possibly with other callers' writes) before this
    /// returns `Ok`. `f` may run twice (see the module doc), the first run rolled back: it must
    /// only read and write the database (and the nonce index), nothing a rollback cannot undo.
    pub(crate) async fn write<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: Fn(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        self.write_tx(move |tx| f(tx.conn)).await
    }

    /// [`Writer::write`] for a write that also records nonces ([`Tx::nonces`]).
    pub(crate) async fn write_tx<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: Fn(&mut Tx<'_>) -> Result<T, StoreError> + Send + 'static,
    {
        let (answer, answered) = tokio::sync::oneshot::channel();
        let job = Box::new(Write {
            f,
            result: Err(StoreError::Unavailable(
                "the sqlite write did not run".into(),
            )),
            answer,
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
    queue: &mpsc::Receiver<Box<dyn Job>>,
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
        let mut tx = Tx {
            conn,
            nonces: &mut nonces,
        };
        let committed = match commit_optimistically(&mut tx, &mut batch) {
            Some(committed) => committed,
            None => commit_carefully(&mut tx, &mut batch),
        };
        if committed.is_ok() {
            if let Some(checkpointer) = checkpointer {
                checkpointer.nudge();
            }
        }
        nonces.settle();
        for job in batch {
            job.finish(committed.clone());
        }
    }
}

/// The first pass: every job in one transaction, nothing around each. `None` when a job failed:
/// the transaction and the nonces are then rolled back, for [`commit_carefully`].
fn commit_optimistically(
    tx: &mut Tx<'_>,
    batch: &mut [Box<dyn Job>],
) -> Option<Result<(), StoreError>> {
    if let Err(e) = execute(tx.conn, "BEGIN IMMEDIATE") {
        return Some(Err(e));
    }
    let start = tx.nonces.mark();
    if batch.iter_mut().all(|job| job.run(tx)) {
        return Some(end(tx, start, true));
    }
    let _ = execute(tx.conn, "ROLLBACK");
    tx.nonces.rollback_to(start);
    None
}

/// The second pass: every job again, each in its own savepoint, so that one that fails is
/// rolled back alone.
fn commit_carefully(tx: &mut Tx<'_>, batch: &mut [Box<dyn Job>]) -> Result<(), StoreError> {
    execute(tx.conn, "BEGIN IMMEDIATE")?;
    let start = tx.nonces.mark();
    let mut clean = true;
    for job in batch.iter_mut() {
        clean &= in_savepoint(tx, job.as_mut());
    }
    end(tx, start, clean)
}

/// Commits the transaction if it is `clean`; otherwise, or if the commit fails, rolls it and the
/// nonces recorded since `start` back.
fn end(tx: &mut Tx<'_>, start: usize, clean: bool) -> Result<(), StoreError> {
    let committed = if clean {
        execute(tx.conn, "COMMIT")
    } else {
        Err(StoreError::Unavailable(
            "sqlite: a failed write could not be rolled back alone; the batch was".into(),
        ))
    };
    if committed.is_err() {
        let _ = execute(tx.conn, "ROLLBACK");
        tx.nonces.rollback_to(start);
    }
    committed
}

/// Runs `job` inside a savepoint: released when it succeeds, rolled back when it fails or
/// panics. `false` when a failed job's writes could not be rolled back: they would commit with
/// the batch although its caller hears of a failure, so the whole batch must be rolled back.
fn in_savepoint(tx: &mut Tx<'_>, job: &mut dyn Job) -> bool {
    if let Err(e) = execute(tx.conn, "SAVEPOINT job") {
        job.fail(e);
        return true;
    }
    let mark = tx.nonces.mark();
    if job.run(tx) {
        match execute(tx.conn, "RELEASE job") {
            Ok(()) => return true,
            Err(e) => job.fail(e),
        }
    }
    tx.nonces.rollback_to(mark);
    execute(tx.conn, "ROLLBACK TO job")
        .and_then(|()| execute(tx.conn, "RELEASE job"))
        .is_ok()
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

    /// A batch runs each write once; a failing write makes the batch run again (the writes
    /// before it twice, those after it, which the first pass did not reach, once), and the second
    /// run is the one that commits.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_write_runs_twice_only_in_a_batch_with_a_failure() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        use std::sync::Arc;
        let w = writer();
        let runs = Arc::new(AtomicUsize::new(0));
        let counted = |k: &'static str| {
            let runs = Arc::clone(&runs);
            w.write(move |c| {
                runs.fetch_add(1, Ordering::Relaxed);
                c.execute("INSERT INTO t (k) VALUES (?1)", [k])
                    .map(|_| ())
                    .map_err(|e| StoreError::Unavailable(e.to_string()))
            })
        };
        let hold = || {
            w.write(|_| {
                std::thread::sleep(std::time::Duration::from_millis(100));
                Ok(())
            })
        };
        let (held, a, b) = tokio::join!(hold(), counted("a"), counted("b"));
        held.unwrap();
        a.unwrap();
        b.unwrap();
        assert_eq!(runs.load(Ordering::Relaxed), 2, "no failure: one run each");
        let fails = w.write(|_| Err::<(), _>(StoreError::Unavailable("refused".into())));
        let (held, c, failed, d) = tokio::join!(hold(), counted("c"), fails, counted("d"));
        held.unwrap();
        c.unwrap();
        d.unwrap();
        assert!(failed.is_err());
        // The batch is [c, fails, d], in the order `join!` first polls them.
        assert_eq!(runs.load(Ordering::Relaxed), 5, "c twice, d once");
        assert_eq!(keys(&w).await, ["a", "b", "c", "d"]);
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
