//! The pingora side of the data path: hooks that route, buffer, hand bodies
//! to [`enforce`](super::enforce) and write what it decided.
//!
//! Request bodies are inspected *before* anything reaches the upstream when
//! they fit pingora's 64 KiB replay buffer (the common case: denied tool
//! calls never touch a tool server). Larger or chunked bodies are collected
//! in `request_body_filter`; the upstream has then seen the request header,
//! but never a byte of a denied body. Non-streaming responses are buffered
//! and inspected whole; streams are handed to the stream rewriter.

use super::body::{is_event_stream, is_json_content_type};
use super::dialect::{Dialect, ErrorKind};
use super::encoding::{BodyDecoding, Codings, DecodeError};
use super::enforce::{
    inspect_request_with, inspect_response_with, Inspection, RequestAction, StageReport,
};
use super::forward::{Admission, ForwardTarget};
use super::hooks::{NoSession, SessionHooks};
use super::identity::Identity;
use super::path_norm;
use super::protocol;
use super::route::Route;
use super::session_gate::SessionGate;
use super::stream::{is_json_array_stream, StreamRewriter};
use super::timeouts::Watchdog;
use crate::app::App;
use crate::decision::approvals::ApprovalStatus;
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

/// Forward-proxy hooks (CONNECT tunnels, transparent and absolute-form traffic).
mod forwarding;
/// Response bodies on their way to the client: decoded, streamed or buffered.
mod response_body;
/// Inspection slots (bounded concurrent inspection).
mod slots;
/// Responses WebSocket inspection hooks.
mod websocket;

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
        /// Why the body cannot be inspected (too large, could not be
        /// decoded), with the metric label.
        failed: Option<(String, &'static str)>,
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
    /// The request body's content codings.
    encoding: Codings,
    /// How the response body is decoded for inspection (inspected routes).
    resp_decoding: BodyDecoding,
    req: RequestBody,
    resp: ResponseBody,
    upstream_status: Option<u16>,
    upstream_sent: Option<Instant>,
    upstream_latency: Option<Duration>,
    denial: Option<Denial>,
    /// Status the gateway answered with itself, if it did.
    answered: Option<u16>,
    reports: Vec<StageReport>,
    /// Set when the upstream answered with an inspected event stream.
    stream: Option<Box<StreamRewriter>>,
    /// The session layer for this request (inspected routes only).
    gate: Option<Arc<SessionGate>>,
    /// The audit record was written (and made durable) before the answer.
    audited: bool,
    /// Written at the end of the upstream body, not yet known durable: the
    /// last chunk waits for it.
    audit_pending: Option<crate::state::Ticket>,
    /// Forward-mode traffic: where the client is really going.
    forward: Option<ForwardTarget>,
    /// `Retry-After` seconds for an answer the gateway writes (busy).
    retry_after: Option<u64>,
    /// An inspected Responses WebSocket.
    ws: Option<Box<crate::datapath::ws::WsConn>>,
    /// This request's spans, when OpenTelemetry is on.
    trace: Option<Box<crate::telemetry::RequestTrace>>,
    /// The normalised path to send upstream instead of the client's
    /// spelling (an inspected path written in an unusual way).
    clean_path: Option<String>,
    /// An MCP request's JSON-RPC id (for answers written in the server's place).
    rpc_id: serde_json::Value,
    /// Upstream first-byte, idle and total deadlines.
    watch: Watchdog,
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
            rpc_id: self.rpc_id.clone(),
        }
    }
}

/// Every value of a header; a value that is not text reads as U+FFFD (so
/// a parser refuses it instead of skipping it).
fn header_values<'a>(session: &'a Session, name: &str) -> Vec<&'a str> {
    session
        .req_header()
        .headers
        .get_all(name)
        .iter()
        .map(|v| v.to_str().unwrap_or("\u{fffd}"))
        .collect()
}

fn header_str<'a>(session: &'a Session, name: &str) -> Option<&'a str> {
    session
        .req_header()
        .headers
        .get(name)
        .and_then(|v| v.to_str().ok())
}

