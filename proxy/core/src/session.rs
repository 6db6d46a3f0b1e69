//! Session risk: what earlier calls add to the judgement of this one.
//!
//! Risk is kept in two scopes: the session (a conversation, an MCP
//! session) and the agent behind it. A caller that drops or rotates its
//! session id therefore keeps its agent's risk. Each scope remembers recent
//! tool steps (for cross-call chains and repetition), a cumulative score
//! that decays with a configurable half-life, and the actions staged for
//! approval. All functions are pure over these structs; storage (sled) and
//! identity extraction live elsewhere. Times are Unix milliseconds.
//!
//! Rules (findings of detector `session_risk`). Risk is proportionate: it
//! only ever weighs on calls with a risky effect. Prose and calls whose
//! effects are all calm (`calm_effects`: reads, builds, tests, local git,
//! workspace edits) are never escalated, however risky the session.
//! For a risky call:
//! * an effect that was refused earlier in the window → critical (a repeat
//!   of a refused action stays refused, even rephrased);
//! * a sensitive tag seen `repeat_threshold` times in the window (this call
//!   included) → high;
//! * decayed cumulative risk plus this call's base score ≥ `block_score` →
//!   critical, else ≥ `challenge_score` → high.
//!
//! For any call or request:
//! * `max_staged` or more actions waiting for approval → critical (risky
//!   calls only);
//! * a session used by an agent other than its owner → critical.
//!
//! Every finding names the refused calls that raised the risk (their rule
//! ids and messages), so a refusal says what caused it.
//!
//! Session findings set a *floor* on the decision ([`join`]): high →
//! at least `challenge`, critical → `block`. They do not add to the score,
//! so a profile's `block_high_count = 1` cannot turn "a human should look"
//! into "blocked". Cross-call chains are the chain detector's rules, run
//! over the history returned by [`history`], and do score.

use crate::engine::Assessment;
use crate::types::{Decision, DetectorId, Finding, Severity};
use serde::{Deserialize, Serialize};

pub use crate::policy::schema::{DeriveSession, SessionConfig};

/// What happened to a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Let through.
    Executed,
    /// Let through by an approval.
    Approved,
    /// Refused.
    Blocked,
}

/// One tool call remembered by a scope (never its arguments).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Step {
    pub at_ms: i64,
    pub tool: String,
    pub tags: Vec<String>,
    pub outcome: Outcome,
    /// For a refused step: the findings that refused it (`rule: message`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub causes: Vec<String>,
}

/// An action waiting for an operator.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Staged {
    pub at_ms: i64,
    pub tool: String,
    pub approval_id: String,
}

/// The risk memory of one scope.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RiskState {
    /// Cumulative base score as of `as_of_ms` (decays from there).
    pub cumulative: f64,
    pub as_of_ms: i64,
    /// Oldest first.
    pub steps: Vec<Step>,
    pub staged: Vec<Staged>,
}

/// A session's stored state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionState {
    pub session_id: String,
    /// The agent that opened the session; others may not use it.
    pub agent_id: String,
    pub created_ms: i64,
    pub updated_ms: i64,
    #[serde(default)]
    pub ended_ms: Option<i64>,
    pub request_count: u64,
    pub risk: RiskState,
    /// Recent decisions, oldest first.
    pub decisions: Vec<String>,
    /// `action:<tag>` and `memory:<masked path>` markers.
    pub sensitive_markers: Vec<String>,
    /// Memory paths read or written (masked), first come.
    pub memory_touched: Vec<String>,
}

/// An agent's stored state, across its sessions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentState {
    pub agent_id: String,
    pub created_ms: i64,
    pub updated_ms: i64,
    pub request_count: u64,
    /// Recent sessions of this agent, newest last.
    pub sessions: Vec<String>,
    pub risk: RiskState,
}

/// Caps of a session's decision list, marker and memory lists, and an
/// agent's session list (shared stores apply the same caps).
pub const MAX_DECISIONS: usize = 64;
pub const MAX_MARKERS: usize = 64;
pub const MAX_SESSIONS_PER_AGENT: usize = 32;

