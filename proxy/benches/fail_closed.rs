//! What failing closed costs on every request.
//!
//! ```text
//! cargo bench -p asg --bench fail_closed
//! ```
//!
//! * `parse/*`: a chat request (history, tool definitions, tool-call
//!   arguments as JSON strings) of 4 KiB, 64 KiB and 1 MiB, parsed by
//!   `serde_json::from_slice::<Value>` (what the gateway used to do) and by
//!   the strict parser (duplicate keys refused, tool-argument strings
//!   checked too);
//! * `path/*`: routing-time path normalisation for a plain path (the
//!   common case) and an unusual spelling;
//! * `request/*`: a whole request inspection (`inspect_request`: parse,
//!   dialect extraction, every detector, the masking walk over every
//!   string) of the same bodies, with no secret in them;
//! * `walk/*`: the masking walk alone (now run on every request, not only
//!   on requests whose extracted texts held a secret).

use asg::datapath::dialect::{redact_json, Dialect};
use asg::datapath::enforce::{inspect_request, Inspection};
use asg::datapath::{path_norm, strict_json};
use asg::decision::redact::Masker;
use asg::decision::Policy;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use serde_json::{json, Value};
use std::hint::black_box;

const TURN: &str = "Could you look at the failing integration test in the payments service and \
explain why the retry loop does not back off? The logs show three attempts within 40 ms, which \
suggests the delay is computed but never awaited. Please propose a fix and a unit test.";

/// A chat request of about `size` bytes: a system prompt, tool
/// definitions, and as many user / assistant-tool-call / tool-result turns
/// as fit.
fn chat_request(size: usize) -> Vec<u8> {
    let schema = json!({"type": "object", "properties": {"command": {"type": "string",
        "description": "the shell command to run"}, "cwd": {"type": "string"}}, "required": ["command"]});
    let mut messages =
        vec![json!({"role": "system", "content": "You are a careful coding agent."})];
    let mut i = 0;
    loop {
        messages.push(json!({"role": "user", "content": TURN}));
        messages.push(json!({"role": "assistant", "content": null, "tool_calls": [{
            "id": format!("call_{i}"), "type": "function", "function": {"name": "shell",
            "arguments": json!({"command": format!("cargo test -p payments retry_{i}"), "cwd": "/src"}).to_string()}}]}));
        messages.push(json!({"role": "tool", "tool_call_id": format!("call_{i}"),
            "content": format!("test retry_{i} ... FAILED\nthread panicked at src/retry.rs:{i}:5\n")}));
        i += 1;
        let body = json!({"model": "gpt-4.1", "messages": messages, "tools": [
            {"type": "function", "function": {"name": "shell", "description": "Run a shell command", "parameters": schema}}],
            "metadata": {"session": "s-1", "ticket": "PAY-1234"}, "user": "agent-7"});
        let bytes = serde_json::to_vec(&body).unwrap();
        if bytes.len() >= size {
            return bytes;
        }
    }
}

fn parse(c: &mut Criterion) {
    let mut g = c.benchmark_group("parse");
    for (name, size) in [("4k", 4 << 10), ("64k", 64 << 10), ("1m", 1 << 20)] {
        let body = chat_request(size);
        g.throughput(Throughput::Bytes(body.len() as u64));
        g.bench_with_input(BenchmarkId::new("serde_json", name), &body, |b, body| {
            b.iter(|| serde_json::from_slice::<Value>(black_box(body)).unwrap())
        });
        g.bench_with_input(BenchmarkId::new("strict", name), &body, |b, body| {
            b.iter(|| strict_json::from_slice(black_box(body)).unwrap())
        });
    }
    g.finish();
}

fn path(c: &mut Criterion) {
    let mut g = c.benchmark_group("path");
    g.bench_function("plain", |b| {
        b.iter(|| path_norm::normalize(black_box("/v1/chat/completions")).unwrap())
    });
    g.bench_function("unusual", |b| {
        b.iter(|| path_norm::normalize(black_box("/v1/models/..;/chat%252Fcompletions/")).unwrap())
    });
    g.finish();
}

fn request(c: &mut Criterion) {
    let policy = Policy::load("dev", None).unwrap();
    let masker = Masker::new([1; 32]);
    let ins = Inspection {
        policy: &policy,
        masker: &masker,
        dialect: Dialect::OpenaiChat,
        request_id: "bench",
        tool_name: "",
        rpc_id: Value::Null,
        // The same body on every iteration: measured without the memo.
        memo_scope: None,
        kept: None,
    };
    let mut g = c.benchmark_group("request");
    g.sample_size(20);
    for (name, size) in [("4k", 4 << 10), ("64k", 64 << 10)] {
        let body = chat_request(size);
        g.throughput(Throughput::Bytes(body.len() as u64));
        g.bench_with_input(BenchmarkId::new("inspect", name), &body, |b, body| {
            b.iter(|| inspect_request(&ins, black_box(body)))
        });
        let parsed: Value = serde_json::from_slice(&body).unwrap();
        g.bench_with_input(BenchmarkId::new("walk", name), &parsed, |b, parsed| {
            b.iter(|| {
                let mut v = parsed.clone();
                redact_json(&mut v, &policy.redactor, &masker)
            })
        });
    }
    g.finish();
}

criterion_group!(benches, parse, path, request);
criterion_main!(benches);
