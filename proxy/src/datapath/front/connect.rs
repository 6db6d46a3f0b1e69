//! `CONNECT host:port` on the proxy listener: parse, decide by the
//! `[connect]` policy, then refuse (403), tunnel blind, or intercept.

use super::conn::Conn;
use super::{Front, HEAD_TIMEOUT, IDLE_TIMEOUT, TLS_HANDSHAKE_RECORD};
use crate::datapath::forward::ForwardError;
use crate::datapath::forward::{tunnel_digest, ForwardTarget, Mode};
use crate::datapath::tunnel;
use crate::decision::policy::connect::{normalize_host, ConnectAction};
use crate::decision::Decision;
use pingora::apps::ServerApp;
use pingora::protocols::l4::stream::Stream as L4Stream;
use pingora::protocols::{GetProxyDigest, Peek};
use pingora::server::ShutdownWatch;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Longest CONNECT request head.
const HEAD_LIMIT: usize = 8 * 1024;

impl Front {
    pub(super) async fn connect(&self, mut l4: L4Stream, shutdown: &ShutdownWatch) {
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
                    &msg.to_string(),
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
                    &msg.to_string(),
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
                    Err(why) => {
                        let (status, msg) = (why.status(), why.to_string());
                        conn.failed(why.reason());
                        conn.audit(&authority, Decision::Block, Some(status), vec![msg.clone()]);
                        let code = if status == 403 {
                            "asg_blocked"
                        } else {
                            "asg_upstream_unreachable"
                        };
                        return respond(&mut l4, &conn.id, status, Decision::Block, code, &msg)
                            .await;
                    }
                };
                let timeout = self.app.proxy.timeouts.connect;
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
                            &msg.to_string(),
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
async fn read_head(l4: &mut L4Stream) -> Result<Vec<u8>, ForwardError> {
    let mut buf = Vec::with_capacity(256);
    let mut chunk = [0u8; 1024];
    loop {
        let n = l4
            .read(&mut chunk)
            .await
            .map_err(|e| ForwardError::Connect(format!("reading the CONNECT request: {e}")))?;
        if n == 0 {
            return Err(ForwardError::Connect(
                "client closed before finishing its CONNECT request".into(),
            ));
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
            return Err(ForwardError::Connect(format!(
                "CONNECT request head exceeds {HEAD_LIMIT} bytes"
            )));
        }
    }
}

/// `CONNECT host:port HTTP/1.1` → (normalized host, port).
pub fn parse_connect(head: &[u8]) -> Result<(String, u16), ForwardError> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut req = httparse::Request::new(&mut headers);
    match req.parse(head) {
        Ok(httparse::Status::Complete(_)) => {}
        Ok(httparse::Status::Partial) => {
            return Err(ForwardError::Connect("incomplete CONNECT request".into()))
        }
        Err(e) => {
            return Err(ForwardError::Connect(format!(
                "malformed CONNECT request: {e}"
            )))
        }
    }
    if req.method != Some("CONNECT") {
        return Err(ForwardError::Connect("expected a CONNECT request".into()));
    }
    let target = req.path.unwrap_or("");
    let (host, port) = crate::util::split_host_port(target).ok_or_else(|| {
        ForwardError::Connect(format!("CONNECT target {target:?} is not host:port"))
    })?;
    let valid = host.parse::<std::net::IpAddr>().is_ok()
        || (!host.is_empty()
            && host.len() <= 253
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_')));
    if !valid {
        return Err(ForwardError::Connect(format!(
            "CONNECT target host {host:?} is not a host name or IP address"
        )));
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
