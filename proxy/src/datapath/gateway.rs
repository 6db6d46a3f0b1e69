//! The pingora side of the data path: hooks that route, buffer, hand bodies
//! to [`enforce`](super::enforce) and write what it decided.
//!
//! Request bodies are inspected *before* anything reaches the upstream when
//! they fit pingora's 64 KiB replay buffer (the common case: denied tool
//! calls never touch a tool server). Larger or chunked bodies are collected
//! in `request_body_filter`; the upstream has then seen the request header,
//! but never a byte of a denied body. Non-streaming responses are buffered
//! and inspected whole; streams are handed to the stream rewriter.

use super::body::{decode, is_event_stream, is_json_content_type, DecodeError, Encoding};
use super::dialect::{Dialect, ErrorKind};
use super::enforce::{inspect_request, inspect_response, Inspection, RequestAction, StageReport};
use super::route::Route;
use crate::app::App;
use crate::decision::{Decision, Policy};
use crate::state::{AuditEvent, AuditFinding};
use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use pingora::http::ResponseHeader;
use pingora::prelude::*;
use pingora::proxy::{FailToProxy, ProxyHttp, Session};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// pingora's request replay buffer: bodies up to this size are read and
/// judged before the upstream is contacted.
const PREFETCH_LIMIT: usize = 64 * 1024;
/// Bodies above this are inspected on the blocking pool, not a worker.
const OFFLOAD_ABOVE: usize = 256 * 1024;

pub struct Gateway {
    app: Arc<App>,
}

impl Gateway {
    pub fn new(app: Arc<App>) -> Self {
        Gateway { app }
    }
}

#[derive(Default)]
enum RequestBody {
    /// Not inspected, or nothing to inspect.
    #[default]
    Untouched,
    /// Read and judged in `request_filter`; `forward` replaces the replayed
    /// original when the body was decoded or masked.
    Prefetched { forward: Option<Bytes> },
    /// Being collected in `request_body_filter`.
    Collecting { buf: BytesMut },
}

#[derive(Default)]
enum ResponseBody {
    #[default]
    Pass,
    Buffer {
        buf: BytesMut,
        overflow: bool,
    },
}

/// A response the gateway writes itself (from `fail_to_proxy`).
struct Denial {
    status: u16,
    body: serde_json::Value,
    reason: &'static str,
}

pub struct Ctx {
    id: String,
    started: Instant,
    route: Option<Arc<Route>>,
    dialect: Dialect,
    policy: Option<Arc<Policy>>,
    path: String,
    session_id: String,
    agent_id: String,
    encoding: Encoding,
    req: RequestBody,
    resp: ResponseBody,
    upstream_status: Option<u16>,
    upstream_sent: Option<Instant>,
    upstream_latency: Option<Duration>,
    denial: Option<Denial>,
    /// Status the gateway answered with itself, if it did.
    answered: Option<u16>,
    reports: Vec<StageReport>,
}

impl Ctx {
    fn decision(&self) -> Decision {
        self.reports
            .iter()
            .map(|r| r.decision)
            .max()
            .unwrap_or(Decision::Allow)
    }

    fn inspection<'a>(&'a self, app: &'a App, policy: &'a Policy, tool: &'a str) -> Inspection<'a> {
        Inspection {
            policy,
            masker: &app.masker,
            dialect: self.dialect,
            request_id: &self.id,
            tool_name: tool,
        }
    }
}

fn header_str<'a>(session: &'a Session, name: &str) -> Option<&'a str> {
    session
        .req_header()
        .headers
        .get(name)
        .and_then(|v| v.to_str().ok())
}

