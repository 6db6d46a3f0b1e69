//! Tool calls judged by what they do.
//!
//! A call's arguments are analyzed ([`args`], [`analyze`]) into *effects*
//! ([`effects::Effect`]: reads, builds, pushes, installs, credential
//! access, shells, exfiltration …) and the profile's `[tools.effects]`
//! table decides each effect. A tool's name only gives the verb of a file
//! or HTTP tool (a `read_file` reads the path it is given); a shell tool
//! running `ls` is a read, and a tool of any name handed
//! `cat ~/.ssh/id_rsa` is credential access. All lists live in
//! `policies/rules/tools.toml`. Each call also yields *tags* (its effects,
//! its capability and coarse groups) that the chain detector and the
//! session layer use.

#[cfg(test)]
mod abuse_tests;
mod access;
pub mod analyze;
pub mod args;
mod auto_run;
mod build_files;
mod code;
mod code_writes;
mod command_io;
mod deferred;
mod downloads;
pub mod effects;
pub mod egress;
#[cfg(test)]
mod escape_tests;
pub mod escapes;
#[cfg(test)]
mod fetch_write_tests;
mod generated;
mod home_paths;
#[cfg(test)]
mod hook_tests;
mod hooks;
pub mod hosts;
#[cfg(test)]
mod infra_tests;
mod installs;
pub mod js;
#[cfg(test)]
mod masked_tests;
pub mod network;
pub mod paths;
mod payload;
mod printed;
#[cfg(test)]
mod read_tests;
mod remotes;
pub mod rules;
mod runners;
#[cfg(test)]
mod send_tests;
mod settings;
#[cfg(test)]
mod spelling_tests;
#[cfg(test)]
mod supply_tests;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_support;
#[cfg(test)]
mod tool_kinds_tests;
mod windows;

use super::{excerpt, ScanContext};
use crate::sources::{text_or, RuleSources};
use crate::subject::{Surface, ToolCall};
use crate::types::{Decision, DetectorId, Finding};
use analyze::Analysis;
use effects::{Effect, EffectDecision, EffectTable};
use egress::Egress;
use rules::{ToolRules, EMBEDDED_TOOL_RULES};
use serde::Deserialize;
use std::collections::BTreeMap;

pub use egress::{host_matches, host_of};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ToolsConfig {
    /// Rule file, relative to the profile's folder. Unset: embedded rules.
    pub rules_file: Option<String>,
    /// capability → tool names (added to the rule file's lists).
    pub capabilities: BTreeMap<String, Vec<String>>,
    /// capability → substrings of tool names, tried when no exact name matched.
    pub name_hints: BTreeMap<String, Vec<String>>,
    /// Extra sensitive path regexes (added to the rule file's list).
    pub sensitive_paths: Vec<String>,
    /// effect → decision (effects not named keep their built-in decision).
    pub effects: BTreeMap<String, EffectDecision>,
    /// Largest tool-argument text (all strings of one call) analyzed;
    /// a larger call is `uninspectable`.
    pub max_argument_bytes: usize,
    /// Largest single command string analyzed; a longer one is
    /// `uninspectable`.
    pub max_command_bytes: usize,
}

impl Default for ToolsConfig {
    fn default() -> Self {
        ToolsConfig {
            rules_file: None,
            capabilities: BTreeMap::new(),
            name_hints: BTreeMap::new(),
            sensitive_paths: Vec::new(),
            effects: BTreeMap::new(),
            max_argument_bytes: 1024 * 1024,
            max_command_bytes: crate::detectors::shell::MAX_SCRIPT_BYTES,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EgressConfig {
    /// Hosts (or `*.suffix`) always allowed. When non-empty and
    /// `default_deny` is set, every other host is flagged.
    pub allow: Vec<String>,
    /// Hosts (or `*.suffix`) always denied, added to the built-in list of
    /// paste, webhook, tunnel and interaction-capture services.
    pub deny: Vec<String>,
    pub default_deny: bool,
    /// Treat URLs that name a raw public IP address as `raw_network`.
    pub flag_raw_ips: bool,
}

impl Default for EgressConfig {
    fn default() -> Self {
        EgressConfig {
            allow: Vec::new(),
            deny: Vec::new(),
            default_deny: false,
            flag_raw_ips: true,
        }
    }
}

/// Size limits of one call's analysis.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_argument_bytes: usize,
    pub max_command_bytes: usize,
}

pub struct ToolDetector {
    rules: ToolRules,
    exact: BTreeMap<String, String>,
    hints: Vec<(String, String)>,
    egress: EgressConfig,
    table: EffectTable,
    limits: Limits,
}

impl std::fmt::Debug for ToolDetector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ToolDetector")
            .field("commands", &self.rules.commands.len())
            .field("paths", &self.rules.paths.len())
            .finish()
    }
}

