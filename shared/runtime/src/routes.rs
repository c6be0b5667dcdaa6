//! The route table: which HTTP method and path reach which function, and which interface type's
//! keys authenticate it.
//!
//! This is the one place routes are declared: each route is a named constant, which the function
//! serving it names directly (no lookup that could fail), and [`ROUTES`] lists them all. `koogate serve` mounts exactly these, and `infra/template.yaml` is
//! generated from them (`infra/generator`, `make template`; a test fails on drift), so the local
//! process and the deployed API can never drift apart.

use koogate_protocol::kit_request::{KitOp, KitVersion};

/// The interface type a key is bound to in the seller console (spec README, "Keys and credentials").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InterfaceType {
    /// 基础接口: SaaS V2 lifecycle and online License.
    Basic,
    /// 联营SaaS同步接口: the joint-operation kit sync calls.
    Kit,
    /// License授权码交付接口: License 2.0 merchant calls.
    License,
    /// 通用接口: order notification.
    General,
    /// The V1 Key值, used by every V1 interface.
    Legacy,
    /// Web routes (the joint-operation login, the Product API): no access key, the marketplace
    /// never signs them; browsers and the ISV's product call them.
    Browser,
}

impl InterfaceType {
    /// The name used in the secrets document (`access_keys.<name>`) and in store keys.
    pub fn name(self) -> &'static str {
        match self {
            InterfaceType::Basic => "basic",
            InterfaceType::Kit => "kit",
            InterfaceType::License => "license",
            InterfaceType::General => "general",
            InterfaceType::Legacy => "legacy",
            InterfaceType::Browser => "browser",
        }
    }

    /// Whether routes of this type need a key in the secrets document.
    pub fn needs_key(self) -> bool {
        self != InterfaceType::Browser
    }
}

/// How requests on a route are authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuthScheme {
    /// V2: `signature`, `timestamp`, `nonce` in the URL query, over the JSON body.
    UrlSignature,
    /// V1: `authToken` and `timeStamp` in the URL query, over the other query parameters.
    V1QueryToken,
    /// Kit V2: `x-sign`, `x-timestamp`, `x-nonce` headers over the JSON body (docs/protocol.md, signatures §4).
    KitHeaders,
    /// Kit V1: `authToken` header over the body's members, keyed with the body's `timeStamp`
    /// (docs/protocol.md, signatures §6.3).
    V1BodyToken,
    /// Not signed: a browser route served by a [`crate::web::WebFunction`] (redirects, cookies
    /// and JSON), never by the signed pipeline.
    Browser,
}

/// One API Gateway route served by one Lambda function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    /// Upper-case HTTP method.
    pub method: &'static str,
    /// Exact path, as registered in API Gateway and matched by `koogate serve`.
    pub path: &'static str,
    /// The Lambda function (crate `functions/<function>`, binary `<function>`).
    pub function: &'static str,
    /// Whose keys authenticate the route.
    pub interface: InterfaceType,
    pub scheme: AuthScheme,
}

/// Every route koogate serves. Each kit function serves two routes, its V2 and its V1 path
/// (design §2): the marketplace appends `/produceAPI/v2/<op>` or `/produceAPI/<op>` to the
/// registered production address, `/saas`.
pub const ROUTES: &[Route] = &[
    // the marketplace's signed interfaces
    SAAS,
    SAAS_LEGACY,
    LICENSE,
    LICENSE_LEGACY,
    ORDER_NOTIFY,
    // the joint-operation kit: V2 and V1 path of each interface
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
    // the joint-operation login (browser)
    SSO_LOGIN,
    SSO_CALLBACK,
    SSO_LOGOUT,
    SSO_SESSION,
    // the Product API (bearer tokens)
    PRODUCT_API_INSTANCE,
    PRODUCT_API_PROVISIONED,
    PRODUCT_API_LICENSE,
    PRODUCT_API_USAGE,
];

/// `POST /saas`.
pub const SAAS: Route = Route {
    method: "POST",
    path: "/saas",
    function: "saas",
    interface: InterfaceType::Basic,
    scheme: AuthScheme::UrlSignature,
};

/// `GET /saas`.
pub const SAAS_LEGACY: Route = Route {
    method: "GET",
    path: "/saas",
    function: "saas-legacy",
    interface: InterfaceType::Legacy,
    scheme: AuthScheme::V1QueryToken,
};

/// `POST /license`.
pub const LICENSE: Route = Route {
    method: "POST",
    path: "/license",
    function: "license",
    interface: InterfaceType::License,
    scheme: AuthScheme::UrlSignature,
};

/// `GET /license`.
pub const LICENSE_LEGACY: Route = Route {
    method: "GET",
    path: "/license",
    function: "license-legacy",
    interface: InterfaceType::Legacy,
    scheme: AuthScheme::V1QueryToken,
};

/// `POST /order-notify`.
pub const ORDER_NOTIFY: Route = Route {
    method: "POST",
    path: "/order-notify",
    function: "order-notify",
    interface: InterfaceType::General,
    scheme: AuthScheme::UrlSignature,
};

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

/// `GET /sso/login`.
pub const SSO_LOGIN: Route = Route {
    method: "GET",
    path: "/sso/login",
    function: "sso",
    interface: InterfaceType::Browser,
    scheme: AuthScheme::Browser,
};

/// `GET /sso/callback`.
pub const SSO_CALLBACK: Route = Route {
    method: "GET",
    path: "/sso/callback",
    function: "sso",
    interface: InterfaceType::Browser,
    scheme: AuthScheme::Browser,
};

