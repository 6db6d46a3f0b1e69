//! Body content decoding (`gzip`, `deflate`, `br`, `zstd`, and stacks of
//! them such as `gzip, br`), at once and chunk by chunk: never more than
//! the limit, whatever the input; chunk by chunk gives what decoding at
//! once gives; what was encoded decodes back exactly when every layer
//! fits the limit, and is refused as too large when one does not.

use crate::input::{pieces, Input};
use asg::datapath::encoding::{Codings, DecodeError};
use bytes::Bytes;
use std::io::Write;

const NAMES: [&str; 4] = ["gzip", "deflate", "br", "zstd"];

fn encode(name: &str, data: &[u8], raw_deflate: bool) -> Vec<u8> {
    match name {
        "gzip" => {
            let mut w = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            w.write_all(data).unwrap();
            w.finish().unwrap()
        }
        "deflate" if raw_deflate => {
            let mut w = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::fast());
            w.write_all(data).unwrap();
            w.finish().unwrap()
        }
        "deflate" => {
            let mut w = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
            w.write_all(data).unwrap();
            w.finish().unwrap()
        }
        "br" => {
            let mut out = Vec::new();
            {
                let mut w = brotli::CompressorWriter::new(&mut out, 4096, 1, 22);
                w.write_all(data).unwrap();
            }
            out
        }
        _ => zstd::stream::encode_all(data, 1).unwrap(),
    }
}

/// Decoded chunk by chunk; `None` when the decoder refused.
fn chunked(c: &Codings, body: &[u8], cuts: &[usize], limit: usize) -> Option<Vec<u8>> {
    let mut d = c.decoder(limit);
    let mut out = Vec::new();
    for p in pieces(body, cuts) {
        let o = d.push(p).ok()?;
        assert!(
            c.is_identity() || o.len() <= limit,
            "a chunk decoded past the limit"
        );
        out.extend(o);
    }
    let o = d.finish().ok()?;
    assert!(
        c.is_identity() || o.len() <= limit,
        "the end decoded past the limit"
    );
    out.extend(o);
    Some(out)
}

pub fn run(data: &[u8]) {
    let mut inp = Input::new(data);
    let mode = inp.byte();
    let picks = inp.byte();
    // Zero to three codings, in the order they were applied.
    let names: Vec<&str> = (0..(mode & 3) as usize)
        .map(|i| NAMES[((picks >> (2 * i)) & 3) as usize])
        .collect();
    let raw_deflate = mode & 0x80 != 0;
    let limit = inp.below(1 << 16);
    let n = 1 + inp.below(4);
    let cuts = inp.cuts(n, 512);
    let payload = inp.rest();
    let c = Codings::parse([names.join(", ").as_str()]).expect("known codings parse");

    // Arbitrary bytes as an encoded body.
    let whole = c.decode(&Bytes::copy_from_slice(payload), limit);
    if let Ok(out) = &whole {
        assert!(out.len() <= limit, "{} > {limit}", out.len());
        let got = chunked(&c, payload, &cuts, limit);
        assert_eq!(
            got.as_deref(),
            Some(&out[..]),
            "{names:?}: chunk by chunk differs from at once"
        );
    }

    // Real encodings of the payload; every layer must fit the limit.
    let mut body = payload.to_vec();
    let mut largest = body.len();
    for (i, name) in names.iter().enumerate() {
        body = encode(name, &body, raw_deflate);
        if i + 1 < names.len() {
            largest = largest.max(body.len());
        }
    }
    let deflate_guess = raw_deflate && names.contains(&"deflate");
    match c.decode(&Bytes::from(body.clone()), limit) {
        Ok(out) => {
            assert!(
                largest <= limit,
                "{names:?}: a layer of {largest} > {limit} accepted"
            );
            assert_eq!(&out[..], payload, "{names:?} round trip");
            let got = chunked(&c, &body, &cuts, limit);
            assert_eq!(got.as_deref(), Some(payload), "{names:?} chunk by chunk");
        }
        Err(DecodeError::TooLarge) => assert!(
            largest > limit,
            "{names:?}: refused as too large, every layer <= {limit}"
        ),
        // Raw deflate whose first byte happens to look like a zlib header
        // is read as zlib (HTTP's "deflate" is ambiguous).
        Err(DecodeError::Corrupt(_)) if deflate_guess => {}
        Err(DecodeError::Corrupt(m)) => panic!("{names:?}: our own encoding refused: {m}"),
    }
}
