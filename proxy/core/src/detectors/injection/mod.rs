//! Prompt injection and policy drift.
//!
//! Phrases are matched as *families* (for example: an override verb, then a
//! quantifier or "previous", then an instruction noun) over the normalized
//! text, in English and the major languages of the corpus; the phrase lists
//! live in `policies/rules/injection.toml`. On top of the families:
//! * compact signatures catch splitting the word matcher cannot undo and
//!   reversed or ROT13 text;
//! * markers catch chat-template tokens and fake conversation turns;
//! * decoded payloads (base64, hex, URL, escapes …) are scanned like text;
//! * a phrase that only matched after undoing a disguise (look-alikes,
//!   invisibles, leetspeak, splitting, encoding) adds an obfuscation
//!   finding: benign text does not hide its words.
//!
//! Text that arrives in a tool result is judged as indirect injection: the
//! user did not write it, so families carry a separate (usually higher)
//! indirect score, and some families (instructions addressed to the model,
//! answer dictation) only apply there.

pub mod classifier;
mod context;
mod learned;
pub mod matcher;
mod named;
pub mod overrides;
pub mod phrases;
pub mod quoted;
pub mod reference;
pub mod second_stage;
pub mod stray;

use super::{excerpt, ScanContext};
use crate::normalize::{confusables, Normalized};
use crate::sources::{text_or, RuleSources};
use crate::subject::Surface;
use crate::types::{DetectorId, Finding, Severity};
use classifier::{Classifier, ClassifierConfig};
use matcher::{longest_repetition, FamilyMatch, Hits};
use overrides::{Override, Overrides};
use phrases::{PhraseBook, Rule, SignatureForm, EMBEDDED_PHRASES};
use regex::Regex;
use second_stage::{SecondStageConfig, Stage};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::ops::Range;

/// Operator settings from the profile's `[injection]` section.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct InjectionConfig {
    /// Phrase book, relative to the profile's folder. Unset: embedded.
    pub rules_file: Option<String>,
    /// Additional regexes (matched on folded, lower-case text).
    pub extra_patterns: Vec<String>,
    /// Score added to findings inside tool results when a family has no
    /// indirect score of its own.
    pub indirect_bonus: Option<f64>,
    /// Family and marker ids to switch off.
    pub disabled: Vec<String>,
    /// The learned classifier (`[injection.classifier]`).
    pub classifier: ClassifierConfig,
    /// The optional transformer second opinion (`[injection.second_stage]`).
    pub second_stage: SecondStageConfig,
    /// Severity and score of findings per profile (`[injection.overrides]`).
    pub overrides: BTreeMap<String, Override>,
}

/// A token repeated back to back this many times is a repeated-token
/// attack (or at least noise meant to push instructions out of context).
const REPETITION_THRESHOLD: usize = 24;

pub struct InjectionDetector {
    book: PhraseBook,
    extra: Vec<Regex>,
    indirect_bonus: f64,
    disabled: Vec<String>,
    overrides: Overrides,
    classifier: Option<Classifier>,
    second: Option<Stage>,
    /// Digest of the phrase book and model: part of the policy version, so
    /// editing either is a new version the reload swaps in.
    fingerprint: String,
    /// What the context families ask of the phrase book (see `context`).
    context: context::Lookup,
}

impl std::fmt::Debug for InjectionDetector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InjectionDetector")
            .field("book", &self.book)
            .finish()
    }
}

