//! The effects a tool call can have, and what a profile decides for each.
//!
//! A call is judged by what it does, never by the name of the tool that
//! does it: the analysis ([`super::analyze`]) turns commands, code, paths,
//! hosts and the verbs of file and HTTP tools into effects, and the
//! profile's `[tools.effects]` table maps every effect to a decision. The
//! set is closed (metric labels and policy keys use these names).

use crate::types::{Decision, Severity};
use serde::Deserialize;
use std::collections::BTreeMap;

/// What a tool call does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Effect {
    // Ordinary development work.
    Read,
    Build,
    Vcs,
    Write,
    LocalNet,
    InfraRead,
    Push,
    Install,
    Fetch,
    Container,
    /// Tool settings written into a start-up or client configuration file,
    /// judged harmless by what they will run, load and reach.
    Settings,
    // Side effects a human should see.
    WriteOutside,
    ForcePush,
    SystemChange,
    InfraChange,
    Publish,
    /// A package installed from a source outside the known registries.
    InstallUnlisted,
    NetworkSend,
    RawNetwork,
    Listener,
    Privileged,
    Recon,
    EnvRead,
    Destroy,
    // Attacks.
    CredentialRead,
    Shell,
    DownloadExec,
    Exfiltration,
    Persistence,
    PrivilegeEscalation,
    DefenseEvasion,
    Cryptomining,
    EncodedExec,
    /// The call could not be fully inspected (size limits).
    Uninspectable,
}

impl Effect {
    pub const ALL: [Effect; 34] = [
        Effect::Read,
        Effect::Build,
        Effect::Vcs,
        Effect::Write,
        Effect::LocalNet,
        Effect::InfraRead,
        Effect::Push,
        Effect::Install,
        Effect::Fetch,
        Effect::Container,
        Effect::Settings,
        Effect::WriteOutside,
        Effect::ForcePush,
        Effect::SystemChange,
        Effect::InfraChange,
        Effect::Publish,
        Effect::InstallUnlisted,
        Effect::NetworkSend,
        Effect::RawNetwork,
        Effect::Listener,
        Effect::Privileged,
        Effect::Recon,
        Effect::EnvRead,
        Effect::Destroy,
        Effect::CredentialRead,
        Effect::Shell,
        Effect::DownloadExec,
        Effect::Exfiltration,
        Effect::Persistence,
        Effect::PrivilegeEscalation,
        Effect::DefenseEvasion,
        Effect::Cryptomining,
        Effect::EncodedExec,
        Effect::Uninspectable,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Effect::Read => "read",
            Effect::Build => "build",
            Effect::Vcs => "vcs",
            Effect::Write => "write",
            Effect::LocalNet => "local_net",
            Effect::InfraRead => "infra_read",
            Effect::Push => "push",
            Effect::Install => "install",
            Effect::Fetch => "fetch",
            Effect::Container => "container",
            Effect::Settings => "settings",
            Effect::WriteOutside => "write_outside",
            Effect::ForcePush => "force_push",
            Effect::SystemChange => "system_change",
            Effect::InfraChange => "infra_change",
            Effect::Publish => "publish",
            Effect::InstallUnlisted => "install_unlisted",
            Effect::NetworkSend => "network_send",
            Effect::RawNetwork => "raw_network",
            Effect::Listener => "listener",
            Effect::Privileged => "privileged",
            Effect::Recon => "recon",
            Effect::EnvRead => "env_read",
            Effect::Destroy => "destroy",
            Effect::CredentialRead => "credential_read",
            Effect::Shell => "shell",
            Effect::DownloadExec => "download_exec",
            Effect::Exfiltration => "exfiltration",
            Effect::Persistence => "persistence",
            Effect::PrivilegeEscalation => "privilege_escalation",
            Effect::DefenseEvasion => "defense_evasion",
            Effect::Cryptomining => "cryptomining",
            Effect::EncodedExec => "encoded_exec",
            Effect::Uninspectable => "uninspectable",
        }
    }

    pub fn parse(name: &str) -> Option<Effect> {
        Effect::ALL.iter().copied().find(|e| e.as_str() == name)
    }

    /// One line for refusals and audit.
    pub fn describe(self) -> &'static str {
        match self {
            Effect::Read => "reads or searches files",
            Effect::Build => "builds, tests or runs project code",
            Effect::Vcs => "changes the local repository",
            Effect::Write => "writes inside the workspace",
            Effect::LocalNet => "talks to a local service",
            Effect::InfraRead => "reads infrastructure state",
            Effect::Push => "pushes to a remote branch",
            Effect::Install => "installs packages from a registry",
            Effect::Fetch => "reads from the network",
            Effect::Container => "builds or runs containers",
            Effect::Settings => "sets up developer tools in a start-up or client configuration file",
            Effect::WriteOutside => "writes or deletes outside the workspace",
            Effect::ForcePush => "rewrites a remote branch's history",
            Effect::SystemChange => "changes the system (services, packages, system files)",
            Effect::InfraChange => "changes deployed infrastructure",
            Effect::Publish => "publishes a package or image",
            Effect::InstallUnlisted => {
                "installs a package from outside the known registries (its install scripts run code from there)"
            }
            Effect::NetworkSend => "sends data to a remote service",
            Effect::RawNetwork => "opens a raw network connection or talks to a raw IP",
            Effect::Listener => "opens a listening network service",
            Effect::Privileged => "runs a command with elevated privileges",
            Effect::Recon => "scans the network or searches for privilege escalation paths",
            Effect::EnvRead => "dumps environment variables (which often hold secrets)",
            Effect::Destroy => "destroys data or systems",
            Effect::CredentialRead => "reads credentials or secrets",
            Effect::Shell => "opens an interactive or remote shell",
            Effect::DownloadExec => "downloads and runs code",
            Effect::Exfiltration => "sends local data out",
            Effect::Persistence => "installs persistence (start-up files, scheduled jobs, keys)",
            Effect::PrivilegeEscalation => "escalates privileges",
            Effect::DefenseEvasion => "disables monitoring or erases traces",
            Effect::Cryptomining => "runs a cryptocurrency miner",
            Effect::EncodedExec => "runs an encoded or obfuscated payload",
            Effect::Uninspectable => "could not be fully inspected",
        }
    }

    /// Ordinary work that session risk never escalates unless the profile
    /// says otherwise (`[session] calm_effects`).
    pub fn default_calm(self) -> bool {
        matches!(
            self,
            Effect::Read
                | Effect::Build
                | Effect::Vcs
                | Effect::Write
                | Effect::LocalNet
                | Effect::InfraRead
        )
    }

    /// The built-in decision (the `production` profile's intent), used for
    /// effects a profile's table does not name.
    pub fn default_decision(self) -> Decision {
        use Effect::*;
        match self {
            Read | Build | Vcs | Write | LocalNet | InfraRead | Push | Install | Fetch
            | Container | Settings => Decision::Allow,
            WriteOutside | ForcePush | SystemChange | InfraChange | Publish | InstallUnlisted
            | NetworkSend | RawNetwork | Listener | Privileged | Recon | EnvRead | Destroy => {
                Decision::RequireApproval
            }
            CredentialRead | Shell | DownloadExec | Exfiltration | Persistence
            | PrivilegeEscalation | DefenseEvasion | Cryptomining | EncodedExec | Uninspectable => {
                Decision::Block
            }
        }
    }
}