impl Gateway {
    /// Write a JSON answer ourselves (before any upstream response).
    async fn answer(
        &self,
        session: &mut Session,
        ctx: &mut Ctx,
        status: u16,
        body: &serde_json::Value,
        reason: &'static str,
    ) -> Result<()> {
        let bytes = Bytes::from(body.to_string());
        let mut header = ResponseHeader::build(status, Some(4))?;
        header.insert_header("content-type", "application/json")?;
        header.insert_header("content-length", bytes.len().to_string())?;
        header.insert_header("x-asg-request-id", ctx.id.as_str())?;
        header.insert_header("x-asg-decision", ctx.decision().as_str())?;
        session
            .write_response_header(Box::new(header), false)
            .await?;
        session.write_response_body(Some(bytes), true).await?;
        ctx.answered = Some(status);
        self.app
            .metrics
            .gateway_errors
            .with_label_values(&[reason])
            .inc();
        Ok(())
    }

    /// Refuse before inspection (no route, wrong media type, too large…):
    /// counted and audited as a block with the reason.
    async fn refuse(
        &self,
        session: &mut Session,
        ctx: &mut Ctx,
        kind: ErrorKind,
        message: &str,
    ) -> Result<bool> {
        ctx.reports.push(StageReport::refused(message));
        let body = ctx.dialect.error_body(kind, message, &ctx.id);
        self.answer(session, ctx, kind.status(), &body, kind.code())
            .await?;
        Ok(true)
    }

    /// Inspect a complete request body (decoded first).
    async fn judge_request(
        &self,
        ctx: &mut Ctx,
        raw: Bytes,
    ) -> std::result::Result<Option<Bytes>, Denial> {
        let policy = ctx.policy.clone().expect("policy pinned in request_filter");
        let limit = policy.file.proxy.max_body_bytes;
        let decoded = match decode(ctx.encoding, &raw, limit) {
            Ok(d) => d,
            Err(DecodeError::TooLarge) => {
                let kind = ErrorKind::TooLarge;
                let msg = format!(
                    "request body exceeds the gateway limit of {limit} bytes after decoding"
                );
                return Err(Denial {
                    status: kind.status(),
                    body: ctx.dialect.error_body(kind, &msg, &ctx.id),
                    reason: kind.code(),
                });
            }
            Err(DecodeError::Corrupt(e)) => {
                let kind = ErrorKind::InvalidRequest;
                let msg = format!("request body could not be decoded ({e})");
                return Err(Denial {
                    status: kind.status(),
                    body: ctx.dialect.error_body(kind, &msg, &ctx.id),
                    reason: kind.code(),
                });
            }
        };
        let tool = ctx
            .route
            .as_ref()
            .map(|r| r.tool_name_for(&ctx.path))
            .unwrap_or_default();
        let started = Instant::now();
        let (action, report) = if decoded.len() > OFFLOAD_ABOVE {
            let app = self.app.clone();
            let (dialect, id) = (ctx.dialect, ctx.id.clone());
            let p = policy.clone();
            let input = decoded.clone();
            tokio::task::spawn_blocking(move || {
                let ins = Inspection {
                    policy: &p,
                    masker: &app.masker,
                    dialect,
                    request_id: &id,
                    tool_name: &tool,
                };
                inspect_request(&ins, &input)
            })
            .await
            .map_err(|_| Denial {
                status: 500,
                body: ctx
                    .dialect
                    .error_body(ErrorKind::Internal, "inspection failed", &ctx.id),
                reason: "inspection_panic",
            })?
        } else {
            inspect_request(&ctx.inspection(&self.app, &policy, &tool), &decoded)
        };
        self.app
            .metrics
            .inspect_latency
            .with_label_values(&["request"])
            .observe(started.elapsed().as_secs_f64());
        ctx.reports.push(report);
        match action {
            RequestAction::Deny { status, kind, body } => Err(Denial {
                status,
                body,
                reason: kind.code(),
            }),
            RequestAction::Forward(Some(rewritten)) => Ok(Some(Bytes::from(rewritten))),
            RequestAction::Forward(None) if ctx.encoding != Encoding::Identity => {
                Ok(Some(Bytes::from(decoded)))
            }
            RequestAction::Forward(None) => Ok(None),
        }
    }

