//! Runtime configuration: where to listen, where to send traffic, where to
//! keep state. Read from an optional TOML file, then overridden by `ASG_*`
//! environment variables (the names `asg --help` lists).
//!
//! This is deployment configuration; what to *decide* lives in policy
//! profiles (`policies/`), which hot-reload independently.

use crate::datapath::dialect::ApiKind;
use serde::Deserialize;

// Each layer owns the part of the file it reads (the TOML shape is this
// struct's); the paths below stay valid for code that names them here.
pub use crate::datapath::config::RouteConfig;
pub use crate::edge::config::AdminConfig;
pub use crate::state::config::{AuditConfig, AuditSync};
pub use crate::util::split_host_port;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

pub mod env;
mod error;
mod layers;
pub mod limits;
pub use error::ConfigError;
pub use limits::LimitsConfig;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Proxy listener (agents and SDKs connect here).
    pub listen: String,
    /// Admin listener: health, metrics, inspect and operator API, console.
    pub admin_listen: String,
    /// Policy profile name (`dev`, `production`, `strict`) or a file path.
    pub policy: String,
    /// Folder holding profiles; names are looked up (and watched) here.
    pub policy_dir: PathBuf,
    /// Folder for sled state (sessions, approvals, audit) and the mask key.
    pub data_dir: PathBuf,
    /// Default upstream base URL for paths no route claims.
    pub upstream: String,
    /// Upstream for Anthropic's `/v1/messages` when no route is configured.
    pub anthropic_upstream: Option<String>,
    /// Upstream for Gemini's `/v1beta/…` when no route is configured.
    pub gemini_upstream: Option<String>,
    /// Extra CA (PEM) trusted for upstream TLS, besides the system roots.
    pub upstream_ca: Option<PathBuf>,
    /// Worker threads for the proxy (0 = number of CPUs).
    pub threads: usize,
    /// `text` or `json` log lines.
    pub log_format: LogFormat,
    /// Seconds to wait for an upstream to accept a connection (TCP and TLS).
    pub connect_timeout_secs: u64,
    /// Seconds from sending a request to the upstream's response head.
    pub first_byte_timeout_secs: u64,
    /// Seconds of upstream silence in the middle of an answer (streams included).
    #[serde(alias = "read_timeout_secs")]
    pub idle_timeout_secs: u64,
    /// Seconds for a whole buffered (non-stream) answer, head and body.
    pub total_timeout_secs: u64,
    /// Explicit routes; when empty, defaults derived from `upstream`.
    #[serde(rename = "route")]
    pub routes: Vec<RouteConfig>,
    pub admin: AdminConfig,
    // --- forward proxy and transparent mode ---
    /// Answer CONNECT and absolute-form requests on `listen` (forward proxy).
    pub forward_proxy: bool,
    /// Listener for iptables-redirected connections (transparent mode).
    pub transparent_listen: Option<String>,
    /// Interception CA certificate and key (default `<data_dir>/ca/ca.pem`, `ca.key`).
    pub ca_cert: Option<PathBuf>,
    pub ca_key: Option<PathBuf>,
    /// Forward-mode address overrides, like curl's `--connect-to`:
    /// `"api.openai.com:443" = "127.0.0.1:8443"`. The certificate is still
    /// verified for the host name the client asked for.
    pub connect_to: std::collections::BTreeMap<String, String>,
    /// `SO_MARK` set on every upstream socket, so redirect rules can exclude
    /// the gateway's own traffic (`-m mark --mark N -j RETURN`).
    pub so_mark: Option<u32>,
    // --- end forward proxy ---
    /// Audit retention.
    pub audit: AuditConfig,
    /// Shared state (`ASG_STATE_URL`; see `state/shared.rs`).
    #[serde(default)]
    pub state_url: Option<String>,
    /// Key prefix for shared state (`ASG_STATE_PREFIX`).
    #[serde(default)]
    pub state_prefix: Option<String>,
    /// Sidecar mode: the agent identity of this pod (e.g. its service
    /// account, from the downward API). When set it is authoritative: agent
    /// headers and body fields are ignored.
    pub agent_id: Option<String>,
    /// Inspection concurrency and state caps (`config/limits.rs`).
    pub limits: LimitsConfig,
    /// `ASG_LOG`: the log filter (environment only).
    #[serde(skip)]
    pub log_filter: Option<String>,
    /// `ASG_STATE_PASSWORD` (environment only, so it can come from a
    /// Secret without being written into a file).
    #[serde(skip)]
    pub state_password: Option<Secret>,
}

