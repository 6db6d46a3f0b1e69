//! Folding a text into the form detectors match on, optionally with a map
//! from every folded byte back to the original text.
//!
//! One pass, character by character:
//! * ASCII goes through a fast path (it is already NFKC);
//! * other characters are NFKC-normalized together with the combining marks
//!   that follow them (so full-width and mathematical letters become ASCII);
//! * invisible characters are dropped and whitespace runs become one space;
//! * each *word* is then folded as a unit: look-alike letters are mapped to
//!   Latin when the word mixes scripts (`іgnоre`) or consists only of
//!   look-alikes (`ѕуѕ`), so real Russian or Greek words stay readable;
//!   letters are lower-cased; Latin, Greek and Cyrillic diacritics are
//!   dropped; leetspeak digits are folded when the word is mostly letters
//!   (`pr3v10us` → `previous`, `2024` stays);
//! * finally, words split letter by letter (`i g n o r e`, `i.g.n.o.r.e`)
//!   are joined back; the joined ranges are recorded because their inner
//!   word boundaries are gone.
//!
//! The same function produces the plain view and the mapped view, so offsets
//! computed from the map always agree with the text detectors matched.

use super::confusables::{confusable, is_invisible, leet, strips_diacritics};
use std::ops::Range;
use unicode_normalization::char::{decompose_canonical, is_combining_mark};
use unicode_normalization::UnicodeNormalization;

/// A folded text and, when requested, where each of its bytes came from.
#[derive(Debug, Default, Clone)]
pub struct Folded {
    pub text: String,
    /// `map[i]` is the byte offset in the original text of the character
    /// that produced folded byte `i`. Empty unless requested.
    pub map: Vec<u32>,
    /// Ranges of `text` that were letter-by-letter splits joined together.
    pub joined: Vec<Range<usize>>,
}

/// Separators accepted between the letters of a split word.
const SPLIT_SEPARATORS: &[char] = &[
    ' ', '.', '-', '_', '*', ',', '/', '|', '+', '~', ':', ';', '·', '•', '\'', '"',
];

/// Minimum number of single letters that make a split word.
const MIN_SPLIT_LETTERS: usize = 4;

pub fn fold(text: &str, mapped: bool) -> Folded {
    // Most texts are ASCII: no NFKC, invisibles or look-alikes to undo, and
    // each word is a contiguous slice, so the same rules run on bytes.
    if !mapped && text.is_ascii() {
        return join_splits(Folded {
            text: fold_ascii(text),
            map: Vec::new(),
            joined: Vec::new(),
        });
    }
    fold_chars(text, mapped)
}

/// The general fold, character by character (any text, with or without
/// the offset map).
fn fold_chars(text: &str, mapped: bool) -> Folded {
    let mut f = Folder {
        out: String::with_capacity(text.len()),
        map: mapped.then(|| Vec::with_capacity(text.len() + 1)),
        word: Vec::with_capacity(32),
        scratch: Vec::with_capacity(32),
        pending_space: None,
    };
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b < 0x80 {
            f.input(b as char, i as u32);
            i += 1;
            continue;
        }
        // A non-ASCII character and the combining marks that follow it are
        // normalized together, all mapped to the character's offset.
        let start = i;
        let mut chars = text[i..].char_indices();
        let (_, first) = chars.next().expect("non-empty");
        let mut end = i + first.len_utf8();
        for (off, c) in chars {
            if !is_combining_mark(c) {
                break;
            }
            end = i + off + c.len_utf8();
        }
        if end - start == first.len_utf8() && is_invisible(first) {
            i = end;
            continue;
        }
        for c in text[start..end].nfkc() {
            f.input(c, start as u32);
        }
        i = end;
    }
    f.flush_word();
    let mut folded = Folded {
        text: f.out,
        map: f.map.unwrap_or_default(),
        joined: Vec::new(),
    };
    if mapped {
        folded.map.push(text.len() as u32);
    }
    join_splits(folded)
}

struct Folder {
    out: String,
    map: Option<Vec<u32>>,
    word: Vec<(char, u32)>,
    scratch: Vec<(char, u32)>,
    pending_space: Option<u32>,
}

fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || c == '@' || c == '$' || (!c.is_ascii() && is_combining_mark(c))
}

