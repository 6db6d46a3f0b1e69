//! The live policy: an [`ArcSwap`] that readers load lock-free on every
//! request, and a watcher thread that recompiles on change. Also where
//! profiles and their data files are read from disk ([`load`],
//! [`DirSources`]): the decision core itself reads no files.
//!
//! Kubernetes updates a mounted ConfigMap by swapping a `..data` symlink, so
//! the watcher observes the policy's *folder* (recursively, rule files live
//! in `rules/`), debounces bursts, recompiles, and swaps only a policy that
//! compiled. A bad edit keeps the last good policy and is reported to the
//! [`ReloadObserver`] (metrics, logs). A slow poll backs up the watcher for
//! file systems that do not deliver events.

use crate::decision::policy::{Policy, PolicyError, PolicySource};
use crate::decision::sources::{RuleSources, SourceError};
use arc_swap::ArcSwap;
use notify::{RecursiveMode, Watcher};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{channel, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

/// A profile's folder: data files the profile names (`rules/…`,
/// `models/…`) are read relative to it.
pub struct DirSources {
    dir: PathBuf,
}

impl DirSources {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        DirSources { dir: dir.into() }
    }
}

impl RuleSources for DirSources {
    fn read(&self, rel: &str) -> Result<Option<Vec<u8>>, SourceError> {
        let path = self.dir.join(rel);
        std::fs::read(&path).map(Some).map_err(|e| SourceError {
            path: path.display().to_string(),
            message: e.to_string(),
        })
    }

    fn describe(&self, rel: &str) -> String {
        self.dir.join(rel).display().to_string()
    }
}

/// Load by profile name (`dev`, `production`, `strict`) or by path.
///
/// A name is looked up as `<policy_dir>/<name>.toml` first, so operators
/// can edit profiles in place; the embedded copy is the fallback. A
/// profile's data files are read from its own folder.
pub fn load(spec: &str, policy_dir: Option<&Path>) -> Result<Policy, PolicyError> {
    let Some(path) = resolve_path(spec, policy_dir) else {
        return Policy::load(spec, None);
    };
    let text = std::fs::read_to_string(&path).map_err(|e| PolicyError::Io {
        path: path.clone(),
        message: e.to_string(),
    })?;
    let folder = DirSources::new(path.parent().map(Path::to_path_buf).unwrap_or_default());
    Policy::compile(&text, PolicySource::File(path), Some(&folder))
}

/// The file a policy spec refers to, if it refers to one that exists.
pub fn resolve_path(spec: &str, policy_dir: Option<&Path>) -> Option<PathBuf> {
    let looks_like_path = spec.contains('/') || spec.ends_with(".toml");
    if looks_like_path {
        return Some(PathBuf::from(spec));
    }
    let dir = policy_dir?;
    let candidate = dir.join(format!("{spec}.toml"));
    candidate.is_file().then_some(candidate)
}

/// Told about every reload attempt; implemented by the metrics registry.
pub trait ReloadObserver: Send + Sync {
    fn reloaded(&self, policy: &Policy);
    fn reload_failed(&self, error: &PolicyError);
}

/// A no-op observer for tests and tools.
pub struct NoObserver;
impl ReloadObserver for NoObserver {
    fn reloaded(&self, _: &Policy) {}
    fn reload_failed(&self, _: &PolicyError) {}
}

pub struct PolicyStore {
    current: ArcSwap<Policy>,
    spec: String,
    policy_dir: Option<PathBuf>,
    last_error: Mutex<Option<String>>,
    observer: Arc<dyn ReloadObserver>,
    /// Compilations attempted by `reload` (changed or not).
    attempts: std::sync::atomic::AtomicU64,
}

/// Keeps the watcher alive; dropping it stops watching.
pub struct WatchHandle {
    _watcher: Option<notify::RecommendedWatcher>,
}

const DEBOUNCE: Duration = Duration::from_millis(150);
const POLL: Duration = Duration::from_secs(2);

