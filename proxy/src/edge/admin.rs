//! The admin listener: an axum router served from a pingora background
//! service, so it shares the process, the policy and the store with the
//! proxy but never its threads' latency budget.

use super::auth::Authenticator;
pub use super::http::{error, inspect_slot, read_json, require, AdminState, Shared, MAX_BODY};
use super::inspect_api::{inspect, ApiError, Caller, InspectInputRequest, InspectToolCallRequest};
use super::ratelimit::RateLimiter;
use crate::app::App;
use async_trait::async_trait;
use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};

fn api_error((status, code, message, details): ApiError) -> Response {
    error(status, code, &message, details)
}

pub fn router(app: Arc<App>) -> Router {
    let settings = &app.edge;
    let loopback_hosts_only = settings.loopback_hosts_only();
    let state = Arc::new(AdminState {
        auth: Authenticator::new(&settings.admin),
        limiter: RateLimiter::new(settings.admin.rate_limit_per_minute),
        failures: RateLimiter::new(settings.admin.auth_failures_per_minute),
        loopback_hosts_only,
        app,
    });
    Router::new()
        .route("/health", get(health))
        .route("/ready", get(ready))
        .route("/metrics", get(metrics))
        .route("/inspect/input", post(inspect_input))
        .route("/inspect/tool-call", post(inspect_tool_call))
        // Approvals and the operator console (edge/approvals.rs, edge/operator.rs).
        .route("/approval/submit", post(super::approvals::submit))
        .route("/approval/resolve", post(super::approvals::resolve))
        .route("/approval/{id}", get(super::approvals::get_one))
        .route("/approvals", get(super::approvals::list))
        .merge(super::operator::routes())
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(
            state.clone(),
            super::guard::guard,
        ))
        .with_state(state)
}

async fn health() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

async fn ready(State(s): State<Shared>) -> Response {
    let policy = s.app.policy.current();
    let store = s.app.store.ping();
    // The shared state's connection is reported, not required: while it
    // is down the gateway still serves (risk and rate limits local,
    // approvals and permits refused), and an unready sidecar would take
    // its whole agent pod out of service.
    let state = s.app.store.shared().map(|x| x.health());
    let app = s.app.clone();
    // `asg control` has no proxy listener to wait for.
    let proxy = s.app.control
        || tokio::task::spawn_blocking(move || app.proxy_listening())
            .await
            .unwrap_or(false);
    let ok = store && proxy;
    let body = json!({
        "status": if ok { "ready" } else { "not_ready" },
        "details": {
            "policy": true,
            "policy_version": policy.version,
            "policy_last_error": s.app.policy.last_error(),
            "store": store,
            "state": state.map_or_else(
                || json!({"backend": "sled", "connected": store}),
                |h| json!(h),
            ),
            "proxy_listener": proxy,
            "auth_configured": s.auth.enabled(),
        }
    });
    let status = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body)).into_response()
}

async fn metrics(State(s): State<Shared>) -> Response {
    let policy = s.app.policy.current();
    s.app
        .metrics
        .observe_memo(policy.detectors.memo_stats(), policy.redactor.memo_stats());
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        s.app.metrics.render(),
    )
        .into_response()
}

async fn not_found() -> Response {
    error(404, "not_found", "Not Found", json!({}))
}

async fn inspect_input(
    State(s): State<Shared>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let req: InspectInputRequest = match read_json(&headers, body).await {
        Ok(r) => r,
        Err(resp) => return resp,
    };
    run_inspect(s, req, caller).await
}

async fn inspect_tool_call(
    State(s): State<Shared>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let req: InspectToolCallRequest = match read_json(&headers, body).await {
        Ok(r) => r,
        Err(resp) => return resp,
    };
    if req.tool_name.trim().is_empty() {
        return error(
            422,
            "validation_error",
            "tool_name must not be empty",
            json!({ "field": "tool_name" }),
        );
    }
    run_inspect(s, req.into(), caller).await
}

async fn run_inspect(s: Shared, req: InspectInputRequest, caller: Caller) -> Response {
    let slot = match inspect_slot(&s).await {
        Ok(slot) => slot,
        Err(busy) => return busy,
    };
    // Large inputs are scanned on the blocking pool, not an I/O thread.
    let big = req.user_input.len() + req.model_output.len() > 64 * 1024;
    let result = if big {
        let app = s.app.clone();
        match tokio::task::spawn_blocking(move || inspect(&app, &req, &caller)).await {
            Ok(r) => r,
            Err(_) => return error(500, "internal_error", "inspection failed", json!({})),
        }
    } else {
        inspect(&s.app, &req, &caller)
    };
    drop(slot);
    let resp = match result {
        Ok(resp) => resp,
        Err(e) => return api_error(e),
    };
    // Acknowledge only what is on disk (group commit: one flush is shared
    // by every request waiting at the time). Under ASG_AUDIT_SYNC=decisions
    // a plain allow does not wait, as in the proxy; its record follows on
    // the committer's timer.
    let skip = s.app.edge.audit_sync == crate::state::config::AuditSync::Decisions
        && resp.decision == "allow";
    if skip {
        return Json(resp).into_response();
    }
    if let Err(e) = s.app.store.durable().await {
        tracing::error!(error = %e, "decision not durable");
        return error(
            503,
            "state_unavailable",
            "the gateway could not record this decision; nothing was decided",
            json!({}),
        );
    }
    Json(resp).into_response()
}

/// Runs the admin router on a listener bound at startup.
pub struct AdminService {
    pub app: Arc<App>,
    pub listener: Mutex<Option<std::net::TcpListener>>,
}

#[async_trait]
impl BackgroundService for AdminService {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let Some(std_listener) = self.listener.lock().ok().and_then(|mut l| l.take()) else {
            return;
        };
        let listener = match std_listener
            .set_nonblocking(true)
            .and_then(|_| tokio::net::TcpListener::from_std(std_listener))
        {
            Ok(l) => l,
            Err(e) => {
                tracing::error!(error = %e, "admin listener unusable");
                return;
            }
        };
        let idle = std::time::Duration::from_secs(self.app.edge.admin.idle_timeout_secs);
        let listener = super::idle::IdleListener::new(listener, idle);
        let app =
            router(self.app.clone()).into_make_service_with_connect_info::<super::idle::PeerAddr>();
        let stop = async move {
            let _ = shutdown.changed().await;
        };
        if let Err(e) = axum::serve(listener, app)
            .with_graceful_shutdown(stop)
            .await
        {
            tracing::error!(error = %e, "admin server stopped");
        }
        // Shutting down: write the session caches and flush everything.
        let store = self.app.store.clone();
        let _ = tokio::task::spawn_blocking(move || {
            if let Err(e) = store.persist_state().and_then(|_| store.flush()) {
                tracing::error!(error = %e, "final state write failed");
            }
        })
        .await;
    }
}
