//! What each kit call changes in the tenant's directory (D14), as a list of whole-item writes.
//!
//! Reads happen only where the rule needs the stored state: marking a tenant or a department
//! deleted keeps its other fields, and allOrgSync compares the full list with what is stored
//! (soft-deleting the absent, and leaving unchanged departments unwritten so that a repeated full
//! sync costs reads only).

use std::collections::{HashMap, HashSet};

use koogate_protocol::kit_request::{
    AllOrgSync, ApplicationSync, AuthSync, Flag, KitRequest, KitUser, OrgInfo, SingleOrgSync,
    TenantSync,
};
use koogate_store::directory::{
    sk, Access, AppCredential, Department, Directory, Entry, Tenant, User,
};
use koogate_store::{DirectoryWrite, StoreError};

/// The writes that apply `request` to `dir`.
pub async fn writes(
    dir: &Directory<'_>,
    request: &KitRequest,
    now_ms: i64,
) -> Result<Vec<DirectoryWrite>, StoreError> {
    Ok(match request {
        KitRequest::Tenant(t) => tenant(dir, t, now_ms).await?,
        KitRequest::Application(a) => application(a, now_ms),
        KitRequest::Auth(a) => auth(a, now_ms),
        KitRequest::SingleOrg(o) => single_org(dir, o, now_ms).await?,
        KitRequest::AllOrg(o) => all_org(dir, o, now_ms).await?,
    })
}

/// Add and modify store the tenant as sent (modify of an unknown tenant upserts); delete marks a
/// known tenant deleted, which the login reads as "refuse its users" (docs/protocol.md (sso)).
async fn tenant(
    dir: &Directory<'_>,
    t: &TenantSync,
    now_ms: i64,
) -> Result<Vec<DirectoryWrite>, StoreError> {
    if t.flag == Flag::Delete {
        return Ok(match dir.tenant().await? {
            Some(stored) if !stored.deleted => vec![Entry::Tenant(Tenant {
                deleted: true,
                updated_at_ms: now_ms,
                ..stored
            })
            .put()],
            _ => Vec::new(),
        });
    }
    Ok(vec![Entry::Tenant(Tenant {
        tenant_id: t.tenant_id.clone(),
        tenant_code: t.tenant_code.clone(),
        name: t.name.clone(),
        domain_name: t.domain_name.clone(),
        instance_id: t.common.instance_id.clone(),
        order_id: t.order_id.clone(),
        deleted: false,
        updated_at_ms: now_ms,
    })
    .put()])
}

/// The client credentials are stored with the secret's ciphertext as received (D15); a delete
/// removes them, so no login of the tenant can use them any more.
fn application(a: &ApplicationSync, now_ms: i64) -> Vec<DirectoryWrite> {
    if a.flag == Flag::Delete {
        return vec![DirectoryWrite::Delete {
            sk: sk::app(&a.app_id),
        }];
    }
    vec![Entry::App(AppCredential {
        tenant_id: a.tenant_id.clone(),
        app_id: a.app_id.clone(),
        client_id: a.client_id.clone(),
        client_secret: a.client_secret.clone(),
        instance_id: a.common.instance_id.clone(),
        updated_at_ms: now_ms,
    })
    .put()]
}

/// Per user: add and modify write the user and the grant to the app; revoke (3) removes the
/// grant and keeps the user; delete (0) removes the user and the grant. Users whose department
/// is not synced yet are kept as sent (docs/protocol.md, inbound-kit §2.5).
fn auth(a: &AuthSync, now_ms: i64) -> Vec<DirectoryWrite> {
    let mut out = Vec::with_capacity(a.users.len() * 2);
    for u in &a.users {
        let access_sk = sk::access(&u.user_name, &a.app_id);
        match a.flag {
            Flag::Add | Flag::Modify => {
                out.push(Entry::User(user(&a.tenant_id, u, &a.current_sync_time, now_ms)).put());
                out.push(
                    Entry::Access(Access {
                        user_name: u.user_name.clone(),
                        app_id: a.app_id.clone(),
                        granted_at_ms: now_ms,
                    })
                    .put(),
                );
            }
            Flag::Revoke => out.push(DirectoryWrite::Delete { sk: access_sk }),
            Flag::Delete => {
                out.push(DirectoryWrite::Delete {
                    sk: sk::user(&u.user_name),
                });
                out.push(DirectoryWrite::Delete { sk: access_sk });
            }
        }
    }
    out
}

fn user(tenant_id: &str, u: &KitUser, sync_time: &str, now_ms: i64) -> User {
    User {
        tenant_id: tenant_id.to_string(),
        user_name: u.user_name.clone(),
        name: u.name.clone(),
        org_code: u.org_code.clone(),
        position: u.position.clone(),
        employee_code: u.employee_code.clone(),
        employee_type: u.employee_type,
        role: u.role.clone(),
        enable: u.enable,
        mobile: u.mobile.clone(),
        email: u.email.clone(),
        work_place: u.work_place.clone(),
        entry_date: u.entry_date.clone(),
        sync_time: sync_time.to_string(),
        updated_at_ms: now_ms,
    }
}

fn department(o: &OrgInfo, now_ms: i64) -> Department {
    Department {
        org_code: o.org_code.clone(),
        org_name: o.org_name.clone(),
        parent_code: o.parent_code.clone(),
        deleted: false,
        updated_at_ms: now_ms,
    }
}

/// Add and modify upsert the department (a parent not synced yet is stored as given); delete
/// marks a known department deleted.
async fn single_org(
    dir: &Directory<'_>,
    o: &SingleOrgSync,
    now_ms: i64,
) -> Result<Vec<DirectoryWrite>, StoreError> {
    if o.flag != Flag::Delete {
        return Ok(vec![Entry::Department(department(&o.org, now_ms)).put()]);
    }
    let stored = dir
        .department(&o.org.org_code)
        .await?
        .filter(|d| !d.deleted);
    Ok(stored
        .map(|d| {
            Entry::Department(Department {
                deleted: true,
                updated_at_ms: now_ms,
                ..d
            })
            .put()
        })
        .into_iter()
        .collect())
}

/// Every listed department is upserted; the tenant's departments missing from the list are
/// soft-deleted (D14). Departments already stored exactly so are not rewritten.
async fn all_org(
    dir: &Directory<'_>,
    o: &AllOrgSync,
    now_ms: i64,
) -> Result<Vec<DirectoryWrite>, StoreError> {
    let stored = dir.departments().await?;
    let by_code: HashMap<&str, &Department> =
        stored.iter().map(|d| (d.org_code.as_str(), d)).collect();
    let unchanged = |d: &Department| {
        by_code.get(d.org_code.as_str()).is_some_and(|s| {
            s.org_name == d.org_name && s.parent_code == d.parent_code && !s.deleted
        })
    };
    let mut out = Vec::new();
    for org in &o.orgs {
        let d = department(org, now_ms);
        if !unchanged(&d) {
            out.push(Entry::Department(d).put());
        }
    }
    let listed: HashSet<&str> = o.orgs.iter().map(|d| d.org_code.as_str()).collect();
    for s in stored.iter().cloned() {
        if !s.deleted && !listed.contains(s.org_code.as_str()) {
            out.push(
                Entry::Department(Department {
                    deleted: true,
                    updated_at_ms: now_ms,
                    ..s
                })
                .put(),
            );
        }
    }
    Ok(out)
}
