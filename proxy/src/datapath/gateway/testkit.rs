//! What the gateway's unit tests share: a gateway over a fresh store, a
//! pingora session read from an in-memory client, a bare context.

use super::context::Ctx;
use super::Gateway;
use crate::config::{Config, RouteConfig};
use crate::datapath::dialect::ApiKind;
use crate::datapath::timeouts::Timeouts;
use crate::decision::types::{DetectorId, Finding, Severity};
use pingora::proxy::Session;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

fn route(name: &str, prefix: &str, api: ApiKind) -> RouteConfig {
    RouteConfig {
        name: name.into(),
        prefix: prefix.into(),
        host: None,
        upstream: "http://127.0.0.1:9".into(),
        api,
        strip_prefix: false,
        tool_name: None,
    }
}

/// A gateway over a fresh store, with an OpenAI and an MCP route and
/// nothing at `/`. Its store's folder goes when the test is done.
pub(super) struct TestGateway {
    gw: Gateway,
    dir: std::path::PathBuf,
}

impl std::ops::Deref for TestGateway {
    type Target = Gateway;
    fn deref(&self) -> &Gateway {
        &self.gw
    }
}

impl Drop for TestGateway {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub(super) fn gateway() -> TestGateway {
    let dir = std::env::temp_dir().join(format!(
        "asg-gateway-test-{}",
        uuid::Uuid::new_v4().simple()
    ));
    let config = Config {
        data_dir: dir.clone(),
        policy: "dev".to_string(),
        policy_dir: std::path::PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../policies")),
        routes: vec![
            route("openai", "/v1/chat", ApiKind::Openai),
            route("tools", "/mcp", ApiKind::Mcp),
        ],
        ..Config::default()
    };
    let gw = Gateway::new(crate::app::App::build(config).unwrap());
    TestGateway { gw, dir }
}

/// A pingora session that has read `raw` (head and body) from a client.
pub(super) async fn session(raw: &str) -> (Session, DuplexStream) {
    let (mut client, server) = tokio::io::duplex(1 << 20);
    client.write_all(raw.as_bytes()).await.unwrap();
    let mut s = Session::new_h1(Box::new(server));
    assert!(s.read_request().await.unwrap());
    (s, client)
}

/// What the client received: the gateway's own answer, head and body
/// (read until `Content-Length` bytes followed the head), in lower case.
pub(super) async fn answer(client: &mut DuplexStream) -> String {
    let mut got = Vec::new();
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let text = String::from_utf8_lossy(&got).to_lowercase();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let len = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length: "))
                .and_then(|v| v.trim().parse::<usize>().ok());
            if len.is_some_and(|n| body.len() >= n) {
                return text;
            }
        }
        let n = client.read(&mut buf).await.unwrap();
        assert!(n > 0, "the answer ended early: {text}");
        got.extend_from_slice(&buf[..n]);
    }
}

pub(super) fn ctx() -> Ctx {
    Ctx::new(Timeouts {
        connect: Duration::from_secs(1),
        first_byte: Duration::from_secs(2),
        idle: Duration::from_secs(3),
        total: Duration::from_secs(4),
    })
}

pub(super) fn finding(rule: &str) -> Finding {
    Finding::new(
        rule,
        DetectorId::SecretLeakage,
        "secret",
        Severity::High,
        0.9,
        format!("{rule} matched"),
    )
    .at("user")
    .with_evidence("AKIA…")
}
