//! A tool call's arguments: every string under any key is a candidate
//! target. Commands (under a command key, as an argv array, or any string
//! whose first word is a program), paths, URLs, SQL and program source are
//! each analyzed for what they do; the tool's capability (its verb: read,
//! write, request, send) says how its paths and URLs are used. Prose is
//! left to the text detectors.

use super::analyze::{Analysis, Analyzer};
use super::effects::Effect;
use super::escapes::{shell_join, SHELLS};
use super::js::nested_tool_calls;
use super::network::{sent_file, Destination, Payload};
use super::paths::{looks_like_path, Access};
use super::ToolDetector;
use crate::detectors::shell::program_name;
use crate::subject::ToolCall;
use serde_json::Value;

/// Argument names that hold a command line whatever the tool is called.
const COMMAND_KEYS: &[&str] = &[
    "command",
    "cmd",
    "script",
    "bash",
    "commandline",
    "command_line",
    "cmdline",
    "shell_command",
    "run",
    "chars",
    "input",
    "keys",
    "argv",
    "args",
];

/// Argument names that hold program source.
const CODE_KEYS: &[&str] = &[
    "code",
    "source",
    "program",
    "python",
    "javascript",
    "js",
    "snippet",
    "source_code",
];

/// Argument names whose string is not a target (descriptions, ids, modes).
const INERT_KEYS: &[&str] = &[
    "description",
    "justification",
    "title",
    "name",
    "id",
    "session_id",
    "sessionid",
    "prompt",
    "reason",
    "summary",
    "comment",
    "message",
    "label",
    "shell",
    "language",
    "login",
    "tty",
    "mode",
    "output_mode",
    "yield_time_ms",
    "max_output_tokens",
    "sandbox_permissions",
    "activeform",
    "status",
    "type",
    "encoding",
    "query",
];

/// Argument names that name where a file tool writes.
const TARGET_KEYS: &[&str] = &[
    "path",
    "file_path",
    "absolute_path",
    "target_file",
    "filepath",
    "filename",
    "file",
    "target",
    "destination",
    "dest",
    "to",
    "notebook_path",
    "new_path",
    "output",
    "output_path",
    "dir",
    "directory",
];

/// Argument names holding what a file tool writes (content, not targets).
const CONTENT_KEYS: &[&str] = &[
    "content",
    "contents",
    "text",
    "old_string",
    "new_string",
    "old_str",
    "new_str",
    "new_source",
    "file_text",
    "data",
    "body",
    "patch",
    "diff",
    "edits",
    "insert_text",
];

const SQL_KEYS: &[&str] = &["sql", "query", "statement", "statements"];

/// A string under an SQL key that is a statement (a search query is not).
static SQL_STATEMENT: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
    regex::Regex::new(
        r"(?i)^\s*(?:select|insert|update|delete|drop|create|alter|copy|grant|revoke|truncate|with|do|call|set|vacuum|merge|replace|load|attach)\b",
    )
    .expect("static regex")
});

/// The file a write call names.
fn write_target(args: &Value) -> Option<&str> {
    TARGET_KEYS
        .iter()
        .find_map(|k| args.get(*k).and_then(Value::as_str))
}

/// The command line a search tool stands for: `grep -rE PATTERN PATH`.
fn search_tool_line(name: &str, args: &Value) -> Option<String> {
    if !matches!(
        super::own_name(name).as_str(),
        "grep" | "search_file_content" | "search_files" | "ripgrep" | "rg"
    ) {
        return None;
    }
    let pattern = args
        .get("pattern")
        .or_else(|| args.get("regex"))?
        .as_str()?;
    let path = ["path", "dir_path", "directory", "root"]
        .iter()
        .find_map(|k| args.get(*k).and_then(Value::as_str))
        .unwrap_or(".");
    Some(shell_join(&[
        "grep".to_string(),
        "-rE".to_string(),
        pattern.to_string(),
        path.to_string(),
    ]))
}

/// Verbs a tool's name may put before the program it runs (`call_aws`).
const PROGRAM_TOOL_VERBS: &[&str] = &["call_", "run_", "exec_", "execute_", "invoke_"];

/// Programs that are tools of their own in MCP servers and agent
/// frameworks, taking the program's arguments as their command.
const PROGRAM_TOOLS: &[&str] = &[
    "kubectl",
    "helm",
    "aws",
    "gcloud",
    "az",
    "gsutil",
    "terraform",
    "docker",
    "podman",
    "git",
    "gh",
    "glab",
    "psql",
    "mysql",
    "redis-cli",
    "npm",
    "pip",
    "cargo",
    "make",
    "systemctl",
];

