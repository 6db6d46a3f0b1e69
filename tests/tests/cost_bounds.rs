//! What hostile input may cost, through the real binary: bodies that
//! inflate, more inspection work than there are slots (HTTP and WebSocket
//! clients), and distinct ids
//! (sessions, agents, pending approvals) without end.

use asg_e2e::http;
use asg_e2e::util::wait_until;
use asg_e2e::{Gateway, GatewayOptions, MockUpstream};
use flate2::write::GzEncoder;
use flate2::Compression;
use serde_json::{json, Value};
use std::io::Write;
use std::net::TcpStream;
use std::time::Duration;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{self, Message, WebSocket};

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = GzEncoder::new(Vec::new(), Compression::best());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

fn chat(text: &str) -> Vec<u8> {
    json!({"model": "gpt-4o", "messages": [{"role": "user", "content": text}]})
        .to_string()
        .into_bytes()
}

fn post_gzip(url: &str, body: &[u8]) -> http::Resp {
    http::send(
        "POST",
        url,
        &[
            ("content-type", "application/json"),
            ("content-encoding", "gzip"),
        ],
        Some(&gzip(body)),
    )
}

#[test]
fn a_small_body_that_inflates_past_the_decoded_limit_is_refused() {
    let upstream = MockUpstream::start();
    let gw = Gateway::start(GatewayOptions::new(upstream.base_url()).policy_text(
        "decoded.toml",
        "name = \"decoded\"\n[proxy]\nmax_decoded_bytes = 1048576\n",
    ));
    let url = format!("{}/v1/chat/completions", gw.proxy_url());
    // 7 MiB of one letter: about 7 KB of gzip.
    let bomb = chat(&"A".repeat(7 << 20));
    assert!(gzip(&bomb).len() < 16 * 1024);
    let r = post_gzip(&url, &bomb);
    assert_eq!(r.status, 413, "{}", r.text());
    let v = r.json();
    assert_eq!(v["error"]["code"], "asg_body_too_large", "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("1048576 bytes after decoding"),
        "{v}"
    );
    assert!(upstream.requests_to("/v1/chat/completions").is_empty());
    // Below the limit the same shape is inspected and forwarded.
    let r = post_gzip(&url, &chat(&"A".repeat(512 << 10)));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(upstream.requests_to("/v1/chat/completions").len(), 1);
}

/// About 6 MB of prose: seconds of inspection in a debug build.
fn slow_body() -> Vec<u8> {
    let words = [
        "the",
        "quarterly",
        "report",
        "shows",
        "revenue",
        "growth",
        "in",
        "every",
        "region",
        "please",
        "summarize",
        "it",
        "for",
        "the",
        "team",
        "by",
        "friday",
    ];
    let mut text = String::with_capacity(6 << 20);
    let mut x: u32 = 7;
    while text.len() < 6 << 20 {
        x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        text.push_str(words[(x >> 16) as usize % words.len()]);
        text.push(' ');
    }
    chat(&text)
}

/// A Responses WebSocket through the gateway.
fn ws_connect(gw: &Gateway) -> WebSocket<TcpStream> {
    let url = format!("ws://{}/v1/responses", gw.proxy_addr());
    let req = url.into_client_request().unwrap();
    let stream = TcpStream::connect(gw.proxy_addr()).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let (ws, resp) = tungstenite::client::client(req, stream).expect("upgrade");
    assert_eq!(resp.headers().get("x-asg-stream-inspection").unwrap(), "on");
    ws
}

