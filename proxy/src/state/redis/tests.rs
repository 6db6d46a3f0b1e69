//! The Redis backend against a real `redis-server` (testkit): the seam's
//! conformance suite, two gateways on one Redis, a permit raced by two
//! processes, TLS with a private CA, sentinel, prefixes, passwords.
//! Fault injection (kill, restart, pause, lost pub/sub) is in
//! `tests_faults.rs`.

use super::testkit::{require, RedisServer};
use super::url::StateUrl;
use super::{RedisOptions, RedisStore};
use crate::decision::approvals::{ApprovalStatus, Release};
use crate::decision::session::{self, Outcome, Record, SessionConfig};
use crate::state::approvals::Opened;
use crate::state::seam::conformance::{self, approve, template};
use crate::state::seam::{
    ApprovalWatch, ControlStore, GateResult, GateStep, LoadQuery, RateKey, StageRecord, StateStore,
    WakeMode,
};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub(super) fn opts() -> RedisOptions {
    RedisOptions {
        gateway: "gw-test".into(),
        safety_poll: Duration::from_secs(60),
        maintain_every: Duration::from_secs(3600),
        ..RedisOptions::default()
    }
}

pub(super) async fn connect(url: &str, o: RedisOptions) -> RedisStore {
    let u = StateUrl::parse(url, None, None).expect("url");
    RedisStore::start(u, o).await.expect("store")
}

pub(super) fn step(fp: &str, rid: &str, permit: Option<&str>) -> GateStep {
    GateStep {
        template: template(fp, "s1", "a1", rid, crate::state::now_ms()),
        release: Release::Permit,
        permit: permit.map(str::to_string),
    }
}

