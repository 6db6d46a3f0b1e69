//! Approvals and permits as pure data: the canonical binding of an action
//! (what a permit is good for) and the approval state machine.
//!
//! ```text
//! pending ──approve──▶ approved ──consume──▶ used
//!    │                    │
//!    ├──deny──▶ denied    └──(permit TTL)──▶ expired
//!    └──(TTL)──▶ expired
//! ```
//!
//! A permit is bound to a keyed hash of session, agent, tool and normalized
//! arguments (plus, on the inspect API, the prose around the action), so it
//! cannot carry a different call. It is single-use: `consume` moves the
//! approval to `used`, and the store applies that move with a
//! compare-and-swap so two concurrent uses cannot both win. Nothing here
//! ever lifts a `block`: callers consult approvals only for challenged
//! calls. Storage, randomness and clocks stay outside (times are passed in
//! as Unix milliseconds).

use crate::redact::{Masker, Redactor};
use crate::util::constant_time_eq;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::Sha256;
use unicode_normalization::UnicodeNormalization;

/// The `[approvals]` policy section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApprovalsConfig {
    /// Open approvals at all; when off, a call that needs approval is refused.
    pub enabled: bool,
    /// How long a pending approval waits for an operator.
    pub pending_ttl_secs: u64,
    /// Default lifetime of a permit once approved.
    pub permit_ttl_secs: u64,
    /// Upper bound on the lifetime an operator may ask for.
    pub max_permit_ttl_secs: u64,
    /// How an approved call is let through (besides a presented permit).
    pub release: Release,
    /// Hold MCP / HTTP tool calls up to this many seconds while an operator
    /// decides (0 = answer "approval required" at once).
    pub hold_secs: u64,
    /// Request header carrying a permit on the proxy.
    pub permit_header: String,
}

impl Default for ApprovalsConfig {
    fn default() -> Self {
        ApprovalsConfig {
            enabled: true,
            pending_ttl_secs: 900,
            permit_ttl_secs: 300,
            max_permit_ttl_secs: 3600,
            release: Release::NextCall,
            hold_secs: 0,
            permit_header: "x-asg-permit".to_string(),
        }
    }
}

impl ApprovalsConfig {
    pub(crate) fn validate(&self) -> Result<(), (&'static str, &'static str, String)> {
        let bad = |key, msg: &str| Err(("approvals", key, msg.to_string()));
        if self.pending_ttl_secs == 0 {
            return bad("pending_ttl_secs", "pending_ttl_secs must be >= 1");
        }
        if self.permit_ttl_secs == 0 {
            return bad("permit_ttl_secs", "permit_ttl_secs must be >= 1");
        }
        if self.max_permit_ttl_secs < self.permit_ttl_secs {
            return bad(
                "max_permit_ttl_secs",
                "max_permit_ttl_secs must be >= permit_ttl_secs",
            );
        }
        if self.hold_secs > 600 {
            return bad("hold_secs", "hold_secs must be <= 600");
        }
        let h = &self.permit_header;
        if h.is_empty() || !h.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
            return bad(
                "permit_header",
                "permit_header must be a header name (letters, digits, '-')",
            );
        }
        Ok(())
    }

    /// The permit lifetime to grant, in seconds: the operator's request
    /// clamped to `[1, max_permit_ttl_secs]`, or the default.
    pub fn permit_ttl(&self, requested: Option<i64>) -> u64 {
        match requested {
            Some(s) => (s.max(1) as u64).min(self.max_permit_ttl_secs),
            None => self.permit_ttl_secs,
        }
    }
}

/// Besides a presented permit, what lets an approved call through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Release {
    /// The next identical call (same binding) passes once.
    NextCall,
    /// Only a presented permit (`x-asg-permit` / `approval_token`).
    Permit,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApprovalStatus {
    Pending,
    Approved,
    Denied,
    Expired,
    Used,
}

impl ApprovalStatus {
    pub const ALL: [ApprovalStatus; 5] = [
        ApprovalStatus::Pending,
        ApprovalStatus::Approved,
        ApprovalStatus::Denied,
        ApprovalStatus::Expired,
        ApprovalStatus::Used,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ApprovalStatus::Pending => "pending",
            ApprovalStatus::Approved => "approved",
            ApprovalStatus::Denied => "denied",
            ApprovalStatus::Expired => "expired",
            ApprovalStatus::Used => "used",
        }
    }

    pub fn parse(s: &str) -> Option<ApprovalStatus> {
        ApprovalStatus::ALL.into_iter().find(|x| x.as_str() == s)
    }

    /// No further transition is possible.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            ApprovalStatus::Denied | ApprovalStatus::Expired | ApprovalStatus::Used
        )
    }
}

