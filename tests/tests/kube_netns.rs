//! A transparent-mode pod, emulated in a network namespace this test creates
//! (`unshare --net`; root only: the sidecar needs a uid of its own).
//!
//! The pod spec is the injector's own output for a pod annotated
//! `asg.dev/mode: transparent`. Its containers run as the spec says, with
//! each volume a local folder at the mount path's place:
//! 1. `asg-init` (root): its command, verbatim, installs the redirect rules
//!    and writes the agents' trust bundle;
//! 2. `asg` (uid/gid 1337): its command and environment (downward API
//!    values filled in, `$(VAR)` expanded), until its startup probe passes;
//! 3. the agent (uid 1000, the agent container's environment): Python's
//!    standard library calling `https://api.openai.com` and
//!    `http://api.openai.com`, which resolve to an address of the namespace
//!    where a relay to the mock upstreams listens on 443 and 80.
//!
//! The agent's connections are redirected, intercepted (it trusts only the
//! system roots and the asg CA, not the mock's test CA) and inspected (the
//! tool call is blocked, the secret masked); the sidecar's own upstream
//! connections are not redirected back to it (one request reaches each mock,
//! and the gateway counts no loop).

mod support;

use asg::kube::settings::Settings;
use asg::kube::template;
use asg_e2e::util::asg_bin;
use asg_e2e::{tls_fixture, Dialect, MockUpstream, FAKE_AWS_KEY};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const TEST: &str = "transparent_pod_from_the_injected_spec";
const INNER: &str = "ASG_E2E_KUBE_NETNS_INNER";
const UPSTREAM: &str = "10.200.0.2";
const OPERATOR_KEY: &str = "netns-test-operator-key";