impl SessionState {
    pub fn new(session_id: &str, agent_id: &str, now_ms: i64) -> Self {
        SessionState {
            session_id: session_id.to_string(),
            agent_id: agent_id.to_string(),
            created_ms: now_ms,
            updated_ms: now_ms,
            ended_ms: None,
            request_count: 0,
            risk: RiskState::default(),
            decisions: Vec::new(),
            sensitive_markers: Vec::new(),
            memory_touched: Vec::new(),
        }
    }
}

impl AgentState {
    pub fn new(agent_id: &str, now_ms: i64) -> Self {
        AgentState {
            agent_id: agent_id.to_string(),
            created_ms: now_ms,
            updated_ms: now_ms,
            request_count: 0,
            sessions: Vec::new(),
            risk: RiskState::default(),
        }
    }
}

/// Cumulative risk decayed from `as_of_ms` to `now_ms`.
pub fn decayed(cfg: &SessionConfig, r: &RiskState, now_ms: i64) -> f64 {
    if cfg.half_life_secs == 0 || r.cumulative <= 0.0 {
        return r.cumulative.max(0.0);
    }
    let dt = (now_ms - r.as_of_ms).max(0) as f64 / 1000.0;
    r.cumulative * 0.5f64.powf(dt / cfg.half_life_secs as f64)
}

fn in_window(cfg: &SessionConfig, at_ms: i64, now_ms: i64) -> bool {
    now_ms - at_ms < (cfg.window_secs as i64) * 1000
}

/// The scopes a call is judged in: its session and/or its agent.
#[derive(Debug, Clone, Copy, Default)]
pub struct Scopes<'a> {
    pub session: Option<&'a SessionState>,
    pub agent: Option<&'a AgentState>,
    /// The caller's agent identity (checked against the session's owner
    /// even when the agent scope is off).
    pub agent_id: &'a str,
}

impl<'a> Scopes<'a> {
    fn risks(&self) -> impl Iterator<Item = (&'static str, &'a RiskState)> {
        self.session
            .map(|s| ("session", &s.risk))
            .into_iter()
            .chain(self.agent.map(|a| ("agent", &a.risk)))
    }

    /// Steps of both scopes in the window, oldest first, each once (a
    /// session's steps are also its agent's).
    fn steps(&self, cfg: &SessionConfig, now_ms: i64) -> Vec<&'a Step> {
        let mut all: Vec<&Step> = self
            .risks()
            .flat_map(|(_, r)| r.steps.iter())
            .filter(|s| in_window(cfg, s.at_ms, now_ms))
            .collect();
        all.sort_by_key(|s| s.at_ms);
        all.dedup_by(|a, b| a.at_ms == b.at_ms && a.tool == b.tool && a.tags == b.tags);
        all
    }
}

/// Chain steps from earlier requests, oldest first, for the chain detector.
/// Refused steps are left out: a refused credential read obtained nothing a
/// later request could send (retrying a refused action is the
/// `repeat_of_refused` rule's business), and counting it would turn every
/// later network call of the session into a chain.
pub fn history(cfg: &SessionConfig, scopes: &Scopes<'_>, now_ms: i64) -> Vec<Vec<String>> {
    let mut steps = scopes.steps(cfg, now_ms);
    steps.retain(|s| s.outcome != Outcome::Blocked);
    let skip = steps.len().saturating_sub(cfg.max_history);
    steps[skip..].iter().map(|s| s.tags.clone()).collect()
}

fn finding(rule: &str, severity: Severity, score: f64, message: String) -> Finding {
    Finding::new(
        format!("session.{rule}"),
        DetectorId::SessionRisk,
        "unsafe_action_chain",
        severity,
        score,
        message,
    )
}

