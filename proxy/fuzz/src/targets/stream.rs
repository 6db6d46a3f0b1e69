//! The stream rewriters (Chat Completions, Responses, Anthropic, MCP): a
//! text streamed in fragments and cut anywhere on the wire reaches the
//! client with every secret the buffered path would mask masked (in the
//! deltas and in every full copy), in events an SDK can parse. Raw fuzz
//! bytes as the upstream stream never crash the rewriter.

use super::{dev_policy, masked_values, masker, occurrences};
use crate::input::{fragments, pieces, Input};
use asg::datapath::dialect::Dialect;
use asg::datapath::hooks::NoSession;
use asg::datapath::stream::sse::SseParser;
use asg::datapath::stream::StreamRewriter;
use serde_json::{json, Value};
use std::sync::Arc;

const DIALECTS: [Dialect; 4] = [
    Dialect::OpenaiChat,
    Dialect::OpenaiResponses,
    Dialect::AnthropicMessages,
    Dialect::Mcp,
];

/// An upstream stream carrying `frags` as text deltas, in `dialect`'s shape.
pub fn upstream(dialect: Dialect, frags: &[String]) -> String {
    let full: String = frags.concat();
    let mut s = String::new();
    let typed = |v: Value| format!("event: {}\ndata: {v}\n\n", v["type"].as_str().unwrap_or(""));
    match dialect {
        Dialect::OpenaiChat => {
            let chunk = |delta: Value, finish: Option<&str>| {
                format!(
                    "data: {}\n\n",
                    json!({"id":"c","object":"chat.completion.chunk","created":1,"model":"m",
                           "choices":[{"index":0,"delta":delta,"finish_reason":finish}]})
                )
            };
            s += &chunk(json!({"role":"assistant","content":""}), None);
            for f in frags {
                s += &chunk(json!({ "content": f }), None);
            }
            s += &chunk(json!({}), Some("stop"));
            s += "data: [DONE]\n\n";
        }
        Dialect::OpenaiResponses => {
            let mut events = vec![json!({"type":"response.output_item.added","output_index":0,
                "item":{"id":"msg_1","type":"message","status":"in_progress","content":[],"role":"assistant"}})];
            for f in frags {
                events.push(
                    json!({"type":"response.output_text.delta","item_id":"msg_1","output_index":0,
                    "content_index":0,"delta":f,"logprobs":[]}),
                );
            }
            let item = json!({"id":"msg_1","type":"message","status":"completed","role":"assistant",
                "content":[{"type":"output_text","text":full,"annotations":[]}]});
            events.push(
                json!({"type":"response.output_text.done","item_id":"msg_1","output_index":0,
                "content_index":0,"text":full,"logprobs":[]}),
            );
            events.push(json!({"type":"response.output_item.done","output_index":0,"item":item}));
            events.push(json!({"type":"response.completed","response":{"id":"r","status":"completed","output":[item]}}));
            for (n, mut v) in events.into_iter().enumerate() {
                v["sequence_number"] = json!(n);
                s += &typed(v);
            }
        }
        Dialect::AnthropicMessages => {
            s += &typed(
                json!({"type":"message_start","message":{"id":"m","type":"message","role":"assistant",
                "content":[],"model":"c","usage":{"input_tokens":1,"output_tokens":1}}}),
            );
            s += &typed(
                json!({"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}),
            );
            for f in frags {
                s += &typed(
                    json!({"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":f}}),
                );
            }
            s += &typed(json!({"type":"content_block_stop","index":0}));
            s += &typed(
                json!({"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":1}}),
            );
            s += &typed(json!({"type":"message_stop"}));
        }
        _ => {
            // MCP over streamable HTTP: one JSON-RPC result per event.
            s += &format!(
                "event: message\ndata: {}\n\n",
                json!({"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":full}],"isError":false}})
            );
        }
    }
    s
}

/// What a client reads: the streamed text, and every full copy of it.
#[derive(Debug, Default)]
pub struct Read {
    pub text: String,
    pub copies: Vec<String>,
}

