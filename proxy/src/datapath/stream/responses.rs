//! OpenAI Responses streams: `event: <type>` + `data: {"type", …,
//! "sequence_number"}`, ending with `response.completed` (or `failed` /
//! `incomplete`).
//!
//! Text channels are keyed by item, kind and content (or summary) index.
//! The same text comes back up to four more times (`*.done`,
//! `content_part.done`, `output_item.done`, `response.completed`): those
//! copies are masked by the same keyed redactor over the complete text, so
//! every copy shows the same masks as the deltas. A function (or custom
//! tool) call item is withheld from `output_item.added` to
//! `output_item.done`, then judged and re-emitted, re-emitted with masked
//! arguments, or replaced by an assistant message item holding the refusal
//! (also in `response.completed`). Inserting or dropping events renumbers
//! `sequence_number` so it still starts where the upstream's did and
//! increases by one.
//!
//! Items are assumed to be streamed one after another (as the API does):
//! events of a later item are not held back behind a withheld call.
//!
//! SDKs join a message's `output_text` parts (`response.output_text`), so
//! a secret cut across two parts must be caught. When a part's text ends
//! while its channel still holds a tail that could start a secret, the
//! part's `*.done` events are held until the next event: if the item's
//! next part is `output_text` too, the channel carries on into it (the
//! tail is released at the start of that part, masked with what follows);
//! otherwise the tail is flushed into the part that ended. Every full copy
//! of a part's text (`*.done`, `output_item.done`, `response.completed`)
//! then says exactly what its deltas said.

use super::calls::{ArgsForm, Verdict};
use super::holdback::TextChannel;
use super::sse::RawEvent;
use super::{emit_json, Cx};
use crate::datapath::dialect::openai_responses::message_item;
use bytes::{Bytes, BytesMut};
use serde_json::{json, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TextKind {
    OutputText,
    Refusal,
    ReasoningText,
    ReasoningSummary,
}

impl TextKind {
    fn from_delta(t: &str) -> Option<Self> {
        Some(match t {
            "response.output_text.delta" => TextKind::OutputText,
            "response.refusal.delta" => TextKind::Refusal,
            "response.reasoning_text.delta" => TextKind::ReasoningText,
            "response.reasoning_summary_text.delta" => TextKind::ReasoningSummary,
            _ => return None,
        })
    }

    fn from_done(t: &str) -> Option<Self> {
        Some(match t {
            "response.output_text.done" => TextKind::OutputText,
            "response.refusal.done" => TextKind::Refusal,
            "response.reasoning_text.done" => TextKind::ReasoningText,
            "response.reasoning_summary_text.done" => TextKind::ReasoningSummary,
            _ => return None,
        })
    }

    fn delta_type(self) -> &'static str {
        match self {
            TextKind::OutputText => "response.output_text.delta",
            TextKind::Refusal => "response.refusal.delta",
            TextKind::ReasoningText => "response.reasoning_text.delta",
            TextKind::ReasoningSummary => "response.reasoning_summary_text.delta",
        }
    }

    fn index_key(self) -> &'static str {
        match self {
            TextKind::ReasoningSummary => "summary_index",
            _ => "content_index",
        }
    }
}

struct Channel {
    item_id: String,
    kind: TextKind,
    index: i64,
    output_index: Value,
    text: TextChannel,
}

/// A call item being withheld.
struct PendingCall {
    item_id: String,
    output_index: Value,
    custom: bool,
    /// The events received for it, in order: (event name, payload, bytes).
    held: Vec<(String, Value, Bytes)>,
    args: String,
}

impl PendingCall {
    fn form(&self) -> ArgsForm {
        if self.custom {
            ArgsForm::Text
        } else {
            ArgsForm::JsonString
        }
    }

