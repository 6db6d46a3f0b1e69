//! Policy sections other modules read without depending on the policy
//! module as a whole. `[session]` lives here so the session memory and the
//! policy that holds its settings do not import each other (the session
//! memory reads assessments, which read the policy).

use crate::detectors::tools::effects::Effect;
use serde::Deserialize;

/// The `[session]` policy section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SessionConfig {
    /// Track sessions at all (off: every request is judged alone).
    pub enabled: bool,
    /// Request headers naming the session, first present wins.
    pub session_headers: Vec<String>,
    /// Request headers naming the agent (claims; see `agent_headers` in
    /// policies/README.md about trusting them).
    pub agent_headers: Vec<String>,
    /// Dotted JSON paths in request bodies that name the session, tried
    /// after the headers (`metadata.session_id`, OpenAI `user` …).
    pub session_fields: Vec<String>,
    /// Dotted JSON paths in request bodies that name the agent.
    pub agent_fields: Vec<String>,
    /// Without a session id, derive one from the agent and the start of
    /// the conversation (`conversation`) or leave the request session-less
    /// (`none`; the agent scope still applies).
    pub derive_session: DeriveSession,
    /// Also keep risk per agent, across its sessions.
    pub agent_scope: bool,
    /// Keep agent-scope risk also for callers known only by their address
    /// (`ip:<addr>`): every anonymous caller behind that address shares it.
    pub track_anonymous: bool,
    /// Know a loopback client by its process (uid, name, pid, start time),
    /// read from the OS socket table (Linux `/proc`).
    pub agent_from_process: bool,
    pub repeat_threshold: usize,
    pub challenge_score: f64,
    pub block_score: f64,
    /// Cumulative risk halves after this many seconds (0 = never decays).
    pub half_life_secs: u64,
    /// Steps older than this are forgotten (chains, repetition, staging).
    pub window_secs: u64,
    /// At most this many steps are remembered per scope.
    pub max_history: usize,
    /// This many actions awaiting approval at once is itself a finding.
    pub max_staged: usize,
    /// Tags whose repetition is suspicious.
    pub sensitive_tags: Vec<String>,
    /// Effects session risk never escalates (ordinary work).
    pub calm_effects: Vec<String>,
    /// Sessions and agents idle this long are deleted.
    pub idle_expiry_secs: u64,
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            enabled: true,
            session_headers: vec![
                "x-asg-session-id".into(),
                "x-session-id".into(),
                "mcp-session-id".into(),
                "x-claude-code-session-id".into(),
                "session-id".into(),
                "session_id".into(),
                "conversation_id".into(),
            ],
            agent_headers: vec!["x-asg-agent-id".into(), "x-agent-id".into()],
            session_fields: vec![
                "metadata.session_id".into(),
                "metadata.conversation_id".into(),
                "conversation.id".into(),
                "conversation".into(),
                "metadata.user_id.session_id".into(),
                "client_metadata.session_id".into(),
                "client_metadata.thread_id".into(),
                "prompt_cache_key".into(),
            ],
            agent_fields: vec!["metadata.agent_id".into()],
            derive_session: DeriveSession::Conversation,
            agent_scope: true,
            track_anonymous: false,
            agent_from_process: true,
            repeat_threshold: 3,
            challenge_score: 1.2,
            block_score: 1.8,
            half_life_secs: 1800,
            window_secs: 3600,
            max_history: 32,
            max_staged: 8,
            sensitive_tags: [
                "shell",
                "exfiltration",
                "privilege",
                "memory_read",
                "credential_access",
                "persistence",
                "download_exec",
                "destroy",
                "network_send",
                "system_change",
            ]
            .into_iter()
            .map(String::from)
            .collect(),
            calm_effects: ["read", "build", "vcs", "write", "local_net", "infra_read"]
                .into_iter()
                .map(String::from)
                .collect(),
            idle_expiry_secs: 7 * 24 * 3600,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeriveSession {
    Conversation,
    None,
}

impl SessionConfig {
    pub(crate) fn validate(&self) -> Result<(), (&'static str, &'static str, String)> {
        let bad = |key, msg: String| Err(("session", key, msg));
        if self.repeat_threshold < 2 {
            return bad("repeat_threshold", "repeat_threshold must be >= 2".into());
        }
        if !(self.block_score > 0.0 && self.block_score.is_finite()) {
            return bad("block_score", "block_score must be > 0".into());
        }
        if !(0.0..=self.block_score).contains(&self.challenge_score) {
            return bad(
                "challenge_score",
                format!(
                    "challenge_score must be between 0 and block_score ({})",
                    self.block_score
                ),
            );
        }
        if self.window_secs == 0 {
            return bad("window_secs", "window_secs must be >= 1".into());
        }
        if !(1..=1024).contains(&self.max_history) {
            return bad(
                "max_history",
                "max_history must be between 1 and 1024".into(),
            );
        }
        if self.max_staged == 0 {
            return bad("max_staged", "max_staged must be >= 1".into());
        }
        for e in &self.calm_effects {
            if Effect::parse(e).is_none() {
                return bad(
                    "calm_effects",
                    format!("{e:?} is not an effect (see policies/README.md)"),
                );
            }
        }
        for h in self.session_headers.iter().chain(&self.agent_headers) {
            if h.is_empty()
                || !h
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            {
                return bad(
                    "session_headers",
                    format!("{h:?} is not a header name (letters, digits, '-')"),
                );
            }
        }
        Ok(())
    }
}
