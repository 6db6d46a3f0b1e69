//! What a command takes in and puts out besides its plain arguments: the
//! files it writes (redirections, copies, in-place edits, output flags,
//! archive targets), a program or a list of file names handed to it on its
//! input, and variables through which it loads code.

use super::access::restrictive_mode;
use crate::detectors::shell::{lexer::RedirOp, Cmd, Script};
use regex::Regex;
use std::sync::LazyLock;

/// Downloaders and the flags naming their output file.
pub(super) const OUTPUT_FLAGS: &[&str] = &[
    "-o",
    "--output",
    "-O",
    "--output-document",
    "-OutFile",
    "-outfile",
    "-out",
    "-keyout",
    "--out",
];

/// The target directory of `cp`/`mv`/`install`/`ln -t DIR`, and the index
/// of its value among the arguments (`None` for `--target-directory=DIR`).
fn target_dir(c: &Cmd) -> Option<(String, Option<usize>)> {
    for (k, a) in c.args.iter().enumerate() {
        if let Some(v) = a.strip_prefix("--target-directory=") {
            return Some((v.to_string(), None));
        }
        let short_t = a.starts_with('-')
            && !a.starts_with("--")
            && a.ends_with('t')
            && a[1..].bytes().all(|b| b.is_ascii_alphabetic());
        if short_t || a == "--target-directory" {
            return c.args.get(k + 1).map(|v| (v.clone(), Some(k + 1)));
        }
    }
    None
}

/// Whether `flag` names a file `program` writes.
pub(super) fn is_output_flag(program: &str, flag: &str) -> bool {
    OUTPUT_FLAGS.contains(&flag)
        // mkcert writes the certificate and key it makes.
        || (program == "mkcert" && matches!(flag, "-cert-file" | "-key-file" | "-p12-file"))
}

/// Paths the command writes.
pub fn writes(c: &Cmd) -> Vec<String> {
    let mut out: Vec<String> = c
        .redirects
        .iter()
        .filter(|r| matches!(r.op, RedirOp::Out | RedirOp::Append))
        .map(|r| r.target.clone())
        .collect();
    let plain: Vec<&String> = c.args.iter().filter(|a| !a.starts_with('-')).collect();
    match c.program.as_str() {
        "tee" => out.extend(plain.iter().map(|a| a.to_string())),
        // `-t DIR` / `--target-directory=DIR` (`install -m0755 -Dt
        // /etc/cron.daily/ x`): every source lands in DIR.
        "cp" | "mv" | "install" | "ln" if target_dir(c).is_some() => {
            let (dir, at) = target_dir(c).expect("checked");
            for (k, a) in c.args.iter().enumerate() {
                if Some(k) != at && !a.starts_with('-') {
                    let name = a.rsplit('/').next().unwrap_or(a);
                    out.push(format!("{}/{name}", dir.trim_end_matches('/')));
                }
            }
        }
        "cp" | "mv" | "install" | "ln" | "rsync" | "ditto" if plain.len() >= 2 => {
            out.push(plain[plain.len() - 1].to_string());
        }
        // PowerShell's `Copy-Item SRC DST` and `Move-Item SRC DST` (also with
        // `-Destination DST`).
        "copy-item" | "cpi" | "copy" | "move-item" | "mi" | "move" => {
            match super::escapes::value_after(&c.args, &["-Destination", "-destination"]).first() {
                Some(d) => out.push(d.to_string()),
                None if plain.len() >= 2 => out.push(plain[plain.len() - 1].to_string()),
                None => {}
            }
        }
        // PowerShell's `Set-Content -Path F -Value V`, `Add-Content`,
        // `Out-File`: the path is written (the first operand without a
        // flag name).
        "set-content" | "sc" | "add-content" | "ac" | "out-file" => {
            match super::escapes::value_after(
                &c.args,
                &[
                    "-Path",
                    "-path",
                    "-FilePath",
                    "-filepath",
                    "-LiteralPath",
                    "-literalpath",
                ],
            )
            .first()
            {
                Some(p) => out.push(p.to_string()),
                None => out.extend(plain.first().map(|p| p.to_string())),
            }
        }
        // `step certificate create SUBJECT CRT KEY` writes both files.
        "step" if plain.len() >= 5 && plain[0] == "certificate" && plain[1] == "create" => {
            out.extend(plain[3..5].iter().map(|p| p.to_string()));
        }
        "dd" => out.extend(
            c.args
                .iter()
                .filter_map(|a| a.strip_prefix("of=").map(str::to_string)),
        ),
        "sed" if c.args.iter().any(|a| a.starts_with("-i")) => {
            if let Some(last) = plain.last() {
                out.push(last.to_string());
            }
        }
        // `perl -pi -e CODE FILE`, `ruby -i.bak -pe CODE FILE`: in-place
        // edits write their operands (the code is not one).
        "perl" | "ruby" if c.args.iter().any(|a| in_place_flag(a)) => {
            let code: Vec<&str> = super::escapes::value_after(&c.args, &["-e", "-E"]);
            out.extend(
                plain
                    .iter()
                    .filter(|a| !code.contains(&a.as_str()))
                    .map(|a| a.to_string()),
            );
        }
        // moreutils' `sponge FILE` (`-a` appends) writes what it soaks up.
        "sponge" => out.extend(plain.iter().map(|a| a.to_string())),
        // `uniq INPUT OUTPUT`
        "uniq" if plain.len() >= 2 => out.push(plain[1].to_string()),
        // Taking permissions away (`chmod 600 key`) changes nothing an
        // attacker wants.
        "chmod" if plain.first().is_some_and(|m| restrictive_mode(m)) => {}
        "truncate" | "touch" | "mkdir" | "chmod" | "chown" | "chgrp" | "setfacl" | "chattr" => {
            // These change the files they name (not their content); the
            // first operand of chmod/chown is the mode or owner.
            let skip = usize::from(matches!(
                c.program.as_str(),
                "chmod" | "chown" | "chgrp" | "setfacl" | "chattr"
            ));
            out.extend(plain.iter().skip(skip).map(|a| a.to_string()));
        }
        _ => {}
    }
    out.extend(super::paths::extraction_dir(c));
    out.extend(output_values(c));
    out.retain(|t| !t.is_empty() && !t.starts_with('&'));
    out
}

