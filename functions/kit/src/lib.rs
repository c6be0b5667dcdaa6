//! The joint-operation (联营) kit sync interfaces (docs/protocol.md (inbound-kit)): tenantSync, applicationSync,
//! authSync, singleOrgSync and allOrgSync, each on its V2 path (`x-sign` headers, kit key) and its
//! V1 path (`authToken` header, legacy key).
//!
//! Verification, the replay guard and the signed answer are the pipeline's; here a verified body
//! is parsed ([`koogate_protocol::kit_request`]), turned into directory writes ([`plan`]), and
//! applied to the tenant's partition of the store in one call. Every write carries the whole state
//! of its item, so a repeated sync creates nothing new and answers `000000` again, as each
//! interface documents; no idempotency record is needed.

#![forbid(unsafe_code)]

mod changes;
pub mod plan;

use std::collections::HashSet;
use std::sync::Arc;

use async_trait::async_trait;
use koogate_protocol::envelope::Answer;
use koogate_protocol::kit_request::Flag;
use koogate_protocol::kit_request::{parse_kit, KitOp, KitRequest, KitVersion};
use koogate_protocol::request::RequestError;
use koogate_runtime::isv::catalogue;
use koogate_runtime::routes::{AuthScheme, InterfaceType, Route};
use koogate_runtime::trace_ids::TraceIds;
use koogate_runtime::{Call, Failure, Function, Reply};
use koogate_store::directory::{sk, Department, Directory};
use koogate_store::{DirectoryWrite, EventDraft, Partition};
use serde_json::json;

/// The ten kit routes: each interface on its V2 and its V1 path (the marketplace appends
/// `/produceAPI/v2/<op>` or `/produceAPI/<op>` to the registered production address, `/saas`).
pub const ROUTES: &[Route] = &[
    TENANT_SYNC_V2,
    TENANT_SYNC_V1,
    APPLICATION_SYNC_V2,
    APPLICATION_SYNC_V1,
    AUTH_SYNC_V2,
    AUTH_SYNC_V1,
    SINGLE_ORG_SYNC_V2,
    SINGLE_ORG_SYNC_V1,
    ALL_ORG_SYNC_V2,
    ALL_ORG_SYNC_V1,
];

/// `POST /saas/produceAPI/v2/tenantSync`.
pub const TENANT_SYNC_V2: Route = Route {
    method: "POST",
    path: "/saas/produceAPI/v2/tenantSync",
    function: "tenant-sync",
    interface: InterfaceType::Kit,
    scheme: AuthScheme::KitHeaders,
};

/// `POST /saas/produceAPI/tenantSync`.
pub const TENANT_SYNC_V1: Route = Route {
    method: "POST",
    path: "/saas/produceAPI/tenantSync",
    function: "tenant-sync",
    interface: InterfaceType::Legacy,
    scheme: AuthScheme::V1BodyToken,
};

/// `POST /saas/produceAPI/v2/applicationSync`.
pub const APPLICATION_SYNC_V2: Route = Route {
    method: "POST",
    path: "/saas/produceAPI/v2/applicationSync",
    function: "application-sync",
    interface: InterfaceType::Kit,
    scheme: AuthScheme::KitHeaders,
};

/// `POST /saas/produceAPI/applicationSync`.
pub const APPLICATION_SYNC_V1: Route = Route {
    method: "POST",
    path: "/saas/produceAPI/applicationSync",
    function: "application-sync",
    interface: InterfaceType::Legacy,
    scheme: AuthScheme::V1BodyToken,
};

/// `POST /saas/produceAPI/v2/authSync`.
pub const AUTH_SYNC_V2: Route = Route {
    method: "POST",
    path: "/saas/produceAPI/v2/authSync",
    function: "auth-sync",
    interface: InterfaceType::Kit,
    scheme: AuthScheme::KitHeaders,
};

/// `POST /saas/produceAPI/authSync`.
pub const AUTH_SYNC_V1: Route = Route {
    method: "POST",
    path: "/saas/produceAPI/authSync",
    function: "auth-sync",
    interface: InterfaceType::Legacy,
    scheme: AuthScheme::V1BodyToken,
};

/// `POST /saas/produceAPI/v2/singleOrgSync`.
pub const SINGLE_ORG_SYNC_V2: Route = Route {
    method: "POST",
    path: "/saas/produceAPI/v2/singleOrgSync",
    function: "single-org-sync",
    interface: InterfaceType::Kit,
    scheme: AuthScheme::KitHeaders,
};

