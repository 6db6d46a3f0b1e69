//! Scenarios × dialects × streaming: what a client reassembles.

use super::*;

#[test]
fn every_scenario_non_streaming() {
    let m = mock();
    for d in Dialect::ALL {
        for (name, headers, expect) in cases() {
            let r = call(
                m,
                d,
                &headers,
                &d.request("please echo me, AKIA-not-a-key", false),
            );
            assert_eq!(r.status, 200, "{d:?} {name}: {}", r.text());
            assert_eq!(
                r.header("content-type"),
                Some("application/json"),
                "{d:?} {name}"
            );
            let body = r.json();
            match &expect {
                Expect::Text(_) => {
                    assert_eq!(d.text(&body), expected_text(&expect), "{d:?} {name}");
                    assert!(d.tool_calls(&body).is_empty(), "{d:?} {name}");
                }
                Expect::Tool(tool, args) => {
                    let calls = d.tool_calls(&body);
                    assert_eq!(calls.len(), 1, "{d:?} {name}: {body}");
                    assert_eq!(calls[0].name, *tool, "{d:?} {name}");
                    assert!(
                        same_json(&calls[0].arguments, args),
                        "{d:?} {name}: {}",
                        calls[0].arguments
                    );
                    if d != Dialect::Anthropic {
                        // OpenAI sends the arguments text verbatim.
                        assert_eq!(calls[0].arguments, *args, "{d:?} {name}");
                    }
                }
            }
            let finish = match (d, &expect) {
                (Dialect::Chat, Expect::Text(_)) => body["choices"][0]["finish_reason"] == "stop",
                (Dialect::Chat, Expect::Tool(..)) => {
                    body["choices"][0]["finish_reason"] == "tool_calls"
                }
                (Dialect::Responses, _) => body["status"] == "completed",
                (Dialect::Anthropic, Expect::Text(_)) => body["stop_reason"] == "end_turn",
                (Dialect::Anthropic, Expect::Tool(..)) => body["stop_reason"] == "tool_use",
            };
            assert!(finish, "{d:?} {name}: wrong finish/status in {body}");
        }
    }
}

#[test]
fn every_scenario_streaming() {
    let m = mock();
    for d in Dialect::ALL {
        for (name, headers, expect) in cases() {
            let r = call(
                m,
                d,
                &headers,
                &d.request("please echo me, AKIA-not-a-key", true),
            );
            assert_eq!(r.status, 200, "{d:?} {name}: {}", r.text());
            assert!(
                r.is_event_stream(),
                "{d:?} {name}: {:?}",
                r.header("content-type")
            );
            let a = d.assemble(&r.text());
            assert!(a.completed && a.error.is_none(), "{d:?} {name}: {a:?}");
            match &expect {
                Expect::Text(_) => {
                    assert_eq!(a.text, expected_text(&expect), "{d:?} {name}");
                    assert!(a.tool_calls.is_empty(), "{d:?} {name}");
                }
                Expect::Tool(tool, args) => {
                    assert_eq!(a.tool_calls.len(), 1, "{d:?} {name}: {a:?}");
                    assert_eq!(a.tool_calls[0].name, *tool, "{d:?} {name}");
                    assert_eq!(
                        a.tool_calls[0].arguments, *args,
                        "{d:?} {name}: fragments must rebuild the text"
                    );
                    assert!(!a.tool_calls[0].id.is_empty(), "{d:?} {name}");
                }
            }
            let finish = match (d, &expect) {
                (Dialect::Chat, Expect::Text(_)) => "stop",
                (Dialect::Chat, Expect::Tool(..)) => "tool_calls",
                (Dialect::Responses, _) => "completed",
                (Dialect::Anthropic, Expect::Text(_)) => "end_turn",
                (Dialect::Anthropic, Expect::Tool(..)) => "tool_use",
            };
            assert_eq!(a.finish_reason.as_deref(), Some(finish), "{d:?} {name}");
            if d == Dialect::Responses {
                assert!(a.sequence_ok, "{d:?} {name}: sequence numbers");
                let full = match &expect {
                    Expect::Tool(_, args) => args.to_string(),
                    _ => expected_text(&expect),
                };
                assert_eq!(
                    a.copies.len(),
                    if matches!(expect, Expect::Tool(..)) {
                        3
                    } else {
                        4
                    },
                    "{name}"
                );
                assert!(
                    a.copies.iter().all(|c| *c == full),
                    "{name}: {:?}",
                    a.copies
                );
            }
        }
    }
}

#[test]
fn secret_stream_splits_both_keys_across_deltas() {
    let m = mock();
    for d in Dialect::ALL {
        let r = call(
            m,
            d,
            &[("x-mock-scenario", "secret")],
            &d.request("hi", true),
        );
        let body = r.text();
        let delta_events: Vec<_> = asg_e2e::sse::parse(&body)
            .into_iter()
            .filter(|e| e.data.contains("delta") || d == Dialect::Chat)
            .filter(|e| !e.data.contains(".done") && !e.data.contains("response.completed"))
            .collect();
        assert!(
            delta_events.iter().any(|e| e.data.contains("\"AKIAIOSF\"")),
            "{d:?}"
        );
        assert!(
            delta_events
                .iter()
                .any(|e| e.data.contains("\"ODNN7EXAMPLE\"")),
            "{d:?}"
        );
        for e in &delta_events {
            assert!(
                !e.data.contains(FAKE_AWS_KEY) && !e.data.contains(FAKE_OPENAI_KEY),
                "{d:?}: whole key in {e:?}"
            );
        }
        assert!(d.assemble(&body).text.contains(FAKE_OPENAI_KEY), "{d:?}");
    }
}

