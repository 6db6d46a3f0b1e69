//! Secrets split across adjacent text parts of one message.
//!
//! An API message may carry its text in several parts (Anthropic text
//! blocks, Responses `output_text` parts, chat and MCP content parts),
//! and SDKs and models read them joined. A key cut in two, one half per
//! part, is no secret in either part, yet the reader gets it whole. So a
//! run of adjacent text parts of the same type is redacted as one text:
//! a mask that straddles parts goes where the secret starts and the rest
//! of the secret is cut from the following parts, so the joined text is
//! exactly the redaction of the joined parts as received.

use crate::decision::redact::{MaskEvent, Masker, Redactor, Span};
use serde_json::Value;

/// Part types whose `text` a reader joins with its neighbours'.
const JOINED_TYPES: &[&str] = &["text", "output_text", "input_text"];

const MAX_DEPTH: usize = 64;

/// Mask secrets spanning adjacent text parts anywhere in `body`; returns
/// what was masked (empty: nothing changed). `scope`: the caller's memo
/// scope (`Redactor::spans_in`), so an agent's unchanged system prompt is
/// not scanned again on every turn.
pub fn redact_joined(
    body: &mut Value,
    redactor: &Redactor,
    masker: &Masker,
    scope: Option<u64>,
) -> Vec<MaskEvent> {
    let mut events = Vec::new();
    let mut w = Joined {
        r: redactor,
        m: masker,
        scope,
        events: &mut events,
    };
    w.walk(body, 0);
    events
}

struct Joined<'a> {
    r: &'a Redactor,
    m: &'a Masker,
    scope: Option<u64>,
    events: &'a mut Vec<MaskEvent>,
}

impl Joined<'_> {
    fn walk(&mut self, v: &mut Value, depth: usize) {
        if depth > MAX_DEPTH {
            return;
        }
        match v {
            Value::Array(items) => {
                let mut i = 0;
                while i < items.len() {
                    let kind = part_type(&items[i]);
                    let mut j = i + 1;
                    while kind.is_some() && j < items.len() && part_type(&items[j]) == kind {
                        j += 1;
                    }
                    if j - i >= 2 {
                        self.redact_run(&mut items[i..j]);
                    }
                    i = j.max(i + 1);
                }
                for x in items.iter_mut() {
                    self.walk(x, depth + 1);
                }
            }
            Value::Object(map) => {
                for x in map.values_mut() {
                    self.walk(x, depth + 1);
                }
            }
            _ => {}
        }
    }

    fn redact_run(&mut self, parts: &mut [Value]) {
        let texts: Vec<&str> = parts
            .iter()
            .map(|p| p["text"].as_str().unwrap_or_default())
            .collect();
        let Some(out) = split_redact(&texts, self.r, self.m, self.events, self.scope) else {
            return;
        };
        for (p, t) in parts.iter_mut().zip(out) {
            p["text"] = Value::String(t);
        }
    }
}

/// The type of a text part (an object with a joined type and a string
/// `text`), else `None`.
fn part_type(v: &Value) -> Option<&str> {
    let o = v.as_object()?;
    let kind = o.get("type")?.as_str()?;
    (JOINED_TYPES.contains(&kind) && o.get("text").is_some_and(Value::is_string)).then_some(kind)
}

/// Redact the concatenation of `texts` and cut the result back into as
/// many parts; `None` when nothing is masked.
pub fn split_redact(
    texts: &[&str],
    r: &Redactor,
    m: &Masker,
    events: &mut Vec<MaskEvent>,
    scope: Option<u64>,
) -> Option<Vec<String>> {
    let joined: String = texts.concat();
    let spans = r.spans_in(&joined, scope);
    if spans.is_empty() {
        return None;
    }
    // Part `i` covers joined[starts[i]..starts[i + 1]].
    let mut starts = Vec::with_capacity(texts.len() + 1);
    let mut at = 0;
    for t in texts {
        starts.push(at);
        at += t.len();
    }
    starts.push(at);
    let part_of = |pos: usize| {
        starts[1..]
            .iter()
            .position(|&end| pos < end)
            .unwrap_or(texts.len() - 1)
    };
    let mut out: Vec<String> = texts
        .iter()
        .map(|t| String::with_capacity(t.len()))
        .collect();
    let copy = |out: &mut Vec<String>, from: usize, to: usize| {
        for (i, o) in out.iter_mut().enumerate() {
            let (a, b) = (from.max(starts[i]), to.min(starts[i + 1]));
            if a < b {
                o.push_str(&joined[a..b]);
            }
        }
    };
    let mut pos = 0;
    for Span { start, end, kind } in &spans {
        copy(&mut out, pos, *start);
        let value = &joined[*start..*end];
        let digest = m.digest(value);
        out[part_of(*start)].push_str(&format!("[REDACTED:{kind}:{digest}]"));
        let event = MaskEvent {
            kind: kind.clone(),
            digest,
            length: value.chars().count(),
        };
        if events.len() < r.config().max_items && !events.contains(&event) {
            events.push(event);
        }
        pos = *end;
    }
    copy(&mut out, pos, joined.len());
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decision::Policy;
    use serde_json::json;

    fn setup() -> (Policy, Masker) {
        (Policy::load("dev", None).unwrap(), Masker::new([5; 32]))
    }

    fn joined_text(parts: &Value) -> String {
        parts
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["text"].as_str().unwrap_or_default())
            .collect()
    }

    #[test]
    fn a_key_split_across_blocks_is_masked_in_the_join() {
        let (p, m) = setup();
        for kind in ["text", "output_text", "input_text"] {
            let mut body = json!({"content": [
                {"type": kind, "text": "the key is AKIAIOSF"},
                {"type": kind, "text": "ODNN7EXAMPLE, keep it"},
            ]});
            let events = redact_joined(&mut body, &p.redactor, &m, None);
            assert_eq!(events.len(), 1, "{kind}");
            let joined = joined_text(&body["content"]);
            let expected = p
                .redactor
                .redact("the key is AKIAIOSFODNN7EXAMPLE, keep it", &m)
                .unwrap()
                .text;
            assert_eq!(joined, expected, "{kind}");
            assert_eq!(body["content"][1]["text"], ", keep it");
        }
    }

    #[test]
    fn a_key_over_three_parts_and_nested_content() {
        let (p, m) = setup();
        let mut body = json!({"messages": [{"role": "user", "content": [
            {"type": "tool_result", "content": [
                {"type": "text", "text": "AKIA"},
                {"type": "text", "text": "IOSFODNN"},
                {"type": "text", "text": "7EXAMPLE"},
            ]},
        ]}]});
        redact_joined(&mut body, &p.redactor, &m, None);
        let parts = &body["messages"][0]["content"][0]["content"];
        assert!(joined_text(parts).starts_with("[REDACTED:aws_access_key_id:"));
        assert_eq!(parts[1]["text"], "");
        assert_eq!(parts[2]["text"], "");
    }

    #[test]
    fn separate_kinds_and_clean_runs_are_left_alone() {
        let (p, m) = setup();
        let mut body = json!([
            {"type": "text", "text": "AKIAIOSF"},
            {"type": "image", "source": {}},
            {"type": "text", "text": "ODNN7EXAMPLE"},
            {"type": "text", "text": " and more words"},
        ]);
        let before = body.clone();
        assert!(redact_joined(&mut body, &p.redactor, &m, None).is_empty());
        assert_eq!(body, before);
    }
}
