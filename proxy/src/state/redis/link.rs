//! The connections to Redis and their supervision.
//!
//! Two multiplexed connections ("lanes"): `Fast` carries the request path
//! (loads, queued records, polls) and `Acked` the acknowledged writes
//! (gate, resolve, submit, each followed by `WAIT` when replicas are
//! required), so a `WAIT` that blocks its connection never delays a load.
//!
//! An operation never waits for a reconnect: while Redis is unreachable
//! `conn()` fails at once (the caller degrades or fails closed), and one
//! supervisor task reconnects in the background with backoff, pings every
//! second while connected, reloads the scripts and re-reads the durability
//! settings on every connect, and, behind sentinel, asks the sentinels for
//! the current primary each time (a failover is a reconnect).

use super::metrics::RedisMetrics;
use super::scripts;
use super::url::{StateUrl, Target};
use crate::state::seam::StoreError;
use arc_swap::ArcSwapOption;
use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Client, ConnectionAddr, RedisError, RedisResult};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{watch, Notify};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lane {
    Fast = 0,
    Acked = 1,
}

/// A live connection and the generation it belongs to (a failure on an old
/// generation must not drop a newer connection).
pub struct Conn {
    pub gen: u64,
    pub c: MultiplexedConnection,
}

pub struct Link {
    url: StateUrl,
    root_ca: Option<Vec<u8>>,
    sentinel: Option<tokio::sync::Mutex<redis::sentinel::SentinelClient>>,
    lanes: [ArcSwapOption<Conn>; 2],
    /// The client of the current primary (the pub/sub task connects with it).
    client: ArcSwapOption<Client>,
    gen: AtomicU64,
    up: watch::Sender<bool>,
    kick: Notify,
    info: Mutex<Info>,
    metrics: Arc<RedisMetrics>,
}

#[derive(Default)]
struct Info {
    last_error: Option<String>,
    durability: String,
    connected_once: bool,
}

const PING_EVERY: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(1);

impl Link {
    pub fn new(url: StateUrl, metrics: Arc<RedisMetrics>) -> Result<Link, String> {
        let root_ca = match &url.ca_file {
            Some(p) => Some(std::fs::read(p).map_err(|e| {
                format!(
                    "ASG_STATE_URL: cannot read the CA file {}: {e}",
                    p.display()
                )
            })?),
            None => None,
        };
        let sentinel = match &url.target {
            Target::Direct { .. } => None,
            Target::Sentinel {
                nodes,
                service,
                tls,
            } => Some(tokio::sync::Mutex::new(
                sentinel_client(&url, nodes, service, *tls, root_ca.as_deref())
                    .map_err(|e| format!("ASG_STATE_URL: {e}"))?,
            )),
        };
        Ok(Link {
            url,
            root_ca,
            sentinel,
            lanes: [ArcSwapOption::empty(), ArcSwapOption::empty()],
            client: ArcSwapOption::empty(),
            gen: AtomicU64::new(0),
            up: watch::channel(false).0,
            kick: Notify::new(),
            info: Mutex::new(Info {
                last_error: Some("not connected yet".into()),
                durability: "unknown".into(),
                connected_once: false,
            }),
            metrics,
        })
    }

    pub fn url(&self) -> &StateUrl {
        &self.url
    }

    pub fn is_up(&self) -> bool {
        *self.up.borrow()
    }

    /// Follows the connected flag (the flusher and the pub/sub task wait on it).
    pub fn subscribe(&self) -> watch::Receiver<bool> {
        self.up.subscribe()
    }

    pub fn client(&self) -> Option<Arc<Client>> {
        self.client.load_full()
    }

    fn info(&self) -> std::sync::MutexGuard<'_, Info> {
        self.info.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn last_error(&self) -> Option<String> {
        self.info().last_error.clone()
    }

    pub fn durability(&self) -> String {
        self.info().durability.clone()
    }

    /// The lane's connection, or `Unavailable` at once.
    pub fn conn(&self, lane: Lane) -> Result<Arc<Conn>, StoreError> {
        self.lanes[lane as usize].load_full().ok_or_else(|| {
            StoreError::Unavailable(self.last_error().unwrap_or_else(|| "not connected".into()))
        })
    }

    fn timeout(&self, lane: Lane) -> Duration {
        match lane {
            Lane::Fast => self.url.op_timeout,
            Lane::Acked => self.url.op_timeout + self.url.wait_timeout,
        }
    }

