//! Streams that try to get past inspection: a secret cut across two text
//! parts, events a strict parser refuses, tool arguments with repeated keys.
//! Each stream is fed whole and at every byte boundary.

use super::*;
use crate::datapath::hooks::NoSession;
use serde_json::json;

const KEY: &str = "AKIAIOSFODNN7EXAMPLE";

/// Loaded once: compiling a profile's rules is the slow part of a test.
fn policy() -> Arc<Policy> {
    static P: std::sync::OnceLock<Arc<Policy>> = std::sync::OnceLock::new();
    P.get_or_init(|| Arc::new(Policy::load("dev", None).unwrap()))
        .clone()
}

fn run(dialect: Dialect, stream: &str, split: Option<usize>) -> String {
    let p = policy();
    let mut rw =
        StreamRewriter::new(dialect, p, Masker::new([4; 32]), "r1", Arc::new(NoSession)).unwrap();
    let bytes = stream.as_bytes();
    let mut out = Vec::new();
    match split {
        Some(at) => {
            out.extend_from_slice(&rw.push(&bytes[..at]));
            out.extend_from_slice(&rw.push(&bytes[at..]));
        }
        None => {
            for b in bytes.chunks(1) {
                out.extend_from_slice(&rw.push(b));
            }
        }
    }
    out.extend_from_slice(&rw.finish());
    String::from_utf8(out).unwrap()
}

/// `(event name, data)` of every event.
fn events(out: &str) -> Vec<(String, Value)> {
    out.split("\n\n")
        .filter(|e| !e.trim().is_empty())
        .map(|e| {
            let name = e
                .lines()
                .find_map(|l| l.strip_prefix("event: "))
                .unwrap_or("")
                .to_string();
            let data = e
                .lines()
                .find_map(|l| l.strip_prefix("data: "))
                .unwrap_or("null");
            (name, serde_json::from_str(data).unwrap_or(Value::Null))
        })
        .collect()
}

fn sse(events: &[Value]) -> String {
    events
        .iter()
        .map(|e| format!("event: {}\ndata: {e}\n\n", e["type"].as_str().unwrap()))
        .collect()
}

fn expected(text: &str) -> String {
    policy()
        .redactor
        .redact(text, &Masker::new([4; 32]))
        .map_or(text.to_string(), |r| r.text)
}

fn anthropic_two_blocks(a: &str, b: &str, second: &str) -> String {
    let delta = |i: u64, t: &str| json!({"type": "content_block_delta", "index": i, "delta": {"type": "text_delta", "text": t}});
    let mut evs = vec![
        json!({"type": "message_start", "message": {"id": "m", "type": "message", "role": "assistant", "content": [], "model": "x"}}),
        json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
        delta(0, a),
        json!({"type": "content_block_stop", "index": 0}),
        json!({"type": "ping"}),
    ];
    if second == "text" {
        evs.push(json!({"type": "content_block_start", "index": 1, "content_block": {"type": "text", "text": ""}}));
        evs.push(delta(1, b));
    } else {
        evs.push(json!({"type": "content_block_start", "index": 1, "content_block": {"type": "tool_use", "id": "t", "name": "noop", "input": {}}}));
    }
    evs.extend([
        json!({"type": "content_block_stop", "index": 1}),
        json!({"type": "message_delta", "delta": {"stop_reason": "end_turn"}}),
        json!({"type": "message_stop"}),
    ]);
    sse(&evs)
}

/// Anthropic: text per block, checking each block's deltas sit between its
/// start and its stop.
fn anthropic_blocks(out: &str) -> Vec<String> {
    let mut texts: Vec<String> = Vec::new();
    let mut open: Option<u64> = None;
    for (name, v) in events(out) {
        let i = v["index"].as_u64();
        match name.as_str() {
            "content_block_start" => {
                assert_eq!(open, None, "a block started inside another: {out}");
                open = i;
                texts.push(String::new());
            }
            "content_block_delta" => {
                assert_eq!(open, i, "a delta outside its block: {out}");
                texts
                    .last_mut()
                    .unwrap()
                    .push_str(v["delta"]["text"].as_str().unwrap_or(""));
            }
            "content_block_stop" => {
                assert_eq!(open, i, "{out}");
                open = None;
            }
            _ => {}
        }
    }
    texts
}

