//! What one tool call does: its shell commands matched against command
//! families, the paths it reads, writes or names, the code it runs and the
//! hosts it talks to. The result feeds both findings and chain tags.

use super::rules::{CommandRule, ToolRules};
use crate::decision::detectors::shell::{self, glob_match, lexer::RedirOp, Cmd, Script};
use crate::decision::normalize;
use crate::decision::types::Severity;
use regex::Regex;
use std::sync::OnceLock;

/// A matched command or code rule.
#[derive(Debug, Clone)]
pub struct FamilyHit {
    pub family: String,
    pub rule: String,
    pub message: String,
    pub severity: Severity,
    pub score: f64,
    pub report: bool,
    /// Command line (or code excerpt) that matched, unmasked.
    pub evidence: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Access {
    Mention,
    Read,
    Write,
}

#[derive(Debug, Clone)]
pub struct PathHit {
    pub rule: usize,
    pub access: Access,
    pub path: String,
}

#[derive(Debug, Default)]
pub struct Analysis {
    pub hits: Vec<FamilyHit>,
    pub paths: Vec<PathHit>,
    /// URLs and `scheme://host` strings for bare hosts of network commands.
    pub destinations: Vec<String>,
    pub truncated: bool,
}

impl Analysis {
    pub fn has_family(&self, family: &str) -> bool {
        self.hits.iter().any(|h| h.family == family)
    }
}

/// Programs that read the files named in their arguments.
const READERS: &[&str] = &[
    "cat",
    "tac",
    "less",
    "more",
    "head",
    "tail",
    "cp",
    "mv",
    "scp",
    "rsync",
    "tar",
    "zip",
    "7z",
    "gzip",
    "bzip2",
    "xz",
    "base64",
    "base32",
    "xxd",
    "od",
    "hexdump",
    "strings",
    "grep",
    "egrep",
    "fgrep",
    "rg",
    "awk",
    "sed",
    "cut",
    "sort",
    "uniq",
    "wc",
    "vi",
    "vim",
    "nvim",
    "nano",
    "emacs",
    "code",
    "openssl",
    "gpg",
    "ssh-keygen",
    "python",
    "python3",
    "node",
    "perl",
    "ruby",
    "dd",
    "type",
    "get-content",
    "gc",
    "findstr",
    "source",
    ".",
    "jq",
    "yq",
    "nl",
    "diff",
    "cmp",
    "md5sum",
    "sha256sum",
    "sha1sum",
    "file",
    "bat",
    "view",
    "sqlite3",
    "curl",
    "wget",
    "nc",
    "ncat",
    "mail",
    "sendmail",
    "mutt",
    "sftp",
    "ftp",
    "tee",
];

/// Programs whose last argument is a destination they write.
const COPIERS: &[&str] = &["cp", "mv", "install", "ln", "rsync", "scp", "ditto"];

/// Programs that talk to a host given as an argument.
const NETWORK: &[&str] = &[
    "curl",
    "wget",
    "nc",
    "ncat",
    "netcat",
    "telnet",
    "socat",
    "ssh",
    "scp",
    "sftp",
    "rsync",
    "ftp",
    "dig",
    "nslookup",
    "host",
    "ping",
    "http",
    "https",
    "invoke-webrequest",
    "iwr",
    "invoke-restmethod",
    "irm",
    "openssl",
    "nmap",
    "drill",
    "traceroute",
    "mtr",
];

/// Downloaders and the flags naming their output file.
const OUTPUT_FLAGS: &[&str] = &[
    "-o",
    "--output",
    "-O",
    "--output-document",
    "-OutFile",
    "-outfile",
];

fn url_regex() -> &'static Regex {
    static R: OnceLock<Regex> = OnceLock::new();
    R.get_or_init(|| {
        Regex::new(r#"(?i)\b(?:https?|ftp|sftp|wss?|gopher|dict|ldap|tftp)://[^\s"'<>`|;)\\]+"#)
            .expect("static regex")
    })
}

fn literal_regex() -> &'static Regex {
    static R: OnceLock<Regex> = OnceLock::new();
    R.get_or_init(|| {
        Regex::new(r#""((?:[^"\\\n]|\\.){2,400})"|'((?:[^'\\\n]|\\.){2,400})'|`([^`\n]{2,400})`"#)
            .expect("static regex")
    })
}

fn list_regex() -> &'static Regex {
    static R: OnceLock<Regex> = OnceLock::new();
    R.get_or_init(|| {
        Regex::new(
            r#"\[\s*((?:["'][^"'\n]{0,200}["']\s*,\s*){1,30}["'][^"'\n]{0,200}["'])\s*,?\s*\]"#,
        )
        .expect("static regex")
    })
}

