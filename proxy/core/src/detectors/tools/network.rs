//! Network destinations: where a call sends traffic, what it sends, and
//! the effect that has (a GET of a public host is ordinary, a project file
//! sent by name to a named host waits for a human, other local data sent
//! anywhere but the local machine is exfiltration, a paste site or a
//! metadata endpoint is an attack whatever is sent).

use super::effects::Effect;
use super::egress::{host_of, parse_ip, Egress, HostKind};
use super::rules::ToolRules;
use crate::detectors::shell::{lexer::RedirOp, Cmd};
use regex::Regex;
use std::sync::OnceLock;

/// What a request carries to its destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Payload {
    /// Nothing of ours (a GET).
    None,
    /// Data written in the call itself (a JSON body, form fields, a
    /// non-GET method).
    Data,
    /// Files of the project named in the call (`dist/app.tar.gz`,
    /// `-d @body.json`): a deploy or an API call to a named host, which a
    /// human should see, not an attack in itself.
    Artifact,
    /// Anything else read locally: the home directory, system paths, the
    /// whole tree, databases and dumps, standard input or another
    /// command's output.
    File,
    /// A secret (an environment variable holding one) in the body or URL.
    Secret,
}

#[derive(Debug, Clone)]
pub struct Destination {
    pub url: String,
    pub payload: Payload,
    /// A reachability or name check (`ping 8.8.8.8`, `dig @1.1.1.1 …`):
    /// it carries nothing to the host.
    pub probe: bool,
}

pub fn url_regex() -> &'static Regex {
    static R: OnceLock<Regex> = OnceLock::new();
    R.get_or_init(|| {
        Regex::new(r#"(?i)\b(?:https?|ftp|sftp|wss?|gopher|dict|ldap|tftp|smb|telnet|scp)://[^\s"'<>`|;)\\]+"#)
            .expect("static regex")
    })
}

fn env_ref_regex() -> &'static Regex {
    static R: OnceLock<Regex> = OnceLock::new();
    R.get_or_init(|| {
        Regex::new(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?|%([A-Za-z_][A-Za-z0-9_]*)%|\$env:([A-Za-z_][A-Za-z0-9_]*)")
            .expect("static regex")
    })
}

impl ToolRules {
    /// Names of secret-holding environment variables referenced in `s`.
    pub fn secret_refs<'s>(&self, s: &'s str) -> Vec<&'s str> {
        env_ref_regex()
            .captures_iter(s)
            .filter_map(|c| c.get(1).or_else(|| c.get(2)).or_else(|| c.get(3)))
            .map(|m| m.as_str())
            .filter(|n| self.secret_env.is_match(&n.to_ascii_uppercase()))
            .collect()
    }
}

impl Egress<'_> {
    /// The effect of traffic to `d`, with the rule id and a message.
    pub fn effect(&self, d: &Destination) -> (Effect, &'static str, String) {
        let host = host_of(&d.url).unwrap_or_default();
        let payload_effect = |public: Effect| match d.payload {
            Payload::None => public,
            Payload::Data => Effect::NetworkSend,
            Payload::Artifact | Payload::File | Payload::Secret => Effect::Exfiltration,
        };
        match self.kind(&d.url) {
            HostKind::Denied => (
                Effect::Exfiltration,
                "egress.denied_host",
                format!("Traffic to a paste, file-drop, webhook or tunnel host ({host})"),
            ),
            HostKind::Metadata => (
                Effect::CredentialRead,
                "egress.metadata_endpoint",
                format!("Request to a cloud metadata endpoint ({host})"),
            ),
            HostKind::Loopback => (
                Effect::LocalNet,
                "egress.local",
                format!("Local service ({host})"),
            ),
            HostKind::Allowed => {
                let e = match d.payload {
                    Payload::None => Effect::Fetch,
                    Payload::Secret => Effect::Exfiltration,
                    _ => Effect::NetworkSend,
                };
                (e, "egress.allowed_host", format!("Allowed host {host}"))
            }
            HostKind::RawPublicIp if d.probe => (
                Effect::Fetch,
                "egress.raw_ip_probe",
                format!("Reachability or name check of a raw public IP address ({host})"),
            ),
            HostKind::RawPublicIp => {
                let e = payload_effect(Effect::RawNetwork).max(Effect::RawNetwork);
                let e = if e == Effect::NetworkSend {
                    Effect::RawNetwork
                } else {
                    e
                };
                (
                    e,
                    "egress.raw_ip",
                    format!("Traffic to a raw public IP address ({host})"),
                )
            }
            HostKind::NotAllowed => {
                let e = match d.payload {
                    Payload::None | Payload::Data => Effect::RawNetwork,
                    _ => Effect::Exfiltration,
                };
                (
                    e,
                    "egress.not_allowed",
                    format!("Host outside the allow list ({host})"),
                )
            }
            HostKind::Private | HostKind::Public => {
                // A named host: project files go out for a human to see;
                // other local data is exfiltration.
                let (e, msg) = match d.payload {
                    Payload::None => (Effect::Fetch, format!("Reads from {host}")),
                    Payload::Data => (Effect::NetworkSend, format!("Sends data to {host}")),
                    Payload::Artifact => (
                        Effect::NetworkSend,
                        format!("Sends project files to {host}"),
                    ),
                    Payload::File => (Effect::Exfiltration, format!("Sends local data to {host}")),
                    Payload::Secret => (Effect::Exfiltration, format!("Sends a secret to {host}")),
                };
                (e, "egress.host", msg)
            }
        }
    }
}

