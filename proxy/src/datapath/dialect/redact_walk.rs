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
pub const OPAQUE_KEYS: &[&str] = &[
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
pub const JSON_STRING_KEYS: &[&str] = &["arguments"];

/// Below this depth the walk knows protocol fields; deeper, every string
/// is content (no legitimate body nests protocol data that deep).
pub const MAX_DEPTH: usize = 64;

/// Mask in place; returns what was masked (empty: body untouched).
pub fn redact_json(value: &mut Value, redactor: &Redactor, masker: &Masker) -> Vec<MaskEvent> {
    redact_json_except(value, redactor, masker, &|_| false, None)
}

/// [`redact_json`], leaving alone strings for which `scanned` is true:
/// texts the detectors already read and found nothing to mask in, so a
/// clean request is not scanned twice. `scope`: the caller's memo scope
/// (`Redactor::spans_in`), so an agent's unchanged tool schemas are not
/// scanned again on every turn.
pub fn redact_json_except(
    value: &mut Value,
    redactor: &Redactor,
    masker: &Masker,
    scanned: &dyn Fn(&str) -> bool,
    scope: Option<u64>,
) -> Vec<MaskEvent> {
    let mut events = Vec::new();
    // One scan over every candidate string, joined, finds most bodies
    // clean at once: the redactor's fixed cost per call is paid once, not
    // once per string. Blank lines keep strings apart (no token, quoted
    // value or digit group crosses them), so a string with something to
    // mask still shows a span in the joined text.
    let mut joined = String::new();
    collect(value, None, scanned, &mut joined, 0);
    if joined.is_empty() || redactor.spans_in(&joined, scope).is_empty() {
        return events;
    }
    let mut w = Walk {
        r: redactor,
        m: masker,
        scanned,
        events: &mut events,
    };
    w.walk(value, None, 0, false);
    events
}

/// A subtree that holds configuration rather than conversation: the
/// agent's own instructions and tool definitions are checked for secrets
/// only (personal data there is the agent's, not a leak).
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

/// The strings [`Walk::walk`] would scan, each followed by a blank line.
fn collect(
    v: &Value,
    key: Option<&str>,
    scanned: &dyn Fn(&str) -> bool,
    out: &mut String,
    depth: usize,
) {
    if depth > MAX_DEPTH {
        // Deeper strings are all content (see `walk_deep`): all collected.
        let mut stack = vec![v];
        while let Some(v) = stack.pop() {
            match v {
                Value::String(s) => {
                    out.push_str(s);
                    out.push_str("\n\n");
                }
                Value::Array(items) => stack.extend(items.iter()),
                Value::Object(map) => stack.extend(map.values()),
                _ => {}
            }
        }
        return;
    }
    match v {
        Value::String(s) => {
            if let Some(k) = key {
                if OPAQUE_KEYS.contains(&k) || is_data_url(s) {
                    return;
                }
                if JSON_STRING_KEYS.contains(&k) {
                    if let Ok(inner) = serde_json::from_str::<Value>(s) {
                        if inner.is_object() || inner.is_array() {
                            return collect(&inner, None, scanned, out, depth + 1);
                        }
                    }
                }
            }
            if !scanned(s) {
                out.push_str(s);
                out.push_str("\n\n");
            }
        }
        Value::Array(items) => items
            .iter()
            .for_each(|x| collect(x, key, scanned, out, depth + 1)),
        Value::Object(map) => map
            .iter()
            .for_each(|(k, x)| collect(x, Some(k.as_str()), scanned, out, depth + 1)),
        _ => {}
    }
}

struct Walk<'a> {
    r: &'a Redactor,
    m: &'a Masker,
    scanned: &'a dyn Fn(&str) -> bool,
    events: &'a mut Vec<MaskEvent>,
}

