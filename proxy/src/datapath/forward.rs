//! Forward-proxy mode, as the gateway hooks see it: where a request is
//! really going (the CONNECT target, the pre-redirect destination of a
//! redirected connection, or an absolute-form URL), which route names it,
//! and how to reach it.
//!
//! The front ([`super::front`]) attaches a [`ForwardTarget`] to each
//! intercepted connection as the `user_data` of pingora's proxy digest
//! ("information about the CONNECT proxy this connection went through"),
//! so every request on the connection finds it in `session.digest()`
//! without any global table.

use crate::datapath::config::{ForwardConfig, RouteConfig};
use crate::datapath::dialect::ApiKind;
use crate::datapath::resolve::Resolver;
use crate::datapath::route::RouteTable;
use crate::decision::policy::connect::{normalize_host, ConnectAction, ConnectVerdict};
use crate::decision::Policy;
use crate::util::split_host_port;
use pingora::http::ResponseHeader;
use pingora::protocols::raw_connect::ProxyDigest;
use pingora::proxy::Session;
use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

/// How a forward-mode connection or request reached the gateway (a metric
/// label, so a closed set).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `CONNECT host:port` on the proxy listener.
    Connect,
    /// Redirected by iptables to the transparent listener.
    Transparent,
    /// Plain-HTTP `GET http://host/path` on the proxy listener.
    AbsoluteForm,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Connect => "connect",
            Mode::Transparent => "transparent",
            Mode::AbsoluteForm => "absolute",
        }
    }
}

/// Where forward-mode traffic goes.
#[derive(Debug, Clone)]
pub struct ForwardTarget {
    pub mode: Mode,
    /// Lower-case host name or IP literal: the policy and route key, the
    /// upstream SNI and the name its certificate is verified for.
    pub host: String,
    pub port: u16,
    /// Speak TLS upstream (the client spoke TLS to us).
    pub tls: bool,
    /// A fixed address (the pre-redirect destination of a redirected connection);
    /// otherwise `host` is resolved.
    pub addr: Option<SocketAddr>,
    /// Decided for the whole connection (CONNECT, transparent TLS), or `None`
    /// when each request names its host (`Host` header) and is decided alone.
    pub verdict: Option<ConnectVerdict>,
}

impl ForwardTarget {
    /// `https://api.openai.com/v1/chat/completions` for the audit log.
    pub fn url(&self, path_and_query: &str) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        let default = if self.tls { 443 } else { 80 };
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        if self.port == default {
            format!("{scheme}://{host}{path_and_query}")
        } else {
            format!("{scheme}://{host}:{}{path_and_query}", self.port)
        }
    }

    /// `host:port` for messages.
    pub fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// The connection's verdict, or this request's (host from `Host`).
    pub fn decide(&mut self, policy: &Policy, host_header: Option<&str>) -> ConnectVerdict {
        if let Some(v) = &self.verdict {
            return v.clone();
        }
        let verdict = self.decide_request(policy, host_header);
        // Kept for the rest of this request (upstream_addr reads it).
        self.verdict = Some(verdict.clone());
        verdict
    }

    fn decide_request(&mut self, policy: &Policy, host_header: Option<&str>) -> ConnectVerdict {
        if let Some((host, _)) = host_header.and_then(|h| split_host_port(h).or(Some((h, 0)))) {
            let host = normalize_host(host);
            if !host.is_empty() {
                self.host = host;
            }
        }
        policy.file.connect.decide(&self.host)
    }
}

/// Why a forward-mode destination is not connected to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unreachable {
    /// The name does not resolve.
    Resolve(String),
    /// The destination is one of the gateway's own listeners.
    Loop(String),
    /// A loopback or link-local address (the gateway's host, cloud metadata)
    /// that no explicit `[connect]` rule names.
    Internal(String),
}

impl Unreachable {
    /// `asg_forward_failures_total` reason.
    pub fn reason(&self) -> &'static str {
        match self {
            Unreachable::Resolve(_) => "upstream_connect",
            Unreachable::Loop(_) => "loop",
            Unreachable::Internal(_) => "internal_destination",
        }
    }

    /// HTTP status for the client: refused by rule, or a gateway error.
    pub fn status(&self) -> u16 {
        match self {
            Unreachable::Internal(_) => 403,
            _ => 502,
        }
    }
}

impl std::fmt::Display for Unreachable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Unreachable::Resolve(m) | Unreachable::Loop(m) | Unreachable::Internal(m) => {
                f.write_str(m)
            }
        }
    }
}

