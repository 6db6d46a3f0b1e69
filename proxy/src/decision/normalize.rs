//! Text normalization shared by all detectors.
//!
//! Attackers hide phrases with invisible characters, look-alike letters and
//! separators. Detectors therefore match against normalized views of a text
//! rather than the raw bytes:
//!
//! * `folded`: NFKC, invisible characters removed, lower-cased, Cyrillic and
//!   Greek look-alikes folded to Latin, whitespace collapsed;
//! * `compact`: `folded` with leetspeak digits folded and everything but
//!   `[a-z0-9]` removed, which also undoes letter-by-letter splitting
//!   (`i.g.n.o.r.e` → `ignore`).
//!
//! Inputs are truncated to [`MAX_NORMALIZED_BYTES`] so hostile inputs cost
//! bounded time.

use unicode_normalization::UnicodeNormalization;

/// Upper bound on the text a single normalization pass looks at.
pub const MAX_NORMALIZED_BYTES: usize = 1 << 20;

#[derive(Debug, Clone, Default)]
pub struct Normalized {
    pub folded: String,
    pub compact: String,
}

impl Normalized {
    pub fn of(text: &str) -> Self {
        let text = truncate_at_char_boundary(text, MAX_NORMALIZED_BYTES);
        let folded = fold(text);
        let compact = compact(&folded);
        Normalized { folded, compact }
    }
}

/// Characters that render as nothing (or only steer layout) and are used to
/// split words: zero-width, soft hyphen, word joiners, bidi controls.
pub fn is_invisible(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{034F}' | '\u{061C}' | '\u{115F}' | '\u{1160}' | '\u{17B4}' | '\u{17B5}'
        | '\u{180B}'..='\u{180F}'
        | '\u{200B}'..='\u{200F}'
        | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{206F}'
        | '\u{3164}' | '\u{FE00}'..='\u{FE0F}' | '\u{FEFF}' | '\u{FFA0}'
        | '\u{E0000}'..='\u{E007F}')
}

/// Map a lower-case Cyrillic or Greek look-alike to its Latin letter.
pub fn fold_confusable(c: char) -> char {
    match c {
        // Cyrillic
        'а' => 'a',
        'в' => 'b',
        'е' | 'ё' | 'є' => 'e',
        'і' | 'ї' => 'i',
        'ј' => 'j',
        'к' => 'k',
        'м' => 'm',
        'н' => 'h',
        'о' => 'o',
        'р' => 'p',
        'с' => 'c',
        'т' => 't',
        'у' => 'y',
        'х' => 'x',
        'ѕ' => 's',
        'ԁ' => 'd',
        'ɡ' => 'g',
        'ӏ' => 'l',
        // Greek
        'α' => 'a',
        'β' => 'b',
        'ε' => 'e',
        'η' => 'n',
        'ι' => 'i',
        'κ' => 'k',
        'μ' => 'u',
        'ν' => 'v',
        'ο' => 'o',
        'ρ' => 'p',
        'τ' => 't',
        'υ' => 'u',
        'χ' => 'x',
        'ω' => 'w',
        'ς' => 's',
        'ζ' => 'z',
        _ => c,
    }
}

/// NFKC, drop invisibles, lower-case, fold look-alikes, collapse whitespace.
/// Lower-casing happens before folding so upper-case Cyrillic and Greek are
/// caught too (the original folded first and missed them).
pub fn fold(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut pending_space = false;
    for c in text.nfkc() {
        if is_invisible(c) {
            continue;
        }
        if c.is_whitespace() {
            pending_space = !out.is_empty();
            continue;
        }
        if pending_space {
            out.push(' ');
            pending_space = false;
        }
        for lower in c.to_lowercase() {
            out.push(fold_confusable(lower));
        }
    }
    out
}

/// Fold leetspeak digits and symbols to the letters they imitate.
pub fn fold_leet(c: char) -> char {
    match c {
        '0' => 'o',
        '1' | '!' | '|' => 'i',
        '3' => 'e',
        '4' | '@' => 'a',
        '5' | '$' => 's',
        '7' => 't',
        '8' => 'b',
        _ => c,
    }
}

/// Keep only `[a-z0-9]` after leet folding: `I-g-n-0-r-e` → `ignore`.
pub fn compact(folded: &str) -> String {
    folded
        .chars()
        .map(fold_leet)
        .filter(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        .collect()
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
    fn folds_homoglyphs_in_both_cases() {
        // Cyrillic о (lower) and О (upper), Greek Ι (upper).
        assert_eq!(fold("ign\u{043E}re"), "ignore");
        assert_eq!(fold("IGN\u{041E}RE"), "ignore");
        assert_eq!(fold("\u{0399}gnore"), "ignore");
    }

    #[test]
    fn removes_invisible_and_bidi() {
        assert_eq!(fold("I\u{200B}gno\u{00AD}re\u{202E} all"), "ignore all");
    }

    #[test]
    fn compact_undoes_splitting_and_leet() {
        assert_eq!(
            Normalized::of("i.g.n.0.r.e   pr3v10us").compact,
            "ignoreprevious"
        );
        assert_eq!(Normalized::of("i g n o r e").compact, "ignore");
    }

    #[test]
    fn nfkc_folds_fullwidth() {
        assert_eq!(fold("ｉｇｎｏｒｅ"), "ignore");
    }

    #[test]
    fn truncation_respects_char_boundaries() {
        let s = "é".repeat(10);
        assert_eq!(truncate_at_char_boundary(&s, 3), "é");
    }
}
