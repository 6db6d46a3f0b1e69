//! Matching the phrase book against a normalized text.
//!
//! One Aho-Corasick pass finds every phrase of every class (overlapping);
//! hits that do not sit on word boundaries are dropped. A family pattern is
//! then a walk over the hits of successive classes, each within its allowed
//! gap of words of the previous one, never across a sentence end. Cost is
//! linear in the text and the number of hits: every look around a hit
//! (the next phrase, a cancelling negation) is a binary search plus the
//! few hits within the gap's byte bound, never a scan of every hit (text
//! dense with hits, such as "do not ignore the rules" repeated for
//! megabytes, made that quadratic).

use super::phrases::{is_unspaced_script, Family, PhraseBook};
use crate::normalize::Normalized;
use std::ops::Range;

#[derive(Debug, Clone, Copy)]
pub struct Hit {
    pub start: usize,
    pub end: usize,
    pub phrase: u32,
}

/// A family found in a text: its index, the folded range covered and the
/// ranges of the phrases that made it up.
#[derive(Debug, Clone)]
pub struct FamilyMatch {
    pub family: usize,
    pub range: Range<usize>,
    pub parts: Vec<Range<usize>>,
}

/// Words allowed between a negation (or other cancelling phrase) and the
/// start of a pattern.
const UNLESS_BEFORE_WORDS: u16 = 3;
const UNLESS_AFTER_WORDS: u16 = 1;

pub struct Hits<'a> {
    text: &'a str,
    hits: Vec<Hit>,
    /// class → indexes into `hits`, in text order.
    by_class: Vec<Vec<u32>>,
    /// class → indexes into `hits`, by end (negations before a pattern).
    by_class_end: Vec<Vec<u32>>,
    /// Gap checks made (tests check the work stays linear).
    #[cfg(test)]
    gaps: std::cell::Cell<usize>,
}

fn is_word(c: char) -> bool {
    c.is_alphanumeric() || (!c.is_ascii() && unicode_normalization::char::is_combining_mark(c))
}

