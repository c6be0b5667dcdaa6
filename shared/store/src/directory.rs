//! The joint-operation (联营) directory: what the five kit sync interfaces push (docs/protocol.md (inbound-kit))
//! and what the marketplace login reads back (docs/protocol.md (sso)).
//!
//! Everything of one tenant lives in one partition (`tenant#<tenantId>`), one item per object:
//!
//! | sk | entry |
//! |---|---|
//! | `tenant` | [`Tenant`] |
//! | `app#<appId>` | [`AppCredential`] |
//! | `user#<userName>` | [`User`] |
//! | `access#<userName>#<appId>` | [`Access`]: the user may sign in to the app |
//! | `org#<orgCode>` | [`Department`] |
//!
//! Every write carries the whole state of its item, so a repeated sync rewrites the same bytes and
//! creates nothing new, and no write needs a read first. Access is an item of its own so that
//! authSync flag 3 (revoke) removes the grant and keeps the user (D14). Key components are escaped
//! so that a `#` inside a user name can never make one key look like another.

use serde::{Deserialize, Serialize};

use crate::{DirectoryItem, DirectoryWrite, Partition, Store, StoreError};

/// The sort keys of the directory items.
pub mod sk {
    pub const TENANT: &str = "tenant";
    pub const APP_PREFIX: &str = "app#";
    pub const USER_PREFIX: &str = "user#";
    pub const ACCESS_PREFIX: &str = "access#";
    pub const ORG_PREFIX: &str = "org#";

    /// `#` separates key components and `%` escapes; both are escaped inside a component.
    fn component(s: &str) -> String {
        s.replace('%', "%25").replace('#', "%23")
    }

    pub fn app(app_id: &str) -> String {
        format!("{APP_PREFIX}{}", component(app_id))
    }

    pub fn user(user_name: &str) -> String {
        format!("{USER_PREFIX}{}", component(user_name))
    }

    /// Every access grant of one user starts with this.
    pub fn access_of(user_name: &str) -> String {
        format!("{ACCESS_PREFIX}{}#", component(user_name))
    }

    pub fn access(user_name: &str, app_id: &str) -> String {
        format!("{}{}", access_of(user_name), component(app_id))
    }

    pub fn org(org_code: &str) -> String {
        format!("{ORG_PREFIX}{}", component(org_code))
    }
}

/// A tenant (enterprise), from tenantSync.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tenant {
    pub tenant_id: String,
    pub tenant_code: String,
    pub name: String,
    /// The tenant's identity domain, with scheme: the base of every login call (docs/protocol.md (sso)).
    pub domain_name: String,
    pub instance_id: String,
    pub order_id: String,
    /// flag 0: kept, so that the login refuses the tenant's users instead of forgetting them.
    pub deleted: bool,
    pub updated_at_ms: i64,
}

/// The OAuth client of an app for one tenant, from applicationSync.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppCredential {
    pub tenant_id: String,
    pub app_id: String,
    pub client_id: String,
    /// The Base64 RSA-OAEP ciphertext exactly as received (D15): it is already protected by the
    /// merchant's key, and is decrypted only when a token call needs it.
    pub client_secret: String,
    pub instance_id: String,
    pub updated_at_ms: i64,
}

impl std::fmt::Debug for AppCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppCredential")
            .field("tenant_id", &self.tenant_id)
            .field("app_id", &self.app_id)
            .field("client_id", &self.client_id)
            .field("client_secret", &"<redacted>")
            .field("instance_id", &self.instance_id)
            .finish()
    }
}

/// A user of a tenant, from authSync: every documented field.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub tenant_id: String,
    /// The login account, equal to `userName` of `/oauth2/userinfo`; unique inside the tenant.
    pub user_name: String,
    pub name: String,
    /// May name a department that has not been synced yet (docs/protocol.md, inbound-kit §2.5).
    pub org_code: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub employee_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub employee_type: Option<i64>,
    /// `user` or `admin`.
    pub role: String,
    /// `enable: "false"` blocks the login.
    pub enable: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mobile: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub work_place: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entry_date: Option<String>,
    /// `currentSyncTime` of the sync that wrote this state.
    pub sync_time: String,
    pub updated_at_ms: i64,
}

impl std::fmt::Debug for User {
    /// Phone numbers and e-mail addresses never reach a log line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("User")
            .field("tenant_id", &self.tenant_id)
            .field("user_name", &self.user_name)
            .field("org_code", &self.org_code)
            .field("role", &self.role)
            .field("enable", &self.enable)
            .field("mobile", &self.mobile.as_ref().map(|_| "<redacted>"))
            .field("email", &self.email.as_ref().map(|_| "<redacted>"))
            .finish_non_exhaustive()
    }
}

/// A user's right to sign in to one app (authSync flags 1 and 2 grant it, 3 and 0 take it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Access {
    pub user_name: String,
    pub app_id: String,
    pub granted_at_ms: i64,
}

