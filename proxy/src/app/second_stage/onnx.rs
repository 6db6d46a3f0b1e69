//! A sequence classifier in ONNX (as Prompt Guard and DeBERTa-class
//! models are exported): inputs `input_ids` and optionally
//! `attention_mask` and `token_type_ids` (int64, `[1, tokens]`), first
//! output the logits `[1, classes]`. The answer is their softmax.

use std::sync::Arc;
use tokenizers::Tokenizer;
use tract_onnx::prelude::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Input {
    Ids,
    Mask,
    TypeIds,
}

pub struct OnnxClassifier {
    tokenizer: Tokenizer,
    plan: Arc<TypedRunnableModel>,
    inputs: Vec<Input>,
    max_tokens: usize,
}

impl OnnxClassifier {
    /// Parse and optimise the model for any sequence length, and parse the
    /// tokenizer. Errors name the file and what is wrong with it.
    pub fn load(
        model: &[u8],
        tokenizer: &[u8],
        max_tokens: usize,
        model_origin: &str,
        tokenizer_origin: &str,
    ) -> Result<Self, String> {
        let tokenizer = Tokenizer::from_bytes(tokenizer).map_err(|e| {
            format!(
                "injection.second_stage: {tokenizer_origin} is not a valid Hugging Face \
                 tokenizer.json ({e})"
            )
        })?;
        let bad = |e: TractError| {
            format!(
                "injection.second_stage: {model_origin} is not an ONNX sequence classifier \
                 tract can run ({e:#})"
            )
        };
        let mut graph = tract_onnx::onnx()
            .model_for_read(&mut &model[..])
            .map_err(bad)?;
        let mut inputs = Vec::new();
        for outlet in graph.input_outlets().map_err(bad)?.to_vec() {
            let name = graph.node(outlet.node).name.clone();
            inputs.push(match name.as_str() {
                "input_ids" => Input::Ids,
                "attention_mask" => Input::Mask,
                "token_type_ids" => Input::TypeIds,
                other => {
                    return Err(format!(
                        "injection.second_stage: {model_origin} has an input {other:?}; a \
                         sequence classifier takes input_ids (and optionally attention_mask, \
                         token_type_ids)"
                    ))
                }
            });
        }
        if !inputs.contains(&Input::Ids) {
            return Err(format!(
                "injection.second_stage: {model_origin} has no input_ids input"
            ));
        }
        let tokens = graph.symbols.sym("tokens");
        for i in 0..inputs.len() {
            graph
                .set_input_fact(
                    i,
                    InferenceFact::dt_shape(i64::datum_type(), tvec!(1.to_dim(), tokens.to_dim())),
                )
                .map_err(bad)?;
        }
        let plan = graph
            .into_optimized()
            .and_then(|m| m.into_runnable())
            .map_err(bad)?;
        Ok(OnnxClassifier {
            tokenizer,
            plan,
            inputs,
            max_tokens,
        })
    }

    /// Softmax over the logits for `text` (cut to `max_tokens`).
    pub fn classify(&self, text: &str) -> Result<Vec<f32>, String> {
        let enc = self
            .tokenizer
            .encode(text, true)
            .map_err(|e| format!("tokenizer: {e}"))?;
        let mut ids: Vec<i64> = enc.get_ids().iter().map(|&i| i as i64).collect();
        ids.truncate(self.max_tokens);
        if ids.is_empty() {
            return Err("the tokenizer produced no tokens".into());
        }
        let n = ids.len();
        let tensor = |v: Vec<i64>| -> Result<TValue, String> {
            Tensor::from_shape(&[1, n], &v)
                .map(|t| t.into())
                .map_err(|e| format!("input: {e}"))
        };
        let mut values = TVec::new();
        for input in &self.inputs {
            values.push(match input {
                Input::Ids => tensor(ids.clone())?,
                Input::Mask => tensor(vec![1; n])?,
                Input::TypeIds => tensor(vec![0; n])?,
            });
        }
        let out = self
            .plan
            .run(values)
            .map_err(|e| format!("inference: {e:#}"))?;
        let first = out.first().ok_or("the model has no output")?;
        let cast = first.cast_to::<f32>().map_err(|e| format!("output: {e}"))?;
        let view = cast
            .try_as_plain_ram()
            .map_err(|e| format!("output: {e}"))?;
        let logits: Vec<f32> = view
            .as_slice::<f32>()
            .map_err(|e| format!("output: {e}"))?
            .to_vec();
        if logits.is_empty() || logits.iter().any(|v| !v.is_finite()) {
            return Err("the model's logits are empty or not finite".into());
        }
        let max = logits.iter().copied().fold(f32::MIN, f32::max);
        let exp: Vec<f32> = logits.iter().map(|v| (v - max).exp()).collect();
        let sum: f32 = exp.iter().sum();
        Ok(exp.into_iter().map(|v| v / sum).collect())
    }
}
