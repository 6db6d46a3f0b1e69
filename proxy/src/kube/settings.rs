//! The injector's settings: one YAML (or JSON) file, rendered by the Helm
//! chart into a ConfigMap and read by `asg injector --config` and
//! `asg kube-inject --config`. Every key has a default, so an empty file
//! (or none) is valid; unknown keys are errors, never ignored.

use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// How the agent's traffic reaches the sidecar.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// `HTTPS_PROXY` and friends point at the sidecar; no privileges needed.
    ProxyEnv,
    /// An init container redirects outbound TCP to the sidecar (iptables).
    Transparent,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::ProxyEnv => "proxy-env",
            Mode::Transparent => "transparent",
        }
    }

    pub fn parse(s: &str) -> Option<Mode> {
        match s.trim() {
            "proxy-env" => Some(Mode::ProxyEnv),
            "transparent" => Some(Mode::Transparent),
            _ => None,
        }
    }
}

/// Per-namespace defaults; the namespace was prepared (CA Secret, policy
/// ConfigMap) by whoever listed it here.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct NamespaceSettings {
    pub profile: Option<String>,
    pub mode: Option<Mode>,
}

/// One file of the policy ConfigMap and where it lands in the sidecar's
/// policy folder (`rules/secrets.toml` …): ConfigMap keys cannot hold `/`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyItem {
    pub key: String,
    pub path: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default, rename_all = "camelCase")]
pub struct Settings {
    /// The `asg` image, used for the sidecar and the init container.
    pub image: String,
    pub image_pull_policy: String,
    /// Default mode and profile (a namespace entry or a pod annotation overrides them).
    pub mode: Mode,
    pub profile: String,
    /// Profile names the policy ConfigMap holds; an annotation naming
    /// another is refused. Empty: any name.
    pub profiles: Vec<String>,
    /// Native sidecars (an init container with `restartPolicy: Always`,
    /// Kubernetes ≥ 1.29): the proxy starts before and stops after the agent.
    pub native_sidecars: bool,
    /// Per-namespace defaults (profile, mode).
    pub namespaces: BTreeMap<String, NamespaceSettings>,
    /// Refuse pods of namespaces not in `namespaces`: the Helm chart
    /// installs the CA Secret and policy ConfigMap only there, and a pod
    /// elsewhere would wait forever for them.
    pub only_listed_namespaces: bool,
    /// The sidecar's uid and gid: excluded from redirection.
    pub uid: u32,
    pub gid: u32,
    pub proxy_port: u16,
    pub transparent_port: u16,
    pub admin_port: u16,
    /// Address of the admin listener: the pod address, for kubelet probes
    /// and metrics scraping (its API needs the operator key).
    pub admin_address: String,
    /// Transparent mode: destination ports redirected, CIDRs never redirected.
    pub redirect_ports: Vec<u16>,
    pub exclude_cidrs: Vec<String>,
    /// Transparent mode: `auto` adds ip6tables rules when the pod has IPv6.
    pub ipv6: String,
    /// Extra `NO_PROXY` entries (loopback is always there).
    pub no_proxy: Vec<String>,
    /// Proxy worker threads (the node's CPU count is not the pod's).
    pub threads: u32,
    /// Audit kept per pod (the data volume is sized from it).
    pub audit_max_bytes: u64,
    pub log_format: String,
    /// Sidecar and init container resources (`requests`, `limits`).
    pub resources: Value,
    pub init_resources: Value,
    /// The interception CA Secret (`tls.crt`, `tls.key`, `ca.crt`) in each namespace.
    pub ca_secret: String,
    /// The policy ConfigMap in each namespace, and its files.
    pub policy_config_map: String,
    pub policy_items: Vec<PolicyItem>,
    /// Secret with the admin API's operator key (`operator-key`); empty: admin auth off.
    pub admin_secret: String,
    /// Sidecars also write audit records to stdout (`ASG_AUDIT_STDOUT`).
    pub audit_stdout: bool,
    /// Shared state for every sidecar (`ASG_STATE_URL`); empty: each keeps its own.
    pub state_url: String,
    /// `ASG_STATE_PREFIX`; empty: the URL's or the default.
    pub state_prefix: String,
    /// Secret (in each namespace) and key holding the shared state's
    /// password (`ASG_STATE_PASSWORD`); empty: none, or in the URL.
    pub state_password_secret: String,
    pub state_password_key: String,
}

