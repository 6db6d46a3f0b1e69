//! The Redis backend's metrics. Created unregistered (the state layer does
//! not know the admin listener's registry); the composition root calls
//! [`RedisMetrics::register`]. Labels take values from closed sets.

use prometheus::{IntCounter, IntCounterVec, IntGauge, Opts, Registry};

pub struct RedisMetrics {
    /// Decided locally because Redis was unreachable: `load` (session and
    /// agent risk), `rate` (rate limits), `record` (risk kept locally and
    /// queued for replay).
    pub degraded: IntCounterVec,
    /// Refused (fail closed) because Redis was unreachable or did not
    /// confirm durability: `gate`, `resolve`, `submit`, `read`.
    pub unavailable: IntCounterVec,
    /// 1 while the command connection answers.
    pub connected: IntGauge,
    /// 1 while the pub/sub subscription is live (else held calls poll).
    pub pubsub: IntGauge,
    pub reconnects: IntCounter,
    /// Records queued while Redis was down and dropped past the backlog cap.
    pub records_dropped: IntCounter,
    /// Records queued, not yet in Redis.
    pub backlog: IntGauge,
}

impl Default for RedisMetrics {
    fn default() -> Self {
        let vec = |name: &str, help: &str, label: &str| {
            IntCounterVec::new(Opts::new(name, help), &[label]).expect("valid metric")
        };
        RedisMetrics {
            degraded: vec(
                "asg_state_degraded_total",
                "Operations decided locally because the shared state was unreachable",
                "op",
            ),
            unavailable: vec(
                "asg_state_unavailable_total",
                "Operations refused (fail closed) because the shared state was unreachable",
                "op",
            ),
            connected: IntGauge::new("asg_state_connected", "1 while the shared state answers")
                .expect("valid metric"),
            pubsub: IntGauge::new(
                "asg_state_pubsub_connected",
                "1 while approval decisions arrive by pub/sub (else held calls poll)",
            )
            .expect("valid metric"),
            reconnects: IntCounter::new(
                "asg_state_reconnects_total",
                "Connections to the shared state re-established",
            )
            .expect("valid metric"),
            records_dropped: IntCounter::new(
                "asg_state_records_dropped_total",
                "Risk records dropped because the backlog for an unreachable shared state was full",
            )
            .expect("valid metric"),
            backlog: IntGauge::new(
                "asg_state_backlog",
                "Risk records waiting to be written to the shared state",
            )
            .expect("valid metric"),
        }
    }
}

impl RedisMetrics {
    pub fn register(&self, r: &Registry) -> prometheus::Result<()> {
        r.register(Box::new(self.degraded.clone()))?;
        r.register(Box::new(self.unavailable.clone()))?;
        r.register(Box::new(self.connected.clone()))?;
        r.register(Box::new(self.pubsub.clone()))?;
        r.register(Box::new(self.reconnects.clone()))?;
        r.register(Box::new(self.records_dropped.clone()))?;
        r.register(Box::new(self.backlog.clone()))?;
        Ok(())
    }
}
