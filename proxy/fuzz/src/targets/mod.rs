//! The targets. Each `run` takes arbitrary bytes and panics when an
//! invariant breaks.

pub mod body_decode;
pub mod decode;
pub mod dialect;
pub mod front;
pub mod policy;
pub mod redact_json;
pub mod shell;
pub mod sse;
pub mod stream;
pub mod ws;

use asg::decision::redact::Masker;
use asg::decision::Policy;
use std::sync::{Arc, OnceLock};

/// The embedded `dev` profile (redaction on in both directions), compiled once.
pub(crate) fn dev_policy() -> Arc<Policy> {
    static P: OnceLock<Arc<Policy>> = OnceLock::new();
    P.get_or_init(|| Arc::new(Policy::load("dev", None).expect("embedded dev profile")))
        .clone()
}

pub(crate) fn masker() -> Masker {
    Masker::new([7; 32])
}

/// How often `needle` occurs in `hay` (overlapping).
pub(crate) fn occurrences(hay: &str, needle: &str) -> usize {
    if needle.is_empty() {
        return 0;
    }
    (0..hay.len())
        .filter(|&i| hay.is_char_boundary(i) && hay[i..].starts_with(needle))
        .count()
}

/// The values the buffered path masks in `text` (long enough not to occur
/// by accident), each with how often it survives that masking.
pub(crate) fn masked_values(text: &str) -> Vec<(String, usize)> {
    let p = dev_policy();
    let buffered = p
        .redactor
        .redact(text, &masker())
        .map_or_else(|| text.to_string(), |r| r.text);
    let mut out: Vec<(String, usize)> = Vec::new();
    for s in p.redactor.spans(text) {
        let v = &text[s.start..s.end];
        if v.len() >= 8 && !out.iter().any(|(x, _)| x == v) {
            out.push((v.to_string(), occurrences(&buffered, v)));
        }
    }
    out
}
