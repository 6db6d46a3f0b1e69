//! Request paths as an upstream might read them, before routing.
//!
//! Routes and dialects are chosen by path, and servers disagree on what a
//! path means: some decode `%2F` into `/`, some decode twice, some drop
//! `;params` (Tomcat, Spring) or resolve `..` after dropping them, some
//! treat `\` as `/`, most collapse `//`, many match case-insensitively.
//! If the gateway read `/V1/CHAT/COMPLETIONS` or `/v1%2fchat%2fcompletions`
//! as an unknown path it would pass it through uninspected to an upstream
//! that may serve it as chat completions.
//!
//! So the gateway routes on the most permissive reading: percent-decoded
//! (up to [`MAX_DECODE_LAYERS`] layers; more is refused), backslashes as
//! slashes, empty and `.` segments dropped, `..` resolved, compared without
//! case and without a trailing slash, once with `;params` dropped and once
//! with them kept. When that reading is an inspected API path, the request
//! is inspected as such and the upstream receives that clean path (case
//! kept), so it serves exactly what was inspected.

use std::borrow::Cow;

/// Layers of percent-encoding decoded; a path still encoded after these
/// is refused (no client needs `%25252F`).
pub const MAX_DECODE_LAYERS: usize = 3;

/// One reading of a request path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reading {
    /// Decoded and normalised, case kept: what the upstream receives.
    pub clean: String,
    /// `clean` in lower case: what routes and dialects are matched on.
    pub key: String,
}

/// The readings of a path: `;params` dropped, then (when it differs)
/// kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NormPath {
    pub readings: Vec<Reading>,
    /// The raw path was not already in its clean form (beyond case and a
    /// trailing slash): the upstream should get the clean form.
    pub rewritten: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathError {
    /// More layers of percent-encoding than any client uses.
    TooManyEncodings,
}

impl std::fmt::Display for PathError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PathError::TooManyEncodings => write!(
                f,
                "the request path is percent-encoded more than {MAX_DECODE_LAYERS} times; send it decoded"
            ),
        }
    }
}

/// Normalise a request path (without its query string).
pub fn normalize(raw: &str) -> Result<NormPath, PathError> {
    // The common case costs one scan: nothing to decode or resolve.
    if is_plain(raw) {
        let clean = match raw.trim_end_matches('/') {
            "" => "/",
            p => p,
        };
        return Ok(NormPath {
            readings: vec![Reading {
                clean: clean.to_string(),
                key: clean.to_ascii_lowercase(),
            }],
            rewritten: false,
        });
    }
    let decoded = decode_layers(raw)?;
    let slashed = decoded.replace('\\', "/");
    let stripped = resolve(&slashed, true);
    let mut readings = vec![reading(stripped)];
    let kept = resolve(&slashed, false);
    if kept != readings[0].clean {
        readings.push(reading(kept));
    }
    let rewritten = readings[0].clean != raw.trim_end_matches('/');
    Ok(NormPath {
        readings,
        rewritten,
    })
}

fn reading(clean: String) -> Reading {
    Reading {
        key: clean.to_ascii_lowercase(),
        clean,
    }
}

/// No byte that any reading would change (besides case and a trailing
/// slash): no `%`, `;`, `\`, `//`, nor `.` / `..` segments.
fn is_plain(raw: &str) -> bool {
    let Some(rest) = raw.strip_prefix('/') else {
        return false;
    };
    if rest.bytes().any(|c| matches!(c, b'%' | b';' | b'\\')) {
        return false;
    }
    let mut segs = rest.split('/').peekable();
    while let Some(seg) = segs.next() {
        let last = segs.peek().is_none();
        if seg == "." || seg == ".." || (seg.is_empty() && !last) {
            return false;
        }
    }
    true
}

/// Percent-decode until nothing changes, at most [`MAX_DECODE_LAYERS`]
/// times. Bytes that are not UTF-8 after decoding become U+FFFD (they
/// can match no route).
fn decode_layers(raw: &str) -> Result<String, PathError> {
    let mut cur: Cow<'_, str> = Cow::Borrowed(raw);
    for _ in 0..MAX_DECODE_LAYERS {
        match decode_once(&cur) {
            Some(next) => cur = Cow::Owned(next),
            None => return Ok(cur.into_owned()),
        }
    }
    match decode_once(&cur) {
        Some(_) => Err(PathError::TooManyEncodings),
        None => Ok(cur.into_owned()),
    }
}

