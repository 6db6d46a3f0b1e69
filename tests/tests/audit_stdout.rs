//! `ASG_AUDIT_STDOUT=1`: the real binary writes every audit record to
//! stdout as a JSON line (what Kubernetes log collectors read), the same
//! records the local audit log keeps, with nothing secret unmasked; off by
//! default.

use asg_e2e::http;
use asg_e2e::{Gateway, GatewayOptions, MockUpstream};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

const POLICY: &str = r#"
name = "audit-stdout-e2e"
[decision]
block_score = 1.3
challenge_score = 0.55
block_high_count = 1
# Every ordinary effect is challenged, so that tool calls go through the
# approval flow and leave their records.
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
"#;

fn start(upstream: &MockUpstream, stdout: bool) -> Gateway {
    let base = upstream.base_url();
    let mut opts = GatewayOptions::new(&base)
        .policy_text("stdout.toml", POLICY)
        .config_text(&format!(
            "[[route]]\nname = \"tools\"\nprefix = \"/mcp\"\nupstream = \"{base}\"\napi = \"mcp\"\n\n\
             [[route]]\nname = \"default\"\nprefix = \"/\"\nupstream = \"{base}\"\n"
        ));
    if stdout {
        opts = opts.env("ASG_AUDIT_STDOUT", "1");
    }
    Gateway::start(opts)
}

/// Traffic that leaves audit records holding a secret in every place one
/// can hide: the prompt, a tool call's arguments, a memory path, a URL.
fn traffic(gw: &Gateway) {
    let key = asg_e2e::FAKE_AWS_KEY;
    let r = http::post_json(
        &format!("{}/v1/chat/completions", gw.proxy_url()),
        &[("x-session-id", "s-out")],
        &json!({"model": "m", "messages": [{"role": "user", "content": format!("my key is {key}")}]}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let r = http::post_json(
        &format!("{}/mcp", gw.proxy_url()),
        &[("x-agent-id", "bot-1"), ("mcp-session-id", "mcp-out")],
        &json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call",
            "params": {"name": "shell", "arguments": {"command": format!("deploy --aws-key {key}")}}}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let r = http::post_json(
        &format!("{}/inspect/tool-call", gw.admin_url()),
        &[],
        &json!({"tool_name": "exec_shell", "tool_target": format!("aws s3 ls --key {key}"),
            "session_id": "s-out-api", "agent_id": "agent-a", "memory_reads": [format!("vault/{key}")]}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    http::get(&format!("{}/v1/files/{key}", gw.proxy_url()));
}

fn audit_lines(gw: &Gateway) -> Vec<Value> {
    gw.stdout_text()
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap_or_else(|e| panic!("not JSON: {l:?}: {e}"))
        })
        .filter(|v| v["asg"] == "audit")
        .collect()
}

fn stored(gw: &Gateway) -> Vec<Value> {
    let r = http::get(&format!("{}/operator/api/audit/export", gw.admin_url()));
    assert_eq!(r.status, 200, "{}", r.text());
    r.text()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn ids(records: &[Value]) -> BTreeSet<(u64, String)> {
    records
        .iter()
        .map(|v| {
            (
                v["seq"].as_u64().unwrap(),
                v["request_id"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn audit_records_go_to_stdout_as_json_lines_masked() {
    let upstream = MockUpstream::start();
    let gw = start(&upstream, true);
    traffic(&gw);
    let want = ids(&stored(&gw));
    assert!(want.len() >= 4, "{want:?}");
    // The writer thread is asynchronous: wait for it (bounded).
    let deadline = Instant::now() + Duration::from_secs(10);
    let lines = loop {
        let lines = audit_lines(&gw);
        if ids(&lines) == want || Instant::now() > deadline {
            break lines;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(
        ids(&lines),
        want,
        "stdout carries exactly the stored records"
    );
    // Every line is the stored record, field for field, plus the marker.
    let by_seq: std::collections::HashMap<u64, Value> = stored(&gw)
        .into_iter()
        .map(|v| (v["seq"].as_u64().unwrap(), v))
        .collect();
    for mut line in lines {
        let seq = line["seq"].as_u64().unwrap();
        line.as_object_mut().unwrap().remove("asg");
        assert_eq!(line, by_seq[&seq]);
    }
    let out = gw.stdout_text();
    assert!(
        out.contains("[REDACTED:aws_access_key_id:"),
        "findings are reported, masked"
    );
    for (name, text) in [("stdout", out), ("stderr", gw.stderr_text())] {
        assert!(
            !text.contains(asg_e2e::FAKE_AWS_KEY),
            "raw secret on {name}"
        );
    }
}

#[test]
fn stdout_stays_quiet_by_default() {
    let upstream = MockUpstream::start();
    let gw = start(&upstream, false);
    traffic(&gw);
    assert!(stored(&gw).len() >= 4);
    std::thread::sleep(Duration::from_millis(300));
    assert!(audit_lines(&gw).is_empty(), "{}", gw.stdout_text());
}