/// What a disguised match looked like in the original text.
fn disguise(original: &str, in_joined: bool) -> Option<&'static str> {
    if in_joined {
        return Some("split");
    }
    if original.chars().any(confusables::is_invisible) {
        return Some("invisible");
    }
    // Look-alikes from other scripts inside a Latin word. Latin letters of
    // other alphabets (Turkish dotless ı) are spelling, not disguise.
    let foreign_lookalike = |c: char| c as u32 >= 0x0370 && confusables::confusable(c).is_some();
    let mixed_script = original
        .split_whitespace()
        .any(|w| w.chars().any(|c| c.is_ascii_alphabetic()) && w.chars().any(foreign_lookalike));
    if mixed_script {
        return Some("homoglyph");
    }
    if original.chars().any(|c| {
        !c.is_ascii()
            && (('\u{FF01}'..='\u{FF5E}').contains(&c) || ('\u{1D400}'..='\u{1D7FF}').contains(&c))
    }) {
        return Some("width");
    }
    let leet = original.split_whitespace().any(|w| {
        w.chars().filter(|c| c.is_ascii_alphabetic()).count() >= 2
            && w.chars()
                .any(|c| c.is_ascii_digit() || c == '@' || c == '$')
    });
    if leet {
        return Some("leet");
    }
    None
}

/// One scanned text: the original, its normalized view, and how findings
/// map back to it.
struct Source<'t> {
    original: &'t str,
    norm: &'t Normalized,
    /// Span of the original text to report for every finding (the encoded
    /// token for decoded payloads); `None` = map each match.
    fixed_span: Option<Range<usize>>,
    encoding: Option<&'static str>,
    /// Harness-attached context (`TextPart::attached`): the phrase rules
    /// score it with their plain severities, not the ones for data.
    attached: bool,
    /// A document quoted in a prompt (`quoted`): judged as data, reported
    /// on the prompt.
    quoted: Option<Quoted<'t>>,
}

/// Where a quoted document stands in its prompt, and its fold map, built
/// on the first match that needs a span.
#[derive(Clone, Copy)]
struct Quoted<'t> {
    at: usize,
    map: &'t std::cell::OnceCell<crate::normalize::Folded>,
}

impl InjectionDetector {
    pub fn new(cfg: &InjectionConfig, sources: Option<&dyn RuleSources>) -> Result<Self, String> {
        let text = text_or(
            sources,
            cfg.rules_file.as_ref(),
            "injection.rules_file",
            EMBEDDED_PHRASES,
        )?;
        let book = PhraseBook::from_toml(&text)?;
        let classifier = Classifier::load(&cfg.classifier, sources)?;
        let second = Stage::load(&cfg.second_stage, sources)?;
        if second.is_some() && classifier.is_none() {
            return Err(
                "injection.second_stage: needs [injection.classifier] enabled (it \
                        judges what the fast classifier is unsure about)"
                    .into(),
            );
        }
        let overrides = Overrides::compile(&cfg.overrides)?;
        let fingerprint = {
            use sha2::{Digest, Sha256};
            let mut h = Sha256::new();
            h.update(text.as_bytes());
            h.update(overrides.digest_input().as_bytes());
            if let Some(c) = &classifier {
                h.update(c.model().version.as_bytes());
            }
            if let Some(s) = &second {
                h.update(s.model.version().as_bytes());
            }
            hex::encode(h.finalize())
        };
        let extra = cfg
            .extra_patterns
            .iter()
            .map(|p| Regex::new(p).map_err(|e| format!("injection.extra_patterns: {e}")))
            .collect::<Result<_, _>>()?;
        Ok(InjectionDetector {
            context: context::Lookup::of(&book),
            book,
            extra,
            indirect_bonus: cfg.indirect_bonus.unwrap_or(0.1),
            disabled: cfg.disabled.clone(),
            overrides,
            classifier,
            second,
            fingerprint,
        })
    }

    /// Replace the second stage (tests and embedders with a model of their
    /// own; policies configure it through `[injection.second_stage]`).
    pub fn with_second_stage(mut self, stage: Option<Stage>) -> Self {
        self.second = stage;
        self
    }

    /// Digest of the data this detector was built from (phrase book, model).
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    pub fn classifier(&self) -> Option<&Classifier> {
        self.classifier.as_ref()
    }

    pub fn book(&self) -> &PhraseBook {
        &self.book
    }

