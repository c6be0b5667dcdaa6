//! The inbound pipeline (design §3): one code path for every route.
//!
//! raw request → authenticate → replay guard → [function: parse → idempotency → handler] →
//! serialise once → sign those bytes → answer; then one log line and one metric.
//!
//! Every path, errors included, ends in the same framing (D5), and nothing here can panic on
//! input. A function only ever sees requests that were verified and are not replays.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use koogate_protocol::envelope::Answer;
use koogate_protocol::request::RequestError;
use koogate_protocol::result_code::ResultCode;
use koogate_store::{Acquire, AcquireOutcome, Completion, Nonce, StoreError, VersionedWrite};

use crate::app::App;
use crate::authenticate;
use crate::inbound::{Inbound, Outbound};
use crate::routes::{AuthScheme, Route};
use crate::telemetry::{self, RequestRecord};
use crate::trace_ids::TraceIds;

/// What a function answers when it did what was asked.
#[derive(Debug, Clone)]
pub enum Reply {
    /// A fresh answer, rendered and signed by the pipeline.
    Answer(Answer),
    /// A stored answer replayed byte for byte (idempotent repeat), re-signed by the pipeline, and
    /// its result code (stored beside it) for the log line and metric.
    Stored { body: Vec<u8>, code: String },
}

impl From<Answer> for Reply {
    fn from(answer: Answer) -> Reply {
        Reply::Answer(answer)
    }
}

impl From<Stored> for Reply {
    fn from(stored: Stored) -> Reply {
        Reply::Stored {
            body: stored.body,
            code: stored.code.as_str().to_string(),
        }
    }
}

/// Why a call did not end in its normal answer: the answer the marketplace gets instead (`000002`
/// for a body that does not validate, `000003` for an unknown instance, `000005` so that it
/// retries, ...) and the reason, in words safe to log (no secrets, no personal data).
///
/// Handlers return `Result<_, Failure>` and use `?`: a [`StoreError`] becomes `000005` and a
/// [`RequestError`] its own code, through the `From` conversions below, so that each kind of
/// failure is answered in one place.
#[derive(Debug, Clone)]
pub struct Failure {
    pub answer: Answer,
    pub reason: String,
}

impl Failure {
    pub fn new(answer: Answer, reason: impl Into<String>) -> Failure {
        Failure {
            answer,
            reason: reason.into(),
        }
    }

    /// `000002` saying `message`, which is also the reason logged.
    pub fn invalid(message: String) -> Failure {
        Failure::new(
            Answer::error(ResultCode::InvalidParam, message.clone()),
            message,
        )
    }
}

/// Storage failed: `000005`, so the marketplace retries (design §5).
impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Failure {
        Failure::new(
            Answer::error(
                ResultCode::InternalError,
                "storage is unavailable, please retry",
            ),
            e.to_string(),
        )
    }
}

/// A request body that did not parse or validate: its code (`000002` mostly) naming the problem
/// (D13).
impl From<RequestError> for Failure {
    fn from(e: RequestError) -> Failure {
        Failure::new(Answer::error(e.result_code(), e.to_string()), e.to_string())
    }
}

/// What a function's call is, for its log line and metric: the activity and whether it is debug
/// traffic (testFlag 1). Set once per call by [`Call::label`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Label {
    pub activity: &'static str,
    pub debug: bool,
}

/// One verified request, as a function sees it.
pub struct Call<'a> {
    pub app: &'a Arc<App>,
    pub request_id: &'a str,
    pub now_ms: i64,
    /// Epoch ms by which the answer must be out; idempotency leases end here.
    pub deadline_ms: i64,
    pub body: &'a [u8],
    /// V1 routes: the verified, decoded query parameters. V2 routes: empty.
    pub params: &'a [(String, String)],
    /// Index of the key that verified the request (0 = current).
    pub key_index: usize,
    /// What the call is, once the function has read it from the request ([`Call::label`]).
    label: OnceLock<Label>,
    /// The identifiers the function read from its typed request ([`Call::trace`]).
    trace: OnceLock<TraceIds>,
    /// This request's replay-guard entry ([`Call::guard_replay`]).
    replay: ReplayGuard,
}

/// A request's replay-guard entry (D4, D16), recorded at most once per call.
struct ReplayGuard {
    key: String,
    now_s: i64,
    expires_at: i64,
    /// Set once the entry was recorded (the nonce was fresh).
    passed: AtomicBool,
}

