//! The open-API calls: Query Order, usage push, license activate/query, upload. Each builds a
//! [`Request`] from koogate-protocol's bodies and interprets the answer.

use bytes::Bytes;
use koogate_protocol::open_api::{self, Upload};
use koogate_protocol::usage_push::{self, Endpoint, UsageEntry};

use super::site::UsageEndpointChoice;
use super::{Answer, Marketplace, MarketplaceError, PerAttempt, Request, Retry};

/// What koogate keeps of an order line (Query Order), on the instance or order record.
pub use koogate_store::records::OrderDetails as EnrichedOrder;

/// A successful license activation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActivatedLicense {
    /// `92020003` "illegal state": the code was active already (docs/protocol.md, outbound §5.1).
    pub already_active: bool,
    /// The answer's `data` (activation: `license_code_info` as a JSON string), if any.
    pub data: Option<serde_json::Value>,
}

/// The outcome of one usage push call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsagePush {
    pub endpoint: Endpoint,
    /// The exact body sent (identical on every attempt).
    pub body: String,
}

fn json_request(
    operation: &'static str,
    method: hyper::Method,
    path: String,
    query: String,
    body: Bytes,
) -> Request {
    Request {
        operation,
        method,
        path,
        query,
        content_type: "application/json".into(),
        body,
        requires_apigw: true,
        per_attempt: None,
        header_key: None,
    }
}

fn usage_headers(a: &PerAttempt<'_>) -> Vec<(&'static str, String)> {
    let ts = a.now_ms.to_string();
    let nonce = uuid::Uuid::new_v4().to_string();
    let body = String::from_utf8_lossy(a.body);
    let signature = usage_push::sign(a.key, &ts, &nonce, &body);
    vec![("ts", ts), ("nonce", nonce), ("signature", signature)]
}

fn number_text(n: &Option<serde_json::Number>) -> Option<String> {
    n.as_ref().map(|n| n.to_string())
}

impl Marketplace {
    /// Query Order for `order_id` (restricted to `order_line_id` when given), reduced to the
    /// line that concerns the caller (the given line, else the first).
    pub async fn query_order(
        &self,
        order_id: &str,
        order_line_id: Option<&str>,
        retry: Retry,
    ) -> Result<EnrichedOrder, MarketplaceError> {
        let req = json_request(
            "query-order",
            hyper::Method::GET,
            open_api::QUERY_ORDER_PATH.into(),
            open_api::query_order_query(order_id, order_line_id),
            Bytes::new(),
        );
        let answer = self.call(&req, retry).await?;
        let parsed = open_api::parse_query_order(&answer.body).ok_or_else(|| MarketplaceError {
            operation: "query-order",
            transient: false,
            code: answer.code.clone(),
            http_status: Some(answer.status),
            message: "the answer is not a Query Order answer".into(),
        })?;
        let info = parsed.order_info.unwrap_or_default();
        let line = info
            .order_line
            .iter()
            .find(|l| order_line_id.is_some() && l.order_line_id.as_deref() == order_line_id)
            .or_else(|| info.order_line.first())
            .cloned()
            .unwrap_or_default();
        let product = line.product_info.first().cloned().unwrap_or_default();
        let buyer = info.buyer_info.unwrap_or_default();
        Ok(EnrichedOrder {
            order_id: info.order_id.unwrap_or_else(|| order_id.to_string()),
            order_line_id: line.order_line_id,
            order_type: info.order_type,
            create_time: info.create_time,
            product_id: product.product_id,
            sku_code: product.sku_code,
            product_name: product.product_name,
            linear_value: number_text(&product.linear_value),
            charging_mode: line.charging_mode,
            period_type: line.period_type,
            period_number: number_text(&line.period_number),
            expire_time: line.expire_time,
            customer_id: buyer.customer_id,
            customer_name: buyer.customer_name,
            user_id: buyer.user_id,
            user_name: buyer.user_name,
            fetched_at_ms: crate::pipeline::now_ms(),
        })
    }

