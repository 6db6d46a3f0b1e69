//! Stream rewriter tests: wire fixtures fed at every split point, SDK-style
//! reassembly of what comes out, and property tests on generated streams.
//! The expected text is always the *non-streaming* redaction of the full
//! text by the real redactor of the embedded `dev` policy, so rules added
//! later are held to the same equality.

use super::sse::SseParser;
use super::*;
use crate::datapath::enforce::{inspect_response, Inspection};
use crate::datapath::hooks::{Judge, NoSession, SessionHooks};
use crate::decision::pipeline::{self, Gated, Inputs, Outcome, StateView, Who};
use proptest::prelude::*;
use serde_json::json;
use std::collections::BTreeMap;

const KEY: &str = "AKIAIOSFODNN7EXAMPLE";

fn policy() -> Arc<Policy> {
    Arc::new(Policy::load("dev", None).unwrap())
}

fn masker() -> Masker {
    Masker::new([9; 32])
}

fn rewriter(dialect: Dialect, policy: &Arc<Policy>) -> StreamRewriter {
    StreamRewriter::new(
        dialect,
        policy.clone(),
        masker(),
        "req-test",
        Arc::new(NoSession),
    )
    .unwrap()
}

fn fixture(path: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/../tests/fixtures/wire/{path}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

/// Feed `chunks`; return the output after each chunk (finish appended to
/// the last).
fn feed(rw: &mut StreamRewriter, chunks: &[&[u8]]) -> Vec<Vec<u8>> {
    let mut outs: Vec<Vec<u8>> = chunks.iter().map(|c| rw.push(c).to_vec()).collect();
    let tail = rw.finish();
    match outs.last_mut() {
        Some(last) => last.extend_from_slice(&tail),
        None => outs.push(tail.to_vec()),
    }
    outs
}

/// What an SDK reassembles from a stream, plus the protocol invariants it
/// relies on (checked while assembling).
#[derive(Debug, Default, Clone, PartialEq)]
struct Assembled {
    /// Text per channel key.
    texts: BTreeMap<String, String>,
    /// Tool calls: (name, arguments).
    calls: Vec<(String, String)>,
    /// finish_reason / stop_reason / response status.
    ends: Vec<String>,
    /// Full copies (Responses): (channel key, text) in order of arrival.
    copies: Vec<(String, String)>,
    errors: usize,
    done_marker: bool,
}

fn events_of(bytes: &[u8]) -> Vec<(Option<String>, String)> {
    let mut p = SseParser::new(usize::MAX);
    let mut out = Vec::new();
    let mut take = |e: sse::RawEvent| {
        if let Some(f) = e.fields() {
            if let Some(d) = f.data {
                out.push((f.event.map(str::to_string), d.into_owned()));
            }
        }
    };
    p.push(bytes, &mut take).unwrap();
    if let Some(e) = p.finish() {
        take(e);
    }
    out
}

fn assemble(dialect: Dialect, bytes: &[u8]) -> Assembled {
    let mut a = Assembled::default();
    let mut seq: Option<i64> = None;
    // Chat: per (choice, index) → (name, args); Anthropic: per index.
    let mut calls: BTreeMap<(u64, u64), (String, String)> = BTreeMap::new();
    for (event, data) in events_of(bytes) {
        if data.trim() == "[DONE]" {
            a.done_marker = true;
            continue;
        }
        let v: Value = serde_json::from_str(&data).expect("every data line is JSON");
        match dialect {
            Dialect::OpenaiChat => {
                if v.get("error").is_some() {
                    a.errors += 1;
                    continue;
                }
                for c in v["choices"].as_array().into_iter().flatten() {
                    let i = c["index"].as_u64().unwrap();
                    if let Some(t) = c["delta"]["content"].as_str() {
                        a.texts.entry(format!("c{i}")).or_default().push_str(t);
                    }
                    for tc in c["delta"]["tool_calls"].as_array().into_iter().flatten() {
                        let idx = tc["index"].as_u64().unwrap();
                        // The SDK indexes its list by `index`: no gaps.
                        let existing = calls.keys().filter(|(ch, _)| *ch == i).count() as u64;
                        assert!(idx <= existing, "tool call index gap: {data}");
                        let e = calls.entry((i, idx)).or_default();
                        e.0.push_str(tc["function"]["name"].as_str().unwrap_or(""));
                        e.1.push_str(tc["function"]["arguments"].as_str().unwrap_or(""));
                    }
                    if let Some(f) = c["finish_reason"].as_str() {
                        a.ends.push(f.to_string());
                    }
                }
            }
            Dialect::OpenaiResponses => {
                let ty = v["type"].as_str().unwrap();
                assert_eq!(event.as_deref(), Some(ty), "event line matches type");
                let n = v["sequence_number"].as_i64().expect("sequence_number");
                if let Some(prev) = seq {
                    assert_eq!(n, prev + 1, "sequence numbers increase by one: {data}");
                }
                seq = Some(n);
                let key = |v: &Value| {
                    format!(
                        "{}/{}",
                        v["item_id"].as_str().unwrap_or(""),
                        v["content_index"].as_i64().unwrap_or(0)
                    )
                };
                match ty {
                    "response.output_text.delta" => {
                        a.texts
                            .entry(key(&v))
                            .or_default()
                            .push_str(v["delta"].as_str().unwrap());
                    }
                    "response.output_text.done" => {
                        a.copies.push((key(&v), v["text"].as_str().unwrap().into()))
                    }
                    "response.content_part.done" => a
                        .copies
                        .push((key(&v), v["part"]["text"].as_str().unwrap().into())),
                    "response.output_item.done" => {
                        let item = &v["item"];
                        if item["type"] == "function_call" {
                            a.calls.push((
                                item["name"].as_str().unwrap().into(),
                                item["arguments"].as_str().unwrap().into(),
                            ));
                        }
                        copies_of_item(item, &mut a.copies);
                    }
                    "response.completed" | "response.failed" | "response.incomplete" => {
                        a.ends
                            .push(v["response"]["status"].as_str().unwrap_or("").into());
                        for item in v["response"]["output"].as_array().into_iter().flatten() {
                            copies_of_item(item, &mut a.copies);
                        }
                    }
                    "error" => a.errors += 1,
                    _ => {}
                }
            }
            Dialect::AnthropicMessages => {
                let ty = v["type"].as_str().unwrap();
                assert_eq!(
                    event.as_deref(),
                    Some(ty),
                    "every event keeps its event: line"
                );
                let i = v["index"].as_u64().unwrap_or(0);
                match ty {
                    "content_block_start" if v["content_block"]["type"] == "tool_use" => {
                        calls.insert(
                            (0, i),
                            (
                                v["content_block"]["name"].as_str().unwrap().into(),
                                String::new(),
                            ),
                        );
                    }
                    "content_block_delta" => match v["delta"]["type"].as_str().unwrap() {
                        "text_delta" => a
                            .texts
                            .entry(format!("b{i}"))
                            .or_default()
                            .push_str(v["delta"]["text"].as_str().unwrap()),
                        "input_json_delta" => {
                            let e = calls.get_mut(&(0, i)).expect("tool block started");
                            e.1.push_str(v["delta"]["partial_json"].as_str().unwrap());
                            // The SDK re-parses the concatenation as partial JSON.
                            assert!(is_json_prefix(&e.1), "not a JSON prefix: {}", e.1);
                        }
                        _ => {}
                    },
                    "message_delta" => a
                        .ends
                        .push(v["delta"]["stop_reason"].as_str().unwrap_or("").into()),
                    "error" => a.errors += 1,
                    _ => {}
                }
            }
            _ => unreachable!(),
        }
    }
    if dialect != Dialect::OpenaiResponses {
        a.calls.extend(calls.into_values());
    }
    a
}

fn copies_of_item(item: &Value, copies: &mut Vec<(String, String)>) {
    if item["type"] != "message" {
        return;
    }
    for (i, part) in item["content"].as_array().into_iter().flatten().enumerate() {
        if let Some(t) = part["text"].as_str() {
            copies.push((
                format!("{}/{i}", item["id"].as_str().unwrap_or("")),
                t.into(),
            ));
        }
    }
}

/// A JSON text that could still be completed (what a partial-JSON parser
/// accepts): balanced so far, no stray characters.
fn is_json_prefix(s: &str) -> bool {
    let t = s.trim();
    if t.is_empty() {
        return true;
    }
    serde_json::from_str::<Value>(t).is_ok() || {
        let mut de = serde_json::Deserializer::from_str(t);
        match Value::deserialize(&mut de) {
            Ok(_) => true,
            Err(e) => e.is_eof(),
        }
    }
}

use serde::Deserialize;

/// The redaction of each channel's complete upstream text.
fn expected(dialect: Dialect, upstream: &[u8], p: &Policy) -> Assembled {
    let mut a = assemble(dialect, upstream);
    for t in a.texts.values_mut() {
        if let Some(r) = p.redactor.redact(t, &masker()) {
            *t = r.text;
        }
    }
    a
}

fn is_prefix_of(got: &Assembled, want: &Assembled) -> bool {
    got.texts
        .iter()
        .all(|(k, t)| want.texts.get(k).is_some_and(|w| w.starts_with(t.as_str())))
}

/// Every split point: the reassembled text equals the non-streaming
/// redaction, and what was sent after the first part is a prefix of it.
fn check_every_split(dialect: Dialect, file: &str) -> Assembled {
    let p = policy();
    let raw = fixture(file);
    let want = expected(dialect, &raw, &p);
    let whole = {
        let mut rw = rewriter(dialect, &p);
        feed(&mut rw, &[&raw]).concat()
    };
    let got_whole = assemble(dialect, &whole);
    // Upstream text channels come out as their non-streaming redaction
    // (a refusal may follow a channel's text, or open a new one).
    for (k, t) in &want.texts {
        assert!(got_whole.texts[k].starts_with(t.as_str()), "{file}: {k}");
    }
    for cut in 0..=raw.len() {
        let (x, y) = raw.split_at(cut);
        let mut rw = rewriter(dialect, &p);
        let outs = feed(&mut rw, &[x, y]);
        let first = assemble(dialect, &outs[0]);
        assert!(
            is_prefix_of(&first, &got_whole),
            "{file} cut {cut}: {first:?}"
        );
        let all = outs.concat();
        assert_eq!(assemble(dialect, &all), got_whole, "{file} cut {cut}");
        assert!(
            !contains(&all, "AKIAIOSF") && !contains(&all, "ODNN7EXAMPLE"),
            "{file} cut {cut}: {}",
            String::from_utf8_lossy(&all)
        );
    }
    // Byte by byte, checking what the client has after every byte.
    let mut rw = rewriter(dialect, &p);
    let mut sent = Vec::new();
    for b in raw.chunks(1) {
        let out = rw.push(b);
        if !out.is_empty() {
            sent.extend_from_slice(&out);
            assert!(
                is_prefix_of(&assemble(dialect, &sent), &got_whole),
                "{file}"
            );
        }
    }
    sent.extend_from_slice(&rw.finish());
    assert_eq!(assemble(dialect, &sent), got_whole, "{file} byte by byte");
    got_whole
}

fn contains(hay: &[u8], needle: &str) -> bool {
    memchr::memmem::find(hay, needle.as_bytes()).is_some()
}

#[test]
fn chat_fixtures_survive_every_split_point() {
    for file in [
        "openai_chat/stream_text_secret_split.sse",
        "openai_chat/stream_tool_calls.sse",
        "openai_chat/stream_parallel_tool_calls.sse",
        "openai_chat/stream_error_midstream.sse",
    ] {
        check_every_split(Dialect::OpenaiChat, file);
    }
}

#[test]
fn responses_fixtures_survive_every_split_point() {
    for file in [
        "openai_responses/stream_text_secret_split.sse",
        "openai_responses/stream_function_call.sse",
        "openai_responses/stream_parallel_function_calls.sse",
        "openai_responses/stream_error_midstream.sse",
    ] {
        check_every_split(Dialect::OpenaiResponses, file);
    }
}

#[test]
fn anthropic_fixtures_survive_every_split_point() {
    for file in [
        "anthropic_messages/stream_text_secret_split.sse",
        "anthropic_messages/stream_tool_use.sse",
        "anthropic_messages/stream_parallel_tool_use.sse",
        "anthropic_messages/stream_error_midstream.sse",
    ] {
        check_every_split(Dialect::AnthropicMessages, file);
    }
}

#[test]
fn split_key_is_masked_in_every_dialect_and_every_copy() {
    for (dialect, file) in [
        (
            Dialect::OpenaiChat,
            "openai_chat/stream_text_secret_split.sse",
        ),
        (
            Dialect::OpenaiResponses,
            "openai_responses/stream_text_secret_split.sse",
        ),
        (
            Dialect::AnthropicMessages,
            "anthropic_messages/stream_text_secret_split.sse",
        ),
    ] {
        let got = check_every_split(dialect, file);
        let p = policy();
        assert_eq!(got.texts, expected(dialect, &fixture(file), &p).texts);
        let text = got.texts.values().next().unwrap();
        assert!(
            text.starts_with("Here is the AWS key from the config: [REDACTED:aws_access_key_id:"),
            "{dialect:?}: {text}"
        );
        assert!(text.ends_with("] (store it safely)."), "{text}");
        // Responses: every repeated copy equals the reassembled deltas.
        for (key, copy) in &got.copies {
            assert_eq!(Some(copy), got.texts.get(key), "{key}");
        }
        if dialect == Dialect::OpenaiResponses {
            assert_eq!(got.copies.len(), 4, "done, part, item, completed");
        }
    }
}

#[test]
fn dangerous_tool_calls_become_refusals_in_every_dialect() {
    for (dialect, file) in [
        (Dialect::OpenaiChat, "openai_chat/stream_tool_calls.sse"),
        (
            Dialect::OpenaiResponses,
            "openai_responses/stream_function_call.sse",
        ),
        (
            Dialect::AnthropicMessages,
            "anthropic_messages/stream_tool_use.sse",
        ),
    ] {
        let p = policy();
        let mut rw = rewriter(dialect, &p);
        let out = feed(&mut rw, &[&fixture(file)]).concat();
        let text = String::from_utf8(out.clone()).unwrap();
        assert!(
            !text.contains("id_rsa"),
            "{dialect:?}: the call never reaches the agent"
        );
        let got = assemble(dialect, &out);
        assert!(got.calls.is_empty(), "{dialect:?}: {:?}", got.calls);
        let all_text: String = got.texts.values().cloned().collect();
        assert!(
            all_text.contains("The call to tool `shell` was blocked by the security gateway"),
            "{dialect:?}: {all_text}"
        );
        match dialect {
            Dialect::OpenaiChat => {
                assert_eq!(got.ends, ["stop"]);
                assert!(got.done_marker);
            }
            Dialect::OpenaiResponses => assert_eq!(got.ends, ["completed"]),
            _ => assert_eq!(got.ends, ["end_turn"]),
        }
        let report = rw.report();
        assert_eq!(report.decision, Decision::Block);
        assert_eq!(report.tools.len(), 1);
        assert_eq!(report.tools[0].decision, Decision::Block);
    }
}

/// The streaming and the buffered path judge the same calls the same way.
#[test]
fn streamed_calls_are_judged_like_buffered_ones() {
    let p = policy();
    for (dialect, stream, body) in [
        (
            Dialect::OpenaiChat,
            "openai_chat/stream_tool_calls.sse",
            "openai_chat/response_tool_calls.json",
        ),
        (
            Dialect::OpenaiResponses,
            "openai_responses/stream_function_call.sse",
            "openai_responses/response_function_call.json",
        ),
        (
            Dialect::AnthropicMessages,
            "anthropic_messages/stream_tool_use.sse",
            "anthropic_messages/response_tool_use.json",
        ),
    ] {
        let mut rw = rewriter(dialect, &p);
        feed(&mut rw, &[&fixture(stream)]);
        let m = masker();
        let ins = Inspection {
            policy: &p,
            masker: &m,
            dialect,
            request_id: "req-test",
            tool_name: "",
            rpc_id: Value::Null,
            memo_scope: None,
            kept: None,
        };
        let (_, buffered) = inspect_response(&ins, &fixture(body), 200);
        let s: Vec<_> = rw
            .report()
            .tools
            .iter()
            .map(|t| (t.name.clone(), t.target.clone(), t.decision))
            .collect();
        let b: Vec<_> = buffered
            .tools
            .iter()
            .map(|t| (t.name.clone(), t.target.clone(), t.decision))
            .collect();
        assert_eq!(s, b, "{dialect:?}");
    }
}

/// A stream of two calls where one is dangerous: the other is delivered
/// whole, re-indexed, and the text keeps flowing around them.
fn chat_chunk(delta: Value, finish: Option<&str>) -> String {
    let v = json!({"id":"c1","object":"chat.completion.chunk","created":1,"model":"m",
                   "choices":[{"index":0,"delta":delta,"logprobs":null,"finish_reason":finish}]});
    format!("data: {v}\n\n")
}

#[test]
fn chat_allowed_call_survives_next_to_a_blocked_one() {
    let p = policy();
    let mut s = String::new();
    s += &chat_chunk(json!({"role":"assistant","content":"Let me check. "}), None);
    s += &chat_chunk(
        json!({"tool_calls":[{"index":0,"id":"call_a","type":"function","function":{"name":"shell","arguments":""}}]}),
        None,
    );
    s += &chat_chunk(
        json!({"tool_calls":[{"index":1,"id":"call_b","type":"function","function":{"name":"get_weather","arguments":"{\"ci"}}]}),
        None,
    );
    s += &chat_chunk(
        json!({"tool_calls":[{"index":0,"function":{"arguments":"{\"command\":\"cat ~/.ssh/id_rsa\"}"}},{"index":1,"function":{"arguments":"ty\":\"Paris\"}"}}]}),
        None,
    );
    s += &chat_chunk(json!({}), Some("tool_calls"));
    s += "data: [DONE]\n\n";
    let mut rw = rewriter(Dialect::OpenaiChat, &p);
    let out = feed(&mut rw, &[s.as_bytes()]).concat();
    let got = assemble(Dialect::OpenaiChat, &out);
    assert_eq!(
        got.calls,
        [(
            "get_weather".to_string(),
            "{\"city\":\"Paris\"}".to_string()
        )]
    );
    assert_eq!(got.ends, ["tool_calls"]);
    let text = &got.texts["c0"];
    assert!(
        text.starts_with("Let me check. \n\n[asg] The call to tool `shell` was blocked"),
        "{text}"
    );
    assert!(got.done_marker);
}

#[test]
fn secrets_in_allowed_arguments_are_masked_in_every_dialect() {
    let p = policy();
    let args = format!("{{\"path\":\"/tmp/x\",\"note\":\"key {KEY}\"}}");
    // Chat
    let mut s = chat_chunk(
        json!({"role":"assistant","content":null,"tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"write_note","arguments":""}}]}),
        None,
    );
    for piece in args.as_bytes().chunks(5) {
        let frag = std::str::from_utf8(piece).unwrap();
        s += &chat_chunk(
            json!({"tool_calls":[{"index":0,"function":{"arguments":frag}}]}),
            None,
        );
    }
    s += &chat_chunk(json!({}), Some("tool_calls"));
    let mut rw = rewriter(Dialect::OpenaiChat, &p);
    let got = assemble(
        Dialect::OpenaiChat,
        &feed(&mut rw, &[s.as_bytes()]).concat(),
    );
    assert_eq!(got.calls.len(), 1);
    let masked: Value = serde_json::from_str(&got.calls[0].1).unwrap();
    assert!(masked["note"]
        .as_str()
        .unwrap()
        .starts_with("key [REDACTED:aws_access_key_id:"));
    // Anthropic
    let mut s = String::new();
    let ev = |name: &str, v: Value| format!("event: {name}\ndata: {v}\n\n");
    s += &ev(
        "content_block_start",
        json!({"type":"content_block_start","index":0,"content_block":{"type":"tool_use","id":"toolu_1","name":"write_note","input":{}}}),
    );
    for piece in args.as_bytes().chunks(5) {
        let frag = std::str::from_utf8(piece).unwrap();
        s += &ev(
            "content_block_delta",
            json!({"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":frag}}),
        );
    }
    s += &ev(
        "content_block_stop",
        json!({"type":"content_block_stop","index":0}),
    );
    s += &ev(
        "message_delta",
        json!({"type":"message_delta","delta":{"stop_reason":"tool_use"}}),
    );
    let mut rw = rewriter(Dialect::AnthropicMessages, &p);
    let out = feed(&mut rw, &[s.as_bytes()]).concat();
    assert!(!contains(&out, KEY));
    let got = assemble(Dialect::AnthropicMessages, &out);
    let input: Value = serde_json::from_str(&got.calls[0].1).unwrap();
    assert!(input["note"]
        .as_str()
        .unwrap()
        .starts_with("key [REDACTED:aws_access_key_id:"));
    assert_eq!(got.ends, ["tool_use"]);
    assert_eq!(rw.report().decision, Decision::AllowWithRedaction);
}

#[test]
fn responses_masked_call_and_completed_copy_agree() {
    let p = policy();
    let args = format!("{{\"query\":\"key {KEY}\"}}");
    let mut n = 0;
    let mut ev = |v: Value| {
        let mut v = v;
        v["sequence_number"] = json!(n);
        n += 1;
        format!("event: {}\ndata: {v}\n\n", v["type"].as_str().unwrap())
    };
    let item = |args: &str, status: &str| json!({"id":"fc_1","type":"function_call","status":status,"arguments":args,"call_id":"call_1","name":"lookup"});
    let mut s = ev(
        json!({"type":"response.output_item.added","output_index":0,"item":item("", "in_progress")}),
    );
    for piece in args.as_bytes().chunks(6) {
        let frag = std::str::from_utf8(piece).unwrap();
        s += &ev(
            json!({"type":"response.function_call_arguments.delta","item_id":"fc_1","output_index":0,"delta":frag}),
        );
    }
    s += &ev(
        json!({"type":"response.function_call_arguments.done","item_id":"fc_1","output_index":0,"arguments":args}),
    );
    s += &ev(
        json!({"type":"response.output_item.done","output_index":0,"item":item(&args, "completed")}),
    );
    s += &ev(
        json!({"type":"response.completed","response":{"id":"r","status":"completed","output":[item(&args, "completed")]}}),
    );
    let mut rw = rewriter(Dialect::OpenaiResponses, &p);
    let out = feed(&mut rw, &[s.as_bytes()]).concat();
    assert!(!contains(&out, KEY), "{}", String::from_utf8_lossy(&out));
    let got = assemble(Dialect::OpenaiResponses, &out);
    assert_eq!(got.calls.len(), 1);
    assert!(
        got.calls[0].1.contains("[REDACTED:aws_access_key_id:"),
        "{:?}",
        got.calls
    );
    let completed = events_of(&out).last().unwrap().1.clone();
    let completed: Value = serde_json::from_str(&completed).unwrap();
    assert_eq!(
        completed["response"]["output"][0]["arguments"],
        got.calls[0].1.as_str()
    );
    // The streamed fragments reassemble to the same masked arguments.
    let deltas: String = events_of(&out)
        .iter()
        .filter(|(e, _)| e.as_deref() == Some("response.function_call_arguments.delta"))
        .map(|(_, d)| {
            serde_json::from_str::<Value>(d).unwrap()["delta"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(deltas, got.calls[0].1);
}

#[test]
fn mcp_sse_answer_is_masked_and_keeps_its_framing() {
    let p = policy();
    let mut rw = rewriter(Dialect::Mcp, &p);
    let raw = fixture("mcp/07_tools_call_response.sse");
    let out = feed(&mut rw, &[&raw]).concat();
    let text = String::from_utf8(out).unwrap();
    assert!(!text.contains(KEY), "{text}");
    assert!(text.contains("id: 0a1b2c3d\n"), "{text}");
    assert!(text.contains("notifications/progress"));
    let events = events_of(text.as_bytes());
    assert_eq!(events.len(), 2);
    let resp: Value = serde_json::from_str(&events[1].1).unwrap();
    assert!(resp["result"]["structuredContent"]["aws_access_key_id"]
        .as_str()
        .unwrap()
        .starts_with("[REDACTED:"));
}

#[test]
fn midstream_errors_pass_through_after_the_held_text() {
    for (dialect, file) in [
        (
            Dialect::OpenaiChat,
            "openai_chat/stream_error_midstream.sse",
        ),
        (
            Dialect::OpenaiResponses,
            "openai_responses/stream_error_midstream.sse",
        ),
        (
            Dialect::AnthropicMessages,
            "anthropic_messages/stream_error_midstream.sse",
        ),
    ] {
        let got = check_every_split(dialect, file);
        assert_eq!(got.errors, 1, "{dialect:?}");
        assert_eq!(
            got.texts.values().next().map(String::as_str),
            Some("Here is the AWS key from the config: ")
        );
    }
}

#[test]
fn benign_stream_text_is_unchanged() {
    let p = policy();
    let mut s = String::new();
    let words = "The quick brown fox, it's said, jumps over 3 lazy dogs at 10:30 (twice).\nDone!";
    for piece in words.as_bytes().chunks(4) {
        s += &chat_chunk(
            json!({"content": std::str::from_utf8(piece).unwrap()}),
            None,
        );
    }
    s += &chat_chunk(json!({}), Some("stop"));
    s += "data: [DONE]\n\n";
    let mut rw = rewriter(Dialect::OpenaiChat, &p);
    let got = assemble(
        Dialect::OpenaiChat,
        &feed(&mut rw, &[s.as_bytes()]).concat(),
    );
    assert_eq!(got.texts["c0"], words);
    assert_eq!(rw.report().decision, Decision::Allow);
}

#[test]
fn oversized_event_withholds_the_rest_with_an_error() {
    let mut p = Policy::load("dev", None).unwrap();
    p.file.proxy.max_body_bytes = 1024;
    let p = Arc::new(p);
    let mut rw = rewriter(Dialect::AnthropicMessages, &p);
    let big = format!("event: content_block_delta\ndata: {}", "x".repeat(2000));
    let out = rw.push(big.as_bytes());
    let events = events_of(&out);
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].0.as_deref(), Some("error"));
    assert!(rw.push(b"\n\nevent: ping\ndata: {}\n\n").is_empty());
    assert_eq!(rw.report().decision, Decision::Block);
}

// ---------------------------------------------------------------- properties

/// Pieces of text: prose, punctuation, and secrets of every span shape.
fn segment() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[a-z]{1,9}",
        1 => "[A-Z][a-z]{1,8}",
        1 => "[0-9]{1,4}",
        1 => prop::sample::select(vec![
            ",", ".", "!", "?", ":", "(", ")", "'", "\"", "-", "é", "日本", "—", "it's", "10:30",
        ]).prop_map(str::to_string),
        1 => "[A-Z2-7]{16}".prop_map(|s| format!("AKIA{s}")),
        1 => "[A-Za-z0-9]{40}".prop_map(|s| format!("sk-proj-{s}")),
        1 => "[A-Za-z0-9]{36}".prop_map(|s| format!("ghp_{s}")),
        1 => "[A-Za-z0-9]{12}".prop_map(|s| format!("password={s}")),
        1 => "[a-z]{3,6} [a-z]{3,6} [a-z]{3,6}".prop_map(|s| format!("api_key: \"{s}\"")),
        1 => "[A-Za-z0-9_-]{24,40}".prop_map(|s| format!("Authorization: Bearer {s}")),
        1 => "[a-z]{4,10}".prop_map(|s| format!("https://admin:{s}@db.example.com/x")),
        1 => "[A-Za-z0-9/+]{64}".prop_map(|s| format!(
            "-----BEGIN RSA PRIVATE KEY-----\n{s}\n{s}\n-----END RSA PRIVATE KEY-----"
        )),
        1 => prop::sample::select(vec![
            "+1 (555) 123-4567", "4111 1111 1111 1111", "GB82 WEST 1234 5698 7654 32",
            "jane.doe@example.org", "123-45-6789", "(555) 123-4567",
        ]).prop_map(str::to_string),
        1 => "[A-Za-z0-9]{24,48}",
    ]
}

fn separator() -> impl Strategy<Value = String> {
    prop::sample::select(vec![" ", " ", " ", "\n", ", ", ". ", "\n\n", "  ", "\t"])
        .prop_map(str::to_string)
}

fn text() -> impl Strategy<Value = String> {
    prop::collection::vec((segment(), separator()), 1..40)
        .prop_map(|v| v.into_iter().map(|(a, b)| a + &b).collect())
}

/// Harder texts: segments glued together or joined by punctuation, so
/// secrets touch each other, quotes and brackets.
fn glued_text() -> impl Strategy<Value = String> {
    let sep = prop::sample::select(vec![
        "", "", " ", "(", ")", "\"", "'", ",", ":", "=", "\n", ". ", "/",
    ])
    .prop_map(str::to_string);
    prop::collection::vec((segment(), sep), 1..30)
        .prop_map(|v| v.into_iter().map(|(a, b)| a + &b).collect())
}

/// Cut `s` into fragments at char boundaries, sizes from `sizes`.
fn fragments(s: &str, sizes: &[usize]) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = s;
    let mut k = 0;
    while !rest.is_empty() {
        let mut n = sizes[k % sizes.len()].clamp(1, rest.len());
        while !rest.is_char_boundary(n) {
            n += 1;
        }
        out.push(rest[..n].to_string());
        rest = &rest[n..];
        k += 1;
    }
    out
}

