//! The local interception CA: created once (`asg ca init`, or on the first
//! `asg run`), loaded at startup, never logged or served.
//!
//! Files, by default in `<data dir>/ca/` (mode 0700):
//! * `ca.pem` — the CA certificate agents trust (`NODE_EXTRA_CA_CERTS`,
//!   `CODEX_CA_CERTIFICATE`);
//! * `ca.key` — its PKCS#8 private key, mode 0600;
//! * `bundle.pem` — the system roots plus `ca.pem`, for clients whose CA
//!   variable *replaces* the trust store (`SSL_CERT_FILE`,
//!   `REQUESTS_CA_BUNDLE`), so passthrough hosts keep working.
//!
//! An operator CA (for example one shared by every sidecar of a cluster) is
//! used by pointing `ASG_CA_CERT` / `ASG_CA_KEY` at it; it may be an
//! intermediate, in which case its chain is sent with every leaf.

use super::TlsError;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, PublicKeyData,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use sha2::{Digest, Sha256};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use time::{Duration, OffsetDateTime};

/// Where the CA lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaPaths {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub bundle: PathBuf,
    /// True when the paths are the defaults in the data folder (the gateway
    /// may create the CA there); false when the operator named them.
    pub default_location: bool,
}

impl CaPaths {
    /// The operator's certificate and key, or the defaults in `<data_dir>/ca/`.
    pub fn new(data_dir: &Path, cert: Option<&Path>, key: Option<&Path>) -> CaPaths {
        let dir = data_dir.join("ca");
        let default_location = cert.is_none() && key.is_none();
        CaPaths {
            cert: cert.map_or_else(|| dir.join("ca.pem"), Path::to_path_buf),
            key: key.map_or_else(|| dir.join("ca.key"), Path::to_path_buf),
            // Always in the data folder: an operator CA may sit on a read-only mount.
            bundle: dir.join("bundle.pem"),
            default_location,
        }
    }

    pub fn exists(&self) -> bool {
        self.cert.is_file() && self.key.is_file()
    }
}

/// A loaded CA, ready to sign leaves.
pub struct LocalCa {
    pub cert_pem: String,
    pub cert_der: CertificateDer<'static>,
    pub issuer: Issuer<'static, KeyPair>,
    /// Certificates sent after each leaf: the CA itself when it is an
    /// intermediate (plus the rest of its file), nothing for a root.
    pub chain: Vec<CertificateDer<'static>>,
    /// `AB:CD:…` SHA-256 of the certificate, as `openssl x509 -fingerprint -sha256` prints it.
    pub fingerprint: String,
    pub subject: String,
    pub not_after: OffsetDateTime,
}

impl std::fmt::Debug for LocalCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key.
        f.debug_struct("LocalCa")
            .field("subject", &self.subject)
            .field("fingerprint", &self.fingerprint)
            .finish_non_exhaustive()
    }
}

