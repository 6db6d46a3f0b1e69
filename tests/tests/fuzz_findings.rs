//! Findings of the fuzz targets (`proxy/fuzz`), each through the real
//! binary: what the fuzzer showed, as a client and upstream see it.

use asg_e2e::http;
use asg_e2e::{Gateway, GatewayOptions, MockUpstream, FAKE_AWS_KEY};
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
