//! A fleet: two real `asg` processes on one loopback `redis-server`
//! (`ASG_STATE_URL`), each with its own data folder, driven through their
//! proxies and admin APIs.
//!
//! What must hold: an approval raised through one gateway is listed and
//! resolved through the other, and a held call continues where it was
//! raised; a permit is spent exactly once whichever gateways present it at
//! the same moment; session risk built through one gateway is judged on
//! the other; with Redis gone, approvals and permits fail closed, `/ready`
//! says so and risk degrades to the local view (metric + log line); Redis
//! back (same append-only file) and everything works again, nothing that
//! was acknowledged lost, no gateway restarted.

use asg::state::redis::testkit::{self, RedisServer};
use asg_e2e::http;
use asg_e2e::util::wait_until;
use asg_e2e::{Gateway, GatewayOptions, MockUpstream};
use serde_json::{json, Value};
use std::time::Duration;

/// Commands that read or run something need approval (their effects are
/// challenged here); a file write and a push flow, until a refused call
/// raises the session's risk past its challenge score: then the push (a
/// risky effect) waits for a human, while writes still flow.
const POLICY: &str = r#"
name = "fleet-e2e"
[decision]
block_score = 1.3
challenge_score = 0.55
block_high_count = 1
[tools.effects]
read = "challenge"
build = "challenge"
local_net = "challenge"
infra_read = "challenge"
[proxy]
tool_challenge = "require_approval"
[session]
challenge_score = 0.8
block_score = 100.0
repeat_threshold = 1000
[approvals]
hold_secs = 20
"#;

fn config(upstream: &MockUpstream) -> String {
    let base = upstream.base_url();
    format!(
        "[[route]]\nname = \"tools\"\nprefix = \"/mcp\"\nupstream = \"{base}\"\napi = \"mcp\"\n\n\
         [[route]]\nname = \"default\"\nprefix = \"/\"\nupstream = \"{base}\"\n"
    )
}

fn gateway(
    upstream: &MockUpstream,
    redis: &RedisServer,
    name: &str,
    env: &[(&str, &str)],
) -> Gateway {
    let policy = match env.iter().find(|(k, _)| *k == "HOLD_SECS") {
        Some((_, secs)) => POLICY.replace("hold_secs = 20", &format!("hold_secs = {secs}")),
        None => POLICY.to_string(),
    };
    let mut opts = GatewayOptions::new(upstream.base_url())
        .policy_text("fleet.toml", &policy)
        .config_text(&config(upstream))
        .env("ASG_STATE_URL", &redis.url())
        .env("ASG_STATE_PREFIX", "fleet-e2e")
        .env("HOSTNAME", name);
    for (k, v) in env.iter().filter(|(k, _)| *k != "HOLD_SECS") {
        opts = opts.env(k, v);
    }
    Gateway::start(opts)
}

/// Two gateways on one fresh Redis, or `None` (skipped) without redis-server.
fn fleet_with(env: &[(&str, &str)]) -> Option<(RedisServer, MockUpstream, Gateway, Gateway)> {
    let bin = testkit::require()?;
    let redis = RedisServer::start(&bin, &[]);
    let upstream = MockUpstream::start();
    let a = gateway(&upstream, &redis, "gw-a", env);
    let b = gateway(&upstream, &redis, "gw-b", env);
    Some((redis, upstream, a, b))
}

fn fleet() -> Option<(RedisServer, MockUpstream, Gateway, Gateway)> {
    fleet_with(&[])
}

fn post(gw: &Gateway, path: &str, body: &Value) -> http::Resp {
    http::post_json(&format!("{}{path}", gw.admin_url()), &[], body)
}

fn get(gw: &Gateway, path: &str) -> http::Resp {
    http::send("GET", &format!("{}{path}", gw.admin_url()), &[], None)
}

fn pending(gw: &Gateway) -> Vec<Value> {
    let r = get(gw, "/approvals?status=pending");
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()["approvals"].as_array().unwrap().clone()
}

fn tool_call(tool: &str, session: &str, target: &str, permit: &str) -> Value {
    json!({
        "tool_name": tool, "tool_target": target,
        "session_id": session, "agent_id": "agent-a", "approval_token": permit,
    })
}

fn resolve(gw: &Gateway, id: &str, approve: bool) -> http::Resp {
    post(
        gw,
        "/approval/resolve",
        &json!({"approval_id": id, "approve": approve, "resolver": "alice"}),
    )
}

