//! The audit record of an exchange: built from the context, appended once,
//! and made durable before the answer that acknowledges the decision (in
//! `always` mode); the `logging` hook's metrics, spans and fallback record.

use super::context::{rule_ids, stage_label, Ctx, InFlight};
use super::Gateway;
use crate::decision::redact::Masker;
use crate::state::{AuditEvent, AuditFinding};
use pingora::prelude::*;
use pingora::proxy::Session;
use std::time::Duration;

/// Longest request path kept in a record (before masking).
const PATH_CHARS: usize = 256;

/// The audit record of this request, as known now.
pub(super) fn audit_event(ctx: &Ctx, masker: &Masker, status: Option<u16>) -> AuditEvent {
    let (session_id, agent_id, approvals) = match &ctx.gate {
        Some(g) => {
            let id = g.identity();
            (id.session_id, id.agent_id, g.approvals())
        }
        None => (ctx.session_id.clone(), ctx.agent_id.clone(), Vec::new()),
    };
    AuditEvent {
        seq: 0,
        time: crate::util::now_rfc3339(),
        request_id: ctx.id.clone(),
        session_id,
        agent_id,
        route: ctx.route_name().to_string(),
        dialect: ctx.dialect.as_str().to_string(),
        stage: stage_label(ctx),
        decision: ctx.decision().as_str().to_string(),
        total_score: ctx.reports.iter().map(|r| r.score).fold(0.0, f64::max),
        reasons: crate::datapath::enforce::record_reasons(&ctx.reports),
        findings: ctx
            .reports
            .iter()
            .flat_map(|r| r.findings.iter())
            .map(AuditFinding::from)
            .collect(),
        tools: ctx
            .reports
            .iter()
            .flat_map(|r| r.tools.iter())
            .map(|t| format!("{}: {}", t.name, t.decision))
            .collect(),
        masked: ctx.reports.iter().map(|r| r.masks.len()).sum(),
        policy_version: ctx
            .policy
            .as_ref()
            .map(|p| p.version.clone())
            .unwrap_or_default(),
        latency_ms: ctx.started.elapsed().as_secs_f64() * 1000.0,
        status,
        path: Some(audit_path(ctx, masker)),
        turn_id: String::new(),
        approvals,
    }
}

/// The request path for audit: bounded, and masked (a key in a URL
/// path is still a key).
fn audit_path(ctx: &Ctx, masker: &Masker) -> String {
    let path: String = match &ctx.forward {
        // Forward mode: the full URL (the host is the destination).
        Some(t) => t.url(&ctx.path).chars().take(PATH_CHARS).collect(),
        None => ctx.path.chars().take(PATH_CHARS).collect(),
    };
    match &ctx.policy {
        Some(p) => crate::decision::approvals::display_target(&p.redactor, masker, &path),
        None => path,
    }
}

impl From<&crate::decision::Finding> for AuditFinding {
    fn from(f: &crate::decision::Finding) -> Self {
        AuditFinding {
            rule_id: f.rule_id.clone(),
            detector: f.detector.as_str().to_string(),
            severity: f.severity.as_str().to_string(),
            score: crate::decision::types::round_score(f.score),
            message: f.message.clone(),
            evidence: f.evidence.clone(),
            location: f.location.clone(),
        }
    }
}

impl Gateway {
    /// Append the audit record and wait until it is on disk, before the
    /// answer that acknowledges the decision is written.
    pub(super) async fn seal_audit(&self, ctx: &mut Ctx, status: Option<u16>) {
        if ctx.audited {
            return;
        }
        ctx.audited = true;
        let event = audit_event(ctx, &self.app.masker, status);
        match self.app.store.append_audit(&event) {
            Ok(_) => {
                if let Err(e) = self.app.store.durable().await {
                    tracing::error!(error = %e, "audit record not durable");
                }
            }
            Err(e) => tracing::error!(error = %e, "audit write failed"),
        }
    }

