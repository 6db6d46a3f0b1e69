//! The learned stage of the injection detector: a classifier head on a
//! text part or on the document quoted in a prompt, and the optional
//! second opinion on the windows the fast stage is unsure about.

use super::classifier::{Band, Classifier, Head, Work};
use super::second_stage::{self, OnError, Stage};
use super::{excerpt, InjectionDetector, ScanContext};
use crate::subject::Surface;
use crate::types::{Finding, Severity};
use std::ops::Range;

impl InjectionDetector {
    /// The learned stage on one text part: at most one finding (the best
    /// window), plus a limits finding when the budget cut the text.
    pub(super) fn classify(
        &self,
        cx: &ScanContext<'_>,
        part: usize,
        surface: Surface,
        budget: &mut usize,
        out: &mut Vec<Finding>,
    ) {
        let Some(c) = &self.classifier else { return };
        let Some(head) = c.head_for(surface) else {
            return;
        };
        let all = 0..cx.normalized(part).folded.len();
        self.classify_range(cx, part, surface, head, all, budget, out);
    }

    /// The indirect head on the document quoted in a prompt (`data`, a
    /// range of the part's folded text).
    pub(super) fn classify_quoted(
        &self,
        cx: &ScanContext<'_>,
        part: usize,
        data: Range<usize>,
        budget: &mut usize,
        out: &mut Vec<Finding>,
    ) {
        let Some(c) = &self.classifier else { return };
        if c.head_for(Surface::User).is_none() {
            return;
        }
        self.classify_range(cx, part, Surface::User, Head::Indirect, data, budget, out);
    }

