//! Mask secrets in every string of a JSON body, whatever the dialect.
//!
//! Walking the whole body (not only the fields the parsers extract) means a
//! secret in `metadata`, a tool schema or an unknown new field is masked
//! too. Protocol fields that must survive byte-for-byte (ids, signatures,
//! encrypted reasoning, base64 media) are skipped, and tool arguments that
//! are JSON *inside* a string are parsed, masked and re-encoded so they stay
//! valid JSON.

use crate::decision::redact::{MaskEvent, Masker, Redactor};
use serde_json::Value;

/// Keys whose string values are protocol data, never user content. Listed
/// explicitly: a blanket `*_id` rule would skip `aws_access_key_id`.
const OPAQUE_KEYS: &[&str] = &[
    "id",
    "call_id",
    "tool_call_id",
    "tool_use_id",
    "item_id",
    "response_id",
    "previous_response_id",
    "conversation_id",
    "system_fingerprint",
    "type",
    "role",
    "object",
    "model",
    "status",
    "finish_reason",
    "stop_reason",
    "jsonrpc",
    "method",
    "name",
    "signature",
    "encrypted_content",
    "obfuscation",
    "b64_json",
    "partial_image_b64",
    "data",
    "image_url",
    "file_data",
    "file_id",
    "mime_type",
    "media_type",
];

/// Keys whose string value is itself JSON (OpenAI tool arguments).
const JSON_STRING_KEYS: &[&str] = &["arguments"];

const MAX_DEPTH: usize = 64;

/// Mask in place; returns what was masked (empty: body untouched).
///
/// The agent's own configuration — system and developer messages, the
/// top-level `instructions` / `system`, tool definitions (`tools`, MCP
/// `tools/list` results, Responses `additional_tools` items) — is masked
/// for secrets only: personal data written there by the agent's vendor
/// (`noreply@…` in a commit template) is not the user's.
pub fn redact_json(value: &mut Value, redactor: &Redactor, masker: &Masker) -> Vec<MaskEvent> {
    let mut events = Vec::new();
    walk(value, None, redactor, masker, &mut events, 0, false);
    events
}

/// A subtree that holds configuration rather than conversation.
fn configuration(key: Option<&str>, v: &Value, depth: usize) -> bool {
    if let Value::Object(o) = v {
        if matches!(
            o.get("role").and_then(Value::as_str),
            Some("system" | "developer")
        ) || o.get("type").and_then(Value::as_str) == Some("additional_tools")
        {
            return true;
        }
    }
    // Top-level `tools`, `instructions`, `system`; MCP `result.tools`.
    matches!(
        (key, depth),
        (Some("tools" | "instructions" | "system"), 1) | (Some("tools"), 2)
    )
}

/// Returns whether anything under `v` changed.
fn walk(
    v: &mut Value,
    key: Option<&str>,
    r: &Redactor,
    m: &Masker,
    events: &mut Vec<MaskEvent>,
    depth: usize,
    trusted: bool,
) -> bool {
    if depth > MAX_DEPTH {
        return false;
    }
    let trusted = trusted || configuration(key, v, depth);
    match v {
        Value::String(s) => {
            if let Some(k) = key {
                if OPAQUE_KEYS.contains(&k) || s.starts_with("data:") {
                    return false;
                }
                if JSON_STRING_KEYS.contains(&k) {
                    if let Ok(mut inner) = serde_json::from_str::<Value>(s) {
                        if inner.is_object() || inner.is_array() {
                            let changed = walk(&mut inner, None, r, m, events, depth + 1, trusted);
                            if changed {
                                *s = inner.to_string();
                            }
                            return changed;
                        }
                    }
                }
            }
            let red = if trusted {
                r.redact_secrets(s, m)
            } else {
                r.redact(s, m)
            };
            let Some(red) = red else {
                return false;
            };
            *s = red.text;
            for e in red.events {
                if !events.contains(&e) {
                    events.push(e);
                }
            }
            true
        }
        Value::Array(items) => items.iter_mut().fold(false, |changed, x| {
            walk(x, key, r, m, events, depth + 1, trusted) | changed
        }),
        Value::Object(map) => map.iter_mut().fold(false, |changed, (k, x)| {
            walk(x, Some(k.as_str()), r, m, events, depth + 1, trusted) | changed
        }),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decision::Policy;
    use serde_json::json;

    #[test]
    fn masks_content_and_json_arguments_but_not_ids() {
        let policy = Policy::load("dev", None).unwrap();
        let masker = Masker::new([1; 32]);
        let mut body = json!({
            "id": "AKIAIOSFODNN7EXAMPLE",
            "messages": [{"role": "user", "content": "my key AKIAIOSFODNN7EXAMPLE"}],
            "tool_calls": [{"function": {"name": "x", "arguments": "{\"k\":\"AKIAIOSFODNN7EXAMPLE\"}"}}]
        });
        let events = redact_json(&mut body, &policy.redactor, &masker);
        assert_eq!(events.len(), 1, "same value, one event");
        assert_eq!(body["id"], "AKIAIOSFODNN7EXAMPLE");
        assert!(body["messages"][0]["content"]
            .as_str()
            .unwrap()
            .contains("[REDACTED:aws_access_key_id:"));
        let args: Value = serde_json::from_str(
            body["tool_calls"][0]["function"]["arguments"]
                .as_str()
                .unwrap(),
        )
        .unwrap();
        assert!(args["k"].as_str().unwrap().starts_with("[REDACTED:"));
    }
}
