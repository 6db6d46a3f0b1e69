//! The upstream side: which peer a request connects to and with what
//! timeouts, and the request head as the upstream gets it (path
//! rewritten, gateway-only headers scrubbed, body framing).

use super::context::{Ctx, RequestBody};
use super::Gateway;
use crate::datapath::timeouts::Timeouts;
use http::Uri;
use pingora::prelude::*;
use pingora::proxy::Session;
use pingora::upstreams::peer::PeerOptions;
use std::time::{Duration, Instant};

/// Headers meant for the gateway only; the approval permit header (which
/// a policy may rename) is dropped as well.
const GATEWAY_ONLY: [&str; 5] = [
    "x-asg-session-id",
    "x-asg-agent-id",
    "x-asg-permit",
    "proxy-connection",
    "proxy-authorization",
];

/// Connection timeouts from the configured limits.
fn set_timeouts(options: &mut PeerOptions, t: &Timeouts) {
    options.connection_timeout = Some(t.connect);
    // TCP plus the TLS handshake.
    options.total_connection_timeout = Some(t.connect + Duration::from_secs(5));
    // The watchdog enforces the deadlines; pingora's per-read timeout
    // is only a backstop behind it.
    options.read_timeout = Some(t.first_byte.max(t.idle) + Duration::from_secs(5));
    options.write_timeout = Some(t.idle);
    options.idle_timeout = Some(Duration::from_secs(60));
}

/// The path and query the upstream gets: the cleaned path (query kept)
/// when the client spelled an inspected path unusually, else the client's.
fn path_and_query(clean_path: Option<&str>, uri: &Uri, fallback: &str) -> String {
    match (clean_path, uri.query()) {
        (Some(p), Some(q)) => format!("{p}?{q}"),
        (Some(p), None) => p.to_string(),
        (None, _) => uri
            .path_and_query()
            .map(|p| p.as_str().to_string())
            .unwrap_or_else(|| fallback.to_string()),
    }
}

/// Drop what only the gateway reads, and what would keep it from reading
/// the answer: compressed answers of inspected routes, WebSocket
/// extensions (compressed frames could not be read; the upstream then
/// speaks plain frames).
fn scrub(req: &mut RequestHeader, permit_header: Option<&str>, inspected: bool, ws: bool) {
    if let Some(h) = permit_header {
        req.remove_header(h);
    }
    for name in GATEWAY_ONLY {
        req.remove_header(name);
    }
    if inspected {
        req.remove_header("accept-encoding");
    }
    if ws {
        req.remove_header("sec-websocket-extensions");
    }
}

/// Frame the body as it will be sent: a judged replacement has its own
/// length; a collected body's length is known only after inspection, so
/// pingora must be told to chunk (without Content-Length it would send
/// an empty body).
fn frame_body(req: &mut RequestHeader, body: &RequestBody) -> Result<()> {
    match body {
        RequestBody::Prefetched {
            forward: Some(body),
        } => {
            req.remove_header("content-encoding");
            req.remove_header("transfer-encoding");
            req.insert_header("content-length", body.len().to_string())?;
        }
        RequestBody::Collecting { .. } => {
            req.remove_header("content-encoding");
            req.remove_header("content-length");
            req.insert_header("transfer-encoding", "chunked")?;
        }
        _ => {}
    }
    Ok(())
}

impl Gateway {
    /// The upstream peer of a routed request, with its timeouts.
    pub(super) async fn peer(&self, ctx: &mut Ctx) -> Result<Box<HttpPeer>> {
        let route = ctx.route.clone().expect("route chosen in request_filter");
        let up = &route.upstream;
        // Forward mode connects where the client asked, never to route.upstream.
        let (resolved, tls, sni) = match &ctx.forward {
            Some(_) => self.forward_destination(ctx).await?,
            None => (
                self.app.resolver.resolve(&up.host, up.port).await,
                up.tls,
                up.host.clone(),
            ),
        };
        let addr = match resolved {
            Ok(a) => a,
            Err(msg) => {
                self.app
                    .metrics
                    .upstream_errors
                    .with_label_values(&[route.name.as_str(), "dns"])
                    .inc();
                return Error::e_explain(ConnectNoRoute, msg);
            }
        };
        let mut peer = HttpPeer::new(addr, tls, sni);
        self.app.forwarding.tune_peer(&mut peer);
        set_timeouts(&mut peer.options, ctx.watch.limits());
        Ok(Box::new(peer))
    }

