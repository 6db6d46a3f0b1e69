//! Programs that run the commands they are given through options of their
//! own: tmux sessions, windows and typed keys, nano's spell checker,
//! Ansible's ad-hoc command modules, Erlang's `os:cmd`, TeX's `\write18`
//! with shell escape on. Each command is judged as the command it is, so
//! `tmux new -d 'zsh -i'` is an interactive shell and `tmux new -d 'npm run
//! dev'` a build.

use super::escapes::{quoted, shell_join, value_after, Embedded};

/// What `program` runs through its own options.
pub fn options(program: &str, args: &[String], out: &mut Vec<Embedded>) {
    match program {
        // An ad-hoc module that runs its argument as a command.
        "ansible" => {
            let module = value_after(args, &["-m", "--module-name"]);
            let runs = module.iter().any(|m| {
                matches!(
                    m.rsplit('.').next().unwrap_or(m),
                    "shell" | "command" | "raw" | "script" | "expect"
                )
            });
            if runs {
                for v in value_after(args, &["-a", "--args"]) {
                    out.push(Embedded::Command(v.to_string()));
                }
            }
        }
        // Erlang and Elixir expressions: `os:cmd("…")` and
        // `System.cmd`/`:os.cmd` run their string.
        "erl" | "elixir" | "iex" | "escript" => {
            for v in value_after(args, &["-eval", "-e", "--eval", "-s"]) {
                if v.contains("os:cmd")
                    || v.contains("os.cmd")
                    || v.contains("System.cmd")
                    || v.contains("open_port")
                {
                    for lit in quoted(v) {
                        out.push(Embedded::Command(lit));
                    }
                }
            }
        }
        // TeX with shell escape enabled runs `\\write18{…}`.
        "tex" | "etex" | "pdftex" | "xetex" | "luatex" | "latex" | "pdflatex" | "xelatex"
        | "lualatex" | "latexmk" | "context" => {
            let enabled = args.iter().any(|a| {
                matches!(
                    a.trim_start_matches('-'),
                    "shell-escape" | "enable-write18" | "shell-restricted"
                )
            });
            if enabled {
                for a in args {
                    let mut rest = a.as_str();
                    while let Some(p) = rest.find("write18{") {
                        let body = &rest[p + 8..];
                        let end = body.find('}').unwrap_or(body.len());
                        out.push(Embedded::Command(body[..end].to_string()));
                        rest = &body[end..];
                    }
                }
            }
        }
        // Environment managers run the rest of their line in the project's
        // environment: `uv run python -c …`, `conda run -n base python …`.
        "uv" | "poetry" | "pipenv" | "pdm" | "hatch" | "rye" | "conda" | "mamba" | "micromamba"
        | "pixi" => {
            if let Some(at) = args.iter().position(|a| a == "run") {
                let rest = after_options(&args[at + 1..]);
                if !rest.is_empty() {
                    out.push(Embedded::Command(shell_join(rest)));
                }
            }
        }
        // `fastlane run sh command:"…"` runs its command.
        "fastlane"
            if args.first().is_some_and(|a| a == "run")
                && args.get(1).is_some_and(|a| a == "sh") =>
        {
            for a in &args[2..] {
                if let Some(c) = a.strip_prefix("command:") {
                    out.push(Embedded::Command(c.trim_matches(['"', '\'']).to_string()));
                }
            }
        }
        // nano runs its spell checker and formatter as commands.
        "nano" | "rnano" | "pico" => {
            for v in value_after(args, &["-s", "--speller"]) {
                out.push(Embedded::Command(v.to_string()));
            }
        }
        // A new session, window or pane runs its command; send-keys types
        // one into a shell.
        "tmux" => {
            let before = out.len();
            // `tmux -c CMD` runs CMD with the default shell.
            for v in value_after(args, &["-c"]) {
                out.push(Embedded::Command(v.to_string()));
            }
            let sub = args
                .iter()
                .position(|a| !a.starts_with('-'))
                .filter(|_| out.len() == before);
            if let Some(i) = sub {
                let rest = &args[i + 1..];
                match args[i].as_str() {
                    "new-session" | "new" | "new-window" | "neww" | "split-window" | "splitw"
                    | "respawn-pane" | "respawnp" | "respawn-window" | "respawnw" => {
                        let mut j = 0;
                        while j < rest.len() && rest[j].starts_with('-') {
                            let flag = rest[j].as_str();
                            j += if flag.len() == 2 && "sncteFfxylLPRw".contains(&flag[1..]) {
                                2
                            } else {
                                1
                            };
                        }
                        // One word is a shell command line; several are
                        // the program and its arguments.
                        match &rest[j.min(rest.len())..] {
                            [] => {}
                            [line] => out.push(Embedded::Command(line.clone())),
                            words => out.push(Embedded::Command(shell_join(words))),
                        }
                    }
                    "send-keys" | "send" => {
                        let keys: Vec<String> = value_skip(rest, &["-t", "-N"])
                            .into_iter()
                            .filter(|k| !matches!(k.as_str(), "Enter" | "C-m" | "KPEnter"))
                            .collect();
                        if !keys.is_empty() {
                            out.push(Embedded::Command(keys.join(" ")));
                        }
                    }
                    // Hooks, bindings and `run-shell` run shell commands.
                    _ => out.extend(
                        super::deferred::tmux(args)
                            .into_iter()
                            .map(Embedded::Command),
                    ),
                }
            }
        }
        _ => {}
    }
}

/// The operands after options, skipping the values of `flags`.
fn value_skip(args: &[String], flags: &[&str]) -> Vec<String> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < args.len() {
        if flags.contains(&args[i].as_str()) {
            i += 2;
            continue;
        }
        if !args[i].starts_with('-') {
            out.push(args[i].clone());
        }
        i += 1;
    }
    out
}

/// The command after a runner's own options (`-n base`, `--with x`,
/// `--no-capture-output`).
fn after_options(args: &[String]) -> &[String] {
    const VALUED: [&str; 13] = [
        "-n",
        "--name",
        "-p",
        "--prefix",
        "--with",
        "-e",
        "--env",
        "--env-file",
        "--python",
        "--project",
        "--directory",
        "--extra",
        "--group",
    ];
    let mut i = 0;
    while i < args.len() && args[i].starts_with('-') {
        if VALUED.contains(&args[i].as_str()) {
            i += 1;
        }
        i += 1;
    }
    &args[i.min(args.len())..]
}
