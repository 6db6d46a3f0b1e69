//! Added latency to the first event: the Responses API over SSE and over
//! the WebSocket transport, each direct to the mock upstream and through
//! the real `asg` binary (release build: `ASG_E2E_PROFILE=release`).
//!
//! ```text
//! ASG_E2E_PROFILE=release cargo run --release -p asg-e2e --example ws_latency -- [N]
//! ```
//! For N rounds (default 300), one turn on each of the four paths in turn;
//! prints p50/p90/p99 of time-to-first-event for each, and of the added
//! time (through asg minus direct). WebSocket turns reuse one connection
//! per path, as Codex does.

use asg_e2e::{Gateway, GatewayOptions, MockUpstream};
use serde_json::json;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::{self, Message, WebSocket};

fn body(stream: bool) -> serde_json::Value {
    json!({"model": "gpt-5", "instructions": "You are a coding agent.", "stream": stream,
           "input": [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": "What is in the config file?"}]}],
           "tools": []})
}

/// Time from sending a streamed POST to its first `data:` line.
fn sse_first(addr: SocketAddr) -> Duration {
    let b = body(true).to_string();
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_nodelay(true).unwrap();
    let req = format!(
        "POST /v1/responses HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\ncontent-type: application/json\r\nx-mock-scenario: secret\r\ncontent-length: {}\r\n\r\n{b}",
        b.len()
    );
    let start = Instant::now();
    s.write_all(req.as_bytes()).unwrap();
    let (mut raw, mut buf) = (Vec::new(), [0u8; 16384]);
    loop {
        let n = s.read(&mut buf).unwrap();
        assert!(n > 0, "closed before the first event");
        raw.extend_from_slice(&buf[..n]);
        if raw.windows(6).any(|w| w == b"data: ") {
            return start.elapsed();
        }
    }
}

fn ws_connect(addr: SocketAddr) -> WebSocket<TcpStream> {
    let s = TcpStream::connect(addr).unwrap();
    s.set_nodelay(true).unwrap();
    let mut req = tungstenite::client::IntoClientRequest::into_client_request(format!(
        "ws://{addr}/v1/responses"
    ))
    .unwrap();
    req.headers_mut()
        .insert("x-mock-scenario", "secret".parse().unwrap());
    tungstenite::client::client(req, s).unwrap().0
}

/// Time from sending `response.create` to the first event; the rest of
/// the turn is read before returning.
fn ws_first(ws: &mut WebSocket<TcpStream>) -> Duration {
    let mut create = body(true);
    create["type"] = json!("response.create");
    let start = Instant::now();
    ws.send(Message::Text(create.to_string().into())).unwrap();
    let mut first = None;
    loop {
        if let Message::Text(t) = ws.read().unwrap() {
            first.get_or_insert_with(|| start.elapsed());
            if t.contains("\"response.completed\"") {
                return first.unwrap();
            }
        }
    }
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(300);
    let mock = MockUpstream::start();
    let gw = Gateway::start(GatewayOptions::new(mock.base_url()).env("ASG_AUDIT_SYNC", "always"));
    let (direct, proxied) = (mock.addr(), gw.proxy_addr());
    let mut ws_direct = ws_connect(direct);
    let mut ws_proxied = ws_connect(proxied);
    // Warm-up.
    for _ in 0..20 {
        sse_first(direct);
        sse_first(proxied);
        ws_first(&mut ws_direct);
        ws_first(&mut ws_proxied);
    }
    let mut t: [Vec<f64>; 4] = Default::default();
    for _ in 0..n {
        t[0].push(sse_first(direct).as_secs_f64() * 1e3);
        t[1].push(sse_first(proxied).as_secs_f64() * 1e3);
        t[2].push(ws_first(&mut ws_direct).as_secs_f64() * 1e3);
        t[3].push(ws_first(&mut ws_proxied).as_secs_f64() * 1e3);
    }
    let added =
        |a: &[f64], b: &[f64]| -> Vec<f64> { a.iter().zip(b).map(|(x, y)| x - y).collect() };
    let mut sse_added = added(&t[1], &t[0]);
    let mut ws_added = added(&t[3], &t[2]);
    let names = ["sse direct", "sse via asg", "ws direct", "ws via asg"];
    println!("first event, ms over {n} rounds (p50 / p90 / p99)");
    for (i, name) in names.iter().enumerate() {
        let v = &mut t[i].clone();
        println!(
            "  {name:12} {:.3} / {:.3} / {:.3}",
            pct(v, 0.5),
            pct(v, 0.9),
            pct(v, 0.99)
        );
    }
    for (name, v) in [("sse added", &mut sse_added), ("ws added", &mut ws_added)] {
        println!(
            "  {name:12} {:.3} / {:.3} / {:.3}",
            pct(v, 0.5),
            pct(v, 0.9),
            pct(v, 0.99)
        );
    }
}
