//! OpenTelemetry traces over OTLP: off unless the standard variables ask
//! for them (`OTEL_EXPORTER_OTLP_ENDPOINT` or
//! `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`; `OTEL_EXPORTER_OTLP_PROTOCOL` =
//! `http/protobuf` (default) or `grpc`; headers, timeouts and batch
//! settings from their usual variables; `OTEL_SDK_DISABLED=true` or
//! `OTEL_TRACES_EXPORTER=none` turn it off).
//!
//! Each proxied request is one server span (`asg.request`) with children
//! for request inspection, the upstream exchange and response inspection.
//! Attributes follow the GenAI semantic conventions (`gen_ai.system`,
//! `gen_ai.operation.name`, `gen_ai.request.model`, `gen_ai.usage.*`) plus
//! the gateway's decision and rule ids; never prompt text, arguments,
//! headers or query strings. The upstream span's W3C `traceparent` goes to
//! the upstream, and a client's `traceparent` makes the request span its
//! child.
//!
//! When off, the data path holds `None` and does nothing more. When on,
//! spans are queued to a batch exporter running on a runtime of its own
//! (one thread), so exports never run on a proxy worker.

use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::{Span, SpanKind, Status, TraceContextExt, Tracer, TracerProvider};
use opentelemetry::{Context, KeyValue};
use opentelemetry_otlp::{Protocol, SpanExporter, WithExportConfig};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::span_processor_with_async_runtime::BatchSpanProcessor;
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider};
use opentelemetry_sdk::Resource;
use serde_json::Value;
use std::sync::OnceLock;
use std::time::SystemTime;

static GLOBAL: OnceLock<Telemetry> = OnceLock::new();

/// The process's telemetry, when it is on.
pub fn global() -> Option<&'static Telemetry> {
    GLOBAL.get()
}

pub struct Telemetry {
    tracer: SdkTracer,
    provider: SdkTracerProvider,
    /// The exporter's runtime (kept alive with the provider).
    _rt: tokio::runtime::Runtime,
    propagator: TraceContextPropagator,
    /// What the operator configured, for the start-up log line.
    pub describe: String,
}

/// OpenTelemetry is asked for but cannot be set up (the message names the
/// variable or endpoint).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct TelemetryError(String);

fn env(name: &str) -> Option<String> {
    crate::config::env::standard(name)
}

impl Telemetry {
    /// Start exporting if the environment asks for it; `Ok(false)` when off.
    pub fn init_from_env() -> Result<bool, TelemetryError> {
        let Some(t) = Telemetry::from_env()? else {
            return Ok(false);
        };
        tracing::info!(exporter = %t.describe, "OpenTelemetry traces on");
        let _ = GLOBAL.set(t);
        Ok(true)
    }

    fn from_env() -> Result<Option<Telemetry>, TelemetryError> {
        if env("OTEL_SDK_DISABLED").is_some_and(|v| v.eq_ignore_ascii_case("true"))
            || env("OTEL_TRACES_EXPORTER").is_some_and(|v| v.eq_ignore_ascii_case("none"))
        {
            return Ok(None);
        }
        let endpoint = env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
            .or_else(|| env("OTEL_EXPORTER_OTLP_ENDPOINT"));
        let Some(endpoint) = endpoint else {
            return Ok(None);
        };
        if endpoint.starts_with("https://") {
            return Err(TelemetryError(format!(
                "OTLP endpoint {endpoint}: TLS to the collector is not built in; export to a local collector over http://"
            )));
        }
        let protocol = env("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
            .or_else(|| env("OTEL_EXPORTER_OTLP_PROTOCOL"))
            .unwrap_or_else(|| "http/protobuf".to_string());
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("asg-otlp")
            .enable_all()
            .build()
            .map_err(|e| {
                TelemetryError(format!("cannot start the OTLP exporter's runtime: {e}"))
            })?;
        // The exporter and its batch task live on that runtime.
        let _guard = rt.enter();
        let exporter = match protocol.as_str() {
            "grpc" => SpanExporter::builder().with_tonic().build(),
            "http/protobuf" => SpanExporter::builder()
                .with_http()
                .with_protocol(Protocol::HttpBinary)
                .build(),
            other => {
                return Err(TelemetryError(format!(
                "OTEL_EXPORTER_OTLP_PROTOCOL={other:?} is not supported; use http/protobuf or grpc"
            )))
            }
        }
        .map_err(|e| {
            TelemetryError(format!(
                "cannot build the OTLP exporter for {endpoint}: {e}"
            ))
        })?;
        let processor =
            BatchSpanProcessor::builder(exporter, opentelemetry_sdk::runtime::Tokio).build();
        let provider = SdkTracerProvider::builder()
            .with_span_processor(processor)
            .with_resource(
                Resource::builder()
                    .with_service_name(env("OTEL_SERVICE_NAME").unwrap_or_else(|| "asg".into()))
                    .build(),
            )
            .build();
        let tracer = provider.tracer("asg");
        drop(_guard);
        Ok(Some(Telemetry {
            tracer,
            provider,
            _rt: rt,
            propagator: TraceContextPropagator::new(),
            describe: format!("{protocol} to {endpoint}"),
        }))
    }

    /// Export what is queued (at shutdown).
    pub fn flush(&self) {
        let _ = self.provider.force_flush();
    }

    /// The span of one request, child of the client's trace if it sent one.
    pub fn begin(&self, method: &str, path: &str, headers: &http::HeaderMap) -> RequestTrace {
        let parent = self.propagator.extract(&HeaderExtractor(headers));
        let span = self
            .tracer
            .span_builder("asg.request")
            .with_kind(SpanKind::Server)
            .with_attributes([
                KeyValue::new("http.request.method", method.to_string()),
                KeyValue::new("url.path", path.chars().take(256).collect::<String>()),
            ])
            .start_with_context(&self.tracer, &parent);
        RequestTrace {
            cx: parent.with_span(span),
            upstream: None,
            input_tokens: None,
            output_tokens: None,
        }
    }

    /// A finished child span from `start` to now.
    fn child(&self, cx: &Context, name: &'static str, start: SystemTime, attrs: Vec<KeyValue>) {
        let mut span = self
            .tracer
            .span_builder(name)
            .with_start_time(start)
            .with_attributes(attrs)
            .start_with_context(&self.tracer, cx);
        span.end();
    }
}

/// One request's spans.
pub struct RequestTrace {
    cx: Context,
    upstream: Option<Context>,
    input_tokens: Option<u64>,
    output_tokens: Option<u64>,
}

impl RequestTrace {
    fn t() -> Option<&'static Telemetry> {
        global()
    }

