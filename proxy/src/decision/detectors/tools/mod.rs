//! Tool abuse: what a tool *is* (its capability) and what a call *does*
//! (its commands, paths, code and destinations).
//!
//! The original scored only exact action names (`exec_shell`), so a tool
//! named `shell` or `bash` running `cat ~/.ssh/id_rsa` passed. Here a name
//! is mapped to a capability by policy (exact names, then name hints), and
//! the arguments are examined: shell commands are parsed
//! ([`super::shell`]) and matched against families of dangerous behaviour,
//! inline code against code rules, paths against sensitive locations, URLs
//! and hosts against egress rules. All lists live in
//! `policies/rules/tools.toml`. Each call also yields *tags* (capability
//! plus behaviours) that the chain detector matches across calls and across
//! a session.

pub mod analyze;
pub mod egress;
pub mod rules;
#[cfg(test)]
mod tests;

use super::{excerpt, ScanContext};
use crate::decision::subject::{Surface, ToolCall};
use crate::decision::types::{DetectorId, Finding, Severity};
use analyze::{looks_like_code, Access, Analysis, Analyzer};
use egress::Egress;
use rules::{ToolRules, EMBEDDED_TOOL_RULES};
use serde::Deserialize;
use serde_json::Value;
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::path::Path;

pub use egress::{host_matches, host_of};

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ToolsConfig {
    /// Rule file, relative to the profile's folder. Unset: embedded rules.
    pub rules_file: Option<String>,
    /// capability → tool names (added to the rule file's lists).
    pub capabilities: BTreeMap<String, Vec<String>>,
    /// capability → substrings of tool names, tried when no exact name matched.
    pub name_hints: BTreeMap<String, Vec<String>>,
    /// Base risk of merely calling a tool with this capability (overrides
    /// the rule file's value).
    pub risk: BTreeMap<String, RiskSpec>,
    /// Extra sensitive path regexes (added to the rule file's list).
    pub sensitive_paths: Vec<String>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RiskSpec {
    pub severity: Severity,
    pub score: f64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EgressConfig {
    /// Hosts (or `*.suffix`) always allowed. When non-empty and
    /// `default_deny` is set, every other host is flagged.
    pub allow: Vec<String>,
    /// Hosts (or `*.suffix`) always flagged, added to the built-in list of
    /// paste, webhook, tunnel and interaction-capture services.
    pub deny: Vec<String>,
    pub default_deny: bool,
    /// Flag URLs that name a raw IP address instead of a host.
    pub flag_raw_ips: bool,
}

impl Default for EgressConfig {
    fn default() -> Self {
        EgressConfig {
            allow: Vec::new(),
            deny: Vec::new(),
            default_deny: false,
            flag_raw_ips: true,
        }
    }
}

/// Argument names that hold a command line whatever the tool is called.
const COMMAND_KEYS: &[&str] = &[
    "command",
    "cmd",
    "script",
    "shell",
    "bash",
    "commandline",
    "command_line",
    "cmdline",
    "shell_command",
    "run",
];

/// Capabilities whose path arguments are read (and sent) by the tool.
const READING_CAPS: &[&str] = &["file_read", "network", "exfiltration"];

/// Longest argument text analyzed per call.
const MAX_ARGUMENT_BYTES: usize = 256 * 1024;

pub struct ToolDetector {
    rules: ToolRules,
    exact: BTreeMap<String, String>,
    hints: Vec<(String, String)>,
    risk: BTreeMap<String, RiskSpec>,
    egress: EgressConfig,
}

impl std::fmt::Debug for ToolDetector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ToolDetector")
            .field("commands", &self.rules.commands.len())
            .field("paths", &self.rules.paths.len())
            .finish()
    }
}

impl ToolDetector {
    /// Profile lists *extend* the rule file's capability names, hints and
    /// sensitive paths; profile risk entries *override* its risk per
    /// capability.
    pub fn new(cfg: &ToolsConfig, egress: &EgressConfig) -> Result<Self, String> {
        Self::load(cfg, egress, None)
    }

