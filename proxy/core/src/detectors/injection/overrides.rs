//! Per-profile severity and score of injection findings
//! (`[injection.overrides]`). The phrase book, the stray-task finder and
//! the learned stage give every finding one severity and score; a profile
//! weighs some of them differently: `dev` lets challenges through with a
//! warning, so it flags a request planted in a tool result that
//! `production` refuses, where the shared score would let it pass
//! unflagged.
//!
//! ```toml
//! [injection.overrides]
//! "pi" = { scale = 1.6, surfaces = ["tool_result"] }
//! "pi.indirect.stray_task" = { score = 0.9, severity = "high" }
//! "pi.classifier.indirect" = { score = 0.5, surfaces = ["tool_result"], only_severity = "medium" }
//! ```
//!
//! A key is a finding id or a family prefix ending before a dot
//! (`pi.classifier` covers both heads, `pi` every injection finding).

use crate::subject::Surface;
use crate::types::{Finding, Severity};
use serde::Deserialize;
use std::collections::BTreeMap;

const SURFACES: [Surface; 6] = [
    Surface::System,
    Surface::User,
    Surface::Assistant,
    Surface::ToolResult,
    Surface::ToolDefinition,
    Surface::ToolArguments,
];

/// One override: what to change and, optionally, where.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Override {
    /// The finding's score, replaced.
    pub score: Option<f64>,
    /// The finding's score, multiplied (a profile's weight for a surface).
    pub scale: Option<f64>,
    pub severity: Option<Severity>,
    /// Surfaces it applies to (`user`, `tool_result` …); unset: all.
    pub surfaces: Option<Vec<String>>,
    /// Only findings of this severity (a head's medium band, say).
    pub only_severity: Option<Severity>,
}

/// The compiled table, longest key first so a finding id beats its family.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    rules: Vec<(String, Override)>,
}