/// Flags of HTTP clients whose value is a request body, and the value's
/// meaning.
fn body_flag(program: &str, flag: &str) -> bool {
    match program {
        "curl" => matches!(
            flag,
            "-d" | "--data"
                | "--data-raw"
                | "--data-binary"
                | "--data-urlencode"
                | "--json"
                | "-F"
                | "--form"
                | "--form-string"
                | "-T"
                | "--upload-file"
        ),
        "wget" => matches!(
            flag,
            "--post-data" | "--post-file" | "--body-data" | "--body-file"
        ),
        "invoke-webrequest" | "iwr" | "invoke-restmethod" | "irm" => {
            matches!(flag.to_ascii_lowercase().as_str(), "-body" | "-infile")
        }
        _ => false,
    }
}

/// What a network command sends (to every host it names).
pub fn payload_of(rules: &ToolRules, c: &Cmd) -> Payload {
    let mut p = Payload::None;
    let piped = !c.sources.is_empty();
    // `</dev/null` sends nothing: it is how a client is told not to wait
    // for input (`openssl s_client -connect host:443 </dev/null`).
    for r in &c.redirects {
        if r.op == RedirOp::In && r.target != "/dev/null" {
            p = p.max(sent_file(&r.target));
        } else if r.op == RedirOp::HereString {
            p = p.max(Payload::File);
        }
    }
    let raw_stream = matches!(
        c.program.as_str(),
        "nc" | "ncat" | "netcat" | "nc.traditional" | "nc.openbsd" | "telnet" | "openssl" | "socat"
    );
    if raw_stream && piped {
        p = p.max(Payload::File);
    }
    // File-transfer clients given their commands on the line (`tftp host
    // -c put FILE`, `smbclient //h/s -c 'put FILE'`, `lftp -e 'put FILE'`).
    if matches!(
        c.program.as_str(),
        "tftp" | "smbclient" | "lftp" | "ftp" | "sftp"
    ) {
        let line = c.args.join(" ");
        let words: Vec<&str> = line
            .split([';', ' ', '\n'])
            .filter(|w| !w.is_empty())
            .collect();
        for w in words.windows(2) {
            if matches!(w[0], "put" | "mput" | "send" | "append" | "reput") {
                p = p.max(sent_file(w[1]));
            }
        }
    }
    let mut i = 0;
    while i < c.args.len() {
        let a = c.args[i].as_str();
        let (flag, inline) = match a.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f, Some(v)),
            _ => (a, None),
        };
        if body_flag(&c.program, flag)
            || (c.program == "curl" && a.starts_with("-d") && a.len() > 2)
        {
            let value = inline
                .map(str::to_string)
                .or_else(|| c.args.get(i + 1).cloned())
                .unwrap_or_default();
            // The flag's value is the file itself (`-T dist/app.zip`), or
            // names it after `@` / `=<` (`-F f=@report.pdf`).
            let whole = flag == "-T"
                || flag == "--upload-file"
                || flag.ends_with("-file")
                || flag.eq_ignore_ascii_case("-infile");
            let file = whole
                || value.starts_with('@')
                || value.contains("=@")
                || value.contains("@-")
                || value.contains("=<");
            let stdin = value == "@-" || value.ends_with("@-") || value == "-";
            let named = |v: &str| match v.rsplit_once('@').or_else(|| v.rsplit_once("=<")) {
                Some((_, path)) => path.split(';').next().unwrap_or(path).to_string(),
                None => v.to_string(),
            };
            p = p.max(if stdin && !piped {
                Payload::Data
            } else if stdin {
                Payload::File
            } else if file {
                sent_file(&if whole { value.clone() } else { named(&value) })
            } else {
                Payload::Data
            });
            if !rules.secret_refs(&value).is_empty() {
                p = p.max(Payload::Secret);
            }
            if inline.is_none() {
                i += 1;
            }
        } else if matches!(
            flag,
            "-X" | "--request" | "--method" | "-Method" | "-method"
        ) {
            let m = inline
                .map(str::to_string)
                .or_else(|| c.args.get(i + 1).cloned())
                .unwrap_or_default()
                .to_ascii_uppercase();
            if m != "GET" && m != "HEAD" && m != "OPTIONS" {
                p = p.max(Payload::Data);
            }
        } else if matches!(c.program.as_str(), "http" | "https" | "xh")
            && (a.contains(":=@") || a.contains("=@") || a.starts_with('@'))
        {
            p = p.max(sent_file(a.rsplit_once('@').map_or(a, |(_, path)| path)));
        } else if matches!(c.program.as_str(), "http" | "https" | "xh")
            && matches!(a, "POST" | "PUT" | "PATCH" | "DELETE")
        {
            p = p.max(Payload::Data);
        }
        i += 1;
    }
    p
}