#[test]
fn inspection_beyond_its_slots_is_refused_with_503_and_retry_after() {
    let upstream = MockUpstream::start();
    let gw = Gateway::start(
        GatewayOptions::new(upstream.base_url())
            .env("ASG_INSPECT_CONCURRENCY", "1")
            .env("ASG_INSPECT_QUEUE", "0"),
    );
    let in_flight = || gw.metric_value("asg_inspect_in_flight", &[]).unwrap_or(0.0);
    let chat_url = format!("{}/v1/chat/completions", gw.proxy_url());
    let slow = {
        let url = chat_url.clone();
        let body = slow_body();
        std::thread::spawn(move || post_gzip(&url, &body))
    };
    assert!(
        wait_until(Duration::from_secs(60), || in_flight() >= 1.0),
        "the slow body never took a slot"
    );
    // While the only slot is taken, every dialect is refused in its own format.
    let small = chat("hello");
    let messages = json!({"model": "claude-sonnet-4-5", "max_tokens": 16,
        "messages": [{"role": "user", "content": "hello"}]})
    .to_string();
    let send = |url: &str, body: &[u8]| {
        http::send(
            "POST",
            url,
            &[("content-type", "application/json")],
            Some(body),
        )
    };
    // A Responses WebSocket upgrades (no body to inspect), but its first
    // client message cannot get a slot: the connection is closed, 1013.
    let mut ws = ws_connect(&gw);
    let create = json!({"type": "response.create", "model": "gpt-5", "input": "hello"});
    ws.send(Message::Text(create.to_string().into())).unwrap();
    let ws_close = loop {
        match ws.read() {
            Ok(Message::Close(c)) => break c,
            Ok(Message::Text(t)) => panic!("an inspected answer while busy: {t}"),
            Ok(_) => {}
            Err(e) => panic!("no close frame: {e}"),
        }
    };
    let openai = send(&chat_url, &small);
    let anthropic = send(
        &format!("{}/v1/messages", gw.proxy_url()),
        messages.as_bytes(),
    );
    let inspect = http::post_json(
        &format!("{}/inspect/input", gw.admin_url()),
        &[],
        &json!({"user_input": "hello"}),
    );
    let still_busy = in_flight() >= 1.0;
    assert!(
        still_busy,
        "the slow body finished too early to observe refusals"
    );
    assert_eq!(openai.status, 503, "{}", openai.text());
    assert_eq!(openai.json()["error"]["code"], "asg_unavailable");
    assert!(openai.json()["error"]["message"]
        .as_str()
        .unwrap()
        .contains("inspection capacity"));
    assert!(openai.header("retry-after").is_some());
    assert_eq!(anthropic.status, 503, "{}", anthropic.text());
    assert_eq!(anthropic.json()["error"]["type"], "overloaded_error");
    assert!(anthropic.header("retry-after").is_some());
    assert_eq!(inspect.status, 503, "{}", inspect.text());
    assert_eq!(inspect.json()["code"], "inspect_busy");
    assert!(inspect.header("retry-after").is_some());
    let ws_close = ws_close.expect("a close code");
    assert_eq!(u16::from(ws_close.code), 1013, "{ws_close:?}");
    assert!(
        ws_close.reason.contains("inspection capacity"),
        "{ws_close:?}"
    );
    assert!(
        upstream.requests().iter().all(|r| r.method != "WS"),
        "a WebSocket message reached the upstream uninspected"
    );
    // Nothing refused reached the upstream.
    assert!(upstream.requests_to("/v1/messages").is_empty());
    let refused = gw
        .metric_value(
            "asg_inspect_refused_total",
            &[("surface", "request"), ("reason", "queue_full")],
        )
        .unwrap_or(0.0);
    assert!(refused >= 2.0, "{refused}");
    let ws_refused = gw
        .metric_value(
            "asg_inspect_refused_total",
            &[("surface", "websocket"), ("reason", "queue_full")],
        )
        .unwrap_or(0.0);
    assert_eq!(ws_refused, 1.0);

    let r = slow.join().unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    // The slot is free again.
    assert_eq!(send(&chat_url, &small).status, 200);
}

const APPROVAL_POLICY: &str = r#"
name = "caps"
[decision]
block_score = 1.3
challenge_score = 0.55
block_high_count = 1
# Every ordinary effect is challenged here, so that `ls` and `uptime`
# go through the approval flow under test.
[tools.effects]
read = "challenge"
build = "challenge"
vcs = "challenge"
write = "challenge"
local_net = "challenge"
infra_read = "challenge"
[proxy]
tool_challenge = "require_approval"
[session]
challenge_score = 50.0
block_score = 100.0
repeat_threshold = 1000
"#;

fn start_capped(upstream: &MockUpstream, env: &[(&str, &str)]) -> Gateway {
    let base = upstream.base_url();
    let mut opts = GatewayOptions::new(base.clone())
        .policy_text("caps.toml", APPROVAL_POLICY)
        .config_text(&format!(
            "[[route]]\nname = \"tools\"\nprefix = \"/mcp\"\nupstream = \"{base}\"\napi = \"mcp\"\n\n\
             [[route]]\nname = \"default\"\nprefix = \"/\"\nupstream = \"{base}\"\n"
        ));
    for (k, v) in env {
        opts = opts.env(k, v);
    }
    Gateway::start(opts)
}

fn inspect_tool(gw: &Gateway, tool: &str, session: &str, agent: &str) -> http::Resp {
    http::post_json(
        &format!("{}/inspect/tool-call", gw.admin_url()),
        &[],
        &json!({"tool_name": tool, "tool_target": "ls", "session_id": session, "agent_id": agent}),
    )
}

#[test]
fn sessions_and_agents_are_capped_least_recently_active_first() {
    let upstream = MockUpstream::start();
    let gw = start_capped(
        &upstream,
        &[("ASG_MAX_SESSIONS", "40"), ("ASG_MAX_AGENTS", "20")],
    );
    for i in 0..150 {
        let r = inspect_tool(&gw, "read_file", &format!("s-{i}"), &format!("a-{i}"));
        assert_eq!(r.status, 200, "{}", r.text());
    }
    let evicted = |scope: &str| {
        gw.metric_value(
            "asg_state_evicted_total",
            &[("scope", scope), ("reason", "cap")],
        )
        .unwrap_or(0.0)
    };
    // The background writer trims right after it persists (every 500 ms).
    assert!(
        wait_until(Duration::from_secs(10), || evicted("session") >= 110.0
            && evicted("agent") >= 130.0),
        "sessions evicted: {}, agents: {}",
        evicted("session"),
        evicted("agent")
    );
    let stats = http::get(&format!("{}/operator/api/stats", gw.admin_url())).json();
    assert!(stats["active_sessions"].as_u64().unwrap() <= 40, "{stats}");
    let timeline = |id: &str| -> Value {
        http::get(&format!(
            "{}/operator/api/session/{id}/timeline",
            gw.admin_url()
        ))
        .json()
    };
    assert!(timeline("s-149")["session"].is_object(), "the newest stays");
    assert!(timeline("s-0")["session"].is_null(), "the oldest went");
}

