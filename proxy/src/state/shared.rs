//! The running gateway on shared state (`ASG_STATE_URL`).
//!
//! [`Store`](super::Store) keeps its synchronous API (the data path's
//! session hooks and the operator handlers call it as they always did);
//! when a shared backend is attached, the session, agent, approval and
//! permit methods are answered by it instead of sled, and sled keeps only
//! what stays local in a fleet: the durable audit log.
//!
//! The Redis backend runs on its own small runtime (`asg-state` threads):
//! its connections, flusher, pub/sub and sweeper never compete with
//! pingora's workers, and a synchronous caller can wait for an answer
//! without deadlocking the runtime it is on (a worker of a multi-thread
//! runtime hands its other tasks off with `block_in_place` first).

use super::approvals::{Gate, Opened};
use super::redis::url::StateUrl;
use super::redis::{RedisOptions, RedisStore};
use super::seam::{
    ApprovalFilter, ApprovalWatch, ControlStore, GateResult, GateStep, Health, LoadQuery, RateKey,
    Resolve, SessionFilter, StageRecord, StateStore, TailEntry,
};
use super::sessions::Scoped;
use super::{AuditEvent, StoreError};
use crate::decision::approvals::{Approval, ApprovalStatus, Release, ResolveError};
use crate::decision::session::{AgentState, Record, SessionConfig, SessionState};
use std::future::Future;
use std::sync::{Arc, Mutex, OnceLock};
use tokio::sync::watch;

pub struct Shared {
    redis: Arc<RedisStore>,
    handle: tokio::runtime::Handle,
    runtime: Mutex<Option<tokio::runtime::Runtime>>,
    /// Stands in for a policy on records that carry only a tail entry.
    no_session: Arc<SessionConfig>,
    /// Keys approval bindings for the whole fleet (kept in the store, so
    /// every gateway computes the same fingerprint for the same call).
    binding_key: Arc<OnceLock<[u8; 32]>>,
}

impl Drop for Shared {
    fn drop(&mut self) {
        // Dropping a runtime inside another one panics; this never blocks.
        if let Some(rt) = self.runtime.lock().ok().and_then(|mut r| r.take()) {
            rt.shutdown_background();
        }
    }
}

fn unavailable(e: impl std::fmt::Display) -> StoreError {
    StoreError::Shared(e.to_string())
}

/// The shared state cannot be used at start: the URL, the store's runtime,
/// or a store that answers but refuses this gateway.
#[derive(Debug, thiserror::Error)]
pub enum SharedStateError {
    #[error(transparent)]
    Url(#[from] crate::state::redis::url::UrlError),
    #[error("cannot start the shared-state runtime: {0}")]
    Runtime(std::io::Error),
    /// Settings the backend cannot use (the CA file, the sentinel client).
    #[error("{0}")]
    Setup(String),
    #[error("ASG_STATE_URL: {url} refused the connection ({detail}); check ASG_STATE_PASSWORD and the user's permissions")]
    Refused { url: String, detail: String },
}

impl Shared {
    /// Connect (waiting up to the URL's connect timeout) and read or create
    /// the fleet's binding key. A store that cannot be reached yet is no
    /// reason not to start (it is a reason to refuse approvals): the key is
    /// read in the background once it answers. A store that answers but
    /// refuses us (credentials, permissions) is a misconfiguration, and
    /// stops the start with one clear sentence.
    pub fn start(url: StateUrl, opts: RedisOptions) -> Result<Shared, SharedStateError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("asg-state")
            .enable_all()
            .build()
            .map_err(SharedStateError::Runtime)?;
        let handle = runtime.handle().clone();
        let shown = url.display();
        let redis =
            Arc::new(on(&handle, RedisStore::start(url, opts)).map_err(SharedStateError::Setup)?);
        let key = Arc::new(OnceLock::new());
        let r = redis.clone();
        match on(&handle, async move { r.fleet_key().await }) {
            Ok(k) => {
                let _ = key.set(k);
            }
            Err(e) => {
                let detail = redis.health().detail.unwrap_or_default();
                if refused_us(&detail) {
                    return Err(SharedStateError::Refused {
                        url: shown.to_string(),
                        detail,
                    });
                }
                tracing::warn!(backend = %shown, error = %e, "shared state unreachable at start: approvals are refused until it answers; risk and rate limits are decided locally");
                handle.spawn(read_key_later(redis.clone(), key.clone()));
            }
        }
        Ok(Shared {
            redis,
            handle,
            runtime: Mutex::new(Some(runtime)),
            binding_key: key,
            no_session: Arc::new(SessionConfig::default()),
        })
    }

