//! The phrase book: word classes, families and markers loaded from
//! `policies/rules/injection.toml` (format documented in that file) and
//! compiled once per policy into one Aho-Corasick automaton over all
//! phrases, a regex set over all markers and an automaton of compact
//! signatures.

use crate::normalize::{self, compact};
use crate::subject::Surface;
use crate::types::{DetectorId, Severity};
use crate::util::ascii_word_boundaries;
use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use regex::{Regex, RegexSet};
use serde::Deserialize;
use std::collections::BTreeMap;

/// The phrase book compiled into the binary.
pub const EMBEDDED_PHRASES: &str = include_str!("../../../../../policies/rules/injection.toml");

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BookFile {
    #[serde(default)]
    signatures: Vec<SignatureDef>,
    classes: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    family: Vec<FamilyDef>,
    #[serde(default)]
    marker: Vec<MarkerDef>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SignatureDef {
    text: String,
    family: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Scoring {
    id: String,
    #[serde(default)]
    detector: Option<String>,
    message: String,
    severity: Severity,
    score: f64,
    #[serde(default)]
    indirect_severity: Option<Severity>,
    #[serde(default)]
    indirect_score: Option<f64>,
    #[serde(default)]
    surfaces: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FamilyDef {
    #[serde(flatten)]
    scoring: Scoring,
    patterns: Vec<String>,
    #[serde(default)]
    unless_before: Vec<String>,
    #[serde(default)]
    unless_after: Vec<String>,
    #[serde(default)]
    unless_between: Vec<String>,
    #[serde(default)]
    cross_sentence: bool,
    #[serde(default)]
    context: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MarkerDef {
    #[serde(flatten)]
    scoring: Scoring,
    regex: String,
}

/// How a finding of a family or marker is scored and where it applies.
#[derive(Debug, Clone)]
pub struct Rule {
    pub id: String,
    pub detector: DetectorId,
    pub message: String,
    pub severity: Severity,
    pub score: f64,
    /// Scoring inside tool results; `None` = score + indirect bonus.
    pub indirect: Option<(Severity, f64)>,
    surfaces: Vec<Surface>,
}

impl Rule {
    /// The rule behind operator-supplied `extra_patterns`.
    pub fn custom() -> Rule {
        Rule {
            id: "pi.custom.pattern".into(),
            detector: DetectorId::PromptInjection,
            message: "Custom injection pattern".into(),
            severity: Severity::High,
            score: 0.75,
            indirect: None,
            surfaces: DEFAULT_SURFACES.to_vec(),
        }
    }

    pub fn applies_to(&self, surface: Surface) -> bool {
        self.surfaces.contains(&surface)
    }
}

/// One element of a pattern: a class, and the most words allowed between
/// the previous element and this one.
#[derive(Debug, Clone, Copy)]
pub struct Elem {
    pub class: u16,
    pub max_gap: u16,
}

#[derive(Debug)]
pub struct Family {
    pub rule: Rule,
    pub patterns: Vec<Vec<Elem>>,
    pub unless_before: Vec<u16>,
    pub unless_after: Vec<u16>,
    /// Classes that cancel a match when one of their phrases lies between
    /// two of its parts (a negation inside a verb-final clause).
    pub unless_between: Vec<u16>,
    pub cross_sentence: bool,
    /// Set for families that only mean something next to the
    /// conversation's own system prompt (see `context`); the per-text scan
    /// skips them.
    pub context: Option<Context>,
}

/// What a context family needs of the system prompt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Context {
    /// Matched on the system prompt: an instruction to keep something to
    /// itself.
    Declares,
    /// Applies when the system prompt keeps a password or key.
    Secret,
    /// Applies when the system prompt keeps someone's personal data.
    Record,
    /// Applies when the system prompt keeps a code (a door code, a PIN,
    /// an override or discount code) and gives its value.
    Code,
}

impl Context {
    fn parse(s: &str) -> Result<Context, String> {
        Ok(match s {
            "declares" => Context::Declares,
            "secret" => Context::Secret,
            "record" => Context::Record,
            "code" => Context::Code,
            other => return Err(format!("unknown context {other:?}")),
        })
    }
}

#[derive(Debug)]
pub struct Marker {
    pub rule: Rule,
    pub regex: Regex,
}

/// Per automaton pattern: the classes it belongs to and its boundary rules.
#[derive(Debug, Clone)]
pub struct PhraseInfo {
    pub classes: Vec<u16>,
    /// Written with a trailing `*`: matches inflected forms.
    pub prefix: bool,
    /// Starts (ends) in a script written without spaces or with attached
    /// particles, so no word boundary is required there.
    pub free_start: bool,
    pub free_end: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureForm {
    Plain,
    Reversed,
    Rot13,
}

pub struct PhraseBook {
    pub automaton: AhoCorasick,
    pub phrases: Vec<PhraseInfo>,
    pub class_names: Vec<String>,
    pub families: Vec<Family>,
    pub markers: Vec<Marker>,
    pub marker_set: RegexSet,
    pub signatures: AhoCorasick,
    /// Per signature pattern: family index, form and the folded words of
    /// the signature.
    pub signature_info: Vec<(usize, SignatureForm, usize)>,
    pub signature_words: Vec<Vec<String>>,
}

impl std::fmt::Debug for PhraseBook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PhraseBook")
            .field("phrases", &self.phrases.len())
            .field("families", &self.families.len())
            .field("markers", &self.markers.len())
            .finish()
    }
}

/// Where a family applies unless it names its surfaces: text that comes
/// from users, models, tools and documents. The agent's own instructions
/// and tool definitions are configuration; only families written for them
/// (tool poisoning) look there.
const DEFAULT_SURFACES: [Surface; 4] = [
    Surface::User,
    Surface::Assistant,
    Surface::ToolResult,
    Surface::ToolArguments,
];

fn parse_surface(s: &str) -> Result<Surface, String> {
    Ok(match s {
        "user" => Surface::User,
        "assistant" => Surface::Assistant,
        "tool_result" => Surface::ToolResult,
        "tool_definition" => Surface::ToolDefinition,
        "tool_arguments" => Surface::ToolArguments,
        "system" => Surface::System,
        other => return Err(format!("unknown surface {other:?}")),
    })
}

/// Scripts without spaces between words (Han, Kana) and Hangul, whose
/// particles attach to nouns: phrases there match inside longer words.
pub fn is_unspaced_script(c: char) -> bool {
    // Every range starts above U+0E00: most text answers with one compare.
    (c as u32) >= 0x0E00
        && matches!(c as u32,
        0x3040..=0x30FF | 0x3400..=0x4DBF | 0x4E00..=0x9FFF | 0xF900..=0xFAFF
        | 0xAC00..=0xD7AF | 0x1100..=0x11FF | 0x3130..=0x318F | 0x0E00..=0x0E7F
        | 0xFF66..=0xFF9F)
}

impl Scoring {
    fn compile(self) -> Result<Rule, String> {
        let detector = match self.detector.as_deref() {
            None | Some("prompt_injection") => DetectorId::PromptInjection,
            Some("policy_drift") => DetectorId::PolicyDrift,
            Some(other) => return Err(format!("{}: unknown detector {other:?}", self.id)),
        };
        let surfaces = match self.surfaces {
            None => DEFAULT_SURFACES.to_vec(),
            Some(list) => list
                .iter()
                .map(|s| parse_surface(s))
                .collect::<Result<_, _>>()
                .map_err(|e| format!("{}: {e}", self.id))?,
        };
        if !(0.0..=10.0).contains(&self.score) {
            return Err(format!("{}: score must be between 0 and 10", self.id));
        }
        let indirect = match (self.indirect_severity, self.indirect_score) {
            (None, None) => None,
            (s, x) => Some((s.unwrap_or(self.severity), x.unwrap_or(self.score))),
        };
        Ok(Rule {
            id: self.id,
            detector,
            message: self.message,
            severity: self.severity,
            score: self.score,
            indirect,
            surfaces,
        })
    }
}

struct Builder {
    class_names: Vec<String>,
    class_index: BTreeMap<String, u16>,
    /// folded phrase (without `*`) + prefix flag → classes
    phrases: BTreeMap<(String, bool), Vec<u16>>,
}

impl Builder {
    fn class(&mut self, name: &str) -> u16 {
        if let Some(&i) = self.class_index.get(name) {
            return i;
        }
        let i = self.class_names.len() as u16;
        self.class_names.push(name.to_string());
        self.class_index.insert(name.to_string(), i);
        i
    }

    fn add_phrase(&mut self, class: u16, raw: &str) -> Result<(), String> {
        let (body, prefix) = match raw.strip_suffix('*') {
            Some(b) => (b, true),
            None => (raw, false),
        };
        let folded = normalize::fold(body);
        if folded.trim().is_empty() {
            return Err(format!("empty phrase {raw:?}"));
        }
        let list = self.phrases.entry((folded, prefix)).or_default();
        if !list.contains(&class) {
            list.push(class);
        }
        Ok(())
    }

    /// `IGNORE ~3 'the above' ~2 SAY` → elements.
    fn pattern(&mut self, text: &str) -> Result<Vec<Elem>, String> {
        let mut elems = Vec::new();
        let mut gap: u16 = 0;
        let mut rest = text.trim();
        while !rest.is_empty() {
            if let Some(r) = rest.strip_prefix('\'') {
                let end = r
                    .find('\'')
                    .ok_or_else(|| format!("unterminated literal in {text:?}"))?;
                let literal = &r[..end];
                let name = format!("'{literal}'");
                let class = self.class(&name);
                self.add_phrase(class, literal)?;
                elems.push(Elem {
                    class,
                    max_gap: gap,
                });
                gap = 0;
                rest = r[end + 1..].trim_start();
                continue;
            }
            let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
            let token = &rest[..end];
            rest = rest[end..].trim_start();
            if let Some(n) = token.strip_prefix('~') {
                gap = n
                    .parse()
                    .map_err(|_| format!("bad gap {token:?} in {text:?}"))?;
                continue;
            }
            let class = *self
                .class_index
                .get(token)
                .ok_or_else(|| format!("unknown class {token:?} in {text:?}"))?;
            elems.push(Elem {
                class,
                max_gap: gap,
            });
            gap = 0;
        }
        if elems.is_empty() {
            return Err(format!("empty pattern {text:?}"));
        }
        Ok(elems)
    }
}

fn rot13(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            'a'..='m' => ((c as u8) + 13) as char,
            'n'..='z' => ((c as u8) - 13) as char,
            c => c,
        })
        .collect()
}

