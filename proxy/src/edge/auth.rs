//! Admin API authentication and roles.
//!
//! Two roles: agents may inspect; operators may also resolve approvals and
//! read the operator API. With auth off (the default, on a loopback
//! listener) every caller is treated as an operator. Keys are compared in
//! constant time, and only `/health` and `/ready` (exactly) are exempt: the
//! original exempted every path *starting* with them.

use crate::config::AdminConfig;
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
    agent_keys: Vec<Vec<u8>>,
    operator_keys: Vec<Vec<u8>>,
}

pub const EXEMPT_PATHS: &[&str] = &["/health", "/ready"];

impl Authenticator {
    pub fn new(cfg: &AdminConfig) -> Self {
        Authenticator {
            enabled: cfg.auth_enabled,
            header: cfg.auth_header.to_ascii_lowercase(),
            agent_keys: cfg
                .agent_keys
                .iter()
                .map(|k| k.as_bytes().to_vec())
                .collect(),
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
    /// Accepts the configured header or `Authorization: Bearer <key>`.
    pub fn role_for(&self, key: Option<&str>) -> Option<Role> {
        if !self.enabled {
            return Some(Role::Operator);
        }
        let key = key?.as_bytes();
        // Check every key (no early exit) so timing does not reveal which list matched.
        let operator = self
            .operator_keys
            .iter()
            .fold(false, |hit, k| hit | constant_time_eq(k, key));
        let agent = self
            .agent_keys
            .iter()
            .fold(false, |hit, k| hit | constant_time_eq(k, key));
        if operator {
            Some(Role::Operator)
        } else if agent {
            Some(Role::Agent)
        } else {
            None
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
    fn auth_off_means_local_operator() {
        let a = Authenticator::new(&AdminConfig::default());
        assert_eq!(a.role_for(None), Some(Role::Operator));
    }
}
