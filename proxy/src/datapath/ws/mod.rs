//! Inspecting the OpenAI Responses WebSocket transport (`GET /v1/responses`
//! with `Upgrade: websocket`, Codex CLI's first choice).
//!
//! pingora relays an upgraded connection's bytes through the same body
//! filters as a body: client bytes through `request_body_filter` (async),
//! server bytes through `response_body_filter`. A [`WsConn`] sits in both:
//! it reads frames (fragmented messages are put together, control frames
//! pass at once), and
//! * judges each client message like a `POST /v1/responses` body: a
//!   `response.create` opens a *turn* with its own request id and session
//!   gate; a refused one is answered with the API's WebSocket `error` event
//!   (which Codex shows like an HTTP error) and never reaches the upstream;
//!   a masked one goes on as one re-masked text frame;
//! * rewrites the server's events with the same stream rewriter as the SSE
//!   transport (secrets masked across events, tool calls judged when
//!   complete, refusals as assistant messages), one event per text frame;
//! * writes one audit record per turn, when the turn's response ends.
//!
//! Anything it cannot read is refused, never relayed: binary messages,
//! frames with extension bits (the `permessage-deflate` offer is removed
//! from the upgrade request, so none may appear), protocol errors, and
//! client message types it does not know. The connection is then closed
//! on both sides with a close frame saying why.

pub mod frame;

use crate::app::App;
use crate::datapath::dialect::Dialect;
use crate::datapath::enforce::{inspect_request_with, Inspection, RequestAction, StageReport};
use crate::datapath::identity::Identity;
use crate::datapath::session_gate::SessionGate;
use crate::datapath::stream::StreamRewriter;
use crate::decision::{Decision, Policy};
use crate::state::{AuditEvent, AuditFinding};
use bytes::{Bytes, BytesMut};
use frame::{Assembler, FrameReader, RawFrame, WsError};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tungstenite::protocol::frame::coding::{Control, OpCode};

/// Client message types without prompt content, relayed after checking
/// that they carry nothing but ids.
const ID_ONLY_TYPES: &[&str] = &["response.processed", "response.cancel"];
const ID_KEYS: &[&str] = &["type", "response_id", "id", "event_id", "item_id"];

/// What one client read produced.
#[derive(Default)]
pub struct ClientOut {
    /// Bytes for the upstream.
    pub upstream: BytesMut,
    /// Bytes the gateway answers the client with itself (refusals, close).
    pub client: BytesMut,
    /// A refusal is in `client`: its audit record must be durable first.
    pub refused: bool,
}

/// One `response.create` and the response it produced.
struct Turn {
    id: String,
    started: Instant,
    gate: Option<Arc<SessionGate>>,
    reports: Vec<StageReport>,
    rw: StreamRewriter,
    status: Option<u16>,
}

pub struct WsConn {
    app: Arc<App>,
    policy: Arc<Policy>,
    route: String,
    path: String,
    conn_id: String,
    identity: Identity,
    permit: Option<String>,
    client: FrameReader,
    client_msg: Assembler,
    server: FrameReader,
    server_msg: Assembler,
    turns: u64,
    turn: Option<Turn>,
    /// Turns whose audit record was written.
    sealed: u64,
    /// The connection was failed (close frames sent); drop everything.
    closed: bool,
    /// CPU time in the inspector and frames read, for the cost figure.
    busy: Duration,
    frames: u64,
}