/// Strings of a JSON value with the key they sit under (argv arrays of
/// strings joined into one command line).
fn keyed<'v>(
    v: &'v Value,
    key: Option<&'v str>,
    depth: usize,
    out: &mut Vec<(Option<&'v str>, String)>,
) {
    if depth > 32 || out.len() >= 4096 {
        return;
    }
    match v {
        Value::String(s) => out.push((key, s.clone())),
        Value::Array(items) if items.len() > 1 && items.iter().all(Value::is_string) => {
            let words: Vec<String> = items
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect();
            out.push((key.or(Some("argv")), shell_join(&words)));
        }
        Value::Array(items) => items.iter().for_each(|i| keyed(i, key, depth + 1, out)),
        Value::Object(map) => map
            .iter()
            .for_each(|(k, i)| keyed(i, Some(k.as_str()), depth + 1, out)),
        _ => {}
    }
}

/// Total bytes of the strings in `v` (bounded walk).
pub fn string_bytes(v: &Value) -> usize {
    fn walk(v: &Value, depth: usize) -> usize {
        if depth > 64 {
            return 0;
        }
        match v {
            Value::String(s) => s.len(),
            Value::Array(a) => a.iter().map(|x| walk(x, depth + 1)).sum(),
            Value::Object(m) => m.iter().map(|(k, x)| k.len() + walk(x, depth + 1)).sum(),
            _ => 0,
        }
    }
    walk(v, 0)
}

