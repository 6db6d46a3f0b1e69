//! Content codings of inspected bodies, in both directions.
//!
//! A scanner never sees compressed bytes: request and response bodies on
//! inspected routes are decoded before inspection and forwarded decoded
//! (`Content-Encoding` dropped), whatever coding the peer chose — `gzip`,
//! `deflate` (zlib-wrapped or raw, both are seen in the wild), `br`,
//! `zstd`, or a stack such as `gzip, gzip`. A coding the gateway cannot
//! decode is refused, never relayed as if inspected.
//!
//! Decoding is bounded: every decoder writes into a sink that refuses to
//! grow past the caller's limit, so a few kilobytes that inflate to
//! gigabytes (a decompression bomb) cost at most `limit` bytes of memory
//! and the time to produce them, then fail as too large.

use std::io::{self, Write};

/// One content coding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Coding {
    Gzip,
    Deflate,
    Brotli,
    Zstd,
}

/// More stacked codings than this are refused (no sender needs them, and
/// each layer multiplies the work a small body can cause).
pub const MAX_CODINGS: usize = 4;

/// The codings of a body, in the order they were applied.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Codings(Vec<Coding>);

#[derive(Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// The decoded body would exceed the limit.
    TooLarge,
    /// Not a valid stream of its coding.
    Corrupt(String),
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DecodeError::TooLarge => f.write_str("decoded body exceeds the inspection limit"),
            DecodeError::Corrupt(e) => write!(f, "body could not be decoded: {e}"),
        }
    }
}

impl Codings {
    /// No coding (identity).
    pub fn identity() -> Codings {
        Codings(Vec::new())
    }

    /// Parse every `Content-Encoding` value (a header may repeat and each
    /// may list several codings). `Err` names what cannot be decoded.
    pub fn parse<'a>(values: impl IntoIterator<Item = &'a str>) -> Result<Codings, String> {
        let mut out = Vec::new();
        for token in values.into_iter().flat_map(|v| v.split(',')) {
            let coding = match token.trim().to_ascii_lowercase().as_str() {
                "" | "identity" => continue,
                "gzip" | "x-gzip" => Coding::Gzip,
                "deflate" => Coding::Deflate,
                "br" => Coding::Brotli,
                "zstd" => Coding::Zstd,
                other => {
                    return Err(format!(
                    "unsupported Content-Encoding {other:?} (supported: gzip, deflate, br, zstd)"
                ))
                }
            };
            out.push(coding);
        }
        if out.len() > MAX_CODINGS {
            return Err(format!(
                "Content-Encoding stacks {} codings; at most {MAX_CODINGS} are decoded",
                out.len()
            ));
        }
        Ok(Codings(out))
    }

    pub fn is_identity(&self) -> bool {
        self.0.is_empty()
    }

    /// Decode a complete body, refusing to produce more than `limit` bytes.
    pub fn decode(&self, data: &bytes::Bytes, limit: usize) -> Result<bytes::Bytes, DecodeError> {
        if self.is_identity() {
            // Shared, not copied.
            return if data.len() > limit {
                Err(DecodeError::TooLarge)
            } else {
                Ok(data.clone())
            };
        }
        let mut d = self.decoder(limit);
        let mut out = d.push(data)?;
        let tail = d.finish()?;
        if out.len() + tail.len() > limit {
            return Err(DecodeError::TooLarge);
        }
        out.extend_from_slice(&tail);
        Ok(out.into())
    }

    /// An incremental decoder; each [`Decoder::push`] yields at most
    /// `limit` bytes.
    pub fn decoder(&self, limit: usize) -> Decoder {
        Decoder {
            // Undone in reverse order of application.
            stages: self.0.iter().rev().map(|c| Stage::new(*c, limit)).collect(),
        }
    }
}

/// Decodes a body chunk by chunk (event streams).
pub struct Decoder {
    stages: Vec<Stage>,
}

impl Decoder {
    /// Compressed bytes in, decoded bytes out (possibly none yet).
    pub fn push(&mut self, chunk: &[u8]) -> Result<Vec<u8>, DecodeError> {
        let mut data = chunk.to_vec();
        for stage in &mut self.stages {
            stage.write(&data)?;
            data = stage.take();
        }
        Ok(data)
    }

    /// The end of the body: what the decoders still hold. A stream cut
    /// short is an error for the codings that can tell.
    pub fn finish(&mut self) -> Result<Vec<u8>, DecodeError> {
        let mut data = Vec::new();
        for stage in &mut self.stages {
            stage.write(&data)?;
            stage.finish()?;
            data = stage.take();
        }
        Ok(data)
    }
}

/// How an inspected response body is decoded on its way to the client.
#[derive(Default)]
pub enum BodyDecoding {
    /// Not encoded: chunks pass as they are.
    #[default]
    Identity,
    Decode(Decoder),
    /// Cannot be decoded (an unknown coding, a corrupt stream): nothing
    /// of the body may be relayed.
    Refused(String),
}

