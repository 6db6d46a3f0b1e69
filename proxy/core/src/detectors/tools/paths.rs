//! Paths: where a call reads and writes, and what that means.
//!
//! The gateway does not know an agent's working directory, so the
//! workspace is everything that is not known to be something else:
//! relative paths and project trees are the workspace, `/tmp` is scratch,
//! a dotfile or dot-directory right under a home directory is the user's
//! configuration, `/etc`, `/usr` and friends are the system. Sensitive
//! locations (`[[path]]`) and special write targets (`[[write_target]]`)
//! come from the rule file.

use super::effects::Effect;
use super::escapes::value_after;
use super::rules::ToolRules;
use crate::detectors::shell::glob_match;

/// How a call touches a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Access {
    /// Only named (`ls`, `stat`): no effect.
    Mention,
    Read,
    Write,
    /// Deleted; `recursive` deletes of system trees destroy.
    Delete {
        recursive: bool,
    },
}

/// Where a path points.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    Workspace,
    Scratch,
    /// A dotfile or dot-directory in a home directory.
    HomeConfig,
    /// A home directory itself.
    Home,
    System,
    Device,
}

/// Backslashes as slashes, home directories as `~`.
pub fn normalize_path(p: &str) -> String {
    let mut s = p
        .trim()
        .trim_matches(|c| c == '"' || c == '\'')
        .replace('\\', "/");
    for home in [
        "$HOME",
        "${HOME}",
        "%USERPROFILE%",
        "$env:USERPROFILE",
        "%HOMEPATH%",
    ] {
        if s.contains(home) {
            s = s.replace(home, "~");
        }
    }
    s
}

/// The home directory prefix of an absolute path, if it has one:
/// `~`, `/root`, `/home/<u>`, `/Users/<u>`, `C:/Users/<u>`.
fn home_prefix(p: &str) -> Option<usize> {
    if p == "~" || p.starts_with("~/") {
        return Some(1);
    }
    if p == "/root" || p.starts_with("/root/") {
        return Some(5);
    }
    let lower = p.to_ascii_lowercase();
    for base in ["/home/", "/users/", "c:/users/"] {
        if let Some(rest) = lower.strip_prefix(base) {
            let user = rest.split('/').next().unwrap_or("");
            if !user.is_empty() {
                return Some(base.len() + user.len());
            }
        }
    }
    None
}

/// Caches that package managers and build tools fill and fill again
/// (`rm -rf ~/.gradle/caches`, `~/.npm/_cacache`, `~/Library/Caches/pip`):
/// deleting them costs a download. Writing into them is still a write
/// outside the workspace (a planted package would be run later).
pub fn package_cache(path: &str) -> bool {
    const CACHES: &[&str] = &[
        ".cache",
        ".gradle/caches",
        ".gradle/wrapper/dists",
        ".m2/repository",
        ".npm/_cacache",
        ".npm/_npx",
        ".pnpm-store",
        ".local/share/pnpm/store",
        ".yarn/cache",
        ".yarn/berry/cache",
        ".cargo/registry/cache",
        ".cargo/registry/src",
        ".cargo/git/checkouts",
        ".ivy2/cache",
        ".nuget/packages",
        ".composer/cache",
        ".bundle/cache",
        ".cache/bazel",
        "Library/Caches",
        "Library/Developer/Xcode/DerivedData",
        "AppData/Local/Temp",
        "AppData/Local/npm-cache",
        "AppData/Local/pip/Cache",
    ];
    let p = path.trim_end_matches('/');
    let Some(end) = home_prefix(p) else {
        return false;
    };
    let rest = p[end..].trim_start_matches('/');
    CACHES.iter().any(|c| {
        rest.strip_prefix(c)
            .is_some_and(|tail| tail.is_empty() || tail.starts_with('/'))
    })
}

