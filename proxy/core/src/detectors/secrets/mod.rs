//! Secret detection: a rule set loaded from a data file
//! (`policies/rules/secrets.toml`), an Aho-Corasick keyword prefilter and
//! regexes that only run around keyword occurrences.
//!
//! Cost: one Aho-Corasick pass over the text; then, for each rule whose
//! keywords occurred, its regex runs in windows around the occurrences (a
//! few hundred bytes before, about a kilobyte after), never over the whole
//! text. Regexes are linear-time (Rust `regex`), so hostile input cannot
//! make a scan slow. Matches carry byte spans of the original text, so the
//! redactor masks exactly the secret (the key in `api_key=...` stays
//! readable). Every span satisfies the span-shape contract documented in the
//! rule file (the streaming redactor depends on it).

mod rules;
#[cfg(test)]
mod tests;

pub use rules::{Block, Rule};

use super::{argument_strings, ScanContext};
use crate::normalize::{self, Decoded};
use crate::sources::{text_or, RuleSources};
use crate::types::{DetectorId, Finding, Severity};
use aho_corasick::{AhoCorasick, AhoCorasickBuilder, AhoCorasickKind, MatchKind};
use regex::Regex;
use rules::RuleFile;
use serde::Deserialize;

/// The rule set compiled into the binary; profiles loaded from a folder may
/// point `secrets.rules_file` at an editable copy instead.
pub const EMBEDDED_RULES: &str = include_str!("../../../../../policies/rules/secrets.toml");

/// Bytes before a keyword occurrence that a case-insensitive rule's regex
/// may start at (a key name such as `my_service_api_key` of up to 256 bytes
/// of left context, plus the keyword itself).
const WINDOW_BEFORE: usize = 320;
/// The same for exact-case rules, whose keyword is the token's prefix or
/// sits a few characters into it (`://` after a scheme, `-us` after 32 hex
/// digits).
const PREFIX_BEFORE: usize = 64;
/// Bytes after a keyword occurrence searched for the value (values are at
/// most 512 bytes, key names and separators a few dozen); the window then
/// extends to the end of the token it would cut.
const WINDOW_AFTER: usize = 700;
/// Private-key blocks are at most this long.
pub const MAX_BLOCK: usize = 16 * 1024;
/// Longest token or quoted value (span-shape contract).
pub const MAX_VALUE: usize = 512;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SecretsConfig {
    /// Rule file, relative to the profile's folder. Unset: embedded rules.
    pub rules_file: Option<String>,
    /// Rule ids to switch off in this profile.
    pub disabled_rules: Vec<String>,
    /// Decode base64, hex, URL and escaped tokens and scan the result.
    pub decode_base64: Option<bool>,
}

/// A secret found in a text: `start..end` is the value to mask.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SecretMatch {
    pub rule: usize,
    pub start: usize,
    pub end: usize,
}

/// One keyword of the prefilter: the rules it wakes, and whether the
/// occurrence must match its case exactly (keywords of case-sensitive
/// rules) or not.
struct Keyword {
    text: String,
    exact_rules: Vec<u16>,
    folded_rules: Vec<u16>,
}

pub struct SecretScanner {
    rules: Vec<Rule>,
    /// All keywords, lower-cased, in one automaton matched ignoring ASCII
    /// case: one pass over the text. Exact-case keywords are confirmed on
    /// the hit.
    prefilter: AhoCorasick,
    keywords: Vec<Keyword>,
    placeholders: Option<Regex>,
    decode: bool,
}

impl std::fmt::Debug for SecretScanner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretScanner")
            .field("rules", &self.rules.len())
            .finish()
    }
}

impl SecretScanner {
    pub fn load(cfg: &SecretsConfig, sources: Option<&dyn RuleSources>) -> Result<Self, String> {
        let text = text_or(
            sources,
            cfg.rules_file.as_ref(),
            "secrets.rules_file",
            EMBEDDED_RULES,
        )?;
        Self::from_toml(&text, cfg)
    }

