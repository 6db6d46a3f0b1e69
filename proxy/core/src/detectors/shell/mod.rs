//! Understanding shell commands: a tokenizer ([`lexer`]) and a parser that
//! turns a command string into simple commands with their data flow.
//!
//! What the parser resolves, so that rules see what would really run:
//! * pipelines and sequences (`a | b && c; d`), subshells and control words;
//! * wrappers: `sudo`/`doas`/`pkexec` (marked privileged), `env`, `nohup`,
//!   `timeout`, `nice`, `xargs`, `busybox`, `command`, `exec` …;
//! * nested scripts: `sh -c '…'`, `bash <<EOF`, `eval`, `su -c`, `watch`,
//!   `cmd /c`, `powershell -Command` and `-EncodedCommand` (decoded);
//! * substitutions: `$(…)`, backticks, `<(…)`, parsed as commands whose
//!   output flows into the command that uses them;
//! * variables assigned in the script (`a=cu; b=rl; $a$b …`), `$HOME` as `~`;
//! * program names written as paths, with `.exe`, or as globs (`/???/c?t`).
//!
//! Everything is bounded (input size, nesting, number of commands), so a
//! hostile string costs linear time.

pub mod lexer;
mod programs;

use programs::{flag_value, powershell_code, shell_c, sudo_options, wrapper_skip};
pub use programs::{glob_match, positional, printf, program_name};

use lexer::{tokenize, Op, RedirOp, Sub, Tok, Word, SUB_MARK};
use regex::Regex;
use std::collections::HashMap;
use std::sync::OnceLock;

/// Longest command string parsed; the rest is ignored (and reported).
pub const MAX_SCRIPT_BYTES: usize = 64 * 1024;
/// Deepest nesting of `sh -c`, substitutions and encodings followed.
pub const MAX_DEPTH: u8 = 6;
/// Most simple commands kept per script.
pub const MAX_COMMANDS: usize = 512;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redirect {
    pub op: RedirOp,
    pub target: String,
}

/// One simple command after unwrapping.
#[derive(Debug, Clone, Default)]
pub struct Cmd {
    /// Program name: basename, lower-case, without `.exe`.
    pub program: String,
    /// Arguments after the program.
    pub args: Vec<String>,
    /// `program args… redirections` joined by spaces (for line rules).
    pub line: String,
    pub redirects: Vec<Redirect>,
    /// Commands whose output flows into this one: earlier pipeline stages,
    /// substitutions in its arguments, variables assigned from them.
    pub sources: Vec<usize>,
    /// Runs through sudo, doas, pkexec or su.
    pub privileged: bool,
    pub depth: u8,
    /// Program source given inline (`python -c`, `node -e`, `perl -e` …).
    pub code: Option<String>,
    /// Variables assigned for this command only (`PAGER=… git log`).
    pub env: Vec<(String, String)>,
    /// Some argument holds the output of a command substitution
    /// (`curl "https://x/?d=$(cat f)"`).
    pub sub_args: bool,
    /// Run by `xargs`, which appends the items of its input as arguments
    /// (`cat urls.txt | xargs curl -O`): the input is what the command
    /// acts on, not data it passes on.
    pub items_as_args: bool,
}

#[derive(Debug, Clone, Default)]
pub struct Script {
    pub commands: Vec<Cmd>,
    /// Some limit was hit (size, depth, count).
    pub truncated: bool,
}

impl Script {
    /// All commands feeding `i`, transitively (bounded).
    pub fn upstream(&self, i: usize) -> Vec<usize> {
        let mut seen = Vec::new();
        let mut stack = self.commands[i].sources.clone();
        while let Some(j) = stack.pop() {
            if seen.contains(&j) || seen.len() > 64 {
                continue;
            }
            seen.push(j);
            stack.extend(self.commands[j].sources.iter().copied());
        }
        seen
    }
}

