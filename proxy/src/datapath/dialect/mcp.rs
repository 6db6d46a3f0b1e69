//! MCP over streamable HTTP: JSON-RPC 2.0 messages (single or batched).
//!
//! A `tools/call` request is the tool call itself and is judged before it
//! reaches the tool server. Results flow back to the model, so their text
//! is untrusted (indirect injection) and `tools/list` descriptions are a
//! tool-poisoning surface.

use super::{collect_strings, push_content, ErrorKind};
use crate::decision::subject::{Subject, Surface, ToolCall};
use serde_json::{json, Value};

fn messages(body: &Value) -> Vec<&Value> {
    match body {
        Value::Array(batch) => batch.iter().collect(),
        other => vec![other],
    }
}

pub fn request_subject(body: &Value) -> Subject {
    let mut s = Subject::default();
    for msg in messages(body) {
        match msg["method"].as_str() {
            Some("tools/call") => {
                let params = &msg["params"];
                let mut tc = ToolCall::new(
                    params["name"].as_str().unwrap_or(""),
                    params["arguments"].clone(),
                );
                tc.id = Some(msg["id"].to_string());
                s.tool_calls.push(tc);
            }
            Some(_) => collect_strings(&msg["params"], Surface::User, &mut s, 0),
            None => {}
        }
    }
    s
}

pub fn response_subject(body: &Value) -> Subject {
    let mut s = Subject::default();
    for msg in messages(body) {
        let result = &msg["result"];
        push_content(&result["content"], Surface::ToolResult, &mut s);
        collect_strings(&result["structuredContent"], Surface::ToolResult, &mut s, 0);
        for item in result["content"].as_array().into_iter().flatten() {
            if let Some(t) = item["resource"]["text"].as_str() {
                s.push_text(Surface::ToolResult, t);
            }
        }
        for tool in result["tools"].as_array().into_iter().flatten() {
            for key in ["name", "title", "description"] {
                if let Some(t) = tool[key].as_str() {
                    s.push_text(Surface::ToolDefinition, t);
                }
            }
            collect_strings(&tool["inputSchema"], Surface::ToolDefinition, &mut s, 0);
        }
    }
    s
}

/// The JSON-RPC id of the (first) request, to answer it ourselves.
pub fn request_id(body: &Value) -> Value {
    messages(body)
        .first()
        .map(|m| m["id"].clone())
        .unwrap_or(Value::Null)
}

/// A blocked `tools/call` answered as a tool error the model can read.
pub fn refusal_result(id: &Value, message: &str) -> Value {
    json!({
        "jsonrpc": "2.0",
        "id": id,
        "result": { "content": [{ "type": "text", "text": message }], "isError": true }
    })
}

pub fn error_body(id: &Value, kind: ErrorKind, message: &str, request_id: &str) -> Value {
    let code = match kind {
        ErrorKind::InvalidRequest => -32600,
        ErrorKind::Blocked | ErrorKind::ApprovalRequired => -32001,
        _ => -32603,
    };
    json!({
        "jsonrpc": "2.0",
        "id": id,
        "error": { "code": code, "message": message, "data": { "request_id": request_id, "reason": kind.code() } }
    })
}

pub fn withhold_result(body: &mut Value, message: &str) {
    let id = request_id(body);
    *body = refusal_result(&id, message);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Value {
        let path = format!(
            "{}/../tests/fixtures/wire/mcp/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    #[test]
    fn tools_call_is_a_tool_call() {
        let s = request_subject(&fixture("06_tools_call_request.json"));
        assert_eq!(s.tool_calls.len(), 1);
        assert_eq!(s.tool_calls[0].name, "read_config");
    }

    #[test]
    fn results_are_tool_results() {
        let s = response_subject(&fixture("07_tools_call_response.json"));
        assert!(s.texts.iter().all(|t| t.surface == Surface::ToolResult));
        assert!(s
            .texts
            .iter()
            .any(|t| t.text.contains("AKIAIOSFODNN7EXAMPLE")));
        let s = response_subject(&fixture("05_tools_list_response.json"));
        assert!(s.texts.iter().any(|t| t.surface == Surface::ToolDefinition));
    }
}
