//! `GET /sso/login?tenant=<tenantId>&return_to=<target>`: starts a login. The return target is
//! checked here (no open redirect) and kept server-side with the tenant, under a single-use
//! `state` bound to the browser by a 10-minute cookie; then the browser goes to the unified login
//! page with the appId (docs/protocol.md, sso §3).

use std::sync::Arc;

use koogate_protocol::sso;
use koogate_runtime::web::{WebRequest, WebResponse};
use koogate_runtime::App;
use koogate_store::VersionedWrite;

use crate::failure::Failure;
use crate::member::{self, Denied};
use crate::records::{self, PendingLogin};
use crate::{duration_ms, SsoFunction, STATE_COOKIE};

pub async fn handle(
    f: &SsoFunction,
    app: &Arc<App>,
    req: &WebRequest,
    now_ms: i64,
) -> Result<WebResponse, Failure> {
    let s = &f.settings;
    let store = app.store.as_ref();
    let tenant_id = req.query("tenant").filter(|t| !t.trim().is_empty());
    let return_to = match req.query("return_to") {
        None => s.home.clone(),
        Some(t) => sso::check_return_target(&t, &s.return_hosts)
            .map_err(|e| Failure::BadRequest(e.to_string()))?,
    };
    let app_id = match member::app_id(store, s.app_id.as_deref(), tenant_id.as_deref()).await? {
        Ok(id) => id,
        Err(d @ Denied::NoAppId(_)) => return Err(Failure::BadRequest(d.to_string())),
        Err(d) => return Err(Failure::Denied(d)),
    };
    let state = records::new_secret();
    let pending = PendingLogin {
        tenant_id,
        return_to,
        expires_at_ms: now_ms.saturating_add(duration_ms(s.login_ttl)),
        used: false,
    };
    if records::start_login(store, &state, &pending).await? != VersionedWrite::Written {
        return Err(Failure::Internal(
            "a fresh login state collided with a stored one".into(),
        ));
    }
    let max_age = i64::try_from(s.login_ttl.as_secs()).unwrap_or(600);
    Ok(
        WebResponse::redirect(&sso::login_page_url(&s.login_page, &app_id, &state))
            .with_cookie(sso::set_cookie(STATE_COOKIE, &state, max_age)),
    )
}
