//! The admin listener's front door, run before every route: loopback host
//! names without auth (DNS rebinding), cross-site requests and content
//! types of state-changing requests, authentication with a limit on failed
//! attempts, per-caller rate limits, and request metrics.

use super::auth::{key_name, EXEMPT_PATHS};
use super::http::Caller;
use super::http::{error, Shared};
use super::idle::PeerAddr;
use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::Response;
use serde_json::json;

/// Why a state-changing request from a browser context is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// `Sec-Fetch-Site: cross-site` or `same-site` (another origin).
    CrossSite,
    /// An `Origin` other than the admin listener's own (or `null`).
    ForeignOrigin,
    /// Not a JSON body: a cross-site form or a no-CORS `fetch` cannot send one.
    NotJson,
}

impl Refusal {
    fn answer(self) -> Response {
        match self {
            Refusal::CrossSite | Refusal::ForeignOrigin => error(
                403,
                "cross_site_request",
                "the admin API refuses state-changing requests from other web origins; call it from the console or from a non-browser client",
                json!({ "reason": if self == Refusal::CrossSite { "sec_fetch_site" } else { "origin" } }),
            ),
            Refusal::NotJson => error(
                415,
                "unsupported_media_type",
                "state-changing admin requests need Content-Type: application/json",
                json!({}),
            ),
        }
    }
}