    fn judge_response(&self, ctx: &mut Ctx, raw: &[u8]) -> Option<Vec<u8>> {
        let policy = ctx.policy.clone()?;
        let status = ctx.upstream_status.unwrap_or(200);
        let started = Instant::now();
        let run = || inspect_response(&ctx.inspection(&self.app, &policy, ""), raw, status);
        // Response filters are synchronous; a large body is inspected
        // without stalling the other tasks of this worker.
        let (out, report) = if raw.len() > OFFLOAD_ABOVE {
            tokio::task::block_in_place(run)
        } else {
            run()
        };
        self.app
            .metrics
            .inspect_latency
            .with_label_values(&["response"])
            .observe(started.elapsed().as_secs_f64());
        ctx.reports.push(report);
        out
    }
}

#[async_trait]
impl ProxyHttp for Gateway {
    type CTX = Ctx;

    fn new_ctx(&self) -> Ctx {
        Ctx {
            id: uuid::Uuid::new_v4().simple().to_string(),
            started: Instant::now(),
            route: None,
            dialect: Dialect::Passthrough,
            policy: None,
            path: String::new(),
            session_id: String::new(),
            agent_id: String::new(),
            encoding: Encoding::Identity,
            req: RequestBody::Untouched,
            resp: ResponseBody::Pass,
            upstream_status: None,
            upstream_sent: None,
            upstream_latency: None,
            denial: None,
            answered: None,
            reports: Vec::new(),
        }
    }

    async fn request_filter(&self, session: &mut Session, ctx: &mut Ctx) -> Result<bool> {
        let policy = self.app.policy.current();
        let (method, path) = {
            let req = session.req_header();
            (req.method.as_str().to_string(), req.uri.path().to_string())
        };
        ctx.path = path.clone();
        ctx.session_id = header_str(session, "x-asg-session-id")
            .or(header_str(session, "x-session-id"))
            .unwrap_or("")
            .chars()
            .take(256)
            .collect();
        ctx.agent_id = header_str(session, "x-asg-agent-id")
            .or(header_str(session, "x-agent-id"))
            .unwrap_or("")
            .chars()
            .take(256)
            .collect();
        let host = header_str(session, "host").map(str::to_string);
        ctx.policy = Some(policy.clone());

        let Some(route) = self.app.routes.find(host.as_deref(), &path) else {
            return self
                .refuse(
                    session,
                    ctx,
                    ErrorKind::NotFound,
                    &format!("no route for {path}"),
                )
                .await;
        };
        ctx.dialect = Dialect::detect(route.api, &method, &path);
        ctx.route = Some(route);

        if !ctx.dialect.is_inspected() {
            if policy.file.proxy.unknown_paths == crate::decision::policy::UnknownPaths::Refuse {
                return self.refuse(session, ctx, ErrorKind::NotFound, &format!("{method} {path} is not an inspected API path and the policy refuses unknown paths")).await;
            }
            return Ok(false);
        }

        if !is_json_content_type(header_str(session, "content-type")) {
            let ct = header_str(session, "content-type")
                .unwrap_or("")
                .to_string();
            return self
                .refuse(
                    session,
                    ctx,
                    ErrorKind::UnsupportedMedia,
                    &format!("content type {ct:?} cannot be inspected; send application/json"),
                )
                .await;
        }
        ctx.encoding = match Encoding::parse(header_str(session, "content-encoding")) {
            Ok(e) => e,
            Err(msg) => {
                return self
                    .refuse(session, ctx, ErrorKind::UnsupportedMedia, &msg)
                    .await
            }
        };
        let limit = policy.file.proxy.max_body_bytes;
        let declared =
            header_str(session, "content-length").and_then(|v| v.trim().parse::<usize>().ok());
        if declared.is_some_and(|n| n > limit) {
            return self
                .refuse(
                    session,
                    ctx,
                    ErrorKind::TooLarge,
                    &format!(
                        "request body of {} bytes exceeds the gateway limit of {limit} bytes",
                        declared.unwrap_or(0)
                    ),
                )
                .await;
        }
        // Upstream bodies must reach the scanners uncompressed.
        session.upstream_compression.adjust_decompression(true);

        match declared {
            Some(n) if n <= PREFETCH_LIMIT => {
                session.as_downstream_mut().enable_retry_buffering();
                let mut buf = BytesMut::with_capacity(n);
                while let Some(chunk) = session.read_request_body().await? {
                    buf.extend_from_slice(&chunk);
                    if buf.len() > PREFETCH_LIMIT {
                        return self
                            .refuse(
                                session,
                                ctx,
                                ErrorKind::InvalidRequest,
                                "request body is longer than its Content-Length",
                            )
                            .await;
                    }
                }
                match self.judge_request(ctx, buf.freeze()).await {
                    Ok(forward) => ctx.req = RequestBody::Prefetched { forward },
                    Err(d) => {
                        self.answer(session, ctx, d.status, &d.body, d.reason)
                            .await?;
                        return Ok(true);
                    }
                }
            }
            _ => {
                ctx.req = RequestBody::Collecting {
                    buf: BytesMut::new(),
                }
            }
        }
        Ok(false)
    }