fn mcp_text(r: &http::Resp) -> String {
    r.json()["result"]["content"][0]["text"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

fn ready(gw: &Gateway) -> Value {
    http::get(&format!("{}/ready", gw.admin_url())).json()
}

#[test]
fn an_approval_raised_on_one_gateway_is_resolved_on_the_other_and_its_permit_spent_once() {
    let Some((_redis, upstream, a, b)) = fleet() else {
        return;
    };
    for gw in [&a, &b] {
        let r = ready(gw);
        assert_eq!(r["details"]["state"]["backend"], "redis", "{r}");
        assert_eq!(r["details"]["state"]["connected"], true, "{r}");
    }

    // A held MCP call through A, approved through B: it runs on A.
    let proxy = a.proxy_url();
    let held = std::thread::spawn(move || {
        let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
            "params": {"name": "shell", "arguments": {"command": "whoami"}}});
        http::post_json(&format!("{proxy}/mcp"), &[("x-agent-id", "bot-1")], &body)
    });
    let mut found = Vec::new();
    assert!(wait_until(Duration::from_secs(10), || {
        found = pending(&b);
        !found.is_empty()
    }));
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0]["hold"], true);
    std::thread::sleep(Duration::from_millis(200));
    assert!(!held.is_finished(), "held while nobody decided");
    let id = found[0]["approval_id"].as_str().unwrap().to_string();
    assert_eq!(resolve(&b, &id, true).status, 200);
    let resp = held.join().unwrap();
    assert_eq!(mcp_text(&resp), "$ whoami\n(mock shell output)");
    assert_eq!(upstream.requests_to("/mcp").len(), 1);
    let seen_on_a = get(&a, &format!("/approval/{id}")).json();
    assert_eq!(seen_on_a["status"], "used", "{seen_on_a}");

    // A permit: raised on A, approved on B, presented by both at once.
    let r = post(
        &a,
        "/inspect/tool-call",
        &tool_call("exec_shell", "s-race", "ls -la", ""),
    );
    assert_eq!(r.json()["decision"], "require_approval", "{}", r.text());
    let id = r.json()["approval"]["approval_id"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(pending(&b).iter().any(|p| p["approval_id"] == id.as_str()));
    let r = resolve(&b, &id, true);
    assert_eq!(r.status, 200, "{}", r.text());
    let permit = r.json()["permit_token"].as_str().unwrap().to_string();
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(16));
    let results: Vec<Value> = (0..16)
        .map(|i| {
            let url = format!(
                "{}/inspect/tool-call",
                if i % 2 == 0 { &a } else { &b }.admin_url()
            );
            let body = tool_call("exec_shell", "s-race", "ls -la", &permit);
            let b = barrier.clone();
            std::thread::spawn(move || {
                b.wait();
                http::post_json(&url, &[], &body).json()
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|h| h.join().unwrap())
        .collect();
    let winners = results.iter().filter(|v| v["decision"] == "allow").count();
    assert_eq!(winners, 1, "{results:#?}");
    for v in results.iter().filter(|v| v["decision"] != "allow") {
        assert!(v["reasons"].to_string().contains("already used"), "{v}");
    }
    assert_eq!(get(&a, &format!("/approval/{id}")).json()["status"], "used");
}

#[test]
fn session_risk_built_on_one_gateway_escalates_the_session_on_the_other() {
    let Some((_redis, _upstream, a, b)) = fleet() else {
        return;
    };
    let call = |gw: &Gateway, session: &str, agent: &str, target: &str| {
        let mut body = tool_call("exec_shell", session, target, "");
        body["agent_id"] = json!(agent);
        let r = post(gw, "/inspect/tool-call", &body);
        assert_eq!(r.status, 200, "{}", r.text());
        r.json()
    };
    let push = "git push origin feature/x";
    let v = call(&a, "s-risky", "agent-a", push);
    assert_eq!(v["decision"], "allow", "{v}");
    let v = call(&a, "s-risky", "agent-a", "cat ~/.ssh/id_rsa");
    assert_eq!(v["decision"], "block", "{v}");
    // Records are sent in the background: B sees them within moments.
    assert!(wait_until(Duration::from_secs(10), || {
        let t = get(&b, "/operator/api/session/s-risky/timeline").json();
        t["session"]["request_count"].as_u64() >= Some(2)
    }));
    let on_b = call(&b, "s-risky", "agent-a", push);
    assert_ne!(on_b["decision"], "allow", "{on_b}");
    assert!(
        on_b["findings"].to_string().contains("session"),
        "a session finding: {on_b}"
    );
    assert!(
        on_b["reasons"].to_string().contains("credential_read"),
        "the cause is named: {on_b}"
    );
    // Ordinary work still flows in that session.
    let mut write = tool_call("write_file", "s-risky", "notes.txt", "");
    write["agent_id"] = json!("agent-a");
    assert_eq!(
        post(&b, "/inspect/tool-call", &write).json()["decision"],
        "allow"
    );
    // The same push in a fresh session of another agent is allowed on B.
    let fresh = call(&b, "s-fresh", "agent-z", push);
    assert_eq!(fresh["decision"], "allow", "{fresh}");
}

#[test]
fn a_callers_rate_limit_holds_across_the_fleet() {
    // 6 a minute: each gateway alone would let 6 through, 12 together.
    let Some((_redis, _upstream, a, b)) = fleet_with(&[("ASG_RATE_LIMIT", "6")]) else {
        return;
    };
    let mut codes = Vec::new();
    for i in 0..12 {
        let gw = if i % 2 == 0 { &a } else { &b };
        codes.push(get(gw, "/approvals").status);
    }
    let ok = codes.iter().filter(|c| **c == 200).count();
    // One more may pass if the machine is slow enough to refill one
    // (one every 10 s); never the 12 two separate limiters allow.
    assert!((6..=7).contains(&ok), "{codes:?}");
    assert!(codes.iter().all(|c| *c == 200 || *c == 429), "{codes:?}");
    assert_eq!(codes[10..], [429, 429], "both gateways refuse: {codes:?}");
}

#[test]
fn with_redis_down_approvals_fail_closed_risk_degrades_and_all_recovers() {
    let Some((mut redis, upstream, a, b)) = fleet_with(&[("HOLD_SECS", "3")]) else {
        return;
    };
    // Acknowledged before the crash: an approval raised on A.
    let r = post(
        &a,
        "/inspect/tool-call",
        &tool_call("exec_shell", "s-down", "uptime", ""),
    );
    assert_eq!(r.json()["decision"], "require_approval", "{}", r.text());
    let id = r.json()["approval"]["approval_id"]
        .as_str()
        .unwrap()
        .to_string();

    // Also acknowledged: a permit approved on B and spent through A.
    let r = post(
        &a,
        "/inspect/tool-call",
        &tool_call("exec_shell", "s-spent", "df -h", ""),
    );
    let spent_id = r.json()["approval"]["approval_id"]
        .as_str()
        .unwrap()
        .to_string();
    let spent = resolve(&b, &spent_id, true).json()["permit_token"]
        .as_str()
        .unwrap()
        .to_string();
    let use_spent = || {
        post(
            &a,
            "/inspect/tool-call",
            &tool_call("exec_shell", "s-spent", "df -h", &spent),
        )
    };
    assert_eq!(use_spent().json()["decision"], "allow");

    // A call held on A when Redis goes away: refused at its deadline.
    let proxy = a.proxy_url();
    let held = std::thread::spawn(move || {
        let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
            "params": {"name": "shell", "arguments": {"command": "hostname"}}});
        http::post_json(&format!("{proxy}/mcp"), &[("x-agent-id", "bot-1")], &body)
    });
    assert!(wait_until(Duration::from_secs(10), || pending(&b).len() == 2));

    redis.kill();
    assert!(wait_until(Duration::from_secs(10), || {
        ready(&a)["details"]["state"]["connected"] == false
    }));
    let held = held.join().unwrap();
    assert!(
        mcp_text(&held).contains("requires approval"),
        "{}",
        held.text()
    );
    assert!(upstream.requests_to("/mcp").is_empty(), "nothing ran");
    let r = ready(&a);
    assert_eq!(r["status"], "ready", "the sidecar keeps serving: {r}");
    assert_eq!(r["details"]["state"]["degraded"], true, "{r}");

    // Approvals and permits: refused, nothing decided.
    let r = post(
        &a,
        "/inspect/tool-call",
        &tool_call("exec_shell", "s-down", "uptime", ""),
    );
    assert_eq!(r.status, 503, "{}", r.text());
    let r = resolve(&b, &id, true);
    assert_eq!(r.status, 503, "{}", r.text());
    // A proxied call needing approval is refused, not forwarded.
    let held = http::post_json(
        &format!("{}/mcp", b.proxy_url()),
        &[("x-agent-id", "bot-1")],
        &json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
            "params": {"name": "shell", "arguments": {"command": "reboot"}}}),
    );
    assert_eq!(held.json()["result"]["isError"], true, "{}", held.text());
    assert!(upstream.requests_to("/mcp").is_empty(), "nothing ran");

    // Risk: judged on the local view, counted and logged (another agent:
    // agent-a's approved shell calls count in its own risk).
    let mut low = tool_call("write_file", "s-local", "notes.txt", "");
    low["agent_id"] = json!("agent-l");
    let r = post(&a, "/inspect/tool-call", &low);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["decision"], "allow");
    assert!(a.metric_value("asg_state_degraded_total", &[("op", "load")]) >= Some(1.0));
    assert!(a.metric_value("asg_state_connected", &[]) == Some(0.0));
    assert!(
        a.stderr_text()
            .contains("deciding with this gateway's local view"),
        "{}",
        a.stderr_text()
    );

    // Redis back on its append-only file: no gateway restarted.
    redis.restart();
    for gw in [&a, &b] {
        assert!(
            wait_until(Duration::from_secs(15), || {
                ready(gw)["details"]["state"]["connected"] == true
            }),
            "{}",
            gw.stderr_text()
        );
    }
    let listed = pending(&b);
    assert!(
        listed.iter().any(|p| p["approval_id"] == id.as_str()),
        "the acknowledged approval survived: {listed:?}"
    );
    assert_eq!(listed.len(), 2, "and the held call's: {listed:?}");
    let r = resolve(&b, &id, true);
    assert_eq!(r.status, 200, "{}", r.text());
    let permit = r.json()["permit_token"].as_str().unwrap().to_string();
    let r = post(
        &a,
        "/inspect/tool-call",
        &tool_call("exec_shell", "s-down", "uptime", &permit),
    );
    assert_eq!(r.json()["decision"], "allow", "{}", r.text());
    // The spend acknowledged before the crash stayed spent.
    let again = use_spent().json();
    assert_eq!(again["decision"], "require_approval", "{again}");
    assert!(
        again["reasons"].to_string().contains("already used"),
        "{again}"
    );
    // The risk recorded while down was replayed into Redis.
    assert!(wait_until(Duration::from_secs(10), || {
        let t = get(&b, "/operator/api/session/s-local/timeline").json();
        t["session"]["request_count"].as_u64() >= Some(1)
    }));
}