pub fn place(path: &str) -> Place {
    let p = path.trim_end_matches('/');
    let p = if p.is_empty() && path.starts_with('/') {
        "/"
    } else {
        p
    };
    if let Some(end) = home_prefix(p) {
        let rest = &p[end..];
        if rest.is_empty() {
            return Place::Home;
        }
        let first = rest.trim_start_matches('/').split('/').next().unwrap_or("");
        return if first.starts_with('.')
            || first.eq_ignore_ascii_case("Library")
            || first.eq_ignore_ascii_case("AppData")
        {
            Place::HomeConfig
        } else {
            Place::Workspace
        };
    }
    if in_temp_dir(p)
        || matches!(p, "/dev/null" | "/dev/stdout" | "/dev/stderr" | "/dev/tty")
        // Network pseudo-files: the shell rules judge them.
        || p.starts_with("/dev/tcp/")
        || p.starts_with("/dev/udp/")
        || p.starts_with("/dev/fd/")
        || p.starts_with("/proc/self/fd/")
    {
        return Place::Scratch;
    }
    if p.starts_with("/dev/") {
        return Place::Device;
    }
    const SYSTEM: &[&str] = &[
        "/etc",
        "/usr",
        "/bin",
        "/sbin",
        "/lib",
        "/lib32",
        "/lib64",
        "/libx32",
        "/boot",
        "/opt",
        "/var",
        "/sys",
        "/proc",
        "/snap",
        "/Library",
        "/System",
        "/Applications",
        "/private",
        "/efi",
    ];
    if p == "/"
        || SYSTEM
            .iter()
            .any(|s| p == *s || p.starts_with(&format!("{s}/")))
    {
        return Place::System;
    }
    let lower = p.to_ascii_lowercase();
    if lower.starts_with("c:/windows") || lower.starts_with("c:/program files") {
        return Place::System;
    }
    Place::Workspace
}

/// A folder right under a home directory (`~/Documents`, `~/work`, a
/// whole project) or anything in the folders that hold a user's own files:
/// deleting one recursively loses work no build can recreate.
fn user_tree(p: &str) -> bool {
    const USER_DATA: &[&str] = &[
        "Documents",
        "Desktop",
        "Pictures",
        "Music",
        "Videos",
        "Movies",
        "Downloads",
        "Dropbox",
        "OneDrive",
        "Google Drive",
        "iCloud Drive",
    ];
    let Some(end) = home_prefix(p) else {
        return false;
    };
    let rest: Vec<&str> = p[end..]
        .trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    match rest.as_slice() {
        [only] => !only.starts_with('.') && !only.contains(['*', '?']),
        [first, ..] => USER_DATA.contains(first),
        [] => false,
    }
}

/// A directory anyone may write (`/tmp`, `/var/tmp`, `/dev/shm`), or a path
/// under one.
pub fn in_temp_dir(p: &str) -> bool {
    const SCRATCH: &[&str] = &["/tmp", "/var/tmp", "/dev/shm", "/private/tmp"];
    SCRATCH.iter().any(|s| {
        p.strip_prefix(s)
            .is_some_and(|r| r.is_empty() || r.starts_with('/'))
    })
}

/// A sensitive location touched by a call.
#[derive(Debug, Clone)]
pub struct PathHit {
    pub rule: usize,
    pub access: Access,
    pub path: String,
}

impl ToolRules {
    /// Sensitive-path rules matching one string (globs resolved against
    /// well-known concrete paths).
    pub fn sensitive(&self, s: &str, access: Access) -> Vec<PathHit> {
        let norm = normalize_path(s);
        let mut out: Vec<PathHit> = self
            .path_set
            .matches(&norm)
            .iter()
            .filter(|&rule| {
                !self.paths[rule]
                    .unless
                    .as_ref()
                    .is_some_and(|u| u.is_match(&norm))
            })
            .map(|rule| PathHit {
                rule,
                access,
                path: norm.clone(),
            })
            .collect();
        if out.is_empty() && norm.contains(['*', '?', '[']) {
            let tail = norm.trim_start_matches("~/").trim_start_matches("/root/");
            for concrete in &self.canonical_paths {
                let ctail = concrete.trim_start_matches("~/");
                if glob_match(&norm, concrete) || glob_match(tail, ctail) {
                    out.extend(self.path_set.matches(concrete).iter().map(|rule| PathHit {
                        rule,
                        access,
                        path: concrete.clone(),
                    }));
                }
            }
        }
        out
    }