    /// Pushes at most 1000 usage records in one call, to the configured endpoint. The body is
    /// built once (D17: deep-sorted, compact) and sent identically on every attempt; the header
    /// signature (new endpoint) is made per attempt with a fresh `ts` and `nonce`, keyed with
    /// the 基础接口 accessKey `basic_key`.
    pub async fn push_usage(
        &self,
        records: &[UsageEntry],
        basic_key: Option<&str>,
        retry: Retry,
    ) -> Result<UsagePush, MarketplaceError> {
        if records.is_empty() || records.len() > usage_push::MAX_RECORDS_PER_CALL {
            return Err(MarketplaceError::config(
                "usage-push",
                format!(
                    "{} records in one call; 1 to {} are allowed",
                    records.len(),
                    usage_push::MAX_RECORDS_PER_CALL
                ),
            ));
        }
        let endpoint = match self.settings.usage_endpoint {
            UsageEndpointChoice::New => Endpoint::New,
            UsageEndpointChoice::Old => Endpoint::Old,
        };
        let body = usage_push::body(endpoint, records);
        let mut req = json_request(
            "usage-push",
            hyper::Method::POST,
            endpoint.path().into(),
            String::new(),
            Bytes::from(body.clone()),
        );
        if endpoint == Endpoint::New {
            let key = basic_key.ok_or_else(|| {
                MarketplaceError::config(
                    "usage-push",
                    "no 基础接口 accessKey is configured (secrets document: access_keys.basic)",
                )
            })?;
            // D17: API Gateway signing is added when an IAM AK/SK is configured.
            req.requires_apigw = false;
            req.per_attempt = Some(usage_headers);
            req.header_key = Some(key.to_string());
        }
        self.call(&req, retry).await?;
        Ok(UsagePush { endpoint, body })
    }

    /// Activates a License 2.0 code (v1). `92020003` (already active) counts as success.
    pub async fn activate_license(
        &self,
        license: &str,
        real_effect_time: Option<&str>,
        retry: Retry,
    ) -> Result<ActivatedLicense, MarketplaceError> {
        let req = json_request(
            "license-activate",
            hyper::Method::POST,
            open_api::LICENSE_ACTIVATE_PATH.into(),
            String::new(),
            Bytes::from(open_api::license_activate_body(license, real_effect_time)),
        );
        match self.call(&req, retry).await {
            Ok(a) => Ok(ActivatedLicense {
                already_active: false,
                data: license_data(&a),
            }),
            Err(e) if e.code.as_deref() == Some("92020003") => Ok(ActivatedLicense {
                already_active: true,
                data: None,
            }),
            Err(e) => Err(e),
        }
    }

    /// Queries a License 2.0 code (v1, formerly heartbeat): the answer's `data` (LicenseInfo).
    pub async fn query_license(
        &self,
        license: &str,
        account: Option<&str>,
        ip: Option<&str>,
        retry: Retry,
    ) -> Result<serde_json::Value, MarketplaceError> {
        let req = json_request(
            "license-query",
            hyper::Method::POST,
            open_api::LICENSE_QUERY_PATH.into(),
            String::new(),
            Bytes::from(open_api::license_query_body(license, account, ip)),
        );
        let a = self.call(&req, retry).await?;
        license_data(&a).ok_or_else(|| MarketplaceError {
            operation: "license-query",
            transient: false,
            code: a.code.clone(),
            http_status: Some(a.status),
            message: "the answer carries no data".into(),
        })
    }

    /// Uploads a string or a file to a marketplace event (e.g. an asynchronous license for a
    /// `getLicenseAsync` eventId).
    pub async fn upload(
        &self,
        event_id: &str,
        upload: Upload<'_>,
        retry: Retry,
    ) -> Result<(), MarketplaceError> {
        if let Upload::Characters(s) = upload {
            if s.chars().count() > 1024 {
                return Err(MarketplaceError::config(
                    "upload",
                    "a CHARACTERS upload holds at most 1024 characters; upload a FILE",
                ));
            }
        }
        let boundary = format!("koogate-{}", uuid::Uuid::new_v4().simple());
        let (body, content_type) = open_api::multipart(upload, &boundary);
        let mut req = json_request(
            "upload",
            hyper::Method::POST,
            open_api::upload_path(event_id),
            String::new(),
            Bytes::from(body),
        );
        req.content_type = content_type;
        self.call(&req, retry).await.map(|_| ())
    }
}

fn license_data(a: &Answer) -> Option<serde_json::Value> {
    open_api::parse_license_answer(&a.body).and_then(|l| l.data)
}
