//! pingora keeps an HTTP/1 upgrade (a WebSocket) open when the upstream's
//! 101 is read before the upgrade request's own empty body has gone through.
//! That order is the norm with a fast upstream; pingora-proxy 0.9.1 then took
//! the end of the request body for the end of the tunnel and closed the
//! connection before the client's first message (the vendored copy's fix,
//! `proxy/vendor/pingora-proxy/PATCHED.md`).
//!
//! The order is forced here rather than left to chance: the proxy's request
//! body filter holds the end of the upgrade request's body until the upstream
//! has written its 101, and then lets the runtime turn once, which reads the
//! 101. Loopback only; no assertion on time.

mod bare_proxy;

use async_trait::async_trait;
use bytes::Bytes;
use pingora::proxy::{ProxyHttp, Session};
use pingora::upstreams::peer::HttpPeer;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

const ROUNDS: usize = 3;

/// Proxies everything to `upstream`; holds the end of a not yet upgraded
/// request's body until the upstream has answered (see the module docs).
struct Tunnel {
    upstream: SocketAddr,
    answered: Arc<Notify>,
}

#[async_trait]
impl ProxyHttp for Tunnel {
    type CTX = ();

    fn new_ctx(&self) {}

    async fn upstream_peer(
        &self,
        _session: &mut Session,
        _ctx: &mut (),
    ) -> pingora::Result<Box<HttpPeer>> {
        Ok(Box::new(HttpPeer::new(self.upstream, false, String::new())))
    }

    async fn request_body_filter(
        &self,
        session: &mut Session,
        _body: &mut Option<Bytes>,
        end_of_stream: bool,
        _ctx: &mut (),
    ) -> pingora::Result<()> {
        if end_of_stream && !session.was_upgraded() {
            self.answered.notified().await;
            // The 101 is in the proxy's socket already: the runtime's next
            // I/O turn, during this sleep, has the proxy read it.
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(())
    }
}

/// The request head (up to the blank line) from `r`.
fn head(r: &mut impl BufRead) -> String {
    let mut all = String::new();
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).unwrap() == 0 || line == "\r\n" {
            return all;
        }
        all.push_str(&line);
    }
}

/// An upstream that accepts each upgrade at once, says so on `answered`,
/// then echoes what comes through the tunnel.
fn upstream(answered: Arc<Notify>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for conn in listener.incoming().take(ROUNDS).flatten() {
            let mut r = BufReader::new(conn.try_clone().unwrap());
            let mut w = conn;
            assert!(head(&mut r)
                .to_ascii_lowercase()
                .contains("upgrade: websocket"));
            w.write_all(
                b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
            )
            .unwrap();
            answered.notify_one();
            let mut buf = [0u8; 64];
            while let Ok(n @ 1..) = r.read(&mut buf) {
                if w.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upgrade_stays_open_when_the_101_is_read_before_the_request_body_ends() {
    let answered = Arc::new(Notify::new());
    let tunnel = Tunnel {
        upstream: upstream(answered.clone()),
        answered,
    };
    let addr = bare_proxy::serve(tunnel).await;

    let clients = tokio::task::spawn_blocking(move || {
        for round in 0..ROUNDS {
            let conn = TcpStream::connect(addr).unwrap();
            conn.set_read_timeout(Some(Duration::from_secs(20)))
                .unwrap();
            let mut r = BufReader::new(conn.try_clone().unwrap());
            let mut w = conn;
            w.write_all(
                b"GET /ws HTTP/1.1\r\nHost: upstream\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
            )
            .unwrap();
            let got = head(&mut r);
            assert!(got.starts_with("HTTP/1.1 101"), "round {round}: {got}");
            let msg = format!("first message of round {round}\n");
            w.write_all(msg.as_bytes()).unwrap();
            let mut echo = String::new();
            r.read_line(&mut echo).unwrap();
            assert_eq!(
                echo, msg,
                "round {round}: the tunnel closed before the first message went through"
            );
        }
    });
    clients.await.unwrap();
}
