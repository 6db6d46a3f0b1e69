//! Code-mode tool calls: Codex CLI offers one freeform tool (`exec`) whose
//! input is JavaScript that calls the agent's other tools, e.g.
//! `const r = await tools.exec_command({cmd: "cat ~/.ssh/id_rsa"}); text(r);`.
//! Judged as one opaque text, the shell command inside is only a
//! "mention"; so each `tools.NAME(args)` invocation is extracted here as a
//! call of its own, and the data path judges it like a direct call. The
//! object literal is read leniently (bare keys, single quotes, trailing
//! commas); what cannot be read goes in as the literal's text.

use crate::decision::subject::ToolCall;
use serde_json::{Map, Value};

/// The tool calls a piece of code-mode JavaScript makes.
pub fn inner_calls(code: &str) -> Vec<ToolCall> {
    let b = code.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(off) = code[i..].find("tools.") {
        let start = i + off + "tools.".len();
        i = start;
        // `mytools.x(` is not the tools object.
        if start > 6 && is_ident(b[start - 7]) {
            continue;
        }
        let name_end = start + b[start..].iter().take_while(|c| is_ident(**c)).count();
        if name_end == start {
            continue;
        }
        let mut j = name_end;
        while j < b.len() && b[j].is_ascii_whitespace() {
            j += 1;
        }
        if j >= b.len() || b[j] != b'(' {
            continue;
        }
        let mut p = Parser { b, pos: j + 1 };
        p.ws();
        let args = if p.peek() == Some(b')') {
            Value::Object(Map::new())
        } else {
            let from = p.pos;
            match p.value() {
                Some(v) => v,
                None => {
                    // Unreadable: the raw argument text, up to the call's end.
                    let end = code[from..].find(')').map_or(code.len(), |e| from + e);
                    Value::String(code[from..end].to_string())
                }
            }
        };
        out.push(ToolCall::new(&code[start..name_end], args));
        i = name_end;
    }
    out
}

fn is_ident(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b'$'
}

/// A lenient reader of JavaScript literals.
struct Parser<'a> {
    b: &'a [u8],
    pos: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.pos).copied()
    }

    fn ws(&mut self) {
        while self.peek().is_some_and(|c| c.is_ascii_whitespace()) {
            self.pos += 1;
        }
    }

    fn value(&mut self) -> Option<Value> {
        self.ws();
        match self.peek()? {
            b'{' => self.object(),
            b'[' => self.array(),
            b'"' | b'\'' | b'`' => self.string().map(Value::String),
            c if c == b'-' || c.is_ascii_digit() => {
                let s = self.pos;
                while self
                    .peek()
                    .is_some_and(|c| c.is_ascii_digit() || b"+-.eE".contains(&c))
                {
                    self.pos += 1;
                }
                std::str::from_utf8(&self.b[s..self.pos])
                    .ok()?
                    .parse::<f64>()
                    .ok()
                    .and_then(serde_json::Number::from_f64)
                    .map(Value::Number)
            }
            _ => match self.ident()?.as_str() {
                "true" => Some(Value::Bool(true)),
                "false" => Some(Value::Bool(false)),
                "null" | "undefined" => Some(Value::Null),
                // A variable: its value is not known here.
                _ => None,
            },
        }
    }

    fn ident(&mut self) -> Option<String> {
        let s = self.pos;
        while self.peek().is_some_and(is_ident) {
            self.pos += 1;
        }
        (self.pos > s).then(|| String::from_utf8_lossy(&self.b[s..self.pos]).into_owned())
    }

    fn string(&mut self) -> Option<String> {
        let quote = self.peek()?;
        self.pos += 1;
        let mut out = Vec::new();
        while let Some(c) = self.peek() {
            self.pos += 1;
            match c {
                b'\\' => {
                    let e = self.peek()?;
                    self.pos += 1;
                    out.push(match e {
                        b'n' => b'\n',
                        b't' => b'\t',
                        b'r' => b'\r',
                        other => other,
                    });
                }
                // Template substitutions are code: not a literal.
                b'$' if quote == b'`' && self.peek() == Some(b'{') => return None,
                c if c == quote => return String::from_utf8(out).ok(),
                c => out.push(c),
            }
        }
        None
    }

    fn object(&mut self) -> Option<Value> {
        self.pos += 1;
        let mut m = Map::new();
        loop {
            self.ws();
            match self.peek()? {
                b'}' => {
                    self.pos += 1;
                    return Some(Value::Object(m));
                }
                b',' => {
                    self.pos += 1;
                    continue;
                }
                b'"' | b'\'' | b'`' => {
                    let k = self.string()?;
                    m.insert(k, self.after_key()?);
                }
                _ => {
                    let k = self.ident()?;
                    self.ws();
                    if self.peek() != Some(b':') {
                        // Shorthand `{cmd}`: a variable.
                        return None;
                    }
                    m.insert(k, self.after_key()?);
                }
            }
        }
    }

    fn after_key(&mut self) -> Option<Value> {
        self.ws();
        if self.peek()? != b':' {
            return None;
        }
        self.pos += 1;
        self.value()
    }

    fn array(&mut self) -> Option<Value> {
        self.pos += 1;
        let mut a = Vec::new();
        loop {
            self.ws();
            match self.peek()? {
                b']' => {
                    self.pos += 1;
                    return Some(Value::Array(a));
                }
                b',' => self.pos += 1,
                _ => a.push(self.value()?),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn extracts_calls_from_code_mode_javascript() {
        let code = r#"const r = await tools.exec_command({cmd: "cat ~/.ssh/id_rsa", yield_time_ms: 1000,});
const w = await tools.write_stdin({'session_id': 3, chars: 'ls\n'}); text(r + mytools.x({a: 1}));"#;
        let calls = inner_calls(code);
        assert_eq!(calls.len(), 2, "{calls:?}");
        assert_eq!(calls[0].name, "exec_command");
        assert_eq!(
            calls[0].arguments,
            json!({"cmd": "cat ~/.ssh/id_rsa", "yield_time_ms": 1000.0})
        );
        assert_eq!(
            calls[1].arguments,
            json!({"session_id": 3.0, "chars": "ls\n"})
        );
    }

    #[test]
    fn unreadable_arguments_keep_their_text() {
        let calls =
            inner_calls("const c = 'cat ~/.ssh/id_rsa'; await tools.exec_command({cmd: c})");
        assert_eq!(calls[0].arguments, json!("{cmd: c}"));
        let calls = inner_calls("await tools.exec_command({cmd: `cat ${p}`})");
        assert_eq!(calls[0].arguments, json!("{cmd: `cat ${p}`}"));
        assert!(inner_calls("no calls here; tools are great").is_empty());
    }
}
