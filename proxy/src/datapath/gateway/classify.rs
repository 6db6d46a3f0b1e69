//! Which kind of failure a pingora error is, in one sentence for the
//! client: the upstream unreachable or too slow, a malformed request, a
//! denial's own status, or the gateway's own fault.

use super::context::Ctx;
use crate::datapath::dialect::ErrorKind;
use pingora::prelude::*;

/// The client hung up: nobody is left to answer.
pub(super) fn client_gone(e: &Error) -> bool {
    matches!(e.etype(), WriteError | ReadError | ConnectionClosed)
        && e.esource() == &pingora::ErrorSource::Downstream
}

/// The status of an error answer: the one an HTTP error carries, else the
/// kind's.
pub(super) fn failure_status(e: &Error, kind: ErrorKind) -> u16 {
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
    use super::super::testkit::ctx;
    use super::*;
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
}
