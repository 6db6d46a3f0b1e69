//! `POST /inspect/input` and `POST /inspect/tool-call`: the decision API.
//! Its request and response shapes are a stable contract existing clients
//! depend on, so fields are only ever added.
//!
//! Differences, all deliberate: findings also carry `rule_id`, `evidence`
//! (masked) and `location`; scores are rounded; `metadata.policy_version`
//! says which policy decided; request sizes are bounded.

use super::approvals::approval_view;
pub use super::http::{pending_cap, ApiError, Caller};
use crate::app::App;
use crate::decision::pipeline::{
    self, Channel, Gated, Inputs, Observed, Phase, Scoring, StateView, Who,
};
use crate::decision::session::{self, Record, Scopes, SessionConfig};
use crate::decision::subject::{Subject, Surface, ToolCall};
use crate::decision::types::round_score;
use crate::decision::{Assessment, DetectorId, Masking};
use crate::state::sessions::Scoped;
use crate::state::{now_ms, AuditEvent, AuditFinding};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::time::Instant;

/// Caps on the HTTP path, so one request cannot make inspection unbounded.
pub use super::http::MAX_TEXT_CHARS;
pub const MAX_ITEMS: usize = 256;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlannedAction {
    pub action_type: String,
    #[serde(default)]
    pub target: String,
    /// The call's own arguments (`/inspect/tool-call`'s `tool_arguments`):
    /// judged and bound as the proxy sees the same call.
    #[serde(skip)]
    pub arguments: Option<Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InspectInputRequest {
    #[serde(default)]
    pub user_input: String,
    #[serde(default)]
    pub model_output: String,
    #[serde(default)]
    pub planned_actions: Vec<PlannedAction>,
    #[serde(default)]
    pub memory_reads: Vec<String>,
    #[serde(default)]
    pub memory_writes: Vec<String>,
    #[serde(default)]
    pub session_id: String,
    #[serde(default)]
    pub turn_id: String,
    #[serde(default)]
    pub agent_id: String,
    #[serde(default)]
    pub metadata: Map<String, Value>,
    #[serde(default)]
    pub approval_token: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InspectToolCallRequest {
    pub tool_name: String,
    #[serde(default)]
    pub tool_target: String,
    /// The call's arguments as the tool receives them (an MCP call's
    /// `arguments`), so an approval raised here releases the identical
    /// proxied call. Optional; without it the call is its target.
    #[serde(default)]
    pub tool_arguments: Option<Value>,
    #[serde(default)]
    pub user_input: String,
    #[serde(default)]
    pub model_output: String,
    #[serde(default)]
    pub memory_reads: Vec<String>,
    #[serde(default)]
    pub memory_writes: Vec<String>,
    #[serde(default)]
    pub session_id: String,
    #[serde(default)]
    pub turn_id: String,
    #[serde(default)]
    pub agent_id: String,
    #[serde(default)]
    pub metadata: Map<String, Value>,
    #[serde(default)]
    pub approval_token: String,
}

impl From<InspectToolCallRequest> for InspectInputRequest {
    fn from(r: InspectToolCallRequest) -> Self {
        InspectInputRequest {
            user_input: r.user_input,
            model_output: r.model_output,
            planned_actions: vec![PlannedAction {
                action_type: r.tool_name,
                target: r.tool_target,
                arguments: r.tool_arguments,
            }],
            memory_reads: r.memory_reads,
            memory_writes: r.memory_writes,
            session_id: r.session_id,
            turn_id: r.turn_id,
            agent_id: r.agent_id,
            metadata: r.metadata,
            approval_token: r.approval_token,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct ApiFinding {
    pub category: String,
    pub severity: &'static str,
    pub score: f64,
    pub message: String,
    pub detector: &'static str,
    pub metadata: BTreeMap<String, String>,
    pub rule_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub evidence: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
}

/// Field order is part of the API's contract (clients compare answers).
#[derive(Debug, Serialize)]
pub struct InspectResponse {
    pub decision: &'static str,
    pub total_score: f64,
    pub reasons: Vec<String>,
    pub request_id: String,
    pub decided_at: String,
    pub metadata: Value,
    pub findings: Vec<ApiFinding>,
    pub session_id: String,
    pub turn_id: String,
    pub agent_id: String,
    pub approval: Option<Value>,
}

impl InspectInputRequest {
    /// Validate bounds and build the subject. Action types are trimmed and
    /// lower-cased, so `Exec_Shell ` and `exec_shell` are the same action.
    pub fn subject(&self) -> Result<Subject, ApiError> {
        let too_long = |field: &str| -> ApiError {
            (
                422,
                "validation_error",
                format!("{field} is too long"),
                json!({ "field": field, "max_chars": MAX_TEXT_CHARS }),
            )
        };
        if self.user_input.len() > MAX_TEXT_CHARS {
            return Err(too_long("user_input"));
        }
        if self.model_output.len() > MAX_TEXT_CHARS {
            return Err(too_long("model_output"));
        }
        for (name, len) in [
            ("planned_actions", self.planned_actions.len()),
            ("memory_reads", self.memory_reads.len()),
            ("memory_writes", self.memory_writes.len()),
        ] {
            if len > MAX_ITEMS {
                return Err((
                    422,
                    "validation_error",
                    format!("{name} has more than {MAX_ITEMS} items"),
                    json!({ "field": name }),
                ));
            }
        }
        let mut s = Subject::default();
        s.push_text(Surface::User, self.user_input.as_str());
        s.push_text(Surface::Assistant, self.model_output.as_str());
        for a in &self.planned_actions {
            let kind = a.action_type.trim().to_lowercase();
            if kind.is_empty() {
                return Err((
                    422,
                    "validation_error",
                    "action_type must not be empty".to_string(),
                    json!({ "field": "planned_actions.action_type" }),
                ));
            }
            let arguments = match &a.arguments {
                Some(v) if v.to_string().len() > MAX_TEXT_CHARS => {
                    return Err(too_long("tool_arguments"))
                }
                Some(v) => v.clone(),
                None => Value::String(a.target.trim().to_string()),
            };
            s.tool_calls.push(ToolCall::new(kind, arguments));
        }
        s.memory_reads = self
            .memory_reads
            .iter()
            .map(|m| m.trim().to_string())
            .filter(|m| !m.is_empty())
            .collect();
        s.memory_writes = self
            .memory_writes
            .iter()
            .map(|m| m.trim().to_string())
            .filter(|m| !m.is_empty())
            .collect();
        // What the agent read from memory came from outside the turn
        // (retrieved documents, earlier tool output): judged as data, the
        // way a tool result is. What it writes is its own output, judged
        // like the arguments of a tool call (a poisoned memory would
        // instruct every later turn).
        for m in self.memory_reads.iter() {
            s.push_text(Surface::ToolResult, m.trim());
        }
        for m in self.memory_writes.iter() {
            s.push_text(Surface::ToolArguments, m.trim());
        }
        if s.is_empty() {
            return Err((
                400,
                "invalid_request",
                "SecurityContext must contain at least one non-empty signal".to_string(),
                json!({}),
            ));
        }
        Ok(s)
    }
}

/// Decide (through the one pipeline), record session state, audit, and
/// shape the answer. Writes are made here; the caller must wait for
/// [`crate::state::Store::durable`] before answering.
pub fn inspect(
    app: &App,
    req: &InspectInputRequest,
    caller: &Caller,
) -> Result<InspectResponse, ApiError> {
    let started = Instant::now();
    let subject = req.subject()?;
    let policy = app.policy.current();
    let request_id = crate::util::new_request_uuid().to_string();
    let decided_at = crate::util::now_rfc3339();
    let now = now_ms();

    let session_id = clip(req.session_id.trim());
    // Without an agent id, an authenticated caller is known by its key, so
    // omitting the field does not shed the agent's risk.
    let agent_id = caller.agent_for(&req.agent_id)?;
    // Texts this agent sent before are not judged again (its own scope:
    // another caller learns nothing of them by timing).
    let mut subject = subject;
    subject.memo_scope = crate::decision::Subject::scope_of(&agent_id);
    let scfg = &policy.file.session;
    let stateful = scfg.enabled && !(session_id.is_empty() && agent_id.is_empty());
    let scoped = if stateful {
        app.store
            .scopes_load(scfg, &session_id, &agent_id)
            .map_err(store_error)?
    } else {
        Scoped::default()
    };
    let scopes = Scopes {
        session: scoped.session.as_deref(),
        agent: scoped.agent.as_deref(),
        agent_id: &agent_id,
    };
    let key = app.binding_key();
    let turn_id = clip(&req.turn_id);
    let inp = Inputs {
        policy: &policy,
        masker: &app.masker,
        binding_key: &key,
        request_id: &request_id,
        who: Who {
            session_id: &session_id,
            agent_id: &agent_id,
        },
        state: if stateful {
            StateView::Loaded {
                session: scopes.session,
                agent: scopes.agent,
            }
        } else {
            StateView::Off
        },
        now_ms: now,
        permit: Some(req.approval_token.as_str()).filter(|t| !t.trim().is_empty()),
        held: false,
        earlier: &[],
    };
    let obs = Observed {
        phase: Phase::Inspect,
        channel: Channel::DecisionApi {
            credential: &caller.credential,
            turn_id: &turn_id,
        },
        subject: &subject,
        scoring: Scoring::Whole,
        masking: Masking::None,
    };
    let draft = pipeline::decide(&inp, &obs);
    let mut gated = Vec::with_capacity(draft.gate.len());
    for step in &draft.gate {
        let g = app
            .store
            .approval_gate(
                step.release,
                &step.template,
                step.permit.as_deref(),
                step.template.created_ms,
            )
            .map_err(|e| {
                if matches!(e, crate::state::StoreError::PendingCap { .. }) {
                    app.metrics
                        .approvals
                        .with_label_values(&["refused_cap"])
                        .inc();
                }
                store_error(e)
            })?
            .into_gated();
        for event in pipeline::gate_events(&g) {
            app.metrics.approvals.with_label_values(&[event]).inc();
        }
        gated.push(g);
    }
    let out = pipeline::settle(&inp, &obs, draft, gated);
    let decision = out.decision;
    let assessment = &out.prose;

    let mut session_risk = None;
    if let Some(mut rec) = out.record.clone() {
        rec.decision = decision.as_str().to_string();
        rec.new_request = true;
        session_risk = Some(session_risk_view(scfg, &scopes, &rec, now));
        // Release the snapshots first, so recording updates the records in
        // place instead of copying them.
        drop(scoped);
        let memory: Vec<String> = subject
            .memory_reads
            .iter()
            .chain(&subject.memory_writes)
            .map(|m| mask_for_audit(app, &policy, m))
            .collect();
        app.store
            .scopes_record(scfg, &session_id, &agent_id, &agent_id, &rec, &memory, now)
            .map_err(store_error)?;
    }

    app.metrics
        .decisions
        .with_label_values(&["inspect", "inspect_api", decision.as_str()])
        .inc();
    for f in &assessment.findings {
        app.metrics
            .findings
            .with_label_values(&[f.detector.as_str(), f.family()])
            .inc();
    }
    app.metrics
        .inspect_latency
        .with_label_values(&["inspect_api"])
        .observe(started.elapsed().as_secs_f64());

    // Targets are masked before they are stored or echoed back: a secret
    // in a tool target must not reach audit or the API answer.
    let actions: Vec<String> = subject
        .tool_calls
        .iter()
        .map(|c| mask_for_audit(app, &policy, &format!("{}:{}", c.name, c.target())))
        .collect();
    let reasons = assessment.reasons().to_vec();
    let event = AuditEvent {
        seq: 0,
        time: decided_at.clone(),
        request_id: request_id.clone(),
        session_id: session_id.clone(),
        agent_id: agent_id.clone(),
        route: "inspect_api".to_string(),
        dialect: "inspect_api".to_string(),
        stage: "inspect".to_string(),
        decision: decision.as_str().to_string(),
        total_score: assessment.evaluation.total_score,
        reasons: reasons.clone(),
        findings: assessment.findings.iter().map(AuditFinding::from).collect(),
        tools: actions.clone(),
        masked: 0,
        policy_version: policy.version.clone(),
        latency_ms: started.elapsed().as_secs_f64() * 1000.0,
        status: Some(200),
        path: None,
        turn_id: turn_id.clone(),
        approvals: out.approvals(),
    };
    app.store.append_audit(&event).map_err(store_error)?;

    let mut metadata = metadata(assessment, req, &actions, &policy.version, &|s: &str| {
        mask_for_audit(app, &policy, s)
    });
    if let Some(risk) = session_risk {
        metadata["session_risk"] = risk;
    }
    let mut approval = None;
    match out.calls.first().and_then(|c| c.gated.as_ref()) {
        Some(Gated::Released {
            approval: a,
            by_permit,
        }) => {
            metadata["approval"] = json!({
                "approval_id": a.approval_id,
                "permit_used": true,
                "status": a.status.as_str(),
                "released_by": if *by_permit { "permit" } else { "next_call" },
            });
        }
        Some(Gated::Waiting { approval: a, .. }) => approval = Some(approval_view(a, None)),
        _ => {}
    }
    Ok(InspectResponse {
        decision: decision.as_str(),
        total_score: assessment.evaluation.total_score,
        reasons,
        request_id,
        decided_at,
        metadata,
        findings: assessment.findings.iter().map(api_finding).collect(),
        session_id: req.session_id.clone(),
        turn_id: req.turn_id.clone(),
        agent_id: req.agent_id.clone(),
        approval,
    })
}

/// The `session_risk` metadata, as it will be after this request.
fn session_risk_view(scfg: &SessionConfig, scopes: &Scopes<'_>, rec: &Record, now: i64) -> Value {
    let s = scopes.session;
    let cumulative = s.map_or(0.0, |s| session::decayed(scfg, &s.risk, now)) + rec.score;
    let mut v = json!({
        "request_count": s.map_or(0, |s| s.request_count) + 1,
        "cumulative_risk": round_score(cumulative),
        "prior_action_count": s.map_or(0, |s| s.risk.steps.len()),
        "memory_touched_count": s.map_or(0, |s| s.memory_touched.len()),
        "sensitive_marker_count": s.map_or(0, |s| s.sensitive_markers.len()),
        "staged_count": s.map_or(0, |s| s.risk.staged.len()) + rec.staged.len(),
    });
    if let Some(a) = scopes.agent {
        v["agent_cumulative_risk"] = json!(round_score(
            session::decayed(scfg, &a.risk, now) + rec.score
        ));
    }
    v
}

/// Identifiers are bounded like everything else on the HTTP path.
fn clip(s: &str) -> String {
    s.chars().take(256).collect()
}

fn store_error(e: crate::state::StoreError) -> ApiError {
    if let crate::state::StoreError::PendingCap { cap } = e {
        return pending_cap(cap, &e);
    }
    tracing::error!(error = %e, "state write failed");
    (
        503,
        "state_unavailable",
        "the gateway could not record this decision; nothing was decided".to_string(),
        json!({}),
    )
}

/// Audit rows never keep raw secrets: targets are masked before storing.
pub fn mask_for_audit(app: &App, policy: &crate::decision::Policy, text: &str) -> String {
    match policy.redactor.redact(text, &app.masker) {
        Some(r) => r.text,
        None => text.to_string(),
    }
}

fn metadata(
    a: &Assessment,
    req: &InspectInputRequest,
    actions: &[String],
    version: &str,
    mask: &dyn Fn(&str) -> String,
) -> Value {
    let mut detectors: Vec<&str> = a.findings.iter().map(|f| f.detector.as_str()).collect();
    detectors.sort_unstable();
    detectors.dedup();
    let mut m = json!({
        "triggered_detectors": detectors,
        "planned_actions": actions,
        "memory_reads": req.memory_reads.iter().map(|m| mask(m)).collect::<Vec<_>>(),
        "memory_writes": req.memory_writes.iter().map(|m| mask(m)).collect::<Vec<_>>(),
        "policy_version": version,
    });
    if !a.findings.is_empty() {
        m["detector_totals"] = json!(totals(&a.evaluation.detector_totals));
        m["capped_detector_totals"] = json!(totals(&a.evaluation.capped_totals));
        m["deduped_finding_count"] = json!(a.evaluation.deduped_count);
    }
    if !req.session_id.is_empty() {
        m["session_id"] = json!(req.session_id);
        m["turn_id"] = json!(req.turn_id);
        m["agent_id"] = json!(req.agent_id);
        m["gateway_metadata"] = Value::Object(req.metadata.clone());
    }
    m
}

fn totals(t: &[(DetectorId, f64)]) -> BTreeMap<&'static str, f64> {
    t.iter()
        .map(|(d, v)| (d.as_str(), round_score(*v)))
        .collect()
}

fn api_finding(f: &crate::decision::Finding) -> ApiFinding {
    ApiFinding {
        category: f.category.clone(),
        severity: f.severity.as_str(),
        score: round_score(f.score),
        message: f.message.clone(),
        detector: f.detector.as_str(),
        metadata: f.metadata.clone(),
        rule_id: f.rule_id.clone(),
        evidence: f.evidence.clone(),
        location: f.location.clone(),
    }
}
