//! Resource limits (`[limits]` in the config file, `ASG_*` overrides):
//! how much inspection work runs at once and how long a request may queue
//! for it, and how many sessions, agents and pending approvals the state
//! keeps. Everything here bounds what hostile traffic can make the gateway
//! spend; what to *decide* stays in the policy.

use serde::Deserialize;
use std::time::Duration;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Bodies inspected at once, proxy and inspect API together
    /// (0 = the number of CPUs, at least 2). Inspection is CPU work: more
    /// slots than cores add memory (several times each body), not speed.
    pub inspect_concurrency: usize,
    /// Requests that may wait for an inspection slot; beyond, 503 at once.
    pub inspect_queue: usize,
    /// How long a request waits for a slot before 503 with `Retry-After`.
    pub inspect_wait_ms: u64,
    /// Sessions kept; beyond, the least recently active are forgotten.
    pub max_sessions: usize,
    /// Agents kept (agent-scope risk); beyond, the least recently active go.
    pub max_agents: usize,
    /// Approvals waiting for an operator at once; beyond, new requests for
    /// approval are refused (never silently dropped).
    pub max_pending_approvals: usize,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            inspect_concurrency: 0,
            inspect_queue: 64,
            inspect_wait_ms: 2_000,
            max_sessions: crate::state::config::DEFAULT_MAX_SESSIONS,
            max_agents: crate::state::config::DEFAULT_MAX_AGENTS,
            max_pending_approvals: crate::state::config::DEFAULT_MAX_PENDING_APPROVALS,
        }
    }
}

impl LimitsConfig {
    pub fn validate(&self) -> Result<(), super::ConfigError> {
        let invalid = |m: String| super::ConfigError::Invalid(m);
        for (name, v) in [
            ("limits.max_sessions (ASG_MAX_SESSIONS)", self.max_sessions),
            ("limits.max_agents (ASG_MAX_AGENTS)", self.max_agents),
            (
                "limits.max_pending_approvals (ASG_MAX_PENDING_APPROVALS)",
                self.max_pending_approvals,
            ),
        ] {
            if v == 0 {
                return Err(invalid(format!("{name} must be at least 1")));
            }
        }
        if self.inspect_wait_ms > 600_000 {
            return Err(invalid(
                "limits.inspect_wait_ms (ASG_INSPECT_WAIT_MS) must be at most 600000 (ten minutes)"
                    .to_string(),
            ));
        }
        Ok(())
    }

    /// Inspection slots: the configured number, or the CPUs (at least 2).
    pub fn inspect_slots(&self) -> usize {
        match self.inspect_concurrency {
            0 => std::thread::available_parallelism().map_or(2, |n| n.get().max(2)),
            n => n,
        }
    }

    pub fn inspect_wait(&self) -> Duration {
        Duration::from_millis(self.inspect_wait_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn env_overrides_and_validation() {
        let env: HashMap<&str, &str> = [
            ("ASG_INSPECT_CONCURRENCY", "3"),
            ("ASG_INSPECT_WAIT_MS", "250"),
            ("ASG_MAX_SESSIONS", "50"),
        ]
        .into();
        let mut c = crate::config::Config::default();
        c.apply_env(|k| env.get(k).map(|v| v.to_string())).unwrap();
        let l = c.limits;
        assert_eq!(l.inspect_slots(), 3);
        assert_eq!(l.inspect_wait(), Duration::from_millis(250));
        assert_eq!(l.max_sessions, 50);
        l.validate().unwrap();
        assert!(LimitsConfig::default().inspect_slots() >= 2);
        let err = crate::config::Config::default()
            .apply_env(|k| (k == "ASG_MAX_AGENTS").then(|| "lots".to_string()))
            .unwrap_err()
            .to_string();
        assert!(err.contains("ASG_MAX_AGENTS"), "{err}");
        let zero = LimitsConfig {
            max_pending_approvals: 0,
            ..LimitsConfig::default()
        };
        assert!(zero
            .validate()
            .unwrap_err()
            .to_string()
            .contains("at least 1"));
    }

    #[test]
    fn parses_from_toml() {
        let l: LimitsConfig =
            toml::from_str("inspect_concurrency = 4\nmax_pending_approvals = 20\n").unwrap();
        assert_eq!((l.inspect_concurrency, l.max_pending_approvals), (4, 20));
        assert!(toml::from_str::<LimitsConfig>("max_session = 1\n").is_err());
    }
}
