//! Each dialect's parsers (request and response extraction) and the whole
//! request inspection: never a panic; extraction depends on the JSON value
//! only (not its spelling); what is forwarded is valid JSON, and a body
//! forwarded as it came had nothing to mask.

use super::{dev_policy, masker};
use crate::input::Input;
use asg::datapath::dialect::redact_walk::redact_json;
use asg::datapath::dialect::Dialect;
use asg::datapath::enforce::{inspect_request, inspect_response, Inspection, RequestAction};
use serde_json::Value;

const DIALECTS: [Dialect; 6] = [
    Dialect::OpenaiChat,
    Dialect::OpenaiResponses,
    Dialect::AnthropicMessages,
    Dialect::Mcp,
    Dialect::HttpTool,
    Dialect::Gemini,
];

pub fn run(data: &[u8]) {
    let mut inp = Input::new(data);
    let dialect = DIALECTS[inp.below(DIALECTS.len())];
    let raw = inp.rest();
    if let Ok(v) = serde_json::from_slice::<Value>(raw) {
        let again: Value = serde_json::from_str(&v.to_string()).expect("re-serialized JSON parses");
        let a = format!("{:?}", dialect.request_subject(&v, "tool"));
        let b = format!("{:?}", dialect.request_subject(&again, "tool"));
        assert_eq!(a, b, "request extraction depends on the spelling");
        let a = format!("{:?}", dialect.response_subject(&v));
        let b = format!("{:?}", dialect.response_subject(&again));
        assert_eq!(a, b, "response extraction depends on the spelling");
    }
    let policy = dev_policy();
    let m = masker();
    let ins = Inspection {
        policy: &policy,
        masker: &m,
        dialect,
        request_id: "fuzz",
        tool_name: "tool",
        rpc_id: Value::Null,
        // One scope for every input: the fuzzer also drives the memo.
        memo_scope: Some(1),
        kept: None,
    };
    let (action, _report) = inspect_request(&ins, raw);
    match action {
        RequestAction::Forward(Some(bytes)) => {
            serde_json::from_slice::<Value>(&bytes).expect("a rewritten body is JSON");
        }
        RequestAction::Forward(None) => {
            // Forwarded as it came: there was nothing to mask in it.
            if let Ok(mut v) = serde_json::from_slice::<Value>(raw) {
                let events = redact_json(&mut v, &policy.redactor, &m);
                assert!(
                    events.is_empty(),
                    "{dialect:?}: forwarded unmasked: {events:?}"
                );
            }
        }
        RequestAction::Deny { body, .. } => assert!(body.is_object(), "{body}"),
    }
    let (out, _report) = inspect_response(&ins, raw, 200);
    if let Some(bytes) = out {
        if serde_json::from_slice::<Value>(raw).is_ok() {
            serde_json::from_slice::<Value>(&bytes).expect("a rewritten JSON response is JSON");
        }
    }
}
