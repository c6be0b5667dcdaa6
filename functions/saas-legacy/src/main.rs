//! The Lambda entry of `GET /saas` (V1).

use std::sync::Arc;

koogate_runtime::use_mimalloc!();

#[tokio::main]
async fn main() -> Result<(), lambda_http::lambda_runtime::Error> {
    koogate_runtime::lambda::run(Arc::new(koogate_saas_legacy::SaasLegacyFunction)).await
}
