//! What can be wrong with the configuration: one sentence each, naming
//! the variable or file and what would be accepted.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// An `ASG_*` variable holds a value its setter refuses. `value` is
    /// `None` for variables that carry keys or passwords: those are never
    /// echoed.
    #[error("{var}: {} is not accepted; {expected}", shown(.value))]
    Env {
        var: &'static str,
        value: Option<String>,
        expected: String,
    },
    #[error("cannot read config {}: {source}", .path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config {}: {source}", .path.display())]
    Parse {
        path: PathBuf,
        source: Box<toml::de::Error>,
    },
    /// A value that parsed but does not make sense, alone or with others.
    #[error("{0}")]
    Invalid(String),
}

fn shown(value: &Option<String>) -> String {
    match value {
        Some(v) => format!("{v:?}"),
        None => "the value (not shown: it holds a secret)".to_string(),
    }
}

impl ConfigError {
    pub fn invalid(msg: impl Into<String>) -> Self {
        ConfigError::Invalid(msg.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_errors_name_the_variable_and_hide_secrets() {
        let e = ConfigError::Env {
            var: "ASG_THREADS",
            value: Some("many".into()),
            expected: "expected a whole number".into(),
        };
        assert_eq!(
            e.to_string(),
            "ASG_THREADS: \"many\" is not accepted; expected a whole number"
        );
        let e = ConfigError::Env {
            var: "ASG_AGENTS",
            value: None,
            expected: "expected agent-id=key entries".into(),
        };
        assert!(e.to_string().contains("not shown"), "{e}");
    }
}