/// Where an approval came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    /// `/inspect/*` with a session.
    InspectApi,
    /// `/approval/submit`.
    Submit,
    /// A tool call on live traffic.
    Proxy,
}

/// A finding as the operator sees it on an approval (evidence masked).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FindingNote {
    pub rule_id: String,
    pub severity: String,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evidence: Option<String>,
}

/// One approval as stored. The permit itself is never stored: only its
/// SHA-256, so neither the database nor any listing can leak a live permit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Approval {
    pub approval_id: String,
    pub status: ApprovalStatus,
    pub session_id: String,
    #[serde(default)]
    pub turn_id: String,
    pub agent_id: String,
    /// Tool (action type), lower-cased.
    pub action_type: String,
    /// The call's target or arguments, masked and truncated for display.
    pub action_target: String,
    /// Keyed hash of the binding; a permit is good only for this.
    pub fingerprint: String,
    pub origin: Origin,
    #[serde(default)]
    pub route: String,
    #[serde(default)]
    pub dialect: String,
    /// The request that asked for approval.
    #[serde(default)]
    pub request_id: String,
    /// What the policy said (`challenge` / `require_approval`), with why.
    #[serde(default)]
    pub decision: String,
    #[serde(default)]
    pub score: f64,
    #[serde(default)]
    pub reasons: Vec<String>,
    #[serde(default)]
    pub findings: Vec<FindingNote>,
    /// A tool call is held open on the proxy waiting for this decision.
    #[serde(default)]
    pub hold: bool,
    pub created_ms: i64,
    pub expires_ms: i64,
    #[serde(default)]
    pub resolved_ms: Option<i64>,
    /// Who resolved it: the name they gave and the credential they used.
    #[serde(default)]
    pub resolver: String,
    #[serde(default)]
    pub resolver_credential: String,
    #[serde(default)]
    pub note: String,
    #[serde(default)]
    pub permit_sha256: Option<String>,
    #[serde(default)]
    pub permit_expires_ms: Option<i64>,
    #[serde(default)]
    pub used_ms: Option<i64>,
    /// The request that spent the permit.
    #[serde(default)]
    pub used_by: Option<String>,
}

/// Why a resolve was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResolveError {
    NotPending(ApprovalStatus),
}

impl std::fmt::Display for ResolveError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ResolveError::NotPending(s) => write!(f, "approval is not pending: {}", s.as_str()),
        }
    }
}

/// Why a permit (or an approved next call) did not release a call. Every
/// case fails closed: the call is not let through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsumeError {
    /// No approval carries this permit.
    Unknown,
    /// Still waiting for an operator.
    NotApproved,
    Denied,
    Expired,
    /// Already spent (a replay, or a concurrent use that won).
    AlreadyUsed,
    /// Approved for a different session, agent, tool or arguments.
    Mismatch,
}

impl ConsumeError {
    pub fn message(self) -> &'static str {
        match self {
            ConsumeError::Unknown => "Permit rejected: unknown permit.",
            ConsumeError::NotApproved => "Permit rejected: approval is still pending.",
            ConsumeError::Denied => "Permit rejected: approval was denied.",
            ConsumeError::Expired => "Permit rejected: permit expired.",
            ConsumeError::AlreadyUsed => "Permit rejected: permit was already used.",
            ConsumeError::Mismatch => {
                "Permit rejected: it was approved for a different session, agent, tool or arguments."
            }
        }
    }
}

impl Approval {
    /// Apply time: a pending approval past its deadline, or an approved one
    /// whose permit ran out, becomes `expired`. Returns whether it changed.
    pub fn refresh(&mut self, now_ms: i64) -> bool {
        let due = match self.status {
            ApprovalStatus::Pending => now_ms >= self.expires_ms,
            ApprovalStatus::Approved => self.permit_expires_ms.is_some_and(|t| now_ms >= t),
            _ => false,
        };
        if due {
            self.status = ApprovalStatus::Expired;
        }
        due
    }