    async fn upstream_peer(&self, _session: &mut Session, ctx: &mut Ctx) -> Result<Box<HttpPeer>> {
        let route = ctx.route.clone().expect("route chosen in request_filter");
        let up = &route.upstream;
        let addr = match self.app.resolver.resolve(&up.host, up.port).await {
            Ok(a) => a,
            Err(msg) => {
                self.app
                    .metrics
                    .upstream_errors
                    .with_label_values(&[route.name.as_str(), "dns"])
                    .inc();
                return Error::e_explain(ConnectNoRoute, msg);
            }
        };
        let mut peer = HttpPeer::new(addr, up.tls, up.host.clone());
        peer.options.connection_timeout =
            Some(Duration::from_secs(self.app.config.connect_timeout_secs));
        peer.options.total_connection_timeout = Some(Duration::from_secs(
            self.app.config.connect_timeout_secs + 5,
        ));
        peer.options.read_timeout = Some(Duration::from_secs(self.app.config.read_timeout_secs));
        peer.options.write_timeout = Some(Duration::from_secs(self.app.config.read_timeout_secs));
        peer.options.idle_timeout = Some(Duration::from_secs(60));
        Ok(Box::new(peer))
    }

    async fn upstream_request_filter(
        &self,
        session: &mut Session,
        req: &mut RequestHeader,
        ctx: &mut Ctx,
    ) -> Result<()> {
        let route = ctx.route.clone().expect("route chosen in request_filter");
        let path_and_query = session
            .req_header()
            .uri
            .path_and_query()
            .map(|p| p.as_str().to_string())
            .unwrap_or_else(|| ctx.path.clone());
        let target = route.upstream_path(&path_and_query);
        req.set_uri(
            target
                .parse()
                .map_err(|_| Error::explain(InternalError, "bad upstream path"))?,
        );
        req.insert_header("host", route.upstream.host_header())?;
        // Gateway-only headers stay here.
        for name in [
            "x-asg-session-id",
            "x-asg-agent-id",
            "x-asg-permit",
            "proxy-connection",
            "proxy-authorization",
        ] {
            req.remove_header(name);
        }
        if ctx.dialect.is_inspected() {
            req.remove_header("accept-encoding");
        }
        match &ctx.req {
            RequestBody::Prefetched {
                forward: Some(body),
            } => {
                req.remove_header("content-encoding");
                req.remove_header("transfer-encoding");
                req.insert_header("content-length", body.len().to_string())?;
            }
            RequestBody::Collecting { .. } => {
                // The forwarded length is known only after inspection; without
                // Content-Length pingora must be told to chunk, or it would
                // send an empty body.
                req.remove_header("content-encoding");
                req.remove_header("content-length");
                req.insert_header("transfer-encoding", "chunked")?;
            }
            _ => {}
        }
        ctx.upstream_sent = Some(Instant::now());
        Ok(())
    }

