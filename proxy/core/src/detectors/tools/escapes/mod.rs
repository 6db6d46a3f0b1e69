//! Commands that other programs run for you: `find -exec`, tar checkpoint
//! actions, `awk` `system()`, editor and pager escapes, debugger and
//! database-client shell commands, `ssh`/`docker`/`kubectl` remote
//! commands, `socat EXEC:`, and variables that name a program to run
//! (`PAGER`, `GIT_SSH_COMMAND` …). Each is analyzed as a nested command,
//! so `find . -exec /bin/sh \;` is an interactive shell and
//! `find . -name '*.py' -exec black {} +` a formatter run.

use crate::detectors::shell::{lexer::RedirOp, Cmd, DECLARATIONS};
use regex::Regex;
use std::sync::OnceLock;

mod editors;
mod files;
mod interactive;
mod remote;

/// Something a command runs besides itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Embedded {
    /// A shell command line.
    Command(String),
    /// Program source (editor scripting languages, debugger python).
    Code(String),
    /// An interactive shell, started directly (`:shell`, `(term …)`).
    Shell,
}

pub const SHELLS: &[&str] = &[
    "sh",
    "bash",
    "zsh",
    "dash",
    "ksh",
    "ash",
    "fish",
    "mksh",
    "tcsh",
    "csh",
    "rbash",
    "yash",
    "pwsh",
    "powershell",
    // the user's login shell, by variable (`exec $SHELL`, `ssh host $SHELL`)
    "$shell",
    "${shell}",
];

/// Variables whose value is a command some program runs.
const COMMAND_VARS: &[&str] = &[
    "PAGER",
    "GIT_PAGER",
    "MANPAGER",
    "SYSTEMD_PAGER",
    "EDITOR",
    "VISUAL",
    "GIT_EDITOR",
    "SUDO_EDITOR",
    "GIT_SEQUENCE_EDITOR",
    "GIT_SSH_COMMAND",
    "GIT_SSH",
    "GIT_EXTERNAL_DIFF",
    "GIT_ASKPASS",
    "SSH_ASKPASS",
    "SUDO_ASKPASS",
    "LESSOPEN",
    "LESSCLOSE",
    "PROMPT_COMMAND",
    "BASH_ENV",
    "ENV",
    "BROWSER",
    "RSYNC_RSH",
    "CVS_RSH",
];

/// An interactive shell: a shell given no script, no `-c`, nothing on its
/// input, or explicitly `-i`.
pub fn is_interactive_shell(c: &Cmd, fed_by_pipe: bool) -> bool {
    if !SHELLS.contains(&c.program.as_str()) {
        return false;
    }
    if c.args
        .iter()
        .any(|a| a == "-i" || a == "--interactive" || a == "-il" || a == "-li")
    {
        return true;
    }
    if c.program == "pwsh" || c.program == "powershell" {
        return c.args.is_empty();
    }
    let has_c = c
        .args
        .iter()
        .any(|a| a.starts_with('-') && !a.starts_with("--") && a.contains('c'));
    let script = c
        .args
        .iter()
        .any(|a| !a.starts_with('-') && !a.starts_with('+'));
    // Input from the terminal itself (`sh </dev/tty`, `xargs -o`) is still
    // a person (or whoever holds the terminal) typing commands.
    let inputs: Vec<&str> = c
        .redirects
        .iter()
        .filter(|r| r.op == RedirOp::In)
        .map(|r| r.target.as_str())
        .collect();
    let fed = fed_by_pipe
        || c.redirects
            .iter()
            .any(|r| matches!(r.op, RedirOp::HereDoc | RedirOp::HereString))
        || (!inputs.is_empty() && !inputs.iter().any(|t| is_terminal(t)));
    !has_c && !script && !fed
}

/// A terminal device: reading it is reading what is typed.
fn is_terminal(path: &str) -> bool {
    path == "/dev/tty"
        || path == "/dev/console"
        || path
            .strip_prefix("/dev/pts/")
            .is_some_and(|n| !n.is_empty())
        || path
            .strip_prefix("/dev/tty")
            .is_some_and(|n| n.bytes().all(|b| b.is_ascii_alphanumeric()))
}

pub(super) fn value_after<'a>(args: &'a [String], flags: &[&str]) -> Vec<&'a str> {
    let mut out = Vec::new();
    for (i, a) in args.iter().enumerate() {
        for f in flags {
            if a == f {
                if let Some(v) = args.get(i + 1) {
                    out.push(v.as_str());
                }
            } else if let Some(v) = a.strip_prefix(&format!("{f}=")) {
                out.push(v);
            } else if f.len() == 2 && !f.starts_with("--") && a.starts_with(f) && a.len() > 2 {
                out.push(&a[2..]);
            }
        }
    }
    out
}