const OPERATOR: &str = "op-fleet-key";
const AGENT: &str = "agent-fleet-key";

fn with_key(gw: &Gateway, method: &str, path: &str, key: &str, body: Option<&Value>) -> http::Resp {
    let url = format!("{}{path}", gw.admin_url());
    match body {
        Some(b) => http::post_json(&url, &[("x-api-key", key)], b),
        None => http::send(method, &url, &[("x-api-key", key)], None),
    }
}

#[test]
fn asg_control_lists_and_resolves_the_fleets_approvals_with_the_same_roles() {
    let Some(bin) = testkit::require() else {
        return;
    };
    let redis = RedisServer::start(&bin, &[]);
    let upstream = MockUpstream::start();
    let auth = [
        ("ASG_ADMIN_AUTH", "true"),
        ("ASG_OPERATOR_KEYS", OPERATOR),
        ("ASG_AGENT_KEYS", AGENT),
    ];
    let a = gateway(&upstream, &redis, "gw-a", &auth);
    let b = gateway(&upstream, &redis, "gw-b", &auth);
    let mut opts = GatewayOptions::new(upstream.base_url())
        .subcommand("control")
        .policy_text("fleet.toml", POLICY)
        .env("ASG_STATE_URL", &redis.url())
        .env("ASG_STATE_PREFIX", "fleet-e2e");
    for (k, v) in auth {
        opts = opts.env(k, v);
    }
    let control = Gateway::start(opts);
    let r = ready(&control);
    assert_eq!(r["details"]["state"]["backend"], "redis", "{r}");
    assert_eq!(r["status"], "ready", "{r}");

    // A call held on A; the operator finds and approves it in control.
    let proxy = a.proxy_url();
    let held = std::thread::spawn(move || {
        let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
            "params": {"name": "shell", "arguments": {"command": "uname"}}});
        http::post_json(&format!("{proxy}/mcp"), &[("x-agent-id", "bot-1")], &body)
    });
    let mut found = Vec::new();
    assert!(wait_until(Duration::from_secs(10), || {
        let r = with_key(&control, "GET", "/approvals?status=pending", OPERATOR, None);
        found = r.json()["approvals"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        !found.is_empty()
    }));
    let id = found[0]["approval_id"].as_str().unwrap().to_string();
    // Same roles: an agent key cannot resolve, no key gets nothing.
    let body = json!({"approval_id": id, "approve": true, "resolver": "alice"});
    let r = with_key(&control, "POST", "/approval/resolve", AGENT, Some(&body));
    assert_eq!(r.status, 403, "{}", r.text());
    let r = http::post_json(
        &format!("{}/approval/resolve", control.admin_url()),
        &[],
        &body,
    );
    assert_eq!(r.status, 401, "{}", r.text());
    assert!(!held.is_finished());
    let r = with_key(&control, "POST", "/approval/resolve", OPERATOR, Some(&body));
    assert_eq!(r.status, 200, "{}", r.text());
    let resp = held.join().unwrap();
    assert_eq!(mcp_text(&resp), "$ uname\n(mock shell output)");

    // Sessions and the audit tail of the whole fleet.
    // An agent key acts as its own agent (no agent_id of another).
    let mut call = tool_call("write_file", "s-on-b", "notes.txt", "");
    call.as_object_mut().unwrap().remove("agent_id");
    let r = with_key(&b, "POST", "/inspect/tool-call", AGENT, Some(&call));
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(wait_until(Duration::from_secs(10), || {
        let s = with_key(&control, "GET", "/operator/api/sessions", OPERATOR, None).json();
        s.to_string().contains("s-on-b")
    }));
    let mut audit = Value::Null;
    assert!(
        wait_until(Duration::from_secs(10), || {
            audit = with_key(
                &control,
                "GET",
                "/operator/api/audit?limit=50",
                OPERATOR,
                None,
            )
            .json();
            let text = audit.to_string();
            // B's decision and A's held call, in one tail.
            text.contains("s-on-b") && text.contains("\"path\":\"/mcp\"")
        }),
        "{audit}"
    );
    let timeline = with_key(
        &control,
        "GET",
        "/operator/api/session/s-on-b/timeline",
        OPERATOR,
        None,
    )
    .json();
    assert_eq!(timeline["session"]["request_count"], 1, "{timeline}");
    assert!(
        !timeline["timeline"].as_array().unwrap().is_empty(),
        "{timeline}"
    );
    // Nothing unmasked or secret in the fleet's tail: no permit, no key.
    let text = audit.to_string();
    assert!(!text.contains(OPERATOR) && !text.contains(AGENT), "{text}");
}

