//! TLS interception costs: minting a leaf for a new host, finding a cached
//! one, and a full in-memory TLS 1.3 handshake (client and server CPU) with a
//! freshly minted leaf versus a cached one.
//!
//! `cargo bench -p asg --bench interception`

use asg::datapath::tls::{ca, CaPaths, Interceptor, LeafMinter};
use criterion::{criterion_group, criterion_main, Criterion};
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, ServerConnection};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

fn setup() -> (Interceptor, Arc<ClientConfig>, std::path::PathBuf) {
    let dir = std::env::temp_dir().join(format!("asg-bench-ca-{}", std::process::id()));
    let paths = CaPaths {
        cert: dir.join("ca.pem"),
        key: dir.join("ca.key"),
        bundle: dir.join("bundle.pem"),
        default_location: true,
    };
    let ca = ca::create(&paths, true).expect("create CA");
    let mut roots = RootCertStore::empty();
    roots
        .add(CertificateDer::from(ca.cert_der.to_vec()))
        .unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut client = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    client.resumption = rustls::client::Resumption::disabled();
    let minter = LeafMinter::new(ca, 4096).unwrap();
    (
        Interceptor::new(Arc::new(minter)).unwrap(),
        Arc::new(client),
        dir,
    )
}

/// Drive both ends in memory until the handshake is done.
fn handshake(tls: &Interceptor, client_cfg: &Arc<ClientConfig>, host: &str) {
    let (cfg, _) = tls.config_for(host);
    let mut server = ServerConnection::new(cfg).unwrap();
    let name = ServerName::try_from(host.to_string()).unwrap();
    let mut client = ClientConnection::new(client_cfg.clone(), name).unwrap();
    let mut buf = Vec::with_capacity(8192);
    while client.is_handshaking() || server.is_handshaking() {
        buf.clear();
        client.write_tls(&mut buf).unwrap();
        if !buf.is_empty() {
            server.read_tls(&mut &buf[..]).unwrap();
            server.process_new_packets().unwrap();
        }
        buf.clear();
        server.write_tls(&mut buf).unwrap();
        if !buf.is_empty() {
            client.read_tls(&mut &buf[..]).unwrap();
            client.process_new_packets().unwrap();
        }
    }
}

fn bench(c: &mut Criterion) {
    let (tls, client, dir) = setup();
    let n = AtomicU64::new(0);
    let fresh = || format!("h{}.bench.test", n.fetch_add(1, Ordering::Relaxed));
    c.bench_function("leaf/mint new host", |b| {
        b.iter(|| tls.minter().get(&fresh()).unwrap())
    });
    tls.minter().get("api.openai.com").unwrap();
    c.bench_function("leaf/cached host", |b| {
        b.iter(|| tls.minter().get("api.openai.com").unwrap())
    });
    c.bench_function("handshake/new host (leaf minted)", |b| {
        b.iter(|| handshake(&tls, &client, &fresh()))
    });
    c.bench_function("handshake/cached host", |b| {
        b.iter(|| handshake(&tls, &client, "api.openai.com"))
    });
    std::fs::remove_dir_all(dir).ok();
}

criterion_group!(benches, bench);
criterion_main!(benches);