/// Typographic variants of ASCII punctuation that NFKC leaves alone.
fn fold_punct(c: char) -> char {
    match c {
        '\u{2018}' | '\u{2019}' | '\u{201B}' | '\u{02BC}' | '\u{00B4}' => '\'',
        '\u{201C}' | '\u{201D}' | '\u{201E}' | '\u{201F}' => '"',
        '\u{2010}'..='\u{2015}' | '\u{2212}' => '-',
        _ => c,
    }
}

impl Folder {
    fn input(&mut self, c: char, at: u32) {
        if is_invisible(c) {
            return;
        }
        if c.is_whitespace() {
            self.flush_word();
            if self.pending_space.is_none() {
                self.pending_space = Some(at);
            }
            return;
        }
        if is_word_char(c) {
            self.word.push((c, at));
            return;
        }
        self.flush_word();
        let p = fold_punct(c);
        if p.is_ascii() {
            self.emit(p.to_ascii_lowercase(), at);
        } else {
            for l in p.to_lowercase() {
                self.emit(l, at);
            }
        }
    }

    fn emit(&mut self, c: char, at: u32) {
        if let Some(space_at) = self.pending_space.take() {
            if !self.out.is_empty() {
                self.out.push(' ');
                if let Some(map) = &mut self.map {
                    map.push(space_at);
                }
            }
        }
        self.out.push(c);
        if let Some(map) = &mut self.map {
            for _ in 0..c.len_utf8() {
                map.push(at);
            }
        }
    }

    fn flush_word(&mut self) {
        if self.word.is_empty() {
            return;
        }
        // Trailing `@`/`$` are punctuation, not leetspeak.
        let mut trailing = 0;
        while self
            .word
            .len()
            .checked_sub(trailing + 1)
            .is_some_and(|k| matches!(self.word[k].0, '@' | '$'))
        {
            trailing += 1;
        }
        let body_len = self.word.len() - trailing;

        let body = &self.word[..body_len];
        if body.iter().all(|(c, _)| c.is_ascii()) {
            self.flush_ascii_word(body_len);
            return;
        }
        let letters = body.iter().filter(|(c, _)| c.is_alphabetic()).count();
        let lookalikes = body
            .iter()
            .filter(|(c, _)| confusable(*c).is_some())
            .count();
        let mixes_latin = body.iter().any(|(c, _)| c.is_ascii_alphabetic());
        let fold_lookalikes = lookalikes > 0 && (mixes_latin || lookalikes == letters);

        self.scratch.clear();
        for &(c, at) in body {
            let c = if fold_lookalikes {
                confusable(c).unwrap_or(c)
            } else {
                c
            };
            for l in c.to_lowercase() {
                if strips_diacritics(l) {
                    let scratch = &mut self.scratch;
                    decompose_canonical(l, |d| {
                        if !is_combining_mark(d) {
                            scratch.push((d, at));
                        }
                    });
                } else if is_combining_mark(l)
                    && self
                        .scratch
                        .last()
                        .is_some_and(|(p, _)| p.is_ascii() || strips_diacritics(*p))
                {
                    // A mark on a Latin letter (`e` + U+0301, Turkish `İ`).
                } else {
                    self.scratch.push((l, at));
                }
            }
        }
        let ascii_letters = self
            .scratch
            .iter()
            .filter(|(c, _)| c.is_ascii_lowercase())
            .count();
        let digits = self
            .scratch
            .iter()
            .filter(|(c, _)| c.is_ascii_digit())
            .count();
        let has_leet = self.scratch.iter().any(|(c, _)| leet(*c).is_some());
        let fold_leet = has_leet && ascii_letters >= 2 && ascii_letters >= digits;

        let scratch = std::mem::take(&mut self.scratch);
        for &(c, at) in &scratch {
            let c = if fold_leet { leet(c).unwrap_or(c) } else { c };
            self.emit(c, at);
        }
        self.scratch = scratch;
        let word = std::mem::take(&mut self.word);
        for &(c, at) in &word[body_len..] {
            self.emit(c, at);
        }
        self.word = word;
        self.word.clear();
    }
}

impl Folder {
    /// The common case: an ASCII word needs only lower-casing and the
    /// leetspeak decision.
    fn flush_ascii_word(&mut self, body_len: usize) {
        let word = std::mem::take(&mut self.word);
        let body = &word[..body_len];
        let mut letters = 0;
        let mut digits = 0;
        let mut has_leet = false;
        for &(c, _) in body {
            if c.is_ascii_alphabetic() {
                letters += 1;
            } else if c.is_ascii_digit() {
                digits += 1;
            }
            has_leet |= leet(c).is_some();
        }
        let fold_leet = has_leet && letters >= 2 && letters >= digits;
        for &(c, at) in body {
            let c = c.to_ascii_lowercase();
            let c = if fold_leet { leet(c).unwrap_or(c) } else { c };
            self.emit(c, at);
        }
        for &(c, at) in &word[body_len..] {
            self.emit(c, at);
        }
        self.word = word;
        self.word.clear();
    }
}

