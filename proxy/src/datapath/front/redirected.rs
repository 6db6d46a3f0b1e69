//! Connections redirected to the transparent listener: the destination is
//! the pre-redirect destination, the host the TLS SNI (or, for plain HTTP, each
//! request's `Host`).

use super::conn::Conn;
use super::{Front, HEAD_TIMEOUT, IDLE_TIMEOUT, TLS_HANDSHAKE_RECORD};
use crate::datapath::forward::{tunnel_digest, ForwardTarget, Mode};
use crate::datapath::{transparent, tunnel};
use crate::decision::policy::connect::{normalize_host, ConnectAction};
use crate::decision::Decision;
use pingora::apps::ServerApp;
use pingora::protocols::l4::stream::Stream as L4Stream;
use pingora::protocols::{GetProxyDigest, GetSocketDigest, Peek};
use pingora::server::ShutdownWatch;

impl Front {
    pub(super) async fn transparent_listener(&self, mut l4: L4Stream, shutdown: &ShutdownWatch) {
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
                conn.audit(
                    &orig.to_string(),
                    Decision::Block,
                    None,
                    vec![msg.to_string()],
                );
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
                Err(why) => {
                    conn.failed(why.reason());
                    return conn.audit(&authority, Decision::Block, None, vec![why.to_string()]);
                }
            };
            let timeout = self.app.proxy.timeouts.connect;
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
