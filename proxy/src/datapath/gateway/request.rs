//! `request_filter`'s steps: who is calling, forward-mode admission, the
//! route and dialect, the session layer, and the request body's plan (a
//! small body is read and judged here, before the upstream is contacted).

use super::admission::{self, header_str, BodyHead, BodyRead, Refusal, PREFETCH_LIMIT};
use super::context::{Ctx, RequestBody};
use super::Gateway;
use crate::datapath::dialect::{Dialect, ErrorKind};
use crate::datapath::forward::Admission;
use crate::datapath::identity::Identity;
use crate::datapath::path_norm;
use crate::datapath::session_gate::SessionGate;
use crate::decision::Policy;
use bytes::BytesMut;
use pingora::prelude::*;
use pingora::proxy::Session;
use std::sync::Arc;

impl Gateway {
    /// Admit a request: `true` when the gateway has answered it itself,
    /// `false` when pingora proxies it on.
    pub(super) async fn admit(&self, session: &mut Session, ctx: &mut Ctx) -> Result<bool> {
        if let Some(t) = crate::telemetry::global() {
            let req = session.req_header();
            ctx.trace = Some(Box::new(t.begin(
                req.method.as_str(),
                req.uri.path(),
                &req.headers,
            )));
        }
        let policy = self.app.policy.current();
        let (method, path) = {
            let req = session.req_header();
            (req.method.as_str().to_string(), req.uri.path().to_string())
        };
        ctx.path = path.clone();
        let identity = self.identify(session, &policy).await;
        ctx.session_id = identity.session_id.clone();
        ctx.agent_id = identity.agent_id.clone();
        let host = header_str(session, "host").map(str::to_string);
        ctx.policy = Some(policy.clone());

        // Forward proxy: the client chose the destination; the
        // `[connect]` policy says whether to inspect, pass or refuse it.
        let Some(admission) = self.admit_forward(session, ctx, host.as_deref()).await? else {
            return Ok(true);
        };
        // Routed on every reading of the path an upstream might use.
        let norm = match path_norm::normalize(&path) {
            Ok(n) => n,
            Err(e) => {
                let msg = e.to_string();
                return self
                    .refuse(session, ctx, ErrorKind::InvalidRequest, &msg)
                    .await;
            }
        };
        let resolved = match &ctx.forward {
            Some(t) => self
                .app
                .forwarding
                .routes
                .resolve(Some(&t.host), &method, &norm),
            None => self.app.routes.resolve(host.as_deref(), &method, &norm),
        };
        let Some((route, dialect, reading)) = resolved else {
            let msg = format!("no route for {path}");
            return self.refuse(session, ctx, ErrorKind::NotFound, &msg).await;
        };
        ctx.dialect = dialect;
        let api = route.api;
        let mcp_control = admission::mcp_control(api, &method);
        ctx.route = Some(route);
        if admission == Admission::Pass {
            ctx.dialect = Dialect::Passthrough;
            return Ok(false);
        }
        if let Some(clean) = admission::clean_path(&norm, api, dialect, reading) {
            ctx.path = clean.clone();
            ctx.clean_path = Some(clean);
        }
        if self.ws_begin(session, ctx, &policy, &identity) {
            return Ok(false);
        }
        if let Some(dialect) = mcp_control {
            ctx.dialect = dialect;
            return Ok(false);
        }

        if !ctx.dialect.is_inspected() {
            let rule = policy.file.proxy.unknown_paths;
            return match admission::unknown_path(rule, &method, &path) {
                Some(r) => self.refuse_with(session, ctx, r).await,
                None => Ok(false),
            };
        }
        let permit = admission::permit(header_str(session, &policy.file.approvals.permit_header));
        let route_name = ctx.route.as_ref().map_or("", |r| r.name.as_str());
        ctx.gate = Some(Arc::new(SessionGate::new(
            self.app.clone(),
            policy.clone(),
            ctx.dialect,
            route_name,
            &ctx.id,
            identity,
            permit,
        )));

        let plan = match admission::plan_body(&BodyHead::of(session), ctx.max_body_bytes()) {
            Ok(plan) => plan,
            Err(r) => return self.refuse_with(session, ctx, r).await,
        };
        ctx.encoding = plan.encoding;
        match plan.read {
            BodyRead::Prefetch(n) => self.prefetch(session, ctx, n).await,
            BodyRead::Collect => {
                ctx.req = RequestBody::Collecting {
                    buf: BytesMut::new(),
                };
                Ok(false)
            }
        }
    }

    /// Who is calling, in which session (completed from the body later).
    async fn identify(&self, session: &Session, policy: &Policy) -> Identity {
        let peer_addr = session.client_addr().and_then(|a| a.as_inet()).copied();
        let process = match (
            peer_addr,
            session.server_addr().and_then(|a| a.as_inet()).copied(),
        ) {
            (Some(p), Some(l))
                if policy.file.session.agent_from_process && self.app.proxy.agent_id.is_none() =>
            {
                crate::datapath::peer::process_of(p, l).await
            }
            _ => None,
        };
        Identity::from_headers(
            &policy.file.session,
            |name| header_str(session, name),
            self.app.proxy.agent_id.as_deref(),
            peer_addr,
            process.as_ref(),
        )
    }

