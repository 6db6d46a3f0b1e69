//! Answers the gateway writes itself: refusals before inspection, denials,
//! and pingora errors told to the client in its API's own error form
//! (a kind, a status and one sentence).

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

/// The client hung up: nobody is left to answer.
fn client_gone(e: &Error) -> bool {
    matches!(e.etype(), WriteError | ReadError | ConnectionClosed)
        && e.esource() == &pingora::ErrorSource::Downstream
}

/// The status of an error answer: the one an HTTP error carries, else the
/// kind's.
fn failure_status(e: &Error, kind: ErrorKind) -> u16 {
    match e.etype() {
        HTTPStatus(code) => *code,
        _ => kind.status(),
    }
}

/// Map a pingora error to what the client is told.
pub(super) fn classify_error(e: &Error, ctx: &Ctx) -> (ErrorKind, String) {
    let upstream = match &ctx.forward {
        Some(t) => t.authority(),
        None => ctx
            .route
            .as_ref()
            .map(|r| format!("{}:{}", r.upstream.host, r.upstream.port))
            .unwrap_or_default(),
    };
    let expired = ctx
        .watch
        .fired()
        .map(|why| why.describe(ctx.watch.limits()));
    classify(e, &upstream, expired)
}

/// [`classify_error`] on what it reads from the context: the upstream's
/// address and, when a watchdog deadline cut the exchange, which one.
fn classify(e: &Error, upstream: &str, expired: Option<String>) -> (ErrorKind, String) {
    if let Some(why) = expired {
        return (ErrorKind::Timeout, format!("upstream {upstream} {why}"));
    }
    match e.etype() {
        HTTPStatus(413) => (ErrorKind::TooLarge, "request body too large".to_string()),
        HTTPStatus(400) => (ErrorKind::InvalidRequest, "invalid request".to_string()),
        HTTPStatus(code) if *code >= 500 => {
            (ErrorKind::BadGateway, format!("upstream error ({code})"))
        }
        HTTPStatus(_) => (ErrorKind::Blocked, "request denied".to_string()),
        ConnectTimedout | ConnectRefused | ConnectNoRoute | ConnectError | ConnectProxyFailure
        | TLSHandshakeFailure | TLSHandshakeTimedout | InvalidCert | HandshakeError => (
            ErrorKind::BadGateway,
            format!("upstream {upstream} is unreachable: {}", e.etype().as_str()).replace('_', " ")
                + &e.context
                    .as_ref()
                    .map(|c| format!(" ({c})"))
                    .unwrap_or_default(),
        ),
        ReadTimedout | WriteTimedout => {
            (ErrorKind::Timeout, format!("upstream {upstream} timed out"))
        }
        _ if e.esource() == &pingora::ErrorSource::Upstream => (
            ErrorKind::BadGateway,
            format!("upstream {upstream} failed: {}", e.etype().as_str()),
        ),
        _ if e.esource() == &pingora::ErrorSource::Downstream => (
            ErrorKind::InvalidRequest,
            format!("malformed request: {}", e.etype().as_str()),
        ),
        _ => (
            ErrorKind::Internal,
            format!("gateway error: {}", e.etype().as_str()),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::super::context::tests::ctx;
    use super::*;
    use crate::datapath::dialect::Dialect;
    use crate::datapath::route::{Route, Upstream};
    use std::sync::Arc;

    const UP: &str = "127.0.0.1:9";

    #[test]
    fn connection_failures_name_the_upstream_and_the_cause() {
        let mut e = Error::new_up(ConnectRefused);
        e.set_context("connection refused_by_peer");
        let (kind, msg) = classify(&e, UP, None);
        assert_eq!(kind, ErrorKind::BadGateway);
        // Underscores of the error type read as words; the context is kept as it is.
        assert_eq!(
            msg,
            "upstream 127.0.0.1:9 is unreachable: ConnectRefused (connection refused_by_peer)"
        );
        let (kind, msg) = classify(&Error::new(TLSHandshakeFailure), UP, None);
        assert_eq!(kind, ErrorKind::BadGateway);
        assert!(
            msg.starts_with("upstream 127.0.0.1:9 is unreachable: "),
            "{msg}"
        );
        assert!(!msg.contains('('), "{msg}");
    }

    #[test]
    fn http_statuses_map_to_their_kinds() {
        let cases = [
            (413, ErrorKind::TooLarge, "request body too large"),
            (400, ErrorKind::InvalidRequest, "invalid request"),
            (503, ErrorKind::BadGateway, "upstream error (503)"),
            (403, ErrorKind::Blocked, "request denied"),
        ];
        for (code, kind, sentence) in cases {
            let e = Error::new(HTTPStatus(code));
            assert_eq!(classify(&e, UP, None), (kind, sentence.to_string()));
            // The answer keeps the error's own status, not the kind's.
            assert_eq!(failure_status(&e, kind), code);
        }
        assert_eq!(
            failure_status(&Error::new(ConnectRefused), ErrorKind::BadGateway),
            502
        );
    }

    #[test]
    fn timeouts_and_sources_decide_the_rest() {
        let (kind, msg) = classify(&Error::new_up(ReadTimedout), UP, None);
        assert_eq!(
            (kind, msg.as_str()),
            (ErrorKind::Timeout, "upstream 127.0.0.1:9 timed out")
        );
        let (kind, msg) = classify(&Error::new_up(ReadError), UP, None);
        assert_eq!(kind, ErrorKind::BadGateway);
        assert_eq!(msg, "upstream 127.0.0.1:9 failed: ReadError");
        let (kind, msg) = classify(&Error::new_down(InvalidHTTPHeader), UP, None);
        assert_eq!(kind, ErrorKind::InvalidRequest);
        assert_eq!(msg, "malformed request: InvalidHTTPHeader");
        let (kind, msg) = classify(&Error::new(InternalError), UP, None);
        assert_eq!(kind, ErrorKind::Internal);
        assert_eq!(msg, "gateway error: InternalError");
    }

    #[test]
    fn a_fired_watchdog_wins_over_the_error_it_caused() {
        let why = "sent no response within 2 s (first_byte_timeout_secs)".to_string();
        let (kind, msg) = classify(&Error::new_up(ReadError), UP, Some(why));
        assert_eq!(kind, ErrorKind::Timeout);
        assert_eq!(
            msg,
            "upstream 127.0.0.1:9 sent no response within 2 s (first_byte_timeout_secs)"
        );
    }

    #[test]
    fn the_upstream_is_read_from_the_route_or_the_forward_target() {
        let mut c = ctx();
        let (_, msg) = classify_error(&Error::new(ConnectRefused), &c);
        assert!(msg.starts_with("upstream  is unreachable"), "{msg}");
        c.route = Some(Arc::new(Route {
            name: "openai".into(),
            prefix: "/".into(),
            host: None,
            upstream: Upstream::parse("https://api.example:8443").unwrap(),
            api: crate::datapath::dialect::ApiKind::Auto,
            strip_prefix: false,
            tool_name: None,
        }));
        let (_, msg) = classify_error(&Error::new(ConnectRefused), &c);
        assert!(
            msg.starts_with("upstream api.example:8443 is unreachable"),
            "{msg}"
        );
    }

    #[test]
    fn only_a_downstream_hang_up_means_the_client_is_gone() {
        assert!(client_gone(&Error::new_down(WriteError)));
        assert!(client_gone(&Error::new_down(ConnectionClosed)));
        assert!(!client_gone(&Error::new_up(ConnectionClosed)));
        assert!(!client_gone(&Error::new_down(InvalidHTTPHeader)));
    }

    #[test]
    fn answers_carry_id_decision_retry_and_pending_approvals() {
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
