//! The SQLite backend's tables, and bringing a file made by an older koogate up to them.
//!
//! # Why the order and instance tables have rowids
//!
//! Their keys are chosen by the marketplace (`order#<orderId>#…`, the instanceId) and arrive in
//! no order, so a table ordered by them — which is what `WITHOUT ROWID` makes — takes every new
//! row on a random page, splits a page every few inserts (an instance record is about 850
//! bytes), and rewrites that random page again when the order's lock is completed. In WAL mode
//! each such page costs a 4 KiB frame, which the checkpointer copies again later.
//!
//! As rowid tables their rows are appended in arrival order: the rows of one commit share pages,
//! and the completion of a lock rewrites a page that the locks acquired with it share. Only the
//! key's own index (a few dozen bytes per entry) still takes a random page. In `koogate serve`'s
//! load runs that halved the WAL frames of a first newInstance (8 → 3.9) and took it from
//! 7,400–7,900 to 10,700–11,000 per second at 32 concurrent, queryInstance from 22,000 to 31,000
//! (`docs/PERFORMANCE.md`, seventh round). A read by key now goes through the index and then the
//! table: two lookups in cached pages instead of one.
//!
//! The other tables keep their key order: events are keyed by a time-ordered id, so they are
//! appended already; records, directory entries and usage are written far less often.

use rusqlite::Connection;

/// The tables that an older koogate made `WITHOUT ROWID`, and their columns, as created now and
/// as [`rebuild_with_rowid`] copies them.
const WITH_ROWID: [(&str, &str); 2] = [
    (
        "idempotency",
        "key         TEXT PRIMARY KEY,
         status      TEXT NOT NULL,
         owner       TEXT NOT NULL,
         lease_until INTEGER NOT NULL,
         validation  TEXT NOT NULL,
         reference   TEXT NOT NULL,
         response    TEXT,
         expires_at  INTEGER,
         created_at  INTEGER NOT NULL,
         code        TEXT",
    ),
    (
        "instances",
        "key     TEXT PRIMARY KEY,
         version INTEGER NOT NULL,
         state   TEXT NOT NULL,
         doc     TEXT NOT NULL",
    ),
];