    async fn request_body_filter(
        &self,
        _session: &mut Session,
        body: &mut Option<Bytes>,
        end_of_stream: bool,
        ctx: &mut Ctx,
    ) -> Result<()> {
        match &mut ctx.req {
            RequestBody::Prefetched { forward } => {
                // pingora replays the buffered original; send the rewrite instead.
                if let Some(f) = forward.clone() {
                    if end_of_stream {
                        *body = Some(f);
                    } else {
                        *body = Some(Bytes::new());
                    }
                }
                Ok(())
            }
            RequestBody::Collecting { buf } => {
                if let Some(chunk) = body.take() {
                    buf.extend_from_slice(&chunk);
                }
                let limit = ctx
                    .policy
                    .as_ref()
                    .map_or(usize::MAX, |p| p.file.proxy.max_body_bytes);
                if buf.len() > limit {
                    let kind = ErrorKind::TooLarge;
                    let msg = format!("request body exceeds the gateway limit of {limit} bytes");
                    ctx.denial = Some(Denial {
                        status: kind.status(),
                        body: ctx.dialect.error_body(kind, &msg, &ctx.id),
                        reason: kind.code(),
                    });
                    return Error::e_explain(HTTPStatus(kind.status()), msg);
                }
                if !end_of_stream {
                    // Hold back with an empty chunk; `None` would end the upstream body.
                    *body = Some(Bytes::new());
                    return Ok(());
                }
                let raw = std::mem::take(buf).freeze();
                match self.judge_request(ctx, raw.clone()).await {
                    Ok(forward) => {
                        let out = forward.unwrap_or(raw);
                        *body = if out.is_empty() { None } else { Some(out) };
                        ctx.req = RequestBody::Untouched;
                        Ok(())
                    }
                    Err(d) => {
                        let status = d.status;
                        ctx.denial = Some(d);
                        Error::e_explain(HTTPStatus(status), "request denied by policy")
                    }
                }
            }
            RequestBody::Untouched => Ok(()),
        }
    }

    async fn upstream_response_filter(
        &self,
        _session: &mut Session,
        resp: &mut ResponseHeader,
        ctx: &mut Ctx,
    ) -> Result<()> {
        ctx.upstream_status = Some(resp.status.as_u16());
        if let Some(sent) = ctx.upstream_sent {
            let latency = sent.elapsed();
            ctx.upstream_latency = Some(latency);
            if let Some(route) = &ctx.route {
                self.app
                    .metrics
                    .upstream_latency
                    .with_label_values(&[route.name.as_str()])
                    .observe(latency.as_secs_f64());
            }
        }
        if !ctx.dialect.is_inspected() {
            return Ok(());
        }
        let ct = resp
            .headers
            .get("content-type")
            .and_then(|v| v.to_str().ok());
        if is_event_stream(ct) {
            // Streams pass through until the stream rewriter is wired in.
            resp.insert_header("x-asg-stream-inspection", "off")?;
        } else {
            ctx.resp = ResponseBody::Buffer {
                buf: BytesMut::new(),
                overflow: false,
            };
            resp.remove_header("content-length");
        }
        Ok(())
    }

    async fn response_filter(
        &self,
        _session: &mut Session,
        resp: &mut ResponseHeader,
        ctx: &mut Ctx,
    ) -> Result<()> {
        resp.insert_header("x-asg-request-id", ctx.id.as_str())?;
        if let Some(report) = ctx.reports.first() {
            resp.insert_header("x-asg-decision", report.decision.as_str())?;
        }
        Ok(())
    }

