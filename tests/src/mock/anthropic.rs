//! Anthropic Messages: `POST /v1/messages` (query strings such as `?beta=true` are ignored).

use super::body::Plan;
use super::json::J;
use super::scenario::{Knobs, Reply, Scenario};
use super::{reply_plan, sse};
use crate::oj;
use bytes::Bytes;
use hyper::StatusCode;
use serde_json::Value;

/// Text the model says before a tool call (a separate text block at index 0, as Claude does).
pub const TOOL_PREAMBLE: &str = "I'll use the tool.";

pub fn respond(req: &Value, k: &Knobs, id: u64) -> Result<Plan, String> {
    if let Scenario::ToolCustom = k.scenario {
        serde_json::from_str::<serde_json::Map<String, Value>>(&k.tool_args).map_err(|e| {
            format!("x-mock-tool-args must be a JSON object for Anthropic tool_use input: {e}")
        })?;
    }
    let m = Msg {
        id: format!("msg_mock{id:06}"),
        tool_id: format!("toolu_mock{id:06}"),
        model: req["model"]
            .as_str()
            .unwrap_or("claude-sonnet-4-5")
            .to_string(),
    };
    let stream = req["stream"] == true;
    Ok(reply_plan(
        k,
        || last_user_text(req),
        |reply| match stream {
            true => Plan::sse(m.stream(reply, k.error_midstream)),
            false => Plan::json(StatusCode::OK, m.message(reply).to_json()),
        },
    ))
}

/// Text of the last `user` message: its string content, or its `text` blocks and `tool_result`
/// contents (so tool results sent back to the model can be echoed too).
pub fn last_user_text(req: &Value) -> String {
    let messages = req["messages"].as_array().map(Vec::as_slice).unwrap_or(&[]);
    let Some(m) = messages.iter().rev().find(|m| m["role"] == "user") else {
        return String::new();
    };
    match &m["content"] {
        Value::String(s) => s.clone(),
        Value::Array(blocks) => blocks
            .iter()
            .map(|b| match b["type"].as_str() {
                Some("text") => b["text"].as_str().unwrap_or_default().to_string(),
                Some("tool_result") => match &b["content"] {
                    Value::String(s) => s.clone(),
                    Value::Array(inner) => {
                        inner.iter().filter_map(|c| c["text"].as_str()).collect()
                    }
                    _ => String::new(),
                },
                _ => String::new(),
            })
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    }
}

pub fn error_body(status: u16, message: &str) -> String {
    let kind = match status {
        400 => "invalid_request_error",
        401 => "authentication_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        529 => "overloaded_error",
        500..=599 => "api_error",
        _ => "invalid_request_error",
    };
    oj!({"type": "error", "error": {"type": kind, "message": message}, "request_id": "req_mock"})
        .to_json()
}

struct Msg {
    id: String,
    tool_id: String,
    model: String,
}

fn usage(output_tokens: usize) -> J {
    oj!({"input_tokens": 42, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0,
         "output_tokens": output_tokens, "service_tier": "standard"})
}

impl Msg {
    fn stop_reason(reply: &Reply) -> &'static str {
        match reply {
            Reply::Text(_) => "end_turn",
            Reply::Tool { .. } => "tool_use",
        }
    }

    fn message(&self, reply: &Reply) -> J {
        let (content, out_len) = match reply {
            Reply::Text(_) => {
                let text = reply.text();
                let len = text.len();
                (vec![oj!({"type": "text", "text": text})], len)
            }
            Reply::Tool { name, args, .. } => {
                let input: Value = serde_json::from_str(args).unwrap_or(Value::Null);
                let tool = oj!({"type": "tool_use", "id": (self.tool_id.as_str()), "name": name, "input": input});
                (
                    vec![oj!({"type": "text", "text": TOOL_PREAMBLE}), tool],
                    args.len(),
                )
            }
        };
        oj!({
            "id": (self.id.as_str()), "type": "message", "role": "assistant", "model": (self.model.as_str()),
            "content": content, "stop_reason": (Self::stop_reason(reply)), "stop_sequence": null,
            "usage": (usage((out_len / 4).max(1)))
        })
    }

    fn stream(&self, reply: &Reply, error_midstream: bool) -> Vec<Bytes> {
        let mut ev = Vec::new();
        let mut push = |data: J| {
            let kind = match &data {
                J::Obj(f) => match f.first() {
                    Some((_, J::Str(t))) => t.clone(),
                    _ => unreachable!("event objects start with their type"),
                },
                _ => unreachable!("events are objects"),
            };
            ev.push(sse::named(&kind, &data));
        };
        let start = oj!({
            "id": (self.id.as_str()), "type": "message", "role": "assistant", "model": (self.model.as_str()),
            "content": [], "stop_reason": null, "stop_sequence": null, "usage": (usage(1))
        });
        push(oj!({"type": "message_start", "message": start}));
        // Content blocks: (block start, deltas).
        let mut blocks: Vec<(J, Vec<J>)> = Vec::new();
        let text_block = |deltas: Vec<J>| (oj!({"type": "text", "text": ""}), deltas);
        let text_delta = |t: &str| oj!({"type": "text_delta", "text": t});
        let out_len = match reply {
            Reply::Text(deltas) => {
                blocks.push(text_block(deltas.iter().map(|d| text_delta(d)).collect()));
                reply.text().len()
            }
            Reply::Tool {
                name,
                args,
                fragments,
                ..
            } => {
                blocks.push(text_block(vec![text_delta(TOOL_PREAMBLE)]));
                let start = oj!({"type": "tool_use", "id": (self.tool_id.as_str()), "name": name, "input": {}});
                let deltas = std::iter::once("")
                    .chain(fragments.iter().map(String::as_str))
                    .map(|f| oj!({"type": "input_json_delta", "partial_json": f}))
                    .collect();
                blocks.push((start, deltas));
                args.len()
            }
        };
        let mut sent = 0;
        for (index, (block, deltas)) in blocks.into_iter().enumerate() {
            push(oj!({"type": "content_block_start", "index": index, "content_block": block}));
            if index == 0 {
                push(oj!({"type": "ping"}));
            }
            for delta in deltas {
                if error_midstream && sent == 2 {
                    push(
                        oj!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}),
                    );
                    return ev;
                }
                push(oj!({"type": "content_block_delta", "index": index, "delta": delta}));
                sent += 1;
            }
            push(oj!({"type": "content_block_stop", "index": index}));
        }
        if error_midstream {
            push(
                oj!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}),
            );
            return ev;
        }
        push(oj!({"type": "message_delta",
                  "delta": {"stop_reason": (Self::stop_reason(reply)), "stop_sequence": null},
                  "usage": {"output_tokens": ((out_len / 4).max(1))}}));
        push(oj!({"type": "message_stop"}));
        ev
    }
}