    /// Run one operation on `conn` with the lane's deadline; a broken
    /// connection (I/O, timeout, read-only primary) is dropped and the
    /// supervisor reconnects.
    pub async fn exec<T>(
        &self,
        conn: &Conn,
        lane: Lane,
        op: impl std::future::Future<Output = RedisResult<T>>,
    ) -> Result<T, StoreError> {
        match tokio::time::timeout(self.timeout(lane), op).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => {
                let msg = e.to_string();
                if breaks(&e) {
                    self.failed(conn.gen, &msg);
                }
                Err(StoreError::Unavailable(msg))
            }
            Err(_) => {
                let msg = format!("no answer within {:?}", self.timeout(lane));
                self.failed(conn.gen, &msg);
                Err(StoreError::Unavailable(msg))
            }
        }
    }

    /// The connection of generation `gen` is broken: drop both lanes.
    pub fn failed(&self, gen: u64, why: &str) {
        if self.gen.load(Ordering::Acquire) != gen {
            return;
        }
        let was_up = self.lanes[0].swap(None).is_some() | self.lanes[1].swap(None).is_some();
        self.info().last_error = Some(why.to_string());
        if was_up {
            self.metrics.connected.set(0);
            self.up.send_replace(false);
            tracing::warn!(
                backend = %self.url.display(),
                error = %why,
                "shared state unreachable: approvals and permits fail closed; session risk and rate limits are decided by this gateway alone until it is back"
            );
        }
        self.kick.notify_one();
    }

    async fn connect(&self) -> Result<(), String> {
        let client = match &self.sentinel {
            None => direct_client(&self.url, self.root_ca.as_deref()),
            Some(s) => s.lock().await.async_get_client().await,
        }
        .map_err(|e| e.to_string())?;
        let cfg = |lane| {
            AsyncConnectionConfig::new()
                .set_connection_timeout(Some(self.url.connect_timeout))
                .set_response_timeout(Some(self.timeout(lane)))
        };
        let mut fast = client
            .get_multiplexed_async_connection_with_config(&cfg(Lane::Fast))
            .await
            .map_err(|e| e.to_string())?;
        let acked = client
            .get_multiplexed_async_connection_with_config(&cfg(Lane::Acked))
            .await
            .map_err(|e| e.to_string())?;
        scripts::load_all(&mut fast)
            .await
            .map_err(|e| e.to_string())?;
        let durability = probe_durability(&mut fast, self.url.wait_replicas).await;
        let gen = self.gen.fetch_add(1, Ordering::AcqRel) + 1;
        self.client.store(Some(Arc::new(client)));
        self.lanes[Lane::Fast as usize].store(Some(Arc::new(Conn { gen, c: fast })));
        self.lanes[Lane::Acked as usize].store(Some(Arc::new(Conn { gen, c: acked })));
        let first = {
            let mut info = self.info();
            let first = !info.connected_once;
            if (first || info.durability != durability) && !durability.starts_with("aof") {
                tracing::warn!(
                    backend = %self.url.display(),
                    durability = %durability,
                    "Redis keeps no append-only file: a restart can undo acknowledged approvals and permit spends; set appendonly yes (see README, Redis)"
                );
            }
            info.connected_once = true;
            info.durability = durability;
            info.last_error = None;
            first
        };
        self.metrics.connected.set(1);
        if first {
            tracing::info!(backend = %self.url.display(), "shared state connected");
        } else {
            self.metrics.reconnects.inc();
            tracing::info!(backend = %self.url.display(), "shared state reachable again");
        }
        self.up.send_replace(true);
        Ok(())
    }

    /// Connect (bounded by the connect timeout), then supervise forever.
    pub async fn supervise(self: Arc<Self>) {
        let mut backoff = Duration::from_millis(50);
        loop {
            if let Some(conn) = self.lanes[0].load_full() {
                tokio::select! {
                    _ = tokio::time::sleep(PING_EVERY) => {}
                    _ = self.kick.notified() => {}
                }
                let mut c = conn.c.clone();
                let ping = redis::cmd("PING");
                let _ = self
                    .exec(&conn, Lane::Fast, ping.query_async::<String>(&mut c))
                    .await;
                continue;
            }
            let attempt = tokio::time::timeout(self.url.connect_timeout * 2, self.connect()).await;
            match attempt {
                Ok(Ok(())) => backoff = Duration::from_millis(50),
                Ok(Err(e)) => self.info().last_error = Some(e),
                Err(_) => self.info().last_error = Some("connect timed out".into()),
            }
            if !self.is_up() {
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = self.kick.notified() => {}
                }
                backoff = (backoff * 2).min(BACKOFF_MAX);
            }
        }
    }
}

