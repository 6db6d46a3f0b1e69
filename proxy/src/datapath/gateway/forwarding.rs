//! The gateway's forward-mode steps: admitting a request by the
//! `[connect]` policy and choosing where it connects. Kept apart from the
//! reverse-mode hooks they plug into.

use super::context::Ctx;
use super::errors::Denial;
use super::Gateway;
use crate::datapath::dialect::ErrorKind;
use crate::datapath::enforce::StageReport;
use crate::datapath::forward::{Admission, Unreachable};
use pingora::prelude::*;
use pingora::proxy::Session;
use std::net::SocketAddr;

impl Gateway {
    /// Find this request's forward target (if it is forward-mode traffic)
    /// and apply the policy. `None`: the gateway has answered (refused).
    pub(super) async fn admit_forward(
        &self,
        session: &mut Session,
        ctx: &mut Ctx,
        host_header: Option<&str>,
    ) -> Result<Option<Admission>> {
        let policy = ctx.policy.clone().expect("policy pinned in request_filter");
        ctx.forward = match self.app.forwarding.target_of(session) {
            Ok(t) => t,
            Err(msg) => {
                self.refuse(session, ctx, ErrorKind::InvalidRequest, &msg.to_string())
                    .await?;
                return Ok(None);
            }
        };
        let Some(t) = ctx.forward.as_mut() else {
            return Ok(Some(Admission::Inspect));
        };
        let admission = self
            .app
            .forwarding
            .admit(t, &policy, host_header, &self.app.metrics);
        if let Admission::Deny(msg) = &admission {
            self.refuse(session, ctx, ErrorKind::Blocked, msg).await?;
            return Ok(None);
        }
        if self.app.forwarding.is_loop(session) {
            self.app
                .metrics
                .forward
                .failures
                .with_label_values(&[t.mode.as_str(), "loop"])
                .inc();
            let msg = format!(
                "proxy loop: this request to {} came back to the gateway; exclude the gateway's uid or SO_MARK from the redirect rules",
                t.authority()
            );
            self.refuse(session, ctx, ErrorKind::BadGateway, &msg)
                .await?;
            return Ok(None);
        }
        Ok(Some(admission))
    }

    /// Where a forward-mode request connects: (address or resolution error,
    /// TLS, SNI). A loop or a destination the policy does not allow is the
    /// gateway's own answer, not an upstream failure.
    pub(super) async fn forward_destination(
        &self,
        ctx: &mut Ctx,
    ) -> Result<(std::result::Result<SocketAddr, String>, bool, String)> {
        let t = ctx.forward.as_ref().expect("forward-mode request");
        let (tls, sni) = (t.tls, t.host.clone());
        match self
            .app
            .forwarding
            .upstream_addr(t, &self.app.resolver)
            .await
        {
            Ok(addr) => Ok((Ok(addr), tls, sni)),
            Err(Unreachable::Resolve(msg)) => Ok((Err(msg), tls, sni)),
            Err(why) => {
                self.app
                    .metrics
                    .forward
                    .failures
                    .with_label_values(&[t.mode.as_str(), why.reason()])
                    .inc();
                let kind = if why.status() == 403 {
                    ErrorKind::Blocked
                } else {
                    ErrorKind::BadGateway
                };
                let msg = why.to_string();
                ctx.reports.push(StageReport::refused(&msg));
                ctx.denial = Some(Denial {
                    status: why.status(),
                    ..Denial::new(ctx, kind, &msg)
                });
                Error::e_explain(HTTPStatus(why.status()), msg)
            }
        }
    }
}
