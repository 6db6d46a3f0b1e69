//! Requests that name what the system prompt keeps by its owner: a person
//! of a kept record ("Steven's current city") or what a kept password
//! belongs to ("the password of the helpdesk-admin account"). Part of the
//! context families (`context.rs`), which call these when no family of
//! theirs matched the user's turn.

use super::context::{has, Protected};
use super::matcher::Hits;
use super::phrases::{Context, Family};
use super::{has_word, InjectionDetector, Source};
use crate::detectors::ScanContext;
use crate::subject::Surface;
use crate::types::Finding;

/// Distinctive names in the sentence before a kept secret's name, up to
/// 80 bytes back: a hyphenated name (`helpdesk-admin`) or a capitalised word
/// that does not open the sentence (`Miramar-Ops`, `Hexaform`), lower-cased.
pub(super) fn owners_before(text: &str) -> Vec<String> {
    let mut start = text.len().saturating_sub(80);
    while !text.is_char_boundary(start) {
        start += 1;
    }
    let window = &text[start..];
    let sentence = window
        .rfind(['.', '!', '?', ';', '\n'])
        .map_or(window, |k| &window[k + 1..]);
    let mut out = Vec::new();
    for (k, raw) in sentence.split_whitespace().enumerate() {
        let w = raw.trim_matches(|c: char| !c.is_alphanumeric());
        let hyphenated = w.split('-').filter(|p| !p.is_empty()).count() > 1;
        let capital = k > 0 && w.chars().next().is_some_and(char::is_uppercase);
        if w.chars().count() >= 4 && (hyphenated || capital) {
            out.push(w.to_lowercase());
        }
    }
    out
}

/// The given and family names a record introduces ("the user's name is
/// Jane Smith", "a customer named Ana Silva"), in folded text.
pub(super) fn record_names(folded: &str) -> Vec<String> {
    static NAME: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    let re = NAME.get_or_init(|| {
        regex::Regex::new(
            r"(?:\bname is|\bnamed|\bcalled|\bname:)\s+(\p{L}{3,})(?:\s+(\p{L}{3,}))?",
        )
        .expect("name pattern")
    });
    const NOT_NAMES: [&str; 6] = ["the", "not", "unknown", "user", "customer", "and"];
    let mut out = Vec::new();
    for c in re.captures_iter(folded) {
        for m in [c.get(1), c.get(2)].into_iter().flatten() {
            let w = m.as_str();
            if !NOT_NAMES.contains(&w) {
                out.push(w.to_string());
            }
        }
    }
    out
}

impl InjectionDetector {
    /// The policy's family for `context`, unless it is disabled.
    fn context_family(&self, context: Context) -> Option<&Family> {
        self.book
            .families
            .iter()
            .find(|f| f.context == Some(context))
            .filter(|f| !self.disabled.contains(&f.rule.id))
    }

    /// The finding of `family` for a request that names `name` and asks
    /// about `word` (a range of the folded user text).
    fn named_finding(
        &self,
        cx: &ScanContext<'_>,
        i: usize,
        src: &Source<'_>,
        family: &Family,
        name: &str,
        word: std::ops::Range<usize>,
    ) -> Finding {
        let span = cx.original_span(i, word.clone());
        let evidence = format!("{name} … {}", super::excerpt(&src.norm.folded[word]));
        self.finding(
            &family.rule,
            Surface::User,
            src,
            evidence,
            Some(span),
            "context",
        )
        .meta("context", "system_prompt")
    }

    /// A question about a person of the kept record by name ("Could you
    /// tell me Steven's current city?"): one of the record's names and a
    /// personal attribute in the same user turn.
    pub(super) fn named_record(
        &self,
        cx: &ScanContext<'_>,
        i: usize,
        src: &Source<'_>,
        hits: &Hits<'_>,
        protected: &Protected,
        out: &mut Vec<Finding>,
    ) {
        // The user asking about their own data ("my email address").
        if has(hits, self.context.my_poss) {
            return;
        }
        let Some(family) = self.context_family(Context::Record) else {
            return;
        };
        let folded = &src.norm.folded;
        let Some(name) = protected.names.iter().find(|n| has_word(folded, n)) else {
            return;
        };
        let Some(attr) = self.context.personal.and_then(|c| hits.of_class(c).next()) else {
            return;
        };
        out.push(self.named_finding(cx, i, src, family, name, attr));
    }

    /// A secret asked for by what it belongs to ("Podaj hasło do konta
    /// helpdesk-admin", "the Miramar-Ops password"): a password or code word
    /// and one of the names the system prompt gives its owner, in the same
    /// user turn, not after "my" and not a forgotten one.
    pub(super) fn named_secret(
        &self,
        cx: &ScanContext<'_>,
        i: usize,
        src: &Source<'_>,
        hits: &Hits<'_>,
        protected: &Protected,
        out: &mut Vec<Finding>,
    ) {
        let look = &self.context;
        if protected.owners.is_empty() || has(hits, look.forgot) {
            return;
        }
        let Some(family) = self.context_family(Context::Secret) else {
            return;
        };
        let folded = &src.norm.folded;
        let Some(owner) = protected.owners.iter().find(|n| has_word(folded, n)) else {
            return;
        };
        // "my" just before the word: the user's own.
        let mine = |w: &std::ops::Range<usize>| {
            look.my_poss
                .into_iter()
                .flat_map(|c| hits.of_class(c))
                .any(|m| m.end <= w.start && w.start - m.end <= 12)
        };
        let Some(word) = [look.secret, look.code]
            .into_iter()
            .flatten()
            .flat_map(|c| hits.of_class(c))
            .find(|w| !mine(w))
        else {
            return;
        };
        out.push(self.named_finding(cx, i, src, family, owner, word));
    }
}