    /// The fleet's binding key, once read from the store.
    pub fn binding_key(&self) -> Option<[u8; 32]> {
        self.binding_key.get().copied()
    }

    /// Approvals need the fleet's key: a fingerprint made with another
    /// would never match the same call through another gateway.
    fn keyed(&self) -> Result<(), StoreError> {
        match self.binding_key.get() {
            Some(_) => Ok(()),
            None => Err(unavailable(
                "the fleet's approval key has not been read from the shared state yet",
            )),
        }
    }

    pub fn backend(&self) -> &RedisStore {
        &self.redis
    }

    pub fn health(&self) -> Health {
        self.redis.health()
    }

    fn run<T: Send + 'static>(&self, f: impl Future<Output = T> + Send + 'static) -> T {
        on(&self.handle, f)
    }

    pub fn scopes_load(
        &self,
        cfg: &SessionConfig,
        session_id: &str,
        agent_id: &str,
    ) -> Result<Scoped, StoreError> {
        let (r, s, a, scope) = (
            self.redis.clone(),
            session_id.to_string(),
            agent_id.to_string(),
            cfg.agent_scope,
        );
        let view = self.run(async move {
            r.load(&LoadQuery {
                session_id: &s,
                risk_agent: &a,
                agent_scope: scope,
                rate: None,
            })
            .await
        });
        let view = view.map_err(unavailable)?;
        if view.unavailable {
            return Err(unavailable("no session state could be read"));
        }
        Ok(Scoped {
            session: view.session,
            agent: view.agent,
        })
    }

    pub fn session_get(&self, id: &str) -> Result<Option<Arc<SessionState>>, StoreError> {
        let cfg = SessionConfig::default();
        Ok(self.scopes_load(&cfg, id, "")?.session)
    }

    pub fn agent_get(&self, id: &str) -> Result<Option<Arc<AgentState>>, StoreError> {
        let cfg = SessionConfig {
            agent_scope: true,
            ..SessionConfig::default()
        };
        Ok(self.scopes_load(&cfg, "", id)?.agent)
    }

    /// Queued and sent in the background (never awaited on the request
    /// path); kept locally and replayed while the store is down.
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
    ) {
        self.redis.record(StageRecord {
            session_id: session_id.to_string(),
            owner_id: owner_id.to_string(),
            risk_agent: if cfg.agent_scope {
                agent_id.to_string()
            } else {
                String::new()
            },
            record: rec.clone(),
            memory: memory.to_vec(),
            now_ms,
            tail: None,
            session: Arc::new(cfg.clone()),
        });
    }

    /// Sessions active since `since_ms` (the recent-sessions index).
    pub fn sessions_active_count(&self, since_ms: i64) -> Result<usize, StoreError> {
        let r = self.redis.clone();
        self.run(async move { r.sessions_active(since_ms).await })
            .map(|n| n as usize)
            .map_err(unavailable)
    }

    pub fn sessions_recent(&self, limit: usize) -> Result<Vec<Arc<SessionState>>, StoreError> {
        let r = self.redis.clone();
        self.run(async move { r.sessions(SessionFilter { limit }).await })
            .map_err(unavailable)
    }

    /// One atomic gate step; `Err` when the store could not run it (the
    /// caller refuses the call).
    pub fn approval_gate(
        &self,
        release: Release,
        template: &Approval,
        permit: Option<&str>,
    ) -> Result<Gate, StoreError> {
        self.keyed()?;
        let step = GateStep {
            template: template.clone(),
            release,
            permit: permit
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .map(str::to_string),
        };
        let r = self.redis.clone();
        let out = self.run(async move { r.gate(vec![step]).await });
        match out.map_err(unavailable)?.pop() {
            Some(GateResult::Released {
                approval,
                by_permit,
            }) => Ok(Gate::Released {
                approval,
                by_permit,
            }),
            Some(GateResult::Waiting { opened, rejected }) => {
                Ok(Gate::Waiting { opened, rejected })
            }
            Some(GateResult::Unavailable) | None => Err(unavailable(
                "the approval gate could not run (shared state unreachable)",
            )),
        }
    }

    pub fn approval_open(&self, template: &Approval) -> Result<Opened, StoreError> {
        self.keyed()?;
        let (r, t) = (self.redis.clone(), template.clone());
        self.run(async move { r.submit(t).await })
            .map_err(unavailable)
    }

    pub fn approval_get(&self, id: &str, now_ms: i64) -> Result<Option<Approval>, StoreError> {
        let (r, id) = (self.redis.clone(), id.to_string());
        self.run(async move { r.approval(&id, now_ms).await })
            .map_err(unavailable)
    }

    #[allow(clippy::type_complexity)]
    pub fn approval_resolve(
        &self,
        r: Resolve,
    ) -> Result<Option<Result<(Approval, Option<String>), ResolveError>>, StoreError> {
        let redis = self.redis.clone();
        self.run(async move { redis.resolve(r).await })
            .map_err(unavailable)
    }

    pub fn approvals_list(&self, f: ApprovalFilter) -> Result<Vec<Approval>, StoreError> {
        let r = self.redis.clone();
        self.run(async move { r.approvals(f).await })
            .map_err(unavailable)
    }

    /// A held call's subscription: the status it starts from, changed once
    /// the approval leaves `pending` (by pub/sub from any gateway, or by
    /// polling while pub/sub is down). Nothing arrives while the store is
    /// unreachable, so the held call is refused at its deadline.
    pub fn approval_watch(
        &self,
        id: &str,
        current: ApprovalStatus,
    ) -> watch::Receiver<ApprovalStatus> {
        let (tx, rx) = watch::channel(current);
        let mut w = self.redis.watch(id);
        self.handle.spawn(async move {
            tokio::select! {
                s = w.changed() => {
                    // No such approval any more: wake the caller to re-read.
                    tx.send_replace(s.unwrap_or(ApprovalStatus::Expired));
                }
                _ = tx.closed() => {}
            }
        });
        rx
    }

    /// One request against a rate limit shared by the fleet (GCRA on the
    /// store's clock): `per_minute` sustained, `burst` at once. While the
    /// store is down this gateway decides alone (counted as degraded).
    pub async fn rate_allow(&self, key: &str, per_minute: u32, burst: u32) -> bool {
        let (r, key) = (self.redis.clone(), key.to_string());
        let view = self
            .handle
            .spawn(async move {
                r.load(&LoadQuery {
                    rate: Some(RateKey {
                        key: &key,
                        per_minute,
                        burst,
                    }),
                    ..LoadQuery::default()
                })
                .await
            })
            .await;
        match view {
            Ok(Ok(v)) => v.rate.is_none_or(|r| r.allowed),
            // The backend never fails a load (it degrades); a task that
            // could not run refuses.
            _ => false,
        }
    }

    /// Add an audit record (masked, as stored) to the fleet's console tail
    /// (a capped stream); queued like risk records, never awaited.
    pub fn tail_push(&self, event: &AuditEvent) {
        self.redis.record(StageRecord {
            session_id: String::new(),
            owner_id: String::new(),
            risk_agent: String::new(),
            record: Record::default(),
            memory: Vec::new(),
            now_ms: super::now_ms(),
            tail: Some(TailEntry {
                seq: 0,
                gateway: String::new(),
                event: event.clone(),
            }),
            session: self.no_session.clone(),
        });
    }

    /// The fleet's tail: entries after `after` oldest first, or the newest
    /// `n` oldest first. Each event's `seq` is its place in the tail.
    pub fn tail(&self, after: Option<u64>, n: usize) -> Result<Vec<AuditEvent>, StoreError> {
        let r = self.redis.clone();
        let entries = self
            .run(async move { ControlStore::tail(&*r, after, n).await })
            .map_err(unavailable)?;
        Ok(entries
            .into_iter()
            .map(|t| AuditEvent {
                seq: t.seq,
                ..t.event
            })
            .collect())
    }

    /// Send queued risk records (shutdown).
    pub fn flush(&self) {
        let r = self.redis.clone();
        self.run(async move { r.flush().await })
    }
}