fn stream_for(dialect: Dialect, frags: &[String]) -> String {
    let mut s = String::new();
    match dialect {
        Dialect::OpenaiChat => {
            s += &chat_chunk(json!({"role":"assistant","content":""}), None);
            for f in frags {
                s += &chat_chunk(json!({ "content": f }), None);
            }
            s += &chat_chunk(json!({}), Some("stop"));
            s += "data: [DONE]\n\n";
        }
        Dialect::OpenaiResponses => {
            let mut n = 0;
            let mut ev = |v: Value| {
                let mut v = v;
                v["sequence_number"] = json!(n);
                n += 1;
                format!("event: {}\ndata: {v}\n\n", v["type"].as_str().unwrap())
            };
            s += &ev(
                json!({"type":"response.output_item.added","output_index":0,"item":{"id":"msg_1","type":"message","status":"in_progress","content":[],"role":"assistant"}}),
            );
            for f in frags {
                s += &ev(
                    json!({"type":"response.output_text.delta","item_id":"msg_1","output_index":0,"content_index":0,"delta":f,"logprobs":[]}),
                );
            }
            let full: String = frags.concat();
            s += &ev(
                json!({"type":"response.output_text.done","item_id":"msg_1","output_index":0,"content_index":0,"text":full,"logprobs":[]}),
            );
            s += &ev(
                json!({"type":"response.output_item.done","output_index":0,"item":{"id":"msg_1","type":"message","status":"completed","role":"assistant","content":[{"type":"output_text","text":full,"annotations":[]}]}}),
            );
            s += &ev(
                json!({"type":"response.completed","response":{"id":"r","status":"completed","output":[{"id":"msg_1","type":"message","status":"completed","role":"assistant","content":[{"type":"output_text","text":full,"annotations":[]}]}]}}),
            );
        }
        _ => {
            let ev = |v: Value| format!("event: {}\ndata: {v}\n\n", v["type"].as_str().unwrap());
            s += &ev(
                json!({"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}),
            );
            for f in frags {
                s += &ev(
                    json!({"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":f}}),
                );
            }
            s += &ev(json!({"type":"content_block_stop","index":0}));
            s += &ev(json!({"type":"message_delta","delta":{"stop_reason":"end_turn"}}));
            s += &ev(json!({"type":"message_stop"}));
        }
    }
    s
}

/// Cases per property: `PROPTEST_CASES` (default 96; CI may raise it).
fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(96)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    /// The core property on one channel: whatever the fragmentation, the
    /// client never has more than a prefix of the redacted text, and ends
    /// with exactly the non-streaming redaction of the whole text.
    #[test]
    fn channel_equals_non_streaming_redaction(
        t in text(),
        sizes in prop::collection::vec(1usize..24, 1..8),
    ) {
        let p = policy();
        let m = masker();
        let want = p.redactor.redact(&t, &m).map_or_else(|| t.clone(), |r| r.text);
        let mut ch = TextChannel::new();
        let mut log = MaskLog::new(32);
        let mut got = String::new();
        for f in fragments(&t, &sizes) {
            ch.push(&f, &p.redactor, &m, &mut got, &mut log);
            prop_assert!(want.starts_with(&got), "sent {got:?}\nwant {want:?}");
        }
        ch.flush(&p.redactor, &m, &mut got, &mut log);
        prop_assert_eq!(got, want);
    }

    /// Same property on harder texts (secrets glued to each other, to
    /// quotes, brackets and separators).
    #[test]
    fn channel_equals_non_streaming_redaction_on_glued_text(
        t in glued_text(),
        sizes in prop::collection::vec(1usize..24, 1..8),
    ) {
        let p = policy();
        let m = masker();
        let want = p.redactor.redact(&t, &m).map_or_else(|| t.clone(), |r| r.text);
        let mut ch = TextChannel::new();
        let mut log = MaskLog::new(32);
        let mut got = String::new();
        for f in fragments(&t, &sizes) {
            ch.push(&f, &p.redactor, &m, &mut got, &mut log);
            prop_assert!(want.starts_with(&got), "sent {got:?}\nwant {want:?}");
        }
        ch.flush(&p.redactor, &m, &mut got, &mut log);
        prop_assert_eq!(got, want);
    }

    /// The same through each dialect's framing, with the upstream bytes
    /// split at random points.
    #[test]
    fn streams_equal_non_streaming_redaction(
        t in text(),
        sizes in prop::collection::vec(1usize..16, 1..6),
        cuts in prop::collection::vec(1usize..200, 1..10),
        d in 0usize..3,
    ) {
        let dialect = [Dialect::OpenaiChat, Dialect::OpenaiResponses, Dialect::AnthropicMessages][d];
        let p = policy();
        let upstream = stream_for(dialect, &fragments(&t, &sizes));
        let want = expected(dialect, upstream.as_bytes(), &p);
        let mut rw = rewriter(dialect, &p);
        let bytes = upstream.as_bytes();
        let mut sent = Vec::new();
        let (mut pos, mut k) = (0, 0);
        while pos < bytes.len() {
            let n = cuts[k % cuts.len()].min(bytes.len() - pos);
            let out = rw.push(&bytes[pos..pos + n]);
            if !out.is_empty() {
                sent.extend_from_slice(&out);
                let so_far = assemble(dialect, &sent);
                prop_assert!(is_prefix_of(&so_far, &want), "{:?} vs {:?}", so_far.texts, want.texts);
            }
            pos += n;
            k += 1;
        }
        sent.extend_from_slice(&rw.finish());
        let got = assemble(dialect, &sent);
        prop_assert_eq!(&got.texts, &want.texts);
        for (key, copy) in &got.copies {
            prop_assert_eq!(Some(copy), got.texts.get(key));
        }
    }
}

