//! The mask key: 32 random bytes in `<data dir>/mask.key` (mode 0600),
//! created on first start. It keys the HMAC behind mask digests, so the
//! digests are stable across restarts but useless without the key.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

pub fn load_or_create_mask_key(dir: &Path) -> Result<[u8; 32], String> {
    let path = dir.join("mask.key");
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let bytes =
                hex::decode(text.trim()).map_err(|_| format!("{} is not hex", path.display()))?;
            bytes
                .try_into()
                .map_err(|_| format!("{} must hold 32 bytes of hex", path.display()))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir_all(dir)
                .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
            let key: [u8; 32] = rand::random();
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)
                .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
            f.write_all(hex::encode(key).as_bytes())
                .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
            Ok(key)
        }
        Err(e) => Err(format!("cannot read {}: {e}", path.display())),
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