impl Walk<'_> {
    /// Returns whether anything under `v` changed.
    fn walk(&mut self, v: &mut Value, key: Option<&str>, depth: usize, trusted: bool) -> bool {
        if depth > MAX_DEPTH {
            return walk_deep(v, self.r, self.m, self.events);
        }
        let trusted = trusted || configuration(key, v, depth);
        match v {
            Value::String(s) => {
                if let Some(k) = key {
                    if OPAQUE_KEYS.contains(&k) || is_data_url(s) {
                        return false;
                    }
                    if JSON_STRING_KEYS.contains(&k) {
                        if let Ok(mut inner) = serde_json::from_str::<Value>(s) {
                            if inner.is_object() || inner.is_array() {
                                let changed = self.walk(&mut inner, None, depth + 1, trusted);
                                if changed {
                                    *s = inner.to_string();
                                }
                                return changed;
                            }
                        }
                    }
                }
                if (self.scanned)(s) {
                    return false;
                }
                let red = if trusted {
                    self.r.redact_secrets(s, self.m)
                } else {
                    self.r.redact(s, self.m)
                };
                let Some(red) = red else {
                    return false;
                };
                *s = red.text;
                for e in red.events {
                    if !self.events.contains(&e) {
                        self.events.push(e);
                    }
                }
                true
            }
            Value::Array(items) => items.iter_mut().fold(false, |changed, x| {
                self.walk(x, key, depth + 1, trusted) | changed
            }),
            Value::Object(map) => map.iter_mut().fold(false, |changed, (k, x)| {
                self.walk(x, Some(k.as_str()), depth + 1, trusted) | changed
            }),
            _ => false,
        }
    }
}

/// A base64 `data:` URL (inline media): `data:<type>;base64,<base64>`.
/// Only the real thing is skipped; text that merely starts with `data:`
/// (an assistant answer, a log line) is content and is masked.
pub fn is_data_url(s: &str) -> bool {
    let Some(rest) = s.strip_prefix("data:") else {
        return false;
    };
    let Some((meta, payload)) = rest.split_once(',') else {
        return false;
    };
    meta.ends_with(";base64")
        && meta.len() <= 256
        && !meta.contains(|c: char| c.is_whitespace())
        && payload
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=' | b'-' | b'_'))
}

