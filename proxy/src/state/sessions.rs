//! Sessions and agents: their risk memory (see
//! [`crate::decision::session`]), updated atomically so concurrent
//! requests of one session never lose each other's contribution.

use super::cache::Written;
use super::{Store, StoreError};
use crate::decision::session::{
    remember_agent, remember_session, AgentState, Record, RiskState, SessionConfig, SessionState,
};
use std::sync::Arc;

/// The stored scopes of one request (shared snapshots; cheap to take).
#[derive(Debug, Clone, Default)]
pub struct Scoped {
    pub session: Option<Arc<SessionState>>,
    pub agent: Option<Arc<AgentState>>,
}

pub(super) fn activity_key(updated_ms: i64, session_id: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(8 + session_id.len());
    k.extend_from_slice(&(updated_ms.max(0) as u64).to_be_bytes());
    k.extend_from_slice(session_id.as_bytes());
    k
}

impl Store {
    pub fn session_get(&self, id: &str) -> Result<Option<Arc<SessionState>>, StoreError> {
        if let Some(s) = self.shared() {
            return s.session_get(id);
        }
        self.sessions.get(id)
    }

    pub fn agent_get(&self, id: &str) -> Result<Option<Arc<AgentState>>, StoreError> {
        if let Some(s) = self.shared() {
            return s.agent_get(id);
        }
        self.agents.get(id)
    }

    /// Modify a session (or create it with `fresh`) atomically.
    pub fn session_update(
        &self,
        id: &str,
        fresh: impl FnOnce() -> SessionState,
        f: impl FnOnce(&mut SessionState),
    ) -> Result<Arc<SessionState>, StoreError> {
        self.sessions.update(id, fresh, f)
    }

    /// Modify an agent (or create it with `fresh`) atomically.
    pub fn agent_update(
        &self,
        id: &str,
        fresh: impl FnOnce() -> AgentState,
        f: impl FnOnce(&mut AgentState),
    ) -> Result<Arc<AgentState>, StoreError> {
        self.agents.update(id, fresh, f)
    }

    /// Load the session (if named) and the agent (if named and the agent
    /// scope is on).
    pub fn scopes_load(
        &self,
        cfg: &SessionConfig,
        session_id: &str,
        agent_id: &str,
    ) -> Result<Scoped, StoreError> {
        if let Some(s) = self.shared() {
            return s.scopes_load(cfg, session_id, agent_id);
        }
        Ok(Scoped {
            session: if session_id.is_empty() {
                None
            } else {
                self.session_get(session_id)?
            },
            agent: if agent_id.is_empty() || !cfg.agent_scope {
                None
            } else {
                self.agent_get(agent_id)?
            },
        })
    }

    /// Remember what a request did in its session (created on first use,
    /// owned by `owner_id`; never changed by another agent) and in the
    /// risk scope of `agent_id` (empty: none).
    #[allow(clippy::too_many_arguments)]
    pub fn scopes_record(
        &self,
        cfg: &SessionConfig,
        session_id: &str,
        agent_id: &str,
        owner_id: &str,
        rec: &Record,
        memory: &[String],
        now_ms: i64,
    ) -> Result<(), StoreError> {
        if let Some(s) = self.shared() {
            s.scopes_record(cfg, session_id, agent_id, owner_id, rec, memory, now_ms);
            return Ok(());
        }
        if !session_id.is_empty() {
            let fresh = || SessionState::new(session_id, owner_id, now_ms);
            let apply = |s: &mut SessionState| {
                if s.agent_id.is_empty() || s.agent_id == owner_id {
                    remember_session(cfg, s, rec, memory, now_ms)
                }
            };
            // A one-off call without a session id (every request its own
            // conversation) would otherwise write a record per request
            // that nothing ever reads: one is written once its
            // conversation comes back or has something to remember.
            if rec.session_derived && rec.opens_nothing(memory) {
                self.sessions.update_provisional(session_id, fresh, apply)?;
            } else {
                self.sessions.update(session_id, fresh, apply)?;
            }
        }
        if !agent_id.is_empty() && cfg.agent_scope {
            self.agents.update(
                agent_id,
                || AgentState::new(agent_id, now_ms),
                |a| remember_agent(cfg, a, rec, session_id, now_ms),
            )?;
        }
        Ok(())
    }

