//! A scripted upstream for hostile-server tests: every connection reads one HTTP/1.1 request and
//! answers exactly what the test's function says, byte for byte — any `Content-Encoding`, a body
//! that is not JSON, a head that never comes, a stream that stalls. The mock upstream
//! ([`crate::MockUpstream`]) plays well-behaved APIs; this one plays a broken or malicious server.
//!
//! Loopback only; one thread per connection; stopped when dropped.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One request as the scripted upstream read it.
#[derive(Clone, Debug)]
pub struct Request {
    pub method: String,
    /// Request target as sent (path and query).
    pub target: String,
    /// Lower-case names.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// How the reply body is delimited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    ContentLength,
    Chunked,
    /// No length: the body ends when the connection closes.
    Close,
}

/// What to answer.
#[derive(Clone, Debug)]
pub struct Reply {
    /// Wait this long before the status line (a slow or hanging upstream).
    pub head_delay: Duration,
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub framing: Framing,
    /// Body pieces, each written (and flushed) after its delay.
    pub pieces: Vec<(Duration, Vec<u8>)>,
    /// After the last piece, keep the connection open this long before ending the body.
    pub stall: Duration,
}

impl Reply {
    /// `status` with a complete body and `Content-Length`.
    pub fn new(status: u16, content_type: &str, body: impl Into<Vec<u8>>) -> Reply {
        Reply {
            head_delay: Duration::ZERO,
            status,
            headers: vec![("content-type".into(), content_type.into())],
            framing: Framing::ContentLength,
            pieces: vec![(Duration::ZERO, body.into())],
            stall: Duration::ZERO,
        }
    }

    /// A JSON body.
    pub fn json(body: impl Into<Vec<u8>>) -> Reply {
        Reply::new(200, "application/json", body)
    }

    /// An event stream (chunked), one piece per event.
    pub fn sse(events: &[&str]) -> Reply {
        Reply {
            framing: Framing::Chunked,
            pieces: events
                .iter()
                .map(|e| (Duration::ZERO, e.as_bytes().to_vec()))
                .collect(),
            ..Reply::new(200, "text/event-stream", Vec::new())
        }
    }

    pub fn header(mut self, name: &str, value: &str) -> Reply {
        self.headers.push((name.into(), value.into()));
        self
    }

    pub fn framing(mut self, f: Framing) -> Reply {
        self.framing = f;
        self
    }

    pub fn head_delay(mut self, d: Duration) -> Reply {
        self.head_delay = d;
        self
    }

    pub fn stall(mut self, d: Duration) -> Reply {
        self.stall = d;
        self
    }
}

type Script = dyn Fn(&Request) -> Reply + Send + Sync;

/// The running upstream.
pub struct ScriptedUpstream {
    addr: SocketAddr,
    requests: Arc<Mutex<Vec<Request>>>,
    stop: Arc<AtomicBool>,
}

impl ScriptedUpstream {
    pub fn start(script: impl Fn(&Request) -> Reply + Send + Sync + 'static) -> ScriptedUpstream {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local_addr");
        let requests: Arc<Mutex<Vec<Request>>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let script: Arc<Script> = Arc::new(script);
        let (log, halt) = (requests.clone(), stop.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if halt.load(Ordering::Relaxed) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let (script, log) = (script.clone(), log.clone());
                std::thread::spawn(move || {
                    let _ = serve(conn, &*script, &log);
                });
            }
        });
        ScriptedUpstream {
            addr,
            requests,
            stop,
        }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Requests received so far.
    pub fn requests(&self) -> Vec<Request> {
        self.requests.lock().expect("request log").clone()
    }
}

impl Drop for ScriptedUpstream {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = TcpStream::connect(self.addr);
    }
}

fn serve(conn: TcpStream, script: &Script, log: &Mutex<Vec<Request>>) -> std::io::Result<()> {
    conn.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_string();
    let target = parts.next().unwrap_or_default().to_string();
    let mut headers = Vec::new();
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 || line.trim_end().is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    let get = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    let mut body = Vec::new();
    if get("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
        loop {
            line.clear();
            reader.read_line(&mut line)?;
            let size = usize::from_str_radix(line.trim().split(';').next().unwrap_or("0"), 16)
                .unwrap_or(0);
            let mut chunk = vec![0; size + 2];
            reader.read_exact(&mut chunk)?;
            if size == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..size]);
        }
    } else if let Some(n) = get("content-length").and_then(|v| v.parse::<usize>().ok()) {
        body.resize(n, 0);
        reader.read_exact(&mut body)?;
    }
    let req = Request {
        method,
        target,
        headers,
        body,
    };
    let reply = script(&req);
    log.lock().expect("request log").push(req);
    write_reply(conn, &reply)
}

fn write_reply(mut conn: TcpStream, r: &Reply) -> std::io::Result<()> {
    std::thread::sleep(r.head_delay);
    let mut head = format!("HTTP/1.1 {} Scripted\r\nconnection: close\r\n", r.status);
    for (k, v) in &r.headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    match r.framing {
        Framing::ContentLength => {
            let len: usize = r.pieces.iter().map(|(_, p)| p.len()).sum();
            head.push_str(&format!("content-length: {len}\r\n"));
        }
        Framing::Chunked => head.push_str("transfer-encoding: chunked\r\n"),
        Framing::Close => {}
    }
    head.push_str("\r\n");
    conn.write_all(head.as_bytes())?;
    conn.flush()?;
    for (delay, piece) in &r.pieces {
        std::thread::sleep(*delay);
        if r.framing == Framing::Chunked {
            if piece.is_empty() {
                continue;
            }
            conn.write_all(format!("{:x}\r\n", piece.len()).as_bytes())?;
            conn.write_all(piece)?;
            conn.write_all(b"\r\n")?;
        } else {
            conn.write_all(piece)?;
        }
        conn.flush()?;
    }
    std::thread::sleep(r.stall);
    if r.framing == Framing::Chunked {
        conn.write_all(b"0\r\n\r\n")?;
    }
    conn.flush()?;
    conn.shutdown(std::net::Shutdown::Write)
}

/// A WebSocket upstream: it accepts each upgrade as soon as it has read it (a thread per
/// connection, blocked on its socket, so the 101 comes back about as fast as loopback allows),
/// records every text message and answers each with `reply`, verbatim, as one text frame.
/// Returns its base URL and the messages seen. Runs until the test process ends.
pub fn ws_upstream(reply: String) -> (String, Arc<Mutex<Vec<String>>>) {
    use tokio_tungstenite::tungstenite::{self, Message};
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    let addr = listener.local_addr().expect("local addr");
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let (reply, record) = (reply.clone(), record.clone());
            std::thread::spawn(move || {
                let Ok(mut ws) = tungstenite::accept(stream) else {
                    return;
                };
                while let Ok(m) = ws.read() {
                    if let Message::Text(t) = m {
                        record.lock().unwrap().push(t.to_string());
                        if ws.send(Message::Text(reply.clone().into())).is_err() {
                            return;
                        }
                    }
                }
            });
        }
    });
    (format!("http://{addr}"), seen)
}
