//! Forward-proxy mode end to end: the real `asg` binary as `HTTPS_PROXY` /
//! `HTTP_PROXY`, driven by curl and ureq, in front of the TLS mock upstream.
//!
//! The mock serves `tests/fixtures/tls/apis.pem` (api.openai.com,
//! api.anthropic.com, pinned.test, localhost, 127.0.0.1; signed by the test
//! CA `ca.pem`). The gateway reaches it through `ASG_CONNECT_TO` and verifies
//! it with `ASG_UPSTREAM_CA=ca.pem`, so nothing ever leaves loopback.

mod support;

use asg_e2e::util::wait_until;
use asg_e2e::{tls_fixture, Dialect, Gateway, GatewayOptions, MockUpstream, FAKE_AWS_KEY};
use serde_json::Value;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};
use support::curl;

fn tls_mock() -> MockUpstream {
    MockUpstream::start_tls(&tls_fixture("apis.pem"), &tls_fixture("apis.key"))
}

/// `host:443=<mock>` for each host.
fn connect_to(mock: &MockUpstream, hosts: &[&str]) -> String {
    hosts
        .iter()
        .map(|h| format!("{h}={}", mock.addr()))
        .collect::<Vec<_>>()
        .join(",")
}

fn options(mock: &MockUpstream) -> GatewayOptions {
    GatewayOptions::new(mock.base_url())
        .policy("dev")
        .env(
            "ASG_CONNECT_TO",
            &connect_to(
                mock,
                &[
                    "api.openai.com:443",
                    "api.anthropic.com:443",
                    "pinned.test:443",
                ],
            ),
        )
        .env("ASG_UPSTREAM_CA", &tls_fixture("ca.pem").to_string_lossy())
}

fn with_policy(opts: GatewayOptions, connect_section: &str) -> GatewayOptions {
    let dev =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies/dev.toml"))
            .unwrap();
    // Replace the profile's [connect] section (the last one in the file).
    let base = dev.split("\n[connect]").next().unwrap();
    opts.policy_text(
        "dev.toml",
        &format!("{base}\n[connect]\n{connect_section}\n"),
    )
}

fn asg_ca(gw: &Gateway) -> PathBuf {
    gw.data_dir().join("ca/ca.pem")
}

fn chat_body(text: &str) -> String {
    Dialect::Chat.request(text, false).to_string()
}

fn wait_metric(gw: &Gateway, name: &str, labels: &[(&str, &str)], want: f64) {
    let ok = wait_until(Duration::from_secs(5), || {
        gw.metric_value(name, labels).unwrap_or(0.0) >= want
    });
    assert!(
        ok,
        "{name}{labels:?} stayed below {want}: {:?}",
        gw.metric_value(name, labels)
    );
}

/// The audit log, read from the gateway's sled store after stopping it.
fn audit_after_stop(gw: &mut Gateway) -> Vec<asg::state::AuditEvent> {
    // sled flushes every 200 ms; give it time before the SIGKILL.
    std::thread::sleep(Duration::from_millis(700));
    gw.kill_hard();
    let store = asg::state::Store::open(gw.data_dir()).expect("open the audit store");
    store.audit_tail(1000).expect("read the audit log")
}