/// `char::is_whitespace` restricted to ASCII (it includes U+000B, which
/// `u8::is_ascii_whitespace` does not).
fn is_ascii_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t'..=b'\r')
}

fn is_ascii_word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'@' || b == b'$'
}

/// [`Folder`] on an ASCII text: whitespace runs become one space, words are
/// lower-cased with the same leetspeak decision as [`Folder::flush_ascii_word`]
/// (trailing `@`/`$` kept as punctuation), other characters pass through.
fn fold_ascii(text: &str) -> String {
    let b = text.as_bytes();
    let mut out: Vec<u8> = Vec::with_capacity(b.len());
    let mut pending_space = false;
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if is_ascii_space(c) {
            pending_space = true;
            i += 1;
            continue;
        }
        if pending_space {
            if !out.is_empty() {
                out.push(b' ');
            }
            pending_space = false;
        }
        if !is_ascii_word(c) {
            out.push(c.to_ascii_lowercase());
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && is_ascii_word(b[i]) {
            i += 1;
        }
        let word = &b[start..i];
        let body_len = word.len()
            - word
                .iter()
                .rev()
                .take_while(|&&c| c == b'@' || c == b'$')
                .count();
        let body = &word[..body_len];
        let mut letters = 0;
        let mut digits = 0;
        let mut has_leet = false;
        for &c in body {
            if c.is_ascii_alphabetic() {
                letters += 1;
            } else if c.is_ascii_digit() {
                digits += 1;
            }
            has_leet |= leet(c as char).is_some();
        }
        let fold_leet = has_leet && letters >= 2 && letters >= digits;
        for &c in body {
            let c = c.to_ascii_lowercase();
            out.push(if fold_leet {
                leet(c as char).map_or(c, |l| l as u8)
            } else {
                c
            });
        }
        out.extend_from_slice(&word[body_len..]);
    }
    String::from_utf8(out).expect("ASCII in, ASCII out")
}

/// Join words split into single letters (`i g n o r e` → `ignore`).
fn join_splits(folded: Folded) -> Folded {
    let text = &folded.text;
    // ASCII texts (the common case) are walked by bytes: no UTF-8 decoding,
    // no Unicode tables.
    let runs = if text.is_ascii() {
        let b = text.as_bytes();
        let word = |i: usize| b.get(i).is_some_and(u8::is_ascii_alphanumeric);
        split_runs(
            text,
            (0..b.len()).map(|i| (i, b[i] as char, word(i), word(i + 1))),
        )
    } else {
        let mut chars = text.char_indices().peekable();
        let steps = std::iter::from_fn(move || {
            let (s, c) = chars.next()?;
            let next_word = chars.peek().is_some_and(|(_, n)| n.is_alphanumeric());
            Some((s, c, c.is_alphanumeric(), next_word))
        });
        split_runs(text, steps)
    };
    if runs.is_empty() {
        return folded;
    }
    join_runs(&folded, &runs)
}

/// The runs of single letters sharing one separator, as ranges of `text`.
/// `steps` yields each character with its offset, whether it is a word
/// character and whether the next one is.
fn split_runs(
    text: &str,
    steps: impl Iterator<Item = (usize, char, bool, bool)>,
) -> Vec<Vec<Range<usize>>> {
    let mut runs: Vec<Vec<Range<usize>>> = Vec::new();
    let mut current: Vec<Range<usize>> = Vec::new();
    let mut prev_word = false;
    let mut run_sep: Option<char> = None;
    for (s, c, word, next_word) in steps {
        if word && !prev_word && !next_word {
            let e = s + c.len_utf8();
            // The letters of one word share a separator; a different one
            // (`i.g.n.o.r.e p-r-e-v`) starts the next word.
            let sep = current.last().and_then(|last| {
                let mut g = text[last.end..s].chars();
                match (g.next(), g.next()) {
                    (Some(sep), None) if SPLIT_SEPARATORS.contains(&sep) => Some(sep),
                    _ => None,
                }
            });
            let continues = match (sep, run_sep) {
                (Some(sep), Some(run)) => sep == run,
                (Some(sep), None) => {
                    run_sep = Some(sep);
                    true
                }
                (None, _) => false,
            };
            if !continues {
                close_run(&mut current, &mut runs);
                run_sep = None;
            }
            current.push(s..e);
        } else if word && !prev_word {
            // A multi-letter word ends any run.
            close_run(&mut current, &mut runs);
            run_sep = None;
        }
        prev_word = word;
    }
    close_run(&mut current, &mut runs);
    runs
}

