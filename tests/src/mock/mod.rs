//! The mock upstream server (OpenAI Chat Completions and Responses, Anthropic Messages, MCP).
//!
//! Behaviour is chosen per request with `x-mock-*` headers, see [`scenario::Knobs`] and the crate README
//! section in `tests/README.md`. Fixtures are loaded once at startup; no file is read per request.

pub mod anthropic;
pub mod body;
pub mod gemini;
pub mod json;
pub mod mcp;
pub mod openai_chat;
pub mod openai_responses;
pub mod record;
pub mod scenario;
pub mod script;
pub mod sse;
mod tls;
pub mod ws;

use crate::oj;
use body::{MockBody, Plan};
use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use record::RequestLog;
use scenario::{big_deltas, fit_big, Knobs, Reply, Scenario};
use serde_json::Value;
use std::collections::HashMap;
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// Fixtures shipped with the repository (resolved at compile time).
pub const DEFAULT_FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/wire");
const MAX_REQUEST_BODY: usize = 64 << 20;

#[derive(Clone, Debug)]
pub struct Config {
    pub listen: SocketAddr,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub fixtures: PathBuf,
    pub record_limit: usize,
    pub verbose: bool,
    /// Exit when stdin reaches end of file, i.e. when the launching process dies (even if it is
    /// SIGKILLed and never runs its cleanup).
    pub exit_on_stdin_eof: bool,
    /// Answer `GET /v1/responses` upgrades with 404 (a server that only
    /// speaks SSE).
    pub no_websocket: bool,
}

pub const USAGE: &str =
    "usage: mock-upstream [--listen 127.0.0.1:0] [--tls-cert PEM --tls-key PEM] \
[--fixtures DIR] [--record-limit N] [--exit-on-stdin-eof] [--no-websocket] [--verbose]";

impl Config {
    pub fn from_args(mut args: impl Iterator<Item = String>) -> Result<Config, String> {
        let mut cfg = Config {
            listen: "127.0.0.1:0".parse().expect("literal address"),
            tls_cert: None,
            tls_key: None,
            fixtures: PathBuf::from(DEFAULT_FIXTURES),
            record_limit: 1000,
            verbose: std::env::var_os("MOCK_UPSTREAM_VERBOSE").is_some(),
            exit_on_stdin_eof: false,
            no_websocket: false,
        };
        while let Some(arg) = args.next() {
            let mut value = |name: &str| {
                args.next()
                    .ok_or_else(|| format!("{name} needs a value\n{USAGE}"))
            };
            match arg.as_str() {
                "--listen" => {
                    let v = value("--listen")?;
                    cfg.listen = v.parse().map_err(|e| format!("bad --listen {v:?}: {e}"))?;
                }
                "--tls-cert" => cfg.tls_cert = Some(value("--tls-cert")?.into()),
                "--tls-key" => cfg.tls_key = Some(value("--tls-key")?.into()),
                "--fixtures" => cfg.fixtures = value("--fixtures")?.into(),
                "--record-limit" => {
                    let v = value("--record-limit")?;
                    cfg.record_limit = v
                        .parse()
                        .map_err(|e| format!("bad --record-limit {v:?}: {e}"))?;
                }
                "--verbose" | "-v" => cfg.verbose = true,
                "--exit-on-stdin-eof" => cfg.exit_on_stdin_eof = true,
                "--no-websocket" => cfg.no_websocket = true,
                "--help" | "-h" => return Err(USAGE.to_string()),
                other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
            }
        }
        if !cfg.listen.ip().is_loopback() {
            return Err(format!(
                "refusing to listen on non-loopback address {}",
                cfg.listen
            ));
        }
        if cfg.tls_cert.is_some() != cfg.tls_key.is_some() {
            return Err("--tls-cert and --tls-key go together".into());
        }
        Ok(cfg)
    }
}

pub(crate) struct State {
    fixtures: HashMap<String, Bytes>,
    pub(crate) log: RequestLog,
    pub(crate) next_id: AtomicU64,
    verbose: bool,
    no_websocket: bool,
}

