//! Findings of the fuzz targets (`proxy/fuzz`), each through the real
//! binary: what the fuzzer showed, as a client and upstream see it.

use asg_e2e::http;
use asg_e2e::{Dialect, Gateway, GatewayOptions, MockUpstream, FAKE_AWS_KEY};
use serde_json::{json, Value};

/// The JSON redaction walk stopped at 64 levels: a secret nested deeper
/// was forwarded as it came, while the same secret elsewhere was masked.
#[test]
fn a_secret_nested_deeper_than_64_levels_is_masked() {
    let upstream = MockUpstream::start();
    let gw = Gateway::start(GatewayOptions::new(upstream.base_url()).policy("dev"));
    let mut deep = json!({ "note": format!("copy of {FAKE_AWS_KEY}") });
    for _ in 0..90 {
        deep = json!([deep]);
    }
    let body = json!({
        "model": "gpt-4o",
        "messages": [{"role": "user", "content": format!("my key is {FAKE_AWS_KEY}")}],
        "metadata": { "trace": deep },
    });
    let r = http::post_json(
        &format!("{}/v1/chat/completions", gw.proxy_url()),
        &[],
        &body,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let sent = upstream.requests_to("/v1/chat/completions");
    assert_eq!(sent.len(), 1);
    let forwarded = sent[0].body_text();
    assert!(
        !forwarded.contains(FAKE_AWS_KEY),
        "the key reached the upstream: {}",
        &forwarded[forwarded.find(FAKE_AWS_KEY).unwrap().saturating_sub(80)..]
    );
    // Still the same document, the nesting intact.
    let v: Value = serde_json::from_str(forwarded).unwrap();
    let mut at = &v["metadata"]["trace"];
    for _ in 0..90 {
        at = &at[0];
    }
    assert!(at["note"].as_str().unwrap().contains("[REDACTED:"), "{at}");
}

/// Text that starts with `data:` was taken for an inline media URL and
/// never masked (found through the Responses stream's full copies; the
/// same walk masks request bodies).
#[test]
fn text_starting_with_data_is_masked() {
    let upstream = MockUpstream::start();
    let gw = Gateway::start(GatewayOptions::new(upstream.base_url()).policy("dev"));
    let body = json!({
        "model": "gpt-4o",
        "messages": [{"role": "user", "content": format!("data: the deploy key is {FAKE_AWS_KEY}")}],
    });
    let r = http::post_json(
        &format!("{}/v1/chat/completions", gw.proxy_url()),
        &[],
        &body,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let sent = upstream.requests_to("/v1/chat/completions");
    let forwarded: Value = serde_json::from_str(sent[0].body_text()).unwrap();
    let content = forwarded["messages"][0]["content"].as_str().unwrap();
    assert!(!content.contains(FAKE_AWS_KEY), "{content}");
    assert!(
        content.starts_with("data: the deploy key is [REDACTED:"),
        "{content}"
    );
}

/// A phone number recognised by the word after it (`… 1111 messages`) was
/// streamed before that word arrived; the buffered answer masks it.
#[test]
fn a_streamed_number_waits_for_the_word_that_makes_it_a_phone_number() {
    let upstream = MockUpstream::start();
    let gw = Gateway::start(GatewayOptions::new(upstream.base_url()).policy("dev"));
    let r = http::send(
        "POST",
        &format!("{}/v1/chat/completions", gw.proxy_url()),
        &[
            ("content-type", "application/json"),
            (
                "x-mock-fixture",
                "openai_chat/stream_phone_context_after.sse",
            ),
        ],
        Some(Dialect::Chat.request("hi", true).to_string().as_bytes()),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let text = Dialect::Chat.assemble(&r.text()).text;
    assert!(!text.contains("4111 1111 1111"), "{text}");
    assert!(
        text.starts_with("Ask the team: [REDACTED:pii_phone:")
            && text.ends_with(" messages are answered daily."),
        "{text}"
    );
}

/// A body the gateway masks is re-serialised; its numbers came back one
/// unit off in the last place (found by the redaction fuzz target).
#[test]
fn a_masked_body_keeps_its_numbers_exactly() {
    let upstream = MockUpstream::start();
    let gw = Gateway::start(GatewayOptions::new(upstream.base_url()).policy("dev"));
    let raw = format!(
        r#"{{"model":"gpt-4o","messages":[{{"role":"user","content":"key {FAKE_AWS_KEY}"}}],"metadata":{{"big":2.5444444444444446e35,"ratio":0.30000000000000004}}}}"#
    );
    let r = http::send(
        "POST",
        &format!("{}/v1/chat/completions", gw.proxy_url()),
        &[("content-type", "application/json")],
        Some(raw.as_bytes()),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let sent = upstream.requests_to("/v1/chat/completions");
    let forwarded = sent[0].body_text();
    assert!(
        !forwarded.contains(FAKE_AWS_KEY),
        "masked, so re-serialised"
    );
    let exact: f64 = "2.5444444444444446e35".parse().unwrap();
    let v: Value = serde_json::from_str(forwarded).unwrap();
    let got = v["metadata"]["big"].as_f64().unwrap();
    assert_eq!(
        got.to_bits(),
        exact.to_bits(),
        "{got:e} != {exact:e} in {forwarded}"
    );
    assert_eq!(v["metadata"]["ratio"].as_f64(), Some(0.30000000000000004));
}