fn join_runs(folded: &Folded, runs: &[Vec<Range<usize>>]) -> Folded {
    let text = &folded.text;
    let mapped = !folded.map.is_empty();
    let mut out = String::with_capacity(text.len());
    let mut map = Vec::with_capacity(if mapped { folded.map.len() } else { 0 });
    let mut joined = Vec::with_capacity(runs.len());
    let mut pos = 0;
    let copy = |out: &mut String, map: &mut Vec<u32>, r: Range<usize>| {
        out.push_str(&text[r.clone()]);
        if mapped {
            map.extend_from_slice(&folded.map[r]);
        }
    };
    for run in runs {
        let first = run[0].start;
        let last = run[run.len() - 1].end;
        copy(&mut out, &mut map, pos..first);
        let start = out.len();
        let letters = run
            .iter()
            .filter(|r| text[(*r).clone()].bytes().all(|b| b.is_ascii_lowercase()))
            .count();
        let fold_leet = letters >= 2 && letters * 2 >= run.len();
        for letter in run {
            let l = &text[letter.clone()];
            match l.chars().next().and_then(leet).filter(|_| fold_leet) {
                Some(c) => {
                    out.push(c);
                    if mapped {
                        map.push(folded.map[letter.start]);
                    }
                }
                None => copy(&mut out, &mut map, letter.clone()),
            }
        }
        joined.push(start..out.len());
        pos = last;
    }
    copy(&mut out, &mut map, pos..text.len());
    if mapped {
        map.push(*folded.map.last().expect("mapped fold has an end entry"));
    }
    Folded {
        text: out,
        map,
        joined,
    }
}

fn close_run(current: &mut Vec<Range<usize>>, runs: &mut Vec<Vec<Range<usize>>>) {
    if current.len() >= MIN_SPLIT_LETTERS {
        runs.push(std::mem::take(current));
    } else {
        current.clear();
    }
}

