//! Upstream name resolution off the request path's critical section.
//!
//! pingora's `HttpPeer::new` resolves synchronously and panics when a name
//! does not resolve, so the gateway resolves itself (asynchronously, with a
//! short cache) and hands pingora a socket address.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

const TTL: Duration = Duration::from_secs(30);

#[derive(Default)]
pub struct Resolver {
    cache: Mutex<HashMap<String, (SocketAddr, Instant)>>,
}

impl Resolver {
    pub fn new() -> Self {
        Resolver::default()
    }

    /// Resolve `host:port` (IP literals need no lookup).
    pub async fn resolve(&self, host: &str, port: u16) -> Result<SocketAddr, String> {
        if let Ok(ip) = host.parse::<std::net::IpAddr>() {
            return Ok(SocketAddr::new(ip, port));
        }
        let key = format!("{host}:{port}");
        if let Some((addr, at)) = self.cache.lock().ok().and_then(|c| c.get(&key).copied()) {
            if at.elapsed() < TTL {
                return Ok(addr);
            }
        }
        let addr = tokio::net::lookup_host(&key)
            .await
            .map_err(|e| format!("cannot resolve upstream host {host}: {e}"))?
            .next()
            .ok_or_else(|| format!("upstream host {host} has no address"))?;
        if let Ok(mut c) = self.cache.lock() {
            if c.len() > 1024 {
                c.clear();
            }
            c.insert(key, (addr, Instant::now()));
        }
        Ok(addr)
    }
}
