//! The calls to a tenant's identity domain (docs/protocol.md, sso §5–§7): token by code, token by refresh
//! token, user info. HTTPS with rustls (ring, webpki roots); plain HTTP only where the settings
//! allow it, which [`koogate_protocol::sso::identity_base`] checks before any call.
//!
//! Secrets travel only in form bodies and the `Authorization` header, never in URLs, and no
//! error here carries a request or answer body.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE};
use hyper::{Method, Request};
use koogate_protocol::sso::{self, OAuthError, TokenGrant, UserInfo};

/// At most this much of an identity-domain answer is read.
const MAX_ANSWER_BYTES: usize = 256 * 1024;

/// Why an identity-domain call failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum IdpError {
    /// No answer: connection, TLS or time limit.
    #[error("identity provider unreachable: {0}")]
    Unreachable(String),
    /// An answer that refuses (`invalid_grant`, `invalid_client`, `unauthorized`, …) or that is
    /// not the documented one.
    #[error(transparent)]
    Refused(#[from] OAuthError),
}

/// The client of the identity domains, built once per process.
#[derive(Clone)]
pub struct IdpClient {
    http: koogate_runtime::https::HttpsClient,
    timeout: Duration,
}

impl IdpClient {
    /// An HTTPS client trusting the webpki roots; `http://` is connected too, and refused earlier
    /// by the settings check unless allowed.
    pub fn new(timeout: Duration) -> Result<IdpClient, String> {
        Ok(IdpClient {
            http: koogate_runtime::https::client()
                .map_err(|e| format!("cannot set up TLS for the identity provider: {e}"))?,
            timeout,
        })
    }

    /// `POST {base}/api/v1/oauth2/token` with `grant_type=authorization_code` (docs/protocol.md, sso §5).
    pub async fn exchange_code(
        &self,
        base: &str,
        client_id: &str,
        client_secret: &str,
        code: &str,
        redirect_uri: Option<&str>,
    ) -> Result<TokenGrant, IdpError> {
        let mut form = vec![
            ("code", code),
            ("client_id", client_id),
            ("client_secret", client_secret),
            ("grant_type", "authorization_code"),
        ];
        if let Some(r) = redirect_uri {
            form.push(("redirect_uri", r));
        }
        self.token(base, &form).await
    }

    /// `POST {base}/api/v1/oauth2/token` with `grant_type=refresh_token` (docs/protocol.md, sso §6).
    pub async fn refresh(
        &self,
        base: &str,
        client_id: &str,
        client_secret: &str,
        refresh_token: &str,
    ) -> Result<TokenGrant, IdpError> {
        let form = [
            ("client_id", client_id),
            ("client_secret", client_secret),
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
        ];
        self.token(base, &form).await
    }

    /// `GET {base}/api/v1/oauth2/userinfo` with the bearer token (docs/protocol.md, sso §7).
    pub async fn userinfo(&self, base: &str, access_token: &str) -> Result<UserInfo, IdpError> {
        let req = Request::builder()
            .method(Method::GET)
            .uri(format!("{base}/api/v1/oauth2/userinfo"))
            .header(AUTHORIZATION, format!("Bearer {access_token}"))
            .header(ACCEPT, "application/json")
            .body(Full::new(Bytes::new()))
            .map_err(|_| IdpError::Unreachable("the user-info URL is not valid".into()))?;
        let (status, body) = self.send(req).await?;
        Ok(sso::parse_userinfo_answer(status, &body)?)
    }

    async fn token(&self, base: &str, form: &[(&str, &str)]) -> Result<TokenGrant, IdpError> {
        let req = Request::builder()
            .method(Method::POST)
            .uri(format!("{base}/api/v1/oauth2/token"))
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(ACCEPT, "application/json")
            .body(Full::new(Bytes::from(sso::form_encode(form))))
            .map_err(|_| IdpError::Unreachable("the token URL is not valid".into()))?;
        let (status, body) = self.send(req).await?;
        Ok(sso::parse_token_answer(status, &body)?)
    }

    async fn send(&self, req: Request<Full<Bytes>>) -> Result<(u16, Bytes), IdpError> {
        let call = async {
            let resp = self
                .http
                .request(req)
                .await
                .map_err(|e| IdpError::Unreachable(describe(&e)))?;
            let status = resp.status().as_u16();
            let body = Limited::new(resp.into_body(), MAX_ANSWER_BYTES)
                .collect()
                .await
                .map_err(|_| IdpError::Unreachable("the answer could not be read".into()))?
                .to_bytes();
            Ok((status, body))
        };
        tokio::time::timeout(self.timeout, call)
            .await
            .map_err(|_| {
                IdpError::Unreachable(format!("no answer within {} ms", self.timeout.as_millis()))
            })?
    }
}

/// The error chain of a client error, without URLs or bodies (hyper's messages carry neither).
fn describe(e: &hyper_util::client::legacy::Error) -> String {
    let mut out = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}
