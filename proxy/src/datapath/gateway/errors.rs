//! Answers the gateway writes itself: refusals before inspection, denials,
//! and pingora errors told to the client in its API's own error form
//! (a kind, a status and one sentence).

use super::classify::{classify_error, client_gone, failure_status};
use super::context::Ctx;
use super::Gateway;
use crate::datapath::dialect::ErrorKind;
use crate::datapath::enforce::StageReport;
use bytes::Bytes;
use pingora::http::ResponseHeader;
use pingora::prelude::*;
use pingora::proxy::{FailToProxy, Session};

/// A response the gateway writes itself (from `fail_to_proxy`).
#[derive(Debug)]
pub(super) struct Denial {
    pub(super) status: u16,
    pub(super) body: serde_json::Value,
    pub(super) reason: &'static str,
}

impl Denial {
    /// `kind`'s status and code, `message` in the request's dialect.
    pub(super) fn new(ctx: &Ctx, kind: ErrorKind, message: &str) -> Denial {
        Denial {
            status: kind.status(),
            body: ctx.dialect.error_body(kind, message, &ctx.id),
            reason: kind.code(),
        }
    }
}

/// The head of an answer the gateway writes: JSON of `len` bytes, the
/// request id, the decision, `Retry-After` when busy, and the approvals a
/// client can ask an operator about.
fn answer_header(ctx: &Ctx, status: u16, len: usize) -> Result<ResponseHeader> {
    let mut header = ResponseHeader::build(status, Some(5))?;
    header.insert_header("content-type", "application/json")?;
    header.insert_header("content-length", len.to_string())?;
    header.insert_header("x-asg-request-id", ctx.id.as_str())?;
    header.insert_header("x-asg-decision", ctx.decision().as_str())?;
    if let Some(secs) = ctx.retry_after {
        header.insert_header("retry-after", secs.to_string())?;
    }
    let pending = ctx.pending_approvals();
    if !pending.is_empty() {
        header.insert_header("x-asg-approval-id", pending.join(","))?;
    }
    Ok(header)
}

impl Gateway {
    /// Write a JSON answer ourselves (before any upstream response). The
    /// audit record is on disk before the answer leaves.
    pub(super) async fn answer(
        &self,
        session: &mut Session,
        ctx: &mut Ctx,
        status: u16,
        body: &serde_json::Value,
        reason: &'static str,
    ) -> Result<()> {
        let bytes = Bytes::from(body.to_string());
        let header = answer_header(ctx, status, bytes.len())?;
        self.seal_audit(ctx, Some(status)).await;
        session
            .write_response_header(Box::new(header), false)
            .await?;
        session.write_response_body(Some(bytes), true).await?;
        ctx.answered = Some(status);
        self.app
            .metrics
            .gateway_errors
            .with_label_values(&[reason])
            .inc();
        Ok(())
    }

    /// Refuse before inspection (no route, wrong media type, too large…):
    /// counted and audited as a block with the reason.
    pub(super) async fn refuse(
        &self,
        session: &mut Session,
        ctx: &mut Ctx,
        kind: ErrorKind,
        message: &str,
    ) -> Result<bool> {
        ctx.reports.push(StageReport::refused(message));
        let body = ctx.dialect.error_body(kind, message, &ctx.id);
        self.answer(session, ctx, kind.status(), &body, kind.code())
            .await?;
        Ok(true)
    }

