//! `GET /sso/logout[?return_to=…]`: ends the session in the store first, then sends the browser
//! to `{domainName}/api/v1/logout?redirect_url=…` (docs/protocol.md, sso §8, §10 step 8). Without a session the
//! browser goes straight to the (checked) return target.

use std::sync::Arc;

use koogate_protocol::sso;
use koogate_runtime::web::{WebRequest, WebResponse};
use koogate_runtime::App;
use koogate_store::directory::Directory;
use koogate_store::Partition;

use crate::failure::Failure;
use crate::records;
use crate::{SsoFunction, SESSION_COOKIE};

pub async fn handle(
    f: &SsoFunction,
    app: &Arc<App>,
    req: &WebRequest,
) -> Result<WebResponse, Failure> {
    let s = &f.settings;
    let store = app.store.as_ref();
    let target = match req.query("return_to") {
        None => s.home.clone(),
        Some(t) => sso::check_return_target(&t, &s.return_hosts)
            .map_err(|e| Failure::BadRequest(e.to_string()))?,
    };
    let mut tenant_id = None;
    if let Some(secret) = req.cookie(SESSION_COOKIE).filter(|c| !c.is_empty()) {
        if let Some(found) = records::live_session(store, &secret, i64::MIN).await? {
            tenant_id = Some(found.value.tenant_id.clone());
            tracing::info!(tenant = %found.value.tenant_id, user = %found.value.user_name, "sso signed out");
        }
        records::end_session(store, &secret).await?;
    }
    let mut location = target.clone();
    if let Some(tenant_id) = tenant_id {
        let tenant = Directory::new(store, Partition::Production, &tenant_id)
            .tenant()
            .await?;
        if let Some(base) =
            tenant.and_then(|t| sso::identity_base(&t.domain_name, s.allow_http_idp).ok())
        {
            // The identity domain needs an absolute target; a local path is made absolute with
            // the public URL, or left out (the domain then shows its login page).
            let absolute = if target.starts_with('/') {
                s.public_url.as_ref().map(|u| format!("{u}{target}"))
            } else {
                Some(target)
            };
            location = sso::logout_url(&base, absolute.as_deref());
        }
    }
    Ok(WebResponse::redirect(&location).with_cookie(sso::clear_cookie(SESSION_COOKIE)))
}
