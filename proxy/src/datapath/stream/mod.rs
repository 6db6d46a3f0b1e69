//! Inspecting Server-Sent-Event responses in flight.
//!
//! A [`StreamRewriter`] sits in the synchronous response-body filter: bytes
//! from the upstream go in, bytes for the client come out, event by event,
//! never buffering more than the event being received plus what the
//! per-channel redactors hold back. It
//! * masks secrets in streamed text even when they straddle deltas
//!   ([`holdback`]), consistently in the repeated full copies of the
//!   Responses API;
//! * withholds each tool call until it is complete, judges it with the
//!   same decision function as buffered responses, and emits it, emits it
//!   with masked arguments, or emits a refusal in its place ([`calls`]);
//! * keeps what SDKs check: ids, indexes, `sequence_number`s, `event:` lines,
//!   end signals, mid-stream errors.
//!
//! One handler per dialect: [`chat`], [`responses`], [`anthropic`],
//! [`gemini`], and [`messages`] for MCP and HTTP tools (one complete JSON
//! message per event).
//!
//! Transports whose messages are not SSE events (Gemini's JSON-array
//! stream, WebSocket text frames) are re-framed: each message goes to the
//! handler as one event, and the events it writes come back out as
//! messages ([`StreamRewriter::push_message`]).

pub mod anthropic;
pub mod calls;
pub mod chat;
pub mod gemini;
pub mod holdback;
pub mod json_array;
pub mod messages;
pub mod responses;
pub mod sse;

pub use calls::Verdict;

use crate::datapath::dialect::{redact_json, Dialect, ErrorKind};
use crate::datapath::enforce::{masking, Stage, StageReport};
use crate::datapath::hooks::SessionHooks;
use crate::decision::pipeline::Earlier;
use crate::decision::policy::BlockedToolCall;
use crate::decision::redact::{Masker, Redactor};
use crate::decision::{Decision, Masking, Policy};
use bytes::{BufMut, Bytes, BytesMut};
use holdback::{MaskLog, TextChannel};
use serde_json::Value;
use sse::{RawEvent, SseParser};
use std::sync::Arc;

/// A redactor a handler holds while it changes the rest of [`Cx`].
pub(crate) enum RedactorRef {
    Policy(Arc<Policy>),
    Kept(Arc<Redactor>),
}

impl std::ops::Deref for RedactorRef {
    type Target = Redactor;

    fn deref(&self) -> &Redactor {
        match self {
            RedactorRef::Policy(p) => &p.redactor,
            RedactorRef::Kept(r) => r,
        }
    }
}

/// Everything the handlers share: policy, masking, decisions so far.
pub struct Cx {
    pub(crate) policy: Arc<Policy>,
    pub(crate) masker: Masker,
    pub(crate) request_id: String,
    /// The request's session layer (history, risk, approvals).
    pub(crate) hooks: Arc<dyn SessionHooks>,
    /// The session layer began the stage (at the first complete call).
    pub(crate) begun: bool,
    /// Mask secrets in responses (policy `redaction.enabled` + `responses`).
    pub(crate) redact: bool,
    pub(crate) masking: Masking,
    /// The calls judged so far (chain context for the next).
    pub(crate) earlier: Vec<Earlier>,
    pub(crate) masks: MaskLog,
    pub(crate) report: StageReport,
    /// A text delta carried logprobs that were removed.
    logprobs_removed: bool,
    /// A blocked call ended the stream with an error event: drop the rest.
    pub(crate) terminated: bool,
    /// The MCP request's JSON-RPC id (`null` otherwise).
    pub(crate) rpc_id: Value,
    /// Set by a handler that met an event it cannot inspect: the stream
    /// ends with an error event carrying this, and the rest is withheld.
    pub(crate) failure: Option<String>,
    /// The request's redactor when its system prompt keeps a password or
    /// key; `None`: the policy's.
    kept: Option<Arc<Redactor>>,
}

impl Cx {
    fn new(
        policy: Arc<Policy>,
        masker: Masker,
        request_id: &str,
        hooks: Arc<dyn SessionHooks>,
    ) -> Self {
        let r = &policy.file.redaction;
        let redact = r.enabled && r.responses;
        let cap = r.max_items;
        Cx {
            masking: masking(&policy, Stage::Response),
            policy,
            masker,
            request_id: request_id.to_string(),
            hooks,
            begun: false,
            redact,
            earlier: Vec::new(),
            masks: MaskLog::new(cap),
            report: StageReport::new(Stage::Response),
            logprobs_removed: false,
            terminated: false,
            rpc_id: Value::Null,
            failure: None,
            kept: None,
        }
    }

