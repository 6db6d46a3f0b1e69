//! Unsafe multi-step chains: sequences of tool behaviours that are
//! harmless alone and dangerous together (read credentials, then send data
//! out; read memory, then run a shell).
//!
//! A chain is matched over *steps*: each step is the set of tags of one tool
//! call (capability plus behaviours, see `tools::ToolDetector::tags_of`).
//! The session layer prepends the session's earlier steps, so a chain is
//! caught even when its parts arrive in separate requests.

use crate::types::{DetectorId, Finding, Severity};
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChainRule {
    pub id: String,
    /// Tags that must all occur; with `ordered`, at increasing steps.
    pub sequence: Vec<String>,
    #[serde(default = "yes")]
    pub ordered: bool,
    pub severity: Severity,
    pub score: f64,
    #[serde(default)]
    pub message: Option<String>,
}

impl ChainRule {
    fn validate(&self) -> Result<(), String> {
        if self.sequence.len() < 2 {
            return Err(format!("chain {}: needs at least two steps", self.id));
        }
        if !(0.0..=10.0).contains(&self.score) {
            return Err(format!("chain {}: score must be between 0 and 10", self.id));
        }
        Ok(())
    }
}

fn yes() -> bool {
    true
}

/// The chain rules compiled into the binary.
pub const EMBEDDED_CHAINS: &str = include_str!("../../../../policies/rules/chains.toml");

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ChainFile {
    chain: Vec<ChainRule>,
}

/// The built-in chains (`policies/rules/chains.toml`).
pub fn default_chains() -> Vec<ChainRule> {
    toml::from_str::<ChainFile>(EMBEDDED_CHAINS)
        .expect("embedded chains.toml is valid (checked by tests)")
        .chain
}

pub struct ChainDetector {
    rules: Vec<ChainRule>,
}

impl ChainDetector {
    pub fn new(rules: &Option<Vec<ChainRule>>) -> Result<Self, String> {
        let rules = rules.clone().unwrap_or_else(default_chains);
        for r in &rules {
            r.validate()?;
        }
        Ok(ChainDetector { rules })
    }

    pub fn rules(&self) -> &[ChainRule] {
        &self.rules
    }

    /// Findings for every chain completed by `steps`. `new_from` is the
    /// index of the first step of the current request: a chain is reported
    /// only if its last element lies in the current request, so a chain
    /// completed earlier is not charged again on every later call.
    pub fn evaluate(&self, steps: &[Vec<String>], new_from: usize) -> Vec<Finding> {
        let mut out = Vec::new();
        for rule in &self.rules {
            if let Some(end) = completes(rule, steps) {
                if end >= new_from {
                    let chain = rule.sequence.join(" -> ");
                    out.push(
                        Finding::new(
                            format!("chain.{}", rule.id),
                            DetectorId::UnsafeActionChain,
                            "unsafe_action_chain",
                            rule.severity,
                            rule.score,
                            rule.message
                                .clone()
                                .unwrap_or_else(|| format!("Unsafe action chain: {chain}")),
                        )
                        .meta("rule", rule.id.clone())
                        .meta("ordered", rule.ordered.to_string())
                        .meta("chain", chain),
                    );
                }
            }
        }
        out
    }
}

/// Index of the step that completes the chain, if it is completed.
fn completes(rule: &ChainRule, steps: &[Vec<String>]) -> Option<usize> {
    let has = |i: usize, tag: &str| steps[i].iter().any(|t| t == tag);
    if rule.ordered {
        let mut next = 0;
        let mut last = 0;
        for tag in &rule.sequence {
            let found = (next..steps.len()).find(|&i| has(i, tag))?;
            last = found;
            // Distinct calls: the next element must come from a later step.
            next = found + 1;
        }
        Some(last)
    } else {
        let mut last = 0;
        for tag in &rule.sequence {
            last = last.max((0..steps.len()).find(|&i| has(i, tag))?);
        }
        Some(last)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn steps(list: &[&[&str]]) -> Vec<Vec<String>> {
        list.iter()
            .map(|s| s.iter().map(|t| t.to_string()).collect())
            .collect()
    }

    fn ids(s: &[&[&str]], new_from: usize) -> Vec<String> {
        ChainDetector::new(&None)
            .unwrap()
            .evaluate(&steps(s), new_from)
            .into_iter()
            .map(|f| f.rule_id)
            .collect()
    }

    #[test]
    fn embedded_chains_load() {
        let rules = default_chains();
        assert!(rules.len() >= 10);
        assert!(rules.iter().any(|r| r.id == "credentials_then_egress"));
    }

    #[test]
    fn ordered_chain_needs_order() {
        assert!(ids(&[&["memory_read"], &["exfiltration"]], 0)
            .contains(&"chain.memory_then_exfiltration".to_string()));
        assert!(!ids(&[&["exfiltration"], &["memory_read"]], 0)
            .contains(&"chain.memory_then_exfiltration".to_string()));
    }

    #[test]
    fn unordered_chain_any_order() {
        assert!(ids(&[&["privilege"], &["shell"]], 0)
            .contains(&"chain.shell_and_privilege".to_string()));
    }

    #[test]
    fn chain_across_requests_reported_once() {
        let history: &[&[&str]] = &[&["shell", "credential_access"], &["network"]];
        assert!(ids(history, 1).contains(&"chain.credentials_then_egress".to_string()));
        let later: &[&[&str]] = &[&["shell", "credential_access"], &["network"], &["shell"]];
        assert!(!ids(later, 2).contains(&"chain.credentials_then_egress".to_string()));
    }
}
