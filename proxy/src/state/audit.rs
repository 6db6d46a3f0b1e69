//! The audit log: one append-only record per decision, keyed by a
//! monotonically increasing id so scans come back in time order. Records
//! never hold raw secrets: findings carry masked evidence and targets are
//! redacted before they are written.
//!
//! A second tree indexes records by session for timelines. Retention (by
//! age and by size) deletes from the oldest end; see [`super::retention`].

use super::{corrupt, decode, Store, StoreError};
use serde::{Deserialize, Serialize};
use std::cell::RefCell;
use std::io::Write;
use std::sync::atomic::Ordering;

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

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
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
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub turn_id: String,
    /// Approvals opened or spent by this request.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub approvals: Vec<String>,
}

pub(super) fn session_key(session_id: &str, seq: u64) -> Vec<u8> {
    let id = session_id.as_bytes();
    let len = id.len().min(u16::MAX as usize);
    let mut k = Vec::with_capacity(2 + len + 8);
    k.extend_from_slice(&(len as u16).to_be_bytes());
    k.extend_from_slice(&id[..len]);
    k.extend_from_slice(&seq.to_be_bytes());
    k
}

/// How every encoded [`AuditEvent`] starts (`seq` is its first field).
const SEQ_KEY: &[u8] = b"{\"seq\":";

fn session_prefix(session_id: &str) -> Vec<u8> {
    let mut k = session_key(session_id, 0);
    k.truncate(k.len() - 8);
    k
}

pub(super) fn seq_of(key: &[u8]) -> u64 {
    key.try_into().map(u64::from_be_bytes).unwrap_or(0)
}

/// How far back a session's timeline is looked for in the fleet's tail.
const FLEET_TAIL_SCAN: usize = 5_000;

impl Store {
    /// Append one event; returns its sequence number. The record is
    /// journaled (not yet on disk, not yet listed) when this returns; it is
    /// durable once [`Store::durable`] returns.
    pub fn append_audit(&self, event: &AuditEvent) -> Result<u64, StoreError> {
        thread_local! {
            static JSON: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
        }
        JSON.with_borrow_mut(|json| {
            json.clear();
            serde_json::to_writer(&mut *json, event).map_err(|e| corrupt("audit", e))?;
            // `seq` is the first field; the journal assigns it under its
            // lock, so the JSON is encoded here and only the number spliced.
            let rest = json
                .strip_prefix(SEQ_KEY)
                .map(|r| &r[r.iter().take_while(|b| b.is_ascii_digit()).count()..])
                .ok_or_else(|| corrupt("audit", "record does not start with its seq"))?;
            let len = json.len() as u64;
            let stored = |seq: u64, out: &mut Vec<u8>| {
                out.extend_from_slice(SEQ_KEY);
                let _ = write!(out, "{seq}");
                out.extend_from_slice(rest);
            };
            let seq = self
                .journal
                .append(&event.session_id, |seq, out| stored(seq, out));
            // The copies for stdout and the fleet's tail (off unless
            // configured) carry the same bytes and seq as the stored record.
            if let Some(t) = self.audit_tee.get() {
                let mut bytes = Vec::with_capacity(json.len() + 8);
                stored(seq, &mut bytes);
                t.send(&bytes);
            }
            if let Some(s) = self.shared() {
                let mut record = event.clone();
                record.seq = seq;
                s.tail_push(&record);
            }
            self.audit_bytes.fetch_add(len, Ordering::Relaxed);
            self.stats.record(
                super::now_ms(),
                &event.decision,
                event.findings.iter().map(|f| family(&f.rule_id)),
            );
            Ok(seq)
        })
    }

    /// The newest `limit` events, newest first.
    pub fn audit_tail(&self, limit: usize) -> Result<Vec<AuditEvent>, StoreError> {
        if let Some(s) = self.fleet_tail() {
            let mut list = s.tail(None, limit)?;
            list.reverse();
            return Ok(list);
        }
        self.journal.settle();
        let mut out = Vec::with_capacity(limit.min(1024));
        for item in self.audit.iter().rev().take(limit) {
            let (_, v) = item?;
            out.push(decode("audit", &v)?);
        }
        Ok(out)
    }

