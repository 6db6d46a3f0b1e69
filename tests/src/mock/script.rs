//! Prompt directives, so real agent CLIs (which cannot send `x-mock-*`
//! headers) can script the mock: a user message containing `[mock:NAME]`
//! selects a scenario for the whole conversation:
//! * `[mock:text]`, `[mock:secret]`: as the header scenarios;
//! * `[mock:agent_shell]`: a call of the client's own shell tool (found in
//!   the request's tool list: `Bash`, `run_shell_command`, `exec_command` …)
//!   running `cat ~/.ssh/id_rsa`;
//! * `[mock:agent_benign]`: the same tool running `echo mock-benign-ok`.
//!
//! Once the conversation's last turn carries a tool result, the mock
//! answers with text ([`AGENT_DONE`]), so an agent's tool loop ends.

use super::scenario::{Knobs, Scenario};
use serde_json::Value;

pub const AGENT_DONE: &str = "Mock agent turn finished.";
pub const DANGEROUS_COMMAND: &str = "cat ~/.ssh/id_rsa";
pub const BENIGN_COMMAND: &str = "echo mock-benign-ok";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    Chat,
    Responses,
    Anthropic,
    Gemini,
}

/// Shell tools of the agents the tests drive, most specific first.
const SHELL_TOOLS: &[&str] = &[
    "Bash",
    "run_shell_command",
    "exec_command",
    "shell_command",
    "shell",
    "local_shell",
    "run_shell",
];

/// Header knobs, overridden by a directive in the conversation.
pub fn apply(mut k: Knobs, d: Dialect, req: &Value) -> Knobs {
    let mut texts = Vec::new();
    user_texts(req, &mut texts, 0);
    let Some(name) = texts.iter().find_map(|t| directive(t)) else {
        return k;
    };
    if last_turn_is_tool_result(d, req) {
        k.scenario = Scenario::Echo;
        k.echo_override = Some(AGENT_DONE.to_string());
        return k;
    }
    let command = match name.as_str() {
        "text" => {
            k.scenario = Scenario::Text;
            return k;
        }
        "secret" => {
            k.scenario = Scenario::Secret;
            return k;
        }
        "agent_shell" => DANGEROUS_COMMAND,
        "agent_benign" => BENIGN_COMMAND,
        _ => return k,
    };
    let tools = tool_names(req);
    if d == Dialect::Responses
        && tools.iter().any(|n| n == "exec")
        && !SHELL_TOOLS.iter().any(|t| tools.iter().any(|n| n == *t))
    {
        // Codex's code-mode tool: freeform JavaScript calling its tools.
        k.scenario = Scenario::ToolCustom;
        k.tool_freeform = true;
        k.tool_name = "exec".to_string();
        k.tool_args = format!(
            "const r = await tools.exec_command({{cmd: {}}}); text(r);",
            serde_json::to_string(command).unwrap_or_default()
        );
        return k;
    }
    let Some(tool) = SHELL_TOOLS.iter().find(|t| tools.iter().any(|n| n == *t)) else {
        k.scenario = Scenario::Echo;
        k.echo_override = Some(format!("mock: no shell tool among {tools:?}"));
        return k;
    };
    let args = match *tool {
        "exec_command" => serde_json::json!({"cmd": command}),
        "Bash" | "run_shell_command" => {
            serde_json::json!({"command": command, "description": "Run the requested command"})
        }
        _ => serde_json::json!({"command": command}),
    };
    k.scenario = Scenario::ToolCustom;
    k.tool_name = tool.to_string();
    k.tool_args = args.to_string();
    k
}

/// `[mock:NAME]` in a text.
fn directive(text: &str) -> Option<String> {
    let start = text.find("[mock:")? + 6;
    let end = text[start..].find(']')? + start;
    Some(text[start..end].trim().to_string())
}

