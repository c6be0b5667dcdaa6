//! The marketplace client: every call koogate makes to KooGallery's open APIs (docs/protocol.md (outbound)).
//!
//! One [`Marketplace`] per process, built once from configuration and the IAM AK/SK. A call is
//! a [`Request`] (method, path, query, body, extra headers) that is **re-signed on every
//! attempt** (fresh `X-Sdk-Date`, and for usage push a fresh `ts`/`nonce`/`signature` over the
//! same body bytes) and sent with:
//!
//! * strict TLS: rustls with the public Web PKI roots; plain HTTP only to a loopback base URL
//!   (the test override), never to a remote host;
//! * a timeout per attempt and a deadline for the whole call ([`Retry`]), so a callback that
//!   enriches an order still answers within its budget;
//! * bounded retries with exponential back-off and jitter on network errors, timeouts, 5xx and
//!   throttling — never on a business answer (`open_api::classify`);
//! * the site's fallback host (`.cn`) for an attempt whose primary host cannot be connected to
//!   (DNS, TCP or TLS failure).
//!
//! Log lines name the operation, host, attempt, HTTP status and result code; never a header,
//! a body, a key or a signature.

mod calls;
mod enrich;
mod site;

use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use koogate_protocol::apigw_signer::{self, SignInput};
use koogate_protocol::open_api::{self, Verdict};

pub use calls::{ActivatedLicense, EnrichedOrder, UsagePush};
pub use enrich::order_details;
pub use site::{BaseUrl, MarketplaceSettings, Site, UsageEndpointChoice};

use crate::secrets::IamCredentials;

/// Largest answer body read (the biggest real answer, Query Order, is a few KiB).
const MAX_ANSWER_BYTES: usize = 1 << 20;

/// How a call is retried.
#[derive(Debug, Clone, Copy)]
pub struct Retry {
    /// Attempts in all (1 = no retry).
    pub max_attempts: u32,
    /// Each attempt is abandoned after this long.
    pub attempt_timeout: Duration,
    /// First back-off; doubled each retry, with up to 50 % random jitter added.
    pub backoff: Duration,
    /// No attempt starts, and no back-off sleeps, past this instant.
    pub deadline: Option<Instant>,
}

impl Retry {
    /// For a call made while a marketplace callback waits: it must end by `deadline`.
    pub fn within(deadline: Instant, attempt_timeout: Duration) -> Retry {
        Retry {
            max_attempts: 3,
            attempt_timeout,
            backoff: Duration::from_millis(100),
            deadline: Some(deadline),
        }
    }

    /// For background work (usage push, CLI): a few attempts, longer back-off.
    pub fn background(attempt_timeout: Duration) -> Retry {
        Retry {
            max_attempts: 4,
            attempt_timeout,
            backoff: Duration::from_millis(500),
            deadline: None,
        }
    }
}

/// Why a call failed. `code` is the marketplace's result code (`MKT.xxxx`, `9202xxxx`,
/// `APIGW.xxxx`) when the answer carried one.
#[derive(Debug, Clone, thiserror::Error)]
#[error("marketplace {operation} failed{}{}: {message}", .code.as_ref().map(|c| format!(" with {c}")).unwrap_or_default(), .http_status.map(|s| format!(" (HTTP {s})")).unwrap_or_default())]
pub struct MarketplaceError {
    pub operation: &'static str,
    /// Whether retrying the identical request later may succeed.
    pub transient: bool,
    pub code: Option<String>,
    pub http_status: Option<u16>,
    pub message: String,
}

impl MarketplaceError {
    fn config(operation: &'static str, message: impl Into<String>) -> Self {
        MarketplaceError {
            operation,
            transient: false,
            code: None,
            http_status: None,
            message: message.into(),
        }
    }
}

/// One call, before signing.
#[derive(Debug, Clone)]
pub struct Request {
    /// For logs and errors: `query-order`, `usage-push`, …
    pub operation: &'static str,
    pub method: hyper::Method,
    pub path: String,
    /// Raw query string (already encoded), or empty.
    pub query: String,
    pub content_type: String,
    pub body: Bytes,
    /// Whether the API Gateway signature is mandatory (every open API but the new usage push,
    /// D17): without an IAM AK/SK such a call fails before sending.
    pub requires_apigw: bool,
    /// Extra headers computed per attempt (usage push: `ts`, `nonce`, `signature`).
    pub per_attempt: Option<HeaderFn>,
    /// The key `per_attempt` signs with (the 基础接口 accessKey).
    pub header_key: Option<String>,
}

