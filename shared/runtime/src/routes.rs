//! The route table: which HTTP method and path reach which function, and which interface type's
//! keys authenticate it.
//!
//! This is the one place routes are declared. `koogate serve` mounts exactly these, and a test in
//! `tests/` proves that `infra/template.yaml` declares exactly the same set, so the local process
//! and the deployed API can never drift apart.

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
    Route {
        method: "POST",
        path: "/saas",
        function: "saas",
        interface: InterfaceType::Basic,
        scheme: AuthScheme::UrlSignature,
    },
    Route {
        method: "GET",
        path: "/saas",
        function: "saas-legacy",
        interface: InterfaceType::Legacy,
        scheme: AuthScheme::V1QueryToken,
    },
    Route {
        method: "POST",
        path: "/license",
        function: "license",
        interface: InterfaceType::License,
        scheme: AuthScheme::UrlSignature,
    },
    Route {
        method: "GET",
        path: "/license",
        function: "license-legacy",
        interface: InterfaceType::Legacy,
        scheme: AuthScheme::V1QueryToken,
    },
    Route {
        method: "POST",
        path: "/order-notify",
        function: "order-notify",
        interface: InterfaceType::General,
        scheme: AuthScheme::UrlSignature,
    },
    Route {
        method: "POST",
        path: "/saas/produceAPI/v2/tenantSync",
        function: "tenant-sync",
        interface: InterfaceType::Kit,
        scheme: AuthScheme::KitHeaders,
    },
    Route {
        method: "POST",
        path: "/saas/produceAPI/tenantSync",
        function: "tenant-sync",
        interface: InterfaceType::Legacy,
        scheme: AuthScheme::V1BodyToken,
    },
    Route {
        method: "POST",
        path: "/saas/produceAPI/v2/applicationSync",
        function: "application-sync",
        interface: InterfaceType::Kit,
        scheme: AuthScheme::KitHeaders,
    },
    Route {
        method: "POST",
        path: "/saas/produceAPI/applicationSync",
        function: "application-sync",
        interface: InterfaceType::Legacy,
        scheme: AuthScheme::V1BodyToken,
    },
    Route {
        method: "POST",
        path: "/saas/produceAPI/v2/authSync",
        function: "auth-sync",
        interface: InterfaceType::Kit,
        scheme: AuthScheme::KitHeaders,
    },
    Route {
        method: "POST",
        path: "/saas/produceAPI/authSync",
        function: "auth-sync",
        interface: InterfaceType::Legacy,
        scheme: AuthScheme::V1BodyToken,
    },
    Route {
        method: "POST",
        path: "/saas/produceAPI/v2/singleOrgSync",
        function: "single-org-sync",
        interface: InterfaceType::Kit,
        scheme: AuthScheme::KitHeaders,
    },
    Route {
        method: "POST",
        path: "/saas/produceAPI/singleOrgSync",
        function: "single-org-sync",
        interface: InterfaceType::Legacy,
        scheme: AuthScheme::V1BodyToken,
    },
    Route {
        method: "POST",
        path: "/saas/produceAPI/v2/allOrgSync",
        function: "all-org-sync",
        interface: InterfaceType::Kit,
        scheme: AuthScheme::KitHeaders,
    },
    Route {
        method: "POST",
        path: "/saas/produceAPI/allOrgSync",
        function: "all-org-sync",
        interface: InterfaceType::Legacy,
        scheme: AuthScheme::V1BodyToken,
    },
    // ---- joint-operation login (docs/protocol.md (sso)): one browser function on four routes ----
    Route {
        method: "GET",
        path: "/sso/login",
        function: "sso",
        interface: InterfaceType::Browser,
        scheme: AuthScheme::Browser,
    },
    Route {
        method: "GET",
        path: "/sso/callback",
        function: "sso",
        interface: InterfaceType::Browser,
        scheme: AuthScheme::Browser,
    },
    Route {
        method: "GET",
        path: "/sso/logout",
        function: "sso",
        interface: InterfaceType::Browser,
        scheme: AuthScheme::Browser,
    },
    Route {
        method: "GET",
        path: "/sso/session",
        function: "sso",
        interface: InterfaceType::Browser,
        scheme: AuthScheme::Browser,
    },
    // ---- the Product API (README, "Connecting your product"): bearer tokens, not access keys
    Route {
        method: "GET",
        path: "/isv/v1/instances/{instanceId}",
        function: "product-api",
        interface: InterfaceType::Browser,
        scheme: AuthScheme::Browser,
    },
    Route {
        method: "POST",
        path: "/isv/v1/instances/{instanceId}/provisioned",
        function: "product-api",
        interface: InterfaceType::Browser,
        scheme: AuthScheme::Browser,
    },
    Route {
        method: "POST",
        path: "/isv/v1/licenses/{eventId}",
        function: "product-api",
        interface: InterfaceType::Browser,
        scheme: AuthScheme::Browser,
    },
    Route {
        method: "POST",
        path: "/isv/v1/usage",
        function: "product-api",
        interface: InterfaceType::Browser,
        scheme: AuthScheme::Browser,
    },
];

/// Whether `path` matches a route's path template, where a `{name}` segment matches any one
/// non-empty segment.
pub fn path_matches(template: &str, path: &str) -> bool {
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

/// The first route of a function by its name (kit functions have two: V2 first).
pub fn by_function(function: &str) -> Option<&'static Route> {
    ROUTES.iter().find(|r| r.function == function)
}

/// The route for a method and path, if koogate serves it.
pub fn find(method: &str, path: &str) -> Option<&'static Route> {
    ROUTES
        .iter()
        .find(|r| r.method.eq_ignore_ascii_case(method) && r.path == path)
}
