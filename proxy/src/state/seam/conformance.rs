//! The behaviour every state backend must have, written against the seam
//! traits only: sled (`sled.rs`) and Redis (`redis/tests.rs`) both run it,
//! so a pipeline test that passes on one backend means the same on the
//! other. Each case takes a fresh, empty store; `run_all` runs them all.
//! Times are real Unix milliseconds plus offsets (Redis key lifetimes are
//! relative to the times passed in, so no case waits for a clock).

use super::{
    ApprovalFilter, ApprovalWatch, ControlStore, GateResult, GateStep, LoadQuery, RateKey, Resolve,
    SessionFilter, StageRecord, StateStore, StateView, TailEntry,
};
use crate::decision::approvals::{
    Approval, ApprovalStatus, ConsumeError, Origin, Release, ResolveError,
};
use crate::decision::session::{self, Outcome, Record, SessionConfig, Staged};
use crate::state::approvals::Opened;
use crate::state::AuditEvent;
use std::sync::Arc;
use std::time::Duration;

/// Every case, each on a fresh store. `tail_cap` is the backend's tail
/// length; `tail_slack` how far above it an approximate trim may keep.
pub async fn run_all<S: ControlStore>(
    mut fresh: impl FnMut() -> S,
    tail_cap: usize,
    tail_slack: usize,
) {
    permit_spent_once(Arc::new(fresh())).await;
    next_call_release(&fresh()).await;
    permit_mode(&fresh()).await;
    denial_and_resolve_once(&fresh()).await;
    permit_mismatch_and_unknown(&fresh()).await;
    expiry(&fresh()).await;
    decay(&fresh()).await;
    history_caps_and_markers(&fresh()).await;
    owner_mismatch(&fresh()).await;
    staged_flood_and_unstage(&fresh()).await;
    concurrent_records(Arc::new(fresh())).await;
    tail_capped(&fresh(), tail_cap, tail_slack).await;
    watch_wakes(Arc::new(fresh())).await;
    sessions_listed(&fresh()).await;
    rate_limited(&fresh()).await;
    listing(&fresh()).await;
}

/// A gate template as the pipeline builds one.
pub fn template(fp: &str, session: &str, agent: &str, request: &str, now: i64) -> Approval {
    Approval {
        approval_id: String::new(),
        status: ApprovalStatus::Pending,
        session_id: session.into(),
        turn_id: String::new(),
        agent_id: agent.into(),
        action_type: "shell".into(),
        action_target: "ls -la".into(),
        fingerprint: fp.into(),
        origin: Origin::Proxy,
        route: "tools".into(),
        dialect: "mcp".into(),
        request_id: request.into(),
        decision: "require_approval".into(),
        score: 0.85,
        reasons: vec!["Shell command execution".into()],
        findings: vec![],
        hold: false,
        created_ms: now,
        expires_ms: now + 900_000,
        resolved_ms: None,
        resolver: String::new(),
        resolver_credential: String::new(),
        note: String::new(),
        permit_sha256: None,
        permit_expires_ms: None,
        used_ms: None,
        used_by: None,
    }
}

fn now() -> i64 {
    crate::state::now_ms()
}

fn step(t: Approval, release: Release, permit: Option<&str>) -> GateStep {
    GateStep {
        template: t,
        release,
        permit: permit.map(str::to_string),
    }
}

async fn gate1<S: StateStore>(s: &S, st: GateStep) -> GateResult {
    let mut out = s.gate(vec![st]).await.expect("gate");
    assert_eq!(out.len(), 1, "one result per step");
    out.remove(0)
}

fn opened(r: &GateResult) -> &Opened {
    match r {
        GateResult::Waiting { opened, .. } => opened,
        other => panic!("expected Waiting, got {other:?}"),
    }
}

/// Approve `id`; returns the permit.
pub async fn approve<S: ControlStore>(s: &S, id: &str, at: i64, ttl: u64) -> String {
    let (a, permit) = s
        .resolve(Resolve {
            id: id.into(),
            approve: Some(ttl),
            resolver: "alice".into(),
            credential: "operator".into(),
            note: String::new(),
            now_ms: at,
        })
        .await
        .expect("resolve")
        .expect("exists")
        .expect("pending");
    assert_eq!(a.status, ApprovalStatus::Approved);
    permit.expect("a permit on approval")
}