/// Loopback, unspecified or link-local (169.254.0.0/16 holds cloud metadata).
fn is_internal(ip: std::net::IpAddr) -> bool {
    match ip {
        std::net::IpAddr::V4(v4) => v4.is_loopback() || v4.is_unspecified() || v4.is_link_local(),
        std::net::IpAddr::V6(v6) => {
            v6.is_loopback()
                || v6.is_unspecified()
                || (v6.segments()[0] & 0xffc0) == 0xfe80
                || v6.to_ipv4_mapped().is_some_and(|v4| is_internal(v4.into()))
        }
    }
}

/// What the gateway does with one forward-mode request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admission {
    /// Inspect like reverse-mode traffic.
    Inspect,
    /// Forward uninspected (policy `passthrough` for a plain-HTTP host).
    Pass,
    /// Refuse with 403 and this message.
    Deny(String),
}

/// A proxy digest carrying `target`, for [`pingora::protocols::GetProxyDigest::set_proxy_digest`].
pub fn tunnel_digest(target: ForwardTarget) -> ProxyDigest {
    let header = ResponseHeader::build(200, Some(0)).expect("static status");
    ProxyDigest::new(Box::new(header), Some(Box::new(Arc::new(target))))
}

/// Forward and transparent mode: settings that cannot be used, and client
/// requests (CONNECT heads, absolute-form targets, ClientHellos) that
/// cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum ForwardError {
    #[error("forward routes: {0}")]
    Route(#[from] crate::datapath::route::RouteError),
    /// An absolute-form request target.
    #[error("{0}")]
    Target(String),
    /// A CONNECT request head.
    #[error("{0}")]
    Connect(String),
    /// A redirected connection's ClientHello.
    #[error("{0}")]
    ClientHello(String),
}

/// `http://host[:port]/path` (pingora keeps the full target in the raw path
/// and has already checked that `Host` agrees).
fn absolute_form(raw: &[u8]) -> Result<Option<ForwardTarget>, ForwardError> {
    let lower = |n: usize| raw.get(..n).map(|p| p.to_ascii_lowercase());
    let (tls, rest) = if lower(7).as_deref() == Some(b"http://") {
        (false, &raw[7..])
    } else if lower(8).as_deref() == Some(b"https://") {
        (true, &raw[8..])
    } else {
        return Ok(None);
    };
    let rest = std::str::from_utf8(rest)
        .map_err(|_| ForwardError::Target("request target is not UTF-8".into()))?;
    let authority = rest.split(['/', '?']).next().unwrap_or("");
    let authority = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let default = if tls { 443 } else { 80 };
    let (host, port) = match split_host_port(authority) {
        Some((h, p)) => (h, p),
        None => (
            authority.trim_start_matches('[').trim_end_matches(']'),
            default,
        ),
    };
    let host = normalize_host(host);
    if host.is_empty() {
        return Err(ForwardError::Target(
            "absolute-form request target has no host".into(),
        ));
    }
    Ok(Some(ForwardTarget {
        mode: Mode::AbsoluteForm,
        host,
        port,
        tls,
        addr: None,
        verdict: None,
    }))
}

pub type SockHook =
    Arc<dyn Fn(&tokio::net::TcpSocket) -> pingora::Result<()> + Send + Sync + 'static>;

/// Forward-mode state shared by the front and the gateway.
pub struct Forwarding {
    /// Route names and API families by destination host (the upstream is
    /// always the client's destination, never a route's `upstream`).
    pub routes: RouteTable,
    connect_to: HashMap<String, SocketAddr>,
    so_mark: Option<u32>,
    mark_hook: Option<SockHook>,
    own: Vec<SocketAddr>,
    /// Treat absolute-form requests as forward-proxy traffic (`forward_proxy`).
    absolute_form: bool,
    /// `asg-<random>`: this process's `Via` pseudonym, to recognise its own
    /// requests coming back (a redirect loop the rules failed to exclude).
    via_token: String,
    /// Local addresses of the blind tunnels this gateway has open: a
    /// redirected connection coming *from* one of them is a loop.
    tunnel_sockets: Mutex<HashSet<SocketAddr>>,
}

/// Keeps a tunnel's local address registered while the tunnel is open.
pub struct TunnelSocket<'a> {
    fwd: &'a Forwarding,
    addr: Option<SocketAddr>,
}