#[test]
fn a_gateway_started_while_redis_is_down_serves_and_joins_the_fleet_when_it_answers() {
    let Some(bin) = testkit::require() else {
        return;
    };
    let mut redis = RedisServer::start(&bin, &[]);
    let upstream = MockUpstream::start();
    redis.kill();
    let a = gateway(&upstream, &redis, "gw-a", &[]);
    let r = ready(&a);
    assert_eq!(r["status"], "ready", "{r}");
    assert_eq!(r["details"]["state"]["connected"], false, "{r}");
    let raise = || {
        post(
            &a,
            "/inspect/tool-call",
            &tool_call("exec_shell", "s-late", "free -m", ""),
        )
    };
    assert_eq!(raise().status, 503, "approvals refused while Redis is away");
    assert!(a
        .stderr_text()
        .contains("shared state unreachable at start"));

    redis.restart();
    assert!(
        wait_until(Duration::from_secs(15), || {
            a.stderr_text()
                .contains("the fleet's approval key was read")
        }),
        "{}",
        a.stderr_text()
    );
    let b = gateway(&upstream, &redis, "gw-b", &[]);
    // Same fleet key: an approval raised on A is released by B's permit on A
    // and the same call through B finds the same approval.
    let r = raise();
    assert_eq!(r.json()["decision"], "require_approval", "{}", r.text());
    let id = r.json()["approval"]["approval_id"]
        .as_str()
        .unwrap()
        .to_string();
    let on_b = post(
        &b,
        "/inspect/tool-call",
        &tool_call("exec_shell", "s-late", "free -m", ""),
    )
    .json();
    assert_eq!(on_b["approval"]["approval_id"], id.as_str(), "{on_b}");
    let permit = resolve(&b, &id, true).json()["permit_token"]
        .as_str()
        .unwrap()
        .to_string();
    let r = post(
        &a,
        "/inspect/tool-call",
        &tool_call("exec_shell", "s-late", "free -m", &permit),
    );
    assert_eq!(r.json()["decision"], "allow", "{}", r.text());
}

#[test]
fn a_redis_that_refuses_the_password_stops_the_start_with_one_line() {
    let Some(bin) = testkit::require() else {
        return;
    };
    let redis = RedisServer::start(&bin, &["--requirepass", "right-one"]);
    let upstream = MockUpstream::start();
    let err = Gateway::try_start(
        GatewayOptions::new(upstream.base_url())
            .env("ASG_STATE_URL", &redis.url())
            .env("ASG_STATE_PASSWORD", "wrong-one"),
    )
    .err()
    .expect("refused");
    assert!(
        err.contains("refused the connection") && err.contains("ASG_STATE_PASSWORD"),
        "{err}"
    );
    assert!(
        !err.contains("wrong-one") && !err.contains("right-one"),
        "{err}"
    );
}
