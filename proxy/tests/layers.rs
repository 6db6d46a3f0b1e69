//! The proxy crate's layers, checked on the source: arrows point down only.
//!
//! ```text
//! asg-core (crate::decision)        pure; its own crate keeps it so
//! util, metrics, inspect_slots, state
//! datapath            edge          never each other
//! app, cli, main                    the composition root
//! ```
//!
//! Every reference to a top-level module counts, not only `use` lines:
//! `crate::x::…` anywhere in code, `use crate::{x, y}` groups and `super::`
//! chains that climb out of the file's top-level module. Comments are skipped.

use std::path::{Path, PathBuf};

/// (from, to, rule): a file under `from` must not refer to `to`.
const FORBIDDEN: &[(&str, &str, &str)] = &[
    ("datapath", "edge", "the data path must not import the edge"),
    ("edge", "datapath", "the edge must not import the data path"),
    ("state", "datapath", "state is below the data path"),
    ("state", "edge", "state is below the edge"),
    ("metrics", "datapath", "metrics are below the data path"),
    ("metrics", "edge", "metrics are below the edge"),
    (
        "inspect_slots",
        "datapath",
        "inspection slots are below the data path",
    ),
    (
        "inspect_slots",
        "edge",
        "inspection slots are below the edge",
    ),
    ("util", "datapath", "util is below the data path"),
    ("util", "edge", "util is below the edge"),
    ("util", "state", "util is below state"),
    ("telemetry", "datapath", "telemetry is below the data path"),
    ("telemetry", "edge", "telemetry is below the edge"),
];

/// Only the composition root (and the command that starts it) may refer to it.
const MAY_USE_APP: &[&str] = &["app", "cli", "main.rs", "lib.rs"];

/// Files that still hold the shared `App` handle (`crate::app::App`), the one
/// reference to the app still allowed below it: the data path's hooks and the
/// admin handlers take their settings and stores from it. Anything else from
/// `app` is refused everywhere, and an entry here that no longer names `App`
/// fails the test, so the list only shrinks.
const APP_HANDLE_HOLDERS: &[&str] = &[
    "datapath/front/conn.rs",
    "datapath/front/mod.rs",
    "datapath/gateway/context.rs",
    "datapath/gateway/mod.rs",
    "datapath/gateway/testkit.rs",
    "datapath/session_gate.rs",
    "datapath/ws/mod.rs",
    "edge/admin.rs",
    "edge/http.rs",
    "edge/inspect_api.rs",
];

const TOP_MODULES: &[&str] = &[
    "app",
    "cli",
    "config",
    "datapath",
    "decision",
    "edge",
    "inspect_slots",
    "kube",
    "metrics",
    "state",
    "telemetry",
    "util",
];

/// The top-level module a file belongs to (`datapath/gateway/mod.rs` →
/// `datapath`), and its module path (for `super::`).
fn module_path(rel: &str) -> Vec<String> {
    let no_ext = rel.trim_end_matches(".rs");
    let mut parts: Vec<String> = no_ext.split('/').map(str::to_string).collect();
    if parts.last().map(String::as_str) == Some("mod") {
        parts.pop();
    }
    parts
}

fn layer(rel: &str) -> &str {
    match rel.split_once('/') {
        Some((top, _)) => top,
        None if rel == "main.rs" || rel == "lib.rs" => rel,
        None => rel.trim_end_matches(".rs"),
    }
}

/// The top-level modules one line of code refers to, with the text that
/// names each (for the message).
fn references(path: &[String], code: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let bytes = code.as_bytes();
    let is_ident = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    let ident_at = |i: usize| {
        let end = code[i..]
            .bytes()
            .position(|c| !is_ident(c))
            .map_or(code.len(), |p| i + p);
        &code[i..end]
    };
    // `crate::x` and `crate::{x, y::…}`.
    let mut from = 0;
    while let Some(p) = code[from..].find("crate::") {
        let start = from + p;
        from = start + "crate::".len();
        if start > 0 && (is_ident(bytes[start - 1]) || bytes[start - 1] == b'$') {
            continue; // `asg_crate::`, `$crate::`
        }
        if code[from..].starts_with('{') {
            let group_end = code[from..].find('}').map_or(code.len(), |e| from + e);
            let mut depth = 0;
            let mut item_start = true;
            for (i, c) in code[from + 1..group_end].char_indices() {
                let at = from + 1 + i;
                match c {
                    '{' => depth += 1,
                    '}' => depth -= 1,
                    ',' if depth == 0 => item_start = true,
                    c if c.is_whitespace() => {}
                    _ if item_start && depth == 0 => {
                        item_start = false;
                        let name = ident_at(at);
                        out.push((name.to_string(), format!("crate::{name}")));
                    }
                    _ => {}
                }
            }
        } else {
            let name = ident_at(from);
            out.push((name.to_string(), format!("crate::{name}")));
        }
    }
    // `super::super::x` that leaves the top-level module.
    let mut from = 0;
    while let Some(p) = code[from..].find("super::") {
        let start = from + p;
        if start > 0 && is_ident(bytes[start - 1]) || code[..start].ends_with("::") {
            from = start + 1;
            continue;
        }
        let mut ups = 0;
        let mut at = start;
        while code[at..].starts_with("super::") {
            ups += 1;
            at += "super::".len();
        }
        from = at;
        if ups >= path.len() {
            let name = ident_at(at);
            out.push((name.to_string(), code[start..at + name.len()].to_string()));
        }
    }
    out.retain(|(name, _)| TOP_MODULES.contains(&name.as_str()));
    out
}

