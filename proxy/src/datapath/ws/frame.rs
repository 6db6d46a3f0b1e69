//! WebSocket framing (RFC 6455) for a proxy that reads every message: an
//! incremental reader that turns bytes cut anywhere into frames, a message
//! assembler for fragmented data, and frame encoding. Header parsing and
//! formatting are tungstenite's; the reader keeps each frame's own bytes
//! so frames passed on unchanged are relayed byte for byte.

use bytes::{Buf, Bytes, BytesMut};
use std::io::Cursor;
use tungstenite::protocol::frame::coding::{Control, Data, OpCode};
use tungstenite::protocol::frame::{Frame, FrameHeader};

/// Why a connection cannot be inspected further. The text is the close
/// reason sent to both sides (at most 123 bytes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WsError {
    pub code: u16,
    pub reason: &'static str,
}

impl WsError {
    pub const PROTOCOL: u16 = 1002;
    pub const UNSUPPORTED: u16 = 1003;
    pub const POLICY: u16 = 1008;
    pub const TOO_BIG: u16 = 1009;
    /// Try Again Later (IANA WebSocket close code registry).
    pub const TRY_AGAIN: u16 = 1013;

    fn protocol(reason: &'static str) -> Self {
        WsError {
            code: Self::PROTOCOL,
            reason,
        }
    }
}

/// One frame: its header, unmasked payload, and the exact bytes it came in.
#[derive(Debug, Clone)]
pub struct RawFrame {
    pub header: FrameHeader,
    pub payload: Bytes,
    pub raw: Bytes,
}

impl RawFrame {
    pub fn is_control(&self) -> bool {
        matches!(self.header.opcode, OpCode::Control(_))
    }
}

/// Turns a byte stream into frames.
pub struct FrameReader {
    buf: BytesMut,
    /// Frames from the client must be masked, frames from the server not.
    from_client: bool,
    max_frame: usize,
}

impl FrameReader {
    pub fn new(from_client: bool, max_frame: usize) -> Self {
        FrameReader {
            buf: BytesMut::new(),
            from_client,
            max_frame,
        }
    }

    /// Bytes held that are not yet a whole frame.
    pub fn pending(&self) -> usize {
        self.buf.len()
    }

    /// Feed bytes; every complete frame goes to `f`.
    pub fn push(
        &mut self,
        chunk: &[u8],
        mut f: impl FnMut(RawFrame) -> Result<(), WsError>,
    ) -> Result<(), WsError> {
        self.buf.extend_from_slice(chunk);
        loop {
            let mut cur = Cursor::new(&self.buf[..]);
            let (header, len) = match FrameHeader::parse(&mut cur) {
                Ok(Some(h)) => h,
                Ok(None) => return Ok(()),
                Err(_) => return Err(WsError::protocol("malformed frame header")),
            };
            let head = cur.position() as usize;
            if len > self.max_frame as u64 {
                return Err(WsError {
                    code: WsError::TOO_BIG,
                    reason: "frame exceeds the gateway inspection limit",
                });
            }
            let total = head + len as usize;
            if self.buf.len() < total {
                return Ok(());
            }
            if header.mask.is_some() != self.from_client {
                return Err(WsError::protocol(if self.from_client {
                    "client frames must be masked"
                } else {
                    "server frames must not be masked"
                }));
            }
            if header.rsv1 || header.rsv2 || header.rsv3 {
                // No extension was negotiated (the offer is removed), so a
                // compressed frame cannot be inspected: refused.
                return Err(WsError::protocol(
                    "frames with reserved bits (extensions) are not accepted",
                ));
            }
            if let OpCode::Control(_) = header.opcode {
                if !header.is_final || len > 125 {
                    return Err(WsError::protocol("invalid control frame"));
                }
            }
            let raw = self.buf.split_to(total).freeze();
            let mut payload = raw.slice(head..);
            if let Some(mask) = header.mask {
                let mut p = payload.to_vec();
                unmask(&mut p, mask);
                payload = Bytes::from(p);
            }
            f(RawFrame {
                header,
                payload,
                raw,
            })?;
        }
    }
}

/// XOR with the 4-byte key (RFC 6455 §5.3).
pub fn unmask(buf: &mut [u8], mask: [u8; 4]) {
    for (i, b) in buf.iter_mut().enumerate() {
        *b ^= mask[i & 3];
    }
}

/// Data messages put together from their fragments.
#[derive(Default)]
pub struct Assembler {
    opcode: Option<Data>,
    payload: BytesMut,
    /// The frames as received, for relaying an unchanged message as it came.
    raws: Vec<Bytes>,
}

/// A complete data message.
pub struct Message {
    pub text: bool,
    pub payload: Bytes,
    pub raws: Vec<Bytes>,
}