    /// Scan every text part the families apply to. `injection` and `drift`
    /// are the profile's detector switches.
    pub fn inspect(
        &self,
        cx: &ScanContext<'_>,
        injection: bool,
        drift: bool,
        out: &mut Vec<Finding>,
    ) {
        let mut budget = self.classifier_budget();
        for i in 0..cx.subject.texts.len() {
            self.inspect_part(cx, i, injection, drift, &mut budget, out);
        }
    }

    /// Bytes the learned stage may score per inspection.
    pub fn classifier_budget(&self) -> usize {
        self.classifier.as_ref().map_or(0, |c| c.max_bytes)
    }

    /// The same text always gives the same findings (no second stage,
    /// whose answer may time out or fail open), so they may be remembered.
    pub fn deterministic(&self) -> bool {
        self.second.is_none()
    }

    /// The findings of text part `i`, appended in order; `budget` is what
    /// is left of the learned stage's bytes for this inspection.
    pub fn inspect_part(
        &self,
        cx: &ScanContext<'_>,
        i: usize,
        injection: bool,
        drift: bool,
        budget: &mut usize,
        out: &mut Vec<Finding>,
    ) {
        let start = out.len();
        self.find_in_part(cx, i, injection, drift, budget, out);
        // Harness-attached context keeps its plain scores here too (see
        // `scoring`): the profile's weights are for what the user, the
        // model and the tools wrote.
        if !cx.subject.texts[i].attached {
            self.overrides.apply(&mut out[start..]);
        }
    }

