//! The vendored pingora-proxy's `hold_response_header`
//! (`proxy/vendor/pingora-proxy/PATCHED.md`): a service whose body filter
//! keeps a response back and emits it whole at the end gets header and body
//! out together, with a `Content-Length` instead of chunked encoding; bytes
//! emitted early release the header unchanged; a service that does not ask
//! gets pingora's behaviour. A bare pingora proxy over loopback, raw HTTP.

mod bare_proxy;

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use pingora::http::ResponseHeader;
use pingora::proxy::{ProxyHttp, Session};
use pingora::upstreams::peer::HttpPeer;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

const BODY: &str = "{\"answer\":\"the whole body, sent by the upstream in two writes\"}";

/// `/buffer` (and `/nocontent`, a 204): keep the body back, emit it at the
/// end; `/early`: the same, but pass the first bytes at once; `/plain`: do
/// not ask to hold.
struct Buffering {
    upstream: SocketAddr,
}

#[derive(Default)]
struct Ctx {
    mode: String,
    buf: BytesMut,
    passed_first: bool,
}

#[async_trait]
impl ProxyHttp for Buffering {
    type CTX = Ctx;

    fn new_ctx(&self) -> Ctx {
        Ctx::default()
    }

    async fn upstream_peer(
        &self,
        session: &mut Session,
        ctx: &mut Ctx,
    ) -> pingora::Result<Box<HttpPeer>> {
        ctx.mode = session.req_header().uri.path().trim_matches('/').into();
        Ok(Box::new(HttpPeer::new(self.upstream, false, String::new())))
    }

    async fn response_filter(
        &self,
        _session: &mut Session,
        resp: &mut ResponseHeader,
        _ctx: &mut Ctx,
    ) -> pingora::Result<()> {
        // The body may be rewritten: its length is not known yet.
        resp.remove_header("content-length");
        Ok(())
    }

    fn upstream_response_body_filter(
        &self,
        _session: &mut Session,
        body: &mut Option<Bytes>,
        end_of_stream: bool,
        ctx: &mut Ctx,
    ) -> pingora::Result<Option<Duration>> {
        if ctx.mode == "early" && !ctx.passed_first && body.is_some() {
            ctx.passed_first = true;
            return Ok(None);
        }
        if let Some(b) = body.take() {
            ctx.buf.extend_from_slice(&b);
        }
        if end_of_stream {
            *body = Some(std::mem::take(&mut ctx.buf).freeze());
        }
        Ok(None)
    }

    fn hold_response_header(&self, _session: &Session, ctx: &Ctx) -> bool {
        ctx.mode != "plain"
    }
}

/// An upstream that answers every request with [`BODY`] in two writes, a
/// moment apart, so the proxy reads it as several body tasks.
fn upstream() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let mut r = BufReader::new(conn.try_clone().unwrap());
                let mut w = conn;
                loop {
                    let request = head(&mut r);
                    if request.is_empty() {
                        return;
                    }
                    if request.starts_with("get /nocontent") {
                        if w.write_all(b"HTTP/1.1 204 No Content\r\n\r\n").is_err() {
                            return;
                        }
                        continue;
                    }
                    let (a, b) = BODY.split_at(10);
                    let msg = format!("HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{a}", BODY.len());
                    if w.write_all(msg.as_bytes()).is_err() {
                        return;
                    }
                    std::thread::sleep(Duration::from_millis(30));
                    if w.write_all(b.as_bytes()).is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

fn head(r: &mut impl BufRead) -> String {
    let mut all = String::new();
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
            return all;
        }
        all.push_str(&line.to_ascii_lowercase());
    }
}

/// The response head and its body (de-chunked).
fn fetch(addr: SocketAddr, path: &str) -> (String, String) {
    let conn = TcpStream::connect(addr).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut r = BufReader::new(conn.try_clone().unwrap());
    let mut w = conn;
    write!(
        w,
        "GET /{path} HTTP/1.1\r\nHost: upstream\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let h = head(&mut r);
    let mut body = String::new();
    if h.contains("transfer-encoding: chunked") {
        loop {
            let mut size = String::new();
            r.read_line(&mut size).unwrap();
            let n = usize::from_str_radix(size.trim(), 16).unwrap();
            let mut chunk = vec![0u8; n + 2];
            r.read_exact(&mut chunk).unwrap();
            if n == 0 {
                break;
            }
            body.push_str(std::str::from_utf8(&chunk[..n]).unwrap());
        }
    } else {
        r.read_to_string(&mut body).unwrap();
    }
    (h, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_header_leaves_with_the_whole_body_and_its_length() {
    let addr = bare_proxy::serve(Buffering {
        upstream: upstream(),
    })
    .await;

    tokio::task::spawn_blocking(move || {
        let (h, body) = fetch(addr, "buffer");
        assert_eq!(body, BODY);
        assert!(
            h.contains(&format!("content-length: {}\r\n", BODY.len())),
            "{h}"
        );
        assert!(!h.contains("transfer-encoding"), "{h}");

        // Without a length (the request asked to close, so pingora ends the
        // body by closing instead of chunking).
        for path in ["early", "plain"] {
            let (h, body) = fetch(addr, path);
            assert_eq!(body, BODY, "{path}");
            assert!(!h.contains("content-length"), "{path}: {h}");
        }

        // An answer without a body gets no length, held or not.
        let (h, body) = fetch(addr, "nocontent");
        assert!(h.starts_with("http/1.1 204"), "{h}");
        assert!(body.is_empty() && !h.contains("content-length"), "{h}");
    })
    .await
    .unwrap();
}
