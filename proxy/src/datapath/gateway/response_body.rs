//! Response bodies of inspected routes on their way to the client: decoded
//! (any content coding), then rewritten event by event (streams) or
//! buffered whole and inspected (everything else).

use super::context::{answer_status, Ctx, ResponseBody};
use super::Gateway;
use crate::datapath::enforce::{Stage, StageReport};
use crate::datapath::response_guard::withheld_body;
use crate::decision::Decision;
use bytes::{Bytes, BytesMut};
use pingora::prelude::*;
use pingora::proxy::Session;
use std::time::Duration;

impl Gateway {
    /// A chunk of the upstream's answer, inspected here, one step before
    /// `response_body_filter`: pingora awaits the duration returned from
    /// this hook before the chunk goes on, which lets the audit record of
    /// the last chunk become durable without blocking the worker thread.
    pub(super) fn upstream_body(
        &self,
        session: &Session,
        body: &mut Option<Bytes>,
        end_of_stream: bool,
        ctx: &mut Ctx,
    ) -> Result<Option<Duration>> {
        ctx.watch.chunk_received();
        let result = self.filter_response_body(body, end_of_stream, ctx)?;
        if end_of_stream {
            // The upstream is done; waiting for the disk is not its delay.
            ctx.watch.finish();
            let written = session.response_written().map(|r| r.status.as_u16());
            if let Some(wait) = self.seal_audit_upstream(ctx, answer_status(written, ctx)) {
                return Ok(Some(result.map_or(wait, |d| d.max(wait))));
            }
        }
        Ok(result)
    }

    /// The last chunk acknowledges the request: its audit record must be
    /// on disk first.
    pub(super) fn last_chunk(&self, session: &Session, ctx: &mut Ctx) {
        ctx.watch.finish();
        let written = session.response_written().map(|r| r.status.as_u16());
        self.seal_audit_blocking(ctx, answer_status(written, ctx));
    }

    /// Rewrite a stream in flight; buffer, inspect and rewrite any other
    /// inspected response body.
    pub(super) fn filter_response_body(
        &self,
        body: &mut Option<Bytes>,
        end_of_stream: bool,
        ctx: &mut Ctx,
    ) -> Result<Option<Duration>> {
        if self.ws_server_bytes(body, end_of_stream, ctx) {
            return Ok(None);
        }
        let decoded = match ctx.watch.fired() {
            // The watchdog cut the upstream off: a close-delimited body
            // "ends" here, but it is not complete.
            Some(expired) if end_of_stream => Err(format!(
                "the upstream {}; the answer was cut off",
                expired.describe(ctx.watch.limits())
            )),
            _ => ctx.resp_decoding.step(body.take(), end_of_stream),
        };
        if let Some(rw) = ctx.stream.as_mut() {
            let mut out = match decoded {
                Ok(Some(chunk)) => rw.push(&chunk),
                Ok(None) => Bytes::new(),
                // Nothing more of an undecodable stream is relayed.
                Err(why) => {
                    let mut b = BytesMut::new();
                    rw.fail(&why, &mut b);
                    b.freeze()
                }
            };
            if end_of_stream {
                let tail = rw.finish();
                if !tail.is_empty() {
                    let mut joined = BytesMut::from(&out[..]);
                    joined.extend_from_slice(&tail);
                    out = joined.freeze();
                }
                // Before the audit record is sealed with the last chunk.
                self.close_stream(ctx);
            }
            if let Some(tr) = ctx.trace.as_mut() {
                tr.usage_in_stream(&out);
            }
            // An empty chunk holds back without ending the response.
            *body = (!out.is_empty() || !end_of_stream).then_some(out);
            return Ok(None);
        }
        let ResponseBody::Buffer { buf, failed } = &mut ctx.resp else {
            // Not inspected: decoding is identity, the chunk passes as it came.
            *body = decoded.ok().flatten();
            return Ok(None);
        };
        let limit = ctx
            .policy
            .as_ref()
            .map_or(usize::MAX, |p| p.file.proxy.max_body_bytes);
        match decoded {
            Ok(Some(chunk)) if failed.is_none() => {
                buf.extend_from_slice(&chunk);
                if buf.len() > limit {
                    // Fail closed: an uninspectable response is not delivered.
                    let why = format!(
                        "the upstream's answer exceeds the inspection limit of {limit} bytes"
                    );
                    *failed = Some((why, "response_too_large"));
                    buf.clear();
                }
            }
            Ok(_) => {}
            Err(why) => {
                failed.get_or_insert((why, "response_undecodable"));
                buf.clear();
            }
        }
        if !end_of_stream {
            return Ok(None);
        }
        let (raw, failed) = (std::mem::take(buf).freeze(), failed.take());
        ctx.resp = ResponseBody::Pass;
        if let Some((why, label)) = failed {
            let message = format!(
                "[asg] Response withheld by the security gateway: {why} (request {})",
                ctx.id
            );
            let out = withheld_body(ctx.dialect, &message, &ctx.id, &ctx.rpc_id);
            *body = Some(Bytes::from(out.to_string()));
            let mut report = StageReport::new(Stage::Response);
            report.decision = Decision::Block;
            report.reasons.push(why);
            ctx.reports.push(report);
            self.app
                .metrics
                .gateway_errors
                .with_label_values(&[label])
                .inc();
            return Ok(None);
        }
        let out = self.judge_response(ctx, &raw);
        *body = Some(out.map(Bytes::from).unwrap_or(raw));
        Ok(None)
    }

