//! Policy errors that say where the problem is: `file:line:col: message`,
//! followed by the offending line and a caret.

use std::fmt;
use std::path::PathBuf;

#[derive(Debug, Clone)]
pub enum PolicyError {
    NotFound(String),
    Io {
        path: PathBuf,
        message: String,
    },
    Invalid {
        origin: String,
        line: Option<usize>,
        column: Option<usize>,
        message: String,
        snippet: Option<String>,
    },
}

impl PolicyError {
    pub fn from_toml(origin: &str, text: &str, e: &toml::de::Error) -> Self {
        let (line, column) = match e.span() {
            Some(span) => {
                let (l, c) = line_col(text, span.start);
                (Some(l), Some(c))
            }
            None => (None, None),
        };
        PolicyError::Invalid {
            origin: origin.to_string(),
            line,
            column,
            message: e.message().trim().to_string(),
            snippet: line
                .and_then(|l| text.lines().nth(l - 1))
                .map(str::to_string),
        }
    }

    /// A validation error about `[section] key`: locate the key's line.
    pub fn semantic(origin: &str, text: &str, section: &str, key: &str, message: String) -> Self {
        let line = if key.is_empty() {
            None
        } else {
            locate_key(text, section, key)
        };
        PolicyError::Invalid {
            origin: origin.to_string(),
            line,
            column: line.map(|_| 1),
            message,
            snippet: line
                .and_then(|l| text.lines().nth(l - 1))
                .map(str::to_string),
        }
    }
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PolicyError::NotFound(spec) => write!(
                f,
                "policy '{spec}' not found (expected a profile name such as dev, production or strict, or a path to a .toml file)"
            ),
            PolicyError::Io { path, message } => {
                write!(f, "cannot read policy {}: {message}", path.display())
            }
            PolicyError::Invalid {
                origin,
                line,
                column,
                message,
                snippet,
            } => {
                match (line, column) {
                    (Some(l), Some(c)) => write!(f, "{origin}:{l}:{c}: {message}")?,
                    _ => write!(f, "{origin}: {message}")?,
                }
                if let (Some(snippet), Some(c)) = (snippet, column) {
                    write!(f, "\n    | {snippet}\n    | {:>width$}", "^", width = *c)?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for PolicyError {}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before
        .rfind('\n')
        .map_or(before.len(), |nl| before.len() - nl - 1)
        + 1;
    (line, col)
}

/// 1-based line of `key = ...` inside `[section]` (or at top level when the
/// section is empty). A plain scan is enough: profiles are small.
fn locate_key(text: &str, section: &str, key: &str) -> Option<usize> {
    let mut current = String::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.starts_with('[') {
            current = line
                .trim_matches(|c| c == '[' || c == ']')
                .trim()
                .to_string();
            continue;
        }
        let in_section = current == section || (section.is_empty() && current.is_empty());
        if in_section {
            if let Some((k, _)) = line.split_once('=') {
                if k.trim() == key {
                    return Some(i + 1);
                }
            }
        }
    }
    None
}
