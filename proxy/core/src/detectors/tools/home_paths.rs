//! Paths a program builds from the home directory: `ENVIRON["HOME"]
//! "/.ssh/authorized_keys"` in awk, `os.getenv("HOME").."/.profile"` in
//! Lua, `os.path.join(os.path.expanduser("~"), ".bashrc")` in Python.
//! Rewritten to the literal `"~/.ssh/authorized_keys"`, they are judged
//! like a path written out (persistence in a shell start-up file, a key
//! planted for SSH).

use regex::Regex;
use std::borrow::Cow;
use std::sync::LazyLock;

static HOME_CONCAT: LazyLock<Regex> = LazyLock::new(|| {
    let home = [
        r#"ENVIRON\[\s*"HOME"\s*\]"#,
        r#"(?:os\.)?getenv\(\s*["']HOME["']\s*\)"#,
        r#"os\.environ(?:\[\s*["']HOME["']\s*\]|\.get\(\s*["']HOME["']\s*\))"#,
        r#"ENV(?:\[\s*["']HOME["']\s*\]|\.fetch\(\s*["']HOME["']\s*\))"#,
        r#"process\.env(?:\.HOME|\[\s*["']HOME["']\s*\])"#,
        r#"\$ENV\{\s*["']?HOME["']?\s*\}"#,
        r#"(?:os\.)?homedir\(\s*\)"#,
        r#"Path\.home\(\s*\)"#,
        r#"Dir\.home\b"#,
        r#"(?:(?:os|__import__\(\s*["']os["']\s*\))\.path\.)?expanduser\(\s*["']~["']\s*\)"#,
    ]
    .join("|");
    // The home expression, a concatenation (awk's juxtaposition, `..`,
    // `+`, `.`, a join's comma) and the string literal that follows.
    Regex::new(&format!(r#"(?:{home})\s*(?:\.\.|\+|\.|,|<>)?\s*(["'`])/?"#)).expect("static regex")
});

/// `os.path.expanduser('~/.ssh/authorized_keys')`: the literal inside.
static EXPANDED: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"(?:(?:os|__import__\(\s*["']os["']\s*\))\.path\.)?expanduser\(\s*(["'])(~/[^"'\n]*)["']\s*\)"#)
        .expect("static regex")
});

/// `src` with every home expression joined to a string literal rewritten
/// as a literal starting with `~/`.
pub fn with_home_literals(src: &str) -> Cow<'_, str> {
    if !src.contains("HOME") && !src.contains("home") && !src.contains("expanduser") {
        return Cow::Borrowed(src);
    }
    match HOME_CONCAT.replace_all(src, "${1}~/") {
        Cow::Borrowed(s) => EXPANDED.replace_all(s, "${1}${2}${1}"),
        Cow::Owned(s) => Cow::Owned(EXPANDED.replace_all(&s, "${1}${2}${1}").into_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn home_expressions_joined_to_a_path_become_home_paths() {
        for (code, want) in [
            (
                r#"print k >> (ENVIRON["HOME"] "/.ssh/authorized_keys")"#,
                r#"print k >> ("~/.ssh/authorized_keys")"#,
            ),
            (
                r#"f=io.open(os.getenv("HOME").."/.profile","a")"#,
                r#"f=io.open("~/.profile","a")"#,
            ),
            (
                r#"open(os.environ['HOME'] + '/.bashrc', 'a')"#,
                r#"open('~/.bashrc', 'a')"#,
            ),
            (
                r#"fs.appendFileSync(path.join(os.homedir(), ".zshrc"), x)"#,
                r#"fs.appendFileSync(path.join("~/.zshrc"), x)"#,
            ),
            (
                r#"open(os.path.join(os.path.expanduser("~"), ".bashrc"), "a")"#,
                r#"open(os.path.join("~/.bashrc"), "a")"#,
            ),
            (
                r#"open(os.path.expanduser('~/.ssh/authorized_keys'),'a')"#,
                r#"open('~/.ssh/authorized_keys','a')"#,
            ),
            (
                r#"File.write(ENV["HOME"] + "/.ssh/config", s)"#,
                r#"File.write("~/.ssh/config", s)"#,
            ),
        ] {
            assert_eq!(with_home_literals(code), want, "{code}");
        }
    }

    #[test]
    fn other_code_is_left_alone() {
        for code in [
            r#"print $1 > "out.txt""#,
            r#"home = os.getenv("HOME"); print(home)"#,
            r#"console.log(process.env.HOME)"#,
        ] {
            assert_eq!(with_home_literals(code), code);
        }
    }
}