    /// Read a small body whole (pingora keeps it to replay upstream) and
    /// judge it before the upstream is contacted.
    async fn prefetch(
        &self,
        session: &mut Session,
        ctx: &mut Ctx,
        declared: usize,
    ) -> Result<bool> {
        session.as_downstream_mut().enable_retry_buffering();
        let mut buf = BytesMut::with_capacity(declared);
        while let Some(chunk) = session.read_request_body().await? {
            buf.extend_from_slice(&chunk);
            if buf.len() > PREFETCH_LIMIT {
                let msg = "request body is longer than its Content-Length";
                return self
                    .refuse(session, ctx, ErrorKind::InvalidRequest, msg)
                    .await;
            }
        }
        match self.judge_request(session, ctx, buf.freeze()).await {
            Ok(forward) => {
                ctx.req = RequestBody::Prefetched { forward };
                Ok(false)
            }
            Err(d) => {
                self.answer(session, ctx, d.status, &d.body, d.reason)
                    .await?;
                Ok(true)
            }
        }
    }

    async fn refuse_with(&self, session: &mut Session, ctx: &mut Ctx, r: Refusal) -> Result<bool> {
        self.refuse(session, ctx, r.kind, &r.message).await
    }
}

#[cfg(test)]
mod tests {
    use super::super::testkit::{answer, gateway, session};
    use super::*;
    use crate::decision::Decision;

    fn post(path: &str, ct: &str, body: &str) -> String {
        format!(
            "POST {path} HTTP/1.1\r\nhost: gw\r\ncontent-type: {ct}\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        )
    }

    const CHAT: &str =
        r#"{"model":"m","messages":[{"role":"user","content":"What is the capital of France?"}]}"#;

    #[tokio::test]
    async fn a_small_body_is_judged_before_the_upstream_is_contacted() {
        let gw = gateway();
        let (mut s, _client) =
            session(&post("/v1/chat/completions", "application/json", CHAT)).await;
        let mut ctx = gw.new_ctx();
        assert!(!gw.admit(&mut s, &mut ctx).await.unwrap(), "proxied on");
        assert_eq!(ctx.dialect, Dialect::OpenaiChat);
        assert_eq!(ctx.route_name(), "openai");
        assert!(ctx.gate.is_some(), "inspected in a session");
        assert!(matches!(ctx.req, RequestBody::Prefetched { forward: None }));
        assert_eq!(ctx.reports.len(), 1);
        assert_eq!(ctx.decision(), Decision::Allow);
        assert_eq!(ctx.answered, None);
    }

    #[tokio::test]
    async fn a_large_or_chunked_body_is_collected_on_its_way() {
        let gw = gateway();
        let head = "POST /v1/chat/completions HTTP/1.1\r\nhost: gw\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n";
        let (mut s, _client) = session(head).await;
        let mut ctx = gw.new_ctx();
        assert!(!gw.admit(&mut s, &mut ctx).await.unwrap());
        assert!(matches!(ctx.req, RequestBody::Collecting { .. }));
        assert!(ctx.reports.is_empty(), "nothing judged yet");
    }

    #[tokio::test]
    async fn a_body_that_cannot_be_inspected_is_refused_and_audited() {
        let gw = gateway();
        let (mut s, mut client) = session(&post("/v1/chat/completions", "text/plain", "hi")).await;
        let mut ctx = gw.new_ctx();
        assert!(
            gw.admit(&mut s, &mut ctx).await.unwrap(),
            "answered by the gateway"
        );
        assert_eq!(ctx.answered, Some(415));
        assert!(ctx.audited);
        let got = answer(&mut client).await;
        assert!(got.starts_with("http/1.1 415"), "{got}");
        assert!(got.contains("x-asg-decision: block"), "{got}");
        assert!(
            got.contains(&format!("x-asg-request-id: {}", ctx.id)),
            "{got}"
        );
        assert!(got.contains("asg_unsupported_media_type"), "{got}");
        let last = gw.app.store.audit_tail(1).unwrap();
        assert_eq!(last[0].request_id, ctx.id);
        assert_eq!(
            (last[0].decision.as_str(), last[0].status),
            ("block", Some(415))
        );
    }

    #[tokio::test]
    async fn a_path_without_a_route_is_refused() {
        let gw = gateway();
        let (mut s, mut client) = session("GET /elsewhere HTTP/1.1\r\nhost: gw\r\n\r\n").await;
        let mut ctx = gw.new_ctx();
        assert!(gw.admit(&mut s, &mut ctx).await.unwrap());
        assert_eq!(ctx.answered, Some(404));
        let got = answer(&mut client).await;
        assert!(got.contains("no route for /elsewhere"), "{got}");
    }

    #[tokio::test]
    async fn mcp_control_requests_pass_without_a_body() {
        let gw = gateway();
        for (method, dialect) in [("GET", Dialect::Mcp), ("DELETE", Dialect::Passthrough)] {
            let raw = format!("{method} /mcp HTTP/1.1\r\nhost: gw\r\n\r\n");
            let (mut s, _client) = session(&raw).await;
            let mut ctx = gw.new_ctx();
            assert!(!gw.admit(&mut s, &mut ctx).await.unwrap(), "{method}");
            assert_eq!(ctx.dialect, dialect, "{method}");
            assert!(ctx.gate.is_none() && ctx.reports.is_empty(), "{method}");
        }
    }

    #[tokio::test]
    async fn an_unusual_spelling_is_judged_and_sent_clean() {
        let gw = gateway();
        let raw = post("/v1//chat/./completions", "application/json", CHAT);
        let (mut s, _client) = session(&raw).await;
        let mut ctx = gw.new_ctx();
        assert!(!gw.admit(&mut s, &mut ctx).await.unwrap());
        assert_eq!(ctx.dialect, Dialect::OpenaiChat);
        assert_eq!(ctx.clean_path.as_deref(), Some("/v1/chat/completions"));
        assert_eq!(ctx.path, "/v1/chat/completions");
    }
}
