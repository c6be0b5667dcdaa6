//! The idempotency state machine (design §5), expressed as data so that both backends implement
//! exactly the same transitions.
//!
//! ```text
//!            acquire (no record | expired | lease ran out | abandoned)
//!   (none) ───────────────────────────────────────────────► INPROGRESS(owner, lease)
//!                                                             │ complete(owner)    │ abandon(owner)
//!                                                             ▼                    ▼
//!                                                         COMPLETED          INPROGRESS(lease = 0)
//! ```
//!
//! A second caller never waits: it gets the stored answer ([`AcquireOutcome::Completed`]), or
//! [`AcquireOutcome::InFlight`] (`000004`) while the owner's lease is live, or
//! [`AcquireOutcome::Mismatch`] (`000002`) when the same key comes with different fixed fields.

/// A request to take the lock on `key`.
#[derive(Debug, Clone)]
pub struct Acquire<'a> {
    pub key: &'a str,
    /// Who takes the lock (the Lambda request id); only the owner may complete or abandon it.
    pub owner: &'a str,
    /// Epoch milliseconds until which the lock is the owner's (the invocation deadline). After it,
    /// another call may take the lock over: this is how a crash between acquire and complete
    /// heals.
    pub lease_until_ms: i64,
    /// Hash of the request fields that must not change between deliveries of the same key.
    pub validation: &'a str,
    /// Proposed reference (for newInstance: this delivery's businessId). Kept only if the record
    /// has none yet: the first delivery's value wins forever (D7).
    pub reference: &'a str,
    /// Epoch seconds after which the record counts as absent; `None` keeps it forever.
    pub expires_at: Option<i64>,
    pub now_ms: i64,
}

/// A replay-guard entry (D4) to record with [`crate::Store::acquire_fresh`]: the same three
/// values [`crate::Store::remember_nonce`] takes.
#[derive(Debug, Clone, Copy)]
pub struct Nonce<'a> {
    pub key: &'a str,
    /// Epoch seconds now: an entry that expired before it counts as absent.
    pub now_s: i64,
    /// Epoch seconds until which the entry refuses the same key.
    pub expires_at: i64,
}

/// How a lock is completed: the arguments of [`crate::Store::complete`], for
/// [`crate::Store::put_instance_completing`].
#[derive(Debug, Clone, Copy)]
pub struct Completion<'a> {
    pub key: &'a str,
    /// Only this owner's lock is completed.
    pub owner: &'a str,
    /// The answer to replay.
    pub response: &'a str,
    /// Its result code, kept beside it.
    pub code: &'a str,
    pub expires_at: Option<i64>,
}

/// The stored lock status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdemStatus {
    InProgress,
    Completed,
}

impl IdemStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            IdemStatus::InProgress => "INPROGRESS",
            IdemStatus::Completed => "COMPLETED",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "INPROGRESS" => Some(IdemStatus::InProgress),
            "COMPLETED" => Some(IdemStatus::Completed),
            _ => None,
        }
    }
}

/// What [`crate::Store::acquire`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AcquireOutcome {
    /// The caller owns the lock now. `reference` is the record's reference: the caller's own
    /// proposal on a first delivery, the first delivery's value on a retry.
    Acquired { reference: String },
    /// A previous call completed; replay its answer. `code` is the answer's result code as
    /// stored beside it (`None` for a record written before koogate stored it).
    Completed {
        reference: String,
        response: String,
        code: Option<String>,
    },
    /// Another call holds a live lease.
    InFlight { reference: String },
    /// The record was written for different fixed fields.
    Mismatch,
}

/// The stored state of a lock, as both backends read it back.
#[derive(Debug, Clone)]
pub struct IdemRecord {
    pub status: IdemStatus,
    pub lease_until_ms: i64,
    pub validation: String,
    pub reference: String,
    pub response: Option<String>,
    /// The stored answer's result code.
    pub code: Option<String>,
    pub expires_at: Option<i64>,
}

impl IdemRecord {
    /// Whether the record counts as absent (TTL is never trusted to have deleted it).
    pub fn expired(&self, now_ms: i64) -> bool {
        self.expires_at.is_some_and(|e| e < now_ms.div_euclid(1000))
    }

    /// Whether `req` may take the lock over. Mirrors the DynamoDB condition expression exactly.
    pub fn can_acquire(&self, req: &Acquire<'_>) -> bool {
        if self.expired(req.now_ms) {
            return true;
        }
        self.validation == req.validation
            && self.status != IdemStatus::Completed
            && self.lease_until_ms < req.now_ms
    }

    /// The answer for a caller that could not take the lock.
    pub fn refusal(&self, req: &Acquire<'_>) -> AcquireOutcome {
        if self.validation != req.validation {
            return AcquireOutcome::Mismatch;
        }
        match (self.status, &self.response) {
            (IdemStatus::Completed, Some(response)) => AcquireOutcome::Completed {
                reference: self.reference.clone(),
                response: response.clone(),
                code: self.code.clone(),
            },
            _ => AcquireOutcome::InFlight {
                reference: self.reference.clone(),
            },
        }
    }
}