    /// What writing (or deleting) `path` does, with the rule that says so.
    /// `only_settings` is asked, with the rule's id, when the rule has a
    /// `settings_effect`: whether the writer only writes tool settings.
    pub fn write_effect(
        &self,
        path: &str,
        access: Access,
        only_settings: impl FnOnce(&str) -> bool,
    ) -> (Effect, &str) {
        let norm = normalize_path(path);
        if let Some(i) = self.write_set.matches(&norm).iter().next() {
            let w = &self.writes[i];
            return match w.settings_effect {
                Some(e) if access == Access::Write && only_settings(&w.id) => (e, &w.id),
                _ => (w.effect, &w.id),
            };
        }
        // Globs in system trees (`rm -rf /usr/*`) are the tree.
        let base = norm.trim_end_matches("/*").trim_end_matches('*');
        // A developer tool's own options in its file under the home
        // directory, when the writer says which (`echo 'set -g mouse on'
        // >> ~/.tmux.conf`).
        if place(base) == Place::HomeConfig
            && access == Access::Write
            && only_settings("home_config")
        {
            return (Effect::Settings, "home_settings");
        }
        if matches!(access, Access::Delete { .. }) && package_cache(base) {
            return (Effect::Write, "cache_clean");
        }
        match (place(base), access) {
            (Place::Workspace, Access::Delete { recursive: true }) if user_tree(base) => {
                (Effect::Destroy, "home_tree_delete")
            }
            (Place::Workspace | Place::Scratch, _) => (Effect::Write, "workspace"),
            (Place::Home, Access::Delete { .. }) => (Effect::Destroy, "home_delete"),
            (Place::Home | Place::HomeConfig, _) => (Effect::WriteOutside, "home_config"),
            (Place::Device, _) => (Effect::Destroy, "device"),
            (Place::System, Access::Delete { recursive: true }) => {
                (Effect::Destroy, "system_tree_delete")
            }
            (Place::System, _) => (Effect::SystemChange, "system_path"),
        }
    }
}