    /// Approve (with the SHA-256 of a fresh permit and its lifetime) or
    /// deny. Only a pending, unexpired approval can be resolved.
    pub fn resolve(
        &mut self,
        decision: Resolution,
        resolver: &str,
        credential: &str,
        note: &str,
        now_ms: i64,
    ) -> Result<(), ResolveError> {
        self.refresh(now_ms);
        if self.status != ApprovalStatus::Pending {
            return Err(ResolveError::NotPending(self.status));
        }
        match decision {
            Resolution::Approve {
                permit_sha256,
                permit_ttl_secs,
            } => {
                self.status = ApprovalStatus::Approved;
                self.permit_sha256 = Some(permit_sha256);
                self.permit_expires_ms = Some(now_ms + (permit_ttl_secs as i64) * 1000);
            }
            Resolution::Deny => self.status = ApprovalStatus::Denied,
        }
        self.resolved_ms = Some(now_ms);
        self.resolver = resolver.to_string();
        self.resolver_credential = credential.to_string();
        self.note = note.to_string();
        Ok(())
    }

    /// Spend the approval for a call with this binding: the single
    /// `approved → used` transition.
    pub fn consume(
        &mut self,
        fingerprint: &str,
        request_id: &str,
        now_ms: i64,
    ) -> Result<(), ConsumeError> {
        self.refresh(now_ms);
        match self.status {
            ApprovalStatus::Approved => {}
            ApprovalStatus::Pending => return Err(ConsumeError::NotApproved),
            ApprovalStatus::Denied => return Err(ConsumeError::Denied),
            ApprovalStatus::Expired => return Err(ConsumeError::Expired),
            ApprovalStatus::Used => return Err(ConsumeError::AlreadyUsed),
        }
        if !constant_time_eq(self.fingerprint.as_bytes(), fingerprint.as_bytes()) {
            return Err(ConsumeError::Mismatch);
        }
        self.status = ApprovalStatus::Used;
        self.used_ms = Some(now_ms);
        self.used_by = Some(request_id.to_string());
        Ok(())
    }

    /// Waiting for an operator and not past its deadline.
    pub fn is_live_pending(&self, now_ms: i64) -> bool {
        self.status == ApprovalStatus::Pending && now_ms < self.expires_ms
    }

    /// Approved, permit not yet spent nor expired.
    pub fn is_live_approved(&self, now_ms: i64) -> bool {
        self.status == ApprovalStatus::Approved
            && self.permit_expires_ms.is_some_and(|t| now_ms < t)
    }
}

/// An operator's decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolution {
    Approve {
        permit_sha256: String,
        permit_ttl_secs: u64,
    },
    Deny,
}

/// What an approval is bound to. Two calls share a permit only when every
/// field is equal after normalization.
#[derive(Debug, Clone, Default)]
pub struct Binding<'a> {
    pub session_id: &'a str,
    pub agent_id: &'a str,
    /// Tool name / action type (compared case-insensitively).
    pub tool: &'a str,
    /// Arguments: a JSON value, or a JSON document inside a string (OpenAI
    /// sends arguments as a string), or a plain target string.
    pub arguments: Option<&'a Value>,
    /// Prose around the action (inspect API: user input and model output),
    /// so an approved call cannot carry different instructions.
    pub context: Vec<&'a str>,
    pub memory_reads: Vec<&'a str>,
    pub memory_writes: Vec<&'a str>,
}

/// Domain separation: a fingerprint is never mistaken for another hash.
const FINGERPRINT_DOMAIN: &str = "asg/approval-binding/v1";

/// Version of the binding's canonical form, prefixed to every fingerprint:
/// approvals made under another form never match (they expire on their
/// own) instead of matching by accident.
const FINGERPRINT_VERSION: &str = "v2:";

/// The keyed fingerprint (`v2:` + hex HMAC-SHA256) of a binding. Keyed, so
/// the stored fingerprints cannot be used to test guesses of the arguments.
pub fn fingerprint(key: &[u8], b: &Binding<'_>) -> String {
    let mut doc = Map::new();
    // Keys inserted in sorted order: the map keeps insertion order.
    doc.insert(
        "agent".into(),
        Value::String(normalize_text(b.agent_id).into_owned()),
    );
    doc.insert(
        "arguments".into(),
        b.arguments.map(canonical_arguments).unwrap_or(Value::Null),
    );
    doc.insert("context".into(), strings(&b.context));
    doc.insert("domain".into(), Value::String(FINGERPRINT_DOMAIN.into()));
    doc.insert("memory_reads".into(), strings(&b.memory_reads));
    doc.insert("memory_writes".into(), strings(&b.memory_writes));
    doc.insert(
        "session".into(),
        Value::String(normalize_text(b.session_id).into_owned()),
    );
    doc.insert(
        "tool".into(),
        Value::String(normalize_text(b.tool).to_lowercase()),
    );
    let canonical = Value::Object(doc).to_string();
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(canonical.as_bytes());
    format!(
        "{FINGERPRINT_VERSION}{}",
        hex::encode(mac.finalize().into_bytes())
    )
}