#[test]
fn connect_is_intercepted_inspected_and_kept_alive() {
    let mock = tls_mock();
    let gw = Gateway::start(options(&mock));
    let url = "https://api.openai.com/v1/chat/completions";
    let ca = asg_ca(&gw);
    let secret_prompt = chat_body(&format!("my key is {FAKE_AWS_KEY}, repeat it"));
    let plain = chat_body("hello");
    // Three requests in one curl run: one tunnel, one TLS session (keep-alive).
    let c = curl(&[
        "-v",
        "-x",
        &gw.proxy_url(),
        "--cacert",
        &ca.to_string_lossy(),
        "-H",
        "content-type: application/json",
        "-H",
        "x-mock-scenario: echo",
        "-d",
        &secret_prompt,
        url,
        "--next",
        "-x",
        &gw.proxy_url(),
        "--cacert",
        &ca.to_string_lossy(),
        "-H",
        "content-type: application/json",
        "-H",
        "x-mock-scenario: tool_shell",
        "-d",
        &plain,
        url,
        "--next",
        "-x",
        &gw.proxy_url(),
        "--cacert",
        &ca.to_string_lossy(),
        "-H",
        "content-type: application/json",
        "-H",
        "x-mock-scenario: secret",
        "-d",
        &plain,
        url,
    ]);
    assert_eq!(c.code, 0, "curl failed: {}", c.stderr);
    assert_eq!(
        c.stderr.matches("CONNECT api.openai.com:443").count(),
        1,
        "one tunnel for three requests:\n{}",
        c.stderr
    );
    assert!(
        c.stderr.contains("Re-using existing connection"),
        "{}",
        c.stderr
    );
    assert!(
        c.stderr.contains("issuer: CN=asg interception CA"),
        "the client saw a minted leaf:\n{}",
        c.stderr
    );
    // Three JSON documents back to back.
    let docs: Vec<Value> = serde_json::Deserializer::from_str(&c.stdout)
        .into_iter::<Value>()
        .collect::<Result<_, _>>()
        .unwrap_or_else(|e| panic!("{e}: {}", c.stdout));
    assert_eq!(docs.len(), 3, "{}", c.stdout);
    // 1. The secret in the prompt was masked before it left.
    let upstream = mock.requests_to("/v1/chat/completions");
    assert_eq!(upstream.len(), 3);
    assert!(!upstream[0].body_text().contains(FAKE_AWS_KEY));
    assert!(upstream[0]
        .body_text()
        .contains("[REDACTED:aws_access_key_id:"));
    assert_eq!(upstream[0].header("host"), Some("api.openai.com"));
    // 2. The dangerous tool call was replaced by a refusal.
    let msg = &docs[1]["choices"][0]["message"];
    assert!(msg["tool_calls"].is_null(), "{msg}");
    assert!(
        msg["content"].as_str().unwrap().contains("blocked"),
        "{msg}"
    );
    // 3. The secret in the answer was masked before the client saw it.
    let text = docs[2]["choices"][0]["message"]["content"]
        .as_str()
        .unwrap();
    assert!(
        !text.contains(FAKE_AWS_KEY) && text.contains("[REDACTED:"),
        "{text}"
    );

    wait_metric(
        &gw,
        "asg_forward_decisions_total",
        &[("mode", "connect"), ("action", "intercept")],
        1.0,
    );
    wait_metric(
        &gw,
        "asg_requests_total",
        &[("route", "openai"), ("dialect", "openai_chat")],
        3.0,
    );
    assert_eq!(
        gw.metric_value("asg_forward_decisions_total", &[]),
        Some(1.0),
        "exactly one CONNECT"
    );
    assert_eq!(
        gw.metric_value("asg_tls_leaf_certificates_total", &[("source", "minted")]),
        Some(1.0)
    );
    assert_eq!(
        gw.metric_value("asg_requests_total", &[("decision", "block")]),
        Some(1.0)
    );
}

