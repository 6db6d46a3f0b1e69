//! `asg injector`: the webhook over HTTPS (`POST /inject`, `GET /healthz`,
//! `GET /readyz`), and optionally a plain listener for `/metrics`.
//!
//! HTTP/1.1 only (the API server falls back to it without ALPN `h2`);
//! bodies are bounded; each connection gets a handshake deadline. SIGTERM
//! stops accepting and lets in-flight reviews finish briefly, inside the
//! pod's termination grace.

use super::admission;
use super::settings::Settings;
use super::tls_reload::{Loaded, ReloadingCert};
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use prometheus::{
    Encoder, Histogram, HistogramOpts, IntCounterVec, IntGauge, Opts, Registry, TextEncoder,
};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;

/// An AdmissionReview carries the object (and, on UPDATE, the old one);
/// etcd caps objects at ~1.5 MiB.
const MAX_BODY: usize = 8 << 20;
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
const DRAIN: Duration = Duration::from_secs(3);

pub struct Options {
    pub listen: String,
    pub tls_cert: PathBuf,
    pub tls_key: PathBuf,
    pub settings: Settings,
    pub metrics_listen: Option<String>,
}

struct Metrics {
    registry: Registry,
    reviews: IntCounterVec,
    latency: Histogram,
    tls_reloads: IntCounterVec,
    cert_expiry: IntGauge,
}

impl Metrics {
    fn new() -> Metrics {
        let registry = Registry::new();
        let reviews = IntCounterVec::new(
            Opts::new(
                "asg_injector_reviews_total",
                "Admission reviews by result (injected, opted_out, already_injected, ignored, denied, invalid) and dry run",
            ),
            &["result", "dry_run"],
        )
        .expect("valid metric");
        let latency = Histogram::with_opts(
            HistogramOpts::new(
                "asg_injector_review_seconds",
                "Time to answer one admission review, body read to answer",
            )
            .buckets(vec![
                0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1,
            ]),
        )
        .expect("valid metric");
        let tls_reloads = IntCounterVec::new(
            Opts::new(
                "asg_injector_tls_reloads_total",
                "Serving certificate reloads after its files changed, by result (ok, failed)",
            ),
            &["result"],
        )
        .expect("valid metric");
        let cert_expiry = IntGauge::new(
            "asg_injector_certificate_expiry_seconds",
            "Unix time the serving certificate in use expires",
        )
        .expect("valid metric");
        for m in [
            Box::new(reviews.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(latency.clone()),
            Box::new(tls_reloads.clone()),
            Box::new(cert_expiry.clone()),
        ] {
            registry.register(m).expect("unique metric");
        }
        Metrics {
            registry,
            reviews,
            latency,
            tls_reloads,
            cert_expiry,
        }
    }

    fn text(&self) -> String {
        let mut out = Vec::new();
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        String::from_utf8(out).unwrap_or_default()
    }
}

struct State {
    settings: Settings,
    metrics: Metrics,
}

type Body = Full<Bytes>;

fn reply(status: StatusCode, content_type: &str, body: impl Into<Bytes>) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("content-type", content_type)
        .body(Full::new(body.into()))
        .expect("valid response")
}

fn text(status: StatusCode, msg: &str) -> Response<Body> {
    reply(status, "text/plain; charset=utf-8", format!("{msg}\n"))
}

async fn handle(state: Arc<State>, req: Request<Incoming>) -> Response<Body> {
    match (req.method(), req.uri().path()) {
        (&Method::GET, "/healthz" | "/readyz") => text(StatusCode::OK, "ok"),
        (&Method::POST, "/inject") => inject(state, req).await,
        (_, "/inject") => text(
            StatusCode::METHOD_NOT_ALLOWED,
            "POST an AdmissionReview to /inject",
        ),
        _ => text(
            StatusCode::NOT_FOUND,
            "not found: the injector serves POST /inject",
        ),
    }
}

async fn inject(state: Arc<State>, req: Request<Incoming>) -> Response<Body> {
    let json = req
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_none_or(|v| v.starts_with("application/json"));
    if !json {
        state
            .metrics
            .reviews
            .with_label_values(&["invalid", "false"])
            .inc();
        return text(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "the injector reads application/json AdmissionReviews",
        );
    }
    let body = match Limited::new(req.into_body(), MAX_BODY).collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => {
            state
                .metrics
                .reviews
                .with_label_values(&["invalid", "false"])
                .inc();
            let too_big = e
                .downcast_ref::<http_body_util::LengthLimitError>()
                .is_some();
            return if too_big {
                text(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    &format!("an AdmissionReview larger than {MAX_BODY} bytes is refused"),
                )
            } else {
                text(
                    StatusCode::BAD_REQUEST,
                    &format!("cannot read the body: {e}"),
                )
            };
        }
    };
    let started = Instant::now();
    let answer = admission::review(&body, &state.settings);
    state
        .metrics
        .latency
        .observe(started.elapsed().as_secs_f64());
    state
        .metrics
        .reviews
        .with_label_values(&[answer.result, if answer.dry_run { "true" } else { "false" }])
        .inc();
    match answer.result {
        "invalid" | "denied" => {
            tracing::warn!(
                result = answer.result,
                dry_run = answer.dry_run,
                "{}",
                answer.detail
            )
        }
        _ => tracing::info!(
            result = answer.result,
            dry_run = answer.dry_run,
            "{}",
            answer.detail
        ),
    }
    let status = StatusCode::from_u16(answer.http_status).unwrap_or(StatusCode::OK);
    reply(status, "application/json", answer.body)
}

