//! `GET /license`: the old License interface (docs/protocol.md, inbound-legacy §3), V1 authToken. The merchant
//! issues the license string (through the runtime's license-issuer hook) once per `orderId`: the
//! answer is stored on the order's lock and replayed for every repeat, so the same order gets the
//! same license and instanceId forever. The license lives on an instance record, so renewal,
//! expiry and release follow the instance lifecycle rules shared with the SaaS interfaces.

#![forbid(unsafe_code)]

use async_trait::async_trait;
use koogate_protocol::envelope::Answer;
use koogate_protocol::legacy_answer;
use koogate_protocol::legacy_request::{self, LegacyRequest, LegacyRoute, V1GetLicense};
use koogate_protocol::request::InstanceStatusChange;
use koogate_protocol::result_code::ResultCode;
use koogate_runtime::isv::catalogue;
use koogate_runtime::pipeline::{Lock, Locked, Stored};
use koogate_runtime::provisioner::{Issued, LicenseIssueRequest, ProvisionError};
use koogate_runtime::routes::{AuthScheme, InterfaceType, Route};
use koogate_runtime::{Call, Failure, Function, Reply};
use koogate_saas::lifecycle::{self, OrderRef, Target};
use koogate_saas::new_instance;
use koogate_store::{keys, AppliedOrder, Instance, InstanceState, Partition, VersionedWrite};

/// `GET /license`.
pub const ROUTE: Route = Route {
    method: "GET",
    path: "/license",
    function: "license-legacy",
    interface: InterfaceType::Legacy,
    scheme: AuthScheme::V1QueryToken,
};

/// The routes this crate declares: [`ROUTE`].
pub const ROUTES: &[Route] = &[ROUTE];

/// The function behind `GET /license`.
#[derive(Debug, Default, Clone, Copy)]
pub struct LicenseLegacyFunction;

#[async_trait]
impl Function for LicenseLegacyFunction {
    fn route(&self) -> &'static Route {
        &ROUTE
    }

    async fn handle(&self, call: &Call<'_>) -> Result<Reply, Failure> {
        let request = legacy_request::parse_legacy_on(LegacyRoute::License, call.params)?;
        let debug = request.is_debug();
        call.label(request.activity().name(), debug);
        let t = |activity: &'static str, instance_id| Target {
            activity,
            debug,
            instance_id,
        };
        match &request {
            LegacyRequest::GetLicense(r) => get_license(call, r).await,
            LegacyRequest::RefreshLicense(r) => {
                let order = OrderRef {
                    order_id: &r.order_id,
                    order_line_id: "",
                };
                lifecycle::renew(
                    call,
                    t("refreshLicense", &r.instance_id),
                    order,
                    "RENEWAL",
                    r.product_id.as_deref(),
                    &r.expire_time,
                    r.expire_time_ms,
                )
                .await
            }
            LegacyRequest::ExpireLicense(r) => {
                lifecycle::set_status(
                    call,
                    t("expireLicense", &r.instance_id),
                    InstanceStatusChange::Freeze,
                )
                .await
            }
            LegacyRequest::ReleaseLicense(r) => {
                lifecycle::release(call, t("releaseLicense", &r.instance_id), None, None).await
            }
            // parse_legacy_on(License) returns only the activities of this route.
            other => Err(Failure::invalid(format!(
                "activity {} is not served on GET /license",
                other.activity().name()
            ))),
        }
    }
}

/// The activity name getLicense records in the instance's order history.
const GET_LICENSE: &str = "getLicense";

async fn get_license(call: &Call<'_>, r: &V1GetLicense) -> Result<Reply, Failure> {
    let partition = Partition::from_debug_flag(r.test_flag);
    let key = keys::legacy_license(partition, &r.order_id);
    let validation = new_instance::validation_of(&[Some(&r.customer_id), Some(&r.product_id)]);
    let proposed = new_instance::proposed_instance_id(r.business_id.as_deref());
    let lock = Lock {
        key: &key,
        validation: &validation,
        reference: &proposed,
        expires_at: None,
    };
    match call
        .once(&lock, |held| issue(call, r, held.reference))
        .await?
    {
        Locked::Mismatch => Err(Failure::new(
            Answer::error(
                ResultCode::InvalidParam,
                "orderId was already used for a different buyer or product",
            ),
            "idempotency validation mismatch",
        )),
        Locked::InFlight { reference } => Ok(Answer::code(ResultCode::Processing)
            .with("instanceId", reference)
            .into()),
        Locked::Replayed { response, code, .. } => Ok(Reply::Stored {
            body: response.into_bytes(),
            code,
        }),
        Locked::Done { stored, .. } => Ok(stored.into()),
    }
}

/// getLicense under the order's lock: the instance `instance_id` with its license, issued once.
async fn issue(call: &Call<'_>, r: &V1GetLicense, instance_id: String) -> Result<Stored, Failure> {
    let debug = r.test_flag;
    let partition = Partition::from_debug_flag(debug);
    // A crashed earlier attempt may have issued and recorded the license already: reuse it.
    let existing = call.app.store.get_instance(partition, &instance_id).await?;
    let license =
        match existing.as_ref().and_then(|i| i.license.clone()) {
            Some(l) => l,
            // Debug traffic issues nothing real (D6): a stable demo code.
            None if debug => format!("DEBUG-{instance_id}"),
            None => {
                let req = LicenseIssueRequest {
                    instance_id: &instance_id,
                    order_id: &r.order_id,
                    product_id: &r.product_id,
                    sku_code: r.sku_code.as_deref(),
                    ..Default::default()
                };
                // The old interface cannot wait: an issuer that answers later failed this time.
                let issued =
                    call.app.license_issuer.issue(&req).await.and_then(|i| {
                        match i {
                    Issued::License(l) => Ok(l),
                    Issued::Accepted => Err(ProvisionError::Transient(
                        "the license issuer accepted asynchronously; getLicense needs it at once"
                            .into(),
                    )),
                }
                    });
                issued.map_err(|e| Failure::new(e.answer("license issuing"), e.to_string()))?
            }
        };
    if existing.is_none() {
        let inst = Instance {
            instance_id: instance_id.clone(),
            debug,
            state: InstanceState::Active,
            order_id: r.order_id.clone(),
            order_line_id: String::new(),
            product_id: Some(r.product_id.clone()),
            sku_code: r.sku_code.clone(),
            charging_mode: None,
            expire_time: r.expire_time.clone(),
            expire_time_ms: r.expire_time_ms,
            app_info: None,
            failure: None,
            license: Some(license.clone()),
            orders: vec![AppliedOrder::new(GET_LICENSE, &r.order_id, "", call.now_ms)],
            created_at_ms: call.now_ms,
            updated_at_ms: call.now_ms,
            version: 1,
            order_details: None,
            event_ids: Vec::new(),
            customer_id: None,
        };
        let events = catalogue::license_issued(
            call.app,
            debug,
            call.now_ms,
            &r.order_id,
            Some(&instance_id),
            None,
            &license,
        );
        // Another attempt wrote it first; its license is the one to keep: the retry answers it.
        if call.app.put_instance(&inst, None, &events).await? == VersionedWrite::Conflict {
            return Err(Failure::new(
                Answer::code(ResultCode::Processing).with("instanceId", instance_id),
                "another attempt recorded the license first; the retry answers it",
            ));
        }
    }
    Ok(Stored::of(&legacy_answer::get_license_answer(
        &instance_id,
        &license,
    )))
}
