//! Captured requests of the real agent CLIs (`tests/fixtures/agents`), and
//! sending a Claude Code capture through a gateway as Claude Code does.

use crate::{http, Gateway};
use serde_json::Value;
use std::path::Path;

fn dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/agents")
}

/// Every capture, `(file name, {path, headers, body})`, by file name.
pub fn captures() -> Vec<(String, Value)> {
    let mut out: Vec<(String, Value)> = std::fs::read_dir(dir())
        .unwrap()
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
        .map(|e| {
            let v: Value =
                serde_json::from_str(&std::fs::read_to_string(e.path()).unwrap()).unwrap();
            (e.file_name().to_string_lossy().into_owned(), v)
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// One capture by file name.
pub fn capture(file: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(dir().join(file)).unwrap()).unwrap()
}

/// POST an Anthropic Messages `body` to the gateway at the capture's
/// `path`, with the headers Claude Code sends, the mock's `text` scenario
/// and `extra` headers.
pub fn send_messages(gw: &Gateway, path: &str, body: &Value, extra: &[(&str, &str)]) -> http::Resp {
    let mut headers = vec![
        ("content-type", "application/json"),
        ("anthropic-version", "2023-06-01"),
        ("x-mock-scenario", "text"),
    ];
    headers.extend_from_slice(extra);
    http::send(
        "POST",
        &format!("{}{path}", gw.proxy_url()),
        &headers,
        Some(&serde_json::to_vec(body).unwrap()),
    )
}
