//! The front door of the proxy listener (and of the transparent listener):
//! a pingora `ServerApp` that looks at the first bytes of each connection
//! before the HTTP proxy does.
//!
//! * Anything but `CONNECT` goes straight to the inspecting proxy: reverse
//!   mode (origin-form) and plain-HTTP forward mode (absolute-form).
//! * `CONNECT host:port` is decided by the policy's `[connect]` section:
//!   `deny` → 403; `passthrough` → a blind, audited tunnel; `intercept` →
//!   `200`, then TLS terminated with a leaf minted for the SNI (or the
//!   CONNECT host) and every request inside handed to the same proxy, with
//!   keep-alive, as reverse-mode traffic.
//! * On the transparent listener the destination is the socket's original
//!   destination and the host name the ClientHello's SNI (no CONNECT).
//!
//! pingora itself rejects CONNECT with 405, which is why this exists.

use super::forward::{tunnel_digest, ForwardTarget, Mode};
use super::gateway::Gateway;
use super::tls::{ca, CaPaths, Interceptor, LeafMinter, Resolution, LEAF_CACHE_CAPACITY};
use super::{transparent, tunnel};
use crate::app::App;
use crate::decision::policy::connect::{normalize_host, ConnectAction, ConnectVerdict};
use crate::decision::Decision;
use crate::state::AuditEvent;
use async_trait::async_trait;
use pingora::apps::ServerApp;
use pingora::listeners::tls::Acceptor;
use pingora::protocols::l4::stream::Stream as L4Stream;
use pingora::protocols::{GetProxyDigest, GetSocketDigest, Peek, Stream};
use pingora::proxy::{http_proxy, http_proxy_service, HttpProxy};
use pingora::server::{Server, ShutdownWatch};
use pingora::services::listening::Service;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Longest CONNECT request head.
const HEAD_LIMIT: usize = 8 * 1024;
const HEAD_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a new connection (or a fresh tunnel) may stay silent.
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
const TLS_HANDSHAKE_RECORD: u8 = 0x16;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listener {
    /// `ASG_LISTEN`: reverse mode, CONNECT and absolute-form.
    Proxy,
    /// `ASG_TRANSPARENT_LISTEN`: redirected connections.
    Transparent,
}

pub struct Front {
    app: Arc<App>,
    proxy: Arc<HttpProxy<Gateway>>,
    tls: Arc<Interceptor>,
    listener: Listener,
}

impl Front {
    pub fn new(
        app: Arc<App>,
        proxy: Arc<HttpProxy<Gateway>>,
        tls: Arc<Interceptor>,
        listener: Listener,
    ) -> Front {
        Front {
            app,
            proxy,
            tls,
            listener,
        }
    }
}

#[async_trait]
impl ServerApp for Front {
    async fn process_new(
        self: &Arc<Self>,
        stream: Stream,
        shutdown: &ShutdownWatch,
    ) -> Option<Stream> {
        // Listeners hand over plain TCP streams; the concrete type is needed
        // for rewinding peeked bytes and for the TLS acceptor.
        let l4 = match stream.into_any().downcast::<L4Stream>() {
            Ok(s) => *s,
            Err(_) => {
                tracing::error!("front: listener produced an unexpected stream type");
                return None;
            }
        };
        match self.listener {
            Listener::Proxy => self.proxy_listener(l4, shutdown).await,
            Listener::Transparent => self.transparent_listener(l4, shutdown).await,
        }
        None
    }

    async fn cleanup(&self) {
        if self.listener == Listener::Proxy {
            self.proxy.cleanup().await;
        }
    }
}

/// One connection's bookkeeping: id, start, open-connection gauge.
struct Conn {
    id: String,
    started: Instant,
    mode: Mode,
    app: Arc<App>,
}

