//! Client-side SSE decoding and per-dialect reassembly of streamed text and tool calls, following what
//! the official SDKs do (so a test sees what an agent would see).

use serde_json::Value;
use std::collections::BTreeMap;

/// One dispatched SSE event.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Event {
    pub event: Option<String>,
    pub data: String,
    pub id: Option<String>,
}

impl Event {
    pub fn json(&self) -> Option<Value> {
        serde_json::from_str(&self.data).ok()
    }
}

/// Decode an SSE body per the HTML spec: LF, CRLF or CR line ends, `:` comments ignored, several
/// `data:` lines joined with `\n`, an event without data is not dispatched, and an unterminated last
/// event is dropped.
pub fn parse(body: &str) -> Vec<Event> {
    let mut events = Vec::new();
    let mut cur = Event::default();
    let mut data: Option<String> = None;
    let normalized = body.replace("\r\n", "\n").replace('\r', "\n");
    for line in normalized.split('\n') {
        if line.is_empty() {
            if let Some(d) = data.take() {
                cur.data = d;
                events.push(std::mem::take(&mut cur));
            } else {
                cur = Event::default();
            }
            continue;
        }
        if line.starts_with(':') {
            continue;
        }
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (line, ""),
        };
        match field {
            "event" => cur.event = Some(value.to_string()),
            "data" => match &mut data {
                Some(d) => {
                    d.push('\n');
                    d.push_str(value);
                }
                None => data = Some(value.to_string()),
            },
            "id" => cur.id = Some(value.to_string()),
            _ => {}
        }
    }
    events
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ToolCall {
    pub id: String,
    pub name: String,
    /// The argument/input JSON text, as concatenated from the fragments.
    pub arguments: String,
}

impl ToolCall {
    pub fn arguments_json(&self) -> Value {
        serde_json::from_str(&self.arguments).unwrap_or_else(|e| {
            panic!(
                "tool call {} arguments are not JSON ({e}): {:?}",
                self.name, self.arguments
            )
        })
    }
}

/// What a client reassembles from a stream.
#[derive(Clone, Debug, Default)]
pub struct Assembled {
    /// All text deltas concatenated.
    pub text: String,
    /// Tool calls in index order.
    pub tool_calls: Vec<ToolCall>,
    /// Chat `finish_reason`, Responses final `status`, Anthropic `stop_reason`.
    pub finish_reason: Option<String>,
    /// A mid-stream error payload (Chat `{"error":…}`, Responses/Anthropic `error` event).
    pub error: Option<Value>,
    /// The end signal was seen (`[DONE]`, `response.completed`, `message_stop`).
    pub completed: bool,
    pub usage: Option<Value>,
    /// Responses only: every full copy of text or arguments (`*.done`, `content_part.done`,
    /// `output_item.done`, `response.completed`), to check they all match (or are all redacted).
    pub copies: Vec<String>,
    /// Responses only: `sequence_number`s were 0, 1, 2, … without gaps.
    pub sequence_ok: bool,
    pub events: usize,
}

fn str_of(v: &Value) -> &str {
    v.as_str().unwrap_or_default()
}

