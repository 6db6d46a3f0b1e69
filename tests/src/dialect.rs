//! The three LLM API dialects: request builders and response readers, so one test can run against all.

use crate::sse::{self, Assembled, ToolCall};
use serde_json::{json, Value};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    Chat,
    Responses,
    Anthropic,
}

impl Dialect {
    pub const ALL: [Dialect; 3] = [Dialect::Chat, Dialect::Responses, Dialect::Anthropic];

    pub fn path(self) -> &'static str {
        match self {
            Dialect::Chat => "/v1/chat/completions",
            Dialect::Responses => "/v1/responses",
            Dialect::Anthropic => "/v1/messages",
        }
    }

    /// A minimal request with one user message and one `shell` tool definition.
    pub fn request(self, user_text: &str, stream: bool) -> Value {
        let schema = json!({"type": "object", "properties": {"command": {"type": "string"}}, "required": ["command"]});
        let mut req = match self {
            Dialect::Chat => json!({
                "model": "gpt-4.1",
                "messages": [{"role": "user", "content": user_text}],
                "tools": [{"type": "function", "function": {"name": "shell", "description": "Run a shell command", "parameters": schema}}],
                "stream": stream,
                "stream_options": if stream { json!({"include_usage": true}) } else { Value::Null },
            }),
            Dialect::Responses => json!({
                "model": "gpt-5",
                "input": [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": user_text}]}],
                "tools": [{"type": "function", "name": "shell", "description": "Run a shell command", "parameters": schema, "strict": false}],
                "stream": stream,
            }),
            Dialect::Anthropic => json!({
                "model": "claude-sonnet-4-5",
                "max_tokens": 1024,
                "messages": [{"role": "user", "content": user_text}],
                "tools": [{"name": "shell", "description": "Run a shell command", "input_schema": schema}],
                "stream": stream,
            }),
        };
        if let Some(fields) = req.as_object_mut() {
            fields.retain(|_, v| !v.is_null());
        }
        req
    }

    /// Reassemble a streamed body.
    pub fn assemble(self, body: &str) -> Assembled {
        match self {
            Dialect::Chat => sse::chat(body),
            Dialect::Responses => sse::responses(body),
            Dialect::Anthropic => sse::anthropic(body),
        }
    }

    /// Assistant text of a non-streaming response.
    pub fn text(self, resp: &Value) -> String {
        let s = |v: &Value| v.as_str().unwrap_or_default().to_string();
        match self {
            Dialect::Chat => s(&resp["choices"][0]["message"]["content"]),
            Dialect::Responses => items(&resp["output"])
                .iter()
                .filter(|i| i["type"] == "message")
                .flat_map(|i| items(&i["content"]))
                .map(|p| s(&p["text"]))
                .collect(),
            Dialect::Anthropic => items(&resp["content"])
                .iter()
                .filter(|b| b["type"] == "text")
                .map(|b| s(&b["text"]))
                .collect(),
        }
    }

    /// Tool calls of a non-streaming response (arguments as JSON text; Anthropic `input` serialised).
    pub fn tool_calls(self, resp: &Value) -> Vec<ToolCall> {
        let s = |v: &Value| v.as_str().unwrap_or_default().to_string();
        match self {
            Dialect::Chat => items(&resp["choices"][0]["message"]["tool_calls"])
                .iter()
                .map(|c| ToolCall {
                    id: s(&c["id"]),
                    name: s(&c["function"]["name"]),
                    arguments: s(&c["function"]["arguments"]),
                })
                .collect(),
            Dialect::Responses => items(&resp["output"])
                .iter()
                .filter(|i| i["type"] == "function_call")
                .map(|i| ToolCall {
                    id: s(&i["call_id"]),
                    name: s(&i["name"]),
                    arguments: s(&i["arguments"]),
                })
                .collect(),
            Dialect::Anthropic => items(&resp["content"])
                .iter()
                .filter(|b| b["type"] == "tool_use")
                .map(|b| ToolCall {
                    id: s(&b["id"]),
                    name: s(&b["name"]),
                    arguments: b["input"].to_string(),
                })
                .collect(),
        }
    }
}

fn items(v: &Value) -> Vec<Value> {
    v.as_array().cloned().unwrap_or_default()
}