impl ReplayGuard {
    /// The entry of `token` (the V2 nonce, the V1 authToken) on `route`, kept for the route's
    /// retention period.
    fn new(app: &App, route: &Route, token: &str, now_ms: i64) -> ReplayGuard {
        let now_s = now_ms.div_euclid(1000);
        let retention = match route.scheme {
            AuthScheme::UrlSignature | AuthScheme::KitHeaders | AuthScheme::Browser => {
                app.config.nonce_retention()
            }
            AuthScheme::V1QueryToken | AuthScheme::V1BodyToken => app.config.v1_token_retention(),
        };
        let retention = i64::try_from(retention.as_secs()).unwrap_or(i64::MAX);
        ReplayGuard {
            key: koogate_store::keys::nonce(route.interface.name(), token),
            now_s,
            expires_at: now_s.saturating_add(retention),
            passed: AtomicBool::new(false),
        }
    }

    fn nonce(&self) -> Nonce<'_> {
        Nonce {
            key: &self.key,
            now_s: self.now_s,
            expires_at: self.expires_at,
        }
    }

    fn passed(&self) -> bool {
        self.passed.load(Ordering::Relaxed)
    }

    fn pass(&self) {
        self.passed.store(true, Ordering::Relaxed);
    }
}

/// The answer to a nonce (or authToken) seen within its retention period: `000001`.
fn replayed() -> Failure {
    Failure::new(
        Answer::error(ResultCode::AuthFailed, "nonce was already used"),
        "replayed nonce",
    )
}

