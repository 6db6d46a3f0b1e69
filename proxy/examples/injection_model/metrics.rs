//! Metrics of the injection classifier on the bundled evaluation split
//! (`policies/models/train/data/eval.jsonl`), shared by the `injection_model`
//! example (which writes them into the model card's JSON) and the
//! regression test (which checks that the shipped weights reproduce them).

use asg::decision::detectors::injection::classifier::{Head, Work};
use asg::decision::normalize::Normalized;
use asg::decision::{assess, Masking, Policy, Subject, Surface};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

#[derive(Debug, Clone)]
pub struct Sample {
    pub id: u64,
    pub source: String,
    pub lang: String,
    pub kind: String,
    pub surface: Surface,
    /// Context a harness attached to the user's turn (surface `attached`):
    /// judged as the proxy judges it, a tool result in the user's turn.
    pub attached: bool,
    pub text: String,
    pub direct: Option<u8>,
    pub indirect: Option<u8>,
}

pub fn load(path: &std::path::Path) -> Vec<Sample> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let v: Value = serde_json::from_str(l).expect("eval.jsonl line");
            let label = |k: &str| v[k].as_u64().map(|x| x as u8);
            Sample {
                id: v["id"].as_u64().expect("id"),
                source: v["source"].as_str().unwrap_or_default().into(),
                lang: v["lang"].as_str().unwrap_or_default().into(),
                kind: v["kind"].as_str().unwrap_or_default().into(),
                surface: match v["surface"].as_str() {
                    Some("tool_result" | "attached") => Surface::ToolResult,
                    _ => Surface::User,
                },
                attached: v["surface"].as_str() == Some("attached"),
                text: v["text"].as_str().unwrap_or_default().into(),
                direct: label("direct"),
                indirect: label("indirect"),
            }
        })
        .collect()
}

/// The evaluation categories the model card reports.
pub fn category(s: &Sample) -> Option<&'static str> {
    match (s.surface, s.direct, s.indirect) {
        (Surface::User, Some(1), _) => Some("direct_attacks"),
        (Surface::User, Some(0), _) => Some("benign_prompts"),
        (Surface::ToolResult, _, Some(1)) => Some("indirect_attacks"),
        (Surface::ToolResult, _, Some(0)) => Some("benign_documents"),
        _ => None,
    }
}

#[derive(Default, Clone, Copy)]
struct Tally {
    n: usize,
    hit: usize,
}

fn rate(t: Tally) -> Value {
    let r = if t.n == 0 {
        0.0
    } else {
        t.hit as f64 / t.n as f64
    };
    json!({"n": t.n, "hit": t.hit, "rate": (r * 10_000.0).round() / 10_000.0})
}

fn table(map: &BTreeMap<String, Tally>) -> Value {
    Value::Object(
        map.iter()
            .map(|(k, t)| (k.clone(), rate(*t)))
            .collect::<Map<_, _>>(),
    )
}

/// Per category, per language and per source: how often `hit` is true.
fn tabulate(samples: &[Sample], hit: impl Fn(&Sample) -> bool) -> Value {
    let mut cats: BTreeMap<String, Tally> = BTreeMap::new();
    let mut langs: BTreeMap<String, BTreeMap<String, Tally>> = BTreeMap::new();
    let mut sources: BTreeMap<String, BTreeMap<String, Tally>> = BTreeMap::new();
    let mut benign_en = Tally::default();
    let mut benign_other = Tally::default();
    for s in samples {
        let Some(cat) = category(s) else { continue };
        let h = hit(s);
        for t in [
            cats.entry(cat.into()).or_default(),
            langs
                .entry(cat.into())
                .or_default()
                .entry(s.lang.clone())
                .or_default(),
            sources
                .entry(cat.into())
                .or_default()
                .entry(format!("{}/{}", s.source, s.kind))
                .or_default(),
        ] {
            t.n += 1;
            t.hit += h as usize;
        }
        if cat.starts_with("benign") && s.lang != "xx" {
            let t = if s.lang == "en" {
                &mut benign_en
            } else {
                &mut benign_other
            };
            t.n += 1;
            t.hit += h as usize;
        }
    }
    json!({
        "categories": table(&cats),
        "benign_english": rate(benign_en),
        "benign_non_english": rate(benign_other),
        "languages": Value::Object(langs.iter().map(|(k, v)| (k.clone(), table(v))).collect()),
        "sources": Value::Object(sources.iter().map(|(k, v)| (k.clone(), table(v))).collect()),
    })
}

/// The classifier alone: each text's best-window probability against the
/// head's bands (medium and high) of `policy`.
pub fn classifier_metrics(policy: &Policy, samples: &[Sample]) -> Value {
    let c = policy
        .detectors
        .injection
        .classifier()
        .expect("the profile enables the classifier");
    let probs: BTreeMap<u64, (Head, f64)> = samples
        .iter()
        .filter_map(|s| {
            let head = c.head_for(s.surface)?;
            Some((s.id, (head, probability(policy, s))))
        })
        .collect();
    let at = |level: &str| {
        tabulate(samples, |s| {
            probs.get(&s.id).is_some_and(|(head, p)| {
                let band = c.band(*head);
                *p >= if level == "high" {
                    band.high
                } else {
                    band.medium
                }
            })
        })
    };
    json!({
        "model": c.model().version,
        "bands": {
            "direct": {"medium": c.band(Head::Direct).medium, "high": c.band(Head::Direct).high},
            "indirect": {"medium": c.band(Head::Indirect).medium, "high": c.band(Head::Indirect).high},
        },
        "medium": at("medium"),
        "high": at("high"),
    })
}

/// The decision of `policy` on one sample, judged as the proxy judges it.
pub fn assess_sample(policy: &Policy, s: &Sample) -> asg::decision::Assessment {
    let mut subject = Subject::default();
    if s.attached {
        subject.push_attached(s.text.clone());
    } else {
        subject.push_text(s.surface, s.text.clone());
    }
    assess(policy, &subject, Masking::Applied)
}

/// The classifier's best-window probability for a sample (0 when its
/// surface is not scored).
pub fn probability(policy: &Policy, s: &Sample) -> f64 {
    let Some(c) = policy.detectors.injection.classifier() else {
        return 0.0;
    };
    let Some(head) = c.head_for(s.surface) else {
        return 0.0;
    };
    let folded = Normalized::of(&s.text).folded;
    c.model()
        .score(head, &folded, &mut Work::default())
        .map_or(0.0, |x| x.probability())
}

/// The whole pipeline (rules + classifier + every other detector) as the
/// proxy runs it: how often the profile does not simply allow a text
/// (challenge, approval or block). Masked secrets and PII do not count.
pub fn pipeline_metrics(policy: &Policy, samples: &[Sample]) -> Value {
    let mut not_allowed: BTreeMap<u64, bool> = BTreeMap::new();
    for s in samples {
        let a = assess_sample(policy, s);
        not_allowed.insert(s.id, !a.decision.permits());
    }
    tabulate(samples, |s| not_allowed[&s.id])
}