/// Every forbidden reference in one file, as `file:line: rule: text`.
fn violations(rel: &str, source: &str) -> Vec<String> {
    let from = layer(rel);
    let path = module_path(rel);
    let mut out = Vec::new();
    let mut names_app_handle = false;
    // A `use crate::{…}` group may span lines: join it onto its first line.
    let lines: Vec<&str> = source.lines().collect();
    let mut i = 0;
    while i < lines.len() {
        let line_no = i + 1;
        let mut code = strip_comment(lines[i]).to_string();
        if code.contains("crate::{") && !code.contains('}') {
            while i + 1 < lines.len() && !code.contains('}') {
                i += 1;
                code.push(' ');
                code.push_str(strip_comment(lines[i]));
            }
        }
        i += 1;
        for (to, text) in references(&path, &code) {
            if let Some((_, _, rule)) = FORBIDDEN.iter().find(|(f, t, _)| *f == from && *t == to) {
                out.push(format!("{rel}:{line_no}: {rule}: `{text}`"));
            }
            if to == "app" && !MAY_USE_APP.contains(&from) {
                // `crate::app::App` itself (or `App::build` in tests), not `AppX`.
                let only_handle = code.match_indices("crate::app::").all(|(at, _)| {
                    let rest = &code[at + "crate::app::".len()..];
                    rest.starts_with("App")
                        && !rest[3..].starts_with(|c: char| c.is_alphanumeric() || c == '_')
                });
                if only_handle && APP_HANDLE_HOLDERS.contains(&rel) {
                    names_app_handle = true;
                } else {
                    out.push(format!(
                        "{rel}:{line_no}: only the composition root (app, cli, main) may refer to the app: `{text}`"
                    ));
                }
            }
        }
    }
    if APP_HANDLE_HOLDERS.contains(&rel) && !names_app_handle {
        out.push(format!(
            "{rel}: no longer names `crate::app::App`: remove it from APP_HANDLE_HOLDERS in proxy/tests/layers.rs"
        ));
    }
    out
}

/// The code of a line without its `//` comment (string literals holding
/// `//` are rare enough in this crate not to matter: a URL in a string ends
/// the scan early, which can only miss a reference after it on that line).
fn strip_comment(line: &str) -> &str {
    match line.find("//") {
        Some(p) => &line[..p],
        None => line,
    }
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn layers_refer_only_downwards() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    assert!(
        files.len() > 50,
        "found only {} files under {}",
        files.len(),
        src.display()
    );
    let mut found = Vec::new();
    for file in &files {
        let rel = file
            .strip_prefix(&src)
            .unwrap()
            .to_string_lossy()
            .replace('\\', "/");
        let source = std::fs::read_to_string(file).unwrap();
        found.extend(violations(&rel, &source));
    }
    assert!(
        found.is_empty(),
        "{} reference(s) against the layers (proxy/src/…):\n{}",
        found.len(),
        found.join("\n")
    );
}

#[test]
fn the_check_sees_every_form_of_reference() {
    let v = violations("datapath/x.rs", "use crate::edge::metrics::Metrics;\n");
    assert_eq!(
        v,
        ["datapath/x.rs:1: the data path must not import the edge: `crate::edge`"]
    );
    let v = violations(
        "edge/x.rs",
        "fn f() {\n    let s = crate::datapath::body::f();\n}\n",
    );
    assert_eq!(
        v,
        ["edge/x.rs:2: the edge must not import the data path: `crate::datapath`"]
    );
    let v = violations(
        "state/a/b.rs",
        "use crate::{\n    decision::Decision,\n    edge::x,\n};\n",
    );
    assert_eq!(
        v,
        ["state/a/b.rs:1: state is below the edge: `crate::edge`"]
    );
    let v = violations("datapath/stream/mod.rs", "use super::super::edge::admin;\n");
    assert_eq!(v, ["datapath/stream/mod.rs:1: the data path must not import the edge: `super::super::edge`"]);
    let v = violations("edge/x.rs", "use crate::app::policy::PolicyStore;\n");
    assert_eq!(v.len(), 1, "{v:?}");
    assert!(
        v[0].starts_with("edge/x.rs:1: only the composition root"),
        "{v:?}"
    );
    // The shared handle only where it is listed.
    assert_eq!(
        violations("edge/http.rs", "use crate::app::App;\n"),
        Vec::<String>::new()
    );
    assert_eq!(violations("edge/new.rs", "use crate::app::App;\n").len(), 1);
    // Comments, the core and sibling modules are fine.
    assert!(violations(
        "datapath/x.rs",
        "// crate::edge::admin\nuse crate::decision::Decision;\nuse super::enforce;\n"
    )
    .is_empty());
    assert!(violations(
        "app/mod.rs",
        "use crate::edge::metrics;\nuse crate::datapath::route;\n"
    )
    .is_empty());
}