/// The other tables, ordered by their keys.
const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS records (
    key     TEXT PRIMARY KEY,
    version INTEGER NOT NULL,
    doc     TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS directory (
    pk  TEXT NOT NULL,
    sk  TEXT NOT NULL,
    doc TEXT NOT NULL,
    PRIMARY KEY (pk, sk)
) WITHOUT ROWID;
";

/// Usage records (pay-per-use). The partial index holds only pending records, so finding what
/// is due to be pushed reads only those, oldest end first.
const USAGE_SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS usage (
    instance_id TEXT NOT NULL,
    begin_time  TEXT NOT NULL,
    end_time    TEXT NOT NULL,
    status      TEXT NOT NULL,
    owner       TEXT NOT NULL DEFAULT '',
    lease_until INTEGER NOT NULL DEFAULT 0,
    attempts    INTEGER NOT NULL DEFAULT 0,
    failure     TEXT,
    settled_at  INTEGER,
    doc         TEXT NOT NULL,
    PRIMARY KEY (instance_id, begin_time, end_time)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS usage_pending ON usage (end_time) WHERE status = 'pending';
";

/// The event outbox. An event row is inserted in the same transaction as the change it
/// describes, so it exists if and only if the change committed; the partial index holds only
/// pending events, so the dispatcher's due query never reads delivered ones.
const EVENTS_SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS events (
    id           TEXT PRIMARY KEY,
    type         TEXT NOT NULL,
    instance_id  TEXT,
    body         TEXT NOT NULL,
    state        TEXT NOT NULL,
    attempts     INTEGER NOT NULL DEFAULT 0,
    next_attempt INTEGER NOT NULL,
    last_error   TEXT,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS events_due ON events (next_attempt) WHERE state = 'pending';
CREATE INDEX IF NOT EXISTS events_by_instance ON events (instance_id) WHERE instance_id IS NOT NULL;
";

/// Creates what is missing of `nonce_schema` and the tables above, and upgrades a file made by an
/// older koogate: adds the answer's result code column, and rebuilds the tables that now have
/// rowids. Safe to run from several processes at once.
pub(crate) fn create(conn: &Connection, nonce_schema: &str) -> rusqlite::Result<()> {
    for (table, columns) in WITH_ROWID {
        conn.execute_batch(&format!("CREATE TABLE IF NOT EXISTS {table} ({columns})"))?;
    }
    conn.execute_batch(SCHEMA)?;
    conn.execute_batch(nonce_schema)?;
    conn.execute_batch(USAGE_SCHEMA)?;
    conn.execute_batch(EVENTS_SCHEMA)?;
    // Before the rebuild, so that the rebuilt table has every column.
    add_idempotency_code(conn)?;
    WITH_ROWID
        .iter()
        .try_for_each(|(table, columns)| rebuild_with_rowid(conn, table, columns))
}

/// Databases created before the answer's result code was kept beside it get the column; their
/// old records have none (a replay then reads the code from the answer). Two processes opening
/// one such database at once may both try: the loser's "duplicate column" is success.
fn add_idempotency_code(conn: &Connection) -> rusqlite::Result<()> {
    let has_code: bool = conn.query_row(
        "SELECT count(*) FROM pragma_table_info('idempotency') WHERE name = 'code'",
        [],
        |r| r.get::<_, i64>(0).map(|n| n > 0),
    )?;
    if has_code {
        return Ok(());
    }
    match conn.execute_batch("ALTER TABLE idempotency ADD COLUMN code TEXT") {
        Err(e) if e.to_string().contains("duplicate column") => Ok(()),
        other => other,
    }
}

/// Whether `table` was created `WITHOUT ROWID` (SQLite keeps each table's `CREATE` statement).
fn without_rowid(conn: &Connection, table: &str) -> rusqlite::Result<bool> {
    let sql: String = conn.query_row(
        "SELECT sql FROM main.sqlite_master WHERE type = 'table' AND name = ?1",
        [table],
        |r| r.get(0),
    )?;
    Ok(sql.to_ascii_uppercase().contains("WITHOUT ROWID"))
}

/// Copies a `WITHOUT ROWID` `table` into a new rowid table of `columns` and puts it in its
/// place, in one transaction: a crash leaves the old table or the new one, never neither. Takes
/// as long as copying the table once (about 0.2 s for 23,000 orders and their instances), at the
/// first start after the upgrade.
fn rebuild_with_rowid(conn: &Connection, table: &str, columns: &str) -> rusqlite::Result<()> {
    if !without_rowid(conn, table)? {
        return Ok(());
    }
    let new = format!("{table}_with_rowid");
    conn.execute_batch("BEGIN IMMEDIATE")?;
    let rebuilt = (|| {
        // Another process may have rebuilt it while this one waited for the lock.
        if without_rowid(conn, table)? {
            // The old table's columns, by name: all of them are in the new one.
            let names: String = conn.query_row(
                "SELECT group_concat(name, ', ') FROM pragma_table_info(?1)",
                [table],
                |r| r.get(0),
            )?;
            conn.execute_batch(&format!(
                "CREATE TABLE {new} ({columns});
                 INSERT INTO {new} ({names}) SELECT {names} FROM {table};
                 DROP TABLE {table};
                 ALTER TABLE {new} RENAME TO {table};"
            ))?;
        }
        conn.execute_batch("COMMIT")
    })();
    if rebuilt.is_err() {
        let _ = conn.execute_batch("ROLLBACK");
    }
    rebuilt
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Old tables are rebuilt with their rows, new ones left alone, and running it again changes
    /// nothing.
    #[test]
    fn an_old_file_is_rebuilt_once_with_its_rows() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(
            "CREATE TABLE instances (
                key TEXT PRIMARY KEY, version INTEGER NOT NULL, state TEXT NOT NULL,
                doc TEXT NOT NULL
            ) WITHOUT ROWID;
            INSERT INTO instances VALUES ('instance#b', 2, 'active', '{}'), ('instance#a', 1, 'frozen', '[]');",
        )
        .unwrap();
        create(&conn, "").unwrap();
        for (table, _) in WITH_ROWID {
            assert!(!without_rowid(&conn, table).unwrap(), "{table}");
        }
        assert!(without_rowid(&conn, "records").unwrap());
        let rows = |conn: &Connection| {
            conn.prepare("SELECT key, version, state, doc FROM instances ORDER BY key")
                .unwrap()
                .query_map([], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, i64>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, String>(3)?,
                    ))
                })
                .unwrap()
                .collect::<Result<Vec<_>, _>>()
                .unwrap()
        };
        let expected = vec![
            (
                "instance#a".to_string(),
                1,
                "frozen".to_string(),
                "[]".to_string(),
            ),
            (
                "instance#b".to_string(),
                2,
                "active".to_string(),
                "{}".to_string(),
            ),
        ];
        assert_eq!(rows(&conn), expected);
        // The key is still unique.
        assert!(conn
            .execute(
                "INSERT INTO instances VALUES ('instance#a', 3, 'active', '{}')",
                []
            )
            .is_err());
        create(&conn, "").unwrap();
        assert_eq!(rows(&conn), expected);
        let leftovers: i64 = conn
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE name LIKE '%with_rowid%'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(leftovers, 0);
    }
}
