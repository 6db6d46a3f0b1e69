//! A small blocking HTTP client for tests (ureq), plus raw HTTP/1.1 exchanges that expose the wire
//! (chunk boundaries, truncated bodies).
//!
//! The agents never use proxy environment variables, never decompress (`content-encoding` stays
//! visible), never follow redirects, and return 4xx/5xx responses instead of errors.

use serde_json::Value;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::Duration;
pub use ureq;
use ureq::http;

pub const TIMEOUT: Duration = Duration::from_secs(30);

fn config() -> ureq::config::ConfigBuilder<ureq::typestate::AgentScope> {
    ureq::Agent::config_builder()
        .proxy(None)
        .http_status_as_error(false)
        .max_redirects(0)
        .timeout_global(Some(TIMEOUT))
        .user_agent("asg-e2e")
}

/// A plain-HTTP (and public-roots HTTPS) agent.
pub fn agent() -> ureq::Agent {
    config().build().into()
}

/// An agent that trusts only the CA certificates in `ca_pem`.
pub fn agent_with_ca(ca_pem: &Path) -> ureq::Agent {
    let pem = std::fs::read(ca_pem).unwrap_or_else(|e| panic!("reading {}: {e}", ca_pem.display()));
    let certs: Vec<_> = ureq::tls::parse_pem(&pem)
        .filter_map(|item| match item {
            Ok(ureq::tls::PemItem::Certificate(c)) => Some(c),
            _ => None,
        })
        .collect();
    assert!(!certs.is_empty(), "no certificate in {}", ca_pem.display());
    let tls = ureq::tls::TlsConfig::builder()
        .root_certs(ureq::tls::RootCerts::Specific(std::sync::Arc::new(certs)))
        .build();
    config().tls_config(tls).build().into()
}

/// A complete response.
#[derive(Clone, Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Resp {
    /// First value of a header (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON; panics with the body text when it is not JSON.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "response (status {}) is not JSON: {e}\n{}",
                self.status,
                self.text()
            )
        })
    }

    pub fn is_event_stream(&self) -> bool {
        self.header("content-type")
            .is_some_and(|ct| ct.starts_with("text/event-stream"))
    }
}

/// Send a request and read the whole response. `Err` for connection failures and bodies cut short.
pub fn try_send(
    agent: &ureq::Agent,
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> Result<Resp, ureq::Error> {
    let mut builder = http::Request::builder().method(method).uri(url);
    for (k, v) in headers {
        builder = builder.header(*k, *v);
    }
    let resp = match body {
        Some(b) => agent.run(builder.body(b.to_vec()).expect("valid request"))?,
        None => agent.run(builder.body(()).expect("valid request"))?,
    };
    let status = resp.status().as_u16();
    let headers = resp
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let body = resp
        .into_body()
        .into_with_config()
        .limit(u64::MAX)
        .read_to_vec()?;
    Ok(Resp {
        status,
        headers,
        body,
    })
}

pub fn send(method: &str, url: &str, headers: &[(&str, &str)], body: Option<&[u8]>) -> Resp {
    try_send(&agent(), method, url, headers, body).unwrap_or_else(|e| panic!("{method} {url}: {e}"))
}

pub fn get(url: &str) -> Resp {
    send("GET", url, &[], None)
}

/// POST a JSON body (adds `content-type: application/json`).
pub fn post_json(url: &str, headers: &[(&str, &str)], body: &Value) -> Resp {
    let mut h = vec![("content-type", "application/json")];
    h.extend_from_slice(headers);
    send("POST", url, &h, Some(body.to_string().as_bytes()))
}

/// Open a request and return the status, headers and a reader that yields the body as it arrives
/// (to observe streaming: time to first event, events arriving one by one).
pub fn open_stream(
    url: &str,
    headers: &[(&str, &str)],
    body: &Value,
) -> (u16, Vec<(String, String)>, impl Read + 'static) {
    let mut builder = http::Request::builder()
        .method("POST")
        .uri(url)
        .header("content-type", "application/json");
    for (k, v) in headers {
        builder = builder.header(*k, *v);
    }
    let req = builder
        .body(body.to_string().into_bytes())
        .expect("valid request");
    let resp = agent()
        .run(req)
        .unwrap_or_else(|e| panic!("POST {url}: {e}"));
    let status = resp.status().as_u16();
    let headers = resp
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let reader = resp.into_body().into_with_config().limit(u64::MAX).reader();
    (status, headers, reader)
}

/// A response read off the wire by [`raw_exchange`].
#[derive(Clone, Debug)]
pub struct RawResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    /// The body after de-chunking (still compressed if `content-encoding` is set).
    pub body: Vec<u8>,
    /// For `transfer-encoding: chunked`: the size of every chunk, in order.
    pub chunk_sizes: Option<Vec<usize>>,
    /// Whether the body ended properly (terminating chunk seen / content-length reached).
    pub complete: bool,
}

impl RawResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Send one HTTP/1.1 POST with `Connection: close` over a plain TCP socket and read until the server
/// closes, then parse the response (status line, headers, chunked framing).
pub fn raw_exchange(
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> RawResponse {
    let mut s = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    s.set_read_timeout(Some(TIMEOUT)).expect("set timeout");
    let mut req = format!(
        "POST {path} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\ncontent-type: application/json\r\ncontent-length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes())
        .and_then(|_| s.write_all(body))
        .expect("write request");
    let mut raw = Vec::new();
    // A reset after a truncated body is expected in some tests: keep what arrived.
    let _ = s.read_to_end(&mut raw);
    parse_raw_response(&raw)
}

/// Parse raw HTTP/1.1 response bytes.
pub fn parse_raw_response(raw: &[u8]) -> RawResponse {
    let head_end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| {
            panic!(
                "no complete response head in {:?}",
                String::from_utf8_lossy(raw)
            )
        });
    let head = String::from_utf8_lossy(&raw[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status code");
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let rest = &raw[head_end + 4..];
    let chunked = headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"));
    let mut resp = RawResponse {
        status,
        headers,
        body: Vec::new(),
        chunk_sizes: None,
        complete: false,
    };
    if !chunked {
        resp.body = rest.to_vec();
        let expected = resp
            .header("content-length")
            .and_then(|v| v.parse::<usize>().ok());
        resp.complete = expected.is_none_or(|n| n == rest.len());
        return resp;
    }
    let mut sizes = Vec::new();
    let mut pos = 0;
    while let Some(line_end) = rest[pos..].windows(2).position(|w| w == b"\r\n") {
        let size_text = String::from_utf8_lossy(&rest[pos..pos + line_end]).into_owned();
        let size_text = size_text
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_string();
        let Ok(size) = usize::from_str_radix(&size_text, 16) else {
            break;
        };
        pos += line_end + 2;
        if size == 0 {
            resp.complete = true;
            break;
        }
        if pos + size > rest.len() {
            resp.body.extend_from_slice(&rest[pos..]);
            break;
        }
        resp.body.extend_from_slice(&rest[pos..pos + size]);
        sizes.push(size);
        pos += size + 2;
    }
    resp.chunk_sizes = Some(sizes);
    resp
}

/// Gunzip (panics on invalid data).
pub fn gunzip(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(data)
        .read_to_end(&mut out)
        .expect("valid gzip");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_chunked_framing() {
        let raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n";
        let r = parse_raw_response(raw);
        assert_eq!(
            (r.status, r.text(), r.chunk_sizes.clone(), r.complete),
            (200, "abcde".into(), Some(vec![3, 2]), true)
        );
        let cut = parse_raw_response(
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n",
        );
        assert!(!cut.complete);
        assert_eq!(cut.text(), "abc");
    }
}
