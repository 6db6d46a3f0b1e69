//! The per-request context the hooks share ([`Ctx`]), and what is read off
//! it: the request's decision, its stage label and rule ids, the status the
//! answer went out with.

use super::errors::Denial;
use crate::app::App;
use crate::datapath::dialect::Dialect;
use crate::datapath::encoding::{BodyDecoding, Codings};
use crate::datapath::enforce::{Inspection, StageReport};
use crate::datapath::forward::ForwardTarget;
use crate::datapath::route::Route;
use crate::datapath::session_gate::SessionGate;
use crate::datapath::stream::StreamRewriter;
use crate::datapath::timeouts::{Timeouts, Watchdog};
use crate::decision::{Decision, Policy};
use bytes::{Bytes, BytesMut};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What happens to the request body on its way upstream.
#[derive(Default)]
pub(super) enum RequestBody {
    /// Not inspected, or nothing to inspect.
    #[default]
    Untouched,
    /// Read and judged in `request_filter`; `forward` replaces the replayed
    /// body when the body was decoded or masked.
    Prefetched { forward: Option<Bytes> },
    /// Being collected in `request_body_filter`.
    Collecting { buf: BytesMut },
}

/// What happens to a non-stream response body on its way to the client.
#[derive(Default)]
pub(super) enum ResponseBody {
    #[default]
    Pass,
    Buffer {
        buf: BytesMut,
        /// Why the body cannot be inspected (too large, could not be
        /// decoded), with the metric label.
        failed: Option<(String, &'static str)>,
    },
}

pub struct Ctx {
    /// Counts this request among those in flight while the context lives.
    _in_flight: InFlight,
    pub(super) id: String,
    pub(super) started: Instant,
    pub(super) route: Option<Arc<Route>>,
    pub(super) dialect: Dialect,
    pub(super) policy: Option<Arc<Policy>>,
    pub(super) path: String,
    pub(super) session_id: String,
    pub(super) agent_id: String,
    /// The request body's content codings.
    pub(super) encoding: Codings,
    /// How the response body is decoded for inspection (inspected routes).
    pub(super) resp_decoding: BodyDecoding,
    pub(super) req: RequestBody,
    pub(super) resp: ResponseBody,
    pub(super) upstream_status: Option<u16>,
    pub(super) upstream_sent: Option<Instant>,
    pub(super) upstream_latency: Option<Duration>,
    pub(super) denial: Option<Denial>,
    /// Status the gateway answered with itself, if it did.
    pub(super) answered: Option<u16>,
    pub(super) reports: Vec<StageReport>,
    /// The policy's redactor, also masking the passwords and keys the
    /// request's system prompt keeps; `None`: nothing kept.
    pub(super) kept: Option<Arc<crate::decision::redact::Redactor>>,
    /// Set when the upstream answered with an inspected event stream.
    pub(super) stream: Option<Box<StreamRewriter>>,
    /// The session layer for this request (inspected routes only).
    pub(super) gate: Option<Arc<SessionGate>>,
    /// The audit record was written (and made durable) before the answer.
    pub(super) audited: bool,
    /// Written at the end of the upstream body, not yet known durable: the
    /// last chunk waits for it.
    pub(super) audit_pending: Option<crate::state::Ticket>,
    /// Forward-mode traffic: where the client is really going.
    pub(super) forward: Option<ForwardTarget>,
    /// `Retry-After` seconds for an answer the gateway writes (busy).
    pub(super) retry_after: Option<u64>,
    /// An inspected Responses WebSocket.
    pub(super) ws: Option<Box<crate::datapath::ws::WsConn>>,
    /// This request's spans, when OpenTelemetry is on.
    pub(super) trace: Option<Box<crate::telemetry::RequestTrace>>,
    /// The normalised path to send upstream instead of the client's
    /// spelling (an inspected path written in an unusual way).
    pub(super) clean_path: Option<String>,
    /// An MCP request's JSON-RPC id (for answers written in the server's place).
    pub(super) rpc_id: serde_json::Value,
    /// Upstream first-byte, idle and total deadlines.
    pub(super) watch: Watchdog,
}

impl Ctx {
    /// A fresh request: uninspected until `request_filter` routes it.
    pub(super) fn new(timeouts: Timeouts) -> Ctx {
        Ctx {
            id: crate::util::new_request_uuid().simple().to_string(),
            started: Instant::now(),
            route: None,
            dialect: Dialect::Passthrough,
            policy: None,
            path: String::new(),
            session_id: String::new(),
            agent_id: String::new(),
            encoding: Codings::identity(),
            resp_decoding: BodyDecoding::Identity,
            req: RequestBody::Untouched,
            resp: ResponseBody::Pass,
            upstream_status: None,
            upstream_sent: None,
            upstream_latency: None,
            denial: None,
            answered: None,
            reports: Vec::new(),
            kept: None,
            stream: None,
            gate: None,
            audited: false,
            audit_pending: None,
            forward: None,
            retry_after: None,
            ws: None,
            trace: None,
            clean_path: None,
            rpc_id: serde_json::Value::Null,
            watch: Watchdog::new(timeouts),
            _in_flight: InFlight::enter(),
        }
    }

    /// The strictest decision of the stages so far.
    pub(super) fn decision(&self) -> Decision {
        self.reports
            .iter()
            .map(|r| r.decision)
            .max()
            .unwrap_or(Decision::Allow)
    }

