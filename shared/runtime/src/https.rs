//! The one HTTPS client setup of every outbound call: the marketplace's open APIs, the tenants'
//! identity domains (SSO) and `koogate sim`.
//!
//! HTTP/1.1 over rustls with the ring provider (the AWS SDK's too) and the public Web PKI roots
//! compiled in, so certificate checks do not depend on the image's CA bundle. `http://` URLs are
//! connected as well; each caller decides where plain HTTP is acceptable (loopback tests only).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

/// A pooled client for request bodies held in memory.
pub type HttpsClient = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// Builds the client. Fails only if the TLS configuration cannot be built (it never should).
pub fn client() -> Result<HttpsClient, String> {
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_provider_and_webpki_roots(Arc::new(rustls::crypto::ring::default_provider()))
        .map_err(|e| format!("TLS configuration: {e}"))?
        .https_or_http()
        .enable_http1()
        .build();
    Ok(Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(30))
        .build(https))
}
