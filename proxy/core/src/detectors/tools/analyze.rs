//! What a command does: each simple command of a parsed script is matched
//! against the command rules, its paths, writes, destinations and the
//! commands it runs for itself are examined, and data flow between
//! commands (download into an interpreter, credentials into the network,
//! decoded payloads into a shell) is followed. Everything found is an
//! effect ([`EffectHit`]).

use super::access::{consumes, dotenv_names, is_identity_value, names_list, names_only};
use super::command_io::{
    input_texts, is_output_flag, line_editor_writes, loads_code_from_temp, mounted_reads,
    reads_program_on_input, takes_names_on_input, writes,
};
use super::effects::Effect;
use super::egress::Egress;
use super::escapes::{assignments, embedded, is_interactive_shell, Embedded};
use super::installs;
use super::network::{destinations, remote_copy, Destination};
use super::paths::{normalize_path, Access};
use super::rules::{CommandRule, Produces, ToolRules};
use crate::detectors::shell::{self, lexer::RedirOp, Cmd, Script};
use crate::normalize;
use regex::Regex;
use std::sync::LazyLock;

/// One thing a call does, and why the analysis thinks so.
#[derive(Debug, Clone, PartialEq)]
pub struct EffectHit {
    pub effect: Effect,
    /// The rule (or built-in derivation) that found it.
    pub rule: String,
    pub message: String,
    /// The command line, path or URL it was found in (unmasked).
    pub evidence: String,
}

#[derive(Debug, Default, Clone)]
pub struct Analysis {
    pub effects: Vec<EffectHit>,
    /// Why the call could not be fully inspected, if it could not.
    pub uninspectable: Option<String>,
}

impl Analysis {
    pub fn push(&mut self, effect: Effect, rule: &str, message: impl Into<String>, evidence: &str) {
        if self.effects.len() >= 256 {
            return;
        }
        let evidence = normalize::truncate_at_char_boundary(evidence, 400);
        if self
            .effects
            .iter()
            .any(|h| h.effect == effect && h.rule == rule && h.evidence == evidence)
        {
            return;
        }
        self.effects.push(EffectHit {
            effect,
            rule: rule.to_string(),
            message: message.into(),
            evidence: evidence.to_string(),
        });
    }

    pub fn has(&self, effect: Effect) -> bool {
        self.effects.iter().any(|h| h.effect == effect)
    }

    pub fn uninspectable(&mut self, why: &str) {
        if self.uninspectable.is_none() {
            self.uninspectable = Some(why.to_string());
        }
    }
}

/// Programs that delete the paths they are given.
const DELETERS: &[&str] = &[
    "rm",
    "rmdir",
    "unlink",
    "shred",
    "srm",
    "trash",
    "remove-item",
    "del",
    "erase",
    "rd",
];

/// Programs that print their arguments.
const PRINTERS: &[&str] = &[
    "echo",
    "printf",
    "print",
    "write-output",
    "write-host",
    "printenv",
];

pub struct Analyzer<'a> {
    pub rules: &'a ToolRules,
    pub egress: Egress<'a>,
}

