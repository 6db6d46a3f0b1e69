//! Program source given to an interpreter (`python -c`, a here-document
//! fed to `node`, a file written and run): the code rules, the files it
//! reads, the secrets it prints, the hosts it talks to, and the shell
//! commands and payloads it carries as string literals.

use super::analyze::{co_occurring, excerpt_at, Analysis, Analyzer};
use super::effects::Effect;
use super::network::{url_regex, Destination, Payload};
use super::paths::Access;
use crate::detectors::shell;
use crate::normalize;
use regex::Regex;
use std::sync::OnceLock;

fn literal_regex() -> &'static Regex {
    static R: OnceLock<Regex> = OnceLock::new();
    R.get_or_init(|| {
        // ``double`` backticks are one delimiter (reStructuredText literals):
        // read as two, the prose between two literals became one.
        Regex::new(
            r#""((?:[^"\\\n]|\\.){1,400})"|'((?:[^'\\\n]|\\.){1,400})'|``?([^`\n]{1,400})``?"#,
        )
        .expect("static regex")
    })
}

fn list_regex() -> &'static Regex {
    static R: OnceLock<Regex> = OnceLock::new();
    R.get_or_init(|| {
        Regex::new(
            r#"\[\s*((?:["'][^"'\n]{0,200}["']\s*,\s*){1,30}["'][^"'\n]{0,200}["'])\s*,?\s*\]"#,
        )
        .expect("static regex")
    })
}

/// Program source rather than a command line.
pub fn looks_like_code(s: &str) -> bool {
    const MARKERS: &[&str] = &[
        "import ",
        "require(",
        "def ",
        "function ",
        "subprocess",
        "os.system",
        "exec(",
        "eval(",
        "socket",
        "#!/",
        "<?php",
        "Invoke-",
        "System.Net",
        "child_process",
        "fsockopen",
        "urllib",
        "requests.",
        "open(",
        "=>",
        "console.log",
    ];
    MARKERS.iter().any(|m| s.contains(m))
}

fn read_markers() -> &'static Regex {
    static R: OnceLock<Regex> = OnceLock::new();
    R.get_or_init(|| {
        Regex::new(r#"(?i)\bopen\s*\(|readfile|read_text|read_bytes|file\.read|fopen|file_get_contents|get-content|io\.read|slurp|readlines|\bcat\b|Files\.read|copyfile|shutil\.copy"#)
            .expect("static regex")
    })
}

fn secret_read_in_code() -> &'static Regex {
    static R: OnceLock<Regex> = OnceLock::new();
    R.get_or_init(|| {
        Regex::new(r#"(?:os\.environ\s*(?:\[\s*|\.get\(\s*)|os\.getenv\(\s*|getenv\(\s*|ENV\[\s*|\$ENV\{\s*)["']?([A-Za-z_][A-Za-z0-9_]*)|process\.env(?:\.|\[\s*["'])([A-Za-z_][A-Za-z0-9_]*)"#)
            .expect("static regex")
    })
}

fn env_dump_in_code() -> &'static Regex {
    static R: OnceLock<Regex> = OnceLock::new();
    R.get_or_init(|| {
        Regex::new(r#"(?:print|console\.log|puts|p|echo|json\.dumps|JSON\.stringify|pprint|write)\s*\(?\s*(?:dict\(\s*)?(?:os\.environ|process\.env|ENV|%ENV)\s*\)?\s*(?:[,;)]|$)"#)
            .expect("static regex")
    })
}

fn sends_in_code() -> &'static Regex {
    static R: OnceLock<Regex> = OnceLock::new();
    R.get_or_init(|| {
        Regex::new(r"(?i)\b(?:post|put|patch|send|sendall|upload|storbinary)\s*\(")
            .expect("static regex")
    })
}

impl Analyzer<'_> {
    /// Program source: code rules, files it reads, secrets it prints, the
    /// hosts it talks to, and the shell commands it embeds as string
    /// literals (`os.system("curl … | sh")`, `subprocess.call(["wget", url])`).
    pub fn code(&self, src: &str, out: &mut Analysis, depth: u8) {
        let src = normalize::truncate_at_char_boundary(src, 64 * 1024);
        let src = &*super::home_paths::with_home_literals(src);
        for rule in &self.rules.code {
            if let Some(at) = co_occurring(&rule.all, src) {
                out.push(
                    rule.effect,
                    &rule.id,
                    rule.message.clone(),
                    &excerpt_at(src, at),
                );
            }
        }
        if depth > 4 {
            return;
        }
        let literals: Vec<&str> = literal_regex()
            .captures_iter(src)
            .take(256)
            .filter_map(|c| c.get(1).or_else(|| c.get(2)).or_else(|| c.get(3)))
            .map(|m| m.as_str())
            .collect();
        for path in super::code_writes::targets(src) {
            self.path_write(path, Access::Write, |_| false, out);
        }
        let reads = read_markers().is_match(src);
        for lit in &literals {
            // A URL names a remote file, not one on this machine.
            if reads && !lit.contains("://") {
                self.path_effects(lit, Access::Read, out);
            }
            let first = lit.split_whitespace().next().unwrap_or("");
            let program = shell::program_name(first, false);
            if lit.contains(' ')
                || super::escapes::SHELLS.contains(&program.as_str()) && first.contains('/')
            {
                self.shell(lit, out, depth + 1);
            }
        }
        // Payloads carried in base64 or hex are judged as what they decode to.
        for text in literals
            .iter()
            .filter_map(|l| super::printed::decoded_literal(l))
            .take(8)
        {
            self.shell(&text, out, depth + 1);
            self.path_effects(&text, Access::Read, out);
        }
        for caps in list_regex().captures_iter(src).take(64) {
            let items: Vec<String> = literal_regex()
                .captures_iter(&caps[1])
                .filter_map(|c| {
                    c.get(1)
                        .or_else(|| c.get(2))
                        .map(|m| m.as_str().to_string())
                })
                .collect();
            if !items.is_empty() {
                self.shell(&super::escapes::shell_join(&items), out, depth + 1);
            }
        }
        for caps in secret_read_in_code().captures_iter(src).take(32) {
            let name = caps
                .get(1)
                .or_else(|| caps.get(2))
                .map_or("", |m| m.as_str());
            let shown = src.contains("print")
                || src.contains("console.log")
                || src.contains("puts")
                || src.contains("echo");
            if shown && self.rules.secret_env.is_match(&name.to_ascii_uppercase()) {
                out.push(
                    Effect::CredentialRead,
                    "secret_env_in_code",
                    format!("Code reads the secret environment variable {name}"),
                    &excerpt_at(src, caps.get(0).map_or(0, |m| m.start())),
                );
            }
        }
        if env_dump_in_code().is_match(src) {
            out.push(
                Effect::EnvRead,
                "env_dump_in_code",
                "Code prints the whole environment",
                src,
            );
        }
        let sends = sends_in_code().is_match(src);
        for m in url_regex().find_iter(src).take(16) {
            self.destination(
                &Destination {
                    url: m.as_str().to_string(),
                    payload: if sends { Payload::Data } else { Payload::None },
                    probe: false,
                },
                out,
            );
        }
    }
}
