//! Masking secrets and personal data: `[REDACTED:<kind>:<hash-prefix>]`.
//!
//! The hash is a keyed HMAC-SHA256 (key kept in the data folder), so the
//! same value masks the same way across requests (operators can correlate)
//! while short values such as SSNs or phone numbers cannot be recovered by
//! hashing candidates, as an unsalted hash would allow.

use crate::detectors::memo::{Memo, Tag};
use crate::detectors::pii::{PiiScanner, PiiToggles};
use crate::detectors::secrets::{shannon_entropy, SecretScanner};
use hmac::{Hmac, Mac};
use regex::Regex;
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use std::sync::Arc;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RedactionConfig {
    pub enabled: bool,
    /// Mask secrets in requests before they reach the upstream.
    pub requests: bool,
    /// Mask secrets in responses before they reach the agent.
    pub responses: bool,
    pub pii: PiiToggles,
    pub high_entropy: HighEntropyConfig,
    /// Cap on mask events reported per message (masking itself is not capped).
    pub max_items: usize,
}

impl Default for RedactionConfig {
    fn default() -> Self {
        RedactionConfig {
            enabled: true,
            requests: true,
            responses: true,
            pii: PiiToggles::default(),
            high_entropy: HighEntropyConfig::default(),
            max_items: 32,
        }
    }
}

impl RedactionConfig {
    pub(crate) fn validate(&self) -> Result<(), (&'static str, &'static str, String)> {
        let he = &self.high_entropy;
        if he.min_entropy <= 0.0 {
            return Err((
                "redaction.high_entropy",
                "min_entropy",
                "min_entropy must be > 0".into(),
            ));
        }
        if he.min_length < 8 {
            return Err((
                "redaction.high_entropy",
                "min_length",
                "min_length must be >= 8".into(),
            ));
        }
        if self.max_items < 1 {
            return Err(("redaction", "max_items", "max_items must be >= 1".into()));
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HighEntropyConfig {
    pub enabled: bool,
    pub min_entropy: f64,
    pub min_length: usize,
}

impl Default for HighEntropyConfig {
    fn default() -> Self {
        HighEntropyConfig {
            enabled: true,
            min_entropy: 3.7,
            min_length: 20,
        }
    }
}

/// The keyed hash behind mask digests.
#[derive(Clone)]
pub struct Masker {
    key: [u8; 32],
}

impl std::fmt::Debug for Masker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Masker(<key>)")
    }
}

/// Number of hex characters of the digest shown in a mask.
pub const DIGEST_HEX: usize = 12;

impl Masker {
    pub fn new(key: [u8; 32]) -> Self {
        Masker { key }
    }

    pub fn digest(&self, value: &str) -> String {
        let mut mac =
            <Hmac<Sha256> as Mac>::new_from_slice(&self.key).expect("HMAC takes any key length");
        mac.update(value.as_bytes());
        let out = mac.finalize().into_bytes();
        hex::encode(&out[..DIGEST_HEX / 2])
    }

    pub fn mask(&self, kind: &str, value: &str) -> String {
        format!("[REDACTED:{kind}:{}]", self.digest(value))
    }
}

/// One masked value, as reported in metadata and audit (never the value).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MaskEvent {
    pub kind: String,
    pub digest: String,
    pub length: usize,
}

/// A span of text to mask.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Span {
    pub start: usize,
    pub end: usize,
    pub kind: String,
}

#[derive(Debug, Clone)]
pub struct Redacted {
    pub text: String,
    pub events: Vec<MaskEvent>,
}

pub struct Redactor {
    cfg: RedactionConfig,
    secrets: Arc<SecretScanner>,
    pii: Arc<PiiScanner>,
    entropy_token: Regex,
    existing_mask: Regex,
    /// Texts found to hold nothing to mask (tagged by whether personal
    /// data was looked for): an agent's tool schemas and system prompt
    /// come back unchanged on every turn (see `detectors::memo`).
    clean: Memo<()>,
    /// Values the request's own system prompt keeps (see
    /// [`Redactor::with_kept`]); `None` in a policy's redactor.
    kept: Option<Regex>,
}

/// Shorter texts are scanned every time: remembering them costs about
/// what scanning them does.
const REMEMBER_CLEAN_BYTES: usize = 256;

