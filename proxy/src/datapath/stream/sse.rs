//! Incremental Server-Sent Events framing.
//!
//! Upstream reads cut events (and the JSON inside them) anywhere. The
//! parser keeps only the bytes of the event being received, hands out each
//! complete event as soon as its blank line arrives, and never buffers more
//! than one event. Lines may end in LF, CRLF or CR (the SSE spec allows
//! all three), including a CRLF split across two reads.

use bytes::{Bytes, BytesMut};
use std::borrow::Cow;

/// One complete event: its exact bytes (blank line included) and fields.
#[derive(Debug, Clone)]
pub struct RawEvent {
    pub raw: Bytes,
}

/// An event's fields, borrowed from [`RawEvent::raw`] where possible.
#[derive(Debug, Default)]
pub struct Fields<'a> {
    /// `event:` (the SSE event type), if any.
    pub event: Option<&'a str>,
    /// `data:` lines joined with `\n`; `None` when the event had none.
    pub data: Option<Cow<'a, str>>,
    pub id: Option<&'a str>,
    pub retry: Option<&'a str>,
}

impl RawEvent {
    /// Parse the fields; `None` when the event is not UTF-8 (passed on
    /// untouched by callers that cannot inspect it).
    pub fn fields(&self) -> Option<Fields<'_>> {
        let text = std::str::from_utf8(&self.raw).ok()?;
        let mut f = Fields::default();
        for line in lines(text) {
            if line.is_empty() || line.starts_with(':') {
                continue;
            }
            let (name, value) = match line.find(':') {
                Some(i) => {
                    let v = &line[i + 1..];
                    (&line[..i], v.strip_prefix(' ').unwrap_or(v))
                }
                None => (line, ""),
            };
            match name {
                "event" => f.event = Some(value),
                "data" => {
                    f.data = Some(match f.data.take() {
                        None => Cow::Borrowed(value),
                        Some(prev) => Cow::Owned(format!("{prev}\n{value}")),
                    })
                }
                "id" => f.id = Some(value),
                "retry" => f.retry = Some(value),
                _ => {}
            }
        }
        Some(f)
    }

    /// Only comments and blank lines (keep-alives such as `: ping`).
    pub fn is_comment_only(&self) -> bool {
        match std::str::from_utf8(&self.raw) {
            Ok(t) => lines(t).all(|l| l.is_empty() || l.starts_with(':')),
            Err(_) => false,
        }
    }
}

/// Split on LF, CRLF or CR.
fn lines(text: &str) -> impl Iterator<Item = &str> {
    let bytes = text.as_bytes();
    let mut pos = 0;
    std::iter::from_fn(move || {
        if pos >= bytes.len() {
            return None;
        }
        let start = pos;
        let mut i = pos;
        while i < bytes.len() && bytes[i] != b'\n' && bytes[i] != b'\r' {
            i += 1;
        }
        let line = &text[start..i];
        pos = i;
        if pos < bytes.len() {
            pos += if bytes[pos] == b'\r' && bytes.get(pos + 1) == Some(&b'\n') {
                2
            } else {
                1
            };
        }
        Some(line)
    })
}

/// The event being received grew past the limit without a blank line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventTooLarge(pub usize);

pub struct SseParser {
    buf: BytesMut,
    /// Bytes of `buf` already scanned for line ends.
    scanned: usize,
    /// The current line has at least one byte.
    line_has_bytes: bool,
    /// The last byte scanned was a CR: a following LF belongs to it.
    after_cr: bool,
    max_event: usize,
}

impl SseParser {
    pub fn new(max_event: usize) -> Self {
        SseParser {
            buf: BytesMut::new(),
            scanned: 0,
            line_has_bytes: false,
            after_cr: false,
            max_event,
        }
    }

    /// Bytes held for the event being received.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Feed upstream bytes; `on_event` receives every event completed by them.
    pub fn push(
        &mut self,
        chunk: &[u8],
        mut on_event: impl FnMut(RawEvent),
    ) -> Result<(), EventTooLarge> {
        self.buf.extend_from_slice(chunk);
        let mut i = self.scanned;
        while i < self.buf.len() {
            let b = self.buf[i];
            i += 1;
            match b {
                b'\n' if self.after_cr => {
                    // Second half of a CRLF whose CR ended the line already
                    // (when the CR closed an event, this LF opens the next
                    // event's bytes, which is what the client would see).
                    self.after_cr = false;
                }
                b'\n' | b'\r' => {
                    self.after_cr = b == b'\r';
                    if self.line_has_bytes {
                        self.line_has_bytes = false;
                    } else {
                        // Blank line: the event is complete. A CR that may
                        // be followed by LF stays with this event when the
                        // LF is already here.
                        if b == b'\r' && self.buf.get(i) == Some(&b'\n') {
                            i += 1;
                            self.after_cr = false;
                        }
                        let raw = self.buf.split_to(i).freeze();
                        i = 0;
                        on_event(RawEvent { raw });
                    }
                }
                _ => {
                    self.after_cr = false;
                    self.line_has_bytes = true;
                }
            }
        }
        self.scanned = i;
        if self.buf.len() > self.max_event {
            return Err(EventTooLarge(self.buf.len()));
        }
        Ok(())
    }

