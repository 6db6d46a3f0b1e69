//! The fail-closed probes, one line each, against any `asg` binary: what an attacker's server or
//! client gets past the data path. Prints a Markdown table (probe | outcome) to compare builds:
//!
//! ```text
//! cargo build -p asg && ASG_BIN=target/debug/asg cargo run -p asg-e2e --example fail_closed_probes
//! ASG_BIN=/path/to/old/asg cargo run -p asg-e2e --example fail_closed_probes
//! ```
//!
//! The regression tests that hold these outcomes are in `tests/tests/fail_closed.rs`; this only
//! reports, it asserts nothing.

use asg_e2e::codings::{client_view, encode};
use asg_e2e::http;
use asg_e2e::scripted::{Framing, Reply, Request, ScriptedUpstream};
use asg_e2e::{Dialect, Gateway, GatewayOptions, FAKE_AWS_KEY};
use serde_json::json;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

const KEY: &str = FAKE_AWS_KEY;

fn chat_completion(text: &str) -> String {
    json!({"id": "c1", "object": "chat.completion", "created": 1, "model": "m", "choices": [{"index": 0,
        "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}]})
    .to_string()
}

fn chat_sse(text: &str) -> String {
    format!(
        "data: {}\n\ndata: [DONE]\n\n",
        json!({"id": "c1", "object": "chat.completion.chunk", "choices": [{"index": 0,
            "delta": {"content": text}, "finish_reason": "stop"}]})
    )
}

fn gemini_answer(text: &str) -> String {
    json!({"candidates": [{"index": 0, "content": {"role": "model", "parts": [{"text": text}]},
        "finishReason": "STOP"}]})
    .to_string()
}

/// The answer in `x-probe-body` (base64-free: the probes send JSON-safe text), encoded per
/// `x-probe-coding`, as SSE when `x-probe-sse`, stalled per `x-probe-hang`.
fn upstream() -> ScriptedUpstream {
    ScriptedUpstream::start(|req: &Request| {
        let h = |n: &str| req.header(n).unwrap_or_default().to_string();
        let kind = h("x-probe");
        let text = format!("the key is {KEY}");
        let (ct, body): (&str, Vec<u8>) = match kind.as_str() {
            "coding" | "coding-sse" => {
                let plain = if kind == "coding" {
                    chat_completion(&text)
                } else {
                    chat_sse(&text)
                };
                let coding = h("x-probe-coding");
                let ct = if kind == "coding" {
                    "application/json"
                } else {
                    "text/event-stream"
                };
                let body = if coding == "bomb" {
                    encode("gzip", &vec![b'A'; 64 << 20])
                } else {
                    encode(&coding, plain.as_bytes())
                };
                let coding = if coding == "bomb" {
                    "gzip".to_string()
                } else {
                    coding
                };
                let mut r = Reply::new(200, ct, body).header("content-encoding", &coding);
                if kind == "coding-sse" {
                    r = r.framing(Framing::Chunked);
                }
                return r;
            }
            "gemini-coding" => {
                let plain = gemini_answer(&text);
                let coding = h("x-probe-coding");
                return Reply::new(200, "application/json", encode(&coding, plain.as_bytes()))
                    .header("content-encoding", &coding);
            }
            "body" => ("application/json", h("x-probe-body").into_bytes()),
            "text" => ("text/plain", text.clone().into_bytes()),
            "sse" => return Reply::sse(&[&h("x-probe-body").replace("\\n", "\n")]),
            "hang-head" => {
                return Reply::json(chat_completion("late")).head_delay(Duration::from_secs(30))
            }
            "hang-stream" => {
                let first = json!({"id": "c1", "object": "chat.completion.chunk", "choices": [{"index": 0,
                    "delta": {"content": "partial "}, "finish_reason": null}]});
                return Reply::sse(&[&format!("data: {first}\n\n")]).stall(Duration::from_secs(30));
            }
            _ => ("application/json", chat_completion("ok").into_bytes()),
        };
        Reply::new(200, ct, body)
    })
}

struct Probe<'a> {
    gw: &'a Gateway,
    up: &'a ScriptedUpstream,
}

impl Probe<'_> {
    fn post(&self, path: &str, headers: &[(&str, &str)], body: &str) -> Result<http::Resp, String> {
        let mut h = vec![("content-type", "application/json")];
        h.extend_from_slice(headers);
        let agent: http::ureq::Agent = http::ureq::Agent::config_builder()
            .proxy(None)
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(40)))
            .build()
            .into();
        http::try_send(
            &agent,
            "POST",
            &format!("{}{path}", self.gw.proxy_url()),
            &h,
            Some(body.as_bytes()),
        )
        .map_err(|e| e.to_string())
    }

    /// Outcome of an answer that carried the key.
    fn answer(&self, r: Result<http::Resp, String>) -> String {
        let r = match r {
            Ok(r) => r,
            Err(e) => return format!("client error: {e}"),
        };
        let text = client_view(&r);
        let call = serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|v| {
                v["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"]
                    .as_str()
                    .map(str::to_string)
            });
        let mut out = if let Some(args) = call {
            format!("**call relayed, arguments `{args}`**")
        } else if text.contains(KEY) {
            "**key relayed in clear**".to_string()
        } else if text.contains("[REDACTED:") {
            "decoded, key masked".to_string()
        } else if text.contains("could not be inspected")
            || text.contains("withheld")
            || text.contains("error")
        {
            "withheld (answer in the API's shape / error event)".to_string()
        } else {
            format!("other: {}", &text[..text.len().min(80)])
        };
        if let Some(c) = r.header("content-encoding") {
            out.push_str(&format!(" (still `Content-Encoding: {c}`)"));
        }
        out
    }

    /// Outcome of a request carrying the key (or an injection): did it reach the upstream?
    fn request(&self, path: &str, body: &str) -> String {
        let before = self.up.requests().len();
        let r = http::raw_exchange(self.gw.proxy_addr(), path, &[], body.as_bytes());
        let got = self.up.requests();
        match got.get(before) {
            None => format!("refused {} before the upstream", r.status),
            Some(sent) if sent.body_text().contains(KEY) => {
                format!("**forwarded with the key in clear** ({})", r.status)
            }
            Some(sent) if sent.body_text().contains("Ignore all previous") => {
                format!("**injection forwarded uninspected** ({})", r.status)
            }
            Some(sent) => format!("inspected, key masked; upstream got `{}`", sent.target),
        }
    }
}

