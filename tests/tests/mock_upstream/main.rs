//! Tests of the mock upstream itself (and of the launcher, client and reassembly helpers it relies on).
//! One test binary; the tests are grouped by topic in the modules below.

mod control;
mod fixtures;
mod mcp;
mod scenarios;
mod transport;

pub(crate) use asg_e2e::http::{self, post_json, raw_exchange};
pub(crate) use asg_e2e::{
    wire_fixture, Dialect, MockUpstream, FAKE_AWS_KEY, FAKE_OPENAI_KEY, SHELL_BENIGN_ARGS,
    SHELL_SECRET_ARGS, TEXT_REPLY,
};
pub(crate) use serde_json::{json, Value};
use std::sync::OnceLock;
pub(crate) use std::time::{Duration, Instant};

/// One mock shared by the tests of this binary (tests that inspect the request log start their own).
pub(crate) fn mock() -> &'static MockUpstream {
    static MOCK: OnceLock<MockUpstream> = OnceLock::new();
    MOCK.get_or_init(MockUpstream::start)
}

pub(crate) fn call(
    m: &MockUpstream,
    d: Dialect,
    headers: &[(&str, &str)],
    body: &Value,
) -> http::Resp {
    post_json(&m.url(d.path()), headers, body)
}

#[derive(Debug)]
pub(crate) enum Expect {
    Text(&'static str),
    Tool(&'static str, &'static str),
}

pub(crate) fn secret_text() -> String {
    format!("Here is the AWS key from the config: {FAKE_AWS_KEY} and the OpenAI key: {FAKE_OPENAI_KEY} (store them safely).")
}

pub(crate) const CUSTOM_ARGS: &str = r#"{"path":"/etc/passwd","note":"quote \" and \\ and é"}"#;

pub(crate) type Headers = Vec<(&'static str, &'static str)>;

/// (scenario, request headers, expected reply)
pub(crate) fn cases() -> Vec<(&'static str, Headers, Expect)> {
    vec![
        ("text", vec![], Expect::Text(TEXT_REPLY)),
        (
            "secret",
            vec![("x-mock-scenario", "secret")],
            Expect::Text("<secret>"),
        ),
        (
            "echo",
            vec![("x-mock-scenario", "echo")],
            Expect::Text("please echo me, AKIA-not-a-key"),
        ),
        (
            "tool_shell",
            vec![("x-mock-scenario", "tool_shell")],
            Expect::Tool("shell", SHELL_SECRET_ARGS),
        ),
        (
            "tool_benign",
            vec![("x-mock-scenario", "tool_benign")],
            Expect::Tool("shell", SHELL_BENIGN_ARGS),
        ),
        (
            "tool_custom",
            vec![
                ("x-mock-scenario", "tool_custom"),
                ("x-mock-tool-name", "read_file"),
                ("x-mock-tool-args", CUSTOM_ARGS),
            ],
            Expect::Tool("read_file", CUSTOM_ARGS),
        ),
    ]
}

pub(crate) fn expected_text(e: &Expect) -> String {
    match e {
        Expect::Text("<secret>") => secret_text(),
        Expect::Text(t) => t.to_string(),
        Expect::Tool(..) => String::new(),
    }
}

pub(crate) fn same_json(a: &str, b: &str) -> bool {
    serde_json::from_str::<Value>(a).ok() == serde_json::from_str::<Value>(b).ok()
}

pub(crate) fn rpc(m: &MockUpstream, headers: &[(&str, &str)], body: Value) -> http::Resp {
    let mut h = vec![("accept", "application/json, text/event-stream")];
    h.extend_from_slice(headers);
    post_json(&m.url("/mcp"), &h, &body)
}