    /// Append the audit record when the upstream body ends, before the
    /// last chunk goes out. Returns how long pingora should wait (a timer,
    /// so the worker keeps serving others) before that chunk's filter,
    /// where [`Self::seal_audit_blocking`] finds the record durable and
    /// needs no blocking wait unless the disk was slower than expected.
    pub(super) fn seal_audit_upstream(
        &self,
        ctx: &mut Ctx,
        status: Option<u16>,
    ) -> Option<Duration> {
        if ctx.audited {
            return None;
        }
        ctx.audited = true;
        let event = audit_event(ctx, &self.app.masker, status);
        if let Err(e) = self.app.store.append_audit(&event) {
            tracing::error!(error = %e, "audit write failed");
            return None;
        }
        if self.app.proxy.audit_sync == crate::state::config::AuditSync::Decisions {
            // Operator's choice: forwarded responses do not wait; the
            // record is in the next group flush (milliseconds).
            return None;
        }
        let ticket = self.app.store.ticket();
        if self.app.store.is_durable(ticket) {
            return None;
        }
        // The commit starts now, while pingora's timer runs; without this
        // the writer would wait for its batch timer and the last chunk
        // would block on a whole commit after the timer.
        self.app.store.hasten(ticket);
        ctx.audit_pending = Some(ticket);
        let wait = self.app.store.audit_expected_wait();
        // pingora's timer ticks in milliseconds: it would add up to one to
        // every answer. With no more requests in flight than worker
        // threads, a worker has nobody else to serve, so the last chunk
        // waits for the commit (a fraction of a millisecond) itself; under
        // load the timer yields the worker to the others.
        if InFlight::now() <= self.app.proxy.threads && wait < Duration::from_millis(1) {
            return None;
        }
        Some(wait)
    }

    /// [`Self::seal_audit`] from a synchronous hook (the last response
    /// chunk): the record is appended if it was not yet, and if it is not
    /// durable yet the worker thread is handed over while it waits.
    pub(super) fn seal_audit_blocking(&self, ctx: &mut Ctx, status: Option<u16>) {
        if !ctx.audited {
            self.seal_audit_upstream(ctx, status);
        }
        let Some(ticket) = ctx.audit_pending.take() else {
            return;
        };
        if self.app.store.is_durable(ticket) {
            return;
        }
        let wait = || self.app.store.durable_blocking(ticket);
        let multi_thread = tokio::runtime::Handle::try_current()
            .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
        let result = if multi_thread {
            tokio::task::block_in_place(wait)
        } else {
            wait()
        };
        if let Err(e) = result {
            tracing::error!(error = %e, "audit record not durable");
        }
    }

