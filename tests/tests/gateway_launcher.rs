//! Tests of the gateway launcher. Most run against `tests/fixtures/fake_asg.py`, a stand-in that reads
//! the same environment as `asg run` and reports it through `/metrics`; the last one needs the real
//! gateway and is ignored on this branch.

use asg_e2e::http;
use asg_e2e::util::{wait_until, workspace_bin};
use asg_e2e::{fixtures_dir, Dialect, Gateway, GatewayOptions, MockUpstream, TEXT_REPLY};
use std::path::PathBuf;
use std::time::Duration;

fn fake_asg() -> PathBuf {
    fixtures_dir().join("fake_asg.py")
}

fn info_label(gw: &Gateway, key: &str) -> String {
    let text = gw.metrics_text();
    let samples = asg_e2e::metrics::parse(&text);
    let info = samples
        .iter()
        .find(|s| s.name == "fake_asg_info")
        .expect("fake_asg_info sample");
    info.label(key).unwrap_or_default().to_string()
}

#[test]
fn launcher_sets_the_environment_and_waits_for_ready() {
    let upstream = MockUpstream::start();
    // Variables of the developer's shell must not reach the gateway.
    std::env::set_var("ASG_E2E_LEAK_TEST", "1");
    std::env::set_var("HTTPS_PROXY", "http://127.0.0.1:9");
    let gw = Gateway::start(
        GatewayOptions::new(upstream.base_url())
            .policy("strict")
            .env("FAKE_ASG_EXTRA", "x=1")
            .env("FAKE_ASG_READY_AFTER_MS", "400")
            .config_text("[server]\n")
            .bin(fake_asg()),
    );
    // /ready answered 503 for 400 ms: start() only returns once it is 200.
    assert_eq!(http::get(&(gw.admin_url() + "/ready")).status, 200);
    assert_eq!(info_label(&gw, "listen"), gw.proxy_addr().to_string());
    assert_eq!(info_label(&gw, "admin"), gw.admin_addr().to_string());
    assert_ne!(gw.proxy_addr().port(), gw.admin_addr().port());
    assert!(gw.proxy_addr().ip().is_loopback() && gw.admin_addr().ip().is_loopback());
    assert_eq!(info_label(&gw, "upstream"), upstream.base_url());
    assert_eq!(info_label(&gw, "policy"), "strict");
    assert_eq!(info_label(&gw, "data_dir"), gw.data_dir().to_string_lossy());
    assert_eq!(info_label(&gw, "extra"), "x=1");
    assert_eq!(
        info_label(&gw, "proxy_vars"),
        "",
        "proxy variables are not inherited"
    );
    assert_eq!(
        info_label(&gw, "foreign_asg_vars"),
        "",
        "ASG_* variables are not inherited"
    );
    let config = PathBuf::from(info_label(&gw, "config"));
    assert_eq!(std::fs::read_to_string(config).unwrap(), "[server]\n");
    assert_eq!(gw.metric_value("fake_asg_starts_total", &[]), Some(1.0));
    assert_eq!(
        gw.metric_value("fake_asg_info", &[("policy", "strict")]),
        Some(1.0)
    );
    assert_eq!(
        gw.metric_value("fake_asg_info", &[("policy", "other")]),
        None
    );
    assert!(
        gw.stderr_text().contains("fake asg: start 1"),
        "{}",
        gw.stderr_text()
    );
}

#[test]
fn kill_hard_and_restart_keep_ports_and_data_dir() {
    let mut gw = Gateway::start(GatewayOptions::new("http://127.0.0.1:9").bin(fake_asg()));
    let (proxy, admin, pid) = (gw.proxy_addr(), gw.admin_addr(), gw.pid());
    gw.kill_hard();
    assert!(!gw.is_running());
    assert!(http::try_send(
        &http::agent(),
        "GET",
        &(gw.admin_url() + "/ready"),
        &[],
        None
    )
    .is_err());
    gw.restart();
    assert!(gw.is_running() && gw.pid() != pid);
    assert_eq!((gw.proxy_addr(), gw.admin_addr()), (proxy, admin));
    assert_eq!(
        gw.metric_value("fake_asg_starts_total", &[]),
        Some(2.0),
        "same data dir"
    );
    assert_eq!(
        gw.stderr_text().matches("==== asg-e2e: starting").count(),
        2,
        "logs of both runs are kept"
    );
}

