//! `fixed-rate`: an open-loop HTTP/1.1 load generator for latency at a fixed request rate (wrk cannot
//! hold a rate, and Debian ships neither wrk2 nor vegeta).
//!
//! Request `i` is due at `start + i / rate`, whether or not earlier answers have come back. Due
//! requests wait in one queue for the first free keep-alive connection (at most `--connections`), and
//! each latency is measured from the request's *due* time to the end of its answer's body. A slow
//! proxy therefore shows as queueing delay in the percentiles instead of silently lowering the rate
//! (no coordinated omission). The run is bounded: `rate × duration` requests, loopback targets only.
//!
//! ```text
//! fixed-rate --url http://127.0.0.1:8080/v1/chat/completions --rate 1000 --duration 5 \
//!     --body-file body.json --header content-type:application/json
//! ```
//!
//! Every `@SEQ@` in the body is replaced by the request's number, so that each request carries a text
//! of its own (a gateway that remembers texts it judged would otherwise judge only the first).
//!
//! Prints one JSON object: requests sent and answered, non-2xx answers, errors, the achieved rate and
//! the latency percentiles in milliseconds.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, Mutex};

struct Args {
    url: hyper::Uri,
    rate: u32,
    duration: Duration,
    body: Bytes,
    headers: Vec<(String, String)>,
    connections: usize,
}

