//! OpenAI Chat Completions streams: `data: <chunk>` frames, `data: [DONE]`.
//!
//! Text channels are a choice's string delta fields (`content`, `refusal`,
//! reasoning text of compatible servers). Tool-call entries are withheld and
//! reassembled per (choice, `tool_calls[].index`); a call is complete when
//! its choice finishes (`finish_reason`) or the stream ends. Then one chunk
//! is inserted before the finishing chunk, carrying the rest of the text,
//! refusals for blocked calls, and the allowed calls re-indexed from 0
//! (the SDK looks calls up by position), each sent whole; `finish_reason`
//! becomes `stop` when no call is left.

use super::calls::{ArgsForm, Verdict};
use super::holdback::TextChannel;
use super::sse::RawEvent;
use super::{emit_json, Cx};
use crate::datapath::dialect::Dialect;
use bytes::BytesMut;
use serde_json::{json, Map, Value};

/// Delta fields that carry model text.
const TEXT_FIELDS: [&str; 4] = ["content", "refusal", "reasoning_content", "reasoning"];

#[derive(Default)]
pub struct ChatStream {
    /// A call was blocked and the profile wants an error event.
    blocked: Option<String>,
    choices: Vec<Choice>,
    /// Top-level fields of the first chunk, for inserted chunks.
    template: Option<Map<String, Value>>,
}

#[derive(Default)]
struct Choice {
    index: u64,
    channels: Vec<(&'static str, TextChannel)>,
    calls: Vec<Call>,
    /// Text was sent on `content` (a refusal then starts a new paragraph).
    wrote_content: bool,
}

#[derive(Default)]
struct Call {
    index: u64,
    id: String,
    custom: bool,
    name: String,
    args: String,
}

impl Choice {
    fn channel(&mut self, field: &'static str) -> &mut TextChannel {
        let pos = match self.channels.iter().position(|(f, _)| *f == field) {
            Some(p) => p,
            None => {
                self.channels.push((field, TextChannel::new()));
                self.channels.len() - 1
            }
        };
        &mut self.channels[pos].1
    }

    /// Merge one `tool_calls[]` entry (fragments of name and arguments are
    /// concatenated, as the SDKs do).
    fn collect(&mut self, entry: &Value) {
        let index = entry["index"].as_u64().unwrap_or(0);
        let pos = match self.calls.iter().position(|c| c.index == index) {
            Some(p) => p,
            None => {
                self.calls.push(Call {
                    index,
                    ..Call::default()
                });
                self.calls.len() - 1
            }
        };
        let call = &mut self.calls[pos];
        if let Some(id) = entry["id"].as_str() {
            call.id.push_str(id);
        }
        if entry["type"] == "custom" || entry.get("custom").is_some() {
            call.custom = true;
        }
        let body = if call.custom {
            &entry["custom"]
        } else {
            &entry["function"]
        };
        if let Some(n) = body["name"].as_str() {
            call.name.push_str(n);
        }
        let frag = if call.custom {
            body["input"].as_str()
        } else {
            body["arguments"].as_str()
        };
        if let Some(a) = frag {
            call.args.push_str(a);
        }
    }
}

impl ChatStream {
    fn choice(&mut self, index: u64) -> &mut Choice {
        let pos = match self.choices.iter().position(|c| c.index == index) {
            Some(p) => p,
            None => {
                self.choices.push(Choice {
                    index,
                    ..Choice::default()
                });
                self.choices.len() - 1
            }
        };
        &mut self.choices[pos]
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
        let data = data.trim();
        if data.starts_with("[DONE]") {
            self.close_all(cx, out, true);
            out.extend_from_slice(&ev.raw);
            return;
        }
        let mut chunk = match cx.parse_event(data) {
            Some(Ok(v)) => v,
            Some(Err(())) => return super::messages::opaque(&ev, &fields, cx, out),
            None => return,
        };
        if chunk.get("choices").is_none() && chunk.get("error").is_some() {
            // Mid-stream error: release the text, drop unfinished calls.
            self.close_all(cx, out, false);
            if cx.redact_value(&mut chunk) {
                emit_json(out, None, None, &chunk);
            } else {
                out.extend_from_slice(&ev.raw);
            }
            return;
        }
        if self.template.is_none() {
            if let Value::Object(m) = &chunk {
                let mut t = m.clone();
                t.remove("choices");
                t.remove("obfuscation");
                if t.contains_key("usage") {
                    t.insert("usage".into(), Value::Null);
                }
                self.template = Some(t);
            }
        }
        let mut changed = false;
        let mut before: Vec<Value> = Vec::new();
        let no_usage = chunk.get("usage").is_none_or(Value::is_null);
        if let Some(list) = chunk.get_mut("choices").and_then(Value::as_array_mut) {
            for choice in list.iter_mut() {
                changed |= self.rewrite_choice(choice, cx, &mut before);
            }
            if changed && no_usage && !list.is_empty() && list.iter().all(is_empty_choice) {
                // Nothing left but withheld fragments: drop the chunk.
                list.clear();
            }
        }
        for c in &before {
            emit_json(out, None, None, c);
        }
        if let Some(message) = self.blocked.take() {
            let e = cx.blocked_error(Dialect::OpenaiChat, &message);
            emit_json(out, None, None, &e);
            return;
        }
        if !changed {
            out.extend_from_slice(&ev.raw);
        } else if chunk["choices"].as_array().is_some_and(|l| !l.is_empty()) {
            emit_json(out, None, None, &chunk);
        }
    }

