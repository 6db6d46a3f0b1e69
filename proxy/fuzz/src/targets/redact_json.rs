//! The JSON redaction walk: the masked body is JSON of the same shape
//! (same keys in the same order, same array lengths, same scalars), every
//! content string is exactly its buffered redaction, protocol fields are
//! untouched, and JSON inside `arguments` stays JSON. No depth hides a
//! secret.

use super::{dev_policy, masker};
use crate::input::Input;
use asg::datapath::dialect::redact_walk::{
    is_data_url, redact_json, JSON_STRING_KEYS, MAX_DEPTH, OPAQUE_KEYS,
};
use serde_json::{Map, Value};

const WORDS: &[&str] = &[
    "AKIAIOSFODNN7EXAMPLE",
    "ghp_16C7e42F292c6912E7710c838347Ae178B4a",
    "sk-proj-aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY3zA5bC7dE9f",
    "xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx",
    "alice@example.com",
    "+1 415 555 0100",
    "4111 1111 1111 1111",
    "api_key=",
    "password: ",
    "hello",
    " ",
    "\"",
    "\n",
    "{\"k\":",
    "}",
    "data:",
    "é",
];
const KEYS: &[&str] = &[
    "content",
    "text",
    "arguments",
    "id",
    "name",
    "type",
    "metadata",
    "input",
    "messages",
    "data",
    "k",
    "",
];

/// A JSON value built from fuzz bytes: strings from secret-bearing words,
/// keys that matter to the walk, nesting as deep as the bytes ask.
fn build(inp: &mut Input<'_>, budget: &mut usize, depth: usize) -> Value {
    if *budget == 0 {
        return Value::Null;
    }
    *budget -= 1;
    // Bodies reach the walk through serde_json, which stops at 128 levels.
    let op = match inp.byte() % 8 {
        3..=6 if depth >= 120 => 0,
        op => op,
    };
    match op {
        0 | 1 => {
            let n = inp.below(5);
            Value::String((0..n).map(|_| WORDS[inp.below(WORDS.len())]).collect())
        }
        2 => Value::from(inp.byte()),
        3 => {
            let n = inp.below(4);
            Value::Array((0..n).map(|_| build(inp, budget, depth + 1)).collect())
        }
        4 | 5 => {
            let n = 1 + inp.below(3);
            let mut m = Map::new();
            for _ in 0..n {
                let k = KEYS[inp.below(KEYS.len())];
                let v = if k == "arguments" && inp.byte() & 1 == 0 {
                    Value::String(build(inp, budget, depth + 1).to_string())
                } else {
                    build(inp, budget, depth + 1)
                };
                m.insert(k.to_string(), v);
            }
            Value::Object(m)
        }
        6 => {
            // Deep nesting: a chain of single-element arrays.
            let levels = inp.below(100).min(119 - depth);
            let mut v = build(inp, budget, depth + levels);
            for _ in 0..levels {
                v = Value::Array(vec![v]);
            }
            v
        }
        _ => Value::Bool(inp.byte() & 1 == 0),
    }
}

fn check(orig: &Value, got: &Value, key: Option<&str>, depth: usize) {
    let p = dev_policy();
    let m = masker();
    match (orig, got) {
        (Value::String(o), Value::String(g)) => {
            let deep = depth > MAX_DEPTH;
            if !deep {
                if let Some(k) = key {
                    if OPAQUE_KEYS.contains(&k) || is_data_url(o) {
                        assert_eq!(o, g, "protocol field {k:?} changed");
                        return;
                    }
                    if JSON_STRING_KEYS.contains(&k) {
                        if let Ok(inner) = serde_json::from_str::<Value>(o) {
                            if inner.is_object() || inner.is_array() {
                                let inner_got: Value =
                                    serde_json::from_str(g).unwrap_or_else(|e| {
                                        panic!("{k} is no longer JSON ({e}): {g:?}")
                                    });
                                return check(&inner, &inner_got, None, depth + 1);
                            }
                        }
                    }
                }
            }
            let want = p
                .redactor
                .redact(o, &m)
                .map_or_else(|| o.clone(), |r| r.text);
            assert_eq!(
                &want, g,
                "depth {depth}: not the buffered redaction of {o:?}"
            );
        }
        (Value::Array(o), Value::Array(g)) => {
            assert_eq!(o.len(), g.len(), "array length changed");
            for (a, b) in o.iter().zip(g) {
                check(a, b, key, depth + 1);
            }
        }
        (Value::Object(o), Value::Object(g)) => {
            let ko: Vec<&String> = o.keys().collect();
            let kg: Vec<&String> = g.keys().collect();
            assert_eq!(ko, kg, "keys changed");
            for ((k, a), b) in o.iter().zip(g.values()) {
                check(a, b, Some(k), depth + 1);
            }
        }
        (a, b) => assert_eq!(a, b, "scalar changed"),
    }
}

pub fn run(data: &[u8]) {
    let mut inp = Input::new(data);
    let orig = if inp.byte() & 1 == 0 {
        match serde_json::from_slice::<Value>(inp.rest()) {
            Ok(v) => v,
            Err(_) => return,
        }
    } else {
        let mut budget = 200;
        build(&mut inp, &mut budget, 0)
    };
    let mut got = orig.clone();
    let p = dev_policy();
    let events = redact_json(&mut got, &p.redactor, &masker());
    let text = got.to_string();
    let reparsed: Value = serde_json::from_str(&text).expect("the masked body is JSON");
    assert_eq!(reparsed, got);
    check(&orig, &got, None, 0);
    assert_eq!(
        events.is_empty(),
        orig == got,
        "events and changes disagree"
    );
}