impl Gateway {
    /// Write a JSON answer ourselves (before any upstream response). The
    /// audit record is on disk before the answer leaves.
    async fn answer(
        &self,
        session: &mut Session,
        ctx: &mut Ctx,
        status: u16,
        body: &serde_json::Value,
        reason: &'static str,
    ) -> Result<()> {
        let bytes = Bytes::from(body.to_string());
        let mut header = ResponseHeader::build(status, Some(5))?;
        header.insert_header("content-type", "application/json")?;
        header.insert_header("content-length", bytes.len().to_string())?;
        header.insert_header("x-asg-request-id", ctx.id.as_str())?;
        header.insert_header("x-asg-decision", ctx.decision().as_str())?;
        if let Some(secs) = ctx.retry_after {
            header.insert_header("retry-after", secs.to_string())?;
        }
        let pending: Vec<String> = ctx
            .reports
            .iter()
            .flat_map(|r| r.pending_approvals())
            .collect();
        if !pending.is_empty() {
            header.insert_header("x-asg-approval-id", pending.join(","))?;
        }
        self.seal_audit(ctx, Some(status)).await;
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
        session: &mut Session,
        ctx: &mut Ctx,
        raw: Bytes,
    ) -> std::result::Result<Option<Bytes>, Denial> {
        let policy = ctx.policy.clone().expect("policy pinned in request_filter");
        // Decoding and inspection run only while holding a slot.
        let slot = self.request_slot(ctx).await?;
        let limit = policy.file.proxy.max_decoded_bytes;
        let decoded = match ctx.encoding.decode(&raw, limit) {
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
        let (mut action, mut report) = self
            .inspect_request_body(ctx, &policy, &tool, &decoded)
            .await?;
        // Hold mode: a tool call that needs a human waits (up to
        // `approvals.hold_secs`) for an operator instead of failing now.
        if let (RequestAction::Deny { kind, .. }, Some(gate)) = (&action, ctx.gate.clone()) {
            let ids = report.pending_approvals();
            if *kind == ErrorKind::ApprovalRequired && gate.holds() && !ids.is_empty() {
                let limit = Duration::from_secs(policy.file.approvals.hold_secs);
                // Nobody inspects while a human decides.
                drop(slot);
                match self.hold(session, &ids, limit).await {
                    Held::Approved => {
                        gate.release_held();
                        let _slot = self.request_slot(ctx).await?;
                        (action, report) = self
                            .inspect_request_body(ctx, &policy, &tool, &decoded)
                            .await?;
                    }
                    // Re-judged: the gate now reports the denial.
                    Held::Decided => {
                        let _slot = self.request_slot(ctx).await?;
                        (action, report) = self
                            .inspect_request_body(ctx, &policy, &tool, &decoded)
                            .await?;
                    }
                    Held::TimedOut => report.reasons.push(format!(
                        "No operator decision within {} s; the approval stays pending.",
                        limit.as_secs()
                    )),
                    Held::ClientGone => report.reasons.push(
                        "The client went away while the call was held; nothing was forwarded."
                            .to_string(),
                    ),
                }
            }
        }
        ctx.reports.push(report);
        if ctx.dialect == Dialect::Mcp {
            // Kept to answer in the server's place (a withheld response).
            if let Ok(body) = crate::datapath::strict_json::from_slice(&decoded) {
                ctx.rpc_id = crate::datapath::dialect::mcp::request_id(&body);
            }
        }
        match action {
            RequestAction::Deny { status, kind, body } => Err(Denial {
                status,
                body,
                reason: kind.code(),
            }),
            RequestAction::Forward(Some(rewritten)) => Ok(Some(Bytes::from(rewritten))),
            RequestAction::Forward(None) if !ctx.encoding.is_identity() => Ok(Some(decoded)),
            RequestAction::Forward(None) => Ok(None),
        }
    }

    /// One inspection of a request body in the session (large bodies on
    /// the blocking pool), recorded in the session.
    async fn inspect_request_body(
        &self,
        ctx: &Ctx,
        policy: &Arc<Policy>,
        tool: &str,
        decoded: &[u8],
    ) -> std::result::Result<(RequestAction, StageReport), Denial> {
        let started = Instant::now();
        let wall = std::time::SystemTime::now();
        let result = if decoded.len() > OFFLOAD_ABOVE {
            let app = self.app.clone();
            let (dialect, id) = (ctx.dialect, ctx.id.clone());
            let p = policy.clone();
            let input = decoded.to_vec();
            let gate = ctx.gate.clone();
            let tool = tool.to_string();
            tokio::task::spawn_blocking(move || {
                let ins = Inspection {
                    policy: &p,
                    masker: &app.masker,
                    dialect,
                    request_id: &id,
                    tool_name: &tool,
                    rpc_id: serde_json::Value::Null,
                };
                let hooks: &dyn SessionHooks = match &gate {
                    Some(g) => g.as_ref(),
                    None => &NoSession,
                };
                inspect_request_with(&ins, &input, hooks)
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
            let hooks: &dyn SessionHooks = match &ctx.gate {
                Some(g) => g.as_ref(),
                None => &NoSession,
            };
            inspect_request_with(&ctx.inspection(&self.app, policy, tool), decoded, hooks)
        };
        self.app
            .metrics
            .inspect_latency
            .with_label_values(&["request"])
            .observe(started.elapsed().as_secs_f64());
        if let Some(g) = &ctx.gate {
            g.commit(&result.1);
        }
        if let Some(tr) = &ctx.trace {
            let rules = rule_ids(std::slice::from_ref(&result.1));
            tr.request_inspected(wall, decoded, result.1.decision.as_str(), &rules);
        }
        Ok(result)
    }

    /// Wait until an operator decides every approval in `ids`, or `limit`,
    /// or the client hangs up (then nothing is forwarded: an approval must
    /// not run a tool for a caller that gave up).
    async fn hold(&self, session: &mut Session, ids: &[String], limit: Duration) -> Held {
        let store = &self.app.store;
        // The approval must survive a crash before anyone acts on it.
        if let Err(e) = store.durable().await {
            tracing::error!(error = %e, "approval not durable; not holding");
            return Held::TimedOut;
        }
        let deadline = tokio::time::Instant::now() + limit;
        // The request body is complete; reading now only sees the client
        // hang up (or pipelined bytes, after which we stop probing).
        let mut probe_client = true;
        for id in ids {
            let mut rx = store.approval_watch(id, ApprovalStatus::Pending);
            let status = loop {
                // A store that cannot be read keeps the call waiting: it is
                // refused at its deadline unless a decision arrives first.
                let status = match store.approval_get(id, crate::state::now_ms()) {
                    Ok(a) => a.map_or(ApprovalStatus::Expired, |a| a.status),
                    Err(_) => ApprovalStatus::Pending,
                };
                if status != ApprovalStatus::Pending {
                    break status;
                }
                let decided = tokio::time::timeout_at(deadline, rx.changed());
                tokio::select! {
                    r = decided => match r {
                        Ok(Ok(())) => continue,
                        _ => break ApprovalStatus::Pending,
                    },
                    r = session.downstream_session.read_body_or_idle(true), if probe_client => {
                        match r {
                            Ok(Some(_)) => probe_client = false,
                            _ => {
                                store.approval_unwatch(id);
                                return Held::ClientGone;
                            }
                        }
                    }
                }
            };
            drop(rx);
            store.approval_unwatch(id);
            match status {
                ApprovalStatus::Approved => continue,
                ApprovalStatus::Pending => return Held::TimedOut,
                _ => return Held::Decided,
            }
        }
        Held::Approved
    }

    /// The audit record of this request, as known now.
    fn audit_event(&self, ctx: &Ctx, status: Option<u16>) -> AuditEvent {
        let (session_id, agent_id, approvals) = match &ctx.gate {
            Some(g) => {
                let id = g.identity();
                (id.session_id, id.agent_id, g.approvals())
            }
            None => (ctx.session_id.clone(), ctx.agent_id.clone(), Vec::new()),
        };
        AuditEvent {
            seq: 0,
            time: crate::util::now_rfc3339(),
            request_id: ctx.id.clone(),
            session_id,
            agent_id,
            route: ctx
                .route
                .as_ref()
                .map_or("none", |r| r.name.as_str())
                .to_string(),
            dialect: ctx.dialect.as_str().to_string(),
            stage: stage_label(ctx),
            decision: ctx.decision().as_str().to_string(),
            total_score: ctx.reports.iter().map(|r| r.score).fold(0.0, f64::max),
            reasons: super::enforce::record_reasons(&ctx.reports),
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
            policy_version: ctx
                .policy
                .as_ref()
                .map(|p| p.version.clone())
                .unwrap_or_default(),
            latency_ms: ctx.started.elapsed().as_secs_f64() * 1000.0,
            status,
            path: Some(self.audit_path(ctx)),
            turn_id: String::new(),
            approvals,
        }
    }

    /// The request path for audit: bounded, and masked (a key in a URL
    /// path is still a key).
    fn audit_path(&self, ctx: &Ctx) -> String {
        let path: String = match &ctx.forward {
            // Forward mode: the full URL (the host is the destination).
            Some(t) => t.url(&ctx.path).chars().take(256).collect(),
            None => ctx.path.chars().take(256).collect(),
        };
        match &ctx.policy {
            Some(p) => {
                crate::decision::approvals::display_target(&p.redactor, &self.app.masker, &path)
            }
            None => path,
        }
    }

    /// Append the audit record and wait until it is on disk, before the
    /// answer that acknowledges the decision is written.
    async fn seal_audit(&self, ctx: &mut Ctx, status: Option<u16>) {
        if ctx.audited {
            return;
        }
        ctx.audited = true;
        let event = self.audit_event(ctx, status);
        match self.app.store.append_audit(&event) {
            Ok(_) => {
                if let Err(e) = self.app.store.durable().await {
                    tracing::error!(error = %e, "audit record not durable");
                }
            }
            Err(e) => tracing::error!(error = %e, "audit write failed"),
        }
    }

    /// Append the audit record when the upstream body ends, before the
    /// last chunk goes out. Returns how long pingora should wait (a timer,
    /// so the worker keeps serving others) before that chunk's filter,
    /// where [`Self::seal_audit_blocking`] finds the record durable and
    /// needs no blocking wait unless the disk was slower than expected.
    fn seal_audit_upstream(&self, ctx: &mut Ctx, status: Option<u16>) -> Option<Duration> {
        if ctx.audited {
            return None;
        }
        ctx.audited = true;
        let event = self.audit_event(ctx, status);
        if let Err(e) = self.app.store.append_audit(&event) {
            tracing::error!(error = %e, "audit write failed");
            return None;
        }
        if self.app.proxy.audit_sync == crate::state::config::AuditSync::Decisions {
            // Operator's choice: forwarded responses do not wait; the
            // record is in the next group flush (milliseconds).
            return None;
        }
        let ticket = self.app.store.ticket();
        if self.app.store.is_durable(ticket) {
            return None;
        }
        ctx.audit_pending = Some(ticket);
        Some(self.app.store.audit_expected_wait())
    }

    /// [`Self::seal_audit`] from a synchronous hook (the last response
    /// chunk): the record is appended if it was not yet, and if it is not
    /// durable yet the worker thread is handed over while it waits.
    fn seal_audit_blocking(&self, ctx: &mut Ctx, status: Option<u16>) {
        if !ctx.audited {
            self.seal_audit_upstream(ctx, status);
        }
        let Some(ticket) = ctx.audit_pending.take() else {
            return;
        };
        if self.app.store.is_durable(ticket) {
            return;
        }
        let wait = || self.app.store.durable_blocking(ticket);
        let multi_thread = tokio::runtime::Handle::try_current()
            .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
        let result = if multi_thread {
            tokio::task::block_in_place(wait)
        } else {
            wait()
        };
        if let Err(e) = result {
            tracing::error!(error = %e, "audit record not durable");
        }
    }

    fn judge_response(&self, ctx: &mut Ctx, raw: &[u8]) -> Option<Vec<u8>> {
        let policy = ctx.policy.clone()?;
        let wall = std::time::SystemTime::now();
        let status = ctx.upstream_status.unwrap_or(200);
        // Small bodies are cheap; a large one waits for a slot or is withheld.
        let _slot = if raw.len() > OFFLOAD_ABOVE {
            match self.response_slot(ctx) {
                Ok(slot) => Some(slot),
                Err(withheld) => return Some(withheld),
            }
        } else {
            None
        };
        let started = Instant::now();
        let hooks: &dyn SessionHooks = match &ctx.gate {
            Some(g) => g.as_ref(),
            None => &NoSession,
        };
        let run =
            || inspect_response_with(&ctx.inspection(&self.app, &policy, ""), raw, status, hooks);
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
        if let Some(g) = &ctx.gate {
            g.commit(&report);
        }
        if let Some(tr) = ctx.trace.as_mut() {
            if let Ok(v) = serde_json::from_slice::<serde_json::Value>(raw) {
                tr.usage(&v);
            }
            tr.response_inspected(
                wall,
                report.decision.as_str(),
                &rule_ids(std::slice::from_ref(&report)),
            );
        }
        ctx.reports.push(report);
        out
    }
}

/// The status of the answer being finished. pingora may write the header
/// and the last chunk together, after the body filters: then the
/// upstream's status is the answer.
fn answer_status(session: &Session, ctx: &Ctx) -> Option<u16> {
    session
        .response_written()
        .map(|r| r.status.as_u16())
        .or(ctx.upstream_status)
}

/// How a hold ended.
enum Held {
    /// Every approval was granted: re-judge, which releases the call.
    Approved,
    /// An operator denied (or the approval was spent or expired).
    Decided,
    TimedOut,
    ClientGone,
}

#[async_trait]
impl ProxyHttp for Gateway {
    type CTX = Ctx;

    fn new_ctx(&self) -> Ctx {
        Ctx {
            id: crate::util::new_request_uuid().simple().to_string(),
            started: Instant::now(),
            route: None,
            dialect: Dialect::Passthrough,
            policy: None,
            path: String::new(),
            session_id: String::new(),
            agent_id: String::new(),
            encoding: Codings::identity(),
            resp_decoding: BodyDecoding::Identity,
            req: RequestBody::Untouched,
            resp: ResponseBody::Pass,
            upstream_status: None,
            upstream_sent: None,
            upstream_latency: None,
            denial: None,
            answered: None,
            reports: Vec::new(),
            stream: None,
            gate: None,
            audited: false,
            audit_pending: None,
            forward: None,
            retry_after: None,
            ws: None,
            trace: None,
            clean_path: None,
            rpc_id: serde_json::Value::Null,
            watch: Watchdog::new(self.app.proxy.timeouts),
        }
    }

    async fn request_filter(&self, session: &mut Session, ctx: &mut Ctx) -> Result<bool> {
        if let Some(t) = crate::telemetry::global() {
            let req = session.req_header();
            ctx.trace = Some(Box::new(t.begin(
                req.method.as_str(),
                req.uri.path(),
                &req.headers,
            )));
        }
        let policy = self.app.policy.current();
        let (method, path) = {
            let req = session.req_header();
            (req.method.as_str().to_string(), req.uri.path().to_string())
        };
        ctx.path = path.clone();
        // Who is calling, in which session (completed from the body later).
        let peer_addr = session.client_addr().and_then(|a| a.as_inet()).copied();
        let process = match (
            peer_addr,
            session.server_addr().and_then(|a| a.as_inet()).copied(),
        ) {
            (Some(p), Some(l))
                if policy.file.session.agent_from_process && self.app.proxy.agent_id.is_none() =>
            {
                super::peer::process_of(p, l).await
            }
            _ => None,
        };
        let identity = Identity::from_headers(
            &policy.file.session,
            |name| header_str(session, name),
            self.app.proxy.agent_id.as_deref(),
            peer_addr,
            process.as_ref(),
        );
        ctx.session_id = identity.session_id.clone();
        ctx.agent_id = identity.agent_id.clone();
        let host = header_str(session, "host").map(str::to_string);
        ctx.policy = Some(policy.clone());

        // Forward proxy: the client chose the destination; the
        // `[connect]` policy says whether to inspect, pass or refuse it.
        let Some(admission) = self.admit_forward(session, ctx, host.as_deref()).await? else {
            return Ok(true);
        };
        // Routed on every reading of the path an upstream might use.
        let norm = match path_norm::normalize(&path) {
            Ok(n) => n,
            Err(e) => {
                let msg = e.to_string();
                return self
                    .refuse(session, ctx, ErrorKind::InvalidRequest, &msg)
                    .await;
            }
        };
        let resolved = match &ctx.forward {
            Some(t) => self
                .app
                .forwarding
                .routes
                .resolve(Some(&t.host), &method, &norm),
            None => self.app.routes.resolve(host.as_deref(), &method, &norm),
        };
        let Some((route, dialect, reading)) = resolved else {
            return self
                .refuse(
                    session,
                    ctx,
                    ErrorKind::NotFound,
                    &format!("no route for {path}"),
                )
                .await;
        };
        ctx.dialect = dialect;
        let api = route.api;
        let mcp_control =
            api == super::dialect::ApiKind::Mcp && matches!(method.as_str(), "GET" | "DELETE");
        ctx.route = Some(route);
        if admission == Admission::Pass {
            ctx.dialect = Dialect::Passthrough;
            return Ok(false);
        }
        if norm.rewritten {
            // An API path written unusually reaches the upstream in the
            // clean form that was inspected; a GET too, so that a
            // WebSocket upgrade is read by that path.
            let api_path = match dialect.is_inspected() {
                true => Some(reading),
                false => norm
                    .readings
                    .iter()
                    .find(|r| Dialect::detect(api, "POST", &r.key).is_inspected()),
            };
            if let Some(r) = api_path {
                ctx.path = r.clean.clone();
                ctx.clean_path = Some(r.clean.clone());
            }
        }
        if self.ws_begin(session, ctx, &policy, &identity) {
            return Ok(false);
        }
        if mcp_control {
            // MCP's own GET (the server's event stream, inspected as MCP
            // messages) and DELETE (the session's end) carry no body to
            // judge; refusing them reads as "session not found" to clients.
            ctx.dialect = if method == "GET" {
                Dialect::Mcp
            } else {
                Dialect::Passthrough
            };
            return Ok(false);
        }

        if ctx.dialect.is_inspected() {
            let permit = header_str(session, &policy.file.approvals.permit_header)
                .map(|p| p.trim().to_string())
                .filter(|p| !p.is_empty());
            let route_name = ctx.route.as_ref().map_or("", |r| r.name.as_str());
            ctx.gate = Some(Arc::new(SessionGate::new(
                self.app.clone(),
                policy.clone(),
                ctx.dialect,
                route_name,
                &ctx.id,
                identity,
                permit,
            )));
        }

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
        ctx.encoding = match Codings::parse(header_values(session, "content-encoding")) {
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
                match self.judge_request(session, ctx, buf.freeze()).await {
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
        // Forward mode connects where the client asked, never to route.upstream.
        let (resolved, tls, sni) = match &ctx.forward {
            Some(_) => self.forward_destination(ctx).await?,
            None => (
                self.app.resolver.resolve(&up.host, up.port).await,
                up.tls,
                up.host.clone(),
            ),
        };
        let addr = match resolved {
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
        let mut peer = HttpPeer::new(addr, tls, sni);
        self.app.forwarding.tune_peer(&mut peer);
        let t = ctx.watch.limits();
        peer.options.connection_timeout = Some(t.connect);
        // TCP plus the TLS handshake.
        peer.options.total_connection_timeout = Some(t.connect + Duration::from_secs(5));
        // The watchdog enforces the deadlines; pingora's per-read timeout
        // is only a backstop behind it.
        peer.options.read_timeout = Some(t.first_byte.max(t.idle) + Duration::from_secs(5));
        peer.options.write_timeout = Some(t.idle);
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
        let uri = &session.req_header().uri;
        let path_and_query = match (&ctx.clean_path, uri.query()) {
            (Some(p), Some(q)) => format!("{p}?{q}"),
            (Some(p), None) => p.clone(),
            (None, _) => uri
                .path_and_query()
                .map(|p| p.as_str().to_string())
                .unwrap_or_else(|| ctx.path.clone()),
        };
        if ctx.forward.is_some() {
            // Forward mode: origin-form, and the client's own Host header.
            req.set_uri(
                path_and_query
                    .parse()
                    .map_err(|_| Error::explain(InternalError, "bad request path"))?,
            );
            self.app.forwarding.add_via(req)?;
        } else {
            let target = route.upstream_path(&path_and_query);
            req.set_uri(
                target
                    .parse()
                    .map_err(|_| Error::explain(InternalError, "bad upstream path"))?,
            );
            req.insert_header("host", route.upstream.host_header())?;
        }
        if let Some(tr) = ctx.trace.as_mut() {
            let address = match &ctx.forward {
                Some(t) => t.authority(),
                None => route.upstream.address(),
            };
            for (k, v) in tr.upstream_start(&address) {
                req.insert_header(k, v)?;
            }
        }
        // Gateway-only headers stay here (the permit header is configurable).
        if let Some(p) = &ctx.policy {
            req.remove_header(p.file.approvals.permit_header.as_str());
        }
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
        if ctx.ws.is_some() {
            // Compressed frames could not be read: the offer is withdrawn,
            // so the upstream speaks plain frames.
            req.remove_header("sec-websocket-extensions");
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
        ctx.watch.request_sent();
        Ok(())
    }

    async fn request_body_filter(
        &self,
        session: &mut Session,
        body: &mut Option<Bytes>,
        end_of_stream: bool,
        ctx: &mut Ctx,
    ) -> Result<()> {
        if self
            .ws_client_bytes(session, body, end_of_stream, ctx)
            .await?
        {
            return Ok(());
        }
        // The request is still going out: the first-byte clock restarts.
        ctx.watch.request_sent();
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
                // Judging (or holding for an operator) is not the upstream's delay.
                ctx.watch.pause();
                let judged = self.judge_request(session, ctx, raw.clone()).await;
                ctx.watch.request_sent();
                match judged {
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
        if let Some(tr) = &ctx.trace {
            tr.upstream_status(resp.status.as_u16());
        }
        let status = resp.status.as_u16();
        if status == 101 {
            // An upgraded connection (a WebSocket) lives as long as it is used.
            ctx.watch.finish();
        } else if !resp.status.is_informational() {
            let ct = resp
                .headers
                .get("content-type")
                .and_then(|v| v.to_str().ok());
            let streamed =
                is_event_stream(ct) || is_json_array_stream(ctx.dialect, &ctx.path, status, ct);
            // Only inspected non-stream answers are held whole (a total deadline).
            ctx.watch
                .head_received(ctx.dialect.is_inspected() && !streamed);
        }
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
        if !ctx.dialect.is_inspected() || self.ws_upstream_response(resp, ctx)? {
            return Ok(());
        }
        // Decoded here and forwarded decoded: scanners never see
        // compressed bytes, and the client gets what was inspected.
        let limit = ctx
            .policy
            .as_ref()
            .map_or(usize::MAX, |p| p.file.proxy.max_body_bytes);
        let codings = resp
            .headers
            .get_all("content-encoding")
            .iter()
            .map(|v| v.to_str().unwrap_or("\u{fffd}"));
        ctx.resp_decoding = BodyDecoding::for_response(codings, limit);
        resp.remove_header("content-encoding");
        let ct = resp
            .headers
            .get("content-type")
            .and_then(|v| v.to_str().ok());
        let array = !is_event_stream(ct)
            && is_json_array_stream(ctx.dialect, &ctx.path, resp.status.as_u16(), ct);
        if is_event_stream(ct) || array {
            // Inspected in flight, event by event (see `stream`).
            let policy = ctx.policy.clone().expect("policy pinned in request_filter");
            // Streamed calls are judged in the request's session, like
            // buffered ones (history, risk, approvals).
            let hooks: Arc<dyn SessionHooks> = match &ctx.gate {
                Some(g) => g.clone(),
                None => Arc::new(NoSession),
            };
            let rewriter =
                StreamRewriter::new(ctx.dialect, policy, self.app.masker.clone(), &ctx.id, hooks)
                    .map(|rw| if array { rw.json_array() } else { rw });
            if let Some(mut rw) = rewriter {
                rw.set_rpc_id(ctx.rpc_id.clone());
                ctx.stream = Some(Box::new(rw));
                resp.remove_header("content-length");
                resp.insert_header("x-asg-stream-inspection", "on")?;
            }
        } else {
            ctx.resp = ResponseBody::Buffer {
                buf: BytesMut::new(),
                failed: None,
            };
            resp.remove_header("content-length");
        }
        Ok(())
    }

    async fn early_request_filter(&self, session: &mut Session, _ctx: &mut Ctx) -> Result<()> {
        protocol::prepare(session);
        Ok(())
    }

    async fn response_filter(
        &self,
        session: &mut Session,
        resp: &mut ResponseHeader,
        ctx: &mut Ctx,
    ) -> Result<()> {
        protocol::fit_response(session, resp)?;
        resp.insert_header("x-asg-request-id", ctx.id.as_str())?;
        if let Some(report) = ctx.reports.first() {
            resp.insert_header("x-asg-decision", report.decision.as_str())?;
        }
        Ok(())
    }

    fn upstream_response_body_filter(
        &self,
        session: &mut Session,
        body: &mut Option<Bytes>,
        end_of_stream: bool,
        ctx: &mut Ctx,
    ) -> Result<Option<Duration>> {
        // Inspected here, one step before `response_body_filter`: pingora
        // awaits the duration returned from this hook before the chunk
        // goes on, which lets the audit record of the last chunk become
        // durable without blocking the worker thread.
        ctx.watch.chunk_received();
        let result = self.filter_response_body(body, end_of_stream, ctx)?;
        if end_of_stream {
            // The upstream is done; waiting for the disk is not its delay.
            ctx.watch.finish();
            if let Some(wait) = self.seal_audit_upstream(ctx, answer_status(session, ctx)) {
                return Ok(Some(result.map_or(wait, |d| d.max(wait))));
            }
        }
        Ok(result)
    }

    fn response_body_filter(
        &self,
        session: &mut Session,
        _body: &mut Option<Bytes>,
        end_of_stream: bool,
        ctx: &mut Ctx,
    ) -> Result<Option<Duration>> {
        if end_of_stream {
            ctx.watch.finish();
            // The last chunk acknowledges the request: its audit record
            // must be on disk first.
            self.seal_audit_blocking(ctx, answer_status(session, ctx));
        }
        Ok(None)
    }

    async fn fail_to_proxy(&self, session: &mut Session, e: &Error, ctx: &mut Ctx) -> FailToProxy
    where
        Ctx: Send + Sync,
    {
        self.on_proxy_failure(session, e, ctx).await
    }

    async fn connected_to_upstream(
        &self,
        _session: &mut Session,
        _reused: bool,
        _peer: &HttpPeer,
        fd: std::os::unix::io::RawFd,
        _digest: Option<&pingora::protocols::Digest>,
        ctx: &mut Ctx,
    ) -> Result<()> {
        ctx.watch.attach(fd);
        Ok(())
    }

    /// pingora's own log lines: method and path only. The query string may
    /// hold an API key (Gemini clients send `?key=`).
    fn request_summary(&self, session: &Session, _ctx: &Ctx) -> String {
        let req = session.req_header();
        format!("{} {}", req.method, req.uri.path())
    }

    async fn logging(&self, session: &mut Session, e: Option<&Error>, ctx: &mut Ctx) {
        ctx.watch.finish();
        self.log_request(session, e, ctx).await
    }
}

impl Gateway {
    /// The stream rewriter is done: its report joins the request's (for
    /// audit, metrics and the session).
    fn close_stream(&self, ctx: &mut Ctx) {
        let Some(rw) = ctx.stream.take() else {
            return;
        };
        let metrics = &self.app.metrics;
        metrics
            .stream_events
            .with_label_values(&[ctx.dialect.as_str()])
            .inc_by(rw.events());
        metrics
            .inspect_latency
            .with_label_values(&["stream"])
            .observe(rw.busy().as_secs_f64());
        let report = rw.report();
        if let Some(g) = &ctx.gate {
            g.commit(&report);
        }
        if let Some(tr) = &ctx.trace {
            let start = std::time::SystemTime::now() - rw.busy();
            tr.response_inspected(
                start,
                report.decision.as_str(),
                &rule_ids(std::slice::from_ref(&report)),
            );
        }
        ctx.reports.push(report);
    }

    async fn on_proxy_failure(
        &self,
        session: &mut Session,
        e: &Error,
        ctx: &mut Ctx,
    ) -> FailToProxy {
        let mut message = String::new();
        let (status, body, reason) = if let Some(d) = ctx.denial.take() {
            (d.status, d.body, d.reason)
        } else {
            let (kind, msg) = classify_error(e, ctx);
            message = msg.clone();
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
        } else if !client_gone {
            // The answer had begun: it ends with an error in the API's form.
            self.end_answer_with_error(session, ctx, &message).await;
        }
        FailToProxy {
            error_code: if client_gone { 0 } else { status },
            can_reuse_downstream: false,
        }
    }

    async fn log_request(&self, session: &mut Session, e: Option<&Error>, ctx: &mut Ctx) {
        let app = &self.app;
        // A stream that did not end (client gone, upstream failed).
        self.close_stream(ctx);
        self.ws_close(ctx);
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
        // Normally sealed before the answer went out; here only for
        // requests that never reached an answer (client gone, no body…).
        if !ctx.audited {
            let status = ctx
                .answered
                .or_else(|| session.response_written().map(|r| r.status.as_u16()))
                .or(ctx.upstream_status);
            let event = self.audit_event(ctx, status);
            if let Err(err) = app.store.append_audit(&event) {
                tracing::error!(error = %err, "audit write failed");
            }
        }
        if let Some(e) = e {
            tracing::debug!(request_id = %ctx.id, error = %e, "request ended with error");
        }
        if let Some(tr) = ctx.trace.take() {
            tr.routed(&route, dialect, &ctx.path);
            let status = ctx
                .answered
                .or_else(|| session.response_written().map(|r| r.status.as_u16()))
                .or(ctx.upstream_status);
            tr.end(
                status,
                decision.as_str(),
                &rule_ids(&ctx.reports),
                e.map(|e| e.etype().as_str().to_string()),
            );
        }
    }
}

/// The rule ids of the findings in these reports, each once.
fn rule_ids(reports: &[StageReport]) -> Vec<String> {
    let mut ids: Vec<String> = Vec::new();
    for f in reports.iter().flat_map(|r| r.findings.iter()) {
        if !ids.contains(&f.rule_id) {
            ids.push(f.rule_id.clone());
        }
    }
    ids
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
    let upstream = match &ctx.forward {
        Some(t) => t.authority(),
        None => ctx
            .route
            .as_ref()
            .map(|r| format!("{}:{}", r.upstream.host, r.upstream.port))
            .unwrap_or_default(),
    };
    if let Some(expired) = ctx.watch.fired() {
        let why = expired.describe(ctx.watch.limits());
        return (ErrorKind::Timeout, format!("upstream {upstream} {why}"));
    }
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
        ReadTimedout | WriteTimedout => {
            (ErrorKind::Timeout, format!("upstream {upstream} timed out"))
        }
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
