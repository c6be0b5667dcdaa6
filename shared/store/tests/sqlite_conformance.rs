//! The conformance suite against the SQLite backend: in memory, and on a file shared by two
//! store handles (two processes' worth of connections).

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
        let dir = std::env::temp_dir().join(format!("koogate-conformance-{}", std::process::id()));
        Arc::new(SqliteStore::open(&dir.join("store.db")).unwrap())
    }
    koogate_store::conformance_tests!(make());
}