    fn args_key(&self) -> &'static str {
        if self.custom {
            "input"
        } else {
            "arguments"
        }
    }

    fn delta_type(&self) -> &'static str {
        if self.custom {
            "response.custom_tool_call_input.delta"
        } else {
            "response.function_call_arguments.delta"
        }
    }

    fn done_type(&self) -> &'static str {
        if self.custom {
            "response.custom_tool_call_input.done"
        } else {
            "response.function_call_arguments.done"
        }
    }

    /// The item as announced by `output_item.added`.
    fn added_item(&self) -> Value {
        self.held
            .first()
            .map(|(_, v, _)| v["item"].clone())
            .unwrap_or(Value::Null)
    }
}

/// An `output_text` part whose text ended while its channel held a tail:
/// the channel and the part's `*.done` events, held.
struct HeldPart {
    channel: Channel,
    events: Vec<(String, Value, Bytes)>,
}

#[derive(Default)]
pub struct ResponsesStream {
    /// Text sent for each `output_text` part: (item id, content index, text).
    emitted: Vec<(String, i64, String)>,
    held_part: Option<Box<HeldPart>>,
    /// A channel carried into the item's next `output_text` part.
    carry: Option<Box<(String, TextChannel)>>,
    /// The sequence number the next event gets.
    next_seq: Option<i64>,
    channels: Vec<Channel>,
    calls: Vec<PendingCall>,
    /// Call items replaced by refusal message items: (item id, new item).
    replaced: Vec<(String, Value)>,
    /// The response object of `response.created`, for a `response.failed`
    /// the gateway has to write itself.
    created: Option<Value>,
}

