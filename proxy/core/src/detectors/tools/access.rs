//! How a command touches the paths it names: which programs only name
//! them, which use a key for what it is, and which options name keys or
//! lists of names. Every other program is taken to read what it is given
//! (`analyze::Analyzer::command_paths`).

use crate::detectors::shell::{Cmd, DECLARATIONS};

/// Programs that only name the paths they are given (no read).
#[rustfmt::skip]
const NAMERS: &[&str] = &[
    "ls", "dir", "stat", "file", "du", "find", "fd", "tree", "touch", "mkdir", "chmod", "chown",
    "chgrp", "which", "whereis", "test", "[", "realpath", "readlink", "basename", "dirname", "cd",
    "pushd", "echo", "printf", "git", "cargo", "npm", "docker", "kubectl", "helm", "ln", "mv",
    "getfacl", "lsattr", "namei", "command", "set", "unset", "alias", "mount", "umount", "popd",
    "lsof", "fuser", "inotifywait", "open", "xdg-open", "mktemp", "podman", "setfacl", "chattr",
    "setcap", "getcap",
];

/// Whether `c` only names the paths it is given: a namer, or a builtin that
/// sets variables (`export KUBECONFIG=~/.kube/config`); `git diff
/// --no-index A B` compares (prints) any two files.
pub(super) fn names_only(c: &Cmd) -> bool {
    let program = c.program.as_str();
    ((NAMERS.contains(&program) || DECLARATIONS.contains(&program))
        && !(program == "git" && c.args.iter().any(|a| a == "--no-index")))
        || searches_quietly(c)
}

/// A search that prints no line of what it reads: a yes/no (`grep -q`), a
/// count (`-c`) or the names of matching files (`-l`, `-L`).
fn searches_quietly(c: &Cmd) -> bool {
    matches!(
        c.program.as_str(),
        "grep" | "egrep" | "fgrep" | "rg" | "ag" | "zgrep"
    ) && c.args.iter().any(|a| {
        matches!(
            a.as_str(),
            "--quiet" | "--silent" | "--count" | "--files-with-matches" | "--files-without-match"
        ) || (a.len() > 1
            && a.starts_with('-')
            && !a.starts_with("--")
            && a[1..].bytes().all(|b| b.is_ascii_alphabetic())
            && a[1..]
                .bytes()
                .any(|b| matches!(b, b'q' | b'c' | b'l' | b'L')))
    })
}

/// Reads of a `KEY=value` file that print only the names of its variables:
/// `cut -d= -f1 .env`, `awk -F= '{print $1}' .env`, `grep -oE '^[A-Z_]+' .env`.
pub(super) fn dotenv_names(c: &Cmd) -> bool {
    let args: Vec<&str> = c.args.iter().map(String::as_str).collect();
    let has = |w: &[&str]| args.windows(w.len()).any(|x| x == w);
    match c.program.as_str() {
        "cut" => {
            (has(&["-d", "="]) || args.contains(&"-d=") || args.contains(&"--delimiter=="))
                && (has(&["-f", "1"]) || args.contains(&"-f1") || args.contains(&"--fields=1"))
        }
        "awk" | "gawk" | "mawk" => {
            (has(&["-F", "="]) || args.contains(&"-F="))
                && args.iter().any(|a| {
                    let p: String = a.chars().filter(|ch| !ch.is_whitespace()).collect();
                    p == "{print$1}"
                })
        }
        "grep" | "egrep" => {
            args.iter()
                .any(|a| a.starts_with('-') && !a.starts_with("--") && a.contains('o'))
                && args.iter().any(|a| is_name_pattern(a))
        }
        _ => false,
    }
}