    /// The upstream failed after the answer's head went out: a stream ends
    /// with an error event, a buffered answer with a withheld body, both in
    /// the API's form (nothing half-inspected is relayed).
    pub(super) async fn end_answer_with_error(
        &self,
        session: &mut Session,
        ctx: &mut Ctx,
        message: &str,
    ) {
        let tail = if let Some(rw) = ctx.stream.as_mut() {
            let mut out = BytesMut::new();
            rw.fail(&format!("the answer was cut short: {message}"), &mut out);
            self.close_stream(ctx);
            out.freeze()
        } else if matches!(ctx.resp, ResponseBody::Buffer { .. }) {
            ctx.resp = ResponseBody::Pass;
            let text = format!(
                "[asg] Response withheld by the security gateway: the answer was cut short: {message} (request {})",
                ctx.id
            );
            let mut report = StageReport::new(Stage::Response);
            report.decision = Decision::Block;
            report
                .reasons
                .push(format!("the answer was cut short: {message}"));
            ctx.reports.push(report);
            Bytes::from(withheld_body(ctx.dialect, &text, &ctx.id, &ctx.rpc_id).to_string())
        } else {
            return;
        };
        if let Err(e) = session.write_response_body(Some(tail), true).await {
            tracing::debug!(error = %e, "could not end the answer with an error");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testkit::{ctx, gateway};
    use super::*;
    use crate::datapath::dialect::Dialect;
    use crate::datapath::encoding::BodyDecoding;
    use std::sync::Arc;

    const ANSWER: &str = r#"{"id":"c1","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"Paris is the capital of France."},"finish_reason":"stop"}]}"#;

    fn buffered(gw: &Gateway, max_body: Option<usize>) -> Ctx {
        let mut c = ctx();
        c.dialect = Dialect::OpenaiChat;
        c.path = "/v1/chat/completions".into();
        c.upstream_status = Some(200);
        c.policy = Some(match max_body {
            None => gw.app.policy.current(),
            Some(n) => {
                let mut p = crate::decision::Policy::load("dev", None).unwrap();
                p.file.proxy.max_body_bytes = n;
                Arc::new(p)
            }
        });
        c.resp_decoding = BodyDecoding::for_response(std::iter::empty(), c.max_body_bytes());
        c.resp = ResponseBody::Buffer {
            buf: BytesMut::new(),
            failed: None,
        };
        c
    }

    /// Feed `answer` in two chunks; what the client gets.
    fn relay(gw: &Gateway, c: &mut Ctx, answer: &str) -> Vec<u8> {
        let (a, b) = answer.split_at(answer.len() / 2);
        let mut first = Some(Bytes::copy_from_slice(a.as_bytes()));
        gw.filter_response_body(&mut first, false, c).unwrap();
        assert_eq!(first, None, "held back until the answer is whole");
        let mut last = Some(Bytes::copy_from_slice(b.as_bytes()));
        gw.filter_response_body(&mut last, true, c).unwrap();
        last.expect("the answer goes out with the last chunk")
            .to_vec()
    }

    #[test]
    fn a_buffered_answer_is_judged_whole_then_sent() {
        let gw = gateway();
        let mut c = buffered(&gw, None);
        let out = relay(&gw, &mut c, ANSWER);
        let sent: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(
            sent["choices"][0]["message"]["content"],
            "Paris is the capital of France."
        );
        assert_eq!(c.reports.len(), 1);
        assert_eq!(c.reports[0].stage, Stage::Response);
        assert_eq!(c.decision(), Decision::Allow);
        assert!(matches!(c.resp, ResponseBody::Pass));
    }

    #[test]
    fn an_answer_over_the_limit_is_withheld_not_relayed() {
        let gw = gateway();
        let mut c = buffered(&gw, Some(64));
        let out = String::from_utf8(relay(&gw, &mut c, ANSWER)).unwrap();
        assert!(!out.contains("Paris"), "{out}");
        assert!(
            out.contains("Response withheld by the security gateway"),
            "{out}"
        );
        assert!(
            out.contains("exceeds the inspection limit of 64 bytes"),
            "{out}"
        );
        assert_eq!(c.decision(), Decision::Block);
    }
}
