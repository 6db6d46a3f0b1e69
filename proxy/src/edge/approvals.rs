//! The approvals API (a stable contract for existing clients):
//!
//! | method | path | role |
//! |---|---|---|
//! | POST | `/approval/submit` | agent or operator: ask for approval of an action |
//! | POST | `/approval/resolve` | **operator only**: approve (issues a permit) or deny |
//! | GET | `/approval/{id}` | agent or operator: one approval |
//! | GET | `/approvals` | operator: list (`status`, `session_id`, `limit`) |
//!
//! Guarantees: an agent key cannot resolve (no
//! self-approval); a permit appears only in the answer to the resolve that
//! created it (the store keeps its SHA-256; every other view shows an empty
//! `permit_token`); `submit` inspects the action and refuses to open an
//! approval for something the policy blocks, since a permit never lifts a
//! block.

use super::admin::{error, read_json, require, Shared};
use super::auth::Role;
use super::inspect_api::Caller;
use crate::decision::approvals::{
    finding_notes, Approval, ApprovalStatus, Binding, Origin, ResolveError,
};
use crate::decision::pipeline::{binding_arguments, ApprovalTemplate, Channel};
use crate::decision::subject::{Subject, ToolCall};
use crate::decision::{assess, Decision, Masking};
use crate::state::approvals::Opened;
use crate::state::{now_ms, rfc3339_ms};
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::{json, Value};

/// The Approval object: the contract's fields plus what an operator needs
/// to decide. `permit_token` is non-empty only in the resolve answer.
pub fn approval_view(a: &Approval, permit: Option<&str>) -> Value {
    let opt = |ms: Option<i64>| ms.map(rfc3339_ms);
    json!({
        "approval_id": a.approval_id,
        "status": a.status.as_str(),
        "session_id": a.session_id,
        "turn_id": a.turn_id,
        "agent_id": a.agent_id,
        "action_type": a.action_type,
        "action_target": a.action_target,
        "created_at": rfc3339_ms(a.created_ms),
        "expires_at": rfc3339_ms(a.expires_ms),
        "resolved_at": opt(a.resolved_ms),
        "resolver": a.resolver,
        "note": a.note,
        "permit_token": permit.unwrap_or(""),
        "permit_expires_at": opt(a.permit_expires_ms),
        "permit_issued": a.permit_sha256.is_some(),
        "used_at": opt(a.used_ms),
        "used_by": a.used_by,
        "origin": a.origin,
        "route": a.route,
        "dialect": a.dialect,
        "request_id": a.request_id,
        "decision": a.decision,
        "score": a.score,
        "reasons": a.reasons,
        "findings": a.findings,
        "hold": a.hold,
        "resolver_credential": a.resolver_credential,
    })
}