    /// The redactor for this response: the policy's, or the request's
    /// when its system prompt keeps a password or key. Shared, so that a
    /// handler can hold it while it changes the rest of `Cx`.
    pub(crate) fn redactor(&self) -> RedactorRef {
        match &self.kept {
            Some(r) => RedactorRef::Kept(r.clone()),
            None => RedactorRef::Policy(self.policy.clone()),
        }
    }

    /// The profile wants a blocked call to end the stream with an error
    /// event rather than a refusal text (`proxy.blocked_tool_call`).
    pub(crate) fn blocked_as_error(&self) -> bool {
        self.policy.file.proxy.blocked_tool_call == BlockedToolCall::Error
    }

    /// The error body for a blocked call, in the dialect's own format.
    pub(crate) fn blocked_error(&mut self, dialect: Dialect, message: &str) -> Value {
        self.terminate_blocked();
        dialect.error_body(ErrorKind::Blocked, message, &self.request_id)
    }

    /// Stop the stream after the error event for a blocked call.
    pub(crate) fn terminate_blocked(&mut self) {
        self.terminated = true;
        self.note("stream ended with an error: a tool call was blocked (proxy.blocked_tool_call = \"error\")");
    }

    /// A text fragment in, the part that can be released (masked) out.
    pub(crate) fn push_text(&mut self, ch: &mut TextChannel, fragment: &str) -> String {
        if !self.redact {
            return fragment.to_string();
        }
        let mut out = String::with_capacity(fragment.len() + 8);
        let redactor = self.redactor();
        ch.push(fragment, &redactor, &self.masker, &mut out, &mut self.masks);
        out
    }

    /// The channel ended: everything it still holds, masked.
    pub(crate) fn flush_text(&mut self, ch: &mut TextChannel) -> String {
        let mut out = String::new();
        if self.redact {
            let redactor = self.redactor();
            ch.flush(&redactor, &self.masker, &mut out, &mut self.masks);
        }
        out
    }

    /// Mask every string of a JSON event (full copies, unknown events), as
    /// the buffered path masks a whole body. Returns whether it changed.
    pub(crate) fn redact_value(&mut self, v: &mut Value) -> bool {
        if !self.redact {
            return false;
        }
        let events = redact_json(v, &self.redactor(), &self.masker);
        let changed = !events.is_empty();
        self.masks.extend(events);
        changed
    }

    /// Token logprobs cannot be masked in flight (a secret spans tokens):
    /// they are dropped from text deltas while redaction is on.
    pub(crate) fn drop_logprobs(&mut self, v: &mut Value) -> bool {
        let has = match v {
            Value::Array(a) => !a.is_empty(),
            Value::Null => false,
            _ => true,
        };
        if !(self.redact && has) {
            return false;
        }
        *v = if v.is_array() {
            Value::Array(Vec::new())
        } else {
            Value::Null
        };
        self.logprobs_removed = true;
        true
    }

    /// This event cannot be inspected (JSON a strict parser refuses): the
    /// stream ends with an error event instead of relaying it.
    pub(crate) fn fail(&mut self, reason: String) {
        self.terminated = true;
        self.failure.get_or_insert(reason);
    }

    /// Parse an event's data. JSON is parsed strictly; data that is JSON
    /// a strict parser refuses fails the stream (`None`, after
    /// [`Cx::fail`]); data that is not JSON at all is `Some(Err(()))`, to
    /// be masked as text.
    pub(crate) fn parse_event(&mut self, data: &str) -> Option<Result<Value, ()>> {
        match crate::datapath::strict_json::from_str(data) {
            Ok(v) => Some(Ok(v)),
            Err(_) if !crate::datapath::strict_json::looks_like_json(data) => Some(Err(())),
            Err(e) => {
                self.fail(format!(
                    "a stream event could not be inspected (not strict JSON: {e}); the rest of the stream was withheld"
                ));
                None
            }
        }
    }

    pub(crate) fn note(&mut self, reason: &str) {
        if !self.report.reasons.iter().any(|r| r == reason) {
            self.report.reasons.push(reason.to_string());
        }
    }
}

