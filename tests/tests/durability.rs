//! Durability: what the gateway acknowledged survives a SIGKILL.
//!
//! Several clients drive the admin API (inspections that open approvals,
//! an operator resolving them) and the proxy (chat completions, MCP tool
//! calls) while the gateway is killed with SIGKILL. After a restart on the
//! same data folder, every audit record whose request got an answer and
//! every approval decision that was answered must be there. Corrupt and
//! locked data folders fail at startup with one clear line
//! (see also `startup.rs`).

use asg_e2e::http;
use asg_e2e::{Gateway, GatewayOptions, MockUpstream};
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const POLICY: &str = r#"
name = "durability-e2e"
[decision]
block_score = 1.3
challenge_score = 0.55
block_high_count = 1
# Every ordinary effect is challenged, so that any tool call goes through
# the approval flow under test.
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
[session]
challenge_score = 50.0
block_score = 100.0
repeat_threshold = 100000
max_staged = 100000
"#;

#[derive(Default)]
struct Acked {
    /// Request ids whose answer was received in full.
    requests: Vec<String>,
    /// Approval id → the status an answer reported (`pending` / `approved`).
    approvals: HashMap<String, String>,
}

fn start(upstream: &MockUpstream) -> Gateway {
    let base = upstream.base_url();
    Gateway::start(
        GatewayOptions::new(&base)
            .policy_text("durability.toml", POLICY)
            .config_text(&format!(
                "[[route]]\nname = \"tools\"\nprefix = \"/mcp\"\nupstream = \"{base}\"\napi = \"mcp\"\n\n\
                 [[route]]\nname = \"default\"\nprefix = \"/\"\nupstream = \"{base}\"\n"
            )),
    )
}

fn post(
    agent: &http::ureq::Agent,
    url: &str,
    headers: &[(&str, &str)],
    body: &Value,
) -> Option<http::Resp> {
    let mut h = vec![("content-type", "application/json")];
    h.extend_from_slice(headers);
    http::try_send(agent, "POST", url, &h, Some(body.to_string().as_bytes())).ok()
}

/// A client of the proxy until `stop`: buffered chat completions (`t` 0),
/// MCP tool calls (1) or streamed chat completions (2). Records the request
/// id of every answer received in full.
fn proxy_client(
    t: usize,
    proxy: &str,
    stop: &Arc<AtomicBool>,
    acked: &Arc<Mutex<Acked>>,
) -> std::thread::JoinHandle<()> {
    let (stop, acked, proxy) = (stop.clone(), acked.clone(), proxy.to_string());
    std::thread::spawn(move || {
        let agent = http::agent();
        let mut i = 0u64;
        while !stop.load(Ordering::Relaxed) {
            i += 1;
            let r = match t {
                0 => post(
                    &agent,
                    &format!("{proxy}/v1/chat/completions"),
                    &[("x-session-id", "dur-chat")],
                    &json!({"model": "m", "messages": [{"role": "user", "content": format!("hello {i}")}]}),
                ),
                2 => post(
                    &agent,
                    &format!("{proxy}/v1/chat/completions"),
                    &[("x-session-id", "dur-sse")],
                    &json!({"model": "m", "stream": true,
                        "messages": [{"role": "user", "content": format!("stream {i}")}]}),
                )
                .filter(|r| r.text().contains("[DONE]")),
                _ => post(
                    &agent,
                    &format!("{proxy}/mcp"),
                    &[("mcp-session-id", "dur-mcp")],
                    &json!({"jsonrpc": "2.0", "id": i, "method": "tools/call",
                        "params": {"name": "read_config", "arguments": {"path": format!("/etc/app/{i}.yaml")}}}),
                ),
            };
            if let Some(r) = r.filter(|r| r.status == 200) {
                if let Some(id) = r.header("x-asg-request-id") {
                    acked.lock().unwrap().requests.push(id.to_string());
                }
            }
        }
    })
}

