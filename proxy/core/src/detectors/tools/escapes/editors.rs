//! Editor and pager escapes: vim's `-c`/`:!`, `less`'s `!`, emacs `--eval`,
//! `man -P`.

use super::{quoted, shell_join, value_after, Embedded};

use crate::detectors::shell::Cmd;

/// An editor or pager command (`:!ls`, `!sh`, `shell`, `py3 …`).
fn editor_command(cmd: &str, out: &mut Vec<Embedded>) {
    // `:set shell=/bin/sh|:shell`: vim runs each of `|`-separated commands.
    if let Some((first, rest)) = cmd.split_once('|') {
        if !cmd.trim_start().trim_start_matches(':').starts_with('!') {
            editor_command(first, out);
            editor_command(rest, out);
            return;
        }
    }
    let c = cmd.trim().trim_start_matches(':').trim();
    if let Some(rest) = c.strip_prefix('!') {
        let rest = rest.trim();
        if rest.is_empty() {
            out.push(Embedded::Shell);
        } else {
            out.push(Embedded::Command(rest.to_string()));
        }
        return;
    }
    let word = c.split_whitespace().next().unwrap_or("");
    match word {
        "sh" | "shell" | "terminal" | "term" | "ter" | "terminal!" => out.push(Embedded::Shell),
        "py" | "py3" | "python" | "python3" | "pyx" | "pythonx" | "lua" | "luado" | "perl"
        | "ruby" | "rubydo" | "pydo" | "py3do" => {
            out.push(Embedded::Code(c[word.len()..].trim().to_string()))
        }
        // `:w FILE` writes the buffer to FILE (as `tee FILE` would);
        // `:w !cmd` pipes it into a command.
        "w" | "w!" | "write" | "write!" | "wq" | "wq!" | "x" | "x!" | "sav" | "sav!" | "saveas"
        | "saveas!" | "up" | "update" | "wa" => {
            let target = c[word.len()..].trim();
            if let Some(cmd) = target.strip_prefix('!') {
                out.push(Embedded::Command(cmd.trim().to_string()));
            } else if !target.is_empty() {
                out.push(written(target));
            }
        }
        "call" | "exe" | "execute" | "let" | "silent" => {
            // A script that writes files (`writefile([…], "/etc/x")`) is
            // those writes; its other strings are commands it may run.
            let writes = editor_writes(c);
            if !writes.is_empty() {
                out.extend(writes.iter().map(|p| written(p)));
                return;
            }
            for lit in quoted(c) {
                out.push(Embedded::Command(lit));
            }
        }
        _ => {}
    }
}

/// An editor saving to `path`: judged as the shell's `tee path`, so the
/// place decides what writing it means.
fn written(path: &str) -> Embedded {
    Embedded::Command(format!("tee {}", shell_join(&[path.to_string()])))
}

/// Files an editor's own scripting writes (vim's `writefile([…],
/// "/etc/x")`, Emacs's `with-temp-file`, `write-region`, `append-to-file`):
/// the absolute or home paths among its string literals.
fn editor_writes(s: &str) -> Vec<String> {
    const WRITERS: [&str; 6] = [
        "writefile(",
        "with-temp-file",
        "write-region",
        "append-to-file",
        "write-file",
        "copy-file",
    ];
    if !WRITERS.iter().any(|w| s.contains(w)) {
        return Vec::new();
    }
    quoted(s)
        .into_iter()
        .filter(|l| l.starts_with('/') || l.starts_with("~/"))
        .collect()
}

/// What the programs of this family run; false when `c` is not one of them.
pub(super) fn embedded(c: &Cmd, out: &mut Vec<Embedded>) -> bool {
    let args = &c.args;
    match c.program.as_str() {
        "vi" | "vim" | "nvim" | "ex" | "view" | "rvim" | "vimdiff" | "gvim" | "evim" => {
            let mut scripted = Vec::new();
            for v in value_after(args, &["-c", "--cmd"]) {
                editor_command(v, out);
                scripted.push(v);
            }
            for a in args.iter().filter(|a| a.starts_with('+') && a.len() > 1) {
                editor_command(&a[1..], out);
                scripted.push(&a[1..]);
            }
            // A scripted edit that saves (`+wq`, `-c x`) writes the files
            // it was given.
            let saves = scripted.iter().any(|s| {
                let w = s.trim().trim_start_matches(':');
                matches!(
                    w,
                    "w" | "w!"
                        | "wq"
                        | "wq!"
                        | "x"
                        | "x!"
                        | "wqa"
                        | "wqa!"
                        | "xa"
                        | "up"
                        | "update"
                        | "wa"
                )
            });
            if saves {
                let values = value_after(
                    args,
                    &["-c", "--cmd", "-u", "-i", "-S", "-T", "-w", "-W", "-s"],
                );
                for f in args
                    .iter()
                    .filter(|a| !a.starts_with(['-', '+']) && !values.contains(&a.as_str()))
                {
                    out.push(written(f));
                }
            }
        }
        "less" | "more" | "most" => {
            for a in args.iter().filter(|a| a.starts_with('+') && a.len() > 1) {
                editor_command(&a[1..], out);
            }
        }
        "emacs" | "emacsclient" => {
            for v in value_after(args, &["--eval", "-eval", "-e"]) {
                out.extend(editor_writes(v).iter().map(|p| written(p)));
                if ["(shell", "(term", "(ansi-term", "(eshell", "(vterm"]
                    .iter()
                    .any(|s| v.contains(s))
                {
                    out.push(Embedded::Shell);
                }
                for lit in quoted(v) {
                    out.push(Embedded::Command(lit));
                }
            }
        }
        "man" => {
            for v in value_after(args, &["-P", "--pager", "-H", "--html"]) {
                out.push(Embedded::Command(v.to_string()));
            }
        }
        _ => return false,
    }
    true
}
