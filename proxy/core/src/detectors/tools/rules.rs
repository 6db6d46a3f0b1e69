//! The tool rule file (`policies/rules/tools.toml`, format documented in
//! its header): parsing and compilation.

use super::effects::Effect;
use super::hosts::HostList;
use crate::util::ascii_word_boundaries;
use regex::{Regex, RegexSet};
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap, HashSet};

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
    programs: ProgramsDef,
    #[serde(default)]
    command: Vec<CommandDef>,
    #[serde(default)]
    code: Vec<CodeDef>,
    #[serde(default)]
    path: Vec<PathDef>,
    #[serde(default)]
    write_target: Vec<WriteDef>,
    #[serde(default)]
    canonical_paths: Vec<String>,
    #[serde(default)]
    secret_env: Vec<String>,
    #[serde(default)]
    sql_destructive: Option<String>,
    #[serde(default)]
    egress: EgressDef,
    #[serde(default)]
    text: Vec<TextDef>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProgramsDef {
    #[serde(default)]
    readers: Vec<String>,
    #[serde(default)]
    network: Vec<String>,
    #[serde(default)]
    known: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CommandDef {
    id: String,
    effect: String,
    #[serde(default)]
    message: Option<String>,
    #[serde(default = "yes")]
    report: bool,
    program: Vec<String>,
    #[serde(default)]
    subcommand: Option<String>,
    /// The rule does not apply to these subcommands.
    #[serde(default)]
    subcommand_none: Option<String>,
    #[serde(default)]
    flags_any: Vec<String>,
    #[serde(default)]
    args_any: Vec<String>,
    /// `args_any` also matches the command's own assignments (`NAME=value`,
    /// as a prefix or through `env`): `RAILS_ENV=production rails db:reset`
    /// aims at production as surely as an argument does.
    #[serde(default)]
    args_any_env: bool,
    #[serde(default)]
    args_all: Vec<String>,
    #[serde(default)]
    args_none: Vec<String>,
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
    effect: String,
    message: String,
    all: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PathDef {
    id: String,
    message: String,
    regex: String,
    /// Effect of reading it (default `credential_read`); `none`: reading
    /// is ordinary.
    #[serde(default)]
    read: Option<String>,
    /// Strings the rule does not apply to after all (`.env.example`).
    #[serde(default)]
    unless: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct WriteDef {
    id: String,
    effect: String,
    message: String,
    regex: String,
    #[serde(default)]
    settings_effect: Option<String>,
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
    #[serde(default)]
    package_sources: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TextDef {
    id: String,
    message: String,
    severity: crate::types::Severity,
    score: f64,
    regex: String,
}

fn yes() -> bool {
    true
}

/// What a matched command rule contributes: an effect, or (rules with
/// `report = false`) only a tag that data-flow rules look for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Produces {
    Effect(Effect),
    Tag(String),
}

#[derive(Debug)]
pub struct CommandRule {
    pub id: String,
    pub produces: Produces,
    pub message: String,
    pub programs: Vec<String>,
    pub subcommand: Option<Regex>,
    pub subcommand_none: Option<Regex>,
    pub flags_any: Vec<String>,
    pub args_any: Vec<Regex>,
    pub args_any_env: bool,
    pub args_all: Vec<Regex>,
    pub args_none: Vec<Regex>,
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

    /// The tag this rule gives a command (its effect's name or its tag).
    pub fn tag(&self) -> &str {
        match &self.produces {
            Produces::Effect(e) => e.as_str(),
            Produces::Tag(t) => t,
        }
    }
}

#[derive(Debug)]
pub struct CodeRule {
    pub id: String,
    pub effect: Effect,
    pub message: String,
    pub all: Vec<Regex>,
}

#[derive(Debug)]
pub struct PathRule {
    pub id: String,
    pub message: String,
    pub read: Option<Effect>,
    pub unless: Option<Regex>,
}

#[derive(Debug)]
pub struct WriteTarget {
    pub id: String,
    pub effect: Effect,
    pub message: String,
    /// The effect when a command only writes variable settings there.
    pub settings_effect: Option<Effect>,
}

#[derive(Debug, Default)]
pub struct Hosts {
    pub allow: HostList,
    pub deny: HostList,
    pub exfil: HostList,
    pub metadata: HostList,
    /// Registries and forges installs may take packages from.
    pub packages: HostList,
}

#[derive(Debug)]
pub struct TextRule {
    pub id: String,
    pub message: String,
    pub severity: crate::types::Severity,
    pub score: f64,
}

/// Everything in the tool rule file, compiled.
#[derive(Debug)]
pub struct ToolRules {
    /// Command rules by exact program name; `any_program` lists the rules
    /// with `*` or prefix patterns, tried for every command.
    pub by_program: HashMap<String, Vec<usize>>,
    pub any_program: Vec<usize>,
    pub capabilities: BTreeMap<String, Vec<String>>,
    pub name_hints: BTreeMap<String, Vec<String>>,
    pub commands: Vec<CommandRule>,
    pub code: Vec<CodeRule>,
    pub paths: Vec<PathRule>,
    pub path_set: RegexSet,
    pub writes: Vec<WriteTarget>,
    pub write_set: RegexSet,
    pub canonical_paths: Vec<String>,
    /// Environment variable names that hold secrets (regex, whole name).
    pub secret_env: Regex,
    pub sql_destructive: Option<Regex>,
    pub exfil_urls: RegexSet,
    /// Programs that talk to a host named in their arguments.
    pub network: HashSet<String>,
    /// Every program some rule or list knows: a string whose first word is
    /// one of these is a command wherever it appears in a tool call.
    pub known: HashSet<String>,
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

fn all(id: &str, what: &str, ps: &[String]) -> Result<Vec<Regex>, String> {
    ps.iter().map(|p| re(id, what, p)).collect()
}

fn effect(id: &str, name: &str) -> Result<Effect, String> {
    Effect::parse(name).ok_or_else(|| format!("tool rule {id}: unknown effect {name:?}"))
}

impl ToolRules {
    /// Parse the rule file; `extra_paths` are the profile's additional
    /// sensitive-path regexes (reading them is credential access).
    pub fn from_toml(text: &str, extra_paths: &[String]) -> Result<ToolRules, String> {
        let f: File = toml::from_str(text).map_err(|e| format!("tool rules: {e}"))?;
        let mut commands = Vec::new();
        let mut known: HashSet<String> = HashSet::new();
        for c in f.command {
            let id = c.id.clone();
            let produces = if c.report {
                Produces::Effect(effect(&id, &c.effect)?)
            } else {
                Produces::Tag(c.effect.clone())
            };
            let message = match (&c.message, &produces) {
                (Some(m), _) => m.clone(),
                (None, Produces::Effect(e)) => capitalise(e.describe()),
                (None, Produces::Tag(t)) => t.clone(),
            };
            let programs: Vec<String> = c.program.iter().map(|p| p.to_ascii_lowercase()).collect();
            known.extend(programs.iter().filter(|p| !p.contains('*')).cloned());
            commands.push(CommandRule {
                subcommand: opt(&id, "subcommand", &c.subcommand)?,
                subcommand_none: opt(&id, "subcommand_none", &c.subcommand_none)?,
                args_any: all(&id, "args_any", &c.args_any)?,
                args_any_env: c.args_any_env,
                args_all: all(&id, "args_all", &c.args_all)?,
                args_none: all(&id, "args_none", &c.args_none)?,
                line: opt(&id, "line", &c.line)?,
                writes: opt(&id, "writes", &c.writes)?,
                reads: opt(&id, "reads", &c.reads)?,
                redirect: opt(&id, "redirect", &c.redirect)?,
                programs,
                flags_any: c.flags_any.iter().map(|f| f.to_ascii_lowercase()).collect(),
                id: c.id,
                produces,
                message,
                input_from: c.input_from,
                privileged: c.privileged,
            });
        }
        let mut by_program: HashMap<String, Vec<usize>> = HashMap::new();
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
                    all: all(&c.id, "all", &c.all)?,
                    effect: effect(&c.id, &c.effect)?,
                    id: c.id,
                    message: c.message,
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
        let mut path_patterns: Vec<String> = Vec::new();
        let mut paths: Vec<PathRule> = Vec::new();
        for p in f.path {
            let read = match p.read.as_deref() {
                None => Some(Effect::CredentialRead),
                Some("none") => None,
                Some(name) => Some(effect(&p.id, name)?),
            };
            path_patterns.push(p.regex);
            paths.push(PathRule {
                unless: opt(&p.id, "unless", &p.unless)?,
                id: p.id,
                message: p.message,
                read,
            });
        }
        for (i, extra) in extra_paths.iter().enumerate() {
            path_patterns.push(extra.clone());
            paths.push(PathRule {
                id: format!("custom_{i}"),
                message: "Sensitive location (profile)".into(),
                read: Some(Effect::CredentialRead),
                unless: None,
            });
        }
        // macOS and Windows file systems ignore case: `~/.SSH/ID_ED25519` and
        // `~/LIBRARY/launchagents/` are the key and the folder the rules name.
        let path_set = regex::RegexSetBuilder::new(&path_patterns)
            .case_insensitive(true)
            .build()
            .map_err(|e| format!("tool rule paths: {e}"))?;
        let write_set =
            regex::RegexSetBuilder::new(f.write_target.iter().map(|w| w.regex.as_str()))
                .case_insensitive(true)
                .build()
                .map_err(|e| format!("tool rule write targets: {e}"))?;
        let writes = f
            .write_target
            .into_iter()
            .map(|w| {
                Ok(WriteTarget {
                    effect: effect(&w.id, &w.effect)?,
                    settings_effect: w
                        .settings_effect
                        .as_deref()
                        .map(|e| effect(&w.id, e))
                        .transpose()?,
                    id: w.id,
                    message: w.message,
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
        let secret_env = Regex::new(&format!("^(?:{})$", f.secret_env.join("|")))
            .map_err(|e| format!("tool rules secret_env: {e}"))?;
        let exfil_urls =
            RegexSet::new(&f.egress.exfil_urls).map_err(|e| format!("egress exfil_urls: {e}"))?;
        let text_set = RegexSet::new(f.text.iter().map(|t| ascii_word_boundaries(&t.regex)))
            .map_err(|e| format!("tool text rules: {e}"))?;
        let lower = |v: Vec<String>| -> HashSet<String> {
            v.into_iter().map(|p| p.to_ascii_lowercase()).collect()
        };
        let network = lower(f.programs.network);
        // Readers are listed so that strings starting with them are judged
        // as commands; every program reads what it is given (`access`).
        known.extend(lower(f.programs.readers));
        known.extend(network.iter().cloned());
        known.extend(lower(f.programs.known));
        Ok(ToolRules {
            by_program,
            any_program,
            capabilities: f.capabilities,
            name_hints: f.name_hints,
            commands,
            code,
            paths,
            path_set,
            writes,
            write_set,
            canonical_paths: f.canonical_paths,
            secret_env,
            sql_destructive: opt("sql_destructive", "regex", &f.sql_destructive)?,
            exfil_urls,
            network,
            known,
            hosts: Hosts {
                exfil: HostList::new(&f.egress.exfil_hosts),
                metadata: HostList::new(&f.egress.metadata_hosts),
                packages: HostList::new(&f.egress.package_sources),
                ..Hosts::default()
            },
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

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}