/// Bind, print `LISTENING <addr>` on stdout, and serve forever.
pub async fn run(cfg: Config) -> Result<(), String> {
    let fixtures = load_fixtures(&cfg.fixtures)?;
    let tls = match (&cfg.tls_cert, &cfg.tls_key) {
        (Some(c), Some(k)) => Some(tls::acceptor(c, k)?),
        _ => None,
    };
    let listener = tokio::net::TcpListener::bind(cfg.listen)
        .await
        .map_err(|e| format!("bind {}: {e}", cfg.listen))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    eprintln!(
        "mock-upstream: {} fixtures from {}, {} on {addr}",
        fixtures.len(),
        cfg.fixtures.display(),
        if tls.is_some() { "https" } else { "http" }
    );
    let state = Arc::new(State {
        fixtures,
        log: RequestLog::new(cfg.record_limit),
        next_id: AtomicU64::new(1),
        verbose: cfg.verbose,
        no_websocket: cfg.no_websocket,
    });
    if cfg.exit_on_stdin_eof {
        std::thread::spawn(|| {
            let _ = std::io::copy(&mut std::io::stdin().lock(), &mut std::io::sink());
            std::process::exit(0);
        });
    }
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "LISTENING {addr}")
            .and_then(|_| out.flush())
            .map_err(|e| e.to_string())?;
    }
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                eprintln!("mock-upstream: accept: {e}");
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let state = state.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            let result = match tls {
                Some(acceptor) => match acceptor.accept(stream).await {
                    Ok(s) => serve(TokioIo::new(s), state.clone()).await,
                    Err(e) => Err(format!("tls handshake: {e}")),
                },
                None => serve(TokioIo::new(stream), state.clone()).await,
            };
            if let (Err(e), true) = (result, state.verbose) {
                eprintln!("mock-upstream: connection from {peer}: {e}");
            }
        });
    }
}

async fn serve<I>(io: I, state: Arc<State>) -> Result<(), String>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |req: Request<Incoming>| {
        let state = state.clone();
        async move {
            if ws::is_upgrade(&req) && req.uri().path() == "/v1/responses" && state.no_websocket {
                let plan = mock_error(
                    StatusCode::NOT_FOUND,
                    "this server does not speak WebSocket",
                );
                return Ok(plan.into_response(&Default::default()));
            }
            if ws::is_upgrade(&req) && req.uri().path() == "/v1/responses" {
                let id = state.next_id.fetch_add(1, Ordering::Relaxed);
                state
                    .log
                    .record(id, "GET", "/v1/responses", req.headers(), b"");
                return Ok::<_, std::convert::Infallible>(ws::accept(state.clone(), req, id));
            }
            Ok::<_, std::convert::Infallible>(handle(&state, req).await)
        }
    });
    hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .serve_connection(io, service)
        .with_upgrades()
        .await
        .map_err(|e| e.to_string())
}

fn load_fixtures(dir: &Path) -> Result<HashMap<String, Bytes>, String> {
    fn walk(root: &Path, dir: &Path, out: &mut HashMap<String, Bytes>) -> std::io::Result<()> {
        for entry in std::fs::read_dir(dir)? {
            let path = entry?.path();
            if path.is_dir() {
                walk(root, &path, out)?;
            } else {
                let rel = path.strip_prefix(root).expect("under root");
                let key = rel
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy())
                    .collect::<Vec<_>>();
                out.insert(key.join("/"), Bytes::from(std::fs::read(&path)?));
            }
        }
        Ok(())
    }
    let mut out = HashMap::new();
    walk(dir, dir, &mut out)
        .map_err(|e| format!("loading fixtures from {}: {e}", dir.display()))?;
    Ok(out)
}