/// Whether an error means the connection (or the primary behind it) is
/// gone, rather than one command failing.
pub fn breaks(e: &RedisError) -> bool {
    e.is_io_error()
        || e.is_timeout()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
        || e.is_unrecoverable_error()
        || matches!(e.code(), Some("READONLY" | "MASTERDOWN"))
}

fn addr(host: &str, port: u16, tls: bool) -> ConnectionAddr {
    if tls {
        ConnectionAddr::TcpTls {
            host: host.to_string(),
            port,
            insecure: false,
            tls_params: None,
        }
    } else {
        ConnectionAddr::Tcp(host.to_string(), port)
    }
}

fn settings(url: &StateUrl) -> redis::RedisConnectionInfo {
    let mut s = redis::RedisConnectionInfo::default()
        .set_db(url.db)
        .set_lib_name("asg", env!("CARGO_PKG_VERSION"));
    if let Some(u) = &url.username {
        s = s.set_username(u);
    }
    if let Some(p) = &url.password {
        s = s.set_password(p);
    }
    s
}

fn direct_client(url: &StateUrl, root_ca: Option<&[u8]>) -> RedisResult<Client> {
    let Target::Direct { host, port, tls } = &url.target else {
        unreachable!("direct_client for a direct target")
    };
    use redis::IntoConnectionInfo;
    let info = addr(host, *port, *tls)
        .into_connection_info()?
        .set_redis_settings(settings(url));
    match root_ca {
        Some(pem) => Client::build_with_tls(
            info,
            redis::TlsCertificates {
                client_tls: None,
                root_cert: Some(pem.to_vec()),
            },
        ),
        None => Client::open(info),
    }
}

fn sentinel_client(
    url: &StateUrl,
    nodes: &[(String, u16)],
    service: &str,
    tls: bool,
    root_ca: Option<&[u8]>,
) -> RedisResult<redis::sentinel::SentinelClient> {
    use redis::sentinel::{SentinelClientBuilder, SentinelServerType};
    let sentinels = nodes.iter().map(|(h, p)| addr(h, *p, false));
    let mut b = SentinelClientBuilder::new(sentinels, service, SentinelServerType::Master)?
        .set_client_to_redis_db(url.db);
    if let Some(u) = &url.username {
        b = b.set_client_to_redis_username(u);
    }
    if let Some(p) = &url.password {
        b = b.set_client_to_redis_password(p);
    }
    if let Some(p) = &url.sentinel_password {
        b = b.set_client_to_sentinel_password(p);
    }
    if tls {
        b = b.set_client_to_redis_tls_mode(redis::TlsMode::Secure);
        if let Some(pem) = root_ca {
            b = b.set_client_to_redis_certificates(redis::TlsCertificates {
                client_tls: None,
                root_cert: Some(pem.to_vec()),
            });
        }
    }
    b.build()
}

/// What an acknowledged write survives on this server: `aof_always`
/// (fsync before the reply: power loss), `aof_everysec` (a crash of the
/// process loses nothing, power loss up to ~1 s), `aof_no`, `aof` (fsync
/// policy hidden: CONFIG disabled), `rdb_only` or `none` (a restart can
/// undo a permit spend), plus `+wait_replicas=N`.
async fn probe_durability(c: &mut MultiplexedConnection, wait_replicas: u32) -> String {
    let info: String = redis::cmd("INFO")
        .arg("persistence")
        .query_async(c)
        .await
        .unwrap_or_default();
    let field = |name: &str| {
        info.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
            .map(str::trim)
            .unwrap_or("")
            .to_string()
    };
    let mut d = if field("aof_enabled") == "1" {
        let fsync: Vec<String> = redis::cmd("CONFIG")
            .arg("GET")
            .arg("appendfsync")
            .query_async(c)
            .await
            .unwrap_or_default();
        match fsync.get(1).map(String::as_str) {
            Some(p @ ("always" | "everysec" | "no")) => format!("aof_{p}"),
            _ => "aof".to_string(),
        }
    } else if field("rdb_last_save_time").is_empty() {
        "unknown".to_string()
    } else {
        let save: Vec<String> = redis::cmd("CONFIG")
            .arg("GET")
            .arg("save")
            .query_async(c)
            .await
            .unwrap_or_default();
        match save.get(1).map(String::as_str) {
            Some("") => "none".to_string(),
            _ => "rdb_only".to_string(),
        }
    };
    if wait_replicas > 0 {
        d.push_str(&format!("+wait_replicas={wait_replicas}"));
    }
    d
}
