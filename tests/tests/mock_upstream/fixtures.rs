//! The fixture route.

use super::*;

#[test]
fn fixture_route_serves_every_fixture_byte_for_byte() {
    let m = mock();
    let root = wire_fixture("");
    let mut files = Vec::new();
    for dir in std::fs::read_dir(&root).unwrap() {
        let dir = dir.unwrap().path();
        if dir.is_dir() {
            for f in std::fs::read_dir(&dir).unwrap() {
                files.push(f.unwrap().path());
            }
        }
    }
    assert!(files.len() >= 30, "{files:?}");
    for path in files {
        let rel = path
            .strip_prefix(&root)
            .unwrap()
            .to_string_lossy()
            .replace('\\', "/");
        let r = post_json(
            &m.url("/v1/chat/completions"),
            &[("x-mock-fixture", &rel)],
            &json!({}),
        );
        assert_eq!(r.status, 200, "{rel}");
        assert_eq!(r.body, std::fs::read(&path).unwrap(), "{rel}");
        let ct = r.header("content-type").unwrap();
        match path.extension().and_then(|e| e.to_str()) {
            Some("sse") => assert_eq!(ct, "text/event-stream", "{rel}"),
            Some("json") => assert_eq!(ct, "application/json", "{rel}"),
            _ => assert!(ct.starts_with("text/plain"), "{rel}"),
        }
    }
    let r = post_json(
        &m.url("/v1/messages"),
        &[("x-mock-fixture", "nope.json")],
        &json!({}),
    );
    assert_eq!(r.status, 404);
    assert!(
        r.text().contains("openai_chat/stream_tool_calls.sse"),
        "lists known fixtures"
    );
}

#[test]
fn fixture_streams_parse_like_the_generated_ones() {
    let m = mock();
    let r = post_json(
        &m.url("/v1/chat/completions"),
        &[(
            "x-mock-fixture",
            "openai_chat/stream_parallel_tool_calls.sse",
        )],
        &json!({}),
    );
    let a = asg_e2e::sse::chat(&r.text());
    let names: Vec<_> = a
        .tool_calls
        .iter()
        .map(|c| (c.name.as_str(), c.arguments_json()))
        .collect();
    assert_eq!(
        names,
        vec![
            ("shell", json!({"command": "cat ~/.ssh/id_rsa"})),
            ("read_file", json!({"path": "/etc/passwd"}))
        ]
    );
    let r = post_json(
        &m.url("/v1/responses"),
        &[(
            "x-mock-fixture",
            "openai_responses/stream_text_secret_split.sse",
        )],
        &json!({}),
    );
    let a = asg_e2e::sse::responses(&r.text());
    assert!(a.sequence_ok && a.completed && a.text.contains(FAKE_AWS_KEY));
}
