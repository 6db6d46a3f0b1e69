//! Session and agent risk, rate limits and the record queue.
//!
//! `record` never waits: it updates this gateway's local view and queues
//! the record; one flusher sends queued records in batches (every 2 ms or
//! 64 records) as `record.lua` calls on one pipeline. A `load` takes the
//! queued records of its own session and agent and sends them ahead of its
//! reads in the same pipeline, so a gateway always reads its own writes in
//! one round trip. (Both take records and hand them to the connection in
//! one synchronous step, and a multiplexed connection keeps that order.)
//!
//! While Redis is unreachable, loads are served from the local view (every
//! session this gateway loaded or recorded recently, with its own records
//! applied by the same pure functions sled uses), rate limits from a local
//! GCRA, both marked degraded; records stay queued (up to the backlog cap)
//! and are replayed on reconnect. A record whose batch failed after it was
//! sent may be applied twice: that over-counts risk, never under-counts.

use super::codec::{self, staged_line, step_line};
use super::link::Lane;
use super::scripts;
use super::Inner;
use crate::decision::session::{
    self, remember_agent, remember_session, AgentState, Outcome, SessionState, Step,
};
use crate::state::seam::gcra::LocalGcra;
use crate::state::seam::{
    LoadQuery, RateVerdict, SessionFilter, SessionSummary, StageRecord, StateView, StoreError,
};
use redis::Value;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;

const BATCH: usize = 64;
const LINGER: Duration = Duration::from_millis(2);

pub(super) struct Risk {
    queue: Mutex<VecDeque<StageRecord>>,
    wake: Notify,
    /// Held by whoever takes records from the queue to send them, so the
    /// queue's order is the order Redis applies them in.
    sending: tokio::sync::Mutex<()>,
    mirror: Mutex<Mirror>,
    local_rate: LocalGcra,
    /// Set while loads are served locally (for the transition log line).
    degraded: std::sync::atomic::AtomicBool,
}

impl Risk {
    pub fn new(mirror_cap: usize) -> Risk {
        Risk {
            queue: Mutex::new(VecDeque::new()),
            wake: Notify::new(),
            sending: tokio::sync::Mutex::new(()),
            mirror: Mutex::new(Mirror {
                sessions: HashMap::new(),
                agents: HashMap::new(),
                cap: mirror_cap.max(16),
            }),
            local_rate: LocalGcra::default(),
            degraded: std::sync::atomic::AtomicBool::new(false),
        }
    }

