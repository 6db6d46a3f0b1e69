//! The incremental SSE parser: whatever the chunking, the same events; no
//! byte lost or duplicated; field parsing never fails on what it framed.

use crate::input::{pieces, Input};
use asg::datapath::stream::sse::{RawEvent, SseParser};

type Events = (Vec<Vec<u8>>, Option<Vec<u8>>);

fn events_of(chunks: &[&[u8]]) -> Events {
    let mut p = SseParser::new(usize::MAX);
    let mut events = Vec::new();
    let mut fed = 0;
    for c in chunks {
        fed += c.len();
        p.push(c, |e| {
            // Framed events always parse (or are reported as non-UTF-8).
            if let Some(f) = e.fields() {
                if let Some(d) = &f.data {
                    assert!(d.len() <= e.raw.len());
                }
            }
            let _ = e.is_comment_only();
            events.push(e.raw.to_vec());
        })
        .expect("no event limit");
        // Only the event being received is held.
        let framed: usize = events.iter().map(Vec::len).sum();
        assert_eq!(p.buffered(), fed - framed);
    }
    (events, p.finish().map(|e| e.raw.to_vec()))
}

/// What a client makes of an event: its fields (a line break that may
/// open the next event's bytes when a CRLF is split across reads changes
/// nothing here: a leading blank line carries no field).
fn meaning(raw: &[u8]) -> String {
    let ev = RawEvent {
        raw: bytes::Bytes::copy_from_slice(raw),
    };
    match ev.fields() {
        Some(f) => format!(
            "{:?} {:?} {:?} {:?} {}",
            f.event,
            f.data,
            f.id,
            f.retry,
            ev.is_comment_only()
        ),
        None => {
            // Passed on as bytes: the same bytes, up to the line breaks around.
            let brk = |b: &u8| matches!(b, b'\n' | b'\r');
            let start = raw.iter().position(|b| !brk(b)).unwrap_or(raw.len());
            let end = raw.iter().rposition(|b| !brk(b)).map_or(start, |e| e + 1);
            format!("{:?}", &raw[start..end.max(start)])
        }
    }
}

pub fn run(data: &[u8]) {
    let mut inp = Input::new(data);
    let n = 1 + inp.below(8);
    let cuts = inp.cuts(n, 64);
    let body = inp.rest();
    let whole = events_of(&[body]);
    let split = events_of(&pieces(body, &cuts));
    let meanings =
        |e: &Events| -> Vec<String> { e.0.iter().chain(&e.1).map(|r| meaning(r)).collect() };
    let (a, b) = (meanings(&whole), meanings(&split));
    if let Some(i) = (0..a.len().max(b.len())).find(|&i| a.get(i) != b.get(i)) {
        panic!(
            "chunking changed event {i}: {:?} (at once) vs {:?} (in pieces)",
            a.get(i),
            b.get(i)
        );
    }
    // The same bytes reach the client, up to line breaks after the last event.
    let bytes_of = |e: &Events| {
        let mut b = [e.0.concat(), e.1.clone().unwrap_or_default()].concat();
        while matches!(b.last(), Some(b'\n' | b'\r')) {
            b.pop();
        }
        b
    };
    assert_eq!(
        bytes_of(&whole),
        bytes_of(&split),
        "chunking changed the bytes"
    );
    let bytes: Vec<u8> = whole.0.concat();
    assert!(body.starts_with(&bytes), "events are not the input's bytes");
    let rest = &body[bytes.len()..];
    match &whole.1 {
        Some(last) => assert_eq!(last.as_slice(), rest, "unterminated event"),
        None => assert!(
            rest.iter().all(|b| matches!(b, b'\n' | b'\r')),
            "bytes dropped: {rest:?}"
        ),
    }
    for e in &whole.0 {
        // An event ends with its blank line.
        assert!(matches!(e.last(), Some(b'\n' | b'\r')), "{e:?}");
    }
}