/// Below [`MAX_DEPTH`]: every string is content, masked as text, walked
/// with an explicit stack (skipping it would forward whatever hides this
/// deep unmasked; recursing further could exhaust the stack).
fn walk_deep(v: &mut Value, r: &Redactor, m: &Masker, events: &mut Vec<MaskEvent>) -> bool {
    let mut changed = false;
    let mut stack = vec![v];
    while let Some(v) = stack.pop() {
        match v {
            Value::String(s) => {
                if let Some(red) = r.redact(s, m) {
                    *s = red.text;
                    for e in red.events {
                        if !events.contains(&e) {
                            events.push(e);
                        }
                    }
                    changed = true;
                }
            }
            Value::Array(items) => stack.extend(items.iter_mut()),
            Value::Object(map) => stack.extend(map.values_mut()),
            _ => {}
        }
    }
    changed
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decision::Policy;
    use serde_json::json;

    #[test]
    fn the_joined_first_scan_never_hides_a_string_to_mask() {
        let policy = Policy::load("dev", None).unwrap();
        let masker = Masker::new([1; 32]);
        // Each body: neighbours that could pull a secret into a larger span
        // or context, then one string that alone has something to mask.
        for (before, secret) in [
            ("-----BEGIN RSA PRIVATE KEY-----", "AKIAIOSFODNN7EXAMPLE"),
            ("password: \"", "token=Zx8Qp2Lm9Rt4Vw7Yk3Nb"),
            (
                "[REDACTED:secret:0123456789ab]",
                "ghp_0123456789abcdefghijABCDEFGHIJ012345",
            ),
            ("call +1 (555)", "4111 1111 1111 1111"),
            ("x".repeat(600).as_str(), "AKIAIOSFODNN7EXAMPLE"),
        ] {
            let alone = policy.redactor.redact(secret, &masker);
            assert!(alone.is_some(), "{secret}");
            let mut body = json!({"a": before, "b": [secret], "c": "after"});
            let events = redact_json(&mut body, &policy.redactor, &masker);
            assert!(!events.is_empty(), "{before:?} hid {secret:?}");
            assert_eq!(body["b"][0].as_str(), Some(alone.unwrap().text.as_str()));
        }
        let clean = json!({"a": "hello", "b": ["world", {"c": "nothing here"}]});
        let mut same = clean.clone();
        assert!(redact_json(&mut same, &policy.redactor, &masker).is_empty());
        assert_eq!(same, clean);
    }

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
        // Strings already scanned are skipped; the rest still are.
        let mut skip = json!({"a": "hello AKIAIOSFODNN7EXAMPLE", "b": "AKIAIOSFODNN7EXAMPLE"});
        redact_json_except(
            &mut skip,
            &policy.redactor,
            &masker,
            &|s| s.starts_with("hello"),
            None,
        );
        assert_eq!(skip["a"], "hello AKIAIOSFODNN7EXAMPLE");
        assert!(skip["b"].as_str().unwrap().starts_with("[REDACTED:"));
        let args: Value = serde_json::from_str(
            body["tool_calls"][0]["function"]["arguments"]
                .as_str()
                .unwrap(),
        )
        .unwrap();
        assert!(args["k"].as_str().unwrap().starts_with("[REDACTED:"));
    }

    /// Found by the stream fuzz target: text starting with `data:` was
    /// taken for inline media and never masked.
    #[test]
    fn only_real_data_urls_are_skipped() {
        assert!(is_data_url("data:image/png;base64,iVBORw0KGgo="));
        assert!(!is_data_url("data: my key is AKIAIOSFODNN7EXAMPLE"));
        assert!(!is_data_url("data:text/plain,AKIAIOSFODNN7EXAMPLE"));
        assert!(!is_data_url("data:image/png;base64,abc def"));
        let policy = Policy::load("dev", None).unwrap();
        let masker = Masker::new([1; 32]);
        let mut body = json!({"content": "data: key AKIAIOSFODNN7EXAMPLE",
            "image_url": {"url": "data:image/png;base64,QUtJQUlPU0ZPRE5ON0VYQU1QTEU="}});
        redact_json(&mut body, &policy.redactor, &masker);
        assert!(
            body["content"].as_str().unwrap().contains("[REDACTED:"),
            "{body}"
        );
        assert_eq!(
            body["image_url"]["url"],
            "data:image/png;base64,QUtJQUlPU0ZPRE5ON0VYQU1QTEU="
        );
    }

    /// Found by the redaction fuzz target: a masked body changed numbers
    /// (serde_json's fast float parser is not exact).
    #[test]
    fn a_masked_body_keeps_its_numbers() {
        let policy = Policy::load("dev", None).unwrap();
        let masker = Masker::new([1; 32]);
        let raw = r#"{"content":"key AKIAIOSFODNN7EXAMPLE","n":[2.5444444444444446e35,254444444444444444444444444444444449,0.30000000000000004,1e-7]}"#;
        let mut body: Value = serde_json::from_str(raw).unwrap();
        let before = body["n"].clone();
        assert!(!redact_json(&mut body, &policy.redactor, &masker).is_empty());
        let again: Value = serde_json::from_str(&body.to_string()).unwrap();
        assert_eq!(again["n"], before);
        assert_eq!(again["n"].to_string(), before.to_string());
    }

    #[test]
    fn no_depth_hides_a_secret() {
        let policy = Policy::load("dev", None).unwrap();
        let masker = Masker::new([1; 32]);
        let mut body = json!({"id": "AKIAIOSFODNN7EXAMPLE", "content": "key AKIAIOSFODNN7EXAMPLE"});
        for _ in 0..100 {
            body = json!({ "messages": [body] });
        }
        let events = redact_json(&mut body, &policy.redactor, &masker);
        assert_eq!(events.len(), 1);
        let text = body.to_string();
        assert!(!text.contains("AKIAIOSFODNN7EXAMPLE"), "{text}");
    }
}
