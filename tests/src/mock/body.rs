//! Response plans and the streaming body that writes them piece by piece.
//!
//! A handler produces a [`Plan`]: status, headers and the body as a list of pieces (one piece per SSE
//! event for streams, a single piece for JSON). The transport knobs (`x-mock-gzip`, `x-mock-chunk`,
//! `x-mock-delay-ms`, `x-mock-close-midstream`) are applied afterwards by [`Plan::into_response`], so
//! every route and dialect honours them the same way.

use bytes::{Bytes, BytesMut};
use flate2::{write::GzEncoder, Compression};
use http_body::{Body, Frame, SizeHint};
use hyper::{header, HeaderMap, Response, StatusCode};
use std::collections::VecDeque;
use std::future::Future;
use std::io::Write;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::time::Sleep;

pub const SSE: &str = "text/event-stream; charset=utf-8";
pub const JSON: &str = "application/json";

#[derive(Debug)]
pub struct Plan {
    pub status: StatusCode,
    pub content_type: Option<&'static str>,
    pub headers: HeaderMap,
    pub pieces: Vec<Bytes>,
    /// A stream: the delay knob applies between pieces (otherwise before the response).
    pub streaming: bool,
}

/// Transport-level knobs, parsed from the request headers.
#[derive(Clone, Copy, Debug, Default)]
pub struct Transport {
    pub delay: Duration,
    pub chunk: Option<usize>,
    pub gzip: bool,
    pub close_midstream: bool,
}

impl Plan {
    pub fn json(status: StatusCode, body: String) -> Plan {
        Plan {
            status,
            content_type: Some(JSON),
            headers: HeaderMap::new(),
            pieces: vec![Bytes::from(body)],
            streaming: false,
        }
    }

    pub fn sse(events: Vec<Bytes>) -> Plan {
        Plan {
            status: StatusCode::OK,
            content_type: Some(SSE),
            headers: HeaderMap::new(),
            pieces: events,
            streaming: true,
        }
    }

    pub fn empty(status: StatusCode) -> Plan {
        Plan {
            status,
            content_type: None,
            headers: HeaderMap::new(),
            pieces: Vec::new(),
            streaming: false,
        }
    }

    pub fn header(mut self, name: &'static str, value: &str) -> Plan {
        if let Ok(v) = value.parse() {
            self.headers.insert(name, v);
        }
        self
    }

    pub fn body_len(&self) -> usize {
        self.pieces.iter().map(Bytes::len).sum()
    }

    /// Apply the transport knobs and build the hyper response. The non-streaming delay is applied by
    /// the caller (it happens before any byte is sent).
    pub fn into_response(self, t: &Transport) -> Response<MockBody> {
        let mut pieces = self.pieces;
        if t.close_midstream {
            pieces = truncate_for_close(pieces);
        }
        if t.gzip && !pieces.is_empty() {
            pieces = gzip_pieces(&pieces, !t.close_midstream);
        }
        let separate = t.chunk.is_some() || (self.streaming && !t.delay.is_zero());
        if let Some(n) = t.chunk {
            pieces = rechunk(&pieces, n);
        }
        let exact = (!t.close_midstream && !self.streaming && t.chunk.is_none())
            .then(|| pieces.iter().map(|p| p.len() as u64).sum());
        let body = MockBody {
            pieces: pieces.into(),
            delay: if self.streaming {
                t.delay
            } else {
                Duration::ZERO
            },
            separate,
            sleep: None,
            pause: false,
            fail_at_end: t.close_midstream,
            exact,
        };
        let mut resp = Response::new(body);
        *resp.status_mut() = self.status;
        let h = resp.headers_mut();
        *h = self.headers;
        if let Some(ct) = self.content_type {
            h.insert(header::CONTENT_TYPE, header::HeaderValue::from_static(ct));
        }
        if self.streaming {
            h.insert(
                header::CACHE_CONTROL,
                header::HeaderValue::from_static("no-cache"),
            );
        }
        if t.gzip {
            h.insert(
                header::CONTENT_ENCODING,
                header::HeaderValue::from_static("gzip"),
            );
        }
        resp
    }
}

/// Keep the first half of the pieces of a stream (at least one), or the first half of the bytes of a
/// single-piece body: the connection is dropped after them.
fn truncate_for_close(mut pieces: Vec<Bytes>) -> Vec<Bytes> {
    match pieces.len() {
        0 => pieces,
        1 => {
            let p = &pieces[0];
            vec![p.slice(..p.len() / 2)]
        }
        n => {
            pieces.truncate(n.div_ceil(2));
            pieces
        }
    }
}