fn mcp_shell(gw: &Gateway, command: &str, session: &str) -> http::Resp {
    let body = json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call",
        "params": {"name": "shell", "arguments": {"command": command}}});
    http::post_json(
        &format!("{}/mcp", gw.proxy_url()),
        &[("x-agent-id", "bot-1"), ("mcp-session-id", session)],
        &body,
    )
}

#[test]
fn pending_approvals_beyond_the_cap_are_refused_clearly() {
    let upstream = MockUpstream::start();
    let gw = start_capped(&upstream, &[("ASG_MAX_PENDING_APPROVALS", "3")]);
    let mut ids = Vec::new();
    for i in 0..3 {
        let r = inspect_tool(&gw, "exec_shell", &format!("p-{i}"), "agent-a");
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.json()["decision"], "require_approval", "{}", r.text());
        ids.push(
            r.json()["approval"]["approval_id"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    // The inspect API: refused with a clear error, nothing opened.
    let r = inspect_tool(&gw, "exec_shell", "p-3", "agent-a");
    assert_eq!(r.status, 429, "{}", r.text());
    assert_eq!(r.json()["code"], "too_many_pending_approvals");
    assert!(r.json()["error"]
        .as_str()
        .unwrap()
        .contains("ASG_MAX_PENDING_APPROVALS"));
    // The approvals API.
    let r = http::post_json(
        &format!("{}/approval/submit", gw.admin_url()),
        &[],
        &json!({"session_id": "p-4", "action_type": "exec_shell", "action_target": "ls"}),
    );
    assert_eq!(r.status, 429, "{}", r.text());
    // The proxy: the tool call is refused, saying why; the tool never sees it.
    let r = mcp_shell(&gw, "uptime", "mcp-cap");
    assert_eq!(r.status, 200, "{}", r.text());
    let text = r.json()["result"]["content"][0]["text"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(text.contains("approvals are already waiting"), "{text}");
    assert!(r.header("x-asg-approval-id").is_none());
    assert!(upstream.requests_to("/mcp").is_empty());
    let pending = http::get(&format!("{}/approvals?status=pending", gw.admin_url())).json();
    assert_eq!(pending["approvals"].as_array().unwrap().len(), 3);
    let refused = gw
        .metric_value("asg_approvals_total", &[("event", "refused_cap")])
        .unwrap_or(0.0);
    assert!(refused >= 3.0, "{refused}");

    // Deciding one makes room.
    let r = http::post_json(
        &format!("{}/approval/resolve", gw.admin_url()),
        &[],
        &json!({"approval_id": ids[0], "approve": false, "resolver": "alice"}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let r = inspect_tool(&gw, "exec_shell", "p-3", "agent-a");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["decision"], "require_approval");
}

#[test]
fn one_off_conversations_store_no_session_and_a_returning_one_is_kept_whole() {
    let upstream = MockUpstream::start();
    let gw = Gateway::start(GatewayOptions::new(upstream.base_url()));
    let url = format!("{}/v1/chat/completions", gw.proxy_url());
    let send = |messages: Value| {
        let r = http::post_json(&url, &[], &json!({"model": "gpt-4o", "messages": messages}));
        assert_eq!(r.status, 200, "{}", r.text());
    };
    // Each a conversation of its own (the gateway derives its session id
    // from the agent and the opening), allowed with nothing to remember.
    for i in 0..20 {
        send(json!([{"role": "user", "content": format!("Question {i}: what is a monad?")}]));
    }
    let opening = json!({"role": "user", "content": "Plan a weekend in Lisbon."});
    send(json!([opening]));
    send(
        json!([opening, {"role": "assistant", "content": "Day one: Alfama."},
                {"role": "user", "content": "And where to eat?"}]),
    );
    let sessions =
        |gw: &Gateway| http::get(&format!("{}/operator/api/sessions", gw.admin_url())).json();
    // The background writer persists every 500 ms.
    let mut listed = Value::Null;
    assert!(
        wait_until(Duration::from_secs(10), || {
            listed = sessions(&gw);
            listed.to_string().contains("\"request_count\":2")
        }),
        "{listed}"
    );
    // One more writer interval: a one-off written in the same pass as the
    // returning chat may be indexed after it.
    std::thread::sleep(Duration::from_millis(1200));
    let listed = sessions(&gw);
    let items = listed["sessions"]
        .as_array()
        .unwrap_or_else(|| panic!("{listed}"));
    assert_eq!(items.len(), 1, "only the returning conversation: {listed}");
    assert_eq!(items[0]["request_count"], 2, "{listed}");
}