async fn metrics_handle(state: Arc<State>, req: Request<Incoming>) -> Response<Body> {
    match (req.method(), req.uri().path()) {
        (&Method::GET, "/metrics") => reply(
            StatusCode::OK,
            "text/plain; version=0.0.4",
            state.metrics.text(),
        ),
        (&Method::GET, "/healthz" | "/readyz") => text(StatusCode::OK, "ok"),
        _ => text(StatusCode::NOT_FOUND, "not found: /metrics, /healthz"),
    }
}

fn bind(addr: &str, what: &str) -> Result<std::net::TcpListener, String> {
    let parsed: SocketAddr = addr
        .parse()
        .map_err(|_| format!("{what} address {addr:?} is not host:port"))?;
    let l = std::net::TcpListener::bind(parsed)
        .map_err(|e| format!("cannot listen on {addr} ({what}): {e}"))?;
    l.set_nonblocking(true)
        .map_err(|e| format!("cannot listen on {addr} ({what}): {e}"))?;
    Ok(l)
}

/// Run until SIGTERM or SIGINT; returns the exit code.
pub fn run(opts: Options) -> i32 {
    let fail = |e: String| {
        eprintln!("error: {e}");
        2
    };
    let (cert, loaded) = match ReloadingCert::load(&opts.tls_cert, &opts.tls_key) {
        Ok(c) => c,
        Err(e) => return fail(format!("{e} (--tls-cert / --tls-key)")),
    };
    let listener = match bind(&opts.listen, "webhook") {
        Ok(l) => l,
        Err(e) => return fail(e),
    };
    let metrics_listener = match opts.metrics_listen.as_deref().map(|a| bind(a, "metrics")) {
        Some(Err(e)) => return fail(e),
        Some(Ok(l)) => Some(l),
        None => None,
    };
    let state = Arc::new(State {
        settings: opts.settings,
        metrics: Metrics::new(),
    });
    state.metrics.cert_expiry.set(loaded.not_after);
    let watch_state = Arc::clone(&state);
    let _watch = match cert.watch(Box::new(move |r: &Result<Loaded, String>| match r {
        Ok(l) => {
            watch_state.metrics.tls_reloads.with_label_values(&["ok"]).inc();
            watch_state.metrics.cert_expiry.set(l.not_after);
            tracing::info!(subject = %l.subject, not_after = l.not_after, "serving certificate reloaded");
        }
        Err(e) => {
            watch_state.metrics.tls_reloads.with_label_values(&["failed"]).inc();
            tracing::warn!(error = %e, "serving certificate not reloaded; keeping the previous one");
        }
    })) {
        Ok(w) => w,
        Err(e) => return fail(e),
    };

    let mut tls = match rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    {
        Ok(b) => b.with_no_client_auth().with_cert_resolver(cert),
        Err(e) => return fail(format!("TLS setup: {e}")),
    };
    tls.alpn_protocols = vec![b"http/1.1".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));

    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("asg-injector")
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => return fail(format!("cannot start the runtime: {e}")),
    };
    tracing::info!(listen = %opts.listen, metrics = opts.metrics_listen.as_deref().unwrap_or("off"),
        subject = %loaded.subject, mode = state.settings.mode.as_str(), profile = %state.settings.profile,
        native_sidecars = state.settings.native_sidecars, "asg injector running");
    runtime.block_on(async move {
        let listener = match TcpListener::from_std(listener) {
            Ok(l) => l,
            Err(e) => return fail(format!("webhook listener: {e}")),
        };
        if let Some(ml) = metrics_listener {
            match TcpListener::from_std(ml) {
                Ok(ml) => {
                    tokio::spawn(serve_metrics(ml, Arc::clone(&state)));
                }
                Err(e) => return fail(format!("metrics listener: {e}")),
            }
        }
        let stop = shutdown_signal();
        tokio::pin!(stop);
        loop {
            tokio::select! {
                _ = &mut stop => break,
                accepted = listener.accept() => {
                    let Ok((tcp, _)) = accepted else { continue };
                    let _ = tcp.set_nodelay(true);
                    let acceptor = acceptor.clone();
                    let state = Arc::clone(&state);
                    tokio::spawn(async move {
                        let Ok(Ok(tls)) = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await else {
                            return;
                        };
                        let service = hyper::service::service_fn(move |req| {
                            let state = Arc::clone(&state);
                            async move { Ok::<_, std::convert::Infallible>(handle(state, req).await) }
                        });
                        let _ = hyper::server::conn::http1::Builder::new()
                            .timer(TokioTimer::new())
                            .header_read_timeout(Duration::from_secs(30))
                            .serve_connection(TokioIo::new(tls), service)
                            .await;
                    });
                }
            }
        }
        tracing::info!("stopping: no new connections; finishing reviews in flight");
        tokio::time::sleep(DRAIN).await;
        0
    })
}

async fn serve_metrics(listener: TcpListener, state: Arc<State>) {
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            continue;
        };
        let state = Arc::clone(&state);
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let state = Arc::clone(&state);
                async move { Ok::<_, std::convert::Infallible>(metrics_handle(state, req).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(Duration::from_secs(30))
                .serve_connection(TokioIo::new(tcp), service)
                .await;
        });
    }
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        std::future::pending::<()>().await;
        return;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}
