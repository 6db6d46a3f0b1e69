//! The shipped injection model reproduces its model card: scoring each
//! bundled never-tuned set (`policies/models/train/data/eval*.jsonl`) with
//! the weights compiled into this build gives exactly the numbers stored
//! next to the model (`policies/models/injection-v1*.metrics.json`, which
//! `make model` wrote and the card `injection-v1.md` quotes), for the
//! classifier alone and for the whole pipeline under every profile.

#[path = "../examples/injection_model/metrics.rs"]
mod metrics;

use asg::decision::Policy;
use serde_json::Value;
use std::path::PathBuf;

/// (evaluation set, its metrics file, whether the metrics file must exist)
///
/// A new set is frozen before the weights that are scored on it are trained:
/// until `make model` has written its metrics, there is nothing the shipped
/// weights must reproduce for it, and the check says it skips.
const SETS: &[(&str, &str, bool)] = &[
    ("eval.jsonl", "injection-v1.metrics.json", true),
    ("eval2.jsonl", "injection-v1.heldout2.metrics.json", true),
    ("eval3.jsonl", "injection-v1.heldout3.metrics.json", true),
    ("eval4.jsonl", "injection-v1.heldout4.metrics.json", true),
    ("eval5.jsonl", "injection-v1.heldout5.metrics.json", true),
    ("eval6.jsonl", "injection-v1.heldout6.metrics.json", true),
];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The metrics stored for one set; `None` for an optional set that has none yet.
fn card(file: &str, required: bool) -> Option<Value> {
    let path = root().join("policies/models").join(file);
    if !required && !path.exists() {
        eprintln!(
            "{}: not written yet (run `make model`); this set is not checked",
            path.display()
        );
        return None;
    }
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    Some(serde_json::from_str(&text).expect("metrics JSON"))
}

fn samples(file: &str) -> Vec<metrics::Sample> {
    metrics::load(&root().join("policies/models/train/data").join(file))
}

#[test]
fn shipped_weights_reproduce_the_classifier_metrics() {
    let dev = Policy::load("dev", None).unwrap();
    for (set, file, required) in SETS {
        let Some(card) = card(file, *required) else {
            continue;
        };
        let samples = samples(set);
        assert_eq!(
            card["samples"].as_u64(),
            Some(samples.len() as u64),
            "{set}"
        );
        let got = metrics::classifier_metrics(&dev, &samples);
        assert_eq!(
            got["model"], card["classifier"]["model"],
            "{set}: the embedded model is not the one the card describes: run `make model`"
        );
        assert_eq!(got, card["classifier"], "{set}");
    }
}

#[test]
fn shipped_weights_reproduce_the_profile_metrics() {
    for (set, file, required) in SETS {
        let Some(card) = card(file, *required) else {
            continue;
        };
        let samples = samples(set);
        for name in ["dev", "production", "strict"] {
            let policy = Policy::load(name, None).unwrap();
            let got = metrics::pipeline_metrics(&policy, &samples);
            assert_eq!(
                got, card["profiles"][name],
                "{set}: {name}: the whole pipeline no longer gives the card's figures; after a rule or \
                 profile change run `make model-eval` (no training) and review the card's diff"
            );
        }
    }
}
