//! The pingora side of the data path: hooks that route, buffer, hand bodies
//! to [`enforce`](super::enforce) and write what it decided. Each hook
//! delegates to the module of its concern.
//!
//! Request bodies are inspected *before* anything reaches the upstream when
//! they fit pingora's 64 KiB replay buffer (the common case: denied tool
//! calls never touch a tool server). Larger or chunked bodies are collected
//! in `request_body_filter`; the upstream has then seen the request header,
//! but never a byte of a denied body. Non-streaming responses are buffered
//! and inspected whole; streams are handed to the stream rewriter.

use crate::app::App;
use async_trait::async_trait;
use bytes::Bytes;
use pingora::http::ResponseHeader;
use pingora::prelude::*;
use pingora::proxy::{FailToProxy, ProxyHttp, Session};
use std::sync::Arc;
use std::time::Duration;

/// What to do with a request head (pure decisions).
mod admission;
/// The audit record of an exchange, sealed before the answer; `logging`.
mod audit;
/// pingora errors as a kind and a sentence for the client.
mod classify;
/// The per-request context.
mod context;
/// Refusals, denials and pingora errors as answers in the API's form.
mod errors;
/// Forward-proxy hooks (CONNECT tunnels, transparent and absolute-form traffic).
mod forwarding;
/// Hold mode: calls that need a human wait for an operator.
mod hold;
/// `request_filter`'s steps: identity, routing, session, body plan.
mod request;
/// Request bodies: collected or prefetched, decoded, judged.
mod request_body;
/// The response head of inspected routes, buffered judgement, stream reports.
mod response;
/// Response bodies on their way to the client: decoded, streamed or buffered.
mod response_body;
/// Inspection slots (bounded concurrent inspection).
mod slots;
/// Helpers of the unit tests.
#[cfg(test)]
mod testkit;
/// Peer, timeouts, the request head as the upstream gets it.
mod upstream;
/// Responses WebSocket inspection hooks.
mod websocket;

pub use context::Ctx;

/// Bodies above this are inspected on the blocking pool, not a worker.
const OFFLOAD_ABOVE: usize = 256 * 1024;

pub struct Gateway {
    app: Arc<App>,
}

impl Gateway {
    pub fn new(app: Arc<App>) -> Self {
        Gateway { app }
    }
}

#[async_trait]
impl ProxyHttp for Gateway {
    type CTX = Ctx;

    fn new_ctx(&self) -> Ctx {
        Ctx::new(self.app.proxy.timeouts)
    }

    async fn early_request_filter(&self, session: &mut Session, _ctx: &mut Ctx) -> Result<()> {
        crate::datapath::protocol::prepare(session);
        Ok(())
    }

    async fn request_filter(&self, session: &mut Session, ctx: &mut Ctx) -> Result<bool> {
        self.admit(session, ctx).await
    }

    async fn upstream_peer(&self, _session: &mut Session, ctx: &mut Ctx) -> Result<Box<HttpPeer>> {
        self.peer(ctx).await
    }

    async fn connected_to_upstream(
        &self,
        _session: &mut Session,
        _reused: bool,
        _peer: &HttpPeer,
        fd: std::os::unix::io::RawFd,
        _digest: Option<&pingora::protocols::Digest>,
        ctx: &mut Ctx,
    ) -> Result<()> {
        ctx.watch.attach(fd);
        Ok(())
    }

    async fn upstream_request_filter(
        &self,
        session: &mut Session,
        req: &mut RequestHeader,
        ctx: &mut Ctx,
    ) -> Result<()> {
        self.rewrite_request(session, req, ctx)
    }

    async fn request_body_filter(
        &self,
        session: &mut Session,
        body: &mut Option<Bytes>,
        end_of_stream: bool,
        ctx: &mut Ctx,
    ) -> Result<()> {
        if self
            .ws_client_bytes(session, body, end_of_stream, ctx)
            .await?
        {
            return Ok(());
        }
        self.filter_request_body(session, body, end_of_stream, ctx)
            .await
    }

    async fn upstream_response_filter(
        &self,
        _session: &mut Session,
        resp: &mut ResponseHeader,
        ctx: &mut Ctx,
    ) -> Result<()> {
        self.upstream_head(resp, ctx);
        if !ctx.dialect.is_inspected() || self.ws_upstream_response(resp, ctx)? {
            return Ok(());
        }
        self.prepare_response(resp, ctx)
    }

    /// A buffered response leaves as one write with its length (see
    /// `ProxyHttp::hold_response_header` in the vendored pingora-proxy).
    fn hold_response_header(&self, _session: &Session, ctx: &Ctx) -> bool {
        matches!(ctx.resp, context::ResponseBody::Buffer { .. })
    }

    async fn response_filter(
        &self,
        session: &mut Session,
        resp: &mut ResponseHeader,
        ctx: &mut Ctx,
    ) -> Result<()> {
        self.decorate_response(session, resp, ctx)
    }

    fn upstream_response_body_filter(
        &self,
        session: &mut Session,
        body: &mut Option<Bytes>,
        end_of_stream: bool,
        ctx: &mut Ctx,
    ) -> Result<Option<Duration>> {
        self.upstream_body(session, body, end_of_stream, ctx)
    }

    fn response_body_filter(
        &self,
        session: &mut Session,
        _body: &mut Option<Bytes>,
        end_of_stream: bool,
        ctx: &mut Ctx,
    ) -> Result<Option<Duration>> {
        if end_of_stream {
            self.last_chunk(session, ctx);
        }
        Ok(None)
    }

    async fn fail_to_proxy(&self, session: &mut Session, e: &Error, ctx: &mut Ctx) -> FailToProxy
    where
        Ctx: Send + Sync,
    {
        self.on_proxy_failure(session, e, ctx).await
    }

    /// pingora's own log lines: method and path only. The query string may
    /// hold an API key (Gemini clients send `?key=`).
    fn request_summary(&self, session: &Session, _ctx: &Ctx) -> String {
        let req = session.req_header();
        format!("{} {}", req.method, req.uri.path())
    }

    async fn logging(&self, session: &mut Session, e: Option<&Error>, ctx: &mut Ctx) {
        ctx.watch.finish();
        self.log_request(session, e, ctx).await
    }
}
