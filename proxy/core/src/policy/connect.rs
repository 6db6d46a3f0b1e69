//! `[connect]`: what the forward proxy (CONNECT, absolute-form requests,
//! transparent redirect) does with each destination host.
//!
//! * `intercept`: terminate TLS with a leaf minted by the local CA and
//!   inspect every request like reverse-mode traffic;
//! * `passthrough`: a blind tunnel (for clients that pin certificates, or
//!   traffic that is none of the gateway's business), audited;
//! * `deny`: refuse the tunnel with a clear 403, audited.
//!
//! Precedence is predictable: among the operator's lists the most specific
//! pattern wins (an exact host beats `*.suffix`, a longer suffix beats a
//! shorter one; on a tie `deny` beats `passthrough` beats `intercept`); the
//! built-in list of known LLM API hosts is consulted only when no operator
//! pattern matched; then `default`.

use serde::Deserialize;

/// Known LLM API hosts whose wire formats the gateway inspects. They are
/// intercepted unless `builtin_intercept = false` or an operator list says
/// otherwise. (OpenAI-compatible providers speak `/chat/completions`.)
pub const BUILTIN_INTERCEPT: &[&str] = &[
    "api.openai.com",
    "api.anthropic.com",
    "generativelanguage.googleapis.com",
    "*.openai.azure.com",
    "api.mistral.ai",
    "api.groq.com",
    "api.deepseek.com",
    "api.together.xyz",
    "api.fireworks.ai",
    "api.x.ai",
    "openrouter.ai",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConnectAction {
    // Order matters: on equally specific patterns the greater action wins.
    Intercept,
    Passthrough,
    Deny,
}

impl ConnectAction {
    /// Metric label and audit value (closed set).
    pub fn as_str(self) -> &'static str {
        match self {
            ConnectAction::Intercept => "intercept",
            ConnectAction::Passthrough => "passthrough",
            ConnectAction::Deny => "deny",
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConnectPolicy {
    /// What happens to hosts no list names.
    pub default: ConnectAction,
    /// Hosts (or `*.suffix`) whose TLS is terminated and inspected.
    pub intercept: Vec<String>,
    /// Hosts (or `*.suffix`) tunnelled blind.
    pub passthrough: Vec<String>,
    /// Hosts (or `*.suffix`) refused.
    pub deny: Vec<String>,
    /// Intercept [`BUILTIN_INTERCEPT`] unless an operator list matches.
    pub builtin_intercept: bool,
}

impl Default for ConnectPolicy {
    fn default() -> Self {
        ConnectPolicy {
            default: ConnectAction::Passthrough,
            intercept: Vec::new(),
            passthrough: Vec::new(),
            deny: Vec::new(),
            builtin_intercept: true,
        }
    }
}

/// The action for one host and the rule that chose it (for the audit log):
/// `deny:*.example.com`, `builtin:api.openai.com` or `default`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectVerdict {
    pub action: ConnectAction,
    pub rule: String,
}

impl ConnectVerdict {
    /// Chosen by a pattern the operator wrote (not the built-in list or the default).
    pub fn explicit(&self) -> bool {
        ["intercept:", "passthrough:", "deny:"]
            .iter()
            .any(|p| self.rule.starts_with(p))
    }
}

/// How specific a match is: exact hosts first, then longer suffixes.
fn specificity(host: &str, pattern: &str) -> Option<(u8, usize)> {
    match pattern.strip_prefix("*.") {
        Some(suffix) => {
            let hit = host == suffix
                || (host.len() > suffix.len()
                    && host.ends_with(suffix)
                    && host.as_bytes()[host.len() - suffix.len() - 1] == b'.');
            hit.then_some((1, suffix.len()))
        }
        None => (host == pattern).then_some((2, pattern.len())),
    }
}

impl ConnectPolicy {
    /// Decide for a destination host (any case, IPv6 without brackets).
    pub fn decide(&self, host: &str) -> ConnectVerdict {
        let host = normalize_host(host);
        let lists = [
            (ConnectAction::Intercept, &self.intercept),
            (ConnectAction::Passthrough, &self.passthrough),
            (ConnectAction::Deny, &self.deny),
        ];
        let best = lists
            .iter()
            .flat_map(|(action, patterns)| patterns.iter().map(move |p| (*action, p)))
            .filter_map(|(action, p)| {
                specificity(&host, &p.to_ascii_lowercase()).map(|s| (s, action, p))
            })
            .max_by_key(|(s, action, _)| (*s, *action));
        if let Some((_, action, pattern)) = best {
            return ConnectVerdict {
                action,
                rule: format!("{}:{pattern}", action.as_str()),
            };
        }
        if self.builtin_intercept {
            if let Some(p) = BUILTIN_INTERCEPT
                .iter()
                .find(|p| specificity(&host, p).is_some())
            {
                return ConnectVerdict {
                    action: ConnectAction::Intercept,
                    rule: format!("builtin:{p}"),
                };
            }
        }
        ConnectVerdict {
            action: self.default,
            rule: "default".to_string(),
        }
    }

    /// Every pattern is a host name, an IP literal or `*.suffix`.
    pub fn validate(&self) -> Result<(), (&'static str, &'static str, String)> {
        for (key, patterns) in [
            ("intercept", &self.intercept),
            ("passthrough", &self.passthrough),
            ("deny", &self.deny),
        ] {
            for p in patterns {
                if let Err(why) = check_pattern(p) {
                    return Err(("connect", key, format!("{key}: {p:?} {why}")));
                }
            }
        }
        Ok(())
    }
}

/// Lower case, no trailing dot, IPv6 without brackets.
pub fn normalize_host(host: &str) -> String {
    let h = host.trim();
    let h = h
        .strip_prefix('[')
        .and_then(|x| x.strip_suffix(']'))
        .unwrap_or(h);
    h.trim_end_matches('.').to_ascii_lowercase()
}

fn check_pattern(p: &str) -> Result<(), &'static str> {
    if p.parse::<std::net::IpAddr>().is_ok() {
        return Ok(());
    }
    let name = p.strip_prefix("*.").unwrap_or(p);
    if name.is_empty() {
        return Err("is empty");
    }
    if p.contains("://") || p.contains('/') || p.contains(':') {
        return Err("must be a host name without scheme, port or path");
    }
    if name.contains('*') {
        return Err("may only use a wildcard as a leading `*.`");
    }
    let ok = name.split('.').all(|label| {
        !label.is_empty()
            && label.len() <= 63
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    });
    if ok {
        Ok(())
    } else {
        Err("is not a valid host name")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(intercept: &[&str], passthrough: &[&str], deny: &[&str]) -> ConnectPolicy {
        let v = |x: &[&str]| x.iter().map(|s| s.to_string()).collect();
        ConnectPolicy {
            intercept: v(intercept),
            passthrough: v(passthrough),
            deny: v(deny),
            ..ConnectPolicy::default()
        }
    }

    #[test]
    fn builtin_hosts_are_intercepted_by_default() {
        let p = ConnectPolicy::default();
        let v = p.decide("API.OpenAI.com.");
        assert_eq!(v.action, ConnectAction::Intercept);
        assert_eq!(v.rule, "builtin:api.openai.com");
        assert!(!v.explicit());
        assert_eq!(
            p.decide("x.openai.azure.com").action,
            ConnectAction::Intercept
        );
        assert_eq!(p.decide("github.com").action, ConnectAction::Passthrough);
        assert_eq!(p.decide("github.com").rule, "default");
    }

    #[test]
    fn operator_lists_beat_builtin_and_specific_beats_wildcard() {
        let p = policy(&["api.github.com"], &["*.openai.com", "*.github.com"], &[]);
        assert_eq!(
            p.decide("api.openai.com").action,
            ConnectAction::Passthrough
        );
        assert_eq!(p.decide("api.github.com").action, ConnectAction::Intercept);
        assert_eq!(p.decide("github.com").action, ConnectAction::Passthrough);
        let p = policy(&[], &["*.example.com"], &["*.evil.example.com"]);
        assert_eq!(p.decide("a.evil.example.com").action, ConnectAction::Deny);
        assert_eq!(
            p.decide("a.good.example.com").action,
            ConnectAction::Passthrough
        );
        assert!(p.decide("notexample.com").rule == "default");
    }

    #[test]
    fn ties_prefer_deny() {
        let p = policy(&["x.test"], &["x.test"], &["x.test"]);
        let v = p.decide("x.test");
        assert_eq!(v.action, ConnectAction::Deny);
        assert_eq!(v.rule, "deny:x.test");
        assert!(v.explicit());
    }

    #[test]
    fn builtin_can_be_switched_off() {
        let p = ConnectPolicy {
            builtin_intercept: false,
            default: ConnectAction::Deny,
            ..ConnectPolicy::default()
        };
        assert_eq!(p.decide("api.openai.com").action, ConnectAction::Deny);
    }

    #[test]
    fn ip_literals_match_exactly() {
        let p = policy(&["127.0.0.1", "::1"], &[], &[]);
        assert_eq!(p.decide("127.0.0.1").action, ConnectAction::Intercept);
        assert_eq!(p.decide("[::1]").action, ConnectAction::Intercept);
        assert_eq!(p.decide("127.0.0.2").action, ConnectAction::Passthrough);
    }

    #[test]
    fn bad_patterns_are_rejected() {
        for bad in [
            "",
            "*.",
            "https://x.com",
            "x.com:443",
            "x.com/path",
            "a.*.com",
            "*x.com",
            "a..b",
        ] {
            assert!(
                policy(&[bad], &[], &[]).validate().is_err(),
                "{bad:?} should be rejected"
            );
        }
        assert!(
            policy(&["*.x.com", "x-y.com", "10.0.0.1", "fd00::1"], &[], &[])
                .validate()
                .is_ok()
        );
    }
}