impl ToolDetector {
    pub fn new(cfg: &ToolsConfig, egress: &EgressConfig) -> Result<Self, String> {
        Self::load(cfg, egress, None)
    }

    /// Profile lists *extend* the rule file's capability names, hints and
    /// sensitive paths; the profile's effect table decides every effect.
    pub fn load(
        cfg: &ToolsConfig,
        egress: &EgressConfig,
        sources: Option<&dyn RuleSources>,
    ) -> Result<Self, String> {
        let text = text_or(
            sources,
            cfg.rules_file.as_ref(),
            "tools.rules_file",
            EMBEDDED_TOOL_RULES,
        )?;
        let mut rules = ToolRules::from_toml(&text, &cfg.sensitive_paths)?;
        rules.hosts.allow = hosts::HostList::new(&egress.allow);
        rules.hosts.deny = hosts::HostList::new(&egress.deny);
        let mut exact = BTreeMap::new();
        for (cap, list) in rules.capabilities.iter().chain(&cfg.capabilities) {
            for name in list {
                exact.insert(fold_name(name), cap.clone());
            }
        }
        let mut hints = Vec::new();
        for (cap, list) in rules.name_hints.iter().chain(&cfg.name_hints) {
            for h in list {
                hints.push((fold_name(h), cap.clone()));
            }
        }
        // Longer hints first, so `read_file` wins over `read`.
        hints.sort_by_key(|h| std::cmp::Reverse(h.0.len()));
        if cfg.max_argument_bytes == 0 || cfg.max_command_bytes == 0 {
            return Err("tools.max_argument_bytes and tools.max_command_bytes must be > 0".into());
        }
        Ok(ToolDetector {
            rules,
            exact,
            hints,
            egress: egress.clone(),
            table: EffectTable::new(&cfg.effects)?,
            limits: Limits {
                max_argument_bytes: cfg.max_argument_bytes,
                max_command_bytes: cfg
                    .max_command_bytes
                    .min(crate::detectors::shell::MAX_SCRIPT_BYTES),
            },
        })
    }

    /// The capability a tool name maps to, if any.
    pub fn capability_of(&self, name: &str) -> Option<&str> {
        let folded = fold_name(name);
        if let Some(cap) = self.exact.get(&folded) {
            return Some(cap);
        }
        if let Some(cap) = self.exact.get(&own_name(name)) {
            return Some(cap);
        }
        self.hints
            .iter()
            .find(|(h, _)| folded.contains(h.as_str()))
            .map(|(_, c)| c.as_str())
    }

