//! Durable state on sled: audit log, sessions and agents, approvals. One
//! database in the data folder; each concern is a tree:
//!
//! | tree | key | value |
//! |---|---|---|
//! | `audit` | seq (u64 BE) | [`AuditEvent`] JSON |
//! | `audit_session` | len-prefixed session id ‖ seq | – (timeline index) |
//! | `sessions` | session id | [`SessionState`] JSON |
//! | `session_activity` | updated ms ‖ session id | – (recent-sessions index) |
//! | `agents` | agent id | [`AgentState`] JSON |
//! | `agent_activity` | updated ms ‖ agent id | – (least recently active first, for caps) |
//! | `approvals` | 16-byte id (time-ordered) | [`Approval`] JSON |
//! | `approval_slots` | binding fingerprint | approval id (the live one) |
//! | `permits` | SHA-256 of a permit | approval id |
//! | `meta` | name | value (`schema`; `audit_applied`: one past the last journaled seq in `audit`) |
//!
//! Audit records are appended to a journal first ([`journal`]: one writer
//! thread, group commit with `fdatasync`), which applies them to the
//! `audit` trees behind; other writes are acknowledged only once sled has
//! flushed them (see [`durable`], group commit). sled is unmaintained upstream (0.34.7 is the last stable
//! release), so the rest of the gateway talks to [`Store`], never to sled.
//!
//! [`SessionState`]: crate::decision::session::SessionState
//! [`AgentState`]: crate::decision::session::AgentState
//! [`Approval`]: crate::decision::approvals::Approval

pub mod approvals;
pub mod audit;
mod cache;
pub mod caps;
pub mod config;
pub mod durable;
pub mod journal;
mod keys;
pub mod redis;
pub mod retention;
pub mod seam;
pub mod sessions;
pub mod shared;
pub mod stats;
pub mod stdout;

pub use audit::{AuditEvent, AuditFinding};
pub use keys::{load_or_create_mask_key, KeyError};

