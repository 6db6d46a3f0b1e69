//! Load client for the forward-proxy benchmark (`tests/bench/forward.sh`).
//!
//! ```text
//! forward_load handshake --proxy 127.0.0.1:P --ca ca.pem --count N [--unique]
//!     N sequential new connections: TCP connect, CONNECT, TLS handshake with a leaf
//!     minted (--unique: a new host name each time, `h<i>.bench.test`) or cached.
//! forward_load tunnel  --proxy 127.0.0.1:P --ca ca.pem --host api.openai.com -c C -d SECS
//! forward_load reverse --proxy 127.0.0.1:P -c C -d SECS
//!     C keep-alive connections posting 1 KiB chat completions (1 KiB answers) for SECS
//!     seconds, through a CONNECT tunnel (TLS to the gateway) or in reverse mode (plain HTTP).
//! ```
//! Prints one line of JSON: counts, rates and latency percentiles in microseconds.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

type Error = Box<dyn std::error::Error + Send + Sync>;

struct Args {
    mode: String,
    proxy: SocketAddr,
    ca: Option<String>,
    host: String,
    connections: usize,
    duration: Duration,
    count: usize,
    unique: bool,
}

fn args() -> Args {
    let mut it = std::env::args().skip(1);
    let mut a = Args {
        mode: it.next().expect("mode: handshake | tunnel | reverse"),
        proxy: "127.0.0.1:8080".parse().unwrap(),
        ca: None,
        host: "api.openai.com".into(),
        connections: 16,
        duration: Duration::from_secs(10),
        count: 200,
        unique: false,
    };
    while let Some(flag) = it.next() {
        let mut val = || it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--proxy" => a.proxy = val().parse().expect("--proxy ip:port"),
            "--ca" => a.ca = Some(val()),
            "--host" => a.host = val(),
            "-c" => a.connections = val().parse().expect("-c N"),
            "-d" => a.duration = Duration::from_secs(val().parse().expect("-d SECS")),
            "--count" => a.count = val().parse().expect("--count N"),
            "--unique" => a.unique = true,
            other => panic!("unknown flag {other}"),
        }
    }
    a
}

fn tls(ca: &str) -> TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca).expect("read --ca") {
        roots.add(cert.expect("PEM certificate")).unwrap();
    }
    let mut cfg = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    // Every connection is new: no session resumption, the full handshake is measured.
    cfg.resumption = rustls::client::Resumption::disabled();
    TlsConnector::from(Arc::new(cfg))
}

async fn connect_tunnel(proxy: SocketAddr, host: &str) -> Result<TcpStream, Error> {
    let mut s = TcpStream::connect(proxy).await?;
    s.set_nodelay(true)?;
    s.write_all(format!("CONNECT {host}:443 HTTP/1.1\r\nHost: {host}:443\r\n\r\n").as_bytes())
        .await?;
    let mut head = Vec::with_capacity(64);
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if s.read(&mut byte).await? == 0 {
            return Err("proxy closed during CONNECT".into());
        }
        head.push(byte[0]);
    }
    if !head.starts_with(b"HTTP/1.1 200") {
        return Err(format!("CONNECT refused: {}", String::from_utf8_lossy(&head)).into());
    }
    Ok(s)
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn summary(label: &str, mut us: Vec<u64>) -> String {
    us.sort_unstable();
    let mean = us.iter().sum::<u64>() as f64 / us.len().max(1) as f64;
    format!(
        "\"{label}\":{{\"n\":{},\"mean_us\":{mean:.0},\"p50_us\":{},\"p90_us\":{},\"p99_us\":{}}}",
        us.len(),
        percentile(&us, 0.5),
        percentile(&us, 0.9),
        percentile(&us, 0.99)
    )
}

async fn handshakes(a: &Args) -> Result<(), Error> {
    let connector = tls(a.ca.as_deref().expect("--ca"));
    let (mut connect_us, mut tls_us, mut total_us) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..a.count {
        let host = if a.unique {
            format!("h{i}-{}.bench.test", std::process::id())
        } else {
            a.host.clone()
        };
        let t0 = Instant::now();
        let tcp = connect_tunnel(a.proxy, &host).await?;
        let t1 = Instant::now();
        let mut tls = connector
            .connect(ServerName::try_from(host.clone())?, tcp)
            .await?;
        let t2 = Instant::now();
        connect_us.push((t1 - t0).as_micros() as u64);
        tls_us.push((t2 - t1).as_micros() as u64);
        total_us.push((t2 - t0).as_micros() as u64);
        let _ = tls.shutdown().await;
    }
    println!(
        "{{\"mode\":\"handshake\",\"unique_hosts\":{},{},{},{}}}",
        a.unique,
        summary("connect", connect_us),
        summary("tls", tls_us),
        summary("total", total_us)
    );
    Ok(())
}

fn body() -> Bytes {
    let text = "Summarize the following meeting notes for the team. ".repeat(20);
    Bytes::from(
        serde_json::json!({"model": "gpt-4.1-mini", "messages": [{"role": "user", "content": &text[..900]}]})
            .to_string(),
    )
}

async fn worker(a: Arc<Args>, deadline: Instant) -> Result<Vec<u64>, Error> {
    let mut lat = Vec::new();
    let body = body();
    macro_rules! run {
        ($io:expr) => {{
            let (mut sender, conn) =
                hyper::client::conn::http1::handshake(TokioIo::new($io)).await?;
            tokio::spawn(conn);
            while Instant::now() < deadline {
                let req = hyper::Request::post("/v1/chat/completions")
                    .header("host", &a.host)
                    .header("content-type", "application/json")
                    .header("x-mock-scenario", "big")
                    .header("x-mock-size", "1024")
                    .body(Full::new(body.clone()))?;
                let t = Instant::now();
                let resp = sender.send_request(req).await?;
                if resp.status() != 200 {
                    return Err(format!("status {}", resp.status()).into());
                }
                resp.into_body().collect().await?;
                lat.push(t.elapsed().as_micros() as u64);
            }
        }};
    }
    if a.mode == "tunnel" {
        let connector = tls(a.ca.as_deref().expect("--ca"));
        let tcp = connect_tunnel(a.proxy, &a.host).await?;
        let io = connector
            .connect(ServerName::try_from(a.host.clone())?, tcp)
            .await?;
        run!(io);
    } else {
        let io = TcpStream::connect(a.proxy).await?;
        io.set_nodelay(true)?;
        run!(io);
    }
    Ok(lat)
}

async fn load(a: Args) -> Result<(), Error> {
    let a = Arc::new(a);
    let started = Instant::now();
    let deadline = started + a.duration;
    let tasks: Vec<_> = (0..a.connections)
        .map(|_| tokio::spawn(worker(a.clone(), deadline)))
        .collect();
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await??);
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "{{\"mode\":\"{}\",\"connections\":{},\"seconds\":{secs:.1},\"requests\":{},\"rps\":{:.0},{}}}",
        a.mode,
        a.connections,
        all.len(),
        all.len() as f64 / secs,
        summary("latency", all)
    );
    Ok(())
}

fn main() -> Result<(), Error> {
    let a = args();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    rt.block_on(async move {
        match a.mode.as_str() {
            "handshake" => handshakes(&a).await,
            "tunnel" | "reverse" => load(a).await,
            other => Err(format!("unknown mode {other}").into()),
        }
    })
}
