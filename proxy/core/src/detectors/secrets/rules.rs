//! The secret rule file (`policies/rules/secrets.toml`, format documented in
//! its header): parsing, validation and compilation.

use crate::types::Severity;
use regex::Regex;
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RuleFile {
    #[serde(default)]
    pub placeholders: Vec<String>,
    pub rule: Vec<RuleDef>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RuleDef {
    pub id: String,
    #[serde(default)]
    pub kind: Option<String>,
    pub description: String,
    pub keywords: Vec<String>,
    pub regex: String,
    #[serde(default)]
    pub group: Option<usize>,
    #[serde(default)]
    pub entropy: Option<f64>,
    #[serde(default)]
    pub block: Option<String>,
    #[serde(default)]
    pub allowlist: Vec<String>,
    #[serde(default = "yes")]
    pub redact: bool,
    #[serde(default)]
    pub assignment: bool,
    #[serde(default)]
    pub min_tail: usize,
    #[serde(default = "default_severity")]
    pub severity: Severity,
    #[serde(default = "default_score")]
    pub score: f64,
    #[serde(default)]
    pub examples: Vec<String>,
    #[serde(default)]
    pub negatives: Vec<String>,
}

fn yes() -> bool {
    true
}

fn default_severity() -> Severity {
    Severity::Critical
}

fn default_score() -> f64 {
    0.95
}

/// How far a value may extend beyond the regex match.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Block {
    /// To the `-----END … -----` (or `---- END … ----`) line.
    Pem,
}

/// A compiled rule.
#[derive(Debug)]
pub struct Rule {
    pub id: String,
    /// Kind used in masks: `[REDACTED:<kind>:<hash>]`.
    pub kind: String,
    pub description: String,
    pub keywords: Vec<String>,
    pub(super) regex: Regex,
    pub(super) group: Option<usize>,
    pub(super) entropy: Option<f64>,
    pub(super) allowlist: Vec<Regex>,
    pub block: Option<Block>,
    /// False: detected and counted, never masked (no span shape fits).
    pub redact: bool,
    /// A keyword occurrence only counts when an assignment (`:`, `=`,
    /// `=>`, `:=`) follows the key name it belongs to.
    pub assignment: bool,
    /// A keyword occurrence only counts when at least this many token
    /// characters follow it.
    pub min_tail: usize,
    pub severity: Severity,
    pub score: f64,
    /// Texts the rule must find a secret in (checked by tests).
    pub examples: Vec<String>,
    /// Texts the rule must find nothing in (checked by tests).
    pub negatives: Vec<String>,
}

impl Rule {
    pub fn regex(&self) -> &Regex {
        &self.regex
    }

    /// The regex starts with a case-insensitive flag group (`(?i)`,
    /// `(?im)` …), so its keywords are matched ignoring ASCII case.
    pub fn case_insensitive(&self) -> bool {
        let r = self.regex.as_str();
        r.strip_prefix("(?")
            .and_then(|rest| rest.split_once(')'))
            .is_some_and(|(flags, _)| {
                !flags.starts_with('-') && flags.split('-').next().unwrap_or("").contains('i')
            })
    }
}

impl RuleDef {
    pub(super) fn compile(self) -> Result<Rule, String> {
        let id = self.id;
        let err = |m: String| format!("secret rule {id}: {m}");
        if self.keywords.is_empty() {
            return Err(err("needs at least one keyword (the prefilter)".into()));
        }
        if self.keywords.iter().any(|k| k.trim().len() < 2) {
            return Err(err("keywords must be at least two characters".into()));
        }
        let regex = Regex::new(&self.regex).map_err(|e| err(e.to_string()))?;
        if let Some(g) = self.group.filter(|g| *g >= regex.captures_len()) {
            return Err(err(format!("group {g} does not exist")));
        }
        let block = match self.block.as_deref() {
            None => None,
            Some("pem") => Some(Block::Pem),
            Some(other) => return Err(err(format!("unknown block {other:?}"))),
        };
        let allowlist = self
            .allowlist
            .iter()
            .map(|a| Regex::new(&format!("^(?:{a})$")).map_err(|e| err(format!("allowlist: {e}"))))
            .collect::<Result<_, _>>()?;
        if !(0.0..=10.0).contains(&self.score) {
            return Err(err("score must be between 0 and 10".into()));
        }
        Ok(Rule {
            kind: self.kind.unwrap_or_else(|| id.clone()),
            description: self.description,
            keywords: self.keywords,
            regex,
            group: self.group,
            entropy: self.entropy,
            allowlist,
            block,
            redact: self.redact,
            assignment: self.assignment,
            min_tail: self.min_tail,
            severity: self.severity,
            score: self.score,
            examples: self.examples,
            negatives: self.negatives,
            id,
        })
    }
}