    pub fn load(
        cfg: &ToolsConfig,
        egress: &EgressConfig,
        base_dir: Option<&Path>,
    ) -> Result<Self, String> {
        let text = match (&cfg.rules_file, base_dir) {
            (Some(file), Some(dir)) => {
                let path = dir.join(file);
                std::fs::read_to_string(&path)
                    .map_err(|e| format!("tools.rules_file {}: {e}", path.display()))?
            }
            _ => EMBEDDED_TOOL_RULES.to_string(),
        };
        let mut rules = ToolRules::from_toml(&text, &cfg.sensitive_paths)?;
        rules.hosts.allow = egress::HostList::new(&egress.allow);
        rules.hosts.deny = egress::HostList::new(&egress.deny);
        let mut exact = BTreeMap::new();
        for (cap, list) in rules.capabilities.iter().chain(&cfg.capabilities) {
            for name in list {
                exact.insert(fold_name(name), cap.clone());
            }
        }
        let mut hints = Vec::new();
        for (cap, list) in rules.name_hints.iter().chain(&cfg.name_hints) {
            for h in list {
                hints.push((fold_name(h), cap.clone()));
            }
        }
        // Longer hints first, so `read_file` wins over `read`.
        hints.sort_by_key(|h| std::cmp::Reverse(h.0.len()));
        let risk = rules
            .risk
            .iter()
            .map(|(k, v)| (k.clone(), *v))
            .chain(cfg.risk.clone())
            .collect();
        Ok(ToolDetector {
            rules,
            exact,
            hints,
            risk,
            egress: egress.clone(),
        })
    }

    /// The capability a tool name maps to, if any.
    pub fn capability_of(&self, name: &str) -> Option<&str> {
        let folded = fold_name(name);
        if let Some(cap) = self.exact.get(&folded) {
            return Some(cap);
        }
        self.hints
            .iter()
            .find(|(h, _)| folded.contains(h.as_str()))
            .map(|(_, c)| c.as_str())
    }

