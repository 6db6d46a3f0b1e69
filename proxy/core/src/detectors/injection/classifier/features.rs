//! What the injection classifier sees: the folded text cut into pieces
//! (sentences, or half-windows of long runs), windows of consecutive pieces,
//! and hashed character and word n-grams.
//!
//! A feature *belongs* to the window its first character lies in; n-grams
//! may read past the window's end into the following text. That makes a
//! window's feature vector the sum of its pieces' vectors, so sliding
//! windows cost one pass over the text: every piece is hashed once and a
//! window's score is a running sum. Training exports exactly the same
//! vectors through [`window_features`], so the weights see what inference
//! sees.

use crate::detectors::injection::phrases::is_unspaced_script;
use std::ops::Range;

/// Shape of the features; stored in the model file, so a model always runs
/// with the features it was trained on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeatureSpec {
    /// Number of hash buckets is `1 << buckets_log2`.
    pub buckets_log2: u8,
    /// Character n-gram lengths, inclusive.
    pub char_min: u8,
    pub char_max: u8,
    /// Word n-grams up to this length (1 = unigrams, 2 = and bigrams).
    pub word_max: u8,
    /// Longest window, in bytes of folded text.
    pub window_bytes: usize,
    /// Also score every piece (sentence) as a window of its own.
    pub piece_windows: bool,
}

impl FeatureSpec {
    pub fn buckets(&self) -> usize {
        1usize << self.buckets_log2
    }

    pub fn validate(&self) -> Result<(), String> {
        if !(10..=24).contains(&self.buckets_log2) {
            return Err("buckets_log2 must be between 10 and 24".into());
        }
        if self.char_min < 1 || self.char_min > self.char_max || self.char_max > 8 {
            return Err("char n-gram lengths must satisfy 1 <= char_min <= char_max <= 8".into());
        }
        if self.word_max > 2 {
            return Err("word_max must be 0, 1 or 2".into());
        }
        if !(64..=8192).contains(&self.window_bytes) {
            return Err("window_bytes must be between 64 and 8192".into());
        }
        Ok(())
    }
}

const CHAR_SEED: u64 = 0xcbf2_9ce4_8422_2325;
const WORD_SEED: u64 = 0x8422_2325_cbf2_9ce4;
const BIGRAM_SEED: u64 = 0x9e37_79b9_7f4a_7c15;
const PRIME: u64 = 0x0000_0100_0000_01b3;
/// Characters of a word that go into its hash (long tokens such as base64
/// blobs are hashed by their start; character n-grams see all of them).
const WORD_CHARS: usize = 32;
/// How far a bigram looks past a piece for the next word.
const LOOKAHEAD_CHARS: usize = 48;

#[inline]
fn mix(h: u64, c: char) -> u64 {
    (h ^ c as u64).wrapping_mul(PRIME)
}

/// MurmurHash3's 64-bit finalizer: spreads FNV's weak low bits.
#[inline]
fn finish(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

#[inline]
fn bucket(h: u64, log2: u8) -> u32 {
    (finish(h) >> (64 - log2 as u32)) as u32
}

/// Letters, digits and the combining marks of scripts such as Devanagari
/// and Bengali (their vowel signs are marks, not letters).
#[inline]
fn is_word(c: char) -> bool {
    c.is_alphanumeric() || (!c.is_ascii() && unicode_normalization::char::is_combining_mark(c))
}

fn is_sentence_end(c: char) -> bool {
    matches!(
        c,
        '.' | '!' | '?' | ';' | '。' | '！' | '？' | '；' | '।' | '؟' | '۔'
    )
}

/// Pieces of `text`: sentences, cut further so that none is longer than
/// half a window. Every byte of `text` lies in exactly one piece.
pub fn pieces(text: &str, window_bytes: usize) -> Pieces<'_> {
    Pieces {
        text,
        pos: 0,
        max: (window_bytes / 2).max(16),
    }
}

pub struct Pieces<'t> {
    text: &'t str,
    pos: usize,
    max: usize,
}

impl Iterator for Pieces<'_> {
    type Item = Range<usize>;

    fn next(&mut self) -> Option<Range<usize>> {
        let start = self.pos;
        if start >= self.text.len() {
            return None;
        }
        let rest = &self.text[start..];
        let mut end = rest.len();
        let mut last_space = None;
        let mut prev_end = false;
        for (i, c) in rest.char_indices() {
            if i >= self.max {
                // Too long for one piece: cut at the last space in its second
                // half, else at this character.
                end = match last_space {
                    Some(s) if s > self.max / 2 => s,
                    _ => i,
                };
                break;
            }
            if c == ' ' {
                if prev_end {
                    end = i + 1;
                    break;
                }
                last_space = Some(i + 1);
            }
            if matches!(c, '。' | '！' | '？' | '；' | '।') {
                end = i + c.len_utf8();
                break;
            }
            prev_end = is_sentence_end(c);
        }
        self.pos = start + end;
        Some(start..start + end)
    }
}