/// GET, HEAD and OPTIONS change nothing; every other method may.
pub fn changes_state(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// Checks for a request that may change state, whatever the auth mode: a
/// web page must not approve anything through the operator's browser (auth
/// off, or a key the page cannot see but the browser would not send
/// anyway) or make it inspect on its behalf.
pub fn check_state_change(headers: &HeaderMap) -> Result<(), Refusal> {
    let text = |name| {
        headers
            .get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
    };
    if let Some(site) = text(header::HeaderName::from_static("sec-fetch-site")) {
        // `none`: typed by the user; `same-origin`: the console itself.
        if !matches!(
            site.trim().to_ascii_lowercase().as_str(),
            "same-origin" | "none"
        ) {
            return Err(Refusal::CrossSite);
        }
    }
    if let Some(origin) = text(header::ORIGIN) {
        if !same_origin(origin, text(header::HOST)) {
            return Err(Refusal::ForeignOrigin);
        }
    }
    let ct = text(header::CONTENT_TYPE);
    if !ct.is_some_and(is_json) {
        return Err(Refusal::NotJson);
    }
    Ok(())
}

/// `application/json` or `application/*+json` (with parameters); neither
/// is a type a cross-site form can send.
fn is_json(ct: &str) -> bool {
    let mime = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    mime == "application/json" || (mime.starts_with("application/") && mime.ends_with("+json"))
}

/// `Origin` (`scheme://host[:port]`) names the host and port of `Host`.
/// A missing port means the scheme's default on either side.
fn same_origin(origin: &str, host: Option<&str>) -> bool {
    let Some(host) = host else {
        return false;
    };
    let Some((scheme, authority)) = origin.trim().split_once("://") else {
        return false; // includes `null`
    };
    let default = match scheme.to_ascii_lowercase().as_str() {
        "http" => 80,
        "https" => 443,
        _ => return false,
    };
    match (split(authority, default), split(host.trim(), default)) {
        (Some((oh, op)), Some((hh, hp))) => oh.eq_ignore_ascii_case(hh) && op == hp,
        _ => false,
    }
}

/// `host[:port]` or `[v6][:port]`, the port defaulted.
fn split(authority: &str, default: u16) -> Option<(&str, u16)> {
    if authority.contains('/') || authority.contains('@') || authority.is_empty() {
        return None;
    }
    if let Some(rest) = authority.strip_prefix('[') {
        let (h, after) = rest.split_once(']')?;
        return match after.strip_prefix(':') {
            Some(p) => Some((h, p.parse().ok()?)),
            None if after.is_empty() => Some((h, default)),
            None => None,
        };
    }
    match authority.rsplit_once(':') {
        Some((h, p)) => Some((h, p.parse().ok()?)),
        None => Some((authority, default)),
    }
}

/// Authentication, roles, rate limiting and request metrics for every route.
pub async fn guard(State(s): State<Shared>, mut req: Request, next: Next) -> Response {
    let path = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".to_string());
    let probe = EXEMPT_PATHS.contains(&req.uri().path());
    let exempt = probe || super::operator::CONSOLE_ASSETS.contains(&req.uri().path());
    let peer = req
        .extensions()
        .get::<ConnectInfo<PeerAddr>>()
        .map(|c| c.0 .0.ip().to_string())
        .unwrap_or_default();
    let response = if !probe && s.loopback_hosts_only && !loopback_host(req.headers()) {
        error(
            403,
            "host_not_allowed",
            "without ASG_ADMIN_AUTH the admin API answers only to a loopback host name (127.0.0.1, localhost, [::1])",
            json!({}),
        )
    } else if let Some(refused) = changes_state(req.method())
        .then(|| check_state_change(req.headers()).err())
        .flatten()
    {
        refused.answer()
    } else if exempt {
        next.run(req).await
    } else if s.auth.enabled() && !s.failures.available(&peer) {
        // Too many failed keys from this address: refuse every key, the
        // right one included, so guessing gains nothing until the bucket
        // refills.
        too_many_failures(&s)
    } else {
        let key = presented_key(req.headers(), s.auth.header());
        match s.auth.identify(key.as_deref()) {
            None => {
                // With shared state the failures also count across the
                // fleet, so spreading guesses over replicas gains nothing.
                let fleet = s.app.store.shared().is_none()
                    || s.failures
                        .allow_in(&s.app.store, &format!("fail:{peer}"))
                        .await;
                if s.failures.allow(&peer) && fleet {
                    error(
                        401,
                        "auth_failed",
                        "missing or invalid API key",
                        json!({ "header": s.auth.header() }),
                    )
                } else {
                    too_many_failures(&s)
                }
            }
            Some(principal) => {
                let bucket = if s.auth.enabled() {
                    format!("key:{}", key.as_deref().unwrap_or_default())
                } else {
                    format!("addr:{peer}")
                };
                if !s.limiter.allow_in(&s.app.store, &bucket).await {
                    error(429, "rate_limited", "rate limit exceeded", json!({}))
                } else {
                    let role = principal.role;
                    let credential = match key.as_deref() {
                        Some(k) if s.auth.enabled() => key_name(role, k),
                        _ => "local".to_string(),
                    };
                    req.extensions_mut().insert(role);
                    req.extensions_mut().insert(Caller {
                        role,
                        credential,
                        auth_enabled: s.auth.enabled(),
                        agent: principal.agent,
                    });
                    next.run(req).await
                }
            }
        }
    };
    s.app
        .metrics
        .admin_requests
        .with_label_values(&[path.as_str(), response.status().as_str()])
        .inc();
    response
}

fn too_many_failures(s: &Shared) -> Response {
    let mut r = error(
        429,
        "too_many_auth_failures",
        "too many failed authentications from this address; wait a minute and retry with a valid key",
        json!({}),
    );
    let wait = s.failures.seconds_per_token().to_string();
    if let Ok(v) = HeaderValue::from_str(&wait) {
        r.headers_mut().insert(header::RETRY_AFTER, v);
    }
    r
}

/// The `Host` header names a loopback address (or is absent, as from
/// HTTP/1.0 tools): anything else may be a DNS-rebinding page.
pub fn loopback_host(headers: &HeaderMap) -> bool {
    let Some(host) = headers.get(header::HOST).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    let name = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => host.rsplit_once(':').map_or(host, |(h, _)| h),
    };
    name.eq_ignore_ascii_case("localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

fn presented_key(headers: &HeaderMap, name: &str) -> Option<String> {
    if let Some(v) = headers.get(name).and_then(|v| v.to_str().ok()) {
        return Some(v.trim().to_string());
    }
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(|k| k.trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut m = HeaderMap::new();
        for (k, v) in pairs {
            m.insert(*k, v.parse().unwrap());
        }
        m
    }

    #[test]
    fn only_loopback_host_names_pass() {
        let with = |h: &str| loopback_host(&headers(&[("host", h)]));
        for ok in [
            "127.0.0.1:9090",
            "localhost",
            "LOCALHOST:1",
            "[::1]:9090",
            "127.1.2.3",
        ] {
            assert!(with(ok), "{ok}");
        }
        for bad in [
            "evil.example",
            "evil.example:9090",
            "10.0.0.1:9090",
            "[2001:db8::1]:80",
        ] {
            assert!(!with(bad), "{bad}");
        }
        assert!(loopback_host(&HeaderMap::new()));
    }

    #[test]
    fn state_changes_need_json_and_the_same_origin() {
        let json = ("content-type", "application/json");
        let host = ("host", "127.0.0.1:9090");
        let ok = |h: &[(&'static str, &str)]| check_state_change(&headers(h));
        // Non-browser clients (curl, SDKs) send neither header.
        assert_eq!(ok(&[json, host]), Ok(()));
        // The console: same origin.
        assert_eq!(
            ok(&[
                json,
                host,
                ("origin", "http://127.0.0.1:9090"),
                ("sec-fetch-site", "same-origin")
            ]),
            Ok(())
        );
        assert_eq!(
            ok(&[
                json,
                ("host", "localhost"),
                ("origin", "http://LOCALHOST:80")
            ]),
            Ok(())
        );
        assert_eq!(
            ok(&[
                json,
                ("host", "admin.example"),
                ("origin", "https://admin.example")
            ]),
            Ok(()),
            "a TLS-terminating front: no port on either side"
        );
        for site in ["cross-site", "same-site", "Cross-Site"] {
            assert_eq!(
                ok(&[json, host, ("sec-fetch-site", site)]),
                Err(Refusal::CrossSite),
                "{site}"
            );
        }
        for origin in [
            "http://evil.example",
            "http://127.0.0.1:3000",
            "http://127.0.0.1",
            "null",
            "http://127.0.0.1:9090@evil.example",
            "file://",
        ] {
            assert_eq!(
                ok(&[json, host, ("origin", origin)]),
                Err(Refusal::ForeignOrigin),
                "{origin}"
            );
        }
        assert_eq!(
            ok(&[json, ("origin", "http://127.0.0.1:9090")]),
            Err(Refusal::ForeignOrigin),
            "no Host to compare with"
        );
        for ct in [
            None,
            Some("text/plain"),
            Some("application/x-www-form-urlencoded"),
            Some("multipart/form-data; boundary=x"),
            Some("text/json"),
        ] {
            let mut h = vec![host];
            if let Some(c) = ct {
                h.push(("content-type", c));
            }
            assert_eq!(ok(&h), Err(Refusal::NotJson), "{ct:?}");
        }
        assert_eq!(
            ok(&[
                (
                    "content-type",
                    "application/merge-patch+json; charset=utf-8"
                ),
                host
            ]),
            Ok(())
        );
    }

    #[test]
    fn reads_are_not_state_changes() {
        assert!(!changes_state(&Method::GET));
        assert!(!changes_state(&Method::HEAD));
        assert!(changes_state(&Method::POST));
        assert!(changes_state(&Method::DELETE));
        assert!(changes_state(&Method::PUT));
    }
}
