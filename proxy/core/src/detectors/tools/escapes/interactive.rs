//! Interactive programs with a way out to the shell: `script -c`, expect,
//! debuggers, database clients, socat and netcat `EXEC`, zip's test command,
//! apt's hooks, terminal emulators, run-parts, capsh.

use super::{quoted, shell_join, value_after, wrapped_shell, Embedded};

use crate::detectors::shell::Cmd;

/// What the programs of this family run; false when `c` is not one of them.
pub(super) fn embedded(c: &Cmd, out: &mut Vec<Embedded>) -> bool {
    let args = &c.args;
    match c.program.as_str() {
        "script" => {
            let cmds = value_after(args, &["-c", "--command"]);
            if cmds.is_empty() {
                out.push(Embedded::Shell);
            }
            for v in cmds {
                out.push(Embedded::Command(v.to_string()));
            }
        }
        "expect" => {
            for v in value_after(args, &["-c"]) {
                for part in v.split([';', '\n']) {
                    if let Some(cmd) = part.trim().strip_prefix("spawn ") {
                        out.push(Embedded::Command(cmd.trim().to_string()));
                    }
                }
            }
        }
        "gdb" | "lldb" => {
            for v in value_after(
                args,
                &[
                    "-ex",
                    "--ex",
                    "-eval-command",
                    "--eval-command",
                    "-o",
                    "--one-line",
                ],
            ) {
                let v = v.trim();
                if let Some(rest) = v
                    .strip_prefix('!')
                    .or_else(|| v.strip_prefix("shell "))
                    .or_else(|| v.strip_prefix("platform shell "))
                {
                    if rest.trim().is_empty() {
                        out.push(Embedded::Shell);
                    } else {
                        out.push(Embedded::Command(rest.trim().to_string()));
                    }
                } else if v == "shell" {
                    out.push(Embedded::Shell);
                } else if let Some(code) = v
                    .strip_prefix("python ")
                    .or_else(|| v.strip_prefix("script "))
                {
                    out.push(Embedded::Code(code.to_string()));
                } else {
                    for lit in quoted(v) {
                        out.push(Embedded::Command(lit));
                    }
                }
            }
        }
        "sqlite3" | "duckdb" => {
            for a in args {
                for line in a.split(['\n', ';']) {
                    let l = line.trim();
                    if let Some(rest) = l
                        .strip_prefix(".shell")
                        .or_else(|| l.strip_prefix(".system"))
                    {
                        out.push(if rest.trim().is_empty() {
                            Embedded::Shell
                        } else {
                            Embedded::Command(rest.trim().to_string())
                        });
                    } else if let Some(rest) = l
                        .strip_prefix(".output |")
                        .or_else(|| l.strip_prefix(".once |"))
                    {
                        out.push(Embedded::Command(rest.trim().to_string()));
                    }
                }
            }
        }
        "mysql" | "mariadb" | "psql" => {
            for v in value_after(args, &["-e", "--execute", "-c", "--command"]) {
                for part in v.split(';') {
                    let p = part.trim();
                    if let Some(rest) = p.strip_prefix("\\!").or_else(|| p.strip_prefix("system "))
                    {
                        out.push(if rest.trim().is_empty() {
                            Embedded::Shell
                        } else {
                            Embedded::Command(rest.trim().to_string())
                        });
                    }
                }
            }
        }
        "socat" => {
            for a in args {
                let up = a.to_ascii_uppercase();
                for prefix in ["EXEC:", "SYSTEM:"] {
                    if up.starts_with(prefix) {
                        let cmd = a[prefix.len()..].split(',').next().unwrap_or("");
                        out.push(Embedded::Command(cmd.to_string()));
                    }
                }
            }
        }
        "nc" | "ncat" | "netcat" | "nc.traditional" | "nc.openbsd" => {
            for v in value_after(args, &["-e", "-c", "--exec", "--sh-exec"]) {
                out.push(Embedded::Command(v.to_string()));
            }
        }
        "zip" => {
            for v in value_after(args, &["-TT", "--unzip-command"]) {
                out.push(Embedded::Command(v.to_string()));
            }
        }
        "apt-get" | "apt" => {
            for v in value_after(args, &["-o"]) {
                if let Some((k, val)) = v.split_once('=') {
                    if k.contains("Pre-Invoke") || k.contains("Post-Invoke") {
                        out.push(Embedded::Command(val.to_string()));
                    }
                }
            }
        }
        "xterm" | "gnome-terminal" | "konsole" | "x-terminal-emulator" | "screen" => {
            let cmds = value_after(args, &["-e", "--", "-x"]);
            if cmds.is_empty() && c.program != "screen" {
                out.push(Embedded::Shell);
            }
            if cmds.is_empty() {
                // `screen -dm /bin/zsh`, `tmux -c /usr/bin/bash`
                wrapped_shell(args, out);
            }
            for v in cmds {
                out.push(Embedded::Command(v.to_string()));
            }
        }
        "run-parts" => {
            // Runs every program of a folder (that its --regex selects): over
            // a system program folder, that is any program, shells included.
            let system_bin = |a: &str| {
                matches!(
                    a.trim_end_matches('/'),
                    "/bin"
                        | "/sbin"
                        | "/usr/bin"
                        | "/usr/sbin"
                        | "/usr/local/bin"
                        | "/usr/local/sbin"
                )
            };
            if args.iter().any(|a| system_bin(a)) {
                out.push(Embedded::Shell);
            }
        }
        "sed" | "gsed" => super::super::hooks::sed(args, out),
        "rpm" | "rpmquery" | "rpmspec" | "rpmbuild" => super::super::hooks::rpm(args, out),
        // An alias runs its text when it is called (`alias s='rsync ~/.ssh
        // …'; s`): judged where it is defined.
        "alias" => out.extend(args.iter().filter_map(|a| {
            a.split_once('=')
                .map(|(_, v)| Embedded::Command(v.to_string()))
        })),
        "capsh" => {
            if let Some(p) = args.iter().position(|a| a == "--") {
                let mut words = vec!["bash".to_string()];
                words.extend(args[p + 1..].iter().cloned());
                out.push(Embedded::Command(shell_join(&words)));
            }
        }
        _ => return false,
    }
    true
}