pub fn parse(src: &str) -> Script {
    let mut p = Parser {
        script: Script::default(),
        pending_env: Vec::new(),
        pending_subs: false,
        pending_items: false,
        vars: HashMap::new(),
    };
    let src = if src.len() > MAX_SCRIPT_BYTES {
        p.script.truncated = true;
        let mut end = MAX_SCRIPT_BYTES;
        while !src.is_char_boundary(end) {
            end -= 1;
        }
        &src[..end]
    } else {
        src
    };
    let templated = template_choices(src);
    p.script_at(templated.as_deref().unwrap_or(src), 0, &[], false);
    p.script
}

/// Command references write a choice of two spellings as
/// `{{[-r|--recursive]}}`: read as its first spelling, not as a pipe into a
/// program named `--recursive]}}`. Only choices whose literal reading runs
/// no real program are read so: the second spelling is one word (a program
/// whose name ends in `]}}`, which no system has) or starts with a dash.
fn template_choices(src: &str) -> Option<String> {
    if !src.contains("{{[") {
        return None;
    }
    static R: OnceLock<Regex> = OnceLock::new();
    let re = R.get_or_init(|| {
        Regex::new(
            r"\{\{\[([A-Za-z0-9_.,:=+/-]+)\|(?:-[A-Za-z0-9_.,:=+/ -]*|[A-Za-z0-9_.,:=+/-]+)\]\}\}",
        )
        .expect("static regex")
    });
    let out = re.replace_all(src, "$1");
    (out != src).then(|| out.into_owned())
}

/// Reserved words that only structure a script.
const CONTROL_WORDS: &[&str] = &[
    "if", "then", "else", "elif", "fi", "do", "done", "while", "until", "for", "in", "case",
    "esac", "select", "function", "{", "}", "!", "[[", "]]", "time",
];

/// Interpreters that run inline code given after a flag.
const CODE_FLAGS: &[(&str, &[&str])] = &[
    ("python", &["-c"]),
    ("python2", &["-c"]),
    ("python3", &["-c"]),
    ("pypy", &["-c"]),
    ("pypy3", &["-c"]),
    ("node", &["-e", "--eval", "-p", "--print"]),
    ("deno", &["eval"]),
    ("bun", &["-e", "--eval"]),
    ("perl", &["-e", "-E"]),
    ("ruby", &["-e"]),
    ("php", &["-r"]),
    ("lua", &["-e"]),
    ("luajit", &["-e"]),
    ("osascript", &["-e"]),
    ("julia", &["-e", "--eval", "-E", "--print"]),
    ("rscript", &["-e"]),
    ("r", &["-e"]),
    ("jjs", &["-e"]),
    ("groovy", &["-e"]),
    ("scala", &["-e"]),
];

/// Builtins that set variables for the rest of the script (`export URL=…`).
pub const DECLARATIONS: &[&str] = &["export", "declare", "typeset", "readonly", "local"];

const SHELLS: &[&str] = &[
    "sh", "bash", "zsh", "dash", "ksh", "ash", "fish", "mksh", "tcsh", "csh", "rbash",
];

struct Parser {
    script: Script,
    /// Prefix assignments of the command being unwrapped; the first
    /// command pushed for it takes them.
    pending_env: Vec<(String, String)>,
    /// The command being unwrapped has substitutions in its arguments.
    pending_subs: bool,
    /// The next command gets its input as arguments (`xargs` without
    /// `-I`: each item is appended).
    pending_items: bool,
    /// Variables assigned so far: value and the commands that produced it.
    vars: HashMap<String, (String, Vec<usize>)>,
}

/// A command as written, before unwrapping.
struct Raw {
    assignments: Vec<(String, Word)>,
    words: Vec<Word>,
    redirects: Vec<(RedirOp, Word)>,
    /// Opened with `for` (`for NAME in ITEMS`).
    for_loop: bool,
}

