//! Program names (basename, lower case, globs resolved to the programs
//! they stand for) and the options of the wrappers the parser peels off
//! (`sudo -u x`, `timeout 5`, `xargs -I{}`, `sh -c`, `powershell -enc`).

use super::lexer::ansi_c;
use base64::Engine as _;

/// Known program names a glob may stand for (`/???/c?t` → cat).
const GLOB_PROGRAMS: &[&str] = &[
    "cat", "curl", "wget", "nc", "ncat", "bash", "sh", "python", "python3", "perl", "rm", "chmod",
    "base64", "dd", "socat", "telnet", "scp", "ssh", "openssl",
];

/// Basename, lower-case, without `.exe`; a glob resolves to the program it
/// matches.
pub fn program_name(word: &str, glob: bool) -> String {
    let base = word.rsplit(['/', '\\']).next().unwrap_or(word);
    let mut name = base.to_ascii_lowercase();
    if let Some(stripped) = name.strip_suffix(".exe") {
        name = stripped.to_string();
    }
    if glob && name.contains(['*', '?', '[']) {
        if let Some(p) = GLOB_PROGRAMS.iter().find(|p| glob_match(&name, p)) {
            return p.to_string();
        }
    }
    name
}

/// Shell glob matching (`*`, `?`, `[…]`) of a whole string, as the shell
/// expands a path: a wildcard never matches `/`, and a wildcard at the
/// start of a segment never matches its leading `.` (`*` is not `.netrc`,
/// `~/*` names nothing under `~/.ssh`).
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    fn rec(p: &[char], t: &[char], segment_start: bool, budget: &mut u32) -> bool {
        *budget = budget.saturating_sub(1);
        if *budget == 0 {
            return false;
        }
        // What a wildcard may consume here.
        let free = |c: char, first: bool| c != '/' && !(first && segment_start && c == '.');
        match p.first() {
            None => t.is_empty(),
            // A name starting with a dot is matched only by a pattern that
            // starts with the dot itself: `*.git*` is not `.git-credentials`.
            Some('*') if segment_start && t.first() == Some(&'.') => false,
            Some('*') => {
                let mut k = 0;
                loop {
                    if rec(&p[1..], &t[k..], segment_start && k == 0, budget) {
                        return true;
                    }
                    if k == t.len() || !free(t[k], k == 0) {
                        return false;
                    }
                    k += 1;
                }
            }
            Some('?') => !t.is_empty() && free(t[0], true) && rec(&p[1..], &t[1..], false, budget),
            Some('[') => {
                let Some(close) = p.iter().position(|c| *c == ']') else {
                    return !t.is_empty() && t[0] == '[' && rec(&p[1..], &t[1..], false, budget);
                };
                let set = &p[1..close];
                let (neg, set) = match set.first() {
                    Some('!' | '^') => (true, &set[1..]),
                    _ => (false, set),
                };
                let Some(&c) = t.first() else { return false };
                if !free(c, true) {
                    return false;
                }
                let mut hit = false;
                let mut i = 0;
                while i < set.len() {
                    if i + 2 < set.len() && set[i + 1] == '-' {
                        hit |= set[i] <= c && c <= set[i + 2];
                        i += 3;
                    } else {
                        hit |= set[i] == c;
                        i += 1;
                    }
                }
                hit != neg && rec(&p[close + 1..], &t[1..], false, budget)
            }
            Some(&c) => t.first() == Some(&c) && rec(&p[1..], &t[1..], c == '/', budget),
        }
    }
    let mut budget = 10_000;
    rec(&p, &t, true, &mut budget)
}

/// How many arguments of `sudo` are its own options; whether it was asked
/// for a shell (`-i`, `-s`).
pub(super) fn sudo_options(rest: &[String]) -> (usize, bool) {
    let mut i = 0;
    let mut shell = false;
    while i < rest.len() {
        let a = rest[i].as_str();
        if a == "--" {
            return (i + 1, shell);
        }
        if !a.starts_with('-') || a == "-" {
            break;
        }
        if a == "-i" || a == "-s" || a == "--login" || a == "--shell" {
            shell = true;
        }
        let takes_value = matches!(
            a,
            "-u" | "-g" | "-h" | "-p" | "-C" | "-r" | "-t" | "-U" | "-D" | "-R" | "-T"
        );
        i += if takes_value { 2 } else { 1 };
    }
    (i, shell)
}

/// Arguments of a generic wrapper before the wrapped command.
pub(super) fn wrapper_skip(program: &str, rest: &[String]) -> Option<usize> {
    let mut i = 0;
    let takes_value: &[&str] = match program {
        "env" => &["-u", "--unset", "-C", "--chdir", "-S", "--split-string"],
        "nice" => &["-n", "--adjustment"],
        "ionice" => &["-c", "-n", "-p", "--class", "--classdata"],
        "timeout" => &["-s", "--signal", "-k", "--kill-after"],
        "stdbuf" => &["-i", "-o", "-e"],
        "xargs" => &[
            "-I",
            "-n",
            "-P",
            "-d",
            "-a",
            "-L",
            "-s",
            "-E",
            "--max-args",
            "--max-procs",
            "--delimiter",
            "--arg-file",
            "--replace",
        ],
        "strace" | "ltrace" => &["-o", "-e", "-p", "-s", "-u"],
        "cpulimit" => &["-l", "--limit", "-p", "--pid", "-e", "--exe"],
        "screen" => &["-Logfile", "-X"],
        _ => &[],
    };
    // `screen -dmS name cmd`: a short-option group ending in an option
    // that takes a value (session name, config file, escape keys …).
    let screen_value = |a: &str| {
        program == "screen"
            && !a.starts_with("--")
            && a.len() >= 2
            && matches!(
                a.as_bytes()[a.len() - 1],
                b'S' | b'c' | b'e' | b'h' | b'p' | b't' | b'T'
            )
    };
    while i < rest.len() {
        let a = rest[i].as_str();
        if a == "--" {
            i += 1;
            break;
        }
        if program == "env" && a.contains('=') && !a.starts_with('-') {
            i += 1;
            continue;
        }
        if a.starts_with('-') && a.len() > 1 {
            i += if takes_value.contains(&a) || screen_value(a) {
                2
            } else {
                1
            };
            continue;
        }
        break;
    }
    // Positional arguments of the wrapper itself.
    match program {
        "timeout" => i += 1,
        "chroot" | "flock" => i += 1,
        _ => {}
    }
    Some(i)
}

