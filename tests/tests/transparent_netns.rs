//! Transparent mode end to end, inside a network namespace this test creates
//! itself (`unshare --net`, or `unshare --user --map-root-user --net` when
//! not root): the redirect rules printed by `asg iptables` send a client's
//! connections to the mock upstream's address to the gateway's transparent
//! listener; the gateway inspects and answers, and its own upstream
//! connections (marked with `ASG_SO_MARK`) are not redirected back to it.
//!
//! Only loopback inside the private namespace is used; the namespace (with
//! its rules) disappears with the process. The test re-runs itself inside the
//! namespace; it is skipped, with the reason, when `unshare`, `ip` or
//! `iptables` is missing or namespaces are not permitted (CI runs it as root
//! with iptables installed by `.ci/run`).

mod support;

use asg_e2e::util::{asg_bin, free_port, wait_until};
use asg_e2e::{tls_fixture, Dialect, Gateway, GatewayOptions, MockUpstream, FAKE_AWS_KEY};
use serde_json::Value;
use std::io::Read;
use std::process::{Command, Stdio};
use std::time::Duration;
use support::curl;

const TEST: &str = "transparent_mode_redirects_inspects_and_never_loops";
const INNER: &str = "ASG_E2E_NETNS_INNER";
const MARK: &str = "0x539";

#[test]
fn transparent_mode_redirects_inspects_and_never_loops() {
    if std::env::var_os(INNER).is_some() {
        inside_the_namespace();
        return;
    }
    let Some(unshare) = namespace_command() else {
        return;
    };
    let exe = std::env::current_exe().unwrap();
    let status = Command::new("unshare")
        .args(&unshare)
        .arg("--")
        .arg(exe)
        .args(["--exact", TEST, "--nocapture", "--test-threads=1"])
        .env(INNER, "1")
        .status()
        .expect("run unshare");
    assert!(
        status.success(),
        "the test inside the network namespace failed (its output is above)"
    );
}

fn have(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status").is_ok_and(|s| {
        s.lines()
            .find(|l| l.starts_with("Uid:"))
            .and_then(|l| l.split_whitespace().nth(2))
            == Some("0")
    })
}

/// `unshare` arguments that work here, or `None` (after saying why) to skip.
fn namespace_command() -> Option<Vec<&'static str>> {
    for tool in ["unshare", "ip", "iptables", "curl"] {
        if !have(tool) {
            eprintln!("SKIPPED {TEST}: `{tool}` is not installed (apt-get install util-linux iproute2 iptables curl)");
            return None;
        }
    }
    let args: Vec<&str> = if is_root() {
        vec!["--net"]
    } else {
        vec!["--user", "--map-root-user", "--net"]
    };
    let probe = Command::new("unshare")
        .args(&args)
        .args(["--", "iptables", "-t", "nat", "-S"])
        .output();
    match probe {
        Ok(o) if o.status.success() => Some(args),
        Ok(o) => {
            eprintln!(
                "SKIPPED {TEST}: cannot use iptables in a new network namespace (unshare {}): {}",
                args.join(" "),
                String::from_utf8_lossy(&o.stderr).trim()
            );
            None
        }
        Err(e) => {
            eprintln!("SKIPPED {TEST}: cannot run unshare: {e}");
            None
        }
    }
}

fn sh(script: &str) {
    let out = Command::new("sh").args(["-ec", script]).output().unwrap();
    assert!(
        out.status.success(),
        "{script}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn asg_iptables(args: &[&str]) -> String {
    let out = Command::new(asg_bin())
        .arg("iptables")
        .args(args)
        .env_remove("ASG_CONFIG")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "asg iptables: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn metric(gw: &Gateway, name: &str, labels: &[(&str, &str)]) -> f64 {
    gw.metric_value(name, labels).unwrap_or(0.0)
}

/// A gateway with a transparent listener on `port`, marking its sockets with `mark`.
fn transparent_gateway(plain: &MockUpstream, port: u16, mark: &str) -> Gateway {
    let dev = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies/dev.toml"),
    )
    .unwrap();
    let base = dev.split("\n[connect]").next().unwrap();
    Gateway::start(
        GatewayOptions::new(plain.base_url())
            .policy_text(
                "dev.toml",
                &format!("{base}\n[connect]\ndefault = \"passthrough\"\ndeny = [\"evil.test\"]\n"),
            )
            .env("ASG_TRANSPARENT_LISTEN", &format!("127.0.0.1:{port}"))
            .env("ASG_SO_MARK", mark)
            .env("ASG_UPSTREAM_CA", &tls_fixture("ca.pem").to_string_lossy()),
    )
}