impl Parser {
    fn full(&self) -> bool {
        self.script.commands.len() >= MAX_COMMANDS
    }

    /// Parse `src` at nesting `depth`; `inputs` feed the first pipeline
    /// stage (a heredoc body fed to `bash`, for example). Returns the
    /// indices of the commands produced.
    fn script_at(
        &mut self,
        src: &str,
        depth: u8,
        inputs: &[usize],
        privileged: bool,
    ) -> Vec<usize> {
        if depth > MAX_DEPTH {
            self.script.truncated = true;
            return Vec::new();
        }
        let toks = tokenize(src);
        if toks.len() >= lexer::MAX_TOKENS {
            self.script.truncated = true;
        }
        let mut produced = Vec::new();
        let mut raw = Raw::new();
        // Outputs of the previous stage of the current pipeline.
        let mut prev_stage: Vec<usize> = inputs.to_vec();
        let mut first_stage = true;
        let mut iter = toks.into_iter().peekable();
        loop {
            let tok = iter.next();
            let end_of_command = matches!(tok, None | Some(Tok::Op(_)));
            if end_of_command {
                let feeds = if first_stage && !inputs.is_empty() {
                    inputs.to_vec()
                } else {
                    prev_stage.clone()
                };
                let made = if raw.is_empty() {
                    Vec::new()
                } else {
                    self.command(
                        std::mem::replace(&mut raw, Raw::new()),
                        depth,
                        &feeds,
                        privileged,
                    )
                };
                produced.extend(made.iter().copied());
                match tok {
                    Some(Tok::Op(Op::Pipe)) => {
                        // A bare `echo` (`echo | openssl s_client …`) only
                        // closes the next command's input: nothing flows.
                        let bare = |&i: &usize| {
                            let c = &self.script.commands[i];
                            matches!(c.program.as_str(), "echo" | "true" | ":")
                                && c.args.iter().all(|a| a.is_empty() || a == "-n")
                                && c.sources.is_empty()
                        };
                        prev_stage = made.into_iter().filter(|i| !bare(i)).collect();
                        first_stage = false;
                    }
                    _ => {
                        prev_stage = Vec::new();
                        first_stage = false;
                    }
                }
                if tok.is_none() || self.full() {
                    break;
                }
                continue;
            }
            match tok.expect("not end") {
                Tok::Word(w) => {
                    if raw.words.is_empty() {
                        if let Some((name, value)) = assignment(&w) {
                            raw.assignments.push((name, value));
                            continue;
                        }
                        if CONTROL_WORDS.contains(&w.text.as_str()) {
                            raw.for_loop |= w.text == "for";
                            continue;
                        }
                    }
                    raw.words.push(w);
                }
                Tok::Redir { op, target } => raw.redirects.push((op, target)),
                Tok::Op(_) => unreachable!("handled above"),
            }
        }
        if self.full() {
            self.script.truncated = true;
        }
        produced
    }

