//! Admin API authentication and roles.
//!
//! Two roles: agents may inspect; operators may also resolve approvals and
//! read the operator API. With auth off (the default, on a loopback
//! listener) every caller is treated as an operator. Keys are compared in
//! constant time, and only `/health` and `/ready` (exactly) are exempt: the
//! a prefix match would also exempt `/health/…` and `/ready…` paths.

use super::config::AdminConfig;
use crate::util::constant_time_eq;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    Agent,
    Operator,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Agent => "agent",
            Role::Operator => "operator",
        }
    }
}

pub struct Authenticator {
    enabled: bool,
    header: String,
    /// Agent keys and the identity each acts as.
    agent_keys: Vec<(Vec<u8>, String)>,
    operator_keys: Vec<Vec<u8>>,
}

pub const EXEMPT_PATHS: &[&str] = &["/health", "/ready"];

/// Who a presented key is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub role: Role,
    /// The only agent identity an agent key may act as: its configured id
    /// (`ASG_AGENTS`), or `agent-key:<hash>` for a key of `ASG_AGENT_KEYS`.
    /// `None` for operators and for the local caller (auth off).
    pub agent: Option<String>,
}

/// A non-secret name for a key: the role and 8 hex digits of its SHA-256.
pub fn key_name(role: Role, key: &str) -> String {
    use sha2::{Digest, Sha256};
    format!(
        "{}-key:{}",
        role.as_str(),
        &hex::encode(Sha256::digest(key.as_bytes()))[..8]
    )
}

impl Authenticator {
    pub fn new(cfg: &AdminConfig) -> Self {
        let unbound = cfg
            .agent_keys
            .iter()
            .map(|k| (k.as_bytes().to_vec(), key_name(Role::Agent, k)));
        let bound = cfg
            .agents
            .iter()
            .map(|(id, k)| (k.as_bytes().to_vec(), id.clone()));
        Authenticator {
            enabled: cfg.auth_enabled,
            header: cfg.auth_header.to_ascii_lowercase(),
            agent_keys: unbound.chain(bound).collect(),
            operator_keys: cfg
                .operator_keys
                .iter()
                .map(|k| k.as_bytes().to_vec())
                .collect(),
        }
    }

    pub fn enabled(&self) -> bool {
        self.enabled
    }

    pub fn header(&self) -> &str {
        &self.header
    }

    /// The caller's role for a presented key (`None` when auth rejects it).
    pub fn role_for(&self, key: Option<&str>) -> Option<Role> {
        self.identify(key).map(|p| p.role)
    }

    /// Who presents `key` (`None` when auth rejects it). Accepts the
    /// configured header or `Authorization: Bearer <key>`.
    pub fn identify(&self, key: Option<&str>) -> Option<Principal> {
        if !self.enabled {
            return Some(Principal {
                role: Role::Operator,
                agent: None,
            });
        }
        let key = key?.as_bytes();
        // Check every key (no early exit) so timing does not reveal which list matched.
        let operator = self
            .operator_keys
            .iter()
            .fold(false, |hit, k| hit | constant_time_eq(k, key));
        let agent =
            self.agent_keys
                .iter()
                .fold(None, |hit, (k, id)| match constant_time_eq(k, key) {
                    true => Some(id),
                    false => hit,
                });
        if operator {
            Some(Principal {
                role: Role::Operator,
                agent: None,
            })
        } else {
            agent.map(|id| Principal {
                role: Role::Agent,
                agent: Some(id.clone()),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth() -> Authenticator {
        Authenticator::new(&AdminConfig {
            auth_enabled: true,
            agent_keys: vec!["agent-key".into()],
            operator_keys: vec!["op-key".into()],
            ..AdminConfig::default()
        })
    }

    #[test]
    fn roles_by_key() {
        let a = auth();
        assert_eq!(a.role_for(Some("agent-key")), Some(Role::Agent));
        assert_eq!(a.role_for(Some("op-key")), Some(Role::Operator));
        assert_eq!(a.role_for(Some("nope")), None);
        assert_eq!(a.role_for(None), None);
    }

    #[test]
    fn agent_keys_carry_their_identity() {
        let mut cfg = AdminConfig {
            auth_enabled: true,
            agent_keys: vec!["plain".into()],
            ..AdminConfig::default()
        };
        cfg.agents.insert("reporter".into(), "k-rep".into());
        let a = Authenticator::new(&cfg);
        let bound = a.identify(Some("k-rep")).unwrap();
        assert_eq!(bound.agent.as_deref(), Some("reporter"));
        let plain = a.identify(Some("plain")).unwrap();
        assert_eq!(plain.agent, Some(key_name(Role::Agent, "plain")));
        assert!(plain.agent.unwrap().starts_with("agent-key:"));
        assert_eq!(a.identify(Some("k-rep2")), None);
    }

    #[test]
    fn auth_off_means_local_operator() {
        let a = Authenticator::new(&AdminConfig::default());
        assert_eq!(a.role_for(None), Some(Role::Operator));
    }
}