/// `POST /saas/produceAPI/singleOrgSync`.
pub const SINGLE_ORG_SYNC_V1: Route = Route {
    method: "POST",
    path: "/saas/produceAPI/singleOrgSync",
    function: "single-org-sync",
    interface: InterfaceType::Legacy,
    scheme: AuthScheme::V1BodyToken,
};

/// `POST /saas/produceAPI/v2/allOrgSync`.
pub const ALL_ORG_SYNC_V2: Route = Route {
    method: "POST",
    path: "/saas/produceAPI/v2/allOrgSync",
    function: "all-org-sync",
    interface: InterfaceType::Kit,
    scheme: AuthScheme::KitHeaders,
};

/// `POST /saas/produceAPI/allOrgSync`.
pub const ALL_ORG_SYNC_V1: Route = Route {
    method: "POST",
    path: "/saas/produceAPI/allOrgSync",
    function: "all-org-sync",
    interface: InterfaceType::Legacy,
    scheme: AuthScheme::V1BodyToken,
};

/// The route of a kit interface on its V2 or V1 path. Exhaustive: every interface has both.
pub fn route(op: KitOp, version: KitVersion) -> &'static Route {
    match (op, version) {
        (KitOp::TenantSync, KitVersion::V2) => &TENANT_SYNC_V2,
        (KitOp::TenantSync, KitVersion::V1) => &TENANT_SYNC_V1,
        (KitOp::ApplicationSync, KitVersion::V2) => &APPLICATION_SYNC_V2,
        (KitOp::ApplicationSync, KitVersion::V1) => &APPLICATION_SYNC_V1,
        (KitOp::AuthSync, KitVersion::V2) => &AUTH_SYNC_V2,
        (KitOp::AuthSync, KitVersion::V1) => &AUTH_SYNC_V1,
        (KitOp::SingleOrgSync, KitVersion::V2) => &SINGLE_ORG_SYNC_V2,
        (KitOp::SingleOrgSync, KitVersion::V1) => &SINGLE_ORG_SYNC_V1,
        (KitOp::AllOrgSync, KitVersion::V2) => &ALL_ORG_SYNC_V2,
        (KitOp::AllOrgSync, KitVersion::V1) => &ALL_ORG_SYNC_V1,
    }
}

/// One kit interface on one of its two routes.
#[derive(Debug, Clone, Copy)]
pub struct KitFunction {
    op: KitOp,
    version: KitVersion,
    route: &'static Route,
}

impl KitFunction {
    /// The interface on its V2 (`/saas/produceAPI/v2/<op>`) or V1 (`/saas/produceAPI/<op>`) path.
    pub fn new(op: KitOp, version: KitVersion) -> KitFunction {
        KitFunction {
            op,
            version,
            route: route(op, version),
        }
    }

    /// The two routes of one interface: what its Lambda function serves.
    pub fn both(op: KitOp) -> Vec<Arc<dyn Function>> {
        [KitVersion::V2, KitVersion::V1]
            .into_iter()
            .map(|v| Arc::new(KitFunction::new(op, v)) as Arc<dyn Function>)
            .collect()
    }

    /// All ten kit routes (`koogate serve`).
    pub fn all() -> Vec<Arc<dyn Function>> {
        KitOp::ALL.into_iter().flat_map(KitFunction::both).collect()
    }
}

#[async_trait]
impl Function for KitFunction {
    fn route(&self) -> &'static Route {
        self.route
    }

    async fn handle(&self, call: &Call<'_>) -> Result<Reply, Failure> {
        let activity = self.op.name();
        let request = match parse_kit(self.op, self.version, call.body) {
            Ok(r) => r,
            Err(e) => {
                call.label(activity, false);
                return Err(e.into());
            }
        };
        let debug = request.common().debug;
        call.label(activity, debug);
        call.trace(TraceIds {
            tenant_id: Some(request.tenant_id().to_string()),
            instance_id: Some(request.common().instance_id.clone()),
            ..TraceIds::default()
        });
        if let KitRequest::Application(app) = &request {
            check_client_secret(call, app)?;
        }
        let partition = Partition::from_debug_flag(debug);
        let dir = Directory::new(call.app.store.as_ref(), partition, request.tenant_id());
        let writes = plan::writes(&dir, &request, call.now_ms).await?;
        let changed = changes::changed(call, partition, request.tenant_id(), &writes).await?;
        let events = events(call, &request, &writes, &changed, debug);
        dir.apply(&writes, &events).await?;
        if !events.is_empty() {
            call.app.events_recorded();
        }
        Ok(Answer::ok().into())
    }
}

