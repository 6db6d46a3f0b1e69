//! The seam between enforcement and the session layer.
//!
//! [`enforce`](super::enforce) stays free of storage: it asks a
//! [`SessionHooks`] for the session's earlier chain steps, for extra
//! (session-risk) findings, and what to do with a call that needs approval,
//! and tells it what was judged. [`NoSession`] answers "nothing" to all of
//! it (unit tests, and the behaviour without sessions); the live
//! implementation is [`super::session_gate::SessionGate`].

use crate::decision::subject::ToolCall;
use crate::decision::{Assessment, Decision, Finding};
use serde_json::Value;

/// How a call that needs approval was settled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Settled {
    /// No approval flow (approvals off): refuse, saying approval is needed.
    Unavailable,
    /// An approval was spent: the call proceeds once.
    Released { approval_id: String, how: String },
    /// Waiting for an operator: refuse for now (or hold, on tool routes).
    Pending { approval_id: String, note: String },
    /// An operator denied this very call.
    Denied { approval_id: String },
    /// No approval could be opened (too many are pending): refuse, saying why.
    Refused { reason: String },
}

impl Settled {
    pub fn approval_id(&self) -> Option<&str> {
        match self {
            Settled::Unavailable | Settled::Refused { .. } => None,
            Settled::Released { approval_id, .. }
            | Settled::Pending { approval_id, .. }
            | Settled::Denied { approval_id } => Some(approval_id),
        }
    }
}

/// What one call came to, reported back to the session layer.
#[derive(Debug, Clone)]
pub struct CallRecord {
    pub name: String,
    pub tags: Vec<String>,
    /// Score without session findings.
    pub base_score: f64,
    pub decision: Decision,
    pub settled: Option<Settled>,
    /// What refused or held the call (`rule_id: message`), for the session.
    pub causes: Vec<String>,
}

pub trait SessionHooks: Send + Sync {
    /// The stage's body was parsed (identity may be read from it).
    fn begin(&self, _body: &Value) {}
    /// Chain steps of earlier requests, oldest first.
    fn history(&self) -> Vec<Vec<String>> {
        Vec::new()
    }
    /// Session-risk findings for prose (`tags` empty) or one call.
    fn findings(&self, _tags: &[Vec<String>], _base_score: f64) -> Vec<Finding> {
        Vec::new()
    }
    /// A call needs approval: try to release it, else open/find its approval.
    fn settle(&self, _call: &ToolCall, _assessment: &Assessment) -> Settled {
        Settled::Unavailable
    }
    /// The prose of a request was judged (base score without session findings).
    fn prose_judged(&self, _base_score: f64, _decision: Decision) {}
    /// A call was judged.
    fn call_judged(&self, _call: &CallRecord) {}
}

/// No session layer.
pub struct NoSession;

impl SessionHooks for NoSession {}
