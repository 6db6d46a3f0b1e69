//! Caps on what the state keeps, so distinct ids cannot grow memory and
//! disk without bound: sessions and agents beyond their cap are forgotten
//! least recently active first (an activity index orders them), and new
//! pending approvals beyond theirs are refused (see `approvals.rs`).
//!
//! Sessions and agents are trimmed by the background writer right after it
//! persists (every 500 ms), so a burst of new ids overshoots the cap by at
//! most what arrives in one interval.

use super::cache::{Cached, Timed};
use super::sessions::activity_key;
use super::StoreError;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};

/// Told about every forgotten record: `(scope, reason, how many)` with
/// scope ∈ {session, agent} and reason ∈ {cap, idle}.
pub type EvictObserver = Arc<dyn Fn(&'static str, &'static str, u64) + Send + Sync>;

pub struct Caps {
    pub sessions: AtomicUsize,
    pub agents: AtomicUsize,
    pub pending_approvals: AtomicUsize,
    observer: RwLock<Option<EvictObserver>>,
}

/// Defaults match `[limits]` in the runtime configuration.
impl Default for Caps {
    fn default() -> Self {
        use super::config::{
            DEFAULT_MAX_AGENTS, DEFAULT_MAX_PENDING_APPROVALS, DEFAULT_MAX_SESSIONS,
        };
        Caps {
            sessions: AtomicUsize::new(DEFAULT_MAX_SESSIONS),
            agents: AtomicUsize::new(DEFAULT_MAX_AGENTS),
            pending_approvals: AtomicUsize::new(DEFAULT_MAX_PENDING_APPROVALS),
            observer: RwLock::new(None),
        }
    }
}

impl Caps {
    pub fn set(&self, sessions: usize, agents: usize, pending_approvals: usize) {
        self.sessions.store(sessions.max(1), Ordering::Relaxed);
        self.agents.store(agents.max(1), Ordering::Relaxed);
        self.pending_approvals
            .store(pending_approvals.max(1), Ordering::Relaxed);
    }

    pub fn observe(&self, f: EvictObserver) {
        *self.observer.write().unwrap_or_else(|p| p.into_inner()) = Some(f);
    }

    pub fn evicted(&self, scope: &'static str, reason: &'static str, n: usize) {
        if n == 0 {
            return;
        }
        if let Some(f) = self
            .observer
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
        {
            f(scope, reason, n as u64);
        }
    }
}

/// Forget the least recently active records of `cached` until at most
/// `cap` remain; returns how many went. `activity` orders the persisted
/// records (call right after persisting, when every record is indexed).
pub(super) fn trim<T>(
    cached: &Cached<T>,
    activity: &sled::Tree,
    cap: usize,
) -> Result<usize, StoreError>
where
    T: Clone + Serialize + DeserializeOwned + Timed,
{
    let mut evicted = 0;
    while cached.len() > cap {
        let Some((key, _)) = activity.first()? else {
            break; // nothing indexed left to evict
        };
        activity.remove(&key)?;
        if key.len() < 8 {
            continue;
        }
        let ms = i64::from_be_bytes(key[..8].try_into().expect("8 bytes")).max(0);
        let id = String::from_utf8_lossy(&key[8..]).into_owned();
        // Only if it was not touched since it was indexed (a busy record
        // has a newer index entry and stays).
        if cached.remove_if(&id, |r| r.updated_ms() <= ms)? {
            evicted += 1;
        }
    }
    Ok(evicted)
}

/// Index every stored record by activity (a store written before agents
/// had an activity index).
pub(super) fn reindex<T>(cached: &Cached<T>, activity: &sled::Tree) -> Result<(), StoreError>
where
    T: Clone + Serialize + DeserializeOwned + Timed,
{
    if !activity.is_empty() || cached.is_empty() {
        return Ok(());
    }
    for id in cached.stored_ids()? {
        if let Some(r) = cached.get(&id)? {
            activity.insert(activity_key(r.updated_ms(), &id), &[])?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::temp_store;
    use crate::decision::session::{AgentState, SessionState};
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;

    #[test]
    fn least_recently_active_sessions_and_agents_go_first() {
        let (store, dir) = temp_store();
        store.caps.set(3, 2, 10);
        let seen = Arc::new(AtomicU64::new(0));
        let s2 = seen.clone();
        store.caps.observe(Arc::new(move |scope, reason, n| {
            assert_eq!(reason, "cap");
            if scope == "session" {
                s2.fetch_add(n, Ordering::Relaxed);
            }
        }));
        for (i, id) in ["s0", "s1", "s2", "s3", "s4"].iter().enumerate() {
            let t = 1_000 * (i as i64 + 1);
            store
                .session_update(id, || SessionState::new(id, "a", t), |s| s.updated_ms = t)
                .unwrap();
            store
                .agent_update(id, || AgentState::new(id, t), |a| a.updated_ms = t)
                .unwrap();
        }
        // s0 is touched again: now the most recent.
        store
            .session_update("s0", || unreachable!(), |s| s.updated_ms = 9_000)
            .unwrap();
        store.persist_state().unwrap();
        assert_eq!(store.enforce_caps().unwrap(), (2, 3));
        let kept = |id: &str| store.session_get(id).unwrap().is_some();
        assert!(kept("s0") && kept("s3") && kept("s4"));
        assert!(!kept("s1") && !kept("s2"));
        assert!(store.agent_get("s4").unwrap().is_some());
        assert!(store.agent_get("s2").unwrap().is_none());
        assert_eq!(seen.load(Ordering::Relaxed), 2);
        assert_eq!(store.sessions_recent(10).unwrap().len(), 3);
        // A new session: the least recent (s3) goes.
        store
            .session_update("s5", || SessionState::new("s5", "a", 10_000), |_| {})
            .unwrap();
        store.persist_state().unwrap();
        assert_eq!(store.enforce_caps().unwrap(), (1, 0));
        assert!(!kept("s3") && kept("s5"));
        std::fs::remove_dir_all(dir).ok();
    }
}