/// A password: kept out of `Debug` output.
#[derive(Clone)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    Text,
    Json,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: "127.0.0.1:8080".to_string(),
            admin_listen: "127.0.0.1:9090".to_string(),
            policy: "dev".to_string(),
            policy_dir: PathBuf::from("policies"),
            data_dir: PathBuf::from("data"),
            upstream: "https://api.openai.com".to_string(),
            anthropic_upstream: None,
            gemini_upstream: None,
            upstream_ca: None,
            threads: 0,
            log_format: LogFormat::Text,
            connect_timeout_secs: 10,
            // Long non-streamed generations finish within minutes; longer
            // ones should stream (both vendors say so).
            first_byte_timeout_secs: 180,
            // Reasoning models can think silently for a while mid-stream.
            idle_timeout_secs: 120,
            // The OpenAI and Anthropic SDKs' own default timeout.
            total_timeout_secs: 600,
            routes: Vec::new(),
            admin: AdminConfig::default(),
            audit: AuditConfig::default(),
            agent_id: None,
            limits: LimitsConfig::default(),
            forward_proxy: true,
            transparent_listen: None,
            ca_cert: None,
            ca_key: None,
            connect_to: Default::default(),
            so_mark: None,
            state_url: None,
            state_prefix: None,
            log_filter: None,
            state_password: None,
        }
    }
}

impl Config {
    /// Load the file (if any), then apply environment overrides.
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        let mut cfg = match path {
            Some(p) => {
                let text = std::fs::read_to_string(p).map_err(|source| ConfigError::Read {
                    path: p.to_path_buf(),
                    source,
                })?;
                toml::from_str(&text).map_err(|source| ConfigError::Parse {
                    path: p.to_path_buf(),
                    source: Box::new(source),
                })?
            }
            None => Config::default(),
        };
        env::apply_process(&mut cfg)?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Apply `ASG_*` overrides from `get` (see [`env::VARS`]).
    pub fn apply_env(&mut self, get: impl Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        env::apply(self, get)
    }

    /// The upstream timeouts, for the data path.
    pub fn upstream_timeouts(&self) -> crate::datapath::timeouts::Timeouts {
        let s = std::time::Duration::from_secs;
        crate::datapath::timeouts::Timeouts {
            connect: s(self.connect_timeout_secs),
            first_byte: s(self.first_byte_timeout_secs),
            idle: s(self.idle_timeout_secs),
            total: s(self.total_timeout_secs),
        }
    }

    // --- forward proxy and transparent mode ---
    fn validate_forward(&self) -> Result<(), ConfigError> {
        if let Some(l) = &self.transparent_listen {
            l.parse::<SocketAddr>().map_err(|_| {
                invalid(format!(
                    "transparent listen address {l:?} (transparent_listen, ASG_TRANSPARENT_LISTEN) is not host:port"
                ))
            })?;
            if l == &self.listen {
                return Err(invalid(format!(
                    "the transparent listener {l} must differ from the proxy listener"
                )));
            }
        }
        if self.ca_cert.is_some() != self.ca_key.is_some() {
            return Err(invalid(
                "set both ca_cert and ca_key (ASG_CA_CERT and ASG_CA_KEY), or neither",
            ));
        }
        self.connect_to_map().map(|_| ())
    }

    /// `connect_to`, parsed: lower-case `host:port` → socket address.
    pub fn connect_to_map(
        &self,
    ) -> Result<std::collections::HashMap<String, SocketAddr>, ConfigError> {
        self.connect_to
            .iter()
            .map(|(from, to)| {
                let (host, port) = split_host_port(from).ok_or_else(|| {
                    invalid(format!(
                        "connect_to (ASG_CONNECT_TO): {from:?} is not host:port"
                    ))
                })?;
                let addr: SocketAddr = to.parse().map_err(|_| {
                    invalid(format!(
                        "connect_to (ASG_CONNECT_TO): {to:?} (for {from}) is not ip:port"
                    ))
                })?;
                Ok((format!("{}:{port}", host.to_ascii_lowercase()), addr))
            })
            .collect()
    }
    // --- end forward proxy ---

