//! Training export and evaluation for the injection classifier (run by
//! `make model` through `policies/models/train/train.py`).
//!
//! ```text
//! cargo run --release -p asg --example injection_model -- features SPEC IN.jsonl OUT.svm
//! cargo run --release -p asg --example injection_model -- evaluate EVAL.jsonl [--write METRICS.json]
//! ```
//!
//! `features` folds every text like the detectors do, cuts it into the
//! classifier's windows and writes one svmlight line per window:
//! `<sample id> <bucket>:<count / sqrt(total)> …` — exactly the vector the
//! running-sum scorer sees. SPEC is `buckets_log2,char_min,char_max,word_max,window_bytes`.
//!
//! `evaluate` scores the bundled evaluation split with the model compiled
//! into this binary: the classifier alone (per head and band) and the whole
//! pipeline per profile (dev, production, strict), and the same profiles
//! with the classifier switched off (rules only), for comparison.

mod metrics;

use asg::decision::detectors::injection::classifier::features::{
    window_features, windows, FeatureSpec,
};
use asg::decision::normalize::Normalized;
use asg::decision::policy::{PolicySource, EMBEDDED_PROFILES};
use asg::decision::Policy;
use serde_json::{json, Value};
use std::io::Write;
use std::path::Path;
use std::time::Instant;

fn spec(arg: &str) -> FeatureSpec {
    let v: Vec<usize> = arg
        .split(',')
        .map(|x| x.parse().expect("SPEC numbers"))
        .collect();
    assert_eq!(
        v.len(),
        5,
        "SPEC is buckets_log2,char_min,char_max,word_max,window_bytes"
    );
    let s = FeatureSpec {
        buckets_log2: v[0] as u8,
        char_min: v[1] as u8,
        char_max: v[2] as u8,
        word_max: v[3] as u8,
        window_bytes: v[4],
    };
    s.validate().expect("valid SPEC");
    s
}

fn export(spec: &FeatureSpec, input: &Path, output: &Path) {
    let text = std::fs::read_to_string(input).expect("read samples");
    let mut out = std::io::BufWriter::new(std::fs::File::create(output).expect("create output"));
    let (mut n, mut w) = (0usize, 0usize);
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let v: Value = serde_json::from_str(line).expect("sample line");
        let id = v["id"].as_u64().expect("id");
        let folded = Normalized::of(v["text"].as_str().unwrap_or_default()).folded;
        n += 1;
        for win in windows(&folded, spec.window_bytes) {
            let (vec, total) = window_features(spec, &folded, win);
            if total == 0 {
                continue;
            }
            let norm = (total as f64).sqrt();
            write!(out, "{id}").unwrap();
            for (b, c) in vec {
                write!(out, " {}:{:.6}", b + 1, c as f64 / norm).unwrap();
            }
            writeln!(out).unwrap();
            w += 1;
        }
    }
    eprintln!("features: {n} texts, {w} windows");
}

fn profiles(classifier: bool) -> Vec<(&'static str, Policy)> {
    EMBEDDED_PROFILES
        .iter()
        .map(|(name, text)| {
            let text = if classifier {
                text.to_string()
            } else {
                format!("{text}\n[injection.classifier]\nenabled = false\n")
            };
            let p = Policy::compile(&text, PolicySource::Embedded(name), None)
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            (*name, p)
        })
        .collect()
}

fn evaluate(input: &Path, write: Option<&Path>) {
    let samples = metrics::load(input);
    let started = Instant::now();
    let with = profiles(true);
    let without = profiles(false);
    let mut prof = serde_json::Map::new();
    let mut rules = serde_json::Map::new();
    for ((name, p), (_, r)) in with.iter().zip(&without) {
        prof.insert(name.to_string(), metrics::pipeline_metrics(p, &samples));
        rules.insert(name.to_string(), metrics::pipeline_metrics(r, &samples));
    }
    let out = json!({
        "eval_file": "policies/models/train/data/eval.jsonl",
        "samples": samples.len(),
        "classifier": metrics::classifier_metrics(&with[0].1, &samples),
        "profiles": prof,
        "rules_only": rules,
    });
    eprintln!(
        "evaluate: {} samples in {:.1?}",
        samples.len(),
        started.elapsed()
    );
    let pretty = serde_json::to_string_pretty(&out).unwrap();
    match write {
        Some(path) => std::fs::write(path, pretty + "\n").expect("write metrics"),
        None => println!("{pretty}"),
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("features") if args.len() == 5 => {
            export(&spec(&args[2]), Path::new(&args[3]), Path::new(&args[4]))
        }
        Some("evaluate") if args.len() >= 3 => {
            let write = args
                .iter()
                .position(|a| a == "--write")
                .and_then(|i| args.get(i + 1))
                .map(Path::new);
            evaluate(Path::new(&args[2]), write)
        }
        _ => {
            eprintln!("usage: injection_model features SPEC IN.jsonl OUT.svm | evaluate EVAL.jsonl [--write METRICS.json]");
            std::process::exit(2);
        }
    }
}
