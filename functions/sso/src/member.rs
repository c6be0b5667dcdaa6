//! Who may sign in (docs/protocol.md, sso §10 steps 3 and 6): the tenant exists and is not deleted, the app's
//! client was synced, and the user exists, is enabled and has access to the app (authSync flag 3
//! revokes it). Checked at the callback and again on every session call, so a sync that disables
//! a user or deletes a tenant ends their sessions.

use koogate_store::directory::{sk, AppCredential, Directory, Tenant, User};
use koogate_store::{Partition, Store, StoreError};

/// Why a login or a session is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Denied {
    #[error("tenant {0} is not known here (tenantSync has not reached this deployment)")]
    UnknownTenant(String),
    #[error("tenant {0} was deleted")]
    TenantDeleted(String),
    #[error("tenant {tenant} has no synced client for app {app_id} (applicationSync)")]
    NoClient { tenant: String, app_id: String },
    #[error("the account is not a user of this tenant")]
    UnknownUser,
    #[error("the account is disabled")]
    Disabled,
    #[error("the account has no access to this application")]
    NoAccess,
    #[error(
        "no appId: set KOOGATE_SSO_APP_ID, or sync exactly one app for the tenant ({0} found)"
    )]
    NoAppId(usize),
}

/// The checked tenant, app client and user.
pub struct Member {
    pub tenant: Tenant,
    pub app: AppCredential,
    pub user: User,
}

/// The tenant and its app client, or why the tenant cannot sign in.
pub async fn tenant_client(
    store: &dyn Store,
    tenant_id: &str,
    app_id: &str,
) -> Result<Result<(Tenant, AppCredential), Denied>, StoreError> {
    let dir = Directory::new(store, Partition::Production, tenant_id);
    let Some(tenant) = dir.tenant().await? else {
        return Ok(Err(Denied::UnknownTenant(tenant_id.to_string())));
    };
    if tenant.deleted {
        return Ok(Err(Denied::TenantDeleted(tenant_id.to_string())));
    }
    let Some(app) = dir.app(app_id).await? else {
        return Ok(Err(Denied::NoClient {
            tenant: tenant_id.to_string(),
            app_id: app_id.to_string(),
        }));
    };
    Ok(Ok((tenant, app)))
}

/// Every check, for `user_name` of `tenant_id` on `app_id`.
pub async fn check(
    store: &dyn Store,
    tenant_id: &str,
    app_id: &str,
    user_name: &str,
) -> Result<Result<Member, Denied>, StoreError> {
    let (tenant, app) = match tenant_client(store, tenant_id, app_id).await? {
        Ok(found) => found,
        Err(denied) => return Ok(Err(denied)),
    };
    let dir = Directory::new(store, Partition::Production, tenant_id);
    let Some(user) = dir.user(user_name).await? else {
        return Ok(Err(Denied::UnknownUser));
    };
    if !user.enable {
        return Ok(Err(Denied::Disabled));
    }
    if dir.access(user_name, app_id).await?.is_none() {
        return Ok(Err(Denied::NoAccess));
    }
    Ok(Ok(Member { tenant, app, user }))
}

/// The appId of the login: the configured one, else the tenant's only synced app.
pub async fn app_id(
    store: &dyn Store,
    configured: Option<&str>,
    tenant_id: Option<&str>,
) -> Result<Result<String, Denied>, StoreError> {
    if let Some(id) = configured {
        return Ok(Ok(id.to_string()));
    }
    let Some(tenant_id) = tenant_id else {
        return Ok(Err(Denied::NoAppId(0)));
    };
    let items = store
        .list_directory(Partition::Production, tenant_id, sk::APP_PREFIX)
        .await?;
    let apps: Vec<AppCredential> = items
        .iter()
        .filter_map(|i| serde_json::from_str(&i.doc).ok())
        .collect();
    match apps.as_slice() {
        [only] => Ok(Ok(only.app_id.clone())),
        other => Ok(Err(Denied::NoAppId(other.len()))),
    }
}
