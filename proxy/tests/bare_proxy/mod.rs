//! A bare pingora proxy service on a loopback port, for tests of the
//! vendored pingora-proxy through its public API.

use pingora::apps::ServerApp;
use pingora::protocols::l4::stream::Stream as L4Stream;
use pingora::proxy::{http_proxy, ProxyHttp};
use pingora::server::configuration::ServerConf;
use std::net::SocketAddr;
use std::sync::Arc;

/// Serve `service` on a fresh loopback port until the test's runtime ends.
pub async fn serve<SV>(service: SV) -> SocketAddr
where
    SV: ProxyHttp + Send + Sync + 'static,
    SV::CTX: Send + Sync,
{
    let proxy = Arc::new(http_proxy(&Arc::new(ServerConf::default()), service));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (_shutdown_tx, shutdown) = tokio::sync::watch::channel(false);
        while let Ok((conn, _)) = listener.accept().await {
            let (proxy, shutdown) = (proxy.clone(), shutdown.clone());
            tokio::spawn(async move {
                proxy
                    .process_new(Box::new(L4Stream::from(conn)), &shutdown)
                    .await;
            });
        }
    });
    addr
}
