//! Files that inline code writes (`python -c 'open("/etc/cron.d/x",
//! "w").write(…)'`, `node -e 'fs.appendFileSync(…)'`, `ruby -e
//! 'File.write(…)'`): the write target of each call, by the form of the
//! call, so a file the same code only reads is not taken for one it writes.

use regex::Regex;
use std::sync::LazyLock;

/// The literal path of each file the code writes, in order of appearance.
pub fn targets(src: &str) -> Vec<&str> {
    static R: LazyLock<Regex> = LazyLock::new(|| {
        // The literal, or the literal a home-expanding call is given
        // (`File.expand_path("~/.ssh/authorized_keys")`).
        let path = r#"(?:(?:File\.expand_path|os\.path\.expanduser|path\.resolve)\(\s*)?['"]([^'"\n]{1,400})['"]"#;
        let forms = [
            // Python, Lua: open with a write, append or update mode.
            format!(
                r#"\b(?:open|io\.open|codecs\.open)\(\s*{path}\s*,\s*(?:mode\s*=\s*)?['"][rb]*[wax+]"#
            ),
            // pathlib
            format!(
                r#"\bPath\(\s*{path}\s*\)\s*\.\s*(?:write_text|write_bytes|touch|symlink_to)\("#
            ),
            // Node: first argument is the target.
            format!(
                r#"\b(?:writeFile|appendFile|createWriteStream|writeFileSync|appendFileSync|outputFile|outputFileSync)\(\s*{path}"#
            ),
            // Ruby, PHP, Perl 3-argument open, Go.
            format!(r#"\bFile\.(?:write|binwrite)\(\s*{path}"#),
            format!(r#"\bFile\.open\(\s*{path}\s*,\s*['"][rb]*[wa+]"#),
            format!(r#"\bfile_put_contents\(\s*{path}"#),
            format!(
                r#"\bopen\s*\(?\s*(?:my\s+)?[\w$]+\s*,\s*['"]\s*(?:>>?|\+<|\+>)\s*['"]\s*,\s*{path}"#
            ),
            format!(r#"\bos\.(?:WriteFile|Create|OpenFile)\(\s*{path}"#),
            // Copies and moves: the second argument is the target.
            format!(
                r#"\b(?:shutil\.(?:copy\w*|move)|os\.(?:rename|replace|symlink|link)|copyFile|copyFileSync|rename|renameSync|symlinkSync|FileUtils\.(?:cp|mv|copy|ln_s)|copy)\(\s*[^,()]{{1,400}},\s*{path}"#
            ),
        ];
        Regex::new(&forms.join("|")).expect("static regex")
    });
    // Perl's 2-argument open names mode and file in one string.
    static PERL2: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r#"\bopen\s*\(?\s*(?:my\s+)?[\w$]+\s*,\s*['"]\s*(?:>>?|\+<|\+>)\s*([^'"\n]{1,400})['"]"#)
            .expect("static regex")
    });
    let mut out: Vec<&str> = R
        .captures_iter(src)
        .take(32)
        .filter_map(|c| c.iter().skip(1).flatten().next())
        .map(|m| m.as_str())
        .collect();
    out.extend(
        PERL2
            .captures_iter(src)
            .take(32)
            .filter_map(|c| c.get(1))
            .map(|m| m.as_str().trim()),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::super::tests_support::{attack, flows};
    use super::super::Effect;
    use super::targets;

    #[test]
    fn write_targets_by_the_form_of_the_call() {
        assert_eq!(
            targets(r#"open("/etc/cron.d/x","w").write("*")"#),
            ["/etc/cron.d/x"]
        );
        assert_eq!(
            targets(r#"open('/etc/hosts').read(); open('out.txt', 'a')"#),
            ["out.txt"]
        );
        assert_eq!(
            targets(r#"shutil.copy("/tmp/k", "/root/.ssh/authorized_keys")"#),
            ["/root/.ssh/authorized_keys"]
        );
        assert_eq!(
            targets(r#"fs.appendFileSync("/root/.ssh/authorized_keys", "x")"#),
            ["/root/.ssh/authorized_keys"]
        );
        assert_eq!(
            targets(r#"File.write("/etc/passwd", "x")"#),
            ["/etc/passwd"]
        );
        assert_eq!(
            targets(r#"open(F, ">>/etc/sudoers"); print F "x""#),
            ["/etc/sudoers"]
        );
        assert_eq!(
            targets(r#"open(my $f, '>', '/etc/ld.so.preload')"#),
            ["/etc/ld.so.preload"]
        );
        assert_eq!(
            targets(r#"Path("~/.bashrc").write_text("x")"#),
            ["~/.bashrc"]
        );
        assert!(targets(r#"open("/etc/os-release").read()"#).is_empty());
        assert!(targets(r#"File.open("/etc/hosts").each_line { |l| puts l }"#).is_empty());
    }

    #[test]
    fn inline_code_writing_system_files_is_judged_as_the_write() {
        attack(
            "python3 -c 'open(\"/etc/cron.d/x\",\"w\").write(\"* * * * * root sh\")'",
            Effect::Persistence,
        );
        attack(
            "node -e 'require(\"fs\").appendFileSync(\"/root/.ssh/authorized_keys\", \"ssh-rsa AAA\")'",
            Effect::Persistence,
        );
        attack(
            "python3 -c 'import shutil; shutil.copy(\"/tmp/k\", \"/root/.ssh/authorized_keys\")'",
            Effect::Persistence,
        );
        attack(
            "ruby -e 'File.write(File.expand_path(\"~/.ssh/authorized_keys\"), \"ssh-ed25519 AAAA x\")'",
            Effect::Persistence,
        );
        flows("python3 -c 'open(\"out/report.txt\",\"w\").write(\"ok\")'");
        flows("python3 -c 'import shutil; shutil.copy(\"/etc/hosts\", \"hosts.bak\")'");
        flows("node -e 'require(\"fs\").writeFileSync(\"dist/version.json\", \"{}\")'");
    }
}