/// `obfuscation` is random padding: never scanned, never masked, passed on.
#[test]
fn obfuscation_padding_is_not_scanned() {
    let p = policy();
    let pad = "Zx8Qp2Lm9Rt4Vw7Yk3NbQ1"; // high entropy: would be masked as text
    let chat = format!(
        "data: {}\n\ndata: [DONE]\n\n",
        json!({"id":"c","object":"chat.completion.chunk","created":1,"model":"m",
               "choices":[{"index":0,"delta":{"content":"hi "},"finish_reason":null}],"obfuscation":pad})
    );
    let responses = format!(
        "event: response.output_text.delta\ndata: {}\n\nevent: response.in_progress\ndata: {}\n\n",
        json!({"type":"response.output_text.delta","item_id":"m","output_index":0,"content_index":0,
               "delta":"hi ","logprobs":[],"obfuscation":pad,"sequence_number":0}),
        json!({"type":"response.in_progress","obfuscation":pad,"sequence_number":1})
    );
    for (dialect, s) in [
        (Dialect::OpenaiChat, chat),
        (Dialect::OpenaiResponses, responses),
    ] {
        let mut rw = rewriter(dialect, &p);
        let out = String::from_utf8(feed(&mut rw, &[s.as_bytes()]).concat()).unwrap();
        assert_eq!(out.matches(pad).count(), s.matches(pad).count(), "{out}");
        assert!(!out.contains("[REDACTED:"), "{out}");
    }
}

