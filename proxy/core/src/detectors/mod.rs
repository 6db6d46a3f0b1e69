//! Detectors: each looks at a [`Subject`] and appends [`Finding`]s.
//!
//! Detectors are compiled once per policy (automata, regexes) and are
//! immutable afterwards, so a request only pays for scanning. Text is
//! normalized once per part and shared by all detectors via [`ScanContext`].

pub mod chains;
pub mod injection;
pub mod memo;
#[cfg(test)]
mod memo_tests;
pub mod pii;
pub mod secrets;
pub mod shell;
pub mod tools;

use crate::normalize::{self, Decoding, Folded, Normalized};
use crate::sources::RuleSources;
use crate::subject::{Subject, Surface};
use crate::types::Finding;
use serde::Deserialize;
use std::ops::Range;
use std::sync::{Arc, OnceLock};

/// Per-inspection scratch: the subject plus lazily computed views of each
/// text part (normalized, offset map, decoded payloads), shared by all
/// detectors so each is computed at most once.
pub struct ScanContext<'a> {
    pub subject: &'a Subject,
    normalized: Vec<OnceLock<Normalized>>,
    mapped: Vec<OnceLock<Folded>>,
    decoded: Vec<OnceLock<Decoding>>,
}

impl<'a> ScanContext<'a> {
    pub fn new(subject: &'a Subject) -> Self {
        let n = subject.texts.len();
        ScanContext {
            subject,
            normalized: (0..n).map(|_| OnceLock::new()).collect(),
            mapped: (0..n).map(|_| OnceLock::new()).collect(),
            decoded: (0..n).map(|_| OnceLock::new()).collect(),
        }
    }

    /// Normalized view of text part `i`, computed on first use. Without
    /// an offset map: most texts have no findings, and the unmapped fold
    /// takes the ASCII fast path; a finding asks for the map once
    /// ([`Self::original_span`]).
    pub fn normalized(&self, i: usize) -> &Normalized {
        self.normalized[i].get_or_init(|| Normalized::of(&self.subject.texts[i].text))
    }

    /// Encoded payloads of text part `i`, decoded (recursively, bounded).
    pub fn decoded(&self, i: usize) -> &Decoding {
        self.decoded[i].get_or_init(|| {
            normalize::decode_all(&self.subject.texts[i].text, &normalize::Limits::default())
        })
    }

    /// The byte range of text part `i` that produced `folded` of its
    /// normalized view. The offset map is built on first use only.
    pub fn original_span(&self, i: usize, folded: Range<usize>) -> Range<usize> {
        let text = &self.subject.texts[i].text;
        let mapped = self.mapped[i].get_or_init(|| normalize::fold_mapped(text));
        normalize::original_range(text, mapped, folded)
    }

    /// Indexes of text parts from the given surfaces.
    pub fn parts<'s>(&'s self, surfaces: &'s [Surface]) -> impl Iterator<Item = usize> + 's {
        self.subject
            .texts
            .iter()
            .enumerate()
            .filter(move |(_, t)| surfaces.contains(&t.surface))
            .map(|(i, _)| i)
    }
}

/// The `[detectors]` policy section: which detectors run.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DetectorToggles {
    pub prompt_injection: bool,
    pub secret_leakage: bool,
    pub pii: bool,
    pub tool_abuse: bool,
    pub policy_drift: bool,
    pub unsafe_action_chain: bool,
}

impl Default for DetectorToggles {
    fn default() -> Self {
        DetectorToggles {
            prompt_injection: true,
            secret_leakage: true,
            pii: true,
            tool_abuse: true,
            policy_drift: true,
            unsafe_action_chain: true,
        }
    }
}

/// The profile sections the detectors compile from. The detectors take
/// their own sections, not the whole profile, so they do not depend on the
/// policy module that depends on them.
pub struct DetectorConfigs<'a> {
    pub toggles: &'a DetectorToggles,
    pub injection: &'a injection::InjectionConfig,
    pub secrets: &'a secrets::SecretsConfig,
    pub pii: &'a pii::PiiToggles,
    pub tools: &'a tools::ToolsConfig,
    pub egress: &'a tools::EgressConfig,
    pub chains: &'a Option<Vec<chains::ChainRule>>,
}

/// All detectors of one policy, compiled.
pub struct Detectors {
    toggles: DetectorToggles,
    pub injection: injection::InjectionDetector,
    pub secrets: Arc<secrets::SecretScanner>,
    pub pii: Arc<pii::PiiScanner>,
    pub tools: tools::ToolDetector,
    pub chains: chains::ChainDetector,
    /// Findings of text parts judged before under this policy (see
    /// [`memo`]); none when a part's findings may differ between runs.
    memo: Option<memo::Memo>,
}