impl Analyzer<'_> {
    /// Analyze a command line.
    pub fn shell(&self, src: &str, out: &mut Analysis, depth: u8) {
        if depth > 6 {
            out.uninspectable("commands nested deeper than the analysis follows");
            return;
        }
        let script = shell::parse(src);
        if script.truncated {
            out.uninspectable("command longer or more complex than the shell parser's limits");
        }
        self.script(&script, out, depth);
        self.called_functions(src, &script, out, depth);
        // A Windows line is judged again in its plain spelling.
        if depth < 4 {
            if let Some(plain) = super::windows::plain(src) {
                self.shell(&plain, out, depth + 1);
            }
        }
        // Rules that are only a line pattern also see the raw text, which
        // parsing splits (`:(){ :|:& };:`).
        for rule in &self.rules.commands {
            let line_only = rule.programs.iter().any(|p| p == "*")
                && rule.input_from.is_empty()
                && rule.writes.is_none()
                && rule.reads.is_none()
                && rule.redirect.is_none()
                && rule.args_any.is_empty()
                && rule.args_all.is_empty()
                && rule.flags_any.is_empty()
                && rule.subcommand.is_none()
                && !rule.privileged;
            if let (Some(line), Produces::Effect(e)) =
                (rule.line.as_ref().filter(|_| line_only), &rule.produces)
            {
                if line.is_match(src) {
                    out.push(*e, &rule.id, rule.message.clone(), src);
                }
            }
        }
    }

    /// A function defined and called in the same line (`g(){ rm -rf "$@";
    /// }; g ~`) runs its body with the call's arguments as `$1` …: the
    /// body is judged again with them put in.
    fn called_functions(&self, src: &str, script: &Script, out: &mut Analysis, depth: u8) {
        static DEF: LazyLock<Regex> = LazyLock::new(|| {
            Regex::new(
                r"(?:^|[;&|\s])(?:function\s+)?([A-Za-z_][A-Za-z0-9_-]*)\s*(?:\(\s*\))?\s*\{\s([^{}]*)\}",
            )
            .expect("static regex")
        });
        if depth > 3 || !src.contains('{') {
            return;
        }
        for def in DEF.captures_iter(src).take(8) {
            let (name, body) = (&def[1], &def[2]);
            if !def[0].contains("()") && !def[0].trim_start().starts_with("function") {
                continue;
            }
            for call in script.commands.iter().filter(|c| c.program == name).take(4) {
                let args: Vec<String> = std::iter::once(name.to_string())
                    .chain(call.args.iter().cloned())
                    .collect();
                self.shell(&shell::positional(body, &args), out, depth + 1);
            }
        }
    }

    fn script(&self, script: &Script, out: &mut Analysis, depth: u8) {
        let n = script.commands.len();
        let mut tags: Vec<Vec<String>> = vec![Vec::new(); n];
        for (i, c) in script.commands.iter().enumerate() {
            let before = out.effects.len();
            // Input from a real producer, not from the `sh -c` that wraps it.
            let fed = script.upstream(i).iter().any(|&j| {
                let w = &script.commands[j];
                !(w.sources.is_empty()
                    && (super::escapes::SHELLS.contains(&w.program.as_str())
                        || matches!(w.program.as_str(), "eval" | "su" | "cmd" | "watch")))
            });
            self.command(c, fed, &mut tags[i], out, depth);
            // A program handed to an interpreter on its input (`echo
            // 'import pty; pty.spawn("/bin/sh")' | python3`, `tclsh <<< …`),
            // and groff's `.sy` requests, are judged as what they are.
            if let Some(lang) = reads_program_on_input(&c.program) {
                for text in input_texts(script, i) {
                    if lang == "roff" {
                        for line in text.lines() {
                            if let Some(cmd) = line.trim_start().strip_prefix(".sy ") {
                                self.shell(cmd, out, depth + 1);
                            }
                        }
                    } else {
                        self.code(&text, out, depth + 1);
                    }
                }
            }
            // A line editor's script on its input saves the file.
            for f in line_editor_writes(script, i) {
                self.path_write(&f, Access::Write, |_| false, out);
            }
            // Archivers taking the names of the files to pack on their
            // input (`echo ~/.aws/credentials | cpio -o`) read those files.
            if takes_names_on_input(c) {
                for j in script.upstream(i) {
                    let w = &script.commands[j];
                    if matches!(w.program.as_str(), "echo" | "printf" | "find" | "ls") {
                        for a in w.args.iter().filter(|a| !a.starts_with('-')) {
                            self.path_effects(a, Access::Read, out);
                        }
                    }
                }
            }
            if out.effects.len() == before
                && tags[i].is_empty()
                && !self.rules.known.contains(&c.program)
            {
                // A program no rule knows: judged by its arguments (above);
                // running it is running project code.
                out.push(Effect::Build, "unknown_program", "Runs a program", &c.line);
            }
            for h in &out.effects[before..] {
                push_tag(&mut tags[i], h.effect.as_str());
            }
        }
        // Rules on what flows into a command: from producers, not from
        // the `sh -c` or `eval` that merely wraps it.
        let wrapper = |j: usize| {
            let w = &script.commands[j];
            w.sources.is_empty()
                && (super::escapes::SHELLS.contains(&w.program.as_str())
                    || matches!(w.program.as_str(), "eval" | "su" | "cmd" | "watch"))
        };
        for (i, c) in script.commands.iter().enumerate() {
            let upstream: Vec<usize> = script
                .upstream(i)
                .into_iter()
                .filter(|&j| !wrapper(j))
                .collect();
            if upstream.is_empty() {
                continue;
            }
            let upstream_tags: Vec<&str> = upstream
                .iter()
                .flat_map(|&j| tags[j].iter().map(String::as_str))
                .collect();
            for rule in self.candidates(c).filter(|r| !r.input_from.is_empty()) {
                let flows = rule
                    .input_from
                    .iter()
                    .any(|f| f == "*" || upstream_tags.contains(&f.as_str()));
                // Items xargs appends are what a network command acts on
                // (the URLs to fetch, the hosts to look up), not data it
                // sends; `xargs -I{}` placing them in a URL still sends.
                let acts_on = c.items_as_args
                    && matches!(
                        rule.produces,
                        Produces::Effect(Effect::NetworkSend | Effect::Exfiltration)
                    );
                if flows && !acts_on && self.matches(rule, c) {
                    if let Produces::Effect(e) = rule.produces {
                        out.push(e, &rule.id, rule.message.clone(), &c.line);
                    }
                }
            }
        }
        self.filtered_env_dumps(script, &tags, out);
        self.download_then_run(script, out);
        super::remotes::pushes_to_new_remotes(script, out);
        self.generated_commands(script, out, depth);
        self.run_printed(script, out, depth);
        self.written_code(script, out, depth);
        // Encoded payloads (echo <b64> | base64 -d | sh, printf '\x..'):
        // decode them and analyze the result as commands and paths.
        let decodes = tags.iter().flatten().any(|t| t == "decode")
            || script.commands.iter().any(|c| {
                matches!(
                    c.program.as_str(),
                    "eval"
                        | "sh"
                        | "bash"
                        | "zsh"
                        | "dash"
                        | "python"
                        | "python3"
                        | "perl"
                        | "powershell"
                        | "pwsh"
                        | "iex"
                ) && !c.sources.is_empty()
            });
        if depth < 3 && decodes {
            let limits = normalize::Limits {
                min_token: 8,
                max_output: 64 * 1024,
                ..normalize::Limits::default()
            };
            for c in &script.commands {
                let decoded = normalize::decode_all(&c.args.join(" "), &limits);
                for d in decoded.items.iter().take(8) {
                    self.shell(&d.text, out, depth + 1);
                    self.path_effects(&d.text, Access::Read, out);
                }
            }
        }
    }

    /// Effects of one simple command (rules, shells, embedded commands,
    /// paths, writes, destinations, printed secrets, inline code).
    fn command(
        &self,
        c: &Cmd,
        fed_by_pipe: bool,
        tags: &mut Vec<String>,
        out: &mut Analysis,
        depth: u8,
    ) {
        for rule in self.candidates(c).filter(|r| r.input_from.is_empty()) {
            if self.matches(rule, c) {
                match &rule.produces {
                    Produces::Effect(e) => out.push(*e, &rule.id, rule.message.clone(), &c.line),
                    Produces::Tag(t) => push_tag(tags, t),
                }
            }
        }
        if is_interactive_shell(c, fed_by_pipe) {
            out.push(
                Effect::Shell,
                "interactive_shell",
                "Starts an interactive shell",
                &c.line,
            );
        }
        for e in embedded(c) {
            match e {
                Embedded::Shell => out.push(
                    Effect::Shell,
                    "escape_shell",
                    format!("`{}` opens a shell", c.program),
                    &c.line,
                ),
                Embedded::Command(cmd) => self.nested(&cmd, c, out, depth),
                Embedded::Code(code) => self.code(&code, out, depth + 1),
            }
        }
        for (path, access) in self.command_paths(c) {
            match access {
                Access::Read => self.path_effects(&path, Access::Read, out),
                Access::Write | Access::Delete { .. } => self.path_write(
                    &path,
                    access,
                    |t| self.harmless_settings(t, &path, c, depth),
                    out,
                ),
                Access::Mention => {}
            }
        }
        let mut dests = destinations(self.rules, c);
        if c.program == "git"
            && !matches!(
                subcommand(c),
                Some("clone" | "fetch" | "pull" | "push" | "ls-remote" | "submodule" | "remote")
            )
        {
            dests.clear();
        }
        if let Some((d, _)) = remote_copy(c) {
            dests.retain(|x| x.url != d.url);
            dests.push(d);
        }
        for d in dests.iter().take(32) {
            self.destination(d, out);
        }
        for url in installs::sources(c).iter().take(8) {
            if let Some((effect, rule, message)) = installs::judge(&self.egress, url) {
                out.push(effect, rule, message, url);
            }
        }
        if PRINTERS.contains(&c.program.as_str()) {
            let named: Vec<&str> = if c.program == "printenv" {
                c.args.iter().map(String::as_str).collect()
            } else {
                Vec::new()
            };
            let printed = c
                .args
                .iter()
                .flat_map(|a| self.rules.secret_refs(a))
                .next()
                .or_else(|| {
                    named
                        .into_iter()
                        .find(|n| self.rules.secret_env.is_match(&n.to_ascii_uppercase()))
                });
            if let Some(name) = printed {
                out.push(
                    Effect::CredentialRead,
                    "secret_env_printed",
                    format!("Prints the secret environment variable {name}"),
                    &c.line,
                );
            }
        }
        // A library forced into a program from a directory anyone can write
        // (`LD_PRELOAD=/tmp/x.so find`, `export LD_PRELOAD=/dev/shm/x.so`).
        // The same for the variables through which an interpreter loads
        // code before its program (`NODE_OPTIONS='--require /tmp/x.js'`,
        // `RUBYOPT=-r/tmp/x.rb`, `BASH_ENV=/tmp/x.sh`), and iconv's modules
        // (`GCONV_PATH`: a directory of shared objects it loads).
        // `echo 'node-options=--require=/tmp/x.js' >> .npmrc`: npm passes it
        // to every node it starts.
        let npmrc: Vec<(&str, &str)> = if matches!(c.program.as_str(), "echo" | "printf")
            && c.redirects.iter().any(|r| r.target.ends_with(".npmrc"))
        {
            c.args
                .iter()
                .filter_map(|a| a.trim_matches(['"', '\'']).split_once('='))
                .filter(|(k, _)| k.trim().eq_ignore_ascii_case("node-options"))
                .map(|(_, v)| ("NODE_OPTIONS", v))
                .collect()
        } else {
            Vec::new()
        };
        for (name, value) in assignments(c).chain(npmrc) {
            if loads_code_from_temp(name, value) {
                out.push(
                    Effect::PrivilegeEscalation,
                    "library_preload",
                    format!("Loads code from a temporary directory through {name}"),
                    &c.line,
                );
                break;
            }
        }
        if let Some(code) = &c.code {
            self.code(code, out, depth + 1);
        }
    }

    fn nested(&self, cmd: &str, parent: &Cmd, out: &mut Analysis, depth: u8) {
        let mut inner = Analysis::default();
        self.shell(cmd, &mut inner, depth + 1);
        if let Some(u) = inner.uninspectable {
            out.uninspectable(&u);
        }
        for mut h in inner.effects {
            if h.effect == Effect::Shell && h.rule == "interactive_shell" {
                h.evidence = parent.line.clone();
                // A shell inside a container or a pod is that container's,
                // not the host's: what it may reach is judged from the
                // container's options (host mounts, `--privileged`).
                if let Some((effect, place)) = isolated_shell(parent) {
                    h.effect = effect;
                    h.message = format!("`{}` opens a shell inside {place}", parent.program);
                    h.rule = "container_shell".into();
                } else {
                    h.message = format!("`{}` runs an interactive shell", parent.program);
                    h.rule = "escape_shell".into();
                }
            }
            out.push(h.effect, &h.rule, h.message, &h.evidence);
        }
    }

    fn write_message(&self, path: &str, effect: Effect) -> String {
        let norm = normalize_path(path);
        if let Some(i) = self.rules.write_set.matches(&norm).iter().next() {
            return self.rules.writes[i].message.clone();
        }
        format!("{}: {norm}", capitalised(effect.describe()))
    }

    /// Writing or deleting `path`: the effect of the place (`only_settings`
    /// as for [`ToolRules::write_effect`]), with its rule and message.
    pub fn path_write(
        &self,
        path: &str,
        access: Access,
        only_settings: impl FnOnce(&str) -> bool,
        out: &mut Analysis,
    ) {
        let (effect, rule) = self.rules.write_effect(path, access, only_settings);
        let msg = match (effect, access) {
            (Effect::Write, _) => "Writes inside the workspace".to_string(),
            (_, Access::Delete { .. }) => format!("Deletes {}", normalize_path(path)),
            _ => self.write_message(path, effect),
        };
        out.push(effect, &format!("write.{rule}"), msg, path);
    }

    /// Reading `s`: credential locations have their rule's effect.
    pub fn path_effects(&self, s: &str, access: Access, out: &mut Analysis) {
        for hit in self.rules.sensitive(s, access) {
            let rule = &self.rules.paths[hit.rule];
            if let Some(effect) = rule.read {
                out.push(
                    effect,
                    &format!("path.{}", rule.id),
                    rule.message.clone(),
                    &hit.path,
                );
            }
        }
    }

    pub fn destination(&self, d: &Destination, out: &mut Analysis) {
        let (effect, rule, message) = self.egress.effect(d);
        out.push(effect, rule, message, &d.url);
        let host = super::egress::host_of(&d.url);
        if host
            .as_deref()
            .and_then(super::egress::encoded_label)
            .is_some()
        {
            out.push(
                Effect::Exfiltration,
                "egress.encoded_label",
                "A host name that carries encoded text (data sent out in the DNS lookup)"
                    .to_string(),
                &d.url,
            );
        }
    }

    /// Rules that may apply to a command: those naming its program, then
    /// the wildcard and prefix rules.
    fn candidates<'r>(&'r self, c: &Cmd) -> impl Iterator<Item = &'r CommandRule> + 'r {
        let named = self
            .rules
            .by_program
            .get(&c.program)
            .map(|v| v.as_slice())
            .unwrap_or(&[]);
        named
            .iter()
            .chain(self.rules.any_program.iter())
            .map(|&i| &self.rules.commands[i])
    }

    fn matches(&self, rule: &CommandRule, c: &Cmd) -> bool {
        if !rule.matches_program(&c.program) {
            return false;
        }
        if rule.privileged && !c.privileged {
            return false;
        }
        if let Some(sub) = &rule.subcommand {
            if !subcommand(c).is_some_and(|s| sub.is_match(s)) {
                return false;
            }
        }
        if let Some(none) = &rule.subcommand_none {
            if subcommand(c).is_some_and(|s| none.is_match(s)) {
                return false;
            }
        }
        if !rule.flags_any.is_empty() && !c.args.iter().any(|a| flag_matches(a, &rule.flags_any)) {
            return false;
        }
        if !rule.args_any.is_empty() {
            let any = |a: &str| rule.args_any.iter().any(|r| r.is_match(a));
            let in_args = c.args.iter().any(|a| any(a));
            let in_env = rule.args_any_env && c.env.iter().any(|(n, v)| any(&format!("{n}={v}")));
            if !in_args && !in_env {
                return false;
            }
        }
        if !rule
            .args_all
            .iter()
            .all(|r| c.args.iter().any(|a| r.is_match(a)))
        {
            return false;
        }
        if c.args
            .iter()
            .any(|a| rule.args_none.iter().any(|r| r.is_match(a)))
        {
            return false;
        }
        if let Some(line) = &rule.line {
            if !line.is_match(&c.line) {
                return false;
            }
        }
        if let Some(w) = &rule.writes {
            if !writes(c).iter().any(|p| w.is_match(&normalize_path(p))) {
                return false;
            }
        }
        if let Some(r) = &rule.reads {
            if !c
                .redirects
                .iter()
                .any(|x| matches!(x.op, RedirOp::In | RedirOp::HereString) && r.is_match(&x.target))
            {
                return false;
            }
        }
        if let Some(r) = &rule.redirect {
            if !c.redirects.iter().any(|x| r.is_match(&x.target)) {
                return false;
            }
        }
        true
    }

    /// Paths a command touches, and how.
    fn command_paths(&self, c: &Cmd) -> Vec<(String, Access)> {
        let mut out: Vec<(String, Access)> = Vec::new();
        for r in &c.redirects {
            match r.op {
                RedirOp::In => out.push((r.target.clone(), Access::Read)),
                RedirOp::Out | RedirOp::Append => out.push((r.target.clone(), Access::Write)),
                _ => {}
            }
        }
        let written = writes(c);
        for w in &written {
            out.push((w.clone(), Access::Write));
        }
        let program = c.program.as_str();
        // Windows spells it `rd /s` and `Remove-Item -Recurse`.
        let recursive = c.args.iter().any(|a| {
            flag_matches(a, &["-r".into(), "-R".into(), "--recursive".into()])
                || (matches!(program, "rd" | "rmdir" | "del" | "erase")
                    && a.eq_ignore_ascii_case("/s"))
                || (program == "remove-item" && a.to_ascii_lowercase().starts_with("-recurse"))
        });
        let deleter = DELETERS.contains(&program);
        let namer = names_only(c);
        // Every other program may print what it reads: the ways to get a
        // file's content out of a program are too many to list (error
        // messages that quote the input, preprocessors, filter files), so a
        // program is a reader unless it is known to only name or use paths.
        let reader = !consumes(c);
        let mut skip_next = false;
        for (k, a) in c.args.iter().enumerate() {
            if skip_next {
                skip_next = false;
                continue;
            }
            if is_identity_value(c, k) {
                continue;
            }
            if a.starts_with('-') {
                // `-o FILE` style outputs were counted as writes above.
                if is_output_flag(program, a) {
                    skip_next = true;
                }
                if let Some((opt, v)) = a.split_once('=') {
                    if reader && !deleter && (!namer || names_list(program, opt)) {
                        out.push((v.to_string(), Access::Read));
                    }
                }
                continue;
            }
            if written.contains(a) {
                continue;
            }
            if k > 0 && names_list(program, &c.args[k - 1]) && reader && !deleter {
                out.push((a.to_string(), Access::Read));
                continue;
            }
            // A command line given to the program (`rsync -e "ssh -i key"`)
            // is judged as a command, not as a path.
            if a.contains(' ')
                && a.split_whitespace()
                    .next()
                    .is_some_and(|w| self.rules.known.contains(w))
            {
                continue;
            }
            let arg = a.trim_start_matches('@');
            let value = arg
                .split_once('=')
                .filter(|(k, _)| k.starts_with("if") || !k.contains('/'))
                .map_or(arg, |(_, v)| v);
            let value = value
                .trim_start_matches("file:")
                .trim_start_matches("FILE:");
            let access = if deleter {
                Access::Delete { recursive }
            } else if a.starts_with('@') || a.contains("=@") || a.starts_with("if=") {
                Access::Read
            } else if namer {
                Access::Mention
            } else if is_dotenv(value) && dotenv_names(c) {
                // Only the names of its variables are printed.
                Access::Mention
            } else if (program == "source" || program == ".") && is_dotenv(value) {
                // Loading `KEY=value` lines into the shell prints nothing;
                // what a later command does with them is judged there
                // (`curl -d "$API_KEY" …` is exfiltration).
                Access::Mention
            } else if reader || (program == "source" || program == ".") {
                Access::Read
            } else {
                Access::Mention
            };
            out.push((value.to_string(), access));
        }
        // A host path mounted into a container and named by the command
        // the container runs is read through it.
        out.extend(mounted_reads(c).into_iter().map(|p| (p, Access::Read)));
        // `kubectl cp pod:/var/run/secrets/…/token .`, `docker cp ctr:/root/.ssh .`:
        // the path in the container is read out of it.
        if matches!(program, "kubectl" | "oc" | "docker" | "podman") && subcommand(c) == Some("cp")
        {
            for a in c
                .args
                .iter()
                .filter(|a| !a.starts_with('-') && !a.contains("://"))
            {
                if let Some((_, path)) = a.split_once(':').filter(|(_, p)| p.starts_with('/')) {
                    out.push((path.to_string(), Access::Read));
                }
            }
        }
        // socat addresses name files it reads.
        if program == "socat" {
            for a in &c.args {
                let up = a.to_ascii_uppercase();
                for p in ["FILE:", "OPEN:", "GOPEN:", "CREATE:"] {
                    if up.starts_with(p) {
                        let path = a[p.len()..].split(',').next().unwrap_or("");
                        out.push((path.to_string(), Access::Read));
                    }
                }
            }
        }
        out
    }

    /// `env | grep -i ^npm_` shows a few variables, not the environment:
    /// a dump filtered by a non-secret pattern is a read. PowerShell's
    /// `gci env: | Where-Object Name -like 'DOTNET_*'` alike. An inverted
    /// filter (`grep -v PATH`, `-notlike`) shows everything else.
    fn filtered_env_dumps(&self, script: &Script, tags: &[Vec<String>], out: &mut Analysis) {
        for (i, c) in script.commands.iter().enumerate() {
            if !tags[i].iter().any(|t| t == Effect::EnvRead.as_str()) {
                continue;
            }
            let consumers: Vec<&Cmd> = script
                .commands
                .iter()
                .filter(|d| d.sources.contains(&i))
                .collect();
            let filtered = !consumers.is_empty()
                && consumers.iter().all(|d| {
                    matches!(
                        d.program.as_str(),
                        "grep"
                            | "egrep"
                            | "fgrep"
                            | "rg"
                            | "sort"
                            | "wc"
                            | "cut"
                            | "where-object"
                            | "where"
                            | "select-string"
                            | "sls"
                            | "findstr"
                    ) && !inverted_filter(d)
                        && !d.args.iter().any(|a| {
                            let up = a.to_ascii_uppercase();
                            up.len() > 2
                                && self.rules.secret_env.is_match(up.trim_matches(|ch: char| {
                                    !ch.is_ascii_alphanumeric() && ch != '_'
                                }))
                        })
                        && d.args.iter().any(|a| !a.starts_with('-'))
                });
            if filtered {
                out.effects
                    .retain(|h| !(h.effect == Effect::EnvRead && h.evidence == c.line));
            }
        }
    }
}

