//! Who is calling, and in which session: the keys of session risk and of
//! approval bindings on live traffic.
//!
//! Agent, first found wins:
//! 1. sidecar mode: `ASG_AGENT_ID` (the pod's identity; authoritative,
//!    headers and body fields are ignored);
//! 2. a header from `[session] agent_headers` (`x-asg-agent-id`, `x-agent-id`);
//! 3. a body field from `agent_fields` (`metadata.agent_id`);
//! 4. on loopback, the client process as the OS reports it (`proc:<uid>:
//!    <name>:<pid>.<start>`, see [`super::peer`]): every local agent run is
//!    its own agent, never one identity for the whole machine;
//! 5. the client address (`ip:<addr>`), so an anonymous caller still has a
//!    risk scope of its own.
//!
//! Session, first found wins:
//! 1. a header from `session_headers` (`x-asg-session-id`, `x-session-id`,
//!    MCP's `mcp-session-id`, Claude Code's `x-claude-code-session-id`,
//!    Codex's `session-id`);
//! 2. a body field from `session_fields` (`metadata.session_id`,
//!    Responses' `conversation`, Claude Code's `metadata.user_id.session_id`
//!    — a field inside a JSON-encoded string —, Codex's
//!    `client_metadata.session_id` …);
//! 3. derived (`derive_session = "conversation"`): a hash of the agent and
//!    the opening of the conversation (system prompt and first user
//!    message), stable across the turns of one chat;
//! 4. none: only the agent scope applies.

use crate::datapath::dialect::Dialect;
use crate::decision::session::{DeriveSession, SessionConfig};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// Where an identity came from (for audit and debugging).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    None,
    Sidecar,
    Header,
    Body,
    Derived,
    /// The client process on this host (loopback).
    Process,
    Peer,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub session_id: String,
    pub agent_id: String,
    pub session_source: Source,
    pub agent_source: Source,
}

/// Identifiers are bounded and printable.
const MAX_ID: usize = 256;

fn clean(v: &str) -> Option<String> {
    let v: String = v
        .trim()
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_ID)
        .collect();
    (!v.is_empty()).then_some(v)
}

impl Identity {
    /// From the request headers (and the deployment's sidecar identity and
    /// the client address); `complete` adds what the body says.
    /// `peer` is the client's address; `process` the loopback client's
    /// process, when the OS told ([`super::peer`]).
    pub fn from_headers<'h>(
        cfg: &SessionConfig,
        header: impl Fn(&str) -> Option<&'h str>,
        sidecar_agent: Option<&str>,
        peer: Option<std::net::SocketAddr>,
        process: Option<&super::peer::PeerProcess>,
    ) -> Identity {
        let first = |names: &[String]| names.iter().find_map(|n| header(n).and_then(clean));
        let process = || {
            process
                .filter(|_| cfg.agent_from_process)
                .map(super::peer::PeerProcess::agent_id)
        };
        let (agent_id, agent_source) = match sidecar_agent.and_then(clean) {
            Some(a) => (a, Source::Sidecar),
            None => match first(&cfg.agent_headers) {
                Some(a) => (a, Source::Header),
                None => match (process(), peer) {
                    (Some(p), _) => (p, Source::Process),
                    (None, Some(addr)) => (format!("ip:{}", addr.ip()), Source::Peer),
                    (None, None) => (String::new(), Source::None),
                },
            },
        };
        let (session_id, session_source) = match first(&cfg.session_headers) {
            Some(s) => (s, Source::Header),
            None => (String::new(), Source::None),
        };
        Identity {
            session_id,
            agent_id,
            session_source,
            agent_source,
        }
    }

    /// The agent whose risk scope applies: an address-only identity has
    /// one only when `track_anonymous` is on.
    pub fn risk_agent(&self, cfg: &SessionConfig) -> &str {
        if self.agent_source == Source::Peer && !cfg.track_anonymous {
            ""
        } else {
            &self.agent_id
        }
    }

    /// Fill what the headers did not say from the request body.
    pub fn complete(&mut self, cfg: &SessionConfig, dialect: Dialect, body: &Value) {
        if matches!(
            self.agent_source,
            Source::Peer | Source::Process | Source::None
        ) {
            if let Some(a) = cfg.agent_fields.iter().find_map(|p| field(body, p)) {
                self.agent_id = a;
                self.agent_source = Source::Body;
            }
        }
        if self.session_source == Source::None {
            if let Some(s) = cfg.session_fields.iter().find_map(|p| field(body, p)) {
                self.session_id = s;
                self.session_source = Source::Body;
            } else if cfg.derive_session == DeriveSession::Conversation {
                if let Some(s) = derive(&self.agent_id, dialect, body) {
                    self.session_id = s;
                    self.session_source = Source::Derived;
                }
            }
        }
    }
}