/// Whether a call with these tags is risky: some tag is an effect outside
/// `calm_effects`. Capability and group tags (`file_read`, `network` …) do
/// not count by themselves; prose (no tags) is never risky.
pub fn risky(cfg: &SessionConfig, tags: &[String]) -> bool {
    tags.iter().any(|t| {
        crate::detectors::tools::effects::Effect::parse(t).is_some()
            && !cfg.calm_effects.contains(t)
    })
}

/// The causes of refused steps in the window, newest first (at most 3).
fn refusal_causes(steps: &[&Step]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for s in steps.iter().rev().filter(|s| s.outcome == Outcome::Blocked) {
        for c in &s.causes {
            if !out.contains(c) {
                out.push(c.clone());
            }
        }
        if out.len() >= 3 {
            break;
        }
    }
    out.truncate(3);
    out
}

/// Session-risk findings for one decision: `tags` are the tags of the
/// call(s) being judged (empty for prose), `base_score` their own score.
pub fn findings(
    cfg: &SessionConfig,
    scopes: &Scopes<'_>,
    tags: &[Vec<String>],
    base_score: f64,
    now_ms: i64,
) -> Vec<Finding> {
    let mut out = Vec::new();
    if let Some(s) = scopes.session {
        if let Some(f) = owner_mismatch(s, scopes.agent_id) {
            out.push(f);
        }
    }
    let risky_tags: Vec<&String> = tags
        .iter()
        .flatten()
        .filter(|t| risky(cfg, std::slice::from_ref(*t)))
        .collect();
    if risky_tags.is_empty() {
        // Prose and ordinary work are judged on their own.
        return out;
    }
    let steps = scopes.steps(cfg, now_ms);
    let causes = refusal_causes(&steps);
    let because = if causes.is_empty() {
        String::new()
    } else {
        format!(" after refused calls: {}", causes.join("; "))
    };

    // A refused effect tried again.
    let mut repeated_refusal: Vec<&str> = Vec::new();
    for tag in &risky_tags {
        let earlier = steps
            .iter()
            .rev()
            .find(|s| s.outcome == Outcome::Blocked && s.tags.iter().any(|t| t == *tag));
        if let Some(step) = earlier {
            if repeated_refusal.contains(&tag.as_str()) {
                continue;
            }
            repeated_refusal.push(tag);
            let cause = step
                .causes
                .first()
                .cloned()
                .unwrap_or_else(|| tag.to_string());
            out.push(
                finding(
                    "repeat_of_refused",
                    Severity::Critical,
                    1.0,
                    format!("Repeats an action refused earlier in this session ({tag}; refused for {cause})"),
                )
                .meta("tag", tag.to_string())
                .meta("cause", cause),
            );
        }
    }

    let mut seen: Vec<&str> = Vec::new();
    for tag in tags.iter().flatten() {
        if seen.contains(&tag.as_str()) || !cfg.sensitive_tags.contains(tag) {
            continue;
        }
        seen.push(tag);
        let before = steps
            .iter()
            .filter(|s| s.tags.iter().any(|t| t == tag))
            .count();
        let now = tags.iter().filter(|t| t.contains(tag)).count();
        if before + now >= cfg.repeat_threshold {
            out.push(
                finding(
                    "repeated_action",
                    Severity::High,
                    0.65,
                    format!("Repeated sensitive action across session: {tag}{because}"),
                )
                .meta("tag", tag.clone())
                .meta("count", (before + now).to_string()),
            );
        }
    }

    let (scope, prior) = scopes
        .risks()
        .map(|(name, r)| (name, decayed(cfg, r, now_ms)))
        .fold(
            ("session", 0.0f64),
            |best, cur| {
                if cur.1 > best.1 {
                    cur
                } else {
                    best
                }
            },
        );
    let total = prior + base_score.max(0.0);
    let level = if total >= cfg.block_score {
        Some((
            "cumulative_block",
            Severity::Critical,
            1.0,
            "refused",
            cfg.block_score,
        ))
    } else if total >= cfg.challenge_score {
        Some((
            "cumulative_challenge",
            Severity::High,
            0.7,
            "held for approval",
            cfg.challenge_score,
        ))
    } else {
        None
    };
    if let Some((rule, severity, score, what, threshold)) = level {
        let who = if scope == "agent" { "Agent" } else { "Session" };
        let effects: Vec<&str> = risky_tags.iter().map(|t| t.as_str()).collect();
        let mut f = finding(
            rule,
            severity,
            score,
            format!(
                "{who} cumulative risk {total:.2} ≥ {threshold:.2}{because}; risky effects ({}) are {what} until it decays",
                effects.join(", ")
            ),
        )
        .meta("scope", scope)
        .meta("cumulative", format!("{:.2}", total))
        .meta("threshold", format!("{threshold:.2}"));
        if !causes.is_empty() {
            f = f.meta("causes", causes.join("; "));
        }
        out.push(f);
    }

    let staged = scopes
        .risks()
        .map(|(_, r)| {
            r.staged
                .iter()
                .filter(|s| in_window(cfg, s.at_ms, now_ms))
                .count()
        })
        .max()
        .unwrap_or(0);
    if staged >= cfg.max_staged {
        out.push(
            finding(
                "staged_flood",
                Severity::Critical,
                1.0,
                format!("Too many actions awaiting approval ({staged})."),
            )
            .meta("staged", staged.to_string()),
        );
    }
    out
}