/// Request ids of the audit records the (restarted) gateway exports.
fn stored_request_ids(gw: &Gateway) -> HashSet<String> {
    let r = http::get(&format!(
        "{}/operator/api/audit/export?limit=100000",
        gw.admin_url()
    ));
    assert_eq!(r.status, 200);
    r.text()
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["request_id"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect()
}

/// Every acknowledged request has its record in `stored`.
fn assert_all_stored(acked: &[String], stored: &HashSet<String>) {
    let missing: Vec<&String> = acked.iter().filter(|id| !stored.contains(*id)).collect();
    assert!(
        missing.is_empty(),
        "{} of {} acknowledged audit records lost, e.g. {:?}",
        missing.len(),
        acked.len(),
        &missing[..missing.len().min(5)]
    );
}

#[test]
fn acknowledged_audit_and_approvals_survive_sigkill_under_load() {
    let upstream = MockUpstream::start_with_args(&["--record-limit", "0"]);
    let mut gw = start(&upstream);
    let admin = gw.admin_url();
    let proxy = gw.proxy_url();
    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(Mutex::new(Acked::default()));
    let mut workers = Vec::new();

    // Inspections: benign reads (allow) and shell calls (open approvals).
    for t in 0..3 {
        let (stop, acked, admin) = (stop.clone(), acked.clone(), admin.clone());
        workers.push(std::thread::spawn(move || {
            let agent = http::agent();
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                i += 1;
                let (tool, target) = if i.is_multiple_of(3) {
                    ("exec_shell", format!("ls /srv/{t}/{i}"))
                } else {
                    ("read_file", format!("/srv/{t}/{i}.txt"))
                };
                let body = json!({"tool_name": tool, "tool_target": target,
                    "session_id": format!("dur-{t}"), "agent_id": format!("agent-{t}")});
                let Some(r) = post(&agent, &format!("{admin}/inspect/tool-call"), &[], &body)
                else {
                    continue;
                };
                if r.status != 200 {
                    continue;
                }
                let v = r.json();
                let mut a = acked.lock().unwrap();
                a.requests
                    .push(v["request_id"].as_str().unwrap().to_string());
                if let Some(id) = v["approval"]["approval_id"].as_str() {
                    a.approvals
                        .entry(id.to_string())
                        .or_insert_with(|| "pending".into());
                }
            }
        }));
    }
    // An operator approving whatever is pending.
    {
        let (stop, acked, admin) = (stop.clone(), acked.clone(), admin.clone());
        workers.push(std::thread::spawn(move || {
            let agent = http::agent();
            while !stop.load(Ordering::Relaxed) {
                let Ok(list) = http::try_send(
                    &agent,
                    "GET",
                    &format!("{admin}/approvals?status=pending&limit=20"),
                    &[],
                    None,
                ) else {
                    continue;
                };
                if list.status != 200 {
                    continue;
                }
                for a in list.json()["approvals"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
                {
                    let id = a["approval_id"].as_str().unwrap().to_string();
                    let body = json!({"approval_id": id, "approve": true, "resolver": "ops"});
                    if let Some(r) = post(&agent, &format!("{admin}/approval/resolve"), &[], &body)
                    {
                        if r.status == 200 {
                            assert!(!r.json()["permit_token"].as_str().unwrap().is_empty());
                            acked
                                .lock()
                                .unwrap()
                                .approvals
                                .insert(id, "approved".into());
                        }
                    }
                }
            }
        }));
    }
    // Proxied traffic: chat completions (buffered and streamed) and MCP
    // tool calls.
    for t in 0..3 {
        workers.push(proxy_client(t, &proxy, &stop, &acked));
    }

    // Let the load build up, then pull the plug mid-flight.
    std::thread::sleep(Duration::from_millis(2500));
    gw.kill_hard();
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.join().unwrap();
    }
    let acked = std::mem::take(&mut *acked.lock().unwrap());
    assert!(
        acked.requests.len() >= 100,
        "too little load: {}",
        acked.requests.len()
    );
    assert!(
        acked.approvals.values().any(|s| s == "approved"),
        "no approval was resolved under load"
    );

    gw.restart();
    assert_all_stored(&acked.requests, &stored_request_ids(&gw));
    for (id, status) in &acked.approvals {
        let a = http::get(&format!("{}/approval/{id}", gw.admin_url()));
        assert_eq!(a.status, 200, "approval {id} lost");
        let now = a.json()["status"].as_str().unwrap().to_string();
        if status == "approved" {
            assert!(
                ["approved", "used", "expired"].contains(&now.as_str()),
                "approval {id} was approved before the kill, now {now}"
            );
        }
    }
    eprintln!(
        "durability: {} acknowledged requests and {} approvals all present after SIGKILL",
        acked.requests.len(),
        acked.approvals.len()
    );
}