/// A dotted path (`metadata.session_id`) to a string or number. A string
/// holding a JSON object is descended into (Claude Code sends
/// `metadata.user_id` as `{"session_id": …}` encoded in a string).
fn field(body: &Value, path: &str) -> Option<String> {
    let mut v = std::borrow::Cow::Borrowed(body);
    for part in path.split('.') {
        let next = match v.as_ref() {
            Value::String(s) if s.trim_start().starts_with('{') => {
                serde_json::from_str::<Value>(s).ok()?.get(part)?.clone()
            }
            other => other.get(part)?.clone(),
        };
        v = std::borrow::Cow::Owned(next);
    }
    match v.as_ref() {
        Value::String(s) => clean(s),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// A conversation id from its opening: agent, system prompt and the first
/// user message. Later turns append to the history but keep the opening.
fn derive(agent: &str, dialect: Dialect, body: &Value) -> Option<String> {
    let first_role = |items: &Value, roles: &[&str]| -> Option<String> {
        items
            .as_array()?
            .iter()
            .find(|m| m["role"].as_str().is_some_and(|r| roles.contains(&r)))
            .map(|m| m["content"].to_string())
    };
    let (system, user) = match dialect {
        Dialect::OpenaiChat => (
            first_role(&body["messages"], &["system", "developer"]),
            first_role(&body["messages"], &["user"]),
        ),
        Dialect::AnthropicMessages => (
            Some(body["system"].to_string()),
            first_role(&body["messages"], &["user"]),
        ),
        Dialect::OpenaiResponses => (
            Some(body["instructions"].to_string()),
            match &body["input"] {
                Value::String(s) => Some(s.clone()),
                items => first_role(items, &["user"]),
            },
        ),
        _ => return None,
    };
    let user = user?;
    let mut h = Sha256::new();
    for part in [agent, system.as_deref().unwrap_or(""), &user] {
        h.update((part.len() as u64).to_be_bytes());
        h.update(part.as_bytes());
    }
    Some(format!("conv-{}", &hex::encode(h.finalize())[..16]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::collections::HashMap;

    fn from(headers: &[(&str, &str)], sidecar: Option<&str>) -> Identity {
        let map: HashMap<String, String> = headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Identity::from_headers(
            &SessionConfig::default(),
            |n| map.get(n).map(String::as_str),
            sidecar,
            Some("10.0.0.7:50000".parse().unwrap()),
            None,
        )
    }

    #[test]
    fn headers_win_then_peer() {
        let id = from(&[("x-agent-id", "bot-1"), ("mcp-session-id", "m-42")], None);
        assert_eq!(
            (id.agent_id.as_str(), id.session_id.as_str()),
            ("bot-1", "m-42")
        );
        let anon = from(&[], None);
        assert_eq!(anon.agent_id, "ip:10.0.0.7");
        assert_eq!(anon.agent_source, Source::Peer);
        assert_eq!(anon.session_source, Source::None);
        let cfg = SessionConfig::default();
        assert_eq!(anon.risk_agent(&cfg), "", "no shared risk scope by default");
        let tracked = SessionConfig {
            track_anonymous: true,
            ..SessionConfig::default()
        };
        assert_eq!(anon.risk_agent(&tracked), "ip:10.0.0.7");
        assert_eq!(id.risk_agent(&cfg), "bot-1");
    }

    #[test]
    fn sidecar_identity_is_authoritative() {
        let id = from(&[("x-agent-id", "spoofed")], Some("team-a/reporter"));
        assert_eq!(id.agent_id, "team-a/reporter");
        let mut id = id;
        id.complete(
            &SessionConfig::default(),
            Dialect::OpenaiChat,
            &json!({"metadata": {"agent_id": "spoofed"}}),
        );
        assert_eq!(id.agent_id, "team-a/reporter");
    }

    #[test]
    fn body_fields_and_control_characters() {
        let mut id = from(&[], None);
        id.complete(
            &SessionConfig::default(),
            Dialect::OpenaiChat,
            &json!({"metadata": {"session_id": "s\u{0}-1", "agent_id": "worker"}}),
        );
        assert_eq!(id.session_id, "s-1");
        assert_eq!(id.session_source, Source::Body);
        assert_eq!(id.agent_id, "worker");
    }

    #[test]
    fn agent_clients_name_their_sessions() {
        let cfg = SessionConfig::default();
        let id = from(&[("x-claude-code-session-id", "cc-1")], None);
        assert_eq!(
            (id.session_id.as_str(), id.session_source),
            ("cc-1", Source::Header)
        );
        let id = from(&[("session-id", "cx-9")], None);
        assert_eq!(id.session_id, "cx-9");
        let mut id = from(&[], None);
        id.complete(
            &cfg,
            Dialect::AnthropicMessages,
            &json!({"metadata": {"user_id": "{\"device_id\":\"d\",\"session_id\":\"fd8b\"}"}}),
        );
        assert_eq!(
            (id.session_id.as_str(), id.session_source),
            ("fd8b", Source::Body)
        );
        let mut id = from(&[], None);
        id.complete(
            &cfg,
            Dialect::OpenaiResponses,
            &json!({"prompt_cache_key": "thr-1", "client_metadata": {"session_id": "thr-1"}}),
        );
        assert_eq!(id.session_id, "thr-1");
    }

    #[test]
    fn a_loopback_client_is_its_own_agent() {
        let p = super::super::peer::PeerProcess {
            pid: 4242,
            uid: 1000,
            comm: "claude".into(),
            start: 99,
        };
        let cfg = SessionConfig::default();
        let id = Identity::from_headers(
            &cfg,
            |_| None,
            None,
            Some("127.0.0.1:50000".parse().unwrap()),
            Some(&p),
        );
        assert_eq!(id.agent_source, Source::Process);
        assert_eq!(id.agent_id, "proc:1000:claude:4242.99");
        assert_eq!(
            id.risk_agent(&cfg),
            id.agent_id,
            "a process is not anonymous"
        );
        // Headers still win; the option switches it off.
        let id = Identity::from_headers(
            &cfg,
            |n| (n == "x-agent-id").then_some("bot"),
            None,
            None,
            Some(&p),
        );
        assert_eq!(id.agent_id, "bot");
        let off = SessionConfig {
            agent_from_process: false,
            ..SessionConfig::default()
        };
        let id = Identity::from_headers(
            &off,
            |_| None,
            None,
            Some("127.0.0.1:50000".parse().unwrap()),
            Some(&p),
        );
        assert_eq!(id.agent_id, "ip:127.0.0.1");
    }

    #[test]
    fn derived_session_is_stable_across_turns_and_agents_differ() {
        let turn1 = json!({"messages": [
            {"role": "system", "content": "You are helpful."},
            {"role": "user", "content": "List my files"}]});
        let turn2 = json!({"messages": [
            {"role": "system", "content": "You are helpful."},
            {"role": "user", "content": "List my files"},
            {"role": "assistant", "content": "Sure."},
            {"role": "user", "content": "Now delete them"}]});
        let cfg = SessionConfig::default();
        let mut a = from(&[("x-agent-id", "a")], None);
        let mut b = a.clone();
        a.complete(&cfg, Dialect::OpenaiChat, &turn1);
        b.complete(&cfg, Dialect::OpenaiChat, &turn2);
        assert_eq!(a.session_id, b.session_id);
        assert_eq!(a.session_source, Source::Derived);
        let mut other = from(&[("x-agent-id", "other")], None);
        other.complete(&cfg, Dialect::OpenaiChat, &turn1);
        assert_ne!(other.session_id, a.session_id);
        let mut mcp = from(&[], None);
        mcp.complete(&cfg, Dialect::Mcp, &json!({"method": "tools/call"}));
        assert!(mcp.session_id.is_empty());
    }
}
