//! Streaming inspection through the real `asg` binary: events reach the client as the upstream writes
//! them, compressed streams are inspected, MCP servers answering with SSE are masked, and a client that
//! goes away makes the gateway drop the upstream stream.

use asg_e2e::{http, sse, Dialect, Gateway, GatewayOptions, MockUpstream, FAKE_AWS_KEY};
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::mpsc;
use std::time::{Duration, Instant};

fn chat_body() -> Value {
    json!({"model": "gpt-4.1", "stream": true, "messages": [{"role": "user", "content": "hi"}]})
}

/// POST over a raw socket; return (seconds since the request was sent, SSE events seen so far) at
/// every read, until the server closes.
fn timed_events(
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
    body: &Value,
) -> Vec<(f64, usize)> {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let body = body.to_string();
    let mut req = format!(
        "POST {path} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\ncontent-type: application/json\r\ncontent-length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(&body);
    let start = Instant::now();
    s.write_all(req.as_bytes()).unwrap();
    let (mut raw, mut buf, mut seen) = (Vec::new(), [0u8; 65536], Vec::new());
    loop {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                raw.extend_from_slice(&buf[..n]);
                let events = String::from_utf8_lossy(&raw).matches("data: ").count();
                seen.push((start.elapsed().as_secs_f64(), events));
            }
        }
    }
    seen
}

/// Arrival time of the k-th event (1-based).
fn arrival(seen: &[(f64, usize)], k: usize) -> f64 {
    seen.iter()
        .find(|(_, n)| *n >= k)
        .map(|(t, _)| *t)
        .expect("event arrived")
}

#[test]
fn events_arrive_as_the_upstream_writes_them() {
    let mock = MockUpstream::start();
    let gw = Gateway::start(GatewayOptions::new(mock.base_url()));
    let delay = 200u64;
    let headers = [("x-mock-scenario", "secret"), ("x-mock-delay-ms", "200")];
    let direct = timed_events(mock.addr(), "/v1/chat/completions", &headers, &chat_body());
    let proxied = timed_events(
        gw.proxy_addr(),
        "/v1/chat/completions",
        &headers,
        &chat_body(),
    );
    let n = direct.last().unwrap().1;
    assert!(
        n >= 8,
        "the secret scenario streams several events: {direct:?}"
    );
    // One event out per event in, plus the chunk that carries the text held back at the end.
    let m = proxied.last().unwrap().1;
    assert!(
        (n..=n + 1).contains(&m),
        "{n} events in, {m} out: {proxied:?}"
    );
    // Every event reaches the client within 100 ms of the upstream writing it: nothing is batched
    // (a batching proxy would deliver everything at the end, (n-1) * 200 ms late).
    for k in 1..=n {
        let (d, p) = (arrival(&direct, k), arrival(&proxied, k));
        assert!(
            p - d < 0.1,
            "event {k}: direct {d:.3}s, through asg {p:.3}s"
        );
    }
    let (d, p) = (arrival(&direct, n), arrival(&proxied, m));
    assert!(
        p - d < 0.1,
        "last event: direct {d:.3}s, through asg {p:.3}s"
    );
    assert!(arrival(&proxied, m) - arrival(&proxied, 1) > (n as f64 - 2.0) * delay as f64 / 1000.0);
    // And the stream that arrived that way is the masked one.
    let resp = http::post_json(
        &format!("{}/chat/completions", gw.openai_base_url()),
        &[("x-mock-scenario", "secret")],
        &chat_body(),
    );
    let got = Dialect::Chat.assemble(&resp.text());
    assert!(!got.text.contains(&FAKE_AWS_KEY[..8]), "{}", got.text);
    assert!(got.text.contains("[REDACTED:aws_access_key_id:"));
}

#[test]
fn compressed_streams_are_decompressed_and_inspected() {
    let mock = MockUpstream::start();
    let gw = Gateway::start(GatewayOptions::new(mock.base_url()));
    for dialect in Dialect::ALL {
        let url = format!("{}{}", gw.proxy_url(), dialect.path());
        let raw = http::raw_exchange(
            gw.proxy_addr(),
            dialect.path(),
            &[
                ("x-mock-scenario", "secret"),
                ("x-mock-gzip", "1"),
                ("x-mock-chunk", "5"),
                ("accept-encoding", "gzip"),
            ],
            dialect.request("hi", true).to_string().as_bytes(),
        );
        assert_eq!(raw.status, 200, "{url}");
        assert!(raw.complete, "{url}");
        // The client gets the inspected, plain stream (the upstream's gzip was undone).
        assert_eq!(raw.header("content-encoding"), None, "{url}");
        assert_eq!(raw.header("x-asg-stream-inspection"), Some("on"));
        let text = raw.text();
        assert!(
            !text.contains(&FAKE_AWS_KEY[..8]) && !text.contains(&FAKE_AWS_KEY[8..]),
            "{url}: {text}"
        );
        let got = dialect.assemble(&text);
        assert!(
            got.text.contains("[REDACTED:aws_access_key_id:"),
            "{url}: {}",
            got.text
        );
    }
}

