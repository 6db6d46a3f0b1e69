//! Build descriptions handed to a build tool on its command line or its
//! input: a make rule given with `--eval` or a makefile on stdin, a CMake
//! script (`cmake -P /dev/stdin <<< …`), a ninja file on stdin. Their
//! recipes are commands the tool runs, judged as such, so `make --eval
//! 'x: ; @/bin/sh -i' x` is an interactive shell and `make test` a build.

use super::escapes::Embedded;
use crate::detectors::shell::{lexer::RedirOp, Cmd};
use regex::Regex;
use std::sync::LazyLock;

/// The commands in the build descriptions `c` is given inline.
pub fn commands(c: &Cmd, out: &mut Vec<Embedded>) {
    let inline: Vec<&str> = c
        .redirects
        .iter()
        .filter(|r| matches!(r.op, RedirOp::HereDoc | RedirOp::HereString))
        .map(|r| r.target.as_str())
        .collect();
    match c.program.as_str() {
        "make" | "gmake" | "bmake" => {
            let evals = super::escapes::value_after(&c.args, &["--eval"]);
            for text in evals.into_iter().chain(inline) {
                make_recipes(text, out);
            }
        }
        "cmake" => {
            for text in inline.into_iter().chain(
                super::escapes::value_after(&c.args, &["-D"])
                    .into_iter()
                    .filter(|v| v.contains("execute_process")),
            ) {
                for m in CMAKE.captures_iter(text).take(16) {
                    out.push(Embedded::Command(m[1].trim().to_string()));
                }
            }
        }
        "ninja" | "samu" => {
            for text in inline {
                for m in NINJA.captures_iter(text).take(16) {
                    out.push(Embedded::Command(m[1].trim().to_string()));
                }
            }
        }
        _ => {}
    }
}

static CMAKE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)(?:execute_process|add_custom_command|add_custom_target)\s*\([^)]*?\bCOMMAND\s+([^)]*?)(?:\s+(?:WORKING_DIRECTORY|OUTPUT_VARIABLE|RESULT_VARIABLE|COMMAND)\b|\))")
        .expect("static regex")
});

static NINJA: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?m)^\s*command\s*=\s*(.+)$").expect("static regex"));

/// Recipes of make rules: after `target: prerequisites ;` on the rule's
/// line, and lines starting with a tab; make's `@`, `-` and `+` prefixes
/// only change how a recipe line is shown or failed.
fn make_recipes(text: &str, out: &mut Vec<Embedded>) {
    for line in text.lines().take(64) {
        let recipe = if let Some(r) = line.strip_prefix('\t') {
            Some(r)
        } else {
            line.split_once(':')
                .filter(|(target, _)| !target.contains('='))
                .and_then(|(_, rest)| rest.split_once(';'))
                .map(|(_, r)| r)
        };
        if let Some(r) = recipe {
            let r = r.trim_start().trim_start_matches(['@', '-', '+']);
            if !r.trim().is_empty() {
                out.push(Embedded::Command(r.to_string()));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests_support::{attack, flows};
    use super::super::Effect;

    #[test]
    fn recipes_given_inline_are_commands() {
        attack("make -s --eval='x: ; @/bin/sh -i' x", Effect::Shell);
        attack("make -f - x <<< $'x:\\n\\t@bash -i'", Effect::Shell);
        attack(
            "cmake -P /dev/stdin <<< 'execute_process(COMMAND /bin/bash -i)'",
            Effect::Shell,
        );
        attack(
            "ninja -f /dev/stdin <<< $'rule r\\n  command = /bin/sh -i\\nbuild x: r'",
            Effect::Shell,
        );
        flows("make -s --eval='print-%: ; @echo $*=$($*)' print-CC");
        flows("cmake -P /dev/stdin <<< 'execute_process(COMMAND git describe --tags)'");
        flows("make -j8 test");
    }
}
