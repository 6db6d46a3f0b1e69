//! The operator console and its JSON API, on the admin listener.
//!
//! | method | path | |
//! |---|---|---|
//! | GET | `/operator` | the console (HTML; assets embedded in the binary, no CDN) |
//! | GET | `/operator/api/overview` | the overview (`session_id`, `limit`) plus statistics |
//! | GET | `/operator/api/stats` | decisions per minute, top findings, active sessions, policy version |
//! | GET | `/operator/api/sessions` | recent sessions |
//! | GET | `/operator/api/session/{id}/timeline` | a session's events, state and approvals |
//! | GET | `/operator/api/audit` | audit tail: newest `limit`, or `after=<seq>` oldest first; `last_seq` to pass next (`null` while empty) |
//! | GET | `/operator/api/audit/export` | audit as JSON lines (`since`, `until`, `after`, `limit`) |
//!
//! Every API route needs the operator role. The console page and its two
//! assets carry no data and are served without a key; the page asks for
//! the operator key when the API answers 401. It renders everything with
//! `textContent` (audit data is attacker-influenced) under a strict CSP.

use super::admin::{error, require, Shared};
use super::approvals::approval_view;
use super::auth::Role;
use super::inspect_api::Caller;
use crate::decision::approvals::ApprovalStatus;
use crate::decision::session::{decayed, AgentState, SessionState};
use crate::decision::types::round_score;
use crate::state::{now_ms, rfc3339_ms, AuditEvent, StoreError};
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;

const INDEX_HTML: &str = include_str!("console/index.html");
const APP_JS: &str = include_str!("console/app.js");
const STYLE_CSS: &str = include_str!("console/style.css");

/// Paths served without a key (static, no data).
pub const CONSOLE_ASSETS: &[&str] = &["/operator", "/operator/app.js", "/operator/style.css"];

const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

