//! Startup: configuration and environment errors are one clear line and a
//! non-zero exit; the help documents the environment.

use asg_e2e::util::{asg_bin, free_ports};
use asg_e2e::{tls_fixture, wire_fixture, Dialect, Gateway, GatewayOptions, MockUpstream};
use std::process::Command;

fn asg(args: &[&str], env: &[(&str, String)]) -> (i32, String, String) {
    let mut cmd = Command::new(asg_bin());
    cmd.args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run asg");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn base_env(data: &std::path::Path) -> Vec<(&'static str, String)> {
    let ports = free_ports(2);
    vec![
        ("ASG_LISTEN", format!("127.0.0.1:{}", ports[0])),
        ("ASG_ADMIN_LISTEN", format!("127.0.0.1:{}", ports[1])),
        ("ASG_DATA_DIR", data.to_string_lossy().into_owned()),
        ("ASG_UPSTREAM", "http://127.0.0.1:9".into()),
    ]
}

#[test]
fn help_documents_commands_and_environment() {
    let (code, out, _) = asg(&["--help"], &[]);
    assert_eq!(code, 0);
    for needle in [
        "run",
        "policy",
        "ASG_LISTEN",
        "ASG_ADMIN_LISTEN",
        "ASG_UPSTREAM",
        "ASG_POLICY",
        "ASG_DATA_DIR",
    ] {
        assert!(out.contains(needle), "--help lacks {needle}:\n{out}");
    }
}