    pub fn from_toml(text: &str, cfg: &SecretsConfig) -> Result<Self, String> {
        let file: RuleFile = toml::from_str(text).map_err(|e| format!("secret rules: {e}"))?;
        let mut rules = Vec::new();
        let mut keywords: Vec<Keyword> = Vec::new();
        for def in file.rule {
            if cfg.disabled_rules.contains(&def.id) {
                continue;
            }
            if rules.iter().any(|r: &Rule| r.id == def.id) {
                return Err(format!("secret rule {}: duplicate id", def.id));
            }
            let rule = def.compile()?;
            let idx = rules.len() as u16;
            let insensitive = rule.case_insensitive();
            for kw in &rule.keywords {
                // Exact keywords with different case are distinct entries.
                let text = if insensitive {
                    kw.to_ascii_lowercase()
                } else {
                    kw.clone()
                };
                let entry = match keywords.iter_mut().position(|k| k.text == text) {
                    Some(p) => &mut keywords[p],
                    None => {
                        keywords.push(Keyword {
                            text,
                            exact_rules: Vec::new(),
                            folded_rules: Vec::new(),
                        });
                        keywords.last_mut().expect("just pushed")
                    }
                };
                if insensitive {
                    entry.folded_rules.push(idx);
                } else {
                    entry.exact_rules.push(idx);
                }
            }
            rules.push(rule);
        }
        let prefilter = AhoCorasickBuilder::new()
            .ascii_case_insensitive(true)
            .match_kind(MatchKind::Standard)
            .kind(Some(AhoCorasickKind::DFA))
            .build(keywords.iter().map(|k| &k.text))
            .map_err(|e| format!("secret keywords: {e}"))?;
        let placeholders = if file.placeholders.is_empty() {
            None
        } else {
            let alternation = file
                .placeholders
                .iter()
                .map(|p| {
                    Regex::new(p).map_err(|e| format!("placeholder {p}: {e}"))?;
                    Ok(format!("(?:{p})"))
                })
                .collect::<Result<Vec<_>, String>>()?
                .join("|");
            Some(
                Regex::new(&format!("(?i)^(?:{alternation})$"))
                    .map_err(|e| format!("placeholders: {e}"))?,
            )
        };
        Ok(SecretScanner {
            rules,
            prefilter,
            keywords,
            placeholders,
            decode: cfg.decode_base64.unwrap_or(true),
        })
    }

    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    pub fn rule(&self, idx: usize) -> &Rule {
        &self.rules[idx]
    }

    /// All secrets in `text` that are masked in place, sorted by start,
    /// without overlaps (the earliest, then longest, then first-listed rule
    /// wins). Every span satisfies the span-shape contract.
    pub fn find(&self, text: &str) -> Vec<SecretMatch> {
        let mut found = Vec::new();
        self.scan(text, false, &mut |m, _| found.push(m));
        resolve_overlaps(found)
    }

    /// Like [`find`](Self::find), plus rules that only detect (`redact =
    /// false`): what the decision counts.
    pub fn find_all(&self, text: &str) -> Vec<SecretMatch> {
        let mut found = Vec::new();
        self.scan(text, true, &mut |m, _| found.push(m));
        resolve_overlaps(found)
    }

    /// Like [`find`](Self::find), with the start of each rule's whole
    /// regex match (the left context that recognised the value).
    pub fn find_with_context(&self, text: &str) -> Vec<(SecretMatch, usize)> {
        let mut found = Vec::new();
        self.scan(text, false, &mut |m, ctx| found.push((m, ctx)));
        found.sort_by(|a, b| a.0.start.cmp(&b.0.start).then(b.0.end.cmp(&a.0.end)));
        let kept = resolve_overlaps(found.iter().map(|(m, _)| *m).collect());
        found.retain(|(m, _)| kept.contains(m));
        found.dedup_by(|a, b| a.0 == b.0);
        found
    }