/// A call the profile sends to a human goes through the session layer like
/// a buffered one: the refusal says approval is required and quotes the id
/// the layer opened, and the stage reports it.
#[test]
fn approval_required_call_mentions_the_approval_id() {
    use std::sync::Mutex;
    struct Recorder(Mutex<Vec<String>>);
    impl SessionHooks for Recorder {
        fn judge(&self, j: &Judge<'_>) -> Outcome {
            let inp = Inputs {
                policy: j.policy,
                masker: j.masker,
                binding_key: b"key",
                request_id: j.request_id,
                who: Who {
                    session_id: "s",
                    agent_id: "a",
                },
                state: StateView::Off,
                now_ms: 0,
                permit: None,
                held: false,
                earlier: j.earlier,
            };
            pipeline::run(&inp, &j.observed("route", false), |steps| {
                steps
                    .iter()
                    .map(|s| {
                        let t = &s.template;
                        self.0
                            .lock()
                            .unwrap()
                            .push(format!("{} {}", t.action_type, t.action_target));
                        let mut approval = t.clone();
                        approval.approval_id = "apr_42".into();
                        Gated::Waiting {
                            approval,
                            created: true,
                            rejected: None,
                        }
                    })
                    .collect()
            })
        }
    }
    let p = Arc::new(Policy::load("production", None).unwrap());
    let hook = Arc::new(Recorder(Mutex::new(Vec::new())));
    let mut rw = StreamRewriter::new(
        Dialect::AnthropicMessages,
        p,
        masker(),
        "req-a",
        hook.clone(),
    )
    .unwrap();
    let ev = |v: Value| format!("event: {}\ndata: {v}\n\n", v["type"].as_str().unwrap());
    let mut s = ev(
        json!({"type":"content_block_start","index":0,"content_block":{"type":"tool_use","id":"toolu_1","name":"shell","input":{}}}),
    );
    s += &ev(
        json!({"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":"{\"command\":\"sudo systemctl restart nginx\"}"}}),
    );
    s += &ev(json!({"type":"content_block_stop","index":0}));
    s += &ev(json!({"type":"message_delta","delta":{"stop_reason":"tool_use"}}));
    let got = assemble(
        Dialect::AnthropicMessages,
        &feed(&mut rw, &[s.as_bytes()]).concat(),
    );
    assert!(got.calls.is_empty());
    let text = &got.texts["b0"];
    assert!(
        text.contains("requires approval") && text.contains("approval id apr_42"),
        "{text}"
    );
    assert_eq!(got.ends, ["end_turn"]);
    assert_eq!(
        *hook.0.lock().unwrap(),
        ["shell {\"command\":\"sudo systemctl restart nginx\"}"]
    );
    let report = rw.report();
    assert_eq!(report.tools[0].decision, Decision::RequireApproval);
    assert_eq!(report.pending_approvals(), ["apr_42"]);
}

