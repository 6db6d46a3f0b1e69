//! Every environment variable the `asg` binary reads, declared once.
//!
//! [`VARS`] drives the parsing ([`apply`]: a variable's setter parses and
//! checks its value, and a refusal names the variable, the value and what
//! is accepted), `asg --help` ([`help`]) and the README's environment table
//! ([`readme_table`], checked by a test below). Options that clap reads
//! (`ASG_CONFIG`, the injector's) and variables a library reads under its
//! own name (`SSL_CERT_FILE`) are listed too, so the documentation is whole;
//! a test checks that every `env = …` of the command line is in the table.
//!
//! This is also the only place product code reads the process environment:
//! the few standard variables other software defines (OpenTelemetry's, the
//! host name) go through [`standard`].

use super::{AuditSync, Config, ConfigError, LogFormat};
use std::net::SocketAddr;
use std::path::PathBuf;

/// Why a setter refused a value: what would have been accepted.
#[derive(Debug)]
pub struct Reject(pub String);

type Setter = fn(&mut Config, &str) -> Result<(), Reject>;

/// Who reads a variable.
#[derive(Clone, Copy)]
pub enum Read {
    /// [`apply`] parses it into the [`Config`].
    Config(Setter),
    /// clap reads it as the default of a command-line option.
    Arg,
    /// A library reads it under its own name; documented, never parsed here.
    Library,
}

/// The command whose `--help` lists a variable.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Command {
    /// `asg run` and `asg control` (and the commands that read the same config).
    Gateway,
    /// `asg injector`.
    Injector,
}

pub struct EnvVar {
    pub name: &'static str,
    /// As shown in help and README; `–` for none.
    pub default: &'static str,
    /// One line, Markdown (backticks and links are stripped for `--help`).
    pub help: &'static str,
    pub read: Read,
    pub command: Command,
    /// Holds keys or passwords: never echoed in an error.
    pub secret: bool,
}

const fn var(name: &'static str, default: &'static str, help: &'static str, set: Setter) -> EnvVar {
    EnvVar {
        name,
        default,
        help,
        read: Read::Config(set),
        command: Command::Gateway,
        secret: false,
    }
}

const fn secret(
    name: &'static str,
    default: &'static str,
    help: &'static str,
    set: Setter,
) -> EnvVar {
    EnvVar {
        secret: true,
        ..var(name, default, help, set)
    }
}

const fn other(
    name: &'static str,
    default: &'static str,
    help: &'static str,
    read: Read,
    command: Command,
) -> EnvVar {
    EnvVar {
        name,
        default,
        help,
        read,
        command,
        secret: false,
    }
}