/// The files named by output flags: `-o F`, `--output=F`, and for the
/// downloaders a short group ending in the flag (`curl -sSLo F`, `wget -qO
/// F`).
pub(super) fn output_values(c: &Cmd) -> Vec<String> {
    // `-o Name=value` is an option (ssh, sshfs, mount), not a file.
    let option = |f: &str| {
        f.split_once('=')
            .is_some_and(|(k, _)| !k.is_empty() && k.chars().all(|ch| ch.is_ascii_alphabetic()))
    };
    let downloader = matches!(c.program.as_str(), "curl" | "wget" | "axel");
    let mut out = Vec::new();
    for (k, a) in c.args.iter().enumerate() {
        let grouped = downloader
            && a.len() > 2
            && a.starts_with('-')
            && !a.starts_with("--")
            && (a.ends_with('o') || a.ends_with('O'))
            && a[1..].bytes().all(|b| b.is_ascii_alphabetic());
        if is_output_flag(&c.program, a) || grouped {
            if let Some(f) = c.args.get(k + 1).filter(|f| *f != "-" && !option(f)) {
                out.push(f.clone());
            }
        } else if let Some((flag, v)) = a.split_once('=') {
            if flag.starts_with("--")
                && is_output_flag(&c.program, flag)
                && !v.is_empty()
                && v != "-"
            {
                out.push(v.to_string());
            }
        }
    }
    out
}