fn default_expires() -> i64 {
    900
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubmitRequest {
    pub session_id: String,
    #[serde(default)]
    pub turn_id: String,
    #[serde(default)]
    pub agent_id: String,
    pub action_type: String,
    #[serde(default)]
    pub action_target: String,
    #[serde(default = "default_expires")]
    pub expires_in_seconds: i64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResolveRequest {
    pub approval_id: String,
    pub approve: bool,
    pub resolver: String,
    #[serde(default)]
    pub note: String,
    #[serde(default)]
    pub permit_ttl_seconds: Option<i64>,
}

fn invalid(message: &str, details: Value) -> Response {
    error(400, "invalid_request", message, details)
}

fn unavailable(e: crate::state::StoreError) -> Response {
    tracing::error!(error = %e, "approval state write failed");
    error(
        503,
        "state_unavailable",
        "the approval could not be recorded",
        json!({}),
    )
}

fn clip(s: &str, n: usize) -> String {
    s.trim().chars().take(n).collect()
}

pub async fn submit(
    State(s): State<Shared>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let req: SubmitRequest = match read_json(&headers, body).await {
        Ok(r) => r,
        Err(resp) => return resp,
    };
    let session_id = clip(&req.session_id, 256);
    let action_type = clip(&req.action_type, 256).to_lowercase();
    if session_id.is_empty() || action_type.is_empty() {
        return error(
            422,
            "validation_error",
            "session_id and action_type must not be empty",
            json!({ "fields": ["session_id", "action_type"] }),
        );
    }
    if req.action_target.len() > super::inspect_api::MAX_TEXT_CHARS {
        return error(
            422,
            "validation_error",
            "action_target is too long",
            json!({ "field": "action_target" }),
        );
    }
    let agent_id = match caller.agent_for(&req.agent_id) {
        Ok(a) => a,
        Err((status, code, message, details)) => return error(status, code, &message, details),
    };
    let app = &s.app;
    let policy = app.policy.current();
    let target = req.action_target.trim().to_string();
    let mut subject = Subject::default();
    subject.tool_calls.push(ToolCall::new(
        action_type.clone(),
        Value::String(target.clone()),
    ));
    let assessment = match super::admin::inspect_slot(&s).await {
        Ok(_slot) => assess(&policy, &subject, Masking::None),
        Err(busy) => return busy,
    };
    if assessment.decision == Decision::Block {
        return error(
            409,
            "blocked",
            "the policy blocks this action; an approval cannot lift a block",
            json!({ "reasons": assessment.reasons(), "findings": finding_notes(&assessment.findings) }),
        );
    }
    // Built and bound exactly like the approval `/inspect/tool-call`
    // raises for this session, agent, tool and target (and no prose), so
    // the permit or the next identical call works there.
    let now = now_ms();
    let ttl = req.expires_in_seconds.clamp(1, 86_400);
    let key = app.binding_key();
    let call = &subject.tool_calls[0];
    let arguments = binding_arguments(&[call]);
    let request_id = crate::util::new_request_uuid().to_string();
    let turn_id = clip(&req.turn_id, 256);
    let template = ApprovalTemplate {
        binding: Binding {
            session_id: &session_id,
            agent_id: &agent_id,
            tool: &action_type,
            arguments: Some(&arguments),
            ..Binding::default()
        },
        target: &target,
        origin: Origin::Submit,
        channel: Channel::DecisionApi {
            credential: &caller.credential,
            turn_id: &turn_id,
        },
        request_id: &request_id,
        assessment: Some(&assessment),
        now_ms: now,
        ttl_ms: ttl * 1000,
    }
    .build(&policy, &app.masker, &key);
    let opened = match app.store.approval_open(&template, now) {
        Ok(o) => o,
        Err(e @ crate::state::StoreError::PendingCap { cap }) => {
            app.metrics
                .approvals
                .with_label_values(&["refused_cap"])
                .inc();
            let (status, code, message, details) = super::inspect_api::pending_cap(cap, &e);
            return error(status, code, &message, details);
        }
        Err(e) => return unavailable(e),
    };
    if let Err(e) = app.store.durable().await {
        return unavailable(e);
    }
    let status = if matches!(opened, Opened::Created(_)) {
        app.metrics.approvals.with_label_values(&["opened"]).inc();
        201
    } else {
        200
    };
    (
        axum::http::StatusCode::from_u16(status).unwrap_or_default(),
        Json(approval_view(opened.approval(), None)),
    )
        .into_response()
}

pub async fn resolve(
    State(s): State<Shared>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    if let Err(r) = require(Some(&caller.role), Role::Operator) {
        return r;
    }
    let req: ResolveRequest = match read_json(&headers, body).await {
        Ok(r) => r,
        Err(resp) => return resp,
    };
    let resolver = clip(&req.resolver, 128);
    if req.approval_id.trim().is_empty() || resolver.is_empty() {
        return error(
            422,
            "validation_error",
            "approval_id and resolver must not be empty",
            json!({ "fields": ["approval_id", "resolver"] }),
        );
    }
    let app = &s.app;
    let policy = app.policy.current();
    let ttl = req
        .approve
        .then(|| policy.file.approvals.permit_ttl(req.permit_ttl_seconds));
    let now = now_ms();
    let result = app.store.approval_resolve(
        &req.approval_id,
        ttl,
        &resolver,
        &caller.credential,
        &clip(&req.note, 1024),
        now,
    );
    let answer = match result {
        Err(e) => return unavailable(e),
        Ok(None) => return invalid("approval_id not found", json!({})),
        Ok(Some(Err(ResolveError::NotPending(status)))) => {
            return invalid(
                &format!("approval is not pending: {}", status.as_str()),
                json!({ "status": status.as_str() }),
            )
        }
        Ok(Some(Ok((approval, permit)))) => {
            let event = if req.approve { "approved" } else { "denied" };
            app.metrics.approvals.with_label_values(&[event]).inc();
            approval_view(&approval, permit.as_deref())
        }
    };
    // The permit is shown only once the approval is on disk: a permit that
    // a restart would forget must never be handed out.
    if let Err(e) = app.store.durable().await {
        return unavailable(e);
    }
    tracing::info!(
        approval_id = %req.approval_id,
        approve = req.approve,
        credential = %caller.credential,
        "approval resolved"
    );
    Json(answer).into_response()
}

/// One approval. An agent key sees only its own agent's approvals (others
/// are "not found", which says nothing about whether they exist).
pub async fn get_one(
    State(s): State<Shared>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Response {
    let mine = |a: &Approval| caller.agent.as_ref().is_none_or(|me| *me == a.agent_id);
    match s.app.store.approval_get(&id, now_ms()) {
        Ok(Some(a)) if mine(&a) => Json(approval_view(&a, None)).into_response(),
        Ok(_) => error(404, "not_found", "approval_id not found", json!({})),
        Err(e) => unavailable(e),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub session_id: Option<String>,
    #[serde(default)]
    pub limit: Option<usize>,
}

pub async fn list(
    State(s): State<Shared>,
    Extension(caller): Extension<Caller>,
    Query(q): Query<ListQuery>,
) -> Response {
    if let Err(r) = require(Some(&caller.role), Role::Operator) {
        return r;
    }
    let status = match q.status.as_deref().filter(|s| !s.is_empty()) {
        None => None,
        Some(name) => match ApprovalStatus::parse(name) {
            Some(st) => Some(st),
            None => {
                return error(
                    422,
                    "validation_error",
                    "status must be pending, approved, denied, expired or used",
                    json!({ "field": "status" }),
                )
            }
        },
    };
    let limit = q.limit.unwrap_or(50).clamp(1, 500);
    match s.app.store.approvals_list(
        status,
        q.session_id.as_deref().filter(|s| !s.is_empty()),
        limit,
        now_ms(),
    ) {
        Ok(list) => Json(json!({
            "approvals": list.iter().map(|a| approval_view(a, None)).collect::<Vec<_>>()
        }))
        .into_response(),
        Err(e) => unavailable(e),
    }
}
