//! `ASG_STATE_URL`: where the shared state lives.
//!
//! ```text
//! redis://[user[:password]@]host[:port][/db][?options]
//! rediss://…                                  TLS (rustls; `ca=` for a private CA)
//! redis+sentinel://[user[:password]@]host:port[,host:port…]/service[/db][?options]
//! ```
//!
//! Options (query): `prefix` (key prefix, default `asg`; `ASG_STATE_PREFIX`
//! overrides it), `timeout_ms` (per operation, default 500), `connect_ms`
//! (default 1000), `wait_replicas` / `wait_timeout_ms` (acknowledged writes
//! wait for that many replicas, default 0 / 200), `poll_ms` (held calls poll
//! this often while pub/sub is down, default 1000), `tail_max` (console tail
//! length, default 10000), `ca` (PEM file of the CA that signed the
//! server's certificate), and for sentinel `tls=true` (data nodes speak
//! TLS) and `sentinel_password`. The password may come from
//! `ASG_STATE_PASSWORD` instead (a Kubernetes Secret), never from both.
//! Unknown options are an error: a typo must not silently change behaviour.

use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    Direct {
        host: String,
        port: u16,
        tls: bool,
    },
    Sentinel {
        nodes: Vec<(String, u16)>,
        service: String,
        tls: bool,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct StateUrl {
    pub target: Target,
    pub db: i64,
    pub username: Option<String>,
    pub password: Option<String>,
    pub sentinel_password: Option<String>,
    /// Key prefix without the version segment (`asg`).
    pub prefix: String,
    pub op_timeout: Duration,
    pub connect_timeout: Duration,
    pub wait_replicas: u32,
    pub wait_timeout: Duration,
    pub poll_interval: Duration,
    pub tail_max: usize,
    pub ca_file: Option<PathBuf>,
}

/// One sentence saying what is wrong with the URL (never echoing a password).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("ASG_STATE_URL: {0}")]
pub struct UrlError(String);

fn bad<T>(msg: impl Into<String>) -> Result<T, UrlError> {
    Err(UrlError(msg.into()))
}

const DEFAULT_PORT: u16 = 6379;
const DEFAULT_SENTINEL_PORT: u16 = 26379;

impl StateUrl {
    /// Parse the URL; `env_prefix` is `ASG_STATE_PREFIX`, `env_password`
    /// is `ASG_STATE_PASSWORD` (empty counts as unset).
    pub fn parse(
        url: &str,
        env_prefix: Option<&str>,
        env_password: Option<&str>,
    ) -> Result<StateUrl, UrlError> {
        let url = url.trim();
        let Some((scheme, rest)) = url.split_once("://") else {
            return bad("expected redis://, rediss:// or redis+sentinel:// followed by a host");
        };
        let (rest, query) = match rest.split_once('?') {
            Some((r, q)) => (r, q),
            None => (rest, ""),
        };
        let (authority, path) = match rest.split_once('/') {
            Some((a, p)) => (a, p),
            None => (rest, ""),
        };
        let (userinfo, hosts) = match authority.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, authority),
        };
        let (username, password) = match userinfo {
            None => (None, None),
            Some(u) => {
                let (user, pass) = match u.split_once(':') {
                    Some((a, b)) => (a, Some(b)),
                    None => (u, None),
                };
                let user = decode(user)?;
                let pass = pass.map(decode).transpose()?;
                (
                    (!user.is_empty()).then_some(user),
                    pass.filter(|p| !p.is_empty()),
                )
            }
        };
        let mut out = StateUrl {
            target: Target::Direct {
                host: String::new(),
                port: DEFAULT_PORT,
                tls: false,
            },
            db: 0,
            username,
            password,
            sentinel_password: None,
            prefix: "asg".into(),
            op_timeout: Duration::from_millis(500),
            connect_timeout: Duration::from_millis(1000),
            wait_replicas: 0,
            wait_timeout: Duration::from_millis(200),
            poll_interval: Duration::from_millis(1000),
            tail_max: 10_000,
            ca_file: None,
        };
        let mut sentinel_tls = false;
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let v = decode(v)?;
            let ms = |v: &str| -> Result<Duration, UrlError> {
                match v.parse::<u64>() {
                    Ok(n) if n > 0 => Ok(Duration::from_millis(n)),
                    _ => bad(format!(
                        "{k} must be a positive number of milliseconds, got {v:?}"
                    )),
                }
            };
            match k {
                "prefix" => out.prefix = v,
                "timeout_ms" => out.op_timeout = ms(&v)?,
                "connect_ms" => out.connect_timeout = ms(&v)?,
                "wait_timeout_ms" => out.wait_timeout = ms(&v)?,
                "poll_ms" => out.poll_interval = ms(&v)?,
                "wait_replicas" => {
                    out.wait_replicas = v.parse().or_else(|_| {
                        bad(format!("wait_replicas must be a whole number, got {v:?}"))
                    })?
                }
                "tail_max" => {
                    out.tail_max = match v.parse::<usize>() {
                        Ok(n) if (100..=1_000_000).contains(&n) => n,
                        _ => return bad(format!("tail_max must be 100 to 1000000, got {v:?}")),
                    }
                }
                "ca" => out.ca_file = Some(PathBuf::from(v)),
                "tls" if scheme == "redis+sentinel" => {
                    sentinel_tls = match v.as_str() {
                        "true" | "1" | "yes" => true,
                        "false" | "0" | "no" => false,
                        _ => return bad(format!("tls must be true or false, got {v:?}")),
                    }
                }
                "sentinel_password" if scheme == "redis+sentinel" => {
                    out.sentinel_password = Some(v).filter(|p| !p.is_empty())
                }
                other => {
                    return bad(format!(
                        "unknown option {other:?} (known: prefix, timeout_ms, connect_ms, wait_replicas, \
                         wait_timeout_ms, poll_ms, tail_max, ca; with redis+sentinel also tls, sentinel_password)"
                    ))
                }
            }
        }
        let mut segments = path.split('/').filter(|s| !s.is_empty());
        out.target = match scheme {
            "redis" | "rediss" => {
                let (host, port) = host_port(hosts, DEFAULT_PORT)?;
                Target::Direct {
                    host,
                    port,
                    tls: scheme == "rediss",
                }
            }
            "redis+sentinel" => {
                let nodes = hosts
                    .split(',')
                    .map(|h| host_port(h, DEFAULT_SENTINEL_PORT))
                    .collect::<Result<Vec<_>, _>>()?;
                let Some(service) = segments.next() else {
                    return bad("redis+sentinel:// needs the monitored service name as its path, e.g. redis+sentinel://sentinel:26379/mymaster");
                };
                Target::Sentinel {
                    nodes,
                    service: decode(service)?,
                    tls: sentinel_tls,
                }
            }
            other => {
                return bad(format!(
                    "unsupported scheme {other:?}: use redis://, rediss:// or redis+sentinel://"
                ))
            }
        };
        if let Some(db) = segments.next() {
            out.db = match db.parse::<i64>() {
                Ok(n) if n >= 0 => n,
                _ => return bad(format!("the database must be a number, got {db:?}")),
            };
        }
        if segments.next().is_some() {
            return bad("unexpected path after the database number");
        }
        if let Some(p) = env_prefix.map(str::trim).filter(|p| !p.is_empty()) {
            out.prefix = p.to_string();
        }
        if !valid_prefix(&out.prefix) {
            return bad(format!(
                "key prefix {:?} must be 1 to 64 letters, digits, '_', '-' or '.'",
                out.prefix
            ));
        }
        if let Some(p) = env_password.filter(|p| !p.is_empty()) {
            if out.password.is_some() {
                return bad(
                    "a password is set both in the URL and in ASG_STATE_PASSWORD; keep one",
                );
            }
            out.password = Some(p.to_string());
        }
        if out.ca_file.is_some() && !out.tls() {
            return bad("ca= is only meaningful with rediss:// (or redis+sentinel with tls=true)");
        }
        Ok(out)
    }

    pub fn tls(&self) -> bool {
        match &self.target {
            Target::Direct { tls, .. } | Target::Sentinel { tls, .. } => *tls,
        }
    }

    /// For logs and `/ready`: scheme, hosts, database, prefix; never credentials.
    pub fn display(&self) -> String {
        let user = self
            .username
            .as_deref()
            .map(|u| format!("{u}@"))
            .unwrap_or_default();
        match &self.target {
            Target::Direct { host, port, tls } => {
                let scheme = if *tls { "rediss" } else { "redis" };
                format!(
                    "{scheme}://{user}{host}:{port}/{} (prefix {})",
                    self.db, self.prefix
                )
            }
            Target::Sentinel {
                nodes,
                service,
                tls,
            } => {
                let hosts: Vec<String> = nodes.iter().map(|(h, p)| format!("{h}:{p}")).collect();
                format!(
                    "redis+sentinel://{user}{}/{service}/{}{} (prefix {})",
                    hosts.join(","),
                    self.db,
                    if *tls { "?tls=true" } else { "" },
                    self.prefix
                )
            }
        }
    }
}

