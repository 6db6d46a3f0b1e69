//! Values in Redis ↔ today's types.
//!
//! A session or agent is a hash of numbers (`cum`, `asof`, `req`, times,
//! owner) plus one Redis list per list field, so `record.lua` applies
//! `session::remember` with list commands and never copies a long string
//! into Lua. Entries the scripts read carry a prefix: steps
//! `<at_ms> <json>`, staged `<at_ms> <approval id> <json>`. Approvals are a
//! hash: the template as JSON (`body`, written once) plus the fields
//! transitions change (`status`, resolution, use), so a script changes a
//! status without re-encoding the record.

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

/// A list reply.
pub fn list(v: &Value) -> Result<Vec<String>, StoreError> {
    match v {
        Value::Array(items) => items.iter().map(|i| string(i, "list entry")).collect(),
        Value::Nil => Ok(Vec::new()),
        other => Err(corrupt("list", format!("unexpected reply {other:?}"))),
    }
}

fn risk(
    f: &Fields,
    steps: &[String],
    staged: &[String],
    what: &str,
) -> Result<RiskState, StoreError> {
    let steps = steps
        .iter()
        .map(|l| {
            let json = l.split_once(' ').map(|(_, j)| j).unwrap_or("");
            serde_json::from_str::<Step>(json).map_err(|e| corrupt(what, e))
        })
        .collect::<Result<_, _>>()?;
    let staged = staged
        .iter()
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

/// A session: its hash and its lists (steps, staged, decisions, markers,
/// memory), or `None` for an absent hash.
pub fn session(
    f: &Fields,
    lists: [Vec<String>; 5],
) -> Result<Option<crate::decision::session::SessionState>, StoreError> {
    let Some(id) = f.get("id") else {
        return Ok(None);
    };
    let [steps, staged, decisions, markers, memory] = lists;
    Ok(Some(crate::decision::session::SessionState {
        session_id: id.clone(),
        agent_id: f.get("owner").cloned().unwrap_or_default(),
        created_ms: int(f, "created"),
        updated_ms: int(f, "updated"),
        ended_ms: None,
        request_count: int(f, "req").max(0) as u64,
        risk: risk(f, &steps, &staged, "session")?,
        decisions,
        sensitive_markers: markers,
        memory_touched: memory,
    }))
}

/// An agent: its hash and its lists (steps, staged, sessions).
pub fn agent(f: &Fields, lists: [Vec<String>; 3]) -> Result<Option<AgentState>, StoreError> {
    let Some(id) = f.get("id") else {
        return Ok(None);
    };
    let [steps, staged, sessions] = lists;
    Ok(Some(AgentState {
        agent_id: id.clone(),
        created_ms: int(f, "created"),
        updated_ms: int(f, "updated"),
        request_count: int(f, "req").max(0) as u64,
        sessions,
        risk: risk(f, &steps, &staged, "agent")?,
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
    fn entries_round_trip_awkward_text() {
        let step = Step {
            at_ms: 5,
            tool: "a \"b\"\nc".into(),
            tags: vec!["shell".into()],
            outcome: Outcome::Blocked,
            causes: vec!["tool.effect.shell: Interactive shell (shell)".into()],
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
        ]);
        let lists = [
            vec![step_line(&step)],
            vec![staged_line(&staged).unwrap()],
            vec![],
            vec![],
            vec!["/x\ny".to_string(), "z".into()],
        ];
        let s = session(&f, lists).unwrap().unwrap();
        assert_eq!(s.risk.steps, [step]);
        assert_eq!(s.risk.staged, [staged]);
        assert_eq!(s.risk.as_of_ms, 1_700_000_000_000);
        assert_eq!(s.risk.cumulative, 0.30000000000000004);
        assert_eq!(s.memory_touched, ["/x\ny", "z"]);
        assert!(session(&Fields::new(), Default::default())
            .unwrap()
            .is_none());
        assert!(staged_line(&Staged {
            at_ms: 0,
            tool: String::new(),
            approval_id: "a b".into(),
        })
        .is_none());
    }

    #[test]
    fn corrupt_values_are_errors_not_defaults() {
        let f = hash(&[("id", "s")]);
        let lists = [
            vec!["1 {not json".to_string()],
            vec![],
            vec![],
            vec![],
            vec![],
        ];
        assert!(matches!(session(&f, lists), Err(StoreError::Corrupt(_))));
        let a = hash(&[("id", "x"), ("body", "{}"), ("status", "pending")]);
        assert!(matches!(approval(&a), Err(StoreError::Corrupt(_))));
    }
}
