//! Small helpers the core needs and the rest of the gateway shares.

/// Constant-time comparison for keys and fingerprints, so timing does not
/// leak how long a prefix matched.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A rule regex with its word boundaries (`\b`, `\B`) made ASCII ones.
///
/// The regex crate's fast engines cannot decide a Unicode word boundary
/// next to a non-ASCII character, so a set of rules with `\b` fell back to
/// its slowest engine on every non-English text (on 1 KiB of Chinese,
/// Japanese and Korean, two thirds of the injection detector's time). The
/// only difference for a rule written in ASCII is that a letter of another
/// script next to its words now counts as a boundary (`的read`), as the
/// phrase matcher already treats Latin words inside CJK text.
pub fn ascii_word_boundaries(pattern: &str) -> String {
    // A rule with words of other scripts keeps Unicode boundaries: an
    // ASCII one never falls beside a Cyrillic or CJK letter.
    if !pattern.is_ascii() {
        return pattern.to_string();
    }
    let mut out = String::with_capacity(pattern.len() + 16);
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('b') => out.push_str("(?-u:\\b)"),
            Some('B') => out.push_str("(?-u:\\B)"),
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
            None => out.push('\\'),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn word_boundaries_become_ascii_and_escapes_stay() {
        assert_eq!(
            ascii_word_boundaries(r"\bsend\b [^\n]\B \\b"),
            r"(?-u:\b)send(?-u:\b) [^\n](?-u:\B) \\b"
        );
        let re = regex::Regex::new(&ascii_word_boundaries(r"\b(?:read|send)\b")).unwrap();
        assert!(re.is_match("please send it"));
        assert!(re.is_match("请send给我"));
        assert!(!re.is_match("resend"));
        assert_eq!(ascii_word_boundaries(r"\bконечно\b"), r"\bконечно\b");
    }

    #[test]
    fn constant_time_compare() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