impl Conn {
    fn new(app: &Arc<App>, mode: Mode) -> Conn {
        app.metrics
            .forward
            .open
            .with_label_values(&[mode.as_str()])
            .inc();
        Conn {
            id: uuid::Uuid::new_v4().simple().to_string(),
            started: Instant::now(),
            mode,
            app: app.clone(),
        }
    }

    fn decided(&self, action: ConnectAction) {
        self.app
            .metrics
            .forward
            .decisions
            .with_label_values(&[self.mode.as_str(), action.as_str()])
            .inc();
    }

    fn failed(&self, reason: &'static str) {
        self.app
            .metrics
            .forward
            .failures
            .with_label_values(&[self.mode.as_str(), reason])
            .inc();
    }

    /// One audit record for a tunnel (passthrough, denied or failed).
    fn audit(
        &self,
        authority: &str,
        decision: Decision,
        status: Option<u16>,
        reasons: Vec<String>,
    ) {
        let event = AuditEvent {
            seq: 0,
            time: crate::util::now_rfc3339(),
            request_id: self.id.clone(),
            session_id: String::new(),
            agent_id: String::new(),
            route: self.mode.as_str().to_string(),
            dialect: "tunnel".to_string(),
            stage: "connect".to_string(),
            decision: decision.as_str().to_string(),
            total_score: 0.0,
            reasons,
            findings: Vec::new(),
            tools: Vec::new(),
            masked: 0,
            policy_version: self.app.policy.current().version.clone(),
            latency_ms: self.started.elapsed().as_secs_f64() * 1000.0,
            status,
            path: Some(authority.chars().take(256).collect()),
        };
        if let Err(e) = self.app.store.append_audit(&event) {
            tracing::error!(error = %e, "audit write failed");
        }
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.app
            .metrics
            .forward
            .open
            .with_label_values(&[self.mode.as_str()])
            .dec();
    }
}

impl Front {
    async fn proxy_listener(&self, mut l4: L4Stream, shutdown: &ShutdownWatch) {
        let mut head = [0u8; 8];
        match tokio::time::timeout(IDLE_TIMEOUT, l4.try_peek(&mut head)).await {
            Ok(Ok(true)) => {}
            // Closed, silent or too short to be a request: nothing to serve.
            _ => return,
        }
        if &head == b"CONNECT " && self.app.config.forward_proxy {
            self.connect(l4, shutdown).await;
        } else {
            self.proxy.process_new(Box::new(l4), shutdown).await;
        }
    }