    /// An approval was decided (or expired): it no longer waits, so it no
    /// longer counts as staged in its session and agent.
    pub fn unstage(
        &self,
        session_id: &str,
        agent_id: &str,
        approval_id: &str,
    ) -> Result<(), StoreError> {
        let drop_it = |r: &mut RiskState| r.staged.retain(|s| s.approval_id != approval_id);
        if !session_id.is_empty() {
            self.sessions
                .update_existing(session_id, |s| drop_it(&mut s.risk))?;
        }
        if !agent_id.is_empty() {
            self.agents
                .update_existing(agent_id, |a| drop_it(&mut a.risk))?;
        }
        Ok(())
    }

    /// Write changed sessions and agents to the trees (the background
    /// writer does this every interval; also on shutdown).
    pub fn persist_state(&self) -> Result<usize, StoreError> {
        persist(&self.trees())
    }

    pub(super) fn trees(&self) -> super::Trees {
        super::Trees {
            sessions: self.sessions.clone(),
            agents: self.agents.clone(),
            session_activity: self.session_activity.clone(),
            agent_activity: self.agent_activity.clone(),
            caps: self.caps.clone(),
        }
    }

    /// Forget the least recently active sessions and agents beyond their
    /// caps now (the background writer does this after every write):
    /// `(sessions, agents)` forgotten.
    pub fn enforce_caps(&self) -> Result<(usize, usize), StoreError> {
        let trees = self.trees();
        persist(&trees)?;
        let out = trees.trim()?;
        if out != (0, 0) {
            self.wrote();
        }
        Ok(out)
    }

    /// Stored sessions and agents (for the operator API and tests).
    pub fn state_counts(&self) -> (usize, usize) {
        (self.sessions.len(), self.agents.len())
    }

    /// Sessions by most recent activity, newest first.
    pub fn sessions_recent(&self, limit: usize) -> Result<Vec<Arc<SessionState>>, StoreError> {
        if let Some(s) = self.shared() {
            return s.sessions_recent(limit);
        }
        let mut out: Vec<Arc<SessionState>> = Vec::new();
        for item in self.session_activity.iter().rev() {
            if out.len() >= limit {
                break;
            }
            let (k, _) = item?;
            if k.len() < 8 {
                continue;
            }
            let id = String::from_utf8_lossy(&k[8..]);
            if out.iter().any(|s| s.session_id == id) {
                continue;
            }
            if let Some(s) = self.session_get(&id)? {
                out.push(s);
            }
        }
        Ok(out)
    }

    /// Sessions active since `since_ms`.
    pub fn sessions_active_count(&self, since_ms: i64) -> Result<usize, StoreError> {
        if let Some(s) = self.shared() {
            return s.sessions_active_count(since_ms);
        }
        let mut n = 0;
        for item in self.session_activity.range(activity_key(since_ms, "")..) {
            item?;
            n += 1;
        }
        Ok(n)
    }

    /// Delete sessions and agents idle since before `cutoff_ms`; returns
    /// how many were removed.
    pub(super) fn expire_idle(&self, cutoff_ms: i64) -> Result<usize, StoreError> {
        self.persist_state()?;
        let sessions = expire(&self.sessions, &self.session_activity, cutoff_ms)?;
        let agents = expire(&self.agents, &self.agent_activity, cutoff_ms)?;
        self.caps.evicted("session", "idle", sessions);
        self.caps.evicted("agent", "idle", agents);
        if sessions + agents > 0 {
            self.wrote();
        }
        Ok(sessions + agents)
    }
}

/// Records of `cached` idle since before `cutoff_ms`, removed with their
/// index entries.
fn expire<T>(
    cached: &super::cache::Cached<T>,
    activity: &sled::Tree,
    cutoff_ms: i64,
) -> Result<usize, StoreError>
where
    T: Clone + serde::Serialize + serde::de::DeserializeOwned + super::cache::Timed,
{
    let mut removed = 0;
    let stale: Vec<_> = activity
        .range(..activity_key(cutoff_ms, ""))
        .collect::<Result<_, _>>()?;
    for (k, _) in stale {
        let id = String::from_utf8_lossy(&k[8.min(k.len())..]).into_owned();
        activity.remove(&k)?;
        if cached.remove_if(&id, |r| r.updated_ms() < cutoff_ms)? {
            removed += 1;
        }
    }
    Ok(removed)
}

