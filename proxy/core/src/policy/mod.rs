//! Policy profiles: schema, loading, validation and compilation.
//!
//! A profile is a TOML file (`policies/dev.toml` …). Unknown keys are errors
//! that point at the offending line, never silently ignored and never a
//! crash. Loading compiles everything the detectors need (automata, regexes)
//! once, so the hot path only reads an immutable [`Policy`].

pub mod connect;
mod error;
mod evaluate;
pub mod schema;

pub use error::PolicyError;
pub use evaluate::{evaluate, Evaluation};

use crate::approvals::ApprovalsConfig;
pub use crate::detectors::DetectorToggles;
use crate::detectors::{
    chains::ChainRule, injection::InjectionConfig, secrets::SecretsConfig, tools::EgressConfig,
    tools::ToolsConfig, DetectorConfigs, Detectors,
};
use crate::redact::{RedactionConfig, Redactor};
use crate::sources::RuleSources;
use schema::SessionConfig;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::path::PathBuf;

/// Profiles compiled into the binary, so `ASG_POLICY=dev` works anywhere
/// (for example in a container without the `policies/` folder).
pub const EMBEDDED_PROFILES: &[(&str, &str)] = &[
    ("dev", include_str!("../../../../policies/dev.toml")),
    (
        "production",
        include_str!("../../../../policies/production.toml"),
    ),
    ("strict", include_str!("../../../../policies/strict.toml")),
];

/// The on-disk shape of a profile.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyFile {
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub decision: DecisionConfig,
    #[serde(default)]
    pub detectors: DetectorToggles,
    #[serde(default)]
    pub injection: InjectionConfig,
    #[serde(default)]
    pub secrets: SecretsConfig,
    #[serde(default)]
    pub redaction: RedactionConfig,
    #[serde(default)]
    pub tools: ToolsConfig,
    #[serde(default)]
    pub egress: EgressConfig,
    /// Chain rules; absent = the built-in set, `[]` = none.
    #[serde(default)]
    pub chains: Option<Vec<ChainRule>>,
    #[serde(default)]
    pub proxy: ProxyPolicy,
    /// Session identity and session risk (`[session]`).
    #[serde(default)]
    pub session: SessionConfig,
    /// Approvals and permits (`[approvals]`).
    #[serde(default)]
    pub approvals: ApprovalsConfig,
    /// Forward-proxy destinations: intercept, passthrough or deny (`connect.rs`).
    #[serde(default)]
    pub connect: connect::ConnectPolicy,
}

/// Thresholds of the scoring model (the profile's `[decision]` block).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DecisionConfig {
    pub block_score: f64,
    pub challenge_score: f64,
    pub block_high_count: usize,
    pub block_if_critical: bool,
    pub detector_score_cap: f64,
    pub max_findings_per_detector: usize,
    pub allow_with_redaction: bool,
}

impl Default for DecisionConfig {
    /// The built-in defaults the decision API's answers are calibrated on.
    fn default() -> Self {
        DecisionConfig {
            block_score: 1.8,
            challenge_score: 0.9,
            block_high_count: 2,
            block_if_critical: true,
            detector_score_cap: 1.5,
            max_findings_per_detector: 8,
            allow_with_redaction: true,
        }
    }
}

/// How the proxy enforces decisions on live traffic.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProxyPolicy {
    /// Paths no route dialect understands: `pass` (forward, audited) or
    /// `refuse` (404 without contacting the upstream).
    pub unknown_paths: UnknownPaths,
    /// A blocked tool call in a model response becomes an assistant
    /// `refusal` the SDKs parse, or an API `error`.
    pub blocked_tool_call: BlockedToolCall,
    /// What a `challenge` on a request (no tool call to hold) does.
    pub request_challenge: RequestChallenge,
    /// What a `challenge` on a tool call does: let it through flagged
    /// (`allow`), ask a human (`require_approval`), or refuse (`block`).
    pub tool_challenge: ToolChallenge,
    /// Largest request or buffered response body, in bytes.
    pub max_body_bytes: usize,
    /// Largest request body after content decoding (gzip, br, …): a few
    /// KiB of gzip can inflate to megabytes, and inspection costs grow
    /// with the decoded size. Beyond it the request is refused (413).
    pub max_decoded_bytes: usize,
    /// Bodies that are not valid JSON on an inspected path: `reject` (400)
    /// or `pass` (forward uninspected, audited).
    pub malformed_body: MalformedBody,
}

