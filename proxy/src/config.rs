//! Runtime configuration: where to listen, where to send traffic, where to
//! keep state. Read from an optional TOML file, then overridden by `ASG_*`
//! environment variables (the names `asg --help` lists).
//!
//! This is deployment configuration; what to *decide* lives in policy
//! profiles (`policies/`), which hot-reload independently.

use crate::datapath::dialect::ApiKind;
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

pub mod limits;
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
    /// verified for the original host name.
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
}

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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    pub name: String,
    /// Path prefix this route claims (longest prefix wins).
    #[serde(default = "slash")]
    pub prefix: String,
    /// Only for requests with this `Host` (forward-proxy and multi-host setups).
    #[serde(default)]
    pub host: Option<String>,
    /// Upstream base URL, e.g. `https://api.openai.com` or `http://tools:8000/base`.
    pub upstream: String,
    #[serde(default = "auto")]
    pub api: ApiKind,
    /// Remove `prefix` before forwarding (`/anthropic/v1/messages` → `/v1/messages`).
    #[serde(default)]
    pub strip_prefix: bool,
    /// Tool name for `api = "http_tool"` routes (default: last path segment).
    #[serde(default)]
    pub tool_name: Option<String>,
}

fn slash() -> String {
    "/".to_string()
}
fn auto() -> ApiKind {
    ApiKind::Auto
}

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
        }
    }
}

/// The environment variables `asg run` reads, with what they set.
pub const ENV_VARS: &[(&str, &str)] = &[
    ("ASG_CONFIG", "configuration file (TOML)"),
    ("ASG_LISTEN", "proxy listener address [127.0.0.1:8080]"),
    (
        "ASG_ADMIN_LISTEN",
        "admin listener address [127.0.0.1:9090]",
    ),
    (
        "ASG_UPSTREAM",
        "default upstream base URL [https://api.openai.com]",
    ),
    (
        "ASG_ANTHROPIC_UPSTREAM",
        "upstream for /v1/messages [ASG_UPSTREAM if set, else https://api.anthropic.com]",
    ),
    (
        "ASG_GEMINI_UPSTREAM",
        "upstream for Gemini's /v1beta [ASG_UPSTREAM if set, else https://generativelanguage.googleapis.com]",
    ),
    ("ASG_POLICY", "policy profile name or path [dev]"),
    (
        "ASG_POLICY_DIR",
        "folder of policy profiles, watched for changes [policies]",
    ),
    (
        "ASG_DATA_DIR",
        "state folder (sled database, mask key) [data]",
    ),
    (
        "ASG_UPSTREAM_CA",
        "extra CA file (PEM) trusted for upstream TLS",
    ),
    ("ASG_THREADS", "proxy worker threads, 0 = CPUs [0]"),
    ("ASG_LOG", "log filter, e.g. info or asg=debug [info]"),
    ("ASG_LOG_FORMAT", "text or json [text]"),
    (
        "ASG_ADMIN_AUTH",
        "require API keys on the admin API (true/false) [false]",
    ),
    ("ASG_AGENT_KEYS", "comma-separated agent API keys"),
    ("ASG_OPERATOR_KEYS", "comma-separated operator API keys"),
    (
        "ASG_AGENTS",
        "agent keys bound to an identity: agent-id=key,... (the key acts only as that agent)",
    ),
    (
        "ASG_AUTH_FAILURE_LIMIT",
        "failed admin authentications per minute per address before 429, 0 = off [30]",
    ),
    (
        "ASG_RATE_LIMIT",
        "admin API requests per minute per key, 0 = off [0]",
    ),
    (
        "ASG_AGENT_ID",
        "sidecar mode: this pod's agent identity (overrides agent headers)",
    ),
    (
        "ASG_AUDIT_MAX_AGE_DAYS",
        "delete audit records older than this, 0 = never [30]",
    ),
    (
        "ASG_AUDIT_MAX_BYTES",
        "keep the audit log under this many bytes, 0 = no limit [1073741824]",
    ),
    (
        "ASG_AUDIT_SYNC",
        "always: a proxied response waits for its audit record to be on disk; decisions: only refusals and approvals wait [always]",
    ),
    (
        "ASG_STATE_URL",
        "shared state for a fleet: redis://, rediss://, redis+sentinel:// (sessions, risk, approvals, permits, rate limits; audit stays local) [unset: sled in ASG_DATA_DIR]",
    ),
    ("ASG_STATE_PREFIX", "key prefix in the shared state [asg]"),
    (
        "ASG_STATE_PASSWORD",
        "password for the shared state (instead of one in ASG_STATE_URL)",
    ),
    (
        "ASG_AUDIT_STDOUT",
        "also write every audit record to stdout as a JSON line, masked like the stored one (true/false) [false]",
    ),
    // --- forward proxy and transparent mode ---
    (
        "ASG_FORWARD_PROXY",
        "answer CONNECT and absolute-form requests on ASG_LISTEN (true/false) [true]",
    ),
    (
        "ASG_TRANSPARENT_LISTEN",
        "listener for iptables-redirected connections, e.g. 127.0.0.1:15001 [off]",
    ),
    (
        "ASG_CA_CERT",
        "interception CA certificate (PEM) [<data>/ca/ca.pem, created if missing]",
    ),
    (
        "ASG_CA_KEY",
        "interception CA key (PKCS#8 PEM) [<data>/ca/ca.key]",
    ),
    (
        "ASG_CONNECT_TO",
        "forward-mode address overrides host:port=ip:port,... (like curl --connect-to)",
    ),
    (
        "ASG_SO_MARK",
        "SO_MARK for upstream sockets, excluded from redirect rules (e.g. 0x539)",
    ),
    (
        "ASG_UPSTREAM_CONNECT_TIMEOUT",
        "seconds to connect to an upstream (TCP and TLS) [10]",
    ),
    (
        "ASG_UPSTREAM_FIRST_BYTE_TIMEOUT",
        "seconds from sending a request to the upstream's response head [180]",
    ),
    (
        "ASG_UPSTREAM_IDLE_TIMEOUT",
        "seconds of upstream silence in the middle of an answer, streams included [120]",
    ),
    (
        "ASG_UPSTREAM_TOTAL_TIMEOUT",
        "seconds for a whole buffered (non-stream) answer [600]",
    ),
];

