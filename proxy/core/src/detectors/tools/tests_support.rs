//! Helpers for the tool-judgement tests: effects and the strictest decision
//! of a call under the built-in table (the `production` profile's intent).

use super::*;
use serde_json::{json, Value};

pub(super) fn det() -> &'static ToolDetector {
    static D: std::sync::OnceLock<ToolDetector> = std::sync::OnceLock::new();
    D.get_or_init(|| ToolDetector::new(&ToolsConfig::default(), &EgressConfig::default()).unwrap())
}

pub(super) fn effects(name: &str, args: Value) -> Vec<Effect> {
    ToolDetector::effects_of(&det().analyze(&ToolCall::new(name, args)))
}

pub(super) fn shell(cmd: &str) -> Vec<Effect> {
    effects("Bash", json!({ "command": cmd }))
}

/// The strictest decision of a command under the built-in table.
pub(super) fn verdict(cmd: &str) -> Decision {
    shell(cmd)
        .into_iter()
        .map(|e| det().decision(e))
        .max()
        .unwrap_or(Decision::Allow)
}

#[track_caller]
pub(super) fn attack(cmd: &str, effect: Effect) {
    let got = shell(cmd);
    assert!(got.contains(&effect), "{cmd}: want {effect}, got {got:?}");
}

#[track_caller]
pub(super) fn flows(cmd: &str) {
    assert_eq!(verdict(cmd), Decision::Allow, "{cmd}: {:?}", shell(cmd));
}
