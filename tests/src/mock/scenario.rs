//! Per-request behaviour chosen by `x-mock-*` headers, and the dialect-neutral reply it produces.

use super::body::Transport;
use hyper::HeaderMap;
use std::time::Duration;

/// The fake AWS access key id used by the `secret` scenario (AWS's documented example key).
pub const FAKE_AWS_KEY: &str = "AKIAIOSFODNN7EXAMPLE";
/// A fake OpenAI project key with the real shape (`sk-proj-` + 58 + `T3BlbkFJ` + 58).
pub const FAKE_OPENAI_KEY: &str = "sk-proj-M0ckFakeKeyNotReal0TestOnly1aB2cD3eF4gH5iJ6kL7mN8oP9qR0sTuT3BlbkFJVw1Xy2Zz3Mock4Fake5Key6For7Gateway8Tests9Only0AbCdEfGhIjKl";
/// Where the `secret` stream cuts the OpenAI key into two deltas.
pub const FAKE_OPENAI_KEY_SPLIT: usize = 40;
pub const TEXT_REPLY: &str = "Hello from the mock upstream.";
pub const SHELL_SECRET_ARGS: &str = r#"{"command":"cat ~/.ssh/id_rsa"}"#;
pub const SHELL_BENIGN_ARGS: &str = r#"{"command":"ls -la"}"#;
pub const DEFAULT_BIG_SIZE: usize = 1 << 20;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scenario {
    Text,
    Secret,
    ToolShell,
    ToolBenign,
    ToolCustom,
    Echo,
    Big,
}

impl Scenario {
    pub const ALL: [(&'static str, Scenario); 7] = [
        ("text", Scenario::Text),
        ("secret", Scenario::Secret),
        ("tool_shell", Scenario::ToolShell),
        ("tool_benign", Scenario::ToolBenign),
        ("tool_custom", Scenario::ToolCustom),
        ("echo", Scenario::Echo),
        ("big", Scenario::Big),
    ];
}

/// All knobs of one request.
#[derive(Clone, Debug)]
pub struct Knobs {
    pub scenario: Scenario,
    pub transport: Transport,
    pub status: Option<u16>,
    pub error_midstream: bool,
    pub fixture: Option<String>,
    pub size: usize,
    pub tool_name: String,
    pub tool_args: String,
    pub tool_result: Option<String>,
    pub mcp_sse: bool,
    pub mcp_tools: Option<String>,
    /// Text the `echo` scenario says instead of the user's (prompt scripts).
    pub echo_override: Option<String>,
    /// `tool_custom` calls a freeform tool (`tool_args` is its text input).
    pub tool_freeform: bool,
}

/// A header value as UTF-8 (so test knobs may carry non-ASCII text such as tool arguments).
fn header<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name)
        .and_then(|v| std::str::from_utf8(v.as_bytes()).ok())
        .map(str::trim)
}

fn number<T: std::str::FromStr>(h: &HeaderMap, name: &str) -> Result<Option<T>, String> {
    match header(h, name) {
        None => Ok(None),
        Some(v) => v
            .parse()
            .map(Some)
            .map_err(|_| format!("invalid {name} header: {v:?} (expected a number)")),
    }
}

fn flag(h: &HeaderMap, name: &str) -> bool {
    matches!(header(h, name), Some("1" | "true" | "yes"))
}

impl Knobs {
    pub fn from_headers(h: &HeaderMap) -> Result<Knobs, String> {
        let scenario = match header(h, "x-mock-scenario") {
            None | Some("") => Scenario::Text,
            Some(name) => Scenario::ALL
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, s)| *s)
                .ok_or_else(|| {
                    let names: Vec<_> = Scenario::ALL.iter().map(|(n, _)| *n).collect();
                    format!(
                        "unknown x-mock-scenario {name:?}; known: {}",
                        names.join(", ")
                    )
                })?,
        };
        let delay = Duration::from_millis(number(h, "x-mock-delay-ms")?.unwrap_or(0));
        let chunk: Option<usize> = number(h, "x-mock-chunk")?;
        if chunk == Some(0) {
            return Err("x-mock-chunk must be at least 1".into());
        }
        let mcp_sse = match header(h, "x-mock-mcp-mode") {
            None | Some("json") => false,
            Some("sse") => true,
            Some(other) => {
                return Err(format!(
                    "x-mock-mcp-mode must be json or sse, not {other:?}"
                ))
            }
        };
        Ok(Knobs {
            scenario,
            transport: Transport {
                delay,
                chunk,
                gzip: flag(h, "x-mock-gzip"),
                close_midstream: flag(h, "x-mock-close-midstream"),
            },
            status: number(h, "x-mock-status")?,
            error_midstream: flag(h, "x-mock-error-midstream"),
            fixture: header(h, "x-mock-fixture").map(str::to_string),
            size: number(h, "x-mock-size")?.unwrap_or(DEFAULT_BIG_SIZE),
            tool_name: header(h, "x-mock-tool-name").unwrap_or("shell").to_string(),
            tool_args: header(h, "x-mock-tool-args").unwrap_or("{}").to_string(),
            // `-json`: a JSON string, so a result can keep its line breaks
            // (header values are one line).
            tool_result: match header(h, "x-mock-tool-result-json") {
                Some(v) => Some(
                    serde_json::from_str::<String>(v)
                        .map_err(|e| format!("x-mock-tool-result-json: {e}"))?,
                ),
                None => header(h, "x-mock-tool-result").map(str::to_string),
            },
            mcp_sse,
            mcp_tools: header(h, "x-mock-mcp-tools").map(str::to_string),
            echo_override: None,
            tool_freeform: false,
        })
    }
}

