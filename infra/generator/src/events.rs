//! The logical name of each route's HttpApi event.
//!
//! SAM names the Lambda permission of an event after it (`<Function><Event>Permission`), so
//! renaming an event replaces that permission on the next deploy. The routes deployed before the
//! generator keep the names they had ([`NAMED`]); any other route is named after its method and
//! path ([`derived_name`]).

use koogate_kit as kit;
use koogate_product_api as api;
use koogate_runtime::routes::Route;

/// Routes whose event name is not [`derived_name`]'s: the kit's two paths per interface, and the
/// Product API, whose paths carry version and parameter segments.
const NAMED: &[(Route, &str)] = &[
    (kit::TENANT_SYNC_V2, "PostTenantSyncV2"),
    (kit::TENANT_SYNC_V1, "PostTenantSyncV1"),
    (kit::APPLICATION_SYNC_V2, "PostApplicationSyncV2"),
    (kit::APPLICATION_SYNC_V1, "PostApplicationSyncV1"),
    (kit::AUTH_SYNC_V2, "PostAuthSyncV2"),
    (kit::AUTH_SYNC_V1, "PostAuthSyncV1"),
    (kit::SINGLE_ORG_SYNC_V2, "PostSingleOrgSyncV2"),
    (kit::SINGLE_ORG_SYNC_V1, "PostSingleOrgSyncV1"),
    (kit::ALL_ORG_SYNC_V2, "PostAllOrgSyncV2"),
    (kit::ALL_ORG_SYNC_V1, "PostAllOrgSyncV1"),
    (api::INSTANCE, "GetIsvInstance"),
    (api::PROVISIONED, "PostIsvInstanceProvisioned"),
    (api::LICENSE, "PostIsvLicense"),
    (api::USAGE, "PostIsvUsage"),
];

/// The event name of a route.
pub fn event_name(route: &Route) -> String {
    NAMED
        .iter()
        .find(|(named, _)| named.method == route.method && named.path == route.path)
        .map(|(_, name)| name.to_string())
        .unwrap_or_else(|| derived_name(route))
}

/// The method and every path segment in PascalCase, braces and punctuation dropped:
/// `GET /sso/login` → `GetSsoLogin`, `POST /order-notify` → `PostOrderNotify`.
pub fn derived_name(route: &Route) -> String {
    let method = crate::functions::pascal_case(&route.method.to_ascii_lowercase());
    format!("{method}{}", crate::functions::pascal_case(route.path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_names_are_those_of_the_plain_routes() {
        assert_eq!(derived_name(&koogate_saas::ROUTE), "PostSaas");
        assert_eq!(derived_name(&koogate_saas_legacy::ROUTE), "GetSaas");
        assert_eq!(
            derived_name(&koogate_order_notify::ROUTE),
            "PostOrderNotify"
        );
        assert_eq!(derived_name(&koogate_sso::CALLBACK), "GetSsoCallback");
        assert_eq!(derived_name(&api::INSTANCE), "GetIsvV1InstancesInstanceId");
    }

    #[test]
    fn every_named_route_is_in_the_route_table() {
        for (route, name) in NAMED {
            assert!(
                crate::routes::table().contains(route),
                "{name}: {} {} is not in the route table any more; drop it from NAMED",
                route.method,
                route.path
            );
        }
    }
}
