//! What one stage of an exchange (request or response) decided: the record
//! metrics and audit are made from. It lives in the core so the data path
//! that fills it and the metrics that count it do not import each other.

use crate::approvals::ApprovalStatus;
use crate::pipeline::Gated;
use crate::redact::MaskEvent;
use crate::{Assessment, Decision, Finding};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Request,
    Response,
}

impl Stage {
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Request => "request",
            Stage::Response => "response",
        }
    }
}

/// A tool call and what was decided about it.
#[derive(Debug, Clone)]
pub struct ToolVerdict {
    pub name: String,
    pub target: String,
    pub decision: Decision,
}

/// What one stage decided, for metrics and audit.
#[derive(Debug, Clone)]
pub struct StageReport {
    pub stage: Stage,
    pub decision: Decision,
    pub score: f64,
    pub reasons: Vec<String>,
    pub findings: Vec<Finding>,
    pub masks: Vec<MaskEvent>,
    pub tools: Vec<ToolVerdict>,
    /// Approvals this stage opened, found pending, or spent.
    pub approvals: Vec<Gated>,
    /// The passwords and keys the request's system prompt keeps, for the
    /// response stage to mask; never recorded.
    pub kept: KeptSecrets,
}

/// Values a system prompt keeps. Their `Debug` shows how many, never the
/// values, so a report logged whole leaks none.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct KeptSecrets(pub Vec<String>);

impl std::fmt::Debug for KeptSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KeptSecrets({} values)", self.0.len())
    }
}

impl StageReport {
    pub fn new(stage: Stage) -> Self {
        StageReport {
            stage,
            decision: Decision::Allow,
            score: 0.0,
            reasons: Vec::new(),
            findings: Vec::new(),
            masks: Vec::new(),
            tools: Vec::new(),
            approvals: Vec::new(),
            kept: KeptSecrets::default(),
        }
    }

    /// Approvals still waiting for an operator (a held call waits on these).
    pub fn pending_approvals(&self) -> Vec<String> {
        self.approvals
            .iter()
            .filter_map(|g| match g {
                Gated::Waiting { approval, .. } if approval.status != ApprovalStatus::Denied => {
                    Some(approval.approval_id.clone())
                }
                _ => None,
            })
            .collect()
    }

    /// A request the gateway refused before inspecting it.
    pub fn refused(reason: &str) -> Self {
        StageReport {
            decision: Decision::Block,
            reasons: vec![reason.to_string()],
            ..StageReport::new(Stage::Request)
        }
    }

    pub fn absorb(&mut self, a: &Assessment) {
        self.decision = self.decision.max(a.decision);
        self.score = self.score.max(a.evaluation.total_score);
        for r in a.reasons() {
            if !self.reasons.contains(r) {
                self.reasons.push(r.clone());
            }
        }
        self.findings.extend(a.findings.iter().cloned());
    }
}
