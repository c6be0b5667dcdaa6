//! The joint-operation login (docs/protocol.md (sso)): `GET /sso/login` sends the browser to the marketplace's
//! unified login page, `GET /sso/callback` exchanges the code at the tenant's identity domain,
//! maps the account to the synced directory and opens a store-backed session, `GET /sso/session`
//! tells the ISV's app who is signed in (re-checking the directory and refreshing the access
//! token), and `GET /sso/logout` ends the session and signs out at the identity domain.
//!
//! Tokens, codes and client secrets never reach a log line; log lines carry the tenant ID and
//! the user name at most.

#![forbid(unsafe_code)]
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

mod callback;
mod failure;
pub mod idp;
mod login;
mod logout;
pub mod member;
pub mod records;
mod session_info;
pub mod settings;

use std::sync::Arc;

use async_trait::async_trait;
use koogate_runtime::config::ConfigError;
use koogate_runtime::routes::{AuthScheme, InterfaceType, Route};
use koogate_runtime::web::{WebFunction, WebRequest, WebResponse};
use koogate_runtime::App;

pub use settings::Settings;

/// The session cookie. `__Host-`: the browser accepts it only with Secure, Path=/ and no Domain.
pub const SESSION_COOKIE: &str = "__Host-koogate_session";
/// The cookie binding a started login (and its `state`) to the browser that started it.
pub const STATE_COOKIE: &str = "__Host-koogate_sso_state";

/// The login's browser routes.
pub const ROUTES: &[Route] = &[LOGIN, CALLBACK, LOGOUT, SESSION];

/// `GET /sso/login`.
pub const LOGIN: Route = Route {
    method: "GET",
    path: "/sso/login",
    function: "sso",
    interface: InterfaceType::Browser,
    scheme: AuthScheme::Browser,
};

/// `GET /sso/callback`.
pub const CALLBACK: Route = Route {
    method: "GET",
    path: "/sso/callback",
    function: "sso",
    interface: InterfaceType::Browser,
    scheme: AuthScheme::Browser,
};

/// `GET /sso/logout`.
pub const LOGOUT: Route = Route {
    method: "GET",
    path: "/sso/logout",
    function: "sso",
    interface: InterfaceType::Browser,
    scheme: AuthScheme::Browser,
};

/// `GET /sso/session`.
pub const SESSION: Route = Route {
    method: "GET",
    path: "/sso/session",
    function: "sso",
    interface: InterfaceType::Browser,
    scheme: AuthScheme::Browser,
};

/// The login function: settings and the identity-domain client, built once per process.
pub struct SsoFunction {
    settings: Settings,
    idp: idp::IdpClient,
}

impl SsoFunction {
    /// From `KOOGATE_SSO_*` environment variables.
    pub fn from_env() -> Result<SsoFunction, ConfigError> {
        SsoFunction::new(Settings::from_env()?)
    }

    /// From explicit settings (tests, `koogate serve`).
    pub fn new(settings: Settings) -> Result<SsoFunction, ConfigError> {
        let idp = idp::IdpClient::new(settings.idp_timeout).map_err(|reason| ConfigError {
            var: "KOOGATE_SSO_IDP_TIMEOUT_MS",
            reason,
        })?;
        Ok(SsoFunction { settings, idp })
    }
}

#[async_trait]
impl WebFunction for SsoFunction {
    fn name(&self) -> &'static str {
        "sso"
    }

    fn routes(&self) -> &'static [Route] {
        ROUTES
    }

    async fn handle(&self, app: &Arc<App>, route: &'static Route, req: &WebRequest) -> WebResponse {
        let now_ms = now_ms();
        let result = match route.path {
            "/sso/login" => login::handle(self, app, req, now_ms).await,
            "/sso/callback" => callback::handle(self, app, req, now_ms).await,
            "/sso/logout" => logout::handle(self, app, req).await,
            "/sso/session" => session_info::handle(self, app, req, now_ms).await,
            _ => Err(failure::Failure::NotFound),
        };
        result.unwrap_or_else(|f| f.respond(route.path, &req.request_id))
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn duration_ms(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}
