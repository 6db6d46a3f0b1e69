//! Measure detection on the development corpus (`tests/corpus/dev/`):
//! true-positive rate on attacks, false-positive rate on benign text, and
//! span-level PII precision/recall, for every built-in profile.
//!
//! ```text
//! cargo run --release -p asg --example measure_corpus -- [--split dev|holdout|all]
//!     [--misses N] [--false-positives N]
//! ```
//!
//! The split is fixed and deterministic: about a fifth of every data set is
//! a hold-out that rules are never tuned on (CyberSecEval `prompt_id % 5 ==
//! 4`, the last BIPIA attack of each category and the last ten e-mails,
//! Presidio records with `index % 5 == 4`). Report both halves: a gap
//! between them is over-fitting.
//!
//! How samples are built:
//! * CyberSecEval: `user_input` as user text (every record is an attack);
//! * BIPIA: each attack inserted into e-mails (start, middle, end) and
//!   inspected as a tool result (indirect injection); the clean e-mails,
//!   as tool results, are the negatives;
//! * Presidio: each sentence as user text (negatives for injection; PII
//!   spans scored separately). Decisions use the proxy's masking, so PII
//!   that is masked does not count as a false positive.

use asg::decision::detectors::pii::PiiScanner;
use asg::decision::{assess, Decision, DetectorId, Masking, Policy, Severity, Subject, Surface};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

#[derive(Clone)]
struct Sample {
    set: &'static str,
    group: String,
    surface: Surface,
    text: String,
    positive: bool,
    holdout: bool,
}

fn corpus_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/corpus/dev")
}

fn read_json(path: &str) -> Value {
    let p = corpus_dir().join(path);
    let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn emails() -> Vec<String> {
    let p = corpus_dir().join("bipia/email_train.jsonl");
    std::fs::read_to_string(&p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let v: Value = serde_json::from_str(l).expect("jsonl line");
            v["context"].as_str().unwrap_or_default().to_string()
        })
        .collect()
}

/// Insert `attack` into `email` at the start, in the middle (at a sentence
/// boundary) or at the end, as BIPIA does.
fn insert(email: &str, attack: &str, position: usize) -> String {
    match position {
        0 => format!("{attack}\n{email}"),
        1 => {
            let mut mid = email.len() / 2;
            while !email.is_char_boundary(mid) {
                mid += 1;
            }
            let cut = email[mid..].find(". ").map(|i| mid + i + 2).unwrap_or(mid);
            format!("{} {attack} {}", &email[..cut], &email[cut..])
        }
        _ => format!("{email}\n{attack}"),
    }
}

fn samples() -> Vec<Sample> {
    let mut out = Vec::new();
    for r in read_json("cyberseceval_prompt_injection.json")
        .as_array()
        .expect("array")
    {
        let id = r["prompt_id"].as_u64().unwrap_or(0);
        out.push(Sample {
            set: "cyberseceval",
            group: format!(
                "{}/{}",
                r["injection_type"].as_str().unwrap_or(""),
                r["injection_variant"].as_str().unwrap_or("")
            ),
            surface: Surface::User,
            text: r["user_input"].as_str().unwrap_or_default().to_string(),
            positive: true,
            holdout: id % 5 == 4,
        });
    }
    let emails = emails();
    for (file, set) in [
        ("bipia/text_attack_train.json", "bipia_text_attack"),
        ("bipia/code_attack_train.json", "bipia_code_attack"),
    ] {
        let attacks = read_json(file);
        for (k, (category, list)) in attacks.as_object().expect("object").iter().enumerate() {
            for (i, attack) in list.as_array().expect("array").iter().enumerate() {
                let attack = attack.as_str().unwrap_or_default();
                let holdout = i == 4;
                let pool: Vec<usize> = if holdout {
                    (40..emails.len()).collect()
                } else {
                    (0..40).collect()
                };
                for j in 0..4 {
                    let e = pool[(k * 7 + i * 3 + j * 13) % pool.len()];
                    for pos in 0..3 {
                        out.push(Sample {
                            set,
                            group: category.clone(),
                            surface: Surface::ToolResult,
                            text: insert(&emails[e], attack, pos),
                            positive: true,
                            holdout,
                        });
                    }
                }
            }
        }
    }
    for (i, e) in emails.iter().enumerate() {
        out.push(Sample {
            set: "bipia_clean_email",
            group: "email".into(),
            surface: Surface::ToolResult,
            text: e.clone(),
            positive: false,
            holdout: i >= 40,
        });
    }
    for (i, r) in read_json("presidio_synth_pii_dev.json")
        .as_array()
        .expect("array")
        .iter()
        .enumerate()
    {
        out.push(Sample {
            set: "presidio_sentences",
            group: "sentence".into(),
            surface: Surface::User,
            text: r["full_text"].as_str().unwrap_or_default().to_string(),
            positive: false,
            holdout: i % 5 == 4,
        });
    }
    out
}

