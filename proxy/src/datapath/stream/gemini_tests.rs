//! Gemini stream tests: the wire fixtures fed at every split point, in
//! both framings (SSE and the JSON array), reassembled the way the Google
//! SDKs do (concatenating each candidate's text parts).

use super::super::sse::SseParser;
use super::super::StreamRewriter;
use crate::datapath::dialect::Dialect;
use crate::datapath::hooks::NoSession;
use crate::decision::redact::Masker;
use crate::decision::{Decision, Policy};
use serde_json::Value;
use std::sync::Arc;

const KEY: &str = "AKIAIOSFODNN7EXAMPLE";

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/../tests/fixtures/wire/gemini/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

fn rewriter(p: &Arc<Policy>) -> StreamRewriter {
    StreamRewriter::new(
        Dialect::Gemini,
        p.clone(),
        Masker::new([9; 32]),
        "req-test",
        Arc::new(NoSession),
    )
    .unwrap()
}

fn run(rw: &mut StreamRewriter, raw: &[u8], cut: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for piece in raw.chunks(cut.max(1)) {
        out.extend_from_slice(&rw.push(piece));
    }
    out.extend_from_slice(&rw.finish());
    out
}

/// The chunks a client parses, in either framing.
fn chunks(out: &[u8], array: bool) -> Vec<Value> {
    if array {
        return serde_json::from_slice::<Vec<Value>>(out).expect("a JSON array");
    }
    let mut got = Vec::new();
    let mut p = SseParser::new(usize::MAX);
    let mut take = |e: super::super::sse::RawEvent| {
        let f = e.fields().unwrap();
        // The Google SDKs match `data: <json>` followed by a blank line.
        assert!(std::str::from_utf8(&e.raw).unwrap().starts_with("data: "));
        got.push(serde_json::from_str(f.data.as_deref().unwrap()).unwrap());
    };
    p.push(out, &mut take).unwrap();
    if let Some(e) = p.finish() {
        take(e);
    }
    got
}

/// Concatenated text, function call names, finish reasons, errors.
fn assemble(chunks: &[Value]) -> (String, Vec<String>, Vec<String>, usize) {
    let (mut text, mut calls, mut ends, mut errors) = (String::new(), vec![], vec![], 0);
    for c in chunks {
        if c.get("error").is_some() {
            errors += 1;
        }
        for cand in c["candidates"].as_array().into_iter().flatten() {
            for part in cand["content"]["parts"].as_array().into_iter().flatten() {
                if let Some(t) = part["text"].as_str() {
                    text.push_str(t);
                }
                if let Some(n) = part["functionCall"]["name"].as_str() {
                    calls.push(n.to_string());
                }
            }
            if let Some(f) = cand["finishReason"].as_str() {
                ends.push(f.to_string());
            }
        }
    }
    (text, calls, ends, errors)
}

#[test]
fn split_secret_is_masked_in_both_framings_at_every_cut() {
    let p = Arc::new(Policy::load("dev", None).unwrap());
    let full = format!("Your AWS key id is {KEY}; keep it safe.");
    let want = p
        .redactor
        .redact(&full, &Masker::new([9; 32]))
        .unwrap()
        .text;
    for (file, array) in [
        ("stream_text_secret_split.sse", false),
        ("stream_text_secret_split.json", true),
    ] {
        let raw = fixture(file);
        for cut in 1..raw.len() {
            let mut rw = rewriter(&p);
            if array {
                rw = rw.json_array();
            }
            let out = run(&mut rw, &raw, cut);
            let s = String::from_utf8_lossy(&out);
            assert!(
                !s.contains(KEY) && !s.contains("ODNN7EXAMPLE"),
                "{file} cut {cut}: {s}"
            );
            let (text, _, ends, errors) = assemble(&chunks(&out, array));
            assert_eq!(text, want, "{file} cut {cut}");
            assert_eq!(ends, ["STOP"], "{file} cut {cut}");
            assert_eq!(errors, 0);
            assert_eq!(rw.report().decision, Decision::AllowWithRedaction);
        }
    }
}

#[test]
fn benign_stream_keeps_its_text_and_chunks() {
    let p = Arc::new(Policy::load("dev", None).unwrap());
    let raw = String::from_utf8(fixture("stream_text_secret_split.sse"))
        .unwrap()
        .replace("AKIAIOSF", "the key ")
        .replace("ODNN7EXAMPLE", "is elsewhere");
    let before = chunks(raw.as_bytes(), false);
    let mut rw = rewriter(&p);
    let out = run(&mut rw, raw.as_bytes(), 7);
    let after = chunks(&out, false);
    // Only the tail that could still start a secret moves to a later chunk.
    assert_eq!(after.len(), before.len());
    assert_eq!(assemble(&after), assemble(&before));
    assert_eq!(after[2]["usageMetadata"], before[2]["usageMetadata"]);
    assert_eq!(rw.report().decision, Decision::Allow);
}

