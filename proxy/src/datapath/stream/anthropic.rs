//! Anthropic Messages streams: `event: <type>` lines are required (the
//! Python SDK ignores frames without one), content blocks are streamed one
//! after another, keyed by `index`.
//!
//! Text (`text_delta`) and thinking (`thinking_delta`) blocks are text
//! channels; what they still hold goes out as one more delta just before
//! `content_block_stop`. A `tool_use` block is withheld from its start to
//! its stop, judged, and re-emitted as start + one `input_json_delta` with
//! the whole (possibly masked) input + stop, or replaced by a text block
//! carrying the refusal at the same index. `stop_reason: "tool_use"` becomes
//! `end_turn` when no tool call is left. There are no repeated full copies.
//!
//! SDKs and agents join adjacent text blocks, so a secret cut across two
//! of them must be caught: when a text block stops, what its channel still
//! holds (a tail that could be the start of a secret) is not flushed at
//! once. The stop is held until the next event: if another text block
//! starts, the same channel carries on into it (the tail is released at
//! the start of the next block, masked with what follows); otherwise the
//! tail is flushed into the block that stopped, as before.

use super::calls::{ArgsForm, Verdict};
use super::holdback::TextChannel;
use super::sse::RawEvent;
use super::{emit_json, Cx};
use crate::datapath::dialect::Dialect;
use bytes::BytesMut;
use serde_json::{json, Value};

enum Block {
    /// A text or thinking block; `field` is the delta's text field.
    Text {
        field: &'static str,
        delta_type: &'static str,
        text: TextChannel,
    },
    /// A tool_use block being withheld: its start event and input so far.
    Tool { start: Value, json: String },
}

/// A text block that stopped while its channel still held text.
struct HeldStop {
    index: u64,
    text: TextChannel,
    raw: bytes::Bytes,
}

#[derive(Default)]
pub struct AnthropicStream {
    blocks: Vec<(u64, Block)>,
    tools_allowed: usize,
    tools_refused: usize,
    held_stop: Option<HeldStop>,
    /// The channel of the text block just stopped, for the next one.
    carry: Option<TextChannel>,
}

impl AnthropicStream {
    fn block(&mut self, index: u64) -> Option<&mut Block> {
        self.blocks
            .iter_mut()
            .find(|(i, _)| *i == index)
            .map(|(_, b)| b)
    }

    pub fn event(&mut self, ev: RawEvent, cx: &mut Cx, out: &mut BytesMut) {
        let Some((mut v, ty, name)) = super::messages::typed_event(&ev, cx, out) else {
            return;
        };
        let index = v["index"].as_u64().unwrap_or(0);
        if ty != "ping" {
            let continues = ty == "content_block_start" && v["content_block"]["type"] == "text";
            self.settle_stop(continues, cx, out);
        }
        match ty.as_str() {
            "content_block_start" => {
                let kind = v["content_block"]["type"].as_str().unwrap_or_default();
                match kind {
                    "tool_use" => {
                        self.blocks.push((
                            index,
                            Block::Tool {
                                start: v,
                                json: String::new(),
                            },
                        ));
                    }
                    "text" | "thinking" => {
                        let (field, delta_type) = if kind == "text" {
                            ("text", "text_delta")
                        } else {
                            ("thinking", "thinking_delta")
                        };
                        let mut text = match kind {
                            "text" => self.carry.take().unwrap_or_default(),
                            _ => TextChannel::new(),
                        };
                        let mut modified = false;
                        if let Some(Value::String(s)) = v["content_block"].get_mut(field) {
                            if !s.is_empty() {
                                let released = cx.push_text(&mut text, s);
                                modified = released != *s;
                                *s = released;
                            }
                        }
                        self.blocks.push((
                            index,
                            Block::Text {
                                field,
                                delta_type,
                                text,
                            },
                        ));
                        send(out, &name, &v, &ev.raw, modified);
                    }
                    _ => send_redacted(out, &name, v, &ev.raw, cx),
                }
            }
            "content_block_delta" => match self.block(index) {
                Some(Block::Tool { json, .. }) => {
                    json.push_str(v["delta"]["partial_json"].as_str().unwrap_or_default());
                }
                Some(Block::Text {
                    field,
                    delta_type,
                    text,
                }) if v["delta"]["type"] == *delta_type => {
                    let field = *field;
                    let mut modified = false;
                    if let Some(Value::String(s)) = v["delta"].get_mut(field) {
                        let released = cx.push_text(text, s);
                        modified = released != *s;
                        *s = released;
                    }
                    send(out, &name, &v, &ev.raw, modified);
                }
                // signature_delta, citations_delta, blocks we do not track.
                _ => send_redacted(out, &name, v, &ev.raw, cx),
            },
            "content_block_stop" => {
                let pos = self.blocks.iter().position(|(i, _)| *i == index);
                match pos.map(|p| self.blocks.remove(p).1) {
                    Some(Block::Tool { start, json }) => {
                        self.close_tool(index, start, &json, cx, out);
                        if !cx.terminated {
                            out.extend_from_slice(&ev.raw);
                        }
                    }
                    Some(Block::Text {
                        field: "text",
                        text,
                        ..
                    }) if text.held() > 0 => {
                        // Held until the next event says whether text goes on.
                        self.held_stop = Some(HeldStop {
                            index,
                            text,
                            raw: ev.raw.clone(),
                        });
                    }
                    Some(Block::Text {
                        field,
                        delta_type,
                        mut text,
                    }) => {
                        flush_block(index, field, delta_type, &mut text, cx, out);
                        out.extend_from_slice(&ev.raw);
                    }
                    None => send_redacted(out, &name, v, &ev.raw, cx),
                }
            }
            "message_delta" => {
                self.flush_all(cx, out, true);
                let fix = v["delta"]["stop_reason"] == "tool_use"
                    && self.tools_allowed == 0
                    && self.tools_refused > 0;
                if fix {
                    v["delta"]["stop_reason"] = json!("end_turn");
                }
                let modified = cx.redact_value(&mut v) || fix;
                send(out, &name, &v, &ev.raw, modified);
            }
            "error" => {
                self.flush_all(cx, out, false);
                send_redacted(out, &name, v, &ev.raw, cx);
            }
            "message_stop" => {
                self.flush_all(cx, out, true);
                out.extend_from_slice(&ev.raw);
            }
            "ping" => out.extend_from_slice(&ev.raw),
            _ => send_redacted(out, &name, v, &ev.raw, cx),
        }
    }

