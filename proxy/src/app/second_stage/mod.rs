//! The runtime of the optional second injection stage: an operator's own
//! transformer classifier (ONNX) and its Hugging Face `tokenizer.json`
//! (their bytes handed over by the policy compile), run with tract, in
//! pure Rust.
//!
//! Inference is synchronous CPU work and tract cannot be interrupted, so
//! each loaded model gets one worker thread behind a bounded queue: the
//! caller waits for its answer up to the policy's timeout and then goes on
//! (fail open or closed, as the policy says); a job whose caller has given
//! up is skipped, and a full queue answers "busy" at once. The worker ends
//! when the policy holding the model is replaced.

pub mod onnx;
mod worker;

#[cfg(test)]
pub mod testkit;
#[cfg(test)]
mod tests;

use crate::decision::detectors::injection::second_stage::{
    install_loader, SecondStage, StageError, StageFiles, StageLoader,
};
use sha2::{Digest, Sha256};
use std::sync::Arc;
use std::time::Duration;
use worker::Worker;

/// Jobs waiting per model beyond the one running.
const QUEUE: usize = 16;

/// Install the tract loader for every policy this process compiles.
pub fn install() {
    install_loader(Box::new(TractLoader));
}

struct TractLoader;

impl StageLoader for TractLoader {
    fn load(&self, files: &StageFiles) -> Result<Arc<dyn SecondStage>, String> {
        let model = onnx::OnnxClassifier::load(
            &files.model,
            &files.tokenizer,
            files.max_tokens,
            &files.model_name,
            &files.tokenizer_name,
        )?;
        let digest = {
            let mut h = Sha256::new();
            h.update(&files.model);
            h.update(&files.tokenizer);
            hex::encode(h.finalize())
        };
        let name = std::path::Path::new(&files.model_name)
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "model".into());
        let version = format!("{name}@{}", &digest[..12]);
        let worker = Worker::spawn(&version, QUEUE, move |text: &str| model.classify(text))?;
        Ok(Arc::new(TractStage { version, worker }))
    }
}

#[derive(Debug)]
struct TractStage {
    version: String,
    worker: Worker,
}

impl SecondStage for TractStage {
    fn classify(&self, text: &str, timeout: Duration) -> Result<Vec<f32>, StageError> {
        self.worker.run(text, timeout)
    }

    fn version(&self) -> &str {
        &self.version
    }
}
