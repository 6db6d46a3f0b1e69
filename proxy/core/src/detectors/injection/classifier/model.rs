//! The model file: a versioned, checksummed binary written by `make model`
//! (`policies/models/train/train.py`).
//!
//! ```text
//! magic        8 bytes  "ASGINJM\x01"
//! header_len   u32 LE
//! header       JSON: name, features, heads (bias, scale, thresholds),
//!              payload_sha256
//! payload      per head, 1 << buckets_log2 little-endian i16 (weight / scale)
//! ```
//!
//! Weights are quantized to i16 with one scale per head: 512 KiB per head at
//! 2^18 buckets, small enough for git and for the CPU cache (i8 lost the
//! model: a few large weights set the scale and rounded most others to 0).
//! Every check that can fail names the file and what to do.

use super::features::FeatureSpec;
use serde::Deserialize;
use sha2::{Digest, Sha256};

pub const MAGIC: &[u8; 8] = b"ASGINJM\x02";

/// The two heads: text written by the user (or the model) and text that
/// arrived as data (tool results, retrieved documents).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Head {
    Direct,
    Indirect,
}

impl Head {
    pub fn as_str(self) -> &'static str {
        match self {
            Head::Direct => "direct",
            Head::Indirect => "indirect",
        }
    }
}

/// Probability thresholds of a head's severity bands.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Band {
    pub medium: f64,
    pub high: f64,
}