/// A filter that keeps what does not match (`grep -v`, `grep -iv`,
/// `findstr /v`, `Where-Object Name -notlike …`): it shows everything else.
fn inverted_filter(d: &Cmd) -> bool {
    let grep = matches!(d.program.as_str(), "grep" | "egrep" | "fgrep" | "rg");
    d.args.iter().any(|a| {
        (grep && a.starts_with('-') && !a.starts_with("--") && a.contains('v'))
            || matches!(
                a.to_ascii_lowercase().as_str(),
                "--invert-match"
                    | "/v"
                    | "-notlike"
                    | "-notmatch"
                    | "-ne"
                    | "-notcontains"
                    | "-notin"
            )
    })
}

/// The first argument that is not an option.
pub fn subcommand(c: &Cmd) -> Option<&str> {
    let mut skip = false;
    for a in &c.args {
        if skip {
            skip = false;
            continue;
        }
        if a.starts_with('-') {
            // Global options that take a value (`git -C dir`, `kubectl -n x`).
            skip = matches!(
                a.as_str(),
                "-C" | "-c"
                    | "-n"
                    | "--namespace"
                    | "--context"
                    | "--kubeconfig"
                    | "-p"
                    | "--profile"
                    | "--region"
                    | "--project"
                    | "--prefix"
                    | "--manifest-path"
                    | "-f"
                    | "--file"
                    | "-w"
                    | "--workspace"
                    | "--filter"
                    | "-F"
                    | "--cwd"
                    | "--dir"
                    | "-o"
                    | "--output"
            ) && !matches!(c.program.as_str(), "pnpm" | "npm" | "yarn");
            continue;
        }
        return Some(a.as_str());
    }
    None
}

