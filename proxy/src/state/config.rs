//! The state layer's settings: how audit is kept and when an answer waits
//! for its record (`ASG_AUDIT_*`), and where state lives. Built once from
//! the configuration by the composition root (`app.rs`).

use serde::Deserialize;
use std::path::PathBuf;

/// How long and how much audit is kept; enforced by a background task.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuditConfig {
    /// Records older than this many days are deleted (0 = keep forever).
    pub max_age_days: u64,
    /// The oldest records are deleted while the log exceeds this many bytes (0 = no limit).
    pub max_bytes: u64,
    /// Seconds between retention passes.
    pub retention_interval_secs: u64,
    /// When a proxied response may leave: `always` after its audit record
    /// is on disk (default), or `decisions`: only answers the gateway
    /// writes itself (refusals, approvals, held calls) wait; forwarded
    /// responses leave at once and their records follow within a flush.
    pub sync: AuditSync,
    /// Also write every audit record to stdout as a JSON line (for
    /// Kubernetes log collectors); the local audit log stays the durable copy.
    pub stdout: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditSync {
    Always,
    Decisions,
}

impl Default for AuditConfig {
    fn default() -> Self {
        AuditConfig {
            max_age_days: 30,
            max_bytes: 1 << 30,
            retention_interval_secs: 60,
            sync: AuditSync::Always,
            stdout: false,
        }
    }
}

/// How many sessions, agents and pending approvals are kept by default
/// (`[limits]` in the config file).
pub const DEFAULT_MAX_SESSIONS: usize = 10_000;
pub const DEFAULT_MAX_AGENTS: usize = 10_000;
pub const DEFAULT_MAX_PENDING_APPROVALS: usize = 1_000;

/// Where state lives and how much of it is kept.
#[derive(Debug, Clone)]
pub struct StateConfig {
    /// The sled folder (audit, and sessions and approvals without shared state).
    pub data_dir: PathBuf,
    /// Sessions, agents and pending approvals kept (see `store.caps`).
    pub max_sessions: usize,
    pub max_agents: usize,
    pub max_pending_approvals: usize,
}
