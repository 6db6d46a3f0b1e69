//! Personal data: e-mail, phone, US SSN, payment cards, IBAN.
//!
//! Numbers are validated, not just shaped: cards pass Luhn, IBANs pass the
//! ISO 7064 mod-97 check, SSNs exclude never-issued areas, and phone numbers
//! need either a `+country` prefix or separators, so order ids and other
//! bare 10-digit numbers are left alone.

use super::ScanContext;
use crate::decision::types::{DetectorId, Finding, Severity};
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

pub struct PiiScanner {
    toggles: PiiToggles,
    email: Regex,
    phone: Regex,
    ssn: Regex,
    card: Regex,
    iban: Regex,
}

impl PiiScanner {
    pub fn new(toggles: &PiiToggles) -> Self {
        let re = |p: &str| Regex::new(p).expect("static PII regex");
        PiiScanner {
            toggles: toggles.clone(),
            email: re(
                r"\b[A-Za-z0-9][A-Za-z0-9._%+-]{0,63}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?)*\.[A-Za-z]{2,24}\b",
            ),
            phone: re(
                r"(?:\+\d{1,3}[\s.-]?(?:\(\d{1,4}\)[\s.-]?)?\d{1,4}(?:[\s.-]?\d{2,4}){1,4}|(?:\b1[\s.-])?(?:\(\d{3}\)\s?|\b\d{3}[\s.-])\d{3}[\s.-]\d{4})\b",
            ),
            ssn: re(r"\b(\d{3})-(\d{2})-(\d{4})\b"),
            card: re(r"\b\d(?:[ -]?\d){12,18}\b"),
            iban: re(r"\b[A-Z]{2}\d{2}(?:[ ]?[A-Z0-9]{4}){2,7}(?:[ ]?[A-Z0-9]{1,3})?\b"),
        }
    }

    /// PII spans in `text`, sorted, non-overlapping.
    pub fn find(&self, text: &str) -> Vec<PiiMatch> {
        let mut out = Vec::new();
        let t = &self.toggles;
        if t.email && text.contains('@') {
            out.extend(self.email.find_iter(text).map(|m| pm("pii_email", m)));
        }
        if !text.bytes().any(|b| b.is_ascii_digit()) {
            return out;
        }
        if t.payment_card {
            out.extend(
                self.card
                    .find_iter(text)
                    .filter(|m| luhn_card(m.as_str()))
                    .map(|m| pm("pii_card", m)),
            );
        }
        if t.iban {
            out.extend(
                self.iban
                    .find_iter(text)
                    .filter(|m| iban_valid(m.as_str()))
                    .map(|m| pm("pii_iban", m)),
            );
        }
        if t.ssn {
            for c in self.ssn.captures_iter(text) {
                let (a, g, s) = (&c[1], &c[2], &c[3]);
                let valid =
                    a != "000" && a != "666" && !a.starts_with('9') && g != "00" && s != "0000";
                if valid {
                    out.push(pm("pii_ssn", c.get(0).expect("group 0")));
                }
            }
        }
        if t.phone {
            for m in self.phone.find_iter(text) {
                let digits = m.as_str().bytes().filter(u8::is_ascii_digit).count();
                if (7..=15).contains(&digits) {
                    out.push(pm("pii_phone", m));
                }
            }
        }
        out.sort_by(|a, b| a.start.cmp(&b.start).then(b.end.cmp(&a.end)));
        let mut dedup: Vec<PiiMatch> = Vec::with_capacity(out.len());
        for m in out {
            if dedup.last().is_none_or(|l| m.start >= l.end) {
                dedup.push(m);
            }
        }
        dedup
    }

    pub fn inspect(&self, cx: &ScanContext<'_>, out: &mut Vec<Finding>) {
        for part in &cx.subject.texts {
            for m in self.find(&part.text) {
                let (severity, score) = match m.kind {
                    "pii_ssn" | "pii_card" | "pii_iban" => (Severity::Medium, 0.3),
                    _ => (Severity::Low, 0.1),
                };
                out.push(
                    Finding::new(
                        format!("pii.{}", &m.kind[4..]),
                        DetectorId::Pii,
                        "pii",
                        severity,
                        score,
                        format!("Personal data detected: {}", &m.kind[4..]),
                    )
                    .at(part.surface.as_str())
                    .with_evidence(format!("[{}]", m.kind))
                    .redactable(),
                );
            }
        }
    }
}

fn pm(kind: &'static str, m: regex::Match<'_>) -> PiiMatch {
    PiiMatch {
        kind,
        start: m.start(),
        end: m.end(),
    }
}

/// Luhn checksum over the digits, for 13–19 digit numbers.
pub fn luhn_card(s: &str) -> bool {
    let digits: Vec<u32> = s.chars().filter_map(|c| c.to_digit(10)).collect();
    if !(13..=19).contains(&digits.len()) || digits.iter().all(|d| *d == digits[0]) {
        return false;
    }
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

/// ISO 13616 IBAN check: move the first four characters to the end, map
/// letters to 10..35, and the number must be 1 mod 97.
pub fn iban_valid(s: &str) -> bool {
    let compact: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    if !(15..=34).contains(&compact.len()) {
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

    #[test]
    fn finds_each_kind() {
        assert_eq!(kinds("mail jane.doe@example.org now"), ["pii_email"]);
        assert_eq!(kinds("call +44 20 7946 0958"), ["pii_phone"]);
        assert_eq!(kinds("call (555) 123-4567"), ["pii_phone"]);
        assert_eq!(kinds("ssn 123-45-6789"), ["pii_ssn"]);
        assert_eq!(kinds("card 4111 1111 1111 1111"), ["pii_card"]);
        assert_eq!(kinds("iban GB82 WEST 1234 5698 7654 32"), ["pii_iban"]);
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
