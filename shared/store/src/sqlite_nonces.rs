//! The SQLite backend's replay guard: which nonces were seen (D4), kept in memory by the writer
//! thread ([`NonceIndex`]), and durably in an append-only log in the database file.
//!
//! Nonces are random, so a table keyed by them takes each insert on a random page: every nonce
//! dirtied its own page, which the commit wrote to the WAL (4 KiB per nonce) and the checkpoint
//! copied back, and the random page splits made SQLite scan its whole page cache at commit. In
//! the load run of queryInstance that was 44 µs of server CPU per request, against 12 µs for an
//! empty write job. Here the question "was this nonce seen?" is answered by a hash map the writer
//! thread owns, and the file only gets an append to `nonce_log`, whose rows and expiry index both
//! grow at their end: a batch of nonces dirties a page or two.
//!
//! Why this is as safe as the table in the file:
//!
//! * The map and the log change in the same write job, and the writer rolls the map back with
//!   the job's savepoint or the batch's transaction ([`NonceIndex::mark`],
//!   [`NonceIndex::rollback_to`]): an unexpired nonce is in the map if and only if its log row
//!   committed or belongs to the batch being committed.
//! * The log is durable exactly when the old table was: it commits before the caller is
//!   answered. At start-up the unexpired log is read back into the map, so a process that
//!   crashed or restarted still refuses a replay.
//! * Only this process's writer has the map: two processes writing one database file would not
//!   see each other's nonces. The SQLite store is the store of one `koogate serve`; several
//!   processes share a DynamoDB table instead.
//!
//! Memory: one map entry per nonce remembered (a retention period's worth of verified requests),
//! keyed by a 128-bit digest of the nonce instead of the nonce itself: about 40 bytes each
//! instead of about 110. Swept every [`SWEEP_EVERY_S`] seconds.

use std::collections::hash_map::{Entry, HashMap};
use std::hash::{BuildHasher, RandomState};

use rusqlite::{params, Connection};

use crate::sqlite_writer::Tx;
use crate::StoreError;

