//! The WebSocket frame reader and message assembler (the Responses
//! WebSocket transport): whatever the chunking, the same frames and the
//! same refusal; the frames are the input's bytes in order, nothing held
//! but the frame being received; a frame's payload re-encoded reads back
//! the same; a message is its fragments' payloads joined, never past the
//! bound.

use crate::input::{pieces, Input};
use asg::datapath::ws::frame::{encode, unmask, Assembler, FrameReader, RawFrame, WsError};
use bytes::BytesMut;

const MAX_FRAME: usize = 4096;
const MAX_MESSAGE: usize = 6000;

struct Read {
    frames: Vec<RawFrame>,
    error: Option<WsError>,
    pending: usize,
}

fn read(from_client: bool, chunks: &[&[u8]]) -> Read {
    let mut r = FrameReader::new(from_client, MAX_FRAME);
    let mut frames = Vec::new();
    for c in chunks {
        if let Err(e) = r.push(c, |f| {
            frames.push(f);
            Ok(())
        }) {
            return Read {
                frames,
                error: Some(e),
                pending: r.pending(),
            };
        }
    }
    Read {
        frames,
        error: None,
        pending: r.pending(),
    }
}

fn same_frames(a: &[RawFrame], b: &[RawFrame]) {
    assert_eq!(a.len(), b.len(), "chunking changed the number of frames");
    for (x, y) in a.iter().zip(b) {
        assert_eq!(x.header, y.header, "chunking changed a header");
        assert_eq!(x.payload, y.payload, "chunking changed a payload");
        assert_eq!(x.raw, y.raw, "chunking changed a frame's bytes");
    }
}

pub fn run(data: &[u8]) {
    let mut inp = Input::new(data);
    let from_client = inp.byte() & 1 == 1;
    let n = 1 + inp.below(8);
    let cuts = inp.cuts(n, 64);
    let body = inp.rest();

    let whole = read(from_client, &[body]);
    let split = read(from_client, &pieces(body, &cuts));
    same_frames(&whole.frames, &split.frames);
    assert_eq!(whole.error, split.error, "chunking changed the refusal");

    // Frames are the input's bytes, in order; only the frame being received is held.
    let consumed: Vec<u8> = whole.frames.iter().flat_map(|f| f.raw.to_vec()).collect();
    assert!(
        body.starts_with(&consumed),
        "frames are not the input's bytes"
    );
    if whole.error.is_none() {
        assert_eq!(whole.pending, body.len() - consumed.len(), "bytes lost");
        assert!(whole.pending <= MAX_FRAME + 14, "held past one frame");
    }

    for f in &whole.frames {
        assert!(f.payload.len() <= MAX_FRAME, "frame past its bound");
        // The payload is the frame's last bytes, unmasked.
        assert!(f.raw.len() >= f.payload.len());
        let mut tail = f.raw[f.raw.len() - f.payload.len()..].to_vec();
        if let Some(mask) = f.header.mask {
            unmask(&mut tail, mask);
        }
        assert_eq!(tail, f.payload.as_ref(), "payload is not the frame's bytes");
        // The gateway's own frames read back as they were meant.
        let mut out = BytesMut::new();
        encode(&mut out, f.header.opcode, &f.payload, from_client);
        let again = read(from_client, &[&out]);
        assert!(
            again.error.is_none(),
            "own frame refused: {:?}",
            again.error
        );
        assert_eq!(again.frames.len(), 1);
        assert_eq!(again.frames[0].payload, f.payload, "re-encoded payload");
        assert_eq!(again.frames[0].header.opcode, f.header.opcode);
    }

    // Messages: the data frames' payloads joined, from the frame that opens
    // one to the final fragment, never beyond the bound.
    let mut asm = Assembler::default();
    let mut joined: Vec<u8> = Vec::new();
    let mut raws = 0usize;
    for f in whole.frames.iter().filter(|f| !f.is_control()) {
        let part = f.payload.clone();
        match asm.push(f.clone(), MAX_MESSAGE) {
            Ok(None) => {
                joined.extend_from_slice(&part);
                raws += 1;
                assert!(asm.in_message(), "a fragment without a message");
            }
            Ok(Some(m)) => {
                joined.extend_from_slice(&part);
                raws += 1;
                assert_eq!(
                    m.payload.as_ref(),
                    joined.as_slice(),
                    "message != fragments"
                );
                assert!(m.payload.len() <= MAX_MESSAGE, "message past its bound");
                assert_eq!(m.raws.len(), raws, "a fragment's bytes lost");
                assert!(!asm.in_message());
                joined.clear();
                raws = 0;
            }
            Err(_) => break,
        }
    }
}