pub(crate) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Render a reply with a dialect's renderer; the `big` scenario is sized to `x-mock-size` body bytes.
pub(crate) fn reply_plan(
    k: &Knobs,
    user_text: impl FnOnce() -> String,
    render: impl Fn(&Reply) -> Plan,
) -> Plan {
    if k.scenario == Scenario::Big {
        let len = fit_big(k.size, |n| render(&Reply::Text(big_deltas(n))).body_len());
        return render(&Reply::Text(big_deltas(len)));
    }
    render(&Reply::build(k, user_text))
}

pub(crate) fn mock_error(status: StatusCode, message: &str) -> Plan {
    let body =
        oj!({"error": {"message": message, "type": "mock_error", "param": null, "code": null}});
    Plan::json(status, body.to_json())
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Route {
    Chat,
    Responses,
    Messages,
    /// `…/models/{model}:{method}`.
    Gemini,
    Mcp,
}

async fn handle(state: &State, req: Request<Incoming>) -> Response<MockBody> {
    let (parts, body) = req.into_parts();
    let path = parts.uri.path().to_string();
    let target = parts
        .uri
        .path_and_query()
        .map_or(path.clone(), |pq| pq.to_string());
    let body = match Limited::new(body, MAX_REQUEST_BODY).collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => {
            let plan = mock_error(
                StatusCode::BAD_REQUEST,
                &format!("reading request body: {e}"),
            );
            return plan.into_response(&Default::default());
        }
    };
    let method = parts.method.clone();
    match (&method, path.as_str()) {
        (&Method::GET, "/__mock/requests") => {
            return Plan::json(StatusCode::OK, state.log.to_json())
                .into_response(&Default::default())
        }
        (&Method::POST, "/__mock/reset") => {
            state.log.clear();
            return Plan::json(StatusCode::OK, r#"{"ok":true}"#.into())
                .into_response(&Default::default());
        }
        _ => {}
    }
    let id = state.next_id.fetch_add(1, Ordering::Relaxed);
    state
        .log
        .record(id, method.as_str(), &target, &parts.headers, &body);
    let knobs = Knobs::from_headers(&parts.headers);
    let (plan, transport) = match &knobs {
        Ok(k) => (route(state, &method, &target, k, &body, id), k.transport),
        Err(e) => (mock_error(StatusCode::BAD_REQUEST, e), Default::default()),
    };
    if state.verbose {
        eprintln!("mock-upstream: #{id} {method} {target} -> {}", plan.status);
    }
    if !plan.streaming && !transport.delay.is_zero() {
        tokio::time::sleep(transport.delay).await;
    }
    plan.header("x-mock-request-id", &id.to_string())
        .header("x-request-id", &format!("req_mock{id:06}"))
        .into_response(&transport)
}

fn route(state: &State, method: &Method, target: &str, k: &Knobs, body: &Bytes, id: u64) -> Plan {
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    if *method == Method::GET && path == "/health" {
        return Plan::json(StatusCode::OK, r#"{"status":"ok"}"#.into());
    }
    if let Some(name) = &k.fixture {
        return fixture(state, name, k.status);
    }
    let route = match path {
        "/v1/chat/completions" => Route::Chat,
        "/v1/responses" => Route::Responses,
        "/v1/messages" => Route::Messages,
        "/mcp" => Route::Mcp,
        p if p.contains("/models/") && p.contains(':') => Route::Gemini,
        _ => {
            let msg = format!("mock-upstream: no route for {method} {path}");
            let body =
                oj!({"error": {"message": msg, "type": "not_found", "param": null, "code": null}});
            return Plan::json(StatusCode::NOT_FOUND, body.to_json());
        }
    };
    match (route, method) {
        (Route::Gemini, &Method::GET) => {
            return mock_error(StatusCode::METHOD_NOT_ALLOWED, "GET not allowed")
        }
        (Route::Mcp, &Method::GET) => {
            return Plan::empty(StatusCode::METHOD_NOT_ALLOWED).header("allow", "POST, DELETE")
        }
        (Route::Mcp, &Method::DELETE) => return Plan::empty(StatusCode::OK),
        (_, &Method::POST) => {}
        _ => {
            return mock_error(
                StatusCode::METHOD_NOT_ALLOWED,
                &format!("{method} not allowed on {path}"),
            )
        }
    }
    let status = k.status.and_then(|s| StatusCode::from_u16(s).ok());
    if let Some(s) = status.filter(|s| s.as_u16() >= 400) {
        return dialect_error(
            route,
            s,
            &format!("mock error: status {}", s.as_u16()),
            body,
        );
    }
    let plan = match route {
        Route::Mcp => mcp::respond(body, k, id),
        _ => match serde_json::from_slice::<Value>(body) {
            Err(e) => dialect_error(
                route,
                StatusCode::BAD_REQUEST,
                &format!("invalid JSON body: {e}"),
                body,
            ),
            Ok(req) => match route {
                Route::Gemini => {
                    let (model, gm) = path
                        .rsplit_once("/models/")
                        .and_then(|(_, m)| m.split_once(':'))
                        .unwrap_or(("gemini", "generateContent"));
                    let k = &script::apply(k.clone(), script::Dialect::Gemini, &req);
                    gemini::respond(&req, gm, query, k, id, model)
                }
                Route::Chat => {
                    let k = &script::apply(k.clone(), script::Dialect::Chat, &req);
                    openai_chat::respond(&req, k, id)
                }
                Route::Responses => {
                    let k = &script::apply(k.clone(), script::Dialect::Responses, &req);
                    openai_responses::respond(&req, k, id)
                }
                _ => anthropic::respond(
                    &req,
                    &script::apply(k.clone(), script::Dialect::Anthropic, &req),
                    id,
                )
                .unwrap_or_else(|e| {
                    Plan::json(StatusCode::BAD_REQUEST, anthropic::error_body(400, &e))
                }),
            },
        },
    };
    match status {
        Some(s) if plan.status.is_success() => Plan { status: s, ..plan },
        _ => plan,
    }
}

/// A dialect-correct error answer (`x-mock-status` >= 400, invalid request JSON).
fn dialect_error(route: Route, status: StatusCode, message: &str, body: &[u8]) -> Plan {
    match route {
        Route::Chat | Route::Responses => {
            Plan::json(status, openai_chat::error_body(status.as_u16(), message))
        }
        Route::Messages => Plan::json(status, anthropic::error_body(status.as_u16(), message)),
        Route::Gemini => Plan::json(status, gemini::error_body(status.as_u16(), message)),
        Route::Mcp => {
            let id = serde_json::from_slice::<Value>(body)
                .map(|v| v["id"].clone())
                .unwrap_or(Value::Null);
            let err =
                oj!({"jsonrpc": "2.0", "id": id, "error": {"code": (-32603), "message": message}});
            Plan::json(status, err.to_json())
        }
    }
}

fn fixture(state: &State, name: &str, status: Option<u16>) -> Plan {
    let Some(bytes) = state.fixtures.get(name.trim_start_matches('/')) else {
        let mut names: Vec<_> = state.fixtures.keys().map(String::as_str).collect();
        names.sort_unstable();
        let msg = format!(
            "unknown x-mock-fixture {name:?}; known: {}",
            names.join(", ")
        );
        return mock_error(StatusCode::NOT_FOUND, &msg);
    };
    let status = status
        .and_then(|s| StatusCode::from_u16(s).ok())
        .unwrap_or(StatusCode::OK);
    let mut plan = if name.ends_with(".sse") {
        Plan::sse(sse::split_events(bytes))
    } else {
        Plan::json(status, String::new())
    };
    plan.status = status;
    if name.ends_with(".sse") {
        plan.content_type = Some("text/event-stream");
    } else {
        plan.pieces = vec![bytes.clone()];
        plan.content_type = Some(if name.ends_with(".json") {
            body::JSON
        } else {
            "text/plain; charset=utf-8"
        });
    }
    plan
}
