//! OpenAI Responses: `POST /v1/responses`.

use super::body::Plan;
use super::json::J;
use super::scenario::{Knobs, Reply};
use super::{reply_plan, sse, unix_now};
use crate::oj;
use bytes::Bytes;
use hyper::StatusCode;
use serde_json::Value;

pub fn respond(req: &Value, k: &Knobs, id: u64) -> Plan {
    let r = Resp {
        id: format!("resp_mock{id:06}"),
        item_id: format!("{id:06}"),
        model: req["model"].as_str().unwrap_or("gpt-5").to_string(),
        created: unix_now(),
        instructions: req.get("instructions").cloned().unwrap_or(Value::Null),
        tools: req
            .get("tools")
            .cloned()
            .unwrap_or_else(|| Value::Array(vec![])),
        seed: id,
    };
    let stream = req["stream"] == true;
    reply_plan(
        k,
        || last_user_text(req),
        |reply| match stream {
            true => Plan::sse(r.stream(reply, k.error_midstream)),
            false => Plan::json(
                StatusCode::OK,
                r.response("completed", r.output(reply), Some(reply))
                    .to_json(),
            ),
        },
    )
}

/// `input` as a string, else the text of the last user message item (`input_text` parts or a string).
pub fn last_user_text(req: &Value) -> String {
    match &req["input"] {
        Value::String(s) => s.clone(),
        Value::Array(items) => items
            .iter()
            .rev()
            .find(|i| i["role"] == "user" && (i["type"].is_null() || i["type"] == "message"))
            .map(|i| match &i["content"] {
                Value::String(s) => s.clone(),
                Value::Array(parts) => parts.iter().filter_map(|p| p["text"].as_str()).collect(),
                _ => String::new(),
            })
            .unwrap_or_default(),
        _ => String::new(),
    }
}

struct Resp {
    id: String,
    item_id: String,
    model: String,
    created: u64,
    instructions: Value,
    tools: Value,
    seed: u64,
}

fn usage(out_len: usize) -> J {
    let out = (out_len / 4).max(1);
    oj!({
        "input_tokens": 42,
        "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
        "output_tokens": out,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": (42 + out)
    })
}

/// Sequence-numbered `event:`/`data:` frames.
struct Seq {
    n: u64,
    events: Vec<Bytes>,
}

impl Seq {
    fn push(&mut self, mut data: J) {
        let kind = match &data {
            J::Obj(f) => match f.first() {
                Some((_, J::Str(t))) => t.clone(),
                _ => unreachable!("event objects start with their type"),
            },
            _ => unreachable!("events are objects"),
        };
        data.set("sequence_number", self.n);
        self.n += 1;
        self.events.push(sse::named(&kind, &data));
    }
}

impl Resp {
    fn msg_id(&self) -> String {
        format!("msg_mock{}", self.item_id)
    }
    fn fc_id(&self) -> String {
        format!("fc_mock{}", self.item_id)
    }

    fn part(text: &str) -> J {
        oj!({"type": "output_text", "annotations": [], "logprobs": [], "text": text})
    }

    fn item(&self, reply: &Reply, done: bool) -> J {
        let status = if done { "completed" } else { "in_progress" };
        match reply {
            Reply::Text(_) => {
                let content = if done {
                    vec![Self::part(&reply.text())]
                } else {
                    vec![]
                };
                oj!({"id": (self.msg_id()), "type": "message", "status": status, "content": content,
                     "role": "assistant"})
            }
            Reply::Tool {
                name,
                args,
                custom: true,
                ..
            } => {
                let input = if done { args.as_str() } else { "" };
                oj!({"id": (self.fc_id()), "type": "custom_tool_call", "status": status, "input": input,
                     "call_id": "call_mock_1", "name": name})
            }
            Reply::Tool { name, args, .. } => {
                let args = if done { args.as_str() } else { "" };
                oj!({"id": (self.fc_id()), "type": "function_call", "status": status, "arguments": args,
                     "call_id": "call_mock_1", "name": name})
            }
        }
    }

    fn output(&self, reply: &Reply) -> Vec<J> {
        vec![self.item(reply, true)]
    }

