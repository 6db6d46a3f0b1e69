//! Gemini streams: `streamGenerateContent?alt=sse` sends `data: <chunk>`
//! events (no `event:` line, no end marker); without `alt=sse` the same
//! chunks arrive as one JSON array, which [`super::json_array`] frames into
//! the same events. Each chunk is a whole `GenerateContentResponse` whose
//! `candidates[].content.parts[]` carry the new text and complete function
//! calls (Gemini sends a call's arguments whole, in one part).
//!
//! Text is masked per (candidate, text or thought) channel with the shared
//! hold-back, so a secret split across chunks is masked in the text a
//! client concatenates. A function call is judged when its part arrives:
//! text held back before it is released first (order is kept), then the
//! call goes out as it came, with masked arguments, or as a text part
//! carrying the refusal. A candidate's `finishReason` releases what its
//! channels hold; text still held when the upstream ends goes out in one
//! more chunk.

use super::calls::{ArgsForm, Verdict};
use super::holdback::TextChannel;
use super::sse::RawEvent;
use super::{emit_json, Cx};
use crate::datapath::dialect::gemini::{error_body, field};
use crate::datapath::dialect::{Dialect, ErrorKind};
use bytes::BytesMut;
use serde_json::{json, Map, Value};

#[derive(Default)]
pub struct GeminiStream {
    cands: Vec<Cand>,
    /// Top-level fields every chunk repeats (`modelVersion`, `responseId`),
    /// for a chunk the gateway adds.
    template: Map<String, Value>,
}

struct Cand {
    index: i64,
    text: TextChannel,
    thought: TextChannel,
}

impl GeminiStream {
    fn cand(&mut self, index: i64) -> usize {
        match self.cands.iter().position(|c| c.index == index) {
            Some(p) => p,
            None => {
                self.cands.push(Cand {
                    index,
                    text: TextChannel::new(),
                    thought: TextChannel::new(),
                });
                self.cands.len() - 1
            }
        }
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
        let mut v = match cx.parse_event(data) {
            Some(Ok(v)) => v,
            Some(Err(())) => return super::messages::opaque(&ev, &fields, cx, out),
            None => return,
        };
        if !v.is_object() || v.get("error").is_some() {
            // An error ends the stream: what is held back goes first.
            self.end(cx, out);
            let modified = cx.redact_value(&mut v);
            return send(out, &ev, &v, modified);
        }
        for key in ["modelVersion", "responseId"] {
            if let Some(x) = v.get(key) {
                self.template.insert(key.to_string(), x.clone());
            }
        }
        let mut modified = false;
        let mut fail: Option<String> = None;
        let cands_key = "candidates";
        let mut cands = match v.as_object_mut().and_then(|o| o.remove(cands_key)) {
            Some(Value::Array(c)) => c,
            Some(other) => {
                // Misshapen: masked as a whole, nothing to stream.
                let mut other = other;
                modified |= cx.redact_value(&mut other);
                v[cands_key] = other;
                Vec::new()
            }
            None => Vec::new(),
        };
        let had_cands = !cands.is_empty();
        for (pos, cand) in cands.iter_mut().enumerate() {
            let index = cand["index"].as_i64().unwrap_or(pos as i64);
            modified |= self.candidate(index, cand, cx, &mut fail);
            if fail.is_some() {
                break;
            }
        }
        if let Some(message) = fail {
            let body = cx.blocked_error(Dialect::Gemini, &message);
            emit_json(out, None, None, &body);
            return;
        }
        // Everything else in the chunk (usage, feedback, an error) is masked
        // like a buffered body.
        modified |= cx.redact_value(&mut v);
        if had_cands {
            v[cands_key] = Value::Array(cands);
        }
        send(out, &ev, &v, modified);
    }

    /// Rewrite one candidate in place; whether anything changed.
    fn candidate(
        &mut self,
        index: i64,
        cand: &mut Value,
        cx: &mut Cx,
        fail: &mut Option<String>,
    ) -> bool {
        let c = self.cand(index);
        let mut modified = false;
        let finished = !field(cand, "finishReason").is_null();
        let mut new_parts: Vec<Value> = Vec::new();
        let parts = take_parts(cand);
        for mut part in parts.into_iter().flatten() {
            let thought = field(&part, "thought").as_bool() == Some(true);
            if let Some(text) = part.get("text").and_then(Value::as_str) {
                let ch = if thought {
                    &mut self.cands[c].thought
                } else {
                    &mut self.cands[c].text
                };
                let released = cx.push_text(ch, text);
                if released != text {
                    modified = true;
                    part["text"] = Value::String(released);
                }
                new_parts.push(part);
            } else if !field(&part, "functionCall").is_null() {
                // Text before the call is released before it.
                modified |= self.flush_into(c, cx, &mut new_parts);
                match self.call(&part, cx) {
                    CallOut::Keep => new_parts.push(part),
                    CallOut::Replace(p) => {
                        modified = true;
                        new_parts.push(p);
                    }
                    CallOut::Fail(message) => {
                        *fail = Some(message);
                        return true;
                    }
                }
            } else {
                modified |= cx.redact_value(&mut part);
                new_parts.push(part);
            }
        }
        if finished {
            modified |= self.flush_into(c, cx, &mut new_parts);
        }
        // Citations, grounding and safety metadata are masked as a body.
        if let Some(o) = cand.as_object_mut() {
            for (k, val) in o.iter_mut() {
                if k != "content" {
                    modified |= cx.redact_value(val);
                }
            }
        }
        if let Some(content) = content_mut(cand) {
            content["parts"] = Value::Array(new_parts);
        } else if !new_parts.is_empty() {
            cand["content"] = json!({"role": "model", "parts": new_parts});
            modified = true;
        }
        modified
    }

