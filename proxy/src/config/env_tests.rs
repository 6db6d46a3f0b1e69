use super::*;
use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

const START: &str = "<!-- env-table: generated from proxy/src/config/env.rs -->\n";
const END: &str = "<!-- /env-table -->";

fn readme_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md")
}

fn with(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
    let env: HashMap<&str, &str> = pairs.iter().copied().collect();
    let mut c = Config::default();
    apply(&mut c, |k| env.get(k).map(|v| v.to_string()))?;
    Ok(c)
}

#[test]
fn the_readme_table_is_the_generated_one() {
    let path = readme_path();
    let readme = std::fs::read_to_string(&path).unwrap();
    let (Some(a), Some(b)) = (readme.find(START), readme.find(END)) else {
        panic!("README.md lacks the env-table markers ({START:?} … {END:?})");
    };
    let current = &readme[a + START.len()..b];
    let want = readme_table();
    if current != want && std::env::var_os("ASG_UPDATE_GOLDEN").is_some() {
        let updated = format!("{}{START}{want}{}", &readme[..a], &readme[b..]);
        std::fs::write(&path, updated).unwrap();
        return;
    }
    assert_eq!(
        current, want,
        "README.md's environment table differs from proxy/src/config/env.rs; regenerate it with \
         ASG_UPDATE_GOLDEN=1 cargo test -p asg config::env::tests::the_readme_table_is_the_generated_one"
    );
}

#[test]
fn every_variable_the_readme_names_is_declared() {
    let readme = std::fs::read_to_string(readme_path()).unwrap();
    let re = regex::Regex::new(r"ASG_[A-Z0-9_]+").unwrap();
    let declared: BTreeSet<&str> = VARS
        .iter()
        .map(|v| v.name)
        .chain(TOOL_VARS.iter().map(|(n, _)| *n))
        .collect();
    let unknown: BTreeSet<&str> = re
        .find_iter(&readme)
        .map(|m| m.as_str())
        .filter(|n| !declared.contains(n))
        .collect();
    assert!(
        unknown.is_empty(),
        "README.md names variables proxy/src/config/env.rs does not declare (VARS for the gateway, \
         TOOL_VARS for tests and tools): {unknown:?}"
    );
}

#[test]
fn names_are_unique_and_prefixed() {
    let mut seen = BTreeSet::new();
    for v in VARS {
        assert!(seen.insert(v.name), "{} declared twice", v.name);
        match v.read {
            Read::Library => assert!(!v.name.starts_with("ASG_"), "{}", v.name),
            _ => assert!(v.name.starts_with("ASG_"), "{}", v.name),
        }
        assert!(
            !v.help.contains('|') || v.help.contains("\\|"),
            "{}",
            v.name
        );
    }
}

/// A documented default that is a plain value is what the code defaults
/// to: applying it changes nothing.
#[test]
fn documented_defaults_are_the_real_ones() {
    let base = format!("{:?}", Config::default());
    // Setting these has effects beyond their own field (ASG_UPSTREAM also
    // fills the other upstreams), or their default is applied where they
    // are used (ASG_LOG by the logger, ASG_STATE_PREFIX by the state URL).
    let side_effects = ["ASG_UPSTREAM", "ASG_LOG", "ASG_STATE_PREFIX"];
    let mut checked = 0;
    for v in VARS {
        let Read::Config(_) = v.read else { continue };
        let plain = !v.default.contains([' ', '`']) && !["–", "off"].contains(&v.default);
        if !plain || side_effects.contains(&v.name) {
            continue;
        }
        let c = with(&[(v.name, v.default)]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            format!("{c:?}"),
            base,
            "{}'s documented default {:?}",
            v.name,
            v.default
        );
        checked += 1;
    }
    assert!(checked > 25, "only {checked} defaults checked");
}