    /// Up to `limit` events with `seq > after` (all, from the first, for
    /// `None`), oldest first. For tailing, pass the last seq seen.
    pub fn audit_after(
        &self,
        after: Option<u64>,
        limit: usize,
    ) -> Result<Vec<AuditEvent>, StoreError> {
        if let Some(s) = self.fleet_tail() {
            return s.tail(Some(after.unwrap_or(0)), limit);
        }
        self.journal.settle();
        let start = match after {
            Some(seq) => match seq.checked_add(1) {
                Some(next) => next,
                None => return Ok(Vec::new()),
            },
            None => 0,
        };
        let mut out = Vec::with_capacity(limit.min(1024));
        for item in self.audit.range(start.to_be_bytes()..).take(limit) {
            let (_, v) = item?;
            out.push(decode("audit", &v)?);
        }
        Ok(out)
    }

    /// The newest `limit` events of a session, newest first.
    pub fn audit_for_session(
        &self,
        session_id: &str,
        limit: usize,
    ) -> Result<Vec<AuditEvent>, StoreError> {
        if let Some(s) = self.fleet_tail() {
            // The tail is capped: a session's events still in it.
            let mut list = s.tail(None, FLEET_TAIL_SCAN)?;
            list.retain(|e| e.session_id == session_id);
            list.reverse();
            list.truncate(limit);
            return Ok(list);
        }
        self.journal.settle();
        let prefix = session_prefix(session_id);
        let mut out = Vec::new();
        for item in self.audit_session.scan_prefix(&prefix).rev() {
            if out.len() >= limit {
                break;
            }
            let (k, _) = item?;
            let seq = seq_of(&k[prefix.len()..]);
            // Retention may have removed the record before its index entry.
            if let Some(v) = self.audit.get(seq.to_be_bytes())? {
                out.push(decode("audit", &v)?);
            }
        }
        Ok(out)
    }

    /// `asg control`: the console's audit views read the fleet's tail in
    /// the shared state (every gateway's records), not this process's log.
    pub fn serve_fleet_tail(&self) {
        self.fleet_tail.store(true, Ordering::Relaxed);
    }

    fn fleet_tail(&self) -> Option<&super::shared::Shared> {
        self.shared()
            .filter(|_| self.fleet_tail.load(Ordering::Relaxed))
    }

    pub fn audit_len(&self) -> usize {
        self.journal.settle();
        self.audit.len()
    }

    /// Bytes of stored audit records.
    pub fn audit_bytes(&self) -> u64 {
        self.audit_bytes.load(Ordering::Relaxed)
    }

    /// Add the size of the records that existed at open (appends since
    /// are counted as they happen). Done once, by the retention thread, so
    /// a large log does not delay startup.
    pub(super) fn count_audit_bytes(&self) -> Result<(), StoreError> {
        if self.audit_counted.swap(true, Ordering::Relaxed) {
            return Ok(());
        }
        let Some(boundary) = self.audit_boundary else {
            return Ok(());
        };
        let mut total = 0u64;
        for item in self.audit.range(..=boundary.to_be_bytes()) {
            let (_, v) = item?;
            total += v.len() as u64;
        }
        self.audit_bytes.fetch_add(total, Ordering::Relaxed);
        Ok(())
    }

    /// The last record's seq, if any (for [`Store::open`]).
    pub(super) fn audit_last_seq(&self) -> Result<Option<u64>, StoreError> {
        Ok(self.audit.last()?.map(|(k, _)| seq_of(&k)))
    }

    /// The oldest record, if any: `(seq, event)`.
    pub(super) fn audit_oldest(&self) -> Result<Option<(u64, AuditEvent)>, StoreError> {
        self.journal.settle();
        match self.audit.first()? {
            Some((k, v)) => Ok(Some((seq_of(&k), decode("audit", &v)?))),
            None => Ok(None),
        }
    }