    pub fn validate(&self) -> Result<(), ConfigError> {
        self.listen_addr()?;
        let admin = self.admin_addr()?;
        if !self.admin.auth_enabled && !admin.ip().is_loopback() {
            return Err(invalid(format!(
                "the admin listener {admin} is reachable from other hosts but admin auth is off: set ASG_ADMIN_AUTH=true with ASG_OPERATOR_KEYS (and ASG_AGENTS or ASG_AGENT_KEYS), or listen on a loopback address such as 127.0.0.1:{}",
                admin.port()
            )));
        }
        self.validate_admin_keys()?;
        if self.admin.idle_timeout_secs == 0 {
            return Err(invalid(
                "ASG_ADMIN_IDLE_TIMEOUT (admin.idle_timeout_secs) must be at least 1 second",
            ));
        }
        self.limits.validate()?;
        if self.admin.auth_enabled
            && self.admin.agent_keys.is_empty()
            && self.admin.operator_keys.is_empty()
            && self.admin.agents.is_empty()
        {
            return Err(invalid(
                "admin auth is enabled but no agent or operator keys are configured: set ASG_OPERATOR_KEYS (and ASG_AGENTS or ASG_AGENT_KEYS)",
            ));
        }
        if self.audit.retention_interval_secs == 0 {
            return Err(invalid("audit.retention_interval_secs must be >= 1"));
        }
        if self.agent_id.as_ref().is_some_and(|a| a.len() > 256) {
            return Err(invalid("ASG_AGENT_ID is longer than 256 characters"));
        }
        for r in self.effective_routes() {
            crate::datapath::route::Upstream::parse(&r.upstream)
                .map_err(|e| invalid(format!("route {}: {e}", r.name)))?;
        }
        self.validate_forward()?;
        for (name, v) in [
            ("connect_timeout_secs", self.connect_timeout_secs),
            ("first_byte_timeout_secs", self.first_byte_timeout_secs),
            ("idle_timeout_secs", self.idle_timeout_secs),
            ("total_timeout_secs", self.total_timeout_secs),
        ] {
            if v == 0 {
                return Err(invalid(format!("{name} must be at least 1 second")));
            }
        }
        Ok(())
    }

    pub fn listen_addr(&self) -> Result<SocketAddr, ConfigError> {
        self.listen.parse().map_err(|_| {
            invalid(format!(
                "listen address {:?} (listen, ASG_LISTEN) is not host:port",
                self.listen
            ))
        })
    }

    pub fn admin_addr(&self) -> Result<SocketAddr, ConfigError> {
        self.admin_listen.parse().map_err(|_| {
            invalid(format!(
                "admin listen address {:?} (admin_listen, ASG_ADMIN_LISTEN) is not host:port",
                self.admin_listen
            ))
        })
    }

    /// Configured routes, or the defaults: Anthropic's `/v1/messages` to the
    /// Anthropic upstream, everything else to `upstream`.
    pub fn effective_routes(&self) -> Vec<RouteConfig> {
        if !self.routes.is_empty() {
            return self.routes.clone();
        }
        vec![
            RouteConfig {
                name: "anthropic".to_string(),
                prefix: "/v1/messages".to_string(),
                host: None,
                upstream: self
                    .anthropic_upstream
                    .clone()
                    .unwrap_or_else(|| "https://api.anthropic.com".to_string()),
                api: ApiKind::Anthropic,
                strip_prefix: false,
                tool_name: None,
            },
            RouteConfig {
                name: "default".to_string(),
                prefix: "/".to_string(),
                host: None,
                upstream: self.upstream.clone(),
                api: ApiKind::Auto,
                strip_prefix: false,
                tool_name: None,
            },
            RouteConfig {
                name: "gemini".to_string(),
                prefix: "/v1beta".to_string(),
                host: None,
                upstream: self
                    .gemini_upstream
                    .clone()
                    .unwrap_or_else(|| "https://generativelanguage.googleapis.com".to_string()),
                api: ApiKind::Gemini,
                strip_prefix: false,
                tool_name: None,
            },
        ]
    }
}

impl Config {
    /// Bound agent ids are short and every key is unique (a key shared by
    /// two identities would let one act as the other).
    fn validate_admin_keys(&self) -> Result<(), ConfigError> {
        let a = &self.admin;
        let mut seen = std::collections::HashSet::new();
        for (id, key) in &a.agents {
            if id.trim().is_empty() || id.len() > 256 {
                return Err(invalid(format!(
                    "admin agent id {id:?} must be 1 to 256 characters"
                )));
            }
            if key.is_empty() {
                return Err(invalid(format!("admin agent {id:?} has an empty key")));
            }
        }
        let all = a
            .agent_keys
            .iter()
            .chain(&a.operator_keys)
            .chain(a.agents.values());
        for key in all {
            if !seen.insert(key.as_str()) {
                return Err(invalid(
                    "an admin API key is configured twice (agent, operator or bound agent keys must all differ)",
                ));
            }
        }
        Ok(())
    }
}