#[test]
fn help_lists_every_gateway_variable_in_plain_text() {
    let h = help(Command::Gateway);
    for v in VARS.iter().filter(|v| v.command == Command::Gateway) {
        assert!(h.contains(v.name), "{} missing from --help", v.name);
    }
    assert!(!h.contains("ASG_INJECTOR_LISTEN"));
    assert!(!h.contains('`') && !h.contains("](#"), "{h}");
    assert!(
        h.contains("ASG_FORWARD_PROXY") && h.contains("(forward proxy)"),
        "{h}"
    );
    assert!(help(Command::Injector).contains("ASG_INJECTOR_TLS_CERT"));
}

#[test]
fn values_are_trimmed_and_blank_means_unset() {
    let c = with(&[("ASG_POLICY", "  strict "), ("ASG_LISTEN", "   ")]).unwrap();
    assert_eq!(c.policy, "strict");
    assert_eq!(c.listen, Config::default().listen);
}

#[test]
fn one_upstream_serves_every_api_unless_told_otherwise() {
    let c = with(&[
        ("ASG_UPSTREAM", "http://127.0.0.1:9"),
        ("ASG_GEMINI_UPSTREAM", "http://127.0.0.1:10"),
    ])
    .unwrap();
    assert_eq!(c.anthropic_upstream.as_deref(), Some("http://127.0.0.1:9"));
    assert_eq!(c.gemini_upstream.as_deref(), Some("http://127.0.0.1:10"));
}

#[test]
fn refusals_name_variable_value_and_what_is_accepted() {
    for (var, value, accepted) in [
        ("ASG_THREADS", "many", "whole number"),
        ("ASG_LOG_FORMAT", "xml", "text or json"),
        ("ASG_AUDIT_SYNC", "sometimes", "always or decisions"),
        ("ASG_ADMIN_AUTH", "maybe", "true or false"),
        ("ASG_LISTEN", "localhost", "host:port"),
        ("ASG_MAX_SESSIONS", "0", "at least 1"),
        ("ASG_UPSTREAM_IDLE_TIMEOUT", "0", "at least 1"),
        ("ASG_SO_MARK", "lots", "0x539"),
        ("ASG_LOG", "asg=[", "log filter"),
    ] {
        let err = with(&[(var, value)]).unwrap_err().to_string();
        assert!(
            err.starts_with(&format!("{var}: {value:?} is not accepted; expected"))
                && err.contains(accepted),
            "{err}"
        );
    }
    // Keys are never echoed.
    let err = with(&[("ASG_AGENTS", "a=secret-key,a=other-key")])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("ASG_AGENTS") && err.contains("listed twice"),
        "{err}"
    );
    assert!(!err.contains("secret-key"), "{err}");
    let c = with(&[("ASG_STATE_PASSWORD", "hunter2-pw")]).unwrap();
    assert_eq!(
        c.state_password.as_ref().map(|p| p.0.as_str()),
        Some("hunter2-pw")
    );
    assert!(!format!("{c:?}").contains("hunter2-pw"));
}

/// Product code reads the environment only through this file (and clap,
/// in `cli`); tests may read their own switches.
#[test]
fn no_other_product_file_reads_the_environment() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut offenders = Vec::new();
    let mut stack = vec![root.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let rel = path
                .strip_prefix(&root)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            let name = path.file_name().unwrap().to_string_lossy();
            if !rel.ends_with(".rs")
                || rel == "config/env.rs"
                || rel == "cli.rs"
                || rel.starts_with("cli/")
                || name.contains("test")
            {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            let product = text.split("#[cfg(test)]").next().unwrap_or("");
            for (i, line) in product.lines().enumerate() {
                if line.contains("env::var") && !line.trim_start().starts_with("//") {
                    offenders.push(format!("src/{rel}:{}: {}", i + 1, line.trim()));
                }
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "read the environment through config/env.rs (VARS, or env::standard for other software's variables):\n{}",
        offenders.join("\n")
    );
}