impl ResponsesStream {
    pub fn event(&mut self, ev: RawEvent, cx: &mut Cx, out: &mut BytesMut) {
        let Some((mut v, ty, name)) = super::messages::typed_event(&ev, cx, out) else {
            return;
        };
        if let Some(held) = &mut self.held_part {
            let part = &held.channel;
            let same_item = v["item_id"] == part.item_id.as_str();
            if ty == "response.content_part.done" && same_item && v["content_index"] == part.index {
                held.events.push((name, v, ev.raw.clone()));
                return;
            }
            let continues = ty == "response.content_part.added"
                && same_item
                && v["part"]["type"] == "output_text";
            self.settle_part(continues, cx, out);
        }
        if let Some(kind) = TextKind::from_delta(&ty) {
            return self.text_delta(kind, &name, v, &ev.raw, cx, out);
        }
        if let Some(kind) = TextKind::from_done(&ty) {
            let item = v["item_id"].as_str().unwrap_or_default().to_string();
            let index = v[kind.index_key()].as_i64().unwrap_or(0);
            let at = self
                .channels
                .iter()
                .position(|c| c.item_id == item && c.kind == kind && c.index == index);
            if let Some(i) =
                at.filter(|&i| kind == TextKind::OutputText && self.channels[i].text.held() > 0)
            {
                // The next event says whether the text goes on in another part.
                let channel = self.channels.remove(i);
                let events = vec![(name, v, ev.raw.clone())];
                self.held_part = Some(Box::new(HeldPart { channel, events }));
                return;
            }
            self.flush_where(cx, out, |c| {
                c.item_id == item && c.kind == kind && c.index == index
            });
            return self.send_copy(&name, v, &ev.raw, cx, out);
        }
        match ty.as_str() {
            "response.output_item.added"
                if matches!(
                    v["item"]["type"].as_str(),
                    Some("function_call" | "custom_tool_call")
                ) =>
            {
                self.calls.push(PendingCall {
                    item_id: v["item"]["id"].as_str().unwrap_or_default().to_string(),
                    output_index: v["output_index"].clone(),
                    custom: v["item"]["type"] == "custom_tool_call",
                    args: v["item"]["arguments"]
                        .as_str()
                        .or(v["item"]["input"].as_str())
                        .unwrap_or_default()
                        .to_string(),
                    held: vec![(name, v, ev.raw.clone())],
                });
            }
            "response.function_call_arguments.delta"
            | "response.custom_tool_call_input.delta"
            | "response.function_call_arguments.done"
            | "response.custom_tool_call_input.done"
                if self.pending(&v["item_id"]).is_some() =>
            {
                let i = self.pending(&v["item_id"]).unwrap_or_default();
                let call = &mut self.calls[i];
                if ty.ends_with(".delta") {
                    call.args.push_str(v["delta"].as_str().unwrap_or_default());
                }
                call.held.push((name, v, ev.raw.clone()));
            }
            "response.output_item.done" => {
                if let Some(i) = self.pending(&v["item"]["id"]) {
                    let call = self.calls.remove(i);
                    self.complete(call, Some((name, v, ev.raw.clone())), cx, out);
                } else {
                    let item = v["item"]["id"].as_str().unwrap_or_default().to_string();
                    self.flush_where(cx, out, |c| c.item_id == item);
                    self.send_copy(&name, v, &ev.raw, cx, out);
                }
            }
            "response.content_part.done" => {
                let item = v["item_id"].as_str().unwrap_or_default().to_string();
                self.flush_where(cx, out, |c| c.item_id == item);
                self.send_copy(&name, v, &ev.raw, cx, out);
            }
            "response.completed" | "response.failed" | "response.incomplete" => {
                self.flush_where(cx, out, |_| true);
                for call in std::mem::take(&mut self.calls) {
                    let final_item = v["response"]["output"]
                        .as_array()
                        .and_then(|o| o.iter().find(|i| i["id"] == call.item_id.as_str()))
                        .cloned();
                    let done = final_item.map(|item| {
                        let e = json!({"type": "response.output_item.done",
                                       "output_index": call.output_index, "item": item});
                        ("response.output_item.done".to_string(), e, Bytes::new())
                    });
                    self.complete(call, done, cx, out);
                }
                if let Some(output) = v["response"]["output"].as_array_mut() {
                    for item in output.iter_mut() {
                        if let Some((_, m)) = self.replaced.iter().find(|(id, _)| item["id"] == *id)
                        {
                            *item = m.clone();
                        }
                    }
                }
                // Masked first, then the text copies set to what the
                // deltas said (masking a masked text again is not exact).
                let masked = cx.redact_value(&mut v);
                let fixed = self.fix_copies(&mut v);
                let modified = masked || !self.replaced.is_empty() || fixed;
                self.send_modified(&name, v, &ev.raw, modified, cx, out);
            }
            "error" => {
                self.flush_where(cx, out, |_| true);
                if !self.calls.is_empty() {
                    cx.note("stream ended with an error before a tool call was complete; the call was not delivered");
                    self.calls.clear();
                }
                self.send_redacted(&name, v, &ev.raw, cx, out);
            }
            _ => {
                if self.created.is_none() && v["response"].is_object() {
                    self.created = Some(v["response"].clone());
                }
                self.send_redacted(&name, v, &ev.raw, cx, out)
            }
        }
    }

    fn pending(&self, item_id: &Value) -> Option<usize> {
        let id = item_id.as_str()?;
        self.calls.iter().position(|c| c.item_id == id)
    }

    fn text_delta(
        &mut self,
        kind: TextKind,
        name: &str,
        mut v: Value,
        raw: &Bytes,
        cx: &mut Cx,
        out: &mut BytesMut,
    ) {
        let item_id = v["item_id"].as_str().unwrap_or_default();
        let index = v[kind.index_key()].as_i64().unwrap_or(0);
        let pos = match self
            .channels
            .iter()
            .position(|c| c.item_id == item_id && c.kind == kind && c.index == index)
        {
            Some(p) => p,
            None => {
                let text = match self.carry.take().map(|c| *c) {
                    Some((item, ch)) if kind == TextKind::OutputText && item == item_id => ch,
                    _ => TextChannel::new(),
                };
                self.channels.push(Channel {
                    item_id: item_id.to_string(),
                    kind,
                    index,
                    output_index: v["output_index"].clone(),
                    text,
                });
                self.channels.len() - 1
            }
        };
        let fragment = v["delta"].as_str().unwrap_or_default();
        let released = cx.push_text(&mut self.channels[pos].text, fragment);
        if kind == TextKind::OutputText {
            self.record(item_id, index, &released);
        }
        let mut modified = released != fragment;
        v["delta"] = Value::String(released);
        if let Some(lp) = v.get_mut("logprobs") {
            modified |= cx.drop_logprobs(lp);
        }
        self.send_modified(name, v, raw, modified, cx, out);
    }

