//! Cost of the Responses WebSocket transport next to the SSE transport, on
//! the same events (the Responses text stream with a split secret, and the
//! function-call stream):
//! * `sse/*`: the events as SSE bytes through `StreamRewriter::push`;
//! * `ws/*`: the same events as server text frames through
//!   `WsConn::server_bytes` (frame parsing, the same rewriter, re-framing),
//!   after a `response.create` judged by `WsConn::client_bytes`;
//! * `ws_create`: judging one client `response.create` frame.
//!
//! Throughput is in events (= frames), so the per-frame figure is the
//! reciprocal. Run: `cargo bench -p asg --bench websocket`.

use asg::app::App;
use asg::config::Config;
use asg::datapath::dialect::Dialect;
use asg::datapath::hooks::NoSession;
use asg::datapath::identity::{Identity, Source};
use asg::datapath::stream::StreamRewriter;
use asg::datapath::ws::{frame, WsConn};
use bytes::BytesMut;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use serde_json::json;
use std::hint::black_box;
use std::sync::Arc;

fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/../tests/fixtures/wire/openai_responses/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

fn events(sse: &str) -> Vec<String> {
    sse.split("\n\n")
        .filter_map(|e| {
            e.lines()
                .find_map(|l| l.strip_prefix("data: "))
                .map(str::to_string)
        })
        .collect()
}

fn app() -> Arc<App> {
    let dir = std::env::temp_dir().join(format!("asg-bench-ws-{}", std::process::id()));
    App::build(Config {
        data_dir: dir,
        policy_dir: concat!(env!("CARGO_MANIFEST_DIR"), "/../policies").into(),
        ..Config::default()
    })
    .unwrap()
}

fn create_frame() -> Vec<u8> {
    let body = json!({"type": "response.create", "model": "gpt-5", "instructions": "You are a coding agent.",
                      "input": [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": "What is in the config file?"}]}],
                      "tools": [], "stream": true});
    let mut out = BytesMut::new();
    frame::text(&mut out, body.to_string().as_bytes(), true);
    out.to_vec()
}

fn bench(c: &mut Criterion) {
    let app = app();
    let policy = app.policy.current();
    let identity = Identity {
        session_id: String::new(),
        agent_id: "bench".into(),
        session_source: Source::None,
        agent_source: Source::Header,
    };
    let create = create_frame();
    for name in ["stream_text_secret_split.sse", "stream_function_call.sse"] {
        let sse = fixture(name);
        let evs = events(&sse);
        let mut frames = BytesMut::new();
        for e in &evs {
            frame::text(&mut frames, e.as_bytes(), false);
        }
        let sse_events: Vec<String> = sse.split_inclusive("\n\n").map(str::to_string).collect();
        let mut g = c.benchmark_group(name.trim_end_matches(".sse"));
        g.throughput(Throughput::Elements(evs.len() as u64));
        g.bench_function("sse", |b| {
            b.iter(|| {
                let mut rw = StreamRewriter::new(
                    Dialect::OpenaiResponses,
                    policy.clone(),
                    app.masker.clone(),
                    "bench",
                    Arc::new(NoSession),
                )
                .unwrap();
                for e in &sse_events {
                    black_box(rw.push(e.as_bytes()));
                }
                black_box(rw.finish());
            })
        });
        let frame_list: Vec<Vec<u8>> = evs
            .iter()
            .map(|e| {
                let mut f = BytesMut::new();
                frame::text(&mut f, e.as_bytes(), false);
                f.to_vec()
            })
            .collect();
        g.bench_function("ws", |b| {
            b.iter(|| {
                let mut ws = WsConn::new(
                    app.clone(),
                    policy.clone(),
                    "openai",
                    "/v1/responses",
                    "bench",
                    identity.clone(),
                    None,
                );
                black_box(ws.client_bytes(&create).upstream);
                for f in &frame_list {
                    black_box(ws.server_bytes(f));
                }
            })
        });
        g.finish();
    }
    c.bench_function("ws_create", |b| {
        let mut ws = WsConn::new(
            app.clone(),
            policy.clone(),
            "openai",
            "/v1/responses",
            "bench",
            identity.clone(),
            None,
        );
        b.iter(|| black_box(ws.client_bytes(&create).upstream))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