fn strings(items: &[&str]) -> Value {
    Value::Array(
        items
            .iter()
            .map(|s| normalize_text(s))
            .filter(|s| !s.is_empty())
            .map(|s| Value::String(s.into_owned()))
            .collect(),
    )
}

/// NFC and trimmed. Inner whitespace is kept: `rm a  b` and `rm a b` name
/// different files, so they are different calls.
fn normalize_text(s: &str) -> std::borrow::Cow<'_, str> {
    let t = s.trim();
    if t.is_ascii() {
        std::borrow::Cow::Borrowed(t)
    } else {
        std::borrow::Cow::Owned(t.nfc().collect())
    }
}

/// Arguments in canonical form: a string holding a JSON object or array is
/// parsed (so `"{\"a\":1}"` and `{"a":1}` bind the same), object keys are
/// sorted, strings normalized.
pub fn canonical_arguments(v: &Value) -> Value {
    if let Value::String(s) = v {
        let t = s.trim();
        if t.starts_with('{') || t.starts_with('[') {
            if let Ok(parsed) = serde_json::from_str::<Value>(t) {
                return canonical(&parsed);
            }
        }
    }
    canonical(v)
}

fn canonical(v: &Value) -> Value {
    match v {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            let mut out = Map::new();
            for k in keys {
                out.insert(normalize_text(k).into_owned(), canonical(&map[k]));
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(items.iter().map(canonical).collect()),
        Value::String(s) => Value::String(normalize_text(s).into_owned()),
        other => other.clone(),
    }
}

/// Findings as shown on an approval: strongest first, at most 16, evidence
/// (already masked by the detectors) kept, maskable values left out.
pub fn finding_notes(findings: &[crate::Finding]) -> Vec<FindingNote> {
    let mut list: Vec<&crate::Finding> = findings.iter().filter(|f| !f.redactable).collect();
    list.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then(b.score.total_cmp(&a.score))
    });
    list.into_iter()
        .take(16)
        .map(|f| FindingNote {
            rule_id: f.rule_id.clone(),
            severity: f.severity.as_str().to_string(),
            message: f.message.clone(),
            evidence: f.evidence.clone(),
        })
        .collect()
}

/// A call's target for display and storage: secrets masked, at most 2 KiB.
pub fn display_target(redactor: &Redactor, masker: &Masker, target: &str) -> String {
    let masked = match redactor.redact(target, masker) {
        Some(r) => r.text,
        None => target.to_string(),
    };
    if masked.len() <= 2048 {
        return masked;
    }
    let mut cut = 2048;
    while !masked.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}…", &masked[..cut])
}