    fn egress(&self) -> Egress<'_> {
        Egress {
            rules: &self.rules,
            config: &self.egress,
        }
    }

    /// What this profile decides for an effect.
    pub fn decision(&self, effect: Effect) -> Decision {
        self.table.decision(effect)
    }

    /// What a call does.
    pub fn analyze(&self, call: &ToolCall) -> Analysis {
        let mut out = Analysis::default();
        self.analyze_call(call, &mut out, 0);
        if let Some(why) = out.uninspectable.clone() {
            out.push(
                Effect::Uninspectable,
                "limits",
                format!("Tool call could not be fully inspected: {why}"),
                &call.name,
            );
        }
        out
    }

    /// Tags of one call: its capability, its effects, and coarse groups
    /// (`network`, `credential_access`, `privilege`, `shell`) that chain
    /// rules and the session layer match on.
    pub fn tags_of(&self, call: &ToolCall) -> Vec<String> {
        let analysis = self.analyze(call);
        self.tags(call, &analysis)
    }

    /// Tags of a call whose analysis is already known.
    pub fn tags(&self, call: &ToolCall, a: &Analysis) -> Vec<String> {
        let mut tags = Vec::new();
        if let Some(cap) = self.capability_of(&call.name) {
            // Shell is a verb of the tool, not an effect: the effects say
            // what its command does.
            if cap != "shell" {
                push_unique(&mut tags, cap);
            }
        }
        for h in &a.effects {
            push_unique(&mut tags, h.effect.as_str());
            let group = match h.effect {
                Effect::Fetch
                | Effect::NetworkSend
                | Effect::RawNetwork
                | Effect::Exfiltration
                | Effect::DownloadExec => Some("network"),
                Effect::CredentialRead | Effect::EnvRead => Some("credential_access"),
                Effect::Privileged | Effect::PrivilegeEscalation => Some("privilege"),
                _ => None,
            };
            if let Some(g) = group {
                push_unique(&mut tags, g);
            }
        }
        tags
    }

    /// The distinct effects of an analysis, in a stable order.
    pub fn effects_of(a: &Analysis) -> Vec<Effect> {
        let mut v: Vec<Effect> = a.effects.iter().map(|h| h.effect).collect();
        v.sort();
        v.dedup();
        v
    }

    pub fn inspect(&self, cx: &ScanContext<'_>, out: &mut Vec<Finding>) {
        let analyses: Vec<Analysis> = cx
            .subject
            .tool_calls
            .iter()
            .map(|c| self.analyze(c))
            .collect();
        self.inspect_with(cx, &analyses, out);
    }

    /// [`inspect`](Self::inspect) with the calls' analyses computed by the
    /// caller (who also needs them for chain tags).
    pub fn inspect_with(
        &self,
        cx: &ScanContext<'_>,
        analyses: &[Analysis],
        out: &mut Vec<Finding>,
    ) {
        for (call, a) in cx.subject.tool_calls.iter().zip(analyses) {
            self.inspect_call(call, a, out);
        }
        for i in cx.parts(&[Surface::User, Surface::Assistant, Surface::ToolResult]) {
            let part = &cx.subject.texts[i];
            let norm = cx.normalized(i);
            for idx in self.rules.text_set.matches(&norm.folded).iter() {
                let r = &self.rules.text[idx];
                out.push(
                    Finding::new(
                        r.id.clone(),
                        DetectorId::ToolAbuse,
                        "tool_abuse",
                        r.severity,
                        r.score,
                        r.message.clone(),
                    )
                    .at(part.surface.as_str()),
                );
            }
            if part.surface == Surface::ToolResult {
                self.inspect_payload(&part.text, out);
            }
        }
    }

    /// One finding per effect the profile does not simply allow, carrying
    /// the profile's decision as its verdict.
    fn inspect_call(&self, call: &ToolCall, a: &Analysis, out: &mut Vec<Finding>) {
        let location = format!("tool_call:{}", excerpt(&call.name));
        let mut best: BTreeMap<Effect, &analyze::EffectHit> = BTreeMap::new();
        for h in &a.effects {
            best.entry(h.effect).or_insert(h);
        }
        for (effect, h) in best {
            let decision = self.decision(effect);
            if decision == Decision::Allow {
                continue;
            }
            let (severity, score) = effects::weight(decision);
            out.push(
                Finding::new(
                    format!("tool.effect.{}", effect.as_str()),
                    DetectorId::ToolAbuse,
                    "tool_abuse",
                    severity,
                    score,
                    format!("{} ({})", h.message, effect.as_str()),
                )
                .at(location.clone())
                .with_evidence(h.evidence.clone())
                .with_verdict(decision)
                .meta("effect", effect.as_str())
                .meta("rule", h.rule.clone())
                .meta("tool", call.name.clone()),
            );
        }
    }
}

fn push_unique(tags: &mut Vec<String>, tag: &str) {
    if !tags.iter().any(|t| t == tag) {
        tags.push(tag.to_string());
    }
}

/// `Run-Command` → `run_command`.
/// A tool's own name, folded: MCP tools come prefixed with their server
/// (`filesystem__write_file`, Claude Code's `mcp__github__create_issue`),
/// and the tool's own name says what it is.
pub fn own_name(name: &str) -> String {
    let folded = fold_name(name);
    match folded.rsplit_once("__").map(|(_, t)| t.trim_matches('_')) {
        Some(tool) if !tool.is_empty() => tool.to_string(),
        _ => folded,
    }
}

pub fn fold_name(name: &str) -> String {
    name.trim()
        .chars()
        .map(|c| {
            if c.is_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect()
}
