//! `POST /license`: the License 2.0 merchant interfaces (docs/protocol.md, inbound-basic §6). The marketplace
//! owns the codes, so a code seen for the first time in one of these calls is recorded (D21);
//! every change is a versioned read-modify-write of the code's record, and repeats change
//! nothing and answer `000000` (D11).

#![forbid(unsafe_code)]

use async_trait::async_trait;
use koogate_protocol::envelope::Answer;
use koogate_protocol::license_request::{parse_license, LicenseRequest};
use koogate_protocol::request::InstanceStatusChange;
use koogate_protocol::result_code::ResultCode;
use koogate_runtime::routes::{AuthScheme, InterfaceType, Route};
use koogate_runtime::trace_ids::TraceIds;
use koogate_runtime::{Call, Failure, Function, Reply};
use koogate_store::records::LicenseCode;
use koogate_store::{keys, AppliedOrder, InstanceState, Partition, Record, VersionedWrite};

/// Attempts of a read-modify-write before answering `000005`.
const ATTEMPTS: usize = 4;

/// `POST /license`.
pub const ROUTE: Route = Route {
    method: "POST",
    path: "/license",
    function: "license",
    interface: InterfaceType::License,
    scheme: AuthScheme::UrlSignature,
};

/// The routes this crate declares: [`ROUTE`].
pub const ROUTES: &[Route] = &[ROUTE];

/// The function behind `POST /license`.
#[derive(Debug, Default, Clone, Copy)]
pub struct LicenseFunction;

#[async_trait]
impl Function for LicenseFunction {
    fn route(&self) -> &'static Route {
        &ROUTE
    }

    async fn handle(&self, call: &Call<'_>) -> Result<Reply, Failure> {
        let request = parse_license(call.body)?;
        let activity = request.activity().name();
        let debug = request.is_debug();
        call.label(activity, debug);
        // The license code is a credential: never logged.
        let (order_id, order_line_id) = match &request {
            LicenseRequest::RefreshLicenseCode(r) => {
                (Some(r.order_id.clone()), Some(r.order_line_id.clone()))
            }
            LicenseRequest::ReleaseLicenseCode(r) => (r.order_id.clone(), r.order_line_id.clone()),
            LicenseRequest::UpdateLicenseCodeStatus(_) => (None, None),
        };
        call.trace(TraceIds {
            order_id,
            order_line_id,
            ..TraceIds::default()
        });
        let now = call.now_ms;
        mutate(
            call,
            activity,
            debug,
            request.license(),
            |code| match &request {
                LicenseRequest::RefreshLicenseCode(r) => {
                    if code.has_applied(&r.order_id, &r.order_line_id) {
                        return false;
                    }
                    code.expire_time = Some(r.expire_time.clone());
                    code.expire_time_ms = Some(r.expire_time_ms);
                    if let Some(p) = &r.product_id {
                        code.product_id = Some(p.clone());
                    }
                    code.orders.push(AppliedOrder {
                        activity: activity.into(),
                        order_id: r.order_id.clone(),
                        order_line_id: r.order_line_id.clone(),
                        scene: Some(r.scene.as_str().to_string()),
                        expire_time: Some(r.expire_time.clone()),
                        product_id: r.product_id.clone(),
                        applied_at_ms: now,
                    });
                    true
                }
                LicenseRequest::UpdateLicenseCodeStatus(r) => match (r.status, code.state) {
                    // A released code stays released; a repeat is a no-op.
                    (_, InstanceState::Released) => false,
                    (InstanceStatusChange::Freeze, InstanceState::Frozen) => false,
                    (InstanceStatusChange::Freeze, _) => {
                        code.state = InstanceState::Frozen;
                        true
                    }
                    (InstanceStatusChange::Unfreeze, InstanceState::Frozen) => {
                        code.state = InstanceState::Active;
                        true
                    }
                    (InstanceStatusChange::Unfreeze, _) => false,
                },
                LicenseRequest::ReleaseLicenseCode(r) => {
                    if code.state == InstanceState::Released {
                        return false;
                    }
                    code.state = InstanceState::Released;
                    if let Some(order_id) = &r.order_id {
                        code.orders.push(AppliedOrder::new(
                            activity,
                            order_id,
                            r.order_line_id.as_deref().unwrap_or_default(),
                            now,
                        ));
                    }
                    true
                }
            },
        )
        .await
    }
}

/// Applies `change` to the code's record (created on first sight, D21) with optimistic
/// concurrency; `change` returns whether it changed anything.
async fn mutate(
    call: &Call<'_>,
    activity: &'static str,
    debug: bool,
    license: &str,
    change: impl Fn(&mut LicenseCode) -> bool,
) -> Result<Reply, Failure> {
    let store = &call.app.store;
    let key = keys::license_code(Partition::from_debug_flag(debug), license);
    for _ in 0..ATTEMPTS {
        let stored = store.get_record(&key).await?;
        let (mut code, expected) = match &stored {
            Some(r) => match serde_json::from_str::<LicenseCode>(&r.doc) {
                Ok(c) => (c, Some(r.version)),
                Err(e) => {
                    return Err(Failure::new(
                        Answer::error(
                            ResultCode::InternalError,
                            "stored license record is unreadable",
                        ),
                        format!("stored license record is unreadable: {e}"),
                    ))
                }
            },
            None => (
                LicenseCode {
                    license: license.to_string(),
                    debug,
                    state: InstanceState::Active,
                    expire_time: None,
                    expire_time_ms: None,
                    product_id: None,
                    orders: Vec::new(),
                    created_at_ms: call.now_ms,
                    updated_at_ms: call.now_ms,
                    event_ids: Vec::new(),
                },
                None,
            ),
        };
        let changed = change(&mut code);
        if !changed && expected.is_some() {
            return Ok(Answer::ok().into());
        }
        code.updated_at_ms = call.now_ms;
        let doc = serde_json::to_string(&code).map_err(|e| {
            Failure::new(
                Answer::code(ResultCode::InternalError),
                format!("cannot serialise the license record: {e}"),
            )
        })?;
        let record = Record {
            version: expected.map_or(1, |v| v + 1),
            doc,
        };
        let events = if changed {
            koogate_runtime::isv::catalogue::license_code_changed(
                call.app,
                &code,
                activity,
                code.orders.last().map(|o| o.order_id.as_str()),
                call.now_ms,
            )
        } else {
            Vec::new()
        };
        match call
            .app
            .put_record(&key, &record, expected, &events)
            .await?
        {
            VersionedWrite::Written => return Ok(Answer::ok().into()),
            VersionedWrite::Conflict => continue,
        }
    }
    Err(Failure::new(
        Answer::error(
            ResultCode::InternalError,
            "the license code is being changed concurrently, please retry",
        ),
        "optimistic concurrency attempts exhausted",
    ))
}