fn inside_the_namespace() {
    sh("ip link set lo up");
    let tls = MockUpstream::start_tls(&tls_fixture("apis.pem"), &tls_fixture("apis.key"));
    let plain = MockUpstream::start();
    let (p_tls, p_plain) = (tls.addr().port(), plain.addr().port());
    let transparent = free_port();
    let gw = transparent_gateway(&plain, transparent, MARK);
    let ports = format!("{p_tls},{p_plain}");
    let port = transparent.to_string();
    let rules = [
        "--mark",
        MARK,
        "--proxy-port",
        &port,
        "--ports",
        &ports,
        "--include-loopback",
    ];
    let install = asg_iptables(&rules);
    sh(&install);
    let asg_ca = gw.data_dir().join("ca/ca.pem");
    let asg_ca = asg_ca.to_string_lossy();

    // 1. TLS to the mock's address, as api.openai.com: redirected, intercepted
    //    by SNI, inspected (the tool call is blocked), answered.
    let resolve = format!("api.openai.com:{p_tls}:127.0.0.1");
    let c = curl(&[
        "-v",
        "--cacert",
        &asg_ca,
        "--resolve",
        &resolve,
        "-H",
        "content-type: application/json",
        "-H",
        "x-mock-scenario: tool_shell",
        "-d",
        &Dialect::Chat.request("show my ssh key", false).to_string(),
        &format!("https://api.openai.com:{p_tls}/v1/chat/completions"),
    ]);
    assert_eq!(c.code, 0, "{}", c.stderr);
    assert!(
        c.stderr.contains("issuer: CN=asg interception CA"),
        "{}",
        c.stderr
    );
    let v: Value = serde_json::from_str(&c.stdout).unwrap();
    assert!(v["choices"][0]["message"]["tool_calls"].is_null(), "{v}");
    assert!(
        v["choices"][0]["message"]["content"]
            .as_str()
            .unwrap()
            .contains("blocked by the security gateway"),
        "{v}"
    );

    // 2. Plain HTTP to the mock's address: the Host header names the API; the
    //    secret in the answer is masked.
    let resolve = format!("api.openai.com:{p_plain}:127.0.0.1");
    let c = curl(&[
        "--resolve",
        &resolve,
        "-H",
        "content-type: application/json",
        "-H",
        "x-mock-scenario: secret",
        "-d",
        &Dialect::Chat.request("hello", false).to_string(),
        &format!("http://api.openai.com:{p_plain}/v1/chat/completions"),
    ]);
    assert_eq!(c.code, 0, "{}", c.stderr);
    assert!(!c.stdout.contains(FAKE_AWS_KEY), "{}", c.stdout);
    assert!(
        c.stdout.contains("[REDACTED:aws_access_key_id:"),
        "{}",
        c.stdout
    );

    // 3. A host the policy passes through: a blind tunnel; the client sees
    //    the mock's own certificate and the unmasked answer.
    let resolve = format!("pinned.test:{p_tls}:127.0.0.1");
    let c = curl(&[
        "-v",
        "--cacert",
        &tls_fixture("ca.pem").to_string_lossy(),
        "--resolve",
        &resolve,
        "-H",
        "content-type: application/json",
        "-H",
        "x-mock-scenario: secret",
        "-d",
        &Dialect::Chat.request("hello", false).to_string(),
        &format!("https://pinned.test:{p_tls}/v1/chat/completions"),
    ]);
    assert_eq!(c.code, 0, "{}", c.stderr);
    assert!(
        c.stderr.contains("issuer: CN=asg-e2e test CA"),
        "{}",
        c.stderr
    );
    assert!(c.stdout.contains(FAKE_AWS_KEY), "untouched: {}", c.stdout);

    // 4. A denied host: refused with a 403 over TLS, never forwarded.
    let resolve = format!("evil.test:{p_tls}:127.0.0.1");
    let c = curl(&[
        "--cacert",
        &asg_ca,
        "--resolve",
        &resolve,
        "-w",
        "\n%{http_code}",
        &format!("https://evil.test:{p_tls}/v1/models"),
    ]);
    assert_eq!(c.code, 0, "{}", c.stderr);
    assert!(c.stdout.ends_with("\n403"), "{}", c.stdout);
    assert!(
        c.stdout.contains("evil.test:") && c.stdout.contains("deny:evil.test"),
        "{}",
        c.stdout
    );

    // 5. A direct connection to the transparent port (not redirected) is refused.
    let mut s = std::net::TcpStream::connect(("127.0.0.1", transparent)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut buf = Vec::new();
    assert_eq!(
        s.read_to_end(&mut buf).unwrap_or(0),
        0,
        "closed without an answer"
    );

    let ok = wait_until(Duration::from_secs(5), || {
        metric(
            &gw,
            "asg_forward_failures_total",
            &[("mode", "transparent"), ("reason", "not_redirected")],
        ) >= 1.0
            && metric(&gw, "asg_requests_total", &[("route", "openai")]) >= 2.0
    });
    assert!(ok, "{}", gw.metrics_text());
    // One connection-level intercept (TLS) plus one per-request intercept
    // (plain HTTP). A redirected upstream connection would have come back as
    // another transparent intercept: there is none.
    assert_eq!(
        metric(
            &gw,
            "asg_forward_decisions_total",
            &[("mode", "transparent"), ("action", "intercept")]
        ),
        2.0,
        "{}",
        gw.metrics_text()
    );
    assert_eq!(
        metric(
            &gw,
            "asg_forward_decisions_total",
            &[("mode", "transparent"), ("action", "deny")]
        ),
        1.0
    );
    assert!(
        metric(
            &gw,
            "asg_tunnel_bytes_total",
            &[("mode", "transparent"), ("direction", "down")]
        ) > 0.0
    );
    assert_eq!(
        metric(&gw, "asg_forward_failures_total", &[("reason", "loop")]),
        0.0
    );

    // The removal rules leave nothing behind.
    let mut remove_args = rules.to_vec();
    remove_args.push("--remove");
    sh(&asg_iptables(&remove_args));
    let out = Command::new("iptables")
        .args(["-t", "nat", "-S"])
        .output()
        .unwrap();
    let left = String::from_utf8_lossy(&out.stdout);
    assert!(!left.contains("ASG_"), "{left}");

    // What reached the mocks (asked only now: the test's own calls to them
    // would have been redirected too). TLS: the intercepted call once (no
    // loop) and the blind-tunnelled one; the denied host never.
    let sent = tls.requests();
    let hosts: Vec<_> = sent
        .iter()
        .map(|r| {
            (
                r.path_only().to_string(),
                r.header("host").map(str::to_string),
            )
        })
        .collect();
    assert_eq!(
        hosts,
        [
            (
                "/v1/chat/completions".to_string(),
                Some(format!("api.openai.com:{p_tls}"))
            ),
            (
                "/v1/chat/completions".to_string(),
                Some(format!("pinned.test:{p_tls}"))
            ),
        ],
        "exactly one upstream request per call: no loop, nothing for the denied host"
    );
    assert_eq!(plain.requests_to("/v1/chat/completions").len(), 1);

    misconfigured_rules_still_do_not_loop(&tls, &plain);
}

/// Rules that exclude the wrong mark send the gateway's own upstream
/// connections back to it. Every path still ends after one hop, promptly:
/// TLS because the gateway does not trust its own CA upstream, plain HTTP by
/// its `Via` pseudonym, blind tunnels because it recognises its own sockets.
fn misconfigured_rules_still_do_not_loop(tls: &MockUpstream, plain: &MockUpstream) {
    let (p_tls, p_plain) = (tls.addr().port(), plain.addr().port());
    let transparent = free_port();
    let gw = transparent_gateway(plain, transparent, "0x540");
    let ports = format!("{p_tls},{p_plain}");
    let port = transparent.to_string();
    let rules = [
        "--mark",
        MARK,
        "--proxy-port",
        &port,
        "--ports",
        &ports,
        "--include-loopback",
    ];
    // The test's own calls to the mocks would be redirected too: reset first.
    tls.reset();
    plain.reset();
    sh(&asg_iptables(&rules));
    let asg_ca = gw.data_dir().join("ca/ca.pem");
    let started = std::time::Instant::now();

    let c = curl(&[
        "--cacert",
        &asg_ca.to_string_lossy(),
        "--resolve",
        &format!("api.openai.com:{p_tls}:127.0.0.1"),
        "-w",
        "\n%{http_code}",
        &format!("https://api.openai.com:{p_tls}/v1/models"),
    ]);
    assert!(
        c.stdout.ends_with("\n502"),
        "TLS: {} {}",
        c.stdout,
        c.stderr
    );
    assert!(c.stdout.contains("UnknownIssuer"), "{}", c.stdout);

    let c = curl(&[
        "--resolve",
        &format!("api.openai.com:{p_plain}:127.0.0.1"),
        "-w",
        "\n%{http_code}",
        &format!("http://api.openai.com:{p_plain}/v1/models"),
    ]);
    assert!(
        c.stdout.ends_with("\n502"),
        "plain: {} {}",
        c.stdout,
        c.stderr
    );
    assert!(c.stdout.contains("proxy loop"), "{}", c.stdout);

    let c = curl(&[
        "--cacert",
        &tls_fixture("ca.pem").to_string_lossy(),
        "--resolve",
        &format!("pinned.test:{p_tls}:127.0.0.1"),
        &format!("https://pinned.test:{p_tls}/v1/models"),
    ]);
    assert_ne!(c.code, 0, "a looping blind tunnel must fail: {}", c.stdout);

    assert!(
        started.elapsed() < Duration::from_secs(10),
        "loops must end at once, took {:?}",
        started.elapsed()
    );
    assert!(
        wait_until(Duration::from_secs(5), || {
            metric(
                &gw,
                "asg_forward_failures_total",
                &[("mode", "transparent"), ("reason", "loop")],
            ) >= 2.0
        }),
        "{}",
        gw.metrics_text()
    );
    let mut remove = rules.to_vec();
    remove.push("--remove");
    sh(&asg_iptables(&remove));
    assert!(
        tls.requests().is_empty() && plain.requests().is_empty(),
        "nothing reached the mocks"
    );
}
