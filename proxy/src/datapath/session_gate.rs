//! The session layer on live traffic: one [`SessionGate`] per proxied
//! request implements [`SessionHooks`] over the store.
//!
//! It resolves the caller's identity (headers, then body), loads the
//! session and agent scopes at the start of each stage, runs the decision
//! pipeline in them, runs the approval gate steps the pipeline asks for
//! against the store, and records what the stage did
//! ([`SessionGate::commit`]). It decides nothing itself: a store that
//! cannot be read is handed to the pipeline as unavailable state (which
//! refuses), a gate step the store cannot run as an unavailable gate.

use super::dialect::Dialect;
use super::enforce::StageReport;
use super::hooks::{Judge, SessionHooks};
use super::identity::{Identity, Source};
use crate::app::App;
use crate::decision::pipeline::{
    self, merge_records, Channel, Gated, Inputs, Outcome, StateView, Who,
};
use crate::decision::session::Record;
use crate::decision::Policy;
use crate::state::now_ms;
use crate::state::sessions::Scoped;
use serde_json::Value;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

pub struct SessionGate {
    app: Arc<App>,
    policy: Arc<Policy>,
    dialect: Dialect,
    route: String,
    request_id: String,
    /// A permit presented in the request header.
    permit: Option<String>,
    identity: Mutex<Identity>,
    completed: AtomicBool,
    /// The stage's scopes; `None` when the store could not be read.
    scoped: Mutex<Option<Scoped>>,
    /// What the stage adds to its scopes so far.
    stage: Mutex<Option<Record>>,
    /// A held call was approved: release it whatever the release mode.
    hold_release: AtomicBool,
    /// The request was counted in its session and agent.
    counted: AtomicBool,
    /// Approvals opened, found or spent during this request.
    touched: Mutex<Vec<String>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl SessionGate {
    pub fn new(
        app: Arc<App>,
        policy: Arc<Policy>,
        dialect: Dialect,
        route: &str,
        request_id: &str,
        identity: Identity,
        permit: Option<String>,
    ) -> SessionGate {
        SessionGate {
            app,
            policy,
            dialect,
            route: route.to_string(),
            request_id: request_id.to_string(),
            permit,
            identity: Mutex::new(identity),
            completed: AtomicBool::new(false),
            scoped: Mutex::new(None),
            stage: Mutex::new(None),
            hold_release: AtomicBool::new(false),
            counted: AtomicBool::new(false),
            touched: Mutex::new(Vec::new()),
        }
    }

    pub fn identity(&self) -> Identity {
        lock(&self.identity).clone()
    }

    /// Approvals this request opened, found or spent (for audit).
    pub fn approvals(&self) -> Vec<String> {
        lock(&self.touched).clone()
    }

    /// A held tool call was approved: the re-inspection must release it
    /// even in `permit` mode (the held request *is* the approved call).
    pub fn release_held(&self) {
        self.hold_release.store(true, Ordering::Relaxed);
    }

    /// Whether calls that need approval on this route are held open.
    pub fn holds(&self) -> bool {
        self.policy.file.approvals.enabled
            && self.policy.file.approvals.hold_secs > 0
            && matches!(self.dialect, Dialect::Mcp | Dialect::HttpTool)
    }

    fn session_on(&self) -> bool {
        self.policy.file.session.enabled
    }

    /// Remember what the stage did in the session and agent scopes. The
    /// request stage counts the request; a response stage is recorded only
    /// when it judged tool calls.
    pub fn commit(&self, report: &StageReport) {
        let stage = lock(&self.stage).take();
        // Release the snapshots (the next stage reloads), so recording
        // updates the records in place instead of copying them.
        lock(&self.scoped).take();
        let request_stage = report.stage == super::enforce::Stage::Request;
        let mut rec = stage.unwrap_or_default();
        let judged_calls = !(rec.steps.is_empty() && rec.staged.is_empty());
        if !self.session_on() || (!request_stage && !judged_calls) {
            return;
        }
        rec.decision = report.decision.as_str().to_string();
        // A held call is judged again after the decision: count it once.
        rec.new_request = request_stage && !self.counted.swap(true, Ordering::Relaxed);
        let id = self.identity();
        rec.session_derived = id.session_source == Source::Derived;
        let cfg = &self.policy.file.session;
        if let Err(e) = self.app.store.scopes_record(
            cfg,
            &id.session_id,
            id.risk_agent(cfg),
            &id.agent_id,
            &rec,
            &[],
            now_ms(),
        ) {
            tracing::error!(error = %e, request_id = %self.request_id, "session state write failed");
        }
    }

    fn load_scopes(&self) {
        let id = self.identity();
        let cfg = &self.policy.file.session;
        let loaded = if self.session_on() {
            self.app
                .store
                .scopes_load(cfg, &id.session_id, id.risk_agent(cfg))
                .map_err(|e| {
                    tracing::error!(error = %e, "session state read failed");
                })
                .ok()
        } else {
            Some(Scoped::default())
        };
        *lock(&self.scoped) = loaded;
    }

    /// One gate step on the store; a failure refuses the call.
    fn gate(&self, step: &pipeline::GateStep) -> Gated {
        let g = self.app.store.gate_step(step).unwrap_or_else(|e| {
            tracing::error!(error = %e, "approval state unavailable; refusing the call");
            Gated::Unavailable
        });
        for event in pipeline::gate_events(&g) {
            self.app.metrics.approvals.with_label_values(&[event]).inc();
        }
        if let Some(id) = g.approval_id() {
            let mut t = lock(&self.touched);
            if !t.iter().any(|x| x == id) {
                t.push(id.to_string());
            }
        }
        g
    }
}

impl SessionHooks for SessionGate {
    fn begin(&self, body: &Value) {
        if !self.completed.swap(true, Ordering::Relaxed) {
            lock(&self.identity).complete(&self.policy.file.session, self.dialect, body);
        }
        // Reload per stage: the request stage changed the state.
        self.load_scopes();
    }

    fn judge(&self, j: &Judge<'_>) -> Outcome {
        let id = self.identity();
        let scoped = lock(&self.scoped).clone();
        let state = match (&scoped, self.session_on()) {
            (_, false) => StateView::Off,
            (None, true) => StateView::Unavailable,
            (Some(sc), true) => StateView::Loaded {
                session: sc.session.as_deref(),
                agent: sc.agent.as_deref(),
            },
        };
        let key = self.app.binding_key();
        let inp = Inputs {
            policy: j.policy,
            masker: j.masker,
            binding_key: &key,
            request_id: j.request_id,
            who: Who {
                session_id: &id.session_id,
                agent_id: &id.agent_id,
            },
            state,
            now_ms: now_ms(),
            permit: self.permit.as_deref(),
            held: self.hold_release.load(Ordering::Relaxed),
            earlier: j.earlier,
        };
        let mut obs = j.observed(&self.route, self.holds());
        obs.channel = Channel::Proxy {
            route: &self.route,
            dialect: self.dialect.as_str(),
            holds: self.holds(),
        };
        let out = pipeline::run(&inp, &obs, |steps| {
            steps.iter().map(|s| self.gate(s)).collect()
        });
        if let Some(part) = &out.record {
            let mut stage = lock(&self.stage);
            merge_records(stage.get_or_insert_with(Record::default), part.clone());
        }
        out
    }
}
