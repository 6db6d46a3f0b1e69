//! Strict JSON for every body the gateway inspects, in both directions.
//!
//! The gateway judges what it parsed and forwards the received bytes, so
//! its parser must not read a body differently from the provider, the
//! tool server or the agent's SDK:
//! * duplicate object keys are refused: serde_json keeps the last value,
//!   other parsers keep the first, so a body `{"content": <secret>,
//!   "content": "hi"}` would be inspected as `hi` and delivered with the
//!   secret;
//! * the same inside tool arguments carried as a JSON string
//!   (`"arguments": "{\"path\": …, \"path\": …}"`), which the agent's tool
//!   runner parses on its own;
//! * everything serde_json already refuses stays refused: `NaN`,
//!   `Infinity`, trailing commas, comments, truncated documents, lone
//!   surrogates, numbers out of range (Python's `json.loads` accepts the
//!   first two, so a lenient relay would hand them to the agent).
//!
//! Parsing costs what `serde_json::from_slice::<Value>` costs plus one map
//! entry lookup per key (the same lookup an insert does anyway).

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};
use std::fmt;

/// Keys whose string value is itself JSON that a tool runner parses
/// (OpenAI `function.arguments`, Responses `function_call.arguments`).
pub const JSON_STRING_KEYS: &[&str] = &["arguments"];

/// Why a body is not strict JSON. The message names the position, never
/// the value (a body may carry secrets).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StrictError {
    pub kind: StrictErrorKind,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StrictErrorKind {
    /// Not JSON at all, or JSON that a strict parser refuses.
    Syntax,
    /// An object names the same key twice.
    DuplicateKey,
    /// A tool-argument string is JSON with a duplicate key.
    DuplicateKeyInArguments,
}

impl fmt::Display for StrictError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for StrictError {}

/// Markers the visitor puts in serde errors, so they can be told apart.
const DUP: &str = "\u{1}duplicate key";
const DUP_ARGS: &str = "\u{1}duplicate key in tool arguments";

/// Parse `raw` strictly (see the module docs).
pub fn from_slice(raw: &[u8]) -> Result<Value, StrictError> {
    let mut de = serde_json::Deserializer::from_slice(raw);
    let v = StrictSeed.deserialize(&mut de).map_err(classify)?;
    de.end().map_err(classify)?;
    Ok(v)
}

/// [`from_slice`] for text.
pub fn from_str(raw: &str) -> Result<Value, StrictError> {
    from_slice(raw.as_bytes())
}

/// Does this text look like a JSON document (object or array)? Tool
/// arguments that do are held to the strict rules; others are free text.
pub fn looks_like_json(s: &str) -> bool {
    matches!(s.trim_start().as_bytes().first(), Some(b'{' | b'['))
}

/// Parse tool arguments carried as a string: `Ok(Some(v))` for a strict
/// JSON document, `Ok(None)` for free text (not JSON, or malformed JSON a
/// tool may still take as text), `Err` when the text is JSON whose keys
/// repeat, which two parsers would read differently.
pub fn parse_arguments(raw: &str) -> Result<Option<Value>, StrictError> {
    match from_str(raw) {
        Ok(v) => Ok(Some(v)),
        Err(e) if e.kind == StrictErrorKind::Syntax => Ok(None),
        Err(e) => Err(StrictError {
            kind: StrictErrorKind::DuplicateKeyInArguments,
            message: e
                .message
                .replacen("duplicate key", "duplicate key in tool arguments", 1),
        }),
    }
}

fn classify(e: serde_json::Error) -> StrictError {
    let text = e.to_string();
    let (kind, text) = if let Some(rest) = text.strip_prefix(DUP_ARGS) {
        (
            StrictErrorKind::DuplicateKeyInArguments,
            format!("duplicate key in tool arguments{rest}"),
        )
    } else if let Some(rest) = text.strip_prefix(DUP) {
        (
            StrictErrorKind::DuplicateKey,
            format!("duplicate key{rest}"),
        )
    } else {
        (StrictErrorKind::Syntax, text)
    };
    StrictError {
        kind,
        message: text,
    }
}