/// `GET /sso/logout`.
pub const SSO_LOGOUT: Route = Route {
    method: "GET",
    path: "/sso/logout",
    function: "sso",
    interface: InterfaceType::Browser,
    scheme: AuthScheme::Browser,
};

/// `GET /sso/session`.
pub const SSO_SESSION: Route = Route {
    method: "GET",
    path: "/sso/session",
    function: "sso",
    interface: InterfaceType::Browser,
    scheme: AuthScheme::Browser,
};

/// `GET /isv/v1/instances/{instanceId}`.
pub const PRODUCT_API_INSTANCE: Route = Route {
    method: "GET",
    path: "/isv/v1/instances/{instanceId}",
    function: "product-api",
    interface: InterfaceType::Browser,
    scheme: AuthScheme::Browser,
};

/// `POST /isv/v1/instances/{instanceId}/provisioned`.
pub const PRODUCT_API_PROVISIONED: Route = Route {
    method: "POST",
    path: "/isv/v1/instances/{instanceId}/provisioned",
    function: "product-api",
    interface: InterfaceType::Browser,
    scheme: AuthScheme::Browser,
};

/// `POST /isv/v1/licenses/{eventId}`.
pub const PRODUCT_API_LICENSE: Route = Route {
    method: "POST",
    path: "/isv/v1/licenses/{eventId}",
    function: "product-api",
    interface: InterfaceType::Browser,
    scheme: AuthScheme::Browser,
};

/// `POST /isv/v1/usage`.
pub const PRODUCT_API_USAGE: Route = Route {
    method: "POST",
    path: "/isv/v1/usage",
    function: "product-api",
    interface: InterfaceType::Browser,
    scheme: AuthScheme::Browser,
};

impl Route {
    /// Whether this route answers `method` on `path`: the one matcher of every adapter (the
    /// Lambda event's route key or raw path, `koogate serve`'s signed and browser routes). The
    /// method is compared without regard to case; a `{name}` segment of the route's path matches
    /// any one non-empty segment.
    pub fn matches(&self, method: &str, path: &str) -> bool {
        self.method.eq_ignore_ascii_case(method) && path_matches(self.path, path)
    }
}

/// The first of `routes` that answers `method` on `path` ([`Route::matches`]).
pub fn matching<'r>(
    routes: impl IntoIterator<Item = &'r Route>,
    method: &str,
    path: &str,
) -> Option<&'r Route> {
    routes.into_iter().find(|r| r.matches(method, path))
}

fn path_matches(template: &str, path: &str) -> bool {
    let mut t = template.split('/');
    let mut p = path.split('/');
    loop {
        match (t.next(), p.next()) {
            (None, None) => return true,
            (Some(ts), Some(ps)) if ts.starts_with('{') && ts.ends_with('}') => {
                if ps.is_empty() {
                    return false;
                }
            }
            (Some(ts), Some(ps)) if ts == ps => {}
            _ => return false,
        }
    }
}

/// The route of a kit interface on its V2 or V1 path. Exhaustive: every interface has both.
pub fn kit(op: KitOp, version: KitVersion) -> &'static Route {
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

/// The first route of a function by its name (kit functions have two: V2 first).
pub fn by_function(function: &str) -> Option<&'static Route> {
    ROUTES.iter().find(|r| r.function == function)
}

/// The route for a method and path, if koogate serves it.
pub fn find(method: &str, path: &str) -> Option<&'static Route> {
    matching(ROUTES, method, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_method_and_path_is_routed_once() {
        for (i, r) in ROUTES.iter().enumerate() {
            let same = ROUTES
                .iter()
                .skip(i + 1)
                .find(|o| o.method == r.method && o.path == r.path);
            assert!(same.is_none(), "{} {} is routed twice", r.method, r.path);
        }
    }

    #[test]
    fn routes_match_their_method_and_path_and_fill_templates() {
        assert_eq!(find("post", "/saas"), Some(&SAAS));
        assert_eq!(find("GET", "/saas"), Some(&SAAS_LEGACY));
        assert_eq!(find("PUT", "/saas"), None);
        assert_eq!(find("POST", "/saas/"), None);
        let instance = PRODUCT_API_INSTANCE.path.replace("{instanceId}", "i-1");
        assert_ne!(
            instance, PRODUCT_API_INSTANCE.path,
            "the template has a placeholder"
        );
        assert_eq!(
            find(PRODUCT_API_INSTANCE.method, &instance),
            Some(&PRODUCT_API_INSTANCE)
        );
        // A placeholder needs a non-empty segment, and only one.
        let empty = PRODUCT_API_INSTANCE.path.replace("{instanceId}", "");
        assert_eq!(find(PRODUCT_API_INSTANCE.method, &empty), None);
        let two = PRODUCT_API_INSTANCE.path.replace("{instanceId}", "a/b");
        assert_eq!(find(PRODUCT_API_INSTANCE.method, &two), None);
        // Each route matches itself: the Lambda route key carries the template as declared.
        for r in ROUTES {
            assert_eq!(find(r.method, r.path), Some(r), "{} {}", r.method, r.path);
        }
    }

    #[test]
    fn kit_routes_match_their_interface_and_version() {
        for op in KitOp::ALL {
            let v2 = kit(op, KitVersion::V2);
            let v1 = kit(op, KitVersion::V1);
            assert_eq!(v2.path, format!("/saas/produceAPI/v2/{}", op.name()));
            assert_eq!(v1.path, format!("/saas/produceAPI/{}", op.name()));
            assert_eq!(
                (v2.scheme, v1.scheme),
                (AuthScheme::KitHeaders, AuthScheme::V1BodyToken)
            );
            assert_eq!(v2.function, v1.function);
            assert!(ROUTES.contains(v2) && ROUTES.contains(v1));
        }
    }
}