fn parse_args(mut it: impl Iterator<Item = String>) -> Result<Args, String> {
    let (mut url, mut rate, mut secs, mut body, mut headers, mut conns) =
        (None, 1000u32, 5.0f64, Bytes::new(), Vec::new(), 64usize);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--url" => url = Some(value()?),
            "--rate" => rate = value()?.parse().map_err(|e| format!("--rate: {e}"))?,
            "--duration" => secs = value()?.parse().map_err(|e| format!("--duration: {e}"))?,
            "--connections" => {
                conns = value()?
                    .parse()
                    .map_err(|e| format!("--connections: {e}"))?
            }
            "--body-file" => {
                let path = value()?;
                body = std::fs::read(&path)
                    .map_err(|e| format!("--body-file {path}: {e}"))?
                    .into()
            }
            "--header" => {
                let h = value()?;
                let (k, v) = h
                    .split_once(':')
                    .ok_or(format!("--header {h:?}: expected name:value"))?;
                headers.push((k.trim().to_string(), v.trim().to_string()));
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    let url: hyper::Uri = url
        .ok_or("--url is required")?
        .parse()
        .map_err(|e| format!("--url: {e}"))?;
    if url.scheme_str() != Some("http") || url.authority().is_none() {
        return Err("--url must be http://host:port/path".into());
    }
    // Bounded: at most a minute of load, at most 20,000 requests a second.
    if !(1..=20_000).contains(&rate) || !(0.1..=60.0).contains(&secs) || conns == 0 {
        return Err("--rate 1..=20000, --duration 0.1..=60 s, --connections >= 1".into());
    }
    Ok(Args {
        url,
        rate,
        duration: Duration::from_secs_f64(secs),
        body,
        headers,
        connections: conns,
    })
}

/// When request `i` is due, from the start of the run.
fn due(i: u64, rate: u32) -> Duration {
    Duration::from_nanos(i * 1_000_000_000 / rate as u64)
}

/// The `q` quantile (0..=1) of sorted samples, nearest rank.
fn quantile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

#[derive(Default)]
struct Tally {
    latencies: Vec<Duration>,
    non2xx: u64,
    errors: u64,
    last_error: Option<String>,
}

async fn connect(url: &hyper::Uri) -> Result<http1::SendRequest<Full<Bytes>>, String> {
    let addr = url.authority().expect("checked").as_str().to_string();
    let tcp = TcpStream::connect(&addr)
        .await
        .map_err(|e| format!("connect {addr}: {e}"))?;
    let _ = tcp.set_nodelay(true);
    let (send, conn) = http1::handshake(TokioIo::new(tcp))
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    tokio::spawn(conn);
    Ok(send)
}

/// The body with every `@SEQ@` replaced by `i`.
fn numbered(body: &Bytes, i: u64) -> Bytes {
    const MARK: &[u8] = b"@SEQ@";
    if !body.windows(MARK.len()).any(|w| w == MARK) {
        return body.clone();
    }
    let seq = i.to_string();
    let mut out = Vec::with_capacity(body.len() + 16);
    let mut rest = &body[..];
    while let Some(at) = rest.windows(MARK.len()).position(|w| w == MARK) {
        out.extend_from_slice(&rest[..at]);
        out.extend_from_slice(seq.as_bytes());
        rest = &rest[at + MARK.len()..];
    }
    out.extend_from_slice(rest);
    Bytes::from(out)
}

/// One keep-alive connection: takes due requests off the queue until it closes.
async fn worker(
    args: Arc<Args>,
    start: Instant,
    queue: Arc<Mutex<mpsc::Receiver<u64>>>,
    tally: Arc<std::sync::Mutex<Tally>>,
) {
    let mut send = None;
    loop {
        let Some(i) = queue.lock().await.recv().await else {
            return;
        };
        let scheduled = start + due(i, args.rate);
        let result = async {
            if send.is_none() {
                send = Some(connect(&args.url).await?);
            }
            let s = send.as_mut().expect("connected");
            s.ready().await.map_err(|e| format!("connection: {e}"))?;
            // Origin form: an absolute URI would read as a forward-proxy request.
            let path = args.url.path_and_query().map_or("/", |p| p.as_str());
            let mut req = hyper::Request::post(path)
                .header("host", args.url.authority().expect("checked").as_str());
            for (k, v) in &args.headers {
                req = req.header(k, v);
            }
            let req = req
                .body(Full::new(numbered(&args.body, i)))
                .map_err(|e| format!("request: {e}"))?;
            let resp = s
                .send_request(req)
                .await
                .map_err(|e| format!("send: {e}"))?;
            let status = resp.status();
            resp.into_body()
                .collect()
                .await
                .map_err(|e| format!("body: {e}"))?;
            Ok::<_, String>(status)
        }
        .await;
        let took = scheduled.elapsed();
        let mut t = tally.lock().unwrap_or_else(|p| p.into_inner());
        match result {
            Ok(status) => {
                t.latencies.push(took);
                if !status.is_success() {
                    t.non2xx += 1;
                }
            }
            Err(e) => {
                t.errors += 1;
                t.last_error = Some(e);
                send = None;
            }
        }
    }
}

async fn run(args: Args) -> serde_json::Value {
    let args = Arc::new(args);
    let total = (args.rate as f64 * args.duration.as_secs_f64()).round() as u64;
    let (tx, rx) = mpsc::channel::<u64>(total.max(1) as usize);
    let queue = Arc::new(Mutex::new(rx));
    let tally = Arc::new(std::sync::Mutex::new(Tally::default()));
    let start = Instant::now() + Duration::from_millis(50);
    let workers: Vec<_> = (0..args.connections)
        .map(|_| tokio::spawn(worker(args.clone(), start, queue.clone(), tally.clone())))
        .collect();
    // The schedule runs on a thread of its own with the OS's sleep: tokio's
    // timer has millisecond ticks, which would release requests up to a
    // millisecond late and count that against every target.
    let rate = args.rate;
    std::thread::spawn(move || {
        for i in 0..total {
            let at = start + due(i, rate);
            let now = Instant::now();
            if at > now {
                std::thread::sleep(at - now);
            }
            if tx.blocking_send(i).is_err() {
                break;
            }
        }
    });
    for w in workers {
        let _ = w.await;
    }
    let elapsed = start.elapsed().as_secs_f64();
    let mut t = std::mem::take(&mut *tally.lock().unwrap_or_else(|p| p.into_inner()));
    t.latencies.sort_unstable();
    let ms = |q: f64| quantile(&t.latencies, q).as_secs_f64() * 1e3;
    serde_json::json!({
        "rate": args.rate,
        "sent": total,
        "answered": t.latencies.len(),
        "non2xx": t.non2xx,
        "errors": t.errors,
        "last_error": t.last_error,
        "achieved_rps": t.latencies.len() as f64 / elapsed,
        "p50_ms": ms(0.50),
        "p90_ms": ms(0.90),
        "p99_ms": ms(0.99),
        "p999_ms": ms(0.999),
        "max_ms": ms(1.0),
    })
}

fn main() {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("fixed-rate: {e}");
            std::process::exit(2);
        }
    };
    // One thread: the generator shares the machine with what it measures.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    println!("{}", runtime.block_on(run(args)));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_due_evenly_from_the_start() {
        assert_eq!(due(0, 1000), Duration::ZERO);
        assert_eq!(due(1, 1000), Duration::from_millis(1));
        assert_eq!(due(2500, 1000), Duration::from_millis(2500));
        assert_eq!(due(1, 3), Duration::from_nanos(333_333_333));
    }

    #[test]
    fn quantiles_are_nearest_rank() {
        let ms = |v: &[u64]| {
            v.iter()
                .map(|&x| Duration::from_millis(x))
                .collect::<Vec<_>>()
        };
        let s = ms(&(1..=100).collect::<Vec<_>>());
        assert_eq!(quantile(&s, 0.5), Duration::from_millis(50));
        assert_eq!(quantile(&s, 0.99), Duration::from_millis(99));
        assert_eq!(quantile(&s, 1.0), Duration::from_millis(100));
        assert_eq!(quantile(&ms(&[7]), 0.99), Duration::from_millis(7));
        assert_eq!(quantile(&[], 0.5), Duration::ZERO);
    }

    #[test]
    fn each_request_numbers_its_body() {
        let body = Bytes::from_static(b"{\"text\": \"note @SEQ@ of @SEQ@\"}");
        assert_eq!(&numbered(&body, 42)[..], b"{\"text\": \"note 42 of 42\"}");
        let plain = Bytes::from_static(b"{}");
        assert_eq!(numbered(&plain, 7), plain);
    }

    #[test]
    fn arguments_are_bounded_and_checked() {
        let parse = |s: &str| parse_args(s.split_whitespace().map(String::from));
        let a = parse("--url http://127.0.0.1:9/x --rate 500 --duration 2 --header a:b").unwrap();
        assert_eq!((a.rate, a.duration), (500, Duration::from_secs(2)));
        assert_eq!(a.headers, [("a".to_string(), "b".to_string())]);
        assert!(parse("--rate 10").is_err(), "no url");
        assert!(parse("--url https://127.0.0.1:9/ --rate 10").is_err());
        assert!(parse("--url http://127.0.0.1:9/ --rate 0").is_err());
        assert!(parse("--url http://127.0.0.1:9/ --duration 3600").is_err());
        assert!(parse("--url http://127.0.0.1:9/ --header nocolon").is_err());
    }
}
