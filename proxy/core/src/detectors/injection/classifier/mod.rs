//! The learned stage of injection detection: a compact linear model over
//! hashed character and word n-grams of the folded text, scored over
//! sliding windows so an instruction buried in a long document is judged on
//! its own. Two heads: `direct` for what the user (or the model) wrote,
//! `indirect` for data the agent received (tool results, retrieved
//! documents), where a request addressed to the assistant is itself the
//! attack.
//!
//! The weights are data (`policies/models/injection-v1.bin`, built by
//! `make model`), loaded with the policy and swapped with it on reload; a
//! bad file fails the policy compile, so the last good policy (and model)
//! stays live. Cost is one hash-and-lookup pass per byte, bounded per
//! subject by `max_bytes`.

pub mod features;
pub mod model;

use crate::sources::RuleSources;
use crate::subject::Surface;
use features::{features_in, pieces, FeatureSpec};
pub use model::{Band, Head, Model};
use serde::Deserialize;
use std::collections::VecDeque;
use std::ops::Range;
use std::sync::{Arc, OnceLock};

/// The model compiled into the binary (the copy shipped in `policies/`).
pub const EMBEDDED_MODEL: &[u8] =
    include_bytes!("../../../../../../policies/models/injection-v1.bin");

/// Operator settings: `[injection.classifier]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClassifierConfig {
    pub enabled: bool,
    /// Model file relative to the profile's folder. Unset: embedded.
    pub model_file: Option<String>,
    /// Surfaces scored (`user`, `assistant`, `tool_arguments` use the
    /// direct head; `tool_result`, `tool_definition` the indirect head).
    pub surfaces: Vec<String>,
    /// Probability bands per head; unset: the model's own.
    pub direct: Option<Band>,
    pub indirect: Option<Band>,
    pub medium_score: f64,
    pub high_score: f64,
    /// Bytes of folded text scored per inspection; beyond it the head and
    /// tail of long texts are scored and `pi.limits.classifier_budget`
    /// says so.
    pub max_bytes: usize,
}

impl Default for ClassifierConfig {
    fn default() -> Self {
        ClassifierConfig {
            enabled: true,
            model_file: None,
            surfaces: ["user", "assistant", "tool_result", "tool_arguments"]
                .map(String::from)
                .to_vec(),
            direct: None,
            indirect: None,
            medium_score: 0.45,
            high_score: 0.8,
            max_bytes: 4 << 20,
        }
    }
}

/// The highest-scoring window of a text.
#[derive(Debug, Clone, PartialEq)]
pub struct Scored {
    pub logit: f32,
    /// Byte ranges of the folded text: the window and, inside it, the
    /// piece that contributed most.
    pub window: Range<usize>,
    pub piece: Range<usize>,
}

/// Work done by one scoring pass (bounded-cost tests read it).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Work {
    pub bytes: usize,
    pub features: usize,
    pub windows: usize,
}

impl Scored {
    pub fn probability(&self) -> f64 {
        1.0 / (1.0 + (-(self.logit as f64)).exp())
    }
}

impl Model {
    /// Score every window of `text` (folded) with one head; the best
    /// window, or `None` for text without features. With
    /// `piece_windows`, every piece (sentence) is also scored on its own,
    /// so one planted sentence is not averaged away by the ordinary text
    /// packed around it.
    pub fn score(&self, head: Head, text: &str, work: &mut Work) -> Option<Scored> {
        let h = self.head(head);
        let spec: &FeatureSpec = &self.spec;
        let w = &h.weights;
        let logit = |sum: i64, count: u32| h.bias + h.scale * sum as f32 / (count as f32).sqrt();
        let mut scratch = Vec::with_capacity(spec.window_bytes);
        // (piece, sum of weights, feature count) of the current window.
        let mut q: VecDeque<(Range<usize>, i64, u32)> = VecDeque::new();
        let (mut sum, mut count) = (0i64, 0u32);
        let mut it = pieces(text, spec.window_bytes).peekable();
        let mut best: Option<Scored> = None;
        let consider =
            |best: &mut Option<Scored>, z: f32, window: Range<usize>, piece: Range<usize>| {
                if best.as_ref().is_none_or(|b| z > b.logit) {
                    *best = Some(Scored {
                        logit: z,
                        window,
                        piece,
                    });
                }
            };
        // Pieces scored on their own (counted into `work` at the end: the
        // closure below holds its fields).
        let mut lone = 0usize;
        let mut push = |p: Range<usize>, best: &mut Option<Scored>| {
            let (mut s, mut n) = (0i64, 0u32);
            features_in(spec, text, p.clone(), &mut scratch, |b| {
                s += w[b as usize] as i64;
                n += 1;
            });
            work.bytes += p.len();
            work.features += n as usize;
            if spec.piece_windows && n > 0 {
                lone += 1;
                consider(best, logit(s, n), p.clone(), p.clone());
            }
            (p, s, n)
        };
        loop {
            if q.is_empty() {
                match it.next() {
                    Some(p) => {
                        let e = push(p, &mut best);
                        sum += e.1;
                        count += e.2;
                        q.push_back(e);
                    }
                    None => break,
                }
            }
            let start = q.front().expect("non-empty").0.start;
            while let Some(p) = it.peek() {
                if p.end - start > spec.window_bytes {
                    break;
                }
                let p = it.next().expect("peeked");
                let e = push(p, &mut best);
                sum += e.1;
                count += e.2;
                q.push_back(e);
            }
            // A window of one piece was scored as that piece.
            if count > 0 && !(spec.piece_windows && q.len() == 1) {
                work.windows += 1;
                let z = logit(sum, count);
                if best.as_ref().is_none_or(|b| z > b.logit) {
                    let end = q.back().expect("non-empty").0.end;
                    let piece = q
                        .iter()
                        .filter(|(_, _, n)| *n > 0)
                        .max_by(|a, b| {
                            let ka = a.1 as f32 / (a.2 as f32).sqrt();
                            let kb = b.1 as f32 / (b.2 as f32).sqrt();
                            ka.total_cmp(&kb)
                        })
                        .map(|(r, _, _)| r.clone())
                        .unwrap_or(start..end);
                    consider(&mut best, z, start..end, piece);
                }
            }
            let (_, s, n) = q.pop_front().expect("non-empty");
            sum -= s;
            count -= n;
        }
        work.windows += lone;
        best
    }
}

