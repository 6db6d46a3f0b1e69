//! Approvals and permits, end to end: the real `asg` binary, its admin API
//! (`/inspect/*`, `/approval/*`, `/operator/api/*`) and its proxy in front
//! of the mock MCP / OpenAI upstream, over loopback.
//!
//! What must hold: a permit is spent once even under concurrency, expires,
//! is bound to session + agent + tool + arguments, cannot be replayed and
//! never lifts a block; agent keys cannot resolve; no listing shows a live
//! permit; held tool calls complete once approved.

use asg_e2e::http;
use asg_e2e::{Gateway, GatewayOptions, MockUpstream};
use serde_json::{json, Value};
use std::time::Duration;

/// Shell needs approval (medium 0.85 ≥ challenge 0.55); session
/// escalation is out of the way so every repeat is judged the same.
const POLICY: &str = r#"
name = "approvals-e2e"
[decision]
block_score = 1.3
challenge_score = 0.55
block_high_count = 1
# Every ordinary effect is challenged here, so that any tool call goes
# through the approval flow under test.
[tools.effects]
read = "challenge"
build = "challenge"
vcs = "challenge"
write = "challenge"
local_net = "challenge"
infra_read = "challenge"
push = "challenge"
install = "challenge"
fetch = "challenge"
container = "challenge"
[proxy]
tool_challenge = "require_approval"
[session]
challenge_score = 50.0
block_score = 100.0
repeat_threshold = 1000
[approvals]
hold_secs = 0
"#;

const OPERATOR: &str = "op-secret-key";
const AGENT: &str = "agent-secret-key";

fn config(upstream: &MockUpstream) -> String {
    let base = upstream.base_url();
    format!(
        "[[route]]\nname = \"tools\"\nprefix = \"/mcp\"\nupstream = \"{base}\"\napi = \"mcp\"\n\n\
         [[route]]\nname = \"default\"\nprefix = \"/\"\nupstream = \"{base}\"\n"
    )
}

fn start(upstream: &MockUpstream, policy: &str, auth: bool) -> Gateway {
    let mut opts = GatewayOptions::new(upstream.base_url())
        .policy_text("approvals.toml", policy)
        .config_text(&config(upstream));
    if auth {
        opts = opts
            .env("ASG_ADMIN_AUTH", "true")
            .env("ASG_OPERATOR_KEYS", OPERATOR)
            .env("ASG_AGENT_KEYS", AGENT);
    }
    Gateway::start(opts)
}

fn with_key(key: Option<&str>) -> Vec<(&str, String)> {
    key.map(|k| vec![("x-api-key", k.to_string())])
        .unwrap_or_default()
}

fn post(gw: &Gateway, path: &str, key: Option<&str>, body: &Value) -> http::Resp {
    let headers = with_key(key);
    let h: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
    http::post_json(&format!("{}{path}", gw.admin_url()), &h, body)
}

fn get(gw: &Gateway, path: &str, key: Option<&str>) -> http::Resp {
    let headers = with_key(key);
    let h: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
    http::send("GET", &format!("{}{path}", gw.admin_url()), &h, None)
}

fn tool_call(session: &str, target: &str, permit: &str) -> Value {
    json!({
        "tool_name": "exec_shell", "tool_target": target,
        "session_id": session, "agent_id": "agent-a", "approval_token": permit,
    })
}

/// Ask for approval of `target` and approve it; returns (approval id, permit).
fn approved(gw: &Gateway, session: &str, target: &str, ttl: Option<i64>) -> (String, String) {
    let r = post(
        gw,
        "/inspect/tool-call",
        None,
        &tool_call(session, target, ""),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["decision"], "require_approval", "{v}");
    let id = v["approval"]["approval_id"].as_str().unwrap().to_string();
    assert_eq!(v["approval"]["permit_token"], "");
    let mut body = json!({"approval_id": id, "approve": true, "resolver": "alice"});
    if let Some(t) = ttl {
        body["permit_ttl_seconds"] = json!(t);
    }
    let r = post(gw, "/approval/resolve", None, &body);
    assert_eq!(r.status, 200, "{}", r.text());
    let permit = r.json()["permit_token"].as_str().unwrap().to_string();
    assert_eq!(permit.len(), 32);
    (id, permit)
}

