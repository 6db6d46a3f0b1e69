//! The store seam: what the decision pipeline needs from shared state.
//!
//! This is the shape the one-pipeline design gives the core's `store.rs`
//! (`StateStore` for the request path, `ControlStore` for operators),
//! written here against today's types so the Redis backend and the sled
//! adapter can be built and tested before the pipeline exists. The
//! pipeline owns this file: when the core crate is cut, it moves there
//! (with `conformance.rs`) and the types below are replaced by the core's
//! own (`AuditEvent` → `AuditRecord`, `Opened` → `store::Opened`).
//!
//! Differences from the design's sketch, each because today's types need it:
//! * `StageRecord` carries the `SessionConfig` its record is applied with
//!   (half-life, window, history caps come from the hot-reloaded policy,
//!   and a Redis script applies them server-side), and its tail entry is
//!   optional;
//! * `StateView` carries the rate verdict asked for with `LoadQuery.rate`;
//! * `flush()` drains queued records (shutdown, tests);
//! * a gate step's clock is its template's `created_ms`.
//!
//! Futures are `core::future::Future` returned by `impl Trait` (no boxing,
//! static dispatch through the composition root's backend enum).

pub mod conformance;
pub mod gcra;
pub mod sled;

use crate::decision::approvals::{Approval, ApprovalStatus, ConsumeError, Release, ResolveError};
use crate::decision::session::{AgentState, Record, SessionConfig, SessionState};
use crate::state::approvals::Opened;
use crate::state::AuditEvent;
use std::future::Future;
use std::sync::Arc;

/// What a backend could not do. Callers fail closed on every variant.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum StoreError {
    /// The backend cannot be reached (or did not answer in time).
    #[error("state backend unavailable: {0}")]
    Unavailable(String),
    /// A stored value could not be read.
    #[error("corrupt state record: {0}")]
    Corrupt(String),
    /// A write was made but is not known to be durable (not acknowledged).
    #[error("state could not be made durable: {0}")]
    NotDurable(String),
}

impl From<crate::state::StoreError> for StoreError {
    fn from(e: crate::state::StoreError) -> Self {
        match e {
            crate::state::StoreError::Corrupt { .. } => StoreError::Corrupt(e.to_string()),
            crate::state::StoreError::NotDurable(m) => StoreError::NotDurable(m),
            other => StoreError::Unavailable(other.to_string()),
        }
    }
}

/// The request path's side of the store.
pub trait StateStore: Send + Sync + 'static {
    type Watch: ApprovalWatch;
    /// One round trip: the session and agent scopes a stage is judged in,
    /// and the rate verdict if asked. A backend that cannot be reached
    /// serves its local view with `degraded` set.
    fn load(&self, q: &LoadQuery<'_>)
        -> impl Future<Output = Result<StateView, StoreError>> + Send;
    /// One round trip for every approval step of a stage, each atomic; a
    /// permit is spent exactly once across every gateway on the store.
    /// Returns only once what it wrote is durable (it is acknowledged to
    /// the agent). A step the backend could not run is `Unavailable`.
    fn gate(
        &self,
        steps: Vec<GateStep>,
    ) -> impl Future<Output = Result<Vec<GateResult>, StoreError>> + Send;
    /// Queued, never awaited: risk delta, staged/released, tail entry.
    fn record(&self, rec: StageRecord);
    /// Send what `record` queued; returns when the backend has it (or
    /// kept it locally because the backend is down).
    fn flush(&self) -> impl Future<Output = ()> + Send;
    /// Wake-up for a held call; ends when the approval leaves `pending`.
    fn watch(&self, approval_id: &str) -> Self::Watch;
    /// For `/ready` and the degraded flags.
    fn health(&self) -> Health;
}

/// A held call's wait. `changed` resolves with the approval's new status
/// once it left `pending`, then with `None`; `None` also when the approval
/// does not exist. It never resolves while the backend is unreachable: the
/// caller's deadline refuses the held call.
pub trait ApprovalWatch: Send {
    fn changed(&mut self) -> impl Future<Output = Option<ApprovalStatus>> + Send;
}

/// The operator side (admin API today, `asg control` in a fleet); never on
/// the proxy's hot path.
pub trait ControlStore: StateStore {
    fn approvals(
        &self,
        f: ApprovalFilter,
    ) -> impl Future<Output = Result<Vec<Approval>, StoreError>> + Send;
    fn approval(
        &self,
        id: &str,
        now_ms: i64,
    ) -> impl Future<Output = Result<Option<Approval>, StoreError>> + Send;
    /// Approve (a fresh permit is returned once, only its hash is kept) or
    /// deny. `None`: no such approval.
    #[allow(clippy::type_complexity)]
    fn resolve(
        &self,
        r: Resolve,
    ) -> impl Future<
        Output = Result<Option<Result<(Approval, Option<String>), ResolveError>>, StoreError>,
    > + Send;
    /// Open (or find) the approval for a template (`/approval/submit`).
    fn submit(&self, template: Approval)
        -> impl Future<Output = Result<Opened, StoreError>> + Send;
    fn sessions(
        &self,
        f: SessionFilter,
    ) -> impl Future<Output = Result<Vec<SessionSummary>, StoreError>> + Send;
    /// Tail entries with `seq > after` oldest first, or (without `after`)
    /// the newest `n` oldest first.
    fn tail(
        &self,
        after: Option<u64>,
        n: usize,
    ) -> impl Future<Output = Result<Vec<TailEntry>, StoreError>> + Send;
}