fn is_injection(d: DetectorId) -> bool {
    matches!(d, DetectorId::PromptInjection | DetectorId::PolicyDrift)
}

#[derive(Default, Clone)]
struct Tally {
    n: usize,
    flagged: usize,
    decided: BTreeMap<&'static str, usize>,
}

fn pct(a: usize, n: usize) -> String {
    if n == 0 {
        "-".into()
    } else {
        format!("{:.1}%", 100.0 * a as f64 / n as f64)
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1).cloned())
    };
    let split = arg("--split").unwrap_or_else(|| "all".into());
    let show_misses: usize = arg("--misses").and_then(|v| v.parse().ok()).unwrap_or(0);
    let show_fp: usize = arg("--false-positives")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let profiles: Vec<(&'static str, Policy)> = ["dev", "production", "strict"]
        .into_iter()
        .map(|p| (p, Policy::load(p, None).expect("profile")))
        .collect();

    let all = samples();
    let chosen: Vec<&Sample> = all
        .iter()
        .filter(|s| match split.as_str() {
            "dev" => !s.holdout,
            "holdout" => s.holdout,
            _ => true,
        })
        .collect();

    let mut sets: BTreeMap<(&'static str, bool), Tally> = BTreeMap::new();
    let mut groups: BTreeMap<(&'static str, String), Tally> = BTreeMap::new();
    let mut misses: Vec<&Sample> = Vec::new();
    let mut fps: Vec<(&Sample, Vec<String>)> = Vec::new();
    let started = Instant::now();
    let mut inspected = 0usize;
    for s in &chosen {
        let mut subject = Subject::default();
        subject.push_text(s.surface, s.text.clone());
        let mut flagged = false;
        let mut tally_decisions = Vec::new();
        for (name, policy) in &profiles {
            let a = assess(policy, &subject, Masking::Applied);
            inspected += 1;
            if *name == "dev" {
                flagged = a
                    .findings
                    .iter()
                    .any(|f| is_injection(f.detector) && f.severity >= Severity::Medium);
                if s.positive && !flagged {
                    misses.push(s);
                }
                if !s.positive && (flagged || !a.decision.permits()) {
                    fps.push((
                        s,
                        a.findings
                            .iter()
                            .filter(|f| !f.redactable)
                            .map(|f| f.rule_id.clone())
                            .collect(),
                    ));
                }
            }
            let blocked = !matches!(a.decision, Decision::Allow | Decision::AllowWithRedaction);
            tally_decisions.push((*name, blocked));
        }
        for t in [
            sets.entry((s.set, s.positive)).or_default(),
            groups.entry((s.set, s.group.clone())).or_default(),
        ] {
            t.n += 1;
            t.flagged += flagged as usize;
            for (name, blocked) in &tally_decisions {
                *t.decided.entry(name).or_default() += *blocked as usize;
            }
        }
    }
    let per = started.elapsed().as_secs_f64() * 1e6 / inspected.max(1) as f64;

    println!(
        "split: {split}   samples: {}   mean assess time: {per:.1} µs\n",
        chosen.len()
    );
    println!("| data set | kind | n | injection finding (≥ medium) | dev: not allowed | production: not allowed | strict: not allowed |");
    println!("|---|---|---:|---:|---:|---:|---:|");
    for ((set, positive), t) in &sets {
        println!(
            "| {set} | {} | {} | {} | {} | {} | {} |",
            if *positive {
                "attack (TPR)"
            } else {
                "benign (FPR)"
            },
            t.n,
            pct(t.flagged, t.n),
            pct(t.decided["dev"], t.n),
            pct(t.decided["production"], t.n),
            pct(t.decided["strict"], t.n),
        );
    }
    println!("\n| data set | group | n | injection finding | dev | production | strict |");
    println!("|---|---|---:|---:|---:|---:|---:|");
    for ((set, group), t) in &groups {
        if set.starts_with("bipia_clean") || set.starts_with("presidio") {
            continue;
        }
        println!(
            "| {set} | {group} | {} | {} | {} | {} | {} |",
            t.n,
            pct(t.flagged, t.n),
            pct(t.decided["dev"], t.n),
            pct(t.decided["production"], t.n),
            pct(t.decided["strict"], t.n),
        );
    }
    pii_report(&split, &profiles[0].1);

    if show_misses > 0 {
        println!("\n## misses (first {show_misses})");
        for s in misses.iter().take(show_misses) {
            println!("- [{} {}] {}", s.set, s.group, one_line(&s.text, 240));
        }
    }
    if show_fp > 0 {
        println!("\n## false positives (first {show_fp})");
        for (s, ids) in fps.iter().take(show_fp) {
            println!("- [{}] {:?} {}", s.set, ids, one_line(&s.text, 200));
        }
    }
}

fn one_line(s: &str, max: usize) -> String {
    let flat: String = s.split_whitespace().collect::<Vec<_>>().join(" ");
    flat.chars().take(max).collect()
}

/// Span-level PII precision and recall on the Presidio sentences.
fn pii_report(split: &str, policy: &Policy) {
    let pii: &PiiScanner = &policy.detectors.pii;
    let kinds: BTreeMap<&str, &str> = [
        ("CREDIT_CARD", "pii_card"),
        ("PHONE_NUMBER", "pii_phone"),
        ("EMAIL_ADDRESS", "pii_email"),
        ("IBAN_CODE", "pii_iban"),
        ("US_SSN", "pii_ssn"),
    ]
    .into_iter()
    .collect();
    // kind → (gold, found, predicted, correct)
    let mut stats: BTreeMap<&str, (usize, usize, usize, usize)> = BTreeMap::new();
    let mut secret_hits = 0usize;
    let mut n = 0usize;
    let mut stray: Vec<String> = Vec::new();
    let mut missed: Vec<String> = Vec::new();
    for (i, r) in read_json("presidio_synth_pii_dev.json")
        .as_array()
        .expect("array")
        .iter()
        .enumerate()
    {
        let holdout = i % 5 == 4;
        if (split == "dev" && holdout) || (split == "holdout" && !holdout) {
            continue;
        }
        n += 1;
        let text = r["full_text"].as_str().unwrap_or_default();
        let byte_at = |chars: usize| {
            text.char_indices()
                .nth(chars)
                .map(|(b, _)| b)
                .unwrap_or(text.len())
        };
        let gold: Vec<(&str, usize, usize)> = r["spans"]
            .as_array()
            .expect("spans")
            .iter()
            .map(|s| {
                (
                    s["entity_type"].as_str().unwrap_or(""),
                    byte_at(s["start_position"].as_u64().unwrap_or(0) as usize),
                    byte_at(s["end_position"].as_u64().unwrap_or(0) as usize),
                )
            })
            .collect();
        let predicted = pii.find(text);
        for (gold_kind, kind) in &kinds {
            let e = stats.entry(kind).or_default();
            for g in gold.iter().filter(|g| g.0 == *gold_kind) {
                e.0 += 1;
                if predicted
                    .iter()
                    .any(|p| p.kind == *kind && p.start < g.2 && g.1 < p.end)
                {
                    e.1 += 1;
                } else if missed.len() < 12 {
                    let from = text[..g.1]
                        .char_indices()
                        .rev()
                        .nth(24)
                        .map_or(0, |(i, _)| i);
                    missed.push(format!("{kind}: {:?}", &text[from..g.2]));
                }
            }
            for p in predicted.iter().filter(|p| p.kind == *kind) {
                e.2 += 1;
                if gold
                    .iter()
                    .any(|g| g.0 == *gold_kind && p.start < g.2 && g.1 < p.end)
                {
                    e.3 += 1;
                } else if stray.len() < 12 {
                    stray.push(format!("{kind}: {:?}", &text[p.start..p.end]));
                }
            }
        }
        if !policy.detectors.secrets.find(text).is_empty() {
            secret_hits += 1;
        }
    }
    println!("\nPII spans on {n} Presidio sentences (match = overlap with a gold span of the same type)\n");
    println!("| kind | gold | recall | predicted | precision |");
    println!("|---|---:|---:|---:|---:|");
    for (kind, (gold, found, predicted, correct)) in &stats {
        println!(
            "| {kind} | {gold} | {} | {predicted} | {} |",
            pct(*found, *gold),
            pct(*correct, *predicted)
        );
    }
    println!("\nsentences with a secret finding (all false positives): {secret_hits} / {n}");
    if !stray.is_empty() {
        println!("stray PII predictions: {stray:?}");
    }
    if !missed.is_empty() {
        println!("missed PII: {missed:?}");
    }
}
