//! Transparent mode: connections redirected to the gateway by iptables
//! (`REDIRECT`, as Istio's init container does), with no proxy settings in
//! the agent at all.
//!
//! * The destination is the socket's pre-redirect destination
//!   (`SO_ORIGINAL_DST`, read by pingora's socket digest).
//! * TLS is recognised by its first byte; the host name is the ClientHello's
//!   SNI (parsed by rustls, then the bytes are replayed), else the IP.
//! * Loops are prevented in two layers: the redirect rules exclude the
//!   gateway's own traffic by uid and/or `SO_MARK` (`asg iptables`), and the
//!   gateway refuses connections that were not redirected or whose pre-redirect
//!   destination is one of its own listeners.

use crate::datapath::forward::ForwardError;
use pingora::protocols::SocketDigest;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt};

/// Largest ClientHello we wait for (post-quantum key shares make them ~2 KiB).
const MAX_HELLO: usize = 16 * 1024;

/// Why a connection on the transparent listener is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Connected to the transparent port directly (no redirect).
    NotRedirected,
    /// The pre-redirect destination is the gateway itself, or the connection
    /// comes from one of the gateway's own tunnels.
    Loop(SocketAddr),
}

impl Refusal {
    pub fn reason(&self) -> &'static str {
        match self {
            Refusal::NotRedirected => "not_redirected",
            Refusal::Loop(_) => "loop",
        }
    }

    pub fn message(&self) -> String {
        match self {
            Refusal::NotRedirected => "connection to the transparent listener was not redirected (no original destination); point agents at the proxy listener instead".to_string(),
            Refusal::Loop(a) => format!("connection to {a} came from, or leads back to, the gateway itself; refusing a redirect loop (exclude the gateway's uid or SO_MARK in the redirect rules)"),
        }
    }
}

/// The pre-redirect destination (`SO_ORIGINAL_DST`) of a redirected connection. A socket that was
/// not redirected has none, or (with conntrack loaded) its own address.
pub fn original_destination(digest: Option<&SocketDigest>) -> Result<SocketAddr, Refusal> {
    let digest = digest.ok_or(Refusal::NotRedirected)?;
    let orig = digest
        .original_dst()
        .and_then(|a| a.as_inet())
        .copied()
        .ok_or(Refusal::NotRedirected)?;
    let local = digest.local_addr().and_then(|a| a.as_inet()).copied();
    if Some(orig) == local {
        return Err(Refusal::NotRedirected);
    }
    Ok(orig)
}

/// Accumulates a TLS ClientHello until rustls can parse it.
pub struct HelloReader {
    acceptor: rustls::server::Acceptor,
    bytes: Vec<u8>,
}

impl Default for HelloReader {
    fn default() -> Self {
        HelloReader {
            acceptor: rustls::server::Acceptor::default(),
            bytes: Vec::with_capacity(2048),
        }
    }
}

impl HelloReader {
    /// Feed bytes; `Ok(Some(sni))` once the ClientHello is complete (`sni` is
    /// `None` when the client sent none), `Ok(None)` to read more.
    pub fn feed(&mut self, mut data: &[u8]) -> Result<Option<Option<String>>, ForwardError> {
        self.bytes.extend_from_slice(data);
        if self.bytes.len() > MAX_HELLO {
            return Err(ForwardError::ClientHello(format!(
                "no complete ClientHello in {MAX_HELLO} bytes"
            )));
        }
        while !data.is_empty() {
            self.acceptor
                .read_tls(&mut data)
                .map_err(|e| ForwardError::ClientHello(format!("not a TLS ClientHello: {e}")))?;
        }
        match self.acceptor.accept() {
            Ok(Some(accepted)) => Ok(Some(
                accepted
                    .client_hello()
                    .server_name()
                    .map(|s| s.trim_end_matches('.').to_ascii_lowercase()),
            )),
            Ok(None) => Ok(None),
            Err((e, _)) => Err(ForwardError::ClientHello(format!(
                "not a TLS ClientHello: {e}"
            ))),
        }
    }

    /// Everything read so far, to replay into the stream.
    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }
}

/// Read a ClientHello from `s`; returns the SNI and the bytes consumed (the
/// caller puts them back with `rewind`).
pub async fn read_client_hello<S: AsyncRead + Unpin>(
    s: &mut S,
    timeout: Duration,
) -> Result<(Option<String>, Vec<u8>), ForwardError> {
    let mut reader = HelloReader::default();
    let mut chunk = [0u8; 4096];
    let read = async {
        loop {
            let n = s
                .read(&mut chunk)
                .await
                .map_err(|e| ForwardError::ClientHello(format!("reading the ClientHello: {e}")))?;
            if n == 0 {
                return Err(ForwardError::ClientHello(
                    "client closed before completing its ClientHello".into(),
                ));
            }
            if let Some(sni) = reader.feed(&chunk[..n])? {
                return Ok(sni);
            }
        }
    };
    let sni = tokio::time::timeout(timeout, read)
        .await
        .map_err(|_| ForwardError::ClientHello(format!("no ClientHello within {timeout:?}")))??;
    Ok((sni, reader.into_bytes()))
}

#[cfg(test)]
pub(crate) fn client_hello(sni: &str) -> Vec<u8> {
    use std::sync::Arc;
    let cfg = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(rustls::RootCertStore::empty())
    .with_no_client_auth();
    let name = rustls::pki_types::ServerName::try_from(sni.to_string()).unwrap();
    let mut conn = rustls::ClientConnection::new(Arc::new(cfg), name).unwrap();
    let mut out = Vec::new();
    conn.write_tls(&mut out).unwrap();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_sni_in_a_real_client_hello_fed_byte_by_byte() {
        let hello = client_hello("API.OpenAI.com");
        let mut r = HelloReader::default();
        let mut found = None;
        for (i, b) in hello.iter().enumerate() {
            if let Some(sni) = r.feed(std::slice::from_ref(b)).unwrap() {
                assert_eq!(i, hello.len() - 1, "complete only at the last byte");
                found = Some(sni);
            }
        }
        assert_eq!(found, Some(Some("api.openai.com".to_string())));
        assert_eq!(r.into_bytes(), hello, "every byte kept for replay");
    }

    #[test]
    fn ip_targets_send_no_sni() {
        let hello = client_hello("10.0.0.1");
        let mut r = HelloReader::default();
        assert_eq!(r.feed(&hello).unwrap(), Some(None));
    }

    #[test]
    fn plain_http_is_not_tls() {
        let mut r = HelloReader::default();
        let err = r.feed(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap_err();
        assert!(err.to_string().contains("not a TLS ClientHello"), "{err}");
    }

    #[tokio::test]
    async fn read_client_hello_times_out_and_reports_eof() {
        let hello = client_hello("a.test");
        let (mut a, mut b) = tokio::io::duplex(8192);
        tokio::io::AsyncWriteExt::write_all(&mut a, &hello[..10])
            .await
            .unwrap();
        let err = read_client_hello(&mut b, Duration::from_millis(50))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("no ClientHello"), "{err}");
        drop(a);
        let err = read_client_hello(&mut b, Duration::from_secs(5))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("closed"), "{err}");
    }
}