async fn deny<S: ControlStore>(
    s: &S,
    id: &str,
    at: i64,
) -> Option<Result<(Approval, Option<String>), ResolveError>> {
    s.resolve(Resolve {
        id: id.into(),
        approve: None,
        resolver: "bob".into(),
        credential: "operator".into(),
        note: "no".into(),
        now_ms: at,
    })
    .await
    .expect("resolve")
}

/// An approval raised for `fp` (fresh), returned as stored.
async fn raise<S: StateStore>(s: &S, fp: &str, at: i64) -> Approval {
    let r = gate1(
        s,
        step(template(fp, "s1", "a1", "r0", at), Release::Permit, None),
    )
    .await;
    match opened(&r) {
        Opened::Created(a) => a.clone(),
        other => panic!("expected a new approval, got {other:?}"),
    }
}

pub async fn permit_spent_once<S: ControlStore>(s: Arc<S>) {
    let t0 = now();
    let a = raise(&*s, "fp-once", t0).await;
    assert_eq!(a.approval_id.len(), 32, "hex id");
    let permit = approve(&*s, &a.approval_id, t0 + 1, 300).await;
    let barrier = Arc::new(tokio::sync::Barrier::new(16));
    let tasks: Vec<_> = (0..16)
        .map(|i| {
            let (s, p, b) = (s.clone(), permit.clone(), barrier.clone());
            tokio::spawn(async move {
                b.wait().await;
                let t = template("fp-once", "s1", "a1", &format!("r{i}"), t0 + 2);
                gate1(&*s, step(t, Release::Permit, Some(&p))).await
            })
        })
        .collect();
    let mut released = 0;
    for t in tasks {
        match t.await.expect("task") {
            GateResult::Released {
                approval,
                by_permit,
            } => {
                assert!(by_permit);
                assert_eq!(approval.status, ApprovalStatus::Used);
                released += 1;
            }
            GateResult::Waiting { rejected, .. } => {
                assert_eq!(rejected, Some(ConsumeError::AlreadyUsed))
            }
            GateResult::Unavailable => panic!("backend unavailable"),
        }
    }
    assert_eq!(released, 1, "a permit is spent exactly once");
    let late = template("fp-once", "s1", "a1", "late", t0 + 3);
    let r = gate1(&*s, step(late, Release::Permit, Some(&permit))).await;
    assert!(
        matches!(
            r,
            GateResult::Waiting {
                rejected: Some(ConsumeError::AlreadyUsed),
                ..
            }
        ),
        "{r:?}"
    );
    let stored = s.approval(&a.approval_id, t0 + 4).await.unwrap().unwrap();
    assert_eq!(stored.status, ApprovalStatus::Used);
    assert!(stored
        .used_by
        .as_deref()
        .is_some_and(|r| r.starts_with('r')));
}

pub async fn next_call_release<S: ControlStore>(s: &S) {
    let t0 = now();
    let t = |rid: &str, at| template("fp-next", "s1", "a1", rid, at);
    let first = gate1(s, step(t("r1", t0), Release::NextCall, None)).await;
    let Opened::Created(a) = opened(&first).clone() else {
        panic!("{first:?}")
    };
    let again = gate1(s, step(t("r2", t0 + 1), Release::NextCall, None)).await;
    assert_eq!(
        opened(&again),
        &Opened::Pending(a.clone()),
        "one per binding"
    );
    approve(s, &a.approval_id, t0 + 2, 60).await;
    let go = gate1(s, step(t("r3", t0 + 3), Release::NextCall, None)).await;
    match go {
        GateResult::Released {
            approval,
            by_permit,
        } => {
            assert!(!by_permit);
            assert_eq!(approval.approval_id, a.approval_id);
            assert_eq!(approval.used_by.as_deref(), Some("r3"));
        }
        other => panic!("the next identical call is released: {other:?}"),
    }
    let after = gate1(s, step(t("r4", t0 + 4), Release::NextCall, None)).await;
    assert!(
        matches!(opened(&after), Opened::Created(b) if b.approval_id != a.approval_id),
        "released once; the call after opens a new approval"
    );
}

pub async fn permit_mode<S: ControlStore>(s: &S) {
    let t0 = now();
    let a = raise(s, "fp-permit", t0).await;
    let permit = approve(s, &a.approval_id, t0 + 1, 60).await;
    let t = |rid: &str| template("fp-permit", "s1", "a1", rid, t0 + 2);
    let without = gate1(s, step(t("r1"), Release::Permit, None)).await;
    assert!(
        matches!(opened(&without), Opened::Approved(x) if x.approval_id == a.approval_id),
        "permit mode: approved but not released without the permit: {without:?}"
    );
    let with = gate1(s, step(t("r2"), Release::Permit, Some(&permit))).await;
    assert!(
        matches!(
            with,
            GateResult::Released {
                by_permit: true,
                ..
            }
        ),
        "{with:?}"
    );
}

