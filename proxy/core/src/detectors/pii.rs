//! Personal data: e-mail, phone (international), US SSN, payment cards,
//! IBAN — each switchable per profile (`[redaction.pii]`).
//!
//! Numbers are validated, not just shaped: cards pass Luhn *and* belong to
//! a card network's number range, IBANs pass the ISO 7064 mod-97 check with
//! their country's length, SSNs exclude never-issued areas. Phone numbers
//! are parsed as digit groups (international prefixes, area codes in
//! parentheses, trunk `(0)`), then accepted when their shape is
//! unambiguous (`+44 …`, `(555) 123-4567`, `555-123-4567`) or when a word
//! such as "phone", "call" or "fax" stands next to them. Dates, IP
//! addresses, order ids and other bare numbers are left alone.
//!
//! Every span is either a single token (e-mail) or digit groups separated by
//! single spaces, dashes, dots or parentheses of at most 64 bytes (shape (d)
//! of the span contract in `policies/rules/secrets.toml`): a leading `+` and
//! a trailing extension (`x123`) stay outside the span.

use super::{argument_strings, excerpt, ScanContext};
use crate::types::{DetectorId, Finding, Severity};
use regex::Regex;
use serde::Deserialize;

/// Which PII kinds a profile detects and masks.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PiiToggles {
    pub email: bool,
    pub phone: bool,
    pub ssn: bool,
    pub payment_card: bool,
    pub iban: bool,
}

