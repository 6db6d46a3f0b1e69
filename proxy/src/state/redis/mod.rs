//! Shared state on Redis: the seam's `StateStore` and `ControlStore` for a
//! fleet of gateways (`ASG_STATE_URL`). The running gateway reaches it
//! through [`crate::state::shared`] (under the `Store` API).
//!
//! | concern | where | how |
//! |---|---|---|
//! | approvals, permits | `approvals.rs`, `lua/gate.lua`, `lua/resolve.lua` | one script per step: a permit is spent exactly once across gateways; acknowledged only after Redis answered (and `WAIT` for replicas if asked) |
//! | session and agent risk | `risk.rs`, `lua/record.lua` | `session::remember` applied server-side; TTL = idle expiry; queued, batched, never awaited; read-your-writes through the load pipeline |
//! | rate limits | `lua/rate.lua` | GCRA on the server's clock |
//! | console tail | `lua/record.lua`, `tail.rs` | capped stream (`XADD MAXLEN ~`) |
//! | held calls | `wake.rs` | pub/sub on one channel, polling while it is down |
//! | faults | `link.rs` | Redis down or slow: approvals and permits fail closed, risk and rate limits degrade to this gateway's local view (metric + log line), queued records replay on reconnect |

mod approvals;
pub mod codec;
pub mod keys;
mod link;
pub mod metrics;
mod risk;
mod scripts;
mod tail;
pub mod testkit;
pub mod url;
mod wake;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_faults;

use self::keys::Keys;
use self::link::Link;
use self::metrics::RedisMetrics;
use self::url::StateUrl;
use crate::decision::approvals::{Approval, ResolveError};
use crate::state::approvals::Opened;
use crate::state::seam::{
    ApprovalFilter, ControlStore, GateResult, GateStep, Health, LoadQuery, Resolve, SessionFilter,
    SessionSummary, StageRecord, StateStore, StateView, StoreError, TailEntry, WakeMode,
};
use std::sync::Arc;
use std::time::Duration;

pub use wake::RedisWatch;

/// Settings that are not part of the URL.
#[derive(Debug, Clone)]
pub struct RedisOptions {
    /// This gateway's name on tail entries (pod name).
    pub gateway: String,
    /// How long decided approvals stay listed (the audit age limit).
    pub approval_keep: Duration,
    /// Records kept for replay while Redis is down; older ones are dropped.
    pub backlog_cap: usize,
    /// Sessions (and agents) kept in the local view used while Redis is down.
    pub mirror_cap: usize,
    /// Held calls re-read their approval this often even with pub/sub up.
    pub safety_poll: Duration,
    /// Expiry sweep interval.
    pub maintain_every: Duration,
    /// Sessions idle this long leave the recent-sessions index (keep it at
    /// least the policy's `idle_expiry_secs`; the sessions themselves
    /// expire by their own lifetime).
    pub session_idle: Duration,
}

impl Default for RedisOptions {
    fn default() -> Self {
        RedisOptions {
            gateway: "asg".into(),
            approval_keep: Duration::from_secs(30 * 86_400),
            backlog_cap: 100_000,
            mirror_cap: 10_000,
            safety_poll: Duration::from_secs(15),
            maintain_every: Duration::from_secs(5),
            session_idle: Duration::from_secs(30 * 86_400),
        }
    }
}

pub(crate) struct Inner {
    link: Arc<Link>,
    keys: Keys,
    opts: RedisOptions,
    metrics: Arc<RedisMetrics>,
    risk: risk::Risk,
    wake: wake::Wake,
}

/// The Redis backend. Cheap to share behind an `Arc`; its background tasks
/// (supervisor, record flusher, pub/sub, expiry sweep) end when it drops.
pub struct RedisStore {
    inner: Arc<Inner>,
    tasks: Vec<tokio::task::AbortHandle>,
}

impl Drop for RedisStore {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl RedisStore {
    /// Start the backend (inside a tokio runtime). Waits up to the connect
    /// timeout for a first connection, and starts degraded if Redis is not
    /// there yet (it keeps trying). Errors only for unusable settings.
    pub async fn start(url: StateUrl, opts: RedisOptions) -> Result<RedisStore, String> {
        let metrics = Arc::new(RedisMetrics::default());
        let keys = Keys::new(&url.prefix);
        let connect_timeout = url.connect_timeout;
        let link = Arc::new(Link::new(url, metrics.clone())?);
        let inner = Arc::new(Inner {
            risk: risk::Risk::new(opts.mirror_cap),
            wake: wake::Wake::new(),
            link: link.clone(),
            keys,
            opts,
            metrics,
        });
        let mut up = link.subscribe();
        let tasks = vec![
            tokio::spawn(link.clone().supervise()).abort_handle(),
            tokio::spawn(risk::flusher(inner.clone())).abort_handle(),
            tokio::spawn(wake::subscriber(inner.clone())).abort_handle(),
            tokio::spawn(approvals::sweeper(inner.clone())).abort_handle(),
        ];
        let _ = tokio::time::timeout(connect_timeout * 2, up.wait_for(|u| *u)).await;
        Ok(RedisStore { inner, tasks })
    }