/// Append `data: <json>` (with `event:`/`id:` lines) as one event.
pub(crate) fn emit_json(out: &mut BytesMut, event: Option<&str>, id: Option<&str>, v: &Value) {
    if let Some(e) = event {
        out.extend_from_slice(b"event: ");
        out.extend_from_slice(e.as_bytes());
        out.extend_from_slice(b"\n");
    }
    if let Some(id) = id {
        out.extend_from_slice(b"id: ");
        out.extend_from_slice(id.as_bytes());
        out.extend_from_slice(b"\n");
    }
    out.extend_from_slice(b"data: ");
    // Serializing a `Value` cannot fail; compact JSON has no line breaks.
    let _ = serde_json::to_writer((&mut *out).writer(), v);
    out.extend_from_slice(b"\n\n");
}

/// A per-dialect stream handler.
enum Handler {
    Chat(chat::ChatStream),
    Responses(responses::ResponsesStream),
    Anthropic(anthropic::AnthropicStream),
    Gemini(gemini::GeminiStream),
    Messages(messages::MessageStream),
}

impl Handler {
    fn event(&mut self, ev: RawEvent, cx: &mut Cx, out: &mut BytesMut) {
        if cx.terminated {
            return;
        }
        match self {
            Handler::Chat(h) => h.event(ev, cx, out),
            Handler::Responses(h) => h.event(ev, cx, out),
            Handler::Anthropic(h) => h.event(ev, cx, out),
            Handler::Gemini(h) => h.event(ev, cx, out),
            Handler::Messages(h) => h.event(ev, cx, out),
        }
    }

    fn end(&mut self, cx: &mut Cx, out: &mut BytesMut) {
        if cx.terminated {
            return;
        }
        match self {
            Handler::Chat(h) => h.end(cx, out),
            Handler::Responses(h) => h.end(cx, out),
            Handler::Anthropic(h) => h.end(cx, out),
            Handler::Gemini(h) => h.end(cx, out),
            Handler::Messages(_) => {}
        }
    }

    /// An error event in the dialect's own form.
    fn error(&mut self, message: &str, cx: &Cx, out: &mut BytesMut) {
        match self {
            Handler::Chat(_) => chat::error_event(message, out),
            Handler::Responses(h) => h.error_event(message, out),
            Handler::Anthropic(_) => anthropic::error_event(message, out),
            Handler::Gemini(_) => gemini::error_event(message, out),
            Handler::Messages(h) => h.error_event(message, cx, out),
        }
    }
}

/// Rewrites one SSE response. Construct it when the upstream answers with
/// `text/event-stream`; feed it every body chunk; call [`finish`] at the end.
///
/// [`finish`]: StreamRewriter::finish
pub struct StreamRewriter {
    parser: SseParser,
    handler: Handler,
    cx: Cx,
    /// The stream could not be inspected further; the rest is dropped.
    failed: bool,
    /// Set for a JSON-array stream: elements in, elements out.
    array: Option<(json_array::JsonArrayParser, json_array::ArrayWriter)>,
    events: u64,
    /// Time spent in `push` and `finish`.
    busy: std::time::Duration,
}

impl StreamRewriter {
    /// `None` for dialects whose streams are not inspected (passthrough).
    /// `hooks` is the request's session layer (`NoSession` without one).
    pub fn new(
        dialect: Dialect,
        policy: Arc<Policy>,
        masker: Masker,
        request_id: &str,
        hooks: Arc<dyn SessionHooks>,
    ) -> Option<Self> {
        let handler = match dialect {
            Dialect::OpenaiChat => Handler::Chat(chat::ChatStream::default()),
            Dialect::OpenaiResponses => Handler::Responses(responses::ResponsesStream::default()),
            Dialect::AnthropicMessages => Handler::Anthropic(anthropic::AnthropicStream::default()),
            Dialect::Gemini => Handler::Gemini(gemini::GeminiStream::default()),
            Dialect::Mcp | Dialect::HttpTool => {
                Handler::Messages(messages::MessageStream::new(dialect))
            }
            Dialect::Passthrough => return None,
        };
        let max_event = policy.file.proxy.max_body_bytes;
        Some(StreamRewriter {
            parser: SseParser::new(max_event),
            handler,
            cx: Cx::new(policy, masker, request_id, hooks),
            failed: false,
            array: None,
            events: 0,
            busy: std::time::Duration::ZERO,
        })
    }

