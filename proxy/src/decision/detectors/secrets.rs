//! Secret detection: a rule set loaded from a data file
//! (`policies/rules/secrets.toml`), a keyword prefilter and regexes.
//!
//! Scanning cost is dominated by one Aho-Corasick pass over the text; a
//! rule's regex runs only when one of its keywords occurred. Matches carry
//! byte spans of the original text so the redactor can mask exactly the
//! secret (the key in `api_key=...` stays readable).

use super::ScanContext;
use crate::decision::types::{DetectorId, Finding, Severity};
use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use base64::Engine as _;
use regex::Regex;
use serde::Deserialize;
use std::path::Path;

/// The rule set compiled into the binary; profiles loaded from a folder may
/// point `secrets.rules_file` at an editable copy instead.
pub const EMBEDDED_RULES: &str = include_str!("../../../../policies/rules/secrets.toml");

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SecretsConfig {
    /// Rule file, relative to the profile's folder. Unset: embedded rules.
    pub rules_file: Option<String>,
    /// Rule ids to switch off in this profile.
    pub disabled_rules: Vec<String>,
    /// Decode base64 tokens and scan the decoded text too.
    pub decode_base64: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleFile {
    #[serde(default)]
    placeholders: Vec<String>,
    rule: Vec<RuleDef>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleDef {
    id: String,
    #[serde(default)]
    kind: Option<String>,
    description: String,
    /// Literal keywords (case-insensitive); the regex runs only if one occurs.
    /// Empty: the rule always runs (keep such rules rare).
    #[serde(default)]
    keywords: Vec<String>,
    regex: String,
    /// Capture group holding the secret value; 0 = the whole match.
    /// Unset: the first capture group that participated in the match (so
    /// alternatives like `"quoted"|bare` can each have their own group).
    #[serde(default)]
    group: Option<usize>,
    /// Minimum Shannon entropy (bits per char) of the value.
    #[serde(default)]
    entropy: Option<f64>,
    #[serde(default = "default_severity")]
    severity: Severity,
    #[serde(default = "default_score")]
    score: f64,
}

fn default_severity() -> Severity {
    Severity::Critical
}
fn default_score() -> f64 {
    0.95
}

#[derive(Debug)]
pub struct Rule {
    pub id: String,
    /// Kind used in masks: `[REDACTED:<kind>:<hash>]`.
    pub kind: String,
    pub description: String,
    regex: Regex,
    group: Option<usize>,
    entropy: Option<f64>,
    pub severity: Severity,
    pub score: f64,
}

/// A secret found in a text: `start..end` is the value to mask.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SecretMatch {
    pub rule: usize,
    pub start: usize,
    pub end: usize,
}

pub struct SecretScanner {
    rules: Vec<Rule>,
    prefilter: AhoCorasick,
    /// Prefilter pattern index → rules that keyword belongs to.
    keyword_rules: Vec<Vec<usize>>,
    always: Vec<usize>,
    placeholders: Vec<Regex>,
    decode_base64: bool,
    base64_token: Regex,
}

impl std::fmt::Debug for SecretScanner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretScanner")
            .field("rules", &self.rules.len())
            .finish()
    }
}

impl SecretScanner {
    pub fn load(cfg: &SecretsConfig, base_dir: Option<&Path>) -> Result<Self, String> {
        let text = match (&cfg.rules_file, base_dir) {
            (Some(file), Some(dir)) => {
                let path = dir.join(file);
                std::fs::read_to_string(&path)
                    .map_err(|e| format!("secrets.rules_file {}: {e}", path.display()))?
            }
            _ => EMBEDDED_RULES.to_string(),
        };
        Self::from_toml(&text, cfg)
    }

