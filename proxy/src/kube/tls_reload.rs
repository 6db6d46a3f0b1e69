//! The injector's serving certificate, reloaded when its files change.
//!
//! Kubernetes updates a mounted Secret by swapping a `..data` symlink, and
//! cert-manager renews certificates in place, so the resolver holds the
//! current key in an [`ArcSwap`] (read per handshake) and a watcher thread
//! reloads it on file events, with a slow poll behind it. A pair that does
//! not load (half-written, or a key that does not match its certificate)
//! keeps the last good one and is reported.

use arc_swap::ArcSwap;
use notify::{RecursiveMode, Watcher};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{channel, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const DEBOUNCE: Duration = Duration::from_millis(100);
const POLL: Duration = Duration::from_secs(5);

/// Told about every reload attempt that found changed files.
pub type OnReload = Box<dyn Fn(&Result<Loaded, String>) + Send + Sync>;

/// What a successful load found.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// Unix time the certificate expires.
    pub not_after: i64,
    pub subject: String,
}

pub struct ReloadingCert {
    cert: PathBuf,
    key: PathBuf,
    current: ArcSwap<CertifiedKey>,
    /// Digest of the files the current key came from.
    digest: Mutex<[u8; 32]>,
}

impl std::fmt::Debug for ReloadingCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReloadingCert")
            .field("cert", &self.cert)
            .finish_non_exhaustive()
    }
}

fn read_pair(cert: &Path, key: &Path) -> Result<(Vec<u8>, Vec<u8>), String> {
    let c = std::fs::read(cert).map_err(|e| format!("cannot read {}: {e}", cert.display()))?;
    let k = std::fs::read(key).map_err(|e| format!("cannot read {}: {e}", key.display()))?;
    Ok((c, k))
}

fn digest(c: &[u8], k: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update((c.len() as u64).to_le_bytes());
    h.update(c);
    h.update(k);
    h.finalize().into()
}

fn parse(cert: &Path, c: &[u8], k: &[u8]) -> Result<(CertifiedKey, Loaded), String> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(c)
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{}: {e}", cert.display()))?;
    let Some(leaf) = chain.first() else {
        return Err(format!("{} holds no PEM certificate", cert.display()));
    };
    let (_, x509) = x509_parser::parse_x509_certificate(leaf.as_ref())
        .map_err(|e| format!("{}: {e}", cert.display()))?;
    let loaded = Loaded {
        not_after: x509.validity().not_after.timestamp(),
        subject: x509.subject().to_string(),
    };
    let key = PrivateKeyDer::from_pem_slice(k).map_err(|e| {
        format!(
            "the key next to {} is not a PEM private key: {e}",
            cert.display()
        )
    })?;
    let provider = rustls::crypto::ring::default_provider();
    let ck = CertifiedKey::from_der(chain, key, &provider).map_err(|e| {
        format!(
            "{}: key and certificate do not form a pair: {e}",
            cert.display()
        )
    })?;
    Ok((ck, loaded))
}

impl ReloadingCert {
    /// Load the pair once; an error here is fatal to the caller.
    pub fn load(cert: &Path, key: &Path) -> Result<(Arc<ReloadingCert>, Loaded), String> {
        let (c, k) = read_pair(cert, key)?;
        let (ck, loaded) = parse(cert, &c, &k)?;
        Ok((
            Arc::new(ReloadingCert {
                cert: cert.to_path_buf(),
                key: key.to_path_buf(),
                current: ArcSwap::from_pointee(ck),
                digest: Mutex::new(digest(&c, &k)),
            }),
            loaded,
        ))
    }

    /// Reload when the files' contents changed: `None` when unchanged.
    pub fn reload_if_changed(&self) -> Option<Result<Loaded, String>> {
        let (c, k) = match read_pair(&self.cert, &self.key) {
            Ok(pair) => pair,
            Err(e) => return Some(Err(e)),
        };
        let d = digest(&c, &k);
        let mut current = self.digest.lock().unwrap_or_else(|p| p.into_inner());
        if *current == d {
            return None;
        }
        match parse(&self.cert, &c, &k) {
            Ok((ck, loaded)) => {
                self.current.store(Arc::new(ck));
                *current = d;
                Some(Ok(loaded))
            }
            // Not remembered: the next event or poll tries again (the key
            // may simply not have been written yet).
            Err(e) => Some(Err(e)),
        }
    }