    /// Also mask the passwords and keys the request's system prompt keeps
    /// (`Redactor::with_kept`).
    pub fn set_kept(&mut self, kept: Option<Arc<Redactor>>) {
        self.cx.kept = kept;
    }

    /// Upstream bytes in; bytes for the client out (possibly empty).
    pub fn push(&mut self, chunk: &[u8]) -> Bytes {
        if self.failed {
            return Bytes::new();
        }
        let started = std::time::Instant::now();
        let out = self.push_inner(chunk);
        self.busy += started.elapsed();
        out
    }

    /// The upstream body is one JSON array of messages (Gemini without
    /// `alt=sse`) rather than SSE.
    pub fn json_array(mut self) -> Self {
        let max = self.cx.policy.file.proxy.max_body_bytes;
        self.array = Some((
            json_array::JsonArrayParser::new(max),
            json_array::ArrayWriter::default(),
        ));
        self
    }

    fn push_inner(&mut self, chunk: &[u8]) -> Bytes {
        if self.array.is_some() {
            return self.push_array(chunk);
        }
        let mut out = BytesMut::new();
        let (handler, cx, events) = (&mut self.handler, &mut self.cx, &mut self.events);
        let res = self.parser.push(chunk, |ev| {
            *events += 1;
            handler.event(ev, cx, &mut out);
        });
        if let Err(e) = res {
            let msg = format!(
                "a stream event exceeded the gateway inspection limit of {} bytes; the rest of the stream was withheld",
                self.cx.policy.file.proxy.max_body_bytes
            );
            tracing::warn!(bytes = e.0, "stream event too large; stream withheld");
            self.fail(&msg, &mut out);
        }
        self.take_failure(&mut out);
        out.freeze()
    }

    /// End the stream with an error event in the dialect's form; nothing
    /// after it is relayed.
    pub fn fail(&mut self, message: &str, out: &mut BytesMut) {
        if self.failed {
            return;
        }
        self.cx.note(message);
        self.handler.error(message, &self.cx, out);
        self.cx.report.decision = self.cx.report.decision.max(Decision::Block);
        self.failed = true;
    }

    /// A handler met an event it cannot inspect: end the stream there.
    fn take_failure(&mut self, out: &mut BytesMut) {
        if let Some(msg) = self.cx.failure.take() {
            self.fail(&msg, out);
        }
    }

    /// The JSON-RPC id of the MCP request this stream answers.
    pub fn set_rpc_id(&mut self, id: Value) {
        self.cx.rpc_id = id;
    }

    /// JSON-array framing: each element is one event for the handler; the
    /// events it writes go back out as elements.
    fn push_array(&mut self, chunk: &[u8]) -> Bytes {
        let mut events = Vec::new();
        let res = match self.array.as_mut() {
            Some((parser, _)) => parser.push(chunk, |elem| events.push(elem)),
            None => Ok(()),
        };
        let mut sse = BytesMut::new();
        for elem in events {
            self.message_into(None, &elem, &mut sse);
        }
        self.take_failure(&mut sse);
        if let Err(e) = res {
            self.withhold(&format!("{e:?}"), &mut sse);
        }
        self.sse_to_array(&sse)
    }

    fn sse_to_array(&mut self, sse: &[u8]) -> Bytes {
        let mut out = BytesMut::new();
        if let Some((_, writer)) = self.array.as_mut() {
            for m in sse_messages(sse) {
                writer.element(&mut out, &m);
            }
        }
        out.freeze()
    }

    /// Give up on a stream that cannot be inspected: an error in the
    /// dialect's form, and nothing more.
    fn withhold(&mut self, why: &str, out: &mut BytesMut) {
        let msg = format!(
            "the upstream stream could not be inspected ({why}); the rest of the stream was withheld"
        );
        tracing::warn!(reason = why, "uninspectable stream withheld");
        self.fail(&msg, out);
    }