impl PolicyStore {
    pub fn new(
        policy: Policy,
        spec: &str,
        policy_dir: Option<PathBuf>,
        observer: Arc<dyn ReloadObserver>,
    ) -> Arc<Self> {
        observer.reloaded(&policy);
        Arc::new(PolicyStore {
            current: ArcSwap::from_pointee(policy),
            spec: spec.to_string(),
            policy_dir,
            last_error: Mutex::new(None),
            observer,
            attempts: Default::default(),
        })
    }

    /// The policy in force. Cheap: one atomic load and a refcount bump.
    pub fn current(&self) -> Arc<Policy> {
        self.current.load_full()
    }

    pub fn last_error(&self) -> Option<String> {
        self.last_error.lock().ok().and_then(|e| e.clone())
    }

    /// Recompile from the source; swap if it compiled and changed.
    /// Returns `Ok(true)` when a new version went live.
    pub fn reload(&self) -> Result<bool, PolicyError> {
        self.attempts
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let result = load(&self.spec, self.policy_dir.as_deref());
        match result {
            Ok(policy) => {
                if let Ok(mut e) = self.last_error.lock() {
                    *e = None;
                }
                if policy.version == self.current.load().version {
                    return Ok(false);
                }
                tracing::info!(version = %policy.version, source = %policy.source, "policy reloaded");
                self.observer.reloaded(&policy);
                self.current.store(Arc::new(policy));
                Ok(true)
            }
            Err(err) => {
                tracing::warn!(error = %err, kept = %self.current.load().version, "policy reload failed; keeping the last good policy");
                if let Ok(mut e) = self.last_error.lock() {
                    *e = Some(err.to_string());
                }
                self.observer.reload_failed(&err);
                Err(err)
            }
        }
    }

    /// How many times `reload` compiled the source (changed or not).
    pub fn reload_attempts(&self) -> u64 {
        self.attempts.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Start watching the policy's folder. Embedded policies have nothing
    /// to watch and return an inert handle.
    pub fn watch(self: &Arc<Self>) -> Result<WatchHandle, notify::Error> {
        let PolicySource::File(path) = self.current().source.clone() else {
            return Ok(WatchHandle { _watcher: None });
        };
        let dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        let (tx, rx) = channel::<()>();
        let mut watcher =
            notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
                // Only changes count. Reading the policy (our own reload
                // included) raises open/access events; reacting to those
                // made the watcher recompile in an endless loop.
                if res.is_ok_and(|event| !event.kind.is_access()) {
                    let _ = tx.send(());
                }
            })?;
        watcher.watch(&dir, RecursiveMode::Recursive)?;

        let store = Arc::clone(self);
        std::thread::Builder::new()
            .name("asg-policy-watch".into())
            .spawn(move || {
                let mut stamp = fingerprint(&dir);
                loop {
                    match rx.recv_timeout(POLL) {
                        Ok(()) => {
                            // Debounce: editors and ConfigMap swaps emit bursts.
                            while rx.recv_timeout(DEBOUNCE).is_ok() {}
                        }
                        Err(RecvTimeoutError::Timeout) => {
                            let now = fingerprint(&dir);
                            if now == stamp {
                                continue;
                            }
                        }
                        Err(RecvTimeoutError::Disconnected) => return,
                    }
                    stamp = fingerprint(&dir);
                    let _ = store.reload();
                }
            })
            .expect("spawn policy watcher thread");
        Ok(WatchHandle {
            _watcher: Some(watcher),
        })
    }
}

