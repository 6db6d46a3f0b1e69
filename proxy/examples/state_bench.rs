//! What shared state costs per request stage: the same simulated stages on
//! today's sled store (through the seam adapter) and on Redis over loopback
//! (a `redis-server` this program starts: append-only file, fsync
//! `everysec`, the recommended setting; `--fsync always` to compare), side
//! by side in one run.
//!
//!   cargo run --release -p asg --example state_bench -- [--stages 2000] [--concurrency 8] [--fsync everysec|always]
//!
//! Prints per operation p50/p99 (µs) for each backend and their ratio, the
//! Redis commands per stage (from INFO commandstats), and the approval
//! round trip across two gateways (operator resolves on B, the held call on
//! A wakes). Stages: "plain" = load (session + agent) then record (queued);
//! "rate" = the same with a shared GCRA check; "gate" = an approval step
//! spending a permit (acknowledged: durable before it returns).

use asg::decision::approvals::Release;
use asg::decision::session::{Outcome, Record, SessionConfig};
use asg::state::redis::testkit::{require, RedisServer};
use asg::state::redis::url::StateUrl;
use asg::state::redis::{RedisOptions, RedisStore};
use asg::state::seam::conformance::{approve, template};
use asg::state::seam::sled::SledState;
use asg::state::seam::{
    ApprovalWatch, ControlStore, GateResult, GateStep, LoadQuery, RateKey, StageRecord, StateStore,
};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

struct Args {
    stages: usize,
    concurrency: usize,
    fsync: String,
}