    /// The findings of text part `i` with the scores they are built with.
    fn find_in_part(
        &self,
        cx: &ScanContext<'_>,
        i: usize,
        injection: bool,
        drift: bool,
        budget: &mut usize,
        out: &mut Vec<Finding>,
    ) {
        if !injection && !drift {
            return;
        }
        let wanted = |r: &Rule| match r.detector {
            DetectorId::PolicyDrift => drift,
            _ => injection,
        } && !self.disabled.contains(&r.id);
        let part = &cx.subject.texts[i];
        if part.surface == Surface::System {
            return;
        }
        let surface = part.surface;
        let start = out.len();
        let norm = cx.normalized(i);
        let src = Source {
            original: &part.text,
            norm,
            fixed_span: None,
            encoding: None,
            attached: part.attached,
            quoted: None,
        };
        let mut disguised: Option<&'static str> = None;
        self.scan(cx, i, &src, surface, &wanted, &mut disguised, out);

        let decoding = cx.decoded(i);
        let mut decoded_norms = Vec::with_capacity(decoding.items.len());
        for d in &decoding.items {
            let dn = Normalized::of(&d.text);
            let dsrc = Source {
                original: &d.text,
                norm: &dn,
                fixed_span: Some(d.span.clone()),
                encoding: Some(d.encoding.as_str()),
                attached: part.attached,
                quoted: None,
            };
            let before = out.len();
            let mut ignored = None;
            self.scan(cx, i, &dsrc, surface, &wanted, &mut ignored, out);
            if out.len() > before && disguised.is_none() {
                disguised = Some("encoded");
            }
            decoded_norms.push(dn);
        }
        // A document quoted in a prompt, found once for the rules and the
        // learned stage: its range in the folded text and in the original.
        let quoted = (surface == Surface::User && !part.attached)
            .then(|| quoted::document_span(&cx.normalized(i).folded))
            .flatten()
            .map(|folded| (cx.original_span(i, folded.clone()), folded));
        if let Some((span, _)) = &quoted {
            self.scan_quoted(cx, i, span.clone(), &wanted, out);
        }
        if injection {
            // Harness-attached context is for the rules only (see
            // `TextPart::attached`).
            // So is reference documentation returned by a tool (see `reference`).
            let learned =
                !part.attached && !self.disabled.iter().any(|d| d.starts_with("pi.classifier"));
            // Asked once: both stages below skip reference documentation.
            let reference =
                surface == Surface::ToolResult && reference::is_reference_documentation(&part.text);
            if learned && !reference {
                self.classify(cx, i, surface, budget, out);
                for (d, dn) in decoding.items.iter().zip(&decoded_norms) {
                    let enc = d.encoding.as_str();
                    let span = d.span.clone();
                    if self.classify_decoded(surface, &dn.folded, span, enc, budget, out) {
                        disguised.get_or_insert("encoded");
                    }
                }
            }
            // Requests for the assistant planted in data.
            if surface == Surface::ToolResult && !part.attached && !reference {
                self.strays(&part.text, 0, false, out);
            }
            if let Some((span, _)) = &quoted {
                self.strays(&part.text[span.clone()], span.start, true, out);
            }
            // A document quoted in a prompt is judged as data, apart from
            // the request around it.
            if let Some((_, folded)) = quoted.filter(|_| learned) {
                self.classify_quoted(cx, i, folded, budget, out);
            }
            // What the decoder and the normaliser could not follow.
            let limits = [
                (
                    decoding.depth_exceeded,
                    "pi.obfuscation.deep_encoding",
                    "Payload nested in more encoding layers than the decoder follows",
                    Severity::High,
                    0.7,
                    "decode",
                ),
                (
                    decoding.budget_exhausted,
                    "pi.limits.decode_budget",
                    "Encoded content beyond the decoding budget was not inspected",
                    Severity::Low,
                    0.1,
                    "decode",
                ),
                (
                    norm.truncated,
                    "pi.limits.truncated",
                    "Text beyond the normalization limit was not inspected",
                    Severity::Medium,
                    0.3,
                    "limits",
                ),
            ];
            for (hit, id, message, severity, score, method) in limits {
                if hit {
                    out.push(
                        self.finding_plain(id, message, severity, score, surface)
                            .meta("method", method),
                    );
                }
            }
            let (run, tok) = longest_repetition(&norm.folded);
            if run >= REPETITION_THRESHOLD && tok.chars().count() >= 2 {
                out.push(
                    self.finding_plain(
                        "pi.smuggling.repeated_token",
                        "Token repeated to flood the context",
                        Severity::Low,
                        0.3,
                        surface,
                    )
                    .meta("method", "repetition")
                    .meta("repetitions", run.to_string()),
                );
            }
            if let Some(kind) = disguised {
                let any_attack = out[start..]
                    .iter()
                    .any(|f| f.severity >= Severity::Medium && !f.rule_id.starts_with("pi.limits"));
                if any_attack {
                    out.push(
                        self.finding_plain(
                            &format!("pi.obfuscation.{kind}"),
                            "Instructions disguised to evade detection",
                            Severity::High,
                            0.7,
                            surface,
                        )
                        .with_evidence(kind)
                        .meta("method", "obfuscation")
                        .meta("obfuscation", kind),
                    );
                }
            }
        }
    }

    /// The rules on a document quoted in a prompt, as on a tool result:
    /// instructions planted in it are indirect injection even where the
    /// same words would be the user's own request.
    fn scan_quoted(
        &self,
        cx: &ScanContext<'_>,
        part: usize,
        span: Range<usize>,
        wanted: &dyn Fn(&Rule) -> bool,
        out: &mut Vec<Finding>,
    ) {
        let original = &cx.subject.texts[part].text[span.clone()];
        let norm = Normalized::of(original);
        let map = std::cell::OnceCell::new();
        let src = Source {
            original,
            norm: &norm,
            fixed_span: None,
            encoding: None,
            attached: false,
            quoted: Some(Quoted {
                at: span.start,
                map: &map,
            }),
        };
        let mut ignored = None;
        self.scan(
            cx,
            part,
            &src,
            Surface::ToolResult,
            wanted,
            &mut ignored,
            out,
        );
    }

