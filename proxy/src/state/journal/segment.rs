//! Journal segment files: CRC-framed records, zero-filled ahead of use.
//!
//! A frame is `[len u32][crc32 u32][seq u64][session len u16][session][json]`
//! (little endian); `len` counts the bytes after the 8-byte head and the
//! CRC covers them. A segment is created full of zeros so that appending
//! never grows the file: `fdatasync` then has no size change to commit
//! and costs one data write. Reading stops at the first frame that is
//! empty (the zeros), runs past the end or fails its CRC: a torn tail can
//! only hold records nobody was told were durable.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Bytes zero-filled per segment (~20,000 records of a few hundred bytes).
pub const SEGMENT_BYTES: u64 = 8 * 1024 * 1024;
const HEAD: usize = 8;
const EXT: &str = "seg";

/// One decoded frame, borrowing from the segment's bytes.
#[derive(Debug, PartialEq, Eq)]
pub struct Frame<'a> {
    pub seq: u64,
    pub session: &'a str,
    pub json: &'a [u8],
}

/// Append one frame to `out`.
#[cfg(test)]
pub fn frame(out: &mut Vec<u8>, seq: u64, session: &str, json: &[u8]) {
    let start = begin(out, seq, session);
    out.extend_from_slice(json);
    finish(out, start);
}

/// Start a frame at the end of `out`: the caller appends the JSON, then
/// calls [`finish`] with the returned start.
pub fn begin(out: &mut Vec<u8>, seq: u64, session: &str) -> usize {
    let sid = &session.as_bytes()[..session.len().min(u16::MAX as usize)];
    let start = out.len();
    out.extend_from_slice(&[0; HEAD]);
    out.extend_from_slice(&seq.to_le_bytes());
    out.extend_from_slice(&(sid.len() as u16).to_le_bytes());
    out.extend_from_slice(sid);
    start
}

/// Fill in the length and CRC of the frame that starts at `start`.
pub fn finish(out: &mut [u8], start: usize) {
    let len = (out.len() - start - HEAD) as u32;
    let crc = crc32fast::hash(&out[start + HEAD..]);
    out[start..start + 4].copy_from_slice(&len.to_le_bytes());
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
}

/// The valid frames at the start of `bytes`, and where they end.
pub fn frames(bytes: &[u8]) -> (Vec<Frame<'_>>, usize) {
    let mut out = Vec::new();
    let mut pos = 0;
    while let Some(head) = bytes.get(pos..pos + HEAD) {
        let len = u32::from_le_bytes(head[..4].try_into().unwrap()) as usize;
        let crc = u32::from_le_bytes(head[4..].try_into().unwrap());
        let Some(body) = bytes.get(pos + HEAD..pos + HEAD + len) else {
            break;
        };
        if len < 10 || crc32fast::hash(body) != crc {
            break;
        }
        let seq = u64::from_le_bytes(body[..8].try_into().unwrap());
        let sid_len = u16::from_le_bytes(body[8..10].try_into().unwrap()) as usize;
        let Some(sid) = body.get(10..10 + sid_len) else {
            break;
        };
        let Ok(session) = std::str::from_utf8(sid) else {
            break;
        };
        out.push(Frame {
            seq,
            session,
            json: &body[10 + sid_len..],
        });
        pos += HEAD + len;
    }
    (out, pos)
}

/// Segment files in `dir`, oldest first (names are the first seq in hex).
pub fn list(dir: &Path) -> io::Result<Vec<PathBuf>> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == EXT))
        .collect();
    out.sort();
    Ok(out)
}

/// Create a zero-filled segment whose first record will be `first_seq`,
/// durable (file and directory entry) before it is used.
pub fn create(dir: &Path, first_seq: u64) -> io::Result<File> {
    let path = dir.join(format!("{first_seq:016x}.{EXT}"));
    let mut f = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(&path)?;
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..SEGMENT_BYTES / zeros.len() as u64 {
        f.write_all(&zeros)?;
    }
    f.sync_all()?;
    File::open(dir)?.sync_all()?;
    Ok(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_stop_at_zeros_and_torn_tails() {
        let mut buf = Vec::new();
        frame(&mut buf, 7, "s-1", br#"{"seq":7}"#);
        frame(&mut buf, 8, "", br#"{"seq":8}"#);
        let whole = buf.len();
        buf.extend_from_slice(&[0; 64]);
        let (got, end) = frames(&buf);
        assert_eq!(end, whole);
        assert_eq!(
            got,
            [
                Frame {
                    seq: 7,
                    session: "s-1",
                    json: br#"{"seq":7}"#
                },
                Frame {
                    seq: 8,
                    session: "",
                    json: br#"{"seq":8}"#
                }
            ]
        );
        // A torn second frame (cut short) and a flipped bit both end the log.
        let (got, _) = frames(&buf[..whole - 3]);
        assert_eq!(got.len(), 1);
        let mut flipped = buf.clone();
        flipped[whole - 2] ^= 1;
        assert_eq!(frames(&flipped).0.len(), 1);
    }
}
