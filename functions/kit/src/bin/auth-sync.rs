//! The Lambda entry of one kit interface (POST /saas/produceAPI/v2/… and its V1 path).

koogate_runtime::use_mimalloc!();

#[tokio::main]
async fn main() -> Result<(), lambda_http::lambda_runtime::Error> {
    let functions = koogate_kit::KitFunction::both(koogate_protocol::kit_request::KitOp::AuthSync);
    koogate_runtime::lambda::run_routes(functions).await
}
