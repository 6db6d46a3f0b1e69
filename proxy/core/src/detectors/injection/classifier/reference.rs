//! The straightforward scorer, kept as the reference the optimised one in
//! `mod.rs` must match bit for bit: every piece's features extracted on
//! their own into a fresh `Vec<char>` (overhang re-decoded per piece), the
//! Unicode class of every character looked up where it is needed.

use super::features::{pieces, FeatureSpec};
use super::{Head, Model, Scored, Work};
use crate::detectors::injection::phrases::is_unspaced_script;
use std::collections::VecDeque;
use std::ops::Range;

const CHAR_SEED: u64 = 0xcbf2_9ce4_8422_2325;
const WORD_SEED: u64 = 0x8422_2325_cbf2_9ce4;
const BIGRAM_SEED: u64 = 0x9e37_79b9_7f4a_7c15;
const PRIME: u64 = 0x0000_0100_0000_01b3;
const WORD_CHARS: usize = 32;
const LOOKAHEAD_CHARS: usize = 48;

fn mix(h: u64, c: char) -> u64 {
    (h ^ c as u64).wrapping_mul(PRIME)
}

fn finish(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

fn bucket(h: u64, log2: u8) -> u32 {
    (finish(h) >> (64 - log2 as u32)) as u32
}

fn is_word(c: char) -> bool {
    c.is_alphanumeric() || (!c.is_ascii() && unicode_normalization::char::is_combining_mark(c))
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
    let mut inside = 0usize;
    let overhang = (spec.char_max as usize)
        .saturating_sub(1)
        .max(LOOKAHEAD_CHARS);
    let mut after = 0usize;
    for (i, c) in text[range.start..].char_indices() {
        if range.start + i < range.end {
            inside += 1;
        } else {
            if after >= overhang {
                break;
            }
            after += 1;
        }
        scratch.push(c);
    }
    let chars = &scratch[..];
    let (nmin, nmax) = (spec.char_min as usize, spec.char_max as usize);
    for s in 0..inside {
        let mut h = CHAR_SEED;
        for (k, &c) in chars[s..].iter().take(nmax).enumerate() {
            h = mix(h, c);
            if k + 1 >= nmin {
                emit(bucket(h, log2));
            }
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

/// Score every window of `text` (folded) with one head; the best
/// window, or `None` for text without features. With
/// `piece_windows`, every piece (sentence) is also scored on its own,
/// so one planted sentence is not averaged away by the ordinary text
/// packed around it.
pub fn score(model: &Model, head: Head, text: &str, work: &mut Work) -> Option<Scored> {
    let h = model.head(head);
    let spec: &FeatureSpec = &model.spec;
    let w = &h.weights;
    let logit = |sum: i64, count: u32| h.bias + h.scale * sum as f32 / (count as f32).sqrt();
    let mut scratch = Vec::with_capacity(spec.window_bytes);
    // (piece, sum of weights, feature count) of the current window.
    let mut q: VecDeque<(Range<usize>, i64, u32)> = VecDeque::new();
    let (mut sum, mut count) = (0i64, 0u32);
    let mut it = pieces(text, spec.window_bytes).peekable();
    let mut best: Option<Scored> = None;
    let consider =
        |best: &mut Option<Scored>, z: f32, window: Range<usize>, piece: Range<usize>| {
            if best.as_ref().is_none_or(|b| z > b.logit) {
                *best = Some(Scored {
                    logit: z,
                    window,
                    piece,
                });
            }
        };
    // Pieces scored on their own (counted into `work` at the end: the
    // closure below holds its fields).
    let mut lone = 0usize;
    let mut push = |p: Range<usize>, best: &mut Option<Scored>| {
        let (mut s, mut n) = (0i64, 0u32);
        features_in(spec, text, p.clone(), &mut scratch, |b| {
            s += w[b as usize] as i64;
            n += 1;
        });
        work.bytes += p.len();
        work.features += n as usize;
        if spec.piece_windows && n > 0 {
            lone += 1;
            consider(best, logit(s, n), p.clone(), p.clone());
        }
        (p, s, n)
    };
    loop {
        if q.is_empty() {
            match it.next() {
                Some(p) => {
                    let e = push(p, &mut best);
                    sum += e.1;
                    count += e.2;
                    q.push_back(e);
                }
                None => break,
            }
        }
        let start = q.front().expect("non-empty").0.start;
        while let Some(p) = it.peek() {
            if p.end - start > spec.window_bytes {
                break;
            }
            let p = it.next().expect("peeked");
            let e = push(p, &mut best);
            sum += e.1;
            count += e.2;
            q.push_back(e);
        }
        // A window of one piece was scored as that piece.
        if count > 0 && !(spec.piece_windows && q.len() == 1) {
            work.windows += 1;
            let z = logit(sum, count);
            if best.as_ref().is_none_or(|b| z > b.logit) {
                let end = q.back().expect("non-empty").0.end;
                let piece = q
                    .iter()
                    .filter(|(_, _, n)| *n > 0)
                    .max_by(|a, b| {
                        let ka = a.1 as f32 / (a.2 as f32).sqrt();
                        let kb = b.1 as f32 / (b.2 as f32).sqrt();
                        ka.total_cmp(&kb)
                    })
                    .map(|(r, _, _)| r.clone())
                    .unwrap_or(start..end);
                consider(&mut best, z, start..end, piece);
            }
        }
        let (_, s, n) = q.pop_front().expect("non-empty");
        sum -= s;
        count -= n;
    }
    work.windows += lone;
    best
}
