//! OpenTelemetry through the real `asg` binary: with the standard OTLP
//! variables set, each request is a server span (child of the client's
//! `traceparent`) with inspection and upstream children, GenAI attributes,
//! the decision and rule ids; the upstream receives the trace context; no
//! prompt text or secret becomes an attribute. Both OTLP transports.

use asg_e2e::otlp::{OtlpReceiver, ReceivedSpan};
use asg_e2e::{http, Gateway, GatewayOptions, MockUpstream, FAKE_AWS_KEY};
use serde_json::json;
use std::time::Duration;

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CLIENT_SPAN: &str = "00f067aa0ba902b7";

fn gateway(mock: &MockUpstream, rx: &OtlpReceiver, protocol: &str) -> Gateway {
    Gateway::start(
        GatewayOptions::new(mock.base_url())
            .env("OTEL_EXPORTER_OTLP_ENDPOINT", &rx.endpoint())
            .env("OTEL_EXPORTER_OTLP_PROTOCOL", protocol)
            .env("OTEL_BSP_SCHEDULE_DELAY", "100")
            .env("OTEL_SERVICE_NAME", "asg-test"),
    )
}

fn exchange(gw: &Gateway, scenario: &str) {
    let body = json!({"model": "gpt-4.1", "messages": [{"role": "user", "content": "what is in the config?"}]});
    let r = http::post_json(
        &format!("{}/v1/chat/completions", gw.proxy_url()),
        &[
            ("x-mock-scenario", scenario),
            ("traceparent", &format!("00-{TRACE}-{CLIENT_SPAN}-01")),
        ],
        &body,
    );
    assert_eq!(r.status, 200, "{}", r.text());
}

fn by_name<'a>(spans: &'a [ReceivedSpan], name: &str) -> Vec<&'a ReceivedSpan> {
    spans.iter().filter(|s| s.name == name).collect()
}

fn check(mock: &MockUpstream, rx: &OtlpReceiver) {
    let spans = rx.wait_for(Duration::from_secs(10), |s| {
        s.iter().filter(|x| x.name == "asg.request").count() >= 2
    });
    let roots = by_name(&spans, "asg.request");
    assert_eq!(roots.len(), 2, "{spans:#?}");
    for root in &roots {
        assert_eq!(root.trace_id, TRACE, "the client's trace continues");
        assert_eq!(root.parent_span_id, CLIENT_SPAN);
        assert_eq!(root.kind, 2, "server span");
        assert_eq!(root.service, "asg-test");
        let a = &root.attributes;
        assert_eq!(a["gen_ai.system"], "openai");
        assert_eq!(a["gen_ai.operation.name"], "chat");
        assert_eq!(a["gen_ai.request.model"], "gpt-4.1");
        assert_eq!(a["asg.route"], "default");
        assert_eq!(a["http.response.status_code"], "200");
        assert!(a.contains_key("gen_ai.usage.input_tokens"), "{a:?}");
        assert!(a.contains_key("gen_ai.usage.output_tokens"), "{a:?}");
        for child in [
            "asg.inspect.request",
            "asg.upstream",
            "asg.inspect.response",
        ] {
            let c = spans
                .iter()
                .find(|s| s.name == child && s.parent_span_id == root.span_id)
                .unwrap_or_else(|| panic!("{child} under {}: {spans:#?}", root.span_id));
            assert_eq!(c.trace_id, TRACE);
        }
    }
    let blocked = roots
        .iter()
        .find(|r| r.attributes["asg.decision"] == "block")
        .expect("blocked call");
    assert!(
        blocked.attributes["asg.rule_ids"].contains("tool."),
        "{:?}",
        blocked.attributes
    );
    let masked = roots
        .iter()
        .find(|r| r.attributes["asg.decision"] == "allow_with_redaction")
        .expect("masked answer");
    assert!(
        masked.attributes["asg.rule_ids"].contains("aws"),
        "{:?}",
        masked.attributes
    );
    // Nothing of the conversation becomes an attribute.
    let all = format!("{spans:?}");
    assert!(
        !all.contains(FAKE_AWS_KEY) && !all.contains("what is in the config"),
        "{all}"
    );
    // The upstream saw the gateway's upstream span as the parent.
    for req in mock.requests() {
        let tp = req
            .header("traceparent")
            .expect("traceparent sent upstream");
        let parts: Vec<&str> = tp.split('-').collect();
        assert_eq!(parts[1], TRACE);
        assert!(
            spans
                .iter()
                .any(|s| s.name == "asg.upstream" && s.span_id == parts[2]),
            "{tp}"
        );
    }
}

#[test]
fn traces_over_otlp_http_protobuf() {
    let rx = OtlpReceiver::http();
    let mock = MockUpstream::start();
    let gw = gateway(&mock, &rx, "http/protobuf");
    exchange(&gw, "secret");
    exchange(&gw, "tool_shell");
    check(&mock, &rx);
}

#[test]
fn traces_over_otlp_grpc() {
    let rx = OtlpReceiver::grpc();
    let mock = MockUpstream::start();
    let gw = gateway(&mock, &rx, "grpc");
    exchange(&gw, "secret");
    exchange(&gw, "tool_shell");
    check(&mock, &rx);
}

#[test]
fn off_without_the_variables_and_no_trace_context_is_added() {
    let mock = MockUpstream::start();
    let gw = Gateway::start(GatewayOptions::new(mock.base_url()));
    exchange(&gw, "text");
    let req = &mock.requests()[0];
    // The client's own header passes; the gateway adds no span of its own.
    assert_eq!(
        req.header("traceparent"),
        Some(format!("00-{TRACE}-{CLIENT_SPAN}-01").as_str())
    );
    assert!(!gw.stderr_text().contains("OpenTelemetry"));
}