#[test]
fn policy_files_are_copied_and_can_be_edited() {
    let src = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(src.path(), "version = 1\n").unwrap();
    let gw = Gateway::start(
        GatewayOptions::new("http://127.0.0.1:9")
            .policy_file(src.path())
            .bin(fake_asg()),
    );
    let copy = gw.policy_path().unwrap().to_path_buf();
    assert_ne!(copy, src.path());
    assert_eq!(info_label(&gw, "policy"), copy.to_string_lossy());
    assert_eq!(http::get(&gw.proxy_url()).text(), "version = 1\n");
    gw.write_policy("version = 2\n");
    assert_eq!(
        std::fs::read_to_string(src.path()).unwrap(),
        "version = 1\n",
        "the source is untouched"
    );
    assert!(wait_until(Duration::from_secs(5), || http::get(
        &gw.proxy_url()
    )
    .text()
        == "version = 2\n"));
    let left: Vec<String> = std::fs::read_dir(gw.policy_dir().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        left.len(),
        2,
        "the policy and its rules/ folder, no temp file: {left:?}"
    );
    assert!(gw
        .policy_dir()
        .unwrap()
        .join("rules/secrets.toml")
        .is_file());

    let gw2 = Gateway::start(
        GatewayOptions::new("http://127.0.0.1:9")
            .policy_text("p.toml", "inline")
            .bin(fake_asg()),
    );
    assert!(gw2.policy_path().unwrap().ends_with("p.toml"));
    assert_eq!(http::get(&gw2.proxy_url()).text(), "inline");
}

#[test]
fn startup_failure_reports_exit_status_and_stderr() {
    let err = Gateway::try_start(
        GatewayOptions::new("http://127.0.0.1:9")
            .env("FAKE_ASG_FAIL", "bad policy: nope")
            .bin(fake_asg()),
    )
    .err()
    .expect("must fail");
    assert!(
        err.contains("exited with") && err.contains("fake asg: bad policy: nope"),
        "{err}"
    );

    let err = Gateway::try_start(
        GatewayOptions::new("http://127.0.0.1:9")
            .env("FAKE_ASG_READY_AFTER_MS", "60000")
            // Long enough for the stand-in's interpreter to start on a loaded machine.
            .ready_timeout(Duration::from_millis(3000))
            .bin(fake_asg()),
    )
    .err()
    .expect("must time out");
    assert!(
        err.contains("not ready after") && err.contains("fake asg: start 1"),
        "{err}"
    );
}

#[test]
fn missing_binary_fails_with_a_build_hint() {
    std::env::set_var("ASG_E2E_TEST_MISSING_BIN", "/nonexistent/asg");
    let panic = std::panic::catch_unwind(|| {
        workspace_bin("asg", "ASG_E2E_TEST_MISSING_BIN", "cargo build -p asg")
    })
    .expect_err("must panic");
    let msg = panic.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(
        msg.contains("cargo build -p asg") && msg.contains("/nonexistent/asg"),
        "{msg}"
    );
}

/// The launcher against the real gateway.
#[test]
fn real_gateway_proxies_chat_and_serves_metrics() {
    let upstream = MockUpstream::start();
    let mut gw = Gateway::start(GatewayOptions::new(upstream.base_url()).policy("dev"));
    let d = Dialect::Chat;
    let r = http::post_json(
        &format!("{}{}", gw.proxy_url(), d.path()),
        &[],
        &d.request("hello", false),
    );
    assert_eq!(
        r.status,
        200,
        "{}\n--- asg stderr ---\n{}",
        r.text(),
        gw.stderr_text()
    );
    assert_eq!(d.text(&r.json()), TEXT_REPLY);
    assert_eq!(upstream.requests_to(d.path()).len(), 1);
    assert!(!asg_e2e::metrics::parse(&gw.metrics_text()).is_empty());
    gw.kill_hard();
    gw.restart();
    let r = http::post_json(
        &format!("{}{}", gw.proxy_url(), d.path()),
        &[],
        &d.request("again", true),
    );
    assert_eq!(d.assemble(&r.text()).text, TEXT_REPLY);
}