#[test]
fn each_host_gets_its_route_and_leaves_are_cached() {
    let mock = tls_mock();
    let mut gw = Gateway::start(options(&mock));
    let ca = asg_ca(&gw).to_string_lossy().into_owned();
    let body = Dialect::Anthropic.request("hello", false).to_string();
    for _ in 0..2 {
        // Separate curl runs: separate tunnels and handshakes.
        let c = curl(&[
            "-x",
            &gw.proxy_url(),
            "--cacert",
            &ca,
            "-H",
            "content-type: application/json",
            "-H",
            "x-mock-scenario: tool_shell",
            "-d",
            &body,
            "https://api.anthropic.com/v1/messages?beta=true",
        ]);
        assert_eq!(c.code, 0, "{}", c.stderr);
        let v: Value = serde_json::from_str(&c.stdout).unwrap();
        assert!(
            v["content"]
                .as_array()
                .unwrap()
                .iter()
                .all(|b| b["type"] != "tool_use"),
            "tool_use must be blocked: {v}"
        );
    }
    wait_metric(
        &gw,
        "asg_requests_total",
        &[
            ("route", "anthropic"),
            ("dialect", "anthropic_messages"),
            ("decision", "block"),
        ],
        2.0,
    );
    assert_eq!(
        gw.metric_value("asg_tls_leaf_certificates_total", &[("source", "minted")]),
        Some(1.0)
    );
    assert_eq!(
        gw.metric_value("asg_tls_leaf_certificates_total", &[("source", "cached")]),
        Some(1.0)
    );
    assert_eq!(
        gw.metric_value("asg_forward_tls_handshake_seconds_count", &[]),
        Some(2.0)
    );
    // Requests inside tunnels are audited like reverse-mode requests, with the URL.
    let audit = audit_after_stop(&mut gw);
    let hits: Vec<_> = audit
        .iter()
        .filter(|e| e.route == "anthropic" && e.decision == "block")
        .collect();
    assert_eq!(hits.len(), 2, "{audit:#?}");
    assert_eq!(
        hits[0].path.as_deref(),
        Some("https://api.anthropic.com/v1/messages")
    );
    assert!(
        hits[0].tools.iter().any(|t| t.starts_with("shell")),
        "{hits:#?}"
    );
}

#[test]
fn a_client_that_does_not_trust_the_ca_fails_the_handshake() {
    let mock = tls_mock();
    let mut gw = Gateway::start(options(&mock));
    // The system store (and, to be sure, the test CA) but not the asg CA.
    let c = curl(&[
        "-x",
        &gw.proxy_url(),
        "--cacert",
        &tls_fixture("ca.pem").to_string_lossy(),
        "https://api.openai.com/v1/models",
    ]);
    assert_eq!(c.code, 60, "curl must reject the certificate: {}", c.stderr);
    assert!(
        c.stderr.contains("unable to get local issuer certificate"),
        "{}",
        c.stderr
    );
    wait_metric(
        &gw,
        "asg_forward_failures_total",
        &[("mode", "connect"), ("reason", "client_tls")],
        1.0,
    );
    assert!(mock.requests().is_empty(), "nothing may reach the upstream");
    let audit = audit_after_stop(&mut gw);
    let e = audit
        .iter()
        .find(|e| e.stage == "connect")
        .unwrap_or_else(|| panic!("no connect record: {audit:#?}"));
    assert_eq!(e.path.as_deref(), Some("api.openai.com:443"));
    assert!(
        e.reasons[0].contains("TLS handshake with the client failed"),
        "{e:?}"
    );
}

