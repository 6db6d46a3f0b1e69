//! Binary location, free loopback ports and polling helpers.

use std::net::TcpListener;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// The cargo output directory of the running test (`<target>/<profile>`), derived from the test
/// executable (`<target>/<profile>/deps/<test>-<hash>`); `CARGO_TARGET_DIR` is not needed.
pub fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    let dir = exe.parent().expect("executable has a parent directory");
    if dir.file_name().is_some_and(|n| n == "deps") {
        dir.parent().expect("deps has a parent").to_path_buf()
    } else {
        dir.to_path_buf()
    }
}

/// Locate a binary of this workspace: `$<env_override>` if set, else `<profile dir>/<name>`.
/// Panics with instructions when it does not exist (tests never build it themselves).
pub fn workspace_bin(name: &str, env_override: &str, build_hint: &str) -> PathBuf {
    let path = match std::env::var_os(env_override) {
        Some(p) => PathBuf::from(p),
        None => profile_dir().join(name),
    };
    assert!(
        path.is_file(),
        "{name} binary not found at {} — run `{build_hint}` first (or set {env_override}=/path/to/{name})",
        path.display()
    );
    path
}

/// The `mock-upstream` binary: `$MOCK_UPSTREAM_BIN`, else `$CARGO_BIN_EXE_mock-upstream` when cargo
/// sets it at run time, else `<target>/<profile>/mock-upstream` (cargo builds it before this package's
/// integration tests).
pub fn mock_upstream_bin() -> PathBuf {
    if std::env::var_os("MOCK_UPSTREAM_BIN").is_none() {
        if let Some(p) = std::env::var_os("CARGO_BIN_EXE_mock-upstream") {
            return PathBuf::from(p);
        }
    }
    workspace_bin(
        "mock-upstream",
        "MOCK_UPSTREAM_BIN",
        "cargo build -p asg-e2e --bins",
    )
}

/// The gateway binary: `$ASG_BIN`, else `<target>/<profile>/asg`.
pub fn asg_bin() -> PathBuf {
    workspace_bin("asg", "ASG_BIN", "cargo build -p asg")
}

/// `n` distinct free loopback ports (all bound at once, then released).
pub fn free_ports(n: usize) -> Vec<u16> {
    let listeners: Vec<TcpListener> = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0"))
        .collect();
    listeners
        .iter()
        .map(|l| l.local_addr().expect("local_addr").port())
        .collect()
}

pub fn free_port() -> u16 {
    free_ports(1)[0]
}

/// Poll `cond` every 25 ms until it returns true or `timeout` passes; returns whether it succeeded.
pub fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// The last `max` bytes of a log, for failure messages.
pub fn tail(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut start = text.len() - max;
    while !text.is_char_boundary(start) {
        start += 1;
    }
    &text[start..]
}
