//! Content codings for tests of encoded answers: encode a body as an upstream would, and read
//! an answer as a client that decodes whatever `Content-Encoding` says would.

use crate::http::Resp;
use std::io::{Read, Write};

/// Apply `codings` (a `Content-Encoding` value) to `data`, in order. A coding
/// it does not implement (`compress`) leaves the bytes as they are, so a
/// probe can label a body with a coding the gateway cannot decode.
pub fn encode(codings: &str, data: &[u8]) -> Vec<u8> {
    let mut out = data.to_vec();
    for c in codings.split(',').map(str::trim) {
        out = match c {
            "gzip" => {
                let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                e.write_all(&out).unwrap();
                e.finish().unwrap()
            }
            "deflate" => {
                let mut e =
                    flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
                e.write_all(&out).unwrap();
                e.finish().unwrap()
            }
            "br" => {
                let mut o = Vec::new();
                {
                    let mut w = brotli::CompressorWriter::new(&mut o, 4096, 5, 22);
                    w.write_all(&out).unwrap();
                }
                o
            }
            "zstd" => zstd::stream::encode_all(&out[..], 1).unwrap(),
            _ => out,
        };
    }
    out
}

/// What a client that decodes whatever `Content-Encoding` says would read.
pub fn client_view(resp: &Resp) -> String {
    let mut body = resp.body.clone();
    if let Some(codings) = resp.header("content-encoding") {
        for c in codings.rsplit(',').map(str::trim) {
            let mut out = Vec::new();
            let ok = match c {
                "gzip" => flate2::read::MultiGzDecoder::new(&body[..])
                    .read_to_end(&mut out)
                    .is_ok(),
                "deflate" => flate2::read::ZlibDecoder::new(&body[..])
                    .read_to_end(&mut out)
                    .is_ok(),
                "br" => brotli::Decompressor::new(&body[..], 4096)
                    .read_to_end(&mut out)
                    .is_ok(),
                "zstd" => zstd::stream::read::Decoder::new(&body[..])
                    .and_then(|mut d| d.read_to_end(&mut out))
                    .is_ok(),
                _ => false,
            };
            if !ok {
                break;
            }
            body = out;
        }
    }
    String::from_utf8_lossy(&body).into_owned()
}
