//! Training export and evaluation for the injection classifier (run by
//! `make model` through `policies/models/train/train.py`).
//!
//! ```text
//! cargo run --release -p asg --example injection_model -- features SPEC IN.jsonl OUT.svm
//! cargo run --release -p asg --example injection_model -- evaluate EVAL.jsonl [--write METRICS.json] [--model FILE]
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
//! with the classifier switched off (rules only), for comparison. `--model`
//! scores with a model file instead of the embedded one, so `make model`
//! evaluates fresh weights without rebuilding this binary (the regression
//! test then checks that the embedded copy gives the same numbers).

mod metrics;

use asg::decision::detectors::injection::classifier::features::{
    spans, window_features, FeatureSpec,
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
    assert!(
        v.len() == 5 || v.len() == 6,
        "SPEC is buckets_log2,char_min,char_max,word_max,window_bytes[,piece_windows]"
    );
    let s = FeatureSpec {
        buckets_log2: v[0] as u8,
        char_min: v[1] as u8,
        char_max: v[2] as u8,
        word_max: v[3] as u8,
        window_bytes: v[4],
        piece_windows: v.get(5).is_some_and(|x| *x != 0),
    };
    s.validate().expect("valid SPEC");
    s
}

fn export(spec: &FeatureSpec, input: &Path, output: &Path) {
    let text = std::fs::read_to_string(input).expect("read samples");
    let mut out = std::io::BufWriter::new(std::fs::File::create(output).expect("create output"));
    // One line per exported window: 1 when it is a lone piece of a longer text.
    let kinds_path = format!("{}.pieces", output.display());
    let mut kinds =
        std::io::BufWriter::new(std::fs::File::create(&kinds_path).expect("create kinds"));
    let (mut n, mut w) = (0usize, 0usize);
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let v: Value = serde_json::from_str(line).expect("sample line");
        let id = v["id"].as_u64().expect("id");
        let folded = Normalized::of(v["text"].as_str().unwrap_or_default()).folded;
        n += 1;
        for (win, lone_piece) in spans(&folded, spec) {
            let (vec, total) = window_features(spec, &folded, win);
            if total == 0 {
                continue;
            }
            writeln!(kinds, "{}", u8::from(lone_piece)).unwrap();
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

fn profiles(classifier: bool, model: Option<&Path>) -> Vec<(&'static str, Policy)> {
    let policies = Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies");
    EMBEDDED_PROFILES
        .iter()
        .map(|(name, text)| {
            let text = match (classifier, model) {
                (false, _) => format!("{text}\n[injection.classifier]\nenabled = false\n"),
                (true, Some(m)) => format!(
                    "{text}\n[injection.classifier]\nmodel_file = {:?}\n",
                    std::fs::canonicalize(m)
                        .unwrap_or_else(|e| panic!("{}: {e}", m.display()))
                        .display()
                        .to_string()
                ),
                (true, None) => text.to_string(),
            };
            let folder = asg::app::policy::DirSources::new(&policies);
            let p = Policy::compile(&text, PolicySource::Embedded(name), Some(&folder))
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            (*name, p)
        })
        .collect()
}

fn evaluate(input: &Path, write: Option<&Path>, model: Option<&Path>) {
    let samples = metrics::load(input);
    let started = Instant::now();
    let with = profiles(true, model);
    let without = profiles(false, None);
    let mut prof = serde_json::Map::new();
    let mut rules = serde_json::Map::new();
    for ((name, p), (_, r)) in with.iter().zip(&without) {
        prof.insert(name.to_string(), metrics::pipeline_metrics(p, &samples));
        rules.insert(name.to_string(), metrics::pipeline_metrics(r, &samples));
    }
    let eval_file = format!(
        "policies/models/train/data/{}",
        input.file_name().unwrap_or_default().to_string_lossy()
    );
    let out = json!({
        "eval_file": eval_file,
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

/// One line per sample for rule and band development: id, category,
/// language, the decision per profile, the classifier's best probability
/// and the other injection findings (rule:severity).
fn dump(input: &Path, model: Option<&Path>) {
    let samples = metrics::load(input);
    let with = profiles(true, model);
    let out = std::io::stdout();
    let mut out = std::io::BufWriter::new(out.lock());
    for s in &samples {
        let Some(cat) = metrics::category(s) else {
            continue;
        };
        let mut decisions = Vec::new();
        let mut detail = String::new();
        let mut prob = 0.0;
        for (name, p) in &with {
            let a = metrics::assess_sample(p, s);
            decisions.push(format!("{name}={}", a.decision.as_str()));
            if *name == "production" {
                prob = metrics::probability(p, s);
                for f in &a.findings {
                    detail.push_str(&format!(" {}:{}", f.rule_id, f.severity.as_str()));
                }
            }
        }
        writeln!(
            out,
            "{}\t{cat}\t{}\t{}\t{prob:.4}\t{}",
            s.id,
            s.lang,
            decisions.join(","),
            detail.trim()
        )
        .unwrap();
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("features") if args.len() == 5 => {
            export(&spec(&args[2]), Path::new(&args[3]), Path::new(&args[4]))
        }
        Some("dump") if args.len() >= 3 => {
            let model = args
                .iter()
                .position(|a| a == "--model")
                .and_then(|i| args.get(i + 1))
                .map(Path::new);
            dump(Path::new(&args[2]), model)
        }
        Some("evaluate") if args.len() >= 3 => {
            let opt = |flag: &str| {
                args.iter()
                    .position(|a| a == flag)
                    .and_then(|i| args.get(i + 1))
                    .map(Path::new)
            };
            evaluate(Path::new(&args[2]), opt("--write"), opt("--model"))
        }
        _ => {
            eprintln!("usage: injection_model features SPEC IN.jsonl OUT.svm | evaluate EVAL.jsonl [--write METRICS.json] [--model FILE] | dump EVAL.jsonl [--model FILE]");
            std::process::exit(2);
        }
    }
}