impl ToolDetector {
    /// The program a tool is named after (see [`PROGRAM_TOOLS`]).
    fn program_tool(&self, name: &str) -> Option<&'static str> {
        let own = super::own_name(name);
        let tail = PROGRAM_TOOL_VERBS
            .iter()
            .find_map(|v| own.strip_prefix(v))
            .unwrap_or(&own)
            // Folded names spell `-` as `_` (`redis_cli`).
            .replace('_', "-");
        PROGRAM_TOOLS.iter().find(|p| **p == tail).copied()
    }

    /// A string that reads as a command: its first word is a program some
    /// rule knows, a shell, or an executable path, and it is not a sentence.
    pub fn command_like(&self, s: &str) -> bool {
        let t = s.trim_start();
        let first = t.split_whitespace().next().unwrap_or("");
        if first.is_empty() || t.len() > 256 * 1024 {
            return false;
        }
        let first = first.trim_start_matches('(');
        // `VAR=value cmd …`, `sudo cmd …`
        let word = if first.contains('=') && !first.starts_with('-') {
            t.split_whitespace().nth(1).unwrap_or("")
        } else {
            first
        };
        let is_known = |program: &str| {
            self.rules.known.contains(program)
                || SHELLS.contains(&program)
                || self.rules.by_program.contains_key(program)
        };
        let known = is_known(&program_name(word, false))
            // `x=$(id -u); curl …`: the assignment's value has spaces, so
            // the second word is no program; the parsed commands say.
            || (word != first
                && crate::detectors::shell::parse(t)
                    .commands
                    .iter()
                    .any(|c| is_known(&c.program)));
        let exec_path = (word.starts_with("./") || word.starts_with('/') || word.starts_with("~/"))
            && !word.ends_with('/')
            && t.split_whitespace().count() > 1;
        // Sentences start with a capital and end with a full stop; a
        // PowerShell cmdlet (`Invoke-RestMethod -Uri …`) is a Verb-Noun.
        let cmdlet = first
            .split_once('-')
            .is_some_and(|(v, n)| v.len() > 1 && n.chars().next().is_some_and(char::is_uppercase));
        let prose = first.chars().next().is_some_and(char::is_uppercase)
            && !cmdlet
            && !self.rules.known.contains(first)
            && (t.trim_end().ends_with('.') || t.split_whitespace().count() > 6);
        (known || exec_path || t.contains("/dev/tcp/")) && !prose
    }

    /// What a call does, from its verb (capability) and arguments.
    pub fn analyze_call(&self, call: &ToolCall, out: &mut Analysis, depth: u8) {
        if depth > 3 {
            out.uninspectable("tool calls nested deeper than the analysis follows");
            return;
        }
        let bytes = string_bytes(&call.arguments);
        if bytes > self.limits.max_argument_bytes {
            out.uninspectable(&format!(
                "tool arguments ({bytes} bytes) exceed the profile's max_argument_bytes ({})",
                self.limits.max_argument_bytes
            ));
            return;
        }
        let cap = self.capability_of(&call.name);
        // A tool named after one program (`kubectl`, MCP's
        // `kubernetes__kubectl`, `aws__call_aws`) takes that program's
        // arguments as its command: `delete namespace production` is
        // `kubectl delete namespace production`.
        let program_tool = self.program_tool(&call.name);
        let cap = if program_tool.is_some() {
            Some("shell")
        } else {
            cap
        };
        let analyzer = self.analyzer();
        // A search tool (Claude Code's `Grep`, Gemini's
        // `search_file_content`) is the search it runs: a key's shape
        // sought through a home directory is a hunt for credentials.
        if let Some(line) = search_tool_line(&call.name, &call.arguments) {
            analyzer.shell(&line, out, depth + 1);
        }
        let mut strings = Vec::new();
        keyed(&call.arguments, None, 0, &mut strings);
        let method = call
            .arguments
            .get("method")
            .and_then(Value::as_str)
            .map(str::to_ascii_uppercase);
        let has_body = ["body", "data", "json", "form", "payload", "content"]
            .iter()
            .any(|k| {
                call.arguments.get(*k).is_some_and(|v| match v {
                    Value::Null => false,
                    Value::String(s) => !s.is_empty(),
                    Value::Object(m) => !m.is_empty(),
                    Value::Array(a) => !a.is_empty(),
                    _ => true,
                })
            });
        let local_paths: Vec<&str> = strings
            .iter()
            .filter(|(k, s)| {
                !k.is_some_and(|k| INERT_KEYS.contains(&k.to_ascii_lowercase().as_str()))
                    && looks_like_path(s)
                    && !s.contains("://")
            })
            .map(|(_, s)| s.as_str())
            .collect();
        for (key, s) in &strings {
            let key_l = key.map(str::to_ascii_lowercase);
            let k = key_l.as_deref().unwrap_or("");
            if s.trim().is_empty() {
                continue;
            }
            if s.len() > self.limits.max_command_bytes
                && (COMMAND_KEYS.contains(&k) || key.is_none())
                && (cap == Some("shell") || self.command_like(s))
            {
                out.uninspectable(&format!(
                    "a command of {} bytes exceeds the profile's max_command_bytes ({})",
                    s.len(),
                    self.limits.max_command_bytes
                ));
                continue;
            }
            // Code calling the agent's other tools (Codex `exec`).
            if s.contains("tools.") {
                let nested = nested_tool_calls(s);
                if !nested.is_empty() {
                    for (name, args) in nested {
                        self.analyze_call(&ToolCall::new(name, args), out, depth + 1);
                    }
                    // Arguments held in variables (`const c = 'cat …';
                    // tools.exec_command({cmd: c})`): the code's string
                    // literals are read as commands too.
                    analyzer.code(s, out, depth + 1);
                    continue;
                }
            }
            let inert = INERT_KEYS.contains(&k);
            let content = CONTENT_KEYS.contains(&k)
                && matches!(
                    cap,
                    Some("file_write") | Some("exfiltration") | Some("network")
                );
            if content {
                if k == "patch"
                    || k == "diff"
                    || s.starts_with("*** Begin Patch")
                    || s.starts_with("--- ")
                {
                    self.patch_targets(s, out);
                    self.patched_auto_run(s, out, depth);
                } else if let Some(target) = write_target(&call.arguments) {
                    for cmd in super::auto_run::commands(target, s) {
                        analyzer.shell(&cmd, out, depth + 1);
                    }
                }
                continue;
            }
            if s.starts_with("*** Begin Patch") {
                self.patch_targets(s, out);
                self.patched_auto_run(s, out, depth);
                continue;
            }
            if SQL_KEYS.contains(&k) {
                if let Some(re) = &self.rules.sql_destructive {
                    if re.is_match(s) {
                        out.push(
                            Effect::Destroy,
                            "sql_destructive",
                            "Drops, truncates or deletes database data",
                            s,
                        );
                    }
                }
                // A statement is judged as the database client would run it
                // (`COPY … TO PROGRAM`, roles made superuser).
                if SQL_STATEMENT.is_match(s) {
                    let psql = shell_join(&["psql".to_string(), "-c".to_string(), s.to_string()]);
                    analyzer.shell(&psql, out, depth + 1);
                }
                continue;
            }
            if CODE_KEYS.contains(&k) && !self.command_like(s) {
                analyzer.code(s, out, depth + 1);
                continue;
            }
            let is_url = s.trim_start().split_once("://").is_some_and(|(scheme, _)| {
                !scheme.is_empty()
                    && scheme.len() <= 10
                    && scheme.chars().all(|c| c.is_ascii_alphabetic())
            }) && !s.trim().contains(char::is_whitespace);
            if is_url {
                // The local files the call names, by what they are (a build
                // output to a named host is a deploy, as for `scp`).
                let sent = || {
                    local_paths
                        .iter()
                        .map(|p| sent_file(p))
                        .max()
                        .unwrap_or(Payload::File)
                };
                let payload = match cap {
                    Some("exfiltration") if !local_paths.is_empty() => sent(),
                    Some("exfiltration") => Payload::Data,
                    Some("network")
                        if method
                            .as_deref()
                            .is_some_and(|m| !matches!(m, "GET" | "HEAD" | "OPTIONS"))
                            || has_body =>
                    {
                        Payload::Data
                    }
                    _ if !local_paths.is_empty() && cap.is_none() => sent(),
                    _ => Payload::None,
                };
                analyzer.destination(
                    &Destination {
                        url: s.trim().to_string(),
                        payload,
                        probe: false,
                    },
                    out,
                );
                continue;
            }
            // A shell tool's command key (or its only string) is a command
            // whatever it looks like; other keys only when they read as one.
            let commandish = !inert
                && ((cap == Some("shell") && (COMMAND_KEYS.contains(&k) || key.is_none()))
                    || ((COMMAND_KEYS.contains(&k) || key.is_none()) && self.command_like(s)));
            if commandish {
                let code = (cap == Some("shell") || CODE_KEYS.contains(&k))
                    && super::code::looks_like_code(s)
                    && !self.command_like(s);
                // A shell tool runs its command through a shell whatever it
                // looks like: it is judged as shell always, and as program
                // source too when it reads as such. Judged as source only, a
                // marker anywhere in it (`#!/`, `=>`, `import ` in a comment)
                // hid the commands around it.
                if !code || cap == Some("shell") {
                    match program_tool {
                        Some(p) if !s.trim_start().starts_with(p) => {
                            analyzer.shell(&format!("{p} {s}"), out, depth + 1)
                        }
                        _ => analyzer.shell(s, out, depth + 1),
                    }
                }
                if code {
                    analyzer.code(s, out, depth + 1);
                }
                continue;
            }
            if !inert && self.command_like(s) {
                analyzer.shell(s, out, depth + 1);
                continue;
            }
            if !inert && looks_like_path(s) {
                let access = match cap {
                    Some("file_write") if TARGET_KEYS.contains(&k) || key.is_none() => {
                        if call.name.to_ascii_lowercase().contains("delete")
                            || call.name.to_ascii_lowercase().contains("remove")
                        {
                            Access::Delete { recursive: false }
                        } else {
                            Access::Write
                        }
                    }
                    Some("file_write") => Access::Read,
                    Some("shell") => Access::Mention,
                    Some("memory_read") | Some("memory_write") => Access::Mention,
                    _ => Access::Read,
                };
                self.path_access(s, access, out);
                if cap == Some("exfiltration") && access == Access::Read {
                    let (effect, what) = match sent_file(s) {
                        Payload::Artifact => (Effect::NetworkSend, "a file of the project"),
                        _ => (Effect::Exfiltration, "a local file"),
                    };
                    out.push(
                        effect,
                        "tool_sends_file",
                        format!("Tool `{}` sends {what}", call.name),
                        s,
                    );
                }
            }
        }
        match cap {
            Some("exfiltration") if !out.has(Effect::Exfiltration) => out.push(
                Effect::NetworkSend,
                "tool_sends",
                format!("Tool `{}` sends data out", call.name),
                &call.name,
            ),
            Some("privilege") => out.push(
                Effect::PrivilegeEscalation,
                "tool_grants_privilege",
                format!("Tool `{}` changes privileges", call.name),
                &call.name,
            ),
            _ => {}
        }
    }

    fn path_access(&self, s: &str, access: Access, out: &mut Analysis) {
        let analyzer = self.analyzer();
        match access {
            Access::Read => analyzer.path_effects(s, Access::Read, out),
            Access::Write | Access::Delete { .. } => analyzer.path_write(s, access, |_| false, out),
            Access::Mention => {}
        }
    }

    /// Files a patch writes (`*** Update File: p`, `+++ b/p`).
    fn patch_targets(&self, patch: &str, out: &mut Analysis) {
        for line in patch.lines().take(100_000) {
            if let Some(t) = super::auto_run::patch_target(line) {
                self.path_access(t.trim(), Access::Write, out);
            } else if let Some(t) = line.strip_prefix("*** Delete File: ") {
                self.path_access(t.trim(), Access::Delete { recursive: false }, out);
            }
        }
    }

    /// The commands a patch plants in files that run by themselves.
    fn patched_auto_run(&self, patch: &str, out: &mut Analysis, depth: u8) {
        for (path, added) in super::auto_run::patched_files(patch) {
            for cmd in super::auto_run::commands(&path, &added) {
                self.analyzer().shell(&cmd, out, depth + 1);
            }
        }
    }

    pub(super) fn analyzer(&self) -> Analyzer<'_> {
        Analyzer {
            rules: &self.rules,
            egress: self.egress(),
        }
    }
}