/// Every feature of `text` whose first character lies in `range`, as a
/// bucket index. `scratch` is reused between calls.
pub fn features_in(
    spec: &FeatureSpec,
    text: &str,
    range: Range<usize>,
    scratch: &mut Vec<char>,
    mut emit: impl FnMut(u32),
) {
    let log2 = spec.buckets_log2;
    // Characters of the range plus the n-gram overhang after it.
    scratch.clear();
    let overhang = (spec.char_max as usize)
        .saturating_sub(1)
        .max(LOOKAHEAD_CHARS);
    let piece = &text[range.clone()];
    if piece.is_ascii() {
        // An exact-size copy: one reservation, no decoding.
        scratch.extend(piece.bytes().map(char::from));
    } else {
        scratch.extend(piece.chars());
    }
    let inside = scratch.len();
    scratch.extend(text[range.end..].chars().take(overhang));
    let chars = &scratch[..];
    let (nmin, nmax) = (spec.char_min as usize, spec.char_max as usize);
    // Every n-gram starting at `s`: the first `nmin - 1` characters only
    // extend the hash, each further one emits (the hot loop of scoring).
    for s in 0..inside {
        let gram = &chars[s..(s + nmax).min(chars.len())];
        let (head, tail) = gram.split_at((nmin - 1).min(gram.len()));
        let mut h = head.iter().fold(CHAR_SEED, |h, &c| mix(h, c));
        for &c in tail {
            h = mix(h, c);
            emit(bucket(h, log2));
        }
    }
    if spec.word_max == 0 {
        return;
    }
    // Words: runs of word characters; each character of an unspaced script
    // is a word of its own. Unigrams for words starting in the range,
    // bigrams with the next word (which may lie in the lookahead).
    let continues = text[..range.start]
        .chars()
        .next_back()
        .is_some_and(|c| is_word(c) && !is_unspaced_script(c));
    let mut i = 0;
    let mut pending: Option<u64> = None;
    while i < chars.len() {
        let c = chars[i];
        if !is_word(c) {
            i += 1;
            continue;
        }
        let start = i;
        let mut h = mix(WORD_SEED, c);
        i += 1;
        if !is_unspaced_script(c) {
            while i < chars.len() && is_word(chars[i]) && !is_unspaced_script(chars[i]) {
                if i - start < WORD_CHARS {
                    h = mix(h, chars[i]);
                }
                i += 1;
            }
        }
        if let Some(prev) = pending.take() {
            if spec.word_max >= 2 {
                emit(bucket(
                    prev.rotate_left(17) ^ h.wrapping_mul(PRIME) ^ BIGRAM_SEED,
                    log2,
                ));
            }
        }
        if start >= inside {
            break;
        }
        // The tail of a word cut at the piece's start belongs to the piece
        // the word started in.
        if start == 0 && continues {
            continue;
        }
        emit(bucket(h, log2));
        pending = Some(h);
    }
}

/// The windows of `text`: for every piece, the longest run of pieces
/// starting there that fits in `window_bytes` (at least the piece itself).
pub fn windows(text: &str, window_bytes: usize) -> Vec<Range<usize>> {
    let ps: Vec<Range<usize>> = pieces(text, window_bytes).collect();
    let mut out = Vec::with_capacity(ps.len());
    let mut j = 0;
    for k in 0..ps.len() {
        j = j.max(k);
        while j + 1 < ps.len() && ps[j + 1].end - ps[k].start <= window_bytes {
            j += 1;
        }
        out.push(ps[k].start..ps[j].end);
    }
    out
}

/// Every span the scorer judges: the packed windows and, with
/// `piece_windows`, each piece on its own (once: a window of exactly one
/// piece is that piece). The flag says the span is a lone piece of a text
/// with more than one piece (training leaves those out of a planted
/// document's positives: most pieces of it are ordinary text).
pub fn spans(text: &str, spec: &FeatureSpec) -> Vec<(Range<usize>, bool)> {
    let ws = windows(text, spec.window_bytes);
    if !spec.piece_windows {
        return ws.into_iter().map(|w| (w, false)).collect();
    }
    let ps: Vec<Range<usize>> = pieces(text, spec.window_bytes).collect();
    let many = ps.len() > 1;
    let mut out = Vec::with_capacity(ws.len() + ps.len());
    for (p, w) in ps.into_iter().zip(ws) {
        if p != w {
            out.push((w, false));
        }
        out.push((p, many));
    }
    out
}

/// The sparse feature vector of one window as (bucket, count) pairs sorted
/// by bucket, and the total count. Used for training export and tests.
pub fn window_features(
    spec: &FeatureSpec,
    text: &str,
    window: Range<usize>,
) -> (Vec<(u32, u32)>, u32) {
    let mut all = Vec::new();
    let mut scratch = Vec::new();
    // Pieces of the window are the pieces of the text that fall inside it.
    for p in pieces(text, spec.window_bytes) {
        if p.start >= window.end {
            break;
        }
        if p.start >= window.start {
            features_in(spec, text, p, &mut scratch, |b| all.push(b));
        }
    }
    all.sort_unstable();
    let total = all.len() as u32;
    let mut out: Vec<(u32, u32)> = Vec::new();
    for b in all {
        match out.last_mut() {
            Some((last, n)) if *last == b => *n += 1,
            _ => out.push((b, 1)),
        }
    }
    (out, total)
}
