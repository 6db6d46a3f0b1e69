//! The mask key: 32 random bytes in `<data dir>/mask.key` (mode 0600),
//! created on first start. It keys the HMAC behind mask digests, so the
//! digests are stable across restarts but useless without the key.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// The mask key file cannot be read, made or used.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cannot {action} {}: {source}", .path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{} must hold 32 bytes of hex; restore it from a backup, or delete it to start with a new key (earlier mask digests will no longer match)", .0.display())]
    Malformed(PathBuf),
}

pub fn load_or_create_mask_key(dir: &Path) -> Result<[u8; 32], KeyError> {
    let path = dir.join("mask.key");
    let io = |action, path: &Path| {
        let path = path.to_path_buf();
        move |source| KeyError::Io {
            action,
            path,
            source,
        }
    };
    match std::fs::read_to_string(&path) {
        Ok(text) => hex::decode(text.trim())
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or(KeyError::Malformed(path)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir_all(dir).map_err(io("create", dir))?;
            let key: [u8; 32] = rand::random();
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)
                .map_err(io("create", &path))?;
            f.write_all(hex::encode(key).as_bytes())
                .map_err(io("write", &path))?;
            Ok(key)
        }
        Err(e) => Err(io("read", &path)(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn key_is_created_private_and_stable() {
        let dir = std::env::temp_dir().join(format!("asg-key-{}", uuid::Uuid::new_v4()));
        let a = load_or_create_mask_key(&dir).unwrap();
        let b = load_or_create_mask_key(&dir).unwrap();
        assert_eq!(a, b);
        let mode = std::fs::metadata(dir.join("mask.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        std::fs::remove_dir_all(dir).ok();
    }
}
