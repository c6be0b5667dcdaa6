//! getLicenseAsync: the buyer applies for a license of an online-License product.
//!
//! The application is checked against the instance and handled once per `(eventId,
//! deviceFingerprint)` (the documented idempotency key): with a synchronous license issuer (the
//! default) the license is issued at once and answered `000000` with the license, and every
//! repeat replays that answer; with an asynchronous issuer the application is recorded and
//! answered `000004`. Uploading the license to the marketplace (`event_id` = eventId) belongs to
//! the marketplace client, which is not built yet: the recorded answer is the seam it will read.
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