#[test]
fn dangerous_call_becomes_refusal_text_and_earlier_text_stays() {
    let p = Arc::new(Policy::load("dev", None).unwrap());
    let raw = fixture("stream_function_call.sse");
    for cut in [1, 9, 64, raw.len()] {
        let mut rw = rewriter(&p);
        let out = run(&mut rw, &raw, cut);
        let s = String::from_utf8_lossy(&out);
        assert!(!s.contains("id_rsa"), "{s}");
        let (text, calls, ends, _) = assemble(&chunks(&out, false));
        assert!(calls.is_empty(), "{s}");
        assert!(text.starts_with("I will show the key."), "{text}");
        assert!(text.contains("blocked by the security gateway"), "{text}");
        assert_eq!(ends, ["STOP"]);
        let report = rw.report();
        assert_eq!(report.tools[0].name, "run_shell_command");
        assert_eq!(report.tools[0].decision, Decision::Block);
    }
}

#[test]
fn benign_call_passes_untouched_and_masked_args_stay_json() {
    let p = Arc::new(Policy::load("dev", None).unwrap());
    let raw = String::from_utf8(fixture("stream_function_call.sse")).unwrap();
    let benign = raw.replace("cat ~/.ssh/id_rsa", "git status");
    let mut rw = rewriter(&p);
    let out = run(&mut rw, benign.as_bytes(), 5);
    let (got, want) = (chunks(&out, false), chunks(benign.as_bytes(), false));
    let call = |c: &Value| {
        c["candidates"][0]["content"]["parts"]
            .as_array()
            .unwrap()
            .last()
            .cloned()
    };
    assert_eq!(
        call(&got[1]),
        call(&want[1]),
        "the call is relayed as it came"
    );
    assert_eq!(assemble(&got), assemble(&want));

    let secret = raw.replace("cat ~/.ssh/id_rsa", &format!("echo {KEY}"));
    let mut rw = rewriter(&p);
    let out = run(&mut rw, secret.as_bytes(), 5);
    let got = chunks(&out, false);
    let part = call(&got[1]).unwrap();
    let args = &part["functionCall"]["args"];
    let cmd = args["command"].as_str().expect("args still an object");
    assert!(cmd.starts_with("echo [REDACTED:"), "{cmd}");
}

#[test]
fn blocked_call_as_error_ends_the_stream_with_an_api_error() {
    let mut p = Policy::load("dev", None).unwrap();
    p.file.proxy.blocked_tool_call = crate::decision::policy::BlockedToolCall::Error;
    let p = Arc::new(p);
    let mut rw = rewriter(&p);
    let out = run(&mut rw, &fixture("stream_function_call.sse"), 11);
    let got = chunks(&out, false);
    let last = got.last().unwrap();
    assert_eq!(last["error"]["code"], 403);
    assert_eq!(last["error"]["status"], "PERMISSION_DENIED");
    assert!(!String::from_utf8_lossy(&out).contains("id_rsa"));
}

#[test]
fn midstream_error_passes_and_streamed_partial_args_are_refused() {
    let p = Arc::new(Policy::load("dev", None).unwrap());
    let raw = fixture("stream_error_midstream.sse");
    let mut rw = rewriter(&p);
    let got = chunks(&run(&mut rw, &raw, 3), false);
    // Held text goes out before the error, which stays last.
    assert_eq!(assemble(&got).0, "Partial answer");
    assert_eq!(got.last().unwrap()["error"]["code"], 503);

    let partial = b"data: {\"candidates\":[{\"content\":{\"role\":\"model\",\"parts\":[{\"functionCall\":{\"name\":\"run_shell_command\",\"partialArgs\":[{\"jsonPath\":\"$.command\",\"stringValue\":\"cat \"}],\"willContinue\":true}}]}}]}\n\n";
    let mut rw = rewriter(&p);
    let out = run(&mut rw, partial, 1000);
    let got = chunks(&out, false);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0]["error"]["code"], 403);
}

#[test]
fn malformed_array_stream_is_withheld_not_relayed() {
    let p = Arc::new(Policy::load("dev", None).unwrap());
    let mut rw = rewriter(&p).json_array();
    let out = run(&mut rw, b"[{\"candidates\":[]} garbage", 4);
    let got: Vec<Value> = serde_json::from_slice(&out).expect("still a JSON array");
    assert!(got.last().unwrap()["error"].is_object(), "{got:?}");
    assert!(!String::from_utf8_lossy(&out).contains("garbage"));
    assert_eq!(rw.report().decision, Decision::Block);
}
