//! Launch the `mock-upstream` binary as a child process and talk to its control endpoints.

use crate::http;
use crate::util::{mock_upstream_bin, tail};
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// One request as recorded by the mock (`GET /__mock/requests`).
#[derive(Clone, Debug, Deserialize)]
pub struct RecordedRequest {
    pub id: u64,
    /// Unix time in seconds.
    pub ts: f64,
    pub method: String,
    /// Path and query string, e.g. `/v1/messages?beta=true`.
    pub path: String,
    /// Lower-case header names; repeated headers joined with ", ".
    pub headers: BTreeMap<String, String>,
    /// The body when it was UTF-8.
    pub body: Option<String>,
    /// The body, base64-encoded, when it was not UTF-8.
    pub body_base64: Option<String>,
}

impl RecordedRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }

    /// The path without the query string.
    pub fn path_only(&self) -> &str {
        self.path.split('?').next().unwrap_or_default()
    }

    pub fn body_text(&self) -> &str {
        self.body.as_deref().unwrap_or_default()
    }

    /// The body parsed as JSON (`None` when empty or not JSON).
    pub fn body_json(&self) -> Option<Value> {
        self.body
            .as_deref()
            .and_then(|b| serde_json::from_str(b).ok())
    }

    pub fn body_bytes(&self) -> Vec<u8> {
        use base64::Engine;
        match (&self.body, &self.body_base64) {
            (Some(b), _) => b.as_bytes().to_vec(),
            (None, Some(b64)) => base64::engine::general_purpose::STANDARD
                .decode(b64)
                .expect("valid base64"),
            (None, None) => Vec::new(),
        }
    }
}

/// A running `mock-upstream` process; killed on drop.
pub struct MockUpstream {
    child: Child,
    /// Held open: the mock exits when it closes (`--exit-on-stdin-eof`), so a mock kept in a `static`
    /// (never dropped) still ends with the test process.
    _stdin: Option<ChildStdin>,
    addr: SocketAddr,
    tls: bool,
    agent: ureq::Agent,
    /// A read handle on the child's stderr log; the file itself is unlinked right after the spawn, so
    /// nothing is left behind even by a mock that is never dropped.
    stderr_log: File,
}

impl MockUpstream {
    /// Start a plain-HTTP mock on a free loopback port (`--listen 127.0.0.1:0`).
    pub fn start() -> MockUpstream {
        Self::start_with_args(&[])
    }

    /// Start an HTTPS mock with this certificate chain and key (PEM files).
    pub fn start_tls(cert: &Path, key: &Path) -> MockUpstream {
        let (cert, key) = (cert.to_string_lossy(), key.to_string_lossy());
        Self::start_with_args(&["--tls-cert", &cert, "--tls-key", &key])
    }

    /// Start with extra command-line arguments (e.g. `--fixtures DIR`, `--record-limit N`).
    pub fn start_with_args(args: &[&str]) -> MockUpstream {
        let bin = mock_upstream_bin();
        let log = tempfile::Builder::new()
            .prefix("asg-mock-stderr-")
            .tempfile()
            .expect("temp file");
        let stderr = log.reopen().expect("reopen stderr log");
        let stderr_log = log.reopen().expect("reopen stderr log");
        let mut child = Command::new(&bin)
            .args(["--listen", "127.0.0.1:0", "--exit-on-stdin-eof"])
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| panic!("spawning {}: {e}", bin.display()));
        drop(log); // unlinks the path; the child and `stderr_log` keep their handles
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            let mut line = String::new();
            let _ = reader.read_line(&mut line);
            let _ = tx.send(line);
            // Keep draining so the child never blocks on a full pipe.
            let _ = std::io::copy(&mut reader, &mut std::io::sink());
        });
        let line = rx.recv_timeout(Duration::from_secs(15)).unwrap_or_default();
        let addr = line
            .strip_prefix("LISTENING ")
            .and_then(|a| a.trim().parse::<SocketAddr>().ok());
        let Some(addr) = addr else {
            let _ = child.kill();
            let _ = child.wait();
            let log = read_all(&stderr_log);
            panic!(
                "mock-upstream did not print `LISTENING <addr>` (got {line:?}); stderr:\n{}",
                tail(&log, 8000)
            );
        };
        let tls = args.contains(&"--tls-cert");
        let agent = if tls {
            let cfg = ureq::tls::TlsConfig::builder()
                .disable_verification(true)
                .build();
            ureq::Agent::config_builder()
                .proxy(None)
                .http_status_as_error(false)
                .tls_config(cfg)
                .timeout_global(Some(http::TIMEOUT))
                .build()
                .into()
        } else {
            http::agent()
        };
        MockUpstream {
            child,
            _stdin: stdin,
            addr,
            tls,
            agent,
            stderr_log,
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:<port>` (or `https://…` for a TLS mock); the Anthropic base URL.
    pub fn base_url(&self) -> String {
        format!(
            "{}://{}",
            if self.tls { "https" } else { "http" },
            self.addr
        )
    }

    /// `<base>/v1`, the OpenAI SDK base URL.
    pub fn openai_base_url(&self) -> String {
        format!("{}/v1", self.base_url())
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url())
    }

    /// Everything recorded since start or the last [`reset`](Self::reset), oldest first.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        let r = http::try_send(&self.agent, "GET", &self.url("/__mock/requests"), &[], None)
            .unwrap_or_else(|e| panic!("GET /__mock/requests: {e}"));
        assert_eq!(r.status, 200, "GET /__mock/requests: {}", r.text());
        serde_json::from_slice(&r.body).expect("request log is JSON")
    }

    /// Recorded requests whose path (without query) is `path`.
    pub fn requests_to(&self, path: &str) -> Vec<RecordedRequest> {
        self.requests()
            .into_iter()
            .filter(|r| r.path_only() == path)
            .collect()
    }

    pub fn reset(&self) {
        let r = http::try_send(
            &self.agent,
            "POST",
            &self.url("/__mock/reset"),
            &[],
            Some(b""),
        )
        .unwrap_or_else(|e| panic!("POST /__mock/reset: {e}"));
        assert_eq!(r.status, 200, "POST /__mock/reset: {}", r.text());
    }

    pub fn stderr_text(&self) -> String {
        read_all(&self.stderr_log)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

fn read_all(mut f: &File) -> String {
    let mut out = String::new();
    let _ = f
        .seek(SeekFrom::Start(0))
        .and_then(|_| f.read_to_string(&mut out));
    out
}

impl Drop for MockUpstream {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