    pub(super) fn inspection<'a>(
        &'a self,
        app: &'a App,
        policy: &'a Policy,
        tool: &'a str,
    ) -> Inspection<'a> {
        Inspection {
            policy,
            masker: &app.masker,
            dialect: self.dialect,
            request_id: &self.id,
            tool_name: tool,
            rpc_id: self.rpc_id.clone(),
            memo_scope: crate::decision::Subject::scope_of(&self.agent_id),
            kept: self.kept.as_deref(),
        }
    }

    /// The route's name, `none` before (or without) one.
    pub(super) fn route_name(&self) -> &str {
        self.route.as_ref().map_or("none", |r| r.name.as_str())
    }

    /// The policy's body limit (none before a policy is pinned).
    pub(super) fn max_body_bytes(&self) -> usize {
        self.policy
            .as_ref()
            .map_or(usize::MAX, |p| p.file.proxy.max_body_bytes)
    }

    /// Approvals the stages left waiting for an operator.
    pub(super) fn pending_approvals(&self) -> Vec<String> {
        self.reports
            .iter()
            .flat_map(|r| r.pending_approvals())
            .collect()
    }

    /// The status this request was finally answered with: the gateway's
    /// own answer, else the written response head (`written`), else the
    /// upstream's.
    pub(super) fn final_status(&self, written: Option<u16>) -> Option<u16> {
        self.answered.or(written).or(self.upstream_status)
    }
}

/// The status of the answer being finished. pingora may write the header
/// and the last chunk together, after the body filters: then the
/// upstream's status is the answer.
pub(super) fn answer_status(written: Option<u16>, ctx: &Ctx) -> Option<u16> {
    written.or(ctx.upstream_status)
}

/// The rule ids of the findings in these reports, each once.
pub(super) fn rule_ids(reports: &[StageReport]) -> Vec<String> {
    let mut ids: Vec<String> = Vec::new();
    for f in reports.iter().flat_map(|r| r.findings.iter()) {
        if !ids.contains(&f.rule_id) {
            ids.push(f.rule_id.clone());
        }
    }
    ids
}

/// `request`, `request+response`, or `passthrough` for uninspected traffic.
pub(super) fn stage_label(ctx: &Ctx) -> String {
    if ctx.reports.is_empty() {
        return if ctx.dialect.is_inspected() {
            "gateway".to_string()
        } else {
            "passthrough".to_string()
        };
    }
    ctx.reports
        .iter()
        .map(|r| r.stage.as_str())
        .collect::<Vec<_>>()
        .join("+")
}

/// Requests the process is serving now: one per live request context
/// (every listener's gateway counts here).
static IN_FLIGHT: AtomicUsize = AtomicUsize::new(0);

/// A request's place in [`IN_FLIGHT`], given back when its context drops.
pub(super) struct InFlight(());

impl InFlight {
    fn enter() -> InFlight {
        IN_FLIGHT.fetch_add(1, Ordering::Relaxed);
        InFlight(())
    }

    /// How many requests are in flight now.
    pub(super) fn now() -> usize {
        IN_FLIGHT.load(Ordering::Relaxed)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        IN_FLIGHT.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::super::testkit::{ctx, finding};
    use super::*;
    use crate::datapath::enforce::Stage;

    fn report(stage: Stage, decision: Decision, rules: &[&str]) -> StageReport {
        StageReport {
            decision,
            findings: rules.iter().map(|r| finding(r)).collect(),
            ..StageReport::new(stage)
        }
    }

    #[test]
    fn the_decision_is_the_strictest_stage() {
        let mut c = ctx();
        assert_eq!(c.decision(), Decision::Allow);
        c.reports.push(report(Stage::Request, Decision::Block, &[]));
        c.reports
            .push(report(Stage::Response, Decision::Allow, &[]));
        assert_eq!(c.decision(), Decision::Block);
    }

    #[test]
    fn stage_label_names_each_stage_or_the_kind_of_traffic() {
        let mut c = ctx();
        assert_eq!(stage_label(&c), "passthrough");
        c.dialect = Dialect::OpenaiChat;
        assert_eq!(stage_label(&c), "gateway");
        c.reports.push(report(Stage::Request, Decision::Allow, &[]));
        c.reports
            .push(report(Stage::Response, Decision::Allow, &[]));
        assert_eq!(stage_label(&c), "request+response");
    }

    #[test]
    fn rule_ids_are_listed_once_in_order() {
        let reports = vec![
            report(Stage::Request, Decision::Block, &["b.rule", "a.rule"]),
            report(Stage::Response, Decision::Allow, &["a.rule", "c.rule"]),
        ];
        assert_eq!(rule_ids(&reports), ["b.rule", "a.rule", "c.rule"]);
        assert!(rule_ids(&[]).is_empty());
    }

    #[test]
    fn final_status_prefers_the_gateways_own_answer() {
        let mut c = ctx();
        assert_eq!(c.final_status(None), None);
        c.upstream_status = Some(200);
        assert_eq!(c.final_status(None), Some(200));
        assert_eq!(c.final_status(Some(502)), Some(502));
        assert_eq!(answer_status(None, &c), Some(200));
        assert_eq!(answer_status(Some(204), &c), Some(204));
        c.answered = Some(403);
        assert_eq!(c.final_status(Some(502)), Some(403));
    }

    #[test]
    fn limits_and_names_have_safe_defaults_before_routing() {
        let mut c = ctx();
        assert_eq!(c.route_name(), "none");
        assert_eq!(c.max_body_bytes(), usize::MAX);
        let policy = crate::decision::Policy::load("dev", None).unwrap();
        let limit = policy.file.proxy.max_body_bytes;
        c.policy = Some(Arc::new(policy));
        assert_eq!(c.max_body_bytes(), limit);
        assert!(c.pending_approvals().is_empty());
    }
}
