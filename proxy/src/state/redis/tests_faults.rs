//! Faults against a real `redis-server`: killed and restarted mid-test,
//! paused (a slow Redis), pub/sub lost, replicas missing. In each case
//! approvals and permits fail closed, risk and rate limits degrade to the
//! gateway's local view, everything recovers without a restart of the
//! store, and nothing that was acknowledged is lost.

use super::testkit::{require, RedisServer};
use super::tests::{connect, opts, raise, step};
use super::RedisOptions;
use crate::decision::approvals::{ApprovalStatus, ConsumeError};
use crate::decision::session::{Record, SessionConfig};
use crate::state::seam::conformance::approve;
use crate::state::seam::{
    ApprovalWatch, ControlStore, GateResult, LoadQuery, RateKey, Resolve, StageRecord, StateStore,
    StoreError, WakeMode,
};
use std::sync::Arc;
use std::time::{Duration, Instant};

async fn until(what: &str, secs: u64, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn risk(session: &str, score: f64, now: i64) -> StageRecord {
    StageRecord {
        session_id: session.into(),
        owner_id: "agent".into(),
        risk_agent: "agent".into(),
        record: Record {
            score,
            decision: "allow".into(),
            new_request: true,
            ..Record::default()
        },
        memory: vec![],
        now_ms: now,
        tail: None,
        session: Arc::new(SessionConfig {
            half_life_secs: 0,
            ..SessionConfig::default()
        }),
    }
}

fn resolve(id: &str) -> Resolve {
    Resolve {
        id: id.into(),
        approve: Some(60),
        resolver: "alice".into(),
        credential: "operator".into(),
        note: String::new(),
        now_ms: crate::state::now_ms(),
    }
}

const Q: LoadQuery<'static> = LoadQuery {
    session_id: "s-k",
    risk_agent: "agent",
    agent_scope: true,
    rate: Some(RateKey {
        key: "agent:k",
        per_minute: 600,
        burst: 100,
    }),
};

/// `appendfsync always` (fsync before every reply) and `everysec` (the
/// AOF is written before the reply, fsynced within a second): both keep
/// every acknowledged write across a SIGKILL of the server, which only
/// loses what is not in the kernel yet. (Power loss is what separates them.)
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn killed_and_restarted_fails_closed_recovers_and_loses_nothing_acknowledged() {
    for fsync in ["always", "everysec"] {
        killed_and_restarted(fsync).await;
    }
}