    /// The request head as the upstream gets it.
    pub(super) fn rewrite_request(
        &self,
        session: &Session,
        req: &mut RequestHeader,
        ctx: &mut Ctx,
    ) -> Result<()> {
        let route = ctx.route.clone().expect("route chosen in request_filter");
        let uri = &session.req_header().uri;
        let path_and_query = path_and_query(ctx.clean_path.as_deref(), uri, &ctx.path);
        if ctx.forward.is_some() {
            // Forward mode: origin-form, and the client's own Host header.
            req.set_uri(
                path_and_query
                    .parse()
                    .map_err(|_| Error::explain(InternalError, "bad request path"))?,
            );
            self.app.forwarding.add_via(req)?;
        } else {
            let target = route.upstream_path(&path_and_query);
            req.set_uri(
                target
                    .parse()
                    .map_err(|_| Error::explain(InternalError, "bad upstream path"))?,
            );
            req.insert_header("host", route.upstream.host_header())?;
        }
        if let Some(tr) = ctx.trace.as_mut() {
            let address = match &ctx.forward {
                Some(t) => t.authority(),
                None => route.upstream.address(),
            };
            for (k, v) in tr.upstream_start(&address) {
                req.insert_header(k, v)?;
            }
        }
        let permit = ctx
            .policy
            .as_ref()
            .map(|p| p.file.approvals.permit_header.as_str());
        scrub(req, permit, ctx.dialect.is_inspected(), ctx.ws.is_some());
        frame_body(req, &ctx.req)?;
        ctx.upstream_sent = Some(Instant::now());
        ctx.watch.request_sent();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::{Bytes, BytesMut};

    fn header(req: &RequestHeader, name: &str) -> Option<String> {
        req.headers
            .get(name)
            .map(|v| v.to_str().unwrap().to_string())
    }

    fn request(headers: &[(&'static str, &'static str)]) -> RequestHeader {
        let mut req = RequestHeader::build("POST", b"/v1/chat/completions", None).unwrap();
        for (k, v) in headers {
            req.insert_header(*k, *v).unwrap();
        }
        req
    }

    #[test]
    fn peers_get_the_configured_timeouts_with_backstops() {
        let t = Timeouts {
            connect: Duration::from_secs(3),
            first_byte: Duration::from_secs(120),
            idle: Duration::from_secs(30),
            total: Duration::from_secs(600),
        };
        let mut o = PeerOptions::new();
        set_timeouts(&mut o, &t);
        assert_eq!(o.connection_timeout, Some(Duration::from_secs(3)));
        assert_eq!(o.total_connection_timeout, Some(Duration::from_secs(8)));
        assert_eq!(o.read_timeout, Some(Duration::from_secs(125)));
        assert_eq!(o.write_timeout, Some(Duration::from_secs(30)));
        assert_eq!(o.idle_timeout, Some(Duration::from_secs(60)));
    }

    #[test]
    fn a_cleaned_path_keeps_the_clients_query() {
        let uri: Uri = "/v1//chat/completions?key=k&x=1".parse().unwrap();
        assert_eq!(
            path_and_query(Some("/v1/chat/completions"), &uri, "/fallback"),
            "/v1/chat/completions?key=k&x=1"
        );
        let uri: Uri = "/v1//chat/completions".parse().unwrap();
        assert_eq!(
            path_and_query(Some("/v1/chat/completions"), &uri, "/fallback"),
            "/v1/chat/completions"
        );
        assert_eq!(
            path_and_query(None, &uri, "/fallback"),
            "/v1//chat/completions"
        );
        let absolute: Uri = "http://api.example".parse().unwrap();
        assert_eq!(path_and_query(None, &absolute, "/fallback"), "/");
    }

    #[test]
    fn gateway_headers_never_reach_the_upstream() {
        let mut req = request(&[
            ("x-asg-session-id", "s"),
            ("x-asg-agent-id", "a"),
            ("x-asg-permit", "p"),
            ("x-approval-permit", "p2"),
            ("proxy-authorization", "Basic eA=="),
            ("proxy-connection", "keep-alive"),
            ("accept-encoding", "gzip"),
            ("sec-websocket-extensions", "permessage-deflate"),
            ("authorization", "Bearer sk"),
        ]);
        scrub(&mut req, Some("x-approval-permit"), false, false);
        for gone in GATEWAY_ONLY.iter().chain(&["x-approval-permit"]) {
            assert_eq!(header(&req, gone), None, "{gone}");
        }
        // Not inspected, not a WebSocket: the client's offers stand.
        assert_eq!(header(&req, "accept-encoding").as_deref(), Some("gzip"));
        assert!(header(&req, "sec-websocket-extensions").is_some());
        assert_eq!(header(&req, "authorization").as_deref(), Some("Bearer sk"));
        scrub(&mut req, None, true, true);
        assert_eq!(header(&req, "accept-encoding"), None);
        assert_eq!(header(&req, "sec-websocket-extensions"), None);
    }

    #[test]
    fn bodies_are_framed_as_they_will_be_sent() {
        let mut req = request(&[("content-encoding", "gzip"), ("content-length", "99")]);
        let rewritten = RequestBody::Prefetched {
            forward: Some(Bytes::from_static(b"{\"a\":1}")),
        };
        frame_body(&mut req, &rewritten).unwrap();
        assert_eq!(header(&req, "content-length").as_deref(), Some("7"));
        assert_eq!(header(&req, "content-encoding"), None);
        let mut req = request(&[("content-encoding", "gzip"), ("content-length", "99")]);
        frame_body(
            &mut req,
            &RequestBody::Collecting {
                buf: BytesMut::new(),
            },
        )
        .unwrap();
        assert_eq!(header(&req, "content-length"), None);
        assert_eq!(
            header(&req, "transfer-encoding").as_deref(),
            Some("chunked")
        );
        // The buffered body is replayed as it came.
        let mut req = request(&[("content-encoding", "gzip"), ("content-length", "99")]);
        let original = RequestBody::Prefetched { forward: None };
        frame_body(&mut req, &original).unwrap();
        assert_eq!(header(&req, "content-length").as_deref(), Some("99"));
        assert_eq!(header(&req, "content-encoding").as_deref(), Some("gzip"));
    }
}