/// `proxy.blocked_tool_call = "error"`: the stream ends with the dialect's
/// error event right where the call would have been; nothing follows.
#[test]
fn blocked_call_can_end_the_stream_with_an_error_event() {
    let mut p = Policy::load("dev", None).unwrap();
    p.file.proxy.blocked_tool_call = crate::decision::policy::BlockedToolCall::Error;
    let p = Arc::new(p);
    for (dialect, file) in [
        (Dialect::OpenaiChat, "openai_chat/stream_tool_calls.sse"),
        (
            Dialect::OpenaiResponses,
            "openai_responses/stream_function_call.sse",
        ),
        (
            Dialect::AnthropicMessages,
            "anthropic_messages/stream_tool_use.sse",
        ),
    ] {
        let raw = fixture(file);
        let mut rw = rewriter(dialect, &p);
        let out = feed(&mut rw, &[&raw]).concat();
        assert!(!contains(&out, "id_rsa"), "{dialect:?}");
        let got = assemble(dialect, &out);
        assert_eq!(
            got.errors,
            1,
            "{dialect:?}: {}",
            String::from_utf8_lossy(&out)
        );
        assert!(got.calls.is_empty() && !got.done_marker, "{dialect:?}");
        let events = events_of(&out);
        let (last_name, last) = events.last().unwrap();
        match dialect {
            Dialect::OpenaiChat => assert_eq!(
                serde_json::from_str::<Value>(last).unwrap()["error"]["code"],
                "asg_blocked"
            ),
            Dialect::OpenaiResponses => {
                assert_eq!(last_name.as_deref(), Some("response.failed"));
                assert_eq!(got.ends, ["failed"]);
            }
            _ => assert_eq!(last_name.as_deref(), Some("error")),
        }
        // Same at every split point.
        for cut in (0..raw.len()).step_by(7) {
            let mut rw = rewriter(dialect, &p);
            let (x, y) = raw.split_at(cut);
            assert_eq!(
                feed(&mut rw, &[x, y]).concat(),
                out,
                "{dialect:?} cut {cut}"
            );
        }
    }
}
