//! Sessions and agents: their risk memory (see
//! [`crate::decision::session`]), updated atomically so concurrent
//! requests of one session never lose each other's contribution.

use super::{decode, encode, Store, StoreError};
use crate::decision::session::{
    remember_agent, remember_session, AgentState, Record, SessionConfig, SessionState,
};

/// The stored scopes of one request.
#[derive(Debug, Clone, Default)]
pub struct Scoped {
    pub session: Option<SessionState>,
    pub agent: Option<AgentState>,
}

fn activity_key(updated_ms: i64, session_id: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(8 + session_id.len());
    k.extend_from_slice(&(updated_ms.max(0) as u64).to_be_bytes());
    k.extend_from_slice(session_id.as_bytes());
    k
}

impl Store {
    pub fn session_get(&self, id: &str) -> Result<Option<SessionState>, StoreError> {
        self.sessions
            .get(id.as_bytes())?
            .map(|v| decode("sessions", &v))
            .transpose()
    }

    pub fn agent_get(&self, id: &str) -> Result<Option<AgentState>, StoreError> {
        self.agents
            .get(id.as_bytes())?
            .map(|v| decode("agents", &v))
            .transpose()
    }

    /// Read-modify-write a session atomically: `f` gets the current state
    /// (or `fresh` for a new session) and may run more than once under
    /// contention, so it must be a pure function of its input.
    pub fn session_update(
        &self,
        id: &str,
        fresh: impl Fn() -> SessionState,
        f: impl Fn(&mut SessionState),
    ) -> Result<SessionState, StoreError> {
        let (old, new) = cas_update(&self.sessions, "sessions", id, fresh, f)?;
        if old.as_ref().map(|o| o.updated_ms) != Some(new.updated_ms) {
            if let Some(o) = &old {
                self.session_activity
                    .remove(activity_key(o.updated_ms, id))?;
            }
            self.session_activity
                .insert(activity_key(new.updated_ms, id), &[])?;
        }
        self.wrote();
        Ok(new)
    }

    pub fn agent_update(
        &self,
        id: &str,
        fresh: impl Fn() -> AgentState,
        f: impl Fn(&mut AgentState),
    ) -> Result<AgentState, StoreError> {
        let (_, new) = cas_update(&self.agents, "agents", id, fresh, f)?;
        self.wrote();
        Ok(new)
    }

    /// Load the session (if named) and the agent (if named and the agent
    /// scope is on).
    pub fn scopes_load(
        &self,
        cfg: &SessionConfig,
        session_id: &str,
        agent_id: &str,
    ) -> Result<Scoped, StoreError> {
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
    /// owned by `owner_id`; never written by another agent) and in the
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
        if !session_id.is_empty() {
            let owned = |s: &SessionState| s.agent_id.is_empty() || s.agent_id == owner_id;
            let current = self.session_get(session_id)?;
            if current.as_ref().is_none_or(owned) {
                self.session_update(
                    session_id,
                    || SessionState::new(session_id, owner_id, now_ms),
                    |s| {
                        if owned(s) {
                            remember_session(cfg, s, rec, memory, now_ms)
                        }
                    },
                )?;
            }
        }
        if !agent_id.is_empty() && cfg.agent_scope {
            self.agent_update(
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
        let drop_it = |r: &mut crate::decision::session::RiskState| {
            r.staged.retain(|s| s.approval_id != approval_id)
        };
        if !session_id.is_empty() && self.session_get(session_id)?.is_some() {
            cas_existing(
                &self.sessions,
                "sessions",
                session_id,
                |s: &mut SessionState| drop_it(&mut s.risk),
            )?;
        }
        if !agent_id.is_empty() && self.agent_get(agent_id)?.is_some() {
            cas_existing(&self.agents, "agents", agent_id, |a: &mut AgentState| {
                drop_it(&mut a.risk)
            })?;
        }
        self.wrote();
        Ok(())
    }

    /// Sessions by most recent activity, newest first.
    pub fn sessions_recent(&self, limit: usize) -> Result<Vec<SessionState>, StoreError> {
        let mut out: Vec<SessionState> = Vec::new();
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
        let mut n = 0;
        for item in self
            .session_activity
            .range(activity_key(since_ms, "")..)
            .rev()
        {
            item?;
            n += 1;
        }
        Ok(n)
    }

    /// Delete sessions and agents idle since before `cutoff_ms`; returns
    /// how many were removed.
    pub(super) fn expire_idle(&self, cutoff_ms: i64) -> Result<usize, StoreError> {
        let mut removed = 0;
        let stale: Vec<_> = self
            .session_activity
            .range(..activity_key(cutoff_ms, ""))
            .collect::<Result<_, _>>()?;
        for (k, _) in stale {
            let id = String::from_utf8_lossy(&k[8.min(k.len())..]).into_owned();
            self.session_activity.remove(&k)?;
            // Only if it was not touched since (a newer activity key exists then).
            if let Some(s) = self.session_get(&id)? {
                if s.updated_ms < cutoff_ms {
                    self.sessions.remove(id.as_bytes())?;
                    removed += 1;
                }
            }
        }
        for item in self.agents.iter() {
            let (k, v) = item?;
            let a: AgentState = decode("agents", &v)?;
            if a.updated_ms < cutoff_ms {
                self.agents.remove(k)?;
                removed += 1;
            }
        }
        if removed > 0 {
            self.wrote();
        }
        Ok(removed)
    }
}

/// Like [`cas_update`], but only if the record exists.
fn cas_existing<T>(
    tree: &sled::Tree,
    name: &'static str,
    id: &str,
    f: impl Fn(&mut T),
) -> Result<(), StoreError>
where
    T: serde::Serialize + serde::de::DeserializeOwned,
{
    loop {
        let Some(current) = tree.get(id.as_bytes())? else {
            return Ok(());
        };
        let mut new: T = decode(name, &current)?;
        f(&mut new);
        let bytes = encode(name, &new)?;
        if tree
            .compare_and_swap(id.as_bytes(), Some(current), Some(bytes))?
            .is_ok()
        {
            return Ok(());
        }
    }
}

/// Compare-and-swap loop over one JSON record; returns (old, new).
fn cas_update<T>(
    tree: &sled::Tree,
    name: &'static str,
    id: &str,
    fresh: impl Fn() -> T,
    f: impl Fn(&mut T),
) -> Result<(Option<T>, T), StoreError>
where
    T: serde::Serialize + serde::de::DeserializeOwned,
{
    loop {
        let current = tree.get(id.as_bytes())?;
        let old: Option<T> = current.as_ref().map(|v| decode(name, v)).transpose()?;
        let mut new = match &current {
            Some(v) => decode(name, v)?,
            None => fresh(),
        };
        f(&mut new);
        let bytes = encode(name, &new)?;
        match tree.compare_and_swap(id.as_bytes(), current, Some(bytes))? {
            Ok(()) => return Ok((old, new)),
            Err(_) => continue,
        }
    }
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
        let ids: Vec<String> = store
            .sessions_recent(10)
            .unwrap()
            .into_iter()
            .map(|s| s.session_id)
            .collect();
        assert_eq!(ids, ["old", "new", "mid"]);
        assert_eq!(store.sessions_active_count(2_500).unwrap(), 2);
        assert_eq!(store.expire_idle(2_500).unwrap(), 1);
        assert!(store.session_get("mid").unwrap().is_none());
        assert!(store.session_get("old").unwrap().is_some());
        std::fs::remove_dir_all(dir).ok();
    }
}