impl Default for Settings {
    fn default() -> Self {
        let item = |key: &str, path: &str| PolicyItem {
            key: key.to_string(),
            path: path.to_string(),
        };
        Settings {
            image: format!("asg:{}", env!("CARGO_PKG_VERSION")),
            image_pull_policy: "IfNotPresent".to_string(),
            mode: Mode::ProxyEnv,
            profile: "dev".to_string(),
            profiles: vec!["dev".into(), "production".into(), "strict".into()],
            native_sidecars: true,
            namespaces: BTreeMap::new(),
            only_listed_namespaces: false,
            uid: 1337,
            gid: 1337,
            proxy_port: 15080,
            transparent_port: 15001,
            admin_port: 15090,
            admin_address: "0.0.0.0".to_string(),
            redirect_ports: vec![80, 443],
            exclude_cidrs: Vec::new(),
            ipv6: "auto".to_string(),
            no_proxy: Vec::new(),
            threads: 2,
            audit_max_bytes: 256 << 20,
            log_format: "json".to_string(),
            resources: json!({
                "requests": {"cpu": "50m", "memory": "64Mi"},
                "limits": {"memory": "512Mi"}
            }),
            init_resources: json!({
                "requests": {"cpu": "10m", "memory": "16Mi"},
                "limits": {"memory": "64Mi"}
            }),
            ca_secret: "asg-ca".to_string(),
            policy_config_map: "asg-policies".to_string(),
            policy_items: vec![
                item("dev.toml", "dev.toml"),
                item("production.toml", "production.toml"),
                item("strict.toml", "strict.toml"),
                item("chains.toml", "rules/chains.toml"),
                item("injection.toml", "rules/injection.toml"),
                item("secrets.toml", "rules/secrets.toml"),
                item("tools.toml", "rules/tools.toml"),
            ],
            admin_secret: "asg-admin".to_string(),
            audit_stdout: false,
            state_url: String::new(),
            state_prefix: String::new(),
            state_password_secret: String::new(),
            state_password_key: "password".to_string(),
        }
    }
}

/// The injector's settings file cannot be read or used.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("cannot read injector settings {}: {source}", .path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// Not YAML of the expected shape, or a value that cannot be used.
    #[error("injector settings{}: {problem}", .path.as_ref().map(|p| format!(" {}", p.display())).unwrap_or_default())]
    Invalid {
        path: Option<PathBuf>,
        problem: String,
    },
}

impl Settings {
    /// Read a settings file; `None` gives the defaults.
    pub fn load(path: Option<&Path>) -> Result<Settings, SettingsError> {
        let Some(path) = path else {
            return Ok(Settings::default());
        };
        let text = std::fs::read_to_string(path).map_err(|source| SettingsError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Settings::parse(&text).map_err(|e| match e {
            SettingsError::Invalid { problem, .. } => SettingsError::Invalid {
                path: Some(path.to_path_buf()),
                problem,
            },
            other => other,
        })
    }

    pub fn parse(text: &str) -> Result<Settings, SettingsError> {
        let invalid = |problem: String| SettingsError::Invalid {
            path: None,
            problem,
        };
        let settings: Settings = if text.trim().is_empty() {
            Settings::default()
        } else {
            serde_yaml::from_str(text).map_err(|e| invalid(e.to_string()))?
        };
        settings.validate().map_err(invalid)?;
        Ok(settings)
    }

    pub fn validate(&self) -> Result<(), String> {
        if self.image.trim().is_empty() {
            return Err("image must name the asg image".to_string());
        }
        if !matches!(
            self.image_pull_policy.as_str(),
            "Always" | "IfNotPresent" | "Never"
        ) {
            return Err(format!(
                "imagePullPolicy {:?} is not Always, IfNotPresent or Never",
                self.image_pull_policy
            ));
        }
        if self.uid == 0 {
            return Err(
                "uid 0 cannot be excluded from redirection: pick the sidecar's own uid (e.g. 1337)"
                    .to_string(),
            );
        }
        let ports = [self.proxy_port, self.transparent_port, self.admin_port];
        if ports.contains(&0)
            || ports[0] == ports[1]
            || ports[1] == ports[2]
            || ports[0] == ports[2]
        {
            return Err(
                "proxyPort, transparentPort and adminPort must be distinct and non-zero"
                    .to_string(),
            );
        }
        if self.redirect_ports.is_empty() || self.redirect_ports.contains(&0) {
            return Err("redirectPorts needs at least one port (e.g. [80, 443])".to_string());
        }
        if !matches!(self.ipv6.as_str(), "auto" | "on" | "off") {
            return Err(format!("ipv6 {:?} is not auto, on or off", self.ipv6));
        }
        if !matches!(self.log_format.as_str(), "json" | "text") {
            return Err(format!(
                "logFormat {:?} is not json or text",
                self.log_format
            ));
        }
        if self.threads == 0 {
            return Err("threads must be at least 1".to_string());
        }
        for (what, v) in [
            ("resources", &self.resources),
            ("initResources", &self.init_resources),
        ] {
            crate::kube::choices::check_resources(what, v)?;
        }
        for name in [&self.ca_secret, &self.policy_config_map] {
            if !is_dns_label(name) && !is_dns_subdomain(name) {
                return Err(format!("{name:?} is not a valid Secret or ConfigMap name"));
            }
        }
        if !self.state_url.is_empty() {
            let prefix = Some(self.state_prefix.as_str()).filter(|p| !p.is_empty());
            crate::state::redis::url::StateUrl::parse(&self.state_url, prefix, None)
                .map_err(|e| format!("stateUrl: {e}"))?;
        }
        if !self.state_password_secret.is_empty() {
            if self.state_url.is_empty() {
                return Err("statePasswordSecret is set but stateUrl is empty".to_string());
            }
            if !is_dns_subdomain(&self.state_password_secret) {
                return Err(format!(
                    "statePasswordSecret {:?} is not a valid Secret name",
                    self.state_password_secret
                ));
            }
            let key = &self.state_password_key;
            if key.is_empty()
                || !key
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b))
            {
                return Err(format!("statePasswordKey {key:?} is not a Secret key"));
            }
        }
        if !self.admin_secret.is_empty() && !is_dns_subdomain(&self.admin_secret) {
            return Err(format!(
                "adminSecret {:?} is not a valid Secret name",
                self.admin_secret
            ));
        }
        for item in &self.policy_items {
            let key_ok = !item.key.is_empty()
                && item.key.len() <= 253
                && item
                    .key
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b));
            let path_ok = !item.path.is_empty()
                && !item.path.starts_with('/')
                && !item
                    .path
                    .split('/')
                    .any(|p| p.is_empty() || p == ".." || p == ".");
            if !key_ok || !path_ok {
                return Err(format!(
                    "policyItems: {:?} -> {:?} is not a ConfigMap key and a relative path",
                    item.key, item.path
                ));
            }
        }
        let profile_names: Vec<&String> = std::iter::once(&self.profile)
            .chain(self.namespaces.values().filter_map(|n| n.profile.as_ref()))
            .collect();
        for p in profile_names {
            self.check_profile(p)?;
        }
        for ns in self.namespaces.keys() {
            if !is_dns_label(ns) {
                return Err(format!("namespaces: {ns:?} is not a namespace name"));
            }
        }
        Ok(())
    }

    /// A profile a pod may ask for.
    pub fn check_profile(&self, name: &str) -> Result<(), String> {
        let well_formed = !name.is_empty()
            && name.len() <= 63
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_".contains(&b));
        if !well_formed {
            return Err(format!(
                "profile {name:?} is not a profile name (letters, digits, - and _)"
            ));
        }
        if !self.profiles.is_empty() && !self.profiles.iter().any(|p| p == name) {
            return Err(format!(
                "profile {name:?} is not in the policy ConfigMap (known: {})",
                self.profiles.join(", ")
            ));
        }
        Ok(())
    }
}

