//! API dialects: where prompts, tool definitions, tool calls and tool
//! results live in each wire format, how to refuse a tool call so the
//! official SDKs still parse the answer, and what an error looks like.
//!
//! Parsers only *extract* (to a [`Subject`]) and *rewrite* what the decision
//! core decided; they never decide.

pub mod anthropic;
mod fallback;
pub mod gemini;
mod joined;
pub mod mcp;
pub mod openai_chat;
pub mod openai_responses;
pub mod redact_walk;

pub use joined::{redact_joined, split_redact};
pub use redact_walk::{redact_json, redact_json_except};

use crate::decision::subject::{Subject, Surface, ToolCall};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// The API a request speaks. Metric label values, so the set is closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Dialect {
    OpenaiChat,
    OpenaiResponses,
    AnthropicMessages,
    /// Google Gemini `generateContent` / `streamGenerateContent`.
    Gemini,
    Mcp,
    HttpTool,
    /// Not inspected (unknown path on a known upstream, or a GET).
    Passthrough,
}

/// What family of API a route fronts; the path then picks the dialect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApiKind {
    /// OpenAI-compatible: `/chat/completions`, `/responses`.
    Openai,
    /// Anthropic: `/messages`.
    Anthropic,
    /// Google Gemini: `…/models/{model}:generateContent` and friends.
    Gemini,
    /// Any of the above, chosen by path.
    Auto,
    /// MCP over streamable HTTP: every POST is JSON-RPC.
    Mcp,
    /// A plain HTTP tool: the JSON body is the call's arguments.
    HttpTool,
}