    /// Flush (and forget) the channels matching `pred`, sending what they
    /// held as one more delta each.
    fn flush_where(&mut self, cx: &mut Cx, out: &mut BytesMut, pred: impl Fn(&Channel) -> bool) {
        let mut i = 0;
        while i < self.channels.len() {
            if !pred(&self.channels[i]) {
                i += 1;
                continue;
            }
            let mut c = self.channels.remove(i);
            self.flush_channel(&mut c, cx, out);
        }
    }

    /// Send what a channel still holds as one more delta.
    fn flush_channel(&mut self, c: &mut Channel, cx: &mut Cx, out: &mut BytesMut) {
        let rest = cx.flush_text(&mut c.text);
        if rest.is_empty() {
            return;
        }
        if c.kind == TextKind::OutputText {
            self.record(&c.item_id, c.index, &rest);
        }
        let mut e = json!({
            "type": c.kind.delta_type(),
            "item_id": c.item_id,
            "output_index": c.output_index,
        });
        e[c.kind.index_key()] = json!(c.index);
        e["delta"] = Value::String(rest);
        if c.kind == TextKind::OutputText {
            e["logprobs"] = json!([]);
        }
        self.send_modified(c.kind.delta_type(), e, &Bytes::new(), true, cx, out);
    }

    /// Text sent for an `output_text` part.
    fn record(&mut self, item: &str, index: i64, text: &str) {
        if text.is_empty() {
            return;
        }
        match self
            .emitted
            .iter_mut()
            .find(|(i, x, _)| i == item && *x == index)
        {
            Some((_, _, t)) => t.push_str(text),
            None => self
                .emitted
                .push((item.to_string(), index, text.to_string())),
        }
    }

    fn sent_text(&self, item: &Value, index: &Value) -> Option<&str> {
        let (item, index) = (item.as_str()?, index.as_i64()?);
        self.emitted
            .iter()
            .find(|(i, x, _)| i == item && *x == index)
            .map(|(_, _, t)| t.as_str())
    }

    /// Release a held part: its channel carries on into the item's next
    /// `output_text` part (`continues`), or what it holds is flushed into
    /// it; then its `*.done` events go out, saying what was sent.
    fn settle_part(&mut self, continues: bool, cx: &mut Cx, out: &mut BytesMut) {
        let Some(held) = self.held_part.take() else {
            return;
        };
        let HeldPart {
            mut channel,
            events,
        } = *held;
        if !continues {
            self.flush_channel(&mut channel, cx, out);
        }
        for (name, v, raw) in events {
            self.send_copy(&name, v, &raw, cx, out);
        }
        if continues {
            self.carry = Some(Box::new((channel.item_id, channel.text)));
        }
    }