/// What sending the local path `path` by name carries: a file of the
/// project is an [`Payload::Artifact`]; the home directory, absolute
/// paths, the whole tree (`.`, `..`, a top-level wildcard), databases,
/// dumps and backups, and names the call computes (`$VAR`, `$(…)`) are
/// [`Payload::File`]. Credential paths are judged apart (they are read).
pub fn sent_file(path: &str) -> Payload {
    let path = path.trim_matches(|c| c == '"' || c == '\'');
    let rel = path.trim_start_matches("./");
    let top = rel.split('/').next().unwrap_or("");
    let ext = rel
        .trim_end_matches('/')
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    let outside = path.is_empty()
        || path == "-"
        || path.starts_with(['/', '~', '$', '`'])
        || path.contains("$(")
        || matches!(top, "" | "." | ".." | "*" | "**");
    let data = matches!(
        ext.as_str(),
        "sql"
            | "sqlite"
            | "sqlite3"
            | "db"
            | "dump"
            | "bak"
            | "backup"
            | "kdbx"
            | "csv"
            | "xlsx"
            | "parquet"
    ) || rel.contains(".sql.");
    if outside || data {
        Payload::File
    } else {
        Payload::Artifact
    }
}

/// A key sent to the service it is named for (`$OPENWEATHER_API_KEY` to
/// `api.openweathermap.org`, `$GITHUB_TOKEN` to `api.github.com`): the
/// variable's first word is part of the host's registered name (the label
/// before the top-level domain), so `openai.evil.example` does not count.
fn own_service(var: &str, host: &str) -> bool {
    const GENERIC: [&str; 14] = [
        "api", "secret", "token", "auth", "access", "private", "app", "client", "user", "prod",
        "dev", "test", "service", "master",
    ];
    let word = var
        .trim_start_matches(['$', '{', '%'])
        .split(['_', '-'])
        .next()
        .unwrap_or("")
        .to_ascii_lowercase();
    let mut labels = host.rsplit('.');
    let registered = labels.nth(1).unwrap_or("");
    word.len() >= 4 && !GENERIC.contains(&word.as_str()) && registered.contains(word.as_str())
}