fn valid_prefix(p: &str) -> bool {
    (1..=64).contains(&p.len())
        && p.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

fn host_port(s: &str, default_port: u16) -> Result<(String, u16), UrlError> {
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        // [ipv6]:port
        match rest.split_once(']') {
            Some((h, p)) => (h, p.strip_prefix(':')),
            None => return bad(format!("unterminated IPv6 address in {s:?}")),
        }
    } else {
        match s.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (s, None),
        }
    };
    if host.is_empty() {
        return bad("missing host");
    }
    if host == "0.0.0.0" || host == "::" {
        return bad("cannot connect to a wildcard address (0.0.0.0 or ::)");
    }
    let port = match port {
        None => default_port,
        Some(p) => match p.parse::<u16>() {
            Ok(n) if n > 0 => n,
            _ => return bad(format!("port must be 1 to 65535, got {p:?}")),
        },
    };
    Ok((host.to_string(), port))
}

/// Percent-decoding of one URL component (passwords with `@`, `:`, `/`).
fn decode(s: &str) -> Result<String, UrlError> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = b
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok());
            match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                Some(v) => out.push(v),
                None => return bad("malformed percent-escape (expected %XX)"),
            }
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).or_else(|_| bad("a component is not valid UTF-8 after percent-decoding"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(u: &str) -> Result<StateUrl, UrlError> {
        StateUrl::parse(u, None, None)
    }

    #[test]
    fn direct_urls() {
        let u = parse("redis://localhost").unwrap();
        assert_eq!(
            u.target,
            Target::Direct {
                host: "localhost".into(),
                port: 6379,
                tls: false
            }
        );
        assert_eq!((u.db, u.prefix.as_str()), (0, "asg"));
        let u = parse("rediss://app:p%40ss%3Aw@redis.example:6380/2?prefix=fleet-a&timeout_ms=50&ca=/etc/ca.pem").unwrap();
        assert!(u.tls());
        assert_eq!(u.username.as_deref(), Some("app"));
        assert_eq!(u.password.as_deref(), Some("p@ss:w"));
        assert_eq!((u.db, u.prefix.as_str()), (2, "fleet-a"));
        assert_eq!(u.op_timeout, Duration::from_millis(50));
        assert_eq!(u.ca_file, Some(PathBuf::from("/etc/ca.pem")));
        let shown = u.display();
        assert!(!shown.contains("p@ss") && !shown.contains("%40"), "{shown}");
        assert!(
            shown.starts_with("rediss://app@redis.example:6380/2"),
            "{shown}"
        );
        let v6 = parse("redis://[::1]:7000").unwrap();
        assert!(matches!(v6.target, Target::Direct { ref host, port: 7000, .. } if host == "::1"));
    }

    #[test]
    fn sentinel_urls() {
        let u = parse(
            "redis+sentinel://:pw@s1:26379,s2,[::1]:26380/mymaster/3?tls=true&sentinel_password=sp",
        )
        .unwrap();
        assert_eq!(
            u.target,
            Target::Sentinel {
                nodes: vec![
                    ("s1".into(), 26379),
                    ("s2".into(), 26379),
                    ("::1".into(), 26380)
                ],
                service: "mymaster".into(),
                tls: true
            }
        );
        assert_eq!((u.db, u.password.as_deref()), (3, Some("pw")));
        assert_eq!(u.sentinel_password.as_deref(), Some("sp"));
        let e = parse("redis+sentinel://s1:26379").unwrap_err();
        assert!(e.to_string().contains("service name"), "{e}");
    }

    #[test]
    fn environment_prefix_and_password() {
        let u = StateUrl::parse("redis://h?prefix=a", Some("b"), Some("secret")).unwrap();
        assert_eq!(
            (u.prefix.as_str(), u.password.as_deref()),
            ("b", Some("secret"))
        );
        let both = StateUrl::parse("redis://:x@h", None, Some("y")).unwrap_err();
        assert!(both.to_string().contains("keep one"), "{both}");
        assert!(!both.to_string().contains(":x@"), "{both}");
    }

    #[test]
    fn bad_urls_are_one_clear_sentence() {
        for (url, says) in [
            ("localhost:6379", "expected redis://"),
            ("http://h", "unsupported scheme"),
            ("redis://h:99999", "port must be"),
            ("redis://h/x", "database must be a number"),
            ("redis://h?timeout=5", "unknown option \"timeout\""),
            ("redis://h?timeout_ms=0", "positive number"),
            ("redis://h?prefix=a:b", "key prefix"),
            ("redis://h?ca=/x.pem", "only meaningful with rediss"),
            ("redis://0.0.0.0", "wildcard"),
            ("redis://:%zz@h", "percent-escape"),
            ("redis://h?tls=true", "unknown option"),
        ] {
            let e = parse(url).unwrap_err().to_string();
            assert!(
                e.starts_with("ASG_STATE_URL: ") && e.contains(says),
                "{url}: {e}"
            );
        }
    }
}