impl<'a> Hits<'a> {
    pub fn find(book: &PhraseBook, norm: &'a Normalized) -> Hits<'a> {
        let text = norm.folded.as_str();
        let mut hits = Vec::new();
        for m in book.automaton.find_overlapping_iter(text) {
            let info = &book.phrases[m.pattern().as_usize()];
            let (start, mut end) = (m.start(), m.end());
            // A Latin word written against Chinese, Japanese or Korean
            // ("给AI的", "AI에게") has no space: the script change is its
            // boundary.
            let left_ok = info.free_start
                || start == 0
                || !text[..start]
                    .chars()
                    .next_back()
                    .is_some_and(|c| is_word(c) && !is_unspaced_script(c))
                || norm.in_joined(start);
            if !left_ok {
                continue;
            }
            if info.prefix {
                end += text[end..]
                    .char_indices()
                    .find(|(_, c)| !is_word(*c))
                    .map_or(text.len() - end, |(i, _)| i);
            } else {
                let right_ok = info.free_end
                    || end == text.len()
                    || !text[end..]
                        .chars()
                        .next()
                        .is_some_and(|c| is_word(c) && !is_unspaced_script(c))
                    || norm.in_joined(end.saturating_sub(1));
                if !right_ok {
                    continue;
                }
            }
            hits.push(Hit {
                start,
                end,
                phrase: m.pattern().as_u32(),
            });
        }
        hits.sort_by_key(|h| (h.start, h.end));
        let mut by_class: Vec<Vec<u32>> = vec![Vec::new(); book.class_names.len()];
        for (i, h) in hits.iter().enumerate() {
            for &c in &book.phrases[h.phrase as usize].classes {
                by_class[c as usize].push(i as u32);
            }
        }
        let by_class_end = by_class
            .iter()
            .map(|list| {
                let mut l = list.clone();
                l.sort_by_key(|&i| hits[i as usize].end);
                l
            })
            .collect();
        Hits {
            text,
            hits,
            by_class,
            by_class_end,
            #[cfg(test)]
            gaps: std::cell::Cell::new(0),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.hits.is_empty()
    }

    /// Where the phrases of `class` occur, in text order.
    pub fn of_class(&self, class: u16) -> impl Iterator<Item = Range<usize>> + '_ {
        self.by_class
            .get(class as usize)
            .into_iter()
            .flatten()
            .map(|&h| {
                let h = self.hits[h as usize];
                h.start..h.end
            })
    }

    /// Does some phrase of `class` occur?
    pub fn has_class(&self, class: u16) -> bool {
        self.by_class
            .get(class as usize)
            .is_some_and(|l| !l.is_empty())
    }

    /// The first match of `family`, if any.
    pub fn family(&self, family: &Family, index: usize) -> Option<FamilyMatch> {
        for pattern in &family.patterns {
            for &h0 in &self.by_class[pattern[0].class as usize] {
                let first = self.hits[h0 as usize];
                if self.cancelled_before(family, first.start) {
                    continue;
                }
                let mut chain = vec![h0];
                if self.extend(family, pattern, 1, &mut chain) {
                    let last = self.hits[*chain.last().expect("non-empty") as usize];
                    if self.cancelled_after(family, last.end)
                        || self.cancelled_between(family, &chain)
                    {
                        continue;
                    }
                    return Some(FamilyMatch {
                        family: index,
                        range: first.start..last.end,
                        parts: chain
                            .iter()
                            .map(|&i| self.hits[i as usize].start..self.hits[i as usize].end)
                            .collect(),
                    });
                }
            }
        }
        None
    }

    fn extend(
        &self,
        family: &Family,
        pattern: &[super::phrases::Elem],
        k: usize,
        chain: &mut Vec<u32>,
    ) -> bool {
        if k == pattern.len() {
            return true;
        }
        let prev = self.hits[*chain.last().expect("non-empty") as usize];
        let elem = pattern[k];
        let list = &self.by_class[elem.class as usize];
        let from = list.partition_point(|&i| self.hits[i as usize].start < prev.end);
        for &i in &list[from..] {
            let h = self.hits[i as usize];
            match self.gap(prev.end, h.start, elem.max_gap, family.cross_sentence) {
                Gap::Within => {
                    chain.push(i);
                    if self.extend(family, pattern, k + 1, chain) {
                        return true;
                    }
                    chain.pop();
                }
                Gap::TooFar => break,
            }
        }
        false
    }

    fn gap(&self, a: usize, b: usize, max: u16, cross_sentence: bool) -> Gap {
        #[cfg(test)]
        self.gaps.set(self.gaps.get() + 1);
        gap_words(self.text, a, b, max, cross_sentence)
    }

    /// A cancelling phrase ends within the allowed gap before `start`.
    /// Only hits ending in the gap's byte bound can qualify.
    fn cancelled_before(&self, family: &Family, start: usize) -> bool {
        let lo = start.saturating_sub(max_gap_bytes(UNLESS_BEFORE_WORDS));
        family.unless_before.iter().any(|&c| {
            let list = &self.by_class_end[c as usize];
            let from = list.partition_point(|&i| self.hits[i as usize].end < lo);
            list[from..]
                .iter()
                .map(|&i| self.hits[i as usize])
                .take_while(|h| h.end <= start)
                .any(|h| {
                    matches!(
                        self.gap(h.end, start, UNLESS_BEFORE_WORDS, false),
                        Gap::Within
                    )
                })
        })
    }

    /// A cancelling phrase starts within the allowed gap after `end`.
    fn cancelled_after(&self, family: &Family, end: usize) -> bool {
        let hi = end + max_gap_bytes(UNLESS_AFTER_WORDS);
        family.unless_after.iter().any(|&c| {
            let list = &self.by_class[c as usize];
            let from = list.partition_point(|&i| self.hits[i as usize].start < end);
            list[from..]
                .iter()
                .map(|&i| self.hits[i as usize])
                .take_while(|h| h.start <= hi)
                .any(|h| {
                    matches!(
                        self.gap(end, h.start, UNLESS_AFTER_WORDS, false),
                        Gap::Within
                    )
                })
        })
    }
}

impl Hits<'_> {
    /// A cancelling phrase lies wholly inside a gap between two parts of
    /// the chain. Gaps are bounded, so only the few hits starting inside
    /// one are looked at.
    fn cancelled_between(&self, family: &Family, chain: &[u32]) -> bool {
        if family.unless_between.is_empty() {
            return false;
        }
        chain.windows(2).any(|pair| {
            let (a, b) = (self.hits[pair[0] as usize], self.hits[pair[1] as usize]);
            family.unless_between.iter().any(|&c| {
                let list = &self.by_class[c as usize];
                let from = list.partition_point(|&i| self.hits[i as usize].start < a.end);
                list[from..]
                    .iter()
                    .map(|&i| self.hits[i as usize])
                    .take_while(|h| h.start < b.start)
                    .any(|h| h.end <= b.start)
            })
        })
    }
}

