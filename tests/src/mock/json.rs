//! A tiny JSON value that keeps object keys in insertion order.
//!
//! `serde_json::Value` sorts keys (the workspace does not enable `preserve_order`, and enabling it here
//! would change the gateway's own build through feature unification). Real APIs put `"type"` first and
//! the fixtures follow the real order, so the mock writes its bodies with this type instead.

use serde_json::Value;

#[derive(Clone, Debug)]
pub enum J {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Arr(Vec<J>),
    Obj(Vec<(String, J)>),
    /// Any serde_json value (written with serde_json's own, sorted, key order).
    Val(Value),
}

/// Build an ordered [`J`] with JSON-like syntax. Values must be a single token tree: a literal,
/// `null`, an identifier, `{…}`, `[…]` or a parenthesised expression `(expr)`.
#[macro_export]
macro_rules! oj {
    (null) => { $crate::mock::json::J::Null };
    ({ $($k:literal : $v:tt),* $(,)? }) => {
        $crate::mock::json::J::Obj(vec![$(($k.to_string(), $crate::oj!($v))),*])
    };
    ([ $($v:tt),* $(,)? ]) => { $crate::mock::json::J::Arr(vec![$($crate::oj!($v)),*]) };
    ($e:expr) => { $crate::mock::json::J::from($e) };
}

impl J {
    /// Append (or replace) a key of an object; no-op on other variants.
    pub fn set(&mut self, key: &str, value: impl Into<J>) {
        if let J::Obj(fields) = self {
            let value = value.into();
            match fields.iter_mut().find(|(k, _)| k == key) {
                Some(slot) => slot.1 = value,
                None => fields.push((key.to_string(), value)),
            }
        }
    }

    pub fn with(mut self, key: &str, value: impl Into<J>) -> J {
        self.set(key, value);
        self
    }

    pub fn to_json(&self) -> String {
        let mut out = String::with_capacity(256);
        self.write(&mut out);
        out
    }

    fn write(&self, out: &mut String) {
        match self {
            J::Null => out.push_str("null"),
            J::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            J::Int(i) => out.push_str(&i.to_string()),
            J::Float(f) => out.push_str(&Value::from(*f).to_string()),
            J::Str(s) => write_str(out, s),
            J::Arr(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    item.write(out);
                }
                out.push(']');
            }
            J::Obj(fields) => {
                out.push('{');
                for (i, (k, v)) in fields.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write_str(out, k);
                    out.push(':');
                    v.write(out);
                }
                out.push('}');
            }
            J::Val(v) => out.push_str(&v.to_string()),
        }
    }
}

fn write_str(out: &mut String, s: &str) {
    // serde_json's string escaping is correct and fast; reuse it.
    out.push_str(&serde_json::to_string(s).expect("string serialises"));
}

impl From<&str> for J {
    fn from(s: &str) -> J {
        J::Str(s.to_string())
    }
}
impl From<String> for J {
    fn from(s: String) -> J {
        J::Str(s)
    }
}
impl From<&String> for J {
    fn from(s: &String) -> J {
        J::Str(s.clone())
    }
}
impl From<bool> for J {
    fn from(b: bool) -> J {
        J::Bool(b)
    }
}
impl From<i64> for J {
    fn from(i: i64) -> J {
        J::Int(i)
    }
}
impl From<i32> for J {
    fn from(i: i32) -> J {
        J::Int(i.into())
    }
}
impl From<u64> for J {
    fn from(i: u64) -> J {
        J::Int(i as i64)
    }
}
impl From<usize> for J {
    fn from(i: usize) -> J {
        J::Int(i as i64)
    }
}
impl From<f64> for J {
    fn from(f: f64) -> J {
        J::Float(f)
    }
}
impl From<Value> for J {
    fn from(v: Value) -> J {
        J::Val(v)
    }
}
impl From<&Value> for J {
    fn from(v: &Value) -> J {
        J::Val(v.clone())
    }
}
impl From<Vec<J>> for J {
    fn from(v: Vec<J>) -> J {
        J::Arr(v)
    }
}
impl<T: Into<J>> From<Option<T>> for J {
    fn from(v: Option<T>) -> J {
        v.map_or(J::Null, Into::into)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn keeps_key_order_and_escapes() {
        let name = "a\"b";
        let j = oj!({"type": "x", "n": 3, "f": 1.0, "s": name, "nested": {"z": null, "a": [true, (2 + 3)]}});
        assert_eq!(
            j.to_json(),
            r#"{"type":"x","n":3,"f":1.0,"s":"a\"b","nested":{"z":null,"a":[true,5]}}"#
        );
    }
}