fn exchange(gw: &Gateway, request: &[u8]) -> Vec<u8> {
    let mut s = TcpStream::connect(gw.proxy_addr()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s.write_all(request).unwrap();
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    raw
}

fn main() {
    let up = upstream();
    let gw = Gateway::start(
        GatewayOptions::new(up.base_url())
            .policy("production")
            .env("ASG_UPSTREAM_FIRST_BYTE_TIMEOUT", "3")
            .env("ASG_UPSTREAM_IDLE_TIMEOUT", "3"),
    );
    let p = Probe { gw: &gw, up: &up };
    let chat = Dialect::Chat.request("hello", false).to_string();
    let chat_s = Dialect::Chat.request("hello", true).to_string();
    let mut rows: Vec<(String, String)> = Vec::new();
    let mut row = |probe: &str, outcome: String| rows.push((probe.to_string(), outcome));

    for coding in [
        "gzip",
        "deflate",
        "br",
        "zstd",
        "gzip, gzip",
        "compress",
        "bomb",
    ] {
        let r = p.post(
            "/v1/chat/completions",
            &[("x-probe", "coding"), ("x-probe-coding", coding)],
            &chat,
        );
        row(&format!("2 answer `{coding}`, buffered"), p.answer(r));
        let r = p.post(
            "/v1/chat/completions",
            &[("x-probe", "coding-sse"), ("x-probe-coding", coding)],
            &chat_s,
        );
        row(&format!("2 answer `{coding}`, streamed"), p.answer(r));
    }
    let good = chat_completion(&format!("the key is {KEY}"));
    let open = &good[..good.len() - 1];
    for (name, body) in [
        ("3 `\"x\": NaN` member", format!("{open},\"x\":NaN}}")),
        ("3 trailing comma", format!("{open},}}")),
        ("3 truncated JSON", good[..good.len() - 20].to_string()),
        ("6 duplicate key in the answer", format!("{open},\"choices\":[]}}")),
        (
            "6 duplicate key in a proposed call's arguments",
            json!({"id": "c", "object": "chat.completion", "choices": [{"index": 0, "message": {"role": "assistant",
                "tool_calls": [{"id": "t", "type": "function", "function": {"name": "shell",
                "arguments": format!("{{\"command\":\"echo {KEY}\",\"command\":\"ls\"}}")}}]}, "finish_reason": "tool_calls"}]})
            .to_string(),
        ),
    ] {
        let r = p.post(
            "/v1/chat/completions",
            &[("x-probe", "body"), ("x-probe-body", &body)],
            &chat,
        );
        row(name, p.answer(r));
    }
    let r = p.post("/v1/chat/completions", &[("x-probe", "text")], &chat);
    row("3 `text/plain` answer on the chat route", p.answer(r));
    let nan_event = format!(
        "data: {{\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"{KEY}\"}}}}],\"x\":NaN}}\\n\\ndata: [DONE]\\n\\n"
    );
    let r = p.post(
        "/v1/chat/completions",
        &[("x-probe", "sse"), ("x-probe-body", &nan_event)],
        &chat_s,
    );
    row("3 stream event with `NaN`", p.answer(r));

    let dup = format!(
        r#"{{"model":"m","messages":[{{"role":"user","content":"key {KEY}","content":"hi"}}]}}"#
    );
    row(
        "6 request with a duplicate key",
        p.request("/v1/chat/completions", &dup),
    );
    let dup_args = json!({"model": "m", "messages": [{"role": "assistant", "tool_calls": [{"id": "c", "type": "function",
        "function": {"name": "shell", "arguments": format!("{{\"command\":\"echo {KEY}\",\"command\":\"ls\"}}")}}]}]})
    .to_string();
    row(
        "6 request with a duplicate key in tool arguments",
        p.request("/v1/chat/completions", &dup_args),
    );
    for (name, body) in [
        (
            "6 top-level array body",
            format!("[{{\"messages\":[{{\"role\":\"user\",\"content\":\"{KEY}\"}}]}}]"),
        ),
        ("6 top-level string body", format!("\"{KEY}\"")),
    ] {
        row(name, p.request("/v1/chat/completions", &body));
    }
    for path in [
        "/v1/responses/",
        "/V1/CHAT/COMPLETIONS",
        "/v1/chat/completions;x",
        "/v1%2fchat%2fcompletions",
        "/v1/chat%252fcompletions",
        "/v1//chat/completions",
        "/v1/models/../chat/completions",
    ] {
        let d = if path.contains("responses") {
            Dialect::Responses
        } else {
            Dialect::Chat
        };
        let body = d.request(&format!("my key {KEY}"), false).to_string();
        row(
            &format!("6 path `{path}`, key in the prompt"),
            p.request(path, &body),
        );
    }

    for field in ["metadata", "user", "response_format", "x_unknown_field"] {
        let mut req = Dialect::Chat.request("hello", false);
        req[field] = match field {
            "response_format" => {
                json!({"type": "json_schema", "json_schema": {"name": "x", "schema": {"description": format!("e.g. {KEY}")}}})
            }
            "user" => json!(format!("u-{KEY}")),
            _ => json!({"note": format!("creds {KEY}")}),
        };
        row(
            &format!("7 key in `{field}`"),
            p.request("/v1/chat/completions", &req.to_string()),
        );
    }
    let (a, b) = KEY.split_at(8);
    let blocks = json!({"id": "m", "type": "message", "role": "assistant", "model": "m", "stop_reason": "end_turn",
        "content": [{"type": "text", "text": format!("key {a}")}, {"type": "text", "text": format!("{b} ok")}]})
    .to_string();
    let r = p.post(
        "/v1/messages",
        &[("x-probe", "body"), ("x-probe-body", &blocks)],
        &Dialect::Anthropic.request("hi", false).to_string(),
    );
    row(
        "7 key split across two Anthropic text blocks (buffered)",
        match r {
            Ok(r) => {
                let joined = Dialect::Anthropic.text(&r.json());
                if joined.contains(KEY) {
                    "**joined text carries the key**".into()
                } else {
                    "joined text masked".into()
                }
            }
            Err(e) => e,
        },
    );
    let parts = json!({"id": "r", "object": "response", "status": "completed", "output": [{"type": "message", "id": "m",
        "role": "assistant", "content": [{"type": "output_text", "text": format!("key {a}")}, {"type": "output_text", "text": format!("{b} ok")}]}]})
    .to_string();
    let r = p.post(
        "/v1/responses",
        &[("x-probe", "body"), ("x-probe-body", &parts)],
        &Dialect::Responses.request("hi", false).to_string(),
    );
    row(
        "7 key split across two Responses output_text parts (buffered)",
        match r {
            Ok(r) => {
                let joined = Dialect::Responses.text(&r.json());
                if joined.contains(KEY) {
                    "**joined text carries the key**".into()
                } else {
                    "joined text masked".into()
                }
            }
            Err(e) => e,
        },
    );

    // Gemini (`generateContent`), the same probes on its own routes.
    let gen = "/v1beta/models/gemini-2.5-flash:generateContent";
    let gemini_req =
        json!({"contents": [{"role": "user", "parts": [{"text": "hello"}]}]}).to_string();
    for coding in ["deflate", "zstd", "gzip, gzip"] {
        let r = p.post(
            gen,
            &[("x-probe", "gemini-coding"), ("x-probe-coding", coding)],
            &gemini_req,
        );
        row(&format!("2 Gemini answer `{coding}`"), p.answer(r));
    }
    let g = gemini_answer(&format!("the key is {KEY}"));
    let g_open = &g[..g.len() - 1];
    for (name, body) in [
        (
            "3 Gemini answer with a `NaN` member",
            format!("{g_open},\"x\":NaN}}"),
        ),
        ("3 Gemini answer truncated", g[..g.len() - 20].to_string()),
        (
            "6 Gemini answer with a duplicate key",
            format!("{g_open},\"candidates\":[]}}"),
        ),
    ] {
        let r = p.post(
            gen,
            &[("x-probe", "body"), ("x-probe-body", &body)],
            &gemini_req,
        );
        row(name, p.answer(r));
    }
    let g_dup = format!(
        r#"{{"contents":[{{"role":"user","parts":[{{"text":"key {KEY}","text":"hi"}}]}}]}}"#
    );
    row(
        "6 Gemini request with a duplicate key",
        p.request(gen, &g_dup),
    );
    let g_key =
        json!({"contents": [{"role": "user", "parts": [{"text": format!("my key {KEY}")}]}]});
    row(
        "6 Gemini request as a top-level array",
        p.request(gen, &json!([g_key.clone()]).to_string()),
    );
    for path in [
        "/v1beta/models/gemini-2.5-flash%3AgenerateContent",
        "/V1BETA/MODELS/gemini-2.5-flash:generateContent",
    ] {
        row(
            &format!("6 Gemini path `{path}`, key in the prompt"),
            p.request(path, &g_key.to_string()),
        );
    }

    let body = chat.clone();
    let raw = exchange(
        &gw,
        format!("POST /v1/chat/completions HTTP/1.0\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}", body.len()).as_bytes(),
    );
    let head = String::from_utf8_lossy(&raw[..raw.len().min(400)]).to_ascii_lowercase();
    row(
        "8 HTTP/1.0 client",
        if head.contains("transfer-encoding: chunked") {
            "**chunked answer to a 1.0 client**".into()
        } else {
            "close-delimited answer".into()
        },
    );
    for n in [3usize, 25] {
        let one = format!("POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}", body.len());
        let last = one.replacen("Host: x\r\n", "Host: x\r\nConnection: close\r\n", 1);
        let wire = one.repeat(n - 1) + &last;
        let raw = exchange(&gw, wire.as_bytes());
        let text = String::from_utf8_lossy(&raw);
        let answered = text.matches("HTTP/1.1 200").count();
        let bad = text.matches("HTTP/1.1 502").count();
        row(
            &format!("8 {n} pipelined requests"),
            format!("{answered} answered 200, {bad} got 502"),
        );
    }
    let started = Instant::now();
    let r = p.post("/v1/chat/completions", &[("x-probe", "hang-head")], &chat);
    row(
        "9 upstream never answers (buffered)",
        format!(
            "{} after {:.1} s",
            r.map(|r| r.status.to_string()).unwrap_or_else(|e| e),
            started.elapsed().as_secs_f64()
        ),
    );
    let started = Instant::now();
    let r = p.post(
        "/v1/chat/completions",
        &[("x-probe", "hang-stream")],
        &chat_s,
    );
    row(
        "9 stream goes silent after its first event",
        match r {
            Ok(r) => format!(
                "ended after {:.1} s, {}",
                started.elapsed().as_secs_f64(),
                if Dialect::Chat.assemble(&r.text()).error.is_some() {
                    "with an error event"
                } else {
                    "**without an error event**"
                }
            ),
            Err(e) => format!("{e} after {:.1} s", started.elapsed().as_secs_f64()),
        },
    );

    println!("| probe | outcome |\n|---|---|");
    for (probe, outcome) in rows {
        println!("| {probe} | {outcome} |");
    }
}