/// One layer of percent-decoding; `None` when there was nothing to decode.
fn decode_once(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let hex = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(b.len());
    let mut changed = false;
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push(h << 4 | l);
                i += 3;
                changed = true;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    changed.then(|| String::from_utf8_lossy(&out).into_owned())
}

/// Drop empty and `.` segments, resolve `..` (never above the root), and
/// (when `strip_params`) cut each segment at its first `;`.
fn resolve(path: &str, strip_params: bool) -> String {
    let mut segs: Vec<&str> = Vec::new();
    for seg in path.split('/') {
        let seg = if strip_params {
            seg.split(';').next().unwrap_or_default()
        } else {
            seg
        };
        match seg {
            "" | "." => {}
            ".." => {
                segs.pop();
            }
            s => segs.push(s),
        }
    }
    let mut out = String::with_capacity(path.len() + 1);
    for s in &segs {
        out.push('/');
        out.push_str(s);
    }
    if out.is_empty() {
        out.push('/');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(raw: &str) -> Vec<String> {
        normalize(raw)
            .unwrap()
            .readings
            .into_iter()
            .map(|r| r.key)
            .collect()
    }

    #[test]
    fn plain_paths_cost_nothing_and_keep_their_spelling() {
        let n = normalize("/v1/chat/completions").unwrap();
        assert!(!n.rewritten);
        assert_eq!(n.readings[0].clean, "/v1/chat/completions");
        let n = normalize("/V1/Responses/").unwrap();
        assert!(!n.rewritten, "case and a trailing slash are not rewritten");
        assert_eq!(n.readings[0].key, "/v1/responses");
        assert_eq!(normalize("/").unwrap().readings[0].key, "/");
    }

    #[test]
    fn every_spelling_reads_as_the_api_path() {
        for raw in [
            "/v1/chat/completions",
            "/V1/CHAT/COMPLETIONS",
            "/v1/chat/completions/",
            "/v1/chat/completions;x",
            "/v1/chat;a=b/completions",
            "/v1%2fchat%2fcompletions",
            "/v1%2Fchat%2Fcompletions",
            "/v1/chat%252fcompletions",
            "/v1//chat///completions",
            "/v1/./chat/completions",
            "/v1/models/../chat/completions",
            "/v1/models/%2e%2e/chat/completions",
            "/v1\\chat\\completions",
            "/v1/%63hat/completions",
            "//v1/chat/completions",
        ] {
            assert!(
                keys(raw).contains(&"/v1/chat/completions".to_string()),
                "{raw}: {:?}",
                keys(raw)
            );
            let n = normalize(raw).unwrap();
            let plain_variant =
                raw.eq_ignore_ascii_case("/v1/chat/completions") || raw == "/v1/chat/completions/";
            assert_eq!(n.rewritten, !plain_variant, "{raw}");
        }
    }

    #[test]
    fn params_are_read_both_ways() {
        // Dropping `;x` first makes `..;` a parent step (as Tomcat does);
        // keeping it makes it an ordinary segment. Both readings count.
        let k = keys("/v1/chat/completions/..;/");
        assert_eq!(k, ["/v1/chat", "/v1/chat/completions/..;"]);
    }

    #[test]
    fn dot_segments_never_climb_above_the_root() {
        assert_eq!(keys("/../../v1/messages"), ["/v1/messages"]);
        assert_eq!(keys("/.."), ["/"]);
    }

    #[test]
    fn too_many_encodings_are_refused() {
        assert!(normalize("/v1/chat%25252fcompletions").is_ok());
        assert_eq!(
            normalize("/v1/chat%2525252fcompletions"),
            Err(PathError::TooManyEncodings)
        );
        // A lone or broken escape is kept as it is.
        assert_eq!(keys("/v1/100%"), ["/v1/100%"]);
        assert_eq!(keys("/v1/%zz"), ["/v1/%zz"]);
    }
}