/// In this order: `ASG_UPSTREAM` also sets the Anthropic and Gemini
/// upstreams (when the file names none), so their own variables come after
/// it and win.
pub static VARS: &[EnvVar] = &[
    other("ASG_CONFIG", "–", "configuration file (TOML); the variables below override it", Read::Arg, Command::Gateway),
    var("ASG_LISTEN", "127.0.0.1:8080", "proxy listener", |c, v| {
        c.listen = addr(v)?;
        Ok(())
    }),
    var("ASG_ADMIN_LISTEN", "127.0.0.1:9090", "admin listener (health, metrics, inspect and operator API); a non-loopback address requires `ASG_ADMIN_AUTH`", |c, v| {
        c.admin_listen = addr(v)?;
        Ok(())
    }),
    var("ASG_UPSTREAM", "https://api.openai.com", "default upstream base URL", |c, v| {
        c.upstream = v.to_string();
        // One upstream given explicitly serves Anthropic and Gemini too,
        // unless told otherwise (gateways such as LiteLLM speak all three).
        c.anthropic_upstream.get_or_insert_with(|| v.to_string());
        c.gemini_upstream.get_or_insert_with(|| v.to_string());
        Ok(())
    }),
    var("ASG_ANTHROPIC_UPSTREAM", "`ASG_UPSTREAM` if set, else `https://api.anthropic.com`", "upstream for `/v1/messages`", |c, v| {
        c.anthropic_upstream = Some(v.to_string());
        Ok(())
    }),
    var("ASG_GEMINI_UPSTREAM", "`ASG_UPSTREAM` if set, else `https://generativelanguage.googleapis.com`", "upstream for Gemini's `/v1beta/…`", |c, v| {
        c.gemini_upstream = Some(v.to_string());
        Ok(())
    }),
    var("ASG_POLICY", "dev", "policy profile name (`dev`, `production`, `strict`) or path to a `.toml` file", |c, v| {
        c.policy = v.to_string();
        Ok(())
    }),
    var("ASG_POLICY_DIR", "policies", "folder of profiles; watched and hot-reloaded", |c, v| {
        c.policy_dir = PathBuf::from(v);
        Ok(())
    }),
    var("ASG_DATA_DIR", "data", "state folder: sled database, mask key (also `asg audit export --data-dir`)", |c, v| {
        c.data_dir = PathBuf::from(v);
        Ok(())
    }),
    var("ASG_UPSTREAM_CA", "–", "extra CA (PEM) trusted for upstream TLS, in addition to the system roots", |c, v| {
        c.upstream_ca = Some(PathBuf::from(v));
        Ok(())
    }),
    other("SSL_CERT_FILE", "the platform store", "the system roots used for upstream TLS (OpenSSL's variable, also `SSL_CERT_DIR`: a bundle *replaces* the platform store)", Read::Library, Command::Gateway),
    var("ASG_THREADS", "0", "proxy worker threads, 0 = number of CPUs", |c, v| {
        c.threads = whole(v)?;
        Ok(())
    }),
    var("ASG_LOG", "info", "log filter (`info`, `asg=debug` …; also `asg injector`)", |c, v| {
        tracing_subscriber::EnvFilter::try_new(v)
            .map_err(|e| Reject(format!("expected a log filter such as info or asg=debug,info ({e})")))?;
        c.log_filter = Some(v.to_string());
        Ok(())
    }),
    var("ASG_LOG_FORMAT", "text", "log lines as `text` or `json`", |c, v| {
        c.log_format = one_of(v, &[("text", LogFormat::Text), ("json", LogFormat::Json)])?;
        Ok(())
    }),
    var("ASG_ADMIN_AUTH", "false", "require API keys on the admin API (health and readiness stay open)", |c, v| {
        c.admin.auth_enabled = boolean(v)?;
        Ok(())
    }),
    secret("ASG_AGENT_KEYS", "–", "comma-separated agent API keys (inspect, submit, read their approvals)", |c, v| {
        c.admin.agent_keys = list(v);
        Ok(())
    }),
    secret("ASG_OPERATOR_KEYS", "–", "comma-separated operator API keys (resolve approvals, operator API)", |c, v| {
        c.admin.operator_keys = list(v);
        Ok(())
    }),
    secret("ASG_AGENTS", "–", "agent keys bound to an identity, `agent-id=key,…`: such a key acts only as that agent", |c, v| {
        c.admin.agents = agents(v)?;
        Ok(())
    }),
    var("ASG_RATE_LIMIT", "0", "admin API requests per minute per key (or address), 0 = off", |c, v| {
        c.admin.rate_limit_per_minute = whole(v)?;
        Ok(())
    }),
    var("ASG_AUTH_FAILURE_LIMIT", "30", "failed admin authentications per minute per address, 0 = off; beyond, every key from that address gets 429", |c, v| {
        c.admin.auth_failures_per_minute = whole(v)?;
        Ok(())
    }),
    var("ASG_ADMIN_IDLE_TIMEOUT", "30", "seconds an admin connection may stay silent before it is closed", |c, v| {
        c.admin.idle_timeout_secs = seconds(v)?;
        Ok(())
    }),
    var("ASG_INSPECT_CONCURRENCY", "0", "bodies inspected at once, 0 = number of CPUs (at least 2)", |c, v| {
        c.limits.inspect_concurrency = whole(v)?;
        Ok(())
    }),
    var("ASG_INSPECT_QUEUE", "64", "requests that may wait for an inspection slot; beyond, 503 + `Retry-After` at once", |c, v| {
        c.limits.inspect_queue = whole(v)?;
        Ok(())
    }),
    var("ASG_INSPECT_WAIT_MS", "2000", "longest wait for an inspection slot before 503 + `Retry-After`", |c, v| {
        c.limits.inspect_wait_ms = whole(v)?;
        Ok(())
    }),
    var("ASG_MAX_SESSIONS", "10000", "sessions kept; beyond, the least recently active are forgotten", |c, v| {
        c.limits.max_sessions = at_least_one(v)?;
        Ok(())
    }),
    var("ASG_MAX_AGENTS", "10000", "agents kept; beyond, the least recently active are forgotten", |c, v| {
        c.limits.max_agents = at_least_one(v)?;
        Ok(())
    }),
    var("ASG_MAX_PENDING_APPROVALS", "1000", "approvals waiting for an operator at once; beyond, new ones are refused (429 on the API, a refused tool call on the proxy)", |c, v| {
        c.limits.max_pending_approvals = at_least_one(v)?;
        Ok(())
    }),
    var("ASG_AGENT_ID", "–", "sidecar mode: this pod's agent identity (authoritative over agent headers)", |c, v| {
        if v.len() > 256 {
            return Err(Reject("expected an identity of at most 256 characters".into()));
        }
        c.agent_id = Some(v.to_string());
        Ok(())
    }),
    var("ASG_AUDIT_MAX_AGE_DAYS", "30", "delete audit records older than this many days, 0 = never", |c, v| {
        c.audit.max_age_days = whole(v)?;
        Ok(())
    }),
    var("ASG_AUDIT_MAX_BYTES", "1073741824", "keep the audit log under this many bytes, 0 = no limit", |c, v| {
        c.audit.max_bytes = whole(v)?;
        Ok(())
    }),
    var("ASG_AUDIT_SYNC", "always", "`always`: every response waits until its audit record is on disk; `decisions`: only refusals, approvals and held calls wait (forwarded responses' records reach disk within about 10 ms)", |c, v| {
        c.audit.sync = one_of(v, &[("always", AuditSync::Always), ("decisions", AuditSync::Decisions)])?;
        Ok(())
    }),
    var("ASG_AUDIT_STDOUT", "false", "also write every audit record to stdout as one JSON line (`\"asg\":\"audit\"` + the stored record, masked the same), for log collectors", |c, v| {
        c.audit.stdout = boolean(v)?;
        Ok(())
    }),
    // The URL may carry a password (`redis://:pw@host`): never echoed.
    secret("ASG_STATE_URL", "unset: sled in `ASG_DATA_DIR`", "shared state on Redis for a fleet ([Redis](#redis-a-fleet-of-gateways)), `redis://`, `rediss://` or `redis+sentinel://`: sessions, risk, approvals, permits, rate limits, the console tail; audit stays local", |c, v| {
        c.state_url = Some(v.to_string());
        Ok(())
    }),
    var("ASG_STATE_PREFIX", "asg", "key prefix in the shared state (one per fleet sharing a Redis)", |c, v| {
        c.state_prefix = Some(v.to_string());
        Ok(())
    }),
    secret("ASG_STATE_PASSWORD", "–", "password for the shared state (instead of one in `ASG_STATE_URL`)", |c, v| {
        c.state_password = Some(super::Secret(v.to_string()));
        Ok(())
    }),
    var("ASG_FORWARD_PROXY", "true", "answer `CONNECT` and absolute-form requests on `ASG_LISTEN` ([forward proxy](#forward-proxy-mode-https_proxy))", |c, v| {
        c.forward_proxy = boolean(v)?;
        Ok(())
    }),
    var("ASG_TRANSPARENT_LISTEN", "off", "listener for iptables-redirected connections ([transparent mode](#transparent-mode-no-change-to-the-agent)), e.g. `127.0.0.1:15001`", |c, v| {
        c.transparent_listen = Some(addr(v)?);
        Ok(())
    }),
    var("ASG_CA_CERT", "`<data>/ca/ca.pem` (created on first start)", "interception CA certificate (PEM); set with `ASG_CA_KEY`", |c, v| {
        c.ca_cert = Some(PathBuf::from(v));
        Ok(())
    }),
    var("ASG_CA_KEY", "`<data>/ca/ca.key`", "interception CA key (PKCS#8 PEM)", |c, v| {
        c.ca_key = Some(PathBuf::from(v));
        Ok(())
    }),
    var("ASG_CONNECT_TO", "–", "forward-mode address overrides `host:port=ip:port,…` (like curl's `--connect-to`; the certificate is still verified for `host`)", |c, v| {
        for entry in v.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let (from, to) = entry
                .split_once('=')
                .ok_or_else(|| Reject(format!("expected host:port=ip:port entries, {entry:?} has no =")))?;
            c.connect_to.insert(from.trim().to_string(), to.trim().to_string());
        }
        Ok(())
    }),
    var("ASG_SO_MARK", "–", "`SO_MARK` on every upstream socket, for redirect rules to exclude (`1337`, `0x539`)", |c, v| {
        c.so_mark = Some(super::parse_mark(v).ok_or_else(|| Reject("expected a number such as 1337 or 0x539".into()))?);
        Ok(())
    }),
    var("ASG_UPSTREAM_CONNECT_TIMEOUT", "10", "seconds to connect to an upstream (TCP; TLS gets 5 s more)", |c, v| {
        c.connect_timeout_secs = seconds(v)?;
        Ok(())
    }),
    var("ASG_UPSTREAM_FIRST_BYTE_TIMEOUT", "180", "seconds from sending a request to the upstream's response head", |c, v| {
        c.first_byte_timeout_secs = seconds(v)?;
        Ok(())
    }),
    var("ASG_UPSTREAM_IDLE_TIMEOUT", "120", "seconds of upstream silence in the middle of an answer, streams included", |c, v| {
        c.idle_timeout_secs = seconds(v)?;
        Ok(())
    }),
    var("ASG_UPSTREAM_TOTAL_TIMEOUT", "600", "seconds for a whole buffered (non-stream) answer, head and body", |c, v| {
        c.total_timeout_secs = seconds(v)?;
        Ok(())
    }),
    other("ASG_INJECTOR_LISTEN", "0.0.0.0:9443", "`asg injector`: address of the HTTPS webhook listener", Read::Arg, Command::Injector),
    other("ASG_INJECTOR_TLS_CERT", "–", "`asg injector`: serving certificate (PEM chain), reloaded when the file changes", Read::Arg, Command::Injector),
    other("ASG_INJECTOR_TLS_KEY", "–", "`asg injector`: the serving certificate's private key (PEM)", Read::Arg, Command::Injector),
    other("ASG_INJECTOR_CONFIG", "built-in", "`asg injector`: injector settings (YAML), e.g. the chart's ConfigMap", Read::Arg, Command::Injector),
    other("ASG_INJECTOR_METRICS_LISTEN", "off", "`asg injector`: plain-HTTP listener for `/metrics` and `/healthz`", Read::Arg, Command::Injector),
];