impl Redactor {
    pub fn new(cfg: &RedactionConfig, secrets: Arc<SecretScanner>, pii: Arc<PiiScanner>) -> Self {
        Redactor {
            cfg: cfg.clone(),
            secrets,
            pii,
            entropy_token: Regex::new(r"[A-Za-z0-9_+=-]{8,}").expect("static regex"),
            existing_mask: Regex::new(r"\[REDACTED:[a-z0-9_]+:[0-9a-f]{4,64}\]")
                .expect("static regex"),
            clean: Memo::default(),
            kept: None,
        }
    }

    /// This redactor, also masking `values` (the passwords and keys a
    /// request's system prompt keeps, `kept_secret`) wherever they appear,
    /// in any letter case, reversed or in base64; `None` when there is
    /// none to mask.
    /// Values of fewer than 3 characters or with white space are left
    /// out: a stream releases text up to its last white space, so a value
    /// with one could be half released before it is complete.
    pub fn with_kept(&self, values: &[String]) -> Option<Redactor> {
        if !self.cfg.enabled {
            return None;
        }
        let mut alternatives: Vec<String> = Vec::new();
        for v in values {
            let n = v.chars().count();
            if !(3..=128).contains(&n) || v.chars().any(char::is_whitespace) {
                continue;
            }
            alternatives.push(regex::escape(v));
            let reversed: String = v.chars().rev().collect();
            if reversed != *v {
                alternatives.push(regex::escape(&reversed));
            }
            // Its base64, without the padding a model may leave off.
            use base64::Engine as _;
            let encoded = base64::engine::general_purpose::STANDARD_NO_PAD.encode(v);
            alternatives.push(format!("(?-i:{})", regex::escape(&encoded)));
        }
        if alternatives.is_empty() {
            return None;
        }
        let kept = regex::RegexBuilder::new(&alternatives.join("|"))
            .case_insensitive(true)
            .build()
            .ok()?;
        Some(Redactor {
            cfg: self.cfg.clone(),
            secrets: self.secrets.clone(),
            pii: self.pii.clone(),
            entropy_token: self.entropy_token.clone(),
            existing_mask: self.existing_mask.clone(),
            clean: Memo::default(),
            kept: Some(kept),
        })
    }

    pub fn config(&self) -> &RedactionConfig {
        &self.cfg
    }

    /// Everything to mask in `text`, sorted and non-overlapping.
    pub fn spans(&self, text: &str) -> Vec<Span> {
        self.spans_with(text, true)
    }

    /// Spans of `text`, with or without personal data (the agent's own
    /// instructions and tool definitions are checked for secrets only).
    fn spans_with(&self, text: &str, pii: bool) -> Vec<Span> {
        if !self.cfg.enabled {
            return Vec::new();
        }
        self.scan(text, pii)
    }

    /// [`spans`](Self::spans) of a text in a caller's memo scope (see
    /// `detectors::memo`): a text of 256 bytes or more that was found clean
    /// in the same scope is not scanned again. `None`: scanned.
    pub fn spans_in(&self, text: &str, scope: Option<u64>) -> Vec<Span> {
        let Some(scope) = scope.filter(|_| self.cfg.enabled && text.len() >= REMEMBER_CLEAN_BYTES)
        else {
            return self.spans(text);
        };
        let tag = Tag { kind: 0, scope };
        let key = self.clean.key(tag, text);
        if self.clean.get(key, tag, text).is_some() {
            return Vec::new();
        }
        let spans = self.scan(text, true);
        if spans.is_empty() {
            self.clean.put(key, tag, text, ());
        }
        spans
    }

    /// Texts found clean by an earlier scan, and texts scanned.
    pub fn memo_stats(&self) -> (u64, u64) {
        self.clean.stats()
    }

