//! Audit records say what happened: passthrough requests carry their
//! status, a blocked call's record does not also claim "no findings", and
//! MCP's own GET and DELETE reach the tool server in every profile.

use asg_e2e::{http, Gateway, GatewayOptions, MockUpstream};
use serde_json::{json, Value};

fn records(gw: &Gateway) -> Vec<Value> {
    let v = http::get(&format!("{}/operator/api/audit?limit=50", gw.admin_url())).json();
    v["events"].as_array().cloned().unwrap_or_default()
}

#[test]
fn passthrough_records_carry_the_status() {
    let mock = MockUpstream::start();
    let gw = Gateway::start(GatewayOptions::new(mock.base_url()));
    let r = http::get(&format!("{}/v1/models", gw.proxy_url()));
    assert_eq!(r.status, 404, "the mock has no such route");
    let r = http::send("HEAD", &format!("{}/", gw.proxy_url()), &[], None);
    assert_eq!(r.status, 404);
    std::thread::sleep(std::time::Duration::from_millis(200));
    let recs = records(&gw);
    let pass: Vec<&Value> = recs
        .iter()
        .filter(|e| e["dialect"] == "passthrough")
        .collect();
    assert_eq!(pass.len(), 2, "{recs:?}");
    for e in pass {
        assert_eq!(e["status"], 404, "{e}");
    }
}

#[test]
fn blocked_call_record_does_not_claim_no_findings() {
    let mock = MockUpstream::start();
    let gw = Gateway::start(GatewayOptions::new(mock.base_url()));
    let body = json!({"model": "gpt-4.1", "messages": [{"role": "user", "content": "list files"}]});
    let r = http::post_json(
        &format!("{}/v1/chat/completions", gw.proxy_url()),
        &[("x-mock-scenario", "tool_shell")],
        &body,
    );
    assert_eq!(r.status, 200);
    let recs = records(&gw);
    let e = recs.iter().find(|e| e["dialect"] == "openai_chat").unwrap();
    assert_eq!(e["decision"], "block");
    let reasons = e["reasons"].to_string();
    assert!(
        !reasons.contains("No security findings detected"),
        "{reasons}"
    );
    assert!(!e["findings"].as_array().unwrap().is_empty());
}

#[test]
fn mcp_get_and_delete_pass_in_strict() {
    let mock = MockUpstream::start();
    let config = format!(
        "[[route]]\nname = \"tools\"\nprefix = \"/mcp\"\nupstream = \"{}\"\napi = \"mcp\"\n",
        mock.base_url()
    );
    let gw = Gateway::start(
        GatewayOptions::new(mock.base_url())
            .policy("strict")
            .config_text(&config),
    );
    // The mock offers no server stream: 405 is what MCP clients expect.
    let r = http::send(
        "GET",
        &format!("{}/mcp", gw.proxy_url()),
        &[("accept", "text/event-stream")],
        None,
    );
    assert_eq!(r.status, 405, "{}", r.text());
    let r = http::send(
        "DELETE",
        &format!("{}/mcp", gw.proxy_url()),
        &[("mcp-session-id", "s1")],
        None,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let methods: Vec<String> = mock.requests().into_iter().map(|r| r.method).collect();
    assert_eq!(methods, ["GET", "DELETE"]);
}
