//! Route table: which upstream (and which API family) serves a request.
//! Longest matching path prefix wins; a route with a `host` only matches
//! requests for that host.

use crate::datapath::config::RouteConfig;
use crate::datapath::dialect::{ApiKind, Dialect};
use crate::datapath::path_norm::{NormPath, Reading};
use std::sync::Arc;

/// A parsed upstream base URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upstream {
    pub tls: bool,
    pub host: String,
    pub port: u16,
    /// Path prepended to the request path (no trailing slash; may be empty).
    pub base_path: String,
}

/// A route or upstream URL the gateway cannot use.
#[derive(Debug, thiserror::Error)]
pub enum RouteError {
    #[error("upstream {url:?} {problem}")]
    Upstream { url: String, problem: String },
    #[error("route {name}: {source}")]
    Route {
        name: String,
        #[source]
        source: Box<RouteError>,
    },
}

impl Upstream {
    pub fn parse(url: &str) -> Result<Upstream, RouteError> {
        let bad = |problem: String| RouteError::Upstream {
            url: url.to_string(),
            problem,
        };
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| bad("has no scheme (http:// or https://)".into()))?;
        let tls = match scheme.to_ascii_lowercase().as_str() {
            "https" => true,
            "http" => false,
            other => {
                return Err(bad(format!(
                    "has an unsupported scheme {other} (use http:// or https://)"
                )))
            }
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        if authority.is_empty() {
            return Err(bad("has no host".into()));
        }
        let default_port = if tls { 443 } else { 80 };
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (h, after) = v6
                .split_once(']')
                .ok_or_else(|| bad("has a bad IPv6 literal".into()))?;
            let port = after
                .strip_prefix(':')
                .map(|p| p.parse::<u16>())
                .transpose()
                .map_err(|_| bad("has a bad port".into()))?;
            (h.to_string(), port.unwrap_or(default_port))
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (
                    h.to_string(),
                    p.parse::<u16>()
                        .map_err(|_| bad(format!("has a bad port {p:?}")))?,
                ),
                None => (authority.to_string(), default_port),
            }
        };
        Ok(Upstream {
            tls,
            host,
            port,
            base_path: path.trim_end_matches('/').to_string(),
        })
    }

    /// `host:port` for connecting.
    pub fn address(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// Value for the `Host` header.
    pub fn host_header(&self) -> String {
        let default = if self.tls { 443 } else { 80 };
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        if self.port == default {
            host
        } else {
            format!("{host}:{}", self.port)
        }
    }
}

#[derive(Debug)]
pub struct Route {
    pub name: String,
    pub prefix: String,
    pub host: Option<String>,
    pub upstream: Upstream,
    pub api: ApiKind,
    pub strip_prefix: bool,
    pub tool_name: Option<String>,
}

impl Route {
    /// The path to send upstream for a request path (query kept).
    pub fn upstream_path(&self, path_and_query: &str) -> String {
        let rest = if self.strip_prefix {
            // Routes match without case, so the prefix is cut without case.
            let prefix = self.prefix.trim_end_matches('/');
            let stripped = path_and_query
                .get(..prefix.len())
                .filter(|head| head.eq_ignore_ascii_case(prefix))
                .map_or(path_and_query, |_| &path_and_query[prefix.len()..]);
            if stripped.starts_with('/') || stripped.starts_with('?') {
                stripped.to_string()
            } else {
                format!("/{stripped}")
            }
        } else {
            path_and_query.to_string()
        };
        format!("{}{}", self.upstream.base_path, rest)
    }

    /// The tool an `http_tool` route calls: configured, or the last path segment.
    pub fn tool_name_for(&self, path: &str) -> String {
        self.tool_name.clone().unwrap_or_else(|| {
            path.trim_end_matches('/')
                .rsplit('/')
                .next()
                .unwrap_or("http_tool")
                .to_string()
        })
    }
}

#[derive(Debug, Clone)]
pub struct RouteTable {
    routes: Vec<Arc<Route>>,
}

impl RouteTable {
    pub fn new(configs: &[RouteConfig]) -> Result<RouteTable, RouteError> {
        let mut routes = configs
            .iter()
            .map(|c| {
                Ok(Arc::new(Route {
                    name: c.name.clone(),
                    prefix: c.prefix.clone(),
                    host: c.host.as_ref().map(|h| h.to_ascii_lowercase()),
                    upstream: Upstream::parse(&c.upstream).map_err(|e| RouteError::Route {
                        name: c.name.clone(),
                        source: Box::new(e),
                    })?,
                    api: c.api,
                    strip_prefix: c.strip_prefix,
                    tool_name: c.tool_name.clone(),
                }))
            })
            .collect::<Result<Vec<_>, RouteError>>()?;
        // Host-specific first, then longest prefix.
        routes.sort_by(|a, b| {
            b.host
                .is_some()
                .cmp(&a.host.is_some())
                .then(b.prefix.len().cmp(&a.prefix.len()))
        });
        Ok(RouteTable { routes })
    }

    pub fn names(&self) -> Vec<String> {
        self.routes.iter().map(|r| r.name.clone()).collect()
    }