#[test]
fn a_taken_port_is_one_clear_line() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let data = tempfile::tempdir().unwrap();
    let mut env = base_env(data.path());
    env[0].1 = taken.local_addr().unwrap().to_string();
    let (code, _, err) = asg(&["run"], &env);
    assert_ne!(code, 0);
    assert!(
        err.contains("cannot listen on") && err.contains("in use"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
}

#[test]
fn a_bad_policy_is_reported_with_its_line() {
    let data = tempfile::tempdir().unwrap();
    let policy = data.path().join("broken.toml");
    std::fs::write(
        &policy,
        "name = \"broken\"\n\n[decision]\nblock_score = 1.0\nchallenge_score = 2.0\n",
    )
    .unwrap();
    let mut env = base_env(data.path());
    env.push(("ASG_POLICY", policy.to_string_lossy().into_owned()));
    let (code, _, err) = asg(&["run"], &env);
    assert_ne!(code, 0);
    assert!(
        err.contains("broken.toml:5:") && err.contains("challenge_score"),
        "{err}"
    );

    let mut env = base_env(data.path());
    env.push(("ASG_POLICY", "/nonexistent/policy.toml".into()));
    let (code, _, err) = asg(&["run"], &env);
    assert_ne!(code, 0);
    assert!(
        err.contains("cannot read policy /nonexistent/policy.toml"),
        "{err}"
    );

    // The same check offline.
    let (code, _, err) = asg(&["policy", "check", &policy.to_string_lossy()], &[]);
    assert_eq!(code, 1);
    assert!(err.contains(":5:"), "{err}");
    let (code, out, _) = asg(&["policy", "check", "../policies/strict.toml"], &[]);
    assert_eq!(code, 0, "{out}");
    assert!(out.starts_with("ok: strict@"), "{out}");
}

#[test]
fn a_locked_data_folder_is_a_clear_error() {
    let upstream = MockUpstream::start();
    let first = Gateway::start(GatewayOptions::new(upstream.base_url()).policy("dev"));
    let mut env = base_env(first.data_dir());
    env.push(("ASG_POLICY", "dev".into()));
    let (code, _, err) = asg(&["run"], &env);
    assert_ne!(code, 0);
    assert!(err.contains("locked by another process"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
}

#[test]
fn bad_shared_state_urls_are_a_clear_error() {
    let data = tempfile::tempdir().unwrap();
    for (url, says) in [
        ("memcached://h", "ASG_STATE_URL: unsupported scheme"),
        (
            "redis://h?timeout=1",
            "ASG_STATE_URL: unknown option \"timeout\"",
        ),
        (
            "redis://:pw-in-url@127.0.0.1:1/0?connect_ms=nope",
            "ASG_STATE_URL: ",
        ),
    ] {
        let mut env = base_env(data.path());
        env.push(("ASG_STATE_URL", url.into()));
        env.push(("ASG_STATE_PREFIX", "fleet-x".into()));
        let (code, _, err) = asg(&["run"], &env);
        assert_eq!(code, 2, "{url}: {err}");
        assert!(
            err.starts_with("error: ") && err.contains(says),
            "{url}: {err}"
        );
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        assert!(!err.contains("pw-in-url"), "{err}");
    }
}

#[test]
fn asg_control_without_shared_state_is_a_clear_error() {
    let data = tempfile::tempdir().unwrap();
    let (code, _, err) = asg(&["control"], &base_env(data.path()));
    assert_eq!(code, 2, "{err}");
    assert!(
        err.starts_with("error: asg control serves a fleet's shared state: set ASG_STATE_URL"),
        "{err}"
    );
}

#[test]
fn a_corrupt_data_folder_is_a_clear_error() {
    let data = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(data.path().join("asg.sled")).unwrap();
    std::fs::write(
        data.path().join("asg.sled").join("conf"),
        b"\x00garbage\xff",
    )
    .unwrap();
    std::fs::write(
        data.path().join("asg.sled").join("db"),
        b"not a sled file at all",
    )
    .unwrap();
    let (code, _, err) = asg(&["run"], &base_env(data.path()));
    assert_ne!(code, 0);
    assert!(err.starts_with("error: cannot open data folder"), "{err}");
}

#[test]
fn upstream_tls_is_verified_with_an_optional_extra_ca() {
    let upstream = MockUpstream::start_tls(&tls_fixture("server.pem"), &tls_fixture("server.key"));
    let base = format!("https://127.0.0.1:{}", upstream.addr().port());
    let d = Dialect::Chat;
    let trusted = Gateway::start(GatewayOptions::new(&base).policy("dev").env(
        "ASG_UPSTREAM_CA",
        tls_fixture("ca.pem").to_string_lossy().as_ref(),
    ));
    let r = asg_e2e::http::post_json(
        &format!("{}{}", trusted.proxy_url(), d.path()),
        &[],
        &d.request("hello", false),
    );
    assert_eq!(r.status, 200, "{}", r.text());

    let untrusted = Gateway::start(GatewayOptions::new(&base).policy("dev"));
    let r = asg_e2e::http::post_json(
        &format!("{}{}", untrusted.proxy_url(), d.path()),
        &[],
        &d.request("hello", false),
    );
    assert_eq!(r.status, 502, "an unknown CA is refused: {}", r.text());
    let _ = wire_fixture("README.md");
}

/// The transparent listener is bound by pingora itself, after start-up. While its port is taken
/// the gateway is not ready (a connect to the port would succeed, but the socket is someone
/// else's), and when pingora gives up the process ends with one line instead of running without
/// the listener.
#[test]
fn a_listener_that_fails_after_start_up_is_never_ready_and_ends_the_process() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let data = tempfile::tempdir().unwrap();
    let mut env = base_env(data.path());
    env.push(("ASG_TRANSPARENT_LISTEN", addr.clone()));
    let ready_url = format!("http://{}/ready", env[1].1);
    let mut cmd = Command::new(asg_bin());
    cmd.arg("run")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().expect("run asg");
    // pingora tries the bind 30 times a second apart, after start-up; on a loaded machine that
    // ends later than 30 s after the spawn.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(90);
    let mut answered = Vec::new();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("asg still running with its transparent port taken; /ready said {answered:?}");
        }
        if let Ok(r) =
            asg_e2e::http::try_send(&asg_e2e::http::agent(), "GET", &ready_url, &[], None)
        {
            answered.push(r.status);
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    let mut err = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
    assert_eq!(status.code(), Some(2), "{err}");
    assert!(!answered.is_empty(), "the admin listener never answered");
    assert!(answered.iter().all(|&s| s == 503), "/ready: {answered:?}");
    let line = err
        .lines()
        .find(|l| l.starts_with("error: "))
        .unwrap_or_else(|| panic!("no error line: {err}"));
    assert!(
        line.contains("cannot listen") && line.contains(&addr) && line.contains("in use"),
        "{line}"
    );
    assert!(!err.contains("panicked"), "{err}");
    drop(taken);
}
