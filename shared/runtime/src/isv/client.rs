//! Signed HTTP requests to the ISV's product (README, "Connecting your product"): every event delivery and every
//! provisioning, change-check and license-issue request goes through [`ProductClient::post`].

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use koogate_protocol::webhook::{signature_header, WebhookSecret};

use crate::https::HttpsClient;

/// How much of the product's answer is read.
const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// What the product answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProductAnswer {
    pub status: u16,
    pub body: Vec<u8>,
}

impl ProductAnswer {
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The body as text for an operator (lossy, at most 500 characters).
    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body)
            .chars()
            .take(500)
            .collect()
    }
}

/// The client: one pooled HTTPS client and the webhook secrets, built once per process.
#[derive(Clone)]
pub struct ProductClient {
    http: HttpsClient,
    secrets: Arc<Vec<WebhookSecret>>,
}

impl ProductClient {
    /// Fails when no secret is configured: an unsigned request would teach the product to
    /// accept anything.
    pub fn new(secrets: Vec<WebhookSecret>) -> Result<ProductClient, String> {
        if secrets.is_empty() {
            return Err(
                "no webhook secret: add \"webhook_secrets\": [\"whsec_…\"] to the secrets document \
                 (koogate init-secrets writes one)"
                    .into(),
            );
        }
        Ok(ProductClient {
            http: crate::https::client()?,
            secrets: Arc::new(secrets),
        })
    }

    /// POSTs `body` to `url` as message `id`, signed now; the answer, or why there was none
    /// (connection refused, timeout after `timeout`), naming the URL.
    pub async fn post(
        &self,
        url: &str,
        id: &str,
        body: &[u8],
        timeout: Duration,
    ) -> Result<ProductAnswer, String> {
        let ts = crate::pipeline::now_ms().div_euclid(1000);
        let request = hyper::Request::post(url)
            .header("content-type", "application/json")
            .header("webhook-id", id)
            .header("webhook-timestamp", ts.to_string())
            .header(
                "webhook-signature",
                signature_header(&self.secrets, id, ts, body),
            )
            .header("user-agent", concat!("koogate/", env!("CARGO_PKG_VERSION")))
            .body(Full::new(Bytes::copy_from_slice(body)))
            .map_err(|e| format!("{url}: bad request: {e}"))?;
        let exchange = async {
            let response = self
                .http
                .request(request)
                .await
                .map_err(|e| format!("{url}: {}", crate::marketplace::source_chain(&e)))?;
            let status = response.status().as_u16();
            let body = Limited::new(response.into_body(), MAX_ANSWER_BYTES)
                .collect()
                .await
                .map(|c| c.to_bytes().to_vec())
                .unwrap_or_default();
            Ok(ProductAnswer { status, body })
        };
        match tokio::time::timeout(timeout, exchange).await {
            Ok(answer) => answer,
            Err(_) => Err(format!(
                "{url}: no answer within {} ms",
                timeout.as_millis()
            )),
        }
    }
}