use crate::decision::session::{AgentState, SessionState};
use cache::Cached;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("data folder {path} is locked by another process (is another asg running with the same ASG_DATA_DIR?)")]
    Locked { path: PathBuf },
    #[error("cannot open data folder {path}: {message}")]
    Open { path: PathBuf, message: String },
    #[error("storage error: {0}")]
    Sled(#[from] sled::Error),
    #[error("corrupt record in {tree}: {message}")]
    Corrupt { tree: &'static str, message: String },
    #[error("state could not be written to disk: {0}")]
    NotDurable(String),
    #[error("{cap} approvals are already waiting for an operator, the most this gateway keeps; resolve or deny some (or raise ASG_MAX_PENDING_APPROVALS) and retry")]
    PendingCap { cap: usize },
    #[error("shared state unavailable: {0}")]
    Shared(String),
}

/// The on-disk layout version this build reads and writes.
const SCHEMA: &[u8] = b"1";

pub struct Store {
    db: sled::Db,
    audit: sled::Tree,
    audit_session: sled::Tree,
    /// Sessions and agents: in memory, written behind (see [`cache`]).
    sessions: Arc<Cached<SessionState>>,
    session_activity: sled::Tree,
    agents: Arc<Cached<AgentState>>,
    agent_activity: sled::Tree,
    /// How many sessions, agents and pending approvals are kept.
    pub caps: Arc<caps::Caps>,
    /// Approvals waiting for an operator (see `approvals.rs`).
    pending: approvals::PendingCount,
    approvals: sled::Tree,
    approval_slots: sled::Tree,
    permits: sled::Tree,
    path: PathBuf,
    committer: Arc<durable::Committer>,
    writer: StateWriter,
    journal: journal::Journal,
    /// Bytes of audit values, maintained by appends and retention; the
    /// records that existed at open are added once by the retention thread.
    audit_bytes: AtomicU64,
    audit_counted: AtomicBool,
    /// Last audit seq at open.
    audit_boundary: Option<u64>,
    pub stats: stats::Stats,
    watchers: approvals::Watchers,
    /// `ASG_AUDIT_STDOUT`: audit records also go to stdout as JSON lines.
    audit_tee: std::sync::OnceLock<stdout::AuditTee>,
    /// `ASG_STATE_URL`: sessions, agents, approvals and permits live there
    /// (see [`shared`]); the audit log stays here.
    shared: std::sync::OnceLock<shared::Shared>,
    /// Audit views read the fleet's tail (`asg control`).
    fleet_tail: AtomicBool,
}

/// sled's page cache. sled's resident memory is several times this figure
/// (its default, 1 GiB, let a sidecar pass 1 GB under sustained load).
/// Hot session state has its own cache (`cache.rs`) and the audit log is
/// mostly appended, so a small cache costs no measurable throughput
/// (inspect load: flat ~85 MB resident at 8 MiB).
const PAGE_CACHE_BYTES: u64 = 8 * 1024 * 1024;

impl Store {
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
        std::fs::create_dir_all(dir).map_err(|e| StoreError::Open {
            path: dir.to_path_buf(),
            message: e.to_string(),
        })?;
        let path = dir.join("asg.sled");
        // sled recovers the longest valid prefix of its log and says
        // nothing when that prefix is empty; a folder that held state and
        // now opens without our schema marker is corrupt, not new.
        let had_state = std::fs::metadata(path.join("db")).is_ok_and(|m| m.len() > 0);
        // No timer flush: the committer flushes whatever was written.
        let db = sled::Config::new()
            .path(&path)
            .cache_capacity(PAGE_CACHE_BYTES)
            .flush_every_ms(None)
            .open()
            .map_err(|e| classify(&path, e))?;
        let open = |name: &str| db.open_tree(name).map_err(|e| classify(&path, e));
        let meta = open("meta")?;
        match meta.get("schema").map_err(|e| classify(&path, e))? {
            Some(v) if v.as_ref() != SCHEMA => {
                return Err(StoreError::Open {
                    path: path.clone(),
                    message: format!(
                    "it was written by a different asg version (schema {}, this build reads {})",
                    String::from_utf8_lossy(&v),
                    String::from_utf8_lossy(SCHEMA)
                ),
                })
            }
            Some(_) => {}
            None if had_state => {
                return Err(StoreError::Open {
                    path: path.clone(),
                    message: "it holds data but none of it could be read (corrupt log?); move the folder aside to start empty, or restore it from a backup".to_string(),
                })
            }
            None => {
                meta.insert("schema", SCHEMA)
                    .map_err(|e| classify(&path, e))?;
                db.flush().map_err(|e| classify(&path, e))?;
            }
        }
        let sessions = Arc::new(Cached::new("sessions", open("sessions")?));
        let agents = Arc::new(Cached::new("agents", open("agents")?));
        let session_activity = open("session_activity")?;
        let agent_activity = open("agent_activity")?;
        caps::reindex(&agents, &agent_activity)?;
        let caps = Arc::new(caps::Caps::default());
        let committer = Arc::new(durable::Committer::start(db.clone()));
        let writer = StateWriter::start(
            Trees {
                sessions: sessions.clone(),
                agents: agents.clone(),
                session_activity: session_activity.clone(),
                agent_activity: agent_activity.clone(),
                caps: caps.clone(),
            },
            committer.clone(),
        );
        let audit = open("audit")?;
        let audit_session = open("audit_session")?;
        let journal = journal::Journal::open(
            &dir.join("audit.journal"),
            journal::Trees {
                db: db.clone(),
                audit: audit.clone(),
                audit_session: audit_session.clone(),
                meta,
            },
        )?;
        let approvals_tree = open("approvals")?;
        let pending = approvals::PendingCount::load(&approvals_tree)?;
        let store = Store {
            audit,
            audit_session,
            journal,
            sessions,
            session_activity,
            agents,
            agent_activity,
            caps,
            pending,
            approvals: approvals_tree,
            approval_slots: open("approval_slots")?,
            permits: open("permits")?,
            committer,
            writer,
            db,
            path,
            audit_bytes: AtomicU64::new(0),
            audit_counted: AtomicBool::new(false),
            audit_boundary: None,
            stats: stats::Stats::default(),
            watchers: approvals::Watchers::default(),
            audit_tee: std::sync::OnceLock::new(),
            shared: std::sync::OnceLock::new(),
            fleet_tail: AtomicBool::new(false),
        };
        let mut store = store;
        store.audit_boundary = store.audit_last_seq()?;
        Ok(store)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Also write every audit record appended from now on to stdout (one
    /// JSON line each; see [`stdout`]).
    pub fn audit_to_stdout(&self) {
        let _ = self
            .audit_tee
            .set(stdout::AuditTee::start(std::io::stdout()));
    }

    /// Keep sessions, agents, approvals and permits in shared state from
    /// now on (call once, before serving).
    pub fn share(&self, s: shared::Shared) {
        let _ = self.shared.set(s);
    }

    /// The shared backend, if attached.
    pub fn shared(&self) -> Option<&shared::Shared> {
        self.shared.get()
    }

    /// Audit lines dropped because stdout was not read fast enough.
    pub fn audit_stdout_dropped(&self) -> u64 {
        self.audit_tee.get().map_or(0, |t| t.dropped())
    }

    /// Readiness probe: the database answers a read.
    pub fn ping(&self) -> bool {
        self.db.get(b"__ping").is_ok()
    }

    pub fn db(&self) -> &sled::Db {
        &self.db
    }

    /// Flush everything now (blocking).
    pub fn flush(&self) -> Result<(), StoreError> {
        if let Some(s) = self.shared() {
            s.flush();
        }
        self.db.flush()?;
        Ok(())
    }

    /// Note a write for the committer; call after every sled write.
    fn wrote(&self) -> durable::Ticket {
        self.committer.written()
    }

    /// Everything written so far (by anyone), to wait on.
    pub fn ticket(&self) -> Ticket {
        Ticket {
            state: self.committer.ticket(),
            audit: self.journal.end(),
        }
    }

    /// Wait until every write made so far is on disk. Call before
    /// acknowledging (answering) anything that was written.
    pub async fn durable(&self) -> Result<(), StoreError> {
        self.durable_until(self.ticket()).await
    }

    pub async fn durable_until(&self, t: Ticket) -> Result<(), StoreError> {
        self.journal.durable(t.audit).await?;
        self.committer.wait(t.state).await
    }

    /// Start writing everything up to `t` to disk now, without waiting:
    /// a caller that will check [`Store::is_durable`] after a timer finds
    /// the commit done instead of starting it then.
    pub fn hasten(&self, t: Ticket) {
        self.journal.want(t.audit);
        self.committer.want(t.state);
    }

    /// Is everything up to `t` on disk already? (No waiting, no wake.)
    pub fn is_durable(&self, t: Ticket) -> bool {
        self.journal.is_durable(t.audit) && self.committer.is_durable(t.state)
    }

    /// About how long an audit record appended now takes to be durable.
    pub fn audit_expected_wait(&self) -> std::time::Duration {
        self.journal.expected_wait()
    }

    /// Blocking variant for synchronous hooks.
    pub fn durable_blocking(&self, t: Ticket) -> Result<(), StoreError> {
        self.journal.durable_blocking(t.audit)?;
        self.committer.wait_blocking(t.state)
    }
}

/// A point in the write sequence: "everything written up to here", audit
/// journal and sled state alike.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ticket {
    state: durable::Ticket,
    audit: u64,
}

impl Drop for Store {
    fn drop(&mut self) {
        // Last write of sessions and agents and of the audit journal (which
        // flushes sled), then the committer flushes what is left.
        self.writer.stop();
        self.journal.stop();
    }
}

/// How often changed sessions and agents are written: a busy session is
/// written at most twice a second, however many requests it serves. A
/// crash loses at most this much session *risk* (never audit records or
/// approval decisions, which are durable before they are acknowledged).
const STATE_WRITE_INTERVAL: std::time::Duration = std::time::Duration::from_millis(500);

/// What the background writer persists and trims.
#[derive(Clone)]
pub(crate) struct Trees {
    sessions: Arc<Cached<SessionState>>,
    agents: Arc<Cached<AgentState>>,
    session_activity: sled::Tree,
    agent_activity: sled::Tree,
    caps: Arc<caps::Caps>,
}

impl Trees {
    /// Write changed records, then forget the least recently active
    /// beyond the caps: `(written, sessions evicted, agents evicted)`.
    fn persist_and_trim(&self) -> Result<(usize, usize, usize), StoreError> {
        let n = sessions::persist(self)?;
        let (s, a) = self.trim()?;
        Ok((n, s, a))
    }

    fn trim(&self) -> Result<(usize, usize), StoreError> {
        let cap = |c: &std::sync::atomic::AtomicUsize| c.load(Ordering::Relaxed);
        let s = caps::trim(
            &self.sessions,
            &self.session_activity,
            cap(&self.caps.sessions),
        )?;
        let a = caps::trim(&self.agents, &self.agent_activity, cap(&self.caps.agents))?;
        self.caps.evicted("session", "cap", s);
        self.caps.evicted("agent", "cap", a);
        Ok((s, a))
    }
}

/// The background writer of the session and agent caches.
struct StateWriter {
    stop: Arc<AtomicBool>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl StateWriter {
    fn start(trees: Trees, committer: Arc<durable::Committer>) -> StateWriter {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("asg-state-writer".into())
            .spawn(move || loop {
                let last = flag.load(Ordering::Relaxed);
                match trees.persist_and_trim() {
                    Ok((n, s, a)) if n + s + a > 0 => {
                        committer.written();
                    }
                    Ok(_) => {}
                    Err(e) => tracing::error!(error = %e, "session state write failed"),
                }
                if last {
                    return;
                }
                std::thread::park_timeout(STATE_WRITE_INTERVAL);
            })
            .expect("spawn the state writer thread");
        StateWriter {
            stop,
            thread: Mutex::new(Some(thread)),
        }
    }

    /// One last write, then stop.
    fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.lock().ok().and_then(|mut t| t.take()) {
            t.thread().unpark();
            let _ = t.join();
        }
    }
}

fn corrupt(tree: &'static str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt {
        tree,
        message: e.to_string(),
    }
}

