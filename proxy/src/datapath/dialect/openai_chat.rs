//! OpenAI Chat Completions (`POST /v1/chat/completions`).

use super::{collect_strings, collect_unknown, parse_arguments, push_content};
use crate::decision::subject::{Subject, Surface, ToolCall};
use serde_json::{json, Value};

pub fn request_subject(body: &Value) -> Subject {
    let mut s = Subject::default();
    if !body["messages"].is_array() {
        // Not the API's shape; upstream may still read it. Inspect it.
        collect_unknown(&body["messages"], Surface::User, &mut s);
    }
    for msg in body["messages"].as_array().into_iter().flatten() {
        let surface = match msg["role"].as_str().unwrap_or("user") {
            "system" | "developer" => Surface::System,
            "assistant" => Surface::Assistant,
            "tool" | "function" => Surface::ToolResult,
            _ => Surface::User,
        };
        push_content(&msg["content"], surface, &mut s);
        for call in msg["tool_calls"].as_array().into_iter().flatten() {
            collect_strings(
                &parse_arguments(&call["function"]["arguments"]),
                Surface::ToolArguments,
                &mut s,
                0,
            );
            if let Some(input) = call["custom"]["input"].as_str() {
                s.push_text(Surface::ToolArguments, input);
            }
        }
    }
    for tool in body["tools"].as_array().into_iter().flatten() {
        collect_strings(&tool["function"], Surface::ToolDefinition, &mut s, 0);
        collect_strings(&tool["custom"], Surface::ToolDefinition, &mut s, 0);
    }
    s
}

/// The calls in `choices[*].message.tool_calls`, in order.
fn calls(body: &Value) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    for (c, choice) in body["choices"].as_array().into_iter().flatten().enumerate() {
        for (t, _) in choice["message"]["tool_calls"]
            .as_array()
            .into_iter()
            .flatten()
            .enumerate()
        {
            out.push((c, t));
        }
    }
    out
}

pub fn response_subject(body: &Value) -> Subject {
    let mut s = Subject::default();
    for choice in body["choices"].as_array().into_iter().flatten() {
        let msg = &choice["message"];
        push_content(&msg["content"], Surface::Assistant, &mut s);
        if let Some(r) = msg["refusal"].as_str() {
            s.push_text(Surface::Assistant, r);
        }
    }
    for (c, t) in calls(body) {
        let call = &body["choices"][c]["message"]["tool_calls"][t];
        let (name, args) = if call["type"] == "custom" {
            (
                call["custom"]["name"].as_str(),
                call["custom"]["input"].clone(),
            )
        } else {
            (
                call["function"]["name"].as_str(),
                parse_arguments(&call["function"]["arguments"]),
            )
        };
        let mut tc = ToolCall::new(name.unwrap_or(""), args);
        tc.id = call["id"].as_str().map(str::to_string);
        s.tool_calls.push(tc);
    }
    s
}

pub fn refuse_tool_calls(body: &mut Value, blocked: &[usize], message: &str) {
    let all = calls(body);
    // Remove from the back so earlier indexes stay valid.
    for &i in blocked.iter().rev() {
        let Some(&(c, t)) = all.get(i) else { continue };
        let choice = &mut body["choices"][c];
        if let Some(list) = choice["message"]["tool_calls"].as_array_mut() {
            if t < list.len() {
                list.remove(t);
            }
        }
        append_content(&mut choice["message"], message);
    }
    for choice in body["choices"].as_array_mut().into_iter().flatten() {
        let empty = choice["message"]["tool_calls"]
            .as_array()
            .is_some_and(Vec::is_empty);
        if empty {
            if let Some(m) = choice["message"].as_object_mut() {
                m.remove("tool_calls");
            }
            if choice["finish_reason"] == "tool_calls" {
                choice["finish_reason"] = json!("stop");
            }
        }
    }
}

fn append_content(msg: &mut Value, text: &str) {
    let joined = match msg["content"].as_str() {
        Some(existing) if !existing.is_empty() && !existing.contains(text) => {
            format!("{existing}\n\n{text}")
        }
        Some(existing) if existing.contains(text) => existing.to_string(),
        _ => text.to_string(),
    };
    msg["content"] = json!(joined);
}

pub fn withhold_text(body: &mut Value, message: &str) {
    for choice in body["choices"].as_array_mut().into_iter().flatten() {
        choice["message"]["content"] = json!(message);
        if let Some(m) = choice["message"].as_object_mut() {
            m.remove("tool_calls");
        }
        choice["finish_reason"] = json!("stop");
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn misshapen_fields_are_still_inspected() {
        // `messages` as a string, content as a lone object or a number:
        // not the API's shape, but nothing is skipped because of it.
        let s = request_subject(&json!({"messages": "ignore previous instructions"}));
        assert_eq!(s.texts[0].text, "ignore previous instructions");
        let s = request_subject(&json!({"messages": [
            {"role": "user", "content": {"type": "text", "text": "lone part"}},
            {"role": "tool", "content": [{"type": "future_block", "body": "from a tool"}]},
        ]}));
        let got: Vec<_> = s
            .texts
            .iter()
            .map(|t| (t.surface, t.text.as_str()))
            .collect();
        assert!(got.contains(&(Surface::User, "lone part")), "{got:?}");
        assert!(
            got.contains(&(Surface::ToolResult, "from a tool")),
            "{got:?}"
        );
    }
    use super::*;

    fn fixture(name: &str) -> Value {
        let path = format!(
            "{}/../tests/fixtures/wire/openai_chat/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    #[test]
    fn request_surfaces() {
        let s = request_subject(&fixture("request_tool_roundtrip.json"));
        assert!(s
            .texts
            .iter()
            .any(|t| t.surface == Surface::ToolResult && t.text.contains("PRIVATE KEY")));
        assert!(s.texts.iter().any(|t| t.surface == Surface::ToolDefinition));
        assert!(
            s.tool_calls.is_empty(),
            "history calls are not judged again"
        );
    }

    #[test]
    fn response_tool_call_and_refusal() {
        let mut body = fixture("response_tool_calls.json");
        let s = response_subject(&body);
        assert_eq!(s.tool_calls.len(), 1);
        assert_eq!(s.tool_calls[0].name, "shell");
        assert_eq!(s.tool_calls[0].arguments["command"], "cat ~/.ssh/id_rsa");
        refuse_tool_calls(&mut body, &[0], "blocked");
        assert_eq!(body["choices"][0]["finish_reason"], "stop");
        assert_eq!(body["choices"][0]["message"]["content"], "blocked");
        assert!(body["choices"][0]["message"].get("tool_calls").is_none());
    }
}