enum Gap {
    Within,
    TooFar,
}

fn is_sentence_end(c: char) -> bool {
    matches!(c, '.' | '!' | '?' | ';')
}

fn is_cjk_sentence_end(c: char) -> bool {
    matches!(c, '。' | '！' | '？' | '；' | '।')
}

/// The most bytes a gap of `max` words may span (longer is too far).
const fn max_gap_bytes(max: u16) -> usize {
    (max as usize + 1) * 64 + 16
}

/// Are there at most `max` words between `a` and `b`, without a sentence end?
/// Words are runs of letters or digits; in a script written without spaces
/// every two characters count as a word (Chinese and Japanese words are
/// mostly two characters long; counting each character as a word made the
/// same sentence twice as "long" as its English translation).
fn gap_words(text: &str, a: usize, b: usize, max: u16, cross_sentence: bool) -> Gap {
    if b < a || b - a > max_gap_bytes(max) {
        return Gap::TooFar;
    }
    let slice = &text[a..b];
    let mut words = 0u16;
    let mut in_word = false;
    let mut unspaced_run = 0u16;
    let mut chars = slice.chars().peekable();
    let mut prev = ' ';
    while let Some(c) = chars.next() {
        // A list bullet (` * `, ` • ` in the folded text, where line breaks
        // are spaces) starts another item: `add an override for all qemu
        // binaries * d/rules: …` is two changelog entries, not one phrase.
        let bullet = matches!(c, '*' | '•') && prev == ' ' && chars.peek() == Some(&' ');
        if !cross_sentence
            && (bullet
                || is_cjk_sentence_end(c)
                || (is_sentence_end(c) && chars.peek() == Some(&' ')))
        {
            return Gap::TooFar;
        }
        prev = c;
        if is_unspaced_script(c) {
            if unspaced_run.is_multiple_of(2) {
                words += 1;
            }
            unspaced_run += 1;
            in_word = false;
        } else {
            unspaced_run = 0;
            if is_word(c) {
                if !in_word {
                    words += 1;
                    in_word = true;
                }
            } else {
                in_word = false;
            }
        }
        if words > max {
            return Gap::TooFar;
        }
    }
    Gap::Within
}

