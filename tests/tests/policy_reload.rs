//! Policies change a running gateway's decisions without a restart; a bad
//! edit keeps the last good policy and is reported.

use asg_e2e::http;
use asg_e2e::util::wait_until;
use asg_e2e::{Dialect, Gateway, GatewayOptions, MockUpstream};
use std::time::Duration;

fn dev_policy() -> String {
    std::fs::read_to_string("../policies/dev.toml").expect("policies/dev.toml")
}

fn shell_call_survives(gw: &Gateway) -> bool {
    let d = Dialect::Chat;
    let r = http::post_json(
        &format!("{}{}", gw.proxy_url(), d.path()),
        &[("x-mock-scenario", "tool_benign")],
        &d.request("list files", false),
    );
    !d.tool_calls(&r.json()).is_empty()
}

fn active_version(gw: &Gateway) -> String {
    let text = gw.metrics_text();
    asg_e2e::metrics::parse(&text)
        .into_iter()
        .find(|s| s.name == "asg_policy_info")
        .and_then(|s| s.label("version").map(str::to_string))
        .unwrap_or_default()
}

#[test]
fn editing_the_policy_changes_a_decision_without_restart() {
    let upstream = MockUpstream::start();
    let gw = Gateway::start(
        GatewayOptions::new(upstream.base_url()).policy_text("dev.toml", &dev_policy()),
    );
    let pid = gw.pid();
    assert!(shell_call_survives(&gw), "dev lets a listing through");
    let before = active_version(&gw);

    // `ls -la` is a read: refuse reads.
    gw.write_policy(&dev_policy().replace("read = \"allow\"", "read = \"block\""));
    assert!(
        wait_until(Duration::from_secs(10), || active_version(&gw) != before),
        "reload not observed"
    );
    assert!(!shell_call_survives(&gw), "the edited policy blocks reads");
    assert_eq!(gw.pid(), pid, "same process");
    assert!(
        gw.metric_value("asg_policy_reloads_total", &[("result", "success")])
            .unwrap_or(0.0)
            >= 2.0
    );
}

#[test]
fn an_invalid_edit_keeps_the_last_good_policy_and_is_reported() {
    let upstream = MockUpstream::start();
    let gw = Gateway::start(
        GatewayOptions::new(upstream.base_url()).policy_text("dev.toml", &dev_policy()),
    );
    let before = active_version(&gw);

    gw.write_policy(&dev_policy().replace("block_score = 1.8", "block_score = \"very high\""));
    assert!(
        wait_until(Duration::from_secs(10), || gw
            .metric_value("asg_policy_reloads_total", &[("result", "failure")])
            .unwrap_or(0.0)
            >= 1.0),
        "the failed reload is counted"
    );
    assert_eq!(
        gw.metric_value("asg_policy_last_reload_success", &[]),
        Some(0.0)
    );
    assert_eq!(active_version(&gw), before, "still the last good version");
    assert!(shell_call_survives(&gw), "and it still decides as before");
    let ready = http::get(&format!("{}/ready", gw.admin_url())).json();
    let err = ready["details"]["policy_last_error"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        err.contains("dev.toml:") && err.contains("block_score"),
        "the error names file, line and key: {err}"
    );
    assert!(gw.stderr_text().contains("keeping the last good policy"));

    // Fixing the file recovers.
    gw.write_policy(&dev_policy().replace("block_score = 1.8", "block_score = 1.9"));
    assert!(wait_until(Duration::from_secs(10), || gw
        .metric_value("asg_policy_last_reload_success", &[])
        == Some(1.0)));
    assert_ne!(active_version(&gw), before);
}
