//! Print what the gateway finds in a captured request body, for rule
//! development: findings, decision and what redaction would mask.
//!
//! ```text
//! cargo run -p asg --example explain_request -- FILE [profile]
//! ```
//! FILE holds either a bare request body or a capture
//! (`{"path": …, "headers": …, "body": …}`, as in `tests/fixtures/agents/`).

use asg::datapath::dialect::{redact_json, ApiKind, Dialect};
use asg::decision::redact::Masker;
use asg::decision::{assess, Masking, Policy};
use serde_json::Value;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let file = args.get(1).expect("usage: explain_request FILE [profile]");
    let profile = args.get(2).map(String::as_str).unwrap_or("production");
    let policy = Policy::load(profile, None).expect("profile");
    let raw: Value =
        serde_json::from_str(&std::fs::read_to_string(file).expect("read")).expect("json");
    let (path, mut body) = match raw.get("body") {
        Some(b) => (
            raw["path"].as_str().unwrap_or("/v1/messages").to_string(),
            b.clone(),
        ),
        None => ("/v1/chat/completions".to_string(), raw.clone()),
    };
    let path = path.split('?').next().unwrap_or("").to_string();
    let dialect = Dialect::detect(ApiKind::Auto, "POST", &path);
    let subject = dialect.request_subject(&body, "tool");
    let a = assess(&policy, &subject, Masking::Applied);
    println!(
        "{dialect:?}: {} texts, {} calls -> {}",
        subject.texts.len(),
        subject.tool_calls.len(),
        a.decision
    );
    for f in &a.findings {
        println!(
            "  {:<40} {:<8} {:.2} {} {:?}",
            f.rule_id,
            f.severity.as_str(),
            f.score,
            f.location.as_deref().unwrap_or(""),
            f.evidence.as_deref().unwrap_or("")
        );
    }
    let masks = redact_json(&mut body, &policy.redactor, &Masker::new([0; 32]));
    for m in masks {
        println!("  mask {m:?}");
    }
}