    /// The request is over: metrics, the record of a request that never
    /// reached an answer, and the trace's end.
    pub(super) async fn log_request(
        &self,
        session: &mut Session,
        e: Option<&Error>,
        ctx: &mut Ctx,
    ) {
        let app = &self.app;
        // A stream that did not end (client gone, upstream failed).
        self.close_stream(ctx);
        self.ws_close(ctx);
        let route = ctx.route_name().to_string();
        let dialect = ctx.dialect.as_str();
        let decision = ctx.decision();
        app.metrics
            .requests
            .with_label_values(&[route.as_str(), dialect, decision.as_str()])
            .inc();
        for r in &ctx.reports {
            app.metrics.record_stage(dialect, r);
        }
        let written = session.response_written().map(|r| r.status.as_u16());
        // Normally sealed before the answer went out; here only for
        // requests that never reached an answer (client gone, no body…).
        if !ctx.audited {
            let event = audit_event(ctx, &app.masker, ctx.final_status(written));
            if let Err(err) = app.store.append_audit(&event) {
                tracing::error!(error = %err, "audit write failed");
            }
        }
        if let Some(e) = e {
            tracing::debug!(request_id = %ctx.id, error = %e, "request ended with error");
        }
        if let Some(tr) = ctx.trace.take() {
            let model = (dialect == "gemini")
                .then(|| crate::datapath::dialect::gemini::model_of(&ctx.path))
                .flatten();
            tr.routed(&route, dialect, model);
            tr.end(
                ctx.final_status(written),
                decision.as_str(),
                &rule_ids(&ctx.reports),
                e.map(|e| e.etype().as_str().to_string()),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testkit::{ctx, finding};
    use super::*;
    use crate::datapath::dialect::Dialect;
    use crate::datapath::enforce::{Stage, StageReport};
    use crate::datapath::forward::{ForwardTarget, Mode};
    use crate::decision::{Decision, Policy};
    use std::sync::Arc;

    fn masker() -> Masker {
        Masker::new([7u8; 32])
    }

    #[test]
    fn the_record_sums_up_every_stage() {
        let mut c = ctx();
        c.dialect = Dialect::OpenaiChat;
        c.path = "/v1/chat/completions".into();
        c.session_id = "s-1".into();
        c.agent_id = "a-1".into();
        c.reports.push(StageReport {
            decision: Decision::AllowWithRedaction,
            score: 0.4,
            findings: vec![finding("secret.one")],
            reasons: vec!["masked a key".into()],
            ..StageReport::new(Stage::Request)
        });
        c.reports.push(StageReport {
            decision: Decision::Block,
            score: 0.9,
            findings: vec![finding("secret.two")],
            reasons: vec!["blocked a reply".into()],
            ..StageReport::new(Stage::Response)
        });
        let e = audit_event(&c, &masker(), Some(403));
        assert_eq!(e.request_id, c.id);
        assert_eq!((e.session_id.as_str(), e.agent_id.as_str()), ("s-1", "a-1"));
        assert_eq!(
            (e.route.as_str(), e.dialect.as_str()),
            ("none", "openai_chat")
        );
        assert_eq!(e.stage, "request+response");
        assert_eq!(e.decision, "block");
        assert_eq!(e.total_score, 0.9);
        assert_eq!(e.reasons, ["masked a key", "blocked a reply"]);
        let rules: Vec<_> = e.findings.iter().map(|f| f.rule_id.as_str()).collect();
        assert_eq!(rules, ["secret.one", "secret.two"]);
        assert_eq!(e.status, Some(403));
        assert_eq!(e.path.as_deref(), Some("/v1/chat/completions"));
        assert_eq!(e.policy_version, "");
        assert!(e.approvals.is_empty() && e.latency_ms >= 0.0);
    }

    #[test]
    fn paths_are_bounded_and_keys_in_them_masked() {
        let mut c = ctx();
        c.path = format!("/v1/{}", "x".repeat(400));
        assert_eq!(audit_path(&c, &masker()).chars().count(), PATH_CHARS);
        let policy = Arc::new(Policy::load("dev", None).unwrap());
        let key = "AKIAIOSFODNN7EXAMPLE";
        c.path = format!("/tools/{key}/run");
        c.policy = Some(policy.clone());
        let path = audit_path(&c, &masker());
        assert!(!path.contains(key), "{path}");
        assert!(path.starts_with("/tools/"), "{path}");
        assert_eq!(
            audit_event(&c, &masker(), None).policy_version,
            policy.version
        );
    }

    #[test]
    fn forward_mode_records_the_full_url() {
        let mut c = ctx();
        c.path = "/v1/messages".into();
        c.forward = Some(ForwardTarget {
            mode: Mode::Connect,
            host: "api.example".into(),
            port: 443,
            tls: true,
            addr: None,
            verdict: None,
        });
        assert_eq!(audit_path(&c, &masker()), "https://api.example/v1/messages");
    }

    #[test]
    fn findings_are_recorded_with_rounded_scores() {
        let mut f = finding("secret.aws");
        f.score = 0.123456;
        let a = AuditFinding::from(&f);
        assert_eq!(a.rule_id, "secret.aws");
        assert_eq!(a.detector, f.detector.as_str());
        assert_eq!(a.severity, "high");
        assert_eq!(a.score, crate::decision::types::round_score(0.123456));
        assert_eq!(
            (a.location.as_deref(), a.evidence.as_deref()),
            (Some("user"), Some("AKIA…"))
        );
    }
}
