//! MCP over Streamable HTTP: JSON-RPC on `POST /mcp`, answered as JSON or as SSE (`x-mock-mcp-mode`).

use super::body::Plan;
use super::json::J;
use super::scenario::{Knobs, Scenario, FAKE_AWS_KEY};
use super::sse;
use crate::oj;
use hyper::StatusCode;
use serde_json::{json, Value};

pub const PROTOCOL_VERSIONS: [&str; 4] = ["2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25"];

/// The default `tools/list` result (same tools as `fixtures/wire/mcp/05_tools_list_response.json`).
pub fn default_tools() -> Value {
    json!([
        {
            "name": "read_config",
            "title": "Read config",
            "description": "Reads the project configuration file.",
            "inputSchema": {"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]}
        },
        {
            "name": "shell",
            "description": "Runs a shell command.",
            "inputSchema": {"type": "object", "properties": {"command": {"type": "string"}}, "required": ["command"]}
        }
    ])
}

pub fn respond(body: &[u8], k: &Knobs, id: u64) -> Plan {
    let msg: Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(e) => {
            let err = rpc_error(&Value::Null, -32700, &format!("Parse error: {e}"));
            return Plan::json(StatusCode::BAD_REQUEST, err.to_json());
        }
    };
    let session = format!("mcp-session-mock{id:06}");
    match &msg {
        Value::Array(batch) => {
            let replies: Vec<J> = batch.iter().filter_map(|m| answer(m, k)).collect();
            if replies.is_empty() {
                Plan::empty(StatusCode::ACCEPTED)
            } else {
                Plan::json(StatusCode::OK, J::Arr(replies).to_json())
            }
        }
        m => {
            let Some(reply) = answer(m, k) else {
                return Plan::empty(StatusCode::ACCEPTED);
            };
            let plan = if k.mcp_sse {
                let mut events = Vec::new();
                let token = &m["params"]["_meta"]["progressToken"];
                if m["method"] == "tools/call" && !token.is_null() {
                    let progress = oj!({"jsonrpc": "2.0", "method": "notifications/progress",
                                        "params": {"progressToken": token, "progress": 1, "total": 2}});
                    events.push(sse::named("message", &progress));
                }
                let last = format!(
                    "event: message\nid: {id:08x}\ndata: {}\n\n",
                    reply.to_json()
                );
                events.push(last.into());
                Plan::sse(events)
            } else {
                Plan::json(StatusCode::OK, reply.to_json())
            };
            if m["method"] == "initialize" {
                plan.header("mcp-session-id", &session)
            } else {
                plan
            }
        }
    }
}

fn rpc_error(id: &Value, code: i64, message: &str) -> J {
    oj!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}})
}

fn rpc_result(id: &Value, result: J) -> J {
    oj!({"jsonrpc": "2.0", "id": id, "result": result})
}

/// The JSON-RPC response to one message, or `None` for notifications and client responses (202).
fn answer(m: &Value, k: &Knobs) -> Option<J> {
    let method = m["method"].as_str()?;
    let id = m.get("id")?;
    let params = &m["params"];
    Some(match method {
        "initialize" => {
            let asked = params["protocolVersion"].as_str().unwrap_or_default();
            let version = PROTOCOL_VERSIONS
                .iter()
                .find(|v| **v == asked)
                .copied()
                .unwrap_or("2025-11-25");
            rpc_result(
                id,
                oj!({"protocolVersion": version, "capabilities": {"tools": {"listChanged": false}},
                     "serverInfo": {"name": "mock-mcp", "version": "0.1.0"}}),
            )
        }
        "ping" => rpc_result(id, oj!({})),
        "tools/list" => match tools(k) {
            Ok(tools) => rpc_result(id, oj!({"tools": tools})),
            Err(e) => rpc_error(id, -32603, &e),
        },
        "tools/call" => match tools(k) {
            Ok(tools) => call_tool(id, params, &tools, k),
            Err(e) => rpc_error(id, -32603, &e),
        },
        other => rpc_error(id, -32601, &format!("Method not found: {other}")),
    })
}

fn tools(k: &Knobs) -> Result<Value, String> {
    match &k.mcp_tools {
        None => Ok(default_tools()),
        Some(raw) => match serde_json::from_str::<Value>(raw) {
            Ok(v @ Value::Array(_)) => Ok(v),
            _ => Err("x-mock-mcp-tools must be a JSON array of tool definitions".into()),
        },
    }
}

fn text_result(text: &str) -> J {
    oj!({"content": [{"type": "text", "text": text}], "isError": false})
}

fn secret_result() -> J {
    let text = format!("config loaded: aws_access_key_id = {FAKE_AWS_KEY}");
    oj!({"content": [{"type": "text", "text": text}], "structuredContent": {"aws_access_key_id": FAKE_AWS_KEY},
         "isError": false})
}

fn call_tool(id: &Value, params: &Value, tools: &Value, k: &Knobs) -> J {
    let name = params["name"].as_str().unwrap_or_default();
    let args = &params["arguments"];
    let known = tools
        .as_array()
        .is_some_and(|t| t.iter().any(|t| t["name"] == name));
    if !known {
        return rpc_error(id, -32602, &format!("Unknown tool: {name}"));
    }
    let result = if let Some(text) = &k.tool_result {
        text_result(text)
    } else {
        match (k.scenario, name) {
            (Scenario::Secret, _) | (_, "read_config") => secret_result(),
            (Scenario::Echo, _) => text_result(&args.to_string()),
            (_, "shell") => {
                let cmd = args["command"].as_str().unwrap_or_default();
                text_result(&format!("$ {cmd}\n(mock shell output)"))
            }
            _ => text_result(&format!("mock result for {name}: {args}")),
        }
    };
    rpc_result(id, result)
}