impl Band {
    pub fn validate(&self) -> Result<(), String> {
        let ok = |p: f64| p > 0.0 && p < 1.0;
        if !ok(self.medium) || !ok(self.high) || self.medium > self.high {
            return Err(format!(
                "thresholds must satisfy 0 < medium <= high < 1 (got medium {}, high {})",
                self.medium, self.high
            ));
        }
        Ok(())
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct HeaderFeatures {
    buckets_log2: u8,
    char_min: u8,
    char_max: u8,
    word_max: u8,
    window_bytes: usize,
    #[serde(default)]
    piece_windows: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct HeaderHead {
    name: String,
    bias: f32,
    scale: f32,
    thresholds: Band,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Header {
    format: u32,
    name: String,
    features: HeaderFeatures,
    heads: Vec<HeaderHead>,
    payload_sha256: String,
    /// Free-form provenance (training data digest, date); not interpreted.
    #[serde(default)]
    trained: serde_json::Value,
}

#[derive(Debug)]
pub struct HeadWeights {
    pub weights: Vec<i16>,
    pub scale: f32,
    pub bias: f32,
    pub thresholds: Band,
}

#[derive(Debug)]
pub struct Model {
    pub name: String,
    /// `<name>@<first 12 hex of the payload digest>`: shown in findings.
    pub version: String,
    pub spec: FeatureSpec,
    pub direct: HeadWeights,
    pub indirect: HeadWeights,
}

impl Model {
    pub fn head(&self, head: Head) -> &HeadWeights {
        match head {
            Head::Direct => &self.direct,
            Head::Indirect => &self.indirect,
        }
    }

    /// Parse and validate a model file. `origin` names it in errors.
    pub fn parse(bytes: &[u8], origin: &str) -> Result<Model, String> {
        let fail = |what: String| {
            format!(
                "injection model {origin}: {what}; rebuild it with `make model` or point \
                 [injection.classifier] model_file at a valid model"
            )
        };
        if bytes.len() < 12 || &bytes[..8] != MAGIC {
            return Err(fail("not an asg injection model (bad magic)".into()));
        }
        let len = u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes")) as usize;
        let header_end = 12usize
            .checked_add(len)
            .filter(|e| *e <= bytes.len())
            .ok_or_else(|| fail("truncated header".into()))?;
        let header: Header = serde_json::from_slice(&bytes[12..header_end])
            .map_err(|e| fail(format!("bad header: {e}")))?;
        if header.format != 2 {
            return Err(fail(format!(
                "format {} is not supported by this asg (expects 2)",
                header.format
            )));
        }
        let f = &header.features;
        let spec = FeatureSpec {
            buckets_log2: f.buckets_log2,
            char_min: f.char_min,
            char_max: f.char_max,
            word_max: f.word_max,
            window_bytes: f.window_bytes,
            piece_windows: f.piece_windows,
        };
        spec.validate().map_err(fail)?;
        let names: Vec<&str> = header.heads.iter().map(|h| h.name.as_str()).collect();
        if names != ["direct", "indirect"] {
            return Err(fail(format!(
                "heads must be [\"direct\", \"indirect\"], found {names:?}"
            )));
        }
        let payload = &bytes[header_end..];
        let buckets = spec.buckets();
        if payload.len() != buckets * 4 {
            return Err(fail(format!(
                "payload is {} bytes, expected {} (2 heads x {buckets} buckets x 2 bytes): truncated or corrupt",
                payload.len(),
                buckets * 4
            )));
        }
        let digest = hex::encode(Sha256::digest(payload));
        if !digest.eq_ignore_ascii_case(&header.payload_sha256) {
            return Err(fail(
                "payload checksum mismatch: the file is corrupt".into(),
            ));
        }
        let mut heads = header.heads.into_iter().enumerate().map(|(i, h)| {
            let ok = h.scale.is_finite() && h.scale > 0.0 && h.bias.is_finite();
            if !ok {
                return Err(fail(format!(
                    "head {} has an invalid scale or bias",
                    h.name
                )));
            }
            h.thresholds
                .validate()
                .map_err(|e| fail(format!("head {}: {e}", h.name)))?;
            let weights = payload[i * buckets * 2..(i + 1) * buckets * 2]
                .chunks_exact(2)
                .map(|b| i16::from_le_bytes([b[0], b[1]]))
                .collect();
            Ok(HeadWeights {
                weights,
                scale: h.scale,
                bias: h.bias,
                thresholds: h.thresholds,
            })
        });
        let direct = heads.next().expect("two heads")?;
        let indirect = heads.next().expect("two heads")?;
        let _ = header.trained;
        Ok(Model {
            version: format!("{}@{}", header.name, &digest[..12]),
            name: header.name,
            spec,
            direct,
            indirect,
        })
    }
}

/// Tiny model files for tests (here and in the app layer's reload tests,
/// through the `testing` feature).
#[cfg(any(test, feature = "testing"))]
pub mod testkit {
    use super::*;

    /// A model file with the given weights (tests build their own tiny
    /// models; the shipped one is tested separately).
    pub fn build(spec: &FeatureSpec, direct: &[i16], indirect: &[i16], bias: f32) -> Vec<u8> {
        let mut payload: Vec<u8> = direct.iter().flat_map(|w| w.to_le_bytes()).collect();
        payload.extend(indirect.iter().flat_map(|w| w.to_le_bytes()));
        let header = serde_json::json!({
            "format": 2,
            "name": "test",
            "features": {
                "buckets_log2": spec.buckets_log2, "char_min": spec.char_min,
                "char_max": spec.char_max, "word_max": spec.word_max,
                "window_bytes": spec.window_bytes, "piece_windows": spec.piece_windows
            },
            "heads": [
                {"name": "direct", "bias": bias, "scale": 0.1, "thresholds": {"medium": 0.6, "high": 0.9}},
                {"name": "indirect", "bias": bias, "scale": 0.1, "thresholds": {"medium": 0.6, "high": 0.9}}
            ],
            "payload_sha256": hex::encode(Sha256::digest(&payload)),
        })
        .to_string();
        let mut out = MAGIC.to_vec();
        out.extend((header.len() as u32).to_le_bytes());
        out.extend(header.as_bytes());
        out.extend(payload);
        out
    }

    pub fn spec() -> FeatureSpec {
        FeatureSpec {
            buckets_log2: 10,
            char_min: 2,
            char_max: 4,
            word_max: 2,
            window_bytes: 128,
            piece_windows: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::testkit::{build, spec};
    use super::*;

    #[test]
    fn valid_file_parses() {
        let s = spec();
        let bytes = build(&s, &vec![1; 1024], &vec![-1; 1024], -2.0);
        let m = Model::parse(&bytes, "t.bin").unwrap();
        assert_eq!(m.spec, s);
        assert_eq!(m.direct.weights[0], 1);
        assert_eq!(m.indirect.weights[0], -1);
        assert!(m.version.starts_with("test@"));
    }

    #[test]
    fn corrupt_files_name_the_problem() {
        let s = spec();
        let good = build(&s, &vec![1; 1024], &vec![-1; 1024], -2.0);
        let err = Model::parse(b"hello", "m.bin").unwrap_err();
        assert!(err.contains("m.bin") && err.contains("bad magic"), "{err}");
        assert!(err.contains("make model"), "{err}");
        let mut flipped = good.clone();
        *flipped.last_mut().unwrap() ^= 0x55;
        let err = Model::parse(&flipped, "m.bin").unwrap_err();
        assert!(err.contains("checksum"), "{err}");
        let err = Model::parse(&good[..good.len() - 10], "m.bin").unwrap_err();
        assert!(err.contains("truncated or corrupt"), "{err}");
        let mut bad_header = good.clone();
        bad_header[14] = b'#';
        let err = Model::parse(&bad_header, "m.bin").unwrap_err();
        assert!(err.contains("bad header"), "{err}");
    }
}