    async fn connect(&self, mut l4: L4Stream, shutdown: &ShutdownWatch) {
        let conn = Conn::new(&self.app, Mode::Connect);
        let head = match tokio::time::timeout(HEAD_TIMEOUT, read_head(&mut l4)).await {
            Ok(Ok(h)) => h,
            Ok(Err(msg)) => {
                conn.failed("bad_request");
                return respond(
                    &mut l4,
                    &conn.id,
                    400,
                    Decision::Block,
                    "asg_invalid_request",
                    &msg,
                )
                .await;
            }
            Err(_) => return conn.failed("timeout"),
        };
        let (host, port) = match parse_connect(&head) {
            Ok(t) => t,
            Err(msg) => {
                conn.failed("bad_request");
                return respond(
                    &mut l4,
                    &conn.id,
                    400,
                    Decision::Block,
                    "asg_invalid_request",
                    &msg,
                )
                .await;
            }
        };
        let policy = self.app.policy.current();
        let verdict = policy.file.connect.decide(&host);
        conn.decided(verdict.action);
        let target = ForwardTarget {
            mode: Mode::Connect,
            host,
            port,
            tls: true,
            addr: None,
            verdict: Some(verdict.clone()),
        };
        let authority = target.authority();
        match verdict.action {
            ConnectAction::Deny => {
                let msg = format!(
                    "CONNECT to {authority} is denied by policy {} (rule {})",
                    policy.version, verdict.rule
                );
                conn.audit(&authority, Decision::Block, Some(403), vec![msg.clone()]);
                respond(&mut l4, &conn.id, 403, Decision::Block, "asg_blocked", &msg).await;
            }
            ConnectAction::Passthrough => {
                let addr = match self.destination(&target).await {
                    Ok(a) => a,
                    Err((reason, msg)) => {
                        conn.failed(reason);
                        conn.audit(&authority, Decision::Block, Some(502), vec![msg.clone()]);
                        return respond(
                            &mut l4,
                            &conn.id,
                            502,
                            Decision::Block,
                            "asg_upstream_unreachable",
                            &msg,
                        )
                        .await;
                    }
                };
                let timeout = Duration::from_secs(self.app.config.connect_timeout_secs);
                let upstream = match tunnel::connect(&self.app.forwarding, addr, timeout).await {
                    Ok(s) => s,
                    Err(e) => {
                        let msg = format!("cannot reach {authority} ({addr}): {e}");
                        conn.failed("upstream_connect");
                        conn.audit(&authority, Decision::Allow, Some(502), vec![msg.clone()]);
                        return respond(
                            &mut l4,
                            &conn.id,
                            502,
                            Decision::Allow,
                            "asg_upstream_unreachable",
                            &msg,
                        )
                        .await;
                    }
                };
                if established(&mut l4).await.is_err() {
                    return;
                }
                self.relay(&conn, l4, upstream, &authority, &verdict, shutdown)
                    .await;
            }
            ConnectAction::Intercept => {
                if established(&mut l4).await.is_err() {
                    return;
                }
                let mut first = [0u8; 1];
                match tokio::time::timeout(IDLE_TIMEOUT, l4.try_peek(&mut first)).await {
                    Ok(Ok(true)) => {}
                    _ => return,
                }
                if first[0] == TLS_HANDSHAKE_RECORD {
                    let fallback = target.host.clone();
                    self.intercept_tls(&conn, l4, target, &fallback, shutdown)
                        .await;
                } else {
                    // Plain HTTP inside the tunnel (`curl --proxytunnel http://…`).
                    let target = ForwardTarget {
                        tls: false,
                        ..target
                    };
                    l4.set_proxy_digest(tunnel_digest(target));
                    self.proxy.process_new(Box::new(l4), shutdown).await;
                }
            }
        }
    }

    /// Where a blind tunnel connects: an override, the original destination
    /// or the resolved host, never the gateway itself.
    async fn destination(
        &self,
        t: &ForwardTarget,
    ) -> Result<std::net::SocketAddr, (&'static str, String)> {
        self.app
            .forwarding
            .upstream_addr(t, &self.app.resolver)
            .await
            .map_err(|msg| {
                let reason = if msg.contains("proxy loop") {
                    "loop"
                } else {
                    "upstream_connect"
                };
                (reason, msg)
            })
    }

    async fn relay(
        &self,
        conn: &Conn,
        mut client: L4Stream,
        upstream: tokio::net::TcpStream,
        authority: &str,
        verdict: &ConnectVerdict,
        shutdown: &ShutdownWatch,
    ) {
        let _registered = self
            .app
            .forwarding
            .register_tunnel(upstream.local_addr().ok());
        let (relayed, result) = tunnel::relay(&mut client, upstream, shutdown).await;
        let m = &self.app.metrics.forward;
        m.tunnel_bytes
            .with_label_values(&[conn.mode.as_str(), "up"])
            .inc_by(relayed.up);
        m.tunnel_bytes
            .with_label_values(&[conn.mode.as_str(), "down"])
            .inc_by(relayed.down);
        let mut reason = format!(
            "blind tunnel to {authority} (rule {}): {} bytes up, {} bytes down",
            verdict.rule, relayed.up, relayed.down
        );
        if let Err(e) = result {
            reason.push_str(&format!(", ended with: {e}"));
        }
        conn.audit(authority, Decision::Allow, Some(200), vec![reason]);
    }

