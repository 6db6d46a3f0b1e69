//! Request bodies of inspected routes: collected (or prefetched), decoded,
//! judged in the session while holding an inspection slot, held for an
//! operator when a call needs one, and forwarded as judged.

use super::context::{rule_ids, Ctx, RequestBody};
use super::errors::Denial;
use super::{Gateway, OFFLOAD_ABOVE};
use crate::datapath::dialect::{Dialect, ErrorKind};
use crate::datapath::encoding::DecodeError;
use crate::datapath::enforce::{inspect_request_with, Inspection, RequestAction, StageReport};
use crate::datapath::hooks::{NoSession, SessionHooks};
use crate::decision::Policy;
use bytes::Bytes;
use pingora::prelude::*;
use pingora::proxy::Session;
use std::sync::Arc;
use std::time::Instant;

/// A decoded request body being judged, with what it is judged by.
pub(super) struct Judging<'a> {
    pub(super) policy: &'a Arc<Policy>,
    pub(super) tool: &'a str,
    pub(super) decoded: &'a Bytes,
}

/// Why a body that could not be decoded is refused.
fn decode_refusal(err: DecodeError, limit: usize) -> (ErrorKind, String) {
    match err {
        DecodeError::TooLarge => (
            ErrorKind::TooLarge,
            format!("request body exceeds the gateway limit of {limit} bytes after decoding"),
        ),
        DecodeError::Corrupt(e) => (
            ErrorKind::InvalidRequest,
            format!("request body could not be decoded ({e})"),
        ),
    }
}

/// The body to send upstream instead of the client's (`None`: the
/// bytes as received), or the denial to answer with. A body that arrived
/// encoded goes on decoded: that is what was inspected.
fn forwarded(
    action: RequestAction,
    identity: bool,
    decoded: Bytes,
) -> Result<Option<Bytes>, Denial> {
    match action {
        RequestAction::Deny { status, kind, body } => Err(Denial {
            status,
            body,
            reason: kind.code(),
        }),
        RequestAction::Forward(Some(rewritten)) => Ok(Some(Bytes::from(rewritten))),
        RequestAction::Forward(None) if !identity => Ok(Some(decoded)),
        RequestAction::Forward(None) => Ok(None),
    }
}

impl Gateway {
    /// The body on its way upstream: a prefetched one is swapped for its
    /// judged form; a collected one is held back until complete, judged,
    /// then sent (or the request fails with the denial).
    pub(super) async fn filter_request_body(
        &self,
        session: &mut Session,
        body: &mut Option<Bytes>,
        end_of_stream: bool,
        ctx: &mut Ctx,
    ) -> Result<()> {
        // The request is still going out: the first-byte clock restarts.
        ctx.watch.request_sent();
        let limit = ctx.max_body_bytes();
        match &mut ctx.req {
            RequestBody::Prefetched { forward } => {
                // pingora replays the buffered body as received; send the rewrite instead.
                if let Some(f) = forward.clone() {
                    if end_of_stream {
                        *body = Some(f);
                    } else {
                        *body = Some(Bytes::new());
                    }
                }
                Ok(())
            }
            RequestBody::Collecting { buf } => {
                if let Some(chunk) = body.take() {
                    buf.extend_from_slice(&chunk);
                }
                if buf.len() > limit {
                    let msg = format!("request body exceeds the gateway limit of {limit} bytes");
                    let denial = Denial::new(ctx, ErrorKind::TooLarge, &msg);
                    let status = denial.status;
                    ctx.denial = Some(denial);
                    return Error::e_explain(HTTPStatus(status), msg);
                }
                if !end_of_stream {
                    // Hold back with an empty chunk; `None` would end the upstream body.
                    *body = Some(Bytes::new());
                    return Ok(());
                }
                let raw = std::mem::take(buf).freeze();
                // Judging (or holding for an operator) is not the upstream's delay.
                ctx.watch.pause();
                let judged = self.judge_request(session, ctx, raw.clone()).await;
                ctx.watch.request_sent();
                match judged {
                    Ok(forward) => {
                        let out = forward.unwrap_or(raw);
                        *body = if out.is_empty() { None } else { Some(out) };
                        ctx.req = RequestBody::Untouched;
                        Ok(())
                    }
                    Err(d) => {
                        let status = d.status;
                        ctx.denial = Some(d);
                        Error::e_explain(HTTPStatus(status), "request denied by policy")
                    }
                }
            }
            RequestBody::Untouched => Ok(()),
        }
    }

