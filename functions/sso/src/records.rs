//! What the login keeps in the store: started logins (`sso-login#…`, single use) and sessions
//! (`session#…`). Both are versioned records; TTL is never trusted, so every read checks
//! `expires_at_ms` itself.
//!
//! Cookie values are 256-bit random hex strings; the store key is their SHA-256, so a copy of the
//! table holds no usable cookie.

use koogate_store::{Record, Store, StoreError, VersionedWrite};
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// A fresh opaque cookie value.
pub fn new_secret() -> String {
    hex::encode(rand::random::<[u8; 32]>())
}

fn digest(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// A login started on `/sso/login`, finished (once) by `/sso/callback`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PendingLogin {
    /// The tenant named on `/sso/login`, if any: the callback must come back for the same one.
    pub tenant_id: Option<String>,
    /// The checked return target.
    pub return_to: String,
    pub expires_at_ms: i64,
    /// Set by the callback that consumed it.
    pub used: bool,
}

/// A signed-in browser. Tokens stay here, server-side (docs/protocol.md, sso §10 step 7).
#[derive(Clone, Serialize, Deserialize)]
pub struct Session {
    pub tenant_id: String,
    pub user_name: String,
    pub app_id: String,
    pub access_token: String,
    #[serde(default)]
    pub refresh_token: Option<String>,
    pub access_expires_at_ms: i64,
    pub created_at_ms: i64,
    pub expires_at_ms: i64,
    /// Logout, or a failed re-validation, ends it for good.
    pub ended: bool,
}

/// A record read together with its version, for the conditional write back.
pub struct Versioned<T> {
    pub value: T,
    pub version: u64,
}

async fn load<T: DeserializeOwned>(
    store: &dyn Store,
    key: &str,
) -> Result<Option<Versioned<T>>, StoreError> {
    let Some(rec) = store.get_record(key).await? else {
        return Ok(None);
    };
    let value = serde_json::from_str(&rec.doc).map_err(|e| StoreError::Corrupt {
        key: key.to_string(),
        reason: e.to_string(),
    })?;
    Ok(Some(Versioned {
        value,
        version: rec.version,
    }))
}

async fn save<T: Serialize>(
    store: &dyn Store,
    key: &str,
    value: &T,
    expected: Option<u64>,
) -> Result<VersionedWrite, StoreError> {
    let doc = serde_json::to_string(value).map_err(|e| StoreError::Corrupt {
        key: key.to_string(),
        reason: e.to_string(),
    })?;
    let record = Record {
        version: expected.map_or(1, |v| v.saturating_add(1)),
        doc,
    };
    store.put_record(key, &record, expected, &[]).await
}

/// Records a started login under its state secret.
pub async fn start_login(
    store: &dyn Store,
    state: &str,
    login: &PendingLogin,
) -> Result<VersionedWrite, StoreError> {
    save(
        store,
        &koogate_store::keys::sso_login(&digest(state)),
        login,
        None,
    )
    .await
}

/// Consumes the login of `state`: `Ok(None)` when there is none, it expired, or it was used
/// (also by a concurrent callback).
pub async fn take_login(
    store: &dyn Store,
    state: &str,
    now_ms: i64,
) -> Result<Option<PendingLogin>, StoreError> {
    let key = koogate_store::keys::sso_login(&digest(state));
    let Some(found) = load::<PendingLogin>(store, &key).await? else {
        return Ok(None);
    };
    if found.value.used || found.value.expires_at_ms <= now_ms {
        return Ok(None);
    }
    let mut used = found.value.clone();
    used.used = true;
    match save(store, &key, &used, Some(found.version)).await? {
        VersionedWrite::Written => Ok(Some(found.value)),
        VersionedWrite::Conflict => Ok(None),
    }
}

/// Stores a new session under its cookie secret.
pub async fn create_session(
    store: &dyn Store,
    secret: &str,
    session: &Session,
) -> Result<VersionedWrite, StoreError> {
    save(
        store,
        &koogate_store::keys::session(&digest(secret)),
        session,
        None,
    )
    .await
}

/// The live session of a cookie secret: `None` when unknown, ended or expired.
pub async fn live_session(
    store: &dyn Store,
    secret: &str,
    now_ms: i64,
) -> Result<Option<Versioned<Session>>, StoreError> {
    let key = koogate_store::keys::session(&digest(secret));
    Ok(load::<Session>(store, &key)
        .await?
        .filter(|s| !s.value.ended && s.value.expires_at_ms > now_ms))
}

/// Writes a changed session back if nobody changed it since it was read.
pub async fn update_session(
    store: &dyn Store,
    secret: &str,
    session: &Versioned<Session>,
) -> Result<VersionedWrite, StoreError> {
    let key = koogate_store::keys::session(&digest(secret));
    save(store, &key, &session.value, Some(session.version)).await
}

/// Ends a session for good (logout, failed re-validation). Retries once on a concurrent write
/// (a refresh), so a logout always wins.
pub async fn end_session(store: &dyn Store, secret: &str) -> Result<(), StoreError> {
    let key = koogate_store::keys::session(&digest(secret));
    for _ in 0..3 {
        let Some(mut s) = load::<Session>(store, &key).await? else {
            return Ok(());
        };
        if s.value.ended {
            return Ok(());
        }
        s.value.ended = true;
        s.value.access_token.clear();
        s.value.refresh_token = None;
        if save(store, &key, &s.value, Some(s.version)).await? == VersionedWrite::Written {
            return Ok(());
        }
    }
    Err(StoreError::Unavailable(
        "the session kept changing while it was being ended".into(),
    ))
}