    pub fn from_toml(text: &str, cfg: &SecretsConfig) -> Result<Self, String> {
        let file: RuleFile = toml::from_str(text).map_err(|e| format!("secret rules: {e}"))?;
        let mut rules = Vec::new();
        let mut keywords: Vec<String> = Vec::new();
        let mut keyword_rules: Vec<Vec<usize>> = Vec::new();
        let mut always = Vec::new();
        for def in file.rule {
            if cfg.disabled_rules.contains(&def.id) {
                continue;
            }
            let regex =
                Regex::new(&def.regex).map_err(|e| format!("secret rule {}: {e}", def.id))?;
            if let Some(g) = def.group.filter(|g| *g >= regex.captures_len()) {
                return Err(format!("secret rule {}: group {g} does not exist", def.id));
            }
            let group = def.group;
            let idx = rules.len();
            if def.keywords.is_empty() {
                always.push(idx);
            }
            for kw in &def.keywords {
                let kw = kw.to_ascii_lowercase();
                match keywords.iter().position(|k| *k == kw) {
                    Some(p) => keyword_rules[p].push(idx),
                    None => {
                        keywords.push(kw);
                        keyword_rules.push(vec![idx]);
                    }
                }
            }
            rules.push(Rule {
                kind: def.kind.unwrap_or_else(|| def.id.clone()),
                id: def.id,
                description: def.description,
                regex,
                group,
                entropy: def.entropy,
                severity: def.severity,
                score: def.score,
            });
        }
        let prefilter = AhoCorasickBuilder::new()
            .ascii_case_insensitive(true)
            .match_kind(MatchKind::Standard)
            .build(&keywords)
            .map_err(|e| format!("secret keywords: {e}"))?;
        let placeholders = file
            .placeholders
            .iter()
            .map(|p| {
                Regex::new(&format!("(?i)^(?:{p})$")).map_err(|e| format!("placeholder {p}: {e}"))
            })
            .collect::<Result<_, _>>()?;
        Ok(SecretScanner {
            rules,
            prefilter,
            keyword_rules,
            always,
            placeholders,
            decode_base64: cfg.decode_base64.unwrap_or(true),
            base64_token: Regex::new(r"[A-Za-z0-9+/]{20,}={0,2}").expect("static regex"),
        })
    }

    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    pub fn rule(&self, idx: usize) -> &Rule {
        &self.rules[idx]
    }

    /// All secrets in `text`, sorted by start, without overlaps (the
    /// earliest, then longest, match wins).
    pub fn find(&self, text: &str) -> Vec<SecretMatch> {
        let mut triggered = vec![false; self.rules.len()];
        for &i in &self.always {
            triggered[i] = true;
        }
        for m in self.prefilter.find_overlapping_iter(text) {
            for &r in &self.keyword_rules[m.pattern().as_usize()] {
                triggered[r] = true;
            }
        }
        let mut found = Vec::new();
        for (idx, rule) in self.rules.iter().enumerate() {
            if !triggered[idx] {
                continue;
            }
            for caps in rule.regex.captures_iter(text) {
                let value_match = match rule.group {
                    Some(g) => caps.get(g),
                    None => caps.iter().skip(1).flatten().next().or_else(|| caps.get(0)),
                };
                let Some(m) = value_match else { continue };
                let value = m.as_str();
                if value.is_empty() || self.is_placeholder(value) {
                    continue;
                }
                if let Some(min) = rule.entropy {
                    if shannon_entropy(value) < min {
                        continue;
                    }
                }
                found.push(SecretMatch {
                    rule: idx,
                    start: m.start(),
                    end: m.end(),
                });
            }
        }
        resolve_overlaps(found)
    }

    /// A value that is a documentation placeholder (`your_api_key`,
    /// `<token>`, `${API_KEY}` …). The whole value must match: a real key
    /// that merely starts like a placeholder is still a secret.
    pub fn is_placeholder(&self, value: &str) -> bool {
        let v = value.trim_matches(|c| c == '"' || c == '\'');
        self.placeholders.iter().any(|p| p.is_match(v))
    }

    /// Base64 tokens that decode to text containing a secret.
    pub fn find_encoded(&self, text: &str) -> Vec<(usize, usize, SecretMatch)> {
        if !self.decode_base64 {
            return Vec::new();
        }
        let mut out = Vec::new();
        for m in self.base64_token.find_iter(text).take(64) {
            let token = m.as_str();
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(token)
                .or_else(|_| {
                    base64::engine::general_purpose::STANDARD_NO_PAD
                        .decode(token.trim_end_matches('='))
                });
            let Ok(bytes) = decoded else { continue };
            let Ok(inner) = std::str::from_utf8(&bytes) else {
                continue;
            };
            if let Some(hit) = self.find(inner).into_iter().next() {
                out.push((m.start(), m.end(), hit));
            }
        }
        out
    }