    /// The learned stage on a payload the decoder recovered (base64, hex
    /// …): what was hidden is judged as if it had been written out, and
    /// reported on the encoded token (`span`). True when it found
    /// something; the caller then reports the disguise.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn classify_decoded(
        &self,
        surface: Surface,
        folded: &str,
        span: Range<usize>,
        encoding: &'static str,
        budget: &mut usize,
        out: &mut Vec<Finding>,
    ) -> bool {
        let Some(c) = &self.classifier else {
            return false;
        };
        let Some(head) = c.head_for(surface) else {
            return false;
        };
        let mut work = Work::default();
        let (Some(s), _) = c.judge(head, folded, budget, &mut work) else {
            return false;
        };
        let p = s.probability();
        let Some((severity, score)) = banded(c, p, c.band(head)) else {
            return false;
        };
        let (id, message) = match head {
            Head::Direct => (
                "pi.classifier.direct",
                "Learned classifier: encoded text reads as a prompt injection",
            ),
            Head::Indirect => (
                "pi.classifier.indirect",
                "Indirect injection in tool result: learned classifier found instructions \
                 addressed to the assistant in encoded text",
            ),
        };
        out.push(
            self.finding_plain(id, message, severity, score, surface)
                .with_evidence(format!(
                    "[{encoding}] {}",
                    excerpt(folded[s.piece.clone()].trim())
                ))
                .meta("method", "classifier")
                .meta("head", head.as_str())
                .meta("encoding", encoding)
                .meta("probability", format!("{p:.4}"))
                .meta("model", c.model().version.clone())
                .meta("span", format!("{}..{}", span.start, span.end)),
        );
        true
    }

    /// One head on `range` of a part's folded text: at most one finding
    /// (the best window), plus a limits finding when the budget cut it.
    #[allow(clippy::too_many_arguments)]
    fn classify_range(
        &self,
        cx: &ScanContext<'_>,
        part: usize,
        surface: Surface,
        head: Head,
        range: Range<usize>,
        budget: &mut usize,
        out: &mut Vec<Finding>,
    ) {
        let Some(c) = &self.classifier else { return };
        let at = range.start;
        let folded = &cx.normalized(part).folded[range];
        let mut work = Work::default();
        let (scored, skipped) = c.judge(head, folded, budget, &mut work);
        if skipped {
            out.push(
                self.finding_plain(
                    "pi.limits.classifier_budget",
                    "Text beyond the classifier budget was scored by its start and end only",
                    Severity::Low,
                    0.1,
                    surface,
                )
                .meta("method", "limits"),
            );
        }
        let Some(s) = scored else { return };
        let window = s.window.start + at..s.window.end + at;
        let p = s.probability();
        let band = c.band(head);
        if let Some(stage) = self.second.as_ref().filter(|st| st.unsure(p, band.high)) {
            let span = cx.original_span(part, window.clone());
            let text = &cx.subject.texts[part].text[span.clone()];
            if let Some(f) = self.second_opinion(stage, c, head, surface, text, p, span) {
                out.push(f);
            }
        }
        let Some((severity, score)) = banded(c, p, band) else {
            return;
        };
        let (id, message) = match head {
            Head::Direct => (
                "pi.classifier.direct",
                "Learned classifier: text reads as a prompt injection",
            ),
            Head::Indirect if surface == Surface::User => (
                "pi.classifier.indirect",
                "Indirect injection in a document quoted in the prompt: learned classifier \
                 found instructions addressed to the assistant",
            ),
            Head::Indirect => (
                "pi.classifier.indirect",
                "Indirect injection in tool result: learned classifier found instructions \
                 addressed to the assistant",
            ),
        };
        let span = cx.original_span(part, window);
        out.push(
            self.finding_plain(id, message, severity, score, surface)
                .with_evidence(excerpt(folded[s.piece.clone()].trim()))
                .meta("method", "classifier")
                .meta("head", head.as_str())
                .meta("probability", format!("{p:.4}"))
                .meta("model", c.model().version.clone())
                .meta("span", format!("{}..{}", span.start, span.end)),
        );
    }

    /// The second stage's verdict on one unsure window (original text).
    #[allow(clippy::too_many_arguments)]
    fn second_opinion(
        &self,
        stage: &Stage,
        c: &Classifier,
        head: Head,
        surface: Surface,
        text: &str,
        fast: f64,
        span: Range<usize>,
    ) -> Option<Finding> {
        let version = stage.model.version().to_string();
        let f = match stage.score(text) {
            Ok(q) => {
                let (severity, score) = banded(c, q, stage.band)?;
                let (id, message) = match head {
                    Head::Direct => (
                        "pi.second_stage.direct",
                        "Second-stage classifier: text reads as a prompt injection",
                    ),
                    Head::Indirect => (
                        "pi.second_stage.indirect",
                        "Indirect injection in tool result: second-stage classifier found \
                         instructions addressed to the assistant",
                    ),
                };
                self.finding_plain(id, message, severity, score, surface)
                    .with_evidence(excerpt(text.trim()))
                    .meta("probability", format!("{q:.4}"))
            }
            Err(e) => {
                let (severity, score) = match stage.on_error {
                    OnError::Open => (Severity::Low, 0.1),
                    OnError::Closed => (Severity::Critical, 1.0),
                };
                let mut f = self
                    .finding_plain(
                        "pi.second_stage.unavailable",
                        "The second-stage classifier gave no answer for a text the fast \
                         classifier was unsure about",
                        severity,
                        score,
                        surface,
                    )
                    .meta("error", e.kind())
                    .meta(
                        "on_error",
                        match stage.on_error {
                            OnError::Open => "open",
                            OnError::Closed => "closed",
                        },
                    );
                if let second_stage::StageError::Failed(msg) = &e {
                    f = f.meta("detail", excerpt(msg));
                }
                f
            }
        };
        Some(
            f.meta("method", "second_stage")
                .meta("head", head.as_str())
                .meta("fast_probability", format!("{fast:.4}"))
                .meta("model", version)
                .meta("span", format!("{}..{}", span.start, span.end)),
        )
    }
}

/// A probability's severity and finding score in a head's bands; `None`
/// below the medium band.
fn banded(c: &Classifier, p: f64, band: Band) -> Option<(Severity, f64)> {
    if p >= band.high {
        Some((Severity::High, c.high_score))
    } else if p >= band.medium {
        Some((Severity::Medium, c.medium_score))
    } else {
        None
    }
}