fn texts_of(v: &Value, out: &mut Vec<String>) {
    for part in v.as_array().map(Vec::as_slice).unwrap_or(&[]) {
        if let Some(t) = part["text"].as_str() {
            out.push(t.to_string());
        }
    }
}

/// Reassemble `dialect`'s text from client bytes, checking that every
/// event's data is what an SDK can parse.
pub fn read(dialect: Dialect, bytes: &[u8]) -> Read {
    let mut r = Read::default();
    let mut parser = SseParser::new(usize::MAX);
    let mut events = Vec::new();
    parser
        .push(bytes, |e| events.push(e))
        .expect("no event limit");
    events.extend(parser.finish());
    for e in events {
        let f = e.fields().expect("the client gets UTF-8 events");
        let Some(data) = f.data else { continue };
        if data == "[DONE]" {
            continue;
        }
        let v: Value = serde_json::from_str(&data)
            .unwrap_or_else(|err| panic!("event data is not JSON ({err}): {data:?}"));
        match dialect {
            Dialect::OpenaiChat => {
                for c in v["choices"].as_array().map(Vec::as_slice).unwrap_or(&[]) {
                    r.text
                        .push_str(c["delta"]["content"].as_str().unwrap_or(""));
                }
            }
            Dialect::OpenaiResponses => match v["type"].as_str().unwrap_or("") {
                "response.output_text.delta" => r.text.push_str(v["delta"].as_str().unwrap_or("")),
                "response.output_text.done" => {
                    r.copies.push(v["text"].as_str().unwrap_or("").to_string())
                }
                "response.output_item.done" => texts_of(&v["item"]["content"], &mut r.copies),
                "response.completed" => {
                    for item in v["response"]["output"]
                        .as_array()
                        .map(Vec::as_slice)
                        .unwrap_or(&[])
                    {
                        texts_of(&item["content"], &mut r.copies);
                    }
                }
                _ => {}
            },
            Dialect::AnthropicMessages => {
                if v["type"] == "content_block_delta" {
                    r.text.push_str(v["delta"]["text"].as_str().unwrap_or(""));
                }
            }
            _ => {
                let mut parts = Vec::new();
                texts_of(&v["result"]["content"], &mut parts);
                r.text.push_str(&parts.concat());
            }
        }
    }
    r
}

fn rewrite(dialect: Dialect, chunks: &[&[u8]]) -> Vec<u8> {
    let mut rw = StreamRewriter::new(dialect, dev_policy(), masker(), "fuzz", Arc::new(NoSession))
        .expect("inspected dialect");
    let mut out = Vec::new();
    for c in chunks {
        out.extend_from_slice(&rw.push(c));
    }
    out.extend_from_slice(&rw.finish());
    let _ = rw.report();
    out
}

pub fn run(data: &[u8]) {
    let mut inp = Input::new(data);
    let mode = inp.byte();
    let dialect = DIALECTS[(mode & 3) as usize];
    let nf = 1 + inp.below(6);
    let sizes = inp.cuts(nf, 24);
    let nc = 1 + inp.below(6);
    let cuts = inp.cuts(nc, 200);
    let payload = inp.rest();
    if mode & 0x80 != 0 {
        // Raw bytes as the upstream stream: anything goes, nothing crashes.
        let _ = rewrite(dialect, &pieces(payload, &cuts));
        return;
    }
    let text = String::from_utf8_lossy(payload).into_owned();
    let upstream = upstream(dialect, &fragments(&text, &sizes));
    let out = rewrite(dialect, &pieces(upstream.as_bytes(), &cuts));
    let got = read(dialect, &out);
    for (value, allowed) in masked_values(&text) {
        let shown = occurrences(&got.text, &value);
        assert!(
            shown <= allowed,
            "{dialect:?}: a value the buffered path masks reached the client in the stream ({shown} > {allowed}): {value:?}"
        );
        for copy in &got.copies {
            let shown = occurrences(copy, &value);
            assert!(
                shown <= allowed,
                "{dialect:?}: a value the buffered path masks reached the client in a full copy: {value:?}"
            );
        }
    }
}