    fn response_body_filter(
        &self,
        _session: &mut Session,
        body: &mut Option<Bytes>,
        end_of_stream: bool,
        ctx: &mut Ctx,
    ) -> Result<Option<Duration>> {
        let ResponseBody::Buffer { buf, overflow } = &mut ctx.resp else {
            return Ok(None);
        };
        let limit = ctx
            .policy
            .as_ref()
            .map_or(usize::MAX, |p| p.file.proxy.max_body_bytes);
        if let Some(chunk) = body.take() {
            if !*overflow {
                buf.extend_from_slice(&chunk);
                if buf.len() > limit {
                    // Fail closed: an uninspectable response is not delivered.
                    *overflow = true;
                    buf.clear();
                }
            }
        }
        if !end_of_stream {
            return Ok(None);
        }
        let (raw, overflowed) = (std::mem::take(buf).freeze(), *overflow);
        ctx.resp = ResponseBody::Pass;
        if overflowed {
            let msg = format!(
                "response exceeds the gateway inspection limit of {limit} bytes and was withheld"
            );
            *body = Some(Bytes::from(
                ctx.dialect
                    .error_body(ErrorKind::TooLarge, &msg, &ctx.id)
                    .to_string(),
            ));
            self.app
                .metrics
                .gateway_errors
                .with_label_values(&["response_too_large"])
                .inc();
            return Ok(None);
        }
        let out = self.judge_response(ctx, &raw);
        *body = Some(out.map(Bytes::from).unwrap_or(raw));
        Ok(None)
    }

    async fn fail_to_proxy(&self, session: &mut Session, e: &Error, ctx: &mut Ctx) -> FailToProxy
    where
        Ctx: Send + Sync,
    {
        let (status, body, reason) = if let Some(d) = ctx.denial.take() {
            (d.status, d.body, d.reason)
        } else {
            let (kind, msg) = classify_error(e, ctx);
            if let Some(route) = &ctx.route {
                if kind == ErrorKind::BadGateway {
                    self.app
                        .metrics
                        .upstream_errors
                        .with_label_values(&[route.name.as_str(), "connect"])
                        .inc();
                }
            }
            let status = match e.etype() {
                HTTPStatus(code) => *code,
                _ => kind.status(),
            };
            (
                status,
                ctx.dialect.error_body(kind, &msg, &ctx.id),
                kind.code(),
            )
        };
        let client_gone = matches!(e.etype(), WriteError | ReadError | ConnectionClosed)
            && e.esource() == &pingora::ErrorSource::Downstream;
        if !client_gone && session.response_written().is_none() {
            if let Err(err) = self.answer(session, ctx, status, &body, reason).await {
                tracing::debug!(error = %err, "could not write error response");
            }
        }
        FailToProxy {
            error_code: if client_gone { 0 } else { status },
            can_reuse_downstream: false,
        }
    }

    async fn logging(&self, session: &mut Session, e: Option<&Error>, ctx: &mut Ctx) {
        let app = &self.app;
        let route = ctx
            .route
            .as_ref()
            .map_or("none", |r| r.name.as_str())
            .to_string();
        let dialect = ctx.dialect.as_str();
        let decision = ctx.decision();
        app.metrics
            .requests
            .with_label_values(&[route.as_str(), dialect, decision.as_str()])
            .inc();
        for r in &ctx.reports {
            app.metrics.record_stage(dialect, r);
        }
        let status = ctx
            .answered
            .or_else(|| session.response_written().map(|r| r.status.as_u16()));
        let policy_version = ctx
            .policy
            .as_ref()
            .map(|p| p.version.clone())
            .unwrap_or_default();
        let event = AuditEvent {
            seq: 0,
            time: crate::util::now_rfc3339(),
            request_id: ctx.id.clone(),
            session_id: ctx.session_id.clone(),
            agent_id: ctx.agent_id.clone(),
            route,
            dialect: dialect.to_string(),
            stage: stage_label(ctx),
            decision: decision.as_str().to_string(),
            total_score: ctx.reports.iter().map(|r| r.score).fold(0.0, f64::max),
            reasons: ctx
                .reports
                .iter()
                .flat_map(|r| r.reasons.iter().cloned())
                .collect(),
            findings: ctx
                .reports
                .iter()
                .flat_map(|r| r.findings.iter())
                .map(AuditFinding::from)
                .collect(),
            tools: ctx
                .reports
                .iter()
                .flat_map(|r| r.tools.iter())
                .map(|t| format!("{}: {}", t.name, t.decision))
                .collect(),
            masked: ctx.reports.iter().map(|r| r.masks.len()).sum(),
            policy_version,
            latency_ms: ctx.started.elapsed().as_secs_f64() * 1000.0,
            status,
            path: Some(ctx.path.chars().take(256).collect()),
            ..AuditEvent::default()
        };
        if let Err(err) = app.store.append_audit(&event) {
            tracing::error!(error = %err, "audit write failed");
        }
        if let Some(e) = e {
            tracing::debug!(request_id = %ctx.id, error = %e, "request ended with error");
        }
    }
}

