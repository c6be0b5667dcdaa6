//! The store conformance suite against the DynamoDB backend, on a local moto server that this
//! test binary starts itself (`moto_server` from the project's virtualenv; `make test` installs
//! it and requires it, so this suite cannot be silently skipped there).
//!
//! It runs twice, and every request of both runs must stay inside GeminiDB's documented subset
//! (the client's `koogate_tests::geminidb::Guard` fails any other):
//! * as sent (`ReturnValues` and `ReturnValuesOnConditionCheckFailure` honoured, as Amazon
//!   DynamoDB does);
//! * `without_return_values`: both parameters removed before moto sees them, as a GeminiDB that
//!   ignores them would behave, so that the store's consistent-read fallbacks are what passes.

use std::sync::Arc;

use koogate_store::Store;
use koogate_tests::MotoServer;

async fn make() -> Arc<dyn Store> {
    let moto =
        MotoServer::shared().expect("moto_server is required for the DynamoDB conformance suite");
    Arc::new(moto.store().await)
}

koogate_store::conformance_tests!(make());

mod without_return_values {
    use super::*;

    async fn make() -> Arc<dyn Store> {
        let moto = MotoServer::shared()
            .expect("moto_server is required for the DynamoDB conformance suite");
        Arc::new(moto.store_stripping().await)
    }

    koogate_store::conformance_tests!(make());
}