#[test]
fn mcp_sse_answers_are_masked() {
    let mock = MockUpstream::start();
    let config = format!(
        "[[route]]\nname = \"tools\"\nprefix = \"/mcp\"\nupstream = \"{0}\"\napi = \"mcp\"\n\n\
         [[route]]\nname = \"llm\"\nprefix = \"/\"\nupstream = \"{0}\"\napi = \"auto\"\n",
        mock.base_url()
    );
    let gw = Gateway::start(GatewayOptions::new(mock.base_url()).config_text(&config));
    let body = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
                      "params": {"name": "read_config", "arguments": {"file": "app.ini"},
                                 "_meta": {"progressToken": "tok-1"}}});
    let resp = http::post_json(
        &format!("{}/mcp", gw.proxy_url()),
        &[
            ("accept", "application/json, text/event-stream"),
            ("x-mock-mcp-mode", "sse"),
        ],
        &body,
    );
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert!(resp.is_event_stream());
    let text = resp.text();
    assert!(!text.contains(FAKE_AWS_KEY), "{text}");
    let events = sse::parse(&text);
    let last = events
        .last()
        .and_then(|e| e.json())
        .expect("a JSON-RPC response");
    assert_eq!(last["id"], 2);
    let result = last["result"].to_string();
    assert!(result.contains("[REDACTED:aws_access_key_id:"), "{result}");
    assert!(events
        .iter()
        .any(|e| e.data.contains("notifications/progress")));
}

/// An upstream that streams chat chunks every 20 ms until a write fails, then reports how long after
/// the first failure-free write it noticed and how many events it wrote.
/// `tool_call`: after a text chunk, endless argument fragments of one tool call (withheld by the
/// gateway until the call completes, so nothing is written to the client meanwhile).
fn endless_upstream(tool_call: bool) -> (SocketAddr, mpsc::Receiver<(Instant, usize)>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let mut head = Vec::new();
        let mut b = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            if s.read(&mut b).unwrap_or(0) == 0 {
                return;
            }
            head.push(b[0]);
        }
        let head = String::from_utf8_lossy(&head).to_lowercase();
        let len: usize = head
            .lines()
            .find_map(|l| {
                l.strip_prefix("content-length:")
                    .map(|v| v.trim().parse().unwrap_or(0))
            })
            .unwrap_or(0);
        let mut body = vec![0u8; len];
        let _ = s.read_exact(&mut body);
        let _ = s.write_all(
            b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n",
        );
        let mut written = 0usize;
        loop {
            let delta = if !tool_call || written < 5 {
                json!({"content": format!("word{written} ")})
            } else if written == 5 {
                json!({"tool_calls": [{"index": 0, "id": "call_1", "type": "function",
                                       "function": {"name": "write_file", "arguments": "{\"text\":\""}}]})
            } else {
                json!({"tool_calls": [{"index": 0, "function": {"arguments": "lorem ipsum "}}]})
            };
            let ev = format!(
                "data: {}\n\n",
                json!({"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m",
                       "choices": [{"index": 0, "delta": delta, "finish_reason": null}]})
            );
            let chunk = format!("{:x}\r\n{ev}\r\n", ev.len());
            if s.write_all(chunk.as_bytes())
                .and_then(|_| s.flush())
                .is_err()
            {
                let _ = tx.send((Instant::now(), written));
                return;
            }
            written += 1;
            std::thread::sleep(Duration::from_millis(20));
        }
    });
    (addr, rx)
}

#[test]
fn client_disconnect_cancels_the_upstream_stream() {
    disconnect_cancels(false);
}

/// Also while the gateway writes nothing to the client (a tool call being withheld).
#[test]
fn client_disconnect_cancels_the_upstream_while_a_call_is_withheld() {
    disconnect_cancels(true);
}

fn disconnect_cancels(tool_call: bool) {
    let (addr, upstream_done) = endless_upstream(tool_call);
    let gw = Gateway::start(GatewayOptions::new(format!("http://{addr}")));
    let mut s = TcpStream::connect(gw.proxy_addr()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let body = chat_body().to_string();
    write!(
        s,
        "POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut raw = Vec::new();
    let mut buf = [0u8; 4096];
    while String::from_utf8_lossy(&raw).matches("data: ").count() < 5 {
        let n = s.read(&mut buf).expect("events arrive");
        assert!(n > 0, "stream ended early");
        raw.extend_from_slice(&buf[..n]);
    }
    drop(s);
    let gone = Instant::now();
    let (noticed, written) = upstream_done
        .recv_timeout(Duration::from_secs(5))
        .expect("the gateway closed the upstream connection after the client left");
    let after = noticed.saturating_duration_since(gone);
    assert!(
        after < Duration::from_secs(2),
        "upstream kept streaming for {after:?}"
    );
    assert!(written < 200, "{written} events written");
}