impl Dialect {
    pub const ALL: [Dialect; 7] = [
        Dialect::OpenaiChat,
        Dialect::OpenaiResponses,
        Dialect::AnthropicMessages,
        Dialect::Gemini,
        Dialect::Mcp,
        Dialect::HttpTool,
        Dialect::Passthrough,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Dialect::OpenaiChat => "openai_chat",
            Dialect::OpenaiResponses => "openai_responses",
            Dialect::AnthropicMessages => "anthropic_messages",
            Dialect::Gemini => "gemini",
            Dialect::Mcp => "mcp",
            Dialect::HttpTool => "http_tool",
            Dialect::Passthrough => "passthrough",
        }
    }

    /// Pick the dialect for a request. `path` excludes the query string
    /// (Claude Code sends `/v1/messages?beta=true`) and is already
    /// normalised ([`crate::datapath::path_norm`]). Path and method are
    /// read without case: some servers do.
    pub fn detect(kind: ApiKind, method: &str, path: &str) -> Dialect {
        if !method.eq_ignore_ascii_case("POST") {
            return Dialect::Passthrough;
        }
        // Without case, like the routes.
        let lower = path.trim_end_matches('/').to_ascii_lowercase();
        let path = lower.as_str();
        let openai = || {
            if path.ends_with("/chat/completions") {
                Some(Dialect::OpenaiChat)
            } else if path.ends_with("/responses") {
                Some(Dialect::OpenaiResponses)
            } else {
                None
            }
        };
        let anthropic = || {
            path.ends_with("/messages")
                .then_some(Dialect::AnthropicMessages)
        };
        let gemini = || gemini::is_model_method(path).then_some(Dialect::Gemini);
        let found = match kind {
            ApiKind::Openai => openai(),
            ApiKind::Anthropic => anthropic(),
            ApiKind::Gemini => gemini(),
            ApiKind::Auto => gemini().or_else(openai).or_else(anthropic),
            ApiKind::Mcp => Some(Dialect::Mcp),
            ApiKind::HttpTool => Some(Dialect::HttpTool),
        };
        found.unwrap_or(Dialect::Passthrough)
    }

    pub fn is_inspected(self) -> bool {
        self != Dialect::Passthrough
    }

    /// Texts and calls of a request body. For LLM APIs the tool calls in
    /// the history were decided when they were proposed, so they are
    /// scanned as text (secrets, injection) but not judged again; MCP and
    /// HTTP tool requests *are* the call, judged now.
    pub fn request_subject(self, body: &Value, tool_name: &str) -> Subject {
        match self {
            Dialect::OpenaiChat => openai_chat::request_subject(body),
            Dialect::OpenaiResponses => openai_responses::request_subject(body),
            Dialect::AnthropicMessages => anthropic::request_subject(body),
            Dialect::Gemini => gemini::request_subject(body),
            Dialect::Mcp => mcp::request_subject(body),
            Dialect::HttpTool => {
                let mut s = Subject::default();
                s.tool_calls.push(ToolCall::new(tool_name, body.clone()));
                s
            }
            Dialect::Passthrough => Subject::default(),
        }
    }

    /// Texts and proposed tool calls of a non-streaming response body.
    pub fn response_subject(self, body: &Value) -> Subject {
        match self {
            Dialect::OpenaiChat => openai_chat::response_subject(body),
            Dialect::OpenaiResponses => openai_responses::response_subject(body),
            Dialect::AnthropicMessages => anthropic::response_subject(body),
            Dialect::Gemini => gemini::response_subject(body),
            Dialect::Mcp => mcp::response_subject(body),
            Dialect::HttpTool => {
                let mut s = Subject::default();
                collect_strings(body, Surface::ToolResult, &mut s, 0);
                s
            }
            Dialect::Passthrough => Subject::default(),
        }
    }

    /// Replace the response's tool calls at `blocked` (indexes into
    /// `response_subject().tool_calls`) with an assistant refusal, fixing
    /// up `finish_reason` / `stop_reason` as the SDKs expect.
    pub fn refuse_tool_calls(self, body: &mut Value, blocked: &[usize], message: &str) {
        match self {
            Dialect::OpenaiChat => openai_chat::refuse_tool_calls(body, blocked, message),
            Dialect::OpenaiResponses => openai_responses::refuse_tool_calls(body, blocked, message),
            Dialect::AnthropicMessages => anthropic::refuse_tool_calls(body, blocked, message),
            Dialect::Gemini => gemini::refuse_tool_calls(body, blocked, message),
            _ => {}
        }
    }

    /// Replace a response's text with a refusal (response withheld).
    pub fn withhold_text(self, body: &mut Value, message: &str) {
        match self {
            Dialect::OpenaiChat => openai_chat::withhold_text(body, message),
            Dialect::OpenaiResponses => openai_responses::withhold_text(body, message),
            Dialect::AnthropicMessages => anthropic::withhold_text(body, message),
            Dialect::Gemini => gemini::withhold_text(body, message),
            Dialect::Mcp => mcp::withhold_result(body, message),
            _ => {
                *body = json!({ "error": { "message": message, "code": "asg_blocked" } });
            }
        }
    }

    /// An error body in the API's own format.
    pub fn error_body(self, kind: ErrorKind, message: &str, request_id: &str) -> Value {
        match self {
            Dialect::AnthropicMessages => json!({
                "type": "error",
                "error": { "type": kind.anthropic_type(), "message": message },
                "request_id": request_id,
            }),
            Dialect::Gemini => gemini::error_body(kind, message, request_id),
            Dialect::Mcp => mcp::error_body(&Value::Null, kind, message, request_id),
            _ => json!({
                "error": {
                    "message": message,
                    "type": kind.openai_type(),
                    "param": null,
                    "code": kind.code(),
                    "request_id": request_id,
                }
            }),
        }
    }
}

/// Why the gateway answered instead of the upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    Blocked,
    ApprovalRequired,
    InvalidRequest,
    TooLarge,
    UnsupportedMedia,
    NotFound,
    BadGateway,
    /// The upstream took too long (a timeout of `datapath::timeouts`).
    Timeout,
    Unavailable,
    Internal,
}

impl ErrorKind {
    pub fn status(self) -> u16 {
        match self {
            ErrorKind::Blocked | ErrorKind::ApprovalRequired => 403,
            ErrorKind::InvalidRequest => 400,
            ErrorKind::TooLarge => 413,
            ErrorKind::UnsupportedMedia => 415,
            ErrorKind::NotFound => 404,
            ErrorKind::BadGateway => 502,
            ErrorKind::Timeout => 504,
            ErrorKind::Unavailable => 503,
            ErrorKind::Internal => 500,
        }
    }

