//! Google Gemini: `POST /v1beta/models/{model}:generateContent` and
//! `:streamGenerateContent` (SSE with `?alt=sse`, else one JSON array sent
//! chunk by chunk, pretty-printed like the real API). `:countTokens`
//! answers a token count.

use super::body::{Plan, JSON};
use super::json::J;
use super::scenario::{Knobs, Reply};
use super::{reply_plan, sse};
use crate::oj;
use bytes::Bytes;
use hyper::StatusCode;
use serde_json::Value;

pub fn respond(req: &Value, method: &str, query: &str, k: &Knobs, id: u64, model: &str) -> Plan {
    if method == "countTokens" {
        return Plan::json(StatusCode::OK, oj!({"totalTokens": 42}).to_json());
    }
    let g = Gen {
        id: format!("mock-resp-{id:06}"),
        model: model.to_string(),
    };
    let sse_mode = query.split('&').any(|kv| kv == "alt=sse");
    reply_plan(
        k,
        || last_user_text(req),
        |reply| match (method, sse_mode) {
            ("generateContent", _) => Plan::json(StatusCode::OK, g.whole(reply).to_json()),
            (_, true) => Plan::sse(
                g.chunks(reply, k.error_midstream)
                    .iter()
                    .map(sse::data)
                    .collect(),
            ),
            (_, false) => {
                let chunks = g.chunks(reply, k.error_midstream);
                let n = chunks.len();
                let mut plan = Plan::sse(
                    chunks
                        .iter()
                        .enumerate()
                        .map(|(i, c)| {
                            let lead = if i == 0 { "[" } else { ",\r\n" };
                            let tail = if i + 1 == n { "]" } else { "" };
                            Bytes::from(format!("{lead}{}{tail}", pretty(c)))
                        })
                        .collect(),
                );
                plan.content_type = Some(JSON);
                plan
            }
        },
    )
}

/// The real API pretty-prints array streams: line breaks inside elements.
fn pretty(c: &J) -> String {
    let v: Value = serde_json::from_str(&c.to_json()).expect("mock JSON");
    serde_json::to_string_pretty(&v).expect("serializable")
}

/// Text of the last user turn (its text parts, and function responses).
pub fn last_user_text(req: &Value) -> String {
    let contents = req["contents"].as_array().map(Vec::as_slice).unwrap_or(&[]);
    let Some(c) = contents.iter().rev().find(|c| c["role"] != "model") else {
        return String::new();
    };
    c["parts"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| match (&p["text"], &p["functionResponse"]) {
            (Value::String(t), _) => t.clone(),
            (_, Value::Object(r)) => r.get("response").map(|v| v.to_string()).unwrap_or_default(),
            _ => String::new(),
        })
        .collect()
}

/// An error body in the API's form.
pub fn error_body(status: u16, message: &str) -> String {
    let s = match status {
        400 => "INVALID_ARGUMENT",
        401 => "UNAUTHENTICATED",
        403 => "PERMISSION_DENIED",
        404 => "NOT_FOUND",
        429 => "RESOURCE_EXHAUSTED",
        503 => "UNAVAILABLE",
        _ => "INTERNAL",
    };
    oj!({"error": {"code": (status as u64), "message": message, "status": s}}).to_json()
}

struct Gen {
    id: String,
    model: String,
}

impl Gen {
    fn usage(out: usize, done: bool) -> J {
        if done {
            oj!({"promptTokenCount": 42, "candidatesTokenCount": out, "totalTokenCount": (42 + out)})
        } else {
            oj!({"promptTokenCount": 42, "totalTokenCount": 42})
        }
    }

    fn chunk(&self, parts: Vec<J>, finish: bool, out: usize) -> J {
        let mut cand = oj!({"content": {"parts": parts, "role": "model"}, "index": 0});
        if finish {
            cand.set("finishReason", "STOP");
        }
        oj!({"candidates": [cand], "usageMetadata": (Self::usage(out, finish)),
             "modelVersion": (self.model.as_str()), "responseId": (self.id.as_str())})
    }

    fn call_part(name: &str, args: &str) -> J {
        let args: J = serde_json::from_str::<Value>(args)
            .map(J::from)
            .unwrap_or_else(|_| J::from(Value::String(args.to_string())));
        oj!({"functionCall": {"name": name, "args": args}})
    }

    fn whole(&self, reply: &Reply) -> J {
        match reply {
            Reply::Text(_) => {
                let text = reply.text();
                self.chunk(
                    vec![oj!({"text": (text.as_str())})],
                    true,
                    text.len() / 4 + 1,
                )
            }
            Reply::Tool { name, args, .. } => {
                self.chunk(vec![Self::call_part(name, args)], true, args.len() / 4 + 1)
            }
        }
    }

    /// Text in one chunk per delta; a call whole in one chunk (as Gemini sends it).
    fn chunks(&self, reply: &Reply, error_midstream: bool) -> Vec<J> {
        let mut out = Vec::new();
        match reply {
            Reply::Text(deltas) => {
                let n = deltas.len();
                for (i, d) in deltas.iter().enumerate() {
                    if error_midstream && i == 2 {
                        let e: Value =
                            serde_json::from_str(&error_body(503, "The model is overloaded."))
                                .expect("error body");
                        out.push(J::from(e));
                        return out;
                    }
                    out.push(self.chunk(
                        vec![oj!({"text": d})],
                        i + 1 == n,
                        reply.text().len() / 4 + 1,
                    ));
                }
            }
            Reply::Tool { name, args, .. } => {
                out.push(self.chunk(vec![oj!({"text": "I'll run a command."})], false, 0));
                out.push(self.chunk(vec![Self::call_part(name, args)], true, args.len() / 4 + 1));
            }
        }
        out
    }
}