    /// Inspect a complete request body (decoded first).
    pub(super) async fn judge_request(
        &self,
        session: &mut Session,
        ctx: &mut Ctx,
        raw: Bytes,
    ) -> std::result::Result<Option<Bytes>, Denial> {
        let policy = ctx.policy.clone().expect("policy pinned in request_filter");
        // Decoding and inspection run only while holding a slot.
        let mut slot = Some(self.request_slot(ctx).await?);
        let limit = policy.file.proxy.max_decoded_bytes;
        let decoded = match ctx.encoding.decode(&raw, limit) {
            Ok(d) => d,
            Err(err) => {
                let (kind, msg) = decode_refusal(err, limit);
                return Err(Denial::new(ctx, kind, &msg));
            }
        };
        let tool = ctx
            .route
            .as_ref()
            .map(|r| r.tool_name_for(&ctx.path))
            .unwrap_or_default();
        let body = Judging {
            policy: &policy,
            tool: &tool,
            decoded: &decoded,
        };
        let judged = self.inspect_request_body(ctx, &body).await?;
        let (action, report) = self
            .hold_if_needed(session, ctx, &body, &mut slot, judged)
            .await?;
        ctx.kept = policy.redactor.with_kept(&report.kept.0).map(Arc::new);
        ctx.reports.push(report);
        if ctx.dialect == Dialect::Mcp {
            // Kept to answer in the server's place (a withheld response).
            if let Ok(body) = crate::datapath::strict_json::from_slice(&decoded) {
                ctx.rpc_id = crate::datapath::dialect::mcp::request_id(&body);
            }
        }
        forwarded(action, ctx.encoding.is_identity(), decoded)
    }

    /// One inspection of a request body in the session (large bodies on
    /// the blocking pool), recorded in the session.
    pub(super) async fn inspect_request_body(
        &self,
        ctx: &Ctx,
        body: &Judging<'_>,
    ) -> std::result::Result<(RequestAction, StageReport), Denial> {
        let (policy, tool, decoded) = (body.policy, body.tool, body.decoded);
        let started = Instant::now();
        let wall = std::time::SystemTime::now();
        let result = if decoded.len() > OFFLOAD_ABOVE {
            let app = self.app.clone();
            let (dialect, id) = (ctx.dialect, ctx.id.clone());
            let p = policy.clone();
            let input = decoded.to_vec();
            let gate = ctx.gate.clone();
            let tool = tool.to_string();
            let memo_scope = crate::decision::Subject::scope_of(&ctx.agent_id);
            tokio::task::spawn_blocking(move || {
                let ins = Inspection {
                    policy: &p,
                    masker: &app.masker,
                    dialect,
                    request_id: &id,
                    tool_name: &tool,
                    rpc_id: serde_json::Value::Null,
                    memo_scope,
                    kept: None,
                };
                let hooks: &dyn SessionHooks = match &gate {
                    Some(g) => g.as_ref(),
                    None => &NoSession,
                };
                inspect_request_with(&ins, &input, hooks)
            })
            .await
            .map_err(|_| Denial {
                status: 500,
                body: ctx
                    .dialect
                    .error_body(ErrorKind::Internal, "inspection failed", &ctx.id),
                reason: "inspection_panic",
            })?
        } else {
            let hooks: &dyn SessionHooks = match &ctx.gate {
                Some(g) => g.as_ref(),
                None => &NoSession,
            };
            inspect_request_with(&ctx.inspection(&self.app, policy, tool), decoded, hooks)
        };
        self.app
            .metrics
            .inspect_latency
            .with_label_values(&["request"])
            .observe(started.elapsed().as_secs_f64());
        if let Some(g) = &ctx.gate {
            g.commit(&result.1);
        }
        if let Some(tr) = &ctx.trace {
            let rules = rule_ids(std::slice::from_ref(&result.1));
            tr.request_inspected(wall, decoded, result.1.decision.as_str(), &rules);
        }
        Ok(result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn undecodable_bodies_are_refused_with_the_limit_or_the_cause() {
        let (kind, msg) = decode_refusal(DecodeError::TooLarge, 1024);
        assert_eq!(kind, ErrorKind::TooLarge);
        assert_eq!(
            msg,
            "request body exceeds the gateway limit of 1024 bytes after decoding"
        );
        let (kind, msg) = decode_refusal(DecodeError::Corrupt("bad gzip header".into()), 1024);
        assert_eq!(kind, ErrorKind::InvalidRequest);
        assert_eq!(msg, "request body could not be decoded (bad gzip header)");
    }

    #[test]
    fn a_denial_keeps_the_status_and_body_the_core_chose() {
        let action = RequestAction::Deny {
            status: 403,
            kind: ErrorKind::ApprovalRequired,
            body: json!({"error": "held"}),
        };
        let d = forwarded(action, true, Bytes::from_static(b"{}")).unwrap_err();
        assert_eq!(d.status, 403);
        assert_eq!(d.reason, "asg_approval_required");
        assert_eq!(d.body, json!({"error": "held"}));
    }

    #[test]
    fn the_forwarded_body_is_the_rewrite_or_the_decoded_bytes() {
        let decoded = Bytes::from_static(br#"{"a":1}"#);
        let rewrite = RequestAction::Forward(Some(br#"{"a":"[MASKED]"}"#.to_vec()));
        assert_eq!(
            forwarded(rewrite, true, decoded.clone())
                .unwrap()
                .as_deref(),
            Some(&br#"{"a":"[MASKED]"}"#[..])
        );
        // Unchanged and sent as it came: pingora replays the buffered body.
        assert_eq!(
            forwarded(RequestAction::Forward(None), true, decoded.clone()).unwrap(),
            None
        );
        // Unchanged but it came compressed: the inspected (decoded) bytes go on.
        assert_eq!(
            forwarded(RequestAction::Forward(None), false, decoded.clone()).unwrap(),
            Some(decoded)
        );
    }
}
