//! HTTP/1 details the proxy gets right for every client.
//!
//! * An HTTP/1.0 client cannot read `Transfer-Encoding: chunked` (RFC 9112
//!   §6.1: a server must not send it to a 1.0 client). Inspected answers
//!   lose their `Content-Length` (the body may change), so pingora would
//!   chunk them; for a 1.0 client the body is delimited by closing the
//!   connection instead.
//! * Pipelined requests (RFC 9112 §9.3.2) are served in order on the same
//!   connection. pingora's default is to answer the first and close,
//!   dropping the rest without a word; its opt-in serves them one by one.

use pingora::http::ResponseHeader;
use pingora::prelude::*;
use pingora::proxy::Session;

/// Call once per request, before the body is read.
pub fn prepare(session: &mut Session) {
    session.set_pipelining_enabled(true);
}

/// Fit the response framing to the client's HTTP version.
pub fn fit_response(session: &mut Session, resp: &mut ResponseHeader) -> Result<()> {
    if session.req_header().version != http::Version::HTTP_10 {
        return Ok(());
    }
    let chunked = resp
        .headers
        .get("transfer-encoding")
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"chunked"));
    if chunked {
        resp.remove_header("transfer-encoding");
        // The end of the body is the end of the connection.
        session.set_keepalive(None);
        resp.insert_header("connection", "close")?;
    }
    Ok(())
}