    pub fn code(self) -> &'static str {
        match self {
            ErrorKind::Blocked => "asg_blocked",
            ErrorKind::ApprovalRequired => "asg_approval_required",
            ErrorKind::InvalidRequest => "asg_invalid_request",
            ErrorKind::TooLarge => "asg_body_too_large",
            ErrorKind::UnsupportedMedia => "asg_unsupported_media_type",
            ErrorKind::NotFound => "asg_unknown_path",
            ErrorKind::BadGateway => "asg_upstream_unreachable",
            ErrorKind::Timeout => "asg_upstream_timeout",
            ErrorKind::Unavailable => "asg_unavailable",
            ErrorKind::Internal => "asg_internal_error",
        }
    }

    fn openai_type(self) -> &'static str {
        match self {
            ErrorKind::Blocked | ErrorKind::ApprovalRequired => "policy_violation",
            ErrorKind::InvalidRequest
            | ErrorKind::TooLarge
            | ErrorKind::UnsupportedMedia
            | ErrorKind::NotFound => "invalid_request_error",
            _ => "api_error",
        }
    }

    fn anthropic_type(self) -> &'static str {
        match self {
            ErrorKind::Blocked | ErrorKind::ApprovalRequired => "permission_error",
            ErrorKind::InvalidRequest | ErrorKind::UnsupportedMedia => "invalid_request_error",
            ErrorKind::TooLarge => "request_too_large",
            ErrorKind::NotFound => "not_found_error",
            ErrorKind::Unavailable => "overloaded_error",
            ErrorKind::Timeout => "timeout_error",
            _ => "api_error",
        }
    }
}

/// Content part types whose text `push_part` reads by name.
const TEXT_PART_TYPES: &[&str] = &[
    "text",
    "input_text",
    "output_text",
    "refusal",
    "tool_result",
];

pub(crate) use fallback::{collect_unknown, is_media};

/// Text of a content value: a string, a list of parts, or (misshapen) a
/// single part object.
pub(crate) fn push_content(content: &Value, surface: Surface, s: &mut Subject) {
    match content {
        Value::Array(parts) => parts.iter().for_each(|p| push_part(p, surface, s)),
        // Numbers, booleans and null carry no text.
        other => push_part(other, surface, s),
    }
}

/// One content part. Known text parts are read by their text keys (and
/// nested `content`, as in Anthropic's `tool_result`); media is skipped;
/// a part of any other type is read whole by the fail-closed fallback.
fn push_part(part: &Value, surface: Surface, s: &mut Subject) {
    match part {
        Value::String(t) => push_turn_text(surface, t, s),
        Value::Object(o) => {
            let kind = o.get("type").and_then(Value::as_str).unwrap_or("text");
            if is_media(kind) {
                return;
            }
            if !TEXT_PART_TYPES.contains(&kind) {
                return fallback::collect_unknown(part, surface, s);
            }
            for key in ["text", "refusal", "input_text", "output_text"] {
                if let Some(Value::String(t)) = o.get(key) {
                    push_turn_text(surface, t, s);
                }
            }
            if let Some(inner) = o.get("content") {
                push_content(inner, surface, s);
            }
        }
        _ => {}
    }
}

/// Every string in a JSON value (names, descriptions, schemas …).
pub(crate) fn collect_strings(v: &Value, surface: Surface, s: &mut Subject, depth: usize) {
    if depth > 32 {
        return;
    }
    match v {
        Value::String(t) => s.push_text(surface, t.as_str()),
        Value::Array(a) => a
            .iter()
            .for_each(|x| collect_strings(x, surface, s, depth + 1)),
        Value::Object(o) => o
            .values()
            .for_each(|x| collect_strings(x, surface, s, depth + 1)),
        _ => {}
    }
}

/// Tool arguments carried as a JSON-encoded string (OpenAI): parsed when
/// possible, kept as a string otherwise (a tool may take free text).
pub(crate) fn parse_arguments(raw: &Value) -> Value {
    match raw {
        Value::String(s) => serde_json::from_str(s).unwrap_or_else(|_| Value::String(s.clone())),
        other => other.clone(),
    }
}

/// The refusal text an agent sees in place of a blocked tool call.
pub fn refusal_message(tool: &str, reason: &str, request_id: &str) -> String {
    format!("[asg] The call to tool `{tool}` was blocked by the security gateway: {reason} (request {request_id})")
}

/// Blocks agent harnesses attach to a user turn: Claude Code's
/// `<system-reminder>` (CLAUDE.md and memory files, hook output, its own
/// guidance), Codex's `<environment_context>` (folder, shell, sandbox and
/// approval settings) and Gemini CLI's `<session_context>` (date, OS,
/// folder tree).
const ATTACHED_CONTEXT: &[(&str, &str)] = &[
    ("<system-reminder>", "</system-reminder>"),
    ("<environment_context>", "</environment_context>"),
    ("<session_context>", "</session_context>"),
];