pub async fn denial_and_resolve_once<S: ControlStore>(s: &S) {
    let t0 = now();
    let a = raise(s, "fp-deny", t0).await;
    let (denied, permit) = deny(s, &a.approval_id, t0 + 1).await.unwrap().unwrap();
    assert_eq!(denied.status, ApprovalStatus::Denied);
    assert_eq!(
        (denied.resolver.as_str(), denied.note.as_str()),
        ("bob", "no")
    );
    assert!(permit.is_none(), "a denial carries no permit");
    let t = |at| template("fp-deny", "s1", "a1", "r", at);
    let again = gate1(s, step(t(t0 + 2), Release::NextCall, None)).await;
    assert!(matches!(opened(&again), Opened::Denied(_)), "{again:?}");
    // After its pending window the binding may ask again.
    let later = gate1(s, step(t(t0 + 1 + 900_001), Release::NextCall, None)).await;
    assert!(matches!(opened(&later), Opened::Created(_)), "{later:?}");
    // Resolving twice is refused; unknown ids are None.
    assert_eq!(
        deny(s, &a.approval_id, t0 + 3).await,
        Some(Err(ResolveError::NotPending(ApprovalStatus::Denied)))
    );
    assert_eq!(deny(s, "0123456789abcdef0123456789abcdef", t0).await, None);
    assert_eq!(deny(s, "not-an-id", t0).await, None);
}

pub async fn permit_mismatch_and_unknown<S: ControlStore>(s: &S) {
    let t0 = now();
    let a = raise(s, "fp-right", t0).await;
    let permit = approve(s, &a.approval_id, t0 + 1, 60).await;
    let wrong = template("fp-wrong", "s1", "a1", "r1", t0 + 2);
    let r = gate1(s, step(wrong, Release::Permit, Some(&permit))).await;
    match r {
        GateResult::Waiting { opened, rejected } => {
            assert_eq!(rejected, Some(ConsumeError::Mismatch));
            assert!(matches!(opened, Opened::Created(_)), "the other call asks");
        }
        other => panic!("{other:?}"),
    }
    let still = s.approval(&a.approval_id, t0 + 3).await.unwrap().unwrap();
    assert_eq!(
        still.status,
        ApprovalStatus::Approved,
        "a mismatch spends nothing"
    );
    let bogus = template("fp-right", "s1", "a1", "r2", t0 + 3);
    let r = gate1(s, step(bogus, Release::Permit, Some("no-such-permit"))).await;
    assert!(
        matches!(
            r,
            GateResult::Waiting {
                rejected: Some(ConsumeError::Unknown),
                ..
            }
        ),
        "{r:?}"
    );
    let right = template("fp-right", "s1", "a1", "r3", t0 + 4);
    let r = gate1(s, step(right, Release::Permit, Some(&permit))).await;
    assert!(matches!(r, GateResult::Released { .. }), "{r:?}");
}

pub async fn expiry<S: ControlStore>(s: &S) {
    let t0 = now();
    let a = raise(s, "fp-exp1", t0).await;
    assert_eq!(
        deny(s, &a.approval_id, t0 + 900_000).await,
        Some(Err(ResolveError::NotPending(ApprovalStatus::Expired))),
        "a pending approval past its deadline cannot be resolved"
    );
    let viewed = s
        .approval(&a.approval_id, t0 + 900_000)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(viewed.status, ApprovalStatus::Expired);
    let b = raise(s, "fp-exp2", t0).await;
    let permit = approve(s, &b.approval_id, t0 + 1, 10).await;
    let late = template("fp-exp2", "s1", "a1", "r", t0 + 1 + 10_000);
    let r = gate1(s, step(late, Release::Permit, Some(&permit))).await;
    assert!(
        matches!(
            r,
            GateResult::Waiting {
                rejected: Some(ConsumeError::Expired),
                ..
            }
        ),
        "{r:?}"
    );
}