/// A pattern that can match only a variable name at a line's start:
/// `^[A-Z_]+`, `^[A-Za-z_][A-Za-z0-9_]*`.
fn is_name_pattern(p: &str) -> bool {
    let Some(rest) = p.strip_prefix('^') else {
        return false;
    };
    let mut chars = rest.chars().peekable();
    let mut classes = 0;
    while let Some(ch) = chars.next() {
        if ch != '[' {
            return false;
        }
        let mut class = String::new();
        for x in chars.by_ref() {
            if x == ']' {
                break;
            }
            class.push(x);
        }
        if !name_class(&class) {
            return false;
        }
        if matches!(chars.peek(), Some('+' | '*')) {
            chars.next();
        }
        classes += 1;
    }
    classes > 0
}

/// A bracket class of name characters only: letters, digits, `_`, and
/// ranges within one of `A-Z`, `a-z`, `0-9` (`[0-z]` spans `=`).
fn name_class(class: &str) -> bool {
    let cs: Vec<char> = class.chars().collect();
    let same_kind = |a: char, b: char| {
        (a.is_ascii_uppercase() && b.is_ascii_uppercase())
            || (a.is_ascii_lowercase() && b.is_ascii_lowercase())
            || (a.is_ascii_digit() && b.is_ascii_digit())
    };
    let mut i = 0;
    while i < cs.len() {
        if i + 2 < cs.len() && cs[i + 1] == '-' {
            if !same_kind(cs[i], cs[i + 2]) || cs[i] > cs[i + 2] {
                return false;
            }
            i += 3;
        } else if cs[i].is_ascii_alphanumeric() || cs[i] == '_' {
            i += 1;
        } else {
            return false;
        }
    }
    !cs.is_empty()
}

/// Programs that use a key or credential file named in their arguments for
/// what it is (loading it into an agent, printing its public half or
/// fingerprint, mounting with it) and never print it.
const CONSUMERS: &[&str] = &[
    "ssh-add",
    "ssh-copy-id",
    "sshfs",
    "mosh",
    "autossh",
    "dotenv",
    "dotenvx",
    // Java keystores: listed, imported and signed with, never printed.
    "keytool",
    "jarsigner",
    // Adds or checks a user in a password file; prints no hash.
    "htpasswd",
];

/// gpg's modes that take key files in (import, verify, receive) and print
/// nothing of their secrets.
fn gpg_takes_in(c: &Cmd) -> bool {
    matches!(c.program.as_str(), "gpg" | "gpg2" | "gpgv")
        && (c.program == "gpgv"
            || c.args.iter().any(|a| {
                matches!(
                    a.as_str(),
                    "--import" | "--verify" | "--recv-keys" | "--receive-keys"
                )
            }))
}

/// Programs whose `-i FILE` is the identity (key) they authenticate or
/// decrypt with: the key is used, not read out.
const IDENTITY_I: &[&str] = &[
    "ssh",
    "scp",
    "sftp",
    "autossh",
    "ssh-copy-id",
    "age",
    "rage",
    "ansible",
    "ansible-playbook",
];

/// Long options whose value is a credential the program authenticates
/// with (`curl --key`, `kubectl --kubeconfig`); for any program.
const IDENTITY_OPTIONS: &[&str] = &[
    "--identity",
    "--identity-file",
    "--key",
    "--cert",
    "--cacert",
    "--private-key",
    "--key-file",
    "--keyfile",
    "--cert-file",
    "--kubeconfig",
    "--defaults-file",
    "--defaults-extra-file",
];

/// Options naming a file whose lines a program reads as names (and quotes
/// back in its errors), even in programs that otherwise only name paths
/// (`file -f list`, `du --files0-from=list`); `-f` only for `file`, where
/// `test -f` and most others mean something else.
pub(super) fn names_list(program: &str, option: &str) -> bool {
    matches!(option, "--files-from" | "--files0-from" | "-T")
        || (program == "file" && option == "-f")
}