    fn scan(&self, text: &str, detect_only: bool, emit: &mut dyn FnMut(SecretMatch, usize)) {
        let mut windows = self.windows(text, detect_only);
        if windows.is_empty() {
            return;
        }
        windows.sort_unstable();
        let mut i = 0;
        while i < windows.len() {
            let (rule, start, mut end) = windows[i];
            let mut j = i + 1;
            while j < windows.len() && windows[j].0 == rule && windows[j].1 <= end {
                end = end.max(windows[j].2);
                j += 1;
            }
            self.scan_window(rule as usize, text, start, end, emit);
            i = j;
        }
    }

    /// `(rule, start, end)` windows around every keyword occurrence.
    ///
    /// Linear in the text however many occurrences it holds: a keyword
    /// repeated at every offset (`AAAA…` for a rule keyed on a run of `A`)
    /// extends the rule's last window instead of adding one per offset,
    /// and window ends come from a forward-only whitespace cursor instead
    /// of a fresh look-ahead per occurrence. Merging overlapping windows
    /// early changes nothing: [`scan`](Self::scan) merges them anyway.
    fn windows(&self, text: &str, detect_only: bool) -> Vec<(u16, usize, usize)> {
        let mut windows: Vec<(u16, usize, usize)> = Vec::new();
        // Per rule: index of its most recent window in `windows`. Made on
        // the first keyword: most texts have none, and zeroing a slot per
        // rule for each of them showed in profiles.
        let mut last: Vec<Option<usize>> = Vec::new();
        let mut ends = [TokenEnds::new(text), TokenEnds::new(text)];
        for m in self.prefilter.find_overlapping_iter(text) {
            let kw = &self.keywords[m.pattern().as_usize()];
            let exact = !kw.exact_rules.is_empty() && text[m.range()] == kw.text;
            let rules = kw
                .folded_rules
                .iter()
                .chain(kw.exact_rules.iter().filter(|_| exact));
            for &r in rules {
                let rule = &self.rules[r as usize];
                if last.is_empty() {
                    last = vec![None; self.rules.len()];
                }
                if !detect_only && !rule.redact {
                    continue;
                }
                if (rule.assignment && !assignment_follows(text, m.end()))
                    || (rule.min_tail > 0 && token_tail(text, m.end()) < rule.min_tail)
                {
                    continue;
                }
                let (before, after) = match rule.block {
                    Some(Block::Pem) => (0, MAX_BLOCK + 256),
                    None if rule.case_insensitive() => (WINDOW_BEFORE, WINDOW_AFTER),
                    None => (PREFIX_BEFORE, WINDOW_AFTER),
                };
                let start = floor_boundary(text, m.start().saturating_sub(before));
                // One cursor per look-ahead length keeps each cursor's
                // positions non-decreasing.
                let cursor = if rule.block.is_some() { 1 } else { 0 };
                let end = ends[cursor].token_end(m.end() + after);
                let merged = last[r as usize].is_some_and(|i| {
                    let w = &mut windows[i];
                    // Overlapping (or touching) windows of one rule become one.
                    let overlaps = start <= w.2 && w.1 <= end;
                    if overlaps {
                        w.1 = w.1.min(start);
                        w.2 = w.2.max(end);
                    }
                    overlaps
                });
                if !merged {
                    last[r as usize] = Some(windows.len());
                    windows.push((r, start, end));
                }
            }
        }
        windows
    }