/// Keep only `[a-z0-9]` after folding every leetspeak character:
/// `I-g-n-0-r-e` → `ignore`. Used for signatures that must survive any
/// splitting.
pub fn compact(folded: &str) -> String {
    if folded.is_ascii() {
        let out: Vec<u8> = folded
            .bytes()
            .map(|b| match b {
                b'!' | b'|' => b'i',
                b => leet(b as char).map_or(b, |l| l as u8),
            })
            .filter(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
            .collect();
        return String::from_utf8(out).expect("ASCII in, ASCII out");
    }
    folded
        .chars()
        .map(|c| match c {
            '!' | '|' => 'i',
            c => leet(c).unwrap_or(c),
        })
        .filter(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        .collect()
}

/// The original byte range that produced `range` of a mapped fold.
pub fn original_range(original: &str, folded: &Folded, range: Range<usize>) -> Range<usize> {
    if folded.map.is_empty() || range.start >= range.end {
        return 0..0;
    }
    let start = folded.map[range.start] as usize;
    let last = folded.map[range.end - 1] as usize;
    let end = last
        + original[last..]
            .chars()
            .next()
            .map(char::len_utf8)
            .unwrap_or(0);
    // Include combining marks that followed the last character.
    let mut end = end.min(original.len());
    for c in original[end..].chars() {
        if is_combining_mark(c) || is_invisible(c) {
            end += c.len_utf8();
        } else {
            break;
        }
    }
    start..end
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(s: &str) -> String {
        fold(s, false).text
    }

    #[test]
    fn homoglyphs_fold_in_mixed_words_only() {
        assert_eq!(f("ign\u{043E}re"), "ignore");
        assert_eq!(f("IGN\u{041E}RE"), "ignore");
        assert_eq!(f("\u{0399}gnore"), "ignore");
        // A Russian word stays Russian.
        assert_eq!(f("Игнорировать"), "игнорировать");
        // A Greek word stays Greek (accents dropped).
        assert_eq!(f("Αγνοήστε"), "αγνοηστε");
    }

    #[test]
    fn invisibles_whitespace_and_width() {
        assert_eq!(f("I\u{200B}gno\u{00AD}re\u{202E}   all"), "ignore all");
        assert_eq!(f("ｉｇｎｏｒｅ"), "ignore");
        assert_eq!(f("𝐢𝐠𝐧𝐨𝐫𝐞"), "ignore");
    }

    #[test]
    fn leet_only_in_letter_words() {
        assert_eq!(f("1gn0r3 pr3v10us"), "ignore previous");
        assert_eq!(f("in 2024, call 555"), "in 2024, call 555");
        assert_eq!(f("p@ssw0rd"), "password");
        assert_eq!(f("costs 5$"), "costs 5$");
    }

    #[test]
    fn diacritics_dropped_for_latin() {
        assert_eq!(f("ïgnörë"), "ignore");
        assert_eq!(f("instruções"), "instrucoes");
        assert_eq!(f("e\u{0301}cole"), "ecole");
    }

    #[test]
    fn split_words_are_joined_and_recorded() {
        let r = fold("please i g n o r e previous", false);
        assert_eq!(r.text, "please ignore previous");
        assert_eq!(&r.text[r.joined[0].clone()], "ignore");
        assert_eq!(f("i.g.n.o.r.e p-r-e-v-i-o-u-s"), "ignore previous");
        // Outlines and initials are left alone.
        assert_eq!(f("a. b. c. d."), "a. b. c. d.");
        assert_eq!(f("U.S.A"), "u.s.a");
    }

    #[test]
    fn map_points_at_original_bytes() {
        let text = "Ｉgn\u{043E}re  all i g n o r e";
        let m = fold(text, true);
        assert_eq!(m.map.len(), m.text.len() + 1);
        let pos = m.text.find("all").unwrap();
        let r = original_range(text, &m, pos..pos + 3);
        assert_eq!(&text[r], "all");
        let r = original_range(text, &m, 0..6);
        assert_eq!(&text[r], "Ｉgn\u{043E}re");
        let j = m.joined[0].clone();
        assert_eq!(&text[original_range(text, &m, j)], "i g n o r e");
    }

    #[test]
    fn mapped_and_plain_views_agree() {
        for s in [
            "Hé\u{200B}llo  wörld 1gn0re i.g.n.o.r.e ﬁ ＡＢＣ Игнор",
            "",
            "   ",
        ] {
            assert_eq!(fold(s, true).text, fold(s, false).text);
        }
    }

    /// The ASCII fast paths give exactly what the general fold and compact
    /// give, on generated texts dense in the cases that matter: leetspeak,
    /// trailing `@`/`$`, every ASCII whitespace, split words, punctuation.
    #[test]
    fn ascii_fast_path_matches_general_fold() {
        const PIECES: &[&str] = &[
            "a",
            "B",
            "z",
            "Q",
            "0",
            "1",
            "3",
            "4",
            "5",
            "7",
            "8",
            "9",
            "@",
            "$",
            " ",
            "  ",
            "\t",
            "\n",
            "\x0b",
            "\x0c",
            "\r",
            "\x1c",
            "\x00",
            ".",
            "-",
            "_",
            "*",
            "!",
            "|",
            ",",
            "/",
            "'",
            "\"",
            "~",
            "ignore",
            "PR3V10US",
            "p@ss",
            "2024",
            "x$",
            "i g n o r e",
            "i.g.n.o.r.e",
            "a. b. c.",
            "U.S.A",
            "\x7f",
            "{",
            "}",
        ];
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..20_000 {
            let len = (next() % 24) as usize;
            let text: String = (0..len)
                .map(|_| PIECES[(next() % PIECES.len() as u64) as usize])
                .collect();
            let fast = fold(&text, false);
            let general = fold_chars(&text, false);
            assert_eq!(fast.text, general.text, "fold of {text:?}");
            assert_eq!(fast.joined, general.joined, "joined ranges of {text:?}");
            assert_eq!(fold(&text, true).text, fast.text, "mapped fold of {text:?}");
            let chars: String = fast
                .text
                .chars()
                .map(|c| match c {
                    '!' | '|' => 'i',
                    c => leet(c).unwrap_or(c),
                })
                .filter(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
                .collect();
            assert_eq!(compact(&fast.text), chars, "compact of {text:?}");
        }
    }

    #[test]
    fn compact_undoes_everything() {
        assert_eq!(compact(&f("I-g-n-0-r-e   pr3v10us!")), "ignorepreviousi");
    }
}