impl Call<'_> {
    /// Names this call's activity and debug flag for its log line and metric. The function calls
    /// it once, as soon as it knows them (after parsing, or on the parse error); a second call is
    /// ignored, so the first word stands.
    pub fn label(&self, activity: &'static str, debug: bool) {
        let _ = self.label.set(Label { activity, debug });
    }

    /// Names the business identifiers this call concerns, from the typed request, for its log
    /// line (the pipeline clips them and adds the instance the answer names). A function that
    /// does not, or a body it refused, has them skimmed from the body instead.
    pub fn trace(&self, ids: TraceIds) {
        let _ = self.trace.set(ids);
    }

    /// The replay guard (D4): records this request's nonce (V1: its authToken), unless this call
    /// did already; one seen within its retention period answers `000001`.
    ///
    /// The pipeline calls it before the function runs, unless the function takes the guard
    /// itself ([`Function::guards_replay`]): such a function calls it before its first write,
    /// or takes it with the idempotency lock through [`Call::once`] (one transaction on SQLite),
    /// and the pipeline calls it once more after the function returned, for the paths that
    /// wrote nothing (a read, a refused body). Either way a replay writes nothing and is answered
    /// `000001`.
    pub async fn guard_replay(&self) -> Result<(), Failure> {
        if self.replay.passed() {
            return Ok(());
        }
        let fresh = self
            .app
            .store
            .remember_nonce(&self.replay.key, self.replay.now_s, self.replay.expires_at)
            .await?;
        if !fresh {
            return Err(replayed());
        }
        self.replay.pass();
        Ok(())
    }

    /// What [`Call::label`] said, if anything.
    pub fn labelled(&self) -> Option<Label> {
        self.label.get().copied()
    }

    fn activity(&self) -> &'static str {
        self.labelled().map_or("-", |l| l.activity)
    }

    /// The key that verified this request (it also signs the answer and, on V1, encrypts
    /// credentials).
    pub fn key(&self, interface: crate::routes::InterfaceType) -> String {
        let secrets = self.app.secrets();
        let keys = secrets.keys(interface);
        keys.get(self.key_index)
            .or_else(|| keys.first())
            .cloned()
            .unwrap_or_default()
    }

    /// Runs `work` once per idempotency key (design §5): takes the lock, runs `work` with the
    /// lock held (its reference is the first delivery's proposal, D7), stores the answer it
    /// renders — unless `work` stored it with its last write
    /// ([`Call::put_instance_completing`]) — and returns it. When `work` fails or the answer
    /// cannot be stored, the lock is abandoned — a failure to abandon is logged, the lock then
    /// expires with its lease — so the marketplace's retry runs `work` again. A lock this call
    /// cannot take is reported as found (stored answer, live lease, different fixed fields) for
    /// the handler to answer.
    pub async fn once<F, Fut, D>(&self, lock: &Lock<'_>, work: F) -> Result<Locked, Failure>
    where
        F: FnOnce(Held) -> Fut,
        Fut: std::future::Future<Output = Result<D, Failure>>,
        D: Into<Done>,
    {
        let acquired = self.acquire(lock).await?;
        let reference = match acquired {
            AcquireOutcome::Acquired { reference } => reference,
            AcquireOutcome::Completed {
                reference,
                response,
                code,
            } => {
                // Records stored before the code was kept beside the answer: read it from there.
                let code = code
                    .or_else(|| koogate_protocol::envelope::result_code_text(response.as_bytes()))
                    .unwrap_or_else(|| "??????".into());
                return Ok(Locked::Replayed {
                    reference,
                    response,
                    code,
                });
            }
            AcquireOutcome::InFlight { reference } => return Ok(Locked::InFlight { reference }),
            AcquireOutcome::Mismatch => return Ok(Locked::Mismatch),
        };
        let held = Held {
            reference: reference.clone(),
            key: lock.key.to_string(),
            expires_at: lock.expires_at,
        };
        let stored = match work(held).await.map(Into::into) {
            Ok(Done {
                stored,
                completed: true,
            }) => return Ok(Locked::Done { reference, stored }),
            Ok(Done { stored, .. }) => stored,
            Err(failure) => {
                self.abandon(lock).await;
                return Err(failure);
            }
        };
        let response = String::from_utf8_lossy(&stored.body);
        match self
            .app
            .store
            .complete(
                lock.key,
                self.request_id,
                &response,
                stored.code.as_str(),
                lock.expires_at,
            )
            .await
        {
            // Not the owner any more (the lease ran out and a retry took over): the retry stores
            // its own answer for the same reference; ours is still true.
            Ok(_) => Ok(Locked::Done { reference, stored }),
            Err(e) => {
                self.abandon(lock).await;
                Err(e.into())
            }
        }
    }

    /// Writes `instance` (as [`App::put_instance`]) and completes the held lock with `stored`, in
    /// one transaction where the store allows (SQLite: one writer job instead of two). For the
    /// last write of [`Call::once`]'s work, whose answer `stored` is: the work returns the
    /// [`Done`] it gets back, and `once` does not complete the lock again. On a conflict nothing
    /// is written and `stored` comes back, for the work to decide.
    pub async fn put_instance_completing(
        &self,
        held: &Held,
        instance: &koogate_store::Instance,
        expected_version: Option<u64>,
        events: &[koogate_store::EventDraft],
        stored: Stored,
    ) -> Result<Saved, StoreError> {
        let response = String::from_utf8_lossy(&stored.body);
        let completion = Completion {
            key: &held.key,
            owner: self.request_id,
            response: &response,
            code: stored.code.as_str(),
            expires_at: held.expires_at,
        };
        let (written, _) = self
            .app
            .store
            .put_instance_completing(instance, expected_version, events, &completion)
            .await?;
        Ok(match written {
            VersionedWrite::Conflict => Saved::Conflict(stored),
            // Completed, or the lease ran out and a retry took the lock over: the retry stores
            // its own answer for the same reference; ours is still true (as in `once`).
            VersionedWrite::Written => {
                if !events.is_empty() {
                    self.app.events_recorded();
                }
                Saved::Completed(Done {
                    stored,
                    completed: true,
                })
            }
        })
    }

    /// Frees this call's lock after a failure; one that cannot be freed expires with its lease.
    async fn abandon(&self, lock: &Lock<'_>) {
        if let Err(e) = self.app.store.abandon(lock.key, self.request_id).await {
            tracing::error!(
                activity = self.activity(),
                request_id = self.request_id,
                error = %e,
                "cannot free the idempotency lock; it expires with its lease"
            );
        }
    }

    /// Takes the idempotency lock for this call (design §5), with the replay guard when it has
    /// not passed yet (one store call, [`koogate_store::Store::acquire_fresh`]). Handlers use
    /// [`Call::once`], which also completes or abandons it.
    async fn acquire(&self, lock: &Lock<'_>) -> Result<AcquireOutcome, Failure> {
        let acquire = Acquire {
            key: lock.key,
            owner: self.request_id,
            lease_until_ms: self.deadline_ms,
            validation: lock.validation,
            reference: lock.reference,
            expires_at: lock.expires_at,
            now_ms: self.now_ms,
        };
        let store = &self.app.store;
        if self.replay.passed() {
            return Ok(store.acquire(&acquire).await?);
        }
        let outcome = store
            .acquire_fresh(&self.replay.nonce(), &acquire)
            .await?
            .ok_or_else(replayed)?;
        self.replay.pass();
        Ok(outcome)
    }
}

