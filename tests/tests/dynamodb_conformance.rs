//! The store conformance suite against the DynamoDB backend, on a local moto server that this
//! test binary starts itself (`moto_server` from the project's virtualenv; `make test` installs
//! it and requires it, so this suite cannot be silently skipped there).

use std::sync::Arc;

use koogate_store::Store;
use koogate_tests::MotoServer;

async fn make() -> Arc<dyn Store> {
    let moto =
        MotoServer::shared().expect("moto_server is required for the DynamoDB conformance suite");
    Arc::new(moto.store().await)
}

koogate_store::conformance_tests!(make());
