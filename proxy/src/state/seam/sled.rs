//! The seam over today's sled [`Store`]: one gateway, embedded. Every call
//! is local (no I/O on the common path thanks to the session cache); only
//! `gate`, `resolve` and `submit` wait for the group commit, because their
//! answers are acknowledged. The console tail is an in-memory ring (the
//! durable audit log stays where it is).

use super::gcra::LocalGcra;
use super::{
    ApprovalFilter, ApprovalWatch, ControlStore, GateResult, GateStep, Health, LoadQuery,
    RateVerdict, Resolve, SessionFilter, SessionSummary, StageRecord, StateStore, StateView,
    StoreError, TailEntry, WakeMode,
};
use crate::decision::approvals::{Approval, ApprovalStatus, ResolveError};
use crate::decision::session::SessionConfig;
use crate::state::approvals::{Gate, Opened};
use crate::state::Store;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use tokio::sync::watch;

pub struct SledState {
    store: Arc<Store>,
    ring: Mutex<Ring>,
    rate: LocalGcra,
    gateway: String,
}

struct Ring {
    entries: VecDeque<TailEntry>,
    next: u64,
    cap: usize,
}

impl SledState {
    /// `tail_cap`: how many tail entries the console can page back through.
    pub fn new(store: Arc<Store>, gateway: &str, tail_cap: usize) -> SledState {
        SledState {
            store,
            ring: Mutex::new(Ring {
                entries: VecDeque::new(),
                next: 1,
                cap: tail_cap.max(1),
            }),
            rate: LocalGcra::default(),
            gateway: gateway.to_string(),
        }
    }

    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }
}

fn map_gate(g: Gate) -> GateResult {
    match g {
        Gate::Released {
            approval,
            by_permit,
        } => GateResult::Released {
            approval,
            by_permit,
        },
        Gate::Waiting { opened, rejected } => GateResult::Waiting { opened, rejected },
    }
}

impl StateStore for SledState {
    type Watch = SledWatch;

    async fn load(&self, q: &LoadQuery<'_>) -> Result<StateView, StoreError> {
        let cfg = SessionConfig {
            agent_scope: q.agent_scope,
            ..SessionConfig::default()
        };
        let scoped = self
            .store
            .scopes_load(&cfg, q.session_id, q.risk_agent)
            .map_err(StoreError::from)?;
        let rate = q.rate.map(|r| {
            let s = self
                .rate
                .check(r.key, crate::state::now_ms() as f64, r.per_minute, r.burst);
            RateVerdict {
                allowed: s.allowed,
                retry_after_ms: s.retry_after_ms,
                degraded: false,
            }
        });
        Ok(StateView {
            session: scoped.session,
            agent: scoped.agent,
            rate,
            unavailable: false,
            degraded: false,
        })
    }

    async fn gate(&self, steps: Vec<GateStep>) -> Result<Vec<GateResult>, StoreError> {
        let mut out = Vec::with_capacity(steps.len());
        for s in steps {
            let now = s.template.created_ms;
            let g = self
                .store
                .approval_gate(s.release, &s.template, s.permit.as_deref(), now)
                .map_err(StoreError::from)?;
            out.push(map_gate(g));
        }
        self.store.durable().await.map_err(StoreError::from)?;
        Ok(out)
    }

    fn record(&self, rec: StageRecord) {
        let cfg = &rec.session;
        if let Err(e) = self.store.scopes_record(
            cfg,
            &rec.session_id,
            &rec.risk_agent,
            &rec.owner_id,
            &rec.record,
            &rec.memory,
            rec.now_ms,
        ) {
            tracing::error!(error = %e, "session state not recorded");
        }
        if let Some(mut t) = rec.tail {
            let mut ring = self.ring.lock().unwrap_or_else(|p| p.into_inner());
            t.seq = ring.next;
            ring.next += 1;
            if t.gateway.is_empty() {
                t.gateway = self.gateway.clone();
            }
            ring.entries.push_back(t);
            while ring.entries.len() > ring.cap {
                ring.entries.pop_front();
            }
        }
    }

    async fn flush(&self) {
        // Records are applied to the cache at once; nothing is queued.
    }

    fn watch(&self, approval_id: &str) -> SledWatch {
        let now = crate::state::now_ms();
        let current = self.store.approval_get(approval_id, now).ok().flatten();
        let rx = current.map(|a| self.store.approval_watch(approval_id, a.status));
        SledWatch {
            rx,
            store: self.store.clone(),
            id: approval_id.to_string(),
        }
    }

    fn health(&self) -> Health {
        let ok = self.store.ping();
        Health {
            backend: "sled",
            connected: ok,
            degraded: false,
            wake: WakeMode::Local,
            durability: "sled_group_commit".into(),
            detail: (!ok).then(|| "the data folder does not answer".into()),
        }
    }
}

pub struct SledWatch {
    rx: Option<watch::Receiver<ApprovalStatus>>,
    store: Arc<Store>,
    id: String,
}

impl ApprovalWatch for SledWatch {
    async fn changed(&mut self) -> Option<ApprovalStatus> {
        let rx = self.rx.as_mut()?;
        let status = *rx.wait_for(|s| *s != ApprovalStatus::Pending).await.ok()?;
        self.rx = None;
        self.store.approval_unwatch(&self.id);
        Some(status)
    }
}

impl ControlStore for SledState {
    async fn approvals(&self, f: ApprovalFilter) -> Result<Vec<Approval>, StoreError> {
        Ok(self
            .store
            .approvals_list(f.status, f.session_id.as_deref(), f.limit, f.now_ms)?)
    }

    async fn approval(&self, id: &str, now_ms: i64) -> Result<Option<Approval>, StoreError> {
        Ok(self.store.approval_get(id, now_ms)?)
    }

    async fn resolve(
        &self,
        r: Resolve,
    ) -> Result<Option<Result<(Approval, Option<String>), ResolveError>>, StoreError> {
        let out = self.store.approval_resolve(
            &r.id,
            r.approve,
            &r.resolver,
            &r.credential,
            &r.note,
            r.now_ms,
        )?;
        self.store.durable().await?;
        Ok(out)
    }

    async fn submit(&self, template: Approval) -> Result<Opened, StoreError> {
        let now = template.created_ms;
        let opened = self.store.approval_open(&template, now)?;
        self.store.durable().await?;
        Ok(opened)
    }

    async fn sessions(&self, f: SessionFilter) -> Result<Vec<SessionSummary>, StoreError> {
        self.store.persist_state()?;
        Ok(self.store.sessions_recent(f.limit)?)
    }

    async fn tail(&self, after: Option<u64>, n: usize) -> Result<Vec<TailEntry>, StoreError> {
        let ring = self.ring.lock().unwrap_or_else(|p| p.into_inner());
        let list: Vec<TailEntry> = match after {
            Some(a) => ring
                .entries
                .iter()
                .filter(|e| e.seq > a)
                .take(n)
                .cloned()
                .collect(),
            None => {
                let skip = ring.entries.len().saturating_sub(n);
                ring.entries.iter().skip(skip).cloned().collect()
            }
        };
        Ok(list)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn sled_passes_the_conformance_suite() {
        let mut dirs = Vec::new();
        let fresh = || {
            let (store, dir) = crate::state::temp_store();
            dirs.push(dir);
            SledState::new(Arc::new(store), "gw-test", 64)
        };
        super::super::conformance::run_all(fresh, 64, 0).await;
        for d in dirs {
            std::fs::remove_dir_all(d).ok();
        }
    }
}