/// An idempotency lock for [`Call::once`].
#[derive(Debug, Clone, Copy)]
pub struct Lock<'a> {
    /// The store key: the documented idempotency key of the activity.
    pub key: &'a str,
    /// Hash of the request fields that must not change between deliveries of the key.
    pub validation: &'a str,
    /// This delivery's proposal for the reference (newInstance: its businessId); the first
    /// delivery's wins forever.
    pub reference: &'a str,
    /// Epoch seconds after which the record counts as absent; `None` keeps it forever.
    pub expires_at: Option<i64>,
}

/// The lock [`Call::once`] holds while its work runs.
#[derive(Debug, Clone)]
pub struct Held {
    /// The lock's reference: this delivery's proposal on a first delivery, the first delivery's
    /// on a retry (D7).
    pub reference: String,
    key: String,
    expires_at: Option<i64>,
}

/// What locked work hands back to [`Call::once`]: an answer for `once` to store (from a
/// [`Stored`]), or one already stored with the work's last write (only
/// [`Call::put_instance_completing`] makes those).
#[derive(Debug, Clone)]
pub struct Done {
    stored: Stored,
    completed: bool,
}

impl From<Stored> for Done {
    fn from(stored: Stored) -> Done {
        Done {
            stored,
            completed: false,
        }
    }
}

/// What [`Call::put_instance_completing`] did.
#[derive(Debug, Clone)]
pub enum Saved {
    /// The instance was written and the lock completed with the answer: return this from the
    /// work.
    Completed(Done),
    /// The instance record exists (or has another version): nothing was written; the answer
    /// comes back unstored.
    Conflict(Stored),
}

/// What locked work produced: the answer to store and send, rendered once, with its code kept
/// beside it.
#[derive(Debug, Clone)]
pub struct Stored {
    pub body: Vec<u8>,
    pub code: ResultCode,
}

impl Stored {
    pub fn of(answer: &Answer) -> Stored {
        Stored {
            body: answer.render(),
            code: answer.code,
        }
    }
}

/// What [`Call::once`] found or did.
#[derive(Debug, Clone)]
pub enum Locked {
    /// This call ran the work; what it stored is the answer.
    Done { reference: String, stored: Stored },
    /// An earlier call completed: its stored answer, to replay, and its result code.
    Replayed {
        reference: String,
        response: String,
        code: String,
    },
    /// Another call holds a live lease (`000004`).
    InFlight { reference: String },
    /// The key was used with different fixed fields (`000002`).
    Mismatch,
}

/// A marketplace route's business logic.
#[async_trait]
pub trait Function: Send + Sync + 'static {
    /// The route this function serves (a constant its crate declares).
    fn route(&self) -> &'static Route;

    /// Handles a verified request. Names the call with [`Call::label`] once it knows its
    /// activity. Unless [`Function::guards_replay`] says otherwise, the request is also fresh
    /// (not a replay).
    async fn handle(&self, call: &Call<'_>) -> Result<Reply, Failure>;

    /// `true` when [`Function::handle`] takes the replay guard itself, so that the nonce can
    /// commit with its first write: it must call [`Call::guard_replay`] (or [`Call::once`])
    /// before writing anything. `false` (the default): the pipeline takes it first.
    fn guards_replay(&self) -> bool {
        false
    }
}