impl Detectors {
    pub fn compile(
        cfg: &DetectorConfigs<'_>,
        sources: Option<&dyn RuleSources>,
    ) -> Result<Self, String> {
        let injection = injection::InjectionDetector::new(cfg.injection, sources)?;
        Ok(Detectors {
            toggles: cfg.toggles.clone(),
            memo: injection.deterministic().then(memo::Memo::default),
            injection,
            secrets: Arc::new(secrets::SecretScanner::load(cfg.secrets, sources)?),
            pii: Arc::new(pii::PiiScanner::new(cfg.pii)),
            tools: tools::ToolDetector::load(cfg.tools, cfg.egress, sources)?,
            chains: chains::ChainDetector::new(cfg.chains)?,
        })
    }

    /// Run every enabled detector in a fixed order (findings keep it): injection,
    /// secrets, PII, tool abuse, policy drift, then chains. `history` holds
    /// the chain steps that came before this subject (earlier calls in the
    /// same response, or the session's past), so chains span them.
    pub fn run(&self, subject: &Subject, history: &[Vec<String>]) -> Vec<Finding> {
        let cx = ScanContext::new(subject);
        let mut out = self.text_findings(&cx);
        if self.toggles.prompt_injection {
            self.injection.context_findings(&cx, &mut out);
        }
        if self.toggles.secret_leakage {
            self.secrets.inspect_calls(&cx, &mut out);
        }
        if self.toggles.pii {
            self.pii.inspect_calls(&cx, &mut out);
        }
        // Each call is analyzed once, for its findings and its chain tags.
        let analyses: Vec<tools::analyze::Analysis> =
            if self.toggles.tool_abuse || self.toggles.unsafe_action_chain {
                subject
                    .tool_calls
                    .iter()
                    .map(|c| self.tools.analyze(c))
                    .collect()
            } else {
                Vec::new()
            };
        if self.toggles.tool_abuse {
            self.tools.inspect_with(&cx, &analyses, &mut out);
        }
        if self.toggles.unsafe_action_chain {
            let mut steps = history.to_vec();
            steps.extend(self.steps_with(subject, &analyses));
            out.extend(self.chains.evaluate(&steps, history.len()));
        }
        for f in &mut out {
            if let Some(e) = f.evidence.take() {
                f.evidence = Some(self.mask_evidence(&e));
            }
        }
        out
    }

    /// The values of the passwords and keys `subject`'s system prompts keep
    /// (see `injection::context`); empty when prompt-injection detection is
    /// off.
    pub fn kept_secrets(&self, subject: &Subject) -> Vec<String> {
        if !self.toggles.prompt_injection
            || !subject.texts.iter().any(|t| t.surface == Surface::System)
        {
            return Vec::new();
        }
        self.injection.protected(&ScanContext::new(subject)).values
    }

    /// The findings of the text detectors, part by part, in the order of
    /// a whole-subject run: injection for every part, then secrets, then
    /// personal data. Parts judged before come from the memo.
    fn text_findings(&self, cx: &ScanContext<'_>) -> Vec<Finding> {
        let (mut injection, mut secrets, mut pii) = (Vec::new(), Vec::new(), Vec::new());
        let mut budget = self.injection.classifier_budget();
        let memo = self.memo.as_ref().zip(cx.subject.memo_scope);
        for (i, part) in cx.subject.texts.iter().enumerate() {
            let key = memo.map(|(m, scope)| {
                let tag = memo::part_tag(part, scope);
                (m, tag, m.key(tag, &part.text))
            });
            if let Some((m, tag, k)) = key {
                if let Some(hit) = m.get(k, tag, &part.text).filter(|f| f.classified <= budget) {
                    budget -= hit.classified;
                    injection.extend(hit.injection);
                    secrets.extend(hit.secrets);
                    pii.extend(hit.pii);
                    continue;
                }
            }
            let mut found = memo::PartFindings::default();
            let before = budget;
            self.injection.inspect_part(
                cx,
                i,
                self.toggles.prompt_injection,
                self.toggles.policy_drift,
                &mut budget,
                &mut found.injection,
            );
            found.classified = before - budget;
            if self.toggles.secret_leakage {
                self.secrets.inspect_part(cx, i, &mut found.secrets);
            }
            if self.toggles.pii {
                self.pii.inspect_part(part, &mut found.pii);
            }
            injection.extend_from_slice(&found.injection);
            secrets.extend_from_slice(&found.secrets);
            pii.extend_from_slice(&found.pii);
            // A part the budget cut was judged by what was left of it, not
            // by its text alone.
            let whole = !found
                .injection
                .iter()
                .any(|f| f.rule_id == "pi.limits.classifier_budget");
            if let Some((m, tag, k)) = key.filter(|_| whole) {
                m.put(k, tag, &part.text, found);
            }
        }
        injection.append(&mut secrets);
        injection.append(&mut pii);
        injection
    }