    /// Terminate the client's TLS with a minted leaf and serve the requests
    /// inside with the inspecting proxy.
    async fn intercept_tls(
        &self,
        conn: &Conn,
        mut l4: L4Stream,
        target: ForwardTarget,
        fallback: &str,
        shutdown: &ShutdownWatch,
    ) {
        let authority = target.authority();
        l4.set_proxy_digest(tunnel_digest(target));
        let (config, resolver) = self.tls.config_for(fallback);
        let started = Instant::now();
        let handshake = tokio::time::timeout(
            HANDSHAKE_TIMEOUT,
            Acceptor::from_server_config(config).tls_handshake(l4),
        )
        .await;
        let m = &self.app.metrics.forward;
        let leaf = match resolver.outcome() {
            Resolution::Leaf { source, .. } => {
                m.leaves.with_label_values(&[source.as_str()]).inc();
                Some(source)
            }
            _ => None,
        };
        let failure = match handshake {
            Ok(Ok(tls)) => {
                if let Some(source) = leaf {
                    m.handshake
                        .with_label_values(&[source.as_str()])
                        .observe(started.elapsed().as_secs_f64());
                }
                self.proxy.process_new(Box::new(tls), shutdown).await;
                return;
            }
            Ok(Err(e)) => match resolver.outcome() {
                Resolution::Failed(why) => format!("no certificate for the client: {why}"),
                _ => {
                    format!("TLS handshake with the client failed (does it trust the asg CA?): {e}")
                }
            },
            Err(_) => {
                format!("TLS handshake with the client timed out after {HANDSHAKE_TIMEOUT:?}")
            }
        };
        tracing::debug!(id = %conn.id, %authority, "{failure}");
        conn.failed("client_tls");
        conn.audit(&authority, Decision::Allow, None, vec![failure]);
    }

    async fn transparent_listener(&self, mut l4: L4Stream, shutdown: &ShutdownWatch) {
        let conn = Conn::new(&self.app, Mode::Transparent);
        let digest = l4.get_socket_digest();
        let peer = digest
            .as_deref()
            .and_then(|d| d.peer_addr())
            .and_then(|a| a.as_inet())
            .copied();
        let orig = transparent::original_destination(digest.as_deref()).and_then(|o| {
            let own_tunnel = peer.is_some_and(|p| self.app.forwarding.is_own_tunnel(p));
            if own_tunnel || self.app.forwarding.is_own_listener(o) {
                Err(transparent::Refusal::Loop(o))
            } else {
                Ok(o)
            }
        });
        let orig = match orig {
            Ok(o) => o,
            Err(refusal) => {
                let local = digest
                    .as_deref()
                    .and_then(|d| d.local_addr())
                    .map(|a| a.to_string())
                    .unwrap_or_default();
                tracing::warn!(listener = %local, "{}", refusal.message());
                conn.failed(refusal.reason());
                conn.audit(&local, Decision::Block, None, vec![refusal.message()]);
                return;
            }
        };
        let mut first = [0u8; 1];
        match tokio::time::timeout(IDLE_TIMEOUT, l4.try_peek(&mut first)).await {
            Ok(Ok(true)) => {}
            _ => return,
        }
        if first[0] != TLS_HANDSHAKE_RECORD {
            // Plain HTTP: each request is decided by its Host header.
            let target = ForwardTarget {
                mode: Mode::Transparent,
                host: orig.ip().to_string(),
                port: orig.port(),
                tls: false,
                addr: Some(orig),
                verdict: None,
            };
            l4.set_proxy_digest(tunnel_digest(target));
            self.proxy.process_new(Box::new(l4), shutdown).await;
            return;
        }
        let (sni, hello) = match transparent::read_client_hello(&mut l4, HEAD_TIMEOUT).await {
            Ok(x) => x,
            Err(msg) => {
                conn.failed("not_tls");
                conn.audit(&orig.to_string(), Decision::Block, None, vec![msg]);
                return;
            }
        };
        l4.rewind(&hello);
        let host = sni.unwrap_or_else(|| orig.ip().to_string());
        let verdict = self.app.policy.current().file.connect.decide(&host);
        conn.decided(verdict.action);
        let target = ForwardTarget {
            mode: Mode::Transparent,
            host: normalize_host(&host),
            port: orig.port(),
            tls: true,
            addr: Some(orig),
            verdict: Some(verdict.clone()),
        };
        if verdict.action == ConnectAction::Passthrough {
            let authority = target.authority();
            let addr = match self.destination(&target).await {
                Ok(a) => a,
                Err((reason, msg)) => {
                    conn.failed(reason);
                    return conn.audit(&authority, Decision::Block, None, vec![msg]);
                }
            };
            let timeout = Duration::from_secs(self.app.config.connect_timeout_secs);
            match tunnel::connect(&self.app.forwarding, addr, timeout).await {
                Ok(upstream) => {
                    self.relay(&conn, l4, upstream, &authority, &verdict, shutdown)
                        .await
                }
                Err(e) => {
                    conn.failed("upstream_connect");
                    conn.audit(
                        &authority,
                        Decision::Allow,
                        None,
                        vec![format!("cannot reach {authority} ({addr}): {e}")],
                    );
                }
            }
            return;
        }
        // Intercept, and deny: a denied host is answered with a 403 over TLS
        // by the proxy (a clear refusal instead of a reset).
        let fallback = orig.ip().to_string();
        self.intercept_tls(&conn, l4, target, &fallback, shutdown)
            .await;
    }
}