/// Computes headers for one attempt (they change every attempt: time, nonce, signature).
pub type HeaderFn = fn(&PerAttempt<'_>) -> Vec<(&'static str, String)>;

/// What `Request::per_attempt` gets to compute its headers.
pub struct PerAttempt<'a> {
    pub now_ms: i64,
    pub body: &'a [u8],
    pub key: &'a str,
}

/// A successful answer.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub code: Option<String>,
    pub body: Bytes,
}

/// The marketplace client. Cheap to clone.
#[derive(Clone)]
pub struct Marketplace {
    settings: MarketplaceSettings,
    iam: Option<IamCredentials>,
    http: crate::https::HttpsClient,
}

impl std::fmt::Debug for Marketplace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Marketplace")
            .field("base", &self.settings.base.to_string())
            .field("iam", &self.iam.as_ref().map(|_| "<set>"))
            .finish()
    }
}

/// Outcome of one attempt.
enum Attempt {
    Answered(u16, Bytes),
    /// Could not connect (DNS, TCP, TLS): the fallback host may help.
    Unreachable(String),
    /// Sent, but no (complete) answer: timeout or broken connection.
    NoAnswer(String),
}

impl Marketplace {
    /// Builds the client. Fails when the TLS configuration cannot be built (it never should).
    pub fn new(
        settings: MarketplaceSettings,
        iam: Option<IamCredentials>,
    ) -> Result<Marketplace, MarketplaceError> {
        // Plain HTTP is refused for remote hosts when the base URL is parsed (site.rs).
        let http = crate::https::client().map_err(|e| MarketplaceError::config("setup", e))?;
        Ok(Marketplace {
            settings,
            iam,
            http,
        })
    }

    /// The settings in force.
    pub fn settings(&self) -> &MarketplaceSettings {
        &self.settings
    }

    /// Whether an IAM AK/SK is configured (API Gateway signing possible).
    pub fn has_iam(&self) -> bool {
        self.iam.is_some()
    }

    /// Sends `req` with retries; `Ok` only for a success code, `Err` with the code otherwise.
    pub async fn call(&self, req: &Request, retry: Retry) -> Result<Answer, MarketplaceError> {
        if req.requires_apigw && self.iam.is_none() {
            return Err(MarketplaceError::config(
                req.operation,
                "no IAM AK/SK is configured (secrets document: iam.ak, iam.sk)",
            ));
        }
        let mut last: Option<MarketplaceError> = None;
        for attempt in 1..=retry.max_attempts.max(1) {
            if attempt > 1 {
                let pause = backoff(retry.backoff, attempt - 1);
                if let Some(d) = retry.deadline {
                    if Instant::now() + pause >= d {
                        break;
                    }
                }
                tokio::time::sleep(pause).await;
            }
            let timeout = match retry.deadline {
                Some(d) => match d.checked_duration_since(Instant::now()) {
                    Some(left) if !left.is_zero() => left.min(retry.attempt_timeout),
                    _ => break,
                },
                None => retry.attempt_timeout,
            };
            let mut outcome = self.attempt(req, &self.settings.base, timeout).await;
            if let (Attempt::Unreachable(why), Some(fallback)) = (&outcome, &self.settings.fallback)
            {
                tracing::warn!(operation = req.operation, host = %self.settings.base.host, reason = %why, fallback = %fallback.host, "marketplace host unreachable; trying the fallback host");
                outcome = self.attempt(req, fallback, timeout).await;
            }
            let err = match outcome {
                Attempt::Answered(status, body) => {
                    let code = open_api::result_code(&body);
                    match open_api::classify(status, code.as_deref()) {
                        Verdict::Success => {
                            tracing::info!(
                                operation = req.operation,
                                attempt,
                                status,
                                code = code.as_deref().unwrap_or(""),
                                "marketplace call succeeded"
                            );
                            return Ok(Answer { status, code, body });
                        }
                        verdict => MarketplaceError {
                            operation: req.operation,
                            transient: verdict == Verdict::Transient,
                            message: open_api::result_message(&body)
                                .map(|m| m.chars().take(200).collect())
                                .unwrap_or_else(|| "the answer carried no message".into()),
                            code,
                            http_status: Some(status),
                        },
                    }
                }
                Attempt::Unreachable(m) | Attempt::NoAnswer(m) => MarketplaceError {
                    operation: req.operation,
                    transient: true,
                    code: None,
                    http_status: None,
                    message: m,
                },
            };
            tracing::warn!(
                operation = req.operation,
                attempt,
                transient = err.transient,
                status = err.http_status,
                code = err.code.as_deref().unwrap_or(""),
                "marketplace call failed"
            );
            let transient = err.transient;
            last = Some(err);
            if !transient {
                break;
            }
        }
        Err(last.unwrap_or_else(|| MarketplaceError {
            operation: req.operation,
            transient: true,
            code: None,
            http_status: None,
            message: "no time left for an attempt before the deadline".into(),
        }))
    }