#[test]
fn anthropic_key_split_across_text_blocks_is_masked() {
    let (a, b) = KEY.split_at(9);
    let (t0, t1) = (format!("the key is {a}"), format!("{b} and more"));
    let stream = anthropic_two_blocks(&t0, &t1, "text");
    for split in (0..stream.len()).step_by(7).map(Some).chain([None]) {
        let out = run(Dialect::AnthropicMessages, &stream, split);
        let blocks = anthropic_blocks(&out);
        let joined = blocks.concat();
        assert!(
            !out.contains(KEY) && !joined.contains(KEY),
            "{split:?}: {out}"
        );
        assert_eq!(joined, expected(&format!("{t0}{t1}")), "{split:?}");
        assert_eq!(blocks.len(), 2);
    }
    // Followed by a tool call instead: the held tail goes back into its block.
    let out = run(
        Dialect::AnthropicMessages,
        &anthropic_two_blocks("ends with AKIA", "", "tool"),
        None,
    );
    assert_eq!(anthropic_blocks(&out)[0], "ends with AKIA", "{out}");
}

fn responses_two_parts(t0: &str, t1: &str) -> String {
    let part = |t: &str| json!({"type": "output_text", "text": t, "annotations": []});
    let item = |c: Value| json!({"type": "message", "id": "m1", "role": "assistant", "status": "completed", "content": c});
    let mut evs = vec![
        json!({"type": "response.created", "response": {"id": "r", "status": "in_progress", "output": []}}),
        json!({"type": "response.output_item.added", "output_index": 0, "item": item(json!([]))}),
    ];
    for (i, t) in [t0, t1].into_iter().enumerate() {
        let (head, tail) = t.split_at(t.len() / 2);
        evs.extend([
            json!({"type": "response.content_part.added", "item_id": "m1", "output_index": 0, "content_index": i, "part": part("")}),
            json!({"type": "response.output_text.delta", "item_id": "m1", "output_index": 0, "content_index": i, "delta": head}),
            json!({"type": "response.output_text.delta", "item_id": "m1", "output_index": 0, "content_index": i, "delta": tail}),
            json!({"type": "response.output_text.done", "item_id": "m1", "output_index": 0, "content_index": i, "text": t}),
            json!({"type": "response.content_part.done", "item_id": "m1", "output_index": 0, "content_index": i, "part": part(t)}),
        ]);
    }
    evs.push(json!({"type": "response.output_item.done", "output_index": 0, "item": item(json!([part(t0), part(t1)]))}));
    evs.push(json!({"type": "response.completed", "response": {"id": "r", "status": "completed", "output": [item(json!([part(t0), part(t1)]))]}}));
    for (i, e) in evs.iter_mut().enumerate() {
        e["sequence_number"] = json!(i);
    }
    sse(&evs)
}