/// Put the proxy listener (and the transparent listener, when configured)
/// on the server. Without forward or transparent mode this is pingora's
/// stock HTTP proxy service, with no front and no CA.
pub fn add_services(server: &mut Server, app: Arc<App>) -> Result<(), String> {
    let cfg = &app.config;
    if !cfg.forward_proxy && cfg.transparent_listen.is_none() {
        let mut proxy = http_proxy_service(&server.configuration, Gateway::new(app.clone()));
        proxy.add_tcp(&cfg.listen);
        server.add_service(proxy);
        return Ok(());
    }
    let tls = Arc::new(load_interceptor(&app)?);
    let proxy = Arc::new(http_proxy(&server.configuration, Gateway::new(app.clone())));
    let front = |listener| Front::new(app.clone(), proxy.clone(), tls.clone(), listener);
    let mut main = Service::new("asg proxy".to_string(), front(Listener::Proxy));
    main.add_tcp(&cfg.listen);
    server.add_service(main);
    if let Some(addr) = &cfg.transparent_listen {
        let mut transparent =
            Service::new("asg transparent".to_string(), front(Listener::Transparent));
        transparent.add_tcp(addr);
        server.add_service(transparent);
    }
    Ok(())
}

/// Load (or, on first start, create) the interception CA.
fn load_interceptor(app: &App) -> Result<Interceptor, String> {
    let paths = CaPaths::from_config(&app.config);
    let (ca, created) = ca::load_or_create(&paths)?;
    if created {
        tracing::info!(cert = %paths.cert.display(), fingerprint = %ca.fingerprint, "created the interception CA; agents must trust it (`asg env` prints the settings)");
    }
    if created || !paths.bundle.exists() {
        if let Err(e) = ca::write_bundle(&paths, &ca) {
            tracing::warn!("cannot write the CA bundle: {e}");
        }
    }
    tracing::info!(subject = %ca.subject, fingerprint = %ca.fingerprint, "interception CA loaded");
    let minter = LeafMinter::new(ca, LEAF_CACHE_CAPACITY)?;
    Interceptor::new(Arc::new(minter))
}

/// `HTTP/1.1 200 Connection Established`.
async fn established(l4: &mut L4Stream) -> std::io::Result<()> {
    l4.write_all(b"HTTP/1.1 200 Connection Established\r\n\r\n")
        .await?;
    l4.flush().await
}