    #[allow(clippy::too_many_arguments)]
    fn scan(
        &self,
        cx: &ScanContext<'_>,
        part: usize,
        src: &Source<'_>,
        surface: Surface,
        wanted: &dyn Fn(&Rule) -> bool,
        disguised: &mut Option<&'static str>,
        out: &mut Vec<Finding>,
    ) {
        let book = &self.book;
        let folded = src.norm.folded.as_str();
        let mut reported: Vec<usize> = Vec::new();
        let hits = Hits::find(book, src.norm);
        if !hits.is_empty() {
            for (fi, family) in book.families.iter().enumerate() {
                if family.context.is_some()
                    || !family.rule.applies_to(surface)
                    || !wanted(&family.rule)
                {
                    continue;
                }
                let Some(m) = hits.family(family, fi) else {
                    continue;
                };
                reported.push(fi);
                let (span, kind) = self.locate(cx, part, src, &m);
                if kind.is_some() && disguised.is_none() && family.rule.severity >= Severity::Medium
                {
                    *disguised = kind;
                }
                let evidence = m
                    .parts
                    .iter()
                    .map(|r| excerpt(&folded[r.clone()]))
                    .collect::<Vec<_>>()
                    .join(" … ");
                out.push(
                    self.finding(&family.rule, surface, src, evidence, span, "phrase")
                        .meta_opt("obfuscation", kind),
                );
            }
        }
        // Compact signatures: what splitting or reversal hid from the
        // phrase matcher.
        for m in book.signatures.find_iter(&src.norm.compact) {
            let (fi, form, words) = book.signature_info[m.pattern().as_usize()];
            let rule = &book.families[fi].rule;
            if reported.contains(&fi) || !rule.applies_to(surface) || !wanted(rule) {
                continue;
            }
            // Written as plain words: the phrase matcher saw it and decided.
            if form == SignatureForm::Plain
                && book.signature_words[words]
                    .iter()
                    .all(|w| has_word(folded, w))
            {
                continue;
            }
            reported.push(fi);
            let kind = match form {
                SignatureForm::Plain => "split",
                SignatureForm::Reversed => "reversed",
                SignatureForm::Rot13 => "rot13",
            };
            if disguised.is_none() {
                *disguised = Some(kind);
            }
            let span = src.fixed_span.clone();
            out.push(
                self.finding(
                    rule,
                    surface,
                    src,
                    excerpt(&src.norm.compact[m.range()]),
                    span,
                    "signature",
                )
                .meta("obfuscation", kind),
            );
        }
        for idx in book.marker_set.matches(src.original).iter() {
            let marker = &book.markers[idx];
            if !marker.rule.applies_to(surface) || !wanted(&marker.rule) {
                continue;
            }
            let found = marker.regex.find(src.original);
            let at = src.quoted.map_or(0, |q| q.at);
            let span = src
                .fixed_span
                .clone()
                .or_else(|| found.map(|m| m.start() + at..m.end() + at));
            let evidence = found.map(|m| excerpt(m.as_str())).unwrap_or_default();
            out.push(self.finding(&marker.rule, surface, src, evidence, span, "marker"));
        }
        if wanted_custom(&self.disabled) {
            for re in &self.extra {
                if let Some(m) = re.find(folded) {
                    let rule = Rule::custom();
                    out.push(self.finding(
                        &rule,
                        surface,
                        src,
                        excerpt(m.as_str()),
                        src.fixed_span.clone(),
                        "custom",
                    ));
                }
            }
        }
    }

    /// The original span of a family match and how it was disguised.
    fn locate(
        &self,
        cx: &ScanContext<'_>,
        part: usize,
        src: &Source<'_>,
        m: &FamilyMatch,
    ) -> (Option<Range<usize>>, Option<&'static str>) {
        if let Some(span) = &src.fixed_span {
            return (Some(span.clone()), None);
        }
        let span = match src.quoted {
            Some(q) => {
                let map = q
                    .map
                    .get_or_init(|| crate::normalize::fold_mapped(src.original));
                let r = crate::normalize::original_range(src.original, map, m.range.clone());
                r.start + q.at..r.end + q.at
            }
            None => cx.original_span(part, m.range.clone()),
        };
        let in_joined = src
            .norm
            .joined
            .iter()
            .any(|j| j.start < m.range.end && m.range.start < j.end);
        let at = src.quoted.map_or(0, |q| q.at);
        let kind = disguise(&src.original[span.start - at..span.end - at], in_joined);
        (Some(span), kind)
    }

