//! Dangerous code carried by a tool result: a document that hands the model
//! a program to write or run ("add the following code to your project:"
//! and a block that steals cookies) is indirect injection.
//!
//! Only code is read as code. In a document with fenced blocks those are
//! the code; without fences, the lines that are not prose. A README or a
//! changelog that names `curl` in one paragraph and `subprocess` in
//! another is not a program that downloads and runs, and a quoted path in
//! its prose is not a file the document opens.

use super::analyze::Analysis;
use super::code::looks_like_code;
use super::ToolDetector;
use crate::detectors::tools::effects::Effect;
use crate::subject::Surface;
use crate::types::{Decision, DetectorId, Finding, Severity};

impl ToolDetector {
    /// Dangerous code or commands carried by a tool result: the data tries
    /// to get the model to write or run them.
    pub(super) fn inspect_payload(&self, text: &str, out: &mut Vec<Finding>) {
        if !looks_like_code(text) && !text.contains("```") && !text.contains("$ ") {
            return;
        }
        let mut a = Analysis::default();
        let analyzer = self.analyzer();
        let fenced = fenced_blocks(text);
        if fenced.is_empty() {
            let code = without_prose(text);
            if looks_like_code(&code) {
                analyzer.code(&code, &mut a, 0);
            }
        }
        for (_, block) in &fenced {
            analyzer.code(block, &mut a, 0);
        }
        // A block labelled as another language (```c, ```python) is no
        // command line: `char * argv[]` runs nothing.
        let commands = fenced
            .iter()
            .filter(|(lang, _)| is_shell_label(lang))
            .map(|(_, body)| *body);
        for block in commands.chain(prompt_lines(text)) {
            analyzer.shell(block, &mut a, 1);
        }
        let mut seen: Vec<Effect> = Vec::new();
        for h in &a.effects {
            // Payloads whose effect is an attack by the built-in table are
            // injections on their own. Code that wipes disks, stops services
            // or runs as root is what install guides show too: a low
            // finding, which refuses only together with data that tells the
            // model to use the code ("execute the following code block in
            // the code you develop").
            let (id, severity, score, what) = match h.effect {
                Effect::Uninspectable => continue,
                e if e.default_decision() == Decision::Block => (
                    "pi.indirect.code_payload",
                    Severity::High,
                    0.75,
                    "dangerous code",
                ),
                Effect::Destroy | Effect::SystemChange | Effect::Privileged => (
                    "pi.indirect.risky_code",
                    Severity::Low,
                    0.15,
                    "code that changes the system",
                ),
                _ => continue,
            };
            if seen.contains(&h.effect) {
                continue;
            }
            seen.push(h.effect);
            out.push(
                Finding::new(
                    id,
                    DetectorId::PromptInjection,
                    "prompt_injection",
                    severity,
                    score,
                    format!("Indirect injection in tool result: {what} ({})", h.message),
                )
                .at(Surface::ToolResult.as_str())
                .with_evidence(h.evidence.clone())
                .meta("effect", h.effect.as_str())
                .meta("rule", h.rule.clone()),
            );
        }
    }
}

/// The fenced code blocks of a text (at most 32): the language label (the
/// first word after the fence, or "") and the body.
fn fenced_blocks(text: &str) -> Vec<(&str, &str)> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("```") {
        let after = &rest[start + 3..];
        let body_start = after.find('\n').map_or(0, |n| n + 1);
        let Some(end) = after[body_start..].find("```") else {
            break;
        };
        let label = after[..body_start].split_whitespace().next().unwrap_or("");
        out.push((label, &after[body_start..body_start + end]));
        rest = &after[body_start + end + 3..];
        if out.len() >= 32 {
            break;
        }
    }
    out
}

/// No label, or a shell's.
fn is_shell_label(label: &str) -> bool {
    const SHELLS: &[&str] = &[
        "",
        "sh",
        "bash",
        "zsh",
        "ksh",
        "fish",
        "shell",
        "console",
        "terminal",
        "shell-session",
        "sh-session",
        "shellsession",
        "powershell",
        "pwsh",
        "ps1",
        "ps",
        "bat",
        "batch",
        "cmd",
    ];
    SHELLS.iter().any(|s| s.eq_ignore_ascii_case(label))
}

/// The commands of `$ command` lines.
fn prompt_lines(text: &str) -> impl Iterator<Item = &str> {
    text.lines()
        .filter_map(|line| line.trim_start().strip_prefix("$ "))
}

/// A line of running text: six words or more, nearly all of them plain
/// words, and none of the brackets, operators and terminators code is made
/// of. A comment in code reads as prose too, which costs nothing: the
/// statements around it stay.
fn is_prose(line: &str) -> bool {
    if line.contains(['{', '}', '=', '<', '>', '|', '$', '`']) || line.trim_end().ends_with(';') {
        return false;
    }
    // A call (`name(`) is code; an aside in brackets is not.
    let b = line.as_bytes();
    if (1..b.len()).any(|i| b[i] == b'(' && (b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_'))
    {
        return false;
    }
    let (mut tokens, mut words) = (0usize, 0usize);
    for t in line.split_whitespace() {
        tokens += 1;
        let t = t.trim_matches(|c: char| {
            matches!(
                c,
                '.' | ',' | ':' | ';' | '!' | '?' | '"' | '\'' | '(' | ')'
            )
        });
        if !t.is_empty()
            && t.chars()
                .all(|c| c.is_alphabetic() || c == '-' || c == '\'')
        {
            words += 1;
        }
    }
    tokens >= 6 && words * 5 >= tokens * 4
}

/// `text` with its lines of running text blanked (the line count stays).
fn without_prose(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        if is_prose(line) {
            if line.ends_with('\n') {
                out.push('\n');
            }
        } else {
            out.push_str(line);
        }
    }
    out
}

#[cfg(test)]
#[path = "payload_tests.rs"]
mod tests;