/// What the model "says", independent of the dialect.
#[derive(Clone, Debug)]
pub enum Reply {
    /// Assistant text, already cut into stream deltas.
    Text(Vec<String>),
    /// One tool call; `args` is the JSON text, `fragments` its stream pieces.
    Tool {
        name: String,
        args: String,
        fragments: Vec<String>,
        /// A freeform custom tool (Responses `custom_tool_call`, `input` text).
        custom: bool,
    },
}

impl Reply {
    /// Build the reply for the non-`big` scenarios. `user_text` is the dialect's last user message.
    pub fn build(k: &Knobs, user_text: impl FnOnce() -> String) -> Reply {
        match k.scenario {
            Scenario::Text => Reply::Text(word_deltas(TEXT_REPLY)),
            Scenario::Secret => Reply::Text(secret_deltas()),
            Scenario::Echo => match &k.echo_override {
                Some(t) => Reply::Text(word_deltas(t)),
                None => Reply::Text(word_deltas(&user_text())),
            },
            Scenario::ToolShell => Reply::tool("shell", SHELL_SECRET_ARGS),
            Scenario::ToolBenign => Reply::tool("shell", SHELL_BENIGN_ARGS),
            Scenario::ToolCustom if k.tool_freeform => Reply::Tool {
                name: k.tool_name.clone(),
                args: k.tool_args.clone(),
                fragments: word_deltas(&k.tool_args),
                custom: true,
            },
            Scenario::ToolCustom => Reply::tool(&k.tool_name, &k.tool_args),
            Scenario::Big => Reply::Text(big_deltas(0)),
        }
    }

    pub fn tool(name: &str, args: &str) -> Reply {
        Reply::Tool {
            name: name.to_string(),
            args: args.to_string(),
            fragments: json_fragments(args),
            custom: false,
        }
    }

    pub fn text(&self) -> String {
        match self {
            Reply::Text(d) => d.concat(),
            Reply::Tool { .. } => String::new(),
        }
    }
}

