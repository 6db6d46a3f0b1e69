//! Durable state on sled: the audit log (and, as they grow, sessions and
//! approvals). One database in the data folder; each concern is a tree.
//!
//! sled is unmaintained upstream (0.34.7 is the last stable release), so the
//! rest of the gateway talks to [`Store`], never to sled directly.

pub mod audit;
mod keys;

pub use audit::{AuditEvent, AuditFinding};
pub use keys::load_or_create_mask_key;

use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("data folder {path} is locked by another process (is another asg running with the same ASG_DATA_DIR?)")]
    Locked { path: PathBuf },
    #[error("cannot open data folder {path}: {message}")]
    Open { path: PathBuf, message: String },
    #[error("storage error: {0}")]
    Sled(#[from] sled::Error),
    #[error("corrupt record in {tree}: {message}")]
    Corrupt { tree: &'static str, message: String },
}

pub struct Store {
    db: sled::Db,
    audit: sled::Tree,
    path: PathBuf,
}

impl Store {
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
        std::fs::create_dir_all(dir).map_err(|e| StoreError::Open {
            path: dir.to_path_buf(),
            message: e.to_string(),
        })?;
        let path = dir.join("asg.sled");
        let db = sled::Config::new()
            .path(&path)
            .flush_every_ms(Some(200))
            .open()
            .map_err(|e| classify(&path, e))?;
        let audit = db.open_tree("audit")?;
        Ok(Store { db, audit, path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Readiness probe: the database answers a read.
    pub fn ping(&self) -> bool {
        self.db.get(b"__ping").is_ok()
    }

    pub fn db(&self) -> &sled::Db {
        &self.db
    }

    pub fn flush(&self) -> Result<(), StoreError> {
        self.db.flush()?;
        Ok(())
    }
}

fn classify(path: &Path, e: sled::Error) -> StoreError {
    let message = e.to_string();
    let lower = message.to_lowercase();
    if lower.contains("lock")
        || lower.contains("resource temporarily unavailable")
        || lower.contains("would block")
    {
        StoreError::Locked {
            path: path.to_path_buf(),
        }
    } else {
        StoreError::Open {
            path: path.to_path_buf(),
            message,
        }
    }
}

#[cfg(test)]
pub(crate) fn temp_store() -> (Store, PathBuf) {
    let dir = std::env::temp_dir().join(format!("asg-store-{}", uuid::Uuid::new_v4()));
    (Store::open(&dir).unwrap(), dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_errors_are_classified() {
        let dir = PathBuf::from("/tmp/x");
        let err = classify(
            &dir,
            sled::Error::Io(std::io::Error::new(
                std::io::ErrorKind::WouldBlock,
                "could not acquire lock",
            )),
        );
        assert!(
            err.to_string().contains("locked by another process"),
            "{err}"
        );
    }
}