pub fn fingerprint(der: &[u8]) -> String {
    Sha256::digest(der)
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Create a new CA (P-256, 10 years, path length 0) at `paths`. Refuses to
/// replace an existing one unless `force`.
pub fn create(paths: &CaPaths, force: bool) -> Result<LocalCa, TlsError> {
    if !force && (paths.cert.exists() || paths.key.exists()) {
        return Err(TlsError::Ca(format!(
            "a CA already exists at {} (use --force to replace it; agents that trust the old one will stop trusting the gateway)",
            paths.cert.display()
        )));
    }
    for dir in [paths.cert.parent(), paths.key.parent()]
        .into_iter()
        .flatten()
    {
        if !dir.as_os_str().is_empty() && !dir.exists() {
            std::fs::create_dir_all(dir)
                .map_err(|e| TlsError::Ca(format!("cannot create {}: {e}", dir.display())))?;
            let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
        }
    }
    let key = KeyPair::generate()
        .map_err(|e| TlsError::Ca(format!("cannot generate the CA key: {e}")))?;
    let tag: [u8; 4] = rand::random();
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(
        DnType::CommonName,
        format!("asg interception CA {}", hex::encode(tag)),
    );
    dn.push(DnType::OrganizationName, "Agent Security Gateway (local)");
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let now = OffsetDateTime::now_utc();
    params.not_before = now - Duration::days(1);
    params.not_after = now + Duration::days(3650);
    params.serial_number = Some(rcgen::SerialNumber::from_slice(&random_serial()));
    let cert = params
        .self_signed(&key)
        .map_err(|e| TlsError::Ca(format!("cannot sign the CA certificate: {e}")))?;
    write_private(&paths.key, key.serialize_pem().as_bytes())?;
    write_atomic(&paths.cert, cert.pem().as_bytes(), 0o644)?;
    load(paths)
}

/// Load the CA at `paths`, checking that it is a CA, still valid, and that
/// the key belongs to the certificate.
pub fn load(paths: &CaPaths) -> Result<LocalCa, TlsError> {
    let cert_pem = std::fs::read_to_string(&paths.cert).map_err(|e| {
        TlsError::Ca(format!(
            "cannot read CA certificate {}: {e}",
            paths.cert.display()
        ))
    })?;
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
        .collect::<Result<_, _>>()
        .map_err(|e| TlsError::Ca(format!("CA certificate {}: {e}", paths.cert.display())))?;
    let Some(first) = certs.first().cloned() else {
        return Err(TlsError::Ca(format!(
            "CA certificate {} holds no PEM certificate",
            paths.cert.display()
        )));
    };
    let key_pem = std::fs::read_to_string(&paths.key)
        .map_err(|e| TlsError::Ca(format!("cannot read CA key {}: {e}", paths.key.display())))?;
    if let Ok(meta) = std::fs::metadata(&paths.key) {
        if meta.permissions().mode() & 0o077 != 0 {
            tracing::warn!(path = %paths.key.display(), "the CA key is readable by group or others; chmod 600 it");
        }
    }
    // PKCS#1 and SEC1 keys (Helm's genCA, openssl) are rewrapped as PKCS#8.
    let key_pem = super::keyfmt::pkcs8_pem(&key_pem).unwrap_or(key_pem);
    let key = KeyPair::from_pem(&key_pem).map_err(|e| {
        TlsError::Ca(format!(
            "CA key {} is not a PKCS#8 PEM key ({e}); convert it with `openssl pkcs8 -topk8 -nocrypt`",
            paths.key.display()
        ))
    })?;

    let (_, x509) = x509_parser::parse_x509_certificate(first.as_ref())
        .map_err(|e| TlsError::Ca(format!("CA certificate {}: {e}", paths.cert.display())))?;
    if !x509.is_ca() {
        return Err(TlsError::Ca(format!(
            "{} is not a CA certificate (basicConstraints CA:TRUE is missing)",
            paths.cert.display()
        )));
    }
    if x509.public_key().raw != key.subject_public_key_info().as_slice() {
        return Err(TlsError::Ca(format!(
            "CA key {} does not belong to certificate {}",
            paths.key.display(),
            paths.cert.display()
        )));
    }
    let not_after = x509.validity().not_after.to_datetime();
    if !x509.validity().is_valid() {
        return Err(TlsError::Ca(format!(
            "CA certificate {} is not valid now (valid until {not_after})",
            paths.cert.display()
        )));
    }
    let subject = x509.subject().to_string();
    let self_signed = x509.subject().as_raw() == x509.issuer().as_raw();
    let issuer = Issuer::from_ca_cert_der(&first, key)
        .map_err(|e| TlsError::Ca(format!("CA certificate {}: {e}", paths.cert.display())))?;
    Ok(LocalCa {
        fingerprint: fingerprint(first.as_ref()),
        chain: if self_signed { Vec::new() } else { certs },
        cert_der: first,
        cert_pem,
        issuer,
        subject,
        not_after,
    })
}

/// Load the CA; create it first when it is missing from its default
/// location. Returns whether it was created.
pub fn load_or_create(paths: &CaPaths) -> Result<(LocalCa, bool), TlsError> {
    if paths.exists() {
        return load(paths).map(|ca| (ca, false));
    }
    if !paths.default_location {
        return Err(TlsError::Ca(format!(
            "CA certificate {} or key {} not found (ASG_CA_CERT / ASG_CA_KEY); create one with `asg ca init`",
            paths.cert.display(),
            paths.key.display()
        )));
    }
    if paths.cert.exists() || paths.key.exists() {
        return Err(TlsError::Ca(format!(
            "half a CA in {}: both ca.pem and ca.key are needed (remove the other, or run `asg ca init --force`)",
            paths.cert.parent().unwrap_or(Path::new(".")).display()
        )));
    }
    create(paths, false).map(|ca| (ca, true))
}

/// Write `bundle.pem`: the system roots plus the CA, for `SSL_CERT_FILE`.
pub fn write_bundle(paths: &CaPaths, ca: &LocalCa) -> Result<(), TlsError> {
    let mut bundle = String::new();
    for cert in rustls_native_certs::load_native_certs().unwrap_or_default() {
        bundle.push_str(&pem_encode(cert.as_ref()));
    }
    bundle.push_str("# asg interception CA\n");
    bundle.push_str(&ca.cert_pem);
    if let Some(dir) = paths.bundle.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| TlsError::Ca(format!("cannot create {}: {e}", dir.display())))?;
    }
    write_atomic(&paths.bundle, bundle.as_bytes(), 0o644)
}