/// Only proxied answers, nothing else that waits for the disk: what makes
/// each record durable is the wait before the answer's last byte (buffered
/// and streamed). Started in `decisions` mode (`.env("ASG_AUDIT_SYNC",
/// "decisions")` in `start`) the same test loses a few records per run, as
/// it should: forwarded answers do not wait there.
#[test]
fn proxied_answers_survive_sigkill_with_their_audit_records() {
    let upstream = MockUpstream::start_with_args(&["--record-limit", "0"]);
    let mut gw = start(&upstream);
    let proxy = gw.proxy_url();
    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(Mutex::new(Acked::default()));
    let workers: Vec<_> = [0, 0, 1, 2, 2]
        .into_iter()
        .map(|t| proxy_client(t, &proxy, &stop, &acked))
        .collect();
    std::thread::sleep(Duration::from_millis(2000));
    gw.kill_hard();
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.join().unwrap();
    }
    let acked = std::mem::take(&mut acked.lock().unwrap().requests);
    assert!(acked.len() >= 50, "too little load: {}", acked.len());
    gw.restart();
    assert_all_stored(&acked, &stored_request_ids(&gw));
    eprintln!(
        "durability: {} acknowledged proxied requests present after SIGKILL",
        acked.len()
    );
}

#[test]
fn a_data_folder_whose_state_cannot_be_read_is_refused() {
    let upstream = MockUpstream::start();
    let mut gw = start(&upstream);
    let r = http::post_json(
        &format!("{}/inspect/tool-call", gw.admin_url()),
        &[],
        &json!({"tool_name": "read_file", "tool_target": "/a", "session_id": "s"}),
    );
    assert_eq!(r.status, 200);
    gw.kill_hard();
    let db = gw.data_dir().join("asg.sled").join("db");
    let len = std::fs::metadata(&db).unwrap().len() as usize;
    std::fs::write(&db, vec![0xa5; len]).unwrap();
    let out = std::process::Command::new(asg_e2e::util::asg_bin())
        .arg("run")
        .env("ASG_DATA_DIR", gw.data_dir())
        .env("ASG_LISTEN", "127.0.0.1:0")
        .env("ASG_ADMIN_LISTEN", "127.0.0.1:0")
        .env("ASG_UPSTREAM", upstream.base_url())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.starts_with("error: cannot open data folder"), "{err}");
    assert!(err.contains("none of it could be read"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
}

#[test]
fn audit_export_writes_json_lines_and_explains_a_running_gateway() {
    let upstream = MockUpstream::start();
    let mut gw = start(&upstream);
    let mut ids = Vec::new();
    for i in 0..5 {
        let r = http::post_json(
            &format!("{}/inspect/tool-call", gw.admin_url()),
            &[],
            &json!({"tool_name": "read_file", "tool_target": format!("/srv/{i}"), "session_id": format!("exp-{}", i % 2)}),
        );
        ids.push(r.json()["request_id"].as_str().unwrap().to_string());
    }
    let data_dir = gw.data_dir().to_path_buf();
    let export = |args: &[&str]| {
        std::process::Command::new(asg_e2e::util::asg_bin())
            .args(["audit", "export", "--data-dir"])
            .arg(&data_dir)
            .args(args)
            .output()
            .unwrap()
    };
    // While the gateway runs, sled's lock says so, and where to go instead.
    let locked = export(&[]);
    assert_eq!(locked.status.code(), Some(2));
    let err = String::from_utf8_lossy(&locked.stderr);
    assert!(
        err.contains("locked by another process") && err.contains("/operator/api/audit/export"),
        "{err}"
    );

    gw.kill_hard();
    let all = export(&[]);
    assert!(
        all.status.success(),
        "{}",
        String::from_utf8_lossy(&all.stderr)
    );
    let lines: Vec<Value> = String::from_utf8(all.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let exported: Vec<&str> = lines
        .iter()
        .map(|v| v["request_id"].as_str().unwrap())
        .collect();
    assert_eq!(exported, ids.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(lines.iter().all(|v| v["policy_version"]
        .as_str()
        .unwrap()
        .starts_with("durability-e2e@")));

    let one = export(&["--session", "exp-1"]);
    assert_eq!(String::from_utf8(one.stdout).unwrap().lines().count(), 2);
    let future = export(&["--since", "2999-01-01T00:00:00Z"]);
    assert!(future.status.success());
    assert!(future.stdout.is_empty());
    let bad = export(&["--since", "yesterday"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("RFC 3339"));
}
