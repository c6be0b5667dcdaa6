//! The logical name of each route's HttpApi event.
//!
//! SAM names the Lambda permission of an event after it (`<Function><Event>Permission`), so
//! renaming an event replaces that permission on the next deploy. The routes deployed before the
//! generator keep the names they had ([`NAMED`]); any other route is named after its method and
//! path ([`derived_name`]).

use koogate_runtime::routes::{self, Route};

/// Routes whose event name is not [`derived_name`]'s: the kit's two paths per interface, and the
/// Product API, whose paths carry version and parameter segments.
const NAMED: &[(Route, &str)] = &[
    (routes::TENANT_SYNC_V2, "PostTenantSyncV2"),
    (routes::TENANT_SYNC_V1, "PostTenantSyncV1"),
    (routes::APPLICATION_SYNC_V2, "PostApplicationSyncV2"),
    (routes::APPLICATION_SYNC_V1, "PostApplicationSyncV1"),
    (routes::AUTH_SYNC_V2, "PostAuthSyncV2"),
    (routes::AUTH_SYNC_V1, "PostAuthSyncV1"),
    (routes::SINGLE_ORG_SYNC_V2, "PostSingleOrgSyncV2"),
    (routes::SINGLE_ORG_SYNC_V1, "PostSingleOrgSyncV1"),
    (routes::ALL_ORG_SYNC_V2, "PostAllOrgSyncV2"),
    (routes::ALL_ORG_SYNC_V1, "PostAllOrgSyncV1"),
    (routes::PRODUCT_API_INSTANCE, "GetIsvInstance"),
    (
        routes::PRODUCT_API_PROVISIONED,
        "PostIsvInstanceProvisioned",
    ),
    (routes::PRODUCT_API_LICENSE, "PostIsvLicense"),
    (routes::PRODUCT_API_USAGE, "PostIsvUsage"),
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
        assert_eq!(derived_name(&routes::SAAS), "PostSaas");
        assert_eq!(derived_name(&routes::SAAS_LEGACY), "GetSaas");
        assert_eq!(derived_name(&routes::ORDER_NOTIFY), "PostOrderNotify");
        assert_eq!(derived_name(&routes::SSO_CALLBACK), "GetSsoCallback");
        assert_eq!(
            derived_name(&routes::PRODUCT_API_INSTANCE),
            "GetIsvV1InstancesInstanceId"
        );
    }

    #[test]
    fn every_named_route_is_in_the_route_table() {
        for (route, name) in NAMED {
            assert!(
                routes::ROUTES.contains(route),
                "{name}: {} {} is not in ROUTES any more; drop it from NAMED",
                route.method,
                route.path
            );
        }
    }
}