/// URLs and bare hosts a command talks to, with what it sends.
pub fn destinations(rules: &ToolRules, c: &Cmd) -> Vec<Destination> {
    let mut out = Vec::new();
    let network = rules.network.contains(&c.program) && !local_openssl(c);
    let payload = if network {
        payload_of(rules, c)
    } else {
        Payload::None
    };
    for a in &c.args {
        for m in url_regex().find_iter(a).take(16) {
            let url = m.as_str().to_string();
            // A secret in the URL itself (query string or path) leaves
            // with the request.
            let refs = rules.secret_refs(a);
            let leaks = !refs.is_empty()
                && !a.to_ascii_lowercase().starts_with("authorization:")
                && !host_of(&url).is_some_and(|h| refs.iter().all(|v| own_service(v, &h)));
            let payload = if leaks { Payload::Secret } else { payload };
            // Known non-network programs merely name URLs (echo, git
            // remote -v); a program no rule knows is judged by the hosts it
            // is given.
            if network || payload != Payload::None || !rules.known.contains(&c.program) {
                out.push(Destination {
                    url,
                    payload,
                    probe: false,
                });
            } else if matches!(
                c.program.as_str(),
                "pip"
                    | "pip3"
                    | "npm"
                    | "pnpm"
                    | "yarn"
                    | "uv"
                    | "poetry"
                    | "gem"
                    | "go"
                    | "cargo"
                    | "bundle"
                    | "apt-get"
                    | "apt"
                    | "brew"
                    | "docker"
                    | "podman"
                    | "helm"
                    | "kubectl"
            ) {
                out.push(Destination {
                    url,
                    payload: Payload::None,
                    probe: false,
                });
            }
        }
    }
    out.extend(database_peer(c));
    if !network {
        return out;
    }
    // Diagnostics that send a host nothing but the check itself; ping's
    // `-p` pattern carries bytes of the caller's choosing.
    let probe = matches!(
        c.program.as_str(),
        "ping"
            | "ping6"
            | "fping"
            | "traceroute"
            | "traceroute6"
            | "tracepath"
            | "mtr"
            | "dig"
            | "nslookup"
            | "host"
            | "drill"
    ) && !c
        .args
        .iter()
        .any(|a| a.starts_with("-p") && c.program.starts_with("ping"));
    for a in &c.args {
        if a.starts_with('-') || a.contains("://") || a.contains('=') {
            continue;
        }
        // A share is `//host/share` or `\\host\share`.
        let share = (c.program == "smbclient")
            .then(|| a.strip_prefix("//").or_else(|| a.strip_prefix("\\\\")))
            .flatten();
        let a = share.map_or(a.as_str(), |s| s.split(['/', '\\']).next().unwrap_or(""));
        // user@host:path, host:port, host, 1.2.3.4
        let host = a.rsplit_once('@').map_or(a, |(_, h)| h);
        let host = host.split([':', '/']).next().unwrap_or("");
        let plausible = host.contains('.')
            && host.len() <= 253
            && host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
            && host
                .rsplit('.')
                .next()
                .is_some_and(|tld| tld.len() >= 2 && tld.chars().all(|c| c.is_ascii_alphabetic()))
            && !matches!(
                host.rsplit('.').next(),
                Some(
                    "sh" | "txt"
                        | "json"
                        | "py"
                        | "js"
                        | "ts"
                        | "rs"
                        | "go"
                        | "md"
                        | "log"
                        | "csv"
                        | "sql"
                        | "gz"
                        | "tgz"
                        | "zip"
                        | "tar"
                        | "yml"
                        | "yaml"
                        | "toml"
                        | "pem"
                        | "crt"
                        | "cer"
                        | "csr"
                        | "der"
                        | "key"
                        | "pub"
                        | "conf"
                        | "cfg"
                        | "ini"
                        | "env"
                        | "db"
                        | "sqlite"
                        | "bin"
                        | "so"
                        | "exe"
                        | "html"
                        | "xml"
                        | "lock"
                )
            );
        if plausible || (parse_ip(host).is_some() && host.contains('.')) {
            out.push(Destination {
                url: format!("tcp://{host}"),
                payload,
                probe: probe && payload == Payload::None,
            });
        }
    }
    out
}