    fn scan_window(
        &self,
        idx: usize,
        text: &str,
        start: usize,
        end: usize,
        emit: &mut dyn FnMut(SecretMatch, usize),
    ) {
        let rule = &self.rules[idx];
        let hay = &text[..end];
        let mut pos = start;
        while pos <= hay.len() {
            let Some(caps) = rule.regex.captures_at(hay, pos) else {
                break;
            };
            let whole = caps.get(0).expect("group 0");
            pos = if whole.end() > whole.start() {
                whole.end()
            } else {
                ceil_boundary(hay, whole.end() + 1)
            };
            let value = match rule.group {
                Some(g) => caps.get(g),
                None => caps.iter().skip(1).flatten().next().or_else(|| caps.get(0)),
            };
            let Some(value) = value else { continue };
            let (vstart, mut vend) = (value.start(), value.end());
            if rule.block == Some(Block::Pem) {
                vend = pem_end(text, vstart);
            } else if vend - vstart > MAX_VALUE {
                continue;
            }
            let v = &text[vstart..vend];
            if v.is_empty() || self.rejects(rule, v) {
                continue;
            }
            emit(
                SecretMatch {
                    rule: idx,
                    start: vstart,
                    end: vend,
                },
                whole.start(),
            );
        }
    }

    /// Placeholders, per-rule allowlists and entropy floors.
    fn rejects(&self, rule: &Rule, value: &str) -> bool {
        if rule.block.is_none() && self.is_placeholder(value) {
            return true;
        }
        if rule.allowlist.iter().any(|a| a.is_match(value)) {
            return true;
        }
        rule.entropy.is_some_and(|min| shannon_entropy(value) < min)
    }

    /// A value that is a documentation placeholder (`your_api_key`,
    /// `<token>`, `${API_KEY}` …). The whole value must match: a real key
    /// that merely starts like a placeholder is still a secret.
    pub fn is_placeholder(&self, value: &str) -> bool {
        let v = value.trim_matches(|c| c == '"' || c == '\'');
        self.placeholders.as_ref().is_some_and(|p| p.is_match(v))
    }

    /// Encoded tokens (base64, hex, URL, escapes) that decode to text
    /// containing a secret: `(token start, token end, the match inside the
    /// decoded text)`. Only tokens the streaming redactor can mask are
    /// returned (single tokens of at most 512 bytes).
    pub fn find_encoded(&self, text: &str) -> Vec<(usize, usize, SecretMatch)> {
        if !self.decode {
            return Vec::new();
        }
        let decoding = normalize::decode_all(text, &normalize::Limits::default());
        self.encoded_in(&decoding.items)
            .into_iter()
            .filter(|(s, e, _)| maskable_token(&text[*s..*e]))
            .collect()
    }

    fn encoded_in(&self, items: &[Decoded]) -> Vec<(usize, usize, SecretMatch)> {
        let mut out: Vec<(usize, usize, SecretMatch)> = Vec::new();
        for d in items {
            if out
                .iter()
                .any(|(s, e, _)| *s == d.span.start && *e == d.span.end)
            {
                continue;
            }
            if let Some(hit) = self.find(&d.text).into_iter().next() {
                out.push((d.span.start, d.span.end, hit));
            }
        }
        out
    }

    pub fn inspect(&self, cx: &ScanContext<'_>, out: &mut Vec<Finding>) {
        for i in 0..cx.subject.texts.len() {
            self.inspect_part(cx, i, out);
        }
        self.inspect_calls(cx, out);
    }

    /// The findings of text part `i`.
    pub fn inspect_part(&self, cx: &ScanContext<'_>, i: usize, out: &mut Vec<Finding>) {
        let part = &cx.subject.texts[i];
        let location = part.surface.as_str();
        for m in self.find_all(&part.text) {
            out.push(self.finding(
                m,
                &part.text[m.start..m.end],
                location,
                Some(m.start..m.end),
            ));
        }
        if self.decode {
            for (start, end, m) in self.encoded_in(&cx.decoded(i).items) {
                out.push(self.encoded_finding(m, &part.text[start..end], location, start..end));
            }
        }
    }

    /// The findings of the subject's tool-call arguments.
    pub fn inspect_calls(&self, cx: &ScanContext<'_>, out: &mut Vec<Finding>) {
        for call in &cx.subject.tool_calls {
            let location = format!("tool_call:{}", super::excerpt(&call.name));
            for s in argument_strings(&call.arguments) {
                for m in self.find_all(s) {
                    out.push(self.finding(m, &s[m.start..m.end], &location, None));
                }
            }
        }
    }

