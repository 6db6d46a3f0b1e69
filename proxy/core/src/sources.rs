//! Where a profile's data files (rule files, the injection model) come from.
//!
//! The core reads no files: a profile names its data files relative to its
//! own folder, and whoever compiles it hands in a [`RuleSources`] that
//! fetches them (the app layer reads a directory; tests use a map). `None`
//! in place of a source means "no folder": every data file is the embedded
//! default, as for the built-in profiles.

use std::collections::BTreeMap;

/// A data file could not be fetched. `path` names it as the operator knows
/// it (a file path for a directory source), so messages stay actionable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct SourceError {
    pub path: String,
    pub message: String,
}

pub trait RuleSources: Send + Sync {
    /// The bytes of `rel` (`rules/secrets.toml`, `models/injection-v1.bin`),
    /// relative to the profile's folder. `Ok(None)`: this source has no
    /// such folder, use the embedded default.
    fn read(&self, rel: &str) -> Result<Option<Vec<u8>>, SourceError>;

    /// `rel` as messages should name it (the full path for a directory).
    fn describe(&self, rel: &str) -> String {
        rel.to_string()
    }
}

/// No folder: the embedded defaults for every data file.
pub struct Embedded;

impl RuleSources for Embedded {
    fn read(&self, _rel: &str) -> Result<Option<Vec<u8>>, SourceError> {
        Ok(None)
    }
}

/// Data files held in memory (tools that build a profile on the fly, tests).
/// A name that is not in the map is an error, like a missing file.
#[derive(Debug, Default, Clone)]
pub struct InMemory(pub BTreeMap<String, Vec<u8>>);

impl InMemory {
    pub fn with(mut self, rel: &str, bytes: impl Into<Vec<u8>>) -> Self {
        self.0.insert(rel.to_string(), bytes.into());
        self
    }
}

impl RuleSources for InMemory {
    fn read(&self, rel: &str) -> Result<Option<Vec<u8>>, SourceError> {
        match self.0.get(rel) {
            Some(bytes) => Ok(Some(bytes.clone())),
            None => Err(SourceError {
                path: rel.to_string(),
                message: "not found".to_string(),
            }),
        }
    }
}

/// A data file as text, or the embedded default when there is no file to
/// read (no name in the profile, or no folder to read it from). `key` is the
/// profile key that named it, for the message.
pub fn text_or(
    sources: Option<&dyn RuleSources>,
    file: Option<&String>,
    key: &str,
    embedded: &str,
) -> Result<String, String> {
    let (Some(src), Some(file)) = (sources, file) else {
        return Ok(embedded.to_string());
    };
    match src.read(file) {
        Ok(None) => Ok(embedded.to_string()),
        Ok(Some(bytes)) => String::from_utf8(bytes).map_err(|_| {
            format!(
                "{key} {}: stream did not contain valid UTF-8",
                src.describe(file)
            )
        }),
        Err(e) => Err(format!("{key} {}: {}", e.path, e.message)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_or_absent_folder_gives_the_default() {
        let f = "rules/x.toml".to_string();
        assert_eq!(text_or(None, Some(&f), "k", "dflt").unwrap(), "dflt");
        assert_eq!(
            text_or(Some(&Embedded), Some(&f), "k", "dflt").unwrap(),
            "dflt"
        );
        let mem = InMemory::default().with("rules/x.toml", "mine");
        assert_eq!(text_or(Some(&mem), None, "k", "dflt").unwrap(), "dflt");
        assert_eq!(text_or(Some(&mem), Some(&f), "k", "dflt").unwrap(), "mine");
    }

    #[test]
    fn missing_and_non_utf8_files_name_the_key_and_file() {
        let f = "rules/y.toml".to_string();
        let err = text_or(
            Some(&InMemory::default()),
            Some(&f),
            "secrets.rules_file",
            "",
        )
        .unwrap_err();
        assert_eq!(err, "secrets.rules_file rules/y.toml: not found");
        let mem = InMemory::default().with("rules/y.toml", vec![0xff, 0xfe]);
        let err = text_or(Some(&mem), Some(&f), "tools.rules_file", "").unwrap_err();
        assert!(err.starts_with("tools.rules_file rules/y.toml: "), "{err}");
    }
}
