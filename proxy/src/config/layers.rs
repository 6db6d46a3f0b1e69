//! The configuration split into each layer's own settings, once, by the
//! composition root (`app.rs`): the data path, the admin edge, the state
//! and forward mode read these and never the whole [`Config`].

use super::{Config, ConfigError};
use crate::datapath::config::{ForwardConfig, ProxyConfig};
use crate::datapath::tls::CaPaths;
use crate::edge::config::EdgeConfig;
use crate::state::config::StateConfig;

impl Config {
    pub fn proxy_config(&self) -> ProxyConfig {
        ProxyConfig {
            listen: self.listen.clone(),
            transparent_listen: self.transparent_listen.clone(),
            forward_proxy: self.forward_proxy,
            threads: match self.threads {
                0 => std::thread::available_parallelism().map_or(2, |n| n.get()),
                n => n,
            },
            data_dir: self.data_dir.clone(),
            upstream_ca: self.upstream_ca.clone(),
            ca: self.ca_paths(),
            timeouts: self.upstream_timeouts(),
            agent_id: self.agent_id.clone(),
            audit_sync: self.audit.sync,
        }
    }

    pub fn forward_config(&self) -> Result<ForwardConfig, ConfigError> {
        let mut own = vec![self.listen_addr()?, self.admin_addr()?];
        if let Some(t) = &self.transparent_listen {
            own.push(t.parse().map_err(|_| {
                ConfigError::Invalid(format!(
                    "transparent listen address {t:?} (ASG_TRANSPARENT_LISTEN) is not host:port"
                ))
            })?);
        }
        Ok(ForwardConfig {
            host_routes: self
                .routes
                .iter()
                .filter(|r| r.host.is_some())
                .cloned()
                .collect(),
            own,
            connect_to: self.connect_to_map()?,
            so_mark: self.so_mark,
            absolute_form: self.forward_proxy,
        })
    }

    pub fn edge_config(&self) -> Result<EdgeConfig, ConfigError> {
        Ok(EdgeConfig {
            admin: self.admin.clone(),
            admin_addr: self.admin_addr()?,
            audit_sync: self.audit.sync,
        })
    }

    pub fn state_config(&self) -> StateConfig {
        StateConfig {
            data_dir: self.data_dir.clone(),
            max_sessions: self.limits.max_sessions,
            max_agents: self.limits.max_agents,
            max_pending_approvals: self.limits.max_pending_approvals,
        }
    }

    /// The interception CA's files (`ca_cert`/`ca_key`, or the data folder's).
    pub fn ca_paths(&self) -> CaPaths {
        CaPaths::new(
            &self.data_dir,
            self.ca_cert.as_deref(),
            self.ca_key.as_deref(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    /// The data path, the admin edge and the state read their own settings:
    /// none of their product files names the configuration (which would
    /// also bring back the config ↔ route import cycle).
    #[test]
    fn layers_never_read_the_whole_configuration() {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut offenders = Vec::new();
        let mut stack: Vec<_> = ["datapath", "edge", "state"]
            .iter()
            .map(|d| src.join(d))
            .collect();
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    stack.push(path);
                    continue;
                }
                let name = path.file_name().unwrap().to_string_lossy();
                if !name.ends_with(".rs") || name.contains("test") {
                    continue;
                }
                let text = std::fs::read_to_string(&path).unwrap();
                let product = text.split("#[cfg(test)]").next().unwrap_or("");
                for (i, line) in product.lines().enumerate() {
                    if line.contains("crate::config") || line.contains(".config.") {
                        let rel = path.strip_prefix(&src).unwrap().display().to_string();
                        offenders.push(format!("src/{rel}:{}: {}", i + 1, line.trim()));
                    }
                }
            }
        }
        assert!(
            offenders.is_empty(),
            "read the layer's own settings (app.proxy, app.edge, app.state, app.audit):\n{}",
            offenders.join("\n")
        );
    }

    #[test]
    fn each_layer_gets_its_part() {
        let mut c = Config {
            threads: 0,
            agent_id: Some("team/a".into()),
            transparent_listen: Some("127.0.0.1:15001".into()),
            ..Config::default()
        };
        c.audit.sync = crate::state::config::AuditSync::Decisions;
        let p = c.proxy_config();
        assert!(p.threads >= 1);
        assert_eq!(p.agent_id.as_deref(), Some("team/a"));
        assert_eq!(p.audit_sync, c.audit.sync);
        assert_eq!(p.timeouts, c.upstream_timeouts());
        assert_eq!(p.ca.cert, c.data_dir.join("ca/ca.pem"));
        let f = c.forward_config().unwrap();
        assert_eq!(f.own.len(), 3, "proxy, admin and transparent listeners");
        let e = c.edge_config().unwrap();
        assert!(e.loopback_hosts_only());
        assert_eq!(e.audit_sync, c.audit.sync);
        assert_eq!(c.state_config().max_sessions, c.limits.max_sessions);
    }
}