/// The value after the first of `flags` (`-c CODE`, `-cCODE`, `--eval=CODE`).
pub(super) fn flag_value(rest: &[String], flags: &[&str]) -> Option<String> {
    for (i, a) in rest.iter().enumerate() {
        for f in flags {
            if a == f {
                return rest.get(i + 1).cloned();
            }
            if f.starts_with("--") {
                if let Some(v) = a.strip_prefix(&format!("{f}=")) {
                    return Some(v.to_string());
                }
            }
        }
    }
    None
}

/// `sh -c CODE`, `bash -lc CODE`, `bash -x -c CODE`.
pub(super) fn shell_c(rest: &[String]) -> Option<String> {
    for (i, a) in rest.iter().enumerate() {
        if a.starts_with('-') && !a.starts_with("--") && a.contains('c') {
            let code = rest.get(i + 1)?;
            return Some(positional(code, rest.get(i + 2..).unwrap_or_default()));
        }
        if !a.starts_with('-') {
            return None;
        }
    }
    None
}

/// `printf FORMAT ARGS…`: the format's escapes, `%s`/`%b`/`%c`/`%d` filled
/// from the arguments, the format reused while arguments remain.
pub fn printf(args: &[String]) -> Option<String> {
    let args: Vec<&str> = args
        .iter()
        .map(String::as_str)
        .skip_while(|a| *a == "--")
        .collect();
    let (format, mut rest) = args.split_first()?;
    if format.starts_with('-') {
        return None;
    }
    let format = ansi_c(format);
    let mut out = String::new();
    for _ in 0..64 {
        let mut chars = format.chars().peekable();
        let mut used = 0;
        while let Some(ch) = chars.next() {
            if ch != '%' {
                out.push(ch);
                continue;
            }
            // Flags, width and precision do not change the text much.
            while chars
                .peek()
                .is_some_and(|c| c.is_ascii_digit() || matches!(c, '-' | '.' | '+' | ' ' | '#'))
            {
                chars.next();
            }
            match chars.next() {
                Some('%') => out.push('%'),
                Some(conv @ ('s' | 'b' | 'c' | 'd' | 'i' | 'q')) => {
                    let arg = rest.first().copied().unwrap_or("");
                    rest = rest.get(1..).unwrap_or(&[]);
                    used += 1;
                    match conv {
                        'b' => out.push_str(&ansi_c(arg)),
                        'c' => out.extend(arg.chars().next()),
                        _ => out.push_str(arg),
                    }
                }
                _ => return None,
            }
        }
        if rest.is_empty() || used == 0 || out.len() > 16 * 1024 {
            break;
        }
    }
    Some(out)
}

/// `sh -c 'CODE' a0 a1 …`: the words after the code are `$0`, `$1` … of
/// it (`bash -c '$0 -s $1 | $2' curl http://… sh`), put in, quoted, where
/// the code names them.
pub fn positional(code: &str, args: &[String]) -> String {
    if args.is_empty() || !code.contains('$') {
        return code.to_string();
    }
    let quote = |a: &String| format!("'{}'", a.replace('\'', r"'\''"));
    let all = args.iter().skip(1).map(quote).collect::<Vec<_>>().join(" ");
    let mut out = code.replace("\"$@\"", &all).replace("$@", &all);
    // Highest first: `$1` is a prefix of `$10`.
    for (n, a) in args.iter().enumerate().take(10).rev() {
        let q = quote(a);
        for needle in [
            format!("\"${{{n}}}\""),
            format!("\"${n}\""),
            format!("${{{n}}}"),
            format!("${n}"),
        ] {
            out = out.replace(&needle, &q);
        }
    }
    out
}

/// PowerShell `-Command …` (the rest of the line) or `-EncodedCommand B64`
/// (UTF-16LE, decoded).
pub(super) fn powershell_code(rest: &[String]) -> Option<String> {
    for (i, a) in rest.iter().enumerate() {
        let flag = a.trim_start_matches(['-', '/']).to_ascii_lowercase();
        if !(a.starts_with('-') || a.starts_with('/')) {
            continue;
        }
        if matches!(
            flag.as_str(),
            "e" | "ec" | "en" | "enc" | "enco" | "encodedcommand"
        ) {
            let b64 = rest.get(i + 1)?;
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(b64.trim())
                .ok()?;
            let units: Vec<u16> = bytes
                .chunks_exact(2)
                .map(|p| u16::from_le_bytes([p[0], p[1]]))
                .collect();
            return String::from_utf16(&units).ok();
        }
        if matches!(flag.as_str(), "c" | "command") {
            return Some(rest[i + 1..].join(" "));
        }
    }
    None
}
