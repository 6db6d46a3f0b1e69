//! One decision pipeline for every channel: proxied requests and
//! responses (buffered and streamed), MCP / HTTP tool calls, held calls and
//! the decision API all come through here, so the same call in the same
//! situation is decided, gated, worded and recorded the same way.
//!
//! The pipeline is pure. A caller loads the session and agent scopes,
//! calls [`decide`], runs the approval [`GateStep`]s the draft asks for
//! against its store, and hands the results to [`settle`]; the
//! [`Outcome`] says what each call comes to (decision, wire action,
//! wording) and what the stage adds to session risk. Callers only map that
//! onto their wire and do the store calls.
//!
//! The rules, for every channel:
//! * prose is assessed once, each call alone with the session history and
//!   the calls judged earlier in the stage as chain context
//!   ([`Scoring::PerPart`]); the decision API keeps its contract of one
//!   assessment of the whole subject ([`Scoring::Whole`]) — a subject with
//!   one call and no prose scores the same either way;
//! * session findings raise decisions to their floor; state that could not
//!   be loaded adds the critical finding `session.state_unavailable`;
//! * a call's `challenge` follows the profile's `tool_challenge`; prose
//!   `challenge` follows `request_challenge` on enforcing channels and is
//!   reported as is on the decision API;
//! * calls that need a human are gated when approvals are on and the
//!   caller has a session or an agent identity, bound to session, agent,
//!   tool, canonical arguments and (decision API) the prose around them.

pub mod decide;
pub mod settle;
pub mod template;
#[cfg(test)]
mod tests;
pub mod text;

pub use decide::{decide, CallAction, Draft, GateStep, Judged};
pub use settle::{merge_records, settle, CallOutcome, Outcome, ProseAction};
pub use template::{binding_arguments, ApprovalTemplate};

use crate::approvals::Approval;
use crate::redact::Masker;
use crate::session::{AgentState, SessionState};
use crate::{Masking, Policy, Subject};

/// Which part of an exchange was observed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// What the agent sends (a model request, a tool call to a tool server).
    Request,
    /// What comes back (a model's answer proposing tool calls).
    Response,
    /// A decision API call (the caller enforces).
    Inspect,
}

/// Where the observation came from.
#[derive(Debug, Clone, Copy)]
pub enum Channel<'a> {
    /// Live traffic: the gateway enforces. `holds`: a call that needs a
    /// human is held open on this route while an operator decides.
    Proxy {
        route: &'a str,
        dialect: &'a str,
        holds: bool,
    },
    /// `/inspect/*`: reported, the caller enforces.
    DecisionApi {
        credential: &'a str,
        turn_id: &'a str,
    },
}

impl Channel<'_> {
    pub fn enforcing(&self) -> bool {
        matches!(self, Channel::Proxy { .. })
    }
}

/// How a subject is scored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scoring {
    /// Prose once, each call alone (the proxy).
    PerPart,
    /// The whole subject in one assessment, applied to every call (the
    /// decision API's contract: one total score for one SecurityContext).
    Whole,
}

/// What was observed.
#[derive(Debug, Clone, Copy)]
pub struct Observed<'a> {
    pub phase: Phase,
    pub channel: Channel<'a>,
    pub subject: &'a Subject,
    pub scoring: Scoring,
    pub masking: Masking,
}

/// Who acts, and in which session (empty: none).
#[derive(Debug, Clone, Copy, Default)]
pub struct Who<'a> {
    pub session_id: &'a str,
    pub agent_id: &'a str,
}

/// The session and agent scopes the stage is judged in.
#[derive(Debug, Clone, Copy)]
pub enum StateView<'a> {
    /// Session tracking is off (or there is nothing to track).
    Off,
    /// The store could not be read: fail closed.
    Unavailable,
    Loaded {
        session: Option<&'a SessionState>,
        agent: Option<&'a AgentState>,
    },
}

/// A call judged earlier in the same stage: chain context for later calls
/// and part of the stage's score for session findings.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Earlier {
    pub tags: Vec<String>,
    pub base_score: f64,
}

/// Everything besides the observation.
#[derive(Clone, Copy)]
pub struct Inputs<'a> {
    pub policy: &'a Policy,
    pub masker: &'a Masker,
    /// Keys approval binding fingerprints.
    pub binding_key: &'a [u8],
    pub request_id: &'a str,
    pub who: Who<'a>,
    pub state: StateView<'a>,
    pub now_ms: i64,
    /// A permit presented with the call (header or `approval_token`).
    pub permit: Option<&'a str>,
    /// This is a held call an operator approved, judged again: it is
    /// released whatever the release mode and its prose is not counted
    /// twice.
    pub held: bool,
    /// Calls judged earlier in this stage.
    pub earlier: &'a [Earlier],
}

/// What the store's approval gate made of one step.
#[derive(Debug, Clone, PartialEq)]
pub enum Gated {
    /// An approval was spent: the call proceeds once.
    Released { approval: Approval, by_permit: bool },
    /// The binding's approval, opened now (`created`) or found: pending,
    /// approved (then only its permit releases the call) or denied.
    /// `rejected` says why a presented permit did not work.
    Waiting {
        approval: Approval,
        created: bool,
        rejected: Option<String>,
    },
    /// No approval could be opened (too many are pending).
    Refused { reason: String },
    /// No approval flow (approvals off, no identity, or the store failed).
    Unavailable,
}

impl Gated {
    pub fn approval_id(&self) -> Option<&str> {
        match self {
            Gated::Released { approval, .. } | Gated::Waiting { approval, .. } => {
                Some(&approval.approval_id)
            }
            Gated::Refused { .. } | Gated::Unavailable => None,
        }
    }
}

/// [`decide`], the gate, then [`settle`], for callers whose gate is a
/// plain function of the steps.
pub fn run(
    inp: &Inputs<'_>,
    obs: &Observed<'_>,
    gate: impl FnOnce(&[GateStep]) -> Vec<Gated>,
) -> Outcome {
    let draft = decide(inp, obs);
    let results = if draft.gate.is_empty() {
        Vec::new()
    } else {
        gate(&draft.gate)
    };
    settle(inp, obs, draft, results)
}

/// The approval metric events (`asg_approvals_total{event}`) one gate
/// result stands for; a closed set of labels.
pub fn gate_events(g: &Gated) -> Vec<&'static str> {
    match g {
        Gated::Released { .. } => vec!["released"],
        Gated::Waiting {
            created, rejected, ..
        } => {
            let mut e = Vec::new();
            if *created {
                e.push("opened");
            }
            if rejected.is_some() {
                e.push("refused_permit");
            }
            e
        }
        Gated::Refused { .. } => vec!["refused_cap"],
        Gated::Unavailable => Vec::new(),
    }
}
