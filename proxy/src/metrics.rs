//! Prometheus metrics. Every label takes values from a closed set (routes
//! from configuration, dialects, decisions, detectors, rule families and
//! mask kinds from the policy), so series never grow with traffic.

use crate::decision::policy::{Policy, PolicyError};
use crate::decision::report::StageReport;
mod limits;
pub use limits::LimitMetrics;

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
    TextEncoder,
};

pub struct Metrics {
    registry: Registry,
    /// Proxied requests by route, dialect and final decision.
    pub requests: IntCounterVec,
    /// Decisions per stage (request / response / inspect).
    pub decisions: IntCounterVec,
    pub findings: IntCounterVec,
    pub redactions: IntCounterVec,
    pub upstream_latency: HistogramVec,
    pub upstream_errors: IntCounterVec,
    pub gateway_errors: IntCounterVec,
    pub policy_reloads: IntCounterVec,
    pub policy_info: IntGaugeVec,
    pub policy_reload_ok: IntGauge,
    /// Text parts the active policy found judged before, and those it
    /// judged (read from the policy when scraped; restart with a reload).
    pub memo_parts: IntGaugeVec,
    pub admin_requests: IntCounterVec,
    pub inspect_latency: HistogramVec,
    /// SSE events inspected in flight, by dialect.
    pub stream_events: IntCounterVec,
    /// Approval lifecycle events (`opened`, `approved`, `denied`,
    /// `released`, `refused_permit`).
    pub approvals: IntCounterVec,
    /// Forward proxy and transparent mode (tunnels, interception).
    pub forward: ForwardMetrics,
    /// Inspection slots and state caps.
    pub limits: LimitMetrics,
}

fn counter(r: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let c = IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric");
    r.register(Box::new(c.clone())).expect("unique metric");
    c
}

impl Metrics {
    pub fn new() -> Metrics {
        let r = Registry::new();
        let upstream_latency = HistogramVec::new(
            HistogramOpts::new(
                "asg_upstream_latency_seconds",
                "Time from sending the request upstream to the response header",
            )
            .buckets(vec![
                0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
            ]),
            &["route"],
        )
        .expect("valid metric");
        r.register(Box::new(upstream_latency.clone()))
            .expect("unique metric");
        let inspect_latency = HistogramVec::new(
            HistogramOpts::new(
                "asg_inspection_seconds",
                "CPU time spent inspecting one body",
            )
            .buckets(vec![
                0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.25,
            ]),
            &["stage"],
        )
        .expect("valid metric");
        r.register(Box::new(inspect_latency.clone()))
            .expect("unique metric");
        let policy_info = IntGaugeVec::new(
            Opts::new("asg_policy_info", "The active policy (value 1)"),
            &["profile", "version"],
        )
        .expect("valid metric");
        r.register(Box::new(policy_info.clone()))
            .expect("unique metric");
        let policy_reload_ok = IntGauge::new(
            "asg_policy_last_reload_success",
            "1 if the last policy (re)load succeeded",
        )
        .expect("valid metric");
        r.register(Box::new(policy_reload_ok.clone()))
            .expect("unique metric");
        let memo_parts = IntGaugeVec::new(
            Opts::new(
                "asg_detection_memo_parts",
                "Texts the active policy found judged before (hit) or judged (miss) since it was \
                 loaded: by the detectors (memo=detectors) and by the redactor, texts found clean \
                 before (memo=redaction)",
            ),
            &["memo", "result"],
        )
        .expect("valid metric");
        r.register(Box::new(memo_parts.clone()))
            .expect("unique metric");
        let forward = ForwardMetrics::register(&r);
        let limits = LimitMetrics::register(&r);
        Metrics {
            memo_parts,
            forward,
            limits,
            requests: counter(
                &r,
                "asg_requests_total",
                "Proxied requests by route, dialect and final decision",
                &["route", "dialect", "decision"],
            ),
            decisions: counter(
                &r,
                "asg_decisions_total",
                "Decisions by stage, dialect and decision",
                &["stage", "dialect", "decision"],
            ),
            findings: counter(
                &r,
                "asg_findings_total",
                "Findings by detector and rule family",
                &["detector", "family"],
            ),
            redactions: counter(
                &r,
                "asg_redactions_total",
                "Masked values by kind",
                &["kind"],
            ),
            upstream_errors: counter(
                &r,
                "asg_upstream_errors_total",
                "Upstream failures by route and kind",
                &["route", "kind"],
            ),
            gateway_errors: counter(
                &r,
                "asg_gateway_responses_total",
                "Responses the gateway wrote itself, by reason",
                &["reason"],
            ),
            policy_reloads: counter(
                &r,
                "asg_policy_reloads_total",
                "Policy reload attempts by result",
                &["result"],
            ),
            admin_requests: counter(
                &r,
                "asg_admin_requests_total",
                "Admin API requests by route template and status",
                &["path", "status"],
            ),
            stream_events: counter(
                &r,
                "asg_stream_events_total",
                "Server-sent events inspected in flight, by dialect",
                &["dialect"],
            ),
            approvals: counter(
                &r,
                "asg_approvals_total",
                "Approval events: opened, approved, denied, released, refused_permit",
                &["event"],
            ),
            upstream_latency,
            inspect_latency,
            policy_info,
            policy_reload_ok,
            registry: r,
        }
    }