    /// Watch both files' folders (events, then a poll every few seconds).
    pub fn watch(self: &Arc<Self>, on_reload: OnReload) -> Result<WatchHandle, String> {
        let (tx, rx) = channel::<()>();
        let mut watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
            if res.is_ok_and(|e| !e.kind.is_access()) {
                let _ = tx.send(());
            }
        })
        .map_err(|e| format!("cannot watch the certificate: {e}"))?;
        let mut dirs: Vec<PathBuf> = [&self.cert, &self.key]
            .iter()
            .map(|p| {
                p.parent()
                    .filter(|d| !d.as_os_str().is_empty())
                    .unwrap_or(Path::new("."))
                    .to_path_buf()
            })
            .collect();
        dirs.dedup();
        for d in &dirs {
            watcher
                .watch(d, RecursiveMode::NonRecursive)
                .map_err(|e| format!("cannot watch {}: {e}", d.display()))?;
        }
        let me = Arc::clone(self);
        std::thread::Builder::new()
            .name("asg-tls-watch".into())
            .spawn(move || loop {
                match rx.recv_timeout(POLL) {
                    Ok(()) => while rx.recv_timeout(DEBOUNCE).is_ok() {},
                    Err(RecvTimeoutError::Timeout) => {}
                    Err(RecvTimeoutError::Disconnected) => return,
                }
                if let Some(result) = me.reload_if_changed() {
                    on_reload(&result);
                }
            })
            .map_err(|e| format!("cannot start the certificate watcher: {e}"))?;
        Ok(WatchHandle { _watcher: watcher })
    }
}

impl ResolvesServerCert for ReloadingCert {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.load_full())
    }
}

/// Keeps the watcher alive.
pub struct WatchHandle {
    _watcher: notify::RecommendedWatcher,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(name: &str) -> (String, String) {
        let key = rcgen::KeyPair::generate().unwrap();
        let params = rcgen::CertificateParams::new(vec![name.to_string()]).unwrap();
        let cert = params.self_signed(&key).unwrap();
        (cert.pem(), key.serialize_pem())
    }

    fn serial_of(r: &ReloadingCert) -> Vec<u8> {
        r.current.load().cert[0].as_ref().to_vec()
    }

    /// Write the files the way kubelet does: a new folder, then an atomic
    /// rename of the `..data` symlink the file names point through.
    fn kubelet_write(dir: &Path, gen: u32, cert: &str, key: &str) {
        let ts = dir.join(format!("..gen{gen}"));
        std::fs::create_dir(&ts).unwrap();
        std::fs::write(ts.join("tls.crt"), cert).unwrap();
        std::fs::write(ts.join("tls.key"), key).unwrap();
        let tmp = dir.join("..data_tmp");
        std::os::unix::fs::symlink(ts.file_name().unwrap(), &tmp).unwrap();
        std::fs::rename(&tmp, dir.join("..data")).unwrap();
        for f in ["tls.crt", "tls.key"] {
            let link = dir.join(f);
            if !link.exists() {
                std::os::unix::fs::symlink(format!("..data/{f}"), link).unwrap();
            }
        }
    }

    #[test]
    fn reloads_on_a_secret_swap_and_keeps_the_last_good_pair() {
        let dir = tempfile_dir();
        let (c1, k1) = pair("one.example");
        kubelet_write(&dir, 1, &c1, &k1);
        let (r, loaded) = ReloadingCert::load(&dir.join("tls.crt"), &dir.join("tls.key")).unwrap();
        assert!(loaded.not_after > 0);
        let first = serial_of(&r);
        assert!(
            r.reload_if_changed().is_none(),
            "unchanged files are not reloaded"
        );

        let seen = Arc::new(Mutex::new(Vec::<bool>::new()));
        let seen2 = Arc::clone(&seen);
        let _w = r
            .watch(Box::new(move |res| seen2.lock().unwrap().push(res.is_ok())))
            .unwrap();
        let (c2, k2) = pair("two.example");
        kubelet_write(&dir, 2, &c2, &k2);
        let deadline = std::time::Instant::now() + Duration::from_secs(15);
        while serial_of(&r) == first && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert_ne!(serial_of(&r), first, "the new certificate is served");
        assert!(seen.lock().unwrap().contains(&true));

        // A key that does not match: the previous pair stays.
        let now = serial_of(&r);
        let (c3, _) = pair("three.example");
        kubelet_write(&dir, 3, &c3, &k2);
        let err = r.reload_if_changed().unwrap().unwrap_err();
        assert!(err.contains("do not form a pair"), "{err}");
        assert_eq!(serial_of(&r), now);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_missing_or_bad_file_is_a_clear_error() {
        let dir = tempfile_dir();
        let err = ReloadingCert::load(&dir.join("tls.crt"), &dir.join("tls.key")).unwrap_err();
        assert!(err.contains("cannot read"), "{err}");
        std::fs::write(dir.join("tls.crt"), "nothing").unwrap();
        std::fs::write(dir.join("tls.key"), "nothing").unwrap();
        let err = ReloadingCert::load(&dir.join("tls.crt"), &dir.join("tls.key")).unwrap_err();
        assert!(err.contains("no PEM certificate"), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    fn tempfile_dir() -> PathBuf {
        let d = std::env::temp_dir().join(format!(
            "asg-tls-reload-{}-{}",
            std::process::id(),
            rand::random::<u32>()
        ));
        std::fs::create_dir_all(&d).unwrap();
        d
    }
}
