//! Text normalization shared by all detectors.
//!
//! Attackers hide phrases with invisible characters, look-alike letters,
//! leetspeak, letter-by-letter splitting and encodings. Detectors therefore
//! match against normalized views of a text rather than the raw bytes:
//!
//! * `folded` ([`fold`]): NFKC, invisibles removed, look-alikes folded
//!   (Cyrillic, Greek, Armenian; upper and lower case), lower-cased,
//!   diacritics dropped, leetspeak folded inside words, whitespace
//!   collapsed, split words (`i.g.n.o.r.e`) joined;
//! * `compact`: `folded` reduced to `[a-z0-9]` with every leetspeak
//!   character folded, for signatures that must survive any splitting;
//! * decoded payloads ([`decode`]): base64, hex, binary, URL, `\u` escapes
//!   and HTML entities, recursively, each pointing at the encoded token of
//!   the original text.
//!
//! Views are computed without offset maps (the hot path, where ASCII text
//! takes a byte-wise fast path); when a detector finds something it asks
//! for the map once ([`fold_mapped`]) to report the span of the text as
//! received.
//!
//! Sizes are bounded: texts longer than [`MAX_NORMALIZED_BYTES`] are cut (and
//! the cut is reported), decoding has depth and output limits.

pub mod confusables;
pub mod decode;
pub mod fold;

pub use confusables::is_invisible;
pub use decode::{decode_all, Decoded, Decoding, Encoding, Limits};
pub use fold::{compact, original_range, Folded};

use std::ops::Range;

/// Upper bound on the text a single normalization pass looks at. Larger
/// than any body the proxy accepts, so only direct library callers can hit
/// it, and then a finding says so.
pub const MAX_NORMALIZED_BYTES: usize = 16 << 20;

#[derive(Debug, Clone, Default)]
pub struct Normalized {
    pub folded: String,
    pub compact: String,
    /// Ranges of `folded` that were split words joined back together;
    /// phrase matching ignores word boundaries inside them.
    pub joined: Vec<Range<usize>>,
    /// The input was longer than [`MAX_NORMALIZED_BYTES`] and was cut.
    pub truncated: bool,
}

impl Normalized {
    pub fn of(text: &str) -> Self {
        let cut = truncate_at_char_boundary(text, MAX_NORMALIZED_BYTES);
        let folded = fold::fold(cut, false);
        let compact = compact(&folded.text);
        Normalized {
            folded: folded.text,
            compact,
            joined: folded.joined,
            truncated: cut.len() < text.len(),
        }
    }

    /// True when `pos` lies inside a joined split word.
    pub fn in_joined(&self, pos: usize) -> bool {
        self.joined.iter().any(|r| r.start <= pos && pos < r.end)
    }
}

/// The folded view with its map back to the original text (same text as
/// [`Normalized::folded`]).
pub fn fold_mapped(text: &str) -> Folded {
    fold::fold(truncate_at_char_boundary(text, MAX_NORMALIZED_BYTES), true)
}

/// NFKC, invisibles removed, look-alikes folded, lower-cased, whitespace
/// collapsed, split words joined.
pub fn fold(text: &str) -> String {
    fold::fold(text, false).text
}

/// The lightest normalization: lower-case and collapsed whitespace, nothing
/// else. A phrase that matches the folded view but not this one was
/// disguised (look-alikes, invisibles, leetspeak, splitting, width).
pub fn plain(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for word in text.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        for c in word.chars() {
            out.extend(c.to_lowercase());
        }
    }
    out
}

pub fn truncate_at_char_boundary(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn views() {
        let n = Normalized::of("I.g.n.0.r.e   pr3v10us INSTRUCTIONS");
        assert_eq!(n.folded, "ignore previous instructions");
        assert_eq!(n.compact, "ignorepreviousinstructions");
        assert!(n.in_joined(0));
        assert!(!n.in_joined(8));
    }

    #[test]
    fn plain_keeps_disguises_visible() {
        assert_eq!(plain("Ignore  ALL"), "ignore all");
        assert_ne!(plain("ign\u{043E}re"), fold("ign\u{043E}re"));
    }

    #[test]
    fn truncation_respects_char_boundaries() {
        let s = "é".repeat(10);
        assert_eq!(truncate_at_char_boundary(&s, 3), "é");
    }
}