/// The durable log, in the database file. Rows are only appended and swept once expired.
pub(crate) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS nonce_log (
    key        TEXT NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS nonce_log_by_expiry ON nonce_log (expires_at);
";

/// Seconds between two sweeps of expired entries from the map. An expired entry counts as
/// absent when looked up, so the sweep only bounds memory; it visits every entry.
const SWEEP_EVERY_S: i64 = 10;

/// The nonces the database holds, by digest ([`Digester`]), with their expiry; owned by the
/// writer thread.
#[derive(Default)]
pub(crate) struct NonceIndex {
    seen: HashMap<u128, i64>,
    digester: Digester,
    /// What to restore to undo the changes since the last [`NonceIndex::settle`], oldest first:
    /// a digest and the expiry it had before (`None`: it was absent).
    undo: Vec<(u128, Option<i64>)>,
    /// When the map is swept next.
    next_sweep_s: i64,
}

/// A nonce key's 128-bit digest: two SipHash values under two random keys drawn per process.
/// Two nonces share a digest with a chance of about 2^-128 per pair, and without the process's
/// keys nobody can make them (a false "seen" would refuse one call with `000001`, which the
/// marketplace resends).
#[derive(Default)]
struct Digester(RandomState, RandomState);

impl Digester {
    fn digest(&self, key: &str) -> u128 {
        (u128::from(self.0.hash_one(key)) << 64) | u128::from(self.1.hash_one(key))
    }
}

impl NonceIndex {
    /// The index of the nonces unexpired at `now_s` in `conn`'s log. A database from before the
    /// log keeps its nonces: the old table is moved into the log first (see [`migrate`]).
    pub(crate) fn load(conn: &Connection, now_s: i64) -> rusqlite::Result<NonceIndex> {
        migrate(conn)?;
        let mut stmt = conn.prepare(
            "SELECT key, max(expires_at) FROM main.nonce_log WHERE expires_at >= ?1 GROUP BY key",
        )?;
        let digester = Digester::default();
        let seen = stmt
            .query_map(params![now_s], |r| {
                Ok((digester.digest(&r.get::<_, String>(0)?), r.get(1)?))
            })?
            .collect::<rusqlite::Result<_>>()?;
        Ok(NonceIndex {
            seen,
            digester,
            undo: Vec::new(),
            next_sweep_s: now_s.saturating_add(SWEEP_EVERY_S),
        })
    }

    /// Where the changes from now on start, for [`NonceIndex::rollback_to`].
    pub(crate) fn mark(&self) -> usize {
        self.undo.len()
    }

    /// Undoes every change made since `mark`, newest first.
    pub(crate) fn rollback_to(&mut self, mark: usize) {
        while self.undo.len() > mark {
            let Some((digest, before)) = self.undo.pop() else {
                break;
            };
            match before {
                Some(expires_at) => self.seen.insert(digest, expires_at),
                None => self.seen.remove(&digest),
            };
        }
    }

    /// Forgets how to undo: the changes so far are committed (or were all rolled back).
    pub(crate) fn settle(&mut self) {
        self.undo.clear();
    }

    /// Records `key` until `expires_at` unless an unexpired entry has it; `true` if it did not.
    fn record(&mut self, key: &str, now_s: i64, expires_at: i64) -> bool {
        let digest = self.digester.digest(key);
        let before = match self.seen.entry(digest) {
            Entry::Occupied(seen) if *seen.get() >= now_s => return false,
            Entry::Occupied(mut expired) => Some(expired.insert(expires_at)),
            Entry::Vacant(absent) => {
                absent.insert(expires_at);
                None
            }
        };
        self.undo.push((digest, before));
        true
    }

    /// Drops the entries expired at `now_s`, at most once per [`SWEEP_EVERY_S`].
    fn sweep(&mut self, now_s: i64) {
        if now_s < self.next_sweep_s {
            return;
        }
        self.next_sweep_s = now_s.saturating_add(SWEEP_EVERY_S);
        self.seen.retain(|_, expires_at| *expires_at >= now_s);
    }
}

/// Moves the rows of the table that held nonces before the log (`nonces`, keyed by nonce) into
/// the log, and drops it. In one transaction, so two processes opening the database at once
/// move them once.
fn migrate(conn: &Connection) -> rusqlite::Result<()> {
    let exists = |conn: &Connection| {
        conn.query_row(
            "SELECT count(*) FROM main.sqlite_master WHERE type = 'table' AND name = 'nonces'",
            [],
            |r| r.get::<_, i64>(0).map(|n| n > 0),
        )
    };
    if !exists(conn)? {
        return Ok(());
    }
    conn.execute_batch("BEGIN IMMEDIATE")?;
    let moved = exists(conn).and_then(|still| {
        if still {
            conn.execute_batch(
                "INSERT INTO main.nonce_log (key, expires_at)
                     SELECT key, expires_at FROM main.nonces;
                 DROP TABLE main.nonces;",
            )?;
        }
        conn.execute_batch("COMMIT")
    });
    if moved.is_err() {
        let _ = conn.execute_batch("ROLLBACK");
    }
    moved
}

/// Records a replay-guard entry: `key` is fresh if no unexpired entry has it; a fresh key goes
/// into the index (taking over an expired entry) and is appended to the log. `true` when the key
/// was fresh. With `sweep`, also deletes the log's expired rows. Runs in a write job, whose
/// rollback takes the entry out of both.
pub(crate) fn insert(
    tx: &mut Tx<'_>,
    key: &str,
    now_s: i64,
    expires_at: i64,
    sweep: bool,
) -> Result<bool, StoreError> {
    let fresh = tx.nonces.record(key, now_s, expires_at);
    if fresh {
        tx.conn
            .prepare_cached("INSERT INTO main.nonce_log (key, expires_at) VALUES (?1, ?2)")
            .and_then(|mut stmt| stmt.execute(params![key, expires_at]))
            .map_err(unavailable)?;
    }
    if sweep {
        tx.nonces.sweep(now_s);
        tx.conn
            .prepare_cached("DELETE FROM main.nonce_log WHERE expires_at < ?1")
            .and_then(|mut stmt| stmt.execute(params![now_s]))
            .map_err(unavailable)?;
    }
    Ok(fresh)
}

fn unavailable(e: rusqlite::Error) -> StoreError {
    StoreError::Unavailable(format!("sqlite: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn database() -> Connection {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(SCHEMA).unwrap();
        conn
    }

    fn log(conn: &Connection) -> Vec<(String, i64)> {
        let mut stmt = conn
            .prepare("SELECT key, expires_at FROM main.nonce_log ORDER BY rowid")
            .unwrap();
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    }

    fn insert_at(
        conn: &Connection,
        index: &mut NonceIndex,
        key: &str,
        now_s: i64,
        sweep: bool,
    ) -> bool {
        let mut tx = Tx {
            conn,
            nonces: index,
        };
        insert(&mut tx, key, now_s, now_s + 120, sweep).unwrap()
    }

    #[test]
    fn a_fresh_nonce_is_logged_once_and_a_seen_one_is_refused() {
        let conn = database();
        let mut index = NonceIndex::load(&conn, 0).unwrap();
        assert!(insert_at(&conn, &mut index, "n#1", 100, false));
        assert!(!insert_at(&conn, &mut index, "n#1", 101, false));
        assert!(!insert_at(&conn, &mut index, "n#1", 220, false));
        // Expired at 221: taken over, and logged again with its new expiry.
        assert!(insert_at(&conn, &mut index, "n#1", 221, false));
        assert_eq!(log(&conn), [("n#1".into(), 220), ("n#1".into(), 341)]);
    }

    #[test]
    fn a_rollback_restores_the_index_as_it_was_at_the_mark() {
        let conn = database();
        let mut index = NonceIndex::load(&conn, 0).unwrap();
        assert!(insert_at(&conn, &mut index, "n#kept", 100, false));
        assert!(insert_at(&conn, &mut index, "n#expired", 100, false));
        let mark = index.mark();
        assert!(insert_at(&conn, &mut index, "n#new", 300, false));
        assert!(insert_at(&conn, &mut index, "n#expired", 300, false));
        index.rollback_to(mark);
        assert!(insert_at(&conn, &mut index, "n#new", 300, false));
        assert!(!insert_at(&conn, &mut index, "n#kept", 200, false));
        index.rollback_to(0);
        assert!(index.seen.is_empty());
    }

    #[test]
    fn a_restart_remembers_the_unexpired_nonces_of_the_log() {
        let conn = database();
        let mut index = NonceIndex::load(&conn, 0).unwrap();
        assert!(insert_at(&conn, &mut index, "n#old", 100, false));
        assert!(insert_at(&conn, &mut index, "n#new", 200, false));
        let mut restarted = NonceIndex::load(&conn, 250).unwrap();
        assert_eq!(restarted.seen.len(), 1, "n#old expired at 220");
        assert!(!insert_at(&conn, &mut restarted, "n#new", 250, false));
        assert!(insert_at(&conn, &mut restarted, "n#old", 250, false));
    }

    #[test]
    fn a_sweep_deletes_expired_entries_from_both() {
        let conn = database();
        let mut index = NonceIndex::load(&conn, 0).unwrap();
        assert!(insert_at(&conn, &mut index, "n#old", 100, false));
        assert!(insert_at(&conn, &mut index, "n#new", 200, false));
        assert!(insert_at(&conn, &mut index, "n#now", 300, true));
        assert_eq!(log(&conn), [("n#new".into(), 320), ("n#now".into(), 420)]);
        assert_eq!(index.seen.len(), 2);
        // The map is swept at most once per SWEEP_EVERY_S; the log at every sweep.
        assert!(insert_at(&conn, &mut index, "n#later", 321, true));
        assert!(insert_at(&conn, &mut index, "n#last", 325, true));
        assert_eq!(log(&conn).len(), 3);
        assert_eq!(index.seen.len(), 3, "n#new was swept at 321, n#last added");
    }

    #[test]
    fn a_database_with_the_old_nonce_table_keeps_its_nonces() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(
            "CREATE TABLE nonces (key TEXT PRIMARY KEY, expires_at INTEGER NOT NULL)
                 WITHOUT ROWID;
             CREATE INDEX nonces_by_expiry ON nonces (expires_at);
             INSERT INTO nonces VALUES ('n#kept', 500), ('n#expired', 50);",
        )
        .unwrap();
        conn.execute_batch(SCHEMA).unwrap();
        let mut index = NonceIndex::load(&conn, 100).unwrap();
        assert!(!insert_at(&conn, &mut index, "n#kept", 100, false));
        assert!(insert_at(&conn, &mut index, "n#expired", 100, false));
        let old: i64 = conn
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE name = 'nonces'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(old, 0, "the old table is dropped once moved");
    }
}