fn rec(score: f64, steps: &[(&str, &[&str])], decision: &str) -> Record {
    Record {
        steps: steps
            .iter()
            .map(|(t, tags)| {
                let tags = tags.iter().map(|x| x.to_string()).collect();
                (t.to_string(), tags, Outcome::Executed)
            })
            .collect(),
        score,
        decision: decision.into(),
        new_request: true,
        ..Record::default()
    }
}

fn stage(
    session: &str,
    agent: &str,
    record: Record,
    at: i64,
    cfg: &Arc<SessionConfig>,
) -> StageRecord {
    StageRecord {
        session_id: session.into(),
        owner_id: agent.into(),
        risk_agent: agent.into(),
        record,
        memory: vec![],
        now_ms: at,
        tail: None,
        session: cfg.clone(),
    }
}

async fn load<S: StateStore>(s: &S, session: &str, agent: &str) -> StateView {
    let v = s
        .load(&LoadQuery {
            session_id: session,
            risk_agent: agent,
            agent_scope: true,
            rate: None,
        })
        .await
        .expect("load");
    assert!(!v.unavailable && !v.degraded, "{v:?}");
    v
}

pub async fn decay<S: StateStore>(s: &S) {
    let cfg = Arc::new(SessionConfig {
        half_life_secs: 60,
        ..SessionConfig::default()
    });
    let t0 = now();
    s.record(stage(
        "s-decay",
        "a-decay",
        rec(1.0, &[], "allow"),
        t0,
        &cfg,
    ));
    s.flush().await;
    let v = load(s, "s-decay", "a-decay").await;
    let sess = v.session.expect("session created");
    assert!((sess.risk.cumulative - 1.0).abs() < 1e-9);
    assert_eq!(sess.risk.as_of_ms, t0);
    assert!((session::decayed(&cfg, &sess.risk, t0 + 60_000) - 0.5).abs() < 1e-9);
    // One half-life later 0.5 is left, and 0.5 is added.
    s.record(stage(
        "s-decay",
        "a-decay",
        rec(0.5, &[], "allow"),
        t0 + 60_000,
        &cfg,
    ));
    s.flush().await;
    let v = load(s, "s-decay", "a-decay").await;
    for risk in [&v.session.unwrap().risk, &v.agent.unwrap().risk] {
        assert!((risk.cumulative - 1.0).abs() < 1e-9, "{}", risk.cumulative);
        assert_eq!(risk.as_of_ms, t0 + 60_000);
    }
}

pub async fn history_caps_and_markers<S: StateStore>(s: &S) {
    let cfg = Arc::new(SessionConfig {
        max_history: 4,
        window_secs: 10,
        ..SessionConfig::default()
    });
    let t0 = now();
    for i in 0..6 {
        let r = rec(0.1, &[("bash", &["shell"])], "allow");
        let mut st = stage("s-cap", "a-cap", r, t0 + i, &cfg);
        st.memory = vec![format!("/vault/key{i}")];
        s.record(st);
    }
    s.flush().await;
    let v = load(s, "s-cap", "a-cap").await;
    let sess = v.session.unwrap();
    assert_eq!(sess.risk.steps.len(), 4, "max_history");
    assert_eq!(sess.risk.steps.last().unwrap().at_ms, t0 + 5);
    assert_eq!(sess.request_count, 6);
    assert_eq!(sess.decisions.len(), 6);
    assert!(sess.sensitive_markers.contains(&"action:shell".to_string()));
    assert!(sess
        .sensitive_markers
        .contains(&"memory:/vault/key0".to_string()));
    assert_eq!(sess.memory_touched.len(), 6);
    assert_eq!(v.agent.as_ref().unwrap().sessions, ["s-cap"]);
    assert_eq!(v.agent.unwrap().risk.steps.len(), 4);
    // Outside the window the old steps are forgotten.
    s.record(stage(
        "s-cap",
        "a-cap",
        rec(0.0, &[("ls", &[])], "allow"),
        t0 + 20_000,
        &cfg,
    ));
    s.flush().await;
    let v = load(s, "s-cap", "a-cap").await;
    let steps = &v.session.unwrap().risk.steps;
    assert_eq!(steps.len(), 1);
    assert_eq!(steps[0].tool, "ls");
}

