//! Tool calls made from code: Codex's freeform `exec` tool runs JavaScript
//! that calls the agent's other tools (`await tools.exec_command({cmd:
//! "ls"})`). Each such call is extracted with its argument (a JS object or
//! string literal, read leniently into JSON) and judged like a direct call.

use serde_json::{Map, Value};

/// Nested calls found in `src`: (tool name, argument). At most 64.
pub fn nested_tool_calls(src: &str) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    let b = src.as_bytes();
    let mut from = 0;
    while let Some(p) = src[from..].find("tools.") {
        let start = from + p + "tools.".len();
        from = start;
        // `tools` must be a whole identifier (not `mytools.`).
        let before = start - "tools.".len();
        if before > 0
            && (b[before - 1].is_ascii_alphanumeric()
                || b[before - 1] == b'_'
                || b[before - 1] == b'$')
        {
            continue;
        }
        let name_end = start
            + src[start..]
                .bytes()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == b'_' || *c == b'$')
                .count();
        if name_end == start {
            continue;
        }
        let mut i = name_end;
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        if i >= b.len() || b[i] != b'(' {
            continue;
        }
        let mut p = Parser { s: b, i: i + 1 };
        p.ws();
        let arg = p.value().unwrap_or(Value::Null);
        out.push((src[start..name_end].to_string(), arg));
        from = p.i.max(name_end);
        if out.len() >= 64 {
            break;
        }
    }
    out
}

