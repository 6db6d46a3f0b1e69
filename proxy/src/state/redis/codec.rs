//! Values in Redis ↔ today's types.
//!
//! Sessions and agents are hashes whose numbers are fields and whose lists
//! are one entry per line, so `record.lua` can apply `session::remember`
//! without a JSON library (Redis' cjson turns empty arrays into objects and
//! rounds numbers). Approvals are a hash: the template as JSON (`body`,
//! written once) plus the fields transitions change (`status`, resolution,
//! use), so a script changes a status without re-encoding the record.

use crate::decision::approvals::{Approval, ApprovalStatus};
use crate::decision::session::{AgentState, RiskState, Staged, Step};
use crate::state::seam::StoreError;
use redis::Value;
use std::collections::HashMap;

pub type Fields = HashMap<String, String>;

fn corrupt(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("{what}: {e}"))
}

fn text(v: &Value) -> Option<String> {
    match v {
        Value::BulkString(b) => Some(String::from_utf8_lossy(b).into_owned()),
        Value::SimpleString(s) => Some(s.clone()),
        Value::Int(i) => Some(i.to_string()),
        Value::Okay => Some("OK".into()),
        _ => None,
    }
}

pub fn string(v: &Value, what: &str) -> Result<String, StoreError> {
    text(v).ok_or_else(|| corrupt(what, format!("expected a string, got {v:?}")))
}

/// A hash reply (flat array in RESP2, map in RESP3).
pub fn fields(v: &Value) -> Result<Fields, StoreError> {
    match v {
        Value::Array(items) => {
            let mut out = Fields::with_capacity(items.len() / 2);
            for pair in items.chunks(2) {
                if let [k, val] = pair {
                    out.insert(string(k, "hash field")?, string(val, "hash value")?);
                }
            }
            Ok(out)
        }
        Value::Map(pairs) => pairs
            .iter()
            .map(|(k, val)| Ok((string(k, "hash field")?, string(val, "hash value")?)))
            .collect(),
        Value::Nil => Ok(Fields::new()),
        other => Err(corrupt("hash", format!("unexpected reply {other:?}"))),
    }
}

fn int(f: &Fields, k: &str) -> i64 {
    f.get(k).map(|v| parse_int(v)).unwrap_or(0)
}

/// Integers written by Lua may come back as `1.7e+12`.
fn parse_int(v: &str) -> i64 {
    v.parse::<i64>()
        .unwrap_or_else(|_| v.parse::<f64>().map(|x| x as i64).unwrap_or(0))
}

fn opt_int(f: &Fields, k: &str) -> Option<i64> {
    f.get(k).filter(|v| !v.is_empty()).map(|v| parse_int(v))
}

fn lines<'a>(f: &'a Fields, k: &str) -> impl Iterator<Item = &'a str> {
    f.get(k)
        .map(String::as_str)
        .unwrap_or("")
        .split('\n')
        .filter(|l| !l.is_empty())
}

fn json_list(f: &Fields, k: &str, what: &str) -> Result<Vec<String>, StoreError> {
    lines(f, k)
        .map(|l| serde_json::from_str::<String>(l).map_err(|e| corrupt(what, e)))
        .collect()
}

fn risk(f: &Fields, what: &str) -> Result<RiskState, StoreError> {
    let steps = lines(f, "steps")
        .map(|l| {
            let json = l.split_once(' ').map(|(_, j)| j).unwrap_or("");
            serde_json::from_str::<Step>(json).map_err(|e| corrupt(what, e))
        })
        .collect::<Result<_, _>>()?;
    let staged = lines(f, "staged")
        .map(|l| {
            let json = l.splitn(3, ' ').nth(2).unwrap_or("");
            serde_json::from_str::<Staged>(json).map_err(|e| corrupt(what, e))
        })
        .collect::<Result<_, _>>()?;
    Ok(RiskState {
        cumulative: f
            .get("cum")
            .and_then(|c| c.parse::<f64>().ok())
            .filter(|c| c.is_finite())
            .unwrap_or(0.0),
        as_of_ms: int(f, "asof"),
        steps,
        staged,
    })
}

/// A session hash, or `None` for an absent key.
pub fn session(f: &Fields) -> Result<Option<crate::decision::session::SessionState>, StoreError> {
    let Some(id) = f.get("id") else {
        return Ok(None);
    };
    Ok(Some(crate::decision::session::SessionState {
        session_id: id.clone(),
        agent_id: f.get("owner").cloned().unwrap_or_default(),
        created_ms: int(f, "created"),
        updated_ms: int(f, "updated"),
        ended_ms: None,
        request_count: int(f, "req").max(0) as u64,
        risk: risk(f, "session")?,
        decisions: json_list(f, "decisions", "session")?,
        sensitive_markers: json_list(f, "markers", "session")?,
        memory_touched: json_list(f, "memory", "session")?,
    }))
}