    /// Release what candidate `c`'s channels hold as text parts.
    fn flush_into(&mut self, c: usize, cx: &mut Cx, parts: &mut Vec<Value>) -> bool {
        let thought = cx.flush_text(&mut self.cands[c].thought);
        let text = cx.flush_text(&mut self.cands[c].text);
        let mut added = false;
        if !thought.is_empty() {
            parts.push(json!({"text": thought, "thought": true}));
            added = true;
        }
        if !text.is_empty() {
            parts.push(json!({"text": text}));
            added = true;
        }
        added
    }

    fn call(&mut self, part: &Value, cx: &mut Cx) -> CallOut {
        let call = field(part, "functionCall");
        if call.get("partialArgs").is_some() || call.get("willContinue").is_some() {
            // Arguments streamed in pieces (`streamFunctionCallArguments`)
            // are not judged piecemeal: the call is refused, not relayed.
            return CallOut::Fail(format!(
                "[asg] a streamed function call with partial arguments cannot be inspected (request {}); disable streamFunctionCallArguments",
                cx.request_id
            ));
        }
        let name = call["name"].as_str().unwrap_or_default().to_string();
        let id = call["id"].as_str().map(str::to_string);
        let args = field(call, "args");
        let raw = if args.is_null() {
            String::new()
        } else {
            args.to_string()
        };
        match cx.judge(&name, id.as_deref(), &raw, ArgsForm::JsonObject) {
            Verdict::Allow { masked: None } => CallOut::Keep,
            Verdict::Allow {
                masked: Some(masked),
            } => {
                let mut p = part.clone();
                let masked: Value = serde_json::from_str(&masked).unwrap_or(Value::String(masked));
                let key = if p.get("functionCall").is_some() {
                    "functionCall"
                } else {
                    "function_call"
                };
                p[key]["args"] = masked;
                CallOut::Replace(p)
            }
            Verdict::Refuse { message } => CallOut::Replace(json!({ "text": message })),
            Verdict::Fail { message } => CallOut::Fail(message),
        }
    }

    pub fn end(&mut self, cx: &mut Cx, out: &mut BytesMut) {
        let mut cands = Vec::new();
        for c in 0..self.cands.len() {
            let mut parts = Vec::new();
            if self.flush_into(c, cx, &mut parts) {
                cands.push(json!({
                    "index": self.cands[c].index,
                    "content": {"role": "model", "parts": parts},
                }));
            }
        }
        if cands.is_empty() {
            return;
        }
        let mut chunk = Value::Object(self.template.clone());
        chunk["candidates"] = Value::Array(cands);
        emit_json(out, None, None, &chunk);
    }
}

enum CallOut {
    Keep,
    Replace(Value),
    Fail(String),
}

fn send(out: &mut BytesMut, ev: &RawEvent, v: &Value, modified: bool) {
    if modified {
        return emit_json(out, None, None, v);
    }
    // The Google SDKs match `data: …` up to a blank line with a regex, not
    // an SSE parser: an event's own bytes go out with canonical line ends,
    // so a CRLF pair split across reads (and an event the gateway inserts
    // between two of the upstream's) still parses.
    let raw: &[u8] = &ev.raw;
    let start = raw
        .iter()
        .position(|b| !matches!(b, b'\r' | b'\n'))
        .unwrap_or(raw.len());
    let end = raw
        .iter()
        .rposition(|b| !matches!(b, b'\r' | b'\n'))
        .map_or(start, |i| i + 1);
    out.extend_from_slice(&raw[start..end.max(start)]);
    out.extend_from_slice(b"\n\n");
}

fn content_mut(cand: &mut Value) -> Option<&mut Value> {
    cand.get_mut("content").filter(|c| c.is_object())
}

/// The candidate's parts, taken out (the rewritten list goes back).
fn take_parts(cand: &mut Value) -> Option<Vec<Value>> {
    match content_mut(cand)?.as_object_mut()?.remove("parts")? {
        Value::Array(p) => Some(p),
        other => Some(vec![other]),
    }
}

/// The gateway's own error event (a stream withheld mid-way).
pub fn error_event(message: &str, out: &mut BytesMut) {
    emit_json(
        out,
        None,
        None,
        &error_body(ErrorKind::TooLarge, message, ""),
    );
}

#[cfg(test)]
#[path = "gemini_tests.rs"]
mod tests;