/// Chat Completions: `data:` chunks; tool-call fields concatenated per index like the SDK does
/// (a repeated `name` would show up as `shellshell`).
pub fn chat(body: &str) -> Assembled {
    let mut a = Assembled::default();
    let mut calls: BTreeMap<u64, ToolCall> = BTreeMap::new();
    for ev in parse(body) {
        a.events += 1;
        if ev.data.starts_with("[DONE]") {
            a.completed = true;
            continue;
        }
        let Some(v) = ev.json() else { continue };
        if !v["error"].is_null() {
            a.error = Some(v["error"].clone());
            continue;
        }
        if !v["usage"].is_null() {
            a.usage = Some(v["usage"].clone());
        }
        for choice in v["choices"].as_array().map(Vec::as_slice).unwrap_or(&[]) {
            let delta = &choice["delta"];
            a.text.push_str(str_of(&delta["content"]));
            for tc in delta["tool_calls"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or(&[])
            {
                let call = calls.entry(tc["index"].as_u64().unwrap_or(0)).or_default();
                call.id.push_str(str_of(&tc["id"]));
                call.name.push_str(str_of(&tc["function"]["name"]));
                call.arguments
                    .push_str(str_of(&tc["function"]["arguments"]));
            }
            if let Some(f) = choice["finish_reason"].as_str() {
                a.finish_reason = Some(f.to_string());
            }
        }
    }
    a.tool_calls = calls.into_values().collect();
    a
}

/// OpenAI Responses: `event:` + `data:` frames with sequence numbers.
pub fn responses(body: &str) -> Assembled {
    let mut a = Assembled {
        sequence_ok: true,
        ..Default::default()
    };
    let mut calls: BTreeMap<u64, ToolCall> = BTreeMap::new();
    for (i, ev) in parse(body).into_iter().enumerate() {
        a.events += 1;
        let Some(v) = ev.json() else { continue };
        if v["sequence_number"].as_u64() != Some(i as u64) {
            a.sequence_ok = false;
        }
        let idx = v["output_index"].as_u64().unwrap_or(0);
        match str_of(&v["type"]) {
            "response.output_text.delta" => a.text.push_str(str_of(&v["delta"])),
            "response.output_item.added" if v["item"]["type"] == "function_call" => {
                let call = calls.entry(idx).or_default();
                call.id = str_of(&v["item"]["call_id"]).to_string();
                call.name = str_of(&v["item"]["name"]).to_string();
            }
            "response.function_call_arguments.delta" => calls
                .entry(idx)
                .or_default()
                .arguments
                .push_str(str_of(&v["delta"])),
            "response.output_text.done" => a.copies.push(str_of(&v["text"]).to_string()),
            "response.content_part.done" => a.copies.push(str_of(&v["part"]["text"]).to_string()),
            "response.function_call_arguments.done" => {
                a.copies.push(str_of(&v["arguments"]).to_string())
            }
            "response.output_item.done" => a.copies.extend(item_copies(&v["item"])),
            "response.completed" | "response.failed" | "response.incomplete" => {
                a.completed = v["type"] == "response.completed";
                let r = &v["response"];
                a.finish_reason = r["status"].as_str().map(str::to_string);
                if !r["usage"].is_null() {
                    a.usage = Some(r["usage"].clone());
                }
                for item in r["output"].as_array().map(Vec::as_slice).unwrap_or(&[]) {
                    a.copies.extend(item_copies(item));
                }
                if a.error.is_none() && !r["error"].is_null() {
                    a.error = Some(r["error"].clone());
                }
            }
            "error" => a.error = Some(v.clone()),
            _ => {}
        }
    }
    a.tool_calls = calls.into_values().collect();
    a
}

fn item_copies(item: &Value) -> Vec<String> {
    match str_of(&item["type"]) {
        "message" => item["content"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or(&[])
            .iter()
            .map(|p| str_of(&p["text"]).to_string())
            .collect(),
        "function_call" => vec![str_of(&item["arguments"]).to_string()],
        _ => vec![],
    }
}

/// Anthropic Messages. Like the Python SDK, frames without an `event:` line are ignored.
pub fn anthropic(body: &str) -> Assembled {
    let mut a = Assembled::default();
    let mut calls: BTreeMap<u64, ToolCall> = BTreeMap::new();
    for ev in parse(body) {
        a.events += 1;
        let (Some(kind), Some(v)) = (ev.event.as_deref(), ev.json()) else {
            continue;
        };
        let idx = v["index"].as_u64().unwrap_or(0);
        match kind {
            "message_start" => a.usage = Some(v["message"]["usage"].clone()),
            "content_block_start" if v["content_block"]["type"] == "tool_use" => {
                let call = calls.entry(idx).or_default();
                call.id = str_of(&v["content_block"]["id"]).to_string();
                call.name = str_of(&v["content_block"]["name"]).to_string();
            }
            "content_block_delta" => match str_of(&v["delta"]["type"]) {
                "text_delta" => a.text.push_str(str_of(&v["delta"]["text"])),
                "input_json_delta" => calls
                    .entry(idx)
                    .or_default()
                    .arguments
                    .push_str(str_of(&v["delta"]["partial_json"])),
                _ => {}
            },
            "message_delta" => {
                a.finish_reason = v["delta"]["stop_reason"].as_str().map(str::to_string);
                a.usage = Some(v["usage"].clone());
            }
            "message_stop" => a.completed = true,
            "error" => a.error = Some(v["error"].clone()),
            _ => {}
        }
    }
    a.tool_calls = calls.into_values().collect();
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_handles_line_endings_comments_and_multiline_data() {
        let body =
            ": comment\r\nevent: a\r\ndata: 1\r\ndata: 2\r\n\r\ndata: x\rid: 7\r\revent: lost\n";
        let ev = parse(body);
        assert_eq!(ev.len(), 2);
        assert_eq!(
            (ev[0].event.as_deref(), ev[0].data.as_str()),
            (Some("a"), "1\n2")
        );
        assert_eq!((ev[1].data.as_str(), ev[1].id.as_deref()), ("x", Some("7")));
    }
}
