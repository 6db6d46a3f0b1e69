//! Body helpers for the data path: content types, content encodings and
//! size limits. Compressed bodies are always decoded before scanning (a
//! scanner never sees gzip bytes) and decoding is capped, so a small
//! compressed body cannot expand into gigabytes (zip bomb).

use bytes::Bytes;
use std::io::Read;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Identity,
    Gzip,
    Deflate,
    Brotli,
    Zstd,
}

impl Encoding {
    /// Parse a `Content-Encoding` header; `Err` for anything we cannot decode.
    pub fn parse(value: Option<&str>) -> Result<Encoding, String> {
        let Some(v) = value.map(str::trim).filter(|v| !v.is_empty()) else {
            return Ok(Encoding::Identity);
        };
        match v.to_ascii_lowercase().as_str() {
            "identity" => Ok(Encoding::Identity),
            "gzip" | "x-gzip" => Ok(Encoding::Gzip),
            "deflate" => Ok(Encoding::Deflate),
            "br" => Ok(Encoding::Brotli),
            "zstd" => Ok(Encoding::Zstd),
            other => Err(format!(
                "unsupported Content-Encoding {other:?} (supported: gzip, deflate, br, zstd)"
            )),
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
pub enum DecodeError {
    TooLarge,
    Corrupt(String),
}

/// Decode `data`, refusing to produce more than `limit` bytes.
pub fn decode(encoding: Encoding, data: &Bytes, limit: usize) -> Result<Bytes, DecodeError> {
    let bytes: &[u8] = data;
    let reader: Box<dyn Read + '_> = match encoding {
        // Identity bodies are shared, not copied.
        Encoding::Identity => {
            return if data.len() > limit {
                Err(DecodeError::TooLarge)
            } else {
                Ok(data.clone())
            }
        }
        Encoding::Gzip => Box::new(flate2::read::MultiGzDecoder::new(bytes)),
        Encoding::Deflate => {
            // "deflate" in HTTP means zlib-wrapped, but raw deflate is common.
            if data.first().is_some_and(|b| b & 0x0f == 8) {
                Box::new(flate2::read::ZlibDecoder::new(bytes))
            } else {
                Box::new(flate2::read::DeflateDecoder::new(bytes))
            }
        }
        Encoding::Brotli => Box::new(brotli::Decompressor::new(bytes, 4096)),
        Encoding::Zstd => Box::new(
            zstd::stream::read::Decoder::new(bytes)
                .map_err(|e| DecodeError::Corrupt(e.to_string()))?,
        ),
    };
    let mut out = Vec::with_capacity(data.len().saturating_mul(4).min(limit));
    let read = reader
        .take(limit as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| DecodeError::Corrupt(e.to_string()))?;
    if read > limit {
        return Err(DecodeError::TooLarge);
    }
    Ok(Bytes::from(out))
}

/// Bodies we can inspect are JSON. A missing content type is tolerated
/// (some clients omit it); anything else is refused with 415 rather than
/// forwarded uninspected.
pub fn is_json_content_type(value: Option<&str>) -> bool {
    match value {
        None => true,
        Some(v) => {
            let mime = v
                .split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase();
            mime.is_empty()
                || mime == "application/json"
                || mime.ends_with("+json")
                || mime == "text/json"
        }
    }
}

pub fn is_event_stream(value: Option<&str>) -> bool {
    value.is_some_and(|v| {
        v.split(';')
            .next()
            .unwrap_or("")
            .trim()
            .eq_ignore_ascii_case("text/event-stream")
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn gzip_round_trip_and_bomb_limit() {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(&vec![b'a'; 100_000]).unwrap();
        let gz = Bytes::from(enc.finish().unwrap());
        assert_eq!(decode(Encoding::Gzip, &gz, 200_000).unwrap().len(), 100_000);
        assert_eq!(
            decode(Encoding::Gzip, &gz, 1000),
            Err(DecodeError::TooLarge)
        );
        assert!(matches!(
            decode(Encoding::Gzip, &Bytes::from_static(b"not gzip"), 1000),
            Err(DecodeError::Corrupt(_))
        ));
    }

    #[test]
    fn encodings_and_types() {
        assert_eq!(Encoding::parse(Some("GZIP")), Ok(Encoding::Gzip));
        assert!(Encoding::parse(Some("compress")).is_err());
        assert!(is_json_content_type(Some(
            "application/json; charset=utf-8"
        )));
        assert!(!is_json_content_type(Some(
            "multipart/form-data; boundary=x"
        )));
        assert!(is_event_stream(Some("text/event-stream; charset=utf-8")));
    }
}
