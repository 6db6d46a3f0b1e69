//! The response path: the upstream's head arrives (status, deadlines,
//! latency); on inspected routes it decides how the body is read (decoded,
//! then rewritten in flight or buffered whole). A buffered body is judged
//! here, a stream's report joins the request's; the body chunks
//! themselves go through `response_body`.

use super::context::{rule_ids, Ctx, ResponseBody};
use super::{Gateway, OFFLOAD_ABOVE};
use crate::datapath::body::is_event_stream;
use crate::datapath::dialect::Dialect;
use crate::datapath::encoding::BodyDecoding;
use crate::datapath::enforce::inspect_response_with;
use crate::datapath::hooks::{NoSession, SessionHooks};
use crate::datapath::stream::{is_json_array_stream, StreamRewriter};
use bytes::BytesMut;
use pingora::http::ResponseHeader;
use pingora::prelude::*;
use std::sync::Arc;
use std::time::Instant;

/// Whether an answer is relayed in flight (an event stream, or Gemini's
/// JSON-array stream) rather than held whole.
pub(super) fn is_streamed(dialect: Dialect, path: &str, status: u16, ct: Option<&str>) -> bool {
    is_event_stream(ct) || is_json_array_stream(dialect, path, status, ct)
}

/// How an inspected answer's body is read.
#[derive(Debug, PartialEq, Eq)]
enum Reading {
    /// Rewritten event by event; `array` for Gemini's JSON-array stream.
    Stream { array: bool },
    /// Buffered whole, then judged.
    Whole,
}

fn reading(streamed: bool, ct: Option<&str>) -> Reading {
    match streamed {
        true => Reading::Stream {
            array: !is_event_stream(ct),
        },
        false => Reading::Whole,
    }
}

/// The codings the upstream applied to its answer (a value that is not
/// text reads as U+FFFD, so the decoder refuses it).
fn codings(resp: &ResponseHeader) -> impl Iterator<Item = &str> {
    resp.headers
        .get_all("content-encoding")
        .iter()
        .map(|v| v.to_str().unwrap_or("\u{fffd}"))
}

impl Gateway {
    /// The upstream's response head arrived: its status, which deadline
    /// applies from now on, and the upstream's latency.
    pub(super) fn upstream_head(&self, resp: &ResponseHeader, ctx: &mut Ctx) {
        let status = resp.status.as_u16();
        ctx.upstream_status = Some(status);
        if let Some(tr) = &ctx.trace {
            tr.upstream_status(status);
        }
        if status == 101 {
            // An upgraded connection (a WebSocket) lives as long as it is used.
            ctx.watch.finish();
        } else if !resp.status.is_informational() {
            let ct = resp
                .headers
                .get("content-type")
                .and_then(|v| v.to_str().ok());
            let streamed = is_streamed(ctx.dialect, &ctx.path, status, ct);
            // Only inspected non-stream answers are held whole (a total deadline).
            ctx.watch
                .head_received(ctx.dialect.is_inspected() && !streamed);
        }
        if let Some(sent) = ctx.upstream_sent {
            let latency = sent.elapsed();
            ctx.upstream_latency = Some(latency);
            if let Some(route) = &ctx.route {
                self.app
                    .metrics
                    .upstream_latency
                    .with_label_values(&[route.name.as_str()])
                    .observe(latency.as_secs_f64());
            }
        }
    }