async fn killed_and_restarted(fsync: &str) {
    let Some(bin) = require() else { return };
    let mut server = RedisServer::start(&bin, &["--appendfsync", fsync]);
    let url = format!(
        "{}?prefix=kill&poll_ms=100&timeout_ms=300&connect_ms=300",
        server.url()
    );
    let s = connect(
        &url,
        RedisOptions {
            backlog_cap: 64,
            ..opts()
        },
    )
    .await;
    // Acknowledged before the crash: an approval (unspent), a spend, risk.
    let id1 = raise(&s, "fp-k1").await;
    let p1 = approve(&s, &id1, crate::state::now_ms(), 600).await;
    let id2 = raise(&s, "fp-k2").await;
    let p2 = approve(&s, &id2, crate::state::now_ms(), 600).await;
    let spent = s
        .gate(vec![step("fp-k2", "r-spend", Some(&p2))])
        .await
        .unwrap();
    assert!(matches!(spent[0], GateResult::Released { .. }), "{spent:?}");
    let id3 = raise(&s, "fp-k3").await;
    let mut held = s.watch(&id3);
    let t0 = crate::state::now_ms();
    s.record(risk("s-k", 0.5, t0));
    s.flush().await;
    assert!(!s.load(&Q).await.unwrap().degraded);
    let id4 = raise(&s, "fp-k4").await;
    let p4 = approve(&s, &id4, crate::state::now_ms(), 600).await;
    // Spent, acknowledged, and the server dies right after answering.
    let last = s
        .gate(vec![step("fp-k4", "r-last", Some(&p4))])
        .await
        .unwrap();
    assert!(matches!(last[0], GateResult::Released { .. }), "{last:?}");

    server.kill();
    until("the store to notice", 10, || !s.health().connected).await;
    let h = s.health();
    assert!(h.degraded && h.detail.is_some(), "{h:?}");
    // Approvals and permits fail closed.
    let r = s
        .gate(vec![step("fp-k1", "r-down", Some(&p1))])
        .await
        .unwrap();
    assert_eq!(r, vec![GateResult::Unavailable]);
    assert!(matches!(
        s.resolve(resolve(&id3)).await,
        Err(StoreError::Unavailable(_))
    ));
    let waited = tokio::time::timeout(Duration::from_millis(500), held.changed()).await;
    assert!(
        waited.is_err(),
        "a held call is not released while Redis is down"
    );
    // Risk and rate limits degrade to the local view, with a metric.
    let v = s.load(&Q).await.unwrap();
    assert!(v.degraded && !v.unavailable);
    assert!((v.session.as_ref().unwrap().risk.cumulative - 0.5).abs() < 1e-9);
    assert!(v.rate.unwrap().degraded && v.rate.unwrap().allowed);
    for i in 0..70 {
        s.record(risk(&format!("filler-{i}"), 0.1, t0 + 1));
    }
    s.record(risk("s-k", 0.25, t0 + 2));
    let v = s.load(&Q).await.unwrap();
    assert!(
        (v.session.unwrap().risk.cumulative - 0.75).abs() < 1e-9,
        "local view keeps counting"
    );
    let m = s.metrics();
    assert!(m.unavailable.with_label_values(&["gate"]).get() >= 1);
    assert!(m.degraded.with_label_values(&["load"]).get() >= 2);
    assert!(m.degraded.with_label_values(&["rate"]).get() >= 1);
    assert_eq!(m.records_dropped.get(), 7, "backlog capped at 64");
    assert_eq!(m.connected.get(), 0);

    server.restart();
    until("the reconnect", 15, || s.health().connected).await;
    s.flush().await;
    // A flush right after the reconnect can meet a connection that is not
    // ready yet; the records then stay queued and the background flusher
    // replays them: wait for the queue to be empty, not for one attempt.
    until("the replay of the outage's records", 15, || {
        s.metrics().backlog.get() == 0
    })
    .await;
    let v = s.load(&Q).await.unwrap();
    assert!(!v.degraded);
    assert!(
        (v.session.unwrap().risk.cumulative - 0.75).abs() < 1e-9,
        "the record made during the outage was replayed"
    );
    let r = s
        .gate(vec![step("fp-k1", "r-up", Some(&p1))])
        .await
        .unwrap();
    assert!(
        matches!(r[0], GateResult::Released { .. }),
        "acknowledged approval kept: {r:?}"
    );
    for (fp, p) in [("fp-k2", &p2), ("fp-k4", &p4)] {
        let r = s.gate(vec![step(fp, "r-replay", Some(p))]).await.unwrap();
        assert!(
            matches!(
                r[0],
                GateResult::Waiting {
                    rejected: Some(ConsumeError::AlreadyUsed),
                    ..
                }
            ),
            "{fsync}: an acknowledged spend is never undone: {r:?}"
        );
    }
    // The held call wakes once an operator decides after the restart.
    let other = connect(&url, opts()).await;
    approve(&other, &id3, crate::state::now_ms(), 60).await;
    let woke = tokio::time::timeout(Duration::from_secs(10), held.changed()).await;
    assert_eq!(woke, Ok(Some(ApprovalStatus::Approved)));
    assert!(s.metrics().reconnects.get() >= 1);
    assert_eq!(s.metrics().connected.get(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_redis_is_refused_at_the_deadline_then_recovers() {
    let Some(bin) = require() else { return };
    let server = RedisServer::start(&bin, &[]);
    let url = format!("{}?prefix=slow&timeout_ms=200&connect_ms=300", server.url());
    let s = connect(&url, opts()).await;
    let id = raise(&s, "fp-slow").await;
    server.pause();
    // Bounded by the operation timeout, not by Redis (the guard only
    // catches a hang; it asserts no speed).
    let r = tokio::time::timeout(
        Duration::from_secs(20),
        s.gate(vec![step("fp-slow", "r", None)]),
    )
    .await
    .expect("the gate answers while Redis hangs");
    assert_eq!(r.unwrap(), vec![GateResult::Unavailable]);
    let v = tokio::time::timeout(Duration::from_secs(20), s.load(&Q))
        .await
        .unwrap()
        .unwrap();
    assert!(v.degraded);
    server.resume();
    until("the reconnect", 15, || s.health().connected).await;
    let r = s.gate(vec![step("fp-slow", "r2", None)]).await.unwrap();
    match &r[0] {
        GateResult::Waiting { opened, .. } => assert_eq!(opened.approval().approval_id, id),
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn held_calls_poll_while_pubsub_is_lost_and_pubsub_comes_back() {
    let Some(bin) = require() else { return };
    let server = RedisServer::start(&bin, &[]);
    let url = format!("{}?prefix=ps&poll_ms=100", server.url());
    // safety_poll is 60 s: a wake-up within seconds came by pub/sub or by
    // the 100 ms polling of a gateway that knows pub/sub is down.
    let s = Arc::new(connect(&url, opts()).await);
    let operator = Arc::new(connect(&url, opts()).await);
    until("pub/sub", 10, || s.health().wake == WakeMode::PubSub).await;
    // Redis stops letting this user use any channel: subscribers are
    // disconnected and cannot come back, and every PUBLISH fails.
    server
        .query(&["ACL", "SETUSER", "default", "resetchannels"])
        .unwrap();
    let _ = server.query(&["CLIENT", "KILL", "TYPE", "pubsub"]);
    until("polling mode", 10, || s.health().wake == WakeMode::Polling).await;
    assert_eq!(s.metrics().pubsub.get(), 0);
    for (fp, mode) in [
        ("fp-poll", WakeMode::Polling),
        ("fp-pubsub", WakeMode::PubSub),
    ] {
        if mode == WakeMode::PubSub {
            server
                .query(&["ACL", "SETUSER", "default", "allchannels"])
                .unwrap();
            until("pub/sub back", 15, || s.health().wake == WakeMode::PubSub).await;
        }
        let id = raise(&s, fp).await;
        let mut held = s.watch(&id);
        let op = operator.clone();
        let decide = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            approve(&*op, &id, crate::state::now_ms(), 60).await
        });
        let woke = tokio::time::timeout(Duration::from_secs(10), held.changed()).await;
        assert_eq!(woke, Ok(Some(ApprovalStatus::Approved)), "{mode:?}");
        decide.await.unwrap();
        assert_eq!(s.health().wake, mode);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn required_replicas_missing_means_nothing_is_acknowledged() {
    let Some(bin) = require() else { return };
    let server = RedisServer::start(&bin, &[]);
    let plain = connect(&format!("{}?prefix=w", server.url()), opts()).await;
    let id = raise(&plain, "fp-w").await;
    let url = format!(
        "{}?prefix=w&wait_replicas=1&wait_timeout_ms=50",
        server.url()
    );
    let s = connect(&url, opts()).await;
    assert!(
        s.health()
            .durability
            .starts_with("aof_always+wait_replicas=1"),
        "{:?}",
        s.health()
    );
    let r = s.gate(vec![step("fp-w2", "r", None)]).await.unwrap();
    assert_eq!(r, vec![GateResult::Unavailable]);
    assert!(matches!(
        s.resolve(resolve(&id)).await,
        Err(StoreError::NotDurable(_))
    ));
    assert!(s.metrics().unavailable.with_label_values(&["gate"]).get() >= 1);
    assert!(
        s.metrics()
            .unavailable
            .with_label_values(&["resolve"])
            .get()
            >= 1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expiry_sweep_wakes_held_calls_and_unstages() {
    let Some(bin) = require() else { return };
    let server = RedisServer::start(&bin, &[]);
    let s = connect(&format!("{}?prefix=exp&poll_ms=100", server.url()), opts()).await;
    let id = raise(&s, "fp-exp").await;
    let mut held = s.watch(&id);
    // Nothing is due yet; 16 minutes later the pending approval is.
    assert_eq!(s.maintain(crate::state::now_ms()).await.unwrap(), 0);
    assert_eq!(
        s.maintain(crate::state::now_ms() + 960_000).await.unwrap(),
        1
    );
    let woke = tokio::time::timeout(Duration::from_secs(10), held.changed()).await;
    assert_eq!(woke, Ok(Some(ApprovalStatus::Expired)));
    assert_eq!(
        s.maintain(crate::state::now_ms() + 960_000).await.unwrap(),
        0,
        "once"
    );
}