    fn close_tool(
        &mut self,
        index: u64,
        mut start: Value,
        json: &str,
        cx: &mut Cx,
        out: &mut BytesMut,
    ) {
        let block = &start["content_block"];
        let tool = block["name"].as_str().unwrap_or_default().to_string();
        let id = block["id"].as_str().map(str::to_string);
        match cx.judge(&tool, id.as_deref(), json, ArgsForm::JsonObject) {
            Verdict::Allow { masked } => {
                self.tools_allowed += 1;
                emit_json(out, Some("content_block_start"), None, &start);
                let input = masked.unwrap_or_else(|| json.to_string());
                if !input.is_empty() {
                    let d = json!({"type": "content_block_delta", "index": index,
                                   "delta": {"type": "input_json_delta", "partial_json": input}});
                    emit_json(out, Some("content_block_delta"), None, &d);
                }
            }
            Verdict::Fail { message } => {
                let e = cx.blocked_error(Dialect::AnthropicMessages, &message);
                emit_json(out, Some("error"), None, &e);
            }
            Verdict::Refuse { message } => {
                self.tools_refused += 1;
                start["content_block"] = json!({"type": "text", "text": ""});
                emit_json(out, Some("content_block_start"), None, &start);
                let d = json!({"type": "content_block_delta", "index": index,
                               "delta": {"type": "text_delta", "text": message}});
                emit_json(out, Some("content_block_delta"), None, &d);
            }
        }
    }

    /// Release a held text-block stop: when the next block is text too
    /// (`continues`), its channel carries on into that block; otherwise
    /// what it holds is flushed into the block that stopped.
    fn settle_stop(&mut self, continues: bool, cx: &mut Cx, out: &mut BytesMut) {
        let Some(HeldStop {
            index,
            mut text,
            raw,
        }) = self.held_stop.take()
        else {
            return;
        };
        if continues {
            self.carry = Some(text);
        } else {
            flush_block(index, "text", "text_delta", &mut text, cx, out);
        }
        out.extend_from_slice(&raw);
    }

    /// Close every open block (a stream that ends or fails without
    /// `content_block_stop`). Unfinished tool calls are only judged when
    /// `judge_tools` (the message ended normally).
    fn flush_all(&mut self, cx: &mut Cx, out: &mut BytesMut, judge_tools: bool) {
        self.settle_stop(false, cx, out);
        for (index, block) in std::mem::take(&mut self.blocks) {
            match block {
                Block::Text {
                    field,
                    delta_type,
                    mut text,
                } => flush_block(index, field, delta_type, &mut text, cx, out),
                Block::Tool { start, json } if judge_tools => {
                    self.close_tool(index, start, &json, cx, out);
                    if cx.terminated {
                        return;
                    }
                    let stop = json!({"type": "content_block_stop", "index": index});
                    emit_json(out, Some("content_block_stop"), None, &stop);
                }
                Block::Tool { .. } => cx.note(
                    "stream ended with an error before a tool call was complete; the call was not delivered",
                ),
            }
        }
    }

    pub fn end(&mut self, cx: &mut Cx, out: &mut BytesMut) {
        self.flush_all(cx, out, false);
    }
}

fn flush_block(
    index: u64,
    field: &str,
    delta_type: &str,
    text: &mut TextChannel,
    cx: &mut Cx,
    out: &mut BytesMut,
) {
    let rest = cx.flush_text(text);
    if rest.is_empty() {
        return;
    }
    let mut delta = json!({ "type": delta_type });
    delta[field] = Value::String(rest);
    let d = json!({"type": "content_block_delta", "index": index, "delta": delta});
    emit_json(out, Some("content_block_delta"), None, &d);
}

fn send(out: &mut BytesMut, name: &str, v: &Value, raw: &[u8], modified: bool) {
    if modified {
        emit_json(out, Some(name), None, v);
    } else {
        out.extend_from_slice(raw);
    }
}

fn send_redacted(out: &mut BytesMut, name: &str, mut v: Value, raw: &[u8], cx: &mut Cx) {
    let modified = cx.redact_value(&mut v);
    send(out, name, &v, raw, modified);
}

/// An `error` event in the API's format.
pub fn error_event(message: &str, out: &mut BytesMut) {
    let v = json!({"type": "error", "error": {"type": "api_error", "message": message}});
    emit_json(out, Some("error"), None, &v);
}