    fn scan(&self, text: &str, pii: bool) -> Vec<Span> {
        let mut spans: Vec<Span> = Vec::new();
        for m in self.secrets.find(text) {
            spans.push(Span {
                start: m.start,
                end: m.end,
                kind: self.secrets.rule(m.rule).kind.clone(),
            });
        }
        for (start, end, m) in self.secrets.find_encoded(text) {
            spans.push(Span {
                start,
                end,
                kind: format!("{}_b64", self.secrets.rule(m.rule).kind),
            });
        }
        for m in self.pii.find(text).into_iter().filter(|_| pii) {
            spans.push(Span {
                start: m.start,
                end: m.end,
                kind: m.kind.to_string(),
            });
        }
        for m in self.kept.iter().flat_map(|k| k.find_iter(text)) {
            spans.push(Span {
                start: m.start(),
                end: m.end(),
                kind: "kept_secret".to_string(),
            });
        }
        if self.cfg.high_entropy.enabled {
            for m in self.entropy_token.find_iter(text) {
                if self.is_high_entropy(m.as_str()) {
                    spans.push(Span {
                        start: m.start(),
                        end: m.end(),
                        kind: "high_entropy".to_string(),
                    });
                }
            }
        }
        // Masks already in the text (a redacted history replayed to the
        // model, or a second pass) are never masked again.
        if text.contains("[REDACTED:") {
            let masks: Vec<(usize, usize)> = self
                .existing_mask
                .find_iter(text)
                .map(|m| (m.start(), m.end()))
                .collect();
            spans.retain(|s| !masks.iter().any(|&(a, b)| s.start < b && a < s.end));
        }
        merge(spans)
    }

    /// Random-looking tokens: long, mixing upper, lower and digits, with
    /// high per-character entropy. Requiring all three classes keeps git
    /// hashes, UUIDs and ordinary identifiers readable.
    fn is_high_entropy(&self, token: &str) -> bool {
        let he = &self.cfg.high_entropy;
        token.len() >= he.min_length
            && token.bytes().any(|b| b.is_ascii_uppercase())
            && token.bytes().any(|b| b.is_ascii_lowercase())
            && token.bytes().any(|b| b.is_ascii_digit())
            && !self.secrets.is_placeholder(token)
            && shannon_entropy(token) >= he.min_entropy
    }

    /// Mask every span; `None` when there is nothing to mask (the common
    /// case, which then allocates nothing).
    pub fn redact(&self, text: &str, masker: &Masker) -> Option<Redacted> {
        let spans = self.spans(text);
        if spans.is_empty() {
            return None;
        }
        Some(apply(text, &spans, masker, self.cfg.max_items))
    }

    /// [`redact`](Self::redact) for configuration text (system and
    /// developer instructions, tool definitions): secrets are masked,
    /// personal data is left as written.
    pub fn redact_secrets(&self, text: &str, masker: &Masker) -> Option<Redacted> {
        let spans = self.spans_with(text, false);
        if spans.is_empty() {
            return None;
        }
        Some(apply(text, &spans, masker, self.cfg.max_items))
    }
}

/// Replace spans with masks. Spans must be sorted and non-overlapping.
pub fn apply(text: &str, spans: &[Span], masker: &Masker, max_items: usize) -> Redacted {
    let mut out = String::with_capacity(text.len() + spans.len() * 32);
    let mut events: Vec<MaskEvent> = Vec::new();
    let mut pos = 0;
    for s in spans {
        out.push_str(&text[pos..s.start]);
        let value = &text[s.start..s.end];
        let digest = masker.digest(value);
        out.push_str("[REDACTED:");
        out.push_str(&s.kind);
        out.push(':');
        out.push_str(&digest);
        out.push(']');
        let event = MaskEvent {
            kind: s.kind.clone(),
            digest,
            length: value.chars().count(),
        };
        if events.len() < max_items && !events.contains(&event) {
            events.push(event);
        }
        pos = s.end;
    }
    out.push_str(&text[pos..]);
    Redacted { text: out, events }
}

