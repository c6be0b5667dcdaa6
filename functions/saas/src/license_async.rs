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
use koogate_runtime::isv::catalogue;
use koogate_runtime::pipeline::{Lock, Locked, Stored};
use koogate_runtime::provisioner::{Issued, LicenseIssueRequest};
use koogate_runtime::{App, Call, Failure, Reply};
use koogate_store::{keys, Instance, InstanceState, Partition, VersionedWrite};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::answers::{not_found, ok};

pub async fn handle(call: &Call<'_>, r: &GetLicenseAsync) -> Result<Reply, Failure> {
    let debug = r.test_flag;
    let partition = Partition::from_debug_flag(debug);
    let store = &call.app.store;
    let instance = match store.get_instance(partition, &r.instance_id).await? {
        Some(i) if i.state != InstanceState::Released => i,
        _ => return not_found(debug, &r.instance_id),
    };
    if debug {
        return ok();
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
    let lock = Lock {
        key: &key,
        validation: &validation,
        reference: &r.instance_id,
        expires_at: None,
    };
    match call.once(&lock, |_| apply(call, r, &instance)).await? {
        Locked::Mismatch => Err(Failure::new(
            Answer::error(
                ResultCode::InvalidParam,
                "eventId was already used for a different application",
            ),
            "idempotency validation mismatch",
        )),
        Locked::InFlight { .. } => Ok(Answer::code(ResultCode::Processing).into()),
        Locked::Replayed { response, code, .. } => Ok(Reply::Stored {
            body: response.into_bytes(),
            code,
        }),
        Locked::Done { stored, .. } => Ok(stored.into()),
    }
}

/// One application, under its lock: issue the license (or accept it for later), record the
/// application with it, and render the answer to store.
async fn apply(
    call: &Call<'_>,
    r: &GetLicenseAsync,
    instance: &Instance,
) -> Result<Stored, Failure> {
    let req = LicenseIssueRequest {
        instance_id: &instance.instance_id,
        order_id: &instance.order_id,
        product_id: instance.product_id.as_deref().unwrap_or(""),
        sku_code: instance.sku_code.as_deref(),
        event_id: Some(&r.event_id),
        device_fingerprint: r.device_fingerprint.as_deref(),
    };
    let issuer = &call.app.license_issuer;
    let issued = if issuer.is_synchronous() {
        issuer.issue(&req).await
    } else {
        Ok(Issued::Accepted)
    };
    let license = match issued {
        Ok(Issued::License(l)) => Some(l),
        Ok(Issued::Accepted) => None,
        Err(e) => return Err(Failure::new(e.answer("license issuing"), e.to_string())),
    };
    // The application record keeps the license (and `license.issued` is recorded with it), so a
    // retry after a crash answers the license issued first.
    let application = Application {
        instance_id: instance.instance_id.clone(),
        order_id: instance.order_id.clone(),
        license,
        event_ids: Vec::new(),
    };
    let license = record_application(call.app, &r.event_id, &application).await?;
    Ok(Stored::of(&match license {
        Some(l) => Answer::ok().with("license", l),
        None => Answer::code(ResultCode::Processing),
    }))
}

/// One online-License application (`license-app#<eventId>`): whose it is and, once issued, the
/// license.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Application {
    instance_id: String,
    order_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    license: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    event_ids: Vec<String>,
}

fn application_key(event_id: &str) -> String {
    format!("license-app#{event_id}")
}

/// The `license.issued` event of an application's license.
fn issued_event(app: &App, event_id: &str, a: &Application) -> Vec<koogate_store::EventDraft> {
    match &a.license {
        Some(l) => catalogue::license_issued(
            app,
            false,
            koogate_runtime::pipeline::now_ms(),
            &a.order_id,
            Some(&a.instance_id),
            Some(event_id),
            l,
        ),
        None => Vec::new(),
    }
}

/// Records a new application; when one exists already (a retry after a crash), its license wins.
async fn record_application(
    app: &App,
    event_id: &str,
    a: &Application,
) -> Result<Option<String>, koogate_store::StoreError> {
    let key = application_key(event_id);
    let doc = serde_json::to_string(a).unwrap_or_default();
    let events = issued_event(app, event_id, a);
    let record = koogate_store::Record { version: 1, doc };
    match app.put_record(&key, &record, None, &events).await? {
        VersionedWrite::Written => Ok(a.license.clone()),
        VersionedWrite::Conflict => Ok(read_application(app, event_id)
            .await?
            .and_then(|(_, existing)| existing.license)),
    }
}

async fn read_application(
    app: &App,
    event_id: &str,
) -> Result<Option<(u64, Application)>, koogate_store::StoreError> {
    let key = application_key(event_id);
    match app.store.get_record(&key).await? {
        None => Ok(None),
        Some(r) => serde_json::from_str(&r.doc)
            .map(|a| Some((r.version, a)))
            .map_err(|e| koogate_store::StoreError::Corrupt {
                key,
                reason: e.to_string(),
            }),
    }
}

/// How [`deliver`] ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// Uploaded now (and `license.issued` recorded).
    Uploaded,
    /// This license was delivered before: nothing sent.
    AlreadyDelivered,
    /// A different license was delivered for this application before: nothing sent.
    Conflict,
    /// No asynchronous application with this eventId is known.
    UnknownApplication,
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
/// `license.lic`) and records it on the application with `license.issued`, so a repeated call
/// sends nothing. An upload whose record could not be written is uploaded again by the next call
/// (the marketplace event then receives the same license twice, never a different one).
pub async fn deliver(app: &App, event_id: &str, license: &str) -> Result<Delivery, DeliveryError> {
    let Some((version, application)) = read_application(app, event_id).await? else {
        return Ok(Delivery::UnknownApplication);
    };
    match application.license.as_deref() {
        Some(l) if l == license => return Ok(Delivery::AlreadyDelivered),
        Some(_) => return Ok(Delivery::Conflict),
        None => {}
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
    let mut done = application.clone();
    done.license = Some(license.to_string());
    let events = issued_event(app, event_id, &done);
    let record = koogate_store::Record {
        version: version + 1,
        doc: serde_json::to_string(&done).unwrap_or_default(),
    };
    match app
        .put_record(&application_key(event_id), &record, Some(version), &events)
        .await?
    {
        VersionedWrite::Written => Ok(Delivery::Uploaded),
        // Delivered concurrently: whichever license was recorded first stands.
        VersionedWrite::Conflict => match read_application(app, event_id).await? {
            Some((_, a)) if a.license.as_deref() == Some(license) => Ok(Delivery::AlreadyDelivered),
            _ => Ok(Delivery::Conflict),
        },
    }
}
