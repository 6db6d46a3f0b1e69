//! Helpers shared by the forward-proxy and transparent-mode tests.

#![allow(dead_code)]

use std::process::Command;

pub struct Curl {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// curl with a clean environment (no proxy or CA variables of the caller).
pub fn curl(args: &[&str]) -> Curl {
    let mut cmd = Command::new("curl");
    cmd.args(["-sS", "--max-time", "20"]).args(args);
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy().to_ascii_uppercase();
        if k.ends_with("_PROXY") || k == "CURL_CA_BUNDLE" || k.starts_with("SSL_CERT") {
            cmd.env_remove(&k).env_remove(k.to_ascii_lowercase());
        }
    }
    let out = cmd
        .output()
        .expect("curl is needed for these tests (apt-get install curl)");
    Curl {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}
