//! The Lambda entry of the Product API (`/isv/v1/...`): configuration and clients once per cold
//! start, then the runtime loop.

use std::sync::Arc;

koogate_runtime::use_mimalloc!();

#[tokio::main]
async fn main() -> Result<(), lambda_http::lambda_runtime::Error> {
    koogate_runtime::lambda_web::run_web(Arc::new(koogate_product_api::ProductApi)).await
}