/// Program source rather than a command line.
pub fn looks_like_code(s: &str) -> bool {
    const MARKERS: &[&str] = &[
        "import ",
        "require(",
        "def ",
        "function ",
        "subprocess",
        "os.system",
        "exec(",
        "eval(",
        "socket",
        "#!/",
        "<?php",
        "Invoke-",
        "System.Net",
        "child_process",
        "fsockopen",
        "urllib",
        "requests.",
        "open(",
        "=>",
        "console.log",
    ];
    MARKERS.iter().any(|m| s.contains(m))
}

pub struct Analyzer<'a> {
    pub rules: &'a ToolRules,
}

impl Analyzer<'_> {
    /// Analyze a command string run by a shell-capable tool.
    pub fn shell(&self, src: &str, out: &mut Analysis, depth: u8) {
        let script = shell::parse(src);
        out.truncated |= script.truncated;
        self.script(&script, out, depth);
        // Rules that are only a line pattern also see the raw text, which
        // parsing splits (`:(){ :|:& };:`).
        for rule in &self.rules.commands {
            let line_only = rule.programs.iter().any(|p| p == "*")
                && rule.input_from.is_empty()
                && rule.writes.is_none()
                && rule.reads.is_none()
                && rule.redirect.is_none()
                && rule.args_any.is_empty()
                && rule.args_all.is_empty()
                && rule.flags_any.is_empty()
                && !rule.privileged;
            if let Some(line) = rule.line.as_ref().filter(|_| line_only) {
                if line.is_match(src) && !out.hits.iter().any(|h| h.rule == rule.id) {
                    out.hits.push(hit(rule, src));
                }
            }
        }
    }

    fn script(&self, script: &Script, out: &mut Analysis, depth: u8) {
        let n = script.commands.len();
        // Pass 1: rules without data-flow conditions, and paths.
        let mut tags: Vec<Vec<String>> = vec![Vec::new(); n];
        for (i, c) in script.commands.iter().enumerate() {
            for rule in self.candidates(c).filter(|r| r.input_from.is_empty()) {
                if self.matches(rule, c) {
                    push_tag(&mut tags[i], &rule.family);
                    out.hits.push(hit(rule, &c.line));
                }
            }
            for p in self.command_paths(c) {
                if p.access == Access::Read
                    && self.rules.paths[p.rule].read.severity >= Severity::High
                {
                    push_tag(&mut tags[i], "credential_access");
                }
                out.paths.push(p);
            }
            self.command_destinations(c, out);
            if let Some(code) = &c.code {
                self.code(code, out, depth + 1);
            }
        }
        // Pass 2: rules on what flows into a command.
        for (i, c) in script.commands.iter().enumerate() {
            let upstream = script.upstream(i);
            let upstream_tags: Vec<&str> = upstream
                .iter()
                .flat_map(|&j| tags[j].iter().map(String::as_str))
                .collect();
            if upstream.is_empty() {
                continue;
            }
            for rule in self.candidates(c).filter(|r| !r.input_from.is_empty()) {
                let flows = rule.input_from.iter().any(|f| {
                    (f == "*" && !upstream.is_empty()) || upstream_tags.contains(&f.as_str())
                });
                if flows && self.matches(rule, c) {
                    out.hits.push(hit(rule, &c.line));
                }
            }
        }
        self.download_then_run(script, out);
        // Encoded payloads anywhere in the commands (echo <b64> | base64 -d |
        // sh, printf '\x..'): decode and analyze them as scripts too.
        let decodes = tags.iter().flatten().any(|t| t == "decode")
            || script.commands.iter().any(|c| {
                matches!(
                    c.program.as_str(),
                    "eval"
                        | "sh"
                        | "bash"
                        | "zsh"
                        | "dash"
                        | "python"
                        | "python3"
                        | "perl"
                        | "powershell"
                        | "pwsh"
                        | "iex"
                ) && !c.sources.is_empty()
            });
        if depth < 3 && decodes {
            for c in &script.commands {
                let joined = c.args.join(" ");
                // Short payloads count here (`cm0gLXJmIC8=` is `rm -rf /`).
                let limits = normalize::Limits {
                    min_token: 8,
                    max_output: 64 * 1024,
                    ..normalize::Limits::default()
                };
                let decoded = normalize::decode_all(&joined, &limits);
                for d in decoded.items.iter().take(8) {
                    self.shell(&d.text, out, depth + 1);
                }
            }
        }
    }

    /// Rules that may apply to a command: those naming its program, then
    /// the wildcard and prefix rules.
    fn candidates<'r>(&'r self, c: &Cmd) -> impl Iterator<Item = &'r CommandRule> + 'r {
        let named = self
            .rules
            .by_program
            .get(&c.program)
            .map(|v| v.as_slice())
            .unwrap_or(&[]);
        named
            .iter()
            .chain(self.rules.any_program.iter())
            .map(|&i| &self.rules.commands[i])
    }

    fn matches(&self, rule: &CommandRule, c: &Cmd) -> bool {
        if !rule.matches_program(&c.program) {
            return false;
        }
        if rule.privileged && !c.privileged {
            return false;
        }
        if !rule.flags_any.is_empty() && !c.args.iter().any(|a| flag_matches(a, &rule.flags_any)) {
            return false;
        }
        if !rule.args_any.is_empty()
            && !c
                .args
                .iter()
                .any(|a| rule.args_any.iter().any(|r| r.is_match(a)))
        {
            return false;
        }
        if !rule
            .args_all
            .iter()
            .all(|r| c.args.iter().any(|a| r.is_match(a)))
        {
            return false;
        }
        if let Some(line) = &rule.line {
            if !line.is_match(&c.line) {
                return false;
            }
        }
        if let Some(w) = &rule.writes {
            if !writes(c).iter().any(|p| w.is_match(&normalize_path(p))) {
                return false;
            }
        }
        if let Some(r) = &rule.reads {
            let inputs = c
                .redirects
                .iter()
                .filter(|r| r.op == RedirOp::In)
                .map(|r| r.target.as_str());
            if !inputs.into_iter().any(|p| r.is_match(p)) {
                return false;
            }
        }
        if let Some(r) = &rule.redirect {
            if !c.redirects.iter().any(|x| r.is_match(&x.target)) {
                return false;
            }
        }
        true
    }

    /// Sensitive paths a command reads, writes or names.
    fn command_paths(&self, c: &Cmd) -> Vec<PathHit> {
        let mut out = Vec::new();
        let written = writes(c);
        let reader = READERS.contains(&c.program.as_str());
        let mut candidates: Vec<(String, Access)> = Vec::new();
        for r in &c.redirects {
            match r.op {
                RedirOp::In => candidates.push((r.target.clone(), Access::Read)),
                RedirOp::Out | RedirOp::Append => {
                    candidates.push((r.target.clone(), Access::Write))
                }
                _ => {}
            }
        }
        for (k, a) in c.args.iter().enumerate() {
            let arg = a.trim_start_matches('@');
            let value = arg
                .split_once('=')
                .filter(|(k, _)| k.starts_with("if") || k.starts_with("of") || k.starts_with("--"))
                .map_or(arg, |(_, v)| v);
            let access = if written.iter().any(|w| w == a) {
                Access::Write
            } else if a.starts_with('@')
                || a.contains("=@")
                || (reader && !a.starts_with('-'))
                || a.starts_with("if=")
                || (k == 0 && c.program == "source")
            {
                Access::Read
            } else {
                Access::Mention
            };
            candidates.push((value.to_string(), access));
        }
        candidates.push((c.line.clone(), Access::Mention));
        for (path, access) in candidates {
            out.extend(self.paths_in(&path, access));
        }
        out
    }

    /// Sensitive paths in one string (globs resolved against well-known
    /// paths).
    pub fn paths_in(&self, s: &str, access: Access) -> Vec<PathHit> {
        let norm = normalize_path(s);
        let mut out: Vec<PathHit> = self
            .rules
            .path_set
            .matches(&norm)
            .iter()
            .map(|rule| PathHit {
                rule,
                access,
                path: norm.clone(),
            })
            .collect();
        if out.is_empty() && norm.contains(['*', '?', '[']) {
            for concrete in &self.rules.canonical_paths {
                let tail = norm.trim_start_matches("~/").trim_start_matches("/root/");
                let ctail = concrete.trim_start_matches("~/");
                if glob_match(&norm, concrete) || glob_match(tail, ctail) {
                    out.extend(
                        self.rules
                            .path_set
                            .matches(concrete)
                            .iter()
                            .map(|rule| PathHit {
                                rule,
                                access,
                                path: concrete.clone(),
                            }),
                    );
                }
            }
        }
        out
    }

    fn command_destinations(&self, c: &Cmd, out: &mut Analysis) {
        for m in url_regex().find_iter(&c.line) {
            out.destinations.push(m.as_str().to_string());
        }
        if !NETWORK.contains(&c.program.as_str()) {
            return;
        }
        for a in &c.args {
            if a.starts_with('-') || a.contains("://") {
                continue;
            }
            // user@host:path, host:port, host, 1.2.3.4
            let host = a.rsplit_once('@').map_or(a.as_str(), |(_, h)| h);
            let host = host.split([':', '/']).next().unwrap_or("");
            let plausible = host.contains('.')
                && host.len() <= 253
                && host
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
                && !host.ends_with(".sh")
                && !host.ends_with(".txt")
                && !host.ends_with(".json");
            if plausible || host.parse::<std::net::IpAddr>().is_ok() {
                out.destinations.push(format!("tcp://{host}"));
            }
        }
    }

    /// A file downloaded earlier in the script and then made executable or
    /// run.
    fn download_then_run(&self, script: &Script, out: &mut Analysis) {
        let mut downloaded: Vec<String> = Vec::new();
        for c in &script.commands {
            if matches!(
                c.program.as_str(),
                "curl" | "wget" | "invoke-webrequest" | "iwr" | "aria2c"
            ) {
                for (k, a) in c.args.iter().enumerate() {
                    if OUTPUT_FLAGS.iter().any(|f| a == f) {
                        if let Some(f) = c.args.get(k + 1) {
                            downloaded.push(basename(f));
                        }
                    }
                }
                if c.program == "wget"
                    && !c
                        .args
                        .iter()
                        .any(|a| a == "-O" || a == "-qO-" || a == "-O-")
                {
                    if let Some(url) = c.args.iter().find(|a| a.contains("://")) {
                        downloaded.push(basename(url.split(['?', '#']).next().unwrap_or(url)));
                    }
                }
                continue;
            }
            if downloaded.is_empty() {
                continue;
            }
            let runs = downloaded.iter().any(|f| {
                !f.is_empty()
                    && (basename(&c.program) == *f
                        || (matches!(
                            c.program.as_str(),
                            "chmod"
                                | "sh"
                                | "bash"
                                | "python"
                                | "python3"
                                | "perl"
                                | "source"
                                | "."
                                | "node"
                                | "powershell"
                                | "start-process"
                        ) && c.args.iter().any(|a| basename(a) == *f)))
            });
            if runs {
                out.hits.push(FamilyHit {
                    family: "download_exec".into(),
                    rule: "download_then_run".into(),
                    message: "File downloaded and then executed".into(),
                    severity: Severity::Critical,
                    score: 0.9,
                    report: true,
                    evidence: c.line.clone(),
                });
            }
        }
    }

    /// Program source: code rules, plus the shell commands it embeds as
    /// string literals (`os.system("curl … | sh")`,
    /// `subprocess.call(["wget", url])`).
    pub fn code(&self, src: &str, out: &mut Analysis, depth: u8) {
        let src = normalize::truncate_at_char_boundary(src, 64 * 1024);
        for rule in &self.rules.code {
            if let Some(at) = co_occurring(&rule.all, src) {
                out.hits.push(FamilyHit {
                    family: rule.family.clone(),
                    rule: rule.id.clone(),
                    message: rule.message.clone(),
                    severity: rule.severity,
                    score: rule.score,
                    report: true,
                    evidence: excerpt_at(src, at),
                });
            }
        }
        if depth > 3 {
            return;
        }
        for caps in list_regex().captures_iter(src).take(64) {
            let items: Vec<String> = literal_regex()
                .captures_iter(&caps[1])
                .filter_map(|c| {
                    c.get(1)
                        .or_else(|| c.get(2))
                        .map(|m| shell_quote(m.as_str()))
                })
                .collect();
            if !items.is_empty() {
                self.shell(&items.join(" "), out, depth + 1);
            }
        }
        for caps in literal_regex().captures_iter(src).take(256) {
            let lit = caps
                .get(1)
                .or_else(|| caps.get(2))
                .or_else(|| caps.get(3))
                .map(|m| m.as_str())
                .unwrap_or("");
            if lit.contains(' ') {
                self.shell(lit, out, depth + 1);
            }
        }
    }
}

