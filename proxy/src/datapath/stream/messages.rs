//! Streams whose events each carry one complete message: MCP servers that
//! answer `tools/call` with `text/event-stream` (JSON-RPC messages:
//! progress notifications, then the response), and HTTP tools. Each
//! message is inspected exactly like a buffered body of that dialect, so a
//! tool result is masked (or withheld) the same way in both transports.

use super::sse::{Fields, RawEvent};
use super::{emit_json, Cx};
use crate::datapath::dialect::Dialect;
use crate::datapath::enforce::{inspect_response_with, Inspection};
use bytes::BytesMut;

pub struct MessageStream {
    dialect: Dialect,
}

impl MessageStream {
    pub fn new(dialect: Dialect) -> Self {
        MessageStream { dialect }
    }

    /// An error message in place of the rest of the stream: for MCP a
    /// JSON-RPC error answering the request, else the API's error body.
    pub fn error_event(&self, message: &str, cx: &Cx, out: &mut BytesMut) {
        let v = crate::datapath::response_guard::withheld_body(
            self.dialect,
            message,
            &cx.request_id,
            &cx.rpc_id,
        );
        emit_json(out, None, None, &v);
    }

    pub fn event(&mut self, ev: RawEvent, cx: &mut Cx, out: &mut BytesMut) {
        let Some(fields) = ev.fields() else {
            out.extend_from_slice(&ev.raw);
            return;
        };
        let Some(data) = fields.data.as_deref() else {
            out.extend_from_slice(&ev.raw);
            return;
        };
        match cx.parse_event(data) {
            Some(Ok(_)) => {}
            Some(Err(())) => return opaque(&ev, &fields, cx, out),
            None => return,
        }
        let policy = cx.policy.clone();
        let ins = Inspection {
            policy: &policy,
            masker: &cx.masker,
            dialect: self.dialect,
            request_id: &cx.request_id,
            tool_name: "",
            rpc_id: cx.rpc_id.clone(),
            // Streamed messages are new text: nothing to find again.
            memo_scope: None,
            kept: None,
        };
        let hooks = cx.hooks.clone();
        let (rewritten, report) = inspect_response_with(&ins, data.as_bytes(), 200, hooks.as_ref());
        cx.report.decision = cx.report.decision.max(report.decision);
        cx.report.score = cx.report.score.max(report.score);
        for r in report.reasons {
            cx.note(&r);
        }
        cx.report.findings.extend(report.findings);
        cx.report.tools.extend(report.tools);
        cx.report.approvals.extend(report.approvals);
        cx.masks.extend(report.masks);
        match rewritten.and_then(|b| String::from_utf8(b).ok()) {
            Some(body) => {
                let v: serde_json::Value =
                    serde_json::from_str(&body).unwrap_or(serde_json::Value::String(body));
                emit_json(out, fields.event, fields.id, &v);
            }
            None => out.extend_from_slice(&ev.raw),
        }
    }
}

/// An event whose data is not JSON: mask it as plain text, keep its
/// framing fields.
pub(crate) fn opaque(ev: &RawEvent, fields: &Fields<'_>, cx: &mut Cx, out: &mut BytesMut) {
    let data = fields.data.as_deref().unwrap_or_default();
    if !cx.redact {
        out.extend_from_slice(&ev.raw);
        return;
    }
    match cx.redactor().redact(data, &cx.masker) {
        Some(r) => {
            cx.masks.extend(r.events);
            super::sse::write_event(out, fields.event, fields.id, &r.text);
        }
        None => out.extend_from_slice(&ev.raw),
    }
}

/// A JSON event of a typed stream (Responses, Anthropic), with its type
/// (`type` in the data, else the `event:` line) and the `event:` name to
/// write back. Events that are not JSON objects are handled here: framing
/// without data is forwarded, non-JSON data is masked as text; both give
/// `None`.
pub(crate) fn typed_event(
    ev: &RawEvent,
    cx: &mut Cx,
    out: &mut BytesMut,
) -> Option<(serde_json::Value, String, String)> {
    let Some(fields) = ev.fields() else {
        out.extend_from_slice(&ev.raw);
        return None;
    };
    let Some(data) = fields.data.as_deref() else {
        out.extend_from_slice(&ev.raw);
        return None;
    };
    let v = match cx.parse_event(data)? {
        Ok(v) => v,
        Err(()) => {
            opaque(ev, &fields, cx, out);
            return None;
        }
    };
    let ty = v["type"]
        .as_str()
        .or(fields.event)
        .unwrap_or_default()
        .to_string();
    let name = fields.event.unwrap_or(&ty).to_string();
    Some((v, ty, name))
}