/// `request`, `request+response`, or `passthrough` for uninspected traffic.
fn stage_label(ctx: &Ctx) -> String {
    if ctx.reports.is_empty() {
        return if ctx.dialect.is_inspected() {
            "gateway".to_string()
        } else {
            "passthrough".to_string()
        };
    }
    ctx.reports
        .iter()
        .map(|r| r.stage.as_str())
        .collect::<Vec<_>>()
        .join("+")
}

/// Map a pingora error to what the client is told.
fn classify_error(e: &Error, ctx: &Ctx) -> (ErrorKind, String) {
    let upstream = ctx
        .route
        .as_ref()
        .map(|r| format!("{}:{}", r.upstream.host, r.upstream.port))
        .unwrap_or_default();
    match e.etype() {
        HTTPStatus(413) => (ErrorKind::TooLarge, "request body too large".to_string()),
        HTTPStatus(400) => (ErrorKind::InvalidRequest, "invalid request".to_string()),
        HTTPStatus(code) if *code >= 500 => {
            (ErrorKind::BadGateway, format!("upstream error ({code})"))
        }
        HTTPStatus(_) => (ErrorKind::Blocked, "request denied".to_string()),
        ConnectTimedout | ConnectRefused | ConnectNoRoute | ConnectError | ConnectProxyFailure
        | TLSHandshakeFailure | TLSHandshakeTimedout | InvalidCert | HandshakeError => (
            ErrorKind::BadGateway,
            format!("upstream {upstream} is unreachable: {}", e.etype().as_str()).replace('_', " ")
                + &e.context
                    .as_ref()
                    .map(|c| format!(" ({c})"))
                    .unwrap_or_default(),
        ),
        ReadTimedout | WriteTimedout => (
            ErrorKind::BadGateway,
            format!("upstream {upstream} timed out"),
        ),
        _ if e.esource() == &pingora::ErrorSource::Upstream => (
            ErrorKind::BadGateway,
            format!("upstream {upstream} failed: {}", e.etype().as_str()),
        ),
        _ if e.esource() == &pingora::ErrorSource::Downstream => (
            ErrorKind::InvalidRequest,
            format!("malformed request: {}", e.etype().as_str()),
        ),
        _ => (
            ErrorKind::Internal,
            format!("gateway error: {}", e.etype().as_str()),
        ),
    }
}

impl From<&crate::decision::Finding> for AuditFinding {
    fn from(f: &crate::decision::Finding) -> Self {
        AuditFinding {
            rule_id: f.rule_id.clone(),
            detector: f.detector.as_str().to_string(),
            severity: f.severity.as_str().to_string(),
            score: crate::decision::types::round_score(f.score),
            message: f.message.clone(),
            evidence: f.evidence.clone(),
            location: f.location.clone(),
        }
    }
}
