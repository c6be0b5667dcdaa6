//! `GET /sso/callback?code=…&tenant=…[&state=…]`: finishes a login (docs/protocol.md, sso §10 steps 2–7).
//!
//! The browser must carry the state cookie of a login started here within 10 minutes; a `state`
//! in the query (the authorize endpoint echoes it, docs/protocol.md, sso §4) must equal it. The started login is
//! consumed once. Then: the tenant's domain and client from the directory, the secret decrypted
//! only now (D15), code → tokens, tokens → user info, the account mapped to the directory, and a
//! session opened.

use std::sync::Arc;

use koogate_protocol::sso;
use koogate_runtime::web::{WebRequest, WebResponse};
use koogate_runtime::App;
use koogate_store::directory::AppCredential;
use koogate_store::VersionedWrite;

use crate::failure::Failure;
use crate::idp::IdpError;
use crate::member::{self, Denied};
use crate::records::{self, Session};
use crate::{duration_ms, SsoFunction, SESSION_COOKIE, STATE_COOKIE};

pub async fn handle(
    f: &SsoFunction,
    app: &Arc<App>,
    req: &WebRequest,
    now_ms: i64,
) -> Result<WebResponse, Failure> {
    let s = &f.settings;
    let store = app.store.as_ref();
    if let Some(error) = req.query("error") {
        return Err(Failure::BadRequest(format!(
            "the identity provider ended the sign-in: {}",
            error.chars().take(100).collect::<String>()
        )));
    }
    let state = req
        .cookie(STATE_COOKIE)
        .filter(|c| !c.is_empty())
        .ok_or_else(|| {
            Failure::BadRequest(
                "this sign-in was not started here, or took longer than 10 minutes: start again"
                    .into(),
            )
        })?;
    if let Some(echoed) = req.query("state") {
        if !same(&echoed, &state) {
            return Err(Failure::BadRequest(
                "the state of this sign-in does not match the one issued to this browser \
                 (possible cross-site request forgery): start again"
                    .into(),
            ));
        }
    }
    let code = nonempty(req.query("code"), "code")?;
    let tenant_id = nonempty(req.query("tenant"), "tenant")?;
    let pending = records::take_login(store, &state, now_ms)
        .await?
        .ok_or_else(|| {
            Failure::BadRequest("this sign-in expired or was already used: start again".into())
        })?;
    if pending.tenant_id.as_deref().is_some_and(|t| t != tenant_id) {
        return Err(Failure::BadRequest(
            "the sign-in came back for another tenant than the one it was started for".into(),
        ));
    }
    let app_id = match member::app_id(store, s.app_id.as_deref(), Some(&tenant_id)).await? {
        Ok(id) => id,
        Err(Denied::NoAppId(0)) => {
            // No client at all for the tenant: report the tenant's own state first.
            member::tenant_client(store, &tenant_id, "").await??;
            return Err(Failure::Denied(Denied::NoAppId(0)));
        }
        Err(d) => return Err(Failure::Denied(d)),
    };
    let (tenant, client) = member::tenant_client(store, &tenant_id, &app_id).await??;
    let base = sso::identity_base(&tenant.domain_name, s.allow_http_idp)
        .map_err(|e| Failure::Internal(format!("tenant {tenant_id}: {e}")))?;
    let secret = decrypt_secret(app, &client)?;
    let grant = f
        .idp
        .exchange_code(
            &base,
            &client.client_id,
            &secret,
            &code,
            s.callback_url().as_deref(),
        )
        .await
        .map_err(|e| idp_failure("the code exchange", &e))?;
    let info = f
        .idp
        .userinfo(&base, &grant.access_token)
        .await
        .map_err(|e| idp_failure("the user-info call", &e))?;
    if info.tenant.as_deref().is_some_and(|t| t != tenant_id) {
        return Err(Failure::Denied(Denied::UnknownUser));
    }
    let member = member::check(store, &tenant_id, &app_id, &info.user_name).await??;

    let secret_cookie = records::new_secret();
    let session = Session {
        tenant_id: tenant_id.clone(),
        user_name: member.user.user_name.clone(),
        app_id,
        access_token: grant.access_token,
        refresh_token: grant.refresh_token,
        access_expires_at_ms: now_ms.saturating_add(grant.expires_in.saturating_mul(1000)),
        created_at_ms: now_ms,
        expires_at_ms: now_ms.saturating_add(duration_ms(s.session_ttl)),
        ended: false,
    };
    if records::create_session(store, &secret_cookie, &session).await? != VersionedWrite::Written {
        return Err(Failure::Internal(
            "a fresh session ID collided with a stored one".into(),
        ));
    }
    tracing::info!(
        tenant = %tenant_id,
        user = %member.user.user_name,
        request_id = %req.request_id,
        "sso signed in"
    );
    let max_age = i64::try_from(s.session_ttl.as_secs()).unwrap_or(i64::MAX);
    Ok(WebResponse::redirect(&pending.return_to)
        .with_cookie(sso::set_cookie(SESSION_COOKIE, &secret_cookie, max_age))
        .with_cookie(sso::clear_cookie(STATE_COOKIE)))
}

/// The plaintext client secret of `client`, decrypted with the merchant's key (D15).
pub fn decrypt_secret(app: &App, client: &AppCredential) -> Result<String, Failure> {
    app.merchant_key()
        .and_then(|key| key.decrypt(&client.client_secret))
        .map_err(|e| {
            Failure::Internal(format!(
                "tenant {} app {}: {e}",
                client.tenant_id, client.app_id
            ))
        })
}

/// A 502 naming the failed step and the identity provider's `error` (never a token).
pub fn idp_failure(step: &str, e: &IdpError) -> Failure {
    Failure::Idp(format!(
        "{step} at the tenant's identity provider failed: {e}"
    ))
}

fn nonempty(value: Option<String>, name: &str) -> Result<String, Failure> {
    value
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
        .ok_or_else(|| Failure::BadRequest(format!("the callback has no {name}")))
}

/// Compares two secrets without an early exit.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}