/// The `secret` reply; the AWS key and the OpenAI key are each split across two deltas.
pub fn secret_deltas() -> Vec<String> {
    let (k1, k2) = FAKE_OPENAI_KEY.split_at(FAKE_OPENAI_KEY_SPLIT);
    [
        "Here is the AWS key from the config: ",
        &FAKE_AWS_KEY[..8],
        &FAKE_AWS_KEY[8..],
        " and the OpenAI key: ",
        k1,
        k2,
        " (store them safely).",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// Cut text into token-like deltas: each word with its leading whitespace.
pub fn word_deltas(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    for c in text.chars() {
        if c.is_whitespace() && in_word {
            out.push(std::mem::take(&mut cur));
            in_word = false;
        } else if !c.is_whitespace() {
            in_word = true;
        }
        cur.push(c);
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

const FILLER: &str =
    "The quick brown fox jumps over the lazy dog while the mock upstream pads this reply. ";

/// `len` bytes of ASCII filler text, as deltas of at most 1 KiB. Each reply starts with a number of
/// its own ("Reply 00000042. "): a gateway that remembers the texts it judged would otherwise judge
/// only the first of a load test's identical replies.
pub fn big_deltas(len: usize) -> Vec<String> {
    static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % 100_000_000;
    let text: String = format!("Reply {n:08}. ")
        .chars()
        .chain(FILLER.chars().cycle())
        .take(len)
        .collect();
    text.as_bytes()
        .chunks(1024)
        .map(|c| String::from_utf8(c.to_vec()).expect("ascii filler"))
        .collect()
}

/// Find the filler length whose rendered body is `target` bytes: exact when the body grows by one byte
/// per text byte (single-piece JSON), within about one event for streams (Responses streams repeat the
/// text in several events, so the body grows faster than the text). `render(text_len)` returns the body
/// length for a filler text of that length.
pub fn fit_big(target: usize, render: impl Fn(usize) -> usize) -> usize {
    let base = render(0);
    if target <= base {
        return 0;
    }
    let slope = ((render(target) - base) as f64 / target as f64).max(1e-9);
    let mut len = ((target - base) as f64 / slope) as usize;
    for _ in 0..3 {
        let total = render(len);
        if total == target {
            break;
        }
        let next = (len as f64 + (target as f64 - total as f64) / slope).max(0.0) as usize;
        if next == len {
            break;
        }
        len = next;
    }
    len
}

/// Cut JSON text into token-sized fragments like a model does (`{"` | `command` | `":"` | `cat` …):
/// pieces change at word/punctuation boundaries and are at most 8 bytes, but escape sequences are never
/// split, so every prefix stays a valid JSON prefix for partial parsers.
pub fn json_fragments(json: &str) -> Vec<String> {
    const MAX: usize = 8;
    let chars: Vec<char> = json.chars().collect();
    let mut out: Vec<String> = Vec::new();
    let mut cur = String::new();
    let mut cur_word: Option<bool> = None;
    let mut i = 0;
    while i < chars.len() {
        // One unit: a char, or a whole escape sequence (\x or \uXXXX).
        let unit_len = if chars[i] == '\\' {
            if chars.get(i + 1) == Some(&'u') {
                6
            } else {
                2
            }
        } else {
            1
        };
        let unit: String = chars[i..(i + unit_len).min(chars.len())].iter().collect();
        let word = chars[i].is_alphanumeric();
        let boundary = cur_word.is_some_and(|w| w != word);
        if !cur.is_empty() && (boundary || cur.len() + unit.len() > MAX) {
            out.push(std::mem::take(&mut cur));
        }
        cur.push_str(&unit);
        cur_word = Some(word);
        i += unit_len;
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fragments_look_like_tokens_and_reassemble() {
        let f = json_fragments(SHELL_SECRET_ARGS);
        assert_eq!(f.concat(), SHELL_SECRET_ARGS);
        assert_eq!(&f[..4], &["{\"", "command", "\":\"", "cat"]);
        assert!(f.len() > 5);
    }

    #[test]
    fn fragments_never_split_escapes() {
        let args = r#"{"a":"x\"y\u00e9\\"}"#;
        let f = json_fragments(args);
        assert_eq!(f.concat(), args);
        for piece in &f {
            let trailing = piece.chars().rev().take_while(|c| *c == '\\').count();
            assert_eq!(trailing % 2, 0, "piece {piece:?} ends inside an escape");
        }
    }

    #[test]
    fn words_keep_leading_space() {
        assert_eq!(
            word_deltas("Hello  big world"),
            vec!["Hello", "  big", " world"]
        );
        assert_eq!(word_deltas(TEXT_REPLY).concat(), TEXT_REPLY);
    }

    #[test]
    fn secret_splits_both_keys() {
        let d = secret_deltas();
        assert!(d
            .iter()
            .all(|p| !p.contains(FAKE_AWS_KEY) && !p.contains(FAKE_OPENAI_KEY)));
        let all = d.concat();
        assert!(all.contains(FAKE_AWS_KEY) && all.contains(FAKE_OPENAI_KEY));
        assert!(d.contains(&"AKIAIOSF".to_string()) && d.contains(&"ODNN7EXAMPLE".to_string()));
    }

    #[test]
    fn fit_big_converges() {
        let stream = |n: usize| n + 300 + n.div_ceil(1024) * 90;
        let total = stream(fit_big(10_000, stream));
        assert!((10_000 - 200..=10_000 + 200).contains(&total), "{total}");
        let repeated = |n: usize| 5 * n + 2000 + n.div_ceil(1024) * 150;
        let total = repeated(fit_big(200_000, repeated));
        assert!((200_000 - 500..=200_000 + 500).contains(&total), "{total}");
        assert_eq!(fit_big(10_000, |n| n + 300), 9_700);
        assert_eq!(fit_big(100, |n| n + 300), 0);
    }
}
