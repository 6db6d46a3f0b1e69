//! Tool calls proposed in a stream: judged once complete, with the same
//! decision function as buffered responses, before the agent sees them.
//!
//! The dialect handlers collect a call's argument fragments (withholding
//! them), then ask [`Cx::judge`] what to emit: the call as it came, the call
//! with masked arguments, or a refusal text in its place.

use super::Cx;
use crate::datapath::dialect::{redact_json, refusal_message};
use crate::datapath::enforce::{self, first_reason, judge_calls, CallAction};
use crate::decision::{Assessment, ToolCall};
use serde_json::{json, Value};

/// How a dialect carries a call's arguments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArgsForm {
    /// A JSON document inside a string (OpenAI `function.arguments`).
    JsonString,
    /// A JSON object streamed as text (Anthropic `partial_json`).
    JsonObject,
    /// Free text (OpenAI custom tools' `input`).
    Text,
}

/// What to send in place of a complete call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Emit the call; `masked` replaces the arguments when secrets in them
    /// were masked.
    Allow { masked: Option<String> },
    /// Emit this text instead (blocked, or waiting for approval).
    Refuse { message: String },
    /// Blocked, and the profile says `blocked_tool_call = "error"`: end
    /// the stream with an error event carrying this message.
    Fail { message: String },
}

/// A call that needs approval, as handed to an [`ApprovalHook`].
pub struct ApprovalRequest<'a> {
    pub request_id: &'a str,
    pub call: &'a ToolCall,
    pub assessment: &'a Assessment,
}

/// Where streamed calls that `require_approval` are registered. The
/// response filter is synchronous, so this is too; it returns the id the
/// agent is told to quote, or `None` when approvals are not available.
pub trait ApprovalHook: Send + Sync {
    fn approval_for(&self, request: &ApprovalRequest<'_>) -> Option<String>;
}

/// No approval store: the refusal says approval is required, without an id.
pub struct NoApprovals;

impl ApprovalHook for NoApprovals {
    fn approval_for(&self, _: &ApprovalRequest<'_>) -> Option<String> {
        None
    }
}

/// The text an agent sees in place of a call that waits for approval:
/// the buffered path's wording, plus the approval id when there is one.
pub fn approval_message(tool: &str, reason: &str, request_id: &str, id: Option<&str>) -> String {
    match id {
        None => enforce::approval_message(tool, reason, request_id),
        Some(id) => format!(
            "[asg] The call to tool `{tool}` requires approval by an operator before it can run (approval id {id}): {reason} (request {request_id})"
        ),
    }
}

/// Parse collected arguments the way the buffered path does.
fn parse(raw: &str, form: ArgsForm) -> Value {
    match form {
        ArgsForm::Text => Value::String(raw.to_string()),
        _ if raw.trim().is_empty() => json!({}),
        _ => serde_json::from_str(raw).unwrap_or_else(|_| Value::String(raw.to_string())),
    }
}

impl Cx {
    /// Decide a complete call. Calls of one stream are judged in the order
    /// they complete, each with the earlier ones as chain history.
    pub fn judge(&mut self, name: &str, id: Option<&str>, raw: &str, form: ArgsForm) -> Verdict {
        let mut call = ToolCall::new(name, parse(raw, form));
        call.id = id.map(str::to_string);
        let policy = self.policy.clone();
        let calls = std::slice::from_ref(&call);
        let Some(judged) = judge_calls(&policy, calls, &self.steps, self.masking).pop() else {
            unreachable!("one call in, one judged call out");
        };
        self.steps.push(policy.detectors.tools.tags_of(&call));
        self.report.absorb(&judged.assessment);
        self.report.tools.push(judged.verdict);
        let a = &judged.assessment;
        let message = match judged.action {
            CallAction::Pass => {
                return Verdict::Allow {
                    masked: self.mask_arguments(raw, form),
                }
            }
            CallAction::NeedsApproval => {
                let approval = self.approvals.approval_for(&ApprovalRequest {
                    request_id: &self.request_id,
                    call: &call,
                    assessment: a,
                });
                approval_message(
                    name,
                    &first_reason(a),
                    &self.request_id,
                    approval.as_deref(),
                )
            }
            CallAction::Refuse => {
                let message = refusal_message(name, &first_reason(a), &self.request_id);
                if self.blocked_as_error() {
                    return Verdict::Fail { message };
                }
                message
            }
        };
        Verdict::Refuse { message }
    }

    /// Mask secrets in arguments exactly as the buffered path's body walk
    /// does; `None` when nothing was masked.
    fn mask_arguments(&mut self, raw: &str, form: ArgsForm) -> Option<String> {
        if !self.redact {
            return None;
        }
        let policy = self.policy.clone();
        let (masked, events) = match form {
            ArgsForm::JsonString => {
                let mut v = json!({ "arguments": raw });
                let events = redact_json(&mut v, &policy.redactor, &self.masker);
                (v["arguments"].as_str().map(str::to_string), events)
            }
            ArgsForm::JsonObject => match serde_json::from_str::<Value>(raw) {
                Ok(mut v) => {
                    let events = redact_json(&mut v, &policy.redactor, &self.masker);
                    (Some(v.to_string()), events)
                }
                Err(_) => {
                    let mut v = Value::String(raw.to_string());
                    let events = redact_json(&mut v, &policy.redactor, &self.masker);
                    (v.as_str().map(str::to_string), events)
                }
            },
            ArgsForm::Text => {
                let mut v = Value::String(raw.to_string());
                let events = redact_json(&mut v, &policy.redactor, &self.masker);
                (v.as_str().map(str::to_string), events)
            }
        };
        if events.is_empty() {
            return None;
        }
        self.masks.extend(events);
        masked
    }
}