/// All regexes match within 800 bytes of the first one's match.
fn co_occurring(all: &[Regex], text: &str) -> Option<usize> {
    let (first, rest) = all.split_first()?;
    for m in first.find_iter(text).take(32) {
        let lo = floor(text, m.start().saturating_sub(800));
        let hi = floor(text, (m.end() + 800).min(text.len()));
        let window = &text[lo..hi];
        if rest.iter().all(|r| r.is_match(window)) {
            return Some(m.start());
        }
    }
    None
}

fn floor(text: &str, mut i: usize) -> usize {
    while !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}

fn excerpt_at(text: &str, at: usize) -> String {
    let start = floor(text, at);
    let end = floor(text, (start + 200).min(text.len()));
    text[start..end].to_string()
}

fn shell_quote(s: &str) -> String {
    if s.chars()
        .any(|c| c.is_whitespace() || c == '\'' || c == '"')
    {
        format!("'{}'", s.replace('\'', "'\\''"))
    } else {
        s.to_string()
    }
}

fn hit(rule: &CommandRule, line: &str) -> FamilyHit {
    FamilyHit {
        family: rule.family.clone(),
        rule: rule.id.clone(),
        message: rule.message.clone(),
        severity: rule.severity,
        score: rule.score,
        report: rule.report,
        evidence: line.to_string(),
    }
}