pub async fn owner_mismatch<S: StateStore>(s: &S) {
    let cfg = Arc::new(SessionConfig::default());
    let t0 = now();
    s.record(stage("s-own", "owner", rec(0.3, &[], "allow"), t0, &cfg));
    s.record(stage(
        "s-own",
        "intruder",
        rec(0.9, &[], "allow"),
        t0 + 1,
        &cfg,
    ));
    s.flush().await;
    let v = load(s, "s-own", "intruder").await;
    let sess = v.session.unwrap();
    assert_eq!(sess.agent_id, "owner");
    assert_eq!(
        sess.request_count, 1,
        "another agent never changes a session"
    );
    assert!((sess.risk.cumulative - 0.3).abs() < 0.01);
    assert!(session::owner_mismatch(&sess, "intruder").is_some());
    let intruder = v.agent.unwrap();
    assert_eq!(
        intruder.request_count, 1,
        "the intruder's own scope remembers"
    );
}

pub async fn staged_flood_and_unstage<S: ControlStore>(s: &S) {
    let cfg = Arc::new(SessionConfig {
        max_staged: 3,
        ..SessionConfig::default()
    });
    let t0 = now();
    let mut ids = Vec::new();
    for i in 0..3 {
        let fp = format!("fp-flood-{i}");
        let t = template(&fp, "s-flood", "a-flood", "r", t0 + i);
        let r = gate1(s, step(t, Release::NextCall, None)).await;
        let id = opened(&r).approval().approval_id.clone();
        let record = Record {
            staged: vec![Staged {
                at_ms: t0 + i,
                tool: "shell".into(),
                approval_id: id.clone(),
            }],
            decision: "require_approval".into(),
            new_request: true,
            ..Record::default()
        };
        s.record(stage("s-flood", "a-flood", record, t0 + i, &cfg));
        ids.push(id);
    }
    s.flush().await;
    let v = load(s, "s-flood", "a-flood").await;
    let scopes = session::Scopes {
        session: v.session.as_deref(),
        agent: v.agent.as_deref(),
        agent_id: "a-flood",
    };
    // Judged for a risky call (session risk never weighs on ordinary work).
    let f = session::findings(
        &cfg,
        &scopes,
        &[vec!["network_send".to_string()]],
        0.0,
        t0 + 10,
    );
    assert!(
        f.iter().any(|f| f.rule_id == "session.staged_flood"),
        "{f:?}"
    );
    assert_eq!(
        v.session.as_ref().unwrap().risk.cumulative,
        0.0,
        "staged work adds no risk"
    );
    deny(s, &ids[0], t0 + 20).await.unwrap().unwrap();
    let v = load(s, "s-flood", "a-flood").await;
    for staged in [
        &v.session.unwrap().risk.staged,
        &v.agent.unwrap().risk.staged,
    ] {
        let left: Vec<&str> = staged.iter().map(|x| x.approval_id.as_str()).collect();
        assert_eq!(
            left,
            [ids[1].as_str(), ids[2].as_str()],
            "a decided approval is unstaged"
        );
    }
}