/// Whether the store answered and refused this client (as opposed to not
/// answering at all).
fn refused_us(detail: &str) -> bool {
    let d = detail.to_ascii_lowercase();
    ["noauth", "wrongpass", "auth", "noperm", "password"]
        .iter()
        .any(|w| d.contains(w))
}

/// Read the fleet's key once the store answers (the gateway started while
/// it did not).
async fn read_key_later(redis: Arc<RedisStore>, key: Arc<OnceLock<[u8; 32]>>) {
    loop {
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        if !redis.health().connected {
            continue;
        }
        if let Ok(k) = redis.fleet_key().await {
            let _ = key.set(k);
            tracing::info!("the fleet's approval key was read: approvals are shared");
            return;
        }
    }
}

/// Run `f` on `handle` and wait for it from any thread: a worker of a
/// multi-thread runtime lets its other tasks move first; a current-thread
/// runtime's thread or a plain thread simply waits (the future runs on
/// the state runtime's own threads, so waiting cannot deadlock it).
fn on<T: Send + 'static>(
    handle: &tokio::runtime::Handle,
    f: impl Future<Output = T> + Send + 'static,
) -> T {
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    handle.spawn(async move {
        let _ = tx.send(f.await);
    });
    let wait = move || {
        rx.recv()
            .expect("the shared-state runtime runs until the store drops")
    };
    let multi_thread = tokio::runtime::Handle::try_current()
        .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
    if multi_thread {
        tokio::task::block_in_place(wait)
    } else {
        wait()
    }
}

#[cfg(test)]
mod tests {
    use super::on;

    fn state_runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap()
    }

    async fn answer() -> u32 {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        42
    }

    #[test]
    fn a_plain_thread_waits_for_the_state_runtime() {
        let rt = state_runtime();
        assert_eq!(on(rt.handle(), answer()), 42);
        rt.shutdown_background();
    }

    #[test]
    fn a_current_thread_runtime_waits_without_deadlock() {
        let rt = state_runtime();
        let h = rt.handle().clone();
        let local = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        assert_eq!(local.block_on(async move { on(&h, answer()) }), 42);
        rt.shutdown_background();
    }

    #[test]
    fn every_worker_of_a_multi_thread_runtime_may_wait_at_once() {
        let rt = state_runtime();
        let h = rt.handle().clone();
        let workers = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let sum: u32 = workers.block_on(async move {
            let tasks: Vec<_> = (0..8)
                .map(|_| {
                    let h = h.clone();
                    tokio::spawn(async move { on(&h, answer()) })
                })
                .collect();
            let mut sum = 0;
            for t in tasks {
                sum += t.await.unwrap();
            }
            sum
        });
        assert_eq!(sum, 8 * 42);
        rt.shutdown_background();
        workers.shutdown_background();
    }
}