fn encode<T: serde::Serialize>(tree: &'static str, v: &T) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(v).map_err(|e| corrupt(tree, e))
}

fn decode<T: serde::de::DeserializeOwned>(tree: &'static str, b: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(b).map_err(|e| corrupt(tree, e))
}

/// Current time in Unix milliseconds.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Unix milliseconds as RFC 3339 (UTC, milliseconds).
pub fn rfc3339_ms(ms: i64) -> String {
    use time::format_description::well_known::Rfc3339;
    time::OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_default()
}

fn classify(path: &Path, e: sled::Error) -> StoreError {
    let message = e.to_string();
    let lower = message.to_lowercase();
    if lower.contains("lock")
        || lower.contains("resource temporarily unavailable")
        || lower.contains("would block")
    {
        StoreError::Locked {
            path: path.to_path_buf(),
        }
    } else {
        StoreError::Open {
            path: path.to_path_buf(),
            message,
        }
    }
}

#[cfg(test)]
pub(crate) fn temp_store() -> (Store, PathBuf) {
    let dir = std::env::temp_dir().join(format!("asg-store-{}", uuid::Uuid::new_v4()));
    (Store::open(&dir).unwrap(), dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_errors_are_classified() {
        let dir = PathBuf::from("/tmp/x");
        let err = classify(
            &dir,
            sled::Error::Io(std::io::Error::new(
                std::io::ErrorKind::WouldBlock,
                "could not acquire lock",
            )),
        );
        assert!(
            err.to_string().contains("locked by another process"),
            "{err}"
        );
    }

    #[test]
    fn second_open_is_locked_and_reopen_after_drop_works() {
        let (store, dir) = temp_store();
        match Store::open(&dir) {
            Err(StoreError::Locked { .. }) => {}
            Err(e) => panic!("expected Locked, got {e}"),
            Ok(_) => panic!("expected Locked, got a second store"),
        }
        drop(store);
        Store::open(&dir).unwrap();
        std::fs::remove_dir_all(dir).ok();
    }

    #[test]
    fn a_newer_schema_is_refused() {
        let (store, dir) = temp_store();
        store
            .db
            .open_tree("meta")
            .unwrap()
            .insert("schema", "99")
            .unwrap();
        store.flush().unwrap();
        drop(store);
        let err = Store::open(&dir).err().expect("refused");
        assert!(err.to_string().contains("different asg version"), "{err}");
        std::fs::remove_dir_all(dir).ok();
    }

    #[test]
    fn unreadable_state_is_refused_not_silently_emptied() {
        let (store, dir) = temp_store();
        store.append_audit(&audit::event("r1", "")).unwrap();
        store.flush().unwrap();
        drop(store);
        let db = dir.join("asg.sled").join("db");
        let len = std::fs::metadata(&db).unwrap().len() as usize;
        std::fs::write(&db, vec![0x5a; len]).unwrap();
        let err = Store::open(&dir).err().expect("refused");
        assert!(err.to_string().contains("cannot open data folder"), "{err}");
        std::fs::remove_dir_all(dir).ok();
    }

    #[test]
    fn times_render_as_rfc3339() {
        assert_eq!(rfc3339_ms(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339_ms(1_500), "1970-01-01T00:00:01.5Z");
    }
}
