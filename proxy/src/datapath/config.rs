//! The data path's settings, built once from the configuration by the
//! composition root (`app.rs`): hooks read these, never the whole file.

use crate::datapath::dialect::ApiKind;
use crate::datapath::timeouts::Timeouts;
use crate::datapath::tls::CaPaths;
use crate::state::config::AuditSync;
use serde::Deserialize;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;

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

/// The proxy's listeners, upstream behaviour and identity.
#[derive(Debug, Clone)]
pub struct ProxyConfig {
    pub listen: String,
    pub transparent_listen: Option<String>,
    /// Answer CONNECT and absolute-form requests on `listen`.
    pub forward_proxy: bool,
    /// Worker threads, resolved (never 0).
    pub threads: usize,
    /// pid file, upgrade socket and the upstream roots bundle go here.
    pub data_dir: PathBuf,
    pub upstream_ca: Option<PathBuf>,
    /// The interception CA (forward and transparent mode).
    pub ca: CaPaths,
    pub timeouts: Timeouts,
    /// Sidecar mode: this pod's agent identity, authoritative.
    pub agent_id: Option<String>,
    /// When a forwarded answer waits for its audit record.
    pub audit_sync: AuditSync,
}

/// Forward and transparent mode: host routes, the gateway's own addresses
/// (loop guard), address overrides and the socket mark.
#[derive(Debug, Clone)]
pub struct ForwardConfig {
    /// Configured routes that name a host (forward mode matches by host).
    pub host_routes: Vec<RouteConfig>,
    /// The gateway's own listeners: never a forward target.
    pub own: Vec<SocketAddr>,
    /// Lower-case `host:port` → address (`connect_to`).
    pub connect_to: HashMap<String, SocketAddr>,
    pub so_mark: Option<u32>,
    /// Absolute-form requests (`GET http://…`) are forward-mode traffic.
    pub absolute_form: bool,
}
