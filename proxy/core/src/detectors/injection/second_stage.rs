//! The optional heavier stage: a transformer classifier of the operator's
//! own (Prompt Guard, DeBERTa class) that gives a second opinion on the
//! texts the fast classifier is unsure about.
//!
//! The core only decides *which* text goes to it and what its answer
//! means. The model and tokenizer bytes come the way every data file of a
//! profile comes; inference runs behind [`SecondStage`], built from those
//! bytes by a [`StageLoader`] that the application installs at start
//! (`asg::app::second_stage`, tract on a worker thread with a deadline): the
//! core holds no inference runtime and starts no thread, and a build
//! without a runtime refuses a policy that asks for one with a clear error.
//!
//! The second stage only adds findings: a text it clears keeps whatever
//! the rules and the fast stage found.

use super::classifier::Band;
use crate::sources::RuleSources;
use serde::Deserialize;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// What a failed second opinion (timeout, busy, inference error) means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnError {
    /// The text keeps the verdict of the rules and the fast stage; a low
    /// finding records that the second opinion is missing.
    Open,
    /// A critical finding: the text is refused as not fully inspected.
    Closed,
}

/// `[injection.second_stage]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SecondStageConfig {
    pub enabled: bool,
    /// ONNX model file, relative to the profile's folder.
    pub model_file: Option<String>,
    /// Hugging Face `tokenizer.json`, relative to the profile's folder.
    pub tokenizer_file: Option<String>,
    /// Fast-stage probabilities sent to the second stage: at least `low`
    /// and below `high`; `high` unset is the head's own high band (a text
    /// the fast stage already rates high needs no second opinion).
    pub unsure_low: f64,
    pub unsure_high: Option<f64>,
    /// Output classes (indices into the model's logits) that mean
    /// injection; their softmax probabilities are summed.
    pub labels: Vec<usize>,
    /// Severity bands on the second stage's probability.
    pub band: Band,
    /// Tokens per text (longer windows are cut; the fast stage's window is
    /// at most 512 bytes).
    pub max_tokens: usize,
    pub timeout_ms: u64,
    pub on_error: OnError,
}

impl Default for SecondStageConfig {
    fn default() -> Self {
        SecondStageConfig {
            enabled: false,
            model_file: None,
            tokenizer_file: None,
            unsure_low: 0.5,
            unsure_high: None,
            labels: vec![1],
            band: Band {
                medium: 0.5,
                high: 0.9,
            },
            max_tokens: 512,
            timeout_ms: 200,
            on_error: OnError::Open,
        }
    }
}

/// Why a second opinion is missing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StageError {
    /// No answer within the policy's timeout.
    Timeout,
    /// Every worker is busy and the queue is full.
    Busy,
    /// Tokenizer or inference failed.
    Failed(String),
}

impl StageError {
    pub fn kind(&self) -> &'static str {
        match self {
            StageError::Timeout => "timeout",
            StageError::Busy => "busy",
            StageError::Failed(_) => "error",
        }
    }
}

/// A loaded second-stage model.
pub trait SecondStage: Send + Sync + std::fmt::Debug {
    /// Softmax probabilities of every output class for `text`, within
    /// `timeout`.
    fn classify(&self, text: &str, timeout: Duration) -> Result<Vec<f32>, StageError>;
    /// Shown in findings: `<file name>@<digest>`.
    fn version(&self) -> &str;
}

/// What the loader is given: the files' bytes and their names for
/// messages.
#[derive(Debug, Clone)]
pub struct StageFiles {
    pub model: Vec<u8>,
    pub model_name: String,
    pub tokenizer: Vec<u8>,
    pub tokenizer_name: String,
    pub max_tokens: usize,
}

/// Builds a [`SecondStage`] from files; installed by the application.
pub trait StageLoader: Send + Sync {
    fn load(&self, files: &StageFiles) -> Result<Arc<dyn SecondStage>, String>;
}

static LOADER: OnceLock<Box<dyn StageLoader>> = OnceLock::new();

/// Install the loader the policies use (first call wins: one runtime per
/// process).
pub fn install_loader(loader: Box<dyn StageLoader>) {
    let _ = LOADER.set(loader);
}