    /// One signed attempt against `base`.
    async fn attempt(&self, req: &Request, base: &BaseUrl, timeout: Duration) -> Attempt {
        let now_ms = crate::pipeline::now_ms();
        let path = format!("{}{}", base.path_prefix, req.path);
        let host = base.host_header();
        let date = apigw_signer::sdk_date(now_ms);
        let mut headers: Vec<(&str, String)> = vec![
            ("Host", host.clone()),
            ("Content-Type", req.content_type.clone()),
            ("X-Sdk-Date", date),
        ];
        if let (Some(f), Some(key)) = (req.per_attempt, req.header_key.as_deref()) {
            headers.extend(f(&PerAttempt {
                now_ms,
                body: &req.body,
                key,
            }));
        }
        if let Some(iam) = &self.iam {
            let pairs: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let signed = apigw_signer::sign(
                &iam.ak,
                &iam.sk,
                &SignInput {
                    method: req.method.as_str(),
                    path: &path,
                    query: &req.query,
                    headers: &pairs,
                    body: &req.body,
                },
            );
            headers.push(("Authorization", signed.authorization));
        }
        let uri = if req.query.is_empty() {
            format!("{}://{}{}", base.scheme, host, path)
        } else {
            format!("{}://{}{}?{}", base.scheme, host, path, req.query)
        };
        let mut builder = hyper::Request::builder()
            .method(req.method.clone())
            .uri(&uri);
        for (k, v) in &headers {
            builder = builder.header(*k, v.as_str());
        }
        let request = match builder.body(Full::new(req.body.clone())) {
            Ok(r) => r,
            Err(e) => return Attempt::Unreachable(format!("request could not be built: {e}")),
        };
        let exchange = async {
            let resp = self.http.request(request).await.map_err(|e| {
                if e.is_connect() {
                    Attempt::Unreachable(format!("cannot connect to {host}: {}", source_chain(&e)))
                } else {
                    Attempt::NoAnswer(format!("no answer from {host}: {}", source_chain(&e)))
                }
            })?;
            let status = resp.status().as_u16();
            let body = Limited::new(resp.into_body(), MAX_ANSWER_BYTES)
                .collect()
                .await
                .map_err(|e| Attempt::NoAnswer(format!("answer from {host} unreadable: {e}")))?
                .to_bytes();
            Ok::<_, Attempt>(Attempt::Answered(status, body))
        };
        match tokio::time::timeout(timeout, exchange).await {
            Ok(Ok(a)) | Ok(Err(a)) => a,
            Err(_) => Attempt::NoAnswer(format!(
                "no answer from {host} within {} ms",
                timeout.as_millis()
            )),
        }
    }
}

/// `base * 2^(n-1)` plus up to 50 % jitter, capped at 10 s.
fn backoff(base: Duration, n: u32) -> Duration {
    let exp = base.saturating_mul(1u32 << n.saturating_sub(1).min(10));
    let capped = exp.min(Duration::from_secs(10));
    let jitter = rand::random::<f64>() * 0.5;
    capped.mul_f64(1.0 + jitter)
}

/// An error and its sources, one line (hyper's top-level messages are terse).
pub fn source_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        out.push_str(": ");
        out.push_str(&s.to_string());
        cur = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        let b = Duration::from_millis(100);
        assert!(backoff(b, 1) >= b && backoff(b, 1) <= b.mul_f64(1.5));
        assert!(backoff(b, 3) >= b * 4);
        assert!(backoff(b, 30) <= Duration::from_secs(15));
    }

    #[test]
    fn errors_name_the_operation_and_the_code() {
        let e = MarketplaceError {
            operation: "usage-push",
            transient: false,
            code: Some("MKT.9003".into()),
            http_status: Some(500),
            message: "Usage records extends size limit.".into(),
        };
        assert_eq!(
            e.to_string(),
            "marketplace usage-push failed with MKT.9003 (HTTP 500): Usage records extends size limit."
        );
    }
}