pub async fn concurrent_records<S: StateStore>(s: Arc<S>) {
    let cfg = Arc::new(SessionConfig {
        half_life_secs: 0,
        ..SessionConfig::default()
    });
    let t0 = now();
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let (s, cfg) = (s.clone(), cfg.clone());
            tokio::spawn(async move {
                for i in 0..25 {
                    s.record(stage(
                        "s-many",
                        "a-many",
                        rec(0.01, &[("t", &[])], "allow"),
                        t0 + i,
                        &cfg,
                    ));
                    tokio::task::yield_now().await;
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    s.flush().await;
    let v = load(&*s, "s-many", "a-many").await;
    let sess = v.session.unwrap();
    assert_eq!(sess.request_count, 200, "no record lost");
    assert!(
        (sess.risk.cumulative - 2.0).abs() < 1e-6,
        "{}",
        sess.risk.cumulative
    );
    assert_eq!(v.agent.unwrap().request_count, 200);
}

fn tail_entry(i: usize) -> TailEntry {
    TailEntry {
        seq: 0,
        gateway: String::new(),
        event: AuditEvent {
            request_id: format!("req-{i}"),
            decision: "allow".into(),
            route: "default".into(),
            stage: "request".into(),
            ..AuditEvent::default()
        },
    }
}

pub async fn tail_capped<S: ControlStore>(s: &S, cap: usize, slack: usize) {
    let cfg = Arc::new(SessionConfig::default());
    let t0 = now();
    let total = cap * 3;
    for i in 0..total {
        let mut st = stage("s-tail", "a-tail", rec(0.0, &[], "allow"), t0, &cfg);
        st.tail = Some(tail_entry(i));
        s.record(st);
    }
    s.flush().await;
    let all = s.tail(None, usize::MAX / 2).await.unwrap();
    assert!(
        all.len() >= cap && all.len() <= cap + slack,
        "tail holds {} entries, cap {cap} (+{slack})",
        all.len()
    );
    assert!(
        all.windows(2).all(|w| w[0].seq < w[1].seq),
        "oldest first, increasing"
    );
    assert!(
        all.iter().all(|e| !e.gateway.is_empty()),
        "the writer is named"
    );
    let last = all.last().unwrap();
    assert_eq!(last.event.request_id, format!("req-{}", total - 1));
    let newest = s.tail(None, 5).await.unwrap();
    let ids: Vec<String> = newest.iter().map(|e| e.event.request_id.clone()).collect();
    let want: Vec<String> = (total - 5..total).map(|i| format!("req-{i}")).collect();
    assert_eq!(ids, want);
    let after = s.tail(Some(newest[1].seq), 2).await.unwrap();
    assert_eq!(after, newest[2..4].to_vec());
}

pub async fn watch_wakes<S: ControlStore>(s: Arc<S>) {
    let t0 = now();
    let a = raise(&*s, "fp-watch", t0).await;
    let mut w = s.watch(&a.approval_id);
    let resolver = {
        let (s, id) = (s.clone(), a.approval_id.clone());
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            approve(&*s, &id, now(), 60).await
        })
    };
    let got = tokio::time::timeout(Duration::from_secs(10), w.changed())
        .await
        .expect("the held call is woken");
    assert_eq!(got, Some(ApprovalStatus::Approved));
    resolver.await.unwrap();
    assert_eq!(w.changed().await, None, "the watch ends after the decision");
    let mut none = s.watch("0123456789abcdef0123456789abcdee");
    let gone = tokio::time::timeout(Duration::from_secs(5), none.changed()).await;
    assert_eq!(gone, Ok(None), "an unknown approval ends the watch at once");
}

pub async fn sessions_listed<S: ControlStore>(s: &S) {
    let cfg = Arc::new(SessionConfig::default());
    let t0 = now();
    for (i, id) in ["s-one", "s-two", "s-three"].iter().enumerate() {
        s.record(stage(
            id,
            "a-list",
            rec(0.0, &[], "allow"),
            t0 + i as i64,
            &cfg,
        ));
    }
    s.flush().await;
    let list = s.sessions(SessionFilter { limit: 2 }).await.unwrap();
    let ids: Vec<&str> = list.iter().map(|x| x.session_id.as_str()).collect();
    assert_eq!(ids, ["s-three", "s-two"], "newest first");
    let pending = s
        .approvals(ApprovalFilter {
            status: Some(ApprovalStatus::Pending),
            session_id: None,
            limit: 10,
            now_ms: t0,
        })
        .await
        .unwrap();
    assert!(pending.is_empty());
}

pub async fn rate_limited<S: StateStore>(s: &S) {
    let ask = || LoadQuery {
        session_id: "",
        risk_agent: "",
        agent_scope: false,
        rate: Some(RateKey {
            key: "agent:rl",
            per_minute: 60,
            burst: 3,
        }),
    };
    for i in 0..3 {
        let v = s.load(&ask()).await.unwrap();
        assert!(v.rate.unwrap().allowed, "request {i} within the burst");
    }
    let v = s.load(&ask()).await.unwrap();
    let r = v.rate.unwrap();
    assert!(!r.allowed && !r.degraded, "{r:?}");
    assert!(r.retry_after_ms > 0 && r.retry_after_ms <= 1000, "{r:?}");
}

/// Approvals listed newest first, filtered by status and session.
pub async fn listing<S: ControlStore>(s: &S) {
    let t0 = now();
    let a = raise(s, "fp-list-1", t0).await;
    let b = raise(s, "fp-list-2", t0 + 1).await;
    deny(s, &a.approval_id, t0 + 2).await.unwrap().unwrap();
    let f = |status| ApprovalFilter {
        status,
        session_id: Some("s1".into()),
        limit: 10,
        now_ms: t0 + 3,
    };
    let all = s.approvals(f(None)).await.unwrap();
    let ids: Vec<&str> = all.iter().map(|x| x.approval_id.as_str()).collect();
    assert_eq!(ids, [b.approval_id.as_str(), a.approval_id.as_str()]);
    let pending = s.approvals(f(Some(ApprovalStatus::Pending))).await.unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].approval_id, b.approval_id);
}