#[test]
fn responses_key_split_across_output_text_parts_is_masked_in_every_copy() {
    let (a, b) = KEY.split_at(11);
    let (t0, t1) = (format!("the key is {a}"), format!("{b}, keep it"));
    let stream = responses_two_parts(&t0, &t1);
    for split in (0..stream.len()).step_by(11).map(Some).chain([None]) {
        let out = run(Dialect::OpenaiResponses, &stream, split);
        assert!(!out.contains(KEY), "{split:?}: {out}");
        let mut deltas = [String::new(), String::new()];
        let mut copies: Vec<(usize, String)> = Vec::new();
        for (i, (name, v)) in events(&out).into_iter().enumerate() {
            assert_eq!(
                v["sequence_number"],
                json!(i),
                "{split:?}: renumbered: {out}"
            );
            let ci = v["content_index"].as_u64().unwrap_or(0) as usize;
            match name.as_str() {
                "response.output_text.delta" => deltas[ci].push_str(v["delta"].as_str().unwrap()),
                "response.output_text.done" => {
                    copies.push((ci, v["text"].as_str().unwrap().into()))
                }
                "response.content_part.done" => {
                    copies.push((ci, v["part"]["text"].as_str().unwrap().into()))
                }
                "response.output_item.done" => {
                    for (i, p) in v["item"]["content"].as_array().unwrap().iter().enumerate() {
                        copies.push((i, p["text"].as_str().unwrap().into()));
                    }
                }
                "response.completed" => {
                    let parts = v["response"]["output"][0]["content"].as_array().unwrap();
                    for (i, p) in parts.iter().enumerate() {
                        copies.push((i, p["text"].as_str().unwrap().into()));
                    }
                }
                _ => {}
            }
        }
        assert_eq!(deltas.concat(), expected(&format!("{t0}{t1}")), "{split:?}");
        assert_eq!(copies.len(), 8, "{split:?}");
        for (i, copy) in copies {
            assert_eq!(copy, deltas[i], "{split:?}: a copy differs from its deltas");
        }
    }
}

#[test]
fn events_a_strict_parser_refuses_end_the_stream_with_an_error() {
    let chunk = |extra: &str| {
        format!("data: {{\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"key {KEY}\"}}}}]{extra}}}\n\n")
    };
    for bad in [",\"x\":NaN", ",\"choices\":[]", ","] {
        let stream = format!("{}{}data: [DONE]\n\n", chunk(bad), chunk(""));
        let out = run(Dialect::OpenaiChat, &stream, None);
        assert!(!out.contains(KEY), "{bad}: {out}");
        let evs = events(&out);
        assert_eq!(evs.len(), 1, "{bad}: nothing after the error: {out}");
        assert!(evs[0].1["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not strict JSON"));
    }
    // Data that is not JSON at all is masked as text, not a failure.
    let out = run(
        Dialect::OpenaiChat,
        &format!("data: plain {KEY}\n\ndata: [DONE]\n\n"),
        None,
    );
    assert!(!out.contains(KEY) && out.contains("[DONE]"), "{out}");
    // MCP: the error is a JSON-RPC error answering the request.
    let p = policy();
    let mut rw = StreamRewriter::new(
        Dialect::Mcp,
        p,
        Masker::new([4; 32]),
        "r1",
        Arc::new(NoSession),
    )
    .unwrap();
    rw.set_rpc_id(json!(12));
    let mut out = rw
        .push(b"event: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":12,\"result\":{},\"x\":NaN}\n\n")
        .to_vec();
    out.extend_from_slice(&rw.finish());
    let evs = events(std::str::from_utf8(&out).unwrap());
    assert_eq!(evs[0].1["id"], 12, "{evs:?}");
    assert_eq!(evs[0].1["error"]["code"], -32603);
}

#[test]
fn streamed_tool_arguments_with_repeated_keys_are_refused() {
    // Arguments arrive in fragments; only the whole is JSON (with a repeated key).
    let call = |args: &str, first: bool| {
        let mut tc = json!({"index": 0, "function": {"arguments": args}});
        if first {
            tc["id"] = json!("c1");
            tc["type"] = json!("function");
            tc["function"]["name"] = json!("shell");
        }
        json!({"choices": [{"index": 0, "delta": {"tool_calls": [tc]}}]})
    };
    let (c1, c2) = (
        call(r#"{"command":"cat ~/.ssh/id_rsa","#, true),
        call(r#""command":"ls"}"#, false),
    );
    let end = json!({"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]});
    let stream = format!("data: {c1}\n\ndata: {c2}\n\ndata: {end}\n\ndata: [DONE]\n\n");
    let out = run(Dialect::OpenaiChat, &stream, None);
    assert!(!out.contains("id_rsa"), "{out}");
    assert!(out.contains("cannot be inspected unambiguously"), "{out}");
}
