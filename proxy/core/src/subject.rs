//! What gets inspected: a dialect-neutral view of a request or response.
//!
//! The data path turns OpenAI, Anthropic and MCP bodies into a [`Subject`];
//! the `/inspect/*` API builds one from its request JSON. The
//! detectors only ever see this type, which is what keeps them independent of
//! wire formats and of pingora.

use serde_json::Value;

/// Where a piece of text came from. Detectors weigh the same words
/// differently by origin: "ignore previous instructions" typed by the user is
/// direct injection, the same words inside a tool result are indirect
/// injection aimed at the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Surface {
    /// System or developer instructions.
    System,
    /// What the user (or the agent acting as user) typed.
    User,
    /// Text the model produced.
    Assistant,
    /// Data returned by a tool and fed back to the model (untrusted).
    ToolResult,
    /// Tool names, descriptions and schemas offered to the model.
    ToolDefinition,
    /// Arguments of a tool call (scanned for secrets; judged by tool rules).
    ToolArguments,
}

impl Surface {
    pub fn as_str(self) -> &'static str {
        match self {
            Surface::System => "system",
            Surface::User => "user",
            Surface::Assistant => "assistant",
            Surface::ToolResult => "tool_result",
            Surface::ToolDefinition => "tool_definition",
            Surface::ToolArguments => "tool_arguments",
        }
    }
}

#[derive(Debug, Clone)]
pub struct TextPart {
    pub surface: Surface,
    pub text: String,
    /// Context a client harness attached to a user turn (Claude Code's
    /// `<system-reminder>`, Codex's `<environment_context>`, Gemini CLI's
    /// `<session_context>`): CLAUDE.md, memory, hook output, sandbox and
    /// approval settings, the harness's own guidance. It is judged by the
    /// phrase rules with their plain severities (a CLAUDE.md in a cloned
    /// repository is data the user did not write, but the harness's own
    /// reminders instruct the assistant by design), not by the learned
    /// stage: trained on such context, the indirect head still refused 3 of
    /// 99 benign harness documents of a never-tuned set and a real Codex
    /// `<environment_context>` whose paths it had not seen.
    pub attached: bool,
}

/// A tool invocation, planned by a model or requested of a tool server.
#[derive(Debug, Clone)]
pub struct ToolCall {
    pub name: String,
    /// Parsed arguments. Dialects that carry arguments as a JSON string are
    /// parsed by the data path; unparseable strings arrive as `Value::String`.
    pub arguments: Value,
    /// The call id in its dialect, used to rewrite the right call.
    pub id: Option<String>,
}

impl ToolCall {
    pub fn new(name: impl Into<String>, arguments: Value) -> Self {
        ToolCall {
            name: name.into(),
            arguments,
            id: None,
        }
    }

    /// A single display/fingerprint string for the call's target: the raw
    /// string for string arguments, compact JSON otherwise.
    pub fn target(&self) -> String {
        match &self.arguments {
            Value::String(s) => s.clone(),
            Value::Null => String::new(),
            other => other.to_string(),
        }
    }
}

/// Everything a single decision is made about.
#[derive(Debug, Clone, Default)]
pub struct Subject {
    pub texts: Vec<TextPart>,
    pub tool_calls: Vec<ToolCall>,
    pub memory_reads: Vec<String>,
    pub memory_writes: Vec<String>,
    /// Whose texts these are, for the memo of judged texts
    /// (`detectors::memo`): parts judged before in the same scope are not
    /// judged again. `None`: judge everything (no caller to scope by).
    pub memo_scope: Option<u64>,
}

impl Subject {
    /// A memo scope for a caller's name (an agent id): stable within the
    /// process, distinct per name.
    pub fn scope_of(name: &str) -> Option<u64> {
        use std::hash::{Hash, Hasher};
        if name.is_empty() {
            return None;
        }
        let mut h = std::collections::hash_map::DefaultHasher::new();
        name.hash(&mut h);
        Some(h.finish())
    }

    pub fn push_text(&mut self, surface: Surface, text: impl Into<String>) {
        let text = text.into();
        if !text.trim().is_empty() {
            self.texts.push(TextPart {
                surface,
                text,
                attached: false,
            });
        }
    }

    /// Harness-attached context of a user turn (see [`TextPart::attached`]).
    pub fn push_attached(&mut self, text: impl Into<String>) {
        let text = text.into();
        if !text.trim().is_empty() {
            self.texts.push(TextPart {
                surface: Surface::ToolResult,
                text,
                attached: true,
            });
        }
    }

    pub fn is_empty(&self) -> bool {
        self.texts.is_empty()
            && self.tool_calls.is_empty()
            && self.memory_reads.is_empty()
            && self.memory_writes.is_empty()
    }

    /// Total bytes of text, for size limits and metrics.
    pub fn text_len(&self) -> usize {
        self.texts.iter().map(|t| t.text.len()).sum()
    }
}
