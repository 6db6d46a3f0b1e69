//! The gateway's WebSocket steps: a `GET /v1/responses` upgrade on an
//! OpenAI route is inspected frame by frame by a [`WsConn`] sitting in the
//! body filters pingora runs on an upgraded connection. Other upgrades
//! are ordinary unknown paths (passed or refused by the policy).

use super::admission::{header_str, permit};
use super::context::Ctx;
use super::Gateway;
use crate::datapath::dialect::Dialect;
use crate::datapath::identity::Identity;
use crate::datapath::inspect_slots::Surface;
use crate::datapath::ws::WsConn;
use crate::decision::Policy;
use bytes::Bytes;
use pingora::http::ResponseHeader;
use pingora::prelude::*;
use pingora::proxy::Session;
use std::sync::Arc;

/// `Upgrade: websocket` on a GET.
fn is_websocket_upgrade(session: &Session) -> bool {
    session.req_header().method == "GET"
        && header_str(session, "upgrade").is_some_and(|u| {
            u.split(',')
                .any(|p| p.trim().eq_ignore_ascii_case("websocket"))
        })
}

impl Gateway {
    /// Start inspecting a Responses WebSocket; false when this request is
    /// not one (it then goes on as any other request).
    pub(super) fn ws_begin(
        &self,
        session: &Session,
        ctx: &mut Ctx,
        policy: &Arc<Policy>,
        identity: &Identity,
    ) -> bool {
        let Some(route) = ctx.route.clone() else {
            return false;
        };
        if !is_websocket_upgrade(session)
            || Dialect::detect(route.api, "POST", &ctx.path) != Dialect::OpenaiResponses
        {
            return false;
        }
        let permit = permit(header_str(session, &policy.file.approvals.permit_header));
        ctx.dialect = Dialect::OpenaiResponses;
        ctx.ws = Some(Box::new(WsConn::new(
            self.app.clone(),
            policy.clone(),
            &route.name,
            &ctx.path,
            &ctx.id,
            identity.clone(),
            permit,
        )));
        true
    }

    /// The upstream answered the upgrade. Not a 101: an ordinary response
    /// (inspected as such). A 101 accepting an extension the gateway did
    /// not offer: its frames will carry extension bits and be refused.
    pub(super) fn ws_upstream_response(
        &self,
        resp: &mut ResponseHeader,
        ctx: &mut Ctx,
    ) -> Result<bool> {
        if ctx.ws.is_none() {
            return Ok(false);
        }
        if resp.status.as_u16() != 101 {
            ctx.ws = None;
            return Ok(false);
        }
        resp.remove_header("sec-websocket-extensions");
        resp.insert_header("x-asg-stream-inspection", "on")?;
        Ok(true)
    }

    /// Client bytes of an upgraded connection: judged; what may go on is
    /// left in `body`, refusals are written back to the client (after their
    /// audit record is durable). False when this is not a WebSocket.
    pub(super) async fn ws_client_bytes(
        &self,
        session: &mut Session,
        body: &mut Option<Bytes>,
        end_of_stream: bool,
        ctx: &mut Ctx,
    ) -> Result<bool> {
        let Some(ws) = ctx.ws.as_mut() else {
            return Ok(false);
        };
        if !session.was_upgraded() {
            return Ok(true);
        }
        let Some(chunk) = body.take() else {
            return Ok(true);
        };
        // Client messages are judged like request bodies, so they take an
        // inspection slot too (a connection of a closed gateway reads nothing).
        let slot = if ws.is_closed() {
            Ok(None)
        } else {
            self.app
                .inspect_slots
                .acquire(Surface::WebSocket)
                .await
                .map(Some)
        };
        let out = match slot {
            Ok(_slot) => ws.client_bytes(&chunk),
            Err(_) => ws.refuse_busy(),
        };
        *body = if out.upstream.is_empty() && end_of_stream {
            None
        } else {
            // An empty chunk holds back without ending the upstream side.
            Some(out.upstream.freeze())
        };
        if !out.client.is_empty() {
            if out.refused {
                if let Err(e) = self.app.store.durable().await {
                    tracing::error!(error = %e, "audit record not durable");
                }
            }
            session
                .write_response_body(Some(out.client.freeze()), false)
                .await?;
        }
        Ok(true)
    }

    /// Server bytes of an upgraded connection: rewritten. False when this
    /// is not a WebSocket.
    pub(super) fn ws_server_bytes(
        &self,
        body: &mut Option<Bytes>,
        end_of_stream: bool,
        ctx: &mut Ctx,
    ) -> bool {
        let Some(ws) = ctx.ws.as_mut() else {
            return false;
        };
        let out = match body.take() {
            Some(chunk) => ws.server_bytes(&chunk),
            None => Bytes::new(),
        };
        *body = (!out.is_empty() || !end_of_stream).then_some(out);
        if end_of_stream {
            // Before the connection's record is sealed with the last chunk.
            self.ws_close(ctx);
        }
        true
    }

    /// The connection ended: its turns are sealed; the connection's own
    /// record says how many there were.
    pub(super) fn ws_close(&self, ctx: &mut Ctx) {
        let Some(mut ws) = ctx.ws.take() else {
            return;
        };
        ws.finish();
        let (frames, busy) = ws.cost();
        if frames > 0 {
            self.app
                .metrics
                .inspect_latency
                .with_label_values(&["websocket"])
                .observe(busy.as_secs_f64());
        }
        ctx.reports.push(ws.summary());
    }
}