pub(super) fn quoted(s: &str) -> Vec<String> {
    static R: OnceLock<Regex> = OnceLock::new();
    let re = R.get_or_init(|| {
        Regex::new(r#""((?:[^"\\]|\\.){1,400})"|'([^']{1,400})'"#).expect("static regex")
    });
    re.captures_iter(s)
        .filter_map(|c| c.get(1).or_else(|| c.get(2)))
        .map(|m| m.as_str().to_string())
        .collect()
}

/// Options of `docker run`/`exec` (and podman) that take a value.
const DOCKER_VALUE_OPTS: &[&str] = &[
    "-v",
    "--volume",
    "-e",
    "--env",
    "-w",
    "--workdir",
    "-p",
    "--publish",
    "--name",
    "--network",
    "--net",
    "-u",
    "--user",
    "--mount",
    "--env-file",
    "-l",
    "--label",
    "--platform",
    "-h",
    "--hostname",
    "--add-host",
    "--cap-add",
    "--cap-drop",
    "--device",
    "--security-opt",
    "--ulimit",
    "--log-driver",
    "--log-opt",
    "--pid",
    "--ipc",
    "--runtime",
    "--shm-size",
    "--tmpfs",
    "--gpus",
    "--restart",
    "-m",
    "--memory",
    "--cpus",
    "--entrypoint",
    "--cidfile",
    "--dns",
    "--group-add",
    "--health-cmd",
    "--stop-signal",
    "--uts",
    "--userns",
    "--detach-keys",
];

/// `docker run [opts] IMAGE CMD…` / `docker exec [opts] CTR CMD…`.
pub(super) fn container_command(c: &Cmd) -> Option<String> {
    let sub = c.args.first()?.as_str();
    let mut i = match sub {
        "run" | "exec" | "create" => 1,
        "container" if matches!(c.args.get(1).map(String::as_str), Some("run" | "exec")) => 2,
        "compose" => {
            let p = c.args.iter().position(|a| a == "run" || a == "exec")?;
            p + 1
        }
        _ => return None,
    };
    let mut entrypoint: Option<String> = None;
    while i < c.args.len() {
        let a = c.args[i].as_str();
        if a == "--" {
            i += 1;
            break;
        }
        if !a.starts_with('-') {
            break;
        }
        let (name, inline) = a.split_once('=').map_or((a, None), |(n, v)| (n, Some(v)));
        if DOCKER_VALUE_OPTS.contains(&name) {
            let v = inline
                .map(str::to_string)
                .or_else(|| c.args.get(i + 1).cloned());
            if name == "--entrypoint" {
                entrypoint = v;
            }
            i += if inline.is_some() { 1 } else { 2 };
        } else {
            i += 1;
        }
    }
    let rest = c.args.get(i + 1..).unwrap_or(&[]);
    let mut words: Vec<String> = entrypoint.into_iter().collect();
    words.extend(rest.iter().cloned());
    (!words.is_empty()).then(|| shell_join(&words))
}

/// Words joined back into a command line, quoted where needed.
pub fn shell_join(words: &[String]) -> String {
    words
        .iter()
        .map(|s| {
            if s.is_empty()
                || s.chars()
                    .any(|c| c.is_whitespace() || "'\"|&;$`<>()\\".contains(c))
            {
                format!("'{}'", s.replace('\'', "'\\''"))
            } else {
                s.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Options of `ssh` that take a value.
const SSH_VALUE_OPTS: &[&str] = &[
    "-p", "-i", "-l", "-o", "-F", "-J", "-L", "-R", "-D", "-W", "-b", "-c", "-e", "-m", "-O", "-Q",
    "-S", "-w", "-E", "-B", "-I",
];

/// The variables a command sets: for itself (`PAGER=… git log`) or, through
/// `export`, `env`, `set` and `declare`, for what follows.
pub fn assignments(c: &Cmd) -> impl Iterator<Item = (&str, &str)> {
    let exports =
        c.program == "env" || c.program == "set" || DECLARATIONS.contains(&c.program.as_str());
    c.env.iter().map(|(n, v)| (n.as_str(), v.as_str())).chain(
        c.args
            .iter()
            .filter(move |_| exports)
            .filter_map(|a| a.split_once('=')),
    )
}

/// Whether `word` names a shell, by name or by path (`bash`, `/bin/zsh`).
fn names_shell(word: &str) -> bool {
    SHELLS.contains(&word.rsplit('/').next().unwrap_or(word))
}

/// The command an ssh option runs (`ProxyCommand=…`, `LocalCommand …`,
/// `RemoteCommand=…`), for ssh and for every program that passes options on
/// to it.
fn ssh_command_option(option: &str) -> Option<&str> {
    let (k, v) = option.split_once(['=', ' '])?;
    let runs = matches!(
        k.to_ascii_lowercase().as_str(),
        "proxycommand" | "localcommand" | "remotecommand"
    );
    Some(v.trim()).filter(|v| runs && !v.is_empty())
}

/// Everything `c` runs besides itself.
pub fn embedded(c: &Cmd) -> Vec<Embedded> {
    let mut out = Vec::new();
    for (name, value) in assignments(c) {
        if COMMAND_VARS.contains(&name) && !value.trim().is_empty() {
            out.push(Embedded::Command(
                value.trim().trim_start_matches('|').to_string(),
            ));
        } else if name == "PERL5DB" {
            // Perl's debugger is Perl code (`PERL5DB='BEGIN { exec "/bin/sh" }'`).
            out.push(Embedded::Code(value.to_string()));
        }
    }
    let handled = files::embedded(c, &mut out)
        || editors::embedded(c, &mut out)
        || remote::embedded(c, &mut out)
        || interactive::embedded(c, &mut out);
    let args = &c.args;
    let program = c.program.as_str();
    if !handled && !NEVER_RUNS_ARGUMENTS.contains(&program) && !SHELLS.contains(&program) {
        super::hooks::options(program, args, &mut out);
        super::build_files::commands(c, &mut out);
        // ssh options passed on by wrappers of ssh (`-o "ProxyCommand …"`).
        for a in args {
            if let Some(cmd) = ssh_command_option(a.trim_start_matches("-o")) {
                out.push(Embedded::Command(cmd.to_string()));
            }
        }
        // A shell given as the command to run (`bpftrace -c /bin/sh -e
        // …`): what follows belongs to the program, not to the shell.
        for v in value_after(args, &["-c", "--command", "--cmd", "--exec", "-x"]) {
            if v.starts_with('/') && names_shell(v) {
                out.push(Embedded::Command(v.to_string()));
            }
        }
        // `npm exec -c 'cmd'` / `npx -c 'cmd'` run a shell command line
        // with the package binaries on PATH.
        let runs_line = match program {
            "npx" => true,
            "npm" | "pnpm" => args.first().is_some_and(|a| a == "exec"),
            _ => false,
        };
        if runs_line {
            for v in value_after(args, &["-c", "--call"]) {
                out.push(Embedded::Command(v.to_string()));
            }
        }
        // Package scripts and Maven's exec plugin run later or now.
        let stored = match program {
            "npm" => super::deferred::npm(args),
            "mvn" | "mvnw" => super::deferred::maven(args),
            // `jq '.scripts.preinstall="…"' package.json`, `yq -i
            // '.jobs.build.steps += [{"run": "…"}]' ci.yml`
            // lftp runs its `-e`/`-c` commands; multipass runs what
            // follows `--` in the machine.
            "lftp" => value_after(args, &["-e", "-c"])
                .iter()
                .flat_map(|v| v.split(';').map(|p| p.trim().to_string()))
                .filter(|p| !p.is_empty() && p != "bye" && p != "quit")
                .collect(),
            "multipass" if args.first().is_some_and(|a| a == "exec") => args
                .iter()
                .position(|a| a == "--")
                .map(|i| vec![shell_join(&args[i + 1..])])
                .unwrap_or_default(),
            "jq" | "yq" | "gojq" | "jaq" => args
                .iter()
                .filter(|a| {
                    ["script", "run", "command", "steps"]
                        .iter()
                        .any(|k| a.contains(k))
                })
                .flat_map(|a| super::deferred::json_strings(a))
                .chain(super::hooks::structured_edit(args))
                .collect(),
            _ => Vec::new(),
        };
        out.extend(stored.into_iter().map(Embedded::Command));
        wrapped_shell(args, &mut out);
        // What a line-oriented program reads as its commands (`ed <<<
        // '!/bin/bash'`, `tclsh <<< 'exec /bin/zsh …'`), and `!sh` on a
        // line of its own: the shell escape of line editors and debuggers
        // (ed, gdb, ftp, sqlite), by name as well as by path.
        if out.is_empty() {
            let fed: Vec<String> = c
                .redirects
                .iter()
                .filter(|r| matches!(r.op, RedirOp::HereString | RedirOp::HereDoc))
                .map(|r| r.target.clone())
                .collect();
            wrapped_shell(&fed, &mut out);
            for line in fed.iter().flat_map(|f| f.lines()) {
                let Some(rest) = line.trim().strip_prefix('!') else {
                    continue;
                };
                if rest.split_whitespace().next().is_some_and(names_shell) {
                    out.push(Embedded::Command(rest.trim().to_string()));
                }
            }
        }
    }
    out.retain(|e| !matches!(e, Embedded::Command(s) if s.trim().is_empty()));
    out.truncate(16);
    out
}

/// Programs that name shells without running them (`ls -l /bin/sh`,
/// `chsh -s /bin/zsh`, `echo '#!/bin/bash'`): the generic wrapper rule
/// below does not apply to them.
const NEVER_RUNS_ARGUMENTS: &[&str] = &[
    "ls",
    "stat",
    "file",
    "which",
    "whereis",
    "type",
    "command",
    "readlink",
    "realpath",
    "basename",
    "dirname",
    "cat",
    "tac",
    "head",
    "tail",
    "strings",
    "ldd",
    "readelf",
    "objdump",
    "nm",
    "hexdump",
    "xxd",
    "od",
    "md5sum",
    "sha1sum",
    "sha256sum",
    "sha512sum",
    "cksum",
    "cp",
    "mv",
    "ln",
    "chmod",
    "chown",
    "chgrp",
    "touch",
    "rm",
    "diff",
    "cmp",
    "grep",
    "egrep",
    "fgrep",
    "rg",
    "ag",
    "ack",
    "echo",
    "printf",
    "test",
    "[",
    "[[",
    "chsh",
    "usermod",
    "useradd",
    "adduser",
    "dpkg",
    "dpkg-query",
    "rpm",
    "apt-cache",
    "apt-file",
    "update-alternatives",
    "shellcheck",
    "shfmt",
    "bat",
    "wc",
    "du",
    "sed",
    "awk",
    "gawk",
    "tee",
    "export",
    "set",
    "declare",
    "unset",
    "alias",
    "getent",
    "id",
];

/// A shell named by path in a string another program is given, up to
/// what ends the command (`--up '/bin/sh -c sh'`, `:set shell=/bin/sh`,
/// `exec /bin/sh <@stdin`, `all:; /bin/sh`, a line of a script or recipe);
/// a `#!` line only names an interpreter, and a
/// path after a space is prose ("switch CI to /bin/bash").
fn shell_in_string() -> &'static Regex {
    static R: OnceLock<Regex> = OnceLock::new();
    R.get_or_init(|| {
        Regex::new(
            r#"(?:^|['"=:;|(\-@]|[;|&]\s+|\n\s*|^!|[^#]!|\bexec\s+|\bspawn\s+)((?:/usr(?:/local)?)?/bin/(?:ba|da|z|k|c|tc|fi|a|mk|r|ya)?sh(?:\s[^|;'"\n]*)?)(?:$|[|;'"\n])"#,
        )
        .expect("static regex")
    })
}

/// A shell given to a program to run: the generic form of wrappers such
/// as `setarch x86_64 /bin/zsh`, `systemd-run -t /bin/bash`, `bundle exec
/// /bin/zsh`. A shell path (or `$SHELL`) among the
/// arguments starts the command line the program runs; a shell path inside
/// a longer string is the command that string runs.
fn wrapped_shell(args: &[String], out: &mut Vec<Embedded>) {
    let is_shell_path = |a: &str| {
        matches!(a, "$SHELL" | "${SHELL}")
            || (a.starts_with('/') && !a.contains(char::is_whitespace) && names_shell(a))
    };
    // A shell given as a setting is configuration, not a run
    // (`npm config set script-shell /bin/bash`, `set -g default-shell …`).
    let setting = |i: usize| {
        i > 0 && {
            let prev = args[i - 1].to_ascii_lowercase();
            prev.contains("shell") || prev == "-s"
        }
    };
    if let Some(i) = (0..args.len()).find(|&i| is_shell_path(&args[i]) && !setting(i)) {
        // `$SHELL` is itself in SHELLS (programs are compared lower-cased).
        out.push(Embedded::Command(shell_join(&args[i..])));
        return;
    }
    for (i, a) in args.iter().enumerate() {
        if let Some(m) = shell_in_string().captures(a).and_then(|c| c.get(1)) {
            // `-s '/bin/zsh -l'` sets a shell; `-s --eval='…/bin/sh'` runs one.
            if m.start() == 0 && setting(i) {
                continue;
            }
            let key = a[..m.start()].to_ascii_lowercase();
            if key.ends_with('=') && key.contains("shell") {
                continue;
            }
            out.push(Embedded::Command(without_channel_redirects(m.as_str())));
            return;
        }
    }
}

/// Tcl and expect name the terminal as `<@stdin >@stdout 2>@stderr`; in a
/// shell those would be files named `@stdin`, and a shell reading a file is
/// not interactive. Dropped, the command is the interactive shell it is.
fn without_channel_redirects(cmd: &str) -> String {
    cmd.split_whitespace()
        .filter(|w| {
            let w = w.trim_start_matches(|c: char| c.is_ascii_digit());
            !(w.starts_with("<@") || w.starts_with(">@"))
        })
        .collect::<Vec<_>>()
        .join(" ")
}