pub fn routes() -> Router<Shared> {
    Router::new()
        .route("/operator", get(index))
        .route("/operator/app.js", get(app_js))
        .route("/operator/style.css", get(style_css))
        .route("/operator/api/overview", get(overview))
        .route("/operator/api/stats", get(stats))
        .route("/operator/api/sessions", get(sessions))
        .route("/operator/api/session/{id}/timeline", get(timeline))
        .route("/operator/api/audit", get(audit))
        .route("/operator/api/audit/export", get(export))
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    let mut r = body.into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

async fn index() -> Response {
    asset("text/html; charset=utf-8", INDEX_HTML)
}

async fn app_js() -> Response {
    asset("text/javascript; charset=utf-8", APP_JS)
}

async fn style_css() -> Response {
    asset("text/css; charset=utf-8", STYLE_CSS)
}

fn operator(caller: &Caller) -> Result<(), Response> {
    require(Some(&caller.role), Role::Operator)
}

fn unavailable(e: StoreError) -> Response {
    tracing::error!(error = %e, "operator API read failed");
    error(503, "state_unavailable", &e.to_string(), json!({}))
}

/// The API's Session object (with decayed risk and staged actions).
pub fn session_view(s: &SessionState, cfg: &crate::decision::session::SessionConfig) -> Value {
    let now = now_ms();
    json!({
        "session_id": s.session_id,
        "agent_id": s.agent_id,
        "prior_actions": s.risk.steps.iter().map(|st| st.tool.clone()).collect::<Vec<_>>(),
        "memory_touched": s.memory_touched,
        "cumulative_risk": round_score(decayed(cfg, &s.risk, now)),
        "prior_decisions": s.decisions,
        "sensitive_markers": s.sensitive_markers,
        "request_count": s.request_count,
        "staged_actions": s.risk.staged,
        "created_at": rfc3339_ms(s.created_ms),
        "updated_at": rfc3339_ms(s.updated_ms),
        "ended_at": s.ended_ms.map(rfc3339_ms),
    })
}

fn agent_view(a: &AgentState, cfg: &crate::decision::session::SessionConfig) -> Value {
    json!({
        "agent_id": a.agent_id,
        "cumulative_risk": round_score(decayed(cfg, &a.risk, now_ms())),
        "request_count": a.request_count,
        "sessions": a.sessions,
        "recent_actions": a.risk.steps.iter().rev().take(20).map(|s| s.tool.clone()).collect::<Vec<_>>(),
        "staged_actions": a.risk.staged.len(),
        "updated_at": rfc3339_ms(a.updated_ms),
    })
}

/// The API's Event object, plus the audit fields.
pub fn event_view(e: &AuditEvent) -> Value {
    let (action_type, action_target) = e
        .tools
        .first()
        .and_then(|t| t.split_once(':'))
        .map(|(a, b)| (a.trim().to_string(), b.trim().to_string()))
        .unwrap_or_else(|| ("unknown".to_string(), String::new()));
    let mut v = serde_json::to_value(e).unwrap_or(Value::Null);
    if let Value::Object(m) = &mut v {
        m.insert("event_id".into(), json!(e.seq.to_string()));
        m.insert("created_at".into(), json!(e.time));
        m.insert("action_type".into(), json!(action_type));
        m.insert("action_target".into(), json!(action_target));
        m.insert(
            "metadata".into(),
            json!({
                "route": e.route, "dialect": e.dialect, "stage": e.stage,
                "policy_version": e.policy_version, "request_id": e.request_id,
            }),
        );
    }
    v
}

#[derive(Debug, Deserialize)]
pub struct OverviewQuery {
    #[serde(default)]
    pub session_id: Option<String>,
    #[serde(default)]
    pub limit: Option<usize>,
}

fn stats_value(s: &Shared) -> Result<Value, StoreError> {
    let store = &s.app.store;
    let now = now_ms();
    let per_minute = store.stats.per_minute(now, 30);
    Ok(json!({
        "policy_version": s.app.policy.current().version,
        "decisions_per_minute": per_minute,
        "top_findings": store.stats.top_findings(now, 10)
            .into_iter()
            .map(|(rule, count)| json!({ "rule": rule, "count": count }))
            .collect::<Vec<_>>(),
        "active_sessions": store.sessions_active_count(now - 15 * 60_000)?,
        "pending_approvals": store.approvals_pending_count(),
        "sessions_stored": store.state_counts().0,
        "agents_stored": store.state_counts().1,
        "audit_records": store.audit_len(),
        "audit_bytes": store.audit_bytes(),
    }))
}

async fn stats(State(s): State<Shared>, Extension(caller): Extension<Caller>) -> Response {
    if let Err(r) = operator(&caller) {
        return r;
    }
    match stats_value(&s) {
        Ok(v) => Json(v).into_response(),
        Err(e) => unavailable(e),
    }
}

async fn overview(
    State(s): State<Shared>,
    Extension(caller): Extension<Caller>,
    Query(q): Query<OverviewQuery>,
) -> Response {
    if let Err(r) = operator(&caller) {
        return r;
    }
    let limit = q.limit.unwrap_or(50).clamp(1, 200);
    let selected: String = q
        .session_id
        .unwrap_or_default()
        .trim()
        .chars()
        .take(256)
        .collect();
    let build = || -> Result<Value, StoreError> {
        let store = &s.app.store;
        let policy = s.app.policy.current();
        let cfg = &policy.file.session;
        let now = now_ms();
        let sessions = store.sessions_recent(limit)?;
        let pending = store.approvals_list(Some(ApprovalStatus::Pending), None, limit, now)?;
        let recent: Vec<_> = store
            .approvals_list(None, None, limit, now)?
            .into_iter()
            .filter(|a| a.status != ApprovalStatus::Pending)
            .collect();
        // The contract: the last `limit` events, then only the flagged.
        let flagged: Vec<Value> = store
            .audit_tail(limit)?
            .iter()
            .filter(|e| {
                matches!(
                    e.decision.as_str(),
                    "block" | "challenge" | "require_approval"
                )
            })
            .map(event_view)
            .collect();
        let timeline: Vec<Value> = if selected.is_empty() {
            Vec::new()
        } else {
            store
                .audit_for_session(&selected, limit)?
                .iter()
                .map(event_view)
                .collect()
        };
        Ok(json!({
            "sessions": sessions.iter().map(|x| session_view(x, cfg)).collect::<Vec<_>>(),
            "approvals_pending": pending.iter().map(|a| approval_view(a, None)).collect::<Vec<_>>(),
            "approvals_recent": recent.iter().map(|a| approval_view(a, None)).collect::<Vec<_>>(),
            "events_flagged": flagged,
            "selected_session": selected,
            "timeline": timeline,
            "stats": stats_value(&s)?,
        }))
    };
    match build() {
        Ok(v) => Json(v).into_response(),
        Err(e) => unavailable(e),
    }
}

#[derive(Debug, Deserialize)]
pub struct LimitQuery {
    #[serde(default)]
    pub limit: Option<usize>,
}

async fn sessions(
    State(s): State<Shared>,
    Extension(caller): Extension<Caller>,
    Query(q): Query<LimitQuery>,
) -> Response {
    if let Err(r) = operator(&caller) {
        return r;
    }
    let policy = s.app.policy.current();
    match s.app.store.sessions_recent(q.limit.unwrap_or(50).clamp(1, 500)) {
        Ok(list) => Json(json!({
            "sessions": list.iter().map(|x| session_view(x, &policy.file.session)).collect::<Vec<_>>()
        }))
        .into_response(),
        Err(e) => unavailable(e),
    }
}

async fn timeline(
    State(s): State<Shared>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    Query(q): Query<LimitQuery>,
) -> Response {
    if let Err(r) = operator(&caller) {
        return r;
    }
    let limit = q.limit.unwrap_or(200).clamp(1, 500);
    let build = || -> Result<Value, StoreError> {
        let store = &s.app.store;
        let policy = s.app.policy.current();
        let cfg = &policy.file.session;
        let session = store.session_get(&id)?;
        let agent = match &session {
            Some(x) if !x.agent_id.is_empty() => store.agent_get(&x.agent_id)?,
            _ => None,
        };
        let events: Vec<Value> = store
            .audit_for_session(&id, limit)?
            .iter()
            .map(event_view)
            .collect();
        let approvals = store.approvals_list(None, Some(&id), limit, now_ms())?;
        Ok(json!({
            "session_id": id,
            "session": session.as_ref().map(|x| session_view(x, cfg)),
            "agent": agent.as_ref().map(|a| agent_view(a, cfg)),
            "timeline": events,
            "approvals": approvals.iter().map(|a| approval_view(a, None)).collect::<Vec<_>>(),
        }))
    };
    match build() {
        Ok(v) => Json(v).into_response(),
        Err(e) => unavailable(e),
    }
}

#[derive(Debug, Deserialize)]
pub struct AuditQuery {
    #[serde(default)]
    pub after: Option<u64>,
    #[serde(default)]
    pub limit: Option<usize>,
}

async fn audit(
    State(s): State<Shared>,
    Extension(caller): Extension<Caller>,
    Query(q): Query<AuditQuery>,
) -> Response {
    if let Err(r) = operator(&caller) {
        return r;
    }
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    let store = &s.app.store;
    let events = match q.after {
        Some(after) => store.audit_after(Some(after), limit),
        None => store.audit_tail(limit),
    };
    match events {
        Ok(list) => {
            // `null` until there is a record, so a client tailing with
            // `after=<last_seq>` never skips record 0.
            let last = list.iter().map(|e| e.seq).max().or(q.after);
            Json(json!({
                "events": list.iter().map(event_view).collect::<Vec<_>>(),
                "last_seq": last,
            }))
            .into_response()
        }
        Err(e) => unavailable(e),
    }
}

#[derive(Debug, Deserialize)]
pub struct ExportQuery {
    #[serde(default)]
    pub since: Option<String>,
    #[serde(default)]
    pub until: Option<String>,
    #[serde(default)]
    pub after: Option<u64>,
    #[serde(default)]
    pub limit: Option<usize>,
}

/// A time window for exports, from RFC 3339 strings.
#[derive(Debug, Clone, Copy, Default)]
pub struct Window {
    pub since: Option<time::OffsetDateTime>,
    pub until: Option<time::OffsetDateTime>,
}

/// A bound of an export window that is not a time.
#[derive(Debug, thiserror::Error)]
#[error("{bound} must be an RFC 3339 time such as 2026-01-31T00:00:00Z")]
pub struct WindowError {
    /// `since` or `until`.
    pub bound: &'static str,
}

impl Window {
    pub fn parse(since: Option<&str>, until: Option<&str>) -> Result<Window, WindowError> {
        let p = |bound: &'static str, v: Option<&str>| {
            v.filter(|s| !s.is_empty())
                .map(|s| {
                    time::OffsetDateTime::parse(s, &Rfc3339).map_err(|_| WindowError { bound })
                })
                .transpose()
        };
        Ok(Window {
            since: p("since", since)?,
            until: p("until", until)?,
        })
    }

    pub fn contains(&self, e: &AuditEvent) -> bool {
        if self.since.is_none() && self.until.is_none() {
            return true;
        }
        let Ok(t) = time::OffsetDateTime::parse(&e.time, &Rfc3339) else {
            return false;
        };
        self.since.is_none_or(|s| t >= s) && self.until.is_none_or(|u| t < u)
    }
}