/// Host paths a container reads through a mount its command names
/// (`docker run -v /etc/shadow:/s alpine cat /s`, `-v ~/.ssh:/k … cat
/// /k/id_rsa`); a mount the image's program only uses (`-v
/// ~/.aws:/root/.aws amazon/aws-cli s3 ls`) is not read.
pub(super) fn mounted_reads(c: &Cmd) -> Vec<String> {
    let mut out = Vec::new();
    if !matches!(c.program.as_str(), "docker" | "podman" | "nerdctl") {
        return out;
    }
    let Some(inner) = super::escapes::container_command(c) else {
        return out;
    };
    for v in super::escapes::value_after(&c.args, &["-v", "--volume", "--mount"]) {
        let Some((host, target)) = mount_spec(v) else {
            continue;
        };
        let target = target.trim_end_matches('/');
        if !host.starts_with(['/', '~']) || target.is_empty() {
            continue;
        }
        for w in inner
            .split_whitespace()
            .map(|w| w.trim_matches(['"', '\'']))
        {
            if w == target {
                out.push(host.to_string());
            } else if let Some(rest) = w.strip_prefix(target).filter(|r| r.starts_with('/')) {
                out.push(format!("{}{rest}", host.trim_end_matches('/')));
            }
        }
    }
    out
}

/// The host and container paths of a mount: `HOST:TARGET[:opts]` or
/// `type=bind,source=HOST,target=TARGET`.
fn mount_spec(v: &str) -> Option<(&str, &str)> {
    if v.contains("source=") || v.contains("src=") {
        let field = |names: &[&str]| {
            v.split(',')
                .find_map(|kv| names.iter().find_map(|n| kv.strip_prefix(n)))
        };
        Some((
            field(&["source=", "src="])?,
            field(&["target=", "destination=", "dst="])?,
        ))
    } else {
        let mut parts = v.split(':');
        Some((parts.next()?, parts.next()?))
    }
}

/// Interpreters that run the program on their input when given no script
/// (`roff` for groff's requests).
pub(super) fn reads_program_on_input(program: &str) -> Option<&'static str> {
    let base = program.trim_end_matches(|c: char| c.is_ascii_digit() || c == '.');
    match base {
        "python" | "pypy" | "perl" | "ruby" | "irb" | "php" | "node" | "lua" | "luajit"
        | "tclsh" | "wish" | "expect" | "jjs" | "jrunscript" | "rscript" | "r" | "julia"
        | "osascript" | "bun" | "deno" => Some("code"),
        "groff" | "troff" | "nroff" => Some("roff"),
        _ => None,
    }
}

/// What command `i` of `script` reads on its input: its here-documents and
/// here-strings, and the text earlier `echo`/`printf` stages print into it.
pub(super) fn input_texts(script: &Script, i: usize) -> Vec<String> {
    let c = &script.commands[i];
    let mut texts: Vec<String> = c
        .redirects
        .iter()
        .filter(|r| matches!(r.op, RedirOp::HereDoc | RedirOp::HereString))
        .map(|r| r.target.clone())
        .collect();
    for j in script.upstream(i) {
        let w = &script.commands[j];
        if matches!(w.program.as_str(), "echo" | "printf") {
            let words: Vec<&str> = w
                .args
                .iter()
                .map(String::as_str)
                .filter(|a| !matches!(*a, "-e" | "-n" | "-en" | "-ne" | "-E"))
                .collect();
            texts.push(words.join(" ").replace("\\n", "\n"));
        }
    }
    texts
}

/// An archiver reading the list of files to pack from its input: `cpio
/// -o`, `zip -@`, `tar -T -`.
pub(super) fn takes_names_on_input(c: &Cmd) -> bool {
    let a = &c.args;
    match c.program.as_str() {
        "cpio" | "afio" => a.iter().any(|x| {
            x == "--create" || (x.starts_with('-') && !x.starts_with("--") && x.contains('o'))
        }),
        "zip" => a.iter().any(|x| x == "-@" || x == "--names-stdin"),
        "tar" | "bsdtar" | "gtar" => {
            a.windows(2).any(|w| {
                matches!(w[0].as_str(), "-T" | "--files-from")
                    && matches!(w[1].as_str(), "-" | "/dev/stdin")
            }) || a
                .iter()
                .any(|x| x == "--files-from=-" || x == "--files-from=/dev/stdin")
        }
        _ => false,
    }
}

/// perl's and ruby's in-place flag, alone or in a group (`-i`, `-pi`,
/// `-i.bak`, `-lpi`).
fn in_place_flag(a: &str) -> bool {
    let Some(group) = a.strip_prefix('-').filter(|g| !g.starts_with('-')) else {
        return false;
    };
    let letters = group.split('.').next().unwrap_or("");
    letters.contains('i') && letters.bytes().all(|b| b"pnlaei0".contains(&b))
}

