//! Vocabulary of the decision core: decisions, severities, findings.
//!
//! These types are shared by every detector, by the policy engine and by the
//! edge (inspect API, audit, metrics). They carry no behaviour beyond ordering
//! and serialization, so they are safe to pass across threads and to persist.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// What the gateway does with a request, a response or a tool call.
///
/// Ordered by strictness: `Allow < AllowWithRedaction < Challenge <
/// RequireApproval < Block`. Redaction only ever upgrades an `Allow`; nothing
/// downgrades a `Block`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    Allow,
    AllowWithRedaction,
    Challenge,
    RequireApproval,
    Block,
}

impl Decision {
    pub const ALL: [Decision; 5] = [
        Decision::Allow,
        Decision::AllowWithRedaction,
        Decision::Challenge,
        Decision::RequireApproval,
        Decision::Block,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Allow => "allow",
            Decision::AllowWithRedaction => "allow_with_redaction",
            Decision::Challenge => "challenge",
            Decision::RequireApproval => "require_approval",
            Decision::Block => "block",
        }
    }

    /// True when the inspected thing may proceed (possibly masked).
    pub fn permits(self) -> bool {
        matches!(self, Decision::Allow | Decision::AllowWithRedaction)
    }
}

impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

/// The detector families. Metric labels and policy toggles use these names,
/// so the set is closed (no unbounded label values).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DetectorId {
    PromptInjection,
    SecretLeakage,
    Pii,
    ToolAbuse,
    PolicyDrift,
    UnsafeActionChain,
    SessionRisk,
}

impl DetectorId {
    pub const ALL: [DetectorId; 7] = [
        DetectorId::PromptInjection,
        DetectorId::SecretLeakage,
        DetectorId::Pii,
        DetectorId::ToolAbuse,
        DetectorId::PolicyDrift,
        DetectorId::UnsafeActionChain,
        DetectorId::SessionRisk,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DetectorId::PromptInjection => "prompt_injection",
            DetectorId::SecretLeakage => "secret_leakage",
            DetectorId::Pii => "pii",
            DetectorId::ToolAbuse => "tool_abuse",
            DetectorId::PolicyDrift => "policy_drift",
            DetectorId::UnsafeActionChain => "unsafe_action_chain",
            DetectorId::SessionRisk => "session_risk",
        }
    }
}

impl fmt::Display for DetectorId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One thing a detector found.
///
/// `evidence` is always masked (never the raw secret or the raw matched
/// text beyond a short, safe excerpt) because findings are returned by the
/// API, written to audit and shown in the console.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    /// Stable rule identifier, e.g. `pi.override.ignore_previous`,
    /// `secret.aws_access_key_id`, `tool.shell.credential_read`.
    pub rule_id: String,
    pub detector: DetectorId,
    /// Coarse category (the decision API's `category` field).
    pub category: String,
    pub severity: Severity,
    pub score: f64,
    pub message: String,
    /// Where the evidence was found (`user`, `tool_result`, `tool_call:shell` …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    /// Masked excerpt of what matched.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evidence: Option<String>,
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
    /// The finding is a span the redactor masks in place (a secret or PII
    /// value in the text). When the data path masks it, it no longer
    /// counts towards blocking: the value will not leave.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub redactable: bool,
    /// The decision this finding stands for by itself, when a profile
    /// maps it to one directly (tool-call effects). Such findings decide
    /// by their verdict and are reported with their score, but do not
    /// feed the score thresholds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verdict: Option<Decision>,
}

impl Finding {
    pub fn new(
        rule_id: impl Into<String>,
        detector: DetectorId,
        category: impl Into<String>,
        severity: Severity,
        score: f64,
        message: impl Into<String>,
    ) -> Self {
        Finding {
            rule_id: rule_id.into(),
            detector,
            category: category.into(),
            severity,
            score,
            message: message.into(),
            location: None,
            evidence: None,
            metadata: BTreeMap::new(),
            redactable: false,
            verdict: None,
        }
    }

    pub fn with_verdict(mut self, verdict: Decision) -> Self {
        self.verdict = Some(verdict);
        self
    }

    pub fn redactable(mut self) -> Self {
        self.redactable = true;
        self
    }

    pub fn at(mut self, location: impl Into<String>) -> Self {
        self.location = Some(location.into());
        self
    }

    pub fn with_evidence(mut self, evidence: impl Into<String>) -> Self {
        self.evidence = Some(evidence.into());
        self
    }

    pub fn meta(mut self, key: &str, value: impl Into<String>) -> Self {
        self.metadata.insert(key.to_string(), value.into());
        self
    }

    /// The rule family used as a bounded metric label: the rule id up to
    /// its second dot (`secret.aws_access_key_id` → `secret.aws_access_key_id`,
    /// `pi.override.ignore` → `pi.override`).
    pub fn family(&self) -> &str {
        let mut dots = self.rule_id.match_indices('.');
        match (dots.next(), dots.next()) {
            (Some(_), Some((second, _))) => &self.rule_id[..second],
            _ => &self.rule_id,
        }
    }
}

/// Round a score for presentation (no `1.7000000000000002` in answers).
pub fn round_score(x: f64) -> f64 {
    (x * 10_000.0).round() / 10_000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decisions_are_ordered_by_strictness() {
        assert!(Decision::Allow < Decision::AllowWithRedaction);
        assert!(Decision::RequireApproval < Decision::Block);
        assert_eq!(Decision::ALL.iter().max(), Some(&Decision::Block));
    }

    #[test]
    fn family_is_bounded_prefix() {
        let f = Finding::new(
            "pi.override.ignore",
            DetectorId::PromptInjection,
            "c",
            Severity::High,
            0.8,
            "m",
        );
        assert_eq!(f.family(), "pi.override");
        let g = Finding::new(
            "secret",
            DetectorId::SecretLeakage,
            "c",
            Severity::High,
            0.8,
            "m",
        );
        assert_eq!(g.family(), "secret");
    }

    #[test]
    fn scores_round_for_display() {
        assert_eq!(round_score(0.7 + 1.0000000000000002), 1.7);
    }
}