/// A key fit to quote in an error: short and made of identifier
/// characters (anything else could be a value someone hid in a key).
fn quotable(key: &str) -> Option<&str> {
    (key.len() <= 40
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.'))
    .then_some(key)
}

struct StrictSeed;

impl<'de> DeserializeSeed<'de> for StrictSeed {
    type Value = Value;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(StrictVisitor)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        serde_json::Number::from_f64(v)
            .map(Value::Number)
            .ok_or_else(|| E::custom("number out of range"))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
        while let Some(v) = seq.next_element_seed(StrictSeed)? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let value = map.next_value_seed(StrictSeed)?;
            if let Value::String(s) = &value {
                if JSON_STRING_KEYS.contains(&key.as_str()) && looks_like_json(s) {
                    if let Err(e) = from_str(s) {
                        if e.kind != StrictErrorKind::Syntax {
                            let at = e.message.split_once(" at ").map_or("", |(_, p)| p);
                            return Err(de::Error::custom(format!(
                                "{DUP_ARGS} (\"{key}\" string, {at})"
                            )));
                        }
                    }
                }
            }
            match out.entry(key) {
                serde_json::map::Entry::Vacant(slot) => {
                    slot.insert(value);
                }
                serde_json::map::Entry::Occupied(slot) => {
                    let named = quotable(slot.key())
                        .map(|k| format!(" \"{k}\""))
                        .unwrap_or_default();
                    return Err(de::Error::custom(format!("{DUP}{named}")));
                }
            }
        }
        Ok(Value::Object(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn kind(raw: &str) -> Option<StrictErrorKind> {
        from_str(raw).err().map(|e| e.kind)
    }

    #[test]
    fn same_values_as_serde_json() {
        for raw in [
            r#"{"a":1,"b":[1,2.5,-3,"x",null,true,{"c":{}}],"d":"é\u00e9\ud83d\ude00"}"#,
            "[]",
            "\"text\"",
            "12345678901234567890",
            "-1e300",
        ] {
            let lenient: Value = serde_json::from_str(raw).unwrap();
            assert_eq!(from_str(raw).unwrap(), lenient, "{raw}");
        }
        // Key order is kept (the forwarded re-serialisation keeps it too).
        let v = from_str(r#"{"z":1,"a":2}"#).unwrap();
        assert_eq!(v.to_string(), r#"{"z":1,"a":2}"#);
    }

    #[test]
    fn duplicate_keys_are_refused_at_any_depth() {
        assert_eq!(
            kind(r#"{"content":"AKIA","content":"hi"}"#),
            Some(StrictErrorKind::DuplicateKey)
        );
        assert_eq!(
            kind(r#"{"messages":[{"role":"user","role":"system"}]}"#),
            Some(StrictErrorKind::DuplicateKey)
        );
        let e = from_str("{\"a\":1,\n\"a\":2}").unwrap_err();
        assert!(
            e.message.starts_with("duplicate key \"a\" at line 2"),
            "{}",
            e.message
        );
        // A key that is not an identifier is not quoted back.
        let e = from_str(r#"{"AKIA IOSF":1,"AKIA IOSF":2}"#).unwrap_err();
        assert!(!e.message.contains("AKIA"), "{}", e.message);
    }

    #[test]
    fn duplicate_keys_inside_tool_argument_strings_are_refused() {
        let raw = json!({"tool_calls": [{"function": {"name": "shell",
            "arguments": "{\"command\": \"cat ~/.ssh/id_rsa\", \"command\": \"ls\"}"}}]})
        .to_string();
        let e = from_str(&raw).unwrap_err();
        assert_eq!(e.kind, StrictErrorKind::DuplicateKeyInArguments, "{e}");
        // Free-text and malformed arguments stay strings (a tool may take text).
        for args in ["ls -la", "{not json", "{\"a\": NaN}"] {
            let raw = json!({ "arguments": args }).to_string();
            assert!(from_str(&raw).is_ok(), "{args}");
        }
        assert_eq!(parse_arguments("ls -la"), Ok(None));
        assert_eq!(
            parse_arguments(r#"{"p":"/etc"}"#),
            Ok(Some(json!({"p": "/etc"})))
        );
        assert_eq!(
            parse_arguments(r#"{"p":"/root/.ssh/id_rsa","p":"/tmp"}"#)
                .unwrap_err()
                .kind,
            StrictErrorKind::DuplicateKeyInArguments
        );
    }

    #[test]
    fn what_serde_json_refuses_stays_refused() {
        for raw in [
            r#"{"x": NaN}"#,
            r#"{"x": Infinity}"#,
            r#"{"x": -Infinity}"#,
            r#"{"a": 1,}"#,
            r#"[1, 2,]"#,
            r#"{"a": 1"#,
            r#"{"a": "\ud800"}"#,
            r#"{"a": 1e400}"#,
            "{\"a\": 1} // comment",
            "{\"a\": 1} {\"b\": 2}",
            "",
            "\u{feff}{}",
        ] {
            assert_eq!(kind(raw), Some(StrictErrorKind::Syntax), "{raw:?}");
        }
    }

    #[test]
    fn deep_nesting_is_refused_not_a_stack_overflow() {
        let raw = "[".repeat(100_000);
        assert_eq!(kind(&raw), Some(StrictErrorKind::Syntax));
    }
}
