//! Measure tool-call judgement on the tool corpus (`tests/corpus/tools/`):
//! false positives on ordinary work, attacks caught, risky calls held, and
//! the cost of judging one call, for every built-in profile.
//!
//! ```text
//! cargo run --release -p asg --example measure_tools -- [--split frozen|tuning|all|none]
//!     [--file CALLS.jsonl] [--show-fp N] [--show-misses N] [--profile NAME] [--rounds N]
//! ```
//!
//! `frozen.jsonl` was written and committed before any rule was tuned and is
//! never tuned on: report it. Calls are judged exactly as the proxy judges
//! a proposed or requested tool call (`enforce::judge_calls`, masking on,
//! no session history), so the decision is the one the agent would see
//! after the profile's challenge handling.

use asg::datapath::enforce::{judge_calls, CallAction};
use asg::decision::{Masking, Policy, ToolCall};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

struct Case {
    id: String,
    set: String,
    effect: String,
    call: ToolCall,
}

fn expand(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            if let Some(Value::Array(r)) = m.get("$repeat") {
                if m.len() == 1 && r.len() == 2 {
                    let s = r[0].as_str().unwrap_or("");
                    let n = r[1].as_u64().unwrap_or(0) as usize;
                    return Value::String(s.repeat(n));
                }
            }
            Value::Object(m.iter().map(|(k, v)| (k.clone(), expand(v))).collect())
        }
        Value::Array(a) => Value::Array(a.iter().map(expand).collect()),
        other => other.clone(),
    }
}

fn load(file: &str) -> Vec<Case> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/corpus/tools")
        .join(file);
    let Ok(text) = std::fs::read_to_string(&path) else {
        eprintln!("note: {} not found, skipped", path.display());
        return Vec::new();
    };
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let v: Value = serde_json::from_str(l).expect("corpus line is JSON");
            Case {
                id: v["id"].as_str().unwrap_or("").to_string(),
                set: v["set"].as_str().unwrap_or("").to_string(),
                effect: v["effect"].as_str().unwrap_or("").to_string(),
                call: ToolCall::new(v["tool"].as_str().unwrap_or(""), expand(&v["args"])),
            }
        })
        .collect()
}

fn benign(set: &str) -> bool {
    matches!(set, "ordinary" | "hard_negative" | "twin")
}

/// In strict, only reads, builds, tests and workspace edits must flow.
fn counts_in_strict(effect: &str) -> bool {
    matches!(effect, "read" | "build" | "vcs" | "write")
}