    pub fn metrics(&self) -> &RedisMetrics {
        &self.inner.metrics
    }

    /// Where it points (for logs; no credentials).
    pub fn describe(&self) -> String {
        self.inner.link.url().display()
    }

    /// The fleet's binding key: 32 random bytes the first gateway stores
    /// (`SET NX`), read by every other one, so an approval raised through
    /// one gateway matches the same call through another. Acknowledged
    /// writes wait for the store like approvals do.
    pub async fn fleet_key(&self) -> Result<[u8; 32], StoreError> {
        let key = format!("{}fleetkey", self.inner.keys.base());
        let mut pipe = redis::pipe();
        pipe.cmd("SET")
            .arg(&key)
            .arg(hex::encode(rand::random::<[u8; 32]>()))
            .arg("NX")
            .ignore();
        pipe.cmd("GET").arg(&key);
        let v = self.inner.query(link::Lane::Acked, &pipe).await?;
        let text = codec::string(v.first().unwrap_or(&redis::Value::Nil), "fleetkey")?;
        hex::decode(text.trim())
            .ok()
            .and_then(|b| <[u8; 32]>::try_from(b).ok())
            .ok_or_else(|| StoreError::Corrupt(format!("{key} is not 32 bytes of hex")))
    }

    /// Sessions active since `since_ms` (the recent-sessions index).
    pub async fn sessions_active(&self, since_ms: i64) -> Result<u64, StoreError> {
        let mut pipe = redis::pipe();
        pipe.cmd("ZCOUNT")
            .arg(self.inner.keys.recent())
            .arg(since_ms)
            .arg("+inf");
        let v = self.inner.query(link::Lane::Fast, &pipe).await?;
        match v.first() {
            Some(redis::Value::Int(n)) => Ok((*n).max(0) as u64),
            other => Err(StoreError::Corrupt(format!("ZCOUNT reply {other:?}"))),
        }
    }

    /// One expiry sweep now (the sweeper runs it every few seconds).
    pub async fn maintain(&self, now_ms: i64) -> Result<u64, StoreError> {
        self.inner.maintain(now_ms).await
    }
}

impl Inner {
    /// One pipeline on `lane`, with NOSCRIPT handled (scripts reloaded,
    /// pipeline sent once more: nothing in it ran).
    async fn query(
        &self,
        lane: link::Lane,
        pipe: &redis::Pipeline,
    ) -> Result<Vec<redis::Value>, StoreError> {
        let conn = self.link.conn(lane)?;
        let mut c = conn.c.clone();
        let first = self
            .link
            .exec(&conn, lane, pipe.query_async::<Vec<redis::Value>>(&mut c))
            .await?;
        if !first.iter().any(scripts::is_noscript) {
            return Ok(first);
        }
        self.link
            .exec(&conn, lane, scripts::load_all(&mut c))
            .await?;
        self.link
            .exec(&conn, lane, pipe.query_async::<Vec<redis::Value>>(&mut c))
            .await
    }

    fn health(&self) -> Health {
        let connected = self.link.is_up();
        Health {
            backend: "redis",
            connected,
            degraded: !connected,
            wake: if self.wake.pubsub_up() {
                WakeMode::PubSub
            } else {
                WakeMode::Polling
            },
            durability: self.link.durability(),
            detail: if connected {
                None
            } else {
                self.link.last_error()
            },
        }
    }
}

impl StateStore for RedisStore {
    type Watch = RedisWatch;

    async fn load(&self, q: &LoadQuery<'_>) -> Result<StateView, StoreError> {
        Ok(self.inner.load(q).await)
    }

    async fn gate(&self, steps: Vec<GateStep>) -> Result<Vec<GateResult>, StoreError> {
        self.inner.gate(steps).await
    }

    fn record(&self, rec: StageRecord) {
        self.inner.record(rec)
    }

    async fn flush(&self) {
        self.inner.flush().await
    }

    fn watch(&self, approval_id: &str) -> RedisWatch {
        RedisWatch::new(self.inner.clone(), approval_id)
    }

    fn health(&self) -> Health {
        self.inner.health()
    }
}

impl ControlStore for RedisStore {
    async fn approvals(&self, f: ApprovalFilter) -> Result<Vec<Approval>, StoreError> {
        self.inner.approvals(f).await
    }

    async fn approval(&self, id: &str, now_ms: i64) -> Result<Option<Approval>, StoreError> {
        self.inner.approval(id, now_ms).await
    }

    async fn resolve(
        &self,
        r: Resolve,
    ) -> Result<Option<Result<(Approval, Option<String>), ResolveError>>, StoreError> {
        self.inner.resolve(r).await
    }

    async fn submit(&self, template: Approval) -> Result<Opened, StoreError> {
        self.inner.submit(template).await
    }

    async fn sessions(&self, f: SessionFilter) -> Result<Vec<SessionSummary>, StoreError> {
        self.inner.sessions(f).await
    }

    async fn tail(&self, after: Option<u64>, n: usize) -> Result<Vec<TailEntry>, StoreError> {
        self.inner.tail(after, n).await
    }
}