impl Overrides {
    pub fn compile(table: &BTreeMap<String, Override>) -> Result<Self, String> {
        let mut rules = Vec::with_capacity(table.len());
        for (id, o) in table {
            let at = |what: &str| format!("injection.overrides.\"{id}\": {what}");
            if !(id == "pi" || id.starts_with("pi.")) || id.ends_with('.') {
                return Err(at(
                    "a key is `pi` or a finding id or family prefix starting with `pi.`",
                ));
            }
            if o.score.is_none() && o.scale.is_none() && o.severity.is_none() {
                return Err(at("set `score` or `scale`, `severity`, or both"));
            }
            if o.score.is_some() && o.scale.is_some() {
                return Err(at("set `score` or `scale`, not both"));
            }
            if let Some(s) = o.scale {
                if !(0.0..=4.0).contains(&s) {
                    return Err(at("`scale` must be between 0 and 4"));
                }
            }
            if let Some(s) = o.score {
                if !(0.0..=2.0).contains(&s) {
                    return Err(at("`score` must be between 0 and 2"));
                }
            }
            for s in o.surfaces.iter().flatten() {
                if !SURFACES.iter().any(|k| k.as_str() == s) {
                    return Err(at(&format!(
                        "unknown surface `{s}` (one of system, user, assistant, tool_result, \
                         tool_definition, tool_arguments)"
                    )));
                }
            }
            rules.push((id.clone(), o.clone()));
        }
        rules.sort_by_key(|r| std::cmp::Reverse(r.0.len()));
        Ok(Overrides { rules })
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Apply the first (most specific) matching override to each finding.
    pub fn apply(&self, findings: &mut [Finding]) {
        if self.rules.is_empty() {
            return;
        }
        for f in findings {
            let hit = self.rules.iter().find(|(id, o)| {
                covers(id, &f.rule_id)
                    && o.only_severity.is_none_or(|s| s == f.severity)
                    && o.surfaces.as_ref().is_none_or(|list| {
                        f.location
                            .as_deref()
                            .is_some_and(|l| list.iter().any(|s| s == l))
                    })
            });
            if let Some((_, o)) = hit {
                if let Some(s) = o.score {
                    f.score = s;
                }
                if let Some(k) = o.scale {
                    f.score *= k;
                }
                if let Some(s) = o.severity {
                    f.severity = s;
                }
                f.metadata.insert("override".into(), "profile".into());
            }
        }
    }

    /// A stable rendering for the detector's fingerprint.
    pub fn digest_input(&self) -> String {
        format!("{:?}", self.rules)
    }
}

/// `key` is the id itself or a family prefix of it (ending before a dot).
fn covers(key: &str, id: &str) -> bool {
    id == key || (id.starts_with(key) && id.as_bytes().get(key.len()) == Some(&b'.'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::DetectorId;

    fn finding(id: &str, severity: Severity, score: f64, at: &str) -> Finding {
        Finding::new(
            id,
            DetectorId::PromptInjection,
            "prompt_injection",
            severity,
            score,
            "m",
        )
        .at(at)
    }

    fn table(toml_text: &str) -> Result<Overrides, String> {
        #[derive(Deserialize)]
        struct T {
            overrides: BTreeMap<String, Override>,
        }
        let t: T = toml::from_str(toml_text).map_err(|e| e.to_string())?;
        Overrides::compile(&t.overrides)
    }

    #[test]
    fn the_most_specific_key_wins_and_filters_hold() {
        let o = table(
            "[overrides]\n\"pi.classifier\" = { score = 0.5 }\n\
             \"pi.classifier.indirect\" = { score = 0.9, surfaces = [\"tool_result\"], only_severity = \"medium\" }\n",
        )
        .unwrap();
        let mut f = vec![
            finding(
                "pi.classifier.indirect",
                Severity::Medium,
                0.45,
                "tool_result",
            ),
            finding("pi.classifier.indirect", Severity::High, 0.8, "tool_result"),
            finding("pi.classifier.indirect", Severity::Medium, 0.45, "user"),
            finding("pi.classifier.direct", Severity::Medium, 0.45, "user"),
            finding("pi.classifierx", Severity::Medium, 0.45, "user"),
        ];
        o.apply(&mut f);
        let scores: Vec<f64> = f.iter().map(|f| f.score).collect();
        // The specific key matched the first; the second and third fall
        // through its filters to the family key; a longer word is no family.
        assert_eq!(scores, vec![0.9, 0.5, 0.5, 0.5, 0.45]);
        assert_eq!(
            f[0].metadata.get("override").map(String::as_str),
            Some("profile")
        );
        assert!(!f[4].metadata.contains_key("override"));
    }

    #[test]
    fn a_scale_weighs_every_finding_it_covers() {
        let o = table("[overrides]\npi = { scale = 1.6, surfaces = [\"tool_result\"] }\n").unwrap();
        let mut f = vec![
            finding(
                "pi.indirect.stray_task",
                Severity::Medium,
                0.6,
                "tool_result",
            ),
            finding(
                "pi.classifier.indirect",
                Severity::Medium,
                0.45,
                "tool_result",
            ),
            finding("pi.override.ignore", Severity::High, 0.8, "user"),
        ];
        o.apply(&mut f);
        let scores: Vec<String> = f.iter().map(|f| format!("{:.2}", f.score)).collect();
        assert_eq!(scores, ["0.96", "0.72", "0.80"]);
    }

    #[test]
    fn severity_can_change_alone() {
        let o =
            table("[overrides]\n\"pi.indirect.stray_task\" = { severity = \"high\" }\n").unwrap();
        let mut f = vec![finding(
            "pi.indirect.stray_task",
            Severity::Medium,
            0.6,
            "tool_result",
        )];
        o.apply(&mut f);
        assert_eq!((f[0].severity, f[0].score), (Severity::High, 0.6));
    }

    #[test]
    fn bad_tables_are_refused_with_the_key_named() {
        for (text, needle) in [
            ("[overrides]\n\"pi.x\" = {}\n", "set `score`"),
            (
                "[overrides]\n\"pi.x\" = { score = 1.0, scale = 2.0 }\n",
                "not both",
            ),
            (
                "[overrides]\n\"pi.x\" = { scale = 9.0 }\n",
                "between 0 and 4",
            ),
            (
                "[overrides]\n\"secret.x\" = { score = 1.0 }\n",
                "starting with `pi.`",
            ),
            (
                "[overrides]\n\"pi.x\" = { score = 5.0 }\n",
                "between 0 and 2",
            ),
            (
                "[overrides]\n\"pi.x\" = { score = 1.0, surfaces = [\"tools\"] }\n",
                "unknown surface",
            ),
        ] {
            let e = table(text).unwrap_err();
            assert!(
                e.contains(needle) && (e.contains("pi.x") || e.contains("secret.x")),
                "{e}"
            );
        }
        let e = table("[overrides]\n\"pi.x\" = { score = 1.0, colour = 2 }\n").unwrap_err();
        assert!(e.contains("colour"), "{e}");
    }
}