    /// Resolve one raw command; returns the indices of the commands it
    /// produced (itself, plus nested ones).
    fn command(&mut self, raw: Raw, depth: u8, feeds: &[usize], privileged: bool) -> Vec<usize> {
        let mut produced = Vec::new();
        let mut sources: Vec<usize> = feeds.to_vec();
        // Substitutions anywhere in the command run first and feed it.
        let all_words = raw
            .words
            .iter()
            .chain(raw.assignments.iter().map(|(_, w)| w))
            .chain(raw.redirects.iter().map(|(_, w)| w));
        let subs: Vec<Sub> = all_words.flat_map(|w| w.subs.iter().cloned()).collect();
        for sub in subs {
            let inner = match &sub {
                Sub::Command(s) | Sub::ProcessIn(s) | Sub::ProcessOut(s) => s.clone(),
            };
            let made = self.script_at(&inner, depth + 1, &[], privileged);
            sources.extend(made.iter().copied());
            produced.extend(made);
        }
        // Variables read by the command bring the commands that set them.
        // A variable `read` set, given whole as an argument (`ping "$h"`),
        // is an item the command acts on, as xargs hands it over; inside a
        // word (`"$l.x.example"`) it is data passed on.
        let fed = !sources.is_empty();
        let mut items = 0;
        let mut data = 0;
        for w in raw.words.iter().chain(raw.redirects.iter().map(|(_, w)| w)) {
            for p in &w.params {
                if let Some((value, from)) = self.vars.get(p) {
                    sources.extend(from.iter().copied());
                    let read_var = *value == format!("${p}");
                    if read_var && w.params.len() == 1 && self.resolve(w) == *value {
                        items += 1;
                    } else if !from.is_empty() {
                        data += 1;
                    }
                }
            }
        }
        let items_only = !fed && items > 0 && data == 0;
        // Assignments without a command set shell variables.
        let resolved_assignments: Vec<(String, String, Vec<usize>)> = raw
            .assignments
            .iter()
            .map(|(n, w)| {
                // A name from `mktemp` is a place, not data that flows on.
                let only_mktemp = !w.subs.is_empty()
                    && w.subs.iter().all(
                        |s| matches!(s, Sub::Command(c) if c.trim_start().starts_with("mktemp")),
                    );
                let from = if only_mktemp {
                    feeds.to_vec()
                } else {
                    sources.clone()
                };
                (n.clone(), self.resolve(w), from)
            })
            .collect();
        if raw.words.is_empty() {
            for (name, value, from) in resolved_assignments {
                if self.vars.len() >= 256 {
                    break;
                }
                // `a=(x y z)`: `$a` and `${a[0]}` are x, `${a[2]}` is z,
                // `${a[@]}` all of them.
                if let Some(list) = value.strip_prefix('(').and_then(|v| v.strip_suffix(')')) {
                    let items: Vec<String> = list
                        .split_whitespace()
                        .map(|i| i.trim_matches(['"', '\'']).to_string())
                        .take(64)
                        .collect();
                    for (k, item) in items.iter().enumerate() {
                        self.vars
                            .insert(format!("{name}[{k}]"), (item.clone(), from.clone()));
                    }
                    let all = items.join(" ");
                    self.vars
                        .insert(format!("{name}[@]"), (all.clone(), from.clone()));
                    self.vars.insert(format!("{name}[*]"), (all, from.clone()));
                    let first = items.into_iter().next().unwrap_or_default();
                    self.vars.insert(name, (first, from));
                    continue;
                }
                self.vars.insert(name, (value, from));
            }
            // `x=$(cat ~/.aws/credentials)` still ran its substitution.
            return produced;
        }
        let mut words: Vec<String> = Vec::with_capacity(raw.words.len());
        for w in &raw.words {
            let value = self.resolve(w);
            // `"${a[@]}"` gives each element as a word, quoted or not.
            let elements = w.params.len() == 1 && w.params[0].ends_with("[@]");
            if (w.split || elements) && words.len() < 256 {
                words.extend(self.fields(&value));
            } else {
                words.push(value);
            }
        }
        if words.is_empty() {
            return produced;
        }
        // Brace expansion of the command word: `{cat,/etc/shadow}` runs
        // `cat /etc/shadow`.
        if let Some(inner) = words[0]
            .strip_prefix('{')
            .and_then(|w| w.strip_suffix('}'))
            .filter(|w| w.contains(',') && !w.contains(['{', '}', ' ']))
        {
            let items: Vec<String> = inner.split(',').map(str::to_string).collect();
            words.splice(0..1, items);
        }
        // `… | while read line; do …; done`: the variables `read` sets
        // carry what flows into it (the value stays unknown).
        if words.first().is_some_and(|w| w == "read") {
            let mut rest = words.iter().skip(1);
            while let Some(w) = rest.next() {
                if matches!(w.as_str(), "-p" | "-d" | "-u" | "-n" | "-N" | "-t" | "-i") {
                    rest.next();
                } else if !w.starts_with('-') && self.vars.len() < 256 {
                    self.vars
                        .insert(w.clone(), (format!("${w}"), sources.clone()));
                }
            }
        }
        // `for p in /proc/[0-9]*; do … "$p/environ"`: the loop variable
        // stands for its first item (the items themselves are judged as
        // the arguments of this pseudo-command).
        if raw.for_loop && words.len() > 2 && words[1] == "in" && self.vars.len() < 256 {
            self.vars
                .insert(words[0].clone(), (words[2].clone(), sources.clone()));
        }
        // `printf -v c '%s%s' cr ontab` sets `c` to what it would print
        // (unknown when the format is not one `printf` follows).
        if words.len() >= 3 && words[0] == "printf" && words[1] == "-v" && self.vars.len() < 256 {
            let value = printf(&words[3..]);
            let name = words[2].clone();
            let value = value.unwrap_or_else(|| format!("${name}"));
            self.vars.insert(name, (value, sources.clone()));
        }
        // `unset OUT` empties a variable: `rm -rf "$OUT/"*` after it is
        // `rm -rf /*`.
        if words.first().is_some_and(|w| w == "unset") && !words.iter().any(|w| w == "-f") {
            for w in words.iter().skip(1).filter(|w| !w.starts_with('-')) {
                if self.vars.len() < 256 {
                    self.vars.insert(w.clone(), (String::new(), Vec::new()));
                }
            }
        }
        // `export URL=…` sets a variable as a bare assignment does.
        if words
            .first()
            .is_some_and(|w| DECLARATIONS.contains(&w.as_str()))
        {
            for w in raw.words.iter().skip(1) {
                if let Some((name, value)) = assignment(w) {
                    if self.vars.len() < 256 {
                        let value = self.resolve(&value);
                        self.vars.insert(name, (value, sources.clone()));
                    }
                }
            }
        }
        let redirects: Vec<Redirect> = raw
            .redirects
            .iter()
            .map(|(op, w)| Redirect {
                op: *op,
                target: if *op == RedirOp::HereDoc {
                    w.text.clone()
                } else {
                    self.resolve(w)
                },
            })
            .collect();
        let globbed = raw.words.first().is_some_and(|w| w.glob);
        self.pending_subs = raw.words.iter().any(|w| !w.subs.is_empty());
        self.pending_env = resolved_assignments
            .into_iter()
            .map(|(n, v, _)| (n, v))
            .collect();
        self.pending_items = items_only;
        let made = self.unwrap(words, redirects, sources, depth, privileged, globbed);
        self.pending_env.clear();
        produced.extend(made);
        produced
    }