impl WsConn {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        app: Arc<App>,
        policy: Arc<Policy>,
        route: &str,
        path: &str,
        conn_id: &str,
        identity: Identity,
        permit: Option<String>,
    ) -> WsConn {
        let max = policy.file.proxy.max_body_bytes;
        WsConn {
            app,
            policy,
            route: route.to_string(),
            path: path.to_string(),
            conn_id: conn_id.to_string(),
            identity,
            permit,
            client: FrameReader::new(true, max),
            client_msg: Assembler::default(),
            server: FrameReader::new(false, max),
            server_msg: Assembler::default(),
            turns: 0,
            turn: None,
            sealed: 0,
            closed: false,
            busy: Duration::ZERO,
            frames: 0,
        }
    }

    /// Turns inspected so far.
    pub fn turns(&self) -> u64 {
        self.turns
    }

    /// (frames read, CPU time spent on them).
    pub fn cost(&self) -> (u64, Duration) {
        (self.frames, self.busy)
    }

    /// The connection was closed by the gateway: bytes are dropped unread.
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// No inspection slot for client bytes: they cannot be inspected, and
    /// dropping them would break the framing, so the connection is closed
    /// on both sides (1013, try again later) and nothing goes on.
    pub fn refuse_busy(&mut self) -> ClientOut {
        let mut out = ClientOut::default();
        let e = WsError {
            code: WsError::TRY_AGAIN,
            reason: "the gateway is at its inspection capacity; reconnect later",
        };
        self.fail(&e, &mut out.upstream, &mut out.client);
        out.refused = true;
        out
    }

    /// Bytes from the client.
    pub fn client_bytes(&mut self, chunk: &[u8]) -> ClientOut {
        let started = Instant::now();
        let mut out = ClientOut::default();
        if !self.closed {
            let mut frames = Vec::new();
            let res = self.client.push(chunk, |f| {
                frames.push(f);
                Ok(())
            });
            for f in frames {
                if let Err(e) = self.client_frame(f, &mut out) {
                    self.fail(&e, &mut out.upstream, &mut out.client);
                    break;
                }
            }
            if let Err(e) = res {
                self.fail(&e, &mut out.upstream, &mut out.client);
            }
        }
        self.busy += started.elapsed();
        out
    }

    fn client_frame(&mut self, f: RawFrame, out: &mut ClientOut) -> Result<(), WsError> {
        self.frames += 1;
        if f.is_control() {
            out.upstream.extend_from_slice(&f.raw);
            return Ok(());
        }
        let max = self.policy.file.proxy.max_body_bytes;
        let Some(msg) = self.client_msg.push(f, max)? else {
            return Ok(());
        };
        if !msg.text {
            return Err(WsError {
                code: WsError::UNSUPPORTED,
                reason: "binary messages cannot be inspected",
            });
        }
        // Strictly: a repeated `type` must not pick the kind one way here
        // and another upstream (unreadable messages are judged below).
        let kind = crate::datapath::strict_json::from_slice(&msg.payload)
            .ok()
            .and_then(|v| v["type"].as_str().map(str::to_string));
        match kind.as_deref() {
            Some(t) if ID_ONLY_TYPES.contains(&t) => {
                let v: Value = serde_json::from_slice(&msg.payload).unwrap_or(Value::Null);
                if !ids_only(&v) {
                    return Err(WsError {
                        code: WsError::POLICY,
                        reason: "an id-only message carried other fields",
                    });
                }
                msg.raws
                    .iter()
                    .for_each(|r| out.upstream.extend_from_slice(r));
                return Ok(());
            }
            Some("response.create") => self.open_turn(),
            Some("response.append") => {
                if self.turn.is_none() {
                    self.open_turn();
                }
            }
            // Malformed JSON is judged below, as the profile says.
            None => self.open_turn(),
            Some(_) => {
                return Err(WsError {
                    code: WsError::POLICY,
                    reason: "a client message type the gateway cannot inspect",
                })
            }
        }
        let Some(turn) = self.turn.as_mut() else {
            return Ok(());
        };
        let ins = Inspection {
            policy: &self.policy,
            masker: &self.app.masker,
            dialect: Dialect::OpenaiResponses,
            request_id: &turn.id,
            tool_name: "",
            rpc_id: serde_json::Value::Null,
            memo_scope: crate::decision::Subject::scope_of(&self.identity.agent_id),
            kept: None,
        };
        let gate = turn.gate.clone();
        let (action, report) = match &gate {
            Some(g) => inspect_request_with(&ins, &msg.payload, g.as_ref()),
            None => inspect_request_with(&ins, &msg.payload, &crate::datapath::hooks::NoSession),
        };
        if let Some(g) = &gate {
            g.commit(&report);
        }
        turn.rw
            .set_kept(self.policy.redactor.with_kept(&report.kept.0).map(Arc::new));
        turn.reports.push(report);
        match action {
            RequestAction::Forward(None) => {
                msg.raws
                    .iter()
                    .for_each(|r| out.upstream.extend_from_slice(r));
            }
            RequestAction::Forward(Some(body)) => frame::text(&mut out.upstream, &body, true),
            RequestAction::Deny { status, body, .. } => {
                let event =
                    json!({"type": "error", "status": status, "error": body["error"].clone()});
                frame::text(&mut out.client, event.to_string().as_bytes(), false);
                turn.status = Some(status);
                out.refused = true;
                self.seal_turn();
            }
        }
        Ok(())
    }

    /// A new `response.create`: the previous turn (if its response never
    /// ended) is sealed first.
    fn open_turn(&mut self) {
        self.seal_turn();
        self.turns += 1;
        let id = format!("{}-{}", self.conn_id, self.turns);
        let gate = self.policy.file.session.enabled.then(|| {
            Arc::new(SessionGate::new(
                self.app.clone(),
                self.policy.clone(),
                Dialect::OpenaiResponses,
                &self.route,
                &id,
                self.identity.clone(),
                self.permit.clone(),
            ))
        });
        self.turn = Some(self.new_turn(id, gate));
    }

    fn new_turn(&self, id: String, gate: Option<Arc<SessionGate>>) -> Turn {
        let hooks: Arc<dyn crate::datapath::hooks::SessionHooks> = match &gate {
            Some(g) => g.clone(),
            None => Arc::new(crate::datapath::hooks::NoSession),
        };
        let rw = StreamRewriter::new(
            Dialect::OpenaiResponses,
            self.policy.clone(),
            self.app.masker.clone(),
            &id,
            hooks,
        )
        .expect("the Responses dialect streams");
        Turn {
            id,
            started: Instant::now(),
            gate,
            reports: Vec::new(),
            rw,
            status: None,
        }
    }

    /// Bytes from the upstream; bytes for the client out.
    pub fn server_bytes(&mut self, chunk: &[u8]) -> Bytes {
        let started = Instant::now();
        let mut out = BytesMut::new();
        if !self.closed {
            let mut frames = Vec::new();
            let res = self.server.push(chunk, |f| {
                frames.push(f);
                Ok(())
            });
            let mut upstream = BytesMut::new();
            for f in frames {
                if let Err(e) = self.server_frame(f, &mut out) {
                    self.fail(&e, &mut upstream, &mut out);
                    break;
                }
            }
            if let Err(e) = res {
                self.fail(&e, &mut upstream, &mut out);
            }
            // The upstream hears about a failure when its connection is
            // dropped (nothing more is relayed to it).
        }
        self.busy += started.elapsed();
        out.freeze()
    }

    fn server_frame(&mut self, f: RawFrame, out: &mut BytesMut) -> Result<(), WsError> {
        self.frames += 1;
        if f.is_control() {
            out.extend_from_slice(&f.raw);
            if f.header.opcode == OpCode::Control(Control::Close) {
                self.seal_turn();
            }
            return Ok(());
        }
        let max = self.policy.file.proxy.max_body_bytes;
        let Some(msg) = self.server_msg.push(f, max)? else {
            return Ok(());
        };
        if !msg.text {
            return Err(WsError {
                code: WsError::UNSUPPORTED,
                reason: "binary messages cannot be inspected",
            });
        }
        // Strictly: a repeated `type` must not pick the kind one way here
        // and another upstream (unreadable messages are judged below).
        let kind = crate::datapath::strict_json::from_slice(&msg.payload)
            .ok()
            .and_then(|v| v["type"].as_str().map(str::to_string));
        if self.turn.is_none() {
            // Server events outside a turn (announcements) are rewritten
            // all the same, in a turn of their own.
            self.turns += 1;
            let id = format!("{}-{}", self.conn_id, self.turns);
            self.turn = Some(self.new_turn(id, None));
        }
        let Some(turn) = self.turn.as_mut() else {
            return Ok(());
        };
        for m in turn.rw.push_message(kind.as_deref(), &msg.payload) {
            frame::text(out, &m, false);
        }
        if matches!(
            kind.as_deref(),
            Some("response.completed" | "response.failed" | "response.incomplete" | "error")
        ) {
            for m in turn.rw.finish_messages() {
                frame::text(out, &m, false);
            }
            turn.status.get_or_insert(200);
            self.seal_turn();
        }
        Ok(())
    }

    /// Close both sides, saying why; nothing more is relayed.
    fn fail(&mut self, e: &WsError, upstream: &mut BytesMut, client: &mut BytesMut) {
        if self.closed {
            return;
        }
        self.closed = true;
        tracing::warn!(connection = %self.conn_id, code = e.code, reason = e.reason, "WebSocket refused");
        frame::close(client, e.code, e.reason, false);
        frame::close(upstream, e.code, e.reason, true);
        if let Some(t) = self.turn.as_mut() {
            let mut r =
                StageReport::refused(&format!("WebSocket closed by the gateway: {}", e.reason));
            r.stage = crate::datapath::enforce::Stage::Response;
            t.reports.push(r);
        }
        self.seal_turn();
    }

    /// The connection ended: seal what is open.
    pub fn finish(&mut self) {
        self.seal_turn();
    }

    /// Write the open turn's audit record and count it.
    fn seal_turn(&mut self) {
        let Some(mut turn) = self.turn.take() else {
            return;
        };
        let mut report = turn.rw.report();
        if report.decision != Decision::Allow
            || !report.tools.is_empty()
            || !report.reasons.is_empty()
        {
            report.stage = crate::datapath::enforce::Stage::Response;
            if let Some(g) = &turn.gate {
                g.commit(&report);
            }
            turn.reports.push(report);
        }
        let metrics = &self.app.metrics;
        metrics
            .stream_events
            .with_label_values(&[Dialect::OpenaiResponses.as_str()])
            .inc_by(turn.rw.events());
        let decision = turn
            .reports
            .iter()
            .map(|r| r.decision)
            .max()
            .unwrap_or(Decision::Allow);
        metrics
            .requests
            .with_label_values(&[
                self.route.as_str(),
                Dialect::OpenaiResponses.as_str(),
                decision.as_str(),
            ])
            .inc();
        for r in &turn.reports {
            metrics.record_stage(Dialect::OpenaiResponses.as_str(), r);
        }
        let event = self.audit_event(&turn, decision);
        if let Err(e) = self.app.store.append_audit(&event) {
            tracing::error!(error = %e, "audit write failed");
        }
        self.sealed += 1;
    }

    fn audit_event(&self, turn: &Turn, decision: Decision) -> AuditEvent {
        let (identity, approvals) = match &turn.gate {
            Some(g) => (g.identity(), g.approvals()),
            None => (self.identity.clone(), Vec::new()),
        };
        let stage = turn
            .reports
            .iter()
            .map(|r| r.stage.as_str())
            .collect::<Vec<_>>()
            .join("+");
        AuditEvent {
            seq: 0,
            time: crate::util::now_rfc3339(),
            request_id: turn.id.clone(),
            session_id: identity.session_id,
            agent_id: identity.agent_id,
            route: self.route.clone(),
            dialect: Dialect::OpenaiResponses.as_str().to_string(),
            stage: if stage.is_empty() {
                "response".into()
            } else {
                stage
            },
            decision: decision.as_str().to_string(),
            total_score: turn.reports.iter().map(|r| r.score).fold(0.0, f64::max),
            reasons: crate::datapath::enforce::record_reasons(&turn.reports),
            findings: turn
                .reports
                .iter()
                .flat_map(|r| r.findings.iter())
                .map(AuditFinding::from)
                .collect(),
            tools: turn
                .reports
                .iter()
                .flat_map(|r| r.tools.iter())
                .map(|t| format!("{}: {}", t.name, t.decision))
                .collect(),
            masked: turn.reports.iter().map(|r| r.masks.len()).sum(),
            policy_version: self.policy.version.clone(),
            latency_ms: turn.started.elapsed().as_secs_f64() * 1000.0,
            status: turn.status,
            path: Some(format!("{} (websocket)", self.path)),
            turn_id: format!(
                "ws:{}:{}",
                self.conn_id,
                turn.id.rsplit('-').next().unwrap_or("")
            ),
            approvals,
        }
    }

    /// The record of the connection itself (its turns are audited apart).
    pub fn summary(&self) -> StageReport {
        let mut r = StageReport::new(crate::datapath::enforce::Stage::Request);
        r.reasons.push(format!(
            "Responses WebSocket: {} turn(s) inspected and audited as {}-1…{}",
            self.turns, self.conn_id, self.turns
        ));
        if self.closed {
            r.decision = Decision::Block;
            r.reasons
                .push("the gateway closed the connection (see the turn records)".into());
        }
        r
    }
}

/// Every field of an id-only message is an id.
fn ids_only(v: &Value) -> bool {
    v.as_object().is_some_and(|o| {
        o.iter().all(|(k, x)| {
            ID_KEYS.contains(&k.as_str()) && (x.is_string() || x.is_number() || x.is_null())
        })
    })
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
