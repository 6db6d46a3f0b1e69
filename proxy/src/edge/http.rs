//! What every admin handler shares: the router's state, the API's error
//! shape, bounded JSON bodies, role checks and inspection slots. The router
//! (`admin.rs`) and the handler modules all import this; it imports none
//! of them, so the edge has no cycle through the router.

use super::auth::{Authenticator, Role};
use super::ratelimit::RateLimiter;
use crate::app::App;
use axum::body::Body;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::de::DeserializeOwned;
use serde_json::{json, Value};
use std::sync::Arc;

/// Largest admin API request body.
pub const MAX_BODY: usize = 2 * 1024 * 1024;

/// Largest text the decision and approval APIs take in one field, so one
/// request cannot make inspection unbounded.
pub const MAX_TEXT_CHARS: usize = 512 * 1024;

pub struct AdminState {
    pub app: Arc<App>,
    pub auth: Authenticator,
    pub limiter: RateLimiter,
    /// Failed authentications per client address.
    pub failures: RateLimiter,
    /// Without auth on a loopback listener, only loopback `Host` names are
    /// served: a web page cannot reach the console through DNS rebinding.
    pub loopback_hosts_only: bool,
}

pub type Shared = Arc<AdminState>;

/// `{error, code, details}`, the API's error shape.
pub fn error(status: u16, code: &str, message: &str, details: Value) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (
        status,
        Json(json!({ "error": message, "code": code, "details": details })),
    )
        .into_response()
}

/// An inspection slot for the inspect API, or the 503 to answer with.
pub async fn inspect_slot(s: &Shared) -> Result<crate::inspect_slots::Slot, Response> {
    let slots = &s.app.inspect_slots;
    slots
        .acquire(crate::inspect_slots::Surface::InspectApi)
        .await
        .map_err(|why| {
            let mut r = error(
                503,
                "inspect_busy",
                &slots.busy_message(why),
                json!({ "retry_after_seconds": slots.retry_after_secs() }),
            );
            r.headers_mut()
                .insert(header::RETRY_AFTER, slots.retry_after_secs().into());
            r
        })
}

/// Read a bounded JSON body: wrong content type → 415, too large → 413,
/// syntax error → 400, wrong shape or unknown field → 422.
pub async fn read_json<T: DeserializeOwned>(
    headers: &HeaderMap,
    body: Body,
) -> Result<T, Response> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    if !crate::util::is_json_content_type(ct) {
        return Err(error(
            415,
            "unsupported_media_type",
            "send application/json",
            json!({ "content_type": ct }),
        ));
    }
    let bytes = axum::body::to_bytes(body, MAX_BODY).await.map_err(|_| {
        error(
            413,
            "body_too_large",
            &format!("request body exceeds {MAX_BODY} bytes"),
            json!({ "max_bytes": MAX_BODY }),
        )
    })?;
    serde_json::from_slice(&bytes).map_err(|e| {
        let details =
            json!({ "errors": [{ "msg": e.to_string(), "line": e.line(), "column": e.column() }] });
        match e.classify() {
            serde_json::error::Category::Data => error(
                422,
                "validation_error",
                "request does not match the schema",
                details,
            ),
            _ => error(
                400,
                "invalid_json",
                "request body is not valid JSON",
                details,
            ),
        }
    })
}

/// Require at least `min` for a handler (operator-only endpoints).
pub fn require(role: Option<&Role>, min: Role) -> Result<(), Response> {
    match role {
        Some(r) if *r >= min => Ok(()),
        _ => Err(error(
            403,
            "forbidden",
            &format!("this endpoint needs the {} role", min.as_str()),
            json!({}),
        )),
    }
}

/// A request the API refuses: `(status, code, message, details)`.
pub type ApiError = (u16, &'static str, String, Value);

/// Who is calling the admin API (set by the auth guard).
#[derive(Debug, Clone)]
pub struct Caller {
    pub role: Role,
    /// A non-secret name for the credential used: `local` (auth off) or
    /// `<role>-key:<8 hex of its SHA-256>`.
    pub credential: String,
    pub auth_enabled: bool,
    /// The identity an agent key is bound to (see [`super::auth::Principal`]).
    pub agent: Option<String>,
}

impl Caller {
    /// The local operator when auth is off (tests, loopback setups).
    pub fn local() -> Caller {
        Caller {
            role: Role::Operator,
            credential: "local".to_string(),
            auth_enabled: false,
            agent: None,
        }
    }

    /// The agent this call acts for. An agent key acts only as the agent
    /// it is bound to: naming another is refused (it could otherwise load
    /// that agent's risk or spend its approvals). Others may name any
    /// agent; without a name an authenticated caller is its key.
    pub fn agent_for(&self, claimed: &str) -> Result<String, ApiError> {
        let claimed: String = claimed.trim().chars().take(256).collect();
        match &self.agent {
            Some(bound) if claimed.is_empty() || claimed == *bound => Ok(bound.clone()),
            Some(bound) => Err((
                403,
                "agent_mismatch",
                format!(
                    "this API key acts as agent {bound:?} and cannot act as {claimed:?}; send its own agent_id (or none), or use that agent's key"
                ),
                json!({ "field": "agent_id" }),
            )),
            None if !claimed.is_empty() => Ok(claimed),
            None if self.auth_enabled => Ok(self.credential.clone()),
            None => Ok(String::new()),
        }
    }
}

/// Too many approvals wait already: refused, clearly (nothing was decided).
pub fn pending_cap(cap: usize, e: &dyn std::fmt::Display) -> ApiError {
    (
        429,
        "too_many_pending_approvals",
        e.to_string(),
        json!({ "max_pending_approvals": cap }),
    )
}
