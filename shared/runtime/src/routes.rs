//! The route table: which HTTP method and path reach which function, and which interface type's
//! keys authenticate it.
//!
//! Here are the route's type and its one matcher. The routes themselves are declared by the
//! function crates that serve them (each a named constant in its crate's `ROUTES`, which the
//! function names directly: no lookup that could fail); `koogate_infra::routes::table()`
//! assembles them into the table. `koogate serve` refuses to start when a route of the table has
//! no function, and `infra/template.yaml` is generated from the same table (`make template`; a
//! test fails on drift), so the local process and the deployed API cannot drift apart.

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

/// A browser route of a function `f` on `method` and `path`: what the matchers' tests route by.
#[cfg(test)]
pub(crate) const fn test_route(method: &'static str, path: &'static str) -> Route {
    Route {
        method,
        path,
        function: "f",
        interface: InterfaceType::Browser,
        scheme: AuthScheme::Browser,
    }
}

#[cfg(test)]
mod tests {
    use super::test_route as route;
    use super::*;

    const POST_SAAS: Route = route("POST", "/saas");
    const GET_SAAS: Route = route("GET", "/saas");
    const INSTANCE: Route = route("GET", "/isv/v1/instances/{instanceId}");
    const TABLE: [Route; 3] = [POST_SAAS, GET_SAAS, INSTANCE];

    fn find(method: &str, path: &str) -> Option<&'static Route> {
        matching(&TABLE, method, path)
    }

    #[test]
    fn routes_match_their_method_and_path_and_fill_templates() {
        assert_eq!(find("post", "/saas"), Some(&POST_SAAS));
        assert_eq!(find("GET", "/saas"), Some(&GET_SAAS));
        assert_eq!(find("PUT", "/saas"), None);
        assert_eq!(find("POST", "/saas/"), None);
        assert_eq!(find("GET", "/isv/v1/instances/i-1"), Some(&INSTANCE));
        // A placeholder needs a non-empty segment, and only one.
        assert_eq!(find("GET", "/isv/v1/instances/"), None);
        assert_eq!(find("GET", "/isv/v1/instances/a/b"), None);
        assert_eq!(find("GET", "/isv/v1/instances"), None);
        // Each route matches itself: the Lambda route key carries the template as declared.
        for r in &TABLE {
            assert_eq!(find(r.method, r.path), Some(r), "{} {}", r.method, r.path);
        }
    }
}