    fn analyzer(&self) -> Analyzer<'_> {
        Analyzer { rules: &self.rules }
    }

    fn egress(&self) -> Egress<'_> {
        Egress {
            rules: &self.rules,
            config: &self.egress,
        }
    }

    /// What a call does, from its name and arguments.
    pub fn analyze(&self, call: &ToolCall) -> Analysis {
        let cap = self.capability_of(&call.name);
        let mut out = Analysis::default();
        let analyzer = self.analyzer();
        let mut budget = MAX_ARGUMENT_BYTES;
        for (key, s) in keyed_strings(&call.arguments) {
            let s: &str = &s;
            if s.is_empty() {
                continue;
            }
            if s.len() > budget {
                out.truncated = true;
                break;
            }
            budget -= s.len();
            let commandish = cap == Some("shell")
                || key.is_some_and(|k| COMMAND_KEYS.contains(&k.to_ascii_lowercase().as_str()));
            if commandish {
                analyzer.shell(s, &mut out, 0);
                if looks_like_code(s) {
                    analyzer.code(s, &mut out, 0);
                }
            } else {
                // A path or URL handed to a file, network or other tool.
                let access = match cap {
                    Some("file_write") => Access::Write,
                    Some(c) if READING_CAPS.contains(&c) => Access::Read,
                    _ => Access::Mention,
                };
                out.paths.extend(analyzer.paths_in(s, access));
                for m in url_in(s) {
                    out.destinations.push(m);
                }
            }
        }
        out
    }

    /// Tags of one call: its capability plus the behaviours its arguments
    /// show (`credential_access`, `exfiltration`, `recon` …). Chains match
    /// on these.
    pub fn tags_of(&self, call: &ToolCall) -> Vec<String> {
        let analysis = self.analyze(call);
        self.tags(call, &analysis)
    }

    /// Tags of a call whose analysis is already known.
    pub fn tags(&self, call: &ToolCall, a: &Analysis) -> Vec<String> {
        let mut tags = Vec::new();
        if let Some(cap) = self.capability_of(&call.name) {
            push_unique(&mut tags, cap);
        }
        for h in &a.hits {
            push_unique(&mut tags, &h.family);
            if h.family == "privilege_escalation" {
                push_unique(&mut tags, "privilege");
            }
            if h.family == "download" {
                push_unique(&mut tags, "network");
            }
        }
        if a.paths.iter().any(|p| {
            p.access >= Access::Read && self.rules.paths[p.rule].read.severity >= Severity::High
        }) {
            push_unique(&mut tags, "credential_access");
        }
        if !a.destinations.is_empty() {
            push_unique(&mut tags, "network");
        }
        if a.destinations.iter().any(|d| {
            self.egress()
                .judge(d)
                .is_some_and(|f| f.rule_id == "tool.egress.denied_host")
        }) {
            push_unique(&mut tags, "exfiltration");
        }
        tags
    }

    pub fn inspect(&self, cx: &ScanContext<'_>, out: &mut Vec<Finding>) {
        let analyses: Vec<Analysis> = cx
            .subject
            .tool_calls
            .iter()
            .map(|c| self.analyze(c))
            .collect();
        self.inspect_with(cx, &analyses, out);
    }

    /// [`inspect`](Self::inspect) with the calls' analyses computed by the
    /// caller (who also needs them for chain tags).
    pub fn inspect_with(
        &self,
        cx: &ScanContext<'_>,
        analyses: &[Analysis],
        out: &mut Vec<Finding>,
    ) {
        for (call, a) in cx.subject.tool_calls.iter().zip(analyses) {
            self.inspect_call(call, a, out);
        }
        for i in cx.parts(&[Surface::User, Surface::Assistant, Surface::ToolResult]) {
            let part = &cx.subject.texts[i];
            let norm = cx.normalized(i);
            for idx in self.rules.text_set.matches(&norm.folded).iter() {
                let r = &self.rules.text[idx];
                out.push(
                    Finding::new(
                        r.id.clone(),
                        DetectorId::ToolAbuse,
                        "tool_abuse",
                        r.severity,
                        r.score,
                        r.message.clone(),
                    )
                    .at(part.surface.as_str()),
                );
            }
            if part.surface == Surface::ToolResult {
                self.inspect_payload(&part.text, out);
            }
        }
    }

    /// Dangerous code or commands carried by a tool result: the data tries
    /// to get the model to write or run them.
    fn inspect_payload(&self, text: &str, out: &mut Vec<Finding>) {
        if !looks_like_code(text) && !text.contains("```") && !text.contains("$ ") {
            return;
        }
        let mut a = Analysis::default();
        let analyzer = self.analyzer();
        analyzer.code(text, &mut a, 0);
        for block in code_blocks(text) {
            analyzer.shell(block, &mut a, 1);
        }
        let mut families: Vec<&str> = Vec::new();
        for h in a
            .hits
            .iter()
            .filter(|h| h.report && h.severity >= Severity::High)
        {
            if families.contains(&h.family.as_str()) {
                continue;
            }
            families.push(&h.family);
            out.push(
                Finding::new(
                    "pi.indirect.code_payload",
                    DetectorId::PromptInjection,
                    "prompt_injection",
                    Severity::High,
                    0.75,
                    format!(
                        "Indirect injection in tool result: dangerous code ({})",
                        h.message
                    ),
                )
                .at(Surface::ToolResult.as_str())
                .with_evidence(h.evidence.clone())
                .meta("family", h.family.clone())
                .meta("rule", h.rule.clone()),
            );
        }
    }

    fn inspect_call(&self, call: &ToolCall, a: &Analysis, out: &mut Vec<Finding>) {
        let location = format!("tool_call:{}", excerpt(&call.name));
        let cap = self.capability_of(&call.name);
        if let Some(cap) = cap {
            if let Some(risk) = self.risk.get(cap) {
                out.push(
                    Finding::new(
                        format!("tool.capability.{cap}"),
                        DetectorId::ToolAbuse,
                        "tool_abuse",
                        risk.severity,
                        risk.score,
                        format!("Sensitive tool capability: {cap}"),
                    )
                    .at(location.clone())
                    .meta("tool", call.name.clone())
                    .meta("capability", cap),
                );
            }
        }
        // One finding per family: the worst rule of the family.
        let mut best: BTreeMap<&str, &analyze::FamilyHit> = BTreeMap::new();
        for h in a.hits.iter().filter(|h| h.report) {
            let entry = best.entry(h.family.as_str()).or_insert(h);
            if (h.severity, h.score) > (entry.severity, entry.score) {
                *entry = h;
            }
        }
        for (family, h) in best {
            // Reconnaissance alone only matters for tools that run commands.
            if family == "recon" && cap != Some("shell") && h.severity < Severity::Medium {
                continue;
            }
            out.push(
                Finding::new(
                    format!("tool.cmd.{family}"),
                    DetectorId::ToolAbuse,
                    "tool_abuse",
                    h.severity,
                    h.score,
                    h.message.clone(),
                )
                .at(location.clone())
                .with_evidence(h.evidence.clone())
                .meta("rule", h.rule.clone()),
            );
        }
        // Paths: one finding per path rule, the strongest access.
        let mut paths: BTreeMap<usize, (Access, &str)> = BTreeMap::new();
        for p in &a.paths {
            let e = paths.entry(p.rule).or_insert((p.access, &p.path));
            if p.access > e.0 {
                *e = (p.access, &p.path);
            }
        }
        for (rule_idx, (access, path)) in paths {
            let rule = &self.rules.paths[rule_idx];
            let (id, spec, message) = match access {
                Access::Write => (
                    "tool.path.sensitive_write",
                    RiskSpec {
                        severity: Severity::Critical,
                        score: 0.95,
                    },
                    format!("Write to a sensitive location: {}", rule.message),
                ),
                Access::Read => (
                    "tool.path.credential_access",
                    rule.read,
                    format!("Access to credentials or secrets on disk: {}", rule.message),
                ),
                Access::Mention => (
                    "tool.path.sensitive_mention",
                    rule.mention,
                    format!("Sensitive location referenced: {}", rule.message),
                ),
            };
            out.push(
                Finding::new(
                    id,
                    DetectorId::ToolAbuse,
                    "tool_abuse",
                    spec.severity,
                    spec.score,
                    message,
                )
                .at(location.clone())
                .with_evidence(path.to_string())
                .meta("path_rule", rule.id.clone()),
            );
        }
        let mut judged: Vec<&str> = Vec::new();
        for d in &a.destinations {
            if judged.len() >= 32 || judged.contains(&d.as_str()) {
                continue;
            }
            judged.push(d);
            if let Some(f) = self.egress().judge(d) {
                if !out.iter().any(|o| {
                    o.rule_id == f.rule_id
                        && o.evidence == f.evidence
                        && o.location.as_deref() == Some(location.as_str())
                }) {
                    out.push(f.at(location.clone()));
                }
            }
        }
        if a.truncated {
            out.push(
                Finding::new(
                    "tool.limits.truncated",
                    DetectorId::ToolAbuse,
                    "tool_abuse",
                    Severity::Medium,
                    0.3,
                    "Tool arguments beyond the inspection limit were not analyzed",
                )
                .at(location),
            );
        }
    }
}