pub(super) async fn raise(s: &RedisStore, fp: &str) -> String {
    match s.gate(vec![step(fp, "r0", None)]).await.unwrap().remove(0) {
        GateResult::Waiting {
            opened: Opened::Created(a),
            ..
        } => a.approval_id,
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_passes_the_conformance_suite() {
    let Some(bin) = require() else { return };
    let server = RedisServer::start(&bin, &[]);
    let mut stores = Vec::new();
    for i in 0..20 {
        let url = format!("{}?prefix=conf{i}&poll_ms=100&tail_max=100", server.url());
        stores.push(connect(&url, opts()).await);
    }
    // A stream node holds 100 entries: "MAXLEN ~ 100" keeps 100 to 199.
    conformance::run_all(|| stores.pop().expect("enough stores"), 100, 100).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_are_prefixed_versioned_and_fleets_are_isolated() {
    let Some(bin) = require() else { return };
    let server = RedisServer::start(&bin, &[]);
    let a = connect(&format!("{}?prefix=fleet-a", server.url()), opts()).await;
    let b = connect(&format!("{}?prefix=fleet-b", server.url()), opts()).await;
    let id = raise(&a, "fp-iso").await;
    assert!(a.approval(&id, 0).await.unwrap().is_some());
    assert!(
        b.approval(&id, 0).await.unwrap().is_none(),
        "another prefix is another fleet"
    );
    let cfg = Arc::new(SessionConfig::default());
    a.record(StageRecord {
        session_id: "s".into(),
        owner_id: "o".into(),
        risk_agent: "o".into(),
        record: Record::default(),
        memory: vec![],
        now_ms: crate::state::now_ms(),
        tail: None,
        session: cfg,
    });
    a.flush().await;
    let keys = server.query(&["KEYS", "*"]).unwrap();
    for k in [
        "fleet-a:v1:ap:",
        "fleet-a:v1:slot:fp-iso",
        "fleet-a:v1:s:s",
        "fleet-a:v1:a:o",
    ] {
        assert!(keys.contains(k), "{k} in {keys}");
    }
    assert!(!keys.contains("fleet-b"), "{keys}");
    let ttl: i64 = server
        .query(&["PTTL", "fleet-a:v1:s:s"])
        .unwrap()
        .parse()
        .unwrap();
    assert!(ttl > 0, "sessions expire when idle");
}

/// Two gateways (two stores) on one Redis: risk built through A escalates
/// the same session on B, a held call on A wakes when B decides, and a
/// rate limit is shared.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_gateways_share_risk_wakeups_and_rate_limits() {
    let Some(bin) = require() else { return };
    let server = RedisServer::start(&bin, &[]);
    let url = format!("{}?prefix=pair&poll_ms=100", server.url());
    let a = Arc::new(
        connect(
            &url,
            RedisOptions {
                gateway: "gw-a".into(),
                ..opts()
            },
        )
        .await,
    );
    let b = Arc::new(
        connect(
            &url,
            RedisOptions {
                gateway: "gw-b".into(),
                ..opts()
            },
        )
        .await,
    );
    let cfg = Arc::new(SessionConfig {
        half_life_secs: 0,
        ..SessionConfig::default()
    });
    let now = crate::state::now_ms();
    for i in 0..2 {
        a.record(StageRecord {
            session_id: "shared".into(),
            owner_id: "agent".into(),
            risk_agent: "agent".into(),
            record: Record {
                steps: vec![("bash".into(), vec!["shell".into()], Outcome::Executed)],
                score: 0.7,
                decision: "allow".into(),
                new_request: true,
                ..Record::default()
            },
            memory: vec![],
            now_ms: now + i,
            tail: None,
            session: cfg.clone(),
        });
    }
    // No flush: B must see A's records once A has sent them (≤ 2 ms
    // linger); A itself would see them at once. Poll B briefly.
    let q = LoadQuery {
        session_id: "shared",
        risk_agent: "agent",
        agent_scope: true,
        rate: None,
    };
    let deadline = Instant::now() + Duration::from_secs(5);
    let view = loop {
        let v = b.load(&q).await.unwrap();
        if v.session.as_ref().is_some_and(|s| s.request_count == 2) || Instant::now() > deadline {
            break v;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    assert!(!view.degraded);
    let scopes = session::Scopes {
        session: view.session.as_deref(),
        agent: view.agent.as_deref(),
        agent_id: "agent",
    };
    let f = session::findings(&cfg, &scopes, &[vec!["shell".into()]], 0.7, now + 10);
    let rules: Vec<&str> = f.iter().map(|f| f.rule_id.as_str()).collect();
    assert!(rules.contains(&"session.cumulative_block"), "{rules:?}");
    assert!(rules.contains(&"session.repeated_action"), "{rules:?}");

    // A held call on A; the operator decides through B.
    let id = raise(&a, "fp-held").await;
    let mut held = a.watch(&id);
    assert_eq!(a.health().wake, WakeMode::PubSub);
    let started = Instant::now();
    let resolver = {
        let (b, id) = (b.clone(), id.clone());
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            approve(&*b, &id, crate::state::now_ms(), 60).await
        })
    };
    let woke = tokio::time::timeout(Duration::from_secs(10), held.changed()).await;
    assert_eq!(woke, Ok(Some(ApprovalStatus::Approved)));
    // The watch re-reads every 60 s without pub/sub: waking this soon
    // means the message arrived.
    assert!(started.elapsed() < Duration::from_secs(30));
    let permit = resolver.await.unwrap();
    // The permit B's operator issued is spent through A, once.
    let r = a
        .gate(vec![step("fp-held", "r1", Some(&permit))])
        .await
        .unwrap();
    assert!(
        matches!(
            r[0],
            GateResult::Released {
                by_permit: true,
                ..
            }
        ),
        "{r:?}"
    );
    let r = b
        .gate(vec![step("fp-held", "r2", Some(&permit))])
        .await
        .unwrap();
    assert!(matches!(r[0], GateResult::Waiting { .. }), "{r:?}");

    // One limit for both: burst 3 across A and B together.
    let rq = LoadQuery {
        rate: Some(RateKey {
            key: "agent:shared",
            per_minute: 6,
            burst: 3,
        }),
        ..LoadQuery::default()
    };
    let mut allowed = 0;
    for g in [&a, &b, &a, &b, &a, &b] {
        allowed += usize::from(g.load(&rq).await.unwrap().rate.unwrap().allowed);
    }
    assert_eq!(allowed, 3, "a shared limit, not one per gateway");
}

/// The child half of the two-process race: only runs when the parent test
/// sets `ASG_SPEND_CHILD` (url, prefix, permit, start time).
#[test]
fn spend_child() {
    let Ok(spec) = std::env::var("ASG_SPEND_CHILD") else {
        return;
    };
    let parts: Vec<&str> = spec.split('|').collect();
    let (url, permit, start_at) = (parts[0], parts[1], parts[2].parse::<i64>().unwrap());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .unwrap();
    let wins = rt.block_on(async {
        let s = Arc::new(connect(url, opts()).await);
        let wait = start_at - crate::state::now_ms();
        if wait > 0 {
            tokio::time::sleep(Duration::from_millis(wait as u64)).await;
        }
        let tasks: Vec<_> = (0..16)
            .map(|i| {
                let (s, p) = (s.clone(), permit.to_string());
                tokio::spawn(async move {
                    let r = s.gate(vec![step(
                        "fp-race",
                        &format!("p{}-{i}", std::process::id()),
                        Some(&p),
                    )]);
                    matches!(r.await.unwrap()[0], GateResult::Released { .. }) as usize
                })
            })
            .collect();
        let mut n = 0;
        for t in tasks {
            n += t.await.unwrap();
        }
        n
    });
    println!("WINS={wins}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn permit_spent_once_across_two_processes() {
    let Some(bin) = require() else { return };
    let server = RedisServer::start(&bin, &[]);
    let url = format!("{}?prefix=race", server.url());
    let s = connect(&url, opts()).await;
    let id = raise(&s, "fp-race").await;
    let permit = approve(&s, &id, crate::state::now_ms(), 300).await;
    let start_at = crate::state::now_ms() + 1500;
    let exe = std::env::current_exe().unwrap();
    let children: Vec<_> = (0..2)
        .map(|_| {
            std::process::Command::new(&exe)
                .args([
                    "--exact",
                    "state::redis::tests::spend_child",
                    "--nocapture",
                    "--test-threads=1",
                ])
                .env("ASG_SPEND_CHILD", format!("{url}|{permit}|{start_at}"))
                .stdout(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut wins = 0;
    for c in children {
        let out = c.wait_with_output().unwrap();
        assert!(out.status.success(), "child failed");
        let text = String::from_utf8_lossy(&out.stdout);
        let n: usize = text
            .lines()
            .find_map(|l| l.split("WINS=").nth(1))
            .unwrap_or_else(|| panic!("child printed no count: {text}"))
            .parse()
            .unwrap();
        wins += n;
    }
    assert_eq!(wins, 1, "32 concurrent spends in two processes, one winner");
    let a = s
        .approval(&id, crate::state::now_ms())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(a.status, ApprovalStatus::Used);
    assert!(a.used_by.unwrap().starts_with('p'));
}

fn tls_files(dir: &std::path::Path) -> (String, String, String) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca, ca_key);
    let key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["localhost".to_string()])
        .unwrap()
        .signed_by(&key, &issuer)
        .unwrap();
    let p = |n: &str, body: String| {
        let path = dir.join(n);
        std::fs::write(&path, body).unwrap();
        path.display().to_string()
    };
    (
        p("ca.pem", ca_cert.pem()),
        p("server.pem", leaf.pem()),
        p("server.key", key.serialize_pem()),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_with_a_private_ca() {
    let Some(bin) = require() else { return };
    let dir = std::env::temp_dir().join(format!("asg-redis-tls-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let (ca, cert, key) = tls_files(&dir);
    let server = RedisServer::start(
        &bin,
        &[
            "--tls-port",
            "--tls-cert-file",
            &cert,
            "--tls-key-file",
            &key,
            "--tls-ca-cert-file",
            &ca,
            "--tls-auth-clients",
            "no",
        ],
    );
    let base = format!("rediss://localhost:{}", server.port);
    let s = connect(&format!("{base}?prefix=tls&ca={ca}"), opts()).await;
    assert!(s.health().connected, "{:?}", s.health());
    let id = raise(&s, "fp-tls").await;
    approve(&s, &id, crate::state::now_ms(), 60).await;
    // Without the CA the server is not trusted: nothing is acknowledged.
    let untrusted = connect(&format!("{base}?prefix=tls&connect_ms=300"), opts()).await;
    let h = untrusted.health();
    assert!(!h.connected && h.degraded, "{h:?}");
    let r = untrusted
        .gate(vec![step("fp-tls", "r", None)])
        .await
        .unwrap();
    assert_eq!(r, vec![GateResult::Unavailable]);
    std::fs::remove_dir_all(dir).ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passwords_come_from_the_environment_and_are_never_shown() {
    let Some(bin) = require() else { return };
    let server = RedisServer::start(&bin, &["--requirepass", "s3cret-pw"]);
    let u = |pw: Option<&str>| {
        StateUrl::parse(
            &format!("redis://127.0.0.1:{}?connect_ms=300", server.port),
            None,
            pw,
        )
        .unwrap()
    };
    let without = RedisStore::start(u(None), opts()).await.unwrap();
    let h = without.health();
    assert!(!h.connected, "{h:?}");
    let with = RedisStore::start(u(Some("s3cret-pw")), opts())
        .await
        .unwrap();
    assert!(with.health().connected, "{:?}", with.health());
    let shown = format!(
        "{} {:?} {:?}",
        with.describe(),
        with.health(),
        without.health()
    );
    assert!(!shown.contains("s3cret"), "{shown}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sentinel_finds_the_primary_and_follows_a_failover() {
    let Some(bin) = require() else { return };
    let mut primary = RedisServer::start(&bin, &[]);
    let port = primary.port.to_string();
    let replica = RedisServer::start(&bin, &["--replicaof", "127.0.0.1", &port]);
    let deadline = Instant::now() + Duration::from_secs(20);
    while !replica
        .query(&["INFO", "replication"])
        .unwrap_or_default()
        .contains("master_link_status:up")
    {
        assert!(
            Instant::now() < deadline,
            "the replica never synced: {}",
            replica.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let sentinel = RedisServer::sentinel(&bin, primary.port);
    let url = format!(
        "redis+sentinel://127.0.0.1:{}/mymaster?prefix=sent&wait_replicas=1&wait_timeout_ms=1000",
        sentinel.port
    );
    let s = connect(&url, opts()).await;
    assert!(s.health().connected, "{:?}", s.health());
    assert!(s.health().durability.contains("wait_replicas=1"));
    // Acknowledged only once the replica has it.
    let id = raise(&s, "fp-fail").await;
    let permit = approve(&s, &id, crate::state::now_ms(), 600).await;
    primary.kill();
    // The sentinel promotes the replica; the stores follow it. One without
    // WAIT spends the permit there: the approval survived the failover.
    // The one that requires a replica now has none and refuses (fail closed).
    let plain = connect(
        &url.replace("&wait_replicas=1&wait_timeout_ms=1000", ""),
        opts(),
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(40);
    let released = loop {
        let r = plain
            .gate(vec![step("fp-fail", "after", Some(&permit))])
            .await
            .unwrap();
        if !matches!(r[0], GateResult::Unavailable) || Instant::now() > deadline {
            break r;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(
        matches!(released[0], GateResult::Released { .. }),
        "the approval acknowledged before the failover works after it: {released:?}\nsentinel: {}",
        sentinel.log()
    );
    assert!(replica.query(&["ROLE"]).unwrap().contains("master"));
    let id2 = raise(&plain, "fp-after").await;
    // Right after the failover the sentinel may briefly not name a primary
    // (Unavailable, also refused); what is asserted is the answer once it does.
    let deadline = Instant::now() + Duration::from_secs(20);
    let refused = loop {
        let r = s
            .resolve(crate::state::seam::Resolve {
                id: id2.clone(),
                approve: Some(60),
                resolver: "alice".into(),
                credential: "operator".into(),
                note: String::new(),
                now_ms: crate::state::now_ms(),
            })
            .await;
        if !matches!(r, Err(crate::state::seam::StoreError::Unavailable(_)))
            || Instant::now() > deadline
        {
            break r;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(
        matches!(refused, Err(crate::state::seam::StoreError::NotDurable(_))),
        "no replica left to confirm: {refused:?}"
    );
}