/// A department, from singleOrgSync or allOrgSync. The tree is the `parent_code` links.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Department {
    pub org_code: String,
    pub org_name: String,
    /// Empty at the top level; may name a department not synced yet.
    pub parent_code: String,
    /// Soft delete (singleOrgSync flag 0, or absent from an allOrgSync list).
    pub deleted: bool,
    pub updated_at_ms: i64,
}

/// One typed directory entry, as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    Tenant(Tenant),
    App(AppCredential),
    User(User),
    Access(Access),
    Department(Department),
}

impl Entry {
    /// The entry's sort key inside its tenant's partition.
    pub fn sk(&self) -> String {
        match self {
            Entry::Tenant(_) => sk::TENANT.to_string(),
            Entry::App(a) => sk::app(&a.app_id),
            Entry::User(u) => sk::user(&u.user_name),
            Entry::Access(a) => sk::access(&a.user_name, &a.app_id),
            Entry::Department(d) => sk::org(&d.org_code),
        }
    }

    /// The write that stores this entry.
    pub fn put(&self) -> DirectoryWrite {
        let doc = match self {
            Entry::Tenant(t) => serde_json::to_string(t),
            Entry::App(a) => serde_json::to_string(a),
            Entry::User(u) => serde_json::to_string(u),
            Entry::Access(a) => serde_json::to_string(a),
            Entry::Department(d) => serde_json::to_string(d),
        };
        DirectoryWrite::Put(DirectoryItem {
            sk: self.sk(),
            // Serialising plain structs of strings and integers cannot fail.
            doc: doc.unwrap_or_default(),
        })
    }
}

/// The directory of one tenant in one partition: typed reads, and writes of whole entries.
#[derive(Clone, Copy)]
pub struct Directory<'a> {
    store: &'a dyn Store,
    partition: Partition,
    tenant_id: &'a str,
}

impl<'a> Directory<'a> {
    pub fn new(store: &'a dyn Store, partition: Partition, tenant_id: &'a str) -> Self {
        Directory {
            store,
            partition,
            tenant_id,
        }
    }

    /// Applies the writes and records their events (see [`Store::write_directory`]).
    pub async fn apply(
        &self,
        writes: &[DirectoryWrite],
        events: &[crate::EventDraft],
    ) -> Result<(), StoreError> {
        if writes.is_empty() && events.is_empty() {
            return Ok(());
        }
        self.store
            .write_directory(self.partition, self.tenant_id, writes, events)
            .await
    }

    pub async fn tenant(&self) -> Result<Option<Tenant>, StoreError> {
        self.get(sk::TENANT).await
    }

    pub async fn app(&self, app_id: &str) -> Result<Option<AppCredential>, StoreError> {
        self.get(&sk::app(app_id)).await
    }

    pub async fn user(&self, user_name: &str) -> Result<Option<User>, StoreError> {
        self.get(&sk::user(user_name)).await
    }

    pub async fn access(
        &self,
        user_name: &str,
        app_id: &str,
    ) -> Result<Option<Access>, StoreError> {
        self.get(&sk::access(user_name, app_id)).await
    }

    /// Every app the user may sign in to.
    pub async fn accesses_of(&self, user_name: &str) -> Result<Vec<Access>, StoreError> {
        self.list(&sk::access_of(user_name)).await
    }

    pub async fn department(&self, org_code: &str) -> Result<Option<Department>, StoreError> {
        self.get(&sk::org(org_code)).await
    }

    /// Every department, soft-deleted ones included.
    pub async fn departments(&self) -> Result<Vec<Department>, StoreError> {
        self.list(sk::ORG_PREFIX).await
    }

    /// Every user.
    pub async fn users(&self) -> Result<Vec<User>, StoreError> {
        self.list(sk::USER_PREFIX).await
    }

    async fn get<T: serde::de::DeserializeOwned>(&self, sk: &str) -> Result<Option<T>, StoreError> {
        self.store
            .get_directory_item(self.partition, self.tenant_id, sk)
            .await?
            .map(|item| self.decode(&item))
            .transpose()
    }

    async fn list<T: serde::de::DeserializeOwned>(
        &self,
        prefix: &str,
    ) -> Result<Vec<T>, StoreError> {
        self.store
            .list_directory(self.partition, self.tenant_id, prefix)
            .await?
            .iter()
            .map(|item| self.decode(item))
            .collect()
    }

    fn decode<T: serde::de::DeserializeOwned>(
        &self,
        item: &DirectoryItem,
    ) -> Result<T, StoreError> {
        serde_json::from_str(&item.doc).map_err(|e| StoreError::Corrupt {
            key: format!(
                "{} {}",
                crate::keys::tenant(self.partition, self.tenant_id),
                item.sk
            ),
            reason: e.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::sk;

    #[test]
    fn a_hash_inside_a_name_cannot_forge_another_key() {
        // user "a#b" with app "c" versus user "a" with app "b#c".
        assert_ne!(sk::access("a#b", "c"), sk::access("a", "b#c"));
        assert!(!sk::access("a#b", "c").starts_with(&sk::access_of("a")));
        assert_ne!(sk::user("%23"), sk::user("#"));
    }
}
