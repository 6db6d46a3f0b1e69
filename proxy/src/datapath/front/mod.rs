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
//! * On the transparent listener the destination is the socket's pre-redirect
//!   destination and the host name the ClientHello's SNI (no CONNECT).
//!
//! pingora itself rejects CONNECT with 405, which is why this exists.

mod conn;
pub mod connect;
mod redirected;

use super::forward::{tunnel_digest, ForwardTarget, Unreachable};
use super::gateway::Gateway;
use super::tls::{ca, Interceptor, LeafMinter, Resolution, TlsError, LEAF_CACHE_CAPACITY};
use super::tunnel;
use crate::app::App;
use crate::decision::policy::connect::ConnectVerdict;
use crate::decision::Decision;
use async_trait::async_trait;
use conn::Conn;
use pingora::apps::ServerApp;
use pingora::listeners::tls::Acceptor;
use pingora::protocols::l4::stream::Stream as L4Stream;
use pingora::protocols::{GetProxyDigest, Peek, Stream};
use pingora::proxy::{http_proxy, http_proxy_service, HttpProxy};
use pingora::server::{Server, ShutdownWatch};
use pingora::services::listening::Service;
use std::sync::Arc;
use std::time::{Duration, Instant};

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

impl Front {
    async fn proxy_listener(&self, mut l4: L4Stream, shutdown: &ShutdownWatch) {
        let mut head = [0u8; 8];
        match tokio::time::timeout(IDLE_TIMEOUT, l4.try_peek(&mut head)).await {
            Ok(Ok(true)) => {}
            // Closed, silent or too short to be a request: nothing to serve.
            _ => return,
        }
        if &head == b"CONNECT " && self.app.proxy.forward_proxy {
            self.connect(l4, shutdown).await;
        } else {
            self.proxy.process_new(Box::new(l4), shutdown).await;
        }
    }

    /// Where a blind tunnel connects: an override, the pre-redirect destination
    /// or the resolved host, never the gateway itself.
    async fn destination(&self, t: &ForwardTarget) -> Result<std::net::SocketAddr, Unreachable> {
        self.app
            .forwarding
            .upstream_addr(t, &self.app.resolver)
            .await
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
                    format!("TLS handshake with the client failed: {e}. Does it trust the asg CA? Node and Claude Code read NODE_EXTRA_CA_CERTS, Python and OpenSSL tools SSL_CERT_FILE, Codex CODEX_CA_CERTIFICATE; `asg env` prints them")
                }
            },
            Err(_) => {
                format!("TLS handshake with the client timed out after {HANDSHAKE_TIMEOUT:?}")
            }
        };
        tracing::info!(id = %conn.id, %authority, "{failure}");
        conn.failed("client_tls");
        conn.audit(&authority, Decision::Allow, None, vec![failure]);
    }
}

/// Put the proxy listener (and the transparent listener, when configured)
/// on the server. Without forward or transparent mode this is pingora's
/// stock HTTP proxy service, with no front and no CA.
pub fn add_services(server: &mut Server, app: Arc<App>) -> Result<(), TlsError> {
    let cfg = &app.proxy;
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
fn load_interceptor(app: &App) -> Result<Interceptor, TlsError> {
    let paths = app.proxy.ca.clone();
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