impl Config {
    /// Load the file (if any), then apply environment overrides.
    pub fn load(path: Option<&Path>) -> Result<Config, String> {
        let mut cfg = match path {
            Some(p) => {
                let text = std::fs::read_to_string(p)
                    .map_err(|e| format!("cannot read config {}: {e}", p.display()))?;
                toml::from_str(&text).map_err(|e| format!("config {}: {e}", p.display()))?
            }
            None => Config::default(),
        };
        cfg.apply_env(|k| std::env::var(k).ok())?;
        cfg.validate()?;
        Ok(cfg)
    }

    pub fn apply_env(&mut self, get: impl Fn(&str) -> Option<String>) -> Result<(), String> {
        let set = |v: &mut String, k: &str| {
            if let Some(x) = get(k).filter(|x| !x.is_empty()) {
                *v = x;
            }
        };
        set(&mut self.listen, "ASG_LISTEN");
        set(&mut self.admin_listen, "ASG_ADMIN_LISTEN");
        set(&mut self.policy, "ASG_POLICY");
        let upstream_from_env = get("ASG_UPSTREAM").filter(|x| !x.is_empty());
        if let Some(u) = &upstream_from_env {
            self.upstream = u.clone();
            // One upstream given explicitly serves Anthropic too, unless
            // told otherwise (gateways such as LiteLLM speak both).
            if self.anthropic_upstream.is_none() {
                self.anthropic_upstream = Some(u.clone());
            }
            if self.gemini_upstream.is_none() {
                self.gemini_upstream = Some(u.clone());
            }
        }
        if let Some(u) = get("ASG_ANTHROPIC_UPSTREAM").filter(|x| !x.is_empty()) {
            self.anthropic_upstream = Some(u);
        }
        if let Some(u) = get("ASG_GEMINI_UPSTREAM").filter(|x| !x.is_empty()) {
            self.gemini_upstream = Some(u);
        }
        if let Some(d) = get("ASG_POLICY_DIR").filter(|x| !x.is_empty()) {
            self.policy_dir = PathBuf::from(d);
        }
        if let Some(d) = get("ASG_DATA_DIR").filter(|x| !x.is_empty()) {
            self.data_dir = PathBuf::from(d);
        }
        if let Some(c) = get("ASG_UPSTREAM_CA").filter(|x| !x.is_empty()) {
            self.upstream_ca = Some(PathBuf::from(c));
        }
        if let Some(t) = get("ASG_THREADS").filter(|x| !x.is_empty()) {
            self.threads = t
                .parse()
                .map_err(|_| format!("ASG_THREADS: not a number: {t}"))?;
        }
        if let Some(f) = get("ASG_LOG_FORMAT").filter(|x| !x.is_empty()) {
            self.log_format = match f.as_str() {
                "text" => LogFormat::Text,
                "json" => LogFormat::Json,
                other => {
                    return Err(format!(
                        "ASG_LOG_FORMAT: expected text or json, got {other}"
                    ))
                }
            };
        }
        if let Some(b) = get("ASG_ADMIN_AUTH").filter(|x| !x.is_empty()) {
            self.admin.auth_enabled = parse_bool(&b)
                .ok_or_else(|| format!("ASG_ADMIN_AUTH: expected true or false, got {b}"))?;
        }
        let keys = |v: String| -> Vec<String> {
            v.split(',')
                .map(str::trim)
                .filter(|k| !k.is_empty())
                .map(str::to_string)
                .collect()
        };
        if let Some(k) = get("ASG_AGENT_KEYS") {
            self.admin.agent_keys = keys(k);
        }
        if let Some(k) = get("ASG_OPERATOR_KEYS") {
            self.admin.operator_keys = keys(k);
        }
        if let Some(list) = get("ASG_AGENTS") {
            self.admin.agents = parse_agents(&list)?;
        }
        if let Some(v) = get("ASG_AUTH_FAILURE_LIMIT").filter(|x| !x.trim().is_empty()) {
            self.admin.auth_failures_per_minute = v
                .trim()
                .parse()
                .map_err(|_| format!("ASG_AUTH_FAILURE_LIMIT: not a whole number: {v}"))?;
        }
        if let Some(v) = get("ASG_ADMIN_IDLE_TIMEOUT").filter(|x| !x.trim().is_empty()) {
            self.admin.idle_timeout_secs = v.trim().parse().map_err(|_| {
                format!("ASG_ADMIN_IDLE_TIMEOUT: not a whole number of seconds: {v}")
            })?;
        }
        self.limits.apply_env(&get)?;
        if let Some(r) = get("ASG_RATE_LIMIT").filter(|x| !x.is_empty()) {
            self.admin.rate_limit_per_minute = r
                .parse()
                .map_err(|_| format!("ASG_RATE_LIMIT: not a number: {r}"))?;
        }
        if let Some(a) = get("ASG_AGENT_ID").filter(|x| !x.trim().is_empty()) {
            self.agent_id = Some(a.trim().to_string());
        }
        if let Some(v) = get("ASG_AUDIT_SYNC").filter(|x| !x.is_empty()) {
            self.audit.sync = match v.trim() {
                "always" => AuditSync::Always,
                "decisions" => AuditSync::Decisions,
                other => {
                    return Err(format!(
                        "ASG_AUDIT_SYNC: expected always or decisions, got {other}"
                    ))
                }
            };
        }
        if let Some(u) = get("ASG_STATE_URL").filter(|x| !x.trim().is_empty()) {
            self.state_url = Some(u.trim().to_string());
        }
        if let Some(p) = get("ASG_STATE_PREFIX").filter(|x| !x.trim().is_empty()) {
            self.state_prefix = Some(p.trim().to_string());
        }
        if let Some(b) = get("ASG_AUDIT_STDOUT").filter(|x| !x.trim().is_empty()) {
            self.audit.stdout = parse_bool(&b)
                .ok_or_else(|| format!("ASG_AUDIT_STDOUT: expected true or false, got {b}"))?;
        }
        for (name, slot) in [
            ("ASG_AUDIT_MAX_AGE_DAYS", &mut self.audit.max_age_days),
            ("ASG_AUDIT_MAX_BYTES", &mut self.audit.max_bytes),
        ] {
            if let Some(v) = get(name).filter(|x| !x.is_empty()) {
                *slot = v
                    .trim()
                    .parse()
                    .map_err(|_| format!("{name}: not a whole number: {v}"))?;
            }
        }
        self.apply_forward_env(&get)?;
        self.apply_timeout_env(&get)?;
        Ok(())
    }

