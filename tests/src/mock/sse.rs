//! Server-side SSE framing helpers shared by the dialect modules.

use super::json::J;
use bytes::Bytes;

/// `event: <name>\ndata: <json>\n\n` (Responses, Anthropic, MCP).
pub fn named(event: &str, data: &J) -> Bytes {
    Bytes::from(format!("event: {event}\ndata: {}\n\n", data.to_json()))
}

/// `data: <json>\n\n` (Chat Completions).
pub fn data(data: &J) -> Bytes {
    Bytes::from(format!("data: {}\n\n", data.to_json()))
}

/// `data: <raw>\n\n`, e.g. `data: [DONE]`.
pub fn data_raw(raw: &str) -> Bytes {
    Bytes::from(format!("data: {raw}\n\n"))
}

/// Split an SSE body into events, each ending after its blank line (LF or CRLF framing). Trailing bytes
/// without a final blank line become a last piece.
pub fn split_events(body: &Bytes) -> Vec<Bytes> {
    let mut pieces = Vec::new();
    let mut start = 0;
    let b = &body[..];
    let mut i = 0;
    while i < b.len() {
        let end = if b[i..].starts_with(b"\n\n") {
            Some(i + 2)
        } else if b[i..].starts_with(b"\r\n\r\n") {
            Some(i + 4)
        } else {
            None
        };
        match end {
            Some(e) => {
                pieces.push(body.slice(start..e));
                start = e;
                i = e;
            }
            None => i += 1,
        }
    }
    if start < b.len() {
        pieces.push(body.slice(start..));
    }
    pieces
}

/// Deterministic base62 padding like OpenAI's `obfuscation` field (random-looking, varying length).
pub fn obfuscation(seed: u64) -> String {
    const ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407)
        | 1;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let len = 4 + (next() % 12) as usize;
    (0..len)
        .map(|_| ALPHABET[(next() % 62) as usize] as char)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_lf_and_crlf_events() {
        let body = Bytes::from_static(b"data: a\n\nevent: x\r\ndata: b\r\n\r\ntail");
        let parts = split_events(&body);
        assert_eq!(
            parts,
            vec![
                Bytes::from_static(b"data: a\n\n"),
                Bytes::from_static(b"event: x\r\ndata: b\r\n\r\n"),
                Bytes::from_static(b"tail"),
            ]
        );
    }

    #[test]
    fn obfuscation_is_base62_and_deterministic() {
        let a = obfuscation(7);
        assert_eq!(a, obfuscation(7));
        assert!(a.len() >= 4 && a.chars().all(|c| c.is_ascii_alphanumeric()));
    }
}