/// Write dirty sessions and agents, keeping the activity indexes in step.
pub(super) fn persist(t: &super::Trees) -> Result<usize, StoreError> {
    let mut n = 0;
    for written in [
        (t.sessions.write_dirty()?, &t.session_activity),
        (t.agents.write_dirty()?, &t.agent_activity),
    ] {
        let (written, activity): (Vec<Written>, &sled::Tree) = written;
        for (id, before, now) in &written {
            if *before != Some(*now) {
                if let Some(b) = before {
                    activity.remove(activity_key(*b, id))?;
                }
                activity.insert(activity_key(*now, id), &[])?;
            }
        }
        n += written.len();
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decision::session::{remember_session, Outcome, Record, SessionConfig};
    use std::sync::Arc;

    #[test]
    fn concurrent_updates_are_not_lost() {
        let (store, dir) = super::super::temp_store();
        let store = Arc::new(store);
        let cfg = SessionConfig {
            half_life_secs: 0,
            ..SessionConfig::default()
        };
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let (store, cfg) = (store.clone(), cfg.clone());
                std::thread::spawn(move || {
                    for _ in 0..25 {
                        let rec = Record {
                            steps: vec![("t".into(), vec![], Outcome::Executed)],
                            score: 0.01,
                            decision: "allow".into(),
                            new_request: true,
                            ..Record::default()
                        };
                        store
                            .session_update(
                                "s1",
                                || SessionState::new("s1", "a", 1),
                                |s| remember_session(&cfg, s, &rec, &[], 1),
                            )
                            .unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let s = store.session_get("s1").unwrap().unwrap();
        assert_eq!(s.request_count, 200);
        assert!(
            (s.risk.cumulative - 2.0).abs() < 1e-6,
            "{}",
            s.risk.cumulative
        );
        // Written behind when the store closes, and read back after.
        drop(Arc::try_unwrap(store).ok().expect("sole owner"));
        let again = Store::open(&dir).unwrap();
        assert_eq!(again.session_get("s1").unwrap().unwrap().request_count, 200);
        drop(again);
        std::fs::remove_dir_all(dir).ok();
    }

    #[test]
    fn recent_sessions_and_idle_expiry() {
        let (store, dir) = super::super::temp_store();
        for (id, t) in [("old", 1_000), ("mid", 2_000), ("new", 3_000)] {
            store
                .session_update(id, || SessionState::new(id, "a", t), |s| s.updated_ms = t)
                .unwrap();
        }
        // Touch "old" again: it becomes the most recent.
        store
            .session_update("old", || unreachable!(), |s| s.updated_ms = 4_000)
            .unwrap();
        store.persist_state().unwrap();
        let ids: Vec<String> = store
            .sessions_recent(10)
            .unwrap()
            .into_iter()
            .map(|s| s.session_id.clone())
            .collect();
        assert_eq!(ids, ["old", "new", "mid"]);
        assert_eq!(store.sessions_active_count(2_500).unwrap(), 2);
        assert_eq!(store.expire_idle(2_500).unwrap(), 1);
        assert!(store.session_get("mid").unwrap().is_none());
        assert!(store.session_get("old").unwrap().is_some());
        std::fs::remove_dir_all(dir).ok();
    }

    #[test]
    fn a_derived_session_with_nothing_to_remember_is_written_when_its_conversation_returns() {
        let (store, dir) = super::super::temp_store();
        let cfg = SessionConfig::default();
        let allowed = Record {
            decision: "allow".into(),
            new_request: true,
            session_derived: true,
            ..Record::default()
        };
        let record = |id: &str, rec: &Record| {
            store
                .scopes_record(&cfg, id, "", "agent-a", rec, &[], 1_000)
                .unwrap()
        };
        record("conv-once", &allowed);
        // Judged like a stored session while it stays in memory...
        let seen = store.session_get("conv-once").unwrap().unwrap();
        assert_eq!((seen.request_count, seen.agent_id.as_str()), (1, "agent-a"));
        // ...but neither written nor counted.
        assert_eq!(store.persist_state().unwrap(), 0);
        assert_eq!(store.sessions.len(), 0);
        // Its second turn makes it an ordinary record, first turn included.
        record("conv-once", &allowed);
        assert_eq!(store.persist_state().unwrap(), 1);
        assert_eq!(store.sessions.len(), 1);
        let ids: Vec<_> = store.sessions_recent(10).unwrap();
        assert_eq!(ids[0].request_count, 2);
        // Anything worth remembering is written at once: risk, a refusal,
        // a session id the caller chose.
        let risky = Record {
            score: 0.2,
            ..allowed.clone()
        };
        let blocked = Record {
            decision: "block".into(),
            ..allowed.clone()
        };
        let named = Record {
            session_derived: false,
            ..allowed.clone()
        };
        for (id, rec) in [
            ("conv-risky", &risky),
            ("conv-blocked", &blocked),
            ("named", &named),
        ] {
            record(id, rec);
        }
        assert_eq!(store.persist_state().unwrap(), 3);
        assert_eq!(store.sessions.len(), 4);
        std::fs::remove_dir_all(dir).ok();
    }
}