    /// The response head of an inspected route: decoded here and forwarded
    /// decoded (scanners never see compressed bytes, and the client gets
    /// what was inspected); then a stream rewriter or a buffer.
    pub(super) fn prepare_response(&self, resp: &mut ResponseHeader, ctx: &mut Ctx) -> Result<()> {
        ctx.resp_decoding = BodyDecoding::for_response(codings(resp), ctx.max_body_bytes());
        resp.remove_header("content-encoding");
        let ct = resp
            .headers
            .get("content-type")
            .and_then(|v| v.to_str().ok());
        let status = resp.status.as_u16();
        let streamed = is_streamed(ctx.dialect, &ctx.path, status, ct);
        match reading(streamed, ct) {
            Reading::Stream { array } => {
                // Inspected in flight, event by event (see `stream`).
                let policy = ctx.policy.clone().expect("policy pinned in request_filter");
                // Streamed calls are judged in the request's session, like
                // buffered ones (history, risk, approvals).
                let hooks: Arc<dyn SessionHooks> = match &ctx.gate {
                    Some(g) => g.clone(),
                    None => Arc::new(NoSession),
                };
                let rewriter = StreamRewriter::new(
                    ctx.dialect,
                    policy,
                    self.app.masker.clone(),
                    &ctx.id,
                    hooks,
                )
                .map(|rw| if array { rw.json_array() } else { rw });
                if let Some(mut rw) = rewriter {
                    rw.set_rpc_id(ctx.rpc_id.clone());
                    rw.set_kept(ctx.kept.clone());
                    ctx.stream = Some(Box::new(rw));
                    resp.remove_header("content-length");
                    resp.insert_header("x-asg-stream-inspection", "on")?;
                }
            }
            Reading::Whole => {
                ctx.resp = ResponseBody::Buffer {
                    buf: BytesMut::new(),
                    failed: None,
                };
                resp.remove_header("content-length");
            }
        }
        Ok(())
    }

    /// Judge a whole response body; `Some` replaces it.
    pub(super) fn judge_response(&self, ctx: &mut Ctx, raw: &[u8]) -> Option<Vec<u8>> {
        let policy = ctx.policy.clone()?;
        let wall = std::time::SystemTime::now();
        let status = ctx.upstream_status.unwrap_or(200);
        // Small bodies are cheap; a large one waits for a slot or is withheld.
        let _slot = if raw.len() > OFFLOAD_ABOVE {
            match self.response_slot(ctx) {
                Ok(slot) => Some(slot),
                Err(withheld) => return Some(withheld),
            }
        } else {
            None
        };
        let started = Instant::now();
        let hooks: &dyn SessionHooks = match &ctx.gate {
            Some(g) => g.as_ref(),
            None => &NoSession,
        };
        let run =
            || inspect_response_with(&ctx.inspection(&self.app, &policy, ""), raw, status, hooks);
        // Response filters are synchronous; a large body is inspected
        // without stalling the other tasks of this worker.
        let (out, report) = if raw.len() > OFFLOAD_ABOVE {
            tokio::task::block_in_place(run)
        } else {
            run()
        };
        self.app
            .metrics
            .inspect_latency
            .with_label_values(&["response"])
            .observe(started.elapsed().as_secs_f64());
        if let Some(g) = &ctx.gate {
            g.commit(&report);
        }
        if let Some(tr) = ctx.trace.as_mut() {
            if let Ok(v) = serde_json::from_slice::<serde_json::Value>(raw) {
                tr.usage(&v);
            }
            tr.response_inspected(
                wall,
                report.decision.as_str(),
                &rule_ids(std::slice::from_ref(&report)),
            );
        }
        ctx.reports.push(report);
        out
    }

    /// The stream rewriter is done: its report joins the request's (for
    /// audit, metrics and the session).
    pub(super) fn close_stream(&self, ctx: &mut Ctx) {
        let Some(rw) = ctx.stream.take() else {
            return;
        };
        let metrics = &self.app.metrics;
        metrics
            .stream_events
            .with_label_values(&[ctx.dialect.as_str()])
            .inc_by(rw.events());
        metrics
            .inspect_latency
            .with_label_values(&["stream"])
            .observe(rw.busy().as_secs_f64());
        let report = rw.report();
        if let Some(g) = &ctx.gate {
            g.commit(&report);
        }
        if let Some(tr) = &ctx.trace {
            let start = std::time::SystemTime::now() - rw.busy();
            tr.response_inspected(
                start,
                report.decision.as_str(),
                &rule_ids(std::slice::from_ref(&report)),
            );
        }
        ctx.reports.push(report);
    }

