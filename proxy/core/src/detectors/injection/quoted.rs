//! Documents quoted inside a prompt: "summarize this e-mail: '…'", "what
//! is the output of this code: <code>…</code>", a fenced block. The user
//! passes that text along but did not write it, so instructions planted in
//! it are indirect injection, and the learned stage judges it with the
//! head for tool results. The prompt's own request stays with the direct
//! head: an instruction to the assistant is what a prompt is for.
//!
//! Only structure is read (a colon near the start followed by quoted or
//! marked-up text, or a fence), never words, so it works the same in every
//! language. A plain list after a colon ("do the following: 1. …") is the
//! user's own request and is not a document.

use std::ops::Range;

/// Bytes from the start of the prompt within which the colon that
/// introduces a document is looked for.
const INTRO: usize = 240;
/// Characters before the colon for it to end a request (counted, so a
/// request in a script without spaces counts as well).
const MIN_REQUEST: usize = 8;
/// Quoted text shorter than this is a phrase to work on, not a document.
const MIN_DATA: usize = 80;
/// What a quoted or marked-up document starts with (folded text: curly
/// quotes are already straight).
const OPENERS: &[char] = &['\'', '"', '«', '‹', '「', '『', '<', '{', '[', '`'];
const FENCE: &str = "```";

/// The byte range of `folded` (a prompt in the normalized form every
/// detector reads) holding a quoted document, if it has one.
pub fn document_span(folded: &str) -> Option<Range<usize>> {
    fenced(folded).or_else(|| introduced(folded))
}

/// From the first fence to the matching one (or the end of the text).
fn fenced(folded: &str) -> Option<Range<usize>> {
    let open = folded.find(FENCE)?;
    let body = open + FENCE.len();
    let close = folded[body..]
        .rfind(FENCE)
        .map_or(folded.len(), |c| body + c);
    (close - body >= MIN_DATA).then_some(body..close)
}

/// After a colon in the first [`INTRO`] bytes, when what follows opens
/// with a quote or markup and is long enough to be a document.
fn introduced(folded: &str) -> Option<Range<usize>> {
    let mut end = INTRO.min(folded.len());
    while !folded.is_char_boundary(end) {
        end -= 1;
    }
    for (colon, _) in folded[..end].match_indices(':') {
        let rest = &folded[colon + 1..];
        let trimmed = rest.trim_start();
        let start = colon + 1 + (rest.len() - trimmed.len());
        // A request needs words before its colon ("note:" is a label).
        if folded[..colon].trim().chars().count() < MIN_REQUEST {
            continue;
        }
        let Some(open) = trimmed.chars().next().filter(|c| OPENERS.contains(c)) else {
            continue;
        };
        if folded.len() - start < MIN_DATA {
            continue;
        }
        // The document ends at its closing quote or bracket; what follows
        // it ("… ' Question: what is it about?") is the user's again.
        let end = folded[start + open.len_utf8()..]
            .rfind(closer(open))
            .map(|i| start + open.len_utf8() + i + closer(open).len_utf8())
            .filter(|&e| e - start >= MIN_DATA)
            .unwrap_or(folded.len());
        return Some(start..end);
    }
    None
}

/// The character that closes a document opened with `open`.
fn closer(open: char) -> char {
    match open {
        '«' => '»',
        '‹' => '›',
        '「' => '」',
        '『' => '』',
        '<' => '>',
        '{' => '}',
        '[' => ']',
        c => c,
    }
}

#[cfg(test)]
mod tests {
    use super::document_span;

    fn data(s: &str) -> Option<&str> {
        document_span(s).map(|r| &s[r])
    }

    const DOC: &str = "dear team, the quarterly report is attached. revenue grew by four \
                       percent and costs stayed flat. see you on monday.";

    #[test]
    fn a_quoted_document_after_the_request() {
        let p = format!("summarize this e-mail: '{DOC}'");
        assert_eq!(data(&p), Some(format!("'{DOC}'").as_str()));
        let p =
            format!("what is the sum, given this table: <table><tr><td>{DOC}</td></tr></table>");
        assert!(data(&p).unwrap().starts_with("<table>"));
        let p = format!("create action items based on email: {{recipient: john}} {DOC}");
        assert!(data(&p).unwrap().starts_with("{recipient"));
    }

    #[test]
    fn the_document_ends_at_its_closing_quote() {
        let p = format!("answer based on this text: \"{DOC}\" question: what is it about?");
        assert_eq!(data(&p), Some(format!("\"{DOC}\"").as_str()));
        let p = format!("resume este texto: «{DOC}» y tradúcelo");
        assert_eq!(data(&p), Some(format!("«{DOC}»").as_str()));
        // A closing quote inside the first bytes does not end a document.
        let p = format!("summarize this: 'it's {DOC}");
        assert_eq!(data(&p), Some(format!("'it's {DOC}").as_str()));
    }

    #[test]
    fn any_language_and_full_width_punctuation_folded() {
        let p = format!("resume este correo: «{DOC}»");
        assert!(data(&p).unwrap().starts_with('«'));
        let p = format!("このメールを要約してください: 「{DOC}」");
        assert!(data(&p).unwrap().starts_with('「'));
    }

    #[test]
    fn a_fenced_block() {
        let p = format!("why does this fail?\n```\n{DOC}\n```\nthanks");
        assert_eq!(data(&p).map(str::trim), Some(DOC));
        // An unclosed fence runs to the end.
        let p = format!("look: ```{DOC}");
        assert_eq!(data(&p), Some(DOC));
    }

    #[test]
    fn the_users_own_request_is_not_a_document() {
        // A list of tasks after a colon.
        let p = format!("please do the following: 1. {DOC} 2. {DOC}");
        assert_eq!(data(&p), None);
        // Short quoted text.
        assert_eq!(
            data("translate into french: 'good morning, my friend'"),
            None
        );
        // A colon that is part of a URL or a time.
        let p = format!("see https://example.com/a at 10:30 {DOC}");
        assert_eq!(data(&p), None);
        // A colon with no request before it.
        let p = format!("note:'{DOC}'");
        assert_eq!(data(&p), None);
        // A colon far into the text.
        let p = format!("{DOC} {DOC} {DOC}: '{DOC}'");
        assert_eq!(data(&p), None);
        assert_eq!(data(""), None);
    }
}