impl BodyDecoding {
    /// From the response's `Content-Encoding` values; each chunk decodes
    /// to at most `limit` bytes.
    pub fn for_response<'a>(values: impl IntoIterator<Item = &'a str>, limit: usize) -> Self {
        match Codings::parse(values) {
            Ok(c) if c.is_identity() => BodyDecoding::Identity,
            Ok(c) => BodyDecoding::Decode(c.decoder(limit)),
            Err(e) => {
                BodyDecoding::Refused(format!("the upstream's answer cannot be decoded: {e}"))
            }
        }
    }

    pub fn is_identity(&self) -> bool {
        matches!(self, BodyDecoding::Identity)
    }

    /// One body chunk in (and the end of the body), decoded bytes out.
    /// `Err` says why the body cannot be inspected; it stays refused.
    pub fn step(
        &mut self,
        chunk: Option<bytes::Bytes>,
        end: bool,
    ) -> Result<Option<bytes::Bytes>, String> {
        let d = match self {
            BodyDecoding::Identity => return Ok(chunk),
            BodyDecoding::Refused(why) => return Err(why.clone()),
            BodyDecoding::Decode(d) => d,
        };
        let mut out = match &chunk {
            Some(c) => d.push(c),
            None => Ok(Vec::new()),
        };
        if end {
            out = out.and_then(|mut o| {
                o.extend(d.finish()?);
                Ok(o)
            });
        }
        match out {
            Ok(o) => Ok(Some(bytes::Bytes::from(o))),
            Err(e) => {
                let why = match e {
                    DecodeError::TooLarge => "the upstream's answer decodes to more than the inspection limit (a decompression bomb?)".to_string(),
                    DecodeError::Corrupt(e) => format!("the upstream's answer could not be decoded ({e})"),
                };
                *self = BodyDecoding::Refused(why.clone());
                Err(why)
            }
        }
    }
}

/// A writer that refuses to hold more than `cap` bytes.
struct Capped {
    buf: Vec<u8>,
    cap: usize,
}

const OVER_CAP: &str = "asg: decoded body over the limit";