pub fn pem_encode(der: &[u8]) -> String {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = String::from("-----BEGIN CERTIFICATE-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).expect("base64 is ASCII"));
        out.push('\n');
    }
    out.push_str("-----END CERTIFICATE-----\n");
    out
}

pub fn random_serial() -> [u8; 16] {
    let mut s: [u8; 16] = rand::random();
    s[0] &= 0x7f; // positive
    s[0] |= 0x01; // no leading zero byte
    s
}

/// Write a secret file: created 0600 from the start (never briefly readable).
fn write_private(path: &Path, bytes: &[u8]) -> Result<(), TlsError> {
    let tmp = path.with_extension("key.tmp");
    let _ = std::fs::remove_file(&tmp);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(|e| TlsError::Ca(format!("cannot create {}: {e}", tmp.display())))?;
    f.write_all(bytes)
        .and_then(|_| f.sync_all())
        .map_err(|e| TlsError::Ca(format!("cannot write {}: {e}", tmp.display())))?;
    std::fs::rename(&tmp, path)
        .map_err(|e| TlsError::Ca(format!("cannot write {}: {e}", path.display())))
}

fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> Result<(), TlsError> {
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(&tmp)
        .map_err(|e| TlsError::Ca(format!("cannot create {}: {e}", tmp.display())))?;
    f.write_all(bytes)
        .map_err(|e| TlsError::Ca(format!("cannot write {}: {e}", tmp.display())))?;
    std::fs::rename(&tmp, path)
        .map_err(|e| TlsError::Ca(format!("cannot write {}: {e}", path.display())))
}

#[cfg(test)]
pub(crate) fn temp_paths() -> (CaPaths, PathBuf) {
    let dir = std::env::temp_dir().join(format!("asg-ca-{}", uuid::Uuid::new_v4()));
    (CaPaths::new(&dir, None, None), dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creates_a_private_key_and_reloads_the_same_ca() {
        let (paths, dir) = temp_paths();
        let (ca, created) = load_or_create(&paths).unwrap();
        assert!(created);
        let mode = std::fs::metadata(&paths.key).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "key must be private");
        let (again, created) = load_or_create(&paths).unwrap();
        assert!(!created);
        assert_eq!(ca.fingerprint, again.fingerprint);
        assert!(ca.subject.contains("asg interception CA"), "{}", ca.subject);
        assert!(ca.chain.is_empty(), "a root is not sent in the chain");
        assert!(format!("{ca:?}").contains("fingerprint"));
        assert!(!format!("{ca:?}").contains("PRIVATE"));
        std::fs::remove_dir_all(dir).ok();
    }

    #[test]
    fn refuses_to_overwrite_without_force() {
        let (paths, dir) = temp_paths();
        let a = create(&paths, false).unwrap();
        let err = create(&paths, false).unwrap_err();
        assert!(err.to_string().contains("already exists"), "{err}");
        let b = create(&paths, true).unwrap();
        assert_ne!(a.fingerprint, b.fingerprint);
        std::fs::remove_dir_all(dir).ok();
    }

    #[test]
    fn mismatched_key_is_a_clear_error() {
        let (paths, dir) = temp_paths();
        create(&paths, false).unwrap();
        let other = KeyPair::generate().unwrap();
        std::fs::write(&paths.key, other.serialize_pem()).unwrap();
        let err = load(&paths).unwrap_err();
        assert!(err.to_string().contains("does not belong"), "{err}");
        std::fs::write(&paths.key, "not a key").unwrap();
        let err = load(&paths).unwrap_err();
        assert!(err.to_string().contains("PKCS#8"), "{err}");
        std::fs::remove_dir_all(dir).ok();
    }

    #[test]
    fn operator_paths_are_never_created_implicitly() {
        let (mut paths, dir) = temp_paths();
        paths.default_location = false;
        let err = load_or_create(&paths).unwrap_err();
        assert!(err.to_string().contains("asg ca init"), "{err}");
        assert!(!paths.cert.exists());
        std::fs::remove_dir_all(dir).ok();
    }

    #[test]
    fn bundle_ends_with_the_ca() {
        let (paths, dir) = temp_paths();
        let (ca, _) = load_or_create(&paths).unwrap();
        write_bundle(&paths, &ca).unwrap();
        let bundle = std::fs::read_to_string(&paths.bundle).unwrap();
        assert!(bundle.trim_end().ends_with(ca.cert_pem.trim_end()));
        std::fs::remove_dir_all(dir).ok();
    }
}