/// SHA-256 hex of a permit, the only form in which permits are stored.
pub fn permit_sha256(permit: &str) -> String {
    use sha2::Digest;
    hex::encode(Sha256::digest(permit.trim().as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const KEY: &[u8] = b"test-key";

    fn approval(now: i64) -> Approval {
        let args = json!({"command": "ls -la"});
        Approval {
            approval_id: "a1".into(),
            status: ApprovalStatus::Pending,
            session_id: "s1".into(),
            turn_id: String::new(),
            agent_id: "agent-a".into(),
            action_type: "shell".into(),
            action_target: "ls -la".into(),
            fingerprint: fingerprint(KEY, &binding("s1", "agent-a", "shell", &args)),
            origin: Origin::Proxy,
            route: "tools".into(),
            dialect: "mcp".into(),
            request_id: "r1".into(),
            decision: "require_approval".into(),
            score: 0.85,
            reasons: vec![],
            findings: vec![],
            hold: false,
            created_ms: now,
            expires_ms: now + 900_000,
            resolved_ms: None,
            resolver: String::new(),
            resolver_credential: String::new(),
            note: String::new(),
            permit_sha256: None,
            permit_expires_ms: None,
            used_ms: None,
            used_by: None,
        }
    }

    fn binding<'a>(s: &'a str, a: &'a str, t: &'a str, args: &'a Value) -> Binding<'a> {
        Binding {
            session_id: s,
            agent_id: a,
            tool: t,
            arguments: Some(args),
            ..Binding::default()
        }
    }

    fn approve(a: &mut Approval, now: i64) {
        a.resolve(
            Resolution::Approve {
                permit_sha256: permit_sha256("tok"),
                permit_ttl_secs: 300,
            },
            "alice",
            "operator",
            "",
            now,
        )
        .unwrap();
    }

    #[test]
    fn fingerprint_binds_every_field_and_ignores_key_order() {
        let args = json!({"command": "ls -la", "cwd": "/srv"});
        let base = fingerprint(KEY, &binding("s1", "a", "shell", &args));
        let reordered = json!({"cwd": "/srv", "command": "ls -la"});
        assert_eq!(
            base,
            fingerprint(KEY, &binding("s1", "a", "shell", &reordered))
        );
        let as_string = Value::String(r#"{"cwd":"/srv","command":"ls -la"}"#.into());
        assert_eq!(
            base,
            fingerprint(KEY, &binding("s1", "a", "SHELL", &as_string))
        );
        let other_arg = json!({"command": "ls -la /", "cwd": "/srv"});
        for different in [
            fingerprint(KEY, &binding("s2", "a", "shell", &args)),
            fingerprint(KEY, &binding("s1", "b", "shell", &args)),
            fingerprint(KEY, &binding("s1", "a", "bash", &args)),
            fingerprint(KEY, &binding("s1", "a", "shell", &other_arg)),
            fingerprint(b"other-key", &binding("s1", "a", "shell", &args)),
        ] {
            assert_ne!(base, different);
        }
        let with_prose = Binding {
            context: vec!["please list files"],
            ..binding("s1", "a", "shell", &args)
        };
        assert_ne!(base, fingerprint(KEY, &with_prose));
    }

    #[test]
    fn fingerprint_fields_cannot_be_shifted_into_each_other() {
        let empty = Value::Null;
        let a = fingerprint(KEY, &binding("s1", "a:b", "t", &empty));
        let b = fingerprint(KEY, &binding("s1:a", "b", "t", &empty));
        assert_ne!(a, b);
    }

    #[test]
    fn pending_resolves_once() {
        let mut a = approval(0);
        approve(&mut a, 10);
        assert_eq!(a.status, ApprovalStatus::Approved);
        assert_eq!(a.permit_expires_ms, Some(10 + 300_000));
        assert_eq!(
            a.resolve(Resolution::Deny, "bob", "operator", "", 20),
            Err(ResolveError::NotPending(ApprovalStatus::Approved))
        );
    }

    #[test]
    fn pending_expires_and_cannot_be_approved_late() {
        let mut a = approval(0);
        let err = a
            .resolve(Resolution::Deny, "bob", "operator", "", 900_000)
            .unwrap_err();
        assert_eq!(err, ResolveError::NotPending(ApprovalStatus::Expired));
    }

    #[test]
    fn permit_is_single_use_bound_and_expiring() {
        let args = json!({"command": "ls -la"});
        let fp = fingerprint(KEY, &binding("s1", "agent-a", "shell", &args));
        let other = json!({"command": "ls -la /etc"});
        let wrong = fingerprint(KEY, &binding("s1", "agent-a", "shell", &other));

        let mut a = approval(0);
        assert_eq!(a.consume(&fp, "r", 1), Err(ConsumeError::NotApproved));
        approve(&mut a, 10);
        assert_eq!(a.consume(&wrong, "r2", 20), Err(ConsumeError::Mismatch));
        assert_eq!(
            a.status,
            ApprovalStatus::Approved,
            "a mismatch spends nothing"
        );
        assert_eq!(a.consume(&fp, "r3", 30), Ok(()));
        assert_eq!(a.status, ApprovalStatus::Used);
        assert_eq!(a.used_by.as_deref(), Some("r3"));
        assert_eq!(a.consume(&fp, "r4", 40), Err(ConsumeError::AlreadyUsed));

        let mut late = approval(0);
        approve(&mut late, 10);
        assert_eq!(
            late.consume(&fp, "r", 10 + 300_000),
            Err(ConsumeError::Expired)
        );
        assert_eq!(late.status, ApprovalStatus::Expired);

        let mut denied = approval(0);
        denied
            .resolve(Resolution::Deny, "bob", "operator", "no", 5)
            .unwrap();
        assert_eq!(denied.consume(&fp, "r", 6), Err(ConsumeError::Denied));
    }

    #[test]
    fn permit_ttl_is_clamped() {
        let c = ApprovalsConfig::default();
        assert_eq!(c.permit_ttl(None), 300);
        assert_eq!(c.permit_ttl(Some(-5)), 1);
        assert_eq!(c.permit_ttl(Some(1_000_000)), 3600);
    }

    #[test]
    fn stored_form_never_holds_the_permit() {
        let mut a = approval(0);
        approve(&mut a, 1);
        let text = serde_json::to_string(&a).unwrap();
        assert!(!text.contains("\"tok\""));
        assert!(text.contains(&permit_sha256("tok")));
    }
}