/// The second stage of one policy, compiled.
#[derive(Debug, Clone)]
pub struct Stage {
    pub model: Arc<dyn SecondStage>,
    pub unsure_low: f64,
    pub unsure_high: Option<f64>,
    pub labels: Vec<usize>,
    pub band: Band,
    pub timeout: Duration,
    pub on_error: OnError,
}

impl Stage {
    /// `None` when switched off. Errors name the key or file and the fix.
    pub fn load(
        cfg: &SecondStageConfig,
        sources: Option<&dyn RuleSources>,
    ) -> Result<Option<Self>, String> {
        if !cfg.enabled {
            return Ok(None);
        }
        let (Some(model), Some(tokenizer)) = (&cfg.model_file, &cfg.tokenizer_file) else {
            return Err(
                "injection.second_stage: enabled needs model_file and tokenizer_file \
                        (an ONNX model and its tokenizer.json, relative to the profile)"
                    .into(),
            );
        };
        let Some(src) = sources else {
            return Err(
                "injection.second_stage: an embedded profile has no folder for the \
                        model files; use a profile file"
                    .into(),
            );
        };
        cfg.band
            .validate()
            .map_err(|e| format!("injection.second_stage.band: {e}"))?;
        let high_ok = cfg
            .unsure_high
            .is_none_or(|h| h > cfg.unsure_low && h <= 1.0);
        if !(0.0..1.0).contains(&cfg.unsure_low) || !high_ok {
            return Err("injection.second_stage: need 0 <= unsure_low < unsure_high <= 1".into());
        }
        if cfg.labels.is_empty() {
            return Err("injection.second_stage.labels: name at least one output class".into());
        }
        if !(1..=60_000).contains(&cfg.timeout_ms) {
            return Err("injection.second_stage.timeout_ms must be between 1 and 60000".into());
        }
        if !(8..=8192).contains(&cfg.max_tokens) {
            return Err("injection.second_stage.max_tokens must be between 8 and 8192".into());
        }
        let Some(loader) = LOADER.get() else {
            return Err(
                "injection.second_stage: this build has no inference runtime (build \
                        asg with the `second-stage` feature)"
                    .into(),
            );
        };
        let read = |rel: &str, what: &str| match src.read(rel) {
            Ok(Some(bytes)) => Ok(bytes),
            Ok(None) => Err(format!(
                "injection.second_stage: the {what} {rel} needs a profile file (an embedded \
                 profile has no folder to read it from)"
            )),
            Err(e) => Err(format!(
                "injection.second_stage: cannot read the {what} {} ({}); fix the path in \
                 [injection.second_stage] (relative to the profile's folder)",
                e.path, e.message
            )),
        };
        let files = StageFiles {
            model: read(model, "model file")?,
            model_name: src.describe(model),
            tokenizer: read(tokenizer, "tokenizer file")?,
            tokenizer_name: src.describe(tokenizer),
            max_tokens: cfg.max_tokens,
        };
        let model = loader.load(&files)?;
        Ok(Some(Stage {
            model,
            unsure_low: cfg.unsure_low,
            unsure_high: cfg.unsure_high,
            labels: cfg.labels.clone(),
            band: cfg.band,
            timeout: Duration::from_millis(cfg.timeout_ms),
            on_error: cfg.on_error,
        }))
    }

    /// Whether a fast-stage probability is in the unsure band, given the
    /// head's own high threshold.
    pub fn unsure(&self, p: f64, head_high: f64) -> bool {
        p >= self.unsure_low && p < self.unsure_high.unwrap_or(head_high)
    }

    /// The injection probability of `text`.
    pub fn score(&self, text: &str) -> Result<f64, StageError> {
        let probs = self.model.classify(text, self.timeout)?;
        let mut p = 0.0f64;
        for &l in &self.labels {
            let Some(v) = probs.get(l) else {
                return Err(StageError::Failed(format!(
                    "the model has {} output classes, the policy names class {l}",
                    probs.len()
                )));
            };
            p += *v as f64;
        }
        Ok(p.min(1.0))
    }
}
