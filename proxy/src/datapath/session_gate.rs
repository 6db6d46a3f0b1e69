//! The session layer on live traffic: one [`SessionGate`] per proxied
//! request implements [`SessionHooks`] over the store.
//!
//! It resolves the caller's identity (headers, then body), loads the
//! session and agent scopes at the start of each stage, adds session-risk
//! findings, runs the approval gate for calls that need a human, and
//! records what the stage did ([`SessionGate::commit`]). Store failures
//! fail closed: session findings become a critical finding and approvals
//! are unavailable, so the call is refused.

use super::dialect::Dialect;
use super::enforce::StageReport;
use super::hooks::{CallRecord, SessionHooks, Settled};
use super::identity::Identity;
use crate::app::App;
use crate::decision::approvals::{
    display_target, finding_notes, fingerprint, Approval, ApprovalStatus, Binding, Origin, Release,
};
use crate::decision::session::{self, Outcome, Record, Scopes, Staged};
use crate::decision::subject::ToolCall;
use crate::decision::types::{DetectorId, Severity};
use crate::decision::{Assessment, Decision, Finding, Policy};
use crate::state::approvals::{Gate, Opened};
use crate::state::now_ms;
use crate::state::sessions::Scoped;
use serde_json::Value;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

#[derive(Default)]
struct Stage {
    prose: f64,
    calls: Vec<CallRecord>,
}

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
    scoped: Mutex<Option<Scoped>>,
    stage: Mutex<Stage>,
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
            stage: Mutex::new(Stage::default()),
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
        let stage = std::mem::take(&mut *lock(&self.stage));
        // Release the snapshots (the next stage reloads), so recording
        // updates the records in place instead of copying them.
        lock(&self.scoped).take();
        let request_stage = report.stage == super::enforce::Stage::Request;
        if !self.session_on() || (!request_stage && stage.calls.is_empty()) {
            return;
        }
        let mut rec = Record {
            decision: report.decision.as_str().to_string(),
            // A held call is judged again after the decision: count it once.
            new_request: request_stage && !self.counted.swap(true, Ordering::Relaxed),
            ..Record::default()
        };
        if !self.hold_release.load(Ordering::Relaxed) {
            rec.score += stage.prose;
        }
        let now = now_ms();
        for c in &stage.calls {
            match &c.settled {
                Some(Settled::Pending { approval_id, .. }) => rec.staged.push(Staged {
                    at_ms: now,
                    tool: c.name.clone(),
                    approval_id: approval_id.clone(),
                }),
                Some(Settled::Released { approval_id, .. }) => {
                    rec.released.push(approval_id.clone());
                    rec.steps
                        .push((c.name.clone(), c.tags.clone(), Outcome::Approved));
                    rec.score += c.base_score;
                }
                _ => {
                    let outcome = if c.decision == Decision::Block
                        || c.decision == Decision::RequireApproval
                    {
                        Outcome::Blocked
                    } else {
                        Outcome::Executed
                    };
                    if outcome == Outcome::Blocked {
                        for cause in &c.causes {
                            if !rec.causes.contains(cause) {
                                rec.causes.push(cause.clone());
                            }
                        }
                    }
                    rec.steps.push((c.name.clone(), c.tags.clone(), outcome));
                    rec.score += c.base_score;
                }
            }
        }
        let id = self.identity();
        let cfg = &self.policy.file.session;
        if let Err(e) = self.app.store.scopes_record(
            cfg,
            &id.session_id,
            id.risk_agent(cfg),
            &id.agent_id,
            &rec,
            &[],
            now,
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

    fn approval_template(&self, call: &ToolCall, a: &Assessment, id: &Identity) -> Approval {
        let now = now_ms();
        let cfg = &self.policy.file.approvals;
        let binding = Binding {
            session_id: &id.session_id,
            agent_id: &id.agent_id,
            tool: &call.name,
            arguments: Some(&call.arguments),
            ..Binding::default()
        };
        Approval {
            approval_id: String::new(),
            status: ApprovalStatus::Pending,
            session_id: id.session_id.clone(),
            turn_id: String::new(),
            agent_id: id.agent_id.clone(),
            action_type: call.name.to_lowercase(),
            action_target: display_target(&self.policy.redactor, &self.app.masker, &call.target()),
            fingerprint: fingerprint(&self.app.binding_key(), &binding),
            origin: Origin::Proxy,
            route: self.route.clone(),
            dialect: self.dialect.as_str().to_string(),
            request_id: self.request_id.clone(),
            decision: Decision::RequireApproval.as_str().to_string(),
            score: a.evaluation.total_score,
            reasons: a.reasons().to_vec(),
            findings: finding_notes(&a.findings),
            hold: self.holds(),
            created_ms: now,
            expires_ms: now + (cfg.pending_ttl_secs as i64) * 1000,
            resolved_ms: None,
            resolver: String::new(),
            resolver_credential: String::new(),
            note: String::new(),
            permit_sha256: None,
            permit_expires_ms: None,
            used_ms: None,
            used_by: None,
        }
    }

    fn waiting_note(&self, rejected: Option<&str>) -> String {
        let cfg = &self.policy.file.approvals;
        let mut note = match (self.holds(), cfg.release) {
            (true, _) => String::new(),
            (false, Release::NextCall) => {
                ". Once an operator approves it, the identical call is let through once".to_string()
            }
            (false, Release::Permit) => format!(
                ". Once an operator approves it, repeat the call with the permit in the {} header",
                cfg.permit_header
            ),
        };
        if let Some(r) = rejected {
            note.push_str(". ");
            note.push_str(r.trim_end_matches('.'));
        }
        note
    }

    fn count(&self, settled: &Settled) {
        let event = match settled {
            Settled::Released { .. } => "released",
            _ => return,
        };
        self.app.metrics.approvals.with_label_values(&[event]).inc();
    }

    fn touch(&self, id: &str) {
        let mut t = lock(&self.touched);
        if !t.iter().any(|x| x == id) {
            t.push(id.to_string());
        }
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

    fn history(&self) -> Vec<Vec<String>> {
        let scoped = lock(&self.scoped);
        let Some(sc) = scoped.as_ref() else {
            return Vec::new();
        };
        let id = lock(&self.identity);
        let scopes = Scopes {
            session: sc.session.as_deref(),
            agent: sc.agent.as_deref(),
            agent_id: &id.agent_id,
        };
        session::history(&self.policy.file.session, &scopes, now_ms())
    }

    fn findings(&self, tags: &[Vec<String>], base_score: f64) -> Vec<Finding> {
        if !self.session_on() {
            return Vec::new();
        }
        let scoped = lock(&self.scoped);
        let Some(sc) = scoped.as_ref() else {
            // The store could not be read: fail closed.
            return vec![Finding::new(
                "session.state_unavailable",
                DetectorId::SessionRisk,
                "unsafe_action_chain",
                Severity::Critical,
                1.0,
                "Session state is unavailable; refusing rather than judging without it.",
            )];
        };
        // Earlier calls of this same request count too.
        let stage = lock(&self.stage);
        let mut all_tags: Vec<Vec<String>> = stage.calls.iter().map(|c| c.tags.clone()).collect();
        all_tags.extend(tags.iter().cloned());
        let earlier: f64 = stage.calls.iter().map(|c| c.base_score).sum();
        let id = lock(&self.identity);
        let scopes = Scopes {
            session: sc.session.as_deref(),
            agent: sc.agent.as_deref(),
            agent_id: &id.agent_id,
        };
        session::findings(
            &self.policy.file.session,
            &scopes,
            &all_tags,
            earlier + base_score,
            now_ms(),
        )
    }

    fn settle(&self, call: &ToolCall, assessment: &Assessment) -> Settled {
        let cfg = &self.policy.file.approvals;
        if !cfg.enabled {
            return Settled::Unavailable;
        }
        let id = self.identity();
        let template = self.approval_template(call, assessment, &id);
        let release = if self.hold_release.load(Ordering::Relaxed) {
            Release::NextCall
        } else {
            cfg.release
        };
        let gate = self.app.store.approval_gate(
            release,
            &template,
            self.permit.as_deref(),
            template.created_ms,
        );
        let settled = match gate {
            Err(e @ crate::state::StoreError::PendingCap { .. }) => {
                self.app
                    .metrics
                    .approvals
                    .with_label_values(&["refused_cap"])
                    .inc();
                return Settled::Refused {
                    reason: format!(
                        "Human approval required, but no approval could be opened: {e}."
                    ),
                };
            }
            Err(e) => {
                tracing::error!(error = %e, "approval state unavailable; refusing the call");
                return Settled::Unavailable;
            }
            Ok(Gate::Released {
                approval,
                by_permit,
            }) => Settled::Released {
                approval_id: approval.approval_id,
                how: if by_permit {
                    "permit".to_string()
                } else if self.hold_release.load(Ordering::Relaxed) {
                    "held call approved".to_string()
                } else {
                    "approved identical call".to_string()
                },
            },
            Ok(Gate::Waiting { opened, rejected }) => {
                if rejected.is_some() {
                    self.app
                        .metrics
                        .approvals
                        .with_label_values(&["refused_permit"])
                        .inc();
                }
                let rejected = rejected.map(|e| e.message());
                match opened {
                    Opened::Denied(a) => Settled::Denied {
                        approval_id: a.approval_id,
                    },
                    Opened::Approved(a) => Settled::Pending {
                        approval_id: a.approval_id,
                        note: format!(
                            ". It is approved: repeat the call with its permit in the {} header",
                            cfg.permit_header
                        ),
                    },
                    Opened::Created(a) => {
                        self.app
                            .metrics
                            .approvals
                            .with_label_values(&["opened"])
                            .inc();
                        Settled::Pending {
                            approval_id: a.approval_id,
                            note: self.waiting_note(rejected),
                        }
                    }
                    Opened::Pending(a) => Settled::Pending {
                        approval_id: a.approval_id,
                        note: self.waiting_note(rejected),
                    },
                }
            }
        };
        if let Some(id) = settled.approval_id() {
            self.touch(id);
        }
        self.count(&settled);
        settled
    }

    fn prose_judged(&self, base_score: f64, _decision: Decision) {
        lock(&self.stage).prose += base_score;
    }

    fn call_judged(&self, call: &CallRecord) {
        lock(&self.stage).calls.push(call.clone());
    }
}