    /// pingora gave up on the request: a denial decided earlier, or its
    /// error told to the client (or the end of an answer already begun).
    pub(super) async fn on_proxy_failure(
        &self,
        session: &mut Session,
        e: &Error,
        ctx: &mut Ctx,
    ) -> FailToProxy {
        let mut message = String::new();
        let (status, body, reason) = if let Some(d) = ctx.denial.take() {
            (d.status, d.body, d.reason)
        } else {
            let (kind, msg) = classify_error(e, ctx);
            message = msg.clone();
            if let Some(route) = &ctx.route {
                if kind == ErrorKind::BadGateway {
                    self.app
                        .metrics
                        .upstream_errors
                        .with_label_values(&[route.name.as_str(), "connect"])
                        .inc();
                }
            }
            let status = failure_status(e, kind);
            (
                status,
                ctx.dialect.error_body(kind, &msg, &ctx.id),
                kind.code(),
            )
        };
        let client_gone = client_gone(e);
        if !client_gone && session.response_written().is_none() {
            if let Err(err) = self.answer(session, ctx, status, &body, reason).await {
                tracing::debug!(error = %err, "could not write error response");
            }
        } else if !client_gone {
            // The answer had begun: it ends with an error in the API's form.
            self.end_answer_with_error(session, ctx, &message).await;
        }
        FailToProxy {
            error_code: if client_gone { 0 } else { status },
            can_reuse_downstream: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testkit::{answer, ctx, gateway, session};
    use super::*;
    use crate::datapath::dialect::Dialect;
    use pingora::proxy::ProxyHttp;

    /// A routed chat request whose body was still on its way.
    async fn routed(gw: &Gateway) -> (Session, tokio::io::DuplexStream, Ctx) {
        let head = "POST /v1/chat/completions HTTP/1.1\r\nhost: gw\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n";
        let (mut s, client) = session(head).await;
        let mut ctx = gw.new_ctx();
        assert!(!gw.admit(&mut s, &mut ctx).await.unwrap());
        (s, client, ctx)
    }

    #[tokio::test]
    async fn a_denial_decided_earlier_is_the_answer() {
        let gw = gateway();
        let (mut s, mut client, mut ctx) = routed(&gw).await;
        ctx.reports.push(StageReport::refused("too large"));
        ctx.denial = Some(Denial::new(
            &ctx,
            ErrorKind::TooLarge,
            "body over the limit",
        ));
        let e = Error::explain(HTTPStatus(413), "request body exceeds the gateway limit");
        let f = gw.on_proxy_failure(&mut s, &e, &mut ctx).await;
        assert_eq!(f.error_code, 413);
        assert_eq!(ctx.answered, Some(413));
        let got = answer(&mut client).await;
        assert!(got.starts_with("http/1.1 413"), "{got}");
        assert!(got.contains("body over the limit"), "{got}");
        assert!(got.contains("x-asg-decision: block"), "{got}");
    }

    #[tokio::test]
    async fn an_unreachable_upstream_is_a_502_that_names_it() {
        let gw = gateway();
        let (mut s, mut client, mut ctx) = routed(&gw).await;
        let connect = gw
            .app
            .metrics
            .upstream_errors
            .with_label_values(&["openai", "connect"]);
        let before = connect.get();
        let f = gw
            .on_proxy_failure(&mut s, &Error::new_up(ConnectRefused), &mut ctx)
            .await;
        assert_eq!(f.error_code, 502);
        assert_eq!(connect.get(), before + 1);
        let got = answer(&mut client).await;
        assert!(got.starts_with("http/1.1 502"), "{got}");
        assert!(got.contains("upstream 127.0.0.1:9 is unreachable"), "{got}");
        assert!(got.contains("asg_upstream_unreachable"), "{got}");
    }

    #[tokio::test]
    async fn nobody_is_answered_once_the_client_is_gone() {
        let gw = gateway();
        let (mut s, _client, mut ctx) = routed(&gw).await;
        let gone = Error::new_down(ConnectionClosed);
        let f = gw.on_proxy_failure(&mut s, &gone, &mut ctx).await;
        assert_eq!(f.error_code, 0);
        assert_eq!(ctx.answered, None);
        assert!(!ctx.audited, "recorded by `logging` instead");
    }

    #[test]
    fn answers_carry_the_id_the_decision_and_retry_after() {
        let mut c = ctx();
        c.dialect = Dialect::OpenaiChat;
        let h = answer_header(&c, 403, 17).unwrap();
        assert_eq!(h.status.as_u16(), 403);
        let get =
            |h: &ResponseHeader, n: &str| h.headers.get(n).map(|v| v.to_str().unwrap().to_string());
        assert_eq!(get(&h, "content-length").as_deref(), Some("17"));
        assert_eq!(get(&h, "content-type").as_deref(), Some("application/json"));
        assert_eq!(get(&h, "x-asg-request-id"), Some(c.id.clone()));
        assert_eq!(get(&h, "x-asg-decision").as_deref(), Some("allow"));
        assert_eq!(get(&h, "retry-after"), None);
        assert_eq!(get(&h, "x-asg-approval-id"), None);
        c.retry_after = Some(2);
        c.reports.push(StageReport::refused("busy"));
        let h = answer_header(&c, 503, 2).unwrap();
        assert_eq!(get(&h, "retry-after").as_deref(), Some("2"));
        assert_eq!(get(&h, "x-asg-decision").as_deref(), Some("block"));
    }

    #[test]
    fn a_denial_speaks_the_requests_dialect() {
        let mut c = ctx();
        c.dialect = Dialect::AnthropicMessages;
        let d = Denial::new(&c, ErrorKind::TooLarge, "too big");
        assert_eq!((d.status, d.reason), (413, "asg_body_too_large"));
        assert_eq!(
            d.body,
            c.dialect.error_body(ErrorKind::TooLarge, "too big", &c.id)
        );
        assert!(d.body.to_string().contains("too big"));
    }
}