    /// Route and API, once known.
    pub fn routed(&self, route: &str, dialect: &str, path: &str) {
        let span = self.cx.span();
        span.set_attribute(KeyValue::new("asg.route", route.to_string()));
        span.set_attribute(KeyValue::new("asg.dialect", dialect.to_string()));
        if let Some(system) = gen_ai_system(dialect) {
            span.set_attribute(KeyValue::new("gen_ai.system", system));
            span.set_attribute(KeyValue::new("gen_ai.provider.name", system));
            span.set_attribute(KeyValue::new("gen_ai.operation.name", operation(dialect)));
        }
        if dialect == "gemini" {
            if let Some(m) = crate::datapath::dialect::gemini::model_of(path) {
                span.set_attribute(KeyValue::new("gen_ai.request.model", m.to_string()));
            }
        }
    }

    /// A request body was inspected (from `start`): its model, and what
    /// was decided.
    pub fn request_inspected(
        &self,
        start: SystemTime,
        body: &[u8],
        decision: &str,
        rules: &[String],
    ) {
        let Some(t) = Self::t() else { return };
        if let Ok(Model { model: Some(m) }) = serde_json::from_slice::<Model>(body) {
            self.cx.span().set_attribute(KeyValue::new(
                "gen_ai.request.model",
                m.chars().take(128).collect::<String>(),
            ));
        }
        t.child(
            &self.cx,
            "asg.inspect.request",
            start,
            verdict_attrs(decision, rules),
        );
    }

    /// A response (or stream) was inspected.
    pub fn response_inspected(&self, start: SystemTime, decision: &str, rules: &[String]) {
        let Some(t) = Self::t() else { return };
        t.child(
            &self.cx,
            "asg.inspect.response",
            start,
            verdict_attrs(decision, rules),
        );
    }

    /// The upstream exchange begins: its span's context goes upstream as
    /// `traceparent` (and `tracestate`).
    pub fn upstream_start(&mut self, address: &str) -> Vec<(String, String)> {
        let Some(t) = Self::t() else {
            return Vec::new();
        };
        let span = t
            .tracer
            .span_builder("asg.upstream")
            .with_kind(SpanKind::Client)
            .with_attributes([KeyValue::new("server.address", address.to_string())])
            .start_with_context(&t.tracer, &self.cx);
        let cx = self.cx.with_span(span);
        let mut headers = Vec::new();
        t.propagator
            .inject_context(&cx, &mut VecInjector(&mut headers));
        self.upstream = Some(cx);
        headers
    }

    pub fn upstream_status(&self, status: u16) {
        if let Some(cx) = &self.upstream {
            cx.span()
                .set_attribute(KeyValue::new("http.response.status_code", status as i64));
        }
    }

    /// Token usage from a response body or stream event (whatever the API
    /// calls it); the largest figures seen win (streams repeat them).
    pub fn usage(&mut self, v: &Value) {
        if let Some((i, o)) = usage_of(v) {
            self.input_tokens = self.input_tokens.max(i);
            self.output_tokens = self.output_tokens.max(o);
        }
    }

