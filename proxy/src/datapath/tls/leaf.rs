//! Per-host leaf certificates, minted on demand by the local CA and kept in
//! a bounded cache.
//!
//! All leaves share one P-256 key generated at startup and held only in
//! memory (as mitmproxy does): a leaf is then one ECDSA signature, and the
//! key is exactly as safe as the CA key beside it in the same process.

use super::ca::{random_serial, LocalCa};
use super::TlsError;
use rcgen::{
    CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::sign::{CertifiedKey, SigningKey};
use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a leaf is valid; it is re-minted after half of that.
const VALIDITY: Duration = Duration::from_secs(30 * 24 * 3600);
/// Clients' clocks may run behind.
const BACKDATE: Duration = Duration::from_secs(3600);

/// Whether a lookup minted a new leaf or found one (a metric label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeafSource {
    Minted,
    Cached,
}

impl LeafSource {
    pub fn as_str(self) -> &'static str {
        match self {
            LeafSource::Minted => "minted",
            LeafSource::Cached => "cached",
        }
    }
}

pub struct LeafMinter {
    issuer: Issuer<'static, KeyPair>,
    leaf_key: KeyPair,
    signing_key: Arc<dyn SigningKey>,
    chain: Vec<CertificateDer<'static>>,
    cache: Mutex<Cache>,
}

impl std::fmt::Debug for LeafMinter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LeafMinter").finish_non_exhaustive()
    }
}

struct Cache {
    map: HashMap<String, (Arc<CertifiedKey>, Instant)>,
    /// Insertion order, for evicting the oldest name first.
    order: VecDeque<String>,
    capacity: usize,
}

impl LeafMinter {
    pub fn new(ca: LocalCa, capacity: usize) -> Result<LeafMinter, TlsError> {
        let leaf_key = KeyPair::generate()
            .map_err(|e| TlsError::Leaf(format!("cannot generate the leaf key: {e}")))?;
        let der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der()));
        let signing_key = rustls::crypto::ring::default_provider()
            .key_provider
            .load_private_key(der)
            .map_err(|e| TlsError::Leaf(format!("cannot load the leaf key: {e}")))?;
        Ok(LeafMinter {
            issuer: ca.issuer,
            leaf_key,
            signing_key,
            chain: ca.chain,
            cache: Mutex::new(Cache {
                map: HashMap::new(),
                order: VecDeque::new(),
                capacity: capacity.max(1),
            }),
        })
    }

    /// The leaf for `name` (a DNS name or an IP literal), minted if needed.
    pub fn get(&self, name: &str) -> Result<(Arc<CertifiedKey>, LeafSource), TlsError> {
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        if let Ok(cache) = self.cache.lock() {
            if let Some((key, minted)) = cache.map.get(&name) {
                if minted.elapsed() < VALIDITY / 2 {
                    return Ok((key.clone(), LeafSource::Cached));
                }
            }
        }
        // Mint outside the lock: two handshakes racing for a new name both
        // mint, which is harmless; nobody waits behind a signature.
        let key = self.mint(&name)?;
        if let Ok(mut cache) = self.cache.lock() {
            cache.insert(name, key.clone());
        }
        Ok((key, LeafSource::Minted))
    }

    pub fn cached(&self) -> usize {
        self.cache.lock().map_or(0, |c| c.map.len())
    }

    fn mint(&self, name: &str) -> Result<Arc<CertifiedKey>, TlsError> {
        let mut params = CertificateParams::default();
        let san = match name.parse::<IpAddr>() {
            Ok(ip) => SanType::IpAddress(ip),
            Err(_) => {
                rustls::pki_types::DnsName::try_from(name).map_err(|_| {
                    TlsError::Leaf(format!(
                        "cannot mint a certificate for {name:?}: not a DNS name"
                    ))
                })?;
                SanType::DnsName(name.to_string().try_into().map_err(|e| {
                    TlsError::Leaf(format!("cannot mint a certificate for {name:?}: {e}"))
                })?)
            }
        };
        params.subject_alt_names = vec![san];
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, name);
        params.distinguished_name = dn;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.use_authority_key_identifier_extension = true;
        let now = time::OffsetDateTime::now_utc();
        params.not_before = now - BACKDATE;
        params.not_after = now + VALIDITY;
        params.serial_number = Some(rcgen::SerialNumber::from_slice(&random_serial()));
        let cert = params
            .signed_by(&self.leaf_key, &self.issuer)
            .map_err(|e| TlsError::Leaf(format!("cannot sign a certificate for {name:?}: {e}")))?;
        let mut chain = Vec::with_capacity(1 + self.chain.len());
        chain.push(cert.der().clone());
        chain.extend(self.chain.iter().cloned());
        Ok(Arc::new(CertifiedKey::new(chain, self.signing_key.clone())))
    }
}