#[test]
fn transparent_pod_from_the_injected_spec() {
    if std::env::var_os(INNER).is_some() {
        inside_the_namespace();
        return;
    }
    for tool in ["unshare", "ip", "iptables", "ip6tables", "setpriv"] {
        if !have(tool) {
            eprintln!("SKIPPED {TEST}: `{tool}` is not installed (apt-get install util-linux iproute2 iptables)");
            return;
        }
    }
    if !Path::new("/usr/bin/python3").exists() {
        eprintln!("SKIPPED {TEST}: /usr/bin/python3 (the agent) is missing");
        return;
    }
    if !is_root() {
        eprintln!("SKIPPED {TEST}: needs root (the sidecar and the agent run as their own uids)");
        return;
    }
    let probe = Command::new("unshare")
        .args(["--net", "--", "iptables", "-t", "nat", "-S"])
        .output();
    if !probe.as_ref().is_ok_and(|o| o.status.success()) {
        eprintln!("SKIPPED {TEST}: cannot use iptables in a new network namespace: {probe:?}");
        return;
    }
    let status = Command::new("unshare")
        .args(["--net", "--"])
        .arg(std::env::current_exe().unwrap())
        .args(["--exact", TEST, "--nocapture", "--test-threads=1"])
        .env(INNER, "1")
        .status()
        .expect("run unshare");
    assert!(
        status.success(),
        "the test inside the namespace failed (output above)"
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

fn sh(script: &str) {
    let out = Command::new("sh").args(["-ec", script]).output().unwrap();
    assert!(
        out.status.success(),
        "{script}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The injected pod: the injector's template on a plain agent pod.
fn injected_pod() -> Value {
    let mut meta = json!({"name": "reporter-7f9c", "namespace": "agents",
        "annotations": {"asg.dev/mode": "transparent"}});
    let mut spec = json!({"serviceAccountName": "reporter", "containers": [
        {"name": "agent", "image": "python:3.12-slim", "securityContext": {"runAsUser": 1000}}]});
    let out = template::inject(&mut meta, &mut spec, "agents", &Settings::default()).unwrap();
    assert!(matches!(out, template::Outcome::Injected(_)), "{out:?}");
    json!({"metadata": meta, "spec": spec})
}

fn container<'a>(pod: &'a Value, name: &str) -> &'a Value {
    ["initContainers", "containers"]
        .iter()
        .flat_map(|l| pod["spec"][l].as_array().into_iter().flatten())
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no container {name}"))
}

/// The pod's volumes as local folders: mount path → folder, per container.
struct Volumes {
    root: PathBuf,
}

impl Volumes {
    fn dir(&self, volume: &str) -> PathBuf {
        self.root.join(volume)
    }

    /// `text`, a path under one of container `c`'s mount paths, at its folder.
    fn map(&self, c: &Value, text: &str) -> String {
        if text == "/usr/local/bin/asg" {
            return asg_bin().to_string_lossy().into_owned();
        }
        let mounts = c["volumeMounts"].as_array().into_iter().flatten();
        let hit = mounts
            .map(|m| {
                (
                    m["mountPath"].as_str().unwrap(),
                    m["name"].as_str().unwrap(),
                )
            })
            .filter(|(path, _)| text == *path || text.starts_with(&format!("{path}/")))
            .max_by_key(|(path, _)| path.len());
        match hit {
            Some((path, vol)) => format!("{}{}", self.dir(vol).display(), &text[path.len()..]),
            None => text.to_string(),
        }
    }
}

/// The container's environment as kubelet would give it.
fn environment(c: &Value, vols: &Volumes, pod: &Value) -> BTreeMap<String, String> {
    let mut env: BTreeMap<String, String> = BTreeMap::new();
    for e in c["env"].as_array().into_iter().flatten() {
        let name = e["name"].as_str().unwrap().to_string();
        let value = if let Some(v) = e["value"].as_str() {
            let mut v = vols.map(c, v);
            for (k, known) in &env {
                v = v.replace(&format!("$({k})"), known.as_str());
            }
            v
        } else if let Some(f) = e["valueFrom"]["fieldRef"]["fieldPath"].as_str() {
            match f {
                "metadata.name" => pod["metadata"]["name"].as_str().unwrap().to_string(),
                "metadata.namespace" => pod["metadata"]["namespace"].as_str().unwrap().to_string(),
                "spec.serviceAccountName" => pod["spec"]["serviceAccountName"]
                    .as_str()
                    .unwrap()
                    .to_string(),
                other => panic!("unexpected fieldRef {other}"),
            }
        } else if e["valueFrom"]["secretKeyRef"]["key"] == "operator-key" {
            OPERATOR_KEY.to_string()
        } else {
            panic!("unexpected env entry {e}");
        };
        env.insert(name, value);
    }
    env
}

/// Run container `c`'s command as its uid/gid, with `extra` environment.
fn spawn(c: &Value, vols: &Volumes, pod: &Value, extra: &[(&str, &str)]) -> Command {
    let ctx = &c["securityContext"];
    let uid = ctx["runAsUser"].as_u64().unwrap();
    let gid = ctx["runAsGroup"].as_u64().unwrap_or(uid);
    let argv: Vec<String> = c["command"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| vols.map(c, a.as_str().unwrap()))
        .collect();
    let mut cmd = Command::new("setpriv");
    cmd.args([
        format!("--reuid={uid}"),
        format!("--regid={gid}"),
        "--clear-groups".into(),
    ]);
    if uid == 0 {
        cmd.args(["--inh-caps=-all,+net_admin,+net_raw"]);
    }
    cmd.arg("--")
        .args(&argv)
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin");
    cmd.envs(environment(c, vols, pod));
    for (k, v) in extra {
        cmd.env(k, v);
    }
    cmd
}

fn agent(env: &BTreeMap<String, String>, url: &str, scenario: &str, body: &Value) -> (u16, String) {
    // The agent's "DNS": api.openai.com is the upstream address in this namespace.
    let script = format!(
        r#"
import socket, sys, urllib.request, urllib.error
real = socket.getaddrinfo
socket.getaddrinfo = lambda h, *a, **k: real("{UPSTREAM}" if h == "api.openai.com" else h, *a, **k)
req = urllib.request.Request(sys.argv[1], data=sys.argv[3].encode(), headers={{
    "content-type": "application/json", "authorization": "Bearer sk-test", "x-mock-scenario": sys.argv[2],
    "x-asg-agent-id": "someone-else"}})
try:
    r = urllib.request.urlopen(req, timeout=20)
    print(r.status); print(r.read().decode())
except urllib.error.HTTPError as e:
    print(e.code); print(e.read().decode())
"#
    );
    let out = Command::new("setpriv")
        .args([
            "--reuid=1000",
            "--regid=1000",
            "--clear-groups",
            "--",
            "/usr/bin/python3",
            "-c",
            &script,
        ])
        .args([url, scenario, &body.to_string()])
        .env_clear()
        .envs(env)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "agent: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (status, body) = stdout.split_once('\n').unwrap_or((&stdout, ""));
    (status.trim().parse().unwrap_or(0), body.to_string())
}

fn admin_get(port: u16, path: &str) -> Option<(u16, String)> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.0\r\nHost: localhost\r\nAuthorization: Bearer {OPERATOR_KEY}\r\n\r\n"
    )
    .ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let status = text.split_whitespace().nth(1)?.parse().ok()?;
    Some((
        status,
        text.split_once("\r\n\r\n")
            .map(|x| x.1.to_string())
            .unwrap_or_default(),
    ))
}