#[test]
fn a_permit_is_spent_once_under_concurrency() {
    let upstream = MockUpstream::start();
    let gw = start(&upstream, POLICY, false);
    let (id, permit) = approved(&gw, "s-race", "ls -la", None);

    let barrier = std::sync::Arc::new(std::sync::Barrier::new(16));
    let url = format!("{}/inspect/tool-call", gw.admin_url());
    let results: Vec<Value> = (0..16)
        .map(|_| {
            let (b, url, body) = (
                barrier.clone(),
                url.clone(),
                tool_call("s-race", "ls -la", &permit),
            );
            std::thread::spawn(move || {
                b.wait();
                http::post_json(&url, &[], &body).json()
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|h| h.join().unwrap())
        .collect();
    let winners: Vec<&Value> = results
        .iter()
        .filter(|v| v["decision"] == "allow")
        .collect();
    assert_eq!(winners.len(), 1, "{results:#?}");
    assert_eq!(
        winners[0]["metadata"]["approval"]["approval_id"],
        id.as_str()
    );
    assert_eq!(winners[0]["metadata"]["approval"]["permit_used"], true);
    for v in results.iter().filter(|v| v["decision"] != "allow") {
        assert_eq!(v["decision"], "require_approval", "{v}");
        let reasons = v["reasons"].to_string();
        assert!(reasons.contains("already used"), "{reasons}");
    }
    let a = get(&gw, &format!("/approval/{id}"), None).json();
    assert_eq!(a["status"], "used");
    assert_eq!(a["permit_token"], "");
}

#[test]
fn permits_are_bound_expire_and_cannot_be_replayed() {
    let upstream = MockUpstream::start();
    let gw = start(&upstream, POLICY, false);
    let (_, permit) = approved(&gw, "s-bind", "ls -la", None);
    let reasons = |v: &Value| v["reasons"].to_string();

    // A different argument, session or agent does not match (and spends nothing).
    let other_arg = post(
        &gw,
        "/inspect/tool-call",
        None,
        &tool_call("s-bind", "ls -la /etc", &permit),
    )
    .json();
    assert_eq!(other_arg["decision"], "require_approval");
    assert!(reasons(&other_arg).contains("different session, agent, tool or arguments"));
    let other_session = post(
        &gw,
        "/inspect/tool-call",
        None,
        &tool_call("s-other", "ls -la", &permit),
    )
    .json();
    assert_eq!(other_session["decision"], "require_approval");
    let mut other_agent = tool_call("s-bind", "ls -la", &permit);
    other_agent["agent_id"] = json!("agent-b");
    let other_agent = post(&gw, "/inspect/tool-call", None, &other_agent).json();
    assert_ne!(other_agent["decision"], "allow");
    // Different prose around the call is a different call too.
    let mut prose = tool_call("s-bind", "ls -la", &permit);
    prose["user_input"] = json!("Please list my project folder.");
    assert_eq!(
        post(&gw, "/inspect/tool-call", None, &prose).json()["decision"],
        "require_approval"
    );

    // The right call passes once; the replay fails closed.
    let ok = post(
        &gw,
        "/inspect/tool-call",
        None,
        &tool_call("s-bind", "ls -la", &permit),
    )
    .json();
    assert_eq!(ok["decision"], "allow", "{ok}");
    // The proxy's wording: how it was released and by which approval.
    assert!(
        reasons(&ok).contains("Execution approved by an operator (permit, approval "),
        "{ok}"
    );
    let replay = post(
        &gw,
        "/inspect/tool-call",
        None,
        &tool_call("s-bind", "ls -la", &permit),
    )
    .json();
    assert_eq!(replay["decision"], "require_approval");
    assert!(reasons(&replay).contains("already used"), "{replay}");

    // An unknown permit and an expired one fail closed.
    let bogus = post(
        &gw,
        "/inspect/tool-call",
        None,
        &tool_call("s-bind", "ls -la", "not-a-permit"),
    )
    .json();
    assert!(reasons(&bogus).contains("unknown permit"), "{bogus}");
    let (_, short) = approved(&gw, "s-expire", "uptime", Some(1));
    std::thread::sleep(Duration::from_millis(1300));
    let late = post(
        &gw,
        "/inspect/tool-call",
        None,
        &tool_call("s-expire", "uptime", &short),
    )
    .json();
    assert_eq!(late["decision"], "require_approval", "{late}");
    assert!(reasons(&late).contains("expired"), "{late}");
}

#[test]
fn a_permit_never_lifts_a_block() {
    let upstream = MockUpstream::start();
    let gw = start(&upstream, POLICY, false);
    let (id, permit) = approved(&gw, "s-block", "ls -la", None);
    let version =
        |gw: &Gateway| get(gw, "/ready", None).json()["details"]["policy_version"].clone();
    let before = version(&gw);
    // The operator approved; then the policy changes and reads are blocked.
    gw.write_policy(&POLICY.replace(r#"read = "challenge""#, r#"read = "block""#));
    assert!(asg_e2e::util::wait_until(
        Duration::from_secs(10),
        || version(&gw) != before
    ));
    let blocked = post(
        &gw,
        "/inspect/tool-call",
        None,
        &tool_call("s-block", "ls -la", &permit),
    )
    .json();
    assert_eq!(blocked["decision"], "block", "{blocked}");
    assert!(blocked["approval"].is_null());
    // Not consumed: it is still approved and works once the block is gone.
    assert_eq!(
        get(&gw, &format!("/approval/{id}"), None).json()["status"],
        "approved"
    );
    gw.write_policy(POLICY);
    assert!(asg_e2e::util::wait_until(
        Duration::from_secs(10),
        || version(&gw) == before
    ));
    let ok = post(
        &gw,
        "/inspect/tool-call",
        None,
        &tool_call("s-block", "ls -la", &permit),
    )
    .json();
    assert_eq!(ok["decision"], "allow", "{ok}");

    // `/approval/submit` refuses to open an approval for a blocked action.
    let r = post(
        &gw,
        "/approval/submit",
        None,
        &json!({"session_id": "s-block", "action_type": "exec_shell", "action_target": "cat ~/.ssh/id_rsa"}),
    );
    assert_eq!(r.status, 409, "{}", r.text());
}

#[test]
fn agent_keys_cannot_resolve_and_no_view_shows_a_live_permit() {
    let upstream = MockUpstream::start();
    let gw = start(&upstream, POLICY, true);
    // An agent opens an approval (its key identifies it when agent_id is absent).
    let r = post(
        &gw,
        "/inspect/tool-call",
        Some(AGENT),
        &json!({"tool_name": "exec_shell", "tool_target": "ls", "session_id": "s-roles"}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["decision"], "require_approval");
    let id = v["approval"]["approval_id"].as_str().unwrap().to_string();
    assert!(v["approval"]["agent_id"]
        .as_str()
        .unwrap()
        .starts_with("agent-key:"));

    let resolve = json!({"approval_id": id, "approve": true, "resolver": "mallory"});
    let r = post(&gw, "/approval/resolve", Some(AGENT), &resolve);
    assert_eq!(r.status, 403, "{}", r.text());
    assert_eq!(r.json()["code"], "forbidden");
    assert_eq!(post(&gw, "/approval/resolve", None, &resolve).status, 401);
    for path in [
        "/approvals",
        "/operator/api/overview",
        "/operator/api/audit",
    ] {
        assert_eq!(get(&gw, path, Some(AGENT)).status, 403, "{path}");
    }
    // The agent may look at its approval, still pending.
    assert_eq!(
        get(&gw, &format!("/approval/{id}"), Some(AGENT)).json()["status"],
        "pending"
    );

    let r = post(&gw, "/approval/resolve", Some(OPERATOR), &resolve);
    assert_eq!(r.status, 200, "{}", r.text());
    let permit = r.json()["permit_token"].as_str().unwrap().to_string();
    assert!(r.json()["resolver_credential"]
        .as_str()
        .unwrap()
        .starts_with("operator-key:"));
    // Resolving again is refused.
    let again = post(&gw, "/approval/resolve", Some(OPERATOR), &resolve);
    assert_eq!(again.status, 400);
    assert!(again.text().contains("not pending: approved"));

    for path in [
        format!("/approval/{id}"),
        "/approvals".to_string(),
        "/approvals?status=approved".to_string(),
        "/operator/api/overview?session_id=s-roles".to_string(),
        "/operator/api/session/s-roles/timeline".to_string(),
        "/operator/api/audit?limit=100".to_string(),
        "/operator/api/audit/export".to_string(),
    ] {
        let r = get(&gw, &path, Some(OPERATOR));
        assert_eq!(r.status, 200, "{path}: {}", r.text());
        assert!(!r.text().contains(&permit), "{path} shows the live permit");
    }
    // Nor does the data folder: only the permit's hash is stored.
    let stored = std::fs::read_dir(gw.data_dir().join("asg.sled"))
        .unwrap()
        .flatten()
        .filter(|e| e.path().is_file())
        .any(|e| {
            let bytes = std::fs::read(e.path()).unwrap_or_default();
            bytes.windows(permit.len()).any(|w| w == permit.as_bytes())
        });
    assert!(!stored, "the permit is stored in clear");
    // The console page itself carries no data and needs no key.
    let page = http::get(&format!("{}/operator", gw.admin_url()));
    assert_eq!(page.status, 200);
    assert!(page
        .header("content-security-policy")
        .unwrap()
        .contains("script-src 'self'"));
}

fn mcp_call(gw: &Gateway, command: &str, headers: &[(&str, &str)]) -> http::Resp {
    let body = json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call",
        "params": {"name": "shell", "arguments": {"command": command}}});
    let mut h = vec![("x-agent-id", "bot-1"), ("mcp-session-id", "mcp-s1")];
    h.extend_from_slice(headers);
    http::post_json(&format!("{}/mcp", gw.proxy_url()), &h, &body)
}

fn mcp_text(r: &http::Resp) -> String {
    r.json()["result"]["content"][0]["text"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[test]
fn proxy_lets_the_next_identical_tool_call_through_once() {
    let upstream = MockUpstream::start();
    let gw = start(&upstream, POLICY, false);
    let first = mcp_call(&gw, "ls -la", &[]);
    assert_eq!(first.status, 200);
    assert!(
        mcp_text(&first).contains("requires approval"),
        "{}",
        first.text()
    );
    let id = first
        .header("x-asg-approval-id")
        .expect("approval id header")
        .to_string();
    assert!(mcp_text(&first).contains(&id));
    assert!(
        upstream.requests_to("/mcp").is_empty(),
        "the tool server never saw it"
    );
    // Same call again: the same pending approval, not a second one.
    let again = mcp_call(&gw, "ls -la", &[]);
    assert_eq!(again.header("x-asg-approval-id"), Some(id.as_str()));

    let r = post(
        &gw,
        "/approval/resolve",
        None,
        &json!({"approval_id": id, "approve": true, "resolver": "alice"}),
    );
    assert_eq!(r.status, 200);
    // A different argument is not covered by the approval.
    let other = mcp_call(&gw, "ls -la /root", &[]);
    assert!(mcp_text(&other).contains("requires approval"));
    // The identical call passes once, with the tool's real answer…
    let ok = mcp_call(&gw, "ls -la", &[]);
    assert_eq!(
        mcp_text(&ok),
        "$ ls -la\n(mock shell output)",
        "{}",
        ok.text()
    );
    assert_eq!(ok.header("x-asg-decision"), Some("allow"));
    assert_eq!(upstream.requests_to("/mcp").len(), 1);
    // …and only once.
    let third = mcp_call(&gw, "ls -la", &[]);
    assert!(mcp_text(&third).contains("requires approval"));
    assert_ne!(third.header("x-asg-approval-id"), Some(id.as_str()));
    let a = get(&gw, &format!("/approval/{id}"), None).json();
    assert_eq!(a["status"], "used");
    assert_eq!(a["origin"], "proxy");
    assert_eq!(a["session_id"], "mcp-s1");
    assert_eq!(a["agent_id"], "bot-1");
}

#[test]
fn proxy_permit_header_in_permit_mode() {
    let upstream = MockUpstream::start();
    let policy = POLICY.replace("hold_secs = 0", "hold_secs = 0\nrelease = \"permit\"");
    let gw = start(&upstream, &policy, false);
    let first = mcp_call(&gw, "uptime", &[]);
    let id = first.header("x-asg-approval-id").unwrap().to_string();
    assert!(
        mcp_text(&first).contains("x-asg-permit"),
        "{}",
        first.text()
    );
    let permit = post(
        &gw,
        "/approval/resolve",
        None,
        &json!({"approval_id": id, "approve": true, "resolver": "alice"}),
    )
    .json()["permit_token"]
        .as_str()
        .unwrap()
        .to_string();
    // Approved, but in permit mode the bare call still waits.
    assert!(mcp_text(&mcp_call(&gw, "uptime", &[])).contains("requires approval"));
    let ok = mcp_call(&gw, "uptime", &[("x-asg-permit", &permit)]);
    assert_eq!(
        mcp_text(&ok),
        "$ uptime\n(mock shell output)",
        "{}",
        ok.text()
    );
    // The permit header never reaches the tool server.
    let seen = upstream.requests_to("/mcp");
    assert_eq!(seen.len(), 1);
    assert!(seen[0].header("x-asg-permit").is_none());
    let replay = mcp_call(&gw, "uptime", &[("x-asg-permit", &permit)]);
    assert!(
        mcp_text(&replay).contains("already used"),
        "{}",
        replay.text()
    );
}

#[test]
fn held_tool_calls_complete_when_approved_and_fail_when_denied_or_unanswered() {
    let upstream = MockUpstream::start();
    let gw = start(
        &upstream,
        &POLICY.replace("hold_secs = 0", "hold_secs = 20"),
        false,
    );
    let pending = |gw: &Gateway| -> Vec<Value> {
        get(gw, "/approvals?status=pending", None).json()["approvals"]
            .as_array()
            .unwrap()
            .clone()
    };
    for (command, approve) in [("whoami", true), ("id", false)] {
        let proxy = gw.proxy_url();
        let held = std::thread::spawn(move || {
            let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                "params": {"name": "shell", "arguments": {"command": command}}});
            let started = std::time::Instant::now();
            let r = http::post_json(&format!("{proxy}/mcp"), &[("x-agent-id", "bot-1")], &body);
            (r, started.elapsed())
        });
        let mut found = Vec::new();
        assert!(asg_e2e::util::wait_until(Duration::from_secs(10), || {
            found = pending(&gw);
            !found.is_empty()
        }));
        assert_eq!(found.len(), 1);
        assert_eq!(found[0]["hold"], true);
        assert_eq!(
            found[0]["action_target"],
            json!({"command": command}).to_string()
        );
        std::thread::sleep(Duration::from_millis(300));
        assert!(!held.is_finished(), "the call is held while nobody decided");
        let id = found[0]["approval_id"].as_str().unwrap();
        let r = post(
            &gw,
            "/approval/resolve",
            None,
            &json!({"approval_id": id, "approve": approve, "resolver": "alice"}),
        );
        assert_eq!(r.status, 200);
        let (resp, waited) = held.join().unwrap();
        assert!(waited < Duration::from_secs(15), "{waited:?}");
        if approve {
            assert_eq!(mcp_text(&resp), format!("$ {command}\n(mock shell output)"));
        } else {
            assert!(
                mcp_text(&resp).contains("Denied by an operator"),
                "{}",
                resp.text()
            );
        }
    }
    assert_eq!(
        upstream.requests_to("/mcp").len(),
        1,
        "only the approved call ran"
    );

    // A caller that gives up while held: approving afterwards runs nothing.
    {
        use std::io::Write;
        let body = json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call",
            "params": {"name": "shell", "arguments": {"command": "reboot-later"}}})
        .to_string();
        let mut sock = std::net::TcpStream::connect(gw.proxy_addr()).unwrap();
        write!(
            sock,
            "POST /mcp HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\nx-agent-id: bot-1\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        let mut found = Vec::new();
        assert!(asg_e2e::util::wait_until(Duration::from_secs(10), || {
            found = pending(&gw);
            !found.is_empty()
        }));
        drop(sock);
        std::thread::sleep(Duration::from_millis(300));
        let id = found[0]["approval_id"].as_str().unwrap();
        post(
            &gw,
            "/approval/resolve",
            None,
            &json!({"approval_id": id, "approve": true, "resolver": "alice"}),
        );
        std::thread::sleep(Duration::from_millis(500));
        assert_eq!(
            upstream.requests_to("/mcp").len(),
            1,
            "the abandoned call did not run"
        );
        // The approval was not spent on it: the agent's retry can use it.
        let a = get(&gw, &format!("/approval/{id}"), None).json();
        assert_eq!(a["status"], "approved", "{a}");
        let audit = get(&gw, "/operator/api/audit?limit=1", None).json();
        assert!(
            audit["events"][0]["reasons"]
                .to_string()
                .contains("client went away"),
            "{audit}"
        );
    }

    // Nobody answers: the hold ends after hold_secs and the approval stays pending.
    let quick = start(
        &upstream,
        &POLICY.replace("hold_secs = 0", "hold_secs = 1"),
        false,
    );
    let started = std::time::Instant::now();
    let r = mcp_call(&quick, "date", &[]);
    assert!(started.elapsed() >= Duration::from_millis(900));
    assert!(mcp_text(&r).contains("requires approval"), "{}", r.text());
    assert_eq!(pending(&quick).len(), 1);
}

#[test]
fn llm_tool_calls_needing_approval_are_released_on_the_next_identical_proposal() {
    let upstream = MockUpstream::start();
    let gw = start(&upstream, POLICY, false);
    let chat = |gw: &Gateway| {
        http::post_json(
            &format!("{}/v1/chat/completions", gw.proxy_url()),
            &[
                ("x-mock-scenario", "tool_benign"),
                ("x-session-id", "chat-1"),
                ("x-agent-id", "coder"),
            ],
            &json!({"model": "m", "messages": [{"role": "user", "content": "list files"}]}),
        )
    };
    let first = chat(&gw).json();
    let msg = &first["choices"][0]["message"];
    assert!(msg["tool_calls"].is_null(), "{first}");
    let text = msg["content"].as_str().unwrap_or_default().to_string();
    assert!(text.contains("requires approval"), "{text}");
    let pending = get(&gw, "/approvals?status=pending", None).json();
    let a = &pending["approvals"][0];
    assert!(
        text.contains(a["approval_id"].as_str().unwrap()),
        "{text}\n{pending}"
    );
    assert_eq!(a["session_id"], "chat-1");
    assert_eq!(a["dialect"], "openai_chat");
    post(
        &gw,
        "/approval/resolve",
        None,
        &json!({"approval_id": a["approval_id"], "approve": true, "resolver": "alice"}),
    );
    let second = chat(&gw).json();
    assert_eq!(
        second["choices"][0]["message"]["tool_calls"][0]["function"]["name"], "shell",
        "{second}"
    );
    let third = chat(&gw).json();
    assert!(
        third["choices"][0]["message"]["tool_calls"].is_null(),
        "released once only"
    );
}

#[test]
fn session_risk_follows_the_agent_across_rotated_session_ids() {
    let upstream = MockUpstream::start();
    // Production's effects and session thresholds (challenge 0.5, block
    // 1.5), no decay.
    let policy = r#"
name = "rotation-e2e"
[decision]
block_score = 1.3
challenge_score = 0.55
block_high_count = 1
[proxy]
tool_challenge = "require_approval"
[session]
challenge_score = 0.5
block_score = 1.5
half_life_secs = 0
[approvals]
hold_secs = 0
"#;
    let mut gw = start(&upstream, policy, false);
    let call = |gw: &Gateway, session: &str, target: &str| {
        post(gw, "/inspect/tool-call", None, &json!({
            "tool_name": "shell", "tool_target": target, "session_id": session, "agent_id": "rotator"}))
        .json()
    };
    // Before anything was refused, a push flows.
    assert_eq!(
        call(&gw, "fresh-0", "git push origin feature/x")["decision"],
        "allow"
    );
    // A refused credential read raises the agent's risk …
    assert_eq!(
        call(&gw, "fresh-1", "cat ~/.ssh/id_rsa")["decision"],
        "block"
    );
    // … which follows it into a fresh session: the push now needs a human,
    // and the answer says why; reads still pass.
    let push = call(&gw, "fresh-2", "git push origin feature/x");
    assert_eq!(push["decision"], "require_approval", "{push}");
    let reasons = push["reasons"].to_string();
    assert!(reasons.contains("Agent cumulative risk"), "{push}");
    assert!(
        reasons.contains("tool.effect.credential_read"),
        "the cause is named: {push}"
    );
    assert_eq!(call(&gw, "fresh-3", "ls -la")["decision"], "allow");
    // Another agent using that session is refused outright.
    let intruder = post(&gw, "/inspect/tool-call", None, &json!({
        "tool_name": "shell", "tool_target": "ls", "session_id": "fresh-0", "agent_id": "someone-else"}))
    .json();
    assert_eq!(intruder["decision"], "block");
    assert!(intruder["reasons"]
        .to_string()
        .contains("belongs to another agent"));
    // Session and agent state survive a restart, SIGKILL even, once written
    // behind (every 500 ms; audit and approvals are durable at once).
    std::thread::sleep(Duration::from_millis(1200));
    gw.kill_hard();
    gw.restart();
    let timeline = get(&gw, "/operator/api/session/fresh-1/timeline", None).json();
    assert_eq!(timeline["session"]["agent_id"], "rotator");
    assert!(
        timeline["agent"]["cumulative_risk"].as_f64().unwrap() >= 0.89,
        "{timeline}"
    );
    let after = call(&gw, "fresh-after-restart", "git push origin feature/x");
    assert_ne!(after["decision"], "allow", "{after}");
}

#[test]
fn without_auth_the_admin_api_answers_only_loopback_host_names() {
    let upstream = MockUpstream::start();
    let gw = start(&upstream, POLICY, false);
    // A page that rebinds evil.example to 127.0.0.1 still sends its own Host.
    let r = http::send(
        "GET",
        &format!("{}/approvals", gw.admin_url()),
        &[("host", "evil.example:9090")],
        None,
    );
    assert_eq!(r.status, 403, "{}", r.text());
    assert_eq!(r.json()["code"], "host_not_allowed");
    let ok = http::send(
        "GET",
        &format!("{}/approvals", gw.admin_url()),
        &[("host", "localhost")],
        None,
    );
    assert_eq!(ok.status, 200);
    // Probes stay reachable whatever the host name.
    let health = http::send(
        "GET",
        &format!("{}/health", gw.admin_url()),
        &[("host", "10.1.2.3")],
        None,
    );
    assert_eq!(health.status, 200);
    // Approval metrics count the lifecycle.
    let first = mcp_call(&gw, "ls", &[]);
    assert!(first.header("x-asg-approval-id").is_some());
    assert!(
        gw.metric_value("asg_approvals_total", &[("event", "opened")])
            .unwrap_or(0.0)
            >= 1.0
    );
}

#[test]
fn a_submitted_approval_releases_the_matching_inspected_call() {
    let upstream = MockUpstream::start();
    let gw = start(&upstream, POLICY, false);
    let submit = json!({"session_id": "s-sub", "agent_id": "agent-a",
        "action_type": "exec_shell", "action_target": "df -h"});
    let r = post(&gw, "/approval/submit", None, &submit);
    assert_eq!(r.status, 201, "{}", r.text());
    let a = r.json();
    assert_eq!(
        (a["status"].as_str(), a["origin"].as_str()),
        (Some("pending"), Some("submit"))
    );
    // Submitting again finds the same pending approval.
    let again = post(&gw, "/approval/submit", None, &submit);
    assert_eq!(again.status, 200);
    assert_eq!(again.json()["approval_id"], a["approval_id"]);
    let permit = post(
        &gw,
        "/approval/resolve",
        None,
        &json!({"approval_id": a["approval_id"], "approve": true, "resolver": "alice"}),
    )
    .json()["permit_token"]
        .as_str()
        .unwrap()
        .to_string();
    let v = post(
        &gw,
        "/inspect/tool-call",
        None,
        &tool_call("s-sub", "df -h", &permit),
    )
    .json();
    assert_eq!(v["decision"], "allow", "{v}");
    assert_eq!(v["metadata"]["approval"]["approval_id"], a["approval_id"]);
    // Malformed requests are clear errors.
    let bad = post(
        &gw,
        "/approval/submit",
        None,
        &json!({"session_id": "s", "action_type": "x", "bogus": 1}),
    );
    assert_eq!(bad.status, 422);
    let missing = post(
        &gw,
        "/approval/resolve",
        None,
        &json!({"approval_id": "0123456789abcdef0123456789abcdef", "approve": true, "resolver": "a"}),
    );
    assert_eq!(missing.status, 400);
    assert!(missing.text().contains("approval_id not found"));
}

#[test]
fn no_secret_reaches_the_data_folder_unmasked() {
    let upstream = MockUpstream::start();
    let gw = start(&upstream, POLICY, false);
    let key = asg_e2e::FAKE_AWS_KEY;
    // Inspect API: a shell call whose target holds a key (opens an approval).
    let v = post(
        &gw,
        "/inspect/tool-call",
        None,
        &json!({
        "tool_name": "exec_shell", "tool_target": format!("aws s3 ls --key {key}"),
        "session_id": "s-secret", "agent_id": "agent-a", "memory_reads": [format!("vault/{key}")]}),
    )
    .json();
    assert_ne!(v["decision"], "allow");
    // Proxy: a prompt with the key, a tool call carrying it, a path naming it.
    http::post_json(
        &format!("{}/v1/chat/completions", gw.proxy_url()),
        &[("x-session-id", "s-secret-chat")],
        &json!({"model": "m", "messages": [{"role": "user", "content": format!("my key is {key}")}]}),
    );
    let r = mcp_call(&gw, &format!("deploy --aws-key {key}"), &[]);
    assert!(r.header("x-asg-approval-id").is_some(), "{}", r.text());
    http::get(&format!("{}/v1/files/{key}", gw.proxy_url()));
    // Sessions are written behind; give the writer a turn.
    std::thread::sleep(Duration::from_millis(1200));
    let mut leaks = Vec::new();
    for entry in std::fs::read_dir(gw.data_dir().join("asg.sled"))
        .unwrap()
        .flatten()
    {
        let p = entry.path();
        if p.is_file() {
            let bytes = std::fs::read(&p).unwrap();
            if bytes.windows(key.len()).any(|w| w == key.as_bytes()) {
                leaks.push(p);
            }
        }
    }
    assert!(leaks.is_empty(), "raw secret stored in {leaks:?}");
    // It is there, masked, for the operator to correlate.
    let pending = get(&gw, "/approvals?status=pending", None).text();
    assert!(
        pending.contains("[REDACTED:aws_access_key_id:"),
        "{pending}"
    );
}
