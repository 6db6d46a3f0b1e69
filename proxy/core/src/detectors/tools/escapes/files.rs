//! Programs that walk or process files and run a command on each: `find
//! -exec`, `fd -x`, tar checkpoint actions and compress programs, awk's
//! `system()` and pipes.

use super::{shell_join, value_after, Embedded};
use crate::detectors::shell::Cmd;
use regex::Regex;
use std::sync::OnceLock;

fn adjacent_strings() -> &'static Regex {
    static R: OnceLock<Regex> = OnceLock::new();
    R.get_or_init(|| Regex::new(r#"([^\\])"[ \t]+""#).expect("static regex"))
}

fn awk_literals() -> &'static Regex {
    static R: OnceLock<Regex> = OnceLock::new();
    R.get_or_init(|| {
        Regex::new(r#"system\s*\(\s*"((?:[^"\\]|\\.)*)"|"((?:[^"\\]|\\.)*)"\s*\|\s*getline|\|\s*"((?:[^"\\]|\\.)*)""#)
            .expect("static regex")
    })
}

/// What the programs of this family run; false when `c` is not one of them.
pub(super) fn embedded(c: &Cmd, out: &mut Vec<Embedded>) -> bool {
    let args = &c.args;
    match c.program.as_str() {
        "find" => {
            // `{}` is each file found: the command works on the trees
            // searched outside the working tree (`find ~/.ssh -exec cat {}
            // \;` reads the keys). Inside it, where a root such as `.`
            // would read as the whole tree (`-exec rm -rf {} +` after a
            // `-name node_modules` filter), it stays unnamed.
            // A name filter says which files those are (`find /home -name
            // .bash_history -exec cat {} +` reads histories): `{}` is the
            // root with that name under it.
            let name = args
                .windows(2)
                .find(|w| matches!(w[0].as_str(), "-name" | "-iname"))
                .map(|w| w[1].clone());
            let roots: Vec<String> = args
                .iter()
                .take_while(|a| !a.starts_with('-') && !matches!(a.as_str(), "(" | "!"))
                // With a name filter a relative root names files too
                // (`find . -name id_rsa -exec cat {} \;` reads keys).
                .filter(|r| r.starts_with(['/', '~', '$']) || name.is_some())
                .map(|r| match &name {
                    Some(n) => format!("{}/{n}", r.trim_end_matches('/')),
                    None => format!("{}/", r.trim_end_matches('/')),
                })
                .collect();
            let mut i = 0;
            while i < args.len() {
                if matches!(args[i].as_str(), "-exec" | "-execdir" | "-ok" | "-okdir") {
                    let end = args[i + 1..]
                        .iter()
                        .position(|a| a == ";" || a == "\\;" || a == "+")
                        .map_or(args.len(), |p| i + 1 + p);
                    let words: Vec<String> = args[i + 1..end]
                        .iter()
                        .flat_map(|w| match w.as_str() {
                            "{}" => roots.clone(),
                            _ => vec![w.clone()],
                        })
                        .collect();
                    if !words.is_empty() {
                        out.push(Embedded::Command(shell_join(&words)));
                    }
                    i = end;
                }
                i += 1;
            }
        }
        "fd" | "fdfind" => {
            if let Some(p) = args
                .iter()
                .position(|a| matches!(a.as_str(), "-x" | "--exec" | "-X" | "--exec-batch"))
            {
                let words: Vec<String> = args[p + 1..]
                    .iter()
                    .filter(|w| *w != "{}")
                    .cloned()
                    .collect();
                if !words.is_empty() {
                    out.push(Embedded::Command(shell_join(&words)));
                }
            }
        }
        "tar" | "gtar" | "bsdtar" => {
            for a in args {
                if let Some(v) = a.strip_prefix("--checkpoint-action=") {
                    if let Some(cmd) = v.strip_prefix("exec=").or_else(|| v.strip_prefix("exec:")) {
                        out.push(Embedded::Command(cmd.to_string()));
                    }
                }
            }
            for v in value_after(
                args,
                &[
                    "--to-command",
                    "--use-compress-program",
                    "-I",
                    "--info-script",
                    "--new-volume-script",
                    "-F",
                    "--rsh-command",
                ],
            ) {
                out.push(Embedded::Command(v.to_string()));
            }
        }
        "awk" | "gawk" | "mawk" | "nawk" | "busybox-awk" => {
            let mut vars: Vec<(&str, &str)> = Vec::new();
            let mut i = 0;
            while i < args.len() {
                let a = args[i].as_str();
                if matches!(a, "-F" | "-v" | "--assign" | "-f") {
                    if a != "-F" && a != "-f" {
                        vars.extend(args.get(i + 1).and_then(|v| v.split_once('=')));
                    }
                    i += 2;
                    continue;
                }
                if !a.starts_with('-') {
                    super::super::hooks::awk_writes(a, &vars, out);
                    // gawk's network special files: a program that reads
                    // lines from a socket and runs them (`s |& getline c`,
                    // then `c |& getline`) is a remote shell.
                    let inet = ["/inet/tcp/", "/inet/udp/", "/inet4/", "/inet6/"]
                        .iter()
                        .any(|p| a.contains(p));
                    if inet && a.contains("getline") {
                        out.push(Embedded::Shell);
                    }
                    // Adjacent strings concatenate (`system("cu" "rl …")`).
                    let a = &adjacent_strings().replace_all(a, "$1");
                    for cap in awk_literals().captures_iter(a) {
                        if let Some(m) = cap.get(1).or_else(|| cap.get(2)).or_else(|| cap.get(3)) {
                            out.push(Embedded::Command(m.as_str().replace("\\\"", "\"")));
                        }
                    }
                    break;
                }
                i += 1;
            }
        }
        _ => return false,
    }
    true
}