fn args() -> Args {
    let mut a = Args {
        stages: 2000,
        concurrency: 8,
        fsync: "everysec".into(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let v = it.next().unwrap_or_default();
        match k.as_str() {
            "--stages" => a.stages = v.parse().expect("--stages N"),
            "--concurrency" => a.concurrency = v.parse().expect("--concurrency N"),
            "--fsync" => a.fsync = v,
            other => panic!("unknown argument {other}"),
        }
    }
    a
}

type Samples = BTreeMap<&'static str, Vec<u64>>;

fn pct(v: &mut [u64], p: f64) -> f64 {
    v.sort_unstable();
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v[i] as f64 / 1000.0
}

fn stage_record(session: &str, cfg: &Arc<SessionConfig>) -> StageRecord {
    StageRecord {
        session_id: session.into(),
        owner_id: "agent".into(),
        risk_agent: "agent".into(),
        record: Record {
            steps: vec![(
                "read_file".into(),
                vec!["file_read".into()],
                Outcome::Executed,
            )],
            score: 0.05,
            decision: "allow".into(),
            new_request: true,
            ..Record::default()
        },
        memory: vec![],
        now_ms: asg::state::now_ms(),
        tail: None,
        session: cfg.clone(),
    }
}

/// `stages` load stages (with a rate check or not) over `concurrency`
/// tasks, each followed by its record; per-op samples (ns).
async fn loads<S: ControlStore>(s: Arc<S>, a: &Args, tag: &str, with_rate: bool) -> Samples {
    let cfg = Arc::new(SessionConfig::default());
    let per_task = a.stages / a.concurrency;
    let mut tasks = Vec::new();
    for t in 0..a.concurrency {
        let (s, cfg) = (s.clone(), cfg.clone());
        let tag = tag.to_string();
        tasks.push(tokio::spawn(async move {
            let mut out: Samples = BTreeMap::new();
            let session = format!("{tag}-s{t}");
            let rate_key = format!("{tag}-agent{t}");
            for _ in 0..per_task {
                let rate = with_rate.then_some(RateKey {
                    key: &rate_key,
                    per_minute: 1_000_000,
                    burst: 1000,
                });
                let q = LoadQuery {
                    session_id: &session,
                    risk_agent: "agent",
                    agent_scope: true,
                    rate,
                };
                let t0 = Instant::now();
                let v = s.load(&q).await.expect("load");
                let name = if with_rate { "load + rate" } else { "load" };
                out.entry(name)
                    .or_default()
                    .push(t0.elapsed().as_nanos() as u64);
                assert!(!v.degraded);
                let t0 = Instant::now();
                s.record(stage_record(&session, &cfg));
                out.entry("record (queued)")
                    .or_default()
                    .push(t0.elapsed().as_nanos() as u64);
            }
            out
        }));
    }
    let mut all: Samples = BTreeMap::new();
    for t in tasks {
        for (k, v) in t.await.unwrap() {
            all.entry(k).or_default().extend(v);
        }
    }
    s.flush().await;
    all
}

/// `n` approvals raised and approved, then each permit spent (timed).
async fn gates<S: ControlStore>(s: Arc<S>, n: usize, tag: &str) -> Samples {
    let mut permits = Vec::new();
    for i in 0..n {
        let fp = format!("{tag}-fp{i}");
        let t = template(&fp, "s", "a", "r", asg::state::now_ms());
        let r = s.gate(vec![step(t, None)]).await.unwrap();
        let GateResult::Waiting { opened, .. } = &r[0] else {
            panic!("{r:?}")
        };
        let id = opened.approval().approval_id.clone();
        permits.push((fp, approve(&*s, &id, asg::state::now_ms(), 600).await));
    }
    let mut all: Samples = BTreeMap::new();
    for (fp, p) in permits {
        let t = template(&fp, "s", "a", "r2", asg::state::now_ms());
        let t0 = Instant::now();
        let r = s.gate(vec![step(t, Some(p))]).await.unwrap();
        all.entry("gate (permit spend)")
            .or_default()
            .push(t0.elapsed().as_nanos() as u64);
        assert!(matches!(r[0], GateResult::Released { .. }), "{r:?}");
    }
    all
}

fn step(t: asg::decision::approvals::Approval, permit: Option<String>) -> GateStep {
    GateStep {
        template: t,
        release: Release::Permit,
        permit,
    }
}

/// Calls and server time (µs) per command.
fn commandstats(server: &RedisServer) -> BTreeMap<String, (u64, u64)> {
    let info = server.query(&["INFO", "commandstats"]).unwrap_or_default();
    info.lines()
        .filter_map(|l| {
            let (name, rest) = l.strip_prefix("cmdstat_")?.split_once(':')?;
            let field = |k: &str| {
                rest.split(',')
                    .find_map(|f| f.strip_prefix(k)?.parse().ok())
            };
            Some((name.to_string(), (field("calls=")?, field("usec=")?)))
        })
        .collect()
}

async fn round_trips(url: &str, n: usize) -> Vec<u64> {
    let o = RedisOptions {
        safety_poll: Duration::from_secs(60),
        ..RedisOptions::default()
    };
    let start = |gw: &str| {
        let u = StateUrl::parse(url, None, None).unwrap();
        RedisStore::start(
            u,
            RedisOptions {
                gateway: gw.into(),
                ..o.clone()
            },
        )
    };
    let (a, b) = (start("gw-a").await.unwrap(), start("gw-b").await.unwrap());
    let mut out = Vec::new();
    for i in 0..n {
        let t = template(&format!("rt{i}"), "s", "a", "r", asg::state::now_ms());
        let r = a.gate(vec![step(t, None)]).await.unwrap();
        let GateResult::Waiting { opened, .. } = &r[0] else {
            panic!("{r:?}")
        };
        let id = opened.approval().approval_id.clone();
        let mut w = a.watch(&id);
        let t0 = Instant::now();
        let (woke, _) = tokio::join!(w.changed(), approve(&b, &id, asg::state::now_ms(), 60));
        out.push(t0.elapsed().as_nanos() as u64);
        assert!(woke.is_some());
    }
    out
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let a = args();
    let Some(bin) = require() else { return };
    let server = RedisServer::start(&bin, &["--appendfsync", &a.fsync]);
    let url = format!("{}?prefix=bench", server.url());
    let redis = Arc::new(
        RedisStore::start(
            StateUrl::parse(&url, None, None).unwrap(),
            RedisOptions::default(),
        )
        .await
        .unwrap(),
    );
    let dir = std::env::temp_dir().join(format!("asg-state-bench-{}", std::process::id()));
    let sled = Arc::new(SledState::new(
        Arc::new(asg::state::Store::open(&dir).unwrap()),
        "bench",
        1024,
    ));
    // Warm both (connections, scripts, caches), then measure.
    let warm = Args {
        stages: 200,
        concurrency: a.concurrency,
        fsync: a.fsync.clone(),
    };
    loads(sled.clone(), &warm, "warm", true).await;
    loads(redis.clone(), &warm, "warm", true).await;
    let n_gates = (a.stages / 10).max(20);
    let mut s = loads(sled.clone(), &a, "m", false).await;
    s.extend(loads(sled.clone(), &a, "m", true).await);
    s.extend(gates(sled.clone(), n_gates, "m").await);
    let mut cs = vec![commandstats(&server)];
    let mut r = loads(redis.clone(), &a, "m", false).await;
    cs.push(commandstats(&server));
    r.extend(loads(redis.clone(), &a, "m", true).await);
    cs.push(commandstats(&server));
    r.extend(gates(redis.clone(), n_gates, "m").await);
    cs.push(commandstats(&server));
    println!(
        "state_bench: {} stages per kind, {} concurrent, redis appendfsync {} on loopback, sled in {}",
        a.stages,
        a.concurrency,
        a.fsync,
        dir.display()
    );
    println!(
        "{:<20} {:>10} {:>10} {:>11} {:>11} {:>7} {:>7}",
        "operation", "sled p50", "sled p99", "redis p50", "redis p99", "p50 ×", "p99 ×"
    );
    for (op, sv) in s.iter_mut() {
        let rv = r.get_mut(op).unwrap();
        let (s50, s99, r50, r99) = (pct(sv, 0.5), pct(sv, 0.99), pct(rv, 0.5), pct(rv, 0.99));
        println!(
            "{op:<20} {s50:>8.1}µs {s99:>8.1}µs {r50:>9.1}µs {r99:>9.1}µs {:>7.1} {:>7.1}",
            r50 / s50.max(0.001),
            r99 / s99.max(0.001)
        );
    }
    let stages = (a.stages / a.concurrency * a.concurrency) as f64;
    let phases = [
        ("load + record", stages),
        ("load + rate + record", stages),
        ("approval (open, resolve, spend)", n_gates as f64),
    ];
    println!("\nRedis commands per stage (INFO commandstats; round trips: load 1, record 0 on the request path):");
    for (i, (name, n)) in phases.iter().enumerate() {
        let mut parts = Vec::new();
        for (cmd, (calls, usec)) in &cs[i + 1] {
            let (c0, u0) = cs[i].get(cmd).copied().unwrap_or((0, 0));
            if calls > &c0 && cmd != "info" {
                parts.push(format!(
                    "{cmd} {:.2} ({:.0}µs)",
                    (calls - c0) as f64 / n,
                    (usec - u0) as f64 / (calls - c0) as f64
                ));
            }
        }
        println!("  {name:<32} {}", parts.join(", "));
    }
    let mut rt = round_trips(&url, 50).await;
    println!(
        "\napproval round trip across gateways (resolve on B → held call on A wakes, pub/sub): p50 {:.2} ms, p99 {:.2} ms (n=50)",
        pct(&mut rt, 0.5) / 1000.0,
        pct(&mut rt, 0.99) / 1000.0
    );
    drop(sled);
    std::fs::remove_dir_all(dir).ok();
}
