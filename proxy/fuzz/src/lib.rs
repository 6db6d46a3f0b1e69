//! Fuzz targets for asg's parsers and rewriters.
//!
//! Each target takes arbitrary bytes, drives one parser with them and
//! checks the invariants the gateway relies on, panicking when one breaks
//! (a crash for the fuzzer, a failure for `cargo test`). "No panic" is the
//! least of it: a stream must never show a secret the buffered path would
//! mask, a redacted JSON body keeps its structure and loses every secret,
//! decoders stay within their bounds, incremental parsers agree with
//! one-shot parsing.
//!
//! The same functions run under AFL++ (`src/bin/asg-afl.rs`, built with
//! `cargo afl build --features afl`; `make fuzz`) and in ordinary tests
//! (`tests/smoke.rs`: the seed corpora plus a few thousand generated
//! inputs, part of `make test`).

mod input;
pub mod seeds;
pub mod targets;

pub use input::Input;

/// A target: arbitrary bytes in, a panic when an invariant breaks.
pub type Target = fn(&[u8]);

/// Every target, by name (the AFL harness takes the name as argument).
pub const TARGETS: &[(&str, Target)] = &[
    ("sse", targets::sse::run),
    ("stream", targets::stream::run),
    ("dialect", targets::dialect::run),
    ("redact_json", targets::redact_json::run),
    ("shell", targets::shell::run),
    ("decode", targets::decode::run),
    ("body_decode", targets::body_decode::run),
    ("policy", targets::policy::run),
    ("front", targets::front::run),
    ("ws", targets::ws::run),
];

/// The target called `name`.
pub fn target(name: &str) -> Option<Target> {
    TARGETS.iter().find(|(n, _)| *n == name).map(|(_, f)| *f)
}
