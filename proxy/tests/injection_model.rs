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

/// (evaluation set, its metrics file)
const SETS: &[(&str, &str)] = &[
    ("eval.jsonl", "injection-v1.metrics.json"),
    ("eval2.jsonl", "injection-v1.heldout2.metrics.json"),
    ("eval3.jsonl", "injection-v1.heldout3.metrics.json"),
];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn card(file: &str) -> Value {
    let path = root().join("policies/models").join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).expect("metrics JSON")
}

fn samples(file: &str) -> Vec<metrics::Sample> {
    metrics::load(&root().join("policies/models/train/data").join(file))
}

#[test]
fn shipped_weights_reproduce_the_classifier_metrics() {
    let dev = Policy::load("dev", None).unwrap();
    for (set, file) in SETS {
        let card = card(file);
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
    for (set, file) in SETS {
        let card = card(file);
        let samples = samples(set);
        for name in ["dev", "production", "strict"] {
            let policy = Policy::load(name, None).unwrap();
            let got = metrics::pipeline_metrics(&policy, &samples);
            assert_eq!(got, card["profiles"][name], "{set}: {name}");
        }
    }
}
