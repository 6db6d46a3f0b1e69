//! The scoring model: findings in, decision out.
//!
//! The scoring engine (see the dev profile's defaults), kept exact so
//! `/inspect/*` answers stay stable for existing clients:
//! de-duplicate, sum per detector, cap per detector, then block on a critical,
//! on too many highs, on a high total or on a detector flood; challenge on any
//! high or a total above the challenge score; otherwise allow.

use super::DecisionConfig;
use crate::types::{round_score, Decision, DetectorId, Finding, Severity};
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq)]
pub struct Evaluation {
    pub decision: Decision,
    pub total_score: f64,
    pub reasons: Vec<String>,
    /// Raw sum per detector, in first-seen order.
    pub detector_totals: Vec<(DetectorId, f64)>,
    pub capped_totals: Vec<(DetectorId, f64)>,
    pub deduped_count: usize,
}

impl Evaluation {
    pub fn totals_map(totals: &[(DetectorId, f64)]) -> BTreeMap<String, f64> {
        totals
            .iter()
            .map(|(d, v)| (d.as_str().to_string(), round_score(*v)))
            .collect()
    }
}

/// Findings that count towards the decision: redactable secrets that the
/// data path is about to mask are excluded (they will not leave), everything
/// else counts.
pub fn evaluate(cfg: &DecisionConfig, findings: &[&Finding]) -> Evaluation {
    let deduped = dedupe(findings);
    if deduped.is_empty() {
        return Evaluation {
            decision: Decision::Allow,
            total_score: 0.0,
            reasons: vec!["No security findings detected.".to_string()],
            detector_totals: Vec::new(),
            capped_totals: Vec::new(),
            deduped_count: 0,
        };
    }

    let mut detector_totals: Vec<(DetectorId, f64)> = Vec::new();
    let mut detector_counts: BTreeMap<DetectorId, usize> = BTreeMap::new();
    for f in &deduped {
        match detector_totals.iter_mut().find(|(d, _)| *d == f.detector) {
            Some((_, total)) => *total += f.score,
            None => detector_totals.push((f.detector, f.score)),
        }
        *detector_counts.entry(f.detector).or_default() += 1;
    }
    let capped_totals: Vec<(DetectorId, f64)> = detector_totals
        .iter()
        .map(|(d, t)| (*d, t.min(cfg.detector_score_cap)))
        .collect();
    let total: f64 = capped_totals.iter().map(|(_, t)| t).sum();

    let critical = deduped
        .iter()
        .filter(|f| f.severity == Severity::Critical)
        .count();
    let high = deduped
        .iter()
        .filter(|f| f.severity == Severity::High)
        .count();
    let flooded: Vec<&str> = detector_counts
        .iter()
        .filter(|(_, n)| **n > cfg.max_findings_per_detector)
        .map(|(d, _)| d.as_str())
        .collect();

    let mut reasons = Vec::new();
    if critical > 0 {
        reasons.push(format!("Critical findings present ({critical})."));
    }
    if high >= cfg.block_high_count {
        reasons.push(format!("High-severity findings exceed threshold ({high})."));
    }
    if total >= cfg.block_score {
        reasons.push(format!("Risk score too high ({total:.2})."));
    }
    if !flooded.is_empty() {
        reasons.push(format!("Detector finding flood detected: {flooded:?}"));
    }

    let block = (cfg.block_if_critical && critical > 0)
        || high >= cfg.block_high_count
        || total >= cfg.block_score
        || !flooded.is_empty();
    let decision = if block {
        Decision::Block
    } else if high > 0 || total >= cfg.challenge_score {
        reasons.push("Elevated risk requires additional approval.".to_string());
        Decision::Challenge
    } else {
        reasons.push("Low risk, proceed with monitoring.".to_string());
        Decision::Allow
    };

    Evaluation {
        decision,
        total_score: round_score(total),
        reasons,
        detector_totals,
        capped_totals,
        deduped_count: deduped.len(),
    }
}

/// Keep the first finding per (detector, category, severity, message); the
/// original de-duplicated on exactly these fields.
fn dedupe<'a>(findings: &[&'a Finding]) -> Vec<&'a Finding> {
    let mut seen: Vec<(&DetectorId, &str, Severity, &str)> = Vec::with_capacity(findings.len());
    let mut out = Vec::with_capacity(findings.len());
    for f in findings {
        let key = (
            &f.detector,
            f.category.as_str(),
            f.severity,
            f.message.as_str(),
        );
        if !seen.contains(&key) {
            seen.push(key);
            out.push(*f);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> DecisionConfig {
        DecisionConfig::default()
    }

    fn f(det: DetectorId, sev: Severity, score: f64, msg: &str) -> Finding {
        Finding::new("t.x", det, "cat", sev, score, msg)
    }

    #[test]
    fn no_findings_allows() {
        let e = evaluate(&cfg(), &[]);
        assert_eq!(e.decision, Decision::Allow);
        assert_eq!(e.reasons, vec!["No security findings detected."]);
    }

    #[test]
    fn one_high_challenges_two_block() {
        let a = f(DetectorId::PromptInjection, Severity::High, 0.8, "a");
        let b = f(DetectorId::PromptInjection, Severity::High, 0.75, "b");
        assert_eq!(evaluate(&cfg(), &[&a]).decision, Decision::Challenge);
        let e = evaluate(&cfg(), &[&a, &b]);
        assert_eq!(e.decision, Decision::Block);
        assert_eq!(e.total_score, 1.5);
    }

    #[test]
    fn duplicates_count_once() {
        let a = f(DetectorId::PromptInjection, Severity::High, 0.8, "a");
        let e = evaluate(&cfg(), &[&a, &a.clone()]);
        assert_eq!(e.decision, Decision::Challenge);
        assert_eq!(e.deduped_count, 1);
    }

    #[test]
    fn critical_blocks_and_medium_below_threshold_allows() {
        let c = f(DetectorId::SecretLeakage, Severity::Critical, 0.95, "c");
        assert_eq!(evaluate(&cfg(), &[&c]).decision, Decision::Block);
        let m = f(DetectorId::ToolAbuse, Severity::Medium, 0.45, "m");
        assert_eq!(evaluate(&cfg(), &[&m]).decision, Decision::Allow);
    }

    #[test]
    fn per_detector_cap_limits_total() {
        let mut c = cfg();
        c.block_high_count = 100;
        c.detector_score_cap = 1.0;
        let fs: Vec<Finding> = (0..3)
            .map(|i| {
                f(
                    DetectorId::PolicyDrift,
                    Severity::Medium,
                    0.5,
                    &format!("m{i}"),
                )
            })
            .collect();
        let refs: Vec<&Finding> = fs.iter().collect();
        let e = evaluate(&c, &refs);
        assert_eq!(e.total_score, 1.0);
        assert_eq!(e.decision, Decision::Challenge);
    }

    #[test]
    fn flood_blocks() {
        let mut c = cfg();
        c.max_findings_per_detector = 2;
        let fs: Vec<Finding> = (0..3)
            .map(|i| f(DetectorId::Pii, Severity::Low, 0.0, &format!("m{i}")))
            .collect();
        let refs: Vec<&Finding> = fs.iter().collect();
        let e = evaluate(&c, &refs);
        assert_eq!(e.decision, Decision::Block);
        assert!(e.reasons.iter().any(|r| r.contains("flood")));
    }
}