/// A lenient reader of JS literals: objects with bare or quoted keys,
/// arrays, single-, double- and back-quoted strings (template holes kept
/// as text), numbers, booleans, null. Anything else (an expression) ends
/// the value; what was read so far is kept.
struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn ws(&mut self) {
        while self.i < self.s.len() {
            let c = self.s[self.i];
            if c.is_ascii_whitespace() {
                self.i += 1;
            } else if self.s[self.i..].starts_with(b"//") {
                while self.i < self.s.len() && self.s[self.i] != b'\n' {
                    self.i += 1;
                }
            } else if self.s[self.i..].starts_with(b"/*") {
                self.i += 2;
                while self.i + 1 < self.s.len() && !self.s[self.i..].starts_with(b"*/") {
                    self.i += 1;
                }
                self.i += 2;
            } else {
                break;
            }
        }
    }

    fn value(&mut self) -> Option<Value> {
        self.ws();
        let c = *self.s.get(self.i)?;
        match c {
            b'{' => self.object(),
            b'[' => self.array(),
            b'"' | b'\'' | b'`' => self.string().map(Value::String),
            b'-' | b'0'..=b'9' => self.number(),
            _ => {
                let word = self.ident();
                match word.as_str() {
                    "true" => Some(Value::Bool(true)),
                    "false" => Some(Value::Bool(false)),
                    "null" | "undefined" => Some(Value::Null),
                    "" => None,
                    // A variable or expression: keep its text.
                    other => Some(Value::String(other.to_string())),
                }
            }
        }
    }

    fn ident(&mut self) -> String {
        let start = self.i;
        while self.i < self.s.len()
            && (self.s[self.i].is_ascii_alphanumeric()
                || matches!(self.s[self.i], b'_' | b'$' | b'.'))
        {
            self.i += 1;
        }
        String::from_utf8_lossy(&self.s[start..self.i]).into_owned()
    }

    fn number(&mut self) -> Option<Value> {
        let start = self.i;
        while self.i < self.s.len()
            && matches!(
                self.s[self.i],
                b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9' | b'_'
            )
        {
            self.i += 1;
        }
        let text = String::from_utf8_lossy(&self.s[start..self.i]).replace('_', "");
        Some(
            text.parse::<i64>()
                .map(Value::from)
                .or_else(|_| text.parse::<f64>().map(Value::from))
                .unwrap_or(Value::String(text)),
        )
    }

    fn string(&mut self) -> Option<String> {
        let quote = self.s[self.i];
        self.i += 1;
        let mut out: Vec<u8> = Vec::new();
        while self.i < self.s.len() {
            let c = self.s[self.i];
            if c == quote {
                self.i += 1;
                return Some(String::from_utf8_lossy(&out).into_owned());
            }
            if c == b'\\' && self.i + 1 < self.s.len() {
                let e = self.s[self.i + 1];
                out.push(match e {
                    b'n' => b'\n',
                    b't' => b'\t',
                    b'r' => b'\r',
                    b'0' => 0,
                    other => other,
                });
                self.i += 2;
                continue;
            }
            out.push(c);
            self.i += 1;
        }
        Some(String::from_utf8_lossy(&out).into_owned())
    }

    fn array(&mut self) -> Option<Value> {
        self.i += 1;
        let mut items = Vec::new();
        loop {
            self.ws();
            match self.s.get(self.i) {
                None => break,
                Some(b']') => {
                    self.i += 1;
                    break;
                }
                Some(b',') => {
                    self.i += 1;
                    continue;
                }
                _ => {}
            }
            let before = self.i;
            match self.value() {
                Some(v) => items.push(v),
                None => break,
            }
            if self.i == before || items.len() > 1024 {
                break;
            }
        }
        Some(Value::Array(items))
    }

    fn object(&mut self) -> Option<Value> {
        self.i += 1;
        let mut map = Map::new();
        loop {
            self.ws();
            let key = match self.s.get(self.i) {
                None => break,
                Some(b'}') => {
                    self.i += 1;
                    break;
                }
                Some(b',') => {
                    self.i += 1;
                    continue;
                }
                Some(b'"' | b'\'' | b'`') => self.string()?,
                Some(_) => {
                    let k = self.ident();
                    if k.is_empty() {
                        break;
                    }
                    k
                }
            };
            self.ws();
            match self.s.get(self.i) {
                Some(b':') => {
                    self.i += 1;
                    let v = self.value().unwrap_or(Value::Null);
                    map.insert(key, v);
                }
                // Shorthand `{cmd}`: a variable; its value is unknown.
                _ => {
                    map.insert(key.clone(), Value::String(key));
                }
            }
            if map.len() > 1024 {
                break;
            }
        }
        Some(Value::Object(map))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn codex_exec_calls() {
        let src = "// @exec: {\"yield_time_ms\": 10000}\nconst r = await tools.exec_command({cmd: \"cat ~/.ssh/id_rsa\", yield_time_ms: 1000});\ntext(r);\nawait tools.apply_patch('*** Begin Patch');";
        let calls = nested_tool_calls(src);
        assert_eq!(calls.len(), 2);
        assert_eq!(calls[0].0, "exec_command");
        assert_eq!(
            calls[0].1,
            json!({"cmd": "cat ~/.ssh/id_rsa", "yield_time_ms": 1000})
        );
        assert_eq!(
            calls[1],
            ("apply_patch".to_string(), json!("*** Begin Patch"))
        );
    }

    #[test]
    fn quotes_trailing_commas_and_lookalikes() {
        let code = r#"const r = await tools.exec_command({cmd: "cat ~/.ssh/id_rsa", yield_time_ms: 1000,});
const w = await tools.write_stdin({'session_id': 3, chars: 'ls\n'}); text(r + mytools.x({a: 1}));"#;
        let calls = nested_tool_calls(code);
        assert_eq!(calls.len(), 2, "{calls:?}");
        assert_eq!(
            calls[0],
            (
                "exec_command".to_string(),
                json!({"cmd": "cat ~/.ssh/id_rsa", "yield_time_ms": 1000})
            )
        );
        assert_eq!(calls[1].1, json!({"session_id": 3, "chars": "ls\n"}));
        assert!(nested_tool_calls("no calls here; tools are great").is_empty());
    }

    #[test]
    fn nested_structures_and_odd_input() {
        let calls = nested_tool_calls("tools.x({a: [1, 'b', {c: `t${v}`}], 'd': true, e})");
        assert_eq!(
            calls[0].1,
            json!({"a": [1, "b", {"c": "t${v}"}], "d": true, "e": "e"})
        );
        assert!(nested_tool_calls("mytools.exec_command({cmd: 'ls'})").is_empty());
        assert_eq!(nested_tool_calls("tools.run(cmdVar)")[0].1, json!("cmdVar"));
        // Unterminated input ends cleanly.
        assert_eq!(
            nested_tool_calls("tools.run({cmd: 'ls")[0].1,
            json!({"cmd": "ls"})
        );
    }
}