    /// Every answer says which request it was and (once judged) the
    /// request's decision.
    pub(super) fn decorate_response(
        &self,
        session: &mut pingora::proxy::Session,
        resp: &mut ResponseHeader,
        ctx: &Ctx,
    ) -> Result<()> {
        crate::datapath::protocol::fit_response(session, resp)?;
        resp.insert_header("x-asg-request-id", ctx.id.as_str())?;
        if let Some(report) = ctx.reports.first() {
            resp.insert_header("x-asg-decision", report.decision.as_str())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::testkit::{ctx, gateway};
    use super::*;
    use crate::datapath::dialect::Dialect;

    fn head(ct: &str) -> ResponseHeader {
        let mut resp = ResponseHeader::build(200, None).unwrap();
        resp.insert_header("content-type", ct).unwrap();
        resp.insert_header("content-encoding", "gzip").unwrap();
        resp.insert_header("content-length", "10").unwrap();
        resp
    }

    #[test]
    fn an_event_stream_is_rewritten_in_flight_other_answers_are_held_whole() {
        let gw = gateway();
        let mut c = ctx();
        c.dialect = Dialect::OpenaiChat;
        c.path = "/v1/chat/completions".into();
        c.policy = Some(gw.app.policy.current());
        let mut resp = head("text/event-stream");
        gw.prepare_response(&mut resp, &mut c).unwrap();
        assert!(c.stream.is_some());
        assert!(matches!(c.resp, ResponseBody::Pass));
        assert!(
            !c.resp_decoding.is_identity(),
            "gzip is decoded for the scanners"
        );
        let has = |r: &ResponseHeader, n: &str| r.headers.get(n).is_some();
        assert!(!has(&resp, "content-encoding") && !has(&resp, "content-length"));
        assert_eq!(resp.headers.get("x-asg-stream-inspection").unwrap(), "on");

        let mut c = ctx();
        c.dialect = Dialect::OpenaiChat;
        c.policy = Some(gw.app.policy.current());
        let mut resp = head("application/json");
        gw.prepare_response(&mut resp, &mut c).unwrap();
        assert!(c.stream.is_none());
        assert!(matches!(c.resp, ResponseBody::Buffer { .. }));
        assert!(!has(&resp, "content-encoding") && !has(&resp, "content-length"));
        assert!(!has(&resp, "x-asg-stream-inspection"));
    }

    #[test]
    fn a_streamed_answer_is_an_event_stream_or_a_json_array() {
        let sse = Some("text/event-stream; charset=utf-8");
        assert_eq!(reading(true, sse), Reading::Stream { array: false });
        let json = Some("application/json");
        assert_eq!(reading(true, json), Reading::Stream { array: true });
        assert_eq!(reading(false, json), Reading::Whole);
        assert_eq!(reading(false, None), Reading::Whole);
    }

    #[test]
    fn every_coding_value_is_read_and_non_text_is_kept_as_refusable() {
        let mut resp = ResponseHeader::build(200, None).unwrap();
        resp.append_header("content-encoding", "gzip").unwrap();
        resp.append_header("content-encoding", "br").unwrap();
        assert_eq!(codings(&resp).collect::<Vec<_>>(), ["gzip", "br"]);
        let mut odd = ResponseHeader::build(200, None).unwrap();
        let value = http::HeaderValue::from_bytes(b"gz\xffip").unwrap();
        odd.insert_header("content-encoding", value).unwrap();
        assert_eq!(codings(&odd).collect::<Vec<_>>(), ["\u{fffd}"]);
        let none = ResponseHeader::build(204, None).unwrap();
        assert_eq!(codings(&none).count(), 0);
    }

    #[test]
    fn streams_are_event_streams_or_gemini_arrays() {
        let sse = Some("text/event-stream");
        let json = Some("application/json");
        assert!(is_streamed(
            Dialect::OpenaiChat,
            "/v1/chat/completions",
            200,
            sse
        ));
        assert!(!is_streamed(
            Dialect::OpenaiChat,
            "/v1/chat/completions",
            200,
            json
        ));
        let gemini = "/v1beta/models/g:streamGenerateContent";
        assert!(is_streamed(Dialect::Gemini, gemini, 200, json));
        // An error answer of the same call is a plain JSON body.
        assert!(!is_streamed(Dialect::Gemini, gemini, 400, json));
        assert!(!is_streamed(
            Dialect::Gemini,
            "/v1beta/models/g:generateContent",
            200,
            json
        ));
    }
}
