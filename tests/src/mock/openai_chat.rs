//! OpenAI Chat Completions: `POST /v1/chat/completions`.

use super::body::Plan;
use super::json::J;
use super::scenario::{Knobs, Reply};
use super::{reply_plan, sse, unix_now};
use crate::oj;
use hyper::StatusCode;
use serde_json::Value;

pub fn respond(req: &Value, k: &Knobs, id: u64) -> Plan {
    let opts = &req["stream_options"];
    let chat = Chat {
        id: format!("chatcmpl-mock{id:06}"),
        model: req["model"].as_str().unwrap_or("gpt-4.1").to_string(),
        created: unix_now(),
        include_usage: opts["include_usage"] == true,
        obfuscate: opts["include_obfuscation"] != false,
        seed: id,
    };
    let stream = req["stream"] == true;
    reply_plan(
        k,
        || last_user_text(req),
        |reply| match stream {
            true => Plan::sse(chat.stream(reply, k.error_midstream)),
            false => Plan::json(StatusCode::OK, chat.completion(reply).to_json()),
        },
    )
}

/// Text of the last `user` message (string content or the concatenated text parts).
pub fn last_user_text(req: &Value) -> String {
    let messages = req["messages"].as_array().map(Vec::as_slice).unwrap_or(&[]);
    messages
        .iter()
        .rev()
        .find(|m| m["role"] == "user")
        .map(|m| content_text(&m["content"]))
        .unwrap_or_default()
}

fn content_text(content: &Value) -> String {
    match content {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts.iter().filter_map(|p| p["text"].as_str()).collect(),
        _ => String::new(),
    }
}

/// Error body, e.g. for `x-mock-status`.
pub fn error_body(status: u16, message: &str) -> String {
    openai_error(status, message).to_json()
}

pub fn openai_error(status: u16, message: &str) -> J {
    let (kind, code) = match status {
        401 => ("invalid_request_error", Some("invalid_api_key")),
        403 => ("permission_error", None),
        404 => ("invalid_request_error", Some("model_not_found")),
        429 => ("requests", Some("rate_limit_exceeded")),
        500..=599 => ("server_error", None),
        _ => ("invalid_request_error", None),
    };
    oj!({"error": {"message": message, "type": kind, "param": null, "code": code}})
}

fn usage(completion_text_len: usize) -> J {
    let completion = (completion_text_len / 4).max(1);
    oj!({
        "prompt_tokens": 42,
        "completion_tokens": completion,
        "total_tokens": (42 + completion),
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 0, "audio_tokens": 0,
            "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0
        }
    })
}

struct Chat {
    id: String,
    model: String,
    created: u64,
    include_usage: bool,
    obfuscate: bool,
    seed: u64,
}

const CALL_ID: &str = "call_mock_1";

impl Chat {
    fn completion(&self, reply: &Reply) -> J {
        let (message, finish, out_len) = match reply {
            Reply::Text(_) => {
                let text = reply.text();
                let len = text.len();
                let m =
                    oj!({"role": "assistant", "content": text, "refusal": null, "annotations": []});
                (m, "stop", len)
            }
            Reply::Tool { name, args, .. } => {
                let call = oj!({"id": CALL_ID, "type": "function", "function": {"name": name, "arguments": args}});
                let m = oj!({
                    "role": "assistant", "content": null, "refusal": null, "annotations": [],
                    "tool_calls": [call]
                });
                (m, "tool_calls", args.len())
            }
        };
        oj!({
            "id": (self.id.as_str()), "object": "chat.completion", "created": (self.created),
            "model": (self.model.as_str()),
            "choices": [{"index": 0, "message": message, "logprobs": null, "finish_reason": finish}],
            "usage": (usage(out_len)),
            "service_tier": "default", "system_fingerprint": "fp_mock"
        })
    }

    fn chunk(&self, n: &mut u64, delta: J, finish: Option<&str>) -> bytes::Bytes {
        let choice = oj!({"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish});
        let mut c = self.base(vec![choice]);
        if self.include_usage {
            c.set("usage", J::Null);
        }
        self.obfuscate_and_frame(c, n)
    }

    fn base(&self, choices: Vec<J>) -> J {
        oj!({
            "id": (self.id.as_str()), "object": "chat.completion.chunk", "created": (self.created),
            "model": (self.model.as_str()), "service_tier": "default", "system_fingerprint": "fp_mock",
            "choices": choices
        })
    }

    fn obfuscate_and_frame(&self, mut c: J, n: &mut u64) -> bytes::Bytes {
        *n += 1;
        if self.obfuscate {
            c.set("obfuscation", sse::obfuscation(self.seed * 1000 + *n));
        }
        sse::data(&c)
    }

    fn stream(&self, reply: &Reply, error_midstream: bool) -> Vec<bytes::Bytes> {
        let mut n = 0;
        let mut events = Vec::new();
        let (body, finish, out_len): (Vec<J>, &str, usize) = match reply {
            Reply::Text(deltas) => {
                events.push(self.chunk(
                    &mut n,
                    oj!({"role": "assistant", "content": "", "refusal": null}),
                    None,
                ));
                let body = deltas.iter().map(|d| oj!({"content": d})).collect();
                (body, "stop", reply.text().len())
            }
            Reply::Tool {
                name,
                args,
                fragments,
                ..
            } => {
                let first = oj!({"index": 0, "id": CALL_ID, "type": "function",
                                 "function": {"name": name, "arguments": ""}});
                events.push(self.chunk(
                    &mut n,
                    oj!({"role": "assistant", "content": null, "refusal": null, "tool_calls": [first]}),
                    None,
                ));
                let body = fragments
                    .iter()
                    .map(|f| oj!({"tool_calls": [{"index": 0, "function": {"arguments": f}}]}))
                    .collect();
                (body, "tool_calls", args.len())
            }
        };
        let body_len = body.len();
        for (i, delta) in body.into_iter().enumerate() {
            if error_midstream && i == 2.min(body_len) {
                break;
            }
            events.push(self.chunk(&mut n, delta, None));
        }
        if error_midstream {
            let err = openai_error(
                500,
                "The server had an error while processing your request.",
            );
            events.push(sse::data(&err));
            return events;
        }
        events.push(self.chunk(&mut n, oj!({}), Some(finish)));
        if self.include_usage {
            let c = self.base(vec![]).with("usage", usage(out_len));
            events.push(self.obfuscate_and_frame(c, &mut n));
        }
        events.push(sse::data_raw("[DONE]"));
        events
    }
}
