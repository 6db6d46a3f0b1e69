//! Look-alike letters from other scripts, mapped to the Latin letter they
//! imitate. Both cases are listed and the mapping runs *before*
//! lower-casing: an upper-case Greek `Η` imitates `H` while its lower-case
//! form `η` imitates `n`, so folding after lower-casing would be wrong.
//!
//! The table covers Cyrillic, Greek, Armenian and a few Latin variants used
//! in homoglyph attacks. Mathematical, full-width and other compatibility
//! forms are handled earlier by NFKC.

/// The Latin letter `c` imitates, if it is a known look-alike.
pub fn confusable(c: char) -> Option<char> {
    let latin = match c {
        // --- Cyrillic, upper case ---
        'А' => 'A',
        'В' => 'B',
        'Е' | 'Ё' | 'Є' => 'E',
        'І' | 'Ї' | 'Ӏ' => 'I',
        'Ј' => 'J',
        'К' | 'Ќ' => 'K',
        'М' => 'M',
        'Н' => 'H',
        'О' => 'O',
        'Р' => 'P',
        'С' => 'C',
        'Т' => 'T',
        'У' | 'Ү' => 'Y',
        'Х' => 'X',
        'Ѕ' => 'S',
        'Ԁ' => 'D',
        'Ԛ' => 'Q',
        'Ԝ' => 'W',
        'Ь' => 'b',
        // --- Cyrillic, lower case ---
        'а' => 'a',
        'в' => 'b',
        'е' | 'ё' | 'є' => 'e',
        'і' | 'ї' => 'i',
        'ј' => 'j',
        'к' | 'ќ' => 'k',
        'м' => 'm',
        'н' | 'һ' => 'h',
        'о' => 'o',
        'п' => 'n',
        'р' => 'p',
        'с' => 'c',
        'т' => 't',
        'у' | 'ү' => 'y',
        'х' => 'x',
        'ѕ' => 's',
        'ԁ' => 'd',
        'ԛ' => 'q',
        'ԝ' => 'w',
        'ӏ' => 'l',
        'ь' => 'b',
        // --- Greek, upper case ---
        'Α' => 'A',
        'Β' => 'B',
        'Ε' => 'E',
        'Ζ' => 'Z',
        'Η' => 'H',
        'Ι' => 'I',
        'Κ' => 'K',
        'Μ' => 'M',
        'Ν' => 'N',
        'Ο' => 'O',
        'Ρ' => 'P',
        'Τ' => 'T',
        'Υ' => 'Y',
        'Χ' => 'X',
        'Ϲ' => 'C',
        'Ϳ' => 'J',
        // --- Greek, lower case ---
        'α' => 'a',
        'β' => 'b',
        'γ' => 'y',
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
        'ϲ' => 'c',
        'ϳ' => 'j',
        // --- Armenian ---
        'օ' => 'o',
        'ս' => 'u',
        'հ' => 'h',
        'ո' => 'n',
        'ց' => 'g',
        'ք' => 'p',
        'Օ' => 'O',
        'Ս' => 'U',
        // --- Latin variants NFKC keeps ---
        'ı' => 'i',
        'ȷ' => 'j',
        'ɑ' => 'a',
        'ɡ' => 'g',
        'ɩ' => 'i',
        'ʟ' => 'l',
        'ǀ' => 'l',
        'ꓲ' => 'I',
        _ => return None,
    };
    Some(latin)
}

/// Characters that render as nothing (or only steer layout) and are used to
/// split words: zero-width, soft hyphen, word joiners, bidi controls,
/// variation selectors, tag characters.
pub fn is_invisible(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{034F}' | '\u{061C}' | '\u{115F}' | '\u{1160}' | '\u{17B4}' | '\u{17B5}'
        | '\u{180B}'..='\u{180F}'
        | '\u{200B}'..='\u{200F}'
        | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{206F}'
        | '\u{3164}' | '\u{FE00}'..='\u{FE0F}' | '\u{FEFF}' | '\u{FFA0}'
        | '\u{1BCA0}'..='\u{1BCA3}'
        | '\u{1D173}'..='\u{1D17A}'
        | '\u{E0000}'..='\u{E007F}'
        | '\u{E0100}'..='\u{E01EF}')
}

/// Leetspeak: digits and symbols standing in for letters.
pub fn leet(c: char) -> Option<char> {
    Some(match c {
        '0' => 'o',
        '1' => 'i',
        '3' => 'e',
        '4' => 'a',
        '5' => 's',
        '7' => 't',
        '8' => 'b',
        '@' => 'a',
        '$' => 's',
        _ => return None,
    })
}

/// Scripts whose diacritics are decoration rather than spelling for our
/// purposes (Latin, Greek, Cyrillic): `ïgnörë` reads as `ignore`. Marks in
/// other scripts (Devanagari vowel signs, Japanese voicing marks, Hangul
/// jamo) carry meaning and are kept.
pub fn strips_diacritics(c: char) -> bool {
    matches!(c as u32, 0x00C0..=0x024F | 0x0370..=0x03FF | 0x0400..=0x04FF | 0x1E00..=0x1FFF)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_cases_are_folded() {
        assert_eq!(confusable('О'), Some('O'));
        assert_eq!(confusable('о'), Some('o'));
        assert_eq!(confusable('Η'), Some('H'));
        assert_eq!(confusable('η'), Some('n'));
        assert_eq!(confusable('x'), None);
    }

    #[test]
    fn invisibles() {
        for c in [
            '\u{200B}',
            '\u{00AD}',
            '\u{2060}',
            '\u{202E}',
            '\u{FEFF}',
            '\u{E0041}',
        ] {
            assert!(is_invisible(c), "{c:?}");
        }
        assert!(!is_invisible(' '));
    }
}
