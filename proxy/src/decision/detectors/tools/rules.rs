//! The tool rule file (`policies/rules/tools.toml`, format documented in
//! its header): parsing and compilation.

use super::egress::HostList;
use super::RiskSpec;
use crate::decision::types::Severity;
use regex::{Regex, RegexSet};
use serde::Deserialize;
use std::collections::BTreeMap;

/// The rule file compiled into the binary.
pub const EMBEDDED_TOOL_RULES: &str = include_str!("../../../../../policies/rules/tools.toml");

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    capabilities: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    name_hints: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    risk: BTreeMap<String, RiskSpec>,
    #[serde(default)]
    command: Vec<CommandDef>,
    #[serde(default)]
    code: Vec<CodeDef>,
    #[serde(default)]
    path: Vec<PathDef>,
    #[serde(default)]
    canonical_paths: Vec<String>,
    #[serde(default)]
    egress: EgressDef,
    #[serde(default)]
    text: Vec<TextDef>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CommandDef {
    id: String,
    family: String,
    message: String,
    severity: Severity,
    score: f64,
    #[serde(default = "yes")]
    report: bool,
    program: Vec<String>,
    #[serde(default)]
    flags_any: Vec<String>,
    #[serde(default)]
    args_any: Vec<String>,
    #[serde(default)]
    args_all: Vec<String>,
    #[serde(default)]
    line: Option<String>,
    #[serde(default)]
    writes: Option<String>,
    #[serde(default)]
    reads: Option<String>,
    #[serde(default)]
    redirect: Option<String>,
    #[serde(default)]
    input_from: Vec<String>,
    #[serde(default)]
    privileged: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CodeDef {
    id: String,
    family: String,
    message: String,
    severity: Severity,
    score: f64,
    all: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PathDef {
    id: String,
    message: String,
    regex: String,
    read: RiskSpec,
    mention: RiskSpec,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct EgressDef {
    #[serde(default)]
    exfil_hosts: Vec<String>,
    #[serde(default)]
    exfil_urls: Vec<String>,
    #[serde(default)]
    metadata_hosts: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TextDef {
    id: String,
    message: String,
    severity: Severity,
    score: f64,
    regex: String,
}

fn yes() -> bool {
    true
}

#[derive(Debug)]
pub struct CommandRule {
    pub id: String,
    pub family: String,
    pub message: String,
    pub severity: Severity,
    pub score: f64,
    pub report: bool,
    pub programs: Vec<String>,
    pub flags_any: Vec<String>,
    pub args_any: Vec<Regex>,
    pub args_all: Vec<Regex>,
    pub line: Option<Regex>,
    pub writes: Option<Regex>,
    pub reads: Option<Regex>,
    pub redirect: Option<Regex>,
    pub input_from: Vec<String>,
    pub privileged: bool,
}

impl CommandRule {
    /// `*` matches any program; `mkfs*` is a prefix.
    pub fn matches_program(&self, program: &str) -> bool {
        self.programs.iter().any(|p| match p.strip_suffix('*') {
            Some("") => true,
            Some(prefix) => program.starts_with(prefix),
            None => p == program,
        })
    }
}

#[derive(Debug)]
pub struct CodeRule {
    pub id: String,
    pub family: String,
    pub message: String,
    pub severity: Severity,
    pub score: f64,
    pub all: Vec<Regex>,
}

#[derive(Debug)]
pub struct PathRule {
    pub id: String,
    pub message: String,
    pub read: RiskSpec,
    pub mention: RiskSpec,
}

#[derive(Debug, Default)]
pub struct Hosts {
    pub allow: HostList,
    pub deny: HostList,
    pub exfil: HostList,
    pub metadata: HostList,
}

#[derive(Debug)]
pub struct TextRule {
    pub id: String,
    pub message: String,
    pub severity: Severity,
    pub score: f64,
}

/// Everything in the tool rule file, compiled.
#[derive(Debug)]
pub struct ToolRules {
    /// Command rules by exact program name; `any_program` lists the rules
    /// with `*` or prefix patterns, tried for every command.
    pub by_program: std::collections::HashMap<String, Vec<usize>>,
    pub any_program: Vec<usize>,
    pub capabilities: BTreeMap<String, Vec<String>>,
    pub name_hints: BTreeMap<String, Vec<String>>,
    pub risk: BTreeMap<String, RiskSpec>,
    pub commands: Vec<CommandRule>,
    pub code: Vec<CodeRule>,
    pub paths: Vec<PathRule>,
    pub path_set: RegexSet,
    pub canonical_paths: Vec<String>,
    pub exfil_hosts: Vec<String>,
    pub exfil_urls: RegexSet,
    pub metadata_hosts: Vec<String>,
    /// Host lists compiled for lookup (profile allow/deny included).
    pub hosts: Hosts,
    pub text: Vec<TextRule>,
    pub text_set: RegexSet,
}

fn re(id: &str, what: &str, p: &str) -> Result<Regex, String> {
    Regex::new(p).map_err(|e| format!("tool rule {id} ({what}): {e}"))
}

fn opt(id: &str, what: &str, p: &Option<String>) -> Result<Option<Regex>, String> {
    p.as_ref().map(|p| re(id, what, p)).transpose()
}

impl ToolRules {
    /// Parse the rule file; `extra_paths` are the profile's additional
    /// sensitive-path regexes (scored like credential files).
    pub fn from_toml(text: &str, extra_paths: &[String]) -> Result<ToolRules, String> {
        let f: File = toml::from_str(text).map_err(|e| format!("tool rules: {e}"))?;
        let mut commands = Vec::new();
        for c in f.command {
            let id = c.id.clone();
            commands.push(CommandRule {
                args_any: c
                    .args_any
                    .iter()
                    .map(|p| re(&id, "args_any", p))
                    .collect::<Result<_, _>>()?,
                args_all: c
                    .args_all
                    .iter()
                    .map(|p| re(&id, "args_all", p))
                    .collect::<Result<_, _>>()?,
                line: opt(&id, "line", &c.line)?,
                writes: opt(&id, "writes", &c.writes)?,
                reads: opt(&id, "reads", &c.reads)?,
                redirect: opt(&id, "redirect", &c.redirect)?,
                programs: c.program.iter().map(|p| p.to_ascii_lowercase()).collect(),
                flags_any: c.flags_any.iter().map(|f| f.to_ascii_lowercase()).collect(),
                id: c.id,
                family: c.family,
                message: c.message,
                severity: c.severity,
                score: c.score,
                report: c.report,
                input_from: c.input_from,
                privileged: c.privileged,
            });
        }
        let mut by_program: std::collections::HashMap<String, Vec<usize>> = Default::default();
        let mut any_program = Vec::new();
        for (i, c) in commands.iter().enumerate() {
            for p in &c.programs {
                if p.ends_with('*') {
                    if !any_program.contains(&i) {
                        any_program.push(i);
                    }
                } else {
                    by_program.entry(p.clone()).or_default().push(i);
                }
            }
        }
        let code = f
            .code
            .into_iter()
            .map(|c| {
                Ok(CodeRule {
                    all: c
                        .all
                        .iter()
                        .map(|p| re(&c.id, "all", p))
                        .collect::<Result<_, String>>()?,
                    id: c.id,
                    family: c.family,
                    message: c.message,
                    severity: c.severity,
                    score: c.score,
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
        let mut path_patterns: Vec<String> = f.path.iter().map(|p| p.regex.clone()).collect();
        let mut paths: Vec<PathRule> = f
            .path
            .into_iter()
            .map(|p| PathRule {
                id: p.id,
                message: p.message,
                read: p.read,
                mention: p.mention,
            })
            .collect();
        for (i, extra) in extra_paths.iter().enumerate() {
            path_patterns.push(extra.clone());
            paths.push(PathRule {
                id: format!("custom_{i}"),
                message: "Sensitive location (profile)".into(),
                read: RiskSpec {
                    severity: Severity::Critical,
                    score: 0.95,
                },
                mention: RiskSpec {
                    severity: Severity::Medium,
                    score: 0.5,
                },
            });
        }
        let path_set =
            RegexSet::new(&path_patterns).map_err(|e| format!("tool rule paths: {e}"))?;
        let exfil_urls =
            RegexSet::new(&f.egress.exfil_urls).map_err(|e| format!("egress exfil_urls: {e}"))?;
        let text_set = RegexSet::new(f.text.iter().map(|t| t.regex.as_str()))
            .map_err(|e| format!("tool text rules: {e}"))?;
        Ok(ToolRules {
            by_program,
            any_program,
            capabilities: f.capabilities,
            name_hints: f.name_hints,
            risk: f.risk,
            commands,
            code,
            paths,
            path_set,
            canonical_paths: f.canonical_paths,
            hosts: Hosts {
                exfil: HostList::new(&f.egress.exfil_hosts),
                metadata: HostList::new(&f.egress.metadata_hosts),
                ..Hosts::default()
            },
            exfil_hosts: f.egress.exfil_hosts,
            exfil_urls,
            metadata_hosts: f.egress.metadata_hosts,
            text: f
                .text
                .into_iter()
                .map(|t| TextRule {
                    id: t.id,
                    message: t.message,
                    severity: t.severity,
                    score: t.score,
                })
                .collect(),
            text_set,
        })
    }
}
