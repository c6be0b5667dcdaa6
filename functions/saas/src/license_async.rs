//! getLicenseAsync: the buyer applies for a license of an online-License product.
//!
//! The application is checked against the instance and handled once per `(eventId,
//! deviceFingerprint)` (the documented idempotency key): with a synchronous license issuer (the
//! default) the license is issued at once and answered `000000` with the license, and every
//! repeat replays that answer; with an asynchronous issuer the application is recorded and
//! answered `000004`; when the ISV's issuer has the license it calls [`deliver`], which uploads it
//! to the marketplace event (`event_id` = eventId) and records the delivery once.
//! Debug traffic answers `000000` and issues nothing (D6).

use koogate_protocol::envelope::Answer;
use koogate_protocol::request::GetLicenseAsync;
use koogate_protocol::result_code::ResultCode;
use koogate_runtime::pipeline::store_failure;
use koogate_runtime::provisioner::LicenseIssueRequest;
use koogate_runtime::{Call, Outcome, Reply};
use koogate_store::{keys, AcquireOutcome, InstanceState, Partition};
use sha2::{Digest, Sha256};

use crate::answers::{not_found, ok};

const ACTIVITY: &str = "getLicenseAsync";

pub async fn handle(call: &Call<'_>, r: &GetLicenseAsync) -> Outcome {
    let debug = r.test_flag;
    let partition = Partition::from_debug_flag(debug);
    let store = &call.app.store;
    let instance = match store.get_instance(partition, &r.instance_id).await {
        Ok(Some(i)) if i.state != InstanceState::Released => i,
        Ok(_) => return not_found(ACTIVITY, debug, &r.instance_id),
        Err(e) => return store_failure(Some(ACTIVITY), debug, &e),
    };
    if debug {
        return ok(ACTIVITY, true);
    }
    let fingerprint = r.device_fingerprint.as_deref().unwrap_or("");
    let key = keys::license_event(partition, &r.event_id, fingerprint);
    let mut h = Sha256::new();
    for part in [
        r.instance_id.as_str(),
        r.effective_time.as_str(),
        r.expire_time.as_deref().unwrap_or(""),
    ] {
        h.update(part.as_bytes());
        h.update([0u8]);
    }
    let validation = hex::encode(h.finalize());
    match call.acquire(&key, &validation, &r.instance_id, None).await {
        Err(e) => store_failure(Some(ACTIVITY), false, &e),
        Ok(AcquireOutcome::Mismatch) => Outcome::answer(
            Answer::error(
                ResultCode::InvalidParam,
                "eventId was already used for a different application",
            ),
            Some(ACTIVITY),
            false,
        ),
        Ok(AcquireOutcome::InFlight { .. }) => {
            Outcome::answer(Answer::code(ResultCode::Processing), Some(ACTIVITY), false)
        }
        Ok(AcquireOutcome::Completed { response, .. }) => Outcome {
            reply: Reply::Stored(response.into_bytes()),
            activity: Some(ACTIVITY),
            debug: false,
            reason: None,
        },
        Ok(AcquireOutcome::Acquired { .. }) => {
            let issuer = &call.app.license_issuer;
            let body = if issuer.is_synchronous() {
                let req = LicenseIssueRequest {
                    instance_id: &instance.instance_id,
                    order_id: &instance.order_id,
                    product_id: instance.product_id.as_deref().unwrap_or(""),
                    sku_code: instance.sku_code.as_deref(),
                };
                match issuer.issue(&req).await {
                    Ok(license) => Answer::ok().with("license", license).render(),
                    Err(e) => {
                        let _ = store.abandon(&key, call.request_id).await;
                        return Outcome::answer(e.answer("license issuing"), Some(ACTIVITY), false)
                            .because(e.to_string());
                    }
                }
            } else {
                Answer::code(ResultCode::Processing).render()
            };
            match store
                .complete(&key, call.request_id, &String::from_utf8_lossy(&body), None)
                .await
            {
                Ok(_) => Outcome {
                    reply: Reply::Stored(body),
                    activity: Some(ACTIVITY),
                    debug: false,
                    reason: None,
                },
                Err(e) => {
                    let _ = store.abandon(&key, call.request_id).await;
                    store_failure(Some(ACTIVITY), false, &e)
                }
            }
        }
    }
}

/// How [`deliver`] ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// Uploaded now.
    Uploaded,
    /// Uploaded before (the delivery record exists): nothing sent.
    AlreadyDelivered,
}

/// Why [`deliver`] failed.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    #[error(transparent)]
    Marketplace(#[from] koogate_runtime::marketplace::MarketplaceError),
    #[error(transparent)]
    Store(#[from] koogate_store::StoreError),
    #[error(
        "the marketplace client could not be built (its TLS setup failed; see the error log line)"
    )]
    NoClient,
}

/// Delivers a license issued asynchronously for the getLicenseAsync application `event_id`:
/// uploads it (a string of at most 1024 characters as `CHARACTERS`, anything longer as the file
/// `license.lic`) and records `license-delivery#<eventId>`, so a repeated call sends nothing.
/// An upload whose record could not be written is uploaded again by the next call (the
/// marketplace event then receives the same license twice, never a different one).
pub async fn deliver(
    app: &koogate_runtime::App,
    event_id: &str,
    license: &str,
) -> Result<Delivery, DeliveryError> {
    let key = format!("license-delivery#{event_id}");
    if app.store.get_record(&key).await?.is_some() {
        return Ok(Delivery::AlreadyDelivered);
    }
    let m = app.marketplace().ok_or(DeliveryError::NoClient)?;
    let upload = if license.chars().count() <= 1024 {
        koogate_protocol::open_api::Upload::Characters(license)
    } else {
        koogate_protocol::open_api::Upload::File {
            name: "license.lic",
            bytes: license.as_bytes(),
        }
    };
    let retry =
        koogate_runtime::marketplace::Retry::background(m.settings().background_attempt_timeout);
    m.upload(event_id, upload, retry).await?;
    let doc = serde_json::json!({
        "event_id": event_id,
        "delivered_at_ms": koogate_runtime::pipeline::now_ms(),
    })
    .to_string();
    app.store
        .put_record(&key, &koogate_store::Record { version: 1, doc }, None)
        .await?;
    Ok(Delivery::Uploaded)
}