/// The findings that refused (or held) a call, as `rule_id: message`
/// strings for the session's memory: verdicts and high or critical
/// findings that are not masked values, strongest first, at most 3.
pub fn causes_of(a: &Assessment) -> Vec<String> {
    let mut fs: Vec<&Finding> = a
        .findings
        .iter()
        .filter(|f| {
            !f.redactable
                && f.detector != DetectorId::SessionRisk
                && (f.verdict.is_some_and(|v| v >= Decision::Challenge)
                    || f.severity >= Severity::High)
        })
        .collect();
    fs.sort_by(|x, y| {
        y.verdict
            .cmp(&x.verdict)
            .then(y.severity.cmp(&x.severity))
            .then(y.score.total_cmp(&x.score))
    });
    let mut out: Vec<String> = Vec::new();
    for f in fs {
        let c = format!("{}: {}", f.rule_id, f.message);
        if !out.contains(&c) {
            out.push(c);
        }
        if out.len() == 3 {
            break;
        }
    }
    out
}

/// Join session findings to an assessment: they are reported (findings
/// and reasons) and raise the decision to their floor (high → challenge,
/// critical → block), without adding to the score.
pub fn join(mut a: Assessment, extra: Vec<Finding>) -> Assessment {
    let Some(floor) = extra
        .iter()
        .map(|f| {
            if f.severity == Severity::Critical {
                Decision::Block
            } else {
                Decision::Challenge
            }
        })
        .max()
    else {
        return a;
    };
    if floor > a.decision {
        // "No findings" / "low risk" no longer describe the outcome.
        a.evaluation
            .reasons
            .retain(|r| !r.starts_with("No security findings") && !r.starts_with("Low risk"));
        a.decision = floor;
        a.evaluation.decision = a.evaluation.decision.max(floor);
    }
    for f in &extra {
        if !a.evaluation.reasons.contains(&f.message) {
            a.evaluation.reasons.push(f.message.clone());
        }
    }
    a.findings.extend(extra);
    a
}

/// A session used by an agent other than the one that opened it: the
/// original let any caller read or poison any session. A session opened
/// without an agent identity has no owner to protect.
pub fn owner_mismatch(session: &SessionState, agent_id: &str) -> Option<Finding> {
    (!session.agent_id.is_empty() && session.agent_id != agent_id).then(|| {
        finding(
            "owner_mismatch",
            Severity::Critical,
            1.0,
            "Session belongs to another agent.".to_string(),
        )
    })
}