    fn queue(&self) -> std::sync::MutexGuard<'_, VecDeque<StageRecord>> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn mirror(&self) -> std::sync::MutexGuard<'_, Mirror> {
        self.mirror.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// This gateway's last known view of the scopes it served.
struct Mirror {
    sessions: HashMap<String, Arc<SessionState>>,
    agents: HashMap<String, Arc<AgentState>>,
    cap: usize,
}

fn evict<T>(map: &mut HashMap<String, Arc<T>>, cap: usize, updated: impl Fn(&T) -> i64) {
    if map.len() < cap {
        return;
    }
    let mut ages: Vec<(i64, String)> = map.iter().map(|(k, v)| (updated(v), k.clone())).collect();
    ages.sort();
    for (_, k) in ages.into_iter().take(cap / 10 + 1) {
        map.remove(&k);
    }
}

impl Mirror {
    fn apply(&mut self, rec: &StageRecord) {
        let (cfg, now) = (&rec.session, rec.now_ms);
        if !rec.session_id.is_empty() {
            evict(&mut self.sessions, self.cap, |s| s.updated_ms);
            let s = self
                .sessions
                .entry(rec.session_id.clone())
                .or_insert_with(|| {
                    Arc::new(SessionState::new(&rec.session_id, &rec.owner_id, now))
                });
            let s = Arc::make_mut(s);
            if s.agent_id.is_empty() || s.agent_id == rec.owner_id {
                remember_session(cfg, s, &rec.record, &rec.memory, now);
            }
        }
        if !rec.risk_agent.is_empty() && cfg.agent_scope {
            evict(&mut self.agents, self.cap, |a| a.updated_ms);
            let a = self
                .agents
                .entry(rec.risk_agent.clone())
                .or_insert_with(|| Arc::new(AgentState::new(&rec.risk_agent, now)));
            remember_agent(cfg, Arc::make_mut(a), &rec.record, &rec.session_id, now);
        }
    }
}

fn concerns(rec: &StageRecord, session: &str, agent: &str) -> bool {
    (!session.is_empty() && rec.session_id == session)
        || (!agent.is_empty() && rec.risk_agent == agent)
}

impl Inner {
    /// The `record.lua` call for one record.
    fn record_call(&self, rec: &StageRecord) -> redis::Cmd {
        let cfg = &rec.session;
        let agent = if cfg.agent_scope {
            rec.risk_agent.as_str()
        } else {
            ""
        };
        let steps: Vec<String> = rec
            .record
            .steps
            .iter()
            .map(|(tool, tags, outcome)| {
                step_line(&Step {
                    at_ms: rec.now_ms,
                    tool: tool.clone(),
                    tags: tags.clone(),
                    outcome: *outcome,
                    // As `session::remember`: a refused step keeps what refused it.
                    causes: if *outcome == Outcome::Blocked {
                        rec.record.causes.clone()
                    } else {
                        Vec::new()
                    },
                })
            })
            .collect();
        let staged: Vec<String> = rec.record.staged.iter().filter_map(staged_line).collect();
        let markers = session::markers(cfg, &rec.record, &rec.memory);
        let tail = rec.tail.as_ref().map(|t| {
            let gateway = if t.gateway.is_empty() {
                self.opts.gateway.clone()
            } else {
                t.gateway.clone()
            };
            (serde_json::to_string(&t.event).unwrap_or_default(), gateway)
        });
        let mut inv = scripts::RECORD.prepare_invoke();
        inv.arg(self.keys.base())
            .arg(&rec.session_id)
            .arg(&rec.owner_id)
            .arg(agent)
            .arg(rec.now_ms)
            .arg(cfg.half_life_secs)
            .arg(cfg.window_secs.saturating_mul(1000))
            .arg(cfg.max_history)
            .arg(cfg.idle_expiry_secs.max(1).saturating_mul(1000))
            .arg(format!("{:?}", rec.record.score.max(0.0)))
            .arg(u32::from(rec.record.new_request))
            .arg(&rec.record.decision)
            .arg(tail.as_ref().map(|t| t.0.as_str()).unwrap_or(""))
            .arg(self.link.url().tail_max)
            .arg(tail.as_ref().map(|t| t.1.as_str()).unwrap_or(""))
            .arg(steps.len())
            .arg(staged.len())
            .arg(rec.record.released.len())
            .arg(markers.len())
            .arg(rec.memory.len())
            .arg(&steps)
            .arg(&staged)
            .arg(&rec.record.released)
            .arg(&markers)
            .arg(&rec.memory);
        let mut pipe = redis::pipe();
        pipe.invoke_script(&inv);
        // One command: take it back out of the one-command pipeline.
        let cmd = pipe.cmd_iter().next().cloned().expect("one command");
        cmd
    }

    pub(super) fn record(&self, rec: StageRecord) {
        self.risk.mirror().apply(&rec);
        let len = {
            let mut q = self.risk.queue();
            q.push_back(rec);
            let cap = self.opts.backlog_cap.max(BATCH);
            let mut dropped = 0;
            while q.len() > cap {
                q.pop_front();
                dropped += 1;
            }
            if dropped > 0 {
                self.metrics.records_dropped.inc_by(dropped);
                tracing::warn!(
                    dropped,
                    "shared state backlog full: oldest risk records dropped"
                );
            }
            q.len()
        };
        self.metrics.backlog.set(len as i64);
        if len == 1 || len >= BATCH {
            self.risk.wake.notify_one();
        }
    }

    /// Send up to `max` queued records; Err when Redis did not take them
    /// (they are back at the front of the queue).
    async fn send_queued(&self, max: usize) -> Result<usize, StoreError> {
        let _turn = self.risk.sending.lock().await;
        let conn = self.link.conn(Lane::Fast)?;
        let batch: Vec<StageRecord> = {
            let mut q = self.risk.queue();
            let n = q.len().min(max);
            q.drain(..n).collect()
        };
        if batch.is_empty() {
            return Ok(0);
        }
        let mut pipe = redis::pipe();
        pipe.ignore_errors();
        for r in &batch {
            pipe.add_command(self.record_call(r));
        }
        drop(conn);
        match self.query(Lane::Fast, &pipe).await {
            Ok(values) => {
                report_script_errors(&values);
                self.metrics.backlog.set(self.risk.queue().len() as i64);
                Ok(batch.len())
            }
            Err(e) => {
                self.metrics
                    .degraded
                    .with_label_values(&["record"])
                    .inc_by(batch.len() as u64);
                let mut q = self.risk.queue();
                for r in batch.into_iter().rev() {
                    q.push_front(r);
                }
                Err(e)
            }
        }
    }

    /// Send everything queued, unless Redis is unreachable (then it stays
    /// queued for the reconnect).
    pub(super) async fn flush(&self) {
        loop {
            // The flusher holds `sending` for the whole of a batch it has
            // taken out of the queue: an empty queue seen under that lock
            // means nothing is still on its way to Redis.
            let turn = self.risk.sending.lock().await;
            if self.risk.queue().is_empty() {
                return;
            }
            drop(turn);
            if self.send_queued(usize::MAX).await.is_err() {
                return;
            }
        }
    }

    pub(super) async fn load(&self, q: &LoadQuery<'_>) -> StateView {
        let agent = if q.agent_scope { q.risk_agent } else { "" };
        if q.session_id.is_empty() && agent.is_empty() && q.rate.is_none() {
            return StateView::default();
        }
        match self.load_remote(q.session_id, agent, q).await {
            Ok(v) => {
                if self
                    .risk
                    .degraded
                    .swap(false, std::sync::atomic::Ordering::Relaxed)
                {
                    tracing::info!("session risk and rate limits are shared again");
                }
                v
            }
            Err(e) => self.load_local(q.session_id, agent, q, &e),
        }
    }

    async fn load_remote(
        &self,
        session: &str,
        agent: &str,
        q: &LoadQuery<'_>,
    ) -> Result<StateView, StoreError> {
        // Taken and handed to the connection in this same poll (see above).
        let conn = self.link.conn(Lane::Fast)?;
        drop(conn);
        let pending: Vec<StageRecord> = {
            let mut queue = self.risk.queue();
            let mut taken = Vec::new();
            let mut kept = VecDeque::with_capacity(queue.len());
            for r in queue.drain(..) {
                if concerns(&r, session, agent) {
                    taken.push(r);
                } else {
                    kept.push_back(r);
                }
            }
            *queue = kept;
            taken
        };
        let mut pipe = redis::pipe();
        pipe.ignore_errors();
        for r in &pending {
            pipe.add_command(self.record_call(r));
        }
        if !session.is_empty() {
            self.read_session(&mut pipe, session);
        }
        if !agent.is_empty() {
            pipe.cmd("HGETALL").arg(self.keys.agent(agent));
            for l in self.keys.agent_lists(agent) {
                pipe.cmd("LRANGE").arg(l).arg(0).arg(-1);
            }
        }
        let rate_inv = q.rate.map(|r| {
            let mut inv = scripts::RATE.prepare_invoke();
            inv.key(self.keys.rate(r.key))
                .arg(r.per_minute)
                .arg(r.burst);
            inv
        });
        if let Some(inv) = &rate_inv {
            pipe.invoke_script(inv);
        }
        let values = match self.query(Lane::Fast, &pipe).await {
            Ok(v) => v,
            Err(e) => {
                let mut queue = self.risk.queue();
                for r in pending.into_iter().rev() {
                    queue.push_front(r);
                }
                return Err(e);
            }
        };
        report_script_errors(&values[..pending.len()]);
        let mut rest = values.iter().skip(pending.len());
        let mut view = StateView::default();
        let mut mirror = self.risk.mirror();
        if !session.is_empty() {
            view.session = take_session(&mut rest)?.map(Arc::new);
            if let Some(s) = &view.session {
                mirror.sessions.insert(session.to_string(), s.clone());
            }
        }
        if !agent.is_empty() {
            let f = codec::fields(rest.next().unwrap_or(&Value::Nil))?;
            let mut list = || codec::list(rest.next().unwrap_or(&Value::Nil));
            let lists = [list()?, list()?, list()?];
            view.agent = codec::agent(&f, lists)?.map(Arc::new);
            if let Some(a) = &view.agent {
                mirror.agents.insert(agent.to_string(), a.clone());
            }
        }
        if q.rate.is_some() {
            view.rate = Some(match rest.next() {
                Some(Value::Array(v)) if v.len() == 2 => RateVerdict {
                    allowed: matches!(v[0], Value::Int(1)),
                    retry_after_ms: match v[1] {
                        Value::Int(n) => n.max(0) as u64,
                        _ => 0,
                    },
                    degraded: false,
                },
                other => return Err(StoreError::Corrupt(format!("rate reply {other:?}"))),
            });
        }
        Ok(view)
    }

    fn load_local(
        &self,
        session: &str,
        agent: &str,
        q: &LoadQuery<'_>,
        e: &StoreError,
    ) -> StateView {
        if !self
            .risk
            .degraded
            .swap(true, std::sync::atomic::Ordering::Relaxed)
        {
            tracing::warn!(error = %e, "session risk and rate limits: shared state unreachable, deciding with this gateway's local view");
        }
        self.metrics.degraded.with_label_values(&["load"]).inc();
        let mirror = self.risk.mirror();
        let rate = q.rate.map(|r| {
            self.metrics.degraded.with_label_values(&["rate"]).inc();
            let s = self.risk.local_rate.check(
                r.key,
                crate::state::now_ms() as f64,
                r.per_minute,
                r.burst,
            );
            RateVerdict {
                allowed: s.allowed,
                retry_after_ms: s.retry_after_ms,
                degraded: true,
            }
        });
        StateView {
            session: (!session.is_empty())
                .then(|| mirror.sessions.get(session).cloned())
                .flatten(),
            agent: (!agent.is_empty())
                .then(|| mirror.agents.get(agent).cloned())
                .flatten(),
            rate,
            unavailable: false,
            degraded: true,
        }
    }

    pub(super) async fn sessions(
        &self,
        f: SessionFilter,
    ) -> Result<Vec<SessionSummary>, StoreError> {
        let limit = f.limit.clamp(1, 1000);
        let ids: Vec<String> = {
            let mut pipe = redis::pipe();
            pipe.cmd("ZREVRANGE")
                .arg(self.keys.recent())
                .arg(0)
                .arg(limit * 2 - 1);
            let v = self.query(Lane::Fast, &pipe).await?;
            match v.first() {
                Some(Value::Array(items)) => items
                    .iter()
                    .map(|i| codec::string(i, "session id"))
                    .collect::<Result<_, _>>()?,
                _ => Vec::new(),
            }
        };
        let mut pipe = redis::pipe();
        for id in &ids {
            self.read_session(&mut pipe, id);
        }
        let values = if ids.is_empty() {
            Vec::new()
        } else {
            self.query(Lane::Fast, &pipe).await?
        };
        let mut out = Vec::new();
        let mut rest = values.iter();
        for _ in &ids {
            if let Some(s) = take_session(&mut rest)? {
                out.push(Arc::new(s));
            }
            if out.len() >= limit {
                break;
            }
        }
        Ok(out)
    }

    /// A session's hash and lists (six commands, one round trip).
    fn read_session(&self, pipe: &mut redis::Pipeline, id: &str) {
        pipe.cmd("HGETALL").arg(self.keys.session(id));
        for l in self.keys.session_lists(id) {
            pipe.cmd("LRANGE").arg(l).arg(0).arg(-1);
        }
    }
}

/// The replies of `read_session`, in order.
fn take_session<'a>(
    rest: &mut impl Iterator<Item = &'a Value>,
) -> Result<Option<SessionState>, StoreError> {
    let f = codec::fields(rest.next().unwrap_or(&Value::Nil))?;
    let mut list = || codec::list(rest.next().unwrap_or(&Value::Nil));
    let lists = [list()?, list()?, list()?, list()?, list()?];
    codec::session(&f, lists)
}

fn report_script_errors(values: &[Value]) {
    for v in values {
        if let Value::ServerError(e) = v {
            tracing::error!(error = ?e, "risk record rejected by Redis (not applied)");
        }
    }
}

/// Sends queued records: at once when a batch is full, else after a short
/// linger; waits for the reconnect while Redis is unreachable.
pub(super) async fn flusher(inner: Arc<Inner>) {
    let mut up = inner.link.subscribe();
    loop {
        if inner.risk.queue().is_empty() {
            inner.risk.wake.notified().await;
        }
        if inner.risk.queue().len() < BATCH {
            tokio::time::sleep(LINGER).await;
        }
        if inner.send_queued(BATCH * 4).await.is_err() {
            if inner.link.is_up() {
                // One failed batch on a live connection: retry shortly.
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
            // Wait for the reconnect (the supervisor retries with backoff).
            let _ = up.wait_for(|u| *u).await;
            let n = inner.risk.queue().len();
            if n > 0 {
                tracing::info!(
                    records = n,
                    "replaying risk records queued while the shared state was unreachable"
                );
            }
        }
    }
}