impl Default for ProxyPolicy {
    fn default() -> Self {
        ProxyPolicy {
            unknown_paths: UnknownPaths::Pass,
            blocked_tool_call: BlockedToolCall::Refusal,
            request_challenge: RequestChallenge::Allow,
            tool_challenge: ToolChallenge::RequireApproval,
            max_body_bytes: 8 * 1024 * 1024,
            max_decoded_bytes: 8 * 1024 * 1024,
            malformed_body: MalformedBody::Reject,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UnknownPaths {
    Pass,
    Refuse,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BlockedToolCall {
    Refusal,
    Error,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RequestChallenge {
    Allow,
    Block,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ToolChallenge {
    Allow,
    RequireApproval,
    Block,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MalformedBody {
    Reject,
    Pass,
}

/// Where a policy came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolicySource {
    Embedded(&'static str),
    File(PathBuf),
}

impl std::fmt::Display for PolicySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PolicySource::Embedded(name) => write!(f, "embedded:{name}"),
            PolicySource::File(p) => write!(f, "{}", p.display()),
        }
    }
}

/// A validated, compiled profile. Immutable; swapped whole on reload.
pub struct Policy {
    pub file: PolicyFile,
    /// `<name>@<first 12 hex of sha256(source + injection data)>`: changes
    /// with every edit of the profile, its phrase book or its model.
    pub version: String,
    pub source: PolicySource,
    pub detectors: Detectors,
    pub redactor: Redactor,
}

impl std::fmt::Debug for Policy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Policy")
            .field("version", &self.version)
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

impl Policy {
    pub fn name(&self) -> &str {
        &self.file.name
    }

    /// Parse, validate and compile a profile. `sources` fetches the data
    /// files (rule files, model) the profile names, relative to its folder;
    /// `None` = the embedded defaults.
    pub fn compile(
        text: &str,
        source: PolicySource,
        sources: Option<&dyn RuleSources>,
    ) -> Result<Policy, PolicyError> {
        let origin = source.to_string();
        let file = Policy::parse(text, &origin)?;
        let configs = DetectorConfigs {
            toggles: &file.detectors,
            injection: &file.injection,
            secrets: &file.secrets,
            pii: &file.redaction.pii,
            tools: &file.tools,
            egress: &file.egress,
            chains: &file.chains,
        };
        let detectors = Detectors::compile(&configs, sources)
            .map_err(|msg| PolicyError::semantic(&origin, text, "", "", msg))?;
        let redactor = Redactor::new(
            &file.redaction,
            detectors.secrets.clone(),
            detectors.pii.clone(),
        );
        // The profile and the injection data it compiled (phrase book,
        // model): a new model file is a new version, so reloads swap it in.
        let mut hasher = Sha256::new();
        hasher.update(text.as_bytes());
        hasher.update(detectors.injection.fingerprint().as_bytes());
        let digest = hasher.finalize();
        let version = format!("{}@{}", file.name, &hex::encode(digest)[..12]);
        Ok(Policy {
            file,
            version,
            source,
            detectors,
            redactor,
        })
    }

    /// Parse and validate a profile without compiling its detectors (the
    /// cheap half of [`compile`](Self::compile)).
    pub fn parse(text: &str, origin: &str) -> Result<PolicyFile, PolicyError> {
        let file: PolicyFile =
            toml::from_str(text).map_err(|e| PolicyError::from_toml(origin, text, &e))?;
        validate(&file).map_err(|(section, key, msg)| {
            PolicyError::semantic(origin, text, section, key, msg)
        })?;
        Ok(file)
    }

    /// Load an embedded profile by name (`dev`, `production`, `strict`),
    /// its data files from `sources` (`None` = the embedded ones). Profiles
    /// on disk are read by the app layer (`asg::app::policy::load`), which
    /// hands their text to [`compile`](Self::compile).
    pub fn load(name: &str, sources: Option<&dyn RuleSources>) -> Result<Policy, PolicyError> {
        match EMBEDDED_PROFILES.iter().find(|(n, _)| *n == name) {
            Some((name, text)) => Policy::compile(text, PolicySource::Embedded(name), sources),
            None => Err(PolicyError::NotFound(name.to_string())),
        }
    }
}

type Invalid = (&'static str, &'static str, String);

fn validate(p: &PolicyFile) -> Result<(), Invalid> {
    let d = &p.decision;
    if p.name.trim().is_empty() {
        return Err(("", "name", "name must not be empty".into()));
    }
    if d.block_score <= 0.0 || !d.block_score.is_finite() {
        return Err(("decision", "block_score", "block_score must be > 0".into()));
    }
    if !(0.0..=d.block_score).contains(&d.challenge_score) {
        return Err((
            "decision",
            "challenge_score",
            format!(
                "challenge_score must be between 0 and block_score ({})",
                d.block_score
            ),
        ));
    }
    if d.block_high_count < 1 {
        return Err((
            "decision",
            "block_high_count",
            "block_high_count must be >= 1".into(),
        ));
    }
    if d.detector_score_cap <= 0.0 {
        return Err((
            "decision",
            "detector_score_cap",
            "detector_score_cap must be > 0".into(),
        ));
    }
    if d.max_findings_per_detector < 1 {
        return Err((
            "decision",
            "max_findings_per_detector",
            "max_findings_per_detector must be >= 1".into(),
        ));
    }
    if p.proxy.max_body_bytes < 1024 {
        return Err((
            "proxy",
            "max_body_bytes",
            "max_body_bytes must be >= 1024".into(),
        ));
    }
    if p.proxy.max_decoded_bytes < 1024 {
        return Err((
            "proxy",
            "max_decoded_bytes",
            "max_decoded_bytes must be >= 1024".into(),
        ));
    }
    p.redaction.validate()?;
    p.session.validate()?;
    p.approvals.validate()?;
    p.connect.validate()?;
    for (i, chain) in p.chains.iter().flatten().enumerate() {
        if chain.sequence.len() < 2 {
            return Err((
                "chains",
                "sequence",
                format!("chain #{} ({}) needs at least two steps", i + 1, chain.id),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_profiles_compile() {
        for (name, _) in EMBEDDED_PROFILES {
            let p = Policy::load(name, None).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(p.name(), *name);
            assert!(p.version.starts_with(name));
        }
    }

    #[test]
    fn profiles_get_stricter() {
        let dev = Policy::load("dev", None).unwrap();
        let prod = Policy::load("production", None).unwrap();
        let strict = Policy::load("strict", None).unwrap();
        assert!(dev.file.decision.block_score > prod.file.decision.block_score);
        assert!(prod.file.decision.block_score > strict.file.decision.block_score);
        assert!(prod.file.decision.block_high_count <= dev.file.decision.block_high_count);
    }

    #[test]
    fn unknown_key_points_at_line() {
        let text = "name = \"x\"\n[decision]\nblock_scor = 2.0\n";
        let err = Policy::compile(text, PolicySource::File("p.toml".into()), None).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("p.toml:3"), "{msg}");
        assert!(msg.contains("block_scor"), "{msg}");
    }

    #[test]
    fn semantic_error_points_at_key_line() {
        let text = "name = \"x\"\n\n[decision]\nblock_score = 1.0\nchallenge_score = 3.0\n";
        let err = Policy::compile(text, PolicySource::File("p.toml".into()), None).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("p.toml:5"), "{msg}");
        assert!(msg.contains("challenge_score"), "{msg}");
    }

    #[test]
    fn version_changes_with_content() {
        let a = Policy::compile("name = \"x\"\n", PolicySource::Embedded("x"), None).unwrap();
        let b =
            Policy::compile("name = \"x\"\n# edit\n", PolicySource::Embedded("x"), None).unwrap();
        assert_ne!(a.version, b.version);
    }

    #[test]
    fn unknown_profile_is_an_error() {
        assert!(matches!(
            Policy::load("nope", None),
            Err(PolicyError::NotFound(_))
        ));
    }
}