    fn finding(
        &self,
        m: SecretMatch,
        value: &str,
        location: &str,
        span: Option<std::ops::Range<usize>>,
    ) -> Finding {
        let rule = &self.rules[m.rule];
        let mut f = Finding::new(
            format!("secret.{}", rule.id),
            DetectorId::SecretLeakage,
            "secret_leakage",
            rule.severity,
            rule.score,
            format!("Secret detected: {}", rule.description),
        )
        .at(location)
        .with_evidence(format!("[{}:{} chars]", rule.kind, value.chars().count()))
        .meta("method", "regex")
        .meta("kind", rule.kind.clone());
        if rule.redact {
            f = f.redactable();
        }
        if let Some(span) = span {
            f = f.meta("span", format!("{}..{}", span.start, span.end));
        }
        f
    }

    fn encoded_finding(
        &self,
        m: SecretMatch,
        token: &str,
        location: &str,
        span: std::ops::Range<usize>,
    ) -> Finding {
        let rule = &self.rules[m.rule];
        let mut f = Finding::new(
            format!("secret.encoded.{}", rule.id),
            DetectorId::SecretLeakage,
            "secret_leakage",
            Severity::High,
            0.85,
            format!("Encoded secret detected: {}", rule.description),
        )
        .at(location)
        .with_evidence(format!(
            "[{}:encoded:{} chars]",
            rule.kind,
            token.chars().count()
        ))
        .meta("method", "decoded")
        .meta("kind", rule.kind.clone())
        .meta("span", format!("{}..{}", span.start, span.end));
        // Masked in place only when the token has a shape the streaming
        // redactor can hold back; otherwise it counts towards the decision.
        if maskable_token(token) {
            f = f.redactable();
        }
        f
    }
}

/// A single token of at most [`MAX_VALUE`] bytes (span shape (a)).
fn maskable_token(token: &str) -> bool {
    token.len() <= MAX_VALUE && !token.chars().any(char::is_whitespace)
}

/// End of a private-key block that starts at `start`: the end of the line
/// holding the `END` marker, or the end of the text, at most [`MAX_BLOCK`]
/// bytes after the start.
fn pem_end(text: &str, start: usize) -> usize {
    let limit = floor_boundary(text, (start + MAX_BLOCK).min(text.len()));
    let body = &text[start..limit];
    let (marker, dashes) = match body.find("-----END") {
        Some(m) => (m, "-----"),
        None => match body.find("---- END") {
            Some(m) => (m, "----"),
            None => return limit,
        },
    };
    // The marker ends at the dashes closing its label (`-----END RSA
    // PRIVATE KEY-----`), not at the last dashes of its line: another
    // block may start on the same line.
    let label = marker + dashes.len() + 4;
    let line_end = body[marker..].find('\n').map_or(body.len(), |n| marker + n);
    match body[label.min(line_end)..line_end].find(dashes) {
        Some(c) => {
            let close = label + c;
            let run = body[close..].bytes().take_while(|b| *b == b'-').count();
            start + close + run
        }
        None => start + line_end,
    }
}

fn floor_boundary(text: &str, mut i: usize) -> usize {
    i = i.min(text.len());
    while !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}

fn ceil_boundary(text: &str, mut i: usize) -> usize {
    while i < text.len() && !text.is_char_boundary(i) {
        i += 1;
    }
    i
}