impl Drop for TunnelSocket<'_> {
    fn drop(&mut self) {
        if let (Some(a), Ok(mut set)) = (self.addr, self.fwd.tunnel_sockets.lock()) {
            set.remove(&a);
        }
    }
}

/// Route names of forward-mode traffic: the configuration's host-specific
/// routes, then these, then `forward` for every other host.
fn builtin_forward_routes() -> Vec<RouteConfig> {
    let route = |name: &str, host: Option<&str>, upstream: &str, api| RouteConfig {
        name: name.to_string(),
        prefix: "/".to_string(),
        host: host.map(str::to_string),
        upstream: upstream.to_string(),
        api,
        strip_prefix: false,
        tool_name: None,
    };
    vec![
        route(
            "openai",
            Some("api.openai.com"),
            "https://api.openai.com",
            ApiKind::Openai,
        ),
        route(
            "anthropic",
            Some("api.anthropic.com"),
            "https://api.anthropic.com",
            ApiKind::Anthropic,
        ),
        route(
            "gemini",
            Some("generativelanguage.googleapis.com"),
            "https://generativelanguage.googleapis.com",
            ApiKind::Gemini,
        ),
        // Never connected to: forward mode goes where the client asked.
        route("forward", None, "https://forward.invalid", ApiKind::Auto),
    ]
}

impl Forwarding {
    pub fn new(cfg: ForwardConfig) -> Result<Forwarding, ForwardError> {
        let mut routes = cfg.host_routes;
        routes.extend(builtin_forward_routes());
        let mark_hook: Option<SockHook> = cfg.so_mark.map(|mark| {
            let hook: SockHook = Arc::new(move |sock: &tokio::net::TcpSocket| {
                set_mark(sock, mark).map_err(|e| {
                    pingora::Error::explain(
                        pingora::ErrorType::SocketError,
                        format!("cannot set SO_MARK {mark:#x} on an upstream socket: {e}"),
                    )
                })
            });
            hook
        });
        Ok(Forwarding {
            routes: RouteTable::new(&routes)?,
            connect_to: cfg.connect_to,
            so_mark: cfg.so_mark,
            mark_hook,
            own: cfg.own,
            absolute_form: cfg.absolute_form,
            via_token: format!("asg-{}", hex::encode(rand::random::<[u8; 4]>())),
            tunnel_sockets: Mutex::new(HashSet::new()),
        })
    }

    /// The forward target of this request, if it is forward-mode traffic:
    /// attached to the connection by the front, or an absolute-form target.
    pub fn target_of(&self, session: &Session) -> Result<Option<ForwardTarget>, ForwardError> {
        let attached = session
            .digest()
            .and_then(|d| d.proxy_digest.as_ref())
            .and_then(|p| p.user_data.as_ref())
            .and_then(|u| u.downcast_ref::<Arc<ForwardTarget>>());
        if let Some(t) = attached {
            return Ok(Some(ForwardTarget::clone(t)));
        }
        if !self.absolute_form {
            return Ok(None);
        }
        absolute_form(session.req_header().raw_path())
    }

    /// Apply the `[connect]` policy to one request. Connection-level verdicts
    /// (CONNECT, transparent TLS) were counted by the front; per-request ones
    /// (absolute-form, transparent plain HTTP) are counted here.
    pub fn admit(
        &self,
        t: &mut ForwardTarget,
        policy: &Policy,
        host_header: Option<&str>,
        metrics: &crate::metrics::Metrics,
    ) -> Admission {
        let per_request = t.verdict.is_none();
        let verdict = t.decide(policy, host_header);
        if per_request {
            metrics
                .forward
                .decisions
                .with_label_values(&[t.mode.as_str(), verdict.action.as_str()])
                .inc();
        }
        match verdict.action {
            ConnectAction::Intercept => Admission::Inspect,
            ConnectAction::Passthrough => Admission::Pass,
            ConnectAction::Deny => Admission::Deny(format!(
                "{} is denied by policy {} (rule {})",
                t.authority(),
                policy.version,
                verdict.rule
            )),
        }
    }

