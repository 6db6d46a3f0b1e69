//! Request log, errors for bad input, TLS, real clients and process lifecycle.

use super::*;

#[test]
fn requests_are_recorded_and_reset() {
    let m = MockUpstream::start();
    assert!(
        m.stderr_text().contains("fixtures from"),
        "startup log: {}",
        m.stderr_text()
    );
    assert!(m.requests().is_empty());
    let body = Dialect::Anthropic.request("my secret prompt", false);
    let r = post_json(
        &m.url("/v1/messages?beta=true"),
        &[("x-api-key", "sk-ant-test-not-real"), ("X-Custom", "A")],
        &body,
    );
    assert_eq!(r.status, 200, "query strings are accepted");
    let binary = [0xffu8, 0x00, 0xfe];
    let r = http::send("POST", &m.url("/v1/chat/completions"), &[], Some(&binary));
    assert_eq!(r.status, 400, "invalid JSON is a dialect error");
    http::get(&m.url("/health"));

    let log = m.requests();
    assert_eq!(log.len(), 3, "control endpoints are not recorded: {log:?}");
    assert_eq!(
        (log[0].method.as_str(), log[0].path.as_str()),
        ("POST", "/v1/messages?beta=true")
    );
    assert_eq!(log[0].path_only(), "/v1/messages");
    assert_eq!(log[0].header("X-API-KEY"), Some("sk-ant-test-not-real"));
    assert_eq!(log[0].header("x-custom"), Some("A"));
    assert_eq!(
        log[0].body_json().unwrap()["messages"][0]["content"],
        "my secret prompt"
    );
    assert!(log[1].body.is_none() && log[1].body_bytes() == binary);
    assert_eq!(
        r.header("x-mock-request-id"),
        Some(log[1].id.to_string().as_str())
    );
    assert!(log[0].ts > 1.6e9 && log[0].id < log[1].id);
    assert_eq!(m.requests_to("/health").len(), 1);

    m.reset();
    assert!(m.requests().is_empty());
}

#[test]
fn request_log_is_bounded() {
    let m = MockUpstream::start_with_args(&["--record-limit", "3"]);
    for i in 0..5 {
        post_json(
            &m.url("/v1/chat/completions"),
            &[("x-n", &i.to_string())],
            &json!({}),
        );
    }
    let n: Vec<_> = m
        .requests()
        .iter()
        .map(|r| r.header("x-n").unwrap().to_string())
        .collect();
    assert_eq!(n, ["2", "3", "4"]);
}

#[test]
fn bad_knobs_unknown_paths_and_health() {
    let m = mock();
    let r = call(m, Dialect::Chat, &[("x-mock-scenario", "nope")], &json!({}));
    assert_eq!(r.status, 400);
    assert!(
        r.text().contains("tool_shell"),
        "lists the known scenarios: {}",
        r.text()
    );
    assert_eq!(
        call(m, Dialect::Chat, &[("x-mock-delay-ms", "soon")], &json!({})).status,
        400
    );
    let r = call(
        m,
        Dialect::Anthropic,
        &[
            ("x-mock-scenario", "tool_custom"),
            ("x-mock-tool-args", "[1]"),
        ],
        &json!({}),
    );
    assert_eq!(
        (r.status, r.json()["type"].clone()),
        (400, json!("error")),
        "tool_use input must be an object"
    );
    let r = post_json(&m.url("/v2/other"), &[], &json!({}));
    assert_eq!(r.status, 404);
    assert!(r.json()["error"]["message"]
        .as_str()
        .unwrap()
        .contains("/v2/other"));
    assert_eq!(http::get(&m.url("/v1/chat/completions")).status, 405);
    assert_eq!(http::get(&m.url("/health")).json(), json!({"status": "ok"}));
}

#[test]
fn tls_mock_with_the_test_ca() {
    let m = MockUpstream::start_tls(
        &asg_e2e::tls_fixture("server.pem"),
        &asg_e2e::tls_fixture("server.key"),
    );
    assert!(m.base_url().starts_with("https://127.0.0.1:"));
    let agent = http::agent_with_ca(&asg_e2e::tls_fixture("ca.pem"));
    let body = Dialect::Chat.request("x", true).to_string();
    let r = http::try_send(
        &agent,
        "POST",
        &m.url("/v1/chat/completions"),
        &[],
        Some(body.as_bytes()),
    )
    .unwrap();
    assert_eq!(asg_e2e::sse::chat(&r.text()).text, TEXT_REPLY);
    // A real client (curl) trusting only the test CA; `localhost` matches the certificate's SAN.
    let url = format!("https://localhost:{}/v1/messages", m.addr().port());
    let out = std::process::Command::new("curl")
        .args(["-sS", "--noproxy", "*", "--cacert"])
        .arg(asg_e2e::tls_fixture("ca.pem"))
        .args([
            "--resolve",
            &format!("localhost:{}:127.0.0.1", m.addr().port()),
        ])
        .args([
            "-H",
            "content-type: application/json",
            "-d",
            &Dialect::Anthropic.request("x", false).to_string(),
            &url,
        ])
        .output()
        .expect("curl must be installed for this test");
    assert!(
        out.status.success(),
        "curl: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(Dialect::Anthropic.text(&v), TEXT_REPLY);
    assert_eq!(m.requests().len(), 2);
}

#[test]
fn curl_streams_a_fragmented_response() {
    let m = mock();
    let out = std::process::Command::new("curl")
        .args([
            "-sSN",
            "--noproxy",
            "*",
            "-H",
            "content-type: application/json",
            "-H",
            "x-mock-scenario: tool_shell",
        ])
        .args([
            "-H",
            "x-mock-chunk: 3",
            "-d",
            &Dialect::Responses.request("x", true).to_string(),
        ])
        .arg(m.url("/v1/responses"))
        .output()
        .expect("curl must be installed for this test");
    assert!(
        out.status.success(),
        "curl: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let a = asg_e2e::sse::responses(&String::from_utf8(out.stdout).unwrap());
    assert!(a.completed && a.sequence_ok);
    assert_eq!(a.tool_calls[0].arguments, SHELL_SECRET_ARGS);
}

#[test]
fn mock_exits_when_its_stdin_closes() {
    use std::io::BufRead;
    let mut child = std::process::Command::new(asg_e2e::util::mock_upstream_bin())
        .args(["--listen", "127.0.0.1:0", "--exit-on-stdin-eof"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(line.starts_with("LISTENING 127.0.0.1:"), "{line:?}");
    drop(child.stdin.take());
    let exited = asg_e2e::util::wait_until(Duration::from_secs(5), || {
        child.try_wait().unwrap().is_some()
    });
    if !exited {
        let _ = child.kill();
    }
    assert!(exited, "the mock must exit when its launcher goes away");
}

#[test]
fn mock_refuses_non_loopback_addresses() {
    let out = std::process::Command::new(asg_e2e::util::mock_upstream_bin())
        .args(["--listen", "0.0.0.0:0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("non-loopback"));
}