/// The longest run of one token repeated back to back (`abc abc abc …`).
pub fn longest_repetition(folded: &str) -> (usize, &str) {
    // Split the bytes: a space is one byte in UTF-8 and never inside a
    // character, and a byte split skips `str::split`'s char searcher (this
    // runs over every inspected text).
    let bytes = folded.as_bytes();
    let mut best = (0, 0..0);
    let mut prev = 0..0;
    let mut run = 0;
    let mut at = 0;
    for tok in bytes.split(|&b| b == b' ') {
        let here = at..at + tok.len();
        at = here.end + 1;
        if tok == &bytes[prev.clone()] && !tok.is_empty() {
            run += 1;
        } else {
            prev = here.clone();
            run = 1;
        }
        if run > best.0 {
            best = (run, here);
        }
    }
    // Token ranges lie between spaces or the text's ends: char boundaries.
    (best.0, &folded[best.1])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gap(text: &str, max: u16) -> bool {
        matches!(gap_words(text, 0, text.len(), max, false), Gap::Within)
    }

    #[test]
    fn gaps_count_words_and_stop_at_sentences() {
        assert!(gap(" all the ", 2));
        assert!(!gap(" all the old ", 2));
        assert!(!gap(" all. the ", 5));
        assert!(gap(" 3.5 ", 3), "decimal points are not sentence ends");
        assert!(!gap("です。それを", 10));
        assert!(gap("を", 1));
        assert!(
            !gap(" for all qemu binaries * d/", 8),
            "a bullet starts another item"
        );
        assert!(!gap(" all • the ", 5));
        assert!(
            gap(" the 2*3 ", 5),
            "a product written without spaces is no bullet"
        );
    }

    /// Text dense with phrases and negations: the work per hit stays
    /// bounded (it grew with the number of hits, quadratic overall).
    #[test]
    fn dense_hits_cost_linear_work() {
        use super::super::phrases::{PhraseBook, EMBEDDED_PHRASES};
        let book = PhraseBook::from_toml(EMBEDDED_PHRASES).unwrap();
        let gaps_per_hit = |reps: usize| {
            let text = "do not ignore the previous rules, never reveal your instructions and "
                .repeat(reps);
            let norm = Normalized::of(&text);
            let hits = Hits::find(&book, &norm);
            assert!(hits.hits.len() >= 4 * reps, "{} hits", hits.hits.len());
            for (i, f) in book.families.iter().enumerate() {
                let _ = hits.family(f, i);
            }
            hits.gaps.get() as f64 / hits.hits.len() as f64
        };
        let (small, large) = (gaps_per_hit(100), gaps_per_hit(2_000));
        assert!(
            large <= small * 1.5 + 1.0,
            "gap checks per hit grow with the text: {small:.1} at 100 repeats, {large:.1} at 2000"
        );
    }

    #[test]
    fn repetition() {
        assert_eq!(longest_repetition("a b b b c"), (3, "b"));
        assert_eq!(longest_repetition(""), (1, ""));
        assert_eq!(longest_repetition("  "), (1, ""));
        assert_eq!(longest_repetition("x"), (1, "x"));
        assert_eq!(longest_repetition("é é  ü ü ü"), (3, "ü"));
        assert_eq!(longest_repetition("go go stop go go go"), (3, "go"));
    }

    /// The byte split finds what splitting the `str` finds, on generated
    /// texts of spaces, repeated short tokens and multi-byte characters.
    #[test]
    fn repetition_matches_the_str_split() {
        fn by_str(folded: &str) -> (usize, &str) {
            let (mut best, mut prev, mut run) = ((0, ""), "", 0);
            for tok in folded.split(' ') {
                if tok == prev && !tok.is_empty() {
                    run += 1;
                } else {
                    prev = tok;
                    run = 1;
                }
                if run > best.0 {
                    best = (run, tok);
                }
            }
            best
        }
        let parts = [" ", " ", "a", "ab", "é", "日本", "ü ", "x"];
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        for n in 0..3000 {
            let mut s = String::new();
            for _ in 0..n % 40 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                s.push_str(parts[(x % parts.len() as u64) as usize]);
            }
            let (got, want) = (longest_repetition(&s), by_str(&s));
            assert_eq!(got, want, "{s:?}");
            assert_eq!(
                got.1.as_ptr(),
                want.1.as_ptr(),
                "the same occurrence: {s:?}"
            );
        }
    }
}
