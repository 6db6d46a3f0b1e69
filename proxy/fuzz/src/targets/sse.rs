//! The incremental SSE parser: whatever the chunking, the same events; no
//! byte lost or duplicated; field parsing never fails on what it framed.

use crate::input::{pieces, Input};
use asg::datapath::stream::sse::SseParser;

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

pub fn run(data: &[u8]) {
    let mut inp = Input::new(data);
    let n = 1 + inp.below(8);
    let cuts = inp.cuts(n, 64);
    let body = inp.rest();
    let whole = events_of(&[body]);
    let split = events_of(&pieces(body, &cuts));
    assert_eq!(whole, split, "chunking changed the events");
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