/// The scopes of one stage.
#[derive(Debug, Clone, Copy, Default)]
pub struct LoadQuery<'a> {
    /// Empty: no session.
    pub session_id: &'a str,
    /// The agent scope key (`identity.risk_agent`); empty: none.
    pub risk_agent: &'a str,
    pub agent_scope: bool,
    pub rate: Option<RateKey<'a>>,
}

/// A shared rate limit (GCRA): `per_minute` sustained, `burst` at once.
#[derive(Debug, Clone, Copy)]
pub struct RateKey<'a> {
    pub key: &'a str,
    pub per_minute: u32,
    pub burst: u32,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateVerdict {
    pub allowed: bool,
    /// When a refused caller may try again.
    pub retry_after_ms: u64,
    /// Decided by this gateway alone (the shared counter was unreachable).
    pub degraded: bool,
}

#[derive(Debug, Clone, Default)]
pub struct StateView {
    pub session: Option<Arc<SessionState>>,
    pub agent: Option<Arc<AgentState>>,
    pub rate: Option<RateVerdict>,
    /// No state could be given at all (the core adds the critical finding
    /// `session.state_unavailable`).
    pub unavailable: bool,
    /// Served from this gateway's local view (the shared store is down).
    pub degraded: bool,
}

/// One call that needs a human: a presented permit is tried first, then
/// (`next_call`) an approved approval for the same binding, else the
/// binding's approval is opened or found.
#[derive(Debug, Clone)]
pub struct GateStep {
    /// Binding fingerprint, request id, expiry, display fields; its
    /// `created_ms` is the step's clock.
    pub template: Approval,
    pub release: Release,
    pub permit: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum GateResult {
    /// An approval was spent: the call may proceed once.
    Released { approval: Approval, by_permit: bool },
    /// The call waits (or was denied); `rejected` says why a presented
    /// permit did not work.
    Waiting {
        opened: Opened,
        rejected: Option<ConsumeError>,
    },
    /// The backend could not run this step: refuse the call.
    Unavailable,
}

/// What one stage adds to its scopes, queued by `record`.
#[derive(Debug, Clone)]
pub struct StageRecord {
    pub session_id: String,
    /// The agent that owns the session if this record creates it.
    pub owner_id: String,
    /// Agent scope key; empty: no agent scope.
    pub risk_agent: String,
    pub record: Record,
    /// Memory paths touched (masked).
    pub memory: Vec<String>,
    pub now_ms: i64,
    pub tail: Option<TailEntry>,
    pub session: Arc<SessionConfig>,
}

/// A line of the console's live tail (masked, like every audit record).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TailEntry {
    /// Assigned by the store, increasing across every gateway on it.
    #[serde(default)]
    pub seq: u64,
    /// Which gateway (pod) wrote it.
    #[serde(default)]
    pub gateway: String,
    pub event: AuditEvent,
}

#[derive(Debug, Clone)]
pub struct ApprovalFilter {
    pub status: Option<ApprovalStatus>,
    pub session_id: Option<String>,
    pub limit: usize,
    pub now_ms: i64,
}

#[derive(Debug, Clone)]
pub struct Resolve {
    pub id: String,
    /// `Some(permit lifetime in seconds)` approves; `None` denies.
    pub approve: Option<u64>,
    pub resolver: String,
    pub credential: String,
    pub note: String,
    pub now_ms: i64,
}

#[derive(Debug, Clone, Copy)]
pub struct SessionFilter {
    pub limit: usize,
}

/// The console's session rows are whole session states today.
pub type SessionSummary = Arc<SessionState>;

/// How held calls learn about decisions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WakeMode {
    /// In-process notification (one gateway).
    Local,
    /// Pub/sub from the shared store.
    PubSub,
    /// Pub/sub lost: held calls poll.
    Polling,
}

/// The backend's state for `/ready` and metrics.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Health {
    pub backend: &'static str,
    /// The backend answers.
    pub connected: bool,
    /// Risk and rate limits are decided locally (approvals fail closed).
    pub degraded: bool,
    pub wake: WakeMode,
    /// What an acknowledged write survives (e.g. `aof_always`).
    pub durability: String,
    /// The last error, masked (no credentials).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl Health {
    /// Whether the gateway should report ready. A reachable backend is
    /// ready; an unreachable one still lets the gateway serve (risk and
    /// rate limits degrade to local, approvals fail closed), so readiness
    /// stays true and `degraded` says why approvals are refused: a sidecar
    /// that turned unready would take its whole agent pod out of service.
    pub fn ready(&self) -> bool {
        self.connected || self.degraded
    }
}