    /// The upstream ended: an unterminated last event, if any (the SSE spec
    /// says to discard it; callers decide).
    pub fn finish(&mut self) -> Option<RawEvent> {
        self.scanned = 0;
        self.line_has_bytes = false;
        self.after_cr = false;
        let rest = std::mem::take(&mut self.buf).freeze();
        let meaningful = rest.iter().any(|b| !matches!(b, b'\n' | b'\r'));
        meaningful.then_some(RawEvent { raw: rest })
    }
}

/// Append one event in canonical form (`event:` line if any, one `data:`
/// line, blank line). `data` must not contain a line break (compact JSON
/// never does).
pub fn write_event(out: &mut BytesMut, event: Option<&str>, id: Option<&str>, data: &str) {
    if let Some(e) = event {
        out.extend_from_slice(b"event: ");
        out.extend_from_slice(e.as_bytes());
        out.extend_from_slice(b"\n");
    }
    if let Some(id) = id {
        out.extend_from_slice(b"id: ");
        out.extend_from_slice(id.as_bytes());
        out.extend_from_slice(b"\n");
    }
    for line in data.split('\n') {
        out.extend_from_slice(b"data: ");
        out.extend_from_slice(line.as_bytes());
        out.extend_from_slice(b"\n");
    }
    out.extend_from_slice(b"\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(parts: &[&[u8]]) -> Vec<String> {
        let mut p = SseParser::new(1 << 20);
        let mut out = Vec::new();
        for part in parts {
            p.push(part, |e| {
                out.push(String::from_utf8(e.raw.to_vec()).unwrap())
            })
            .unwrap();
        }
        out
    }

    fn data_of(raw: &str) -> Option<String> {
        let e = RawEvent {
            raw: Bytes::from(raw.to_string()),
        };
        e.fields().unwrap().data.map(|d| d.into_owned())
    }

    #[test]
    fn events_split_anywhere_come_out_whole() {
        let body = b"event: a\ndata: {\"x\":1}\n\ndata: two\r\n\r\n: comment\n\ndata: three\r\rdata: 4\n\n";
        let whole = collect(&[body]);
        assert_eq!(whole.len(), 5, "{whole:?}");
        for cut in 0..body.len() {
            let (a, b) = body.split_at(cut);
            let split = collect(&[a, b]);
            let datas: Vec<_> = split.iter().map(|r| data_of(r)).collect();
            let want: Vec<_> = whole.iter().map(|r| data_of(r)).collect();
            assert_eq!(datas, want, "cut at {cut}");
            // Nothing is lost or duplicated.
            let joined: String = split.concat();
            assert_eq!(joined.len(), body.len(), "cut at {cut}");
        }
        // One byte at a time.
        let bytes: Vec<&[u8]> = body.chunks(1).collect();
        assert_eq!(collect(&bytes).len(), 5);
    }

    #[test]
    fn fields_follow_the_spec() {
        let f = RawEvent {
            raw: Bytes::from_static(
                b"event: message\nid: 7\ndata:first\ndata: second\nretry: 5\n\n",
            ),
        };
        let f = f.fields().unwrap();
        assert_eq!(f.event, Some("message"));
        assert_eq!(f.id, Some("7"));
        assert_eq!(f.retry, Some("5"));
        assert_eq!(f.data.as_deref(), Some("first\nsecond"));
    }

    #[test]
    fn oversized_event_is_an_error_and_finish_returns_the_tail() {
        let mut p = SseParser::new(8);
        assert!(p.push(b"data: 0123456789", |_| {}).is_err());
        let mut p = SseParser::new(64);
        p.push(b"data: tail", |_| panic!("not complete")).unwrap();
        assert_eq!(&p.finish().unwrap().raw[..], b"data: tail");
        assert!(p.finish().is_none());
    }

    #[test]
    fn write_event_round_trips() {
        let mut out = BytesMut::new();
        write_event(&mut out, Some("ping"), None, "{\"type\":\"ping\"}");
        assert_eq!(&out[..], b"event: ping\ndata: {\"type\":\"ping\"}\n\n");
        let events = collect(&[&out]);
        assert_eq!(data_of(&events[0]).as_deref(), Some("{\"type\":\"ping\"}"));
    }
}