async fn export(
    State(s): State<Shared>,
    Extension(caller): Extension<Caller>,
    Query(q): Query<ExportQuery>,
) -> Response {
    if let Err(r) = operator(&caller) {
        return r;
    }
    let window = match Window::parse(q.since.as_deref(), q.until.as_deref()) {
        Ok(w) => w,
        Err(e) => return error(422, "validation_error", &e.to_string(), json!({})),
    };
    let limit = q.limit.unwrap_or(10_000).clamp(1, 100_000);
    let after = q.after;
    let app = s.app.clone();
    // A long scan runs on the blocking pool.
    let result =
        tokio::task::spawn_blocking(move || -> Result<(String, u64, usize), StoreError> {
            let mut out = String::new();
            let (mut last, mut n) = (after.unwrap_or(0), 0usize);
            let mut cursor = after;
            'pages: loop {
                let page = app.store.audit_after(cursor, 1000)?;
                if page.is_empty() {
                    break;
                }
                for e in &page {
                    cursor = Some(e.seq);
                    if window.contains(e) {
                        out.push_str(&serde_json::to_string(e).unwrap_or_default());
                        out.push('\n');
                        last = e.seq;
                        n += 1;
                        if n >= limit {
                            break 'pages;
                        }
                    }
                }
                last = last.max(cursor.unwrap_or(0));
            }
            Ok((out, last, n))
        })
        .await;
    match result {
        Ok(Ok((body, last, n))) => {
            let mut r = body.into_response();
            let h = r.headers_mut();
            h.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/x-ndjson"),
            );
            if let Ok(v) = HeaderValue::from_str(&last.to_string()) {
                h.insert("x-asg-next-after", v);
            }
            if let Ok(v) = HeaderValue::from_str(&n.to_string()) {
                h.insert("x-asg-count", v);
            }
            r
        }
        Ok(Err(e)) => unavailable(e),
        Err(_) => error(500, "internal_error", "export failed", json!({})),
    }
}
