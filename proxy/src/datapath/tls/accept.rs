//! Server-side TLS for intercepted connections: a rustls configuration per
//! connection whose certificate resolver mints (or finds) the leaf for the
//! ClientHello's SNI, falling back to the CONNECT host or the pre-redirect
//! destination when the client sends no SNI (IP targets).
//!
//! Per-connection configurations are clones of one template, so they share
//! its session cache and ticket keys: a client that comes back resumes
//! without a full handshake.

use super::leaf::{LeafMinter, LeafSource};
use super::TlsError;
use rustls::server::{ClientHello, ResolvesServerCert, ServerConfig, ServerSessionMemoryCache};
use rustls::sign::CertifiedKey;
use std::sync::{Arc, Mutex};

pub struct Interceptor {
    minter: Arc<LeafMinter>,
    template: ServerConfig,
}

/// What the resolver did during one handshake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolution {
    /// The handshake has not asked for a certificate (yet).
    Pending,
    Leaf {
        name: String,
        source: LeafSource,
    },
    Failed(String),
}

/// The resolver of one connection.
#[derive(Debug)]
pub struct ConnResolver {
    minter: Arc<LeafMinter>,
    fallback: String,
    outcome: Mutex<Resolution>,
}

impl ConnResolver {
    pub fn outcome(&self) -> Resolution {
        self.outcome
            .lock()
            .map(|o| o.clone())
            .unwrap_or(Resolution::Pending)
    }
}

impl ResolvesServerCert for ConnResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let name = hello.server_name().unwrap_or(&self.fallback).to_string();
        let (result, outcome) = match self.minter.get(&name) {
            Ok((key, source)) => (Some(key), Resolution::Leaf { name, source }),
            Err(e) => (None, Resolution::Failed(e.to_string())),
        };
        if let Ok(mut o) = self.outcome.lock() {
            *o = outcome;
        }
        result
    }
}

/// Answers no handshake; replaced in every per-connection clone.
#[derive(Debug)]
struct NoCertificate;

impl ResolvesServerCert for NoCertificate {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        None
    }
}

impl Interceptor {
    pub fn new(minter: Arc<LeafMinter>) -> Result<Interceptor, TlsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut template = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::Accept(format!("TLS configuration: {e}")))?
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(NoCertificate));
        // HTTP/1.1 inside the tunnel: the proxy inspects per request.
        template.alpn_protocols = vec![b"http/1.1".to_vec()];
        template.session_storage = ServerSessionMemoryCache::new(4096);
        template.ticketer = rustls::crypto::ring::Ticketer::new()
            .map_err(|e| TlsError::Accept(format!("TLS ticket keys: {e}")))?;
        Ok(Interceptor { minter, template })
    }

    /// A configuration for one connection; `fallback` names the leaf when the
    /// client sends no SNI.
    pub fn config_for(&self, fallback: &str) -> (Arc<ServerConfig>, Arc<ConnResolver>) {
        let resolver = Arc::new(ConnResolver {
            minter: self.minter.clone(),
            fallback: fallback.to_string(),
            outcome: Mutex::new(Resolution::Pending),
        });
        let mut cfg = self.template.clone();
        cfg.cert_resolver = resolver.clone();
        (Arc::new(cfg), resolver)
    }

    pub fn minter(&self) -> &LeafMinter {
        &self.minter
    }
}