/// The current time in epoch milliseconds.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Runs one request through the pipeline.
pub async fn process(app: &Arc<App>, function: &dyn Function, inbound: &Inbound) -> Outbound {
    let started = Instant::now();
    let now = now_ms();
    let route = function.route();
    app.refresh_secrets().await;
    let secrets = app.secrets();
    let keys = secrets.keys(route.interface);
    let budget = i64::try_from(app.config.request_budget.as_millis()).unwrap_or(i64::MAX);
    // A platform deadline that is not in the future is not believable (cargo-lambda's emulator
    // sends the timeout, not an instant; or the clocks disagree): the budget alone applies then.
    let deadline_ms = inbound
        .deadline_ms
        .filter(|d| *d > now)
        .map_or(now.saturating_add(budget), |d| {
            d.min(now.saturating_add(budget))
        });
    let window_ms = i64::try_from(app.config.clock_skew.as_millis()).unwrap_or(i64::MAX);

    let authenticated = match route.scheme {
        AuthScheme::UrlSignature => authenticate::basic(inbound, keys, now, window_ms),
        AuthScheme::V1QueryToken => {
            authenticate::v1_query(inbound, keys, now, app.config.v1_window)
        }
        AuthScheme::KitHeaders => authenticate::kit_headers(inbound, keys, now, window_ms),
        AuthScheme::V1BodyToken => authenticate::v1_body(inbound, keys, now, app.config.v1_window),
        // Browser routes are served by web functions; one wired here by mistake is refused.
        AuthScheme::Browser => Err(Answer::error(
            ResultCode::AuthFailed,
            "browser routes are not served by the signed pipeline",
        )),
    };
    let mut verified_params: Vec<(String, String)> = Vec::new();
    let mut traced: Option<TraceIds> = None;
    let (result, label, key_index) = match authenticated {
        Err(answer) => {
            let reason = answer.message.clone();
            (Err(Failure::new(answer, reason)), None, None)
        }
        Ok(verified) => {
            let call = Call {
                app,
                request_id: &inbound.request_id,
                now_ms: now,
                deadline_ms,
                body: &inbound.body,
                params: &verified.params,
                key_index: verified.key_index,
                label: OnceLock::new(),
                trace: OnceLock::new(),
                replay: ReplayGuard::new(app, route, &verified.replay_token, now),
            };
            let remaining = Duration::from_millis(u64::try_from(deadline_ms - now).unwrap_or(0));
            let work = async {
                if !function.guards_replay() {
                    call.guard_replay().await?;
                }
                let result = function.handle(&call).await;
                // A function that guards itself may have returned on a path that wrote nothing;
                // the guard's answer then wins, as if it had run first. (A no-op otherwise.)
                call.guard_replay().await?;
                result
            };
            let result = match tokio::time::timeout(remaining, work).await {
                Ok(result) => result,
                Err(_) => Err(Failure::new(
                    Answer::error(
                        ResultCode::InternalError,
                        "request timed out inside the merchant",
                    ),
                    format!(
                        "no answer within {} ms (budget {budget} ms, platform deadline {:?})",
                        remaining.as_millis(),
                        inbound.deadline_ms
                    ),
                )),
            };
            let label = call.labelled();
            traced = call.trace.into_inner();
            verified_params = verified.params.clone();
            (result, label, Some(verified.key_index))
        }
    };

    // Both know their code: a fresh answer in itself, a replay beside its stored bytes.
    let (body, code, reason) = match result {
        Ok(Reply::Answer(a)) => (a.render(), a.code.as_str().to_string(), None),
        Ok(Reply::Stored { body, code }) => (body, code, None),
        Err(f) => (
            f.answer.render(),
            f.answer.code.as_str().to_string(),
            Some(f.reason),
        ),
    };
    let key = key_index
        .and_then(|i| keys.get(i))
        .or_else(|| keys.first())
        .map(String::as_str)
        .unwrap_or("");
    // Identifiers only from a verified body: an unverified one is nobody's order.
    let ids = match (key_index, traced) {
        (None, _) => TraceIds::default(),
        (Some(_), Some(ids)) => ids.completed(&body),
        (Some(_), None) => TraceIds::collect(&inbound.body, &verified_params, &body),
    };
    let out = Outbound::signed(body, key);

    let record = RequestRecord {
        function: route.function,
        route: route.path,
        activity: label.map(|l| l.activity),
        result_code: &code,
        debug: label.is_some_and(|l| l.debug),
        request_id: &inbound.request_id,
        latency_us: u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX),
        key_index,
        reason: reason.as_deref(),
        ids: &ids,
    };
    telemetry::log_request(&record);
    if app.config.emit_metrics {
        telemetry::emit_metric(&record, now);
    }
    out
}