impl Cache {
    fn insert(&mut self, name: String, key: Arc<CertifiedKey>) {
        if self
            .map
            .insert(name.clone(), (key, Instant::now()))
            .is_none()
        {
            self.order.push_back(name);
        }
        while self.map.len() > self.capacity {
            match self.order.pop_front() {
                Some(old) => {
                    self.map.remove(&old);
                }
                None => break,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::ca;
    use super::*;

    fn minter(capacity: usize) -> (LeafMinter, Vec<u8>, std::path::PathBuf) {
        let (paths, dir) = ca::temp_paths();
        let (ca, _) = ca::load_or_create(&paths).unwrap();
        let ca_der = ca.cert_der.to_vec();
        (LeafMinter::new(ca, capacity).unwrap(), ca_der, dir)
    }

    fn parse(key: &CertifiedKey) -> (String, Vec<String>) {
        let (_, x) = x509_parser::parse_x509_certificate(key.cert[0].as_ref()).unwrap();
        let sans = x
            .subject_alternative_name()
            .unwrap()
            .map(|e| {
                e.value
                    .general_names
                    .iter()
                    .map(|g| g.to_string())
                    .collect()
            })
            .unwrap_or_default();
        (x.issuer().to_string(), sans)
    }

    /// Verify a leaf the way a client does (webpki: chain, SAN, EKU, dates).
    fn client_accepts(ca_der: &[u8], leaf: &CertifiedKey, name: &str) -> Result<(), String> {
        use rustls::client::danger::ServerCertVerifier;
        let mut roots = rustls::RootCertStore::empty();
        roots.add(CertificateDer::from(ca_der.to_vec())).unwrap();
        let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(
            Arc::new(roots),
            Arc::new(rustls::crypto::ring::default_provider()),
        )
        .build()
        .unwrap();
        let server_name = rustls::pki_types::ServerName::try_from(name.to_string()).unwrap();
        verifier
            .verify_server_cert(
                &leaf.cert[0],
                &leaf.cert[1..],
                &server_name,
                &[],
                rustls::pki_types::UnixTime::now(),
            )
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    #[test]
    fn mints_dns_and_ip_leaves_signed_by_the_ca() {
        let (m, ca_der, dir) = minter(8);
        let (_, ca_x) = x509_parser::parse_x509_certificate(&ca_der).unwrap();
        let (leaf, src) = m.get("API.OpenAI.com").unwrap();
        assert_eq!(src, LeafSource::Minted);
        let (issuer, sans) = parse(&leaf);
        assert_eq!(issuer, ca_x.subject().to_string());
        assert_eq!(sans, vec!["DNSName(api.openai.com)".to_string()]);
        client_accepts(&ca_der, &leaf, "api.openai.com").unwrap();
        let err = client_accepts(&ca_der, &leaf, "api.anthropic.com").unwrap_err();
        assert!(err.contains("not valid for name"), "{err}");
        let (ip, _) = m.get("127.0.0.1").unwrap();
        client_accepts(&ca_der, &ip, "127.0.0.1").unwrap();
        std::fs::remove_dir_all(dir).ok();
    }

    #[test]
    fn second_lookup_is_cached_and_cache_is_bounded() {
        let (m, _, dir) = minter(2);
        let (a, _) = m.get("a.test").unwrap();
        let (a2, src) = m.get("a.test").unwrap();
        assert_eq!(src, LeafSource::Cached);
        assert!(Arc::ptr_eq(&a, &a2));
        m.get("b.test").unwrap();
        m.get("c.test").unwrap();
        assert_eq!(m.cached(), 2);
        assert_eq!(m.get("a.test").unwrap().1, LeafSource::Minted, "evicted");
        std::fs::remove_dir_all(dir).ok();
    }

    #[test]
    fn invalid_names_are_errors_not_panics() {
        let (m, _, dir) = minter(2);
        assert!(m.get("bad name!").is_err());
        std::fs::remove_dir_all(dir).ok();
    }
}