    /// Count one stage's decision, findings and masks.
    pub fn record_stage(&self, dialect: &str, report: &StageReport) {
        self.decisions
            .with_label_values(&[report.stage.as_str(), dialect, report.decision.as_str()])
            .inc();
        for f in &report.findings {
            self.findings
                .with_label_values(&[f.detector.as_str(), f.family()])
                .inc();
        }
        for m in &report.masks {
            self.redactions.with_label_values(&[m.kind.as_str()]).inc();
        }
    }

    /// The active policy's memo figures (`Detectors::memo_stats`,
    /// `Redactor::memo_stats`).
    pub fn observe_memo(&self, detectors: (u64, u64), redaction: (u64, u64)) {
        for (memo, (hits, misses)) in [("detectors", detectors), ("redaction", redaction)] {
            for (result, v) in [("hit", hits), ("miss", misses)] {
                self.memo_parts
                    .with_label_values(&[memo, result])
                    .set(i64::try_from(v).unwrap_or(i64::MAX));
            }
        }
    }

    /// For metrics owned by other layers (the shared-state backend's).
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut buf)
            .expect("text encoding cannot fail");
        String::from_utf8(buf).expect("prometheus text is UTF-8")
    }
}

// --- forward proxy and transparent mode ---

/// Connection-level counters of the forward proxy. Requests inside an
/// intercepted tunnel are counted like reverse-mode requests
/// (`asg_requests_total`, with the forward route names).
///
/// Label values: `mode` ∈ {connect, transparent, absolute}; `action` ∈
/// {intercept, passthrough, deny}; `reason` ∈ {bad_request, client_tls,
/// not_tls, upstream_connect, loop, internal_destination, not_redirected,
/// timeout};
/// `direction` ∈ {up, down}; `source`/`leaf` ∈ {minted, cached}.
pub struct ForwardMetrics {
    pub decisions: IntCounterVec,
    pub failures: IntCounterVec,
    pub tunnel_bytes: IntCounterVec,
    pub open: IntGaugeVec,
    pub leaves: IntCounterVec,
    pub handshake: HistogramVec,
}

impl ForwardMetrics {
    fn register(r: &Registry) -> ForwardMetrics {
        let open = IntGaugeVec::new(
            Opts::new(
                "asg_forward_open_connections",
                "Open forward-proxy connections (tunnels and transparent connections)",
            ),
            &["mode"],
        )
        .expect("valid metric");
        r.register(Box::new(open.clone())).expect("unique metric");
        let handshake = HistogramVec::new(
            HistogramOpts::new(
                "asg_forward_tls_handshake_seconds",
                "Client-side TLS handshake of intercepted connections, including leaf minting",
            )
            .buckets(vec![
                0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
            ]),
            &["leaf"],
        )
        .expect("valid metric");
        r.register(Box::new(handshake.clone()))
            .expect("unique metric");
        ForwardMetrics {
            decisions: counter(
                r,
                "asg_forward_decisions_total",
                "Forward-proxy destinations by mode and policy action",
                &["mode", "action"],
            ),
            failures: counter(
                r,
                "asg_forward_failures_total",
                "Forward-proxy connections that failed before any request, by mode and reason",
                &["mode", "reason"],
            ),
            tunnel_bytes: counter(
                r,
                "asg_tunnel_bytes_total",
                "Bytes relayed through blind (passthrough) tunnels",
                &["mode", "direction"],
            ),
            leaves: counter(
                r,
                "asg_tls_leaf_certificates_total",
                "Leaf certificates served to intercepted clients, minted or from the cache",
                &["source"],
            ),
            open,
            handshake,
        }
    }
}
// --- end forward proxy ---

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// A policy reload succeeded (the app's reload observer calls this).
    pub fn policy_reloaded(&self, policy: &Policy) {
        self.policy_reloads.with_label_values(&["success"]).inc();
        self.policy_info.reset();
        self.policy_info
            .with_label_values(&[policy.name(), &policy.version])
            .set(1);
        self.policy_reload_ok.set(1);
    }

    /// A policy reload failed; the previous policy stays in force.
    pub fn policy_reload_failed(&self, _error: &PolicyError) {
        self.policy_reloads.with_label_values(&["failure"]).inc();
        self.policy_reload_ok.set(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_policy_version_and_reload_failures() {
        let m = Metrics::new();
        let p = Policy::load("dev", None).unwrap();
        m.policy_reloaded(&p);
        m.policy_reload_failed(&PolicyError::NotFound("x".into()));
        let text = m.render();
        assert!(
            text.contains(&format!(
                "asg_policy_info{{profile=\"dev\",version=\"{}\"}} 1",
                p.version
            )),
            "{text}"
        );
        assert!(text.contains("asg_policy_reloads_total{result=\"failure\"} 1"));
        assert!(text.contains("asg_policy_last_reload_success 0"));
    }
}
