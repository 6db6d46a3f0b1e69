//! Body content decoding (`gzip`, `deflate`, `br`, `zstd`): never more
//! than the limit, whatever the input; what was encoded decodes back
//! exactly when it fits, and is refused as too large when it does not.

use crate::input::Input;
use asg::datapath::body::{decode, DecodeError, Encoding};
use bytes::Bytes;
use std::io::Write;

const ENCODINGS: [Encoding; 5] = [
    Encoding::Identity,
    Encoding::Gzip,
    Encoding::Deflate,
    Encoding::Brotli,
    Encoding::Zstd,
];

fn encode(e: Encoding, data: &[u8], raw_deflate: bool) -> Vec<u8> {
    match e {
        Encoding::Identity => data.to_vec(),
        Encoding::Gzip => {
            let mut w = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            w.write_all(data).unwrap();
            w.finish().unwrap()
        }
        Encoding::Deflate if raw_deflate => {
            let mut w = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::fast());
            w.write_all(data).unwrap();
            w.finish().unwrap()
        }
        Encoding::Deflate => {
            let mut w = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
            w.write_all(data).unwrap();
            w.finish().unwrap()
        }
        Encoding::Brotli => {
            let mut out = Vec::new();
            {
                let mut w = brotli::CompressorWriter::new(&mut out, 4096, 1, 22);
                w.write_all(data).unwrap();
            }
            out
        }
        Encoding::Zstd => zstd::stream::encode_all(data, 1).unwrap(),
    }
}

pub fn run(data: &[u8]) {
    let mut inp = Input::new(data);
    let mode = inp.byte();
    let e = ENCODINGS[(mode % 5) as usize];
    let limit = inp.below(1 << 16);
    let payload = inp.rest();
    // Arbitrary bytes as an encoded body.
    if let Ok(out) = decode(e, &Bytes::copy_from_slice(payload), limit) {
        assert!(out.len() <= limit, "{} > {limit}", out.len());
    }
    // Real encodings of the payload.
    let encoded = encode(e, payload, mode & 0x80 != 0);
    let raw_deflate = e == Encoding::Deflate && mode & 0x80 != 0;
    match decode(e, &Bytes::from(encoded), limit) {
        Ok(out) => {
            assert!(payload.len() <= limit);
            assert_eq!(&out[..], payload, "{e:?} round trip");
        }
        Err(DecodeError::TooLarge) => assert!(
            payload.len() > limit,
            "{e:?}: refused {} <= {limit}",
            payload.len()
        ),
        // Raw deflate whose first byte happens to look like a zlib header
        // is read as zlib (HTTP's "deflate" is ambiguous).
        Err(DecodeError::Corrupt(_)) if raw_deflate => {}
        Err(DecodeError::Corrupt(m)) => panic!("{e:?}: our own encoding refused: {m}"),
    }
}