/// The events of a sync (README, "Connecting your product"): one per tenant, app, user or
/// department it changed (`changed`: the sort keys whose write changes what is stored), so a
/// resent sync emits nothing. Never the client secret, a phone number or an e-mail address.
fn events(
    call: &Call<'_>,
    request: &KitRequest,
    writes: &[DirectoryWrite],
    changed: &HashSet<String>,
    debug: bool,
) -> Vec<EventDraft> {
    let ev = |event_type: &str, data: serde_json::Value| {
        catalogue::directory_event(call.app, event_type, debug, call.now_ms, data)
    };
    let touched = |sks: &[String]| sks.iter().any(|k| changed.contains(k));
    match request {
        KitRequest::Tenant(_) if !touched(&[sk::TENANT.to_string()]) => Vec::new(),
        KitRequest::Application(a) if !touched(&[sk::app(&a.app_id)]) => Vec::new(),
        KitRequest::Tenant(t) => ev(
            if t.flag == Flag::Delete {
                "tenant.deleted"
            } else {
                "tenant.synced"
            },
            json!({"tenantId": t.tenant_id, "tenantCode": t.tenant_code, "name": t.name,
                   "domainName": t.domain_name}),
        )
        .into_iter()
        .collect(),
        KitRequest::Application(a) => ev(
            if a.flag == Flag::Delete {
                "app.deleted"
            } else {
                "app.synced"
            },
            json!({"tenantId": a.tenant_id, "appId": a.app_id, "clientId": a.client_id}),
        )
        .into_iter()
        .collect(),
        KitRequest::Auth(a) => {
            let event_type = match a.flag {
                Flag::Add | Flag::Modify => "user.synced",
                Flag::Revoke => "user.access_revoked",
                Flag::Delete => "user.deleted",
            };
            a.users
                .iter()
                .filter(|u| touched(&[sk::user(&u.user_name), sk::access(&u.user_name, &a.app_id)]))
                .filter_map(|u| {
                    ev(
                        event_type,
                        json!({"tenantId": a.tenant_id, "appId": a.app_id,
                               "userName": u.user_name, "name": u.name, "role": u.role,
                               "enabled": u.enable, "orgCode": u.org_code}),
                    )
                })
                .collect()
        }
        KitRequest::SingleOrg(_) | KitRequest::AllOrg(_) => writes
            .iter()
            .filter_map(|w| match w {
                DirectoryWrite::Put(item)
                    if item.sk.starts_with(sk::ORG_PREFIX) && changed.contains(&item.sk) =>
                {
                    serde_json::from_str::<Department>(&item.doc).ok()
                }
                _ => None,
            })
            .filter_map(|d| {
                ev(
                    if d.deleted {
                        "org.deleted"
                    } else {
                        "org.synced"
                    },
                    json!({"tenantId": request.tenant_id(), "orgCode": d.org_code,
                           "name": d.org_name, "parentCode": d.parent_code}),
                )
            })
            .collect(),
    }
}

/// D15: an added or modified `clientSecret` must decrypt with the merchant's key, else the
/// sync is refused with `000002` naming the field (the plaintext is dropped at once).
fn check_client_secret(
    call: &Call<'_>,
    app: &koogate_protocol::kit_request::ApplicationSync,
) -> Result<(), RequestError> {
    if !app.flag.upserts() {
        return Ok(());
    }
    call.app
        .merchant_key()
        .and_then(|key| key.decrypt(&app.client_secret))
        .map(drop)
        .map_err(|e| RequestError::InvalidField {
            field: "clientSecret",
            reason: e.to_string(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kit_interface_has_both_routes_in_the_table() {
        for op in KitOp::ALL {
            for v in [KitVersion::V2, KitVersion::V1] {
                let f = KitFunction::new(op, v);
                assert!(ROUTES.contains(f.route), "{op:?} {v:?}");
                let prefix = match v {
                    KitVersion::V2 => "/saas/produceAPI/v2/",
                    KitVersion::V1 => "/saas/produceAPI/",
                };
                assert_eq!(f.route.path, format!("{prefix}{}", op.name()));
                let scheme = match v {
                    KitVersion::V2 => AuthScheme::KitHeaders,
                    KitVersion::V1 => AuthScheme::V1BodyToken,
                };
                assert_eq!(f.route.scheme, scheme, "{op:?} {v:?}");
            }
        }
        assert_eq!(KitFunction::all().len(), 10);
        assert_eq!(ROUTES.len(), 10);
    }
}
