//! The Lambda entry of the login routes: configuration and the HTTPS client once per cold start,
//! then the loop.

use std::sync::Arc;

koogate_runtime::use_mimalloc!();

#[tokio::main]
async fn main() -> Result<(), lambda_http::lambda_runtime::Error> {
    let function = koogate_sso::SsoFunction::from_env()?;
    koogate_runtime::lambda_web::run_web(Arc::new(function)).await
}