/// All regexes match within 800 bytes of the first one's match.
pub(super) fn co_occurring(all: &[Regex], text: &str) -> Option<usize> {
    let (first, rest) = all.split_first()?;
    for m in first.find_iter(text).take(32) {
        let lo = floor(text, m.start().saturating_sub(800));
        let hi = floor(text, (m.end() + 800).min(text.len()));
        let window = &text[lo..hi];
        if rest.iter().all(|r| r.is_match(window)) {
            return Some(m.start());
        }
    }
    None
}

/// A dotenv file: `.env`, `.env.local`, `prod.env`.
fn is_dotenv(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path);
    name == ".env" || name.starts_with(".env.") || name.ends_with(".env") && name.len() > 4
}

fn floor(text: &str, mut i: usize) -> usize {
    while !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}

pub(super) fn excerpt_at(text: &str, at: usize) -> String {
    let start = floor(text, at);
    let end = floor(text, (start + 200).min(text.len()));
    text[start..end].to_string()
}

/// Where a shell started by `c` runs when it is not the host's: a container
/// (`docker run|exec`, podman, nerdctl) or a Kubernetes pod (`kubectl
/// exec`), with the effect of opening it. A pod is someone's running
/// service, so a shell in it is an infrastructure change.
fn isolated_shell(c: &Cmd) -> Option<(Effect, &'static str)> {
    let sub = subcommand(c);
    match c.program.as_str() {
        "docker" | "podman" | "nerdctl" => matches!(
            sub,
            Some("run" | "exec" | "container" | "compose" | "create")
        )
        .then_some((Effect::Container, "a container")),
        "kubectl" | "oc" => matches!(sub, Some("exec" | "run" | "debug" | "attach"))
            .then_some((Effect::InfraChange, "a pod")),
        _ => None,
    }
}

fn push_tag(tags: &mut Vec<String>, tag: &str) {
    if !tags.iter().any(|t| t == tag) {
        tags.push(tag.to_string());
    }
}

fn capitalised(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

/// `-rf` has `-r` and `-f`; `--force=yes` is `--force`; PowerShell flags
/// compare case-insensitively.
pub fn flag_matches(arg: &str, wanted: &[String]) -> bool {
    if !arg.starts_with('-') || arg.len() < 2 {
        return false;
    }
    let lower = arg.to_ascii_lowercase();
    let name = lower.split('=').next().unwrap_or(&lower);
    if wanted.iter().any(|w| w == name) {
        return true;
    }
    if !arg.starts_with("--") && arg[1..].chars().all(|c| c.is_ascii_alphabetic()) {
        return arg[1..].chars().any(|ch| {
            wanted
                .iter()
                .any(|w| w.len() == 2 && w.as_bytes()[1] as char == ch)
        });
    }
    false
}

pub(super) fn basename(p: &str) -> String {
    p.trim_end_matches('/')
        .rsplit(['/', '\\'])
        .next()
        .unwrap_or(p)
        .to_string()
}