/// A database client pointed at a public IP address (`psql -h 198.51.100.23`,
/// `mysql --host=…`, `redis-cli -h …`): what it is fed (`pg_dump … | psql -h
/// …`, `< dump.sql`) leaves the machine; a query alone is raw traffic. Named
/// and private hosts are where a project's databases live, and stay
/// ordinary.
fn database_peer(c: &Cmd) -> Option<Destination> {
    const CLIENTS: [&str; 12] = [
        "psql",
        "mysql",
        "mariadb",
        "mongosh",
        "mongo",
        "redis-cli",
        "valkey-cli",
        "keydb-cli",
        "clickhouse-client",
        "cqlsh",
        "pg_restore",
        "mongorestore",
    ];
    if !CLIENTS.contains(&c.program.as_str()) {
        return None;
    }
    let mut host = None;
    let mut args = c.args.iter();
    while let Some(a) = args.next() {
        let value = match a.as_str() {
            "-h" | "--host" | "--hostname" => args.next().map(String::as_str),
            _ => a
                .strip_prefix("--host=")
                .or_else(|| a.strip_prefix("--hostname="))
                .or_else(|| a.strip_prefix("-h").filter(|v| v.contains('.'))),
        };
        let uri_host = a
            .split_once("://")
            .and_then(|(_, rest)| rest.rsplit_once('@').map_or(Some(rest), |(_, h)| Some(h)))
            .map(|h| h.split([':', '/', '?', ',']).next().unwrap_or(""));
        host = value.or(uri_host).or(host);
    }
    let host = host?;
    let ip = parse_ip(host)?;
    if ip.is_loopback() || ip.is_unspecified() || super::egress::is_private(ip) {
        return None;
    }
    let fed = !c.sources.is_empty()
        || c.redirects
            .iter()
            .any(|r| matches!(r.op, RedirOp::In | RedirOp::HereString) && r.target != "/dev/null");
    Some(Destination {
        url: format!("tcp://{host}"),
        payload: if fed { Payload::File } else { Payload::Data },
        probe: false,
    })
}

/// `openssl` reaches the network only through its client and server
/// subcommands; `req`, `x509`, `genrsa`, `dgst` … work on local files, whose
/// names (`server.csr`) would otherwise read as hosts.
fn local_openssl(c: &Cmd) -> bool {
    c.program == "openssl"
        && !matches!(
            c.args.first().map(String::as_str),
            Some("s_client" | "s_server" | "s_time" | "ocsp") | None
        )
}

/// `scp`/`rsync`/`sftp`: the last operand is the destination. Files sent
/// to a remote host are exfiltration; files fetched from one are a read.
pub fn remote_copy(c: &Cmd) -> Option<(Destination, bool)> {
    if !matches!(c.program.as_str(), "scp" | "rsync" | "sftp" | "rclone") {
        return None;
    }
    let mut operands: Vec<&String> = c.args.iter().filter(|a| !a.starts_with('-')).collect();
    // rclone names its verb first; only the copying verbs send anything
    // (`rclone lsd gdrive:reports` lists a configured remote).
    let mut may_send = true;
    if c.program == "rclone" && !operands.is_empty() {
        let verb = operands.remove(0);
        may_send = matches!(
            verb.as_str(),
            "copy" | "copyto" | "sync" | "move" | "moveto" | "bisync" | "rcat" | "copyurl"
        );
    }
    let remote = |a: &str| {
        let spec = a.split_once(':').map(|(h, _)| h).unwrap_or("");
        (a.contains(':') && !a.starts_with('/') && !spec.contains('/') && !spec.is_empty())
            || a.starts_with("rsync://")
            || a.contains("://")
    };
    let last = operands.last()?;
    // A dry run lists what it would copy and copies nothing.
    let dry_run = matches!(c.program.as_str(), "rsync" | "rclone")
        && c.args.iter().any(|a| {
            a == "--dry-run" || (a.starts_with('-') && !a.starts_with("--") && a[1..].contains('n'))
        });
    let sending =
        may_send && !dry_run && remote(last) && operands.len() >= 2 && !remote(operands[0]);
    let host_spec = if sending {
        last.as_str()
    } else {
        operands.iter().find(|a| remote(a))?.as_str()
    };
    let host = host_spec
        .split_once("://")
        .map_or(host_spec, |(_, r)| r)
        .split(':')
        .next()
        .unwrap_or("");
    let host = host.rsplit_once('@').map_or(host, |(_, h)| h);
    Some((
        Destination {
            url: format!("tcp://{host}"),
            payload: if sending {
                operands[..operands.len() - 1]
                    .iter()
                    .map(|a| sent_file(a))
                    .max()
                    .unwrap_or(Payload::File)
            } else {
                Payload::None
            },
            probe: false,
        },
        sending,
    ))
}
