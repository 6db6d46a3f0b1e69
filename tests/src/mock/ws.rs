//! The Responses WebSocket transport (`GET /v1/responses` with `Upgrade:
//! websocket`): each `response.create` text frame is answered with the same
//! events the SSE stream carries, one JSON event per text frame. Knobs come
//! from the upgrade request's `x-mock-*` headers (and prompt directives,
//! see [`super::script`]). `--no-websocket` makes the mock answer the
//! upgrade with 404, like a server that only speaks SSE.

use super::body::MockBody;
use super::scenario::Knobs;
use super::{openai_responses, State};
use futures_util::{SinkExt, StreamExt};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

pub fn is_upgrade(req: &Request<Incoming>) -> bool {
    req.headers()
        .get("upgrade")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
}

/// Answer the upgrade with 101 and serve the connection in a task.
pub(crate) fn accept(state: Arc<State>, mut req: Request<Incoming>, id: u64) -> Response<MockBody> {
    let Some(key) = req.headers().get("sec-websocket-key").cloned() else {
        return super::mock_error(StatusCode::BAD_REQUEST, "missing sec-websocket-key")
            .into_response(&Default::default());
    };
    let knobs = Knobs::from_headers(req.headers());
    let headers = req.headers().clone();
    let on_upgrade = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        let Ok(upgraded) = on_upgrade.await else {
            return;
        };
        let ws = WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, None).await;
        serve(state, ws, knobs, headers, id).await;
    });
    let mut resp = super::body::Plan::empty(StatusCode::SWITCHING_PROTOCOLS)
        .into_response(&Default::default());
    let h = resp.headers_mut();
    h.remove("content-length");
    h.insert("upgrade", "websocket".parse().expect("static"));
    h.insert("connection", "Upgrade".parse().expect("static"));
    h.insert(
        "sec-websocket-accept",
        derive_accept_key(key.as_bytes()).parse().expect("base64"),
    );
    resp
}

async fn serve<S>(
    state: Arc<State>,
    mut ws: WebSocketStream<S>,
    knobs: Result<Knobs, String>,
    headers: hyper::HeaderMap,
    conn: u64,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    while let Some(Ok(msg)) = ws.next().await {
        let text = match msg {
            Message::Text(t) => t.to_string(),
            Message::Close(_) => break,
            Message::Binary(_) => {
                let _ = ws
                    .send(Message::Text(
                        error_event(400, "binary frames are not accepted").into(),
                    ))
                    .await;
                continue;
            }
            _ => continue,
        };
        let id = state.next_id.fetch_add(1, Ordering::Relaxed);
        state.log.record(
            id,
            "WS",
            &format!("/v1/responses#ws{conn}"),
            &headers,
            text.as_bytes(),
        );
        let Ok(req) = serde_json::from_str::<Value>(&text) else {
            let _ = ws
                .send(Message::Text(error_event(400, "invalid JSON").into()))
                .await;
            continue;
        };
        if req["type"] != "response.create" {
            continue;
        }
        let k = match &knobs {
            Ok(k) => super::script::apply(k.clone(), super::script::Dialect::Responses, &req),
            Err(e) => {
                let _ = ws.send(Message::Text(error_event(400, e).into())).await;
                continue;
            }
        };
        let mut req = req;
        req["stream"] = Value::Bool(true);
        let plan = openai_responses::respond(&req, &k, id);
        for piece in plan.pieces {
            let s = String::from_utf8_lossy(&piece);
            let Some(data) = s.lines().find_map(|l| l.strip_prefix("data: ")) else {
                continue;
            };
            if !k.transport.delay.is_zero() {
                tokio::time::sleep(k.transport.delay).await;
            }
            if ws
                .send(Message::Text(data.to_string().into()))
                .await
                .is_err()
            {
                return;
            }
        }
    }
}

/// The API's WebSocket error event.
fn error_event(status: u16, message: &str) -> String {
    serde_json::json!({"type": "error", "status": status,
                       "error": {"type": "invalid_request_error", "message": message}})
    .to_string()
}
