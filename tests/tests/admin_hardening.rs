//! The admin listener under attack, through the real binary: cross-site
//! approval, guessing keys, an agent key acting as another agent, silent
//! connections, and a listener reachable from other hosts without auth.

use asg_e2e::http;
use asg_e2e::util::free_port;
use asg_e2e::{Gateway, GatewayOptions, MockUpstream};
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// `exec_shell` needs approval; nothing else in the way.
const POLICY: &str = r#"
name = "admin-hardening"
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
[session]
challenge_score = 50.0
block_score = 100.0
repeat_threshold = 1000
"#;

fn start(upstream: &MockUpstream, env: &[(&str, &str)]) -> Gateway {
    let mut opts = GatewayOptions::new(upstream.base_url()).policy_text("admin.toml", POLICY);
    for (k, v) in env {
        opts = opts.env(k, v);
    }
    Gateway::start(opts)
}

fn admin(
    gw: &Gateway,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&Value>,
) -> http::Resp {
    let bytes = body.map(|b| b.to_string().into_bytes());
    http::send(
        method,
        &format!("{}{path}", gw.admin_url()),
        headers,
        bytes.as_deref(),
    )
}

const JSON: (&str, &str) = ("content-type", "application/json");

/// A pending approval for `exec_shell ls` in `session`, opened with `key`.
fn pending(gw: &Gateway, session: &str, key: Option<&str>, agent: &str) -> String {
    let mut h = vec![JSON];
    if let Some(k) = key {
        h.push(("x-api-key", k));
    }
    let body = json!({"tool_name": "exec_shell", "tool_target": "ls", "session_id": session, "agent_id": agent});
    let r = admin(gw, "POST", "/inspect/tool-call", &h, Some(&body));
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["decision"], "require_approval", "{v}");
    v["approval"]["approval_id"].as_str().unwrap().to_string()
}

fn status_of(gw: &Gateway, id: &str, key: Option<&str>) -> http::Resp {
    let h: Vec<(&str, &str)> = key.map(|k| vec![("x-api-key", k)]).unwrap_or_default();
    admin(gw, "GET", &format!("/approval/{id}"), &h, None)
}