    /// Delete one record and its index entry.
    pub(super) fn audit_remove(&self, seq: u64, session_id: &str) -> Result<(), StoreError> {
        if let Some(old) = self.audit.remove(seq.to_be_bytes())? {
            self.audit_bytes
                .fetch_sub(old.len() as u64, Ordering::Relaxed);
        }
        if !session_id.is_empty() {
            self.audit_session.remove(session_key(session_id, seq))?;
        }
        self.wrote();
        Ok(())
    }

    /// Every event in order, for export; stops at the first error.
    pub fn audit_iter(&self) -> impl Iterator<Item = Result<AuditEvent, StoreError>> + '_ {
        self.journal.settle();
        self.audit.iter().map(|item| {
            let (_, v) = item?;
            decode("audit", &v)
        })
    }
}

/// A finding's rule family (`pi.override`, `secret.aws_access_key_id` …),
/// the bounded key used for statistics.
fn family(rule_id: &str) -> &str {
    let mut dots = rule_id.match_indices('.');
    match (dots.next(), dots.next()) {
        (Some(_), Some((second, _))) => &rule_id[..second],
        _ => rule_id,
    }
}

#[cfg(test)]
pub(crate) fn event(id: &str, session: &str) -> AuditEvent {
    AuditEvent {
        time: "2026-01-01T00:00:00Z".into(),
        request_id: id.into(),
        session_id: session.into(),
        route: "default".into(),
        dialect: "openai_chat".into(),
        stage: "request".into(),
        decision: "allow".into(),
        policy_version: "dev@x".into(),
        latency_ms: 1.0,
        status: Some(200),
        ..AuditEvent::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(events: &[AuditEvent]) -> Vec<&str> {
        events.iter().map(|e| e.request_id.as_str()).collect()
    }

    #[test]
    fn tail_is_newest_first_and_survives_reopen() {
        let (store, dir) = super::super::temp_store();
        for i in 0..5 {
            store.append_audit(&event(&format!("r{i}"), "")).unwrap();
        }
        assert_eq!(ids(&store.audit_tail(2).unwrap()), ["r4", "r3"]);
        store.durable_blocking(store.ticket()).unwrap();
        let bytes = store.audit_bytes();
        assert!(bytes > 0);
        drop(store);
        let again = Store::open(&dir).unwrap();
        assert_eq!(again.audit_len(), 5);
        again.append_audit(&event("r5", "")).unwrap();
        let fresh = again.audit_bytes();
        assert!(fresh > 0 && fresh < bytes, "only the new record so far");
        again.count_audit_bytes().unwrap();
        assert_eq!(again.audit_bytes(), bytes + fresh, "old records added once");
        again.count_audit_bytes().unwrap();
        assert_eq!(again.audit_bytes(), bytes + fresh, "and only once");
        std::fs::remove_dir_all(dir).ok();
    }

    #[test]
    fn session_timeline_and_tailing() {
        let (store, dir) = super::super::temp_store();
        let mut seqs = Vec::new();
        for i in 0..6 {
            let s = if i % 2 == 0 { "alpha" } else { "alphabet" };
            seqs.push(store.append_audit(&event(&format!("r{i}"), s)).unwrap());
        }
        assert_eq!(
            ids(&store.audit_for_session("alpha", 10).unwrap()),
            ["r4", "r2", "r0"],
            "a session id that prefixes another is not mixed up"
        );
        assert_eq!(ids(&store.audit_for_session("alpha", 1).unwrap()), ["r4"]);
        assert_eq!(
            ids(&store.audit_after(Some(seqs[3]), 10).unwrap()),
            ["r4", "r5"]
        );
        assert_eq!(
            store.audit_after(None, 10).unwrap().len(),
            6,
            "seq 0 included"
        );
        store.audit_remove(seqs[4], "alpha").unwrap();
        assert_eq!(
            ids(&store.audit_for_session("alpha", 10).unwrap()),
            ["r2", "r0"]
        );
        std::fs::remove_dir_all(dir).ok();
    }
}
