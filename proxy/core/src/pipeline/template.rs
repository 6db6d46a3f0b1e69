//! The one constructor of a pending [`Approval`]: the proxy, the decision
//! API and `/approval/submit` all build theirs here, so an approval raised
//! on one channel is bound exactly like the call on another.

use super::Channel;
use crate::approvals::{
    display_target, finding_notes, fingerprint, Approval, ApprovalStatus, Binding, Origin,
};
use crate::redact::Masker;
use crate::{Assessment, Decision, Policy, ToolCall};
use serde_json::{json, Value};

/// The arguments an approval is bound to: a single call's own arguments
/// (the proxy's MCP `arguments`, the decision API's `tool_arguments` or
/// target), several calls as `[{type, target}]`.
pub fn binding_arguments(calls: &[&ToolCall]) -> Value {
    match calls {
        [one] => one.arguments.clone(),
        many => many
            .iter()
            .map(|c| json!({ "type": c.name, "target": c.arguments }))
            .collect(),
    }
}

pub struct ApprovalTemplate<'a> {
    pub binding: Binding<'a>,
    /// What the operator sees as the target (masked and truncated here).
    pub target: &'a str,
    pub origin: Origin,
    pub channel: Channel<'a>,
    pub request_id: &'a str,
    /// The assessment that asked for a human (none for a submission the
    /// policy does not challenge).
    pub assessment: Option<&'a Assessment>,
    pub now_ms: i64,
    /// How long it waits for an operator.
    pub ttl_ms: i64,
}

impl ApprovalTemplate<'_> {
    pub fn build(&self, policy: &Policy, masker: &Masker, binding_key: &[u8]) -> Approval {
        let b = &self.binding;
        let (route, dialect, turn_id, hold, note) = match self.channel {
            Channel::Proxy {
                route,
                dialect,
                holds,
            } => (route, dialect, "", holds, String::new()),
            Channel::DecisionApi {
                credential,
                turn_id,
            } => {
                let verb = match self.origin {
                    Origin::Submit => "submitted",
                    _ => "requested",
                };
                let route = match self.origin {
                    Origin::Submit => "approval_api",
                    _ => "inspect_api",
                };
                (
                    route,
                    "inspect_api",
                    turn_id,
                    false,
                    format!("{verb} via {credential}"),
                )
            }
        };
        Approval {
            approval_id: String::new(),
            status: ApprovalStatus::Pending,
            session_id: b.session_id.to_string(),
            turn_id: turn_id.chars().take(256).collect(),
            agent_id: b.agent_id.to_string(),
            action_type: b.tool.trim().to_lowercase(),
            action_target: display_target(&policy.redactor, masker, self.target),
            fingerprint: fingerprint(binding_key, b),
            origin: self.origin,
            route: route.to_string(),
            dialect: dialect.to_string(),
            request_id: self.request_id.to_string(),
            // Whatever the channel: the call waits for a human.
            decision: Decision::RequireApproval.as_str().to_string(),
            score: self.assessment.map_or(0.0, |a| a.evaluation.total_score),
            reasons: self
                .assessment
                .map(|a| a.reasons().to_vec())
                .unwrap_or_default(),
            findings: self
                .assessment
                .map(|a| finding_notes(&a.findings))
                .unwrap_or_default(),
            hold,
            created_ms: self.now_ms,
            expires_ms: self.now_ms + self.ttl_ms,
            resolved_ms: None,
            resolver: String::new(),
            resolver_credential: String::new(),
            note,
            permit_sha256: None,
            permit_expires_ms: None,
            used_ms: None,
            used_by: None,
        }
    }
}