/// A JSON answer to a CONNECT the gateway does not tunnel; closes.
async fn respond(
    l4: &mut L4Stream,
    id: &str,
    status: u16,
    decision: Decision,
    code: &str,
    message: &str,
) {
    let body = serde_json::json!({
        "error": {"message": format!("asg: {message}"), "type": code, "code": code},
        "request_id": id,
    })
    .to_string();
    let reason = http::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("Error");
    let head = format!(
        "HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nx-asg-request-id: {id}\r\nx-asg-decision: {}\r\nconnection: close\r\n\r\n",
        body.len(),
        decision.as_str()
    );
    let _ = l4.write_all(head.as_bytes()).await;
    let _ = l4.write_all(body.as_bytes()).await;
    let _ = l4.flush().await;
    let _ = l4.shutdown().await;
}

/// Read a request head (up to the blank line); bytes after it are put back.
async fn read_head(l4: &mut L4Stream) -> Result<Vec<u8>, String> {
    let mut buf = Vec::with_capacity(256);
    let mut chunk = [0u8; 1024];
    loop {
        let n = l4
            .read(&mut chunk)
            .await
            .map_err(|e| format!("reading the CONNECT request: {e}"))?;
        if n == 0 {
            return Err("client closed before finishing its CONNECT request".to_string());
        }
        let from = buf.len().saturating_sub(3);
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = buf[from..].windows(4).position(|w| w == b"\r\n\r\n") {
            let end = from + end + 4;
            let extra = buf.split_off(end);
            l4.rewind(&extra);
            return Ok(buf);
        }
        if buf.len() > HEAD_LIMIT {
            return Err(format!("CONNECT request head exceeds {HEAD_LIMIT} bytes"));
        }
    }
}

/// `CONNECT host:port HTTP/1.1` → (normalized host, port).
pub fn parse_connect(head: &[u8]) -> Result<(String, u16), String> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut req = httparse::Request::new(&mut headers);
    match req.parse(head) {
        Ok(httparse::Status::Complete(_)) => {}
        Ok(httparse::Status::Partial) => return Err("incomplete CONNECT request".to_string()),
        Err(e) => return Err(format!("malformed CONNECT request: {e}")),
    }
    if req.method != Some("CONNECT") {
        return Err("expected a CONNECT request".to_string());
    }
    let target = req.path.unwrap_or("");
    let (host, port) = crate::config::split_host_port(target)
        .ok_or_else(|| format!("CONNECT target {target:?} is not host:port"))?;
    let valid = host.parse::<std::net::IpAddr>().is_ok()
        || (!host.is_empty()
            && host.len() <= 253
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_')));
    if !valid {
        return Err(format!(
            "CONNECT target host {host:?} is not a host name or IP address"
        ));
    }
    Ok((normalize_host(host), port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_connect_targets() {
        let ok = |h: &str| parse_connect(h.as_bytes());
        assert_eq!(
            ok("CONNECT API.openai.com:443 HTTP/1.1\r\nHost: api.openai.com:443\r\n\r\n").unwrap(),
            ("api.openai.com".to_string(), 443)
        );
        assert_eq!(
            ok("CONNECT [::1]:8443 HTTP/1.1\r\n\r\n").unwrap(),
            ("::1".to_string(), 8443)
        );
        assert_eq!(
            ok("CONNECT 10.0.0.1:443 HTTP/1.0\r\n\r\n").unwrap(),
            ("10.0.0.1".to_string(), 443)
        );
        for bad in [
            "CONNECT api.openai.com HTTP/1.1\r\n\r\n",
            "CONNECT api.openai.com:0 HTTP/1.1\r\n\r\n",
            "CONNECT a/b:443 HTTP/1.1\r\n\r\n",
            "CONNECT user@host:443 HTTP/1.1\r\n\r\n",
            "GET / HTTP/1.1\r\n\r\n",
            "CONNECT\r\n\r\n",
        ] {
            assert!(ok(bad).is_err(), "{bad:?} should be rejected");
        }
    }
}
