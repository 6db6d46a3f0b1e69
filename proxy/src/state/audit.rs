//! The audit log: one append-only record per decision, keyed by a
//! monotonically increasing id so scans come back in time order. Records
//! never hold raw secrets: findings carry masked evidence and targets are
//! redacted before they are written.

use super::{Store, StoreError};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditFinding {
    pub rule_id: String,
    pub detector: String,
    pub severity: String,
    pub score: f64,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evidence: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEvent {
    #[serde(default)]
    pub seq: u64,
    /// RFC 3339, UTC.
    pub time: String,
    pub request_id: String,
    #[serde(default)]
    pub session_id: String,
    #[serde(default)]
    pub agent_id: String,
    /// Route name, or `inspect_api` for `/inspect/*` calls.
    pub route: String,
    pub dialect: String,
    /// `request`, `response`, `inspect`, `connect` …
    pub stage: String,
    pub decision: String,
    pub total_score: f64,
    pub reasons: Vec<String>,
    pub findings: Vec<AuditFinding>,
    /// Tool calls judged, `name: decision`, targets masked.
    #[serde(default)]
    pub tools: Vec<String>,
    #[serde(default)]
    pub masked: usize,
    pub policy_version: String,
    pub latency_ms: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
}

impl Store {
    /// Append one event; returns its sequence number.
    pub fn append_audit(&self, event: &AuditEvent) -> Result<u64, StoreError> {
        let seq = self.db.generate_id()?;
        let mut record = event.clone();
        record.seq = seq;
        let bytes = serde_json::to_vec(&record).map_err(|e| StoreError::Corrupt {
            tree: "audit",
            message: e.to_string(),
        })?;
        self.audit.insert(seq.to_be_bytes(), bytes)?;
        Ok(seq)
    }

    /// The newest `limit` events, newest first.
    pub fn audit_tail(&self, limit: usize) -> Result<Vec<AuditEvent>, StoreError> {
        let mut out = Vec::with_capacity(limit.min(1024));
        for item in self.audit.iter().rev().take(limit) {
            let (_, v) = item?;
            out.push(serde_json::from_slice(&v).map_err(|e| StoreError::Corrupt {
                tree: "audit",
                message: e.to_string(),
            })?);
        }
        Ok(out)
    }

    pub fn audit_len(&self) -> usize {
        self.audit.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(id: &str) -> AuditEvent {
        AuditEvent {
            seq: 0,
            time: "2026-01-01T00:00:00Z".into(),
            request_id: id.into(),
            session_id: String::new(),
            agent_id: String::new(),
            route: "default".into(),
            dialect: "openai_chat".into(),
            stage: "request".into(),
            decision: "allow".into(),
            total_score: 0.0,
            reasons: vec![],
            findings: vec![],
            tools: vec![],
            masked: 0,
            policy_version: "dev@x".into(),
            latency_ms: 1.0,
            status: Some(200),
            path: None,
        }
    }

    #[test]
    fn tail_is_newest_first_and_survives_reopen() {
        let (store, dir) = super::super::temp_store();
        for i in 0..5 {
            store.append_audit(&event(&format!("r{i}"))).unwrap();
        }
        let tail = store.audit_tail(2).unwrap();
        assert_eq!(
            tail.iter()
                .map(|e| e.request_id.as_str())
                .collect::<Vec<_>>(),
            ["r4", "r3"]
        );
        store.flush().unwrap();
        drop(store);
        let again = Store::open(&dir).unwrap();
        assert_eq!(again.audit_len(), 5);
        std::fs::remove_dir_all(dir).ok();
    }
}