/// Gzip the body as one member, sync-flushing after every piece so each piece can be decoded as soon
/// as it arrives (like a compressing streaming server). `finish` adds the gzip trailer.
fn gzip_pieces(pieces: &[Bytes], finish: bool) -> Vec<Bytes> {
    let mut enc = GzEncoder::new(Vec::new(), Compression::fast());
    let mut out = Vec::with_capacity(pieces.len() + 1);
    for p in pieces {
        enc.write_all(p).expect("gzip to memory");
        enc.flush().expect("gzip flush to memory");
        out.push(Bytes::from(std::mem::take(enc.get_mut())));
    }
    if finish {
        let tail = enc.finish().expect("gzip finish");
        if !tail.is_empty() {
            out.push(Bytes::from(tail));
        }
    }
    out.retain(|p| !p.is_empty());
    out
}

fn rechunk(pieces: &[Bytes], n: usize) -> Vec<Bytes> {
    let mut all = BytesMut::with_capacity(pieces.iter().map(Bytes::len).sum());
    for p in pieces {
        all.extend_from_slice(p);
    }
    let all = all.freeze();
    (0..all.len())
        .step_by(n)
        .map(|i| all.slice(i..(i + n).min(all.len())))
        .collect()
}

/// The response body: yields its pieces one per frame. With `separate`, it returns `Pending` between
/// pieces (after a sleep when a delay is set), which makes hyper write and flush each piece on its own
/// (each becomes its own HTTP chunk). With `fail_at_end`, the body errors after its pieces, which makes
/// hyper drop the connection without the terminating chunk.
pub struct MockBody {
    pieces: VecDeque<Bytes>,
    delay: Duration,
    separate: bool,
    sleep: Option<Pin<Box<Sleep>>>,
    pause: bool,
    fail_at_end: bool,
    exact: Option<u64>,
}

impl MockBody {
    fn arm_pause(&mut self, before_close: bool) {
        if !self.delay.is_zero() {
            self.sleep = Some(Box::pin(tokio::time::sleep(self.delay)));
        } else if before_close {
            // Give hyper time to flush the partial body before the connection is dropped.
            self.sleep = Some(Box::pin(tokio::time::sleep(Duration::from_millis(20))));
        } else {
            self.pause = true;
        }
    }
}

impl Body for MockBody {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        if let Some(sleep) = this.sleep.as_mut() {
            if sleep.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            this.sleep = None;
        } else if this.pause {
            this.pause = false;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        match this.pieces.pop_front() {
            Some(piece) => {
                let last = this.pieces.is_empty();
                if !last && this.separate {
                    this.arm_pause(false);
                } else if last && this.fail_at_end {
                    this.arm_pause(true);
                }
                Poll::Ready(Some(Ok(Frame::data(piece))))
            }
            None if this.fail_at_end => {
                this.fail_at_end = false;
                Poll::Ready(Some(Err("mock-upstream: x-mock-close-midstream".into())))
            }
            None => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.pieces.is_empty() && !self.fail_at_end && self.sleep.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        match self.exact {
            Some(n) => SizeHint::with_exact(n),
            None => SizeHint::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn gzip_pieces_decode_to_the_original() {
        let pieces = vec![
            Bytes::from_static(b"data: a\n\n"),
            Bytes::from_static(b"data: b\n\n"),
        ];
        let gz: Vec<u8> = gzip_pieces(&pieces, true).concat();
        let mut out = String::new();
        flate2::read::GzDecoder::new(&gz[..])
            .read_to_string(&mut out)
            .unwrap();
        assert_eq!(out, "data: a\n\ndata: b\n\n");
    }

    #[test]
    fn rechunk_cuts_anywhere() {
        let pieces = vec![Bytes::from_static(b"abcde"), Bytes::from_static(b"fg")];
        let out = rechunk(&pieces, 3);
        assert_eq!(
            out,
            vec![
                Bytes::from_static(b"abc"),
                Bytes::from_static(b"def"),
                Bytes::from_static(b"g")
            ]
        );
    }

    #[test]
    fn close_keeps_a_prefix() {
        let one = truncate_for_close(vec![Bytes::from_static(b"{\"a\":12345}")]);
        assert_eq!(one, vec![Bytes::from_static(b"{\"a\":")]);
        let many = truncate_for_close((0..5).map(|i| Bytes::from(i.to_string())).collect());
        assert_eq!(many.len(), 3);
    }
}