/// Sort by start and drop spans overlapping an earlier (or longer) one.
fn merge(mut spans: Vec<Span>) -> Vec<Span> {
    spans.sort_by(|a, b| a.start.cmp(&b.start).then(b.end.cmp(&a.end)));
    let mut out: Vec<Span> = Vec::with_capacity(spans.len());
    for s in spans {
        if out.last().is_none_or(|l| s.start >= l.end) {
            out.push(s);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detectors::secrets::{SecretsConfig, EMBEDDED_RULES};

    fn redactor() -> Redactor {
        let secrets =
            Arc::new(SecretScanner::from_toml(EMBEDDED_RULES, &SecretsConfig::default()).unwrap());
        let pii = Arc::new(PiiScanner::new(&PiiToggles::default()));
        Redactor::new(&RedactionConfig::default(), secrets, pii)
    }

    fn masker() -> Masker {
        Masker::new([7u8; 32])
    }

    #[test]
    fn clean_texts_are_remembered_per_scope_and_texts_with_something_to_mask_never_are() {
        let r = redactor();
        let schema = "Runs a shell command in the project folder. ".repeat(10);
        let contact = format!("{schema} Write to jane.doe@example.org for access.");
        for _ in 0..3 {
            assert!(r.spans_in(&schema, Some(1)).is_empty());
            assert_eq!(r.spans_in(&contact, Some(1)).len(), 1);
        }
        // The clean text scanned once and found clean twice more; the text
        // with an address scanned every time.
        assert_eq!(r.memo_stats(), (2, 4));
        // Another scope, or none, does not see the first one's entries.
        assert!(r.spans_in(&schema, Some(2)).is_empty());
        assert!(r.spans_in(&schema, None).is_empty());
        assert_eq!(r.memo_stats(), (2, 5));
        let keyed = format!("{schema} AKIAIOSFODNN7EXAMPLE");
        for _ in 0..2 {
            assert!(!r.spans_in(&keyed, Some(1)).is_empty());
        }
        assert_eq!(r.memo_stats(), (2, 7));
    }

    #[test]
    fn masks_with_kind_and_keyed_digest() {
        let r = redactor()
            .redact("key AKIAIOSFODNN7EXAMPLE ok", &masker())
            .unwrap();
        assert!(
            r.text.starts_with("key [REDACTED:aws_access_key_id:"),
            "{}",
            r.text
        );
        assert!(r.text.ends_with("] ok"));
        assert_eq!(r.events.len(), 1);
        assert_eq!(r.events[0].length, 20);
        // Different key, different digest: digests are not a public hash.
        let other = Masker::new([8u8; 32]);
        assert_ne!(
            masker().digest("AKIAIOSFODNN7EXAMPLE"),
            other.digest("AKIAIOSFODNN7EXAMPLE")
        );
    }

    /// Masking a masked text changes nothing: a stream masks its deltas
    /// and the full copies it relays must read the same.
    #[test]
    fn masking_twice_is_masking_once() {
        let r = redactor();
        for t in [
            "+1 (555) 123-4567 4111 1111 1111 1111 ",
            "call 555-123-4567 then 1111 1111 1111",
            "key AKIAIOSFODNN7EXAMPLE, phone +44 20 7946 0958 and 12 34 56",
        ] {
            let once = r.redact(t, &masker()).map_or(t.to_string(), |x| x.text);
            let twice = r.redact(&once, &masker()).map_or(once.clone(), |x| x.text);
            assert_eq!(once, twice, "{t}");
        }
    }

    #[test]
    fn clean_text_is_untouched() {
        assert!(redactor()
            .redact("nothing to see here, just words", &masker())
            .is_none());
    }

    #[test]
    fn quoted_password_is_masked_whole() {
        let r = redactor()
            .redact("password: \"correct horse battery\"", &masker())
            .unwrap();
        assert!(!r.text.contains("horse"), "{}", r.text);
        assert!(!r.text.contains("battery"), "{}", r.text);
    }

    #[test]
    fn masks_are_stable_and_not_re_masked() {
        let r1 = redactor()
            .redact("AKIAIOSFODNN7EXAMPLE", &masker())
            .unwrap();
        assert!(
            redactor().redact(&r1.text, &masker()).is_none(),
            "mask re-masked: {}",
            r1.text
        );
    }

    #[test]
    fn generic_secret_masks_are_not_re_masked() {
        let r1 = redactor()
            .redact("password: hunter2hunter2", &masker())
            .unwrap();
        assert!(r1.text.contains("[REDACTED:secret:"), "{}", r1.text);
        assert!(
            redactor().redact(&r1.text, &masker()).is_none(),
            "{}",
            r1.text
        );
    }

    #[test]
    fn git_hashes_and_uuids_stay_readable() {
        let text = "commit 9fceb02d0ae598e95dc970b74767f19372d61af8 id 123e4567-e89b-12d3-a456-426614174000";
        assert!(redactor().redact(text, &masker()).is_none());
    }
}