    /// Make every full copy of an `output_text` part's text in `v` say
    /// what its deltas said. Returns whether anything changed.
    fn fix_copies(&self, v: &mut Value) -> bool {
        let mut changed = false;
        let mut set = |slot: &mut Value, text: Option<&str>| {
            if let Some(t) = text {
                if slot.as_str() != Some(t) {
                    *slot = Value::String(t.to_string());
                    changed = true;
                }
            }
        };
        match v["type"].as_str().unwrap_or_default() {
            "response.output_text.done" => {
                let t = self.sent_text(&v["item_id"], &v["content_index"]);
                set(&mut v["text"], t);
            }
            "response.content_part.done" if v["part"]["type"] == "output_text" => {
                let t = self.sent_text(&v["item_id"], &v["content_index"]);
                set(&mut v["part"]["text"], t);
            }
            "response.output_item.done" => {
                let id = v["item"]["id"].clone();
                let content = v.get_mut("item").and_then(|i| i.get_mut("content"));
                for (i, part) in items_mut(content) {
                    if part["type"] == "output_text" {
                        set(&mut part["text"], self.sent_text(&id, &json!(i)));
                    }
                }
            }
            "response.completed" | "response.failed" | "response.incomplete" => {
                let output = v.get_mut("response").and_then(|r| r.get_mut("output"));
                for (_, item) in items_mut(output) {
                    let id = item["id"].clone();
                    for (i, part) in items_mut(item.get_mut("content")) {
                        if part["type"] == "output_text" {
                            set(&mut part["text"], self.sent_text(&id, &json!(i)));
                        }
                    }
                }
            }
            _ => {}
        }
        changed
    }

    /// Send a full copy of text: as the deltas said it, then masked.
    fn send_copy(
        &mut self,
        name: &str,
        mut v: Value,
        raw: &Bytes,
        cx: &mut Cx,
        out: &mut BytesMut,
    ) {
        let masked = cx.redact_value(&mut v);
        let fixed = self.fix_copies(&mut v);
        let modified = masked || fixed;
        self.send_modified(name, v, raw, modified, cx, out);
    }