#[test]
fn tool_arguments_stream_in_many_small_fragments() {
    let m = mock();
    let r = call(
        m,
        Dialect::Chat,
        &[("x-mock-scenario", "tool_shell")],
        &Dialect::Chat.request("x", true),
    );
    let fragments: Vec<String> = asg_e2e::sse::parse(&r.text())
        .iter()
        .filter_map(|e| e.json())
        .filter_map(|v| {
            v["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"]
                .as_str()
                .map(str::to_string)
        })
        .filter(|s| !s.is_empty())
        .collect();
    assert!(fragments.len() >= 6, "{fragments:?}");
    assert!(fragments.iter().all(|f| f.len() <= 8), "{fragments:?}");
    assert!(
        !fragments.iter().any(|f| f.contains("id_rsa")),
        "the path must straddle fragments: {fragments:?}"
    );
    // Only the first entry names the tool (the SDK concatenates names).
    assert_eq!(r.text().matches("\"name\":\"shell\"").count(), 1);
}

#[test]
fn chat_usage_chunk_and_obfuscation_follow_stream_options() {
    let m = mock();
    let mut req = Dialect::Chat.request("x", true);
    let with = call(m, Dialect::Chat, &[], &req).text();
    let events = asg_e2e::sse::parse(&with);
    let usage_chunk = events[events.len() - 2].json().expect("usage chunk");
    assert_eq!(usage_chunk["choices"], json!([]));
    assert!(usage_chunk["usage"]["total_tokens"].as_u64().is_some());
    assert!(with.contains("\"obfuscation\""));

    req["stream_options"] = json!({"include_usage": false, "include_obfuscation": false});
    let without = call(m, Dialect::Chat, &[], &req).text();
    assert!(
        !without.contains("\"usage\"") && !without.contains("\"obfuscation\""),
        "{without}"
    );
    assert!(without.ends_with("data: [DONE]\n\n"));
}

#[test]
fn echo_reads_every_request_shape() {
    let m = mock();
    let echo = [("x-mock-scenario", "echo")];
    let chat_parts = json!({"messages": [
        {"role": "user", "content": "old"}, {"role": "assistant", "content": "ok"},
        {"role": "user", "content": [{"type": "text", "text": "part one "}, {"type": "text", "text": "part two"}]}]});
    let r = call(m, Dialect::Chat, &echo, &chat_parts).json();
    assert_eq!(r["choices"][0]["message"]["content"], "part one part two");

    let responses_string = json!({"input": "plain string input"});
    let r = call(m, Dialect::Responses, &echo, &responses_string).json();
    assert_eq!(Dialect::Responses.text(&r), "plain string input");
    let role_only = json!({"input": [{"role": "user", "content": "role-only item"}]});
    assert_eq!(
        Dialect::Responses.text(&call(m, Dialect::Responses, &echo, &role_only).json()),
        "role-only item"
    );

    let tool_result = json!({"messages": [{"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": "toolu_1", "content": "result text"},
        {"type": "text", "text": "and a comment"}]}]});
    let r = call(m, Dialect::Anthropic, &echo, &tool_result).json();
    assert_eq!(Dialect::Anthropic.text(&r), "result text\nand a comment");
}

#[test]
fn big_scenario_pads_the_body_to_the_requested_size() {
    let m = mock();
    for d in Dialect::ALL {
        let r = call(
            m,
            d,
            &[("x-mock-scenario", "big"), ("x-mock-size", "200000")],
            &d.request("x", false),
        );
        assert_eq!(r.body.len(), 200_000, "{d:?}: non-streaming size is exact");
        assert!(d.text(&r.json()).len() > 190_000, "{d:?}");

        let r = call(
            m,
            d,
            &[("x-mock-scenario", "big"), ("x-mock-size", "200000")],
            &d.request("x", true),
        );
        let len = r.body.len() as i64;
        assert!((len - 200_000).abs() < 2_000, "{d:?}: stream size {len}");
        let a = d.assemble(&r.text());
        // Responses streams repeat the full text in four more events, so their text is ~1/5 of the body.
        let min_text = if d == Dialect::Responses {
            35_000
        } else {
            150_000
        };
        assert!(
            a.completed && a.text.len() > min_text,
            "{d:?}: {}",
            a.text.len()
        );
    }
    let r = call(
        m,
        Dialect::Chat,
        &[("x-mock-scenario", "big")],
        &Dialect::Chat.request("x", false),
    );
    assert_eq!(r.body.len(), 1 << 20, "default size is 1 MiB");
}
