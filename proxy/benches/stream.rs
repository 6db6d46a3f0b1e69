//! Cost of inspecting streams in flight.
//!
//! * `channel/*`: the per-channel hold-back redactor alone, per text fragment;
//! * `rewriter/*`: a whole SSE stream through `StreamRewriter`, one upstream
//!   chunk per event (parse SSE, parse JSON, redact, re-serialize), reported
//!   as events per second;
//! * `open/*`: constructing a rewriter (added time to first byte);
//! * and, printed once, the heap a rewriter keeps per open stream (live
//!   bytes counted by a wrapping allocator).
//!
//! Run: `cargo bench -p asg --bench stream`.

use asg::datapath::dialect::Dialect;
use asg::datapath::hooks::NoSession;
use asg::datapath::stream::holdback::{MaskLog, TextChannel};
use asg::datapath::stream::StreamRewriter;
use asg::decision::redact::Masker;
use asg::decision::Policy;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use serde_json::json;
use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicIsize, Ordering};
use std::sync::Arc;

/// The system allocator, counting live bytes.
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        System.alloc(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        System.dealloc(ptr, layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        System.realloc(ptr, layout, new_size)
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// Assistant-style text: prose, a code block, numbers, a path; ~2.3 KB.
const PROSE: &str = "Sure! Here is how to configure the service. First, install the package with \
`pip install requests` and create a file named config.yaml in your project root. The file should \
contain the base URL, the timeout (30 seconds is a sensible default) and the retry policy. Then, in \
your code:\n\n```python\nimport requests\n\ndef fetch(url, timeout=30):\n    resp = requests.get(url, \
timeout=timeout)\n    resp.raise_for_status()\n    return resp.json()\n```\n\nThis function raises \
an exception for HTTP errors, which keeps failures visible. If you need to call the API more than \
100 times per minute, add a small delay between calls or use the bulk endpoint instead. The \
response contains a list of items; each item has an id, a name, a created_at timestamp such as \
2024-05-01T12:30:00Z and a status field that is one of active, paused or archived. Finally, make \
sure your logs do not contain personal data: mask e-mail addresses and phone numbers before they \
are written, and rotate the files every 7 days. Let me know if you want the same example in \
TypeScript or Go, or if you would like me to explain how the retry policy interacts with the \
timeout when the server is slow to answer. In most setups the defaults work well, but under heavy \
load you may want to raise the pool size to 20 connections and lower the timeout to 10 seconds so \
that slow requests fail fast instead of piling up.";

/// The same with a few secrets and PII mixed in.
fn with_secrets() -> String {
    PROSE
        .replace(
            "create a file",
            "export AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE and create a file",
        )
        .replace(
            "The response contains",
            "Use the token sk-proj-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789abcd. The response contains",
        )
        .replace(
            "phone numbers",
            "phone numbers such as +1 (555) 123-4567 or cards like 4111 1111 1111 1111",
        )
}

/// Token-sized fragments (the API sends 1–3 words per delta).
fn fragments(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    for (i, _) in text.match_indices(' ') {
        if i > start {
            out.push(&text[start..i]);
            start = i;
        }
    }
    out.push(&text[start..]);
    out
}

fn chat_stream(text: &str) -> Vec<Vec<u8>> {
    let mut events = Vec::new();
    let chunk = |delta: serde_json::Value, finish: Option<&str>| {
        let v = json!({"id":"chatcmpl-1","object":"chat.completion.chunk","created":1767225600,
            "model":"gpt-4.1","service_tier":"default","system_fingerprint":"fp_x",
            "choices":[{"index":0,"delta":delta,"logprobs":null,"finish_reason":finish}],
            "obfuscation":"tPKR0CsTy4Qwb8D"});
        format!("data: {v}\n\n").into_bytes()
    };
    events.push(chunk(json!({"role":"assistant","content":""}), None));
    for f in fragments(text) {
        events.push(chunk(json!({ "content": f }), None));
    }
    events.push(chunk(json!({}), Some("stop")));
    events.push(b"data: [DONE]\n\n".to_vec());
    events
}

fn responses_stream(text: &str) -> Vec<Vec<u8>> {
    let mut events = Vec::new();
    let mut n = 0;
    let mut ev = |mut v: serde_json::Value| {
        v["sequence_number"] = json!(n);
        n += 1;
        format!("event: {}\ndata: {v}\n\n", v["type"].as_str().unwrap()).into_bytes()
    };
    events.push(ev(json!({"type":"response.output_item.added","output_index":0,
        "item":{"id":"msg_1","type":"message","status":"in_progress","content":[],"role":"assistant"}})));
    for f in fragments(text) {
        events.push(ev(
            json!({"type":"response.output_text.delta","item_id":"msg_1",
            "output_index":0,"content_index":0,"delta":f,"logprobs":[],"obfuscation":"VZomHFwUbb"}),
        ));
    }
    events.push(ev(
        json!({"type":"response.output_text.done","item_id":"msg_1",
        "output_index":0,"content_index":0,"text":text,"logprobs":[]}),
    ));
    events.push(ev(
        json!({"type":"response.completed","response":{"id":"r","status":"completed",
        "output":[{"id":"msg_1","type":"message","status":"completed","role":"assistant",
                   "content":[{"type":"output_text","text":text,"annotations":[]}]}]}}),
    ));
    events
}

fn anthropic_stream(text: &str) -> Vec<Vec<u8>> {
    let ev = |v: serde_json::Value| {
        format!("event: {}\ndata: {v}\n\n", v["type"].as_str().unwrap()).into_bytes()
    };
    let mut events = vec![ev(
        json!({"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}),
    )];
    for f in fragments(text) {
        events.push(ev(json!({"type":"content_block_delta","index":0,
            "delta":{"type":"text_delta","text":f}})));
    }
    events.push(ev(json!({"type":"content_block_stop","index":0})));
    events.push(ev(
        json!({"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":9}}),
    ));
    events.push(ev(json!({"type":"message_stop"})));
    events
}

fn bench_channel(c: &mut Criterion) {
    let policy = Policy::load("dev", None).expect("embedded policy");
    let masker = Masker::new([7; 32]);
    let mut g = c.benchmark_group("channel");
    for (name, text) in [("prose", PROSE.to_string()), ("secrets", with_secrets())] {
        let frags = fragments(&text);
        g.throughput(Throughput::Elements(frags.len() as u64));
        g.bench_function(BenchmarkId::new("fragments", name), |b| {
            b.iter(|| {
                let mut ch = TextChannel::new();
                let mut log = MaskLog::new(32);
                let mut out = String::new();
                for f in &frags {
                    ch.push(f, &policy.redactor, &masker, &mut out, &mut log);
                }
                ch.flush(&policy.redactor, &masker, &mut out, &mut log);
                black_box(out)
            })
        });
    }
    g.finish();
}

fn bench_rewriter(c: &mut Criterion) {
    let policy = Arc::new(Policy::load("dev", None).expect("embedded policy"));
    let masker = Masker::new([7; 32]);
    let mut g = c.benchmark_group("rewriter");
    let text = with_secrets();
    for (dialect, name, events) in [
        (Dialect::OpenaiChat, "chat", chat_stream(PROSE)),
        (Dialect::OpenaiChat, "chat_secrets", chat_stream(&text)),
        (
            Dialect::OpenaiResponses,
            "responses",
            responses_stream(PROSE),
        ),
        (
            Dialect::AnthropicMessages,
            "anthropic",
            anthropic_stream(PROSE),
        ),
    ] {
        g.throughput(Throughput::Elements(events.len() as u64));
        g.bench_function(BenchmarkId::new("events", name), |b| {
            b.iter(|| {
                let mut rw = StreamRewriter::new(
                    dialect,
                    policy.clone(),
                    masker.clone(),
                    "req",
                    Arc::new(NoSession),
                )
                .expect("inspected dialect");
                let mut bytes = 0;
                for e in &events {
                    bytes += rw.push(e).len();
                }
                bytes += rw.finish().len();
                black_box(bytes)
            })
        });
    }
    g.finish();
    c.bench_function("open/chat_rewriter_and_first_event", |b| {
        let first = &chat_stream(PROSE)[0];
        b.iter(|| {
            let mut rw = StreamRewriter::new(
                Dialect::OpenaiChat,
                policy.clone(),
                masker.clone(),
                "req",
                Arc::new(NoSession),
            )
            .expect("inspected dialect");
            black_box(rw.push(first))
        })
    });
}

/// Heap kept by one open stream's rewriter: after the first events, and
/// half-way through a stream (text held back, channel history).
fn report_memory(_: &mut Criterion) {
    let policy = Arc::new(Policy::load("dev", None).expect("embedded policy"));
    let masker = Masker::new([7; 32]);
    for (name, dialect, events) in [
        ("chat", Dialect::OpenaiChat, chat_stream(&with_secrets())),
        (
            "responses",
            Dialect::OpenaiResponses,
            responses_stream(&with_secrets()),
        ),
        (
            "anthropic",
            Dialect::AnthropicMessages,
            anthropic_stream(&with_secrets()),
        ),
    ] {
        // Warm up: the redactor's regexes build their (shared) caches once.
        let mut warm = StreamRewriter::new(
            dialect,
            policy.clone(),
            masker.clone(),
            "req",
            Arc::new(NoSession),
        )
        .expect("inspected dialect");
        events.iter().for_each(|e| drop(warm.push(e)));
        drop(warm);
        for upto in [3, events.len() / 2] {
            let before = LIVE.load(Ordering::Relaxed);
            let mut rw = StreamRewriter::new(
                dialect,
                policy.clone(),
                masker.clone(),
                "req",
                Arc::new(NoSession),
            )
            .expect("inspected dialect");
            for e in &events[..upto] {
                drop(rw.push(e));
            }
            let kept = LIVE.load(Ordering::Relaxed) - before;
            println!("memory/{name}: rewriter keeps {kept} bytes after {upto} events");
            black_box(&rw);
        }
    }
}

criterion_group!(benches, bench_channel, bench_rewriter, report_memory);
criterion_main!(benches);