    fn apply_timeout_env(&mut self, get: &impl Fn(&str) -> Option<String>) -> Result<(), String> {
        for (name, slot) in [
            (
                "ASG_UPSTREAM_CONNECT_TIMEOUT",
                &mut self.connect_timeout_secs,
            ),
            (
                "ASG_UPSTREAM_FIRST_BYTE_TIMEOUT",
                &mut self.first_byte_timeout_secs,
            ),
            ("ASG_UPSTREAM_IDLE_TIMEOUT", &mut self.idle_timeout_secs),
            ("ASG_UPSTREAM_TOTAL_TIMEOUT", &mut self.total_timeout_secs),
        ] {
            if let Some(v) = get(name).filter(|x| !x.trim().is_empty()) {
                *slot = v
                    .trim()
                    .parse()
                    .map_err(|_| format!("{name}: not a whole number of seconds: {v}"))?;
            }
        }
        Ok(())
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
    fn apply_forward_env(&mut self, get: &impl Fn(&str) -> Option<String>) -> Result<(), String> {
        let get = |k: &str| get(k).filter(|x| !x.trim().is_empty());
        if let Some(b) = get("ASG_FORWARD_PROXY") {
            self.forward_proxy = parse_bool(&b)
                .ok_or_else(|| format!("ASG_FORWARD_PROXY: expected true or false, got {b}"))?;
        }
        if let Some(l) = get("ASG_TRANSPARENT_LISTEN") {
            self.transparent_listen = Some(l);
        }
        if let Some(p) = get("ASG_CA_CERT") {
            self.ca_cert = Some(PathBuf::from(p));
        }
        if let Some(p) = get("ASG_CA_KEY") {
            self.ca_key = Some(PathBuf::from(p));
        }
        if let Some(list) = get("ASG_CONNECT_TO") {
            for entry in list.split(',').map(str::trim).filter(|e| !e.is_empty()) {
                let (from, to) = entry
                    .split_once('=')
                    .ok_or_else(|| format!("ASG_CONNECT_TO: {entry:?} is not host:port=ip:port"))?;
                self.connect_to
                    .insert(from.trim().to_string(), to.trim().to_string());
            }
        }
        if let Some(m) = get("ASG_SO_MARK") {
            self.so_mark = Some(parse_mark(&m).ok_or_else(|| {
                format!("ASG_SO_MARK: expected a number such as 1337 or 0x539, got {m}")
            })?);
        }
        Ok(())
    }

    fn validate_forward(&self) -> Result<(), String> {
        if let Some(l) = &self.transparent_listen {
            l.parse::<SocketAddr>()
                .map_err(|_| format!("transparent listen address {l:?} is not host:port"))?;
            if l == &self.listen {
                return Err(format!(
                    "the transparent listener {l} must differ from the proxy listener"
                ));
            }
        }
        if self.ca_cert.is_some() != self.ca_key.is_some() {
            return Err(
                "set both ca_cert and ca_key (ASG_CA_CERT and ASG_CA_KEY), or neither".to_string(),
            );
        }
        self.connect_to_map().map(|_| ())
    }

    /// `connect_to`, parsed: lower-case `host:port` → socket address.
    pub fn connect_to_map(&self) -> Result<std::collections::HashMap<String, SocketAddr>, String> {
        self.connect_to
            .iter()
            .map(|(from, to)| {
                let (host, port) = split_host_port(from)
                    .ok_or_else(|| format!("connect_to: {from:?} is not host:port"))?;
                let addr: SocketAddr = to
                    .parse()
                    .map_err(|_| format!("connect_to: {to:?} (for {from}) is not ip:port"))?;
                Ok((format!("{}:{port}", host.to_ascii_lowercase()), addr))
            })
            .collect()
    }
    // --- end forward proxy ---

    pub fn validate(&self) -> Result<(), String> {
        self.listen_addr()?;
        let admin = self.admin_addr()?;
        if !self.admin.auth_enabled && !admin.ip().is_loopback() {
            return Err(format!(
                "the admin listener {admin} is reachable from other hosts but admin auth is off: set ASG_ADMIN_AUTH=true with ASG_OPERATOR_KEYS (and ASG_AGENTS or ASG_AGENT_KEYS), or listen on a loopback address such as 127.0.0.1:{}",
                admin.port()
            ));
        }
        self.validate_admin_keys()?;
        if self.admin.idle_timeout_secs == 0 {
            return Err(
                "ASG_ADMIN_IDLE_TIMEOUT (admin.idle_timeout_secs) must be at least 1 second"
                    .to_string(),
            );
        }
        self.limits.validate()?;
        if self.admin.auth_enabled
            && self.admin.agent_keys.is_empty()
            && self.admin.operator_keys.is_empty()
            && self.admin.agents.is_empty()
        {
            return Err(
                "admin auth is enabled but no agent or operator keys are configured".to_string(),
            );
        }
        if self.audit.retention_interval_secs == 0 {
            return Err("audit.retention_interval_secs must be >= 1".to_string());
        }
        if self.agent_id.as_ref().is_some_and(|a| a.len() > 256) {
            return Err("ASG_AGENT_ID is longer than 256 characters".to_string());
        }
        for r in self.effective_routes() {
            crate::datapath::route::Upstream::parse(&r.upstream)
                .map_err(|e| format!("route {}: {e}", r.name))?;
        }
        self.validate_forward()?;
        for (name, v) in [
            ("connect_timeout_secs", self.connect_timeout_secs),
            ("first_byte_timeout_secs", self.first_byte_timeout_secs),
            ("idle_timeout_secs", self.idle_timeout_secs),
            ("total_timeout_secs", self.total_timeout_secs),
        ] {
            if v == 0 {
                return Err(format!("{name} must be at least 1 second"));
            }
        }
        Ok(())
    }

    pub fn listen_addr(&self) -> Result<SocketAddr, String> {
        self.listen
            .parse()
            .map_err(|_| format!("listen address {:?} is not host:port", self.listen))
    }

    pub fn admin_addr(&self) -> Result<SocketAddr, String> {
        self.admin_listen.parse().map_err(|_| {
            format!(
                "admin listen address {:?} is not host:port",
                self.admin_listen
            )
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

/// `ASG_AGENTS`: `id=key,id=key`. An id never holds `=`, a key may (base64
/// padding), so each entry splits at its first `=`.
fn parse_agents(list: &str) -> Result<std::collections::BTreeMap<String, String>, String> {
    let mut out = std::collections::BTreeMap::new();
    for entry in list.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let (id, key) = entry
            .split_once('=')
            .map(|(i, k)| (i.trim(), k.trim()))
            .filter(|(i, k)| !i.is_empty() && !k.is_empty())
            .ok_or_else(|| {
                "ASG_AGENTS: expected agent-id=key entries separated by commas".to_string()
            })?;
        if out.insert(id.to_string(), key.to_string()).is_some() {
            return Err(format!("ASG_AGENTS: agent {id:?} is listed twice"));
        }
    }
    Ok(out)
}

impl Config {
    /// Bound agent ids are short and every key is unique (a key shared by
    /// two identities would let one act as the other).
    fn validate_admin_keys(&self) -> Result<(), String> {
        let a = &self.admin;
        let mut seen = std::collections::HashSet::new();
        for (id, key) in &a.agents {
            if id.trim().is_empty() || id.len() > 256 {
                return Err(format!("admin agent id {id:?} must be 1 to 256 characters"));
            }
            if key.is_empty() {
                return Err(format!("admin agent {id:?} has an empty key"));
            }
        }
        let all = a
            .agent_keys
            .iter()
            .chain(&a.operator_keys)
            .chain(a.agents.values());
        for key in all {
            if !seen.insert(key.as_str()) {
                return Err(
                    "an admin API key is configured twice (agent, operator or bound agent keys must all differ)"
                        .to_string(),
                );
            }
        }
        Ok(())
    }
}

/// `1337` or `0x539`.
pub fn parse_mark(s: &str) -> Option<u32> {
    let s = s.trim();
    match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(hex) => u32::from_str_radix(hex, 16).ok(),
        None => s.parse().ok(),
    }
}

/// `host:port` or `[v6]:port` → (host without brackets, port).
pub fn split_host_port(s: &str) -> Option<(&str, u16)> {
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let (h, after) = rest.split_once(']')?;
        (h, after.strip_prefix(':')?)
    } else {
        s.rsplit_once(':')?
    };
    let port = port.parse::<u16>().ok().filter(|p| *p != 0)?;
    (!host.is_empty()).then_some((host, port))
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
            .unwrap_err();
        assert!(err.contains("ASG_AUDIT_SYNC"), "{err}");
        let err = Config::default()
            .apply_env(|k| (k == "ASG_AUDIT_MAX_BYTES").then(|| "1GB".to_string()))
            .unwrap_err();
        assert!(err.contains("ASG_AUDIT_MAX_BYTES"), "{err}");
    }

    #[test]
    fn bad_values_are_clear_errors() {
        let mut c = Config::default();
        let err = c
            .apply_env(|k| (k == "ASG_THREADS").then(|| "many".to_string()))
            .unwrap_err();
        assert!(err.contains("ASG_THREADS"));
        let c = Config {
            listen: "nope".into(),
            ..Config::default()
        };
        assert!(c.validate().unwrap_err().contains("listen address"));
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
            r.and_then(|_| c.validate()).unwrap_err()
        };
        assert!(bad("ASG_SO_MARK", "lots").contains("ASG_SO_MARK"));
        assert!(bad("ASG_CONNECT_TO", "api.openai.com").contains("host:port=ip:port"));
        assert!(bad("ASG_CONNECT_TO", "a:443=somewhere").contains("ip:port"));
        assert!(bad("ASG_TRANSPARENT_LISTEN", "x").contains("transparent"));
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
            .unwrap_err();
        assert!(err.contains("ASG_UPSTREAM_FIRST_BYTE_TIMEOUT"), "{err}");
        c.total_timeout_secs = 0;
        assert!(c.validate().unwrap_err().contains("total_timeout_secs"));
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
        let err = open.validate().unwrap_err();
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
            assert!(r.unwrap_err().contains("ASG_AGENTS"), "{bad}");
        }
        c.admin.auth_enabled = true;
        c.admin.operator_keys = vec!["k2".into()];
        assert!(c.validate().unwrap_err().contains("configured twice"));
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