    fn response(&self, status: &str, output: Vec<J>, done: Option<&Reply>) -> J {
        let usage = done.map(|r| match r {
            Reply::Text(_) => usage(r.text().len()),
            Reply::Tool { args, .. } => usage(args.len()),
        });
        let mut r = oj!({
            "id": (self.id.as_str()), "object": "response", "created_at": (self.created), "status": status,
            "background": false, "error": null, "incomplete_details": null,
            "instructions": (&self.instructions), "max_output_tokens": null, "max_tool_calls": null,
            "model": (self.model.as_str()), "output": output, "parallel_tool_calls": true,
            "previous_response_id": null, "reasoning": {"effort": null, "summary": null},
            "service_tier": "default", "store": true, "temperature": 1.0,
            "text": {"format": {"type": "text"}, "verbosity": "medium"},
            "tool_choice": "auto", "tools": (&self.tools), "top_p": 1.0, "truncation": "disabled",
            "usage": usage, "user": null, "metadata": {}
        });
        if done.is_some() {
            r.set("completed_at", self.created);
        }
        r
    }

    fn stream(&self, reply: &Reply, error_midstream: bool) -> Vec<Bytes> {
        let mut s = Seq {
            n: 0,
            events: Vec::new(),
        };
        s.push(oj!({"type": "response.created", "response": (self.response("in_progress", vec![], None))}));
        s.push(oj!({"type": "response.in_progress", "response": (self.response("in_progress", vec![], None))}));
        s.push(oj!({"type": "response.output_item.added", "output_index": 0, "item": (self.item(reply, false))}));
        let max_deltas = if error_midstream { 2 } else { usize::MAX };
        match reply {
            Reply::Text(deltas) => {
                let id = self.msg_id();
                s.push(oj!({"type": "response.content_part.added", "item_id": (id.as_str()), "output_index": 0,
                            "content_index": 0, "part": (Self::part(""))}));
                for (i, d) in deltas.iter().take(max_deltas).enumerate() {
                    s.push(oj!({"type": "response.output_text.delta", "item_id": (id.as_str()), "output_index": 0,
                                "content_index": 0, "delta": d, "logprobs": [],
                                "obfuscation": (sse::obfuscation(self.seed * 1000 + i as u64))}));
                }
                if error_midstream {
                    return self.fail(s);
                }
                let text = reply.text();
                s.push(oj!({"type": "response.output_text.done", "item_id": (id.as_str()), "output_index": 0,
                            "content_index": 0, "text": (text.as_str()), "logprobs": []}));
                s.push(oj!({"type": "response.content_part.done", "item_id": (id.as_str()), "output_index": 0,
                            "content_index": 0, "part": (Self::part(&text))}));
            }
            Reply::Tool {
                args,
                fragments,
                custom,
                ..
            } => {
                let id = self.fc_id();
                let (delta, done, key) = if *custom {
                    (
                        "response.custom_tool_call_input.delta",
                        "response.custom_tool_call_input.done",
                        "input",
                    )
                } else {
                    (
                        "response.function_call_arguments.delta",
                        "response.function_call_arguments.done",
                        "arguments",
                    )
                };
                for (i, f) in fragments.iter().take(max_deltas).enumerate() {
                    s.push(oj!({"type": delta, "item_id": (id.as_str()),
                                "output_index": 0, "delta": f,
                                "obfuscation": (sse::obfuscation(self.seed * 1000 + i as u64))}));
                }
                if error_midstream {
                    return self.fail(s);
                }
                let mut fin = oj!({"type": done, "item_id": (id.as_str()), "output_index": 0});
                fin.set(key, args.as_str());
                s.push(fin);
            }
        }
        s.push(oj!({"type": "response.output_item.done", "output_index": 0, "item": (self.item(reply, true))}));
        s.push(oj!({"type": "response.completed",
                    "response": (self.response("completed", self.output(reply), Some(reply)))}));
        s.events
    }

    fn fail(&self, mut s: Seq) -> Vec<Bytes> {
        let msg = "The server had an error.";
        s.push(oj!({"type": "error", "code": "server_error", "message": msg, "param": null}));
        let mut failed = self.response("failed", vec![], None);
        failed.set("error", oj!({"code": "server_error", "message": msg}));
        s.push(oj!({"type": "response.failed", "response": failed}));
        s.events
    }
}