impl PhraseBook {
    pub fn from_toml(text: &str) -> Result<Self, String> {
        let file: BookFile = toml::from_str(text).map_err(|e| format!("injection rules: {e}"))?;
        let mut b = Builder {
            class_names: Vec::new(),
            class_index: BTreeMap::new(),
            phrases: BTreeMap::new(),
        };
        for (name, list) in &file.classes {
            let class = b.class(name);
            for p in list {
                b.add_phrase(class, p)
                    .map_err(|e| format!("injection class {name}: {e}"))?;
            }
        }
        let mut families = Vec::new();
        for def in file.family {
            let id = def.scoring.id.clone();
            let patterns = def
                .patterns
                .iter()
                .map(|p| b.pattern(p))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| format!("injection family {id}: {e}"))?;
            let lookup = |b: &Builder, names: &[String]| -> Result<Vec<u16>, String> {
                names
                    .iter()
                    .map(|n| {
                        b.class_index
                            .get(n)
                            .copied()
                            .ok_or_else(|| format!("injection family {id}: unknown class {n:?}"))
                    })
                    .collect()
            };
            let context = def
                .context
                .as_deref()
                .map(Context::parse)
                .transpose()
                .map_err(|e| format!("injection family {id}: {e}"))?;
            families.push(Family {
                context,
                unless_before: lookup(&b, &def.unless_before)?,
                unless_after: lookup(&b, &def.unless_after)?,
                unless_between: lookup(&b, &def.unless_between)?,
                cross_sentence: def.cross_sentence,
                patterns,
                rule: def.scoring.compile()?,
            });
        }
        let mut markers = Vec::new();
        for def in file.marker {
            let regex = Regex::new(&def.regex)
                .map_err(|e| format!("injection marker {}: {e}", def.scoring.id))?;
            markers.push(Marker {
                rule: def.scoring.compile()?,
                regex,
            });
        }
        let marker_set = RegexSet::new(
            markers
                .iter()
                .map(|m| ascii_word_boundaries(m.regex.as_str())),
        )
        .map_err(|e| format!("injection markers: {e}"))?;

