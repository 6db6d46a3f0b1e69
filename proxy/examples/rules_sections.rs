//! Score the phrase rules alone (classifier off) on authored section files,
//! for rule development: recall on the attack sections and hits on the
//! benign ones, per language and per profile.
//!
//! ```text
//! cargo run --release -p asg --example rules_sections -- DIR... [--show SECTION] [--lang LANG]
//! ```
//!
//! Each DIR holds `<lang>.txt` files with `[direct]`, `[indirect]`,
//! `[benign_prompt]` and `[benign_doc]` sections (other sections are
//! skipped). Direct and benign prompts are inspected as user text,
//! indirect attacks and benign documents as tool results. A line counts as
//! a rule hit when a rule finding of medium severity or more is raised, and
//! as flagged in a profile when the decision is neither allow nor
//! allow-with-redaction. `--show SECTION` prints, for attack sections, the
//! lines no rule caught and, for benign sections, the lines some rule hit.

use asg::decision::policy::{PolicySource, EMBEDDED_PROFILES};
use asg::decision::{assess, Decision, Masking, Policy, Severity, Subject, Surface};
use std::collections::BTreeMap;
use std::path::Path;

const SECTIONS: [(&str, Surface, bool); 4] = [
    ("direct", Surface::User, true),
    ("indirect", Surface::ToolResult, true),
    ("benign_prompt", Surface::User, false),
    ("benign_doc", Surface::ToolResult, false),
];

fn sections(path: &Path) -> BTreeMap<String, Vec<String>> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut cur = String::new();
    for line in text.lines() {
        let t = line.trim();
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        let is_header = t.len() > 2
            && t.starts_with('[')
            && t.ends_with(']')
            && t[1..t.len() - 1]
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if is_header {
            cur = t[1..t.len() - 1].to_string();
            continue;
        }
        out.entry(cur.clone()).or_default().push(t.to_string());
    }
    out
}

fn profiles() -> Vec<(&'static str, Policy)> {
    let policies = Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies");
    EMBEDDED_PROFILES
        .iter()
        .map(|(name, text)| {
            // The rules file is read from `policies/` at run time (not the
            // copy compiled in), so edited rules are scored without a rebuild.
            let mut doc: toml::Table = toml::from_str(text).expect("profile TOML");
            let inj = doc
                .entry("injection")
                .or_insert_with(|| toml::Value::Table(toml::Table::new()))
                .as_table_mut()
                .expect("[injection] table");
            inj.insert("rules_file".into(), "rules/injection.toml".into());
            let cls = inj
                .entry("classifier")
                .or_insert_with(|| toml::Value::Table(toml::Table::new()))
                .as_table_mut()
                .expect("[injection.classifier] table");
            cls.insert("enabled".into(), false.into());
            let text = toml::to_string(&doc).expect("profile TOML");
            let folder = asg::app::policy::DirSources::new(&policies);
            let p = Policy::compile(&text, PolicySource::Embedded(name), Some(&folder))
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            (*name, p)
        })
        .collect()
}

#[derive(Default, Clone)]
struct Tally {
    n: usize,
    rule: usize,
    flagged: Vec<usize>,
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut dirs = Vec::new();
    let mut show: Option<String> = None;
    let mut only_lang: Option<String> = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--show" => show = it.next().cloned(),
            "--lang" => only_lang = it.next().cloned(),
            "-h" | "--help" => {
                println!("rules_sections DIR... [--show SECTION] [--lang LANG]");
                return;
            }
            d => dirs.push(d.to_string()),
        }
    }
    assert!(
        !dirs.is_empty(),
        "give at least one directory of <lang>.txt files"
    );
    let profiles = profiles();
    // (section, lang) → tally
    let mut table: BTreeMap<(String, String), Tally> = BTreeMap::new();
    for dir in &dirs {
        let mut files: Vec<_> = std::fs::read_dir(dir)
            .unwrap_or_else(|e| panic!("{dir}: {e}"))
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "txt"))
            .collect();
        files.sort();
        for file in files {
            let lang = file.file_stem().unwrap().to_string_lossy().to_string();
            if only_lang.as_ref().is_some_and(|l| *l != lang) {
                continue;
            }
            let secs = sections(&file);
            for (name, surface, attack) in SECTIONS {
                let Some(lines) = secs.get(name) else {
                    continue;
                };
                let t = table
                    .entry((name.to_string(), lang.clone()))
                    .or_insert_with(|| Tally {
                        flagged: vec![0; profiles.len()],
                        ..Tally::default()
                    });
                for line in lines {
                    let mut s = Subject::default();
                    s.push_text(surface, line);
                    t.n += 1;
                    let mut rule_ids = Vec::new();
                    for (k, (_, policy)) in profiles.iter().enumerate() {
                        let a = assess(policy, &s, Masking::None);
                        if !matches!(a.decision, Decision::Allow | Decision::AllowWithRedaction) {
                            t.flagged[k] += 1;
                        }
                        if k == 0 {
                            rule_ids = a
                                .findings
                                .iter()
                                .filter(|f| f.severity >= Severity::Medium)
                                .map(|f| format!("{}:{}", f.rule_id, f.severity.as_str()))
                                .collect();
                        }
                    }
                    if !rule_ids.is_empty() {
                        t.rule += 1;
                    }
                    if show.as_deref() == Some(name) && (rule_ids.is_empty() == attack) {
                        println!("{lang:<3} {name:<14} {line}\n      {rule_ids:?}");
                    }
                }
            }
        }
    }
    println!(
        "\n{:<14} {:<4} {:>4} {:>6} {}",
        "section",
        "lang",
        "n",
        "rules",
        profiles
            .iter()
            .map(|(n, _)| format!("{n:>11}"))
            .collect::<String>()
    );
    let mut totals: BTreeMap<String, Tally> = BTreeMap::new();
    for ((sec, lang), t) in &table {
        println!(
            "{sec:<14} {lang:<4} {:>4} {:>6} {}",
            t.n,
            t.rule,
            t.flagged
                .iter()
                .map(|x| format!("{x:>11}"))
                .collect::<String>()
        );
        let tot = totals.entry(sec.clone()).or_insert_with(|| Tally {
            flagged: vec![0; profiles.len()],
            ..Tally::default()
        });
        tot.n += t.n;
        tot.rule += t.rule;
        for (a, b) in tot.flagged.iter_mut().zip(&t.flagged) {
            *a += b;
        }
    }
    println!();
    for (sec, t) in &totals {
        let pct = |x: usize| 100.0 * x as f64 / t.n.max(1) as f64;
        println!(
            "TOTAL {sec:<14} n={:<5} rules={:<4} ({:5.1} %) {}",
            t.n,
            t.rule,
            pct(t.rule),
            profiles
                .iter()
                .zip(&t.flagged)
                .map(|((n, _), x)| format!(" {n}={x} ({:.1} %)", pct(*x)))
                .collect::<String>()
        );
    }
}
