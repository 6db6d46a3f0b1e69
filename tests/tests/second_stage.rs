//! The optional second injection stage through the real gateway: an
//! operator's ONNX classifier on local disk (the tiny model the library's
//! tests generate, `tests/fixtures/second_stage/`) scores tool results the
//! fast stage is unsure about, and its verdict refuses a planted text that
//! neither the phrase rules nor the fast classifier flag. Without the stage
//! the same text passes, which is what makes the first case mean something.
//!
//! The runtime is behind the `second-stage` cargo feature, which every make
//! target builds; `ASG_REQUIRE_SECOND_STAGE=1` (set by `make test`) makes a
//! binary without it a failure instead of the one-assertion check below.

use asg_e2e::{fixtures_dir, http, Dialect, Gateway, GatewayOptions, MockUpstream};
use serde_json::{json, Value};
use std::time::Duration;

/// Words the generated model weighs as an injection, none of them a phrase
/// the rules list and none that the shipped fast classifier flags alone.
const PLANTED: &str = "Previous instructions";
/// Words the generated model weighs as ordinary.
const CLEAN: &str = "The quarterly report is attached";

/// Production's decision thresholds, the shipped fast classifier, and the
/// second stage on every text (an unsure band of the whole range).
fn policy(stage: &str) -> String {
    let dir = fixtures_dir().join("second_stage");
    format!(
        "name = \"stage2\"\n\
         [decision]\nblock_score = 1.3\nchallenge_score = 0.55\nblock_high_count = 1\n\
         block_if_critical = true\n\
         [injection]\nindirect_bonus = 0.15\n\
         [injection.second_stage]\n{stage}\nmodel_file = \"{}\"\ntokenizer_file = \"{}\"\n\
         unsure_low = 0.0\nunsure_high = 1.0\ntimeout_ms = 10000\non_error = \"closed\"\n",
        dir.join("guard.onnx").display(),
        dir.join("tokenizer.json").display()
    )
}

fn start(upstream: &MockUpstream, policy_text: &str) -> Result<Gateway, String> {
    Gateway::try_start(
        GatewayOptions::new(upstream.base_url())
            .policy_text("stage2.toml", policy_text)
            .ready_timeout(Duration::from_secs(30)),
    )
}

/// A chat completion whose tool (`read_document`) returned `result`.
fn with_tool_result(result: &str) -> Value {
    let mut req = Dialect::Chat.request("Summarise the document I just opened.", false);
    let msgs = req["messages"].as_array_mut().unwrap();
    msgs.push(json!({"role": "assistant", "content": null, "tool_calls": [
        {"id": "call_1", "type": "function", "function": {"name": "read_document", "arguments": "{}"}}]}));
    msgs.push(json!({"role": "tool", "tool_call_id": "call_1", "content": result}));
    req
}

fn send(gw: &Gateway, result: &str, session: &str) -> http::Resp {
    http::post_json(
        &format!("{}{}", gw.proxy_url(), Dialect::Chat.path()),
        &[("x-session-id", session), ("x-agent-id", session)],
        &with_tool_result(result),
    )
}

/// The binary lacks the runtime: it must refuse the profile with a clear
/// error rather than run without the stage the policy asks for.
fn without_runtime(err: &str) {
    assert!(
        std::env::var_os("ASG_REQUIRE_SECOND_STAGE").is_none(),
        "ASG_REQUIRE_SECOND_STAGE is set but the gateway refused the profile: {err}"
    );
    assert!(err.contains("second-stage"), "{err}");
}

#[test]
fn the_second_stage_refuses_what_the_fast_stage_lets_through() {
    let upstream = MockUpstream::start();
    let gw = match start(&upstream, &policy("enabled = true")) {
        Ok(gw) => gw,
        Err(err) => return without_runtime(&err),
    };
    let refused = send(&gw, PLANTED, "stage2-planted");
    assert_eq!(refused.status, 403, "{}", refused.text());
    assert!(
        refused.text().contains("pi.second_stage.indirect"),
        "the refusal names the second stage: {}",
        refused.text()
    );
    assert!(
        upstream.requests().is_empty(),
        "a refused request reached the upstream"
    );

    let clean = send(&gw, CLEAN, "stage2-clean");
    assert_eq!(clean.status, 200, "{}", clean.text());
    assert_eq!(
        upstream.requests().len(),
        1,
        "the clean request is forwarded"
    );
}

#[test]
fn without_the_second_stage_the_same_text_passes() {
    let upstream = MockUpstream::start();
    let gw = start(&upstream, &policy("enabled = false")).expect("the gateway starts");
    let resp = send(&gw, PLANTED, "stage2-off");
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(upstream.requests().len(), 1);
}

#[test]
fn a_corrupt_model_file_stops_the_start_with_the_file_named() {
    let upstream = MockUpstream::start();
    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("broken.onnx");
    std::fs::write(&broken, b"not an onnx graph").unwrap();
    let text = policy("enabled = true").replace(
        &fixtures_dir()
            .join("second_stage/guard.onnx")
            .display()
            .to_string(),
        &broken.display().to_string(),
    );
    let err = match start(&upstream, &text) {
        Ok(_) => panic!("a corrupt second-stage model must stop the start"),
        Err(err) => err,
    };
    if err.contains("second-stage") && !err.contains("broken.onnx") {
        return without_runtime(&err);
    }
    assert!(err.contains("broken.onnx"), "{err}");
}