/// What one request did, to be remembered by its scopes.
#[derive(Debug, Clone, Default)]
pub struct Record {
    /// Calls let through or refused (tool, tags, outcome).
    pub steps: Vec<(String, Vec<String>, Outcome)>,
    /// Calls now waiting for an operator.
    pub staged: Vec<Staged>,
    /// Approvals spent by this request (their staged entries are cleared).
    pub released: Vec<String>,
    /// Base score (without session findings) added to the cumulative risk:
    /// executed and refused work counts, staged work does not (it has not
    /// happened; it counts when released).
    pub score: f64,
    /// The request's final decision.
    pub decision: String,
    /// Count a request (false for the second stage of the same request).
    pub new_request: bool,
    /// For refused steps: the findings that refused them (`rule: message`).
    pub causes: Vec<String>,
    /// The session id was derived from the agent and the conversation's
    /// opening, not given by the caller: nobody else can name it, so it
    /// needs no stored owner to stay the agent's.
    pub session_derived: bool,
}

impl Record {
    /// Whether a session this record would open has nothing to remember
    /// beyond having been seen once: an allowed request with no calls, no
    /// risk and no memory touched. Judging the session's next request
    /// gives the same answer with or without such a record.
    pub fn opens_nothing(&self, memory: &[String]) -> bool {
        self.steps.is_empty()
            && self.staged.is_empty()
            && self.released.is_empty()
            && self.causes.is_empty()
            && self.score <= 0.0
            && memory.is_empty()
            && matches!(self.decision.as_str(), "" | "allow")
    }
}

/// Apply a record to one scope's risk memory.
pub fn remember(cfg: &SessionConfig, r: &mut RiskState, rec: &Record, now_ms: i64) {
    r.cumulative = decayed(cfg, r, now_ms) + rec.score.max(0.0);
    r.as_of_ms = now_ms;
    for (tool, tags, outcome) in &rec.steps {
        r.steps.push(Step {
            at_ms: now_ms,
            tool: tool.clone(),
            tags: tags.clone(),
            outcome: *outcome,
            causes: if *outcome == Outcome::Blocked {
                rec.causes.clone()
            } else {
                Vec::new()
            },
        });
    }
    r.steps.retain(|s| in_window(cfg, s.at_ms, now_ms));
    let excess = r.steps.len().saturating_sub(cfg.max_history);
    r.steps.drain(..excess);

    r.staged
        .retain(|s| in_window(cfg, s.at_ms, now_ms) && !rec.released.contains(&s.approval_id));
    for s in &rec.staged {
        if !r.staged.iter().any(|x| x.approval_id == s.approval_id) {
            r.staged.push(s.clone());
        }
    }
    let excess = r.staged.len().saturating_sub(cfg.max_history);
    r.staged.drain(..excess);
}

/// Apply a record to a session, with the markers the session view shows.
pub fn remember_session(
    cfg: &SessionConfig,
    s: &mut SessionState,
    rec: &Record,
    memory: &[String],
    now_ms: i64,
) {
    remember(cfg, &mut s.risk, rec, now_ms);
    s.updated_ms = now_ms;
    s.request_count += u64::from(rec.new_request);
    if !rec.decision.is_empty() {
        s.decisions.push(rec.decision.clone());
        let excess = s.decisions.len().saturating_sub(MAX_DECISIONS);
        s.decisions.drain(..excess);
    }
    for m in markers(cfg, rec, memory) {
        push_capped(&mut s.sensitive_markers, m, MAX_MARKERS);
    }
    for m in memory {
        push_capped(&mut s.memory_touched, m.clone(), MAX_MARKERS);
    }
}

/// The `action:<tag>` and `memory:<masked path>` markers a record adds to
/// its session, in order.
pub fn markers(cfg: &SessionConfig, rec: &Record, memory: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    for (_, tags, _) in &rec.steps {
        for t in tags.iter().filter(|t| cfg.sensitive_tags.contains(t)) {
            out.push(format!("action:{t}"));
        }
    }
    for m in memory {
        let lower = m.to_lowercase();
        if ["secret", "vault", "token", "key", "credential"]
            .iter()
            .any(|w| lower.contains(w))
        {
            out.push(format!("memory:{m}"));
        }
    }
    out
}