fn pct(n: usize, d: usize) -> String {
    if d == 0 {
        "   -  ".to_string()
    } else {
        format!("{:5.1}%", 100.0 * n as f64 / d as f64)
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let opt = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let split = opt("--split").unwrap_or_else(|| "frozen".into());
    let show_fp: usize = opt("--show-fp").and_then(|s| s.parse().ok()).unwrap_or(0);
    let show_misses: usize = opt("--show-misses")
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let rounds: usize = opt("--rounds").and_then(|s| s.parse().ok()).unwrap_or(20);
    let only = opt("--profile");
    let mut cases = Vec::new();
    if split == "frozen" || split == "all" {
        cases.extend(load("frozen.jsonl"));
    }
    if split == "tuning" || split == "all" {
        cases.extend(load("tuning.jsonl"));
    }
    // Calls of one's own in the corpus format, e.g. a probe before writing
    // them into the tuning part.
    if let Some(file) = opt("--file") {
        cases.extend(load(&file));
    }
    println!("split {split}: {} calls", cases.len());
    for profile in ["dev", "production", "strict"] {
        if only.as_deref().is_some_and(|o| o != profile) {
            continue;
        }
        let policy = Policy::load(profile, None).expect("profile");
        let mut fp: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
        let mut strict_fp = (0usize, 0usize);
        let mut caught: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
        let mut risky = (0usize, 0usize);
        let mut fps: Vec<String> = Vec::new();
        let mut misses: Vec<String> = Vec::new();
        for c in &cases {
            let judged = judge_calls(
                &policy,
                std::slice::from_ref(&c.call),
                &[],
                Masking::Applied,
            )
            .pop()
            .expect("one call judged");
            let passes = judged.action == CallAction::Pass;
            let why = || {
                let mut rules: Vec<&str> = judged
                    .assessment
                    .findings
                    .iter()
                    .map(|f| f.rule_id.as_str())
                    .collect();
                rules.dedup();
                format!(
                    "{:<28} {:<18} {} {:?}",
                    c.id,
                    judged.decision.as_str(),
                    rules.join(","),
                    short(&c.call)
                )
            };
            if benign(&c.set) {
                let e = fp.entry(set_name(&c.set)).or_default();
                e.1 += 1;
                let strict_counts = profile != "strict" || counts_in_strict(&c.effect);
                if profile == "strict" && counts_in_strict(&c.effect) {
                    strict_fp.1 += 1;
                    if !passes {
                        strict_fp.0 += 1;
                    }
                }
                if !passes {
                    e.0 += 1;
                    if strict_counts {
                        fps.push(why());
                    }
                }
            } else if c.set == "attack" {
                let e = caught.entry(family(&c.effect)).or_default();
                e.1 += 1;
                if !passes {
                    e.0 += 1;
                } else {
                    misses.push(why());
                }
            } else if c.set == "risky" {
                risky.1 += 1;
                if !passes {
                    risky.0 += 1;
                } else {
                    misses.push(format!("(risky) {}", why()));
                }
            }
        }
        println!("\n== {profile}");
        let (mut n, mut d) = (0, 0);
        for (set, (a, b)) in &fp {
            println!(
                "  benign {set:<14} not passed {a:>3}/{b:<3} {}",
                pct(*a, *b)
            );
            n += a;
            d += b;
        }
        println!(
            "  benign (all)           not passed {n:>3}/{d:<3} {}",
            pct(n, d)
        );
        if profile == "strict" {
            println!(
                "  strict reads/builds/tests/edits not passed {:>3}/{:<3} {}",
                strict_fp.0,
                strict_fp.1,
                pct(strict_fp.0, strict_fp.1)
            );
        }
        let (mut n, mut d) = (0, 0);
        for (fam, (a, b)) in &caught {
            println!("  attack {fam:<22} stopped {a:>3}/{b:<3} {}", pct(*a, *b));
            n += a;
            d += b;
        }
        println!(
            "  attack (all)                   stopped {n:>3}/{d:<3} {}",
            pct(n, d)
        );
        println!(
            "  risky held for approval or blocked {:>3}/{:<3} {}",
            risky.0,
            risky.1,
            pct(risky.0, risky.1)
        );
        for l in fps.iter().take(show_fp) {
            println!("    FP   {l}");
        }
        for l in misses.iter().take(show_misses) {
            println!("    MISS {l}");
        }
        if profile == "production" {
            cost(&policy, &cases, rounds);
        }
    }
}

/// Time to judge one call (the decision core, as the proxy runs it per
/// call), per call: the median over `rounds` runs; then percentiles over
/// the ordinary calls.
fn cost(policy: &Policy, cases: &[Case], rounds: usize) {
    let mut per_call: Vec<f64> = Vec::new();
    for c in cases.iter().filter(|c| c.set == "ordinary") {
        let mut times: Vec<f64> = (0..rounds.max(1))
            .map(|_| {
                let t = Instant::now();
                let j = judge_calls(policy, std::slice::from_ref(&c.call), &[], Masking::Applied);
                std::hint::black_box(j);
                t.elapsed().as_secs_f64() * 1e6
            })
            .collect();
        times.sort_by(f64::total_cmp);
        per_call.push(times[times.len() / 2]);
    }
    per_call.sort_by(f64::total_cmp);
    let at = |q: f64| per_call[((per_call.len() as f64 - 1.0) * q).round() as usize];
    if !per_call.is_empty() {
        println!(
            "  cost per ordinary call (µs, median of {rounds} runs each): p50 {:.1}  p90 {:.1}  p99 {:.1}  max {:.1}",
            at(0.5),
            at(0.9),
            at(0.99),
            at(1.0)
        );
    }
}

fn set_name(s: &str) -> &'static str {
    match s {
        "ordinary" => "ordinary",
        "hard_negative" => "hard_negative",
        _ => "twin",
    }
}

fn family(effect: &str) -> &'static str {
    match effect {
        "credential_read" => "credential_read",
        "shell" => "shell",
        "exfiltration" => "exfiltration",
        "persistence" => "persistence",
        "privilege_escalation" => "privilege_escalation",
        "download_exec" => "download_exec",
        "destroy" => "destroy",
        "defense_evasion" => "defense_evasion",
        "cryptomining" => "cryptomining",
        _ => "other",
    }
}

fn short(call: &ToolCall) -> String {
    let t = call.target();
    let t: String = t.chars().take(90).collect();
    format!("{} {t}", call.name)
}
