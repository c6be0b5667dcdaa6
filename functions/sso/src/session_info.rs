//! `GET /sso/session`: who is signed in, for the ISV's app (JSON: tenant, userName, name, role).
//!
//! Every call re-checks the directory (a deleted tenant, a disabled, removed or revoked user ends
//! the session) and refreshes the access token when less than the refresh margin is left
//! (docs/protocol.md, sso §6, §10 step 7), storing the refresh token returned each time. A refusal of the
//! refresh ends the session; an unreachable identity domain keeps it while the access token is
//! still valid.

use std::sync::Arc;

use koogate_protocol::sso;
use koogate_runtime::web::{WebRequest, WebResponse};
use koogate_runtime::App;

use crate::callback::{decrypt_secret, idp_failure};
use crate::failure::Failure;
use crate::idp::IdpError;
use crate::member;
use crate::records::{self, Session, Versioned};
use crate::{duration_ms, SsoFunction, SESSION_COOKIE};

pub async fn handle(
    f: &SsoFunction,
    app: &Arc<App>,
    req: &WebRequest,
    now_ms: i64,
) -> Result<WebResponse, Failure> {
    let store = app.store.as_ref();
    let Some(secret) = req.cookie(SESSION_COOKIE).filter(|c| !c.is_empty()) else {
        return Err(Failure::NotSignedIn("no session".into()));
    };
    let Some(mut session) = records::live_session(store, &secret, now_ms).await? else {
        return Ok(signed_out(req, "the session ended or expired".into()));
    };
    let (tenant_id, user_name, app_id) = (
        session.value.tenant_id.clone(),
        session.value.user_name.clone(),
        session.value.app_id.clone(),
    );
    let m = match member::check(store, &tenant_id, &app_id, &user_name).await? {
        Ok(m) => m,
        Err(denied) => {
            records::end_session(store, &secret).await?;
            tracing::info!(tenant = %tenant_id, user = %user_name, reason = %denied, "sso session ended");
            return Ok(signed_out(req, format!("the session ended: {denied}")));
        }
    };
    let margin = duration_ms(f.settings.refresh_margin);
    if now_ms.saturating_add(margin) >= session.value.access_expires_at_ms {
        if let Err(reason) = refresh(f, app, &secret, &mut session, now_ms).await? {
            records::end_session(store, &secret).await?;
            return Ok(signed_out(req, format!("the session ended: {reason}")));
        }
    }
    Ok(WebResponse::json(
        200,
        &serde_json::json!({
            "tenant": tenant_id,
            "tenantName": m.tenant.name,
            "userName": m.user.user_name,
            "name": m.user.name,
            "role": m.user.role,
            "admin": m.user.role == "admin",
            "appId": app_id,
            "expiresAt": session.value.expires_at_ms,
        }),
    ))
}

/// Refreshes the access token. `Ok(Err(reason))`: the session cannot go on.
async fn refresh(
    f: &SsoFunction,
    app: &Arc<App>,
    secret: &str,
    session: &mut Versioned<Session>,
    now_ms: i64,
) -> Result<Result<(), String>, Failure> {
    let store = app.store.as_ref();
    let expired = session.value.access_expires_at_ms <= now_ms;
    let Some(refresh_token) = session.value.refresh_token.clone() else {
        return Ok(if expired {
            Err("the access token expired and no refresh token was issued".into())
        } else {
            Ok(())
        });
    };
    let (tenant, client) = match member::tenant_client(
        store,
        &session.value.tenant_id,
        &session.value.app_id,
    )
    .await?
    {
        Ok(found) => found,
        Err(denied) => return Ok(Err(denied.to_string())),
    };
    let base = sso::identity_base(&tenant.domain_name, f.settings.allow_http_idp)
        .map_err(|e| Failure::Internal(format!("tenant {}: {e}", tenant.tenant_id)))?;
    let client_secret = decrypt_secret(app, &client)?;
    match f
        .idp
        .refresh(&base, &client.client_id, &client_secret, &refresh_token)
        .await
    {
        Ok(grant) => {
            session.value.access_token = grant.access_token;
            if grant.refresh_token.is_some() {
                session.value.refresh_token = grant.refresh_token;
            }
            session.value.access_expires_at_ms =
                now_ms.saturating_add(grant.expires_in.saturating_mul(1000));
            // A conflict means a concurrent call refreshed (or ended) it first; this answer
            // still stands, the next call reads the stored state.
            let _ = records::update_session(store, secret, session).await?;
            Ok(Ok(()))
        }
        Err(IdpError::Refused(e)) => Ok(Err(format!(
            "the identity provider refused the refresh: {e}"
        ))),
        Err(e @ IdpError::Unreachable(_)) => {
            if expired {
                Err(idp_failure("the token refresh", &e))
            } else {
                tracing::warn!(tenant = %tenant.tenant_id, reason = %e, "sso refresh postponed");
                Ok(Ok(()))
            }
        }
    }
}

/// 401 JSON that also deletes the session cookie.
fn signed_out(req: &WebRequest, message: String) -> WebResponse {
    Failure::NotSignedIn(message)
        .respond("/sso/session", &req.request_id)
        .with_cookie(sso::clear_cookie(SESSION_COOKIE))
}
