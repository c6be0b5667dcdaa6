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
