//! Provisioning, change checks and license issuing delegated to the ISV's product by signed
//! synchronous requests (`KOOGATE_PROVISIONER=webhook`, `KOOGATE_LICENSE_ISSUER=webhook`, both to
//! `KOOGATE_PROVISION_URL`). The answer classes and what each becomes for the marketplace are in
//! README, "Connecting your product".

use std::time::Duration;

use async_trait::async_trait;
use koogate_protocol::request::TargetProduct;
use koogate_protocol::result_code::ResultCode;
use koogate_store::{AppInfo, Instance};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::isv::client::{ProductAnswer, ProductClient};
use crate::provisioner::{
    Issued, LicenseIssueRequest, ProvisionError, ProvisionRequest, Provisioned, Provisioner,
    TemplateProvisioner,
};

/// The longest a request waits by itself; callers bound it further by the callback's budget.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// The `appInfo` limits of the newInstance/queryInstance answers (characters).
const APP_INFO_LIMITS: [(&str, usize); 5] = [
    ("frontEndUrl", 512),
    ("adminUrl", 512),
    ("userName", 128),
    ("password", 128),
    ("memo", 1024),
];

/// The body koogate sends: `{"type","timestamp","data"}`.
fn body(kind: &str, data: Value) -> Vec<u8> {
    let mut data = data;
    if let Value::Object(m) = &mut data {
        m.retain(|_, v| !v.is_null());
    }
    json!({
        "type": kind,
        "timestamp": koogate_protocol::timestamp::format_rfc3339_ms(crate::pipeline::now_ms()),
        "data": data,
    })
    .to_string()
    .into_bytes()
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireAppInfo {
    front_end_url: Option<String>,
    admin_url: Option<String>,
    user_name: Option<String>,
    password: Option<String>,
    memo: Option<String>,
}

/// Reads and validates an `appInfo` object (from the product's provisioning answer or the
/// Product API): `frontEndUrl` required, every member within the marketplace's length limits.
pub fn parse_app_info(value: &Value) -> Result<AppInfo, String> {
    let wire: WireAppInfo = serde_json::from_value(value.clone())
        .map_err(|_| "appInfo must be an object of strings".to_string())?;
    for (name, limit) in APP_INFO_LIMITS {
        if let Some(text) = value.get(name).and_then(Value::as_str) {
            if text.chars().count() > limit {
                return Err(format!("appInfo.{name} is longer than {limit} characters"));
            }
        }
    }
    let front_end_url = wire
        .front_end_url
        .filter(|u| !u.trim().is_empty())
        .ok_or_else(|| "appInfo.frontEndUrl is required".to_string())?;
    Ok(AppInfo {
        front_end_url,
        admin_url: wire.admin_url,
        user_name: wire.user_name,
        password: wire.password,
        memo: wire.memo,
    })
}

/// The `appInfo` of a product's answer body.
fn app_info_of(answer: &ProductAnswer) -> Result<AppInfo, String> {
    let v: Value = serde_json::from_slice(&answer.body)
        .map_err(|_| "the provisioning answer is not JSON".to_string())?;
    parse_app_info(v.get("appInfo").unwrap_or(&Value::Null))
}

/// `{"resultCode":"0001xx","reason":"…"}` of a refusal.
fn refusal_of(answer: &ProductAnswer) -> Option<(ResultCode, String)> {
    let v: Value = serde_json::from_slice(&answer.body).ok()?;
    let code = ResultCode::parse(v.get("resultCode")?.as_str()?)?;
    if !code.is_creation_refusal() {
        return None;
    }
    let reason = v
        .get("reason")
        .and_then(Value::as_str)
        .unwrap_or("refused by the product")
        .chars()
        .take(255)
        .collect();
    Some((code, reason))
}

fn transient(what: &str, detail: impl std::fmt::Display) -> ProvisionError {
    ProvisionError::Transient(format!("{what}: {detail}"))
}

/// Asks the product (`KOOGATE_PROVISION_URL`) to provision, check changes and issue licenses.
pub struct WebhookProvisioner {
    client: ProductClient,
    url: String,
    /// Debug instances keep the demo `appInfo` (debug traffic is never sent to the product).
    demo: TemplateProvisioner,
}

impl WebhookProvisioner {
    pub fn new(client: ProductClient, url: impl Into<String>, demo: TemplateProvisioner) -> Self {
        WebhookProvisioner {
            client,
            url: url.into(),
            demo,
        }
    }

    async fn ask(&self, id: &str, body: &[u8]) -> Result<ProductAnswer, ProvisionError> {
        self.client
            .post(&self.url, id, body, REQUEST_TIMEOUT)
            .await
            .map_err(|e| transient("the product did not answer", e))
    }
}

#[async_trait]
impl Provisioner for WebhookProvisioner {
    async fn provision(&self, req: &ProvisionRequest<'_>) -> Result<Provisioned, ProvisionError> {
        let payload = body(
            "instance.provision",
            json!({
                "instanceId": req.instance_id,
                "orderId": req.order_id,
                "orderLineId": req.order_line_id,
                "productId": req.product_id,
                "skuCode": req.sku_code,
                "chargingMode": req.charging_mode,
                "periodType": req.period_type,
                "periodNumber": req.period_number,
                "expireTime": req.expire_time,
                "customerId": req.customer_id,
                "amount": req.amount,
            }),
        );
        let answer = self
            .ask(&format!("prov_{}", req.instance_id), &payload)
            .await?;
        match answer.status {
            200 => app_info_of(&answer)
                .map(Provisioned::Ready)
                .map_err(|e| transient("the product's appInfo is not usable", e)),
            202 => Ok(Provisioned::Accepted),
            409 | 422 => match refusal_of(&answer) {
                Some((code, reason)) => Err(ProvisionError::Refused { code, reason }),
                None => Err(transient(
                    "the product refused without a creation code 000100-000107",
                    answer.status,
                )),
            },
            other => Err(transient("the product answered HTTP", other)),
        }
    }

    async fn check_change(
        &self,
        instance: &Instance,
        target: &TargetProduct,
    ) -> Result<(), String> {
        let payload = body(
            "instance.change_check",
            json!({
                "instanceId": instance.instance_id,
                "productId": instance.product_id,
                "skuCode": instance.sku_code,
                "productInfo": {
                    "productId": target.product_id,
                    "skuCode": target.sku_code,
                    "productName": target.product_name,
                    "linearValue": target.linear_value,
                },
            }),
        );
        let id = format!(
            "chk_{}",
            koogate_store::events::new_event_id(crate::pipeline::now_ms())
        );
        let failed = "the change check failed, please retry".to_string();
        let answer = self
            .client
            .post(&self.url, &id, &payload, REQUEST_TIMEOUT)
            .await;
        match answer {
            Ok(a) if a.status == 200 => Ok(()),
            Ok(a) if a.status == 409 => Err(serde_json::from_slice::<Value>(&a.body)
                .ok()
                .and_then(|v| v.get("reason").and_then(Value::as_str).map(str::to_string))
                .filter(|r| !r.is_empty())
                .unwrap_or_else(|| "the change is not possible".into())),
            Ok(a) => {
                tracing::warn!(instance_id = %instance.instance_id, status = a.status, "change check answered");
                Err(failed)
            }
            Err(e) => {
                tracing::warn!(instance_id = %instance.instance_id, error = %e, "change check failed");
                Err(failed)
            }
        }
    }

    fn demo_app_info(&self, instance_id: &str) -> AppInfo {
        self.demo.demo_app_info(instance_id)
    }
}

/// Issues licenses by asking the product.
pub struct WebhookLicenseIssuer {
    client: ProductClient,
    url: String,
}

impl WebhookLicenseIssuer {
    pub fn new(client: ProductClient, url: impl Into<String>) -> Self {
        WebhookLicenseIssuer {
            client,
            url: url.into(),
        }
    }
}

#[async_trait]
impl crate::provisioner::LicenseIssuer for WebhookLicenseIssuer {
    async fn issue(&self, req: &LicenseIssueRequest<'_>) -> Result<Issued, ProvisionError> {
        let payload = body(
            "license.issue",
            json!({
                "orderId": req.order_id,
                "instanceId": req.instance_id,
                "productId": req.product_id,
                "skuCode": req.sku_code,
                "eventId": req.event_id,
                "deviceFingerprint": req.device_fingerprint,
            }),
        );
        let id = format!("lic_{}", req.event_id.unwrap_or(req.order_id));
        let answer = self
            .client
            .post(&self.url, &id, &payload, REQUEST_TIMEOUT)
            .await
            .map_err(|e| transient("the product did not answer", e))?;
        match answer.status {
            200 => serde_json::from_slice::<Value>(&answer.body)
                .ok()
                .and_then(|v| v.get("license").and_then(Value::as_str).map(str::to_string))
                .filter(|l| !l.is_empty())
                .map(Issued::License)
                .ok_or_else(|| transient("the product's answer has no license", 200)),
            202 if req.event_id.is_some() => Ok(Issued::Accepted),
            other => Err(transient("the product answered HTTP", other)),
        }
    }
}