    /// The fields an unquoted expansion's value splits into: at the
    /// characters of `$IFS` when the script set it (`IFS=,;a="rm,-rf,~";$a`),
    /// else at blanks. Empty fields vanish, as in the shell.
    fn fields(&self, value: &str) -> Vec<String> {
        let ifs = match self.vars.get("IFS") {
            Some((v, _)) if !v.starts_with('$') => v.as_str(),
            _ => " \t\n",
        };
        if ifs.is_empty() {
            return vec![value.to_string()];
        }
        value
            .split(|c: char| ifs.contains(c))
            .filter(|f| !f.is_empty())
            .map(str::to_string)
            .collect()
    }

    /// Word value with known variables substituted and `$HOME` as `~`.
    fn resolve(&self, w: &Word) -> String {
        // `$(mktemp …)` prints a fresh name under /tmp: `d=$(mktemp -d);
        // curl -o "$d/x.tgz"` writes there, not at the root.
        let mut subs = w.subs.iter();
        let mut text: String = w
            .text
            .split(SUB_MARK)
            .enumerate()
            .map(|(i, part)| {
                let sub = if i == 0 { None } else { subs.next() };
                match sub {
                    Some(Sub::Command(cmd)) if cmd.trim_start().starts_with("mktemp") => {
                        format!("/tmp/tmp.XXXXXXXXXX{part}")
                    }
                    _ => part.to_string(),
                }
            })
            .collect();
        if !w.params.is_empty() {
            for p in &w.params {
                let needle = format!("${p}");
                let value = match p.as_str() {
                    "HOME" | "USERPROFILE" => Some("~".to_string()),
                    // Unset, `$IFS` splits at blanks (`rm${IFS}-rf${IFS}~`).
                    "IFS" if !self.vars.contains_key("IFS") => Some(" ".to_string()),
                    // `${!ref}`: the variable `ref` names.
                    _ if p.starts_with('!') => self
                        .vars
                        .get(&p[1..])
                        .and_then(|(n, _)| self.vars.get(n))
                        .map(|(v, _)| v.clone()),
                    // Set, its value; unset, the `${p:-word}` default.
                    _ => self.vars.get(p).map(|(v, _)| v.clone()).or_else(|| {
                        w.defaults
                            .iter()
                            .find(|(n, _)| n == p)
                            .map(|(_, d)| d.clone())
                    }),
                };
                let Some(value) = value else {
                    continue;
                };
                text = text.replacen(&needle, &value, 1);
            }
        }
        text
    }

