//! `POST /inspect/input` and `POST /inspect/tool-call`: the original
//! project's decision API, request and response shapes kept compatible.
//!
//! Differences, all deliberate: findings also carry `rule_id`, `evidence`
//! (masked) and `location`; scores are rounded; `metadata.policy_version`
//! says which policy decided; request sizes are bounded.

use crate::app::App;
use crate::decision::subject::{Subject, Surface, ToolCall};
use crate::decision::types::round_score;
use crate::decision::{assess, Assessment, DetectorId, Masking};
use crate::state::{AuditEvent, AuditFinding};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::time::Instant;

/// Caps on the HTTP path (the original had none).
pub const MAX_TEXT_CHARS: usize = 512 * 1024;
pub const MAX_ITEMS: usize = 256;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlannedAction {
    pub action_type: String,
    #[serde(default)]
    pub target: String,
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

/// A request the API refuses: `(status, code, message, details)`.
pub type ApiError = (u16, &'static str, String, Value);

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

/// Field order matches the original response.
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
    /// lower-cased, as the original did.
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
            s.tool_calls.push(ToolCall::new(
                kind,
                Value::String(a.target.trim().to_string()),
            ));
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

/// Decide, audit, and shape the answer.
pub fn inspect(app: &App, req: &InspectInputRequest) -> Result<InspectResponse, ApiError> {
    let started = Instant::now();
    let subject = req.subject()?;
    let policy = app.policy.current();
    let assessment = assess(&policy, &subject, Masking::None);
    let request_id = uuid::Uuid::new_v4().to_string();
    let decided_at = crate::util::now_rfc3339();

    app.metrics
        .decisions
        .with_label_values(&["inspect", "inspect_api", assessment.decision.as_str()])
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

    let actions: Vec<String> = subject
        .tool_calls
        .iter()
        .map(|c| format!("{}:{}", c.name, c.target()))
        .collect();
    let event = AuditEvent {
        seq: 0,
        time: decided_at.clone(),
        request_id: request_id.clone(),
        session_id: req.session_id.clone(),
        agent_id: req.agent_id.clone(),
        route: "inspect_api".to_string(),
        dialect: "inspect_api".to_string(),
        stage: "inspect".to_string(),
        decision: assessment.decision.as_str().to_string(),
        total_score: assessment.evaluation.total_score,
        reasons: assessment.reasons().to_vec(),
        findings: assessment.findings.iter().map(AuditFinding::from).collect(),
        tools: actions
            .iter()
            .map(|a| mask_for_audit(app, &policy, a))
            .collect(),
        masked: 0,
        policy_version: policy.version.clone(),
        latency_ms: started.elapsed().as_secs_f64() * 1000.0,
        status: Some(200),
        path: None,
        ..AuditEvent::default()
    };
    if let Err(e) = app.store.append_audit(&event) {
        tracing::error!(error = %e, "audit write failed");
    }

    Ok(InspectResponse {
        decision: assessment.decision.as_str(),
        total_score: assessment.evaluation.total_score,
        reasons: assessment.reasons().to_vec(),
        request_id,
        decided_at,
        metadata: metadata(&assessment, req, &actions, &policy.version),
        findings: assessment.findings.iter().map(api_finding).collect(),
        session_id: req.session_id.clone(),
        turn_id: req.turn_id.clone(),
        agent_id: req.agent_id.clone(),
        approval: None,
    })
}

/// Audit rows never keep raw secrets (the original stored targets raw).
fn mask_for_audit(app: &App, policy: &crate::decision::Policy, text: &str) -> String {
    match policy.redactor.redact(text, &app.masker) {
        Some(r) => r.text,
        None => text.to_string(),
    }
}

fn metadata(a: &Assessment, req: &InspectInputRequest, actions: &[String], version: &str) -> Value {
    let mut detectors: Vec<&str> = a.findings.iter().map(|f| f.detector.as_str()).collect();
    detectors.sort_unstable();
    detectors.dedup();
    let mut m = json!({
        "triggered_detectors": detectors,
        "planned_actions": actions,
        "memory_reads": req.memory_reads,
        "memory_writes": req.memory_writes,
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