impl Default for PiiToggles {
    fn default() -> Self {
        PiiToggles {
            email: true,
            phone: true,
            ssn: true,
            payment_card: true,
            iban: true,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PiiMatch {
    pub kind: &'static str,
    pub start: usize,
    pub end: usize,
}

/// Longest PII span (shape (d) of the span contract).
pub const MAX_PII_SPAN: usize = 64;

pub struct PiiScanner {
    toggles: PiiToggles,
    email: Regex,
    ssn: Regex,
    card: Regex,
    iban: Regex,
}

/// Bytes after a number searched for a phone word (`… 1111 messages`):
/// streams hold a number back until this much follows it.
pub const PHONE_CONTEXT_AFTER: usize = 24;
/// Fewest digits of a phone number.
pub const PHONE_MIN_DIGITS: usize = 7;

/// Words that make a nearby number a phone number.
const PHONE_CONTEXT: &[&str] = &[
    "phone",
    "tel",
    "tel.",
    "telephone",
    "call",
    "mobile",
    "mob",
    "cell",
    "cellphone",
    "fax",
    "desk",
    "office",
    "contact",
    "reach",
    "dial",
    "whatsapp",
    "sms",
    "text",
    "numero",
    "número",
    "telefon",
    "telefono",
    "teléfono",
    "téléphone",
    "tél",
    "handy",
    "answering",
    "messages",
    "registered",
    "hotline",
    "helpline",
    "landline",
];

impl PiiScanner {
    pub fn new(toggles: &PiiToggles) -> Self {
        let re = |p: &str| Regex::new(p).expect("static PII regex");
        PiiScanner {
            toggles: toggles.clone(),
            email: re(
                r"(?-u:\b)[A-Za-z0-9][A-Za-z0-9._%+-]{0,63}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?){0,8}\.[A-Za-z]{2,24}(?-u:\b)",
            ),
            ssn: re(r"(?-u:\b)([0-9]{3})-([0-9]{2})-([0-9]{4})(?-u:\b)"),
            card: re(r"(?-u:\b)[0-9](?:[ -]?[0-9]){11,18}(?-u:\b)"),
            iban: re(
                r"(?i)(?-u:\b)[a-z]{2}[0-9]{2}(?:[ ]?[a-z0-9]{4}){2,7}(?:[ ]?[a-z0-9]{1,3})?(?-u:\b)",
            ),
        }
    }

    /// PII spans in `text`, sorted, non-overlapping.
    pub fn find(&self, text: &str) -> Vec<PiiMatch> {
        let mut out = Vec::new();
        let t = &self.toggles;
        if t.email && text.contains('@') {
            out.extend(
                self.email
                    .find_iter(text)
                    .filter(|m| {
                        m.len() <= 254
                            && !role_address(m.as_str())
                            && !remote_login(text, m.start(), m.end())
                    })
                    .map(|m| pm("pii_email", m.start(), m.end())),
            );
        }
        if !text.bytes().any(|b| b.is_ascii_digit()) {
            return out;
        }
        if t.payment_card {
            self.cards(text, &mut out);
        }
        if t.iban {
            out.extend(
                self.iban
                    .find_iter(text)
                    .filter(|m| iban_valid(m.as_str()))
                    .map(|m| pm("pii_iban", m.start(), m.end())),
            );
        }
        if t.ssn {
            for c in self.ssn.captures_iter(text) {
                let (a, g, s) = (&c[1], &c[2], &c[3]);
                let valid =
                    a != "000" && a != "666" && !a.starts_with('9') && g != "00" && s != "0000";
                if valid {
                    let m = c.get(0).expect("group 0");
                    out.push(pm("pii_ssn", m.start(), m.end()));
                }
            }
        }
        if t.phone {
            // Validated numbers (checksums, issued ranges) are surer than a
            // phone's shape: a phone stops where one begins, so a phone
            // written just before a card cannot swallow the card's first
            // group and leave the rest of it in clear.
            let mut validated: Vec<(usize, usize)> = out
                .iter()
                .filter(|m| m.kind != "pii_email")
                .map(|m| (m.start, m.end))
                .collect();
            validated.sort_unstable();
            phones(text, &validated, &mut out);
        }
        // Numbers are digit groups of at most 64 bytes; e-mails are tokens.
        out.retain(|m| m.kind == "pii_email" || m.end - m.start <= MAX_PII_SPAN);
        out.sort_by(|a, b| a.start.cmp(&b.start).then(b.end.cmp(&a.end)));
        let mut dedup: Vec<PiiMatch> = Vec::with_capacity(out.len());
        for m in out {
            if dedup.last().is_none_or(|l| m.start >= l.end) {
                dedup.push(m);
            }
        }
        dedup
    }

    /// Payment cards. A candidate that fails the checks does not consume
    /// the digits after it: the search resumes at its next digit group, so
    /// a number written before a card (`+1 555 123-4567 4111 1111 …`) never
    /// hides the card. A candidate that runs on past a card laid out as
    /// cards are printed (an expiry `12` after `4111 1111 1111 1111`) is
    /// also read up to each earlier group end.
    fn cards(&self, text: &str, out: &mut Vec<PiiMatch>) {
        let mut pos = 0;
        while let Some(m) = self.card.find_at(text, pos) {
            let s = m.as_str();
            let end = if payment_card(s) {
                Some(m.end())
            } else {
                printed_card_prefix(s).map(|e| m.start() + e)
            };
            pos = match end {
                Some(end) => {
                    out.push(pm("pii_card", m.start(), end));
                    end
                }
                None => s.find([' ', '-']).map_or(m.end(), |k| m.start() + k + 1),
            };
        }
    }

    pub fn inspect(&self, cx: &ScanContext<'_>, out: &mut Vec<Finding>) {
        for part in &cx.subject.texts {
            self.inspect_part(part, out);
        }
        self.inspect_calls(cx, out);
    }

    /// The findings of one text part.
    pub fn inspect_part(&self, part: &crate::subject::TextPart, out: &mut Vec<Finding>) {
        // The agent's own instructions and tool definitions are
        // configuration, not personal data of a user.
        if matches!(
            part.surface,
            crate::subject::Surface::System | crate::subject::Surface::ToolDefinition
        ) {
            return;
        }
        for m in self.find(&part.text) {
            out.push(finding(m, part.surface.as_str(), true));
        }
    }

    /// The findings of the subject's tool-call arguments.
    pub fn inspect_calls(&self, cx: &ScanContext<'_>, out: &mut Vec<Finding>) {
        for call in &cx.subject.tool_calls {
            let location = format!("tool_call:{}", excerpt(&call.name));
            for s in argument_strings(&call.arguments) {
                for m in self.find(s) {
                    out.push(finding(m, &location, false));
                }
            }
        }
    }
}

/// Mailboxes of systems, not people (`noreply@…`, `postmaster@…`): not
/// personal data, and agents' own instructions carry them
/// (`Co-Authored-By: … <noreply@…>`).
fn role_address(email: &str) -> bool {
    let local = email.split('@').next().unwrap_or("").to_ascii_lowercase();
    matches!(
        local.as_str(),
        "noreply"
            | "no-reply"
            | "no_reply"
            | "donotreply"
            | "do-not-reply"
            | "do_not_reply"
            | "mailer-daemon"
            | "postmaster"
            | "bounce"
            | "bounces"
    )
}

/// `user@host` naming a login on another machine, not a mailbox: an scp or
/// git remote (`deploy@build.example.com:/srv/app`, `git@github.com:org/x`),
/// a URL's user (`ssh://git@host`) or the target of a remote-login command
/// (`ssh deploy@host`, `rsync -a ./out ops@host`). Masking it would rewrite
/// the command an agent runs, and it names an account, not a person's mail.
fn remote_login(text: &str, start: usize, end: usize) -> bool {
    let after = &text.as_bytes()[end..];
    if after.first() == Some(&b':')
        && after
            .get(1)
            .is_some_and(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'~' | b'.' | b'_'))
    {
        return true;
    }
    let before = &text[..start];
    if before.ends_with("://") {
        return true;
    }
    let line = before.rsplit('\n').next().unwrap_or("");
    let command = line
        .rsplit([';', '|', '&', '(', '`', '"', '\''])
        .next()
        .unwrap_or("");
    let program = command.split_whitespace().next().unwrap_or("");
    let program = program.rsplit('/').next().unwrap_or("");
    matches!(
        program,
        "ssh" | "scp" | "sftp" | "rsync" | "mosh" | "ssh-copy-id" | "autossh" | "sshpass"
    )
}

fn finding(m: PiiMatch, location: &str, with_span: bool) -> Finding {
    let (severity, score) = match m.kind {
        "pii_ssn" | "pii_card" | "pii_iban" => (Severity::Medium, 0.3),
        _ => (Severity::Low, 0.1),
    };
    let name = &m.kind[4..];
    let mut f = Finding::new(
        format!("pii.{name}"),
        DetectorId::Pii,
        "pii",
        severity,
        score,
        format!("Personal data detected: {name}"),
    )
    .at(location)
    .with_evidence(format!("[{}]", m.kind))
    .redactable();
    if with_span {
        f = f.meta("span", format!("{}..{}", m.start, m.end));
    }
    f
}

fn pm(kind: &'static str, start: usize, end: usize) -> PiiMatch {
    PiiMatch { kind, start, end }
}

/// A parsed run of digit groups.
#[derive(Debug, Default)]
struct Number {
    start: usize,
    end: usize,
    digits: usize,
    groups: Vec<usize>,
    plus: bool,
    parens: bool,
    separators: Vec<u8>,
}

/// Parse digit groups starting at `i` (a digit or `(`). Separators are one
/// space, dash or dot, or parentheses around a group (`(555) 123`,
/// `+46 (0)8`).
fn parse_number(b: &[u8], i: usize) -> Number {
    let mut n = Number {
        start: i,
        end: i,
        ..Number::default()
    };
    let mut j = i;
    loop {
        let open = b.get(j) == Some(&b'(');
        let k = if open { j + 1 } else { j };
        let len = b[k.min(b.len())..]
            .iter()
            .take_while(|c| c.is_ascii_digit())
            .count();
        if len == 0 || n.digits + len > 15 {
            break;
        }
        let mut e = k + len;
        if open {
            if b.get(e) != Some(&b')') {
                break;
            }
            e += 1;
            n.parens = true;
        }
        n.digits += len;
        n.groups.push(len);
        n.end = e;
        // Separator: one of space, dash, dot; or none before `(` / after `)`.
        match b.get(e) {
            Some(&s @ (b' ' | b'-' | b'.'))
                if b.get(e + 1)
                    .is_some_and(|c| c.is_ascii_digit() || *c == b'(') =>
            {
                n.separators.push(s);
                j = e + 1;
            }
            Some(b'(') if open || b.get(e.wrapping_sub(1)).is_some_and(u8::is_ascii_digit) => {
                n.separators.push(b'(');
                j = e;
            }
            Some(c) if c.is_ascii_digit() && open => {
                j = e;
            }
            _ => break,
        }
        if n.groups.len() > 8 || n.end - n.start > MAX_PII_SPAN {
            break;
        }
    }
    n
}

/// Phone numbers outside the `validated` spans (sorted, non-overlapping).
fn phones(text: &str, validated: &[(usize, usize)], out: &mut Vec<PiiMatch>) {
    let b = text.as_bytes();
    let mut i = 0;
    let mut v = validated.iter().peekable();
    while i < b.len() {
        while v.peek().is_some_and(|(_, end)| *end <= i) {
            v.next();
        }
        let limit = match v.peek() {
            Some(&&(start, end)) if start <= i => {
                i = end;
                continue;
            }
            Some(&&(start, _)) => start,
            None => b.len(),
        };
        let c = b[i];
        // Not inside a word, a decimal, a path or a thousands-separated
        // amount (`1,439,323`).
        let prev = i.checked_sub(1).map(|p| b[p]);
        let thousands = prev == Some(b',') && i >= 2 && b[i - 2].is_ascii_digit();
        let starts = (c.is_ascii_digit() || c == b'(')
            && !thousands
            && !prev.is_some_and(|p| {
                p.is_ascii_alphanumeric() || matches!(p, b'.' | b'-' | b'/' | b':')
            });
        if !starts {
            i += 1;
            continue;
        }
        let plus = i > 0 && b[i - 1] == b'+';
        let mut n = parse_number(&b[..limit], i);
        if n.groups.is_empty() {
            i += 1;
            continue;
        }
        n.plus = plus;
        // The number must end on a boundary (an extension `x123` may follow).
        let tail_ok = b
            .get(n.end)
            .is_none_or(|c| !c.is_ascii_alphanumeric() || *c == b'x' || *c == b'X');
        if tail_ok && is_phone(text, &n) {
            out.push(pm("pii_phone", n.start, n.end));
        }
        i = n.end.max(i + 1);
    }
}

fn is_phone(text: &str, n: &Number) -> bool {
    if !(PHONE_MIN_DIGITS..=15).contains(&n.digits) || looks_like_date_or_ip(text, n) {
        return false;
    }
    let groups = n.groups.len();
    // Unambiguous shapes.
    if n.plus && n.digits >= 8 {
        return true;
    }
    let nanp =
        n.groups == [3, 3, 4] && (n.parens || n.separators.iter().all(|s| *s == n.separators[0]));
    if nanp || (n.groups.first() == Some(&3) && n.parens && n.digits == 10) {
        return true;
    }
    if text[..n.start].ends_with("00") && n.digits >= 9 {
        return true;
    }
    // Otherwise a phone word must stand nearby.
    let context = has_context(text, n);
    context && (groups >= 2 || n.digits >= 9)
}

fn looks_like_date_or_ip(text: &str, n: &Number) -> bool {
    let s = &text[n.start..n.end];
    let dots = n.separators.iter().all(|c| *c == b'.');
    // 192.168.1.20
    if dots && n.groups.len() == 4 && n.groups.iter().all(|g| *g <= 3) {
        return s
            .split('.')
            .all(|p| p.parse::<u16>().is_ok_and(|v| v <= 255));
    }
    // 2020-06-20, 20.06.2020, 2020 06 20
    let g = &n.groups;
    if g.len() == 3
        && ((g[0] == 4 && g[1] <= 2 && g[2] <= 2) || (g[0] <= 2 && g[1] <= 2 && g[2] == 4))
    {
        return true;
    }
    // A time right after (2020-06-20 14:11:22).
    text[n.end..].starts_with(':')
}

fn has_context(text: &str, n: &Number) -> bool {
    let before_start = floor(text, n.start.saturating_sub(48));
    let before = unmasked(text, before_start, n.start).to_lowercase();
    let after_end = floor(text, (n.end + PHONE_CONTEXT_AFTER).min(text.len()));
    let after = unmasked(text, n.end, after_end).to_lowercase();
    let words = |s: &str| -> Vec<String> {
        s.split(|c: char| !c.is_alphanumeric() && c != '.')
            .filter(|w| !w.is_empty())
            .map(|w| w.trim_end_matches('.').to_string())
            .collect()
    };
    let near_before = words(&before);
    let near_after = words(&after);
    let hit = |w: &String| PHONE_CONTEXT.iter().any(|k| k.trim_end_matches('.') == w);
    near_before.iter().rev().take(6).any(hit) || near_after.iter().take(2).any(hit)
}

/// `text[lo..hi]` with the gateway's own masks (`[REDACTED:pii_phone:…]`,
/// also one cut by the window) blanked out: a mask's label is not a word
/// the author wrote, and reading "phone" in it would make masking a masked
/// text mask more (the digits after a masked phone), so a second pass, or
/// a stream's copy of a text its deltas already masked, would differ from
/// the first.
fn unmasked(text: &str, lo: usize, hi: usize) -> String {
    const OPEN: &str = "[REDACTED:";
    let mut out = String::with_capacity(hi - lo);
    // A mask that starts before the window can still reach into it.
    let mut pos = floor(text, lo.saturating_sub(80));
    while let Some(k) = text[pos..hi].find(OPEN) {
        let start = pos + k;
        let end = text[start..]
            .find(']')
            .filter(|e| *e <= 80)
            .map_or(start + OPEN.len(), |e| start + e + 1);
        if start > lo {
            out.push_str(&text[lo.max(pos)..start]);
        }
        out.push(' ');
        pos = end.max(lo);
        if pos >= hi {
            return out;
        }
    }
    out.push_str(&text[pos.max(lo)..hi]);
    out
}

fn floor(text: &str, mut i: usize) -> usize {
    while !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// Luhn checksum over the digits.
pub fn luhn(digits: &[u32]) -> bool {
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            if i % 2 == 1 {
                let x = d * 2;
                if x > 9 {
                    x - 9
                } else {
                    x
                }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

/// A payment card number: 12–19 digits, Luhn-valid, in a card network's
/// issuer range (Visa, Mastercard, Amex, Discover, Diners, JCB, UnionPay,
/// Maestro). Kept for callers of the old name.
pub fn luhn_card(s: &str) -> bool {
    payment_card(s)
}

pub fn payment_card(s: &str) -> bool {
    let digits: Vec<u32> = s.chars().filter_map(|c| c.to_digit(10)).collect();
    let len = digits.len();
    if !(12..=19).contains(&len) || digits.iter().all(|d| *d == digits[0]) {
        return false;
    }
    let prefix = |n: usize| digits[..n].iter().fold(0u32, |a, d| a * 10 + d);
    let network = match digits[0] {
        4 => matches!(len, 13 | 16 | 19),
        5 => {
            let p2 = prefix(2);
            ((51..=55).contains(&p2) && len == 16) || (p2 == 50 || (56..=59).contains(&p2))
        }
        2 => {
            let p4 = prefix(4);
            ((2221..=2720).contains(&p4) && len == 16) || (p4 == 2131 && len == 15)
        }
        3 => {
            let p2 = prefix(2);
            ((p2 == 34 || p2 == 37) && len == 15)
                || ((300..=305).contains(&prefix(3)) || p2 == 36 || p2 == 38 || p2 == 39)
                    && (14..=19).contains(&len)
                || (p2 == 35 && (16..=19).contains(&len))
        }
        6 => len >= 12,
        1 => prefix(4) == 1800 && len == 15,
        _ => false,
    };
    network && luhn(&digits)
}

/// The longest prefix of `s` (digit groups split by single spaces or
/// dashes) that is a payment card printed in a card layout: groups of four
/// (12, 16 or 19 digits with a last group of three), or 4-6-5 / 4-6-4.
/// Other groupings are too common in ordinary numbers to be read in parts.
fn printed_card_prefix(s: &str) -> Option<usize> {
    let mut ends = Vec::new();
    let mut lens = Vec::new();
    let mut len = 0;
    for (i, c) in s.char_indices() {
        if c.is_ascii_digit() {
            len += 1;
        } else {
            ends.push(i);
            lens.push(len);
            len = 0;
        }
    }
    ends.push(s.len());
    lens.push(len);
    (1..=lens.len()).rev().find_map(|k| {
        let g = &lens[..k];
        let fours = g.len() >= 3 && g[..g.len() - 1].iter().all(|l| *l == 4);
        let layout = (fours && (g[g.len() - 1] == 4 || (g.len() == 5 && g[4] == 3)))
            || g == [4, 6, 5]
            || g == [4, 6, 4];
        (layout && payment_card(&s[..ends[k - 1]])).then_some(ends[k - 1])
    })
}

/// Registered IBAN lengths of common countries (ISO 13616).
const IBAN_LENGTHS: &[(&str, usize)] = &[
    ("AD", 24),
    ("AE", 23),
    ("AT", 20),
    ("AZ", 28),
    ("BA", 20),
    ("BE", 16),
    ("BG", 22),
    ("BH", 22),
    ("BR", 29),
    ("CH", 21),
    ("CR", 22),
    ("CY", 28),
    ("CZ", 24),
    ("DE", 22),
    ("DK", 18),
    ("DO", 28),
    ("EE", 20),
    ("EG", 29),
    ("ES", 24),
    ("FI", 18),
    ("FO", 18),
    ("FR", 27),
    ("GB", 22),
    ("GE", 22),
    ("GI", 23),
    ("GL", 18),
    ("GR", 27),
    ("GT", 28),
    ("HR", 21),
    ("HU", 28),
    ("IE", 22),
    ("IL", 23),
    ("IQ", 23),
    ("IS", 26),
    ("IT", 27),
    ("JO", 30),
    ("KW", 30),
    ("KZ", 20),
    ("LB", 28),
    ("LI", 21),
    ("LT", 20),
    ("LU", 20),
    ("LV", 21),
    ("MC", 27),
    ("MD", 24),
    ("ME", 22),
    ("MK", 19),
    ("MR", 27),
    ("MT", 31),
    ("MU", 30),
    ("NL", 18),
    ("NO", 15),
    ("PK", 24),
    ("PL", 28),
    ("PS", 29),
    ("PT", 25),
    ("QA", 29),
    ("RO", 24),
    ("RS", 22),
    ("SA", 24),
    ("SC", 31),
    ("SE", 24),
    ("SI", 19),
    ("SK", 24),
    ("SM", 27),
    ("TN", 24),
    ("TR", 26),
    ("UA", 29),
    ("VA", 22),
    ("VG", 24),
    ("XK", 20),
];

/// ISO 13616 IBAN check: known country and length, then move the first four
/// characters to the end, map letters to 10..35, and the number must be
/// 1 mod 97.
pub fn iban_valid(s: &str) -> bool {
    let compact: String = s
        .chars()
        .filter(|c| !c.is_whitespace())
        .map(|c| c.to_ascii_uppercase())
        .collect();
    let country_len = IBAN_LENGTHS
        .iter()
        .find(|(cc, _)| compact.starts_with(cc))
        .map(|(_, l)| *l);
    if country_len != Some(compact.len()) {
        return false;
    }
    let (head, tail) = compact.split_at(4);
    let mut rem: u32 = 0;
    for c in tail.chars().chain(head.chars()) {
        let v = match c.to_digit(36) {
            Some(v) => v,
            None => return false,
        };
        rem = if v >= 10 {
            (rem * 100 + v) % 97
        } else {
            (rem * 10 + v) % 97
        };
    }
    rem == 1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(text: &str) -> Vec<&'static str> {
        PiiScanner::new(&PiiToggles::default())
            .find(text)
            .iter()
            .map(|m| m.kind)
            .collect()
    }

    fn spans(text: &str) -> Vec<&str> {
        PiiScanner::new(&PiiToggles::default())
            .find(text)
            .iter()
            .map(|m| &text[m.start..m.end])
            .collect()
    }

    #[test]
    fn finds_each_kind() {
        assert_eq!(kinds("mail jane.doe@example.org now"), ["pii_email"]);
        assert!(kinds("Co-Authored-By: Claude <noreply@anthropic.com>").is_empty());
        assert!(kinds("bounces to MAILER-DAEMON@example.org").is_empty());
        // Logins on other machines are not mailboxes; a mailbox next to them still is.
        for login in [
            "scp deploy@build.example.com:/srv/artifacts/app.tar.gz ./artifacts/",
            "bash -lc \"ssh deploy@build.example.com 'systemctl status app'\"",
            "git clone git@github.com:org/repo.git && cd repo",
            "git remote add origin ssh://git@gitlab.example.com/org/repo.git",
            "cd out && rsync -az ./dist/ ops@web1.example.com:/var/www/",
            "/usr/bin/ssh -p 2222 ci@runner.example.com uptime",
        ] {
            assert!(kinds(login).is_empty(), "{login}");
        }
        assert_eq!(
            kinds("ssh ops@web1.example.com 'mail -s hi jane.doe@example.org'"),
            ["pii_email"]
        );
        assert_eq!(
            kinds("write to jane.doe@example.org: thanks"),
            ["pii_email"]
        );
        assert_eq!(kinds("call +44 20 7946 0958"), ["pii_phone"]);
        assert_eq!(kinds("call (555) 123-4567"), ["pii_phone"]);
        assert_eq!(kinds("ssn 123-45-6789"), ["pii_ssn"]);
        assert_eq!(kinds("card 4111 1111 1111 1111"), ["pii_card"]);
        assert_eq!(kinds("iban GB82 WEST 1234 5698 7654 32"), ["pii_iban"]);
        assert_eq!(kinds("iban gb82west12345698765432"), ["pii_iban"]);
    }

    #[test]
    fn international_phones() {
        assert_eq!(spans("Phone: 0490 75 40 81"), ["0490 75 40 81"]);
        assert_eq!(
            spans("Desk: +46 (0)8 928 571 38 fax"),
            ["46 (0)8 928 571 38"]
        );
        assert_eq!(spans("Desk: 345-899-3560x4587"), ["345-899-3560"]);
        assert_eq!(spans("call me on 01.84.17.61.18"), ["01.84.17.61.18"]);
        assert_eq!(spans("Mobile: (579)888-3058"), ["(579)888-3058"]);
        assert_eq!(spans("reach me at 780-999-2181"), ["780-999-2181"]);
    }

    #[test]
    fn neighbouring_numbers_never_hide_a_card() {
        let t = "+1 (555) 123-4567 4111 1111 1111 1111 ";
        assert_eq!(spans(t), ["1 (555) 123-4567", "4111 1111 1111 1111"]);
        assert_eq!(kinds(t), ["pii_phone", "pii_card"]);
        assert_eq!(
            spans("ref 123-4567 5555 5555 5555 4444 ok"),
            ["5555 5555 5555 4444"]
        );
        assert_eq!(
            spans("card 4111 1111 1111 1111 12/28 cvc 123"),
            ["4111 1111 1111 1111"]
        );
        assert_eq!(spans("amex 3782 822463 10005 99"), ["3782 822463 10005"]);
        // Read in parts only when laid out as a card: 4111111111111111 is
        // a card, but not inside a bare run of other digit groups.
        assert!(spans("ids 41 11 11 11 11 11 11 11 99").is_empty());
    }

    #[test]
    fn a_mask_label_is_not_a_phone_word() {
        assert!(spans("[REDACTED:pii_phone:99316d95a7e8] 1111 1111 1111 ").is_empty());
        // The 48 bytes read before the number cut the mask: still no word.
        assert!(
            spans("[REDACTED:pii_phone:99316d95a7e8] and then some words 1111 1111 1111")
                .is_empty()
        );
        assert_eq!(spans("phone 1111 1111 1111"), ["1111 1111 1111"]);
        assert_eq!(
            spans("[REDACTED:email:0a1b] phone 1111 1111 1111"),
            ["1111 1111 1111"]
        );
    }

    #[test]
    fn leaves_look_alikes_alone() {
        assert!(
            kinds("order 4111111111111112 shipped").is_empty(),
            "fails Luhn"
        );
        assert!(kinds("order id 5551234567").is_empty(), "bare 10 digits");
        assert!(kinds("ssn 000-12-3456").is_empty());
        assert!(
            kinds("GB00 WEST 1234 5698 7654 32").is_empty(),
            "bad IBAN check"
        );
        assert!(kinds("Date: 2020-06-20 14:11:22").is_empty());
        assert!(kinds("server 192.168.10.200 is down").is_empty());
        assert!(kinds("version 1.2.3.4567 released").is_empty());
        assert!(kinds("zip 3610-114 Lisbon").is_empty());
        assert!(kinds("population 1,439,323,776").is_empty());
    }

    #[test]
    fn spans_are_digit_groups_within_64_bytes() {
        for text in [
            "Phone: +1-984-182-0190",
            "card 4111-1111-1111-1111",
            "fax (08) 8747 6301",
        ] {
            for s in spans(text) {
                assert!(s.len() <= MAX_PII_SPAN);
                assert!(s
                    .chars()
                    .all(|c| c.is_ascii_digit() || matches!(c, ' ' | '-' | '.' | '(' | ')')));
            }
        }
    }

    #[test]
    fn toggles_switch_kinds_off() {
        let s = PiiScanner::new(&PiiToggles {
            email: false,
            ..PiiToggles::default()
        });
        assert!(s.find("a@b.io").is_empty());
    }
}