#[test]
fn a_web_page_cannot_approve_through_the_operators_browser() {
    let upstream = MockUpstream::start();
    let gw = start(&upstream, &[]);
    let id = pending(&gw, "s-csrf", None, "agent-a");
    let resolve = json!({"approval_id": id, "approve": true, "resolver": "page"});
    let origin_self = format!("http://{}", gw.admin_addr());
    let attempts: Vec<(&str, Vec<(&str, &str)>)> = vec![
        // A form or a no-CORS fetch: no JSON content type.
        ("no content type", vec![]),
        ("text/plain", vec![("content-type", "text/plain")]),
        (
            "form",
            vec![("content-type", "application/x-www-form-urlencoded")],
        ),
        // A page that managed to send JSON anyway.
        (
            "foreign origin",
            vec![JSON, ("origin", "http://evil.example")],
        ),
        ("null origin", vec![JSON, ("origin", "null")]),
        (
            "cross-site fetch",
            vec![JSON, ("sec-fetch-site", "cross-site")],
        ),
        (
            "same-site, other port",
            vec![
                JSON,
                ("sec-fetch-site", "same-site"),
                ("origin", "http://127.0.0.1:1"),
            ],
        ),
    ];
    for (what, headers) in &attempts {
        let r = admin(&gw, "POST", "/approval/resolve", headers, Some(&resolve));
        assert!(
            r.status == 415 || r.status == 403,
            "{what}: {} {}",
            r.status,
            r.text()
        );
        let code = r.json()["code"].as_str().unwrap_or_default().to_string();
        assert!(
            code == "unsupported_media_type" || code == "cross_site_request",
            "{what}: {code}"
        );
        assert_eq!(
            status_of(&gw, &id, None).json()["status"],
            "pending",
            "{what}"
        );
    }
    // The same refusal for the other state-changing endpoints.
    let submit =
        json!({"session_id": "s-csrf2", "action_type": "exec_shell", "action_target": "ls"});
    let r = admin(
        &gw,
        "POST",
        "/approval/submit",
        &[("origin", "http://evil.example"), JSON],
        Some(&submit),
    );
    assert_eq!(r.status, 403, "{}", r.text());
    let r = admin(
        &gw,
        "POST",
        "/inspect/input",
        &[],
        Some(&json!({"user_input": "hi"})),
    );
    assert_eq!(r.status, 415, "{}", r.text());

    // The console (same origin) and non-browser clients still work.
    let r = admin(
        &gw,
        "POST",
        "/approval/resolve",
        &[
            JSON,
            ("origin", &origin_self),
            ("sec-fetch-site", "same-origin"),
        ],
        Some(&resolve),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(status_of(&gw, &id, None).json()["status"], "approved");
    let refused = gw
        .metric_value(
            "asg_admin_requests_total",
            &[("path", "/approval/resolve"), ("status", "403")],
        )
        .unwrap_or(0.0);
    assert!(refused >= 4.0, "{refused}");
}

#[test]
fn guessing_admin_keys_is_rate_limited_by_default() {
    let upstream = MockUpstream::start();
    let gw = start(
        &upstream,
        &[
            ("ASG_ADMIN_AUTH", "true"),
            ("ASG_OPERATOR_KEYS", "the-real-key"),
        ],
    );
    let approvals = |key: &str| admin(&gw, "GET", "/approvals", &[("x-api-key", key)], None);
    assert_eq!(approvals("the-real-key").status, 200);
    let mut statuses = Vec::new();
    for i in 0..40 {
        statuses.push(approvals(&format!("guess-{i}")).status);
    }
    assert_eq!(statuses[0], 401);
    assert!(statuses[..30].iter().all(|s| *s == 401), "{statuses:?}");
    assert!(statuses[30..].iter().all(|s| *s == 429), "{statuses:?}");
    // Once limited, the address is refused even with the right key: a
    // guess that happens to be right must not stand out.
    let r = approvals("the-real-key");
    assert_eq!(r.status, 429, "{}", r.text());
    assert_eq!(r.json()["code"], "too_many_auth_failures");
    assert!(r.header("retry-after").is_some());
    // Probes stay open.
    assert_eq!(admin(&gw, "GET", "/health", &[], None).status, 200);
}

#[test]
fn an_agent_key_cannot_act_as_another_agent() {
    let upstream = MockUpstream::start();
    let gw = start(
        &upstream,
        &[
            ("ASG_ADMIN_AUTH", "true"),
            ("ASG_OPERATOR_KEYS", "op-key"),
            ("ASG_AGENT_KEYS", "victim-key,attacker-key"),
        ],
    );
    // The victim asks for approval (its key is its identity) and an
    // operator approves: the next identical call of the victim may run.
    let id = pending(&gw, "s-victim", Some("victim-key"), "");
    let victim = status_of(&gw, &id, Some("victim-key")).json()["agent_id"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(victim.starts_with("agent-key:"), "{victim}");
    let r = admin(
        &gw,
        "POST",
        "/approval/resolve",
        &[JSON, ("x-api-key", "op-key")],
        Some(&json!({"approval_id": id, "approve": true, "resolver": "alice"})),
    );
    assert_eq!(r.status, 200, "{}", r.text());

    // The attacker names the victim: refused, nothing spent.
    let call = |key: &str, agent: &str| {
        admin(
            &gw,
            "POST",
            "/inspect/tool-call",
            &[JSON, ("x-api-key", key)],
            Some(
                &json!({"tool_name": "exec_shell", "tool_target": "ls", "session_id": "s-victim", "agent_id": agent}),
            ),
        )
    };
    let r = call("attacker-key", &victim);
    assert_eq!(r.status, 403, "{}", r.text());
    assert_eq!(r.json()["code"], "agent_mismatch");
    let r = call("attacker-key", "someone-else");
    assert_eq!(r.status, 403, "{}", r.text());
    // The attacker cannot even look at the victim's approval.
    assert_eq!(status_of(&gw, &id, Some("attacker-key")).status, 404);
    let submit = json!({"session_id": "s-x", "agent_id": victim, "action_type": "exec_shell", "action_target": "ls"});
    let r = admin(
        &gw,
        "POST",
        "/approval/submit",
        &[JSON, ("x-api-key", "attacker-key")],
        Some(&submit),
    );
    assert_eq!(r.status, 403, "{}", r.text());

    // The victim's own call is released, once.
    let r = call("victim-key", &victim);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["decision"], "allow", "{}", r.text());
    assert_eq!(
        status_of(&gw, &id, Some("victim-key")).json()["status"],
        "used"
    );
}

#[test]
fn agent_keys_bound_by_name_act_only_as_that_agent() {
    let upstream = MockUpstream::start();
    let gw = start(
        &upstream,
        &[
            ("ASG_ADMIN_AUTH", "true"),
            ("ASG_OPERATOR_KEYS", "op-key"),
            ("ASG_AGENTS", "reporter=rep-key,builder=build-key=="),
        ],
    );
    let id = pending(&gw, "s-rep", Some("rep-key"), "reporter");
    assert_eq!(
        status_of(&gw, &id, Some("rep-key")).json()["agent_id"],
        "reporter"
    );
    // Without agent_id the bound name is used.
    let id2 = pending(&gw, "s-rep2", Some("rep-key"), "");
    assert_eq!(
        status_of(&gw, &id2, Some("rep-key")).json()["agent_id"],
        "reporter"
    );
    let r = admin(
        &gw,
        "POST",
        "/inspect/tool-call",
        &[JSON, ("x-api-key", "build-key==")],
        Some(
            &json!({"tool_name": "exec_shell", "tool_target": "ls", "session_id": "s-rep", "agent_id": "reporter"}),
        ),
    );
    assert_eq!(r.status, 403, "{}", r.text());
    assert_eq!(status_of(&gw, &id, Some("build-key==")).status, 404);
    assert_eq!(status_of(&gw, &id, Some("op-key")).status, 200);
}

/// Bytes the server sent before closing, or `None` if it kept the
/// connection open for `patience`.
fn closed_within(mut s: TcpStream, patience: Duration) -> Option<Vec<u8>> {
    s.set_read_timeout(Some(patience)).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + patience;
    while Instant::now() < deadline {
        match s.read(&mut buf) {
            Ok(0) => return Some(got),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return Some(got),
            Err(_) => return None,
        }
    }
    None
}

#[test]
fn silent_admin_connections_are_closed() {
    let upstream = MockUpstream::start();
    let gw = start(&upstream, &[("ASG_ADMIN_IDLE_TIMEOUT", "1")]);
    let patience = Duration::from_secs(15);
    // Connects and says nothing.
    let silent = TcpStream::connect(gw.admin_addr()).unwrap();
    // Stops in the middle of a request header.
    let mut half = TcpStream::connect(gw.admin_addr()).unwrap();
    half.write_all(b"POST /inspect/input HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        .unwrap();
    // Sends a body shorter than announced.
    let mut short = TcpStream::connect(gw.admin_addr()).unwrap();
    short
        .write_all(b"POST /inspect/input HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"user_input\"")
        .unwrap();
    // One request, then an idle keep-alive connection.
    let mut idle = TcpStream::connect(gw.admin_addr()).unwrap();
    idle.write_all(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .unwrap();
    for (what, s) in [
        ("silent", silent),
        ("half header", half),
        ("short body", short),
    ] {
        assert!(closed_within(s, patience).is_some(), "{what}: still open");
    }
    let answered = closed_within(idle, patience).expect("idle keep-alive: still open");
    assert!(
        String::from_utf8_lossy(&answered).starts_with("HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&answered)
    );
    // The listener itself is fine.
    assert_eq!(admin(&gw, "GET", "/health", &[], None).status, 200);
}

#[test]
fn a_reachable_admin_listener_without_auth_refuses_to_start() {
    let upstream = MockUpstream::start();
    let addr = format!("0.0.0.0:{}", free_port());
    let err = Gateway::try_start(
        GatewayOptions::new(upstream.base_url())
            .env("ASG_ADMIN_LISTEN", &addr)
            .ready_timeout(Duration::from_secs(5)),
    )
    .err()
    .expect("the gateway must not start");
    assert!(
        err.contains(&format!(
            "the admin listener {addr} is reachable from other hosts but admin auth is off"
        )),
        "{err}"
    );
    assert!(err.contains("ASG_ADMIN_AUTH=true"), "{err}");
}