fn invalid(msg: impl Into<String>) -> ConfigError {
    ConfigError::Invalid(msg.into())
}

/// `1337` or `0x539`.
pub fn parse_mark(s: &str) -> Option<u32> {
    let s = s.trim();
    match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(hex) => u32::from_str_radix(hex, 16).ok(),
        None => s.parse().ok(),
    }
}

pub fn parse_bool(s: &str) -> Option<bool> {
    match s.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Some(true),
        "0" | "false" | "no" | "off" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn env_overrides_defaults() {
        let env: HashMap<&str, &str> = [
            ("ASG_LISTEN", "127.0.0.1:1"),
            ("ASG_UPSTREAM", "http://127.0.0.1:9"),
            ("ASG_POLICY", "strict"),
        ]
        .into();
        let mut c = Config::default();
        c.apply_env(|k| env.get(k).map(|v| v.to_string())).unwrap();
        assert_eq!(c.listen, "127.0.0.1:1");
        assert_eq!(c.policy, "strict");
        let routes = c.effective_routes();
        assert!(
            routes.iter().all(|r| r.upstream == "http://127.0.0.1:9"),
            "one explicit upstream serves both APIs"
        );
    }

    #[test]
    fn defaults_route_anthropic_separately() {
        let routes = Config::default().effective_routes();
        assert_eq!(routes[0].upstream, "https://api.anthropic.com");
        assert_eq!(routes[1].upstream, "https://api.openai.com");
    }

    #[test]
    fn audit_and_sidecar_settings_from_env() {
        let env: HashMap<&str, &str> = [
            ("ASG_AGENT_ID", " team-a/reporter "),
            ("ASG_AUDIT_MAX_AGE_DAYS", "7"),
            ("ASG_AUDIT_MAX_BYTES", "1048576"),
            ("ASG_AUDIT_SYNC", "decisions"),
        ]
        .into();
        let mut c = Config::default();
        assert_eq!(c.audit.sync, AuditSync::Always);
        c.apply_env(|k| env.get(k).map(|v| v.to_string())).unwrap();
        assert_eq!(c.agent_id.as_deref(), Some("team-a/reporter"));
        assert_eq!((c.audit.max_age_days, c.audit.max_bytes), (7, 1_048_576));
        assert_eq!(c.audit.sync, AuditSync::Decisions);
        let err = Config::default()
            .apply_env(|k| (k == "ASG_AUDIT_SYNC").then(|| "sometimes".to_string()))
            .unwrap_err()
            .to_string();
        assert!(err.contains("ASG_AUDIT_SYNC"), "{err}");
        let err = Config::default()
            .apply_env(|k| (k == "ASG_AUDIT_MAX_BYTES").then(|| "1GB".to_string()))
            .unwrap_err()
            .to_string();
        assert!(err.contains("ASG_AUDIT_MAX_BYTES"), "{err}");
    }

    #[test]
    fn bad_values_are_clear_errors() {
        let mut c = Config::default();
        let err = c
            .apply_env(|k| (k == "ASG_THREADS").then(|| "many".to_string()))
            .unwrap_err()
            .to_string();
        assert!(err.contains("ASG_THREADS"));
        let c = Config {
            listen: "nope".into(),
            ..Config::default()
        };
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .contains("listen address"));
    }

    #[test]
    fn forward_settings_from_env() {
        let env: HashMap<&str, &str> = [
            ("ASG_TRANSPARENT_LISTEN", "127.0.0.1:15001"),
            (
                "ASG_CONNECT_TO",
                "api.openai.com:443=127.0.0.1:8443, [::1]:443=[::1]:9443",
            ),
            ("ASG_SO_MARK", "0x539"),
            ("ASG_FORWARD_PROXY", "off"),
        ]
        .into();
        let mut c = Config::default();
        c.apply_env(|k| env.get(k).map(|v| v.to_string())).unwrap();
        c.validate().unwrap();
        assert_eq!(c.so_mark, Some(1337));
        assert!(!c.forward_proxy);
        let map = c.connect_to_map().unwrap();
        assert_eq!(
            map["api.openai.com:443"],
            "127.0.0.1:8443".parse::<SocketAddr>().unwrap()
        );
        assert!(map.contains_key("::1:443"));
    }

    #[test]
    fn forward_settings_are_validated() {
        let bad = |k: &str, v: &str| {
            let mut c = Config::default();
            let r = c.apply_env(|x| (x == k).then(|| v.to_string()));
            r.and_then(|_| c.validate()).unwrap_err().to_string()
        };
        assert!(bad("ASG_SO_MARK", "lots").contains("ASG_SO_MARK"));
        assert!(bad("ASG_CONNECT_TO", "api.openai.com").contains("host:port=ip:port"));
        assert!(bad("ASG_CONNECT_TO", "a:443=somewhere").contains("ip:port"));
        assert!(bad("ASG_TRANSPARENT_LISTEN", "x").contains("ASG_TRANSPARENT_LISTEN"));
        assert!(bad("ASG_TRANSPARENT_LISTEN", "127.0.0.1:8080").contains("differ"));
        assert!(bad("ASG_CA_CERT", "/x.pem").contains("both"));
    }

    #[test]
    fn upstream_timeouts_from_toml_and_env() {
        let mut c: Config =
            toml::from_str("first_byte_timeout_secs = 30\nread_timeout_secs = 45\n").unwrap();
        assert_eq!((c.first_byte_timeout_secs, c.idle_timeout_secs), (30, 45));
        let env: HashMap<&str, &str> = [
            ("ASG_UPSTREAM_CONNECT_TIMEOUT", "3"),
            ("ASG_UPSTREAM_IDLE_TIMEOUT", "9"),
            ("ASG_UPSTREAM_TOTAL_TIMEOUT", "99"),
        ]
        .into();
        c.apply_env(|k| env.get(k).map(|v| v.to_string())).unwrap();
        c.validate().unwrap();
        let t = c.upstream_timeouts();
        assert_eq!(
            [t.connect, t.first_byte, t.idle, t.total].map(|d| d.as_secs()),
            [3, 30, 9, 99]
        );
        let err = c
            .apply_env(|k| (k == "ASG_UPSTREAM_FIRST_BYTE_TIMEOUT").then(|| "soon".into()))
            .unwrap_err()
            .to_string();
        assert!(err.contains("ASG_UPSTREAM_FIRST_BYTE_TIMEOUT"), "{err}");
        c.total_timeout_secs = 0;
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .contains("total_timeout_secs"));
    }

    #[test]
    fn forward_settings_parse_from_toml() {
        let c: Config = toml::from_str(
            "forward_proxy = true\ntransparent_listen = \"127.0.0.1:15001\"\nso_mark = 1337\n\n[connect_to]\n\"api.openai.com:443\" = \"10.0.0.5:443\"\n",
        )
        .unwrap();
        c.validate().unwrap();
        assert_eq!(c.so_mark, Some(1337));
        assert_eq!(
            c.connect_to_map().unwrap()["api.openai.com:443"],
            "10.0.0.5:443".parse::<SocketAddr>().unwrap()
        );
    }

    #[test]
    fn a_reachable_admin_listener_needs_auth() {
        let open = Config {
            admin_listen: "0.0.0.0:9090".into(),
            ..Config::default()
        };
        let err = open.validate().unwrap_err().to_string();
        assert!(
            err.contains("0.0.0.0:9090")
                && err.contains("ASG_ADMIN_AUTH=true")
                && err.contains("127.0.0.1:9090"),
            "{err}"
        );
        let mut with_auth = open.clone();
        with_auth.admin.auth_enabled = true;
        with_auth.admin.operator_keys = vec!["op".into()];
        with_auth.validate().unwrap();
        let v6 = Config {
            admin_listen: "[::1]:9090".into(),
            ..Config::default()
        };
        v6.validate().unwrap();
    }

    #[test]
    fn agents_bind_keys_to_identities() {
        let mut c = Config::default();
        c.apply_env(|k| (k == "ASG_AGENTS").then(|| "reporter=k1==, builder = k2".to_string()))
            .unwrap();
        assert_eq!(c.admin.agents["reporter"], "k1==");
        assert_eq!(c.admin.agents["builder"], "k2");
        for bad in ["nokey", "=k", "a=", "a=k,a=j"] {
            let r = Config::default().apply_env(|k| (k == "ASG_AGENTS").then(|| bad.to_string()));
            assert!(r.unwrap_err().to_string().contains("ASG_AGENTS"), "{bad}");
        }
        c.admin.auth_enabled = true;
        c.admin.operator_keys = vec!["k2".into()];
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .contains("configured twice"));
        assert_eq!(Config::default().admin.auth_failures_per_minute, 30);
    }

    #[test]
    fn routes_parse_from_toml() {
        let c: Config = toml::from_str(
            "[[route]]\nname = \"tools\"\nprefix = \"/mcp\"\nupstream = \"http://127.0.0.1:7000\"\napi = \"mcp\"\n",
        )
        .unwrap();
        assert_eq!(c.routes[0].api, ApiKind::Mcp);
    }
}