impl Assembler {
    /// A data frame in; a message out when this frame completes one.
    pub fn push(&mut self, frame: RawFrame, max: usize) -> Result<Option<Message>, WsError> {
        let OpCode::Data(op) = frame.header.opcode else {
            return Err(WsError::protocol("control frame given to the assembler"));
        };
        match (op, self.opcode) {
            (Data::Continue, None) => {
                return Err(WsError::protocol("continuation frame without a message"))
            }
            (Data::Continue, Some(_)) => {}
            (Data::Text | Data::Binary, None) => self.opcode = Some(op),
            (Data::Text | Data::Binary, Some(_)) => {
                return Err(WsError::protocol("new message before the last one ended"))
            }
            (Data::Reserved(_), _) => return Err(WsError::protocol("reserved opcode")),
        }
        if self.payload.len() + frame.payload.len() > max {
            return Err(WsError {
                code: WsError::TOO_BIG,
                reason: "message exceeds the gateway inspection limit",
            });
        }
        self.payload.extend_from_slice(&frame.payload);
        self.raws.push(frame.raw);
        if !frame.header.is_final {
            return Ok(None);
        }
        let text = self.opcode.take() == Some(Data::Text);
        Ok(Some(Message {
            text,
            payload: std::mem::take(&mut self.payload).freeze(),
            raws: std::mem::take(&mut self.raws),
        }))
    }

    /// A fragmented message is being received.
    pub fn in_message(&self) -> bool {
        self.opcode.is_some()
    }
}

/// Encode one unfragmented frame; `masked` for client-to-server frames.
pub fn encode(out: &mut BytesMut, opcode: OpCode, payload: &[u8], masked: bool) {
    let header = FrameHeader {
        is_final: true,
        rsv1: false,
        rsv2: false,
        rsv3: false,
        opcode,
        mask: masked.then(rand::random::<[u8; 4]>),
    };
    let frame = Frame::from_payload(header, Bytes::copy_from_slice(payload));
    let mut v = Vec::with_capacity(payload.len() + 14);
    // Writing to a Vec cannot fail.
    let _ = frame.format(&mut v);
    out.extend_from_slice(&v);
}

pub fn text(out: &mut BytesMut, payload: &[u8], masked: bool) {
    encode(out, OpCode::Data(Data::Text), payload, masked);
}

/// A close frame with a status code and reason.
pub fn close(out: &mut BytesMut, code: u16, reason: &str, masked: bool) {
    let mut p = Vec::with_capacity(2 + reason.len());
    p.extend_from_slice(&code.to_be_bytes());
    p.extend_from_slice(&reason.as_bytes()[..reason.len().min(123)]);
    encode(out, OpCode::Control(Control::Close), &p, masked);
}

/// The status code of a close frame's payload, if it has one.
pub fn close_code(payload: &[u8]) -> Option<u16> {
    (payload.len() >= 2).then(|| (&payload[..2]).get_u16())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(bytes: &[u8], from_client: bool, cut: usize) -> Vec<RawFrame> {
        let mut r = FrameReader::new(from_client, 1 << 20);
        let mut got = Vec::new();
        for piece in bytes.chunks(cut.max(1)) {
            r.push(piece, |f| {
                got.push(f);
                Ok(())
            })
            .unwrap();
        }
        assert_eq!(r.pending(), 0);
        got
    }

    #[test]
    fn masked_frames_round_trip_at_every_cut() {
        let mut wire = BytesMut::new();
        let long = "x".repeat(70_000);
        for p in ["hello", "", &long] {
            text(&mut wire, p.as_bytes(), true);
        }
        close(&mut wire, 1000, "bye", true);
        for cut in [1, 2, 3, 7, 125, 126, 65_536, wire.len()] {
            let got = frames(&wire, true, cut);
            assert_eq!(got.len(), 4, "cut {cut}");
            assert_eq!(&got[0].payload[..], b"hello");
            assert_eq!(got[2].payload.len(), 70_000);
            assert_eq!(close_code(&got[3].payload), Some(1000));
            let raw_total: usize = got.iter().map(|f| f.raw.len()).sum();
            assert_eq!(raw_total, wire.len(), "frames keep their exact bytes");
        }
    }

    #[test]
    fn fragments_assemble_and_protocol_errors_are_refused() {
        let mut a = Assembler::default();
        let frag = |op, fin, p: &str| RawFrame {
            header: FrameHeader {
                is_final: fin,
                opcode: OpCode::Data(op),
                ..FrameHeader::default()
            },
            payload: Bytes::from(p.to_string()),
            raw: Bytes::new(),
        };
        assert!(a
            .push(frag(Data::Text, false, "{\"a\":"), 100)
            .unwrap()
            .is_none());
        assert!(a.in_message());
        let m = a
            .push(frag(Data::Continue, true, "1}"), 100)
            .unwrap()
            .unwrap();
        assert!(m.text);
        assert_eq!(&m.payload[..], b"{\"a\":1}");
        assert_eq!(m.raws.len(), 2);
        assert!(a.push(frag(Data::Continue, true, "x"), 100).is_err());
        assert!(a
            .push(frag(Data::Text, true, &"y".repeat(101)), 100)
            .is_err());

        // Unmasked client frame, masked server frame, compressed frame.
        let mut plain = BytesMut::new();
        text(&mut plain, b"hi", false);
        assert!(FrameReader::new(true, 100)
            .push(&plain, |_| Ok(()))
            .is_err());
        let mut masked = BytesMut::new();
        text(&mut masked, b"hi", true);
        assert!(FrameReader::new(false, 100)
            .push(&masked, |_| Ok(()))
            .is_err());
        let mut rsv = plain.clone();
        rsv[0] |= 0x40;
        assert!(FrameReader::new(false, 100).push(&rsv, |_| Ok(())).is_err());
        let mut big = BytesMut::new();
        text(&mut big, &[b'z'; 200], false);
        assert_eq!(
            FrameReader::new(false, 100)
                .push(&big, |_| Ok(()))
                .unwrap_err()
                .code,
            WsError::TOO_BIG
        );
    }
}
