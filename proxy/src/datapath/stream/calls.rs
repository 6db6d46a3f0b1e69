//! Tool calls proposed in a stream: judged once complete, with the same
//! decision function as buffered responses, before the agent sees them.
//!
//! The dialect handlers collect a call's argument fragments (withholding
//! them), then ask [`Cx::judge`] what to emit: the call as it came, the call
//! with masked arguments, or a refusal text in its place. Judging goes
//! through the request's session layer ([`SessionHooks`]) exactly like the
//! buffered path: session history and risk count, and a call that needs
//! approval opens (or spends) an approval whose id the refusal quotes.

use super::Cx;
use crate::datapath::dialect::{redact_json, refusal_message};
use crate::datapath::enforce::{call_text, CallAction, ToolVerdict};
use crate::datapath::hooks::Judge;
use crate::datapath::strict_json;
use crate::decision::pipeline::{Earlier, Phase};
use crate::decision::Decision;
use crate::decision::Subject;
use crate::decision::ToolCall;
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
    /// they complete, each after the session's history and the stream's
    /// earlier calls (chain context).
    pub fn judge(&mut self, name: &str, id: Option<&str>, raw: &str, form: ArgsForm) -> Verdict {
        if form != ArgsForm::Text {
            // Arguments whose keys repeat are read one way here and maybe
            // another by the agent's tool runner: never delivered.
            if let Err(e) = strict_json::parse_arguments(raw) {
                let why = format!("the call's arguments cannot be inspected unambiguously ({e})");
                self.report.decision = self.report.decision.max(Decision::Block);
                self.note(&why);
                self.report.tools.push(ToolVerdict {
                    name: name.to_string(),
                    target: String::new(),
                    decision: Decision::Block,
                });
                let message = refusal_message(name, &why, &self.request_id);
                return if self.blocked_as_error() {
                    Verdict::Fail { message }
                } else {
                    Verdict::Refuse { message }
                };
            }
        }
        let mut call = ToolCall::new(name, parse(raw, form));
        call.id = id.map(str::to_string);
        let policy = self.policy.clone();
        let hooks = self.hooks.clone();
        if !self.begun {
            // The response stage starts with the first call (as buffered).
            self.begun = true;
            hooks.begin(&Value::Null);
        }
        // A code-mode call (Codex's `exec`) is judged with the calls its
        // JavaScript makes: the decision core reads them from the code.
        let subject = Subject {
            tool_calls: vec![call],
            ..Subject::default()
        };
        let out = hooks.judge(&Judge {
            policy: &policy,
            masker: &self.masker,
            request_id: &self.request_id,
            dialect: "",
            phase: Phase::Response,
            subject: &subject,
            masking: self.masking,
            earlier: &self.earlier,
        });
        let Some(judged) = out.calls.into_iter().next() else {
            unreachable!("one call in, one judged call out");
        };
        self.earlier.push(Earlier {
            tags: judged.tags.clone(),
            base_score: judged.base_score,
        });
        if let Some(g) = judged.gated.clone() {
            self.report.approvals.push(g);
        }
        self.report.absorb(&judged.assessment);
        self.report.tools.push(ToolVerdict {
            name: judged.name.clone(),
            target: judged.target.clone(),
            decision: judged.decision,
        });
        match call_text(&judged, &self.request_id) {
            None => Verdict::Allow {
                masked: self.mask_arguments(raw, form),
            },
            Some(message) if judged.action == CallAction::Refuse && self.blocked_as_error() => {
                Verdict::Fail { message }
            }
            Some(message) => Verdict::Refuse { message },
        }
    }

    /// Mask secrets in arguments exactly as the buffered path's body walk
    /// does; `None` when nothing was masked.
    fn mask_arguments(&mut self, raw: &str, form: ArgsForm) -> Option<String> {
        if !self.redact {
            return None;
        }
        let redactor = self.redactor();
        let (masked, events) = match form {
            ArgsForm::JsonString => {
                let mut v = json!({ "arguments": raw });
                let events = redact_json(&mut v, &redactor, &self.masker);
                (v["arguments"].as_str().map(str::to_string), events)
            }
            ArgsForm::JsonObject => match serde_json::from_str::<Value>(raw) {
                Ok(mut v) => {
                    let events = redact_json(&mut v, &redactor, &self.masker);
                    (Some(v.to_string()), events)
                }
                Err(_) => {
                    let mut v = Value::String(raw.to_string());
                    let events = redact_json(&mut v, &redactor, &self.masker);
                    (v.as_str().map(str::to_string), events)
                }
            },
            ArgsForm::Text => {
                let mut v = Value::String(raw.to_string());
                let events = redact_json(&mut v, &redactor, &self.masker);
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
