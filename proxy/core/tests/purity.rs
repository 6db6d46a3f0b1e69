//! The decision core stays pure: no runtime, storage, network or file
//! system crate in its dependency tree, and no file, process, thread or
//! socket call in its source. The crate boundary alone does not stop
//! someone adding `tokio` to `proxy/core/Cargo.toml`; these tests do.

use std::path::Path;
use std::process::Command;

/// Crates that mean I/O, a runtime or entropy from the kernel.
const FORBIDDEN: &[&str] = &[
    "tokio",
    "mio",
    "socket2",
    "sled",
    "pingora",
    "axum",
    "hyper",
    "notify",
    "uuid",
    "rand",
    "getrandom",
    "redis",
    "reqwest",
];

fn forbidden(name: &str) -> bool {
    FORBIDDEN.iter().any(|f| {
        name == *f || name.starts_with(&format!("{f}-")) || name.starts_with(&format!("{f}_"))
    })
}

#[test]
fn normal_dependency_tree_has_no_io_crates() {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    // --offline --locked: the answer comes from Cargo.lock, never the network.
    let out = Command::new(&cargo)
        .args([
            "tree",
            "-e",
            "normal",
            "--prefix",
            "none",
            "--offline",
            "--locked",
        ])
        .arg("--manifest-path")
        .arg(&manifest)
        .args(["-p", "asg-core"])
        .output()
        .unwrap_or_else(|e| panic!("cannot run `{cargo} tree`: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "`cargo tree -p asg-core` failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let names: Vec<&str> = stdout
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert!(
        names.contains(&"asg-core") && names.contains(&"regex"),
        "{stdout}"
    );
    let bad: Vec<&str> = names.iter().copied().filter(|n| forbidden(n)).collect();
    assert!(
        bad.is_empty(),
        "asg-core must stay pure, but its dependency tree has {bad:?}; \
         move the code that needs them to the proxy crate"
    );
}

#[test]
fn the_forbidden_list_matches_families() {
    assert!(forbidden("pingora-core") && forbidden("tokio") && forbidden("hyper-util"));
    assert!(!forbidden("regex") && !forbidden("serde_json") && !forbidden("randomly"));
}

#[test]
fn source_makes_no_io_calls() {
    const CALLS: &[&str] = &[
        "std::fs",
        "std::process",
        "std::thread",
        "std::env",
        "TcpStream",
        "TcpListener",
        "UdpSocket",
        "File::",
    ];
    let mut hits = Vec::new();
    let mut stack = vec![Path::new(env!("CARGO_MANIFEST_DIR")).join("src")];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                for (i, line) in text.lines().enumerate() {
                    if CALLS.iter().any(|c| line.contains(c)) {
                        hits.push(format!("{}:{}: {}", path.display(), i + 1, line.trim()));
                    }
                }
            }
        }
    }
    assert!(
        hits.is_empty(),
        "the decision core reads no files and starts nothing; data files come \
         through `sources::RuleSources`:\n{}",
        hits.join("\n")
    );
}