/// Whether `c` uses the keys it names instead of printing them; `ssh-keygen
/// -D` loads a library instead.
pub(super) fn consumes(c: &Cmd) -> bool {
    // Package runners (`npx dotenv -e .env -- node app.js`) run the first
    // word of their arguments.
    let run = matches!(c.program.as_str(), "npx" | "bunx" | "pnpx" | "uvx" | "pipx")
        .then(|| c.args.iter().find(|a| !a.starts_with('-')))
        .flatten();
    CONSUMERS.contains(&c.program.as_str())
        || run.is_some_and(|p| CONSUMERS.contains(&p.as_str()))
        || (c.program == "ssh-keygen" && !c.args.iter().any(|a| a == "-D"))
        || gpg_takes_in(c)
        || openssl_checks_only(c)
}

/// openssl using a key or certificate without printing a private key:
/// certificates, requests and revocation lists are public whatever they
/// print (`openssl x509 -in server.pem -text`, `openssl verify -CAfile
/// ca.pem cert.pem`); a key checked (`-noout`) prints nothing secret
/// unless `-text` spells it out; a PKCS#12 bundle read with `-nokeys` gives
/// its certificates only.
fn openssl_checks_only(c: &Cmd) -> bool {
    let has = |f: &str| c.args.iter().any(|a| a == f);
    if c.program != "openssl" {
        return false;
    }
    match c.args.first().map(String::as_str) {
        Some("x509" | "verify" | "crl" | "req") => true,
        Some("rsa" | "ec" | "pkey") => has("-noout") && !has("-text"),
        Some("pkcs12") => (has("-noout") || has("-nokeys")) && !has("-info"),
        _ => false,
    }
}

/// Whether argument `k` of `c` is the value of an identity option: a key
/// the program uses rather than a file whose content it prints.
pub(super) fn is_identity_value(c: &Cmd, k: usize) -> bool {
    let a = c.args[k].as_str();
    if let Some((opt, _)) = a.split_once('=') {
        if IDENTITY_OPTIONS.contains(&opt) {
            return true;
        }
    }
    // `-o IdentityFile=…` (ssh and everything that passes options to it).
    if a.get(..13)
        .is_some_and(|p| p.eq_ignore_ascii_case("identityfile="))
    {
        return true;
    }
    let Some(prev) = k.checked_sub(1).map(|j| c.args[j].as_str()) else {
        return false;
    };
    // ssh's `-F config` and openssl's signing keys are the same kind of use.
    IDENTITY_OPTIONS.contains(&prev)
        || (matches!(prev, "-i" | "-F") && IDENTITY_I.contains(&c.program.as_str()))
        || (matches!(prev, "-key" | "-signkey" | "-CAkey") && c.program == "openssl")
}

/// A chmod mode that grants nothing to group or others and sets no
/// set-id bit: `600`, `0400`, `700`, `go-rwx`, `o-w`.
/// Whether a chmod mode gives someone execute permission (`+x`, `u+x`,
/// `755`): the file is about to be run.
pub(super) fn grants_execute(m: &str) -> bool {
    if !m.is_empty() && m.len() <= 4 && m.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
        // The last three digits are user, group, other; odd means execute.
        return m.len() >= 3 && m.bytes().rev().take(3).any(|b| (b - b'0') & 1 == 1);
    }
    m.split(',').any(|clause| {
        clause
            .trim_start_matches(['u', 'g', 'o', 'a'])
            .split_once(['+', '='])
            .is_some_and(|(_, perms)| perms.contains('x'))
    })
}

pub(super) fn restrictive_mode(m: &str) -> bool {
    if !m.is_empty() && m.len() <= 4 && m.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
        let d: Vec<u8> = m.bytes().map(|b| b - b'0').collect();
        let n = d.len();
        let special = if n == 4 { d[0] } else { 0 };
        return special == 0 && n >= 3 && d[n - 2] == 0 && d[n - 1] == 0;
    }
    // Symbolic: every clause only removes permissions.
    !m.is_empty()
        && m.split(',').all(|clause| {
            let ops = clause.trim_start_matches(['u', 'g', 'o', 'a']);
            ops.starts_with('-')
                && !ops.contains('+')
                && !ops.contains('=')
                && ops[1..].chars().all(|ch| "rwxXst".contains(ch))
        })
}