    /// Peel wrappers off `words` and record the command (and nested
    /// scripts it runs).
    fn unwrap(
        &mut self,
        mut words: Vec<String>,
        mut redirects: Vec<Redirect>,
        sources: Vec<usize>,
        depth: u8,
        mut privileged: bool,
        globbed: bool,
    ) -> Vec<usize> {
        let mut produced = Vec::new();
        let mut guard = 0;
        loop {
            guard += 1;
            if words.is_empty() || guard > 16 {
                return produced;
            }
            let program = program_name(&words[0], globbed && guard == 1);
            let rest = &words[1..];
            match program.as_str() {
                "sudo" | "doas" | "run0" => {
                    privileged = true;
                    let (skip, shell) = sudo_options(rest);
                    if skip >= rest.len() {
                        if shell {
                            words = vec!["sh".into()];
                            continue;
                        }
                        // `sudo -l` and friends: keep as the command.
                    } else {
                        words = rest[skip..].to_vec();
                        continue;
                    }
                }
                "pkexec" | "gosu" | "chpst" | "runuser" | "sg" => {
                    privileged = program == "pkexec" || privileged;
                    let skip = rest
                        .iter()
                        .position(|a| {
                            !a.starts_with('-') && program != "gosu" && program != "runuser"
                        })
                        .unwrap_or(rest.len());
                    let skip = if program == "gosu" { 1 } else { skip };
                    let skip = if program == "runuser" {
                        rest.iter()
                            .position(|a| a == "--")
                            .map_or(rest.len(), |p| p + 1)
                    } else {
                        skip
                    };
                    if skip < rest.len() {
                        words = rest[skip..].to_vec();
                        continue;
                    }
                }
                "env" | "nohup" | "exec" | "builtin" | "setsid" | "unbuffer" | "caffeinate"
                | "stdbuf" | "nice" | "ionice" | "timeout" | "chroot" | "strace" | "ltrace"
                | "flock" | "torsocks" | "proxychains" | "proxychains4" | "time" | "command"
                | "busybox" | "xargs" | "doas-keepenv" | "rlwrap" | "screen" | "cpulimit" => {
                    if program == "command" && rest.first().is_some_and(|a| a == "-v" || a == "-V")
                    {
                        // `command -v x` only looks x up.
                    } else if let Some(skip) = wrapper_skip(&program, rest) {
                        // `xargs -a FILE cmd` feeds FILE to cmd as arguments:
                        // the file is read, as if on cmd's input.
                        if program == "xargs" {
                            let opts = &rest[..skip.min(rest.len())];
                            self.pending_items = skip < rest.len()
                                && !opts.iter().any(|a| {
                                    a == "-I"
                                        || a == "-J"
                                        || a.starts_with("-i")
                                        || a.starts_with("--replace")
                                        || (a.starts_with("-I") && a.len() > 2)
                                });
                            if let Some(f) =
                                flag_value(&rest[..skip.min(rest.len())], &["-a", "--arg-file"])
                            {
                                redirects.push(Redirect {
                                    op: RedirOp::In,
                                    target: f,
                                });
                            }
                            // `-o` reopens the command's input on the terminal.
                            if rest[..skip.min(rest.len())]
                                .iter()
                                .any(|a| a == "-o" || a == "--open-tty")
                            {
                                redirects.push(Redirect {
                                    op: RedirOp::In,
                                    target: "/dev/tty".into(),
                                });
                            }
                        }
                        if skip < rest.len() {
                            // `env NAME=VALUE cmd` sets NAME for cmd, as a
                            // prefix assignment does.
                            if program == "env" {
                                for a in &rest[..skip] {
                                    if let Some((n, v)) = a.split_once('=') {
                                        if !a.starts_with('-') && !n.is_empty() {
                                            self.pending_env.push((n.to_string(), v.to_string()));
                                        }
                                    }
                                }
                            }
                            words = rest[skip..].to_vec();
                            continue;
                        }
                    }
                }
                "su" => {
                    privileged = true;
                    if let Some(code) = flag_value(rest, &["-c", "--command"]) {
                        let idx = self.push(cmd(
                            &program,
                            rest,
                            redirects.clone(),
                            sources.clone(),
                            privileged,
                            depth,
                        ));
                        produced.push(idx);
                        produced.extend(self.script_at(&code, depth + 1, &[], true));
                        return produced;
                    }
                }
                "eval" => {
                    let code = rest.join(" ");
                    let idx = self.push(cmd(&program, rest, redirects, sources, privileged, depth));
                    produced.push(idx);
                    produced.extend(self.script_at(&code, depth + 1, &[idx], privileged));
                    return produced;
                }
                // The dynamic loader run as a program runs the program
                // it is given (`/lib64/ld-linux-x86-64.so.2 /bin/sh`); its
                // `--preload`, `--audit` and `--library-path` are the
                // variables of the same names.
                p if p.starts_with("ld-linux") || p.starts_with("ld64.so") || p == "ld.so" => {
                    let mut i = 0;
                    while i < rest.len() && rest[i].starts_with("--") {
                        let var = match rest[i].as_str() {
                            "--preload" => Some("LD_PRELOAD"),
                            "--audit" => Some("LD_AUDIT"),
                            "--library-path" => Some("LD_LIBRARY_PATH"),
                            "--argv0" | "--inhibit-rpath" => Some(""),
                            _ => None,
                        };
                        match (var, rest.get(i + 1)) {
                            (Some(v), Some(value)) => {
                                if !v.is_empty() {
                                    self.pending_env.push((v.to_string(), value.clone()));
                                }
                                i += 2;
                            }
                            _ => i += 1,
                        }
                    }
                    if i < rest.len() {
                        words = rest[i..].to_vec();
                        continue;
                    }
                }
                "watch" => {
                    let skip = rest
                        .iter()
                        .position(|a| !a.starts_with('-'))
                        .unwrap_or(rest.len());
                    if skip < rest.len() {
                        let code = rest[skip..].join(" ");
                        produced.extend(self.script_at(&code, depth + 1, &[], privileged));
                        return produced;
                    }
                }
                "cmd" => {
                    if let Some(p) = rest
                        .iter()
                        .position(|a| a.eq_ignore_ascii_case("/c") || a.eq_ignore_ascii_case("/k"))
                    {
                        let code = rest[p + 1..].join(" ");
                        let idx =
                            self.push(cmd(&program, rest, redirects, sources, privileged, depth));
                        produced.push(idx);
                        produced.extend(self.script_at(&code, depth + 1, &[], privileged));
                        return produced;
                    }
                }
                "powershell" | "pwsh" => {
                    let mut c = cmd(&program, rest, redirects, sources, privileged, depth);
                    let code = powershell_code(rest);
                    // The script is also program source for code rules
                    // (`iex (New-Object Net.WebClient).DownloadString(…)`).
                    c.code = code.clone();
                    let idx = self.push(c);
                    produced.push(idx);
                    if let Some(code) = code {
                        produced.extend(self.script_at(&code, depth + 1, &[], privileged));
                    }
                    return produced;
                }
                _ => {}
            }
            // A shell: `sh -c '…'`, or a script on stdin / in a heredoc.
            if SHELLS.contains(&program.as_str()) {
                let idx = self.push(cmd(
                    &program,
                    rest,
                    redirects.clone(),
                    sources.clone(),
                    privileged,
                    depth,
                ));
                produced.push(idx);
                if let Some(code) = shell_c(rest) {
                    produced.extend(self.script_at(&code, depth + 1, &[idx], privileged));
                }
                for r in &redirects {
                    if matches!(r.op, RedirOp::HereDoc | RedirOp::HereString) {
                        produced.extend(self.script_at(&r.target, depth + 1, &[], privileged));
                    }
                }
                return produced;
            }
            let mut c = cmd(&program, rest, redirects, sources, privileged, depth);
            let interpreter = program.split('.').next().unwrap_or(&program);
            if let Some((_, flags)) = CODE_FLAGS.iter().find(|(p, _)| interpreter == *p) {
                c.code = flag_value(rest, flags);
            }
            produced.push(self.push(c));
            return produced;
        }
    }