fn metric(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter(|l| {
            l.starts_with(name)
                && labels
                    .iter()
                    .all(|(k, v)| l.contains(&format!("{k}=\"{v}\"")))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Accept on `listen`, pass each connection to `to`; counts connections.
fn relay(listen: &str, to: std::net::SocketAddr) -> Arc<AtomicUsize> {
    let l = std::net::TcpListener::bind(listen).unwrap();
    let count = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&count);
    std::thread::spawn(move || {
        for conn in l.incoming().flatten() {
            counted.fetch_add(1, Ordering::SeqCst);
            let Ok(up) = std::net::TcpStream::connect(to) else {
                continue;
            };
            let (mut a, mut b) = (conn.try_clone().unwrap(), up.try_clone().unwrap());
            let (mut c, mut d) = (conn, up);
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut a, &mut b);
                let _ = b.shutdown(std::net::Shutdown::Write);
            });
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut d, &mut c);
                let _ = c.shutdown(std::net::Shutdown::Write);
            });
        }
    });
    count
}

struct Killed(Child);
impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn inside_the_namespace() {
    sh(&format!(
        "ip link set lo up && ip addr add {UPSTREAM}/32 dev lo"
    ));
    // The mocks listen on loopback only (by design); a relay on the upstream
    // address passes connections on (its own, to loopback, are never redirected).
    let tls = MockUpstream::start_tls(&tls_fixture("apis.pem"), &tls_fixture("apis.key"));
    let plain = MockUpstream::start();
    let relayed_tls = relay(&format!("{UPSTREAM}:443"), tls.addr());
    let relayed_plain = relay(&format!("{UPSTREAM}:80"), plain.addr());

    let pod = injected_pod();
    let (init, asg, agent_c) = (
        container(&pod, "asg-init"),
        container(&pod, "asg"),
        container(&pod, "agent"),
    );
    let root = std::env::temp_dir().join(format!("asg-kube-netns-{}", std::process::id()));
    let vols = Volumes { root: root.clone() };
    for v in ["asg-data", "asg-tmp", "asg-trust", "asg-ca", "asg-ca-cert"] {
        std::fs::create_dir_all(vols.dir(v)).unwrap();
    }
    // emptyDir volumes are world-writable; Secret and ConfigMap files world-readable (0444).
    sh(&format!(
        "chmod 755 {r} && chmod 777 {r}/asg-data {r}/asg-tmp {r}/asg-trust",
        r = root.display()
    ));
    // The CA Secret: a CA made by `asg ca init`, as tls.crt / tls.key / ca.crt.
    let made = Command::new(asg_bin())
        .args(["ca", "init"])
        .env("ASG_DATA_DIR", root.join("ca-init"))
        .output()
        .unwrap();
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    for (from, to) in [
        ("ca.pem", "asg-ca/tls.crt"),
        ("ca.key", "asg-ca/tls.key"),
        ("ca.pem", "asg-ca/ca.crt"),
        ("ca.pem", "asg-ca-cert/ca.crt"),
    ] {
        std::fs::copy(root.join("ca-init/ca").join(from), root.join(to)).unwrap();
    }
    sh(&format!(
        "chmod 444 {r}/asg-ca/* {r}/asg-ca-cert/*",
        r = root.display()
    ));
    // The policy ConfigMap holds the repository's profiles and rules, same layout.
    std::os::unix::fs::symlink(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../policies")
            .canonicalize()
            .unwrap(),
        vols.dir("asg-policies"),
    )
    .unwrap();

    // 1. The init container, as root with NET_ADMIN/NET_RAW.
    let out = spawn(init, &vols, &pod, &[]).output().unwrap();
    assert!(
        out.status.success(),
        "asg-init: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let rules = String::from_utf8(
        Command::new("iptables")
            .args(["-t", "nat", "-S"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    assert!(
        rules.contains("-A ASG_OUTPUT -m owner --uid-owner 1337 -j RETURN"),
        "{rules}"
    );
    assert!(rules.contains("-A OUTPUT -p tcp -j ASG_OUTPUT"), "{rules}");
    let trust = std::fs::read_to_string(vols.dir("asg-trust").join("bundle.pem")).unwrap();
    assert!(trust.trim_end().ends_with(
        std::fs::read_to_string(root.join("asg-ca/ca.crt"))
            .unwrap()
            .trim_end()
    ));

    // 2. The sidecar as its own uid, until its startup probe passes. The only
    //    addition: the test CA of the mock upstream (which plays the API).
    let upstream_ca = tls_fixture("ca.pem").to_string_lossy().into_owned();
    let mut cmd = spawn(asg, &vols, &pod, &[("ASG_UPSTREAM_CA", &upstream_ca)]);
    let sidecar = Killed(
        cmd.stdout(std::fs::File::create(root.join("asg.log")).unwrap())
            .stderr(std::fs::File::create(root.join("asg.err")).unwrap())
            .spawn()
            .unwrap(),
    );
    let probe = &asg["startupProbe"]["httpGet"];
    let admin_port = probe["port"].as_u64().unwrap() as u16;
    let started = Instant::now();
    while admin_get(admin_port, probe["path"].as_str().unwrap()).map(|r| r.0) != Some(200) {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "sidecar not ready: {}",
            std::fs::read_to_string(root.join("asg.err")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let pid = sidecar.0.id();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    assert!(
        status
            .lines()
            .any(|l| l.starts_with("Uid:") && l.contains("1337")),
        "{status}"
    );

    // 3. The agent, with the agent container's environment.
    let env = environment(agent_c, &Volumes { root: root.clone() }, &pod);
    let mut env: BTreeMap<String, String> = env
        .into_iter()
        .map(|(k, v)| (k, vols.map(agent_c, &v)))
        .collect();
    env.insert("PATH".into(), "/usr/bin:/bin".into());
    assert!(
        !env.contains_key("HTTPS_PROXY"),
        "transparent mode sets no proxy"
    );

    let (code, body) = agent(
        &env,
        "https://api.openai.com/v1/chat/completions",
        "tool_shell",
        &Dialect::Chat.request("show my ssh key", false),
    );
    assert_eq!(code, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert!(v["choices"][0]["message"]["tool_calls"].is_null(), "{v}");
    assert!(
        v["choices"][0]["message"]["content"]
            .as_str()
            .unwrap()
            .contains("blocked by the security gateway"),
        "{v}"
    );

    let (code, body) = agent(
        &env,
        "http://api.openai.com/v1/chat/completions",
        "secret",
        &Dialect::Chat.request("hello", false),
    );
    assert_eq!(code, 200, "{body}");
    assert!(
        !body.contains(FAKE_AWS_KEY) && body.contains("[REDACTED:aws_access_key_id:"),
        "{body}"
    );

    let (code, metrics) = admin_get(admin_port, "/metrics").unwrap();
    assert_eq!(
        code, 200,
        "the operator key from the admin Secret opens /metrics"
    );
    let intercepts = metric(
        &metrics,
        "asg_forward_decisions_total",
        &[("mode", "transparent"), ("action", "intercept")],
    );
    assert_eq!(intercepts, 2.0, "{metrics}");
    assert_eq!(
        metric(
            &metrics,
            "asg_forward_failures_total",
            &[("reason", "loop")]
        ),
        0.0
    );
    assert!(
        metric(&metrics, "asg_requests_total", &[("route", "openai")]) >= 2.0,
        "{metrics}"
    );
    // The audit names the pod's identity (downward API), not the one the agent claimed.
    let (code, audit) = admin_get(admin_port, "/operator/api/audit/export").unwrap();
    assert_eq!(code, 200, "{audit}");
    let agents: Vec<String> = audit
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|r| {
            r["path"]
                .as_str()
                .is_some_and(|p| p.ends_with("/chat/completions"))
        })
        .map(|r| r["agent_id"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(agents, ["agents/reporter/reporter-7f9c"; 2], "{audit}");
    drop(sidecar);

    // Remove the rules before asking the mocks (the test's own calls would be redirected).
    sh("iptables -t nat -F OUTPUT; ip6tables -t nat -F OUTPUT 2>/dev/null || true");
    assert_eq!(
        relayed_tls.load(Ordering::SeqCst),
        1,
        "one upstream connection per call: no loop"
    );
    assert_eq!(relayed_plain.load(Ordering::SeqCst), 1);
    let sent = tls.requests_to("/v1/chat/completions");
    assert_eq!(sent.len(), 1, "one upstream request per call: no loop");
    assert_eq!(sent[0].header("host"), Some("api.openai.com"));
    assert_eq!(plain.requests_to("/v1/chat/completions").len(), 1);
    let _ = std::fs::remove_dir_all(&root);
}