/// Modification times and sizes of the files in the policy folder (one
/// level plus `rules/` and `models/`), following symlinks like a ConfigMap
/// mount needs.
fn fingerprint(dir: &Path) -> Vec<(PathBuf, Option<SystemTime>, u64)> {
    let mut out = Vec::new();
    for sub in [dir.to_path_buf(), dir.join("rules"), dir.join("models")] {
        let Ok(entries) = std::fs::read_dir(&sub) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if let Ok(meta) = std::fs::metadata(&path) {
                if meta.is_file() {
                    out.push((path, meta.modified().ok(), meta.len()));
                }
            }
        }
    }
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[derive(Default)]
    struct Counting {
        ok: AtomicUsize,
        failed: AtomicUsize,
    }
    impl ReloadObserver for Counting {
        fn reloaded(&self, _: &Policy) {
            self.ok.fetch_add(1, Ordering::SeqCst);
        }
        fn reload_failed(&self, _: &PolicyError) {
            self.failed.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn temp_dir(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("asg-policy-{tag}-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn bad_edit_keeps_last_good_policy() {
        let dir = temp_dir("reload");
        let path = dir.join("p.toml");
        std::fs::write(&path, "name = \"p\"\n").unwrap();
        let spec = path.to_str().unwrap().to_string();
        let observer = Arc::new(Counting::default());
        let store = PolicyStore::new(load(&spec, None).unwrap(), &spec, None, observer.clone());
        let v1 = store.current().version.clone();

        std::fs::write(&path, "name = \"p\"\n[decision]\nblock_score = \"high\"\n").unwrap();
        assert!(store.reload().is_err());
        assert_eq!(store.current().version, v1);
        assert!(store.last_error().unwrap().contains(":3:"));
        assert_eq!(observer.failed.load(Ordering::SeqCst), 1);

        std::fs::write(&path, "name = \"p\"\n[decision]\nblock_score = 3.0\n").unwrap();
        assert!(store.reload().unwrap());
        assert_ne!(store.current().version, v1);
        assert_eq!(store.current().file.decision.block_score, 3.0);
        assert!(store.last_error().is_none());
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn watcher_picks_up_symlink_swap() {
        // Mimic a ConfigMap mount: p.toml -> ..data/p.toml, ..data -> v1.
        let dir = temp_dir("watch");
        for (v, score) in [("v1", "2.0"), ("v2", "3.5")] {
            std::fs::create_dir_all(dir.join(v)).unwrap();
            std::fs::write(
                dir.join(v).join("p.toml"),
                format!("name = \"p\"\n[decision]\nblock_score = {score}\n"),
            )
            .unwrap();
        }
        std::os::unix::fs::symlink("v1", dir.join("..data")).unwrap();
        std::os::unix::fs::symlink("..data/p.toml", dir.join("p.toml")).unwrap();
        let spec = dir.join("p.toml").to_str().unwrap().to_string();
        let store = PolicyStore::new(
            load(&spec, None).unwrap(),
            &spec,
            None,
            Arc::new(NoObserver),
        );
        let _w = store.watch().unwrap();
        assert_eq!(store.current().file.decision.block_score, 2.0);

        std::os::unix::fs::symlink("v2", dir.join("..data_tmp")).unwrap();
        std::fs::rename(dir.join("..data_tmp"), dir.join("..data")).unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while store.current().file.decision.block_score != 3.5 {
            assert!(std::time::Instant::now() < deadline, "reload not observed");
            std::thread::sleep(Duration::from_millis(20));
        }
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn watcher_does_not_react_to_its_own_reads() {
        // Reading the policy raises inotify open/access events; a watcher
        // that reloads on those reloads forever (seen: a core burnt idle).
        let dir = temp_dir("quiet");
        let path = dir.join("p.toml");
        std::fs::write(&path, "name = \"p\"\n").unwrap();
        let spec = path.to_str().unwrap().to_string();
        let store = PolicyStore::new(
            load(&spec, None).unwrap(),
            &spec,
            None,
            Arc::new(NoObserver),
        );
        let _w = store.watch().unwrap();
        std::fs::read_to_string(&path).unwrap();
        std::thread::sleep(Duration::from_millis(800));
        assert_eq!(store.reload_attempts(), 0, "reloaded without a change");

        std::fs::write(&path, "name = \"p\"\n[decision]\nblock_score = 3.0\n").unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while store.current().file.decision.block_score != 3.0 {
            assert!(std::time::Instant::now() < deadline, "reload not observed");
            std::thread::sleep(Duration::from_millis(20));
        }
        std::thread::sleep(Duration::from_millis(800));
        let settled = store.reload_attempts();
        std::thread::sleep(Duration::from_millis(800));
        assert_eq!(
            store.reload_attempts(),
            settled,
            "reload loop after a change"
        );
        std::fs::remove_dir_all(&dir).ok();
    }

    mod model_files {
        use super::*;
        use crate::decision::detectors::injection::classifier::model::testkit::{build, spec};

        const PROFILE: &str =
            "name = \"p\"\n[injection.classifier]\nmodel_file = \"models/m.bin\"\n";

        fn model(weight: i16) -> Vec<u8> {
            let s = spec();
            build(
                &s,
                &vec![weight; s.buckets()],
                &vec![weight; s.buckets()],
                -1.0,
            )
        }

        fn folder(tag: &str, weight: i16) -> (PathBuf, String) {
            let d = temp_dir(tag);
            std::fs::create_dir_all(d.join("models")).unwrap();
            std::fs::write(d.join("p.toml"), PROFILE).unwrap();
            std::fs::write(d.join("models/m.bin"), model(weight)).unwrap();
            let spec = d.join("p.toml").to_str().unwrap().to_string();
            (d, spec)
        }

        fn weight(store: &PolicyStore) -> i16 {
            let p = store.current();
            p.detectors
                .injection
                .classifier()
                .unwrap()
                .model()
                .direct
                .weights[0]
        }

        #[test]
        fn missing_model_file_names_the_path() {
            let (d, spec) = folder("model-missing", 1);
            std::fs::remove_file(d.join("models/m.bin")).unwrap();
            let err = load(&spec, None).unwrap_err().to_string();
            let path = d.join("models/m.bin").display().to_string();
            assert!(err.contains(&path) && err.contains("cannot read"), "{err}");
            assert!(err.contains("make model"), "{err}");
            std::fs::remove_dir_all(&d).ok();
        }

        #[test]
        fn corrupt_model_fails_the_reload_and_keeps_the_last_good() {
            let (d, spec) = folder("model-reload", 1);
            let store = PolicyStore::new(
                load(&spec, None).unwrap(),
                &spec,
                None,
                Arc::new(NoObserver),
            );
            let v1 = store.current().version.clone();

            let mut bad = model(2);
            let n = bad.len();
            bad[n - 1] ^= 0x7f;
            std::fs::write(d.join("models/m.bin"), &bad).unwrap();
            let err = store.reload().unwrap_err().to_string();
            assert!(err.contains("checksum"), "{err}");
            assert_eq!(store.current().version, v1);

            // Only the model changed, the profile did not: still a new version.
            std::fs::write(d.join("models/m.bin"), model(3)).unwrap();
            assert!(
                store.reload().unwrap(),
                "a new model is a new policy version"
            );
            assert_ne!(store.current().version, v1);
            assert_eq!(weight(&store), 3);
            std::fs::remove_dir_all(&d).ok();
        }

        #[test]
        fn watcher_swaps_in_a_new_model_file() {
            let (d, spec) = folder("model-watch", 1);
            let store = PolicyStore::new(
                load(&spec, None).unwrap(),
                &spec,
                None,
                Arc::new(NoObserver),
            );
            let _w = store.watch().unwrap();
            std::fs::write(d.join("models/m.bin"), model(5)).unwrap();
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            while weight(&store) != 5 {
                assert!(
                    std::time::Instant::now() < deadline,
                    "model reload not observed"
                );
                std::thread::sleep(Duration::from_millis(20));
            }
            std::fs::remove_dir_all(&d).ok();
        }
    }
}