    /// Register an open blind tunnel's local address (see [`Self::is_own_tunnel`]).
    pub fn register_tunnel(&self, local: Option<SocketAddr>) -> TunnelSocket<'_> {
        if let (Some(a), Ok(mut set)) = (local, self.tunnel_sockets.lock()) {
            set.insert(a);
        }
        TunnelSocket {
            fwd: self,
            addr: local,
        }
    }

    /// A connection from one of our own open tunnels (redirected back to us).
    pub fn is_own_tunnel(&self, peer: SocketAddr) -> bool {
        self.tunnel_sockets
            .lock()
            .is_ok_and(|set| set.contains(&peer))
    }

    /// This request already went through this gateway: a loop.
    pub fn is_loop(&self, session: &Session) -> bool {
        session
            .req_header()
            .headers
            .get_all("via")
            .iter()
            .any(|v| v.to_str().is_ok_and(|v| v.contains(&self.via_token)))
    }

    /// Append this gateway to the request's `Via` (RFC 9110 §7.6.3).
    pub fn add_via(&self, req: &mut pingora::http::RequestHeader) -> pingora::Result<()> {
        let via = match req.headers.get("via").and_then(|v| v.to_str().ok()) {
            Some(prior) => format!("{prior}, 1.1 {}", self.via_token),
            None => format!("1.1 {}", self.via_token),
        };
        req.insert_header("via", via)
    }

    /// The configured override for `host:port`, if any.
    pub fn override_for(&self, host: &str, port: u16) -> Option<SocketAddr> {
        self.connect_to.get(&format!("{host}:{port}")).copied()
    }

    /// Where to connect for `t`: an override, the pre-redirect destination, or
    /// the resolved host. Refuses the gateway's own listeners (a loop) and,
    /// for explicit proxy use, loopback and link-local addresses that no
    /// `[connect]` list names: a client of a shared gateway must not reach
    /// the gateway's own host or the cloud metadata service through it.
    /// (A redirected connection was already going to its destination.)
    pub async fn upstream_addr(
        &self,
        t: &ForwardTarget,
        resolver: &Resolver,
    ) -> Result<SocketAddr, Unreachable> {
        let (addr, chosen_by_operator) = match self.override_for(&t.host, t.port).or(t.addr) {
            Some(a) => (a, true),
            None => (
                resolver
                    .resolve(&t.host, t.port)
                    .await
                    .map_err(Unreachable::Resolve)?,
                false,
            ),
        };
        if self.is_own_listener(addr) {
            return Err(Unreachable::Loop(format!(
                "{} is the gateway itself ({addr}); refusing a proxy loop",
                t.authority()
            )));
        }
        let named = t.verdict.as_ref().is_some_and(|v| v.explicit());
        if !chosen_by_operator && t.mode != Mode::Transparent && !named && is_internal(addr.ip()) {
            return Err(Unreachable::Internal(format!(
                "{} resolves to {addr}, a loopback or link-local address; such destinations are reachable only when a [connect] list names the host",
                t.authority()
            )));
        }
        Ok(addr)
    }

    /// One of our listeners (a destination that would loop back to us).
    pub fn is_own_listener(&self, addr: SocketAddr) -> bool {
        self.own.iter().any(|own| {
            own.port() == addr.port()
                && (own.ip() == addr.ip()
                    || (own.ip().is_unspecified()
                        && (addr.ip().is_loopback() || addr.ip().is_unspecified())))
        })
    }

    /// Apply `SO_MARK` to pingora's upstream connections.
    pub fn tune_peer(&self, peer: &mut pingora::upstreams::peer::HttpPeer) {
        if let Some(h) = &self.mark_hook {
            peer.options.upstream_tcp_sock_tweak_hook = Some(h.clone());
        }
    }

    /// Apply `SO_MARK` to a socket the gateway opens itself (blind tunnels).
    pub fn mark(&self, sock: &tokio::net::TcpSocket) -> std::io::Result<()> {
        match self.so_mark {
            Some(m) => set_mark(sock, m),
            None => Ok(()),
        }
    }
}