    /// Returns whether the choice changed; pushes chunks to insert before.
    fn rewrite_choice(&mut self, choice: &mut Value, cx: &mut Cx, before: &mut Vec<Value>) -> bool {
        let index = choice["index"].as_u64().unwrap_or(0);
        let finishing = choice["finish_reason"].is_string();
        let mut changed = false;
        let mut tail = Map::new();
        let st = self.choice(index);
        if let Some(delta) = choice.get_mut("delta").and_then(Value::as_object_mut) {
            for field in TEXT_FIELDS {
                let Some(Value::String(s)) = delta.get_mut(field) else {
                    continue;
                };
                let released = cx.push_text(st.channel(field), s);
                if finishing {
                    // Everything goes into the inserted chunk, in order.
                    tail.insert(field.into(), Value::String(released));
                    delta.remove(field);
                    changed = true;
                } else if released != *s {
                    *s = released;
                    changed = true;
                }
                if field == "content"
                    && delta
                        .get(field)
                        .and_then(Value::as_str)
                        .is_some_and(|t| !t.is_empty())
                {
                    st.wrote_content = true;
                }
            }
            if let Some(Value::Array(entries)) = delta.remove("tool_calls") {
                entries.iter().for_each(|e| st.collect(e));
                changed = true;
            }
        }
        if let Some(lp) = choice.get_mut("logprobs") {
            changed |= cx.drop_logprobs(lp);
        }
        if finishing {
            let template = self.template.clone().unwrap_or_default();
            let st = self.choice(index);
            let (delta, allowed, blocked) = close_choice(st, cx, tail, true);
            self.blocked = self.blocked.take().or(blocked);
            if !delta.is_empty() {
                before.push(chunk_with(&template, index, delta));
            }
            if choice["finish_reason"] == "tool_calls" && allowed == 0 {
                choice["finish_reason"] = json!("stop");
                changed = true;
            }
        }
        changed
    }

    /// `[DONE]`, end of stream or an error: close every choice still open.
    fn close_all(&mut self, cx: &mut Cx, out: &mut BytesMut, judge_calls: bool) {
        let template = self.template.clone().unwrap_or_default();
        for st in &mut self.choices {
            if !judge_calls && !st.calls.is_empty() {
                cx.note("stream ended with an error before a tool call was complete; the call was not delivered");
                st.calls.clear();
            }
            let (delta, _, blocked) = close_choice(st, cx, Map::new(), judge_calls);
            if !delta.is_empty() {
                emit_json(out, None, None, &chunk_with(&template, st.index, delta));
            }
            if let Some(message) = blocked {
                let e = cx.blocked_error(Dialect::OpenaiChat, &message);
                emit_json(out, None, None, &e);
                return;
            }
        }
    }

