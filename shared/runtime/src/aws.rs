//! The AWS SDK configuration shared by every client of a process, built once per cold start.
//!
//! TLS is rustls with *ring* and the platform's root certificates: the SDK's default (aws-lc)
//! would add a C build of its own and a larger binary for nothing koogate needs.

use aws_config::BehaviorVersion;
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};

/// Loads region, credentials and endpoints from the standard AWS sources (environment, profile,
/// Lambda), with koogate's HTTP client. `AWS_ENDPOINT_URL_DYNAMODB` points the DynamoDB client at
/// a local server.
pub async fn sdk_config() -> aws_config::SdkConfig {
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(CryptoMode::Ring))
        .build_https();
    aws_config::defaults(BehaviorVersion::latest())
        .http_client(http)
        .load()
        .await
}