/// RFC 1123 label: namespace names, container names.
pub fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// RFC 1123 subdomain: Secret and ConfigMap names.
pub fn is_dns_subdomain(s: &str) -> bool {
    s.len() <= 253 && s.split('.').all(is_dns_label)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_gives_the_defaults() {
        let s = Settings::parse("").unwrap();
        assert_eq!(s.mode, Mode::ProxyEnv);
        assert_eq!(s.uid, 1337);
        assert!(s.native_sidecars);
    }

    #[test]
    fn reads_camel_case_yaml() {
        let s = Settings::parse(
            "image: registry.example/asg:1.2\nmode: transparent\nnativeSidecars: false\nnamespaces:\n  agents: {profile: strict}\n  tools: {}\nredirectPorts: [443]\n",
        )
        .unwrap();
        assert_eq!(s.image, "registry.example/asg:1.2");
        assert_eq!(s.mode, Mode::Transparent);
        assert!(!s.native_sidecars);
        assert_eq!(s.namespaces["agents"].profile.as_deref(), Some("strict"));
        assert_eq!(s.redirect_ports, [443]);
    }

    #[test]
    fn bad_settings_are_one_clear_error() {
        for (text, needle) in [
            ("imagePullPolicy: Sometimes", "imagePullPolicy"),
            ("mode: sideways", "unknown variant"),
            ("uid: 0", "uid 0"),
            ("proxyPort: 15001", "distinct"),
            ("profile: nope", "not in the policy ConfigMap"),
            ("namespaces: {Agents: {}}", "not a namespace name"),
            ("frobnicate: true", "unknown field"),
            ("resources: {requests: {cpu: lots}}", "quantity"),
            (
                "policyItems: [{key: a.toml, path: ../a.toml}]",
                "relative path",
            ),
            (
                "stateUrl: 'http://redis'",
                "stateUrl: ASG_STATE_URL: unsupported scheme",
            ),
            ("statePasswordSecret: asg-redis", "stateUrl is empty"),
            (
                "stateUrl: 'redis://r'\nstatePasswordSecret: Bad_Name",
                "not a valid Secret name",
            ),
        ] {
            let err = Settings::parse(text).unwrap_err().to_string();
            assert!(err.contains(needle), "{text}: {err}");
        }
    }

    #[test]
    fn names() {
        assert!(is_dns_label("agents-1"));
        assert!(!is_dns_label("-a"));
        assert!(!is_dns_label("A"));
        assert!(is_dns_subdomain("asg-ca.v2"));
    }
}
