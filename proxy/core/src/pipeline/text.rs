//! The pipeline's wording, once: what a released, denied or waiting call
//! is told on every channel.

use super::Channel;
use crate::approvals::{ApprovalStatus, ApprovalsConfig, Release};
use crate::{Assessment, Finding};

/// Reason added to a call an approval released.
pub fn released(how: &str, approval_id: &str) -> String {
    format!("Execution approved by an operator ({how}, approval {approval_id}).")
}

/// Reason added to a call an operator denied.
pub fn denied(approval_id: &str) -> String {
    format!("Denied by an operator (approval {approval_id}).")
}

/// Reason added to a call that waits for an operator.
pub fn waiting(approval_id: &str, note: &str) -> String {
    format!("Human approval required before execution: approval id {approval_id}{note}.")
}

/// How an approval released a call.
pub fn how(by_permit: bool, held: bool) -> &'static str {
    if by_permit {
        "permit"
    } else if held {
        "held call approved"
    } else {
        "approved identical call"
    }
}

/// What the caller must do next about a call that waits: nothing while
/// it is held; else how an approval will let it through; plus why a
/// presented permit did not work.
pub fn waiting_note(
    cfg: &ApprovalsConfig,
    channel: &Channel<'_>,
    status: ApprovalStatus,
    rejected: Option<&str>,
) -> String {
    let permit_where = match channel {
        Channel::Proxy { .. } => format!("in the {} header", cfg.permit_header),
        Channel::DecisionApi { .. } => "as approval_token".to_string(),
    };
    let holds = matches!(channel, Channel::Proxy { holds: true, .. });
    let mut note = match (status, holds, cfg.release) {
        (ApprovalStatus::Approved, _, _) => {
            format!(". It is approved: repeat the call with its permit {permit_where}")
        }
        (_, true, _) => String::new(),
        (_, false, Release::NextCall) => {
            ". Once an operator approves it, the identical call is let through once".to_string()
        }
        (_, false, Release::Permit) => format!(
            ". Once an operator approves it, repeat the call with the permit {permit_where}"
        ),
    };
    if let Some(r) = rejected {
        note.push_str(". ");
        note.push_str(r.trim_end_matches('.'));
    }
    note
}

/// What the agent sees in place of a call that waits for a human.
pub fn approval_message(tool: &str, reason: &str, request_id: &str) -> String {
    format!("[asg] The call to tool `{tool}` requires approval by an operator before it can run: {reason} (request {request_id})")
}

/// The findings that decided, for refusals: the non-redactable findings
/// of the highest severity (verdicts first), at most three, each with its
/// rule id, so the agent and the operator see what caused the refusal (a
/// session finding alone would only say that the session is risky).
pub fn first_reason(a: &Assessment) -> String {
    let line = strongest(a.findings.iter());
    if line.is_empty() {
        a.reasons().first().cloned().unwrap_or_default()
    } else {
        line
    }
}

pub fn strongest<'f>(findings: impl Iterator<Item = &'f Finding>) -> String {
    let mut fs: Vec<&Finding> = findings.filter(|f| !f.redactable).collect();
    let Some(top) = fs.iter().map(|f| f.severity).max() else {
        return String::new();
    };
    fs.retain(|f| f.severity == top);
    fs.sort_by(|x, y| y.verdict.cmp(&x.verdict).then(y.score.total_cmp(&x.score)));
    let mut parts: Vec<String> = Vec::new();
    for f in fs {
        let p = format!("{} [{}]", f.message, f.rule_id);
        if !parts.contains(&p) {
            parts.push(p);
        }
        if parts.len() == 3 {
            break;
        }
    }
    parts.join("; ")
}
