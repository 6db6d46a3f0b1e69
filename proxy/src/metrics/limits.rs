//! Metrics of the resource limits: inspection slots and state caps.

use crate::inspect_slots::SlotMetrics;
use prometheus::{IntCounterVec, IntGauge, Registry};

/// Label values: `surface` ∈ {request, response, websocket, inspect_api}; `reason` ∈
/// {queue_full, timeout}; `scope` ∈ {session, agent}; eviction `reason` ∈
/// {cap, idle}.
pub struct LimitMetrics {
    pub slots: SlotMetrics,
    /// Sessions and agents forgotten: over their cap, or idle too long.
    pub evicted: IntCounterVec,
}

fn gauge(r: &Registry, name: &str, help: &str) -> IntGauge {
    let g = IntGauge::new(name, help).expect("valid metric");
    r.register(Box::new(g.clone())).expect("unique metric");
    g
}

impl LimitMetrics {
    pub fn register(r: &Registry) -> LimitMetrics {
        LimitMetrics {
            slots: SlotMetrics {
                in_flight: gauge(r, "asg_inspect_in_flight", "Bodies being inspected now"),
                queued: gauge(
                    r,
                    "asg_inspect_queued",
                    "Requests waiting for an inspection slot",
                ),
                refused: super::counter(
                    r,
                    "asg_inspect_refused_total",
                    "Requests refused (503) because every inspection slot was busy, by surface and reason",
                    &["surface", "reason"],
                ),
            },
            evicted: super::counter(
                r,
                "asg_state_evicted_total",
                "Sessions and agents forgotten, by scope and reason: cap (least recently active first, over the configured maximum) or idle (expired)",
                &["scope", "reason"],
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registers_and_renders() {
        let r = Registry::new();
        let m = LimitMetrics::register(&r);
        m.slots
            .refused
            .with_label_values(&["request", "timeout"])
            .inc();
        m.evicted.with_label_values(&["session", "cap"]).inc_by(3);
        let names: Vec<String> = r.gather().iter().map(|f| f.name().to_string()).collect();
        for n in [
            "asg_inspect_in_flight",
            "asg_inspect_queued",
            "asg_inspect_refused_total",
            "asg_state_evicted_total",
        ] {
            assert!(names.iter().any(|x| x == n), "{n}: {names:?}");
        }
    }
}
