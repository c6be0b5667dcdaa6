//! Every way a login route can fail, and the answer each gives: a small HTML page for the browser
//! routes, JSON for `/sso/session`. One log line per failure, with no secret in it.

use koogate_runtime::web::WebResponse;
use koogate_store::StoreError;

use crate::member::Denied;

/// A failed request.
#[derive(Debug)]
pub enum Failure {
    /// 400: the request is malformed, the login was not started here, or `state` does not match.
    BadRequest(String),
    /// 401: no live session.
    NotSignedIn(String),
    /// 403: the directory refuses the account or the tenant.
    Denied(Denied),
    /// 502: the identity domain refused or did not answer.
    Idp(String),
    /// 500: this deployment cannot complete the login (store, key, settings).
    Internal(String),
    /// 404.
    NotFound,
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Self {
        Failure::Internal(e.to_string())
    }
}

impl From<Denied> for Failure {
    fn from(d: Denied) -> Self {
        Failure::Denied(d)
    }
}

impl Failure {
    fn status(&self) -> u16 {
        match self {
            Failure::BadRequest(_) => 400,
            Failure::NotSignedIn(_) => 401,
            Failure::Denied(_) => 403,
            Failure::NotFound => 404,
            Failure::Internal(_) => 500,
            Failure::Idp(_) => 502,
        }
    }

    fn message(&self) -> String {
        match self {
            Failure::BadRequest(m) | Failure::NotSignedIn(m) | Failure::Idp(m) => m.clone(),
            Failure::Internal(m) => m.clone(),
            Failure::Denied(d) => d.to_string(),
            Failure::NotFound => "no such route".into(),
        }
    }

    fn code(&self) -> &'static str {
        match self {
            Failure::BadRequest(_) => "bad_request",
            Failure::NotSignedIn(_) => "not_signed_in",
            Failure::Denied(_) => "forbidden",
            Failure::NotFound => "not_found",
            Failure::Internal(_) => "internal_error",
            Failure::Idp(_) => "identity_provider_error",
        }
    }

    /// The answer: JSON on `/sso/session`, a page elsewhere.
    pub fn respond(&self, path: &str, request_id: &str) -> WebResponse {
        let status = self.status();
        let message = self.message();
        if status >= 500 {
            tracing::error!(route = path, request_id, status, reason = %message, "sso failed");
        } else {
            tracing::warn!(route = path, request_id, status, reason = %message, "sso refused");
        }
        // Internal details (store errors) stay in the log.
        let shown = match self {
            Failure::Internal(_) => {
                "the login cannot be completed right now; try again later".to_string()
            }
            _ => message,
        };
        if path == "/sso/session" {
            WebResponse::json(
                status,
                &serde_json::json!({"error": self.code(), "message": shown}),
            )
        } else {
            let title = match status {
                400 => "Sign-in request not valid",
                401 => "Not signed in",
                403 => "Sign-in refused",
                502 => "Identity provider error",
                404 => "Not found",
                _ => "Sign-in failed",
            };
            WebResponse::page(status, title, &shown)
        }
    }
}