    fn finding(
        &self,
        rule: &Rule,
        surface: Surface,
        src: &Source<'_>,
        evidence: String,
        span: Option<Range<usize>>,
        method: &str,
    ) -> Finding {
        let (severity, score) = self.scoring(rule, surface, src.attached);
        let (message, surface) = if src.quoted.is_some() {
            (
                format!(
                    "Indirect injection in a document quoted in the prompt: {}",
                    rule.message
                ),
                Surface::User,
            )
        } else if surface == Surface::ToolResult {
            (
                format!("Indirect injection in tool result: {}", rule.message),
                surface,
            )
        } else {
            (rule.message.clone(), surface)
        };
        let category = match rule.detector {
            DetectorId::PolicyDrift => "policy_drift",
            _ => "prompt_injection",
        };
        let evidence = match src.encoding {
            Some(enc) => format!("[{enc}] {evidence}"),
            None => evidence,
        };
        let mut f = Finding::new(
            rule.id.clone(),
            rule.detector,
            category,
            severity,
            score,
            message,
        )
        .at(surface.as_str())
        .with_evidence(evidence)
        .meta("method", method);
        if let Some(span) = span {
            f = f.meta("span", format!("{}..{}", span.start, span.end));
        }
        if let Some(enc) = src.encoding {
            f = f.meta("encoding", enc);
        }
        f
    }

    fn finding_plain(
        &self,
        id: &str,
        message: &str,
        severity: Severity,
        score: f64,
        surface: Surface,
    ) -> Finding {
        Finding::new(
            id,
            DetectorId::PromptInjection,
            "prompt_injection",
            severity,
            score,
            message,
        )
        .at(surface.as_str())
    }

    /// A rule's severity and score on a surface. Data (a tool result) gets
    /// the stricter ones: instructions have no business there. Context a
    /// harness attaches to the user's turn is instructions to the assistant
    /// by design (Claude Code's own reminders say "do not mention this to the
    /// user"), so its phrase findings keep their plain severities.
    fn scoring(&self, rule: &Rule, surface: Surface, attached: bool) -> (Severity, f64) {
        if surface == Surface::ToolResult && !attached {
            rule.indirect
                .unwrap_or((rule.severity, rule.score + self.indirect_bonus))
        } else {
            (rule.severity, rule.score)
        }
    }
}

/// `word` occurs in `text` as a whole word.
fn has_word(text: &str, word: &str) -> bool {
    text.match_indices(word).any(|(i, _)| {
        let before = text[..i].chars().next_back();
        let after = text[i + word.len()..].chars().next();
        !before.is_some_and(char::is_alphanumeric) && !after.is_some_and(char::is_alphanumeric)
    })
}

fn wanted_custom(disabled: &[String]) -> bool {
    !disabled.iter().any(|d| d == "pi.custom.pattern")
}

trait MetaOpt {
    fn meta_opt(self, key: &str, value: Option<&str>) -> Self;
}

impl MetaOpt for Finding {
    fn meta_opt(self, key: &str, value: Option<&str>) -> Self {
        match value {
            Some(v) => self.meta(key, v),
            None => self,
        }
    }
}

#[cfg(test)]
mod context_tests;
#[cfg(test)]
mod tests;

#[cfg(test)]
mod lang_tests;

#[cfg(test)]
mod lang_hard_tests;

#[cfg(test)]
mod second_stage_tests;

#[cfg(test)]
mod dictation_tests;

#[cfg(test)]
mod quoted_tests;