        let mut patterns = Vec::with_capacity(b.phrases.len());
        let mut phrases = Vec::with_capacity(b.phrases.len());
        for ((text, prefix), classes) in b.phrases {
            let first = text.chars().next().expect("non-empty phrase");
            let last = text.chars().last().expect("non-empty phrase");
            phrases.push(PhraseInfo {
                classes,
                prefix,
                free_start: is_unspaced_script(first),
                free_end: is_unspaced_script(last),
            });
            patterns.push(text);
        }
        let automaton = AhoCorasickBuilder::new()
            .match_kind(MatchKind::Standard)
            .build(&patterns)
            .map_err(|e| format!("injection phrases: {e}"))?;

        let mut sig_patterns = Vec::new();
        let mut signature_info = Vec::new();
        let mut signature_words = Vec::new();
        for sig in &file.signatures {
            let family = families
                .iter()
                .position(|f| f.rule.id == sig.family)
                .ok_or_else(|| {
                    format!("signature {:?}: unknown family {}", sig.text, sig.family)
                })?;
            let folded = normalize::fold(&sig.text);
            let words_index = signature_words.len();
            signature_words.push(folded.split(' ').map(str::to_string).collect::<Vec<_>>());
            let plain = compact(&folded);
            if plain.len() < 10 {
                return Err(format!("signature {:?} is too short", sig.text));
            }
            let reversed: String = plain.chars().rev().collect();
            let rot = rot13(&plain);
            for (form, text) in [
                (SignatureForm::Plain, plain),
                (SignatureForm::Reversed, reversed),
                (SignatureForm::Rot13, rot),
            ] {
                sig_patterns.push(text);
                signature_info.push((family, form, words_index));
            }
        }
        let signatures = AhoCorasick::new(&sig_patterns).map_err(|e| format!("signatures: {e}"))?;

        Ok(PhraseBook {
            automaton,
            phrases,
            class_names: b.class_names,
            families,
            markers,
            marker_set,
            signatures,
            signature_info,
            signature_words,
        })
    }

    pub fn class(&self, name: &str) -> Option<u16> {
        self.class_names
            .iter()
            .position(|n| n == name)
            .map(|i| i as u16)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_book_compiles() {
        let book = PhraseBook::from_toml(EMBEDDED_PHRASES).unwrap();
        assert!(book.phrases.len() > 500, "{}", book.phrases.len());
        assert!(book.families.len() >= 20);
        assert!(book.markers.len() >= 5);
    }

    #[test]
    fn errors_name_the_problem() {
        let bad = "[classes]\nA = [\"x\"]\n[[family]]\nid = \"pi.x.y\"\nmessage = \"m\"\nseverity = \"high\"\nscore = 0.5\npatterns = [\"A ~2 B\"]\n";
        let err = PhraseBook::from_toml(bad).unwrap_err();
        assert!(err.contains("unknown class \"B\""), "{err}");
    }

    #[test]
    fn rot13_round_trips() {
        assert_eq!(rot13("ignore"), "vtaber");
        assert_eq!(rot13(&rot13("ignore")), "ignore");
    }
}