/// Strings of a JSON value with the key they sit under.
fn keyed_strings(v: &Value) -> Vec<(Option<&str>, Cow<'_, str>)> {
    fn walk<'v>(
        v: &'v Value,
        key: Option<&'v str>,
        depth: usize,
        out: &mut Vec<(Option<&'v str>, Cow<'v, str>)>,
    ) {
        if depth > 32 || out.len() >= 4096 {
            return;
        }
        match v {
            Value::String(s) => out.push((key, Cow::Borrowed(s.as_str()))),
            Value::Array(items) if items.iter().all(Value::is_string) && !items.is_empty() => {
                // argv arrays: analyzed element by element below, and the
                // joined command line is what actually runs.
                for i in items {
                    walk(i, key, depth + 1, out);
                }
            }
            Value::Array(items) => items.iter().for_each(|i| walk(i, key, depth + 1, out)),
            Value::Object(map) => map
                .iter()
                .for_each(|(k, i)| walk(i, Some(k.as_str()), depth + 1, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(v, None, 0, &mut out);
    // An argv array also as one command line.
    if let Some((key, joined)) = argv_line(v) {
        out.push((key, Cow::Owned(joined)));
    }
    out
}

/// The first argv-style array (`{"cmd": ["bash", "-c", "…"]}`) joined
/// into a shell-quoted command line.
fn argv_line(v: &Value) -> Option<(Option<&str>, String)> {
    let (key, items) = match v {
        Value::Array(items) => (None, items),
        Value::Object(map) => map.iter().find_map(|(k, v)| match v {
            Value::Array(items) if items.len() > 1 && items.iter().all(Value::is_string) => {
                Some((Some(k.as_str()), items))
            }
            _ => None,
        })?,
        _ => return None,
    };
    if items.len() < 2 || !items.iter().all(Value::is_string) {
        return None;
    }
    let line = items
        .iter()
        .filter_map(Value::as_str)
        .map(|s| {
            if s.is_empty()
                || s.chars()
                    .any(|c| c.is_whitespace() || "'\"|&;$`<>()".contains(c))
            {
                format!("'{}'", s.replace('\'', "'\\''"))
            } else {
                s.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join(" ");
    Some((key.or(Some("command")), line))
}

fn url_in(s: &str) -> Vec<String> {
    static R: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    let re = R.get_or_init(|| {
        regex::Regex::new(r#"(?i)\b(?:https?|ftp|wss?)://[^\s"'<>`|;)\\]+"#).expect("static regex")
    });
    re.find_iter(s)
        .take(32)
        .map(|m| m.as_str().to_string())
        .collect()
}

/// Fenced code blocks and `$ command` lines of a text.
fn code_blocks(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("```") {
        let after = &rest[start + 3..];
        let body_start = after.find('\n').map_or(0, |n| n + 1);
        let Some(end) = after[body_start..].find("```") else {
            break;
        };
        out.push(&after[body_start..body_start + end]);
        rest = &after[body_start + end + 3..];
        if out.len() >= 32 {
            break;
        }
    }
    for line in text.lines() {
        if let Some(cmd) = line.trim_start().strip_prefix("$ ") {
            out.push(cmd);
        }
    }
    out
}

fn push_unique(tags: &mut Vec<String>, tag: &str) {
    if !tags.iter().any(|t| t == tag) {
        tags.push(tag.to_string());
    }
}

/// `Run-Command` → `run_command`.
pub fn fold_name(name: &str) -> String {
    name.trim()
        .chars()
        .map(|c| {
            if c.is_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect()
}
