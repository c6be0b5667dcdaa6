//! koogate's store.
//!
//! One [`Store`] trait with the operations the request pipeline needs, and two backends that give
//! them the same semantics: `dynamodb::DynamoStore` (conditional writes, production; feature
//! `dynamodb`) and `sqlite::SqliteStore` (transactions, the embedded default of `koogate serve`;
//! feature `sqlite`). Each backend is a feature so that a binary links only the one it uses. The
//! `conformance` feature holds one test suite that every backend must pass.
//!
//! Every write that can race is conditional. TTL is never trusted: readers compare `expires_at`
//! with the clock themselves, because DynamoDB deletes expired items only eventually (and a local
//! moto server never does).

#![forbid(unsafe_code)]

pub mod directory;
#[cfg(feature = "dynamodb")]
pub mod dynamodb;
pub mod dynamodb_actions;
#[cfg(feature = "dynamodb")]
mod dynamodb_events;
#[cfg(feature = "dynamodb")]
pub mod dynamodb_init;
#[cfg(feature = "dynamodb")]
mod dynamodb_usage;
pub mod events;
pub mod idempotency;
pub mod keys;
pub mod records;
#[cfg(feature = "sqlite")]
pub mod sqlite;
#[cfg(feature = "sqlite")]
mod sqlite_checkpoint;
#[cfg(feature = "sqlite")]
mod sqlite_nonces;
#[cfg(feature = "sqlite")]
mod sqlite_schema;
#[cfg(feature = "sqlite")]
mod sqlite_writer;

#[cfg(feature = "conformance")]
pub mod conformance;

use async_trait::async_trait;

pub use events::{EventDraft, EventQuery, EventRecord, EventSettlement, EventState};
pub use idempotency::{Acquire, AcquireOutcome, Completion, IdemStatus, Nonce};
pub use keys::{Listing, Partition};
pub use records::{AppInfo, AppliedOrder, Instance, InstanceState, Record};
pub use records::{
    UsageBacklog, UsageClaim, UsageData, UsageInsert, UsageKey, UsageRecord, UsageSettlement,
    UsageStatus,
};

/// Why a store operation failed. Every variant is answered `000005` by the pipeline, so the
/// marketplace retries; the message says what failed and never carries record contents.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// The backend could not be reached or refused the request (network, throttling, I/O, lock).
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// A stored item could not be decoded: it was written by something else or is damaged.
    #[error("stored item {key} is unreadable: {reason}")]
    Corrupt { key: String, reason: String },
}

/// The outcome of a write conditioned on a record's version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VersionedWrite {
    /// Written; the record now has this version.
    Written,
    /// Someone else wrote first (or the record already exists on an insert): re-read and decide.
    Conflict,
}

/// One item of a tenant's joint-operation directory as the backends keep it: `sk` names the item
/// inside the tenant's partition (see [`directory`] for the typed entries), `doc` is its JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectoryItem {
    pub sk: String,
    pub doc: String,
}

/// One change to a tenant's directory: each replaces or removes a whole item, so applying the
/// same changes twice leaves the same state (the kit interfaces' documented idempotency).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DirectoryWrite {
    Put(DirectoryItem),
    Delete { sk: String },
}