impl std::fmt::Display for Effect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A decision name in a profile's effect table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EffectDecision {
    Allow,
    Challenge,
    RequireApproval,
    Block,
}

impl EffectDecision {
    pub fn decision(self) -> Decision {
        match self {
            EffectDecision::Allow => Decision::Allow,
            EffectDecision::Challenge => Decision::Challenge,
            EffectDecision::RequireApproval => Decision::RequireApproval,
            EffectDecision::Block => Decision::Block,
        }
    }
}

/// Severity and score of the finding an effect produces under a decision:
/// findings stay comparable across profiles (a blocked effect is critical,
/// one that needs approval high, a flagged one medium). The decision
/// itself is carried by the finding's verdict, not re-derived from them.
pub fn weight(decision: Decision) -> (Severity, f64) {
    match decision {
        Decision::Block => (Severity::Critical, 1.0),
        Decision::RequireApproval => (Severity::High, 0.6),
        Decision::Challenge => (Severity::Medium, 0.3),
        Decision::Allow | Decision::AllowWithRedaction => (Severity::Low, 0.0),
    }
}

/// Every effect's decision under one profile.
#[derive(Debug, Clone)]
pub struct EffectTable {
    decisions: [Decision; Effect::ALL.len()],
}

impl EffectTable {
    /// From a profile's `[tools.effects]` (effect name → decision); effects
    /// it does not name keep their built-in decision.
    pub fn new(entries: &BTreeMap<String, EffectDecision>) -> Result<EffectTable, String> {
        let mut decisions = Effect::ALL.map(Effect::default_decision);
        for (name, d) in entries {
            let e = Effect::parse(name).ok_or_else(|| {
                format!(
                    "tools.effects: unknown effect {name:?} (known: {})",
                    Effect::ALL.map(Effect::as_str).join(", ")
                )
            })?;
            decisions[e as usize] = d.decision();
        }
        Ok(EffectTable { decisions })
    }

    pub fn decision(&self, e: Effect) -> Decision {
        self.decisions[e as usize]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_are_unique() {
        for (i, e) in Effect::ALL.iter().enumerate() {
            assert_eq!(*e as usize, i, "ALL is in declaration order");
            assert_eq!(Effect::parse(e.as_str()), Some(*e));
        }
    }

    #[test]
    fn table_overrides_and_rejects_unknown_names() {
        let mut m = BTreeMap::new();
        m.insert("fetch".to_string(), EffectDecision::RequireApproval);
        let t = EffectTable::new(&m).unwrap();
        assert_eq!(t.decision(Effect::Fetch), Decision::RequireApproval);
        assert_eq!(t.decision(Effect::Read), Decision::Allow);
        assert_eq!(t.decision(Effect::Shell), Decision::Block);
        m.insert("telepathy".to_string(), EffectDecision::Block);
        assert!(EffectTable::new(&m).unwrap_err().contains("telepathy"));
    }
}
