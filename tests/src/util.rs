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

/// `n` distinct free loopback ports (all bound at once, then released) for a process the test
/// starts. They are drawn below the kernel's ephemeral range: a port from `bind(:0)` could be handed
/// meanwhile to another test's listener or be the source port of an outgoing connection, and the
/// gateway would then fail to bind it (or a request would reach a stranger). Other test processes
/// draw from the same range, so [`crate::Gateway`] still retries with new ports when a bind fails.
pub fn free_ports(n: usize) -> Vec<u16> {
    let (lo, hi) = below_ephemeral_range();
    let mut held: Vec<TcpListener> = Vec::with_capacity(n);
    let mut seed = random_seed();
    for _ in 0..n * 200 {
        if held.len() == n {
            break;
        }
        // xorshift: no dependency for a handful of draws.
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let port = lo + (seed % u64::from(hi - lo)) as u16;
        if let Ok(l) = TcpListener::bind(("127.0.0.1", port)) {
            held.push(l);
        }
    }
    assert_eq!(held.len(), n, "no {n} free loopback ports in {lo}..{hi}");
    held.iter()
        .map(|l| l.local_addr().expect("local_addr").port())
        .collect()
}

/// `[10000, start of the ephemeral range)`, or `[10000, 32768)` when the range cannot be read.
fn below_ephemeral_range() -> (u16, u16) {
    let start = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<u16>().ok())
        .filter(|&p| p > 12_000)
        .unwrap_or(32_768);
    (10_000, start)
}

fn random_seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    h.finish() | 1
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