#[test]
fn a_denied_host_gets_a_clear_refusal() {
    let mock = tls_mock();
    let mut gw = Gateway::start(with_policy(
        options(&mock),
        "default = \"passthrough\"\ndeny = [\"*.evil.test\"]",
    ));
    let mut s = TcpStream::connect(gw.proxy_addr()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(b"CONNECT upload.evil.test:443 HTTP/1.1\r\nHost: upload.evil.test:443\r\n\r\n")
        .unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 403 Forbidden\r\n"), "{answer}");
    assert!(answer.contains("x-asg-decision: block"), "{answer}");
    let body: Value = serde_json::from_str(answer.split("\r\n\r\n").nth(1).unwrap()).unwrap();
    let msg = body["error"]["message"].as_str().unwrap();
    assert!(
        msg.contains("CONNECT to upload.evil.test:443 is denied by policy dev@")
            && msg.contains("rule deny:*.evil.test"),
        "{msg}"
    );
    // curl reports the refusal as such.
    let c = curl(&["-x", &gw.proxy_url(), "https://upload.evil.test/"]);
    assert_eq!(c.code, 56, "{}", c.stderr);
    assert!(
        c.stderr.contains("CONNECT tunnel failed, response 403"),
        "{}",
        c.stderr
    );
    wait_metric(
        &gw,
        "asg_forward_decisions_total",
        &[("mode", "connect"), ("action", "deny")],
        2.0,
    );
    let audit = audit_after_stop(&mut gw);
    let denied: Vec<_> = audit
        .iter()
        .filter(|e| e.stage == "connect" && e.decision == "block")
        .collect();
    assert_eq!(denied.len(), 2, "{audit:#?}");
    assert_eq!(denied[0].status, Some(403));
    assert!(denied[0].reasons[0].contains("deny:*.evil.test"));
}

#[test]
fn a_passthrough_host_is_tunnelled_untouched() {
    let mock = tls_mock();
    let mut gw = Gateway::start(with_policy(
        options(&mock),
        "default = \"deny\"\npassthrough = [\"pinned.test\"]",
    ));
    // The client trusts only the test CA: it can only succeed if it talks to
    // the mock's own certificate end to end.
    let c = curl(&[
        "-v",
        "-x",
        &gw.proxy_url(),
        "--cacert",
        &tls_fixture("ca.pem").to_string_lossy(),
        "-H",
        "content-type: application/json",
        "-H",
        "x-mock-scenario: secret",
        "-d",
        &chat_body("hello"),
        "https://pinned.test/v1/chat/completions",
    ]);
    assert_eq!(c.code, 0, "{}", c.stderr);
    assert!(
        c.stderr.contains("issuer: CN=asg-e2e test CA"),
        "{}",
        c.stderr
    );
    assert!(c.stdout.contains(FAKE_AWS_KEY), "untouched: {}", c.stdout);
    assert!(!c.stderr.to_ascii_lowercase().contains("x-asg-decision"));
    assert_eq!(mock.requests()[0].header("host"), Some("pinned.test"));
    wait_metric(
        &gw,
        "asg_tunnel_bytes_total",
        &[("mode", "connect"), ("direction", "down")],
        1000.0,
    );
    assert_eq!(
        gw.metric_value("asg_requests_total", &[]),
        None,
        "nothing inspected"
    );
    let audit = audit_after_stop(&mut gw);
    let e = audit
        .iter()
        .find(|e| e.stage == "connect")
        .unwrap_or_else(|| panic!("{audit:#?}"));
    assert_eq!(e.decision, "allow");
    assert_eq!(e.route, "connect");
    assert!(
        e.reasons[0].starts_with("blind tunnel to pinned.test:443 (rule passthrough:pinned.test)"),
        "{e:?}"
    );
    assert!(e.reasons[0].contains("bytes down"), "{e:?}");
}

#[test]
fn upstream_certificates_are_always_verified() {
    let mock = tls_mock();
    // No ASG_UPSTREAM_CA: the mock's certificate is not trusted upstream.
    let opts = GatewayOptions::new(mock.base_url()).policy("dev").env(
        "ASG_CONNECT_TO",
        &connect_to(&mock, &["api.openai.com:443"]),
    );
    let gw = Gateway::start(opts);
    let c = curl(&[
        "-x",
        &gw.proxy_url(),
        "--cacert",
        &asg_ca(&gw).to_string_lossy(),
        "-H",
        "content-type: application/json",
        "-d",
        &chat_body("hello"),
        "-w",
        "\n%{http_code}",
        "https://api.openai.com/v1/chat/completions",
    ]);
    assert_eq!(c.code, 0, "{}", c.stderr);
    assert!(c.stdout.ends_with("\n502"), "{}", c.stdout);
    assert!(
        c.stdout.contains("api.openai.com:443 is unreachable"),
        "{}",
        c.stdout
    );
    assert!(
        mock.requests().is_empty(),
        "no request may reach an unverified upstream"
    );
}

#[test]
fn an_ip_target_gets_a_certificate_for_its_ip() {
    let mock = tls_mock();
    let gw = Gateway::start(with_policy(
        options(&mock),
        "default = \"passthrough\"\nintercept = [\"127.0.0.1\"]",
    ));
    // No SNI for an IP literal: the leaf is minted for the CONNECT host.
    let c = curl(&[
        "-v",
        "-x",
        &gw.proxy_url(),
        "--cacert",
        &asg_ca(&gw).to_string_lossy(),
        "-H",
        "content-type: application/json",
        "-H",
        "x-mock-scenario: secret",
        "-d",
        &chat_body("hello"),
        &format!(
            "https://127.0.0.1:{}/v1/chat/completions",
            mock.addr().port()
        ),
    ]);
    assert_eq!(c.code, 0, "{}", c.stderr);
    assert!(
        c.stderr
            .contains("subjectAltName: host \"127.0.0.1\" matched cert's IP address!"),
        "{}",
        c.stderr
    );
    assert!(!c.stdout.contains(FAKE_AWS_KEY), "{}", c.stdout);
    wait_metric(&gw, "asg_requests_total", &[("route", "forward")], 1.0);
}

#[test]
fn plain_http_absolute_form_and_tunnelled_http_are_inspected() {
    let plain = MockUpstream::start();
    let tls = tls_mock();
    let gw = Gateway::start(options(&tls).env(
        "ASG_CONNECT_TO",
        &format!(
            "api.openai.com:80={},api.openai.com:443={}",
            plain.addr(),
            tls.addr()
        ),
    ));
    let body = chat_body("hello");
    for extra in [&[][..], &["--proxytunnel"][..]] {
        plain.reset();
        let mut args = vec![
            "-x",
            gw.proxy_url().leak(),
            "-H",
            "content-type: application/json",
            "-H",
            "x-mock-scenario: tool_shell",
            "-d",
            body.as_str(),
        ];
        args.extend_from_slice(extra);
        args.push("http://api.openai.com/v1/chat/completions");
        let c = curl(&args);
        assert_eq!(c.code, 0, "{extra:?}: {}", c.stderr);
        let v: Value = serde_json::from_str(&c.stdout).unwrap();
        assert!(
            v["choices"][0]["message"]["tool_calls"].is_null(),
            "{extra:?}: {v}"
        );
        let got = plain.requests_to("/v1/chat/completions");
        assert_eq!(got.len(), 1, "{extra:?}");
        assert_eq!(got[0].header("host"), Some("api.openai.com"));
        assert!(got[0].header("proxy-connection").is_none());
    }
    wait_metric(
        &gw,
        "asg_forward_decisions_total",
        &[("mode", "absolute"), ("action", "intercept")],
        1.0,
    );
    wait_metric(
        &gw,
        "asg_requests_total",
        &[("route", "openai"), ("decision", "block")],
        2.0,
    );
}

#[test]
fn streams_stay_incremental_through_the_tunnel() {
    let mock = tls_mock();
    let gw = Gateway::start(options(&mock));
    let pem = std::fs::read(asg_ca(&gw)).unwrap();
    let certs: Vec<_> = asg_e2e::http::ureq::tls::parse_pem(&pem)
        .filter_map(|i| match i {
            Ok(asg_e2e::http::ureq::tls::PemItem::Certificate(c)) => Some(c),
            _ => None,
        })
        .collect();
    let agent: asg_e2e::http::ureq::Agent = asg_e2e::http::ureq::Agent::config_builder()
        .proxy(Some(
            asg_e2e::http::ureq::Proxy::new(&gw.proxy_url()).unwrap(),
        ))
        .tls_config(
            asg_e2e::http::ureq::tls::TlsConfig::builder()
                .root_certs(asg_e2e::http::ureq::tls::RootCerts::Specific(
                    std::sync::Arc::new(certs),
                ))
                .build(),
        )
        .http_status_as_error(false)
        .build()
        .into();
    let started = Instant::now();
    let resp = agent
        .post("https://api.openai.com/v1/chat/completions")
        .header("content-type", "application/json")
        .header("x-mock-delay-ms", "300")
        .send(Dialect::Chat.request("hello", true).to_string())
        .unwrap();
    assert_eq!(resp.status(), 200);
    let mut reader = resp.into_body().into_reader();
    let mut arrivals = Vec::new();
    let mut all = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = reader.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        arrivals.push(started.elapsed());
        all.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8(all).unwrap();
    assert!(text.contains("data: [DONE]"), "{text}");
    let first = arrivals[0];
    let last = *arrivals.last().unwrap();
    // Events are 300 ms apart upstream; they must reach the client as sent,
    // not all at the end.
    assert!(
        last - first >= Duration::from_millis(900),
        "stream was buffered: first chunk at {first:?}, last at {last:?}"
    );
}

#[test]
fn connect_is_refused_when_off_looping_or_aimed_at_loopback() {
    let mock = tls_mock();
    let gw = Gateway::start(options(&mock).env("ASG_FORWARD_PROXY", "false"));
    let c = curl(&["-x", &gw.proxy_url(), "https://api.openai.com/v1/models"]);
    assert_eq!(c.code, 56, "{}", c.stderr);
    assert!(c.stderr.contains("response 405"), "{}", c.stderr);
    assert!(
        !gw.data_dir().join("ca").exists(),
        "no CA without forward mode"
    );
    drop(gw);

    // A tunnel to the gateway's own listeners (proxy or admin) would loop.
    let gw = Gateway::start(options(&mock));
    for own in [gw.proxy_addr(), gw.admin_addr()] {
        let c = curl(&["-x", &gw.proxy_url(), &format!("https://{own}/")]);
        assert_eq!(c.code, 56, "{}", c.stderr);
        assert!(c.stderr.contains("response 502"), "{}", c.stderr);
    }
    wait_metric(
        &gw,
        "asg_forward_failures_total",
        &[("mode", "connect"), ("reason", "loop")],
        2.0,
    );
    // Loopback (the gateway's host) is not reachable through the proxy unless
    // a [connect] list names it: not as a tunnel, not as plain HTTP.
    let other = format!("127.0.0.2:{}", mock.addr().port());
    let c = curl(&["-x", &gw.proxy_url(), &format!("https://{other}/")]);
    assert!(c.stderr.contains("response 403"), "{}", c.stderr);
    let plain = MockUpstream::start();
    let c = curl(&[
        "-x",
        &gw.proxy_url(),
        "-w",
        "\n%{http_code}",
        &format!("{}/v1/models", plain.base_url()),
    ]);
    assert!(c.stdout.ends_with("\n403"), "{}", c.stdout);
    assert!(c.stdout.contains("loopback or link-local"), "{}", c.stdout);
    assert!(plain.requests().is_empty());
    wait_metric(
        &gw,
        "asg_forward_failures_total",
        &[("reason", "internal_destination")],
        2.0,
    );
}

#[test]
fn ca_commands_create_show_and_print_the_agent_environment() {
    let dir = tempfile::tempdir().unwrap();
    let asg = |args: &[&str]| {
        let out = Command::new(asg_e2e::util::asg_bin())
            .args(args)
            .env("ASG_DATA_DIR", dir.path())
            .env_remove("ASG_CONFIG")
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, out, err) = asg(&["env"]);
    assert_eq!(code, 2, "env before init: {out}{err}");
    assert!(err.contains("asg ca init"), "{err}");

    let (code, out, err) = asg(&["ca", "init"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("created the interception CA"), "{out}");
    let key = dir.path().join("ca/ca.key");
    let cert = dir.path().join("ca/ca.pem");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let key_text = std::fs::read_to_string(&key).unwrap();
    let key_body = key_text.lines().nth(1).unwrap();

    let (code, again, _) = asg(&["ca", "init"]);
    assert_eq!(code, 0);
    assert!(
        again.starts_with("kept the existing interception CA"),
        "{again}"
    );
    let fingerprint = |s: &str| {
        s.lines()
            .find(|l| l.trim_start().starts_with("sha256"))
            .map(|l| l.split_whitespace().last().unwrap().to_string())
    };
    assert_eq!(fingerprint(&out), fingerprint(&again), "init is idempotent");

    let (code, shown, err) = asg(&["ca", "show"]);
    assert_eq!(code, 0);
    assert_eq!(shown, std::fs::read_to_string(&cert).unwrap());
    assert!(err.contains(&fingerprint(&out).unwrap()), "{err}");

    let (code, env, _) = asg(&["env"]);
    assert_eq!(code, 0);
    let vars: std::collections::HashMap<String, String> = env
        .lines()
        .filter_map(|l| l.strip_prefix("export "))
        .map(|l| {
            let (k, v) = l.split_once('=').unwrap();
            (k.to_string(), v.trim_matches('\'').to_string())
        })
        .collect();
    for name in [
        "HTTPS_PROXY",
        "HTTP_PROXY",
        "NO_PROXY",
        "SSL_CERT_FILE",
        "REQUESTS_CA_BUNDLE",
        "NODE_EXTRA_CA_CERTS",
        "CODEX_CA_CERTIFICATE",
    ] {
        assert!(vars.contains_key(name), "{name} missing:\n{env}");
    }
    assert_eq!(vars["HTTPS_PROXY"], "http://127.0.0.1:8080");
    assert_eq!(
        Path::new(&vars["NODE_EXTRA_CA_CERTS"]),
        std::fs::canonicalize(&cert).unwrap()
    );
    let bundle = std::fs::read_to_string(&vars["SSL_CERT_FILE"]).unwrap();
    assert!(bundle.contains(shown.trim()), "bundle holds the CA");
    assert!(
        bundle.matches("BEGIN CERTIFICATE").count() > 1,
        "and the system roots"
    );
    let (_, dotenv, _) = asg(&["env", "--format", "dotenv", "--proxy", "http://asg:8080"]);
    assert!(
        dotenv.lines().any(|l| l == "HTTPS_PROXY=http://asg:8080"),
        "{dotenv}"
    );

    // The README shows exactly these lines, in this order.
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md"))
            .unwrap();
    let documented: Vec<&str> = readme
        .split("`asg env` prints")
        .nth(1)
        .and_then(|rest| rest.split("```sh\n").nth(1))
        .and_then(|block| block.split("```").next())
        .expect("README documents the asg env output")
        .lines()
        .filter_map(|l| l.strip_prefix("export "))
        .map(|l| l.split('=').next().unwrap())
        .collect();
    let printed: Vec<&str> = env
        .lines()
        .filter_map(|l| l.strip_prefix("export "))
        .map(|l| l.split('=').next().unwrap())
        .collect();
    assert_eq!(documented, printed);

    // The key never appears in any output.
    for text in [&out, &again, &shown, &err, &env, &dotenv] {
        assert!(!text.contains(key_body) && !text.contains("PRIVATE KEY"));
    }
}

#[test]
fn the_gateway_creates_its_ca_on_first_start_and_never_logs_the_key() {
    let mock = tls_mock();
    let mut gw = Gateway::start(options(&mock).env("ASG_LOG", "debug"));
    let key = std::fs::read_to_string(gw.data_dir().join("ca/ca.key")).unwrap();
    let c = curl(&[
        "-x",
        &gw.proxy_url(),
        "--cacert",
        &asg_ca(&gw).to_string_lossy(),
        "https://api.openai.com/v1/models",
    ]);
    assert_eq!(c.code, 0, "{}", c.stderr);
    gw.kill_hard();
    let log = gw.stderr_text();
    assert!(log.contains("created the interception CA"), "{log}");
    let key_body = key.lines().nth(1).unwrap();
    assert!(!log.contains(key_body) && !log.contains("PRIVATE KEY"));
}