/// A user turn's text. Attached-context blocks are data the harness
/// gathered, not the user's words: the phrase rules judge them, with their
/// plain severities, and the learned stage does not (see
/// `TextPart::attached`: CLAUDE.md, sandbox settings and the harness's own
/// guidance are instructions to the assistant by design); the user's own
/// words around them stay user text.
pub(crate) fn push_turn_text(surface: Surface, text: &str, s: &mut Subject) {
    if surface != Surface::User || !ATTACHED_CONTEXT.iter().any(|(o, _)| text.contains(o)) {
        s.push_text(surface, text);
        return;
    }
    let mut rest = text;
    while let Some((at, close)) = ATTACHED_CONTEXT
        .iter()
        .filter_map(|(o, c)| rest.find(o).map(|i| (i, *c)))
        .min_by_key(|(i, _)| *i)
    {
        s.push_text(Surface::User, &rest[..at]);
        let block = &rest[at..];
        let end = block
            .find(close)
            .map(|i| i + close.len())
            .unwrap_or(block.len());
        s.push_attached(&block[..end]);
        rest = &block[end..];
    }
    s.push_text(Surface::User, rest);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codex_environment_context_is_attached_context_in_any_content_part() {
        let mut s = Subject::default();
        let content = serde_json::json!([
            {"type": "input_text", "text": "<environment_context>\n  <cwd>/w</cwd>\n  <sandbox_mode>workspace-write</sandbox_mode>\n</environment_context>"},
            {"type": "input_text", "text": "list the files"},
        ]);
        push_content(&content, Surface::User, &mut s);
        let got: Vec<(Surface, bool, &str)> = s
            .texts
            .iter()
            .map(|t| (t.surface, t.attached, &t.text[..t.text.len().min(21)]))
            .collect();
        assert_eq!(
            got,
            [
                (Surface::ToolResult, true, "<environment_context>"),
                (Surface::User, false, "list the files"),
            ]
        );
        // The same tag in a tool result is data like the rest of it.
        let mut s = Subject::default();
        push_content(
            &serde_json::json!("<environment_context>x</environment_context>"),
            Surface::ToolResult,
            &mut s,
        );
        assert!(!s.texts[0].attached);
    }

    #[test]
    fn every_part_is_read_once() {
        let mut s = Subject::default();
        let content = serde_json::json!([
            {"type": "text", "text": "known"},
            {"type": "summary_text", "text": "unknown kind"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBOR"}},
            7,
        ]);
        push_content(&content, Surface::User, &mut s);
        let got: Vec<&str> = s.texts.iter().map(|t| t.text.as_str()).collect();
        assert_eq!(got, ["known", "unknown kind"]);
    }

    #[test]
    fn detects_dialects_by_path() {
        assert_eq!(
            Dialect::detect(ApiKind::Auto, "POST", "/v1/chat/completions"),
            Dialect::OpenaiChat
        );
        assert_eq!(
            Dialect::detect(ApiKind::Auto, "POST", "/v1/responses"),
            Dialect::OpenaiResponses
        );
        assert_eq!(
            Dialect::detect(ApiKind::Auto, "POST", "/v1/messages"),
            Dialect::AnthropicMessages
        );
        assert_eq!(
            Dialect::detect(ApiKind::Openai, "POST", "/v1/messages"),
            Dialect::Passthrough
        );
        assert_eq!(
            Dialect::detect(ApiKind::Auto, "GET", "/v1/models"),
            Dialect::Passthrough
        );
        assert_eq!(Dialect::detect(ApiKind::Mcp, "POST", "/mcp"), Dialect::Mcp);
        for kind in [ApiKind::Auto, ApiKind::Gemini] {
            assert_eq!(
                Dialect::detect(
                    kind,
                    "POST",
                    "/v1beta/models/gemini-2.5-flash:streamGenerateContent"
                ),
                Dialect::Gemini
            );
        }
        assert_eq!(
            Dialect::detect(ApiKind::Gemini, "POST", "/v1/chat/completions"),
            Dialect::Passthrough
        );
    }

    #[test]
    fn error_bodies_follow_each_api() {
        let a = Dialect::AnthropicMessages.error_body(ErrorKind::Blocked, "no", "r1");
        assert_eq!(a["type"], "error");
        assert_eq!(a["error"]["type"], "permission_error");
        let o = Dialect::OpenaiChat.error_body(ErrorKind::Blocked, "no", "r1");
        assert_eq!(o["error"]["code"], "asg_blocked");
        assert_eq!(o["error"]["request_id"], "r1");
    }
}