/// Every string under user-ish content (enough to find a directive).
fn user_texts(v: &Value, out: &mut Vec<String>, depth: usize) {
    if depth > 12 {
        return;
    }
    match v {
        Value::String(s) if s.contains("[mock:") => out.push(s.clone()),
        Value::Array(a) => a.iter().for_each(|x| user_texts(x, out, depth + 1)),
        Value::Object(o) => {
            for (key, x) in o {
                // Tool definitions and system prompts are not the user's.
                if key != "tools" && key != "system" && key != "instructions" {
                    user_texts(x, out, depth + 1);
                }
            }
        }
        _ => {}
    }
}

/// Names of the tools offered anywhere in the request (flat, nested under
/// `function`, in namespaces, in Gemini's `functionDeclarations`, in
/// Codex's `additional_tools` items).
pub fn tool_names(req: &Value) -> Vec<String> {
    fn walk(v: &Value, in_tools: bool, out: &mut Vec<String>, depth: usize) {
        if depth > 16 {
            return;
        }
        match v {
            Value::Array(a) => a.iter().for_each(|x| walk(x, in_tools, out, depth + 1)),
            Value::Object(o) => {
                if in_tools {
                    for n in [o.get("name"), o.get("function").and_then(|f| f.get("name"))]
                        .into_iter()
                        .flatten()
                        .filter_map(Value::as_str)
                    {
                        out.push(n.to_string());
                    }
                }
                for (k, x) in o {
                    let t = matches!(
                        k.as_str(),
                        "tools" | "functionDeclarations" | "function_declarations"
                    );
                    walk(x, in_tools || t, out, depth + 1);
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(req, false, &mut out, 0);
    out
}

fn last_turn_is_tool_result(d: Dialect, req: &Value) -> bool {
    match d {
        Dialect::Chat => req["messages"]
            .as_array()
            .and_then(|m| m.last())
            .is_some_and(|m| m["role"] == "tool"),
        Dialect::Responses => req["input"]
            .as_array()
            .and_then(|i| i.last())
            .is_some_and(|i| i["type"].as_str().is_some_and(|t| t.ends_with("_output"))),
        Dialect::Anthropic => req["messages"]
            .as_array()
            .and_then(|m| m.last())
            .and_then(|m| m["content"].as_array())
            .is_some_and(|c| c.iter().any(|b| b["type"] == "tool_result")),
        Dialect::Gemini => req["contents"]
            .as_array()
            .and_then(|c| c.last())
            .and_then(|c| c["parts"].as_array())
            .is_some_and(|p| p.iter().any(|x| x.get("functionResponse").is_some())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::HeaderMap;
    use serde_json::json;

    #[test]
    fn directives_pick_the_clients_shell_tool_and_end_the_loop() {
        let base = Knobs::from_headers(&HeaderMap::new()).unwrap();
        let req = json!({"tools": [{"name": "Read"}, {"name": "Bash"}],
                         "messages": [{"role": "user", "content": "[mock:agent_shell] go"}]});
        let k = apply(base.clone(), Dialect::Anthropic, &req);
        assert_eq!(k.scenario, Scenario::ToolCustom);
        assert_eq!(k.tool_name, "Bash");
        assert!(k.tool_args.contains(DANGEROUS_COMMAND));
        let done = json!({"tools": [{"name": "Bash"}], "messages": [
            {"role": "user", "content": "[mock:agent_shell] go"},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t", "content": "x"}]}]});
        let k = apply(base.clone(), Dialect::Anthropic, &done);
        assert_eq!(k.echo_override.as_deref(), Some(AGENT_DONE));
        let gem = json!({"tools": [{"functionDeclarations": [{"name": "run_shell_command"}]}],
                         "contents": [{"role": "user", "parts": [{"text": "[mock:agent_shell]"}]}]});
        assert_eq!(
            apply(base.clone(), Dialect::Gemini, &gem).tool_name,
            "run_shell_command"
        );
        let plain = json!({"messages": [{"role": "user", "content": "hi"}]});
        assert_eq!(apply(base, Dialect::Chat, &plain).scenario, Scenario::Text);
    }
}