    /// Lookups of the memo that found a part judged before, and those that
    /// did not (zeros when this policy does not remember).
    pub fn memo_stats(&self) -> (u64, u64) {
        self.memo.as_ref().map_or((0, 0), memo::Memo::stats)
    }

    /// Evidence is shown in API answers, audit and the console: mask any
    /// secret, personal data or random-looking token in it, then cut it to
    /// a short excerpt (masking first, so a cut never leaves half a key).
    pub fn mask_evidence(&self, evidence: &str) -> String {
        let text = normalize::truncate_at_char_boundary(evidence, 4096);
        let mut spans: Vec<(usize, usize, String)> = Vec::new();
        for m in self.secrets.find_all(text) {
            spans.push((m.start, m.end, self.secrets.rule(m.rule).kind.clone()));
        }
        for m in self.pii.find(text) {
            spans.push((m.start, m.end, m.kind.to_string()));
        }
        for (start, end) in random_tokens(text) {
            spans.push((start, end, "high_entropy".to_string()));
        }
        spans.sort_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
        let mut out = String::with_capacity(text.len());
        let mut pos = 0;
        for (start, end, kind) in spans {
            if start < pos {
                continue;
            }
            out.push_str(&text[pos..start]);
            out.push_str("[REDACTED:");
            out.push_str(&kind);
            out.push(']');
            pos = end;
        }
        out.push_str(&text[pos..]);
        short_excerpt(&out, 120)
    }

    /// The chain steps of a subject: memory reads first (the decision
    /// API's `memory_reads` field), then one step per tool call.
    pub fn steps(&self, subject: &Subject) -> Vec<Vec<String>> {
        let analyses: Vec<tools::analyze::Analysis> = subject
            .tool_calls
            .iter()
            .map(|c| self.tools.analyze(c))
            .collect();
        self.steps_with(subject, &analyses)
    }

    fn steps_with(
        &self,
        subject: &Subject,
        analyses: &[tools::analyze::Analysis],
    ) -> Vec<Vec<String>> {
        let mut steps = Vec::with_capacity(subject.tool_calls.len() + 2);
        if !subject.memory_reads.is_empty() {
            steps.push(vec!["memory_read".to_string()]);
        }
        for (call, a) in subject.tool_calls.iter().zip(analyses) {
            steps.push(self.tools.tags(call, a));
        }
        if !subject.memory_writes.is_empty() {
            steps.push(vec!["memory_write".to_string()]);
        }
        steps
    }

    /// Capability of a tool name under this policy (`shell`, `network` …).
    pub fn capability_of(&self, tool_name: &str) -> Option<&str> {
        self.tools.capability_of(tool_name)
    }
}

/// Every string inside a tool call's arguments (JSON objects and arrays
/// walked depth-first, bounded), as the detectors scan them.
pub fn argument_strings(args: &serde_json::Value) -> Vec<&str> {
    fn walk<'v>(v: &'v serde_json::Value, depth: usize, out: &mut Vec<&'v str>) {
        if depth > 32 || out.len() >= 4096 {
            return;
        }
        match v {
            serde_json::Value::String(s) => out.push(s),
            serde_json::Value::Array(items) => items.iter().for_each(|i| walk(i, depth + 1, out)),
            serde_json::Value::Object(map) => map.values().for_each(|i| walk(i, depth + 1, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(args, 0, &mut out);
    out
}

/// Long runs of letters and digits mixing cases and digits with high
/// entropy: keys no rule knows.
fn random_tokens(text: &str) -> Vec<(usize, usize)> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if !(b[i].is_ascii_alphanumeric() || matches!(b[i], b'_' | b'-' | b'+' | b'/' | b'=')) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len()
            && (b[i].is_ascii_alphanumeric() || matches!(b[i], b'_' | b'-' | b'+' | b'/' | b'='))
        {
            i += 1;
        }
        let tok = &text[start..i];
        if tok.len() >= 20
            && tok.bytes().any(|c| c.is_ascii_uppercase())
            && tok.bytes().any(|c| c.is_ascii_lowercase())
            && tok.bytes().any(|c| c.is_ascii_digit())
            && secrets::shannon_entropy(tok) >= 3.7
        {
            out.push((start, i));
        }
    }
    out
}

/// At most `max` characters, with an ellipsis when cut.
fn short_excerpt(text: &str, max: usize) -> String {
    let mut out: String = text.chars().take(max).collect();
    if text.chars().count() > max {
        out.push('…');
    }
    out
}

/// Short, safe excerpt of matched text for a finding's evidence: at most
/// 60 characters, never the full text.
pub fn excerpt(text: &str) -> String {
    let mut out: String = text.chars().take(60).collect();
    if text.chars().count() > 60 {
        out.push('…');
    }
    out
}