/// A variable that makes a program load libraries or code, set to a place
/// anyone can write.
pub(super) fn loads_code_from_temp(name: &str, value: &str) -> bool {
    let temp = |v: &str| super::paths::in_temp_dir(v.trim_matches(['"', '\'']));
    match name {
        "LD_PRELOAD"
        | "LD_AUDIT"
        | "DYLD_INSERT_LIBRARIES"
        | "LD_LIBRARY_PATH"
        | "DYLD_LIBRARY_PATH"
        | "GCONV_PATH"
        | "BASH_ENV"
        | "ENV"
        | "PYTHONSTARTUP"
        | "PERL5LIB"
        | "RUBYLIB"
        | "NODE_PATH"
        | "PYTHONPATH"
        | "PYTHONHOME"
        | "GEM_PATH"
        | "CLASSPATH" => value.split([':', ' ']).any(temp),
        // Lua's search templates: `/tmp/?.so;;`
        "LUA_CPATH" | "LUA_PATH" | "LUA_CPATH_5_4" | "LUA_PATH_5_4" => value.split(';').any(temp),
        // Option strings: `--require /tmp/x.js`, `-r/tmp/x.rb`, `-M…`.
        // Node also imports code given inline or by URL (`--import=data:text/javascript,…`).
        "NODE_OPTIONS" | "RUBYOPT" | "PERL5OPT" | "JAVA_TOOL_OPTIONS" | "_JAVA_OPTIONS" => {
            (name == "NODE_OPTIONS" && node_loads_remote(value))
                || value
                    .split([' ', '=', ':'])
                    .map(|w| w.trim_start_matches("-r").trim_start_matches("-I"))
                    .any(temp)
        }
        _ => false,
    }
}

/// Node options that load a module given inline or from the network.
fn node_loads_remote(value: &str) -> bool {
    let v = value.to_ascii_lowercase();
    [
        "--import",
        "--require",
        "-r",
        "--loader",
        "--experimental-loader",
    ]
    .iter()
    .any(|flag| {
        v.match_indices(flag).any(|(at, _)| {
            let rest = v[at + flag.len()..].trim_start_matches(['=', ' ', '"', '\'']);
            rest.starts_with("data:") || rest.starts_with("http:") || rest.starts_with("https:")
        })
    })
}

/// Files a line editor writes when its commands come on its input (`ed
/// -s ~/.bashrc <<< $'a\n…\n.\nw\nq'`, `ex -s FILE < script`): a `w`,
/// `wq` or `x` command writes the file it names or the file being edited.
/// Text between an `a`, `i` or `c` command and its lone `.` is inserted
/// text, not commands.
pub(super) fn line_editor_writes(script: &Script, i: usize) -> Vec<String> {
    static INSERT: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r"^[\d,.$;'+-]*[aic]$").expect("static regex"));
    static WRITE: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"^[\d,.$;'+-]*(?:wq?|W|x)!?(?:\s+(\S+))?$").expect("static regex")
    });
    let c = &script.commands[i];
    // The program first: gathering the input is work for editors only.
    if !matches!(c.program.as_str(), "ed" | "red" | "ex") {
        return Vec::new();
    }
    let texts = input_texts(script, i);
    let edited: Vec<&String> = c
        .args
        .iter()
        .filter(|a| !a.starts_with(['-', '+']))
        .collect();
    let mut out = Vec::new();
    for t in &texts {
        let mut inserting = false;
        for line in t.replace("\\n", "\n").lines().map(str::trim) {
            if inserting {
                inserting = line != ".";
            } else if INSERT.is_match(line) && line.len() <= 12 {
                inserting = true;
            } else if let Some(m) = WRITE.captures(line) {
                match m.get(1) {
                    Some(f) if !f.as_str().starts_with('!') => out.push(f.as_str().to_string()),
                    Some(_) => {}
                    None => out.extend(edited.iter().map(|f| f.to_string())),
                }
            }
        }
    }
    out.sort();
    out.dedup();
    out
}