fn push_tag(tags: &mut Vec<String>, tag: &str) {
    if !tags.iter().any(|t| t == tag) {
        tags.push(tag.to_string());
    }
}

/// `-rf` has `-r` and `-f`; `--force=yes` is `--force`; PowerShell flags
/// compare case-insensitively.
fn flag_matches(arg: &str, wanted: &[String]) -> bool {
    if !arg.starts_with('-') || arg.len() < 2 {
        return false;
    }
    let lower = arg.to_ascii_lowercase();
    let name = lower.split('=').next().unwrap_or(&lower);
    if wanted.iter().any(|w| w == name) {
        return true;
    }
    if !arg.starts_with("--") && arg[1..].chars().all(|c| c.is_ascii_alphabetic()) {
        return arg[1..].chars().any(|ch| {
            wanted
                .iter()
                .any(|w| w.len() == 2 && w.as_bytes()[1] as char == ch)
        });
    }
    false
}

/// Paths the command writes.
pub fn writes(c: &Cmd) -> Vec<String> {
    let mut out: Vec<String> = c
        .redirects
        .iter()
        .filter(|r| matches!(r.op, RedirOp::Out | RedirOp::Append))
        .map(|r| r.target.clone())
        .filter(|t| t != "/dev/null")
        .collect();
    let plain: Vec<&String> = c.args.iter().filter(|a| !a.starts_with('-')).collect();
    match c.program.as_str() {
        "tee" => out.extend(plain.iter().map(|a| a.to_string())),
        p if COPIERS.contains(&p) && plain.len() >= 2 => {
            out.push(plain[plain.len() - 1].to_string());
        }
        "dd" => out.extend(
            c.args
                .iter()
                .filter_map(|a| a.strip_prefix("of=").map(str::to_string)),
        ),
        "sed" if c.args.iter().any(|a| a.starts_with("-i")) => {
            if let Some(last) = plain.last() {
                out.push(last.to_string());
            }
        }
        _ => {}
    }
    out
}

/// Backslashes as slashes, home directories as `~`.
pub fn normalize_path(p: &str) -> String {
    let mut s = p.replace('\\', "/");
    for home in [
        "$HOME",
        "${HOME}",
        "%USERPROFILE%",
        "$env:USERPROFILE",
        "%HOMEPATH%",
    ] {
        if s.contains(home) {
            s = s.replace(home, "~");
        }
    }
    s
}

fn basename(p: &str) -> String {
    p.trim_end_matches('/')
        .rsplit(['/', '\\'])
        .next()
        .unwrap_or(p)
        .to_string()
}