/// Apply a record to an agent.
pub fn remember_agent(
    cfg: &SessionConfig,
    a: &mut AgentState,
    rec: &Record,
    session_id: &str,
    now_ms: i64,
) {
    remember(cfg, &mut a.risk, rec, now_ms);
    a.updated_ms = now_ms;
    a.request_count += u64::from(rec.new_request);
    if !session_id.is_empty() {
        a.sessions.retain(|s| s != session_id);
        a.sessions.push(session_id.to_string());
        let excess = a.sessions.len().saturating_sub(MAX_SESSIONS_PER_AGENT);
        a.sessions.drain(..excess);
    }
}

fn push_capped(list: &mut Vec<String>, item: String, cap: usize) {
    if list.len() < cap && !list.contains(&item) {
        list.push(item);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> SessionConfig {
        SessionConfig::default()
    }

    fn tags(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    fn executed(tool: &str, t: &[&str], score: f64) -> Record {
        Record {
            steps: vec![(tool.into(), tags(t), Outcome::Executed)],
            score,
            decision: "allow".into(),
            new_request: true,
            ..Record::default()
        }
    }

    fn rule_ids(f: &[Finding]) -> Vec<String> {
        f.iter().map(|f| f.rule_id.clone()).collect()
    }

    #[test]
    fn cumulative_risk_escalates_like_the_original() {
        // After one permitted shell call (0.7), the next one crosses the
        // challenge threshold (0.7 + 0.7 ≥ 1.2).
        let c = SessionConfig {
            half_life_secs: 0,
            ..cfg()
        };
        let mut s = SessionState::new("s", "a", 0);
        let scopes = Scopes {
            session: Some(&s),
            agent: None,
            agent_id: "a",
        };
        assert!(findings(&c, &scopes, &[tags(&["shell"])], 0.7, 0).is_empty());
        remember_session(&c, &mut s, &executed("shell", &["shell"], 0.7), &[], 0);
        let scopes = Scopes {
            session: Some(&s),
            agent: None,
            agent_id: "a",
        };
        let f = findings(&c, &scopes, &[tags(&["shell"])], 0.7, 1);
        assert_eq!(rule_ids(&f), ["session.cumulative_challenge"]);
        assert_eq!(f[0].severity, Severity::High);
        let f = findings(&c, &scopes, &[tags(&["shell"])], 1.2, 1);
        assert_eq!(rule_ids(&f), ["session.cumulative_block"]);
    }

    #[test]
    fn risk_decays_with_the_half_life() {
        let c = SessionConfig {
            half_life_secs: 60,
            ..cfg()
        };
        let mut r = RiskState::default();
        remember(&c, &mut r, &executed("shell", &["shell"], 1.0), 0);
        assert!((decayed(&c, &r, 60_000) - 0.5).abs() < 1e-9);
        assert!((decayed(&c, &r, 120_000) - 0.25).abs() < 1e-9);
        remember(&c, &mut r, &executed("x", &[], 0.5), 60_000);
        assert!((r.cumulative - 1.0).abs() < 1e-9);
    }

    #[test]
    fn repetition_counts_within_the_window() {
        let c = cfg();
        let mut a = AgentState::new("a", 0);
        for t in [0, 1000] {
            remember_agent(&c, &mut a, &executed("bash", &["shell"], 0.0), "s", t);
        }
        let scopes = Scopes {
            session: None,
            agent: Some(&a),
            agent_id: "a",
        };
        let f = findings(&c, &scopes, &[tags(&["shell"])], 0.0, 2000);
        assert_eq!(rule_ids(&f), ["session.repeated_action"]);
        // An hour later the earlier calls have left the window.
        let later = 1000 + c.window_secs as i64 * 1000;
        assert!(findings(&c, &scopes, &[tags(&["shell"])], 0.0, later).is_empty());
        assert!(history(&c, &scopes, later).is_empty());
    }

    #[test]
    fn rotating_the_session_keeps_the_agents_risk() {
        let c = SessionConfig {
            half_life_secs: 0,
            ..cfg()
        };
        let mut agent = AgentState::new("a", 0);
        let mut old = SessionState::new("s1", "a", 0);
        let rec = executed("shell", &["shell", "credential_access"], 1.0);
        remember_session(&c, &mut old, &rec, &[], 0);
        remember_agent(&c, &mut agent, &rec, "s1", 0);
        let fresh = SessionState::new("s2", "a", 10);
        let scopes = Scopes {
            session: Some(&fresh),
            agent: Some(&agent),
            agent_id: "a",
        };
        let f = findings(&c, &scopes, &[tags(&["fetch", "network"])], 0.3, 10);
        assert_eq!(rule_ids(&f), ["session.cumulative_challenge"]);
        assert_eq!(f[0].metadata["scope"], "agent");
        assert_eq!(
            history(&c, &scopes, 10),
            vec![tags(&["shell", "credential_access"])]
        );
    }

    #[test]
    fn history_merges_scopes_without_duplicates() {
        let c = cfg();
        let mut agent = AgentState::new("a", 0);
        let mut s = SessionState::new("s", "a", 0);
        let rec = executed("read_memory", &["memory_read"], 0.0);
        remember_session(&c, &mut s, &rec, &[], 5);
        remember_agent(&c, &mut agent, &rec, "s", 5);
        let scopes = Scopes {
            session: Some(&s),
            agent: Some(&agent),
            agent_id: "a",
        };
        assert_eq!(history(&c, &scopes, 6), vec![tags(&["memory_read"])]);
    }

    #[test]
    fn staged_actions_do_not_accumulate_but_flood_is_flagged() {
        let c = cfg();
        let mut s = SessionState::new("s", "a", 0);
        for i in 0..c.max_staged {
            let rec = Record {
                staged: vec![Staged {
                    at_ms: i as i64,
                    tool: "shell".into(),
                    approval_id: format!("ap{i}"),
                }],
                score: 0.0,
                decision: "require_approval".into(),
                ..Record::default()
            };
            remember_session(&c, &mut s, &rec, &[], i as i64);
        }
        assert_eq!(s.risk.cumulative, 0.0);
        let scopes = Scopes {
            session: Some(&s),
            agent: None,
            agent_id: "a",
        };
        assert_eq!(
            rule_ids(&findings(&c, &scopes, &[tags(&["network_send"])], 0.0, 10)),
            ["session.staged_flood"]
        );
        // Reads go on while approvals wait.
        assert!(findings(&c, &scopes, &[tags(&["read"])], 0.0, 10).is_empty());
        // Releasing one clears it from the staged list.
        let rec = Record {
            released: vec!["ap0".into()],
            ..executed("shell", &["shell"], 0.7)
        };
        remember_session(&c, &mut s, &rec, &[], 20);
        assert_eq!(s.risk.staged.len(), c.max_staged - 1);
    }

    #[test]
    fn session_findings_set_a_floor_not_a_score() {
        let policy = crate::Policy::load("production", None).unwrap();
        let base = crate::decide(&policy, Vec::new(), crate::Masking::None);
        assert_eq!(base.decision, Decision::Allow);
        let high = finding("repeated_action", Severity::High, 0.65, "again".into());
        let a = join(base.clone(), vec![high.clone()]);
        // production blocks on one high finding; a session finding only asks.
        assert_eq!(a.decision, Decision::Challenge);
        assert_eq!(a.evaluation.total_score, 0.0);
        assert_eq!(a.reasons(), ["again"]);
        let crit = finding("owner_mismatch", Severity::Critical, 1.0, "theirs".into());
        assert_eq!(join(base, vec![high, crit]).decision, Decision::Block);
    }

    #[test]
    fn foreign_agent_is_flagged() {
        let s = SessionState::new("s", "owner", 0);
        let other = AgentState::new("intruder", 0);
        let scopes = Scopes {
            session: Some(&s),
            agent: Some(&other),
            agent_id: "intruder",
        };
        let f = findings(&cfg(), &scopes, &[], 0.0, 1);
        assert_eq!(rule_ids(&f), ["session.owner_mismatch"]);
        assert_eq!(f[0].severity, Severity::Critical);
        // A session opened anonymously has no owner to protect.
        let anon = SessionState::new("s", "", 0);
        assert!(owner_mismatch(&anon, "whoever").is_none());
    }

    fn refused(tool: &str, t: &[&str], score: f64, cause: &str) -> Record {
        Record {
            steps: vec![(tool.into(), tags(t), Outcome::Blocked)],
            score,
            decision: "block".into(),
            new_request: true,
            causes: vec![cause.to_string()],
            ..Record::default()
        }
    }

    #[test]
    fn escalation_is_proportionate_and_names_its_cause() {
        let c = SessionConfig {
            challenge_score: 0.5,
            block_score: 1.5,
            half_life_secs: 3600,
            ..cfg()
        };
        let mut s = SessionState::new("s", "a", 0);
        let cause = "tool.effect.credential_read: SSH private key (credential_read)";
        remember_session(
            &c,
            &mut s,
            &refused(
                "Bash",
                &["credential_read", "credential_access"],
                1.0,
                cause,
            ),
            &[],
            0,
        );
        let scopes = Scopes {
            session: Some(&s),
            agent: None,
            agent_id: "a",
        };
        // Reads, builds, tests and edits still pass; so does prose.
        for calm in [&["read"][..], &["build"], &["vcs", "write"], &[]] {
            assert!(
                findings(&c, &scopes, &[tags(calm)], 0.0, 1000).is_empty(),
                "{calm:?}"
            );
        }
        // A risky effect now needs a human, and the finding says why.
        let f = findings(&c, &scopes, &[tags(&["push"])], 0.0, 1000);
        assert_eq!(rule_ids(&f), ["session.cumulative_challenge"]);
        assert_eq!(f[0].severity, Severity::High);
        assert!(f[0].message.contains(cause), "{}", f[0].message);
        // The refused action tried again stays refused.
        let f = findings(&c, &scopes, &[tags(&["credential_read"])], 1.0, 1000);
        assert!(
            rule_ids(&f).contains(&"session.repeat_of_refused".to_string()),
            "{f:?}"
        );
        assert!(f.iter().any(|f| f.severity == Severity::Critical
            && f.message.contains("tool.effect.credential_read")));
        // A second refusal makes risky effects refused, still not reads.
        remember_session(
            &c,
            &mut s,
            &refused("Bash", &["shell"], 1.0, "tool.effect.shell: x"),
            &[],
            2000,
        );
        let scopes = Scopes {
            session: Some(&s),
            agent: None,
            agent_id: "a",
        };
        let f = findings(&c, &scopes, &[tags(&["push"])], 0.0, 3000);
        assert_eq!(rule_ids(&f), ["session.cumulative_block"]);
        assert!(findings(&c, &scopes, &[tags(&["read"])], 0.0, 3000).is_empty());
        // Risk decays: three half-lives later the session is calm again.
        let later = 3000 + 3 * 3600 * 1000;
        assert!(findings(&c, &scopes, &[tags(&["push"])], 0.0, later).is_empty());
        // Refused steps do not feed chains (nothing was obtained).
        assert!(history(&c, &scopes, 3000).is_empty());
    }

    #[test]
    fn markers_and_bounds() {
        let c = cfg();
        let mut s = SessionState::new("s", "a", 0);
        for i in 0..200 {
            remember_session(
                &c,
                &mut s,
                &executed("shell", &["shell"], 0.0),
                &[format!("/vault/key{i}")],
                i,
            );
        }
        assert_eq!(s.risk.steps.len(), c.max_history);
        assert!(s.sensitive_markers.contains(&"action:shell".to_string()));
        assert!(s.sensitive_markers.len() <= 64 && s.memory_touched.len() <= 64);
        assert_eq!(s.request_count, 200);
    }
}