/// The operations koogate needs from a store. Implementations must be safe to call concurrently
/// from many tasks and processes; the conformance suite states the exact semantics.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Replay guard (D4): records `key` until `expires_at` (epoch seconds) unless an unexpired
    /// entry exists. Returns `true` when the key was fresh (and is now recorded), `false` when it
    /// was seen before and has not expired.
    async fn remember_nonce(
        &self,
        key: &str,
        now_s: i64,
        expires_at: i64,
    ) -> Result<bool, StoreError>;

    /// Takes the idempotency lock for `req.key` (design §5). One conditional write.
    async fn acquire(&self, req: &Acquire<'_>) -> Result<AcquireOutcome, StoreError>;

    /// The replay guard and the idempotency lock together: records `nonce` as
    /// [`Store::remember_nonce`] does and, only if it was fresh, takes the lock as
    /// [`Store::acquire`] does. `None`: the nonce was seen before, and nothing else was written.
    ///
    /// A backend that can commit both at once should (SQLite: one job of its writer, one
    /// savepoint, instead of two round trips). The default makes the two calls one after the
    /// other, which is what DynamoDB does: the same two requests as before, never more.
    async fn acquire_fresh(
        &self,
        nonce: &Nonce<'_>,
        req: &Acquire<'_>,
    ) -> Result<Option<AcquireOutcome>, StoreError> {
        if !self
            .remember_nonce(nonce.key, nonce.now_s, nonce.expires_at)
            .await?
        {
            return Ok(None);
        }
        self.acquire(req).await.map(Some)
    }

    /// Marks the lock COMPLETED with the answer to replay and its result code (kept beside it,
    /// so a replay need not parse the answer), only if `owner` still holds it. Returns `false`
    /// when the caller no longer owns the record (its lease ran out and another call took it
    /// over): the caller's answer must then not be stored.
    async fn complete(
        &self,
        key: &str,
        owner: &str,
        response: &str,
        code: &str,
        expires_at: Option<i64>,
    ) -> Result<bool, StoreError>;

    /// Gives the lock up after a transient failure, only if `owner` still holds it, keeping the
    /// reference (the instanceId of D7) so that the marketplace's next delivery reuses it.
    async fn abandon(&self, key: &str, owner: &str) -> Result<bool, StoreError>;

    /// One instance, or `None` if it was never issued in this partition.
    async fn get_instance(
        &self,
        partition: Partition,
        instance_id: &str,
    ) -> Result<Option<Instance>, StoreError>;

    /// Every known instance among `ids` (at most 100), in no particular order.
    async fn get_instances(
        &self,
        partition: Partition,
        ids: &[String],
    ) -> Result<Vec<Instance>, StoreError>;

    /// Writes `instance` if the stored version equals `expected_version` (`None`: only if no
    /// record exists). On success the stored version is `instance.version`, which the caller
    /// sets to `expected_version + 1` (or 1 on insert).
    ///
    /// `events` are recorded if and only if the write succeeds (the outbox, see [`events`]);
    /// their ids are remembered in the record's `event_ids`.
    async fn put_instance(
        &self,
        instance: &Instance,
        expected_version: Option<u64>,
        events: &[EventDraft],
    ) -> Result<VersionedWrite, StoreError>;

    /// Writes `instance` as [`Store::put_instance`] does and, only if it was written, completes
    /// a lock as [`Store::complete`] does. Returns the write's outcome and, when written, whether
    /// the lock was completed (`false`: its owner lost it, as for `complete`).
    ///
    /// A backend that can commit both at once should (SQLite: one job of its writer). The
    /// default makes the two calls one after the other, which is what DynamoDB does: the same
    /// requests as before, never more.
    async fn put_instance_completing(
        &self,
        instance: &Instance,
        expected_version: Option<u64>,
        events: &[EventDraft],
        completion: &Completion<'_>,
    ) -> Result<(VersionedWrite, bool), StoreError> {
        if self
            .put_instance(instance, expected_version, events)
            .await?
            == VersionedWrite::Conflict
        {
            return Ok((VersionedWrite::Conflict, false));
        }
        let c = completion;
        let completed = self
            .complete(c.key, c.owner, c.response, c.code, c.expires_at)
            .await?;
        Ok((VersionedWrite::Written, completed))
    }

    /// A versioned document under `key` (license codes, order notifications), if any.
    async fn get_record(&self, key: &str) -> Result<Option<Record>, StoreError>;

    /// Writes `record` under `key` if the stored version equals `expected_version` (`None`: only
    /// if no record exists), with its `events`, like [`Store::put_instance`]. A document that
    /// carries events must be a JSON object: their ids go into its `event_ids` member.
    async fn put_record(
        &self,
        key: &str,
        record: &Record,
        expected_version: Option<u64>,
        events: &[EventDraft],
    ) -> Result<VersionedWrite, StoreError>;

    /// Applies `writes`, in order, to the directory of tenant `tenant_id` (design §4: one
    /// partition per tenant). SQLite applies them in one transaction; DynamoDB in batches of 25,
    /// which is safe because every write is idempotent: a repeat after a partial failure
    /// converges on the same state. `events` are recorded if and only if every write is applied
    /// (`Ok`).
    async fn write_directory(
        &self,
        partition: Partition,
        tenant_id: &str,
        writes: &[DirectoryWrite],
        events: &[EventDraft],
    ) -> Result<(), StoreError>;

    /// The directory item `sk` of tenant `tenant_id`, if any (a strongly consistent read).
    async fn get_directory_item(
        &self,
        partition: Partition,
        tenant_id: &str,
        sk: &str,
    ) -> Result<Option<DirectoryItem>, StoreError>;

    /// Every directory item of tenant `tenant_id` whose `sk` starts with `sk_prefix`, in `sk`
    /// order (a strongly consistent Query on DynamoDB, never a Scan).
    async fn list_directory(
        &self,
        partition: Partition,
        tenant_id: &str,
        sk_prefix: &str,
    ) -> Result<Vec<DirectoryItem>, StoreError>;
    // ---- usage metering (pay-per-use) ---------------------------------------------------------

    /// Records usage once: inserts `data` as pending unless a record with the same key
    /// (instance, begin, end) exists, which is then returned unchanged.
    async fn record_usage(&self, data: &UsageData) -> Result<UsageInsert, StoreError>;

    /// Claims up to `claim.limit` pending records whose interval ended by `claim.due_end_time`
    /// and that no live claim holds, oldest end first: each becomes the owner's until
    /// `lease_until_ms`, and its attempt count grows by one. Reads are consistent: a record
    /// settled before this call is never returned.
    async fn claim_usage(&self, claim: &UsageClaim<'_>) -> Result<Vec<UsageRecord>, StoreError>;

    /// Settles claimed records, each only while `owner` still holds it and it is pending.
    /// Returns how many were settled (the others were taken over after the lease ran out).
    async fn settle_usage(
        &self,
        owner: &str,
        keys: &[UsageKey],
        settlement: &UsageSettlement,
    ) -> Result<usize, StoreError>;

    /// Every usage record of an instance (any status), in interval order.
    async fn instance_usage(&self, instance_id: &str) -> Result<Vec<UsageRecord>, StoreError>;

    // ---- events (the outbox, see [`events`]) --------------------------------------------------

    /// Records events that belong to no state change of this store (`ping`, `usage.failed`).
    /// Recording an id that exists already changes nothing.
    async fn record_events(&self, events: &[EventDraft]) -> Result<(), StoreError>;

    /// Pending events whose next attempt is due at `now_ms`, oldest first, at most `limit`.
    /// Only events whose change committed are returned.
    async fn due_events(&self, now_ms: i64, limit: usize) -> Result<Vec<EventRecord>, StoreError>;

    /// Records how a delivery attempt of `event` ended.
    async fn settle_event(
        &self,
        event: &EventRecord,
        settlement: &EventSettlement,
    ) -> Result<(), StoreError>;

    /// One event by id, whatever its state.
    async fn get_event(&self, id: &str) -> Result<Option<EventRecord>, StoreError>;

    /// Recorded events, newest first.
    async fn list_events(&self, query: &EventQuery) -> Result<Vec<EventRecord>, StoreError>;

    /// Makes a failed record pending again with `replacement` (same key; a new revision and
    /// `metering_sn`, possibly a new value): only while the stored record is failed and still
    /// carries `current_sn`. It becomes claimable at once, attempts start from 0, the failure is
    /// cleared. Returns `false` when the record is not (or no longer) that failed record.
    async fn requeue_usage(
        &self,
        current_sn: &str,
        replacement: &UsageData,
    ) -> Result<bool, StoreError>;

    /// The due pending records (interval ended by `due_end_time`) and why each is not pushed
    /// yet at `now_ms` (leased, backing off, never attempted, ready for a retry).
    async fn usage_backlog(
        &self,
        due_end_time: &str,
        now_ms: i64,
    ) -> Result<UsageBacklog, StoreError>;

    // ---- operators (`koogate list`, `koogate inspect`) ------------------------------------

    /// Identifiers of the records of `kind` in `partition`, in identifier order, starting after
    /// `after`, at most `limit`. SQLite reads its tables; DynamoDB reads the index written when
    /// each record was created (a Query, never a Scan).
    async fn list_ids(
        &self,
        kind: Listing,
        partition: Partition,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<String>, StoreError>;
}
