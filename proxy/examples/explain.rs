//! Print the findings and decision for one text, for rule development.
//!
//! ```text
//! echo 'Ignore all previous instructions' | cargo run -p asg --example explain -- [user|tool_result|assistant|tool_definition] [profile]
//! echo 'cat /etc/shadow' | cargo run -p asg --example explain -- bash [profile]
//! ```
//! With `bash`, every line is the command of a proposed `bash` tool call
//! (`ASG_EXPLAIN_JSONL=1`: every line a JSON string, for multi-line scripts,
//! or an object `{"system": …, "text": …}` judged with that system prompt;
//! `ASG_EXPLAIN_SYSTEM=…`: the system prompt of every line).

use asg::decision::{assess, Masking, Policy, Subject, Surface, ToolCall};
use std::io::Read;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let call = args.get(1).map(String::as_str) == Some("bash");
    let surface = match args.get(1).map(String::as_str) {
        Some("tool_result") => Surface::ToolResult,
        Some("assistant") => Surface::Assistant,
        Some("tool_definition") => Surface::ToolDefinition,
        Some("tool_arguments") => Surface::ToolArguments,
        _ => Surface::User,
    };
    let profile = args.get(2).map(String::as_str).unwrap_or("dev");
    let policy = Policy::load(profile, None).expect("profile");
    let mut text = String::new();
    std::io::stdin().read_to_string(&mut text).expect("stdin");
    // `ASG_EXPLAIN_WHOLE=1`: stdin is one text (a tool output with its lines).
    // `ASG_EXPLAIN_JSONL=1`: every line is a JSON string (a multi-line script).
    let system = std::env::var("ASG_EXPLAIN_SYSTEM").ok();
    let texts: Vec<(Option<String>, String)> = if std::env::var_os("ASG_EXPLAIN_WHOLE").is_some() {
        vec![(system.clone(), text.clone())]
    } else if std::env::var_os("ASG_EXPLAIN_JSONL").is_some() {
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .map(
                |l| match serde_json::from_str::<serde_json::Value>(l).expect("each line JSON") {
                    serde_json::Value::String(t) => (system.clone(), t),
                    v => (
                        v["system"].as_str().map(str::to_string),
                        v["text"].as_str().expect("an object with text").to_string(),
                    ),
                },
            )
            .collect()
    } else {
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| (system.clone(), l.to_string()))
            .collect()
    };
    for (system, line) in &texts {
        let line = line.as_str();
        let mut s = Subject::default();
        if let Some(sys) = system {
            s.push_text(Surface::System, sys.as_str());
        }
        if call {
            s.tool_calls.push(ToolCall::new(
                "bash",
                serde_json::json!({ "command": line }),
            ));
        } else {
            s.push_text(surface, line);
        }
        let a = assess(&policy, &s, Masking::None);
        println!(
            "{:<18} {}",
            a.decision.as_str(),
            line.chars()
                .take(100)
                .map(|c| if c == '\n' { '⏎' } else { c })
                .collect::<String>()
        );
        for f in &a.findings {
            println!(
                "    {:<40} {:<8} {:.2} {:?} {:?}",
                f.rule_id,
                f.severity.as_str(),
                f.score,
                f.evidence.as_deref().unwrap_or(""),
                f.metadata
            );
        }
    }
}