    /// One message of a non-SSE transport, as one SSE event for the handler.
    fn message_into(&mut self, event: Option<&str>, data: &[u8], out: &mut BytesMut) {
        if self.failed {
            return;
        }
        let Ok(text) = std::str::from_utf8(data) else {
            return self.withhold("a message is not UTF-8", out);
        };
        // JSON allows raw line breaks only as whitespace between tokens,
        // where a space means the same; SSE data must be one line.
        let line = text.replace(['\r', '\n'], " ");
        let mut raw = BytesMut::with_capacity(line.len() + 32);
        if let Some(e) = event {
            raw.extend_from_slice(b"event: ");
            raw.extend_from_slice(e.as_bytes());
            raw.extend_from_slice(b"\n");
        }
        raw.extend_from_slice(b"data: ");
        raw.extend_from_slice(line.as_bytes());
        raw.extend_from_slice(b"\n\n");
        self.events += 1;
        self.handler
            .event(RawEvent { raw: raw.freeze() }, &mut self.cx, out);
    }

    /// A message-framed transport (WebSocket text frames): one upstream
    /// message in, the messages to send on out (none while held back).
    pub fn push_message(&mut self, event: Option<&str>, data: &[u8]) -> Vec<Bytes> {
        let started = std::time::Instant::now();
        let mut sse = BytesMut::new();
        self.message_into(event, data, &mut sse);
        self.take_failure(&mut sse);
        self.busy += started.elapsed();
        sse_messages(&sse)
    }

    /// A message-framed transport's response ended: what is held back, as
    /// messages.
    pub fn finish_messages(&mut self) -> Vec<Bytes> {
        let mut sse = BytesMut::new();
        if !self.failed {
            self.handler.end(&mut self.cx, &mut sse);
        }
        sse_messages(&sse)
    }

    /// The upstream ended: flush what is held back.
    pub fn finish(&mut self) -> Bytes {
        if self.array.is_some() {
            let mut sse = BytesMut::new();
            let open = self.array.as_ref().and_then(|(p, _)| p.finish().err());
            if let Some(e) = open {
                if !self.failed {
                    self.withhold(&format!("{e:?}"), &mut sse);
                }
            } else if !self.failed {
                self.handler.end(&mut self.cx, &mut sse);
            }
            let mut out = BytesMut::from(&self.sse_to_array(&sse)[..]);
            if let Some((_, writer)) = self.array.as_mut() {
                writer.close(&mut out);
            }
            return out.freeze();
        }
        let mut out = BytesMut::new();
        if self.failed {
            return out.freeze();
        }
        let started = std::time::Instant::now();
        if let Some(ev) = self.parser.finish() {
            self.events += 1;
            self.handler.event(ev, &mut self.cx, &mut out);
        }
        if self.cx.failure.is_some() {
            self.take_failure(&mut out);
            return out.freeze();
        }
        self.handler.end(&mut self.cx, &mut out);
        self.busy += started.elapsed();
        out.freeze()
    }

    /// CPU time spent rewriting this stream so far.
    pub fn busy(&self) -> std::time::Duration {
        self.busy
    }

    /// Events received so far.
    pub fn events(&self) -> u64 {
        self.events
    }

    /// What the stream decided, for metrics and audit.
    pub fn report(&self) -> StageReport {
        let mut r = self.cx.report.clone();
        r.masks = self.cx.masks.events.clone();
        if self.cx.masks.written > 0 {
            r.decision = r.decision.max(Decision::AllowWithRedaction);
        }
        if self.cx.logprobs_removed {
            r.reasons.push(
                "token logprobs removed from streamed text (they cannot be masked in flight)"
                    .into(),
            );
        }
        r
    }
}

/// A successful Gemini `streamGenerateContent` answered without `alt=sse`:
/// the chunks arrive as one JSON array, streamed.
pub fn is_json_array_stream(
    dialect: Dialect,
    path: &str,
    status: u16,
    content_type: Option<&str>,
) -> bool {
    dialect == Dialect::Gemini
        && path
            .to_ascii_lowercase()
            .ends_with(":streamgeneratecontent")
        && (200..300).contains(&status)
        && crate::datapath::body::is_json_content_type(content_type)
}

/// The `data` of each event in handler output.
fn sse_messages(sse: &[u8]) -> Vec<Bytes> {
    let mut msgs = Vec::new();
    if sse.is_empty() {
        return msgs;
    }
    let mut parser = SseParser::new(usize::MAX);
    let mut take = |ev: RawEvent| {
        if let Some(data) = ev.fields().and_then(|f| f.data.map(|d| d.into_owned())) {
            msgs.push(Bytes::from(data));
        }
    };
    let _ = parser.push(sse, &mut take);
    if let Some(ev) = parser.finish() {
        take(ev);
    }
    msgs
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_fail_closed;
