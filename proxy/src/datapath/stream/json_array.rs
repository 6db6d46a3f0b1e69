//! Incremental framing of a streamed JSON array (`[{…},\r\n{…}]`), the form
//! Gemini's `streamGenerateContent` takes without `alt=sse`.
//!
//! Like the SSE parser it keeps only the element being received and hands
//! out each one as soon as its closing brace arrives, so a pretty-printed
//! chunk cut anywhere (inside strings, escapes, between elements) comes
//! out whole. Anything that is not an array of JSON values is an error:
//! the stream is then withheld rather than relayed uninspected.

use bytes::{Bytes, BytesMut};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArrayError {
    /// An element grew past the limit.
    TooLarge(usize),
    /// Bytes that cannot be part of a JSON array.
    Malformed(&'static str),
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Before `[`.
    #[default]
    Start,
    /// Between elements (after `[` or `,`).
    Between,
    /// Inside an element.
    Element,
    /// After an element, before `,` or `]`.
    AfterElement,
    /// After `]`: only whitespace may follow.
    Done,
}

pub struct JsonArrayParser {
    state: State,
    buf: BytesMut,
    depth: usize,
    in_string: bool,
    escape: bool,
    max: usize,
}

impl JsonArrayParser {
    pub fn new(max: usize) -> Self {
        JsonArrayParser {
            state: State::Start,
            buf: BytesMut::new(),
            depth: 0,
            in_string: false,
            escape: false,
            max,
        }
    }

    /// Feed bytes; every complete element goes to `f`.
    pub fn push(&mut self, chunk: &[u8], mut f: impl FnMut(Bytes)) -> Result<(), ArrayError> {
        for &b in chunk {
            match self.state {
                State::Start => match b {
                    b'[' => self.state = State::Between,
                    _ if b.is_ascii_whitespace() => {}
                    _ => return Err(ArrayError::Malformed("the stream does not start with '['")),
                },
                State::Between | State::AfterElement => match b {
                    _ if b.is_ascii_whitespace() => {}
                    b',' if self.state == State::AfterElement => self.state = State::Between,
                    b']' => self.state = State::Done,
                    b',' => return Err(ArrayError::Malformed("empty array element")),
                    _ if self.state == State::Between => {
                        self.state = State::Element;
                        self.start_element(b);
                        if self.depth == 0 && !self.in_string {
                            return Err(ArrayError::Malformed(
                                "array elements must be objects or arrays",
                            ));
                        }
                    }
                    _ => return Err(ArrayError::Malformed("missing ',' between array elements")),
                },
                State::Element => {
                    self.buf.extend_from_slice(&[b]);
                    if self.scan(b) {
                        self.state = State::AfterElement;
                        f(std::mem::take(&mut self.buf).freeze());
                    } else if self.buf.len() > self.max {
                        return Err(ArrayError::TooLarge(self.buf.len()));
                    }
                }
                State::Done if b.is_ascii_whitespace() => {}
                State::Done => return Err(ArrayError::Malformed("bytes after the closing ']'")),
            }
        }
        Ok(())
    }

    fn start_element(&mut self, b: u8) {
        self.buf.clear();
        self.buf.extend_from_slice(&[b]);
        self.depth = 0;
        self.in_string = false;
        self.escape = false;
        if b == b'{' || b == b'[' {
            self.depth = 1;
        }
    }

    /// Track nesting; true when the element just closed.
    fn scan(&mut self, b: u8) -> bool {
        if self.in_string {
            if self.escape {
                self.escape = false;
            } else if b == b'\\' {
                self.escape = true;
            } else if b == b'"' {
                self.in_string = false;
            }
            return false;
        }
        match b {
            b'"' => self.in_string = true,
            b'{' | b'[' => self.depth += 1,
            b'}' | b']' => {
                self.depth -= 1;
                return self.depth == 0;
            }
            _ => {}
        }
        false
    }

    /// The upstream ended; an error if the array was left open.
    pub fn finish(&self) -> Result<(), ArrayError> {
        match self.state {
            State::Done | State::Start => Ok(()),
            _ => Err(ArrayError::Malformed("the stream ended inside the array")),
        }
    }
}

/// Writes elements back as one JSON array, the way the API does.
#[derive(Default)]
pub struct ArrayWriter {
    opened: bool,
    closed: bool,
}

impl ArrayWriter {
    pub fn element(&mut self, out: &mut BytesMut, elem: &[u8]) {
        out.extend_from_slice(if self.opened { b",\r\n" } else { b"[" });
        self.opened = true;
        out.extend_from_slice(elem);
    }

    pub fn close(&mut self, out: &mut BytesMut) {
        if self.closed {
            return;
        }
        if !self.opened {
            out.extend_from_slice(b"[");
        }
        out.extend_from_slice(b"]");
        self.closed = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split_all(input: &[u8], cut: usize) -> Vec<String> {
        let mut p = JsonArrayParser::new(1 << 20);
        let mut got = Vec::new();
        for piece in input.chunks(cut.max(1)) {
            p.push(piece, |e| got.push(String::from_utf8(e.to_vec()).unwrap()))
                .unwrap();
        }
        p.finish().unwrap();
        got
    }

    #[test]
    fn elements_come_out_whole_however_the_bytes_are_cut() {
        let input = b"[{\n  \"a\": \"x}]\\\"{\",\n  \"b\": [1, {\"c\": 2}]\n}\r\n,\r\n{\"d\": \"\\\\\"}\n]\n";
        for cut in 1..input.len() {
            let got = split_all(input, cut);
            assert_eq!(got.len(), 2, "cut {cut}");
            for e in &got {
                serde_json::from_str::<serde_json::Value>(e).unwrap();
            }
        }
    }

    #[test]
    fn malformed_streams_are_errors() {
        let mut p = JsonArrayParser::new(100);
        assert!(p.push(b"{\"a\":1}", |_| {}).is_err());
        let mut p = JsonArrayParser::new(100);
        assert!(p.push(b"[{\"a\":1} {\"b\":2}]", |_| {}).is_err());
        let mut p = JsonArrayParser::new(100);
        assert!(p.push(b"[1]", |_| {}).is_err());
        let mut p = JsonArrayParser::new(10);
        assert_eq!(
            p.push(b"[{\"aaaaaaaaaaaaaaaa\":1}]", |_| {}),
            Err(ArrayError::TooLarge(11))
        );
        let mut p = JsonArrayParser::new(100);
        p.push(b"[{\"a\":1}", |_| {}).unwrap();
        assert!(p.finish().is_err());
    }

    #[test]
    fn writer_round_trip() {
        let mut w = ArrayWriter::default();
        let mut out = BytesMut::new();
        w.element(&mut out, b"{\"a\":1}");
        w.element(&mut out, b"{\"b\":2}");
        w.close(&mut out);
        assert_eq!(&out[..], b"[{\"a\":1},\r\n{\"b\":2}]");
        let mut empty = BytesMut::new();
        ArrayWriter::default().close(&mut empty);
        assert_eq!(&empty[..], b"[]");
    }
}
