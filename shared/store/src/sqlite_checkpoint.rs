//! The SQLite backend's checkpointer: copies committed WAL frames back into the database file on
//! its own thread and connection, so that the writer thread, which every write waits on, does not.
//!
//! In WAL mode a commit appends pages to the `-wal` file; a checkpoint later copies them into the
//! database file and syncs both (`synchronous = NORMAL` syncs only there). SQLite runs that
//! checkpoint on the connection whose commit took the WAL past `wal_autocheckpoint` pages: on
//! the writer, between two batches. The load profile of `koogate serve` had a third of the writer
//! thread's CPU in that copy, and the writer blocked in its `fsync`s while every request waited.
//!
//! Here the writer nudges this thread after each commit; it waits [`PAUSE`] so that a few batches'
//! frames are copied at once, then runs a `PASSIVE` checkpoint, which never waits for and never
//! blocks the writer or the readers. The writer keeps SQLite's automatic checkpoint, at a higher
//! threshold ([`WRITER_AUTOCHECKPOINT_PAGES`]): when it comes due, the frames are already copied,
//! so it only finishes the tail and lets the next write start the WAL file over (which needs a
//! checkpoint that copied every frame). Durability is unchanged: what `synchronous = NORMAL`
//! syncs is still synced at a checkpoint, only by another thread.

use std::sync::mpsc;
use std::time::Duration;

use rusqlite::Connection;

use crate::StoreError;

/// How long a nudge waits before the checkpoint, so that one checkpoint (and its two `fsync`s)
/// covers the commits of that time. 1 ms and 20 ms made no difference beyond the noise of the
/// load run; the WAL of a busy server grows by a few hundred pages in 5 ms.
const PAUSE: Duration = Duration::from_millis(5);

/// The WAL size, in pages, past which the writer checkpoints by itself (SQLite's default is
/// 1,000). The checkpointer copies frames while the WAL grows, but the WAL file only starts over
/// after a checkpoint that copied every frame and before the next commit, which under constant
/// writes only the writer's own checkpoint achieves. At 8,192 pages (32 MiB with 4 KiB pages)
/// that happens seldom, and finds all but the last few milliseconds' frames already copied.
pub(crate) const WRITER_AUTOCHECKPOINT_PAGES: i64 = 8192;

/// The writer's handle. Dropping it (with the writer) stops the thread.
pub(crate) struct Checkpointer {
    nudge: mpsc::SyncSender<()>,
}

impl Checkpointer {
    /// Moves `conn`, a connection to the database the writer commits to, to a new thread.
    pub(crate) fn start(conn: Connection) -> Result<Checkpointer, StoreError> {
        // One pending nudge is enough: the checkpoint it starts copies every frame committed so
        // far, so further nudges before it runs add nothing.
        let (nudge, nudged) = mpsc::sync_channel(1);
        std::thread::Builder::new()
            .name("sqlite-checkpoint".into())
            .spawn(move || run(&conn, &nudged))
            .map_err(|e| {
                StoreError::Unavailable(format!("cannot start the sqlite checkpointer: {e}"))
            })?;
        Ok(Checkpointer { nudge })
    }

    /// Tells the thread that frames were committed. Never blocks.
    pub(crate) fn nudge(&self) {
        let _ = self.nudge.try_send(());
    }
}

fn run(conn: &Connection, nudged: &mpsc::Receiver<()>) {
    while nudged.recv().is_ok() {
        std::thread::sleep(PAUSE);
        // A nudge that came during the pause is covered by this checkpoint.
        let _ = nudged.try_recv();
        if let Err(e) = checkpoint(conn) {
            // The writer's automatic checkpoint still bounds the WAL: nothing is lost, the
            // writer only does the copy itself until this works again.
            tracing::warn!(error = %e, "sqlite background checkpoint failed");
        }
    }
}

/// One `PASSIVE` checkpoint: copies what it can without waiting for any lock.
fn checkpoint(conn: &Connection) -> rusqlite::Result<()> {
    // The pragma answers (busy, frames in the WAL, frames copied); nothing to do with them.
    conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Frames committed by a connection that never checkpoints reach the database file after a
    /// nudge: the checkpointer copied them. (The file's size is what the copy changes; looking at
    /// it, unlike asking SQLite, does not checkpoint.)
    #[test]
    fn a_nudge_copies_the_committed_frames_into_the_database_file() {
        let dir = std::env::temp_dir().join(format!("koogate-ckpt-{:x}", rand::random::<u64>()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("t.db");
        let writer = Connection::open(&path).unwrap();
        writer.pragma_update(None, "journal_mode", "WAL").unwrap();
        writer.pragma_update(None, "wal_autocheckpoint", 0).unwrap();
        writer
            .execute_batch("CREATE TABLE t (k INTEGER, v TEXT)")
            .unwrap();
        writer.execute_batch("BEGIN").unwrap();
        for i in 0..2000 {
            writer
                .execute("INSERT INTO t (k, v) VALUES (?1, ?2)", (i, "x".repeat(100)))
                .unwrap();
        }
        writer.execute_batch("COMMIT").unwrap();
        let size = || std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        // 2,000 rows of 100 bytes need more than 40 pages of 4 KiB.
        let copied = 40 * 4096;
        assert!(size() < copied, "the writer checkpointed by itself");

        let checkpointer = Checkpointer::start(Connection::open(&path).unwrap()).unwrap();
        checkpointer.nudge();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while size() < copied && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(size() >= copied, "database file still {} bytes", size());
        drop(checkpointer);
        drop(writer);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