/// A loaded classifier with the profile's settings.
#[derive(Debug)]
pub struct Classifier {
    model: Arc<Model>,
    surfaces: Vec<Surface>,
    direct: Band,
    indirect: Band,
    pub medium_score: f64,
    pub high_score: f64,
    pub max_bytes: usize,
}

fn embedded() -> Result<Arc<Model>, String> {
    static MODEL: OnceLock<Result<Arc<Model>, String>> = OnceLock::new();
    MODEL
        .get_or_init(|| Model::parse(EMBEDDED_MODEL, "embedded:injection-v1").map(Arc::new))
        .clone()
}

fn parse_surface(s: &str) -> Result<Surface, String> {
    Ok(match s {
        "user" => Surface::User,
        "assistant" => Surface::Assistant,
        "tool_result" => Surface::ToolResult,
        "tool_definition" => Surface::ToolDefinition,
        "tool_arguments" => Surface::ToolArguments,
        other => {
            return Err(format!(
                "injection.classifier.surfaces: unknown surface {other:?} (user, assistant, \
                 tool_result, tool_definition, tool_arguments)"
            ))
        }
    })
}

impl Classifier {
    /// `None` when switched off. Errors name the file and the fix.
    pub fn load(
        cfg: &ClassifierConfig,
        sources: Option<&dyn RuleSources>,
    ) -> Result<Option<Self>, String> {
        if !cfg.enabled {
            return Ok(None);
        }
        let read = match (&cfg.model_file, sources) {
            (Some(file), Some(src)) => src
                .read(file)
                .map_err(|e| {
                    format!(
                        "injection model {}: cannot read it ({}); run `make model` or fix \
                         [injection.classifier] model_file",
                        e.path, e.message
                    )
                })?
                .map(|bytes| (bytes, src.describe(file))),
            _ => None,
        };
        let model = match read {
            Some((bytes, name)) => Arc::new(Model::parse(&bytes, &name)?),
            None => embedded()?,
        };
        let surfaces = cfg
            .surfaces
            .iter()
            .map(|s| parse_surface(s))
            .collect::<Result<Vec<_>, _>>()?;
        let direct = cfg.direct.unwrap_or(model.direct.thresholds);
        let indirect = cfg.indirect.unwrap_or(model.indirect.thresholds);
        direct
            .validate()
            .map_err(|e| format!("injection.classifier.direct: {e}"))?;
        indirect
            .validate()
            .map_err(|e| format!("injection.classifier.indirect: {e}"))?;
        for (key, v) in [
            ("medium_score", cfg.medium_score),
            ("high_score", cfg.high_score),
        ] {
            if !(0.0..=10.0).contains(&v) {
                return Err(format!(
                    "injection.classifier.{key} must be between 0 and 10"
                ));
            }
        }
        if cfg.max_bytes < 4096 {
            return Err("injection.classifier.max_bytes must be at least 4096".into());
        }
        Ok(Some(Classifier {
            model,
            surfaces,
            direct,
            indirect,
            medium_score: cfg.medium_score,
            high_score: cfg.high_score,
            max_bytes: cfg.max_bytes,
        }))
    }

    pub fn model(&self) -> &Model {
        &self.model
    }

    /// The head that judges a surface, if the surface is scored.
    pub fn head_for(&self, surface: Surface) -> Option<Head> {
        if !self.surfaces.contains(&surface) {
            return None;
        }
        match surface {
            Surface::ToolResult | Surface::ToolDefinition => Some(Head::Indirect),
            Surface::System => None,
            _ => Some(Head::Direct),
        }
    }

    pub fn band(&self, head: Head) -> Band {
        match head {
            Head::Direct => self.direct,
            Head::Indirect => self.indirect,
        }
    }

    /// Score `folded` within what is left of the budget. Texts longer than
    /// the budget are scored by their first and last parts; the returned
    /// flag says something in between was skipped.
    pub fn judge(
        &self,
        head: Head,
        folded: &str,
        budget: &mut usize,
        work: &mut Work,
    ) -> (Option<Scored>, bool) {
        if folded.len() <= *budget {
            *budget -= folded.len();
            return (self.model.score(head, folded, work), false);
        }
        let half = *budget / 2;
        *budget = 0;
        let mut a = half.min(folded.len());
        while !folded.is_char_boundary(a) {
            a -= 1;
        }
        let mut b = folded.len().saturating_sub(half).max(a);
        while !folded.is_char_boundary(b) {
            b += 1;
        }
        let first = self.model.score(head, &folded[..a], work);
        let last = self.model.score(head, &folded[b..], work).map(|s| Scored {
            logit: s.logit,
            window: s.window.start + b..s.window.end + b,
            piece: s.piece.start + b..s.piece.end + b,
        });
        let best = match (first, last) {
            (Some(x), Some(y)) => Some(if y.logit > x.logit { y } else { x }),
            (x, y) => x.or(y),
        };
        (best, b > a)
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod exact_tests;