    pub fn inspect(&self, cx: &ScanContext<'_>, out: &mut Vec<Finding>) {
        for part in &cx.subject.texts {
            for m in self.find(&part.text) {
                let rule = &self.rules[m.rule];
                out.push(
                    Finding::new(
                        format!("secret.{}", rule.id),
                        DetectorId::SecretLeakage,
                        "secret_leakage",
                        rule.severity,
                        rule.score,
                        format!("Secret detected: {}", rule.description),
                    )
                    .at(part.surface.as_str())
                    .with_evidence(format!(
                        "[{}:{} chars]",
                        rule.kind,
                        part.text[m.start..m.end].chars().count()
                    ))
                    .redactable(),
                );
            }
            for (_, _, m) in self.find_encoded(&part.text) {
                let rule = &self.rules[m.rule];
                out.push(
                    Finding::new(
                        format!("secret.encoded.{}", rule.id),
                        DetectorId::SecretLeakage,
                        "secret_leakage",
                        Severity::High,
                        0.85,
                        format!("Encoded secret detected (base64): {}", rule.description),
                    )
                    .at(part.surface.as_str())
                    .with_evidence(format!("[base64:{}]", rule.kind))
                    .meta("method", "base64_decode")
                    .redactable(),
                );
            }
        }
    }
}

/// Sort by start; drop a match that overlaps an earlier (or, at the same
/// start, a longer) one.
fn resolve_overlaps(mut found: Vec<SecretMatch>) -> Vec<SecretMatch> {
    found.sort_by(|a, b| a.start.cmp(&b.start).then(b.end.cmp(&a.end)));
    let mut out: Vec<SecretMatch> = Vec::with_capacity(found.len());
    for m in found {
        match out.last() {
            Some(last) if m.start < last.end => {}
            _ => out.push(m),
        }
    }
    out
}

/// Shannon entropy in bits per character.
pub fn shannon_entropy(s: &str) -> f64 {
    let mut counts = [0u32; 256];
    let mut n = 0u32;
    for b in s.bytes() {
        counts[b as usize] += 1;
        n += 1;
    }
    if n == 0 {
        return 0.0;
    }
    let n = n as f64;
    counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = c as f64 / n;
            -p * p.log2()
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scanner() -> SecretScanner {
        SecretScanner::from_toml(EMBEDDED_RULES, &SecretsConfig::default()).unwrap()
    }

    fn kinds(text: &str) -> Vec<String> {
        let s = scanner();
        s.find(text)
            .iter()
            .map(|m| s.rule(m.rule).id.clone())
            .collect()
    }

    #[test]
    fn finds_common_provider_keys() {
        assert_eq!(
            kinds("key AKIAIOSFODNN7EXAMPLE here"),
            ["aws_access_key_id"]
        );
        assert!(kinds("sk-proj-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789abcd")
            .contains(&"openai_api_key".to_string()));
        assert!(!kinds("ghp_0123456789abcdefghijABCDEFGHIJ012345").is_empty());
        assert!(
            !kinds("-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBg\n-----END PRIVATE KEY-----")
                .is_empty()
        );
    }

    #[test]
    fn span_covers_only_the_value() {
        let s = scanner();
        let text = "password: \"correct horse battery staple\" done";
        let m = s.find(text);
        assert_eq!(m.len(), 1, "{m:?}");
        assert_eq!(&text[m[0].start..m[0].end], "correct horse battery staple");
    }

    #[test]
    fn placeholders_are_skipped_but_cannot_hide_a_real_key() {
        assert!(kinds("api_key=your_api_key").is_empty());
        let found = kinds("api_key=your_api_key and api_key=Zx8Qp2Lm9Rt4Vw7Yk3Nb");
        assert_eq!(found.len(), 1, "{found:?}");
    }

    #[test]
    fn base64_encoded_key_is_found() {
        let s = scanner();
        assert_eq!(
            s.find_encoded("c2stMTIzNDU2Nzg5MGFiY2RlZmdoaWprbG1ub3A=")
                .len(),
            1
        );
    }

    #[test]
    fn entropy_is_bits_per_char() {
        assert_eq!(shannon_entropy("aaaa"), 0.0);
        assert!((shannon_entropy("abcd") - 2.0).abs() < 1e-9);
    }
}