    /// A call item is complete: judge it and emit what the verdict says.
    fn complete(
        &mut self,
        call: PendingCall,
        done: Option<(String, Value, Bytes)>,
        cx: &mut Cx,
        out: &mut BytesMut,
    ) {
        let key = call.args_key();
        let item = done
            .as_ref()
            .map(|(_, v, _)| v["item"].clone())
            .unwrap_or_else(|| call.added_item());
        let final_args = item[key]
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| call.args.clone());
        let tool = item["name"].as_str().unwrap_or_default().to_string();
        let call_id = item["call_id"].as_str().map(str::to_string);
        let verdict = cx.judge(&tool, call_id.as_deref(), &final_args, call.form());
        match verdict {
            Verdict::Allow { masked: None } if final_args == call.args && done.is_some() => {
                // Unchanged: the upstream's own events (renumbered if needed).
                for (name, v, raw) in call.held.into_iter().chain(done) {
                    self.send_modified(&name, v, &raw, false, cx, out);
                }
            }
            Verdict::Allow { masked } => {
                let args = masked.unwrap_or(final_args);
                let mut held = call.held.iter();
                if let Some((name, v, raw)) = held.next() {
                    self.send_modified(name, v.clone(), raw, false, cx, out);
                }
                let delta = json!({"type": call.delta_type(), "item_id": call.item_id,
                                   "output_index": call.output_index, "delta": args});
                self.send_modified(call.delta_type(), delta, &Bytes::new(), true, cx, out);
                let mut fin = json!({"type": call.done_type(), "item_id": call.item_id,
                                     "output_index": call.output_index});
                fin[key] = Value::String(args.clone());
                self.send_modified(call.done_type(), fin, &Bytes::new(), true, cx, out);
                let mut item = item;
                item[key] = Value::String(args);
                if item.get("status").is_some() {
                    item["status"] = json!("completed");
                }
                let e = json!({"type": "response.output_item.done",
                               "output_index": call.output_index, "item": item});
                self.send_modified("response.output_item.done", e, &Bytes::new(), true, cx, out);
            }
            Verdict::Fail { message } => {
                cx.terminate_blocked();
                let e = json!({"type": "error", "code": "asg_blocked", "message": message, "param": null});
                self.send_modified("error", e, &Bytes::new(), true, cx, out);
                let mut response = self
                    .created
                    .clone()
                    .unwrap_or_else(|| json!({"object": "response"}));
                response["status"] = json!("failed");
                response["error"] = json!({"code": "asg_blocked", "message": message});
                response["output"] = json!([]);
                let failed = json!({"type": "response.failed", "response": response});
                self.send_modified("response.failed", failed, &Bytes::new(), true, cx, out);
            }
            Verdict::Refuse { message } => {
                let id = format!("msg_asg_{}", call.item_id);
                let oi = call.output_index.clone();
                let part = |text: &str| json!({"type": "output_text", "annotations": [], "logprobs": [], "text": text});
                let events = [
                    json!({"type": "response.output_item.added", "output_index": oi,
                           "item": {"id": id, "type": "message", "status": "in_progress",
                                    "content": [], "role": "assistant"}}),
                    json!({"type": "response.content_part.added", "item_id": id,
                           "output_index": oi, "content_index": 0, "part": part("")}),
                    json!({"type": "response.output_text.delta", "item_id": id, "output_index": oi,
                           "content_index": 0, "delta": message, "logprobs": []}),
                    json!({"type": "response.output_text.done", "item_id": id, "output_index": oi,
                           "content_index": 0, "text": message, "logprobs": []}),
                    json!({"type": "response.content_part.done", "item_id": id,
                           "output_index": oi, "content_index": 0, "part": part(&message)}),
                    json!({"type": "response.output_item.done", "output_index": oi,
                           "item": message_item(&id, &message)}),
                ];
                for e in events {
                    let name = e["type"].as_str().unwrap_or_default().to_string();
                    self.send_modified(&name, e, &Bytes::new(), true, cx, out);
                }
                self.replaced
                    .push((call.item_id, message_item(&id, &message)));
            }
        }
    }

    fn send_redacted(
        &mut self,
        name: &str,
        mut v: Value,
        raw: &Bytes,
        cx: &mut Cx,
        out: &mut BytesMut,
    ) {
        let modified = cx.redact_value(&mut v);
        self.send_modified(name, v, raw, modified, cx, out);
    }

    /// Emit an event with the next sequence number: the upstream's bytes
    /// when nothing changed, else the re-serialized payload.
    fn send_modified(
        &mut self,
        name: &str,
        mut v: Value,
        raw: &Bytes,
        modified: bool,
        _cx: &mut Cx,
        out: &mut BytesMut,
    ) {
        let orig = v.get("sequence_number").and_then(Value::as_i64);
        let seq = self.next_seq.or(orig).unwrap_or(0);
        self.next_seq = Some(seq + 1);
        if !modified && orig == Some(seq) && !raw.is_empty() {
            out.extend_from_slice(raw);
            return;
        }
        if let Value::Object(m) = &mut v {
            m.insert("sequence_number".into(), json!(seq));
        }
        emit_json(out, Some(name), None, &v);
    }

    pub fn end(&mut self, cx: &mut Cx, out: &mut BytesMut) {
        self.settle_part(false, cx, out);
        self.flush_where(cx, out, |_| true);
        if !self.calls.is_empty() {
            cx.note("stream ended before a tool call was complete; the call was not delivered");
            self.calls.clear();
        }
    }

    /// An `error` event (the API's mid-stream error form).
    pub fn error_event(&mut self, message: &str, out: &mut BytesMut) {
        let seq = self.next_seq.unwrap_or(0);
        self.next_seq = Some(seq + 1);
        let v = json!({"type": "error", "code": "asg_stream_withheld", "message": message,
                       "param": null, "sequence_number": seq});
        emit_json(out, Some("error"), None, &v);
    }
}

/// The elements of an array value, with their indexes (none otherwise).
fn items_mut(v: Option<&mut Value>) -> impl Iterator<Item = (usize, &mut Value)> {
    v.and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
        .enumerate()
}