/// Where an archive is unpacked (`tar -x … -C DIR`, `unzip -d DIR`, `cpio
/// -i -D DIR`), as a glob over that directory: every file the archive
/// holds is written there.
pub fn extraction_dir(c: &crate::detectors::shell::Cmd) -> Option<String> {
    let a = &c.args;
    let value = |flags: &[&str]| value_after(a, flags).first().map(|v| v.to_string());
    let dir = match c.program.as_str() {
        "tar" | "gtar" | "bsdtar" => {
            // `-x`, a short group with `x` (`-xzf`) or the old bundled form
            // without a dash (`xzf`).
            let extract = a.iter().enumerate().any(|(i, x)| {
                matches!(x.as_str(), "--extract" | "--get")
                    || (x.starts_with('-') && !x.starts_with("--") && x[1..].contains('x'))
                    || (i == 0 && !x.starts_with('-') && x.contains('x'))
            });
            // Members with absolute names (`-P`) land wherever they name:
            // anywhere under the root.
            let absolute = a.iter().any(|x| {
                x == "--absolute-names"
                    || (x.starts_with('-') && !x.starts_with("--") && x[1..].contains('P'))
            });
            match (extract, absolute) {
                (false, _) => None,
                (true, true) => Some("/".to_string()),
                (true, false) => value(&["-C", "--directory"]),
            }
        }
        // `7z x -o/root/.ssh` (the directory is glued to -o).
        "7z" | "7za" | "7zr" | "7zz" => (a.first().is_some_and(|x| x == "x" || x == "e"))
            .then(|| {
                a.iter()
                    .find_map(|x| x.strip_prefix("-o").map(str::to_string))
            })
            .flatten(),
        "unsquashfs" => value(&["-d", "-dest"]),
        "dpkg-deb" => a
            .iter()
            .position(|x| {
                matches!(
                    x.as_str(),
                    "-x" | "--extract" | "-X" | "--vextract" | "-R" | "--raw-extract"
                )
            })
            .and_then(|i| a.get(i + 2).cloned()),
        // `git apply --unsafe-paths --directory=/`: the patch's paths land
        // under that directory, even outside the working tree; a checkout
        // into `--work-tree=/etc` writes there.
        "git" => {
            let sub = a.iter().find(|x| !x.starts_with('-')).map(String::as_str);
            if sub == Some("apply") && a.iter().any(|x| x == "--unsafe-paths") {
                value(&["--directory"])
            } else if matches!(
                sub,
                Some("checkout" | "restore" | "reset" | "switch" | "stash" | "merge" | "pull")
            ) {
                // With a pathspec (`-- sudoers`), that file under the tree.
                let tree = value(&["--work-tree"])?;
                let spec = a.iter().position(|x| x == "--").and_then(|i| a.get(i + 1));
                if let Some(spec) = spec {
                    return Some(format!("{}/{spec}", tree.trim_end_matches('/')));
                }
                Some(tree)
            } else {
                None
            }
        }
        "unzip" => value(&["-d"]),
        "cpio" => a
            .iter()
            .any(|x| x == "--extract" || (x.starts_with("-i") && !x.starts_with("--")))
            .then(|| value(&["-D", "--directory"]))
            .flatten(),
        _ => None,
    }?;
    Some(match dir.trim_end_matches('/') {
        "" => "/".to_string(),
        d => format!("{d}/*"),
    })
}

/// A string that is a path as a whole (not prose mentioning one).
pub fn looks_like_path(s: &str) -> bool {
    let s = s.trim();
    if s.is_empty() || s.len() > 4096 || s.contains('\n') {
        return false;
    }
    let b = s.as_bytes();
    let windows = b.len() > 2
        && b[0].is_ascii_alphabetic()
        && b[1] == b':'
        && (b[2] == b'\\' || b[2] == b'/');
    let spaced = s.split_whitespace().count() > 1;
    (s.starts_with('/')
        || s.starts_with("~/")
        || s == "~"
        || s.starts_with("./")
        || s.starts_with("../")
        || s.starts_with("$HOME")
        || windows)
        && (!spaced || s.split_whitespace().count() <= 3)
        || (!spaced && s.contains('/') && !s.contains("://"))
        || (!spaced && s.starts_with('.') && s.len() > 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn places() {
        assert_eq!(place("src/main.rs"), Place::Workspace);
        assert_eq!(place("/workspace/src/main.rs"), Place::Workspace);
        assert_eq!(place("/home/dev/projects/app/x.rs"), Place::Workspace);
        assert_eq!(place("~/.bashrc"), Place::HomeConfig);
        assert_eq!(place("/root/.ssh/authorized_keys"), Place::HomeConfig);
        assert_eq!(place("~"), Place::Home);
        assert_eq!(place("/home/dev/"), Place::Home);
        assert_eq!(place("/tmp/x"), Place::Scratch);
        assert_eq!(place("/dev/null"), Place::Scratch);
        assert_eq!(place("/dev/sda"), Place::Device);
        assert_eq!(place("/etc/hosts"), Place::System);
        assert_eq!(place("/"), Place::System);
        assert_eq!(place("C:/Windows/System32"), Place::System);
    }

    #[test]
    fn path_shapes() {
        for p in [
            "/root/.ssh/id_rsa",
            "~/.aws/credentials",
            "./x",
            "src/lib.rs",
            ".env",
            "C:\\Users\\a\\x",
        ] {
            assert!(looks_like_path(p), "{p}");
        }
        for p in [
            "hello world",
            "https://example.com/x",
            "fix the bug in parser",
            "",
        ] {
            assert!(!looks_like_path(p), "{p}");
        }
    }
}
