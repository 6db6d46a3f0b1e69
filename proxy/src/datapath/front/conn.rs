//! One forward-mode connection's bookkeeping: its id, the open-connections
//! gauge, decision and failure counters, and the audit record of a tunnel.

use crate::app::App;
use crate::datapath::forward::Mode;
use crate::decision::policy::connect::ConnectAction;
use crate::decision::Decision;
use crate::state::AuditEvent;
use std::sync::Arc;
use std::time::Instant;

/// One connection's bookkeeping: id, start, open-connection gauge.
pub(super) struct Conn {
    pub id: String,
    started: Instant,
    pub mode: Mode,
    app: Arc<App>,
}

impl Conn {
    pub fn new(app: &Arc<App>, mode: Mode) -> Conn {
        app.metrics
            .forward
            .open
            .with_label_values(&[mode.as_str()])
            .inc();
        Conn {
            id: crate::util::new_request_uuid().simple().to_string(),
            started: Instant::now(),
            mode,
            app: app.clone(),
        }
    }

    pub fn decided(&self, action: ConnectAction) {
        self.app
            .metrics
            .forward
            .decisions
            .with_label_values(&[self.mode.as_str(), action.as_str()])
            .inc();
    }

    pub fn failed(&self, reason: &'static str) {
        self.app
            .metrics
            .forward
            .failures
            .with_label_values(&[self.mode.as_str(), reason])
            .inc();
    }

    /// One audit record for a tunnel (passthrough, denied or failed).
    pub fn audit(
        &self,
        authority: &str,
        decision: Decision,
        status: Option<u16>,
        reasons: Vec<String>,
    ) {
        let event = AuditEvent {
            seq: 0,
            time: crate::util::now_rfc3339(),
            request_id: self.id.clone(),
            session_id: String::new(),
            agent_id: String::new(),
            route: self.mode.as_str().to_string(),
            dialect: "tunnel".to_string(),
            stage: "connect".to_string(),
            decision: decision.as_str().to_string(),
            total_score: 0.0,
            reasons,
            findings: Vec::new(),
            tools: Vec::new(),
            masked: 0,
            policy_version: self.app.policy.current().version.clone(),
            latency_ms: self.started.elapsed().as_secs_f64() * 1000.0,
            status,
            path: Some(authority.chars().take(256).collect()),
            ..AuditEvent::default()
        };
        if let Err(e) = self.app.store.append_audit(&event) {
            tracing::error!(error = %e, "audit write failed");
        }
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.app
            .metrics
            .forward
            .open
            .with_label_values(&[self.mode.as_str()])
            .dec();
    }
}