    pub fn end(&mut self, cx: &mut Cx, out: &mut BytesMut) {
        self.close_all(cx, out, true);
    }
}

/// Flush a choice's text and judge its calls. `tail` holds text released
/// from the finishing chunk itself. Returns the delta to send, how many
/// calls were allowed, and the refusal when the profile turns a blocked
/// call into an error event instead of text.
fn close_choice(
    st: &mut Choice,
    cx: &mut Cx,
    mut tail: Map<String, Value>,
    judge_calls: bool,
) -> (Map<String, Value>, usize, Option<String>) {
    for (field, ch) in st.channels.iter_mut() {
        let rest = cx.flush_text(ch);
        if rest.is_empty() {
            continue;
        }
        match tail.get_mut(*field) {
            Some(Value::String(s)) => s.push_str(&rest),
            _ => {
                tail.insert((*field).into(), Value::String(rest));
            }
        }
    }
    tail.retain(|_, v| v.as_str() != Some(""));
    if tail.contains_key("content") {
        st.wrote_content = true;
    }
    let mut refusals: Vec<String> = Vec::new();
    let mut allowed: Vec<Value> = Vec::new();
    let mut blocked: Option<String> = None;
    if judge_calls {
        st.calls.sort_by_key(|c| c.index);
        for call in st.calls.drain(..) {
            let form = if call.custom {
                ArgsForm::Text
            } else {
                ArgsForm::JsonString
            };
            match cx.judge(&call.name, Some(&call.id), &call.args, form) {
                Verdict::Fail { message } => {
                    blocked.get_or_insert(message);
                }
                Verdict::Refuse { message } => refusals.push(message),
                Verdict::Allow { masked } => {
                    let args = masked.unwrap_or(call.args);
                    let index = allowed.len();
                    allowed.push(if call.custom {
                        json!({"index": index, "id": call.id, "type": "custom",
                               "custom": {"name": call.name, "input": args}})
                    } else {
                        json!({"index": index, "id": call.id, "type": "function",
                               "function": {"name": call.name, "arguments": args}})
                    });
                }
            }
        }
    }
    if !refusals.is_empty() {
        let mut text = tail
            .remove("content")
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        if st.wrote_content || !text.is_empty() {
            text.push_str("\n\n");
        }
        text.push_str(&refusals.join("\n"));
        tail.insert("content".into(), Value::String(text));
        st.wrote_content = true;
    }
    let n = allowed.len();
    if blocked.is_some() {
        // The stream ends with the error: no call of this turn runs.
        return (tail, 0, blocked);
    }
    if !allowed.is_empty() {
        tail.insert("tool_calls".into(), Value::Array(allowed));
    }
    (tail, n, None)
}

fn chunk_with(template: &Map<String, Value>, index: u64, delta: Map<String, Value>) -> Value {
    let mut m = Map::new();
    let choice = json!({"index": index, "delta": delta, "logprobs": null, "finish_reason": null});
    let mut placed = false;
    for (k, v) in template {
        if k == "usage" && !placed {
            m.insert("choices".into(), json!([choice.clone()]));
            placed = true;
        }
        m.insert(k.clone(), v.clone());
    }
    if !placed {
        m.insert("choices".into(), json!([choice]));
    }
    if !m.contains_key("object") {
        m.insert("object".into(), json!("chat.completion.chunk"));
    }
    Value::Object(m)
}

fn is_empty_choice(c: &Value) -> bool {
    c["finish_reason"].is_null()
        && c["delta"]
            .as_object()
            .is_none_or(|d| d.values().all(Value::is_null))
}

/// A Chat-style error frame (what the API sends mid-stream).
pub fn error_event(message: &str, out: &mut BytesMut) {
    let v = json!({"error": {"message": message, "type": "api_error", "param": null, "code": "asg_stream_withheld"}});
    emit_json(out, None, None, &v);
}