    /// Scan stream bytes for usage (only events that mention it are parsed).
    pub fn usage_in_stream(&mut self, bytes: &[u8]) {
        if memchr::memmem::find(bytes, b"sage").is_none() {
            return;
        }
        for line in bytes.split(|b| *b == b'\n') {
            let line = line.strip_prefix(b"data: ").unwrap_or(line);
            if memchr::memmem::find(line, b"sage").is_some() {
                if let Ok(v) = serde_json::from_slice::<Value>(line) {
                    self.usage(&v);
                }
            }
        }
    }

    /// The request is over.
    pub fn end(
        mut self,
        status: Option<u16>,
        decision: &str,
        rules: &[String],
        error: Option<String>,
    ) {
        if let Some(cx) = self.upstream.take() {
            cx.span().end();
        }
        let span = self.cx.span();
        if let Some(s) = status {
            span.set_attribute(KeyValue::new("http.response.status_code", s as i64));
        }
        for kv in verdict_attrs(decision, rules) {
            span.set_attribute(kv);
        }
        if let Some(i) = self.input_tokens {
            span.set_attribute(KeyValue::new("gen_ai.usage.input_tokens", i as i64));
        }
        if let Some(o) = self.output_tokens {
            span.set_attribute(KeyValue::new("gen_ai.usage.output_tokens", o as i64));
        }
        if let Some(e) = error {
            span.set_status(Status::error(e));
        }
        span.end();
    }
}

#[derive(serde::Deserialize)]
struct Model {
    model: Option<String>,
}

fn verdict_attrs(decision: &str, rules: &[String]) -> Vec<KeyValue> {
    let mut attrs = vec![KeyValue::new("asg.decision", decision.to_string())];
    if !rules.is_empty() {
        let rules: Vec<opentelemetry::StringValue> =
            rules.iter().map(|r| r.clone().into()).collect();
        attrs.push(KeyValue::new(
            "asg.rule_ids",
            opentelemetry::Value::Array(rules.into()),
        ));
    }
    attrs
}

/// `gen_ai.system` by dialect (semantic-convention values).
fn gen_ai_system(dialect: &str) -> Option<&'static str> {
    Some(match dialect {
        "openai_chat" | "openai_responses" => "openai",
        "anthropic_messages" => "anthropic",
        "gemini" => "gcp.gemini",
        _ => return None,
    })
}

fn operation(dialect: &str) -> &'static str {
    match dialect {
        "gemini" => "generate_content",
        _ => "chat",
    }
}

/// (input, output) tokens from any of the APIs' usage shapes.
fn usage_of(v: &Value) -> Option<(Option<u64>, Option<u64>)> {
    let n = |x: &Value, k: &str| x.get(k).and_then(Value::as_u64);
    for u in [
        &v["usage"],
        &v["response"]["usage"],
        &v["message"]["usage"],
        &v["usageMetadata"],
    ] {
        if !u.is_object() {
            continue;
        }
        let input = n(u, "input_tokens")
            .or(n(u, "prompt_tokens"))
            .or(n(u, "promptTokenCount"));
        let output = n(u, "output_tokens")
            .or(n(u, "completion_tokens"))
            .or(n(u, "candidatesTokenCount"));
        if input.is_some() || output.is_some() {
            return Some((input, output));
        }
    }
    None
}

struct HeaderExtractor<'a>(&'a http::HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }
    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|k| k.as_str()).collect()
    }
}

struct VecInjector<'a>(&'a mut Vec<(String, String)>);

impl Injector for VecInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        self.0.push((key.to_string(), value));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn usage_shapes_of_every_api() {
        let cases = [
            (
                json!({"usage": {"prompt_tokens": 3, "completion_tokens": 5}}),
                (Some(3), Some(5)),
            ),
            (
                json!({"type": "response.completed", "response": {"usage": {"input_tokens": 7, "output_tokens": 2}}}),
                (Some(7), Some(2)),
            ),
            (
                json!({"type": "message_start", "message": {"usage": {"input_tokens": 9, "output_tokens": 1}}}),
                (Some(9), Some(1)),
            ),
            (
                json!({"type": "message_delta", "usage": {"output_tokens": 12}}),
                (None, Some(12)),
            ),
            (
                json!({"usageMetadata": {"promptTokenCount": 4, "candidatesTokenCount": 6}}),
                (Some(4), Some(6)),
            ),
        ];
        for (v, want) in cases {
            assert_eq!(usage_of(&v), Some(want), "{v}");
        }
        assert_eq!(usage_of(&json!({"choices": []})), None);
        assert_eq!(gen_ai_system("gemini"), Some("gcp.gemini"));
        assert_eq!(gen_ai_system("mcp"), None);
    }
}