    /// The route and dialect of a request, over the readings of its path
    /// ([`crate::datapath::path_norm`]): the first reading an inspected
    /// dialect claims wins, so no spelling of an API path escapes
    /// inspection; otherwise the first reading's route, uninspected.
    pub fn resolve<'a>(
        &self,
        host: Option<&str>,
        method: &str,
        path: &'a NormPath,
    ) -> Option<(Arc<Route>, Dialect, &'a Reading)> {
        let mut first = None;
        for reading in &path.readings {
            let Some(route) = self.find(host, &reading.key) else {
                continue;
            };
            let dialect = Dialect::detect(route.api, method, &reading.key);
            if dialect.is_inspected() {
                return Some((route, dialect, reading));
            }
            first.get_or_insert((route, dialect, reading));
        }
        first
    }

    /// The route for `path`; prefixes match without case.
    pub fn find(&self, host: Option<&str>, path: &str) -> Option<Arc<Route>> {
        let host = host.map(|h| h.split(':').next().unwrap_or(h).to_ascii_lowercase());
        self.routes
            .iter()
            .find(|r| {
                let host_ok = match (&r.host, &host) {
                    (Some(want), Some(got)) => want == got,
                    (Some(_), None) => false,
                    (None, _) => true,
                };
                host_ok && prefix_matches(&r.prefix, path)
            })
            .cloned()
    }
}

/// `/v1/messages` matches `/v1/messages` and `/v1/messages/count_tokens`,
/// not `/v1/messagesX`.
fn prefix_matches(prefix: &str, path: &str) -> bool {
    let prefix = prefix.trim_end_matches('/');
    prefix.is_empty()
        || path
            .get(..prefix.len())
            .is_some_and(|head| head.eq_ignore_ascii_case(prefix))
            && path[prefix.len()..]
                .chars()
                .next()
                .is_none_or(|c| c == '/' || c == '?')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(name: &str, prefix: &str, upstream: &str) -> RouteConfig {
        RouteConfig {
            name: name.into(),
            prefix: prefix.into(),
            host: None,
            upstream: upstream.into(),
            api: ApiKind::Auto,
            strip_prefix: false,
            tool_name: None,
        }
    }

    #[test]
    fn parses_upstreams() {
        let u = Upstream::parse("https://api.openai.com").unwrap();
        assert_eq!(
            (u.tls, u.port, u.address()),
            (true, 443, "api.openai.com:443".to_string())
        );
        let u = Upstream::parse("http://127.0.0.1:8000/base/").unwrap();
        assert_eq!(
            (u.base_path.as_str(), u.host_header()),
            ("/base", "127.0.0.1:8000".to_string())
        );
        assert!(Upstream::parse("ftp://x").is_err());
        assert!(Upstream::parse("api.openai.com").is_err());
    }

    #[test]
    fn longest_prefix_wins() {
        let t = RouteTable::new(&[
            route("default", "/", "http://a:1"),
            route("anthropic", "/v1/messages", "http://b:2"),
        ])
        .unwrap();
        assert_eq!(t.find(None, "/v1/messages").unwrap().name, "anthropic");
        assert_eq!(
            t.find(None, "/v1/messages?beta=true").unwrap().name,
            "anthropic"
        );
        assert_eq!(t.find(None, "/v1/messagesX").unwrap().name, "default");
        assert_eq!(t.find(None, "/V1/Messages").unwrap().name, "anthropic");
        assert_eq!(
            t.find(None, "/v1/chat/completions").unwrap().name,
            "default"
        );
    }

    #[test]
    fn strip_prefix_and_base_path() {
        let mut c = route("a", "/anthropic", "https://x/base");
        c.strip_prefix = true;
        let t = RouteTable::new(&[c]).unwrap();
        let r = t.find(None, "/anthropic/v1/messages").unwrap();
        assert_eq!(
            r.upstream_path("/anthropic/v1/messages?beta=true"),
            "/base/v1/messages?beta=true"
        );
        assert_eq!(
            r.upstream_path("/Anthropic/v1/messages"),
            "/base/v1/messages"
        );
    }

    #[test]
    fn every_spelling_of_an_api_path_resolves_to_its_dialect() {
        let t = RouteTable::new(&[route("default", "/", "http://a:1")]).unwrap();
        for raw in [
            "/V1/CHAT/COMPLETIONS",
            "/v1/responses/",
            "/v1/chat/completions;x",
            "/v1%2fmessages",
            "/v1/chat/completions/..;/..;/chat/completions",
        ] {
            let norm = crate::datapath::path_norm::normalize(raw).unwrap();
            let (_, dialect, reading) = t.resolve(None, "POST", &norm).unwrap();
            assert!(dialect.is_inspected(), "{raw}: {dialect:?}");
            assert!(!reading.clean.contains(['%', ';']), "{raw}");
        }
        let norm = crate::datapath::path_norm::normalize("/v1/models").unwrap();
        let (_, dialect, _) = t.resolve(None, "GET", &norm).unwrap();
        assert_eq!(dialect, Dialect::Passthrough);
    }
}