/// After a keyword ending at `at`: the rest of a key name, an optional
/// closing quote, blanks, then `:`, `=`, `=>` or `:=` (`api_key = …`,
/// `"token": …`). Cheap, and it keeps most prose ("the key to success")
/// away from the generic rule's regex.
fn assignment_follows(text: &str, at: usize) -> bool {
    let b = text.as_bytes();
    let mut i = at;
    let limit = (at + 48).min(b.len());
    while i < limit && (b[i].is_ascii_alphanumeric() || matches!(b[i], b'_' | b'.' | b'-')) {
        i += 1;
    }
    if i < limit && matches!(b[i], b'"' | b'\'') {
        i += 1;
    }
    while i < limit && matches!(b[i], b' ' | b'\t') {
        i += 1;
    }
    i < limit && matches!(b[i], b':' | b'=')
}

/// Token characters right after `at`.
fn token_tail(text: &str, at: usize) -> usize {
    text.as_bytes()[at..]
        .iter()
        .take(64)
        .take_while(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b'+' | b'/' | b'=' | b'~')
        })
        .count()
}

/// [`token_end`] for non-decreasing positions (keyword occurrences come
/// in order of their end), examining each byte of the text at most once
/// however many occurrences ask: it remembers where the whitespace after
/// the last position asked is.
struct TokenEnds<'a> {
    text: &'a str,
    /// `(from, ws)`: the first ASCII whitespace at or after `from` is at
    /// `ws` (`text.len()` when there is none).
    known: Option<(usize, usize)>,
    /// Bytes examined so far (tests check the scan stays linear).
    examined: usize,
}

impl<'a> TokenEnds<'a> {
    fn new(text: &'a str) -> Self {
        TokenEnds {
            text,
            known: None,
            examined: 0,
        }
    }

    /// Same result as `token_end(text, at)`.
    fn token_end(&mut self, at: usize) -> usize {
        let text = self.text;
        if at >= text.len() {
            return text.len();
        }
        let at = ceil_boundary(text, at);
        let ws = match self.known {
            Some((from, ws)) if from <= at && at <= ws => ws,
            _ => {
                let rest = &text.as_bytes()[at..];
                let p = rest.iter().position(|b| b.is_ascii_whitespace());
                self.examined += p.map_or(rest.len(), |p| p + 1);
                let ws = p.map_or(text.len(), |p| at + p);
                self.known = Some((at, ws));
                ws
            }
        };
        let limit = (at + MAX_VALUE).min(text.len());
        if ws < limit {
            ws
        } else {
            floor_boundary(text, limit)
        }
    }
}

/// `at`, moved forward past the token it falls into (so a window never
/// ends inside a token and shortens it), by at most [`MAX_VALUE`] bytes.
#[cfg(test)]
fn token_end(text: &str, at: usize) -> usize {
    if at >= text.len() {
        return text.len();
    }
    let at = ceil_boundary(text, at);
    let limit = (at + MAX_VALUE).min(text.len());
    match text.as_bytes()[at..limit]
        .iter()
        .position(|b| b.is_ascii_whitespace())
    {
        Some(p) => at + p,
        None => floor_boundary(text, limit),
    }
}

/// Sort by start; drop a match that overlaps an earlier (or, at the same
/// start, a longer) one. Stable, so at equal spans the first rule wins.
fn resolve_overlaps(mut found: Vec<SecretMatch>) -> Vec<SecretMatch> {
    found.sort_by(|a, b| {
        a.start
            .cmp(&b.start)
            .then(b.end.cmp(&a.end))
            .then(a.rule.cmp(&b.rule))
    });
    let mut out: Vec<SecretMatch> = Vec::with_capacity(found.len());
    for m in found {
        match out.last() {
            Some(last) if m.start < last.end => {}
            _ => out.push(m),
        }
    }
    out
}

/// Shannon entropy in bits per character.
pub fn shannon_entropy(s: &str) -> f64 {
    let mut counts = [0u32; 256];
    let mut n = 0u32;
    for b in s.bytes() {
        counts[b as usize] += 1;
        n += 1;
    }
    if n == 0 {
        return 0.0;
    }
    let n = n as f64;
    counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = c as f64 / n;
            -p * p.log2()
        })
        .sum()
}
