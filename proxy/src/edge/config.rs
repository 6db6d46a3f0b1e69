//! The admin edge's settings (`[admin]` in the config file, `ASG_ADMIN_*`
//! and key variables), built once by the composition root (`app.rs`).

use crate::state::config::AuditSync;
use serde::Deserialize;
use std::net::SocketAddr;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminConfig {
    /// Require an API key on the admin API (health and readiness stay open).
    pub auth_enabled: bool,
    /// Keys allowed to inspect and submit (agents).
    pub agent_keys: Vec<String>,
    /// Keys allowed to resolve approvals and read the operator API.
    pub operator_keys: Vec<String>,
    /// Header carrying the key.
    pub auth_header: String,
    /// Requests per minute per key (or per client address without auth); 0 = off.
    pub rate_limit_per_minute: u32,
    /// Failed authentications per minute per client address before 429;
    /// 0 = off. On by default: keys cannot be guessed at speed.
    pub auth_failures_per_minute: u32,
    /// Agent keys bound to an agent identity (`id = "key"`): such a key
    /// acts only as that agent. Keys in `agent_keys` act as
    /// `agent-key:<hash>`, the identity derived from the key.
    pub agents: std::collections::BTreeMap<String, String>,
    /// Seconds an admin connection may stay silent (idle between requests,
    /// or a request that stopped arriving) before it is closed.
    pub idle_timeout_secs: u64,
}

impl Default for AdminConfig {
    fn default() -> Self {
        AdminConfig {
            auth_enabled: false,
            agent_keys: Vec::new(),
            operator_keys: Vec::new(),
            auth_header: "x-api-key".to_string(),
            rate_limit_per_minute: 0,
            auth_failures_per_minute: 30,
            agents: Default::default(),
            idle_timeout_secs: 30,
        }
    }
}

/// What the admin router and listener read.
#[derive(Debug, Clone)]
pub struct EdgeConfig {
    pub admin: AdminConfig,
    /// The admin listener's address (a loopback one without auth only
    /// answers loopback `Host` names).
    pub admin_addr: SocketAddr,
    /// When a decision API answer waits for its audit record.
    pub audit_sync: AuditSync,
}

impl EdgeConfig {
    /// Without auth on a loopback listener, only loopback `Host` names are
    /// answered (DNS rebinding).
    pub fn loopback_hosts_only(&self) -> bool {
        !self.admin.auth_enabled && self.admin_addr.ip().is_loopback()
    }
}
