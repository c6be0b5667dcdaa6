//! The Lambda entry of this route: configuration and clients once per cold start, then the loop.

use std::sync::Arc;

koogate_runtime::use_mimalloc!();

#[tokio::main]
async fn main() -> Result<(), lambda_http::lambda_runtime::Error> {
    koogate_runtime::lambda::run(Arc::new(koogate_license_legacy::LicenseLegacyFunction)).await
}