/// An agent hash, or `None` for an absent key.
pub fn agent(f: &Fields) -> Result<Option<AgentState>, StoreError> {
    let Some(id) = f.get("id") else {
        return Ok(None);
    };
    Ok(Some(AgentState {
        agent_id: id.clone(),
        created_ms: int(f, "created"),
        updated_ms: int(f, "updated"),
        request_count: int(f, "req").max(0) as u64,
        sessions: json_list(f, "sessions", "agent")?,
        risk: risk(f, "agent")?,
    }))
}

/// An approval hash: the template with the transition fields laid over.
pub fn approval(f: &Fields) -> Result<Approval, StoreError> {
    let body = f
        .get("body")
        .ok_or_else(|| corrupt("approval", "no body"))?;
    let mut a: Approval = serde_json::from_str(body).map_err(|e| corrupt("approval", e))?;
    a.approval_id = f.get("id").cloned().unwrap_or_default();
    let status = f.get("status").map(String::as_str).unwrap_or("");
    a.status = ApprovalStatus::parse(status)
        .ok_or_else(|| corrupt("approval", format!("unknown status {status:?}")))?;
    a.created_ms = int(f, "created");
    a.expires_ms = int(f, "expires");
    a.resolved_ms = opt_int(f, "resolved");
    let s = |k: &str| f.get(k).cloned().unwrap_or_default();
    if a.resolved_ms.is_some() {
        a.resolver = s("resolver");
        a.resolver_credential = s("cred");
        a.note = s("note");
    }
    a.permit_sha256 = f.get("psha").cloned().filter(|p| !p.is_empty());
    a.permit_expires_ms = opt_int(f, "pexp");
    a.used_ms = opt_int(f, "used_ms");
    a.used_by = f.get("used_by").cloned();
    Ok(a)
}

/// A step line: `<at_ms> <json>` (the script reads the time).
pub fn step_line(s: &Step) -> String {
    format!(
        "{} {}",
        s.at_ms,
        serde_json::to_string(s).unwrap_or_default()
    )
}

/// A staged line: `<at_ms> <approval id> <json>`; `None` for an id a
/// line cannot carry (store-made ids are hex).
pub fn staged_line(s: &Staged) -> Option<String> {
    let ok = !s.approval_id.is_empty() && !s.approval_id.contains(char::is_whitespace);
    ok.then(|| {
        format!(
            "{} {} {}",
            s.at_ms,
            s.approval_id,
            serde_json::to_string(s).unwrap_or_default()
        )
    })
}

/// A list entry: a JSON string (never a raw newline).
pub fn entry(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decision::session::Outcome;

    fn hash(pairs: &[(&str, &str)]) -> Fields {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn lines_round_trip_awkward_text() {
        let step = Step {
            at_ms: 5,
            tool: "a \"b\"\nc".into(),
            tags: vec!["shell".into()],
            outcome: Outcome::Blocked,
        };
        let staged = Staged {
            at_ms: 6,
            tool: "t x".into(),
            approval_id: "ab12".into(),
        };
        let f = hash(&[
            ("id", "s 1"),
            ("owner", "a"),
            ("req", "2"),
            ("cum", "0.30000000000000004"),
            ("asof", "1.7e+12"),
            ("steps", &step_line(&step)),
            ("staged", &staged_line(&staged).unwrap()),
            ("memory", &format!("{}\n{}", entry("/x\ny"), entry("z"))),
        ]);
        assert!(!step_line(&step).contains('\n'));
        let s = session(&f).unwrap().unwrap();
        assert_eq!(s.risk.steps, [step]);
        assert_eq!(s.risk.staged, [staged]);
        assert_eq!(s.risk.as_of_ms, 1_700_000_000_000);
        assert_eq!(s.risk.cumulative, 0.30000000000000004);
        assert_eq!(s.memory_touched, ["/x\ny", "z"]);
        assert!(session(&Fields::new()).unwrap().is_none());
        assert!(staged_line(&Staged {
            approval_id: "a b".into(),
            ..Staged {
                at_ms: 0,
                tool: String::new(),
                approval_id: String::new()
            }
        })
        .is_none());
    }

    #[test]
    fn corrupt_values_are_errors_not_defaults() {
        let f = hash(&[("id", "s"), ("steps", "1 {not json")]);
        assert!(matches!(session(&f), Err(StoreError::Corrupt(_))));
        let a = hash(&[("id", "x"), ("body", "{}"), ("status", "pending")]);
        assert!(matches!(approval(&a), Err(StoreError::Corrupt(_))));
    }
}