    fn push(&mut self, mut c: Cmd) -> usize {
        if self.full() {
            self.script.truncated = true;
            return self.script.commands.len().saturating_sub(1);
        }
        c.env = std::mem::take(&mut self.pending_env);
        c.sub_args = std::mem::take(&mut self.pending_subs);
        c.items_as_args = std::mem::take(&mut self.pending_items);
        self.script.commands.push(c);
        self.script.commands.len() - 1
    }
}

impl Raw {
    fn new() -> Raw {
        Raw {
            assignments: Vec::new(),
            words: Vec::new(),
            redirects: Vec::new(),
            for_loop: false,
        }
    }

    fn is_empty(&self) -> bool {
        self.words.is_empty() && self.assignments.is_empty() && self.redirects.is_empty()
    }
}

fn cmd(
    program: &str,
    args: &[String],
    redirects: Vec<Redirect>,
    sources: Vec<usize>,
    privileged: bool,
    depth: u8,
) -> Cmd {
    let mut line = program.to_string();
    for a in args {
        line.push(' ');
        line.push_str(a);
    }
    for r in &redirects {
        let op = match r.op {
            RedirOp::In => "<",
            RedirOp::Out => ">",
            RedirOp::Append => ">>",
            RedirOp::HereString => "<<<",
            RedirOp::Dup => ">&",
            RedirOp::HereDoc => continue,
        };
        line.push(' ');
        line.push_str(op);
        line.push(' ');
        line.push_str(&r.target);
    }
    Cmd {
        program: program.to_string(),
        args: args.to_vec(),
        line,
        redirects,
        sources,
        privileged,
        depth,
        code: None,
        env: Vec::new(),
        sub_args: false,
        items_as_args: false,
    }
}

/// `NAME=value` at command position.
fn assignment(w: &Word) -> Option<(String, Word)> {
    let eq = w.text.find('=')?;
    let name = &w.text[..eq];
    let valid = !name.is_empty()
        && name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !valid {
        return None;
    }
    let mut value = w.clone();
    value.text = w.text[eq + 1..].to_string();
    Some((name.to_string(), value))
}

#[cfg(test)]
mod tests;