impl Write for Capped {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        if self.buf.len() + b.len() > self.cap {
            return Err(io::Error::other(OVER_CAP));
        }
        self.buf.extend_from_slice(b);
        Ok(b.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

enum Stage {
    Gzip(flate2::write::MultiGzDecoder<Capped>),
    /// `deflate` before its first byte says zlib or raw.
    DeflateUnknown(usize),
    Zlib(flate2::write::ZlibDecoder<Capped>),
    RawDeflate(flate2::write::DeflateDecoder<Capped>),
    Brotli(Box<brotli::DecompressorWriter<Capped>>),
    Zstd(zstd::stream::write::Decoder<'static, Capped>),
    Failed,
}

fn capped(cap: usize) -> Capped {
    Capped {
        buf: Vec::new(),
        cap,
    }
}

fn map_err(e: io::Error) -> DecodeError {
    if e.to_string().contains(OVER_CAP) {
        DecodeError::TooLarge
    } else {
        DecodeError::Corrupt(e.to_string())
    }
}

impl Stage {
    fn new(c: Coding, cap: usize) -> Stage {
        match c {
            Coding::Gzip => Stage::Gzip(flate2::write::MultiGzDecoder::new(capped(cap))),
            Coding::Deflate => Stage::DeflateUnknown(cap),
            Coding::Brotli => {
                Stage::Brotli(Box::new(brotli::DecompressorWriter::new(capped(cap), 4096)))
            }
            Coding::Zstd => match zstd::stream::write::Decoder::new(capped(cap)) {
                Ok(d) => Stage::Zstd(d),
                Err(_) => Stage::Failed,
            },
        }
    }

    fn write(&mut self, data: &[u8]) -> Result<(), DecodeError> {
        if data.is_empty() {
            return Ok(());
        }
        if let Stage::DeflateUnknown(cap) = *self {
            // "deflate" means zlib-wrapped, but raw deflate is common: a
            // zlib stream starts with a CM = 8 byte.
            *self = if data[0] & 0x0f == 8 {
                Stage::Zlib(flate2::write::ZlibDecoder::new(capped(cap)))
            } else {
                Stage::RawDeflate(flate2::write::DeflateDecoder::new(capped(cap)))
            };
        }
        let r = match self {
            Stage::Gzip(d) => d.write_all(data),
            Stage::Zlib(d) => d.write_all(data),
            Stage::RawDeflate(d) => d.write_all(data),
            Stage::Brotli(d) => d.write_all(data),
            Stage::Zstd(d) => d.write_all(data),
            Stage::DeflateUnknown(_) => Ok(()),
            Stage::Failed => Err(io::Error::other("decoder unavailable")),
        };
        r.map_err(|e| {
            *self = Stage::Failed;
            map_err(e)
        })
    }

    fn finish(&mut self) -> Result<(), DecodeError> {
        let r = match self {
            Stage::Gzip(d) => d.try_finish(),
            Stage::Zlib(d) => d.try_finish(),
            Stage::RawDeflate(d) => d.try_finish(),
            Stage::Brotli(d) => d.close(),
            Stage::Zstd(d) => d.flush(),
            Stage::DeflateUnknown(_) => Ok(()),
            Stage::Failed => Err(io::Error::other("decoder unavailable")),
        };
        r.map_err(map_err)
    }

    fn take(&mut self) -> Vec<u8> {
        let sink = match self {
            Stage::Gzip(d) => d.get_mut(),
            Stage::Zlib(d) => d.get_mut(),
            Stage::RawDeflate(d) => d.get_mut(),
            Stage::Brotli(d) => d.get_mut(),
            Stage::Zstd(d) => d.get_mut(),
            Stage::DeflateUnknown(_) | Stage::Failed => return Vec::new(),
        };
        std::mem::take(&mut sink.buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &[u8] = b"{\"choices\":[{\"message\":{\"content\":\"AKIAIOSFODNN7EXAMPLE\"}}]}";

    pub(crate) fn encode(c: Coding, data: &[u8]) -> Vec<u8> {
        match c {
            Coding::Gzip => {
                let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                e.write_all(data).unwrap();
                e.finish().unwrap()
            }
            Coding::Deflate => {
                let mut e =
                    flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
                e.write_all(data).unwrap();
                e.finish().unwrap()
            }
            Coding::Brotli => {
                let mut out = Vec::new();
                {
                    let mut w = brotli::CompressorWriter::new(&mut out, 4096, 5, 22);
                    w.write_all(data).unwrap();
                }
                out
            }
            Coding::Zstd => zstd::stream::encode_all(data, 1).unwrap(),
        }
    }

    #[test]
    fn parses_lists_and_refuses_the_unknown() {
        assert_eq!(
            Codings::parse(["gzip, GZIP", "identity"]).unwrap(),
            Codings(vec![Coding::Gzip, Coding::Gzip])
        );
        assert!(Codings::parse([""]).unwrap().is_identity());
        assert!(Codings::parse(["compress"]).is_err());
        assert!(Codings::parse(["gzip, gzip, gzip, gzip, gzip"]).is_err());
    }

    #[test]
    fn every_coding_and_stacks_round_trip() {
        for c in [Coding::Gzip, Coding::Deflate, Coding::Brotli, Coding::Zstd] {
            let codings = Codings(vec![c]);
            assert_eq!(
                codings.decode(&encode(c, TEXT).into(), 1 << 20).unwrap(),
                TEXT,
                "{c:?}"
            );
        }
        // Raw deflate (no zlib wrapper), as some servers send.
        let mut e = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(TEXT).unwrap();
        let raw = e.finish().unwrap();
        assert_eq!(
            Codings(vec![Coding::Deflate])
                .decode(&raw.into(), 1 << 20)
                .unwrap(),
            TEXT
        );
        // `gzip, br`: gzip first, then br; undone br first.
        let stacked = encode(Coding::Brotli, &encode(Coding::Gzip, TEXT));
        let codings = Codings::parse(["gzip, br"]).unwrap();
        assert_eq!(codings.decode(&stacked.into(), 1 << 20).unwrap(), TEXT);
    }

    #[test]
    fn chunk_by_chunk_equals_whole() {
        for c in [Coding::Gzip, Coding::Deflate, Coding::Brotli, Coding::Zstd] {
            let body: Vec<u8> = (0..2000)
                .flat_map(|i| format!("data: {{\"n\":{i}}}\n\n").into_bytes())
                .collect();
            let enc = encode(c, &body);
            let mut d = Codings(vec![c, c]).decoder(1 << 20);
            let twice = encode(c, &enc);
            let mut out = Vec::new();
            for piece in twice.chunks(7) {
                out.extend(d.push(piece).unwrap());
            }
            out.extend(d.finish().unwrap());
            assert_eq!(out, body, "{c:?}");
        }
    }

    #[test]
    fn bombs_stop_at_the_limit() {
        let zeros = vec![b'A'; 8 << 20];
        for c in [Coding::Gzip, Coding::Deflate, Coding::Brotli, Coding::Zstd] {
            let bomb = encode(c, &zeros);
            assert!(bomb.len() * 50 < zeros.len(), "{c:?}: {}", bomb.len());
            assert_eq!(
                Codings(vec![c]).decode(&bomb.clone().into(), 1 << 20),
                Err(DecodeError::TooLarge),
                "{c:?}"
            );
            let mut d = Codings(vec![c]).decoder(1 << 20);
            assert_eq!(d.push(&bomb), Err(DecodeError::TooLarge), "{c:?}");
        }
    }

    #[test]
    fn corrupt_and_truncated_bodies_are_errors() {
        for c in [Coding::Gzip, Coding::Deflate, Coding::Brotli, Coding::Zstd] {
            assert!(
                matches!(
                    Codings(vec![c]).decode(
                        &bytes::Bytes::from_static(b"this is not compressed at all"),
                        1 << 20
                    ),
                    Err(DecodeError::Corrupt(_))
                ),
                "{c:?}"
            );
        }
        let gz = encode(Coding::Gzip, TEXT);
        assert!(Codings(vec![Coding::Gzip])
            .decode(&bytes::Bytes::copy_from_slice(&gz[..gz.len() - 6]), 1 << 20)
            .is_err());
    }
}