/// Variables that tests, benchmarks and tools read (never the gateway);
/// the README may mention them.
pub const TOOL_VARS: &[(&str, &str)] = &[
    ("ASG_BIN", "benchmark scripts: the asg binary to measure"),
    (
        "ASG_E2E_STATE",
        "end-to-end tests: `redis` runs them on shared state",
    ),
    (
        "ASG_FUZZ_SMOKE",
        "`make test`: generated inputs per fuzz target",
    ),
    (
        "ASG_UPDATE_GOLDEN",
        "unit tests: rewrite golden files (and this README table)",
    ),
];

/// Standard variables defined by other software that the gateway reads.
pub const STANDARD: &[&str] = &[
    "HOSTNAME",
    "OTEL_SDK_DISABLED",
    "OTEL_TRACES_EXPORTER",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_EXPORTER_OTLP_PROTOCOL",
    "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
    "OTEL_SERVICE_NAME",
];

/// A standard variable (see [`STANDARD`]), `None` when unset or blank.
pub fn standard(name: &str) -> Option<String> {
    debug_assert!(STANDARD.contains(&name), "{name} is not listed in STANDARD");
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// Apply the process environment to `cfg`.
pub fn apply_process(cfg: &mut Config) -> Result<(), ConfigError> {
    apply(cfg, |k| std::env::var(k).ok())
}

/// Apply only the named variables from the process environment (for
/// commands that read a single setting, such as the injector's log filter).
pub fn apply_only(cfg: &mut Config, names: &[&str]) -> Result<(), ConfigError> {
    apply(cfg, |k| {
        names.contains(&k).then(|| std::env::var(k).ok()).flatten()
    })
}

/// Apply every set variable of [`VARS`] in order. A blank value counts as
/// unset; values are trimmed.
pub fn apply(cfg: &mut Config, get: impl Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
    for v in VARS {
        let Read::Config(set) = v.read else { continue };
        let Some(raw) = get(v.name) else { continue };
        let value = raw.trim();
        if value.is_empty() {
            continue;
        }
        set(cfg, value).map_err(|Reject(expected)| ConfigError::Env {
            var: v.name,
            value: (!v.secret).then(|| value.to_string()),
            expected,
        })?;
    }
    Ok(())
}

/// The variable list printed after a command's `--help`.
pub fn help(command: Command) -> String {
    let mut s = String::from("Environment:\n");
    for v in VARS.iter().filter(|v| v.command == command) {
        let default = match v.default {
            "–" => String::new(),
            d => format!(" [{}]", plain(d)),
        };
        s.push_str(&format!("  {:<32} {}{default}\n", v.name, plain(v.help)));
    }
    s.push_str("\nDocumentation: README.md and policies/README.md");
    s
}

/// The README's environment table (between its `env-table` markers).
pub fn readme_table() -> String {
    let mut s = String::from("| variable | meaning | default |\n|---|---|---|\n");
    for v in VARS {
        let default = match v.default {
            // Prose, not a value to type.
            d @ ("–" | "off" | "built-in") => d.to_string(),
            d if d.contains('`') || d.contains(' ') => d.to_string(),
            d => format!("`{d}`"),
        };
        s.push_str(&format!("| `{}` | {} | {default} |\n", v.name, v.help));
    }
    s
}

/// Markdown to plain text: backticks dropped, `[text](#anchor)` → `text`.
fn plain(md: &str) -> String {
    let mut out = String::with_capacity(md.len());
    let mut rest = md;
    while let Some(i) = rest.find('[') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        match after
            .find("](")
            .and_then(|j| after[j..].find(')').map(|k| (j, j + k)))
        {
            Some((j, end)) => {
                out.push_str(&after[..j]);
                rest = &after[end + 1..];
            }
            None => {
                out.push('[');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out.replace('`', "")
}

fn addr(v: &str) -> Result<String, Reject> {
    v.parse::<SocketAddr>().map(|_| v.to_string()).map_err(|_| {
        Reject("expected an address host:port such as 127.0.0.1:8080 or [::1]:8080".into())
    })
}

fn whole<T: std::str::FromStr>(v: &str) -> Result<T, Reject> {
    v.parse()
        .map_err(|_| Reject("expected a whole number".into()))
}

fn at_least_one(v: &str) -> Result<usize, Reject> {
    match v.parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(Reject("expected a whole number of at least 1".into())),
    }
}

fn seconds(v: &str) -> Result<u64, Reject> {
    match v.parse::<u64>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(Reject(
            "expected a whole number of seconds, at least 1".into(),
        )),
    }
}

fn boolean(v: &str) -> Result<bool, Reject> {
    super::parse_bool(v)
        .ok_or_else(|| Reject("expected true or false (also 1/0, yes/no, on/off)".into()))
}

fn one_of<T: Copy>(v: &str, choices: &[(&str, T)]) -> Result<T, Reject> {
    choices
        .iter()
        .find(|(name, _)| *name == v)
        .map(|(_, t)| *t)
        .ok_or_else(|| {
            let names: Vec<&str> = choices.iter().map(|(n, _)| *n).collect();
            Reject(format!("expected {}", names.join(" or ")))
        })
}

fn list(v: &str) -> Vec<String> {
    v.split(',')
        .map(str::trim)
        .filter(|k| !k.is_empty())
        .map(str::to_string)
        .collect()
}

/// `ASG_AGENTS`: `id=key,id=key`. An id never holds `=`, a key may (base64
/// padding), so each entry splits at its first `=`.
fn agents(v: &str) -> Result<std::collections::BTreeMap<String, String>, Reject> {
    let mut out = std::collections::BTreeMap::new();
    for entry in v.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let (id, key) = entry
            .split_once('=')
            .map(|(i, k)| (i.trim(), k.trim()))
            .filter(|(i, k)| !i.is_empty() && !k.is_empty())
            .ok_or_else(|| Reject("expected agent-id=key entries separated by commas".into()))?;
        if out.insert(id.to_string(), key.to_string()).is_some() {
            return Err(Reject(format!("agent {id:?} is listed twice")));
        }
    }
    Ok(out)
}

#[cfg(test)]
#[path = "env_tests.rs"]
mod tests;