fn set_mark(sock: &tokio::net::TcpSocket, mark: u32) -> std::io::Result<()> {
    nix::sys::socket::setsockopt(sock, nix::sys::socket::sockopt::Mark, &mark)
        .map_err(std::io::Error::from)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    #[test]
    fn absolute_form_targets() {
        let t = absolute_form(b"http://API.openai.com/v1/chat/completions")
            .unwrap()
            .unwrap();
        assert_eq!(
            (t.host.as_str(), t.port, t.tls, t.mode),
            ("api.openai.com", 80, false, Mode::AbsoluteForm)
        );
        assert_eq!(t.url("/v1/x"), "http://api.openai.com/v1/x");
        let t = absolute_form(b"https://[::1]:8443/x?y").unwrap().unwrap();
        assert_eq!((t.host.as_str(), t.port, t.tls), ("::1", 8443, true));
        assert_eq!(t.authority(), "[::1]:8443");
        assert!(absolute_form(b"/v1/chat/completions").unwrap().is_none());
        assert!(absolute_form(b"http:///x").is_err());
    }

    #[test]
    fn per_request_targets_take_the_host_header() {
        let policy = Policy::load("dev", None).unwrap();
        let mut t = ForwardTarget {
            mode: Mode::Transparent,
            host: "10.0.0.7".into(),
            port: 80,
            tls: false,
            addr: Some("10.0.0.7:80".parse().unwrap()),
            verdict: None,
        };
        let v = t.decide(&policy, Some("API.Anthropic.com:80"));
        assert_eq!(t.host, "api.anthropic.com");
        assert_eq!(v.rule, "builtin:api.anthropic.com");
    }

    #[test]
    fn own_listeners_are_loops() {
        let cfg = Config {
            listen: "0.0.0.0:8080".into(),
            transparent_listen: Some("127.0.0.1:15001".into()),
            ..Config::default()
        };
        let f = Forwarding::new(cfg.forward_config().unwrap()).unwrap();
        assert!(f.is_own_listener("127.0.0.1:8080".parse().unwrap()));
        assert!(f.is_own_listener("127.0.0.1:15001".parse().unwrap()));
        assert!(!f.is_own_listener("127.0.0.2:15001".parse().unwrap()));
        assert!(!f.is_own_listener("10.1.1.1:443".parse().unwrap()));
    }

    #[tokio::test]
    async fn internal_destinations_need_an_explicit_rule() {
        let cfg = Config {
            listen: "127.0.0.1:8080".into(),
            connect_to: [("mapped.test:443".to_string(), "127.0.0.1:9443".to_string())].into(),
            ..Config::default()
        };
        let f = Forwarding::new(cfg.forward_config().unwrap()).unwrap();
        let resolver = Resolver::new();
        let policy = Policy::load("dev", None).unwrap();
        let target = |host: &str, port, mode| {
            let mut t = ForwardTarget {
                mode,
                host: host.to_string(),
                port,
                tls: true,
                addr: None,
                verdict: None,
            };
            t.decide(&policy, None);
            t
        };
        let err = f
            .upstream_addr(&target("127.0.0.1", 9000, Mode::Connect), &resolver)
            .await
            .unwrap_err();
        assert!(matches!(err, Unreachable::Internal(_)), "{err}");
        assert_eq!((err.status(), err.reason()), (403, "internal_destination"));
        let metadata = target("169.254.169.254", 80, Mode::AbsoluteForm);
        assert!(f.upstream_addr(&metadata, &resolver).await.is_err());
        let err = f
            .upstream_addr(&target("127.0.0.1", 9090, Mode::Connect), &resolver)
            .await
            .unwrap_err();
        assert!(
            matches!(err, Unreachable::Loop(_)),
            "the admin listener: {err}"
        );
        // An operator's override, or an explicit rule, makes it reachable.
        assert!(f
            .upstream_addr(&target("mapped.test", 443, Mode::Connect), &resolver)
            .await
            .is_ok());
        let mut named = target("127.0.0.1", 9000, Mode::Connect);
        named.verdict = Some(ConnectVerdict {
            action: ConnectAction::Intercept,
            rule: "intercept:127.0.0.1".into(),
        });
        assert!(f.upstream_addr(&named, &resolver).await.is_ok());
        // A redirected connection was already going there.
        let mut redirected = target("127.0.0.1", 9000, Mode::Transparent);
        redirected.addr = Some("127.0.0.1:9000".parse().unwrap());
        assert!(f.upstream_addr(&redirected, &resolver).await.is_ok());
        assert!(is_internal("::ffff:127.0.0.1".parse().unwrap()));
        assert!(is_internal("fe80::1".parse().unwrap()));
        assert!(!is_internal("10.0.0.1".parse().unwrap()));
    }

    #[test]
    fn forward_routes_name_known_hosts() {
        let f = Forwarding::new(Config::default().forward_config().unwrap()).unwrap();
        let name = |h: &str| f.routes.find(Some(h), "/v1/x").unwrap().name.clone();
        assert_eq!(name("api.openai.com"), "openai");
        assert_eq!(name("api.anthropic.com"), "anthropic");
        assert_eq!(name("example.com"), "forward");
    }
}
