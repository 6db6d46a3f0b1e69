//! Approvals on sled. Every transition is a compare-and-swap on the
//! approval's record, so a permit is spent exactly once however many
//! requests present it at the same moment (a read, then a write under
//! separate locks, would let two of them spend it). At most one live approval exists per binding
//! fingerprint: a slot tree maps the fingerprint to it, also swapped
//! atomically, so concurrent identical calls share one pending approval.

use super::{decode, encode, Store, StoreError};
use crate::decision::approvals::{
    permit_sha256, Approval, ApprovalStatus, ConsumeError, Release, Resolution, ResolveError,
};
use crate::decision::pipeline::{GateStep, Gated};
use base64::Engine as _;
use std::cell::Cell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::Mutex;
use tokio::sync::watch;

/// How many stored approvals are pending, kept in step with every
/// transition, so the cap costs nothing per request.
pub(super) struct PendingCount {
    n: AtomicUsize,
    /// Time (ms) of the last sweep of overdue pending approvals (at most
    /// one a second).
    swept: AtomicI64,
}

impl PendingCount {
    pub(super) fn load(tree: &sled::Tree) -> Result<PendingCount, StoreError> {
        let mut n = 0;
        for item in tree.iter() {
            let (_, v) = item?;
            let a: Approval = decode("approvals", &v)?;
            n += usize::from(a.status == ApprovalStatus::Pending);
        }
        Ok(PendingCount {
            n: AtomicUsize::new(n),
            swept: AtomicI64::new(i64::MIN),
        })
    }

    /// Count one more if below `cap`.
    fn reserve(&self, cap: usize) -> bool {
        self.n
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < cap).then_some(n + 1)
            })
            .is_ok()
    }

    fn release(&self) {
        let _ = self
            .n
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1));
    }

    pub(super) fn get(&self) -> usize {
        self.n.load(Ordering::Acquire)
    }
}

/// In-process subscribers to approval decisions (held tool calls).
#[derive(Default)]
pub struct Watchers {
    map: Mutex<HashMap<String, watch::Sender<ApprovalStatus>>>,
}

/// What opening an approval for a binding found or made.
#[derive(Debug, Clone, PartialEq)]
pub enum Opened {
    /// A new pending approval.
    Created(Approval),
    /// The binding already waits for an operator.
    Pending(Approval),
    /// Approved and unspent (the caller could not release it: permit mode
    /// without a permit).
    Approved(Approval),
    /// An operator denied this binding; still within its pending window.
    Denied(Approval),
}

impl Opened {
    pub fn approval(&self) -> &Approval {
        match self {
            Opened::Created(a) | Opened::Pending(a) | Opened::Approved(a) | Opened::Denied(a) => a,
        }
    }
}

/// What the approval gate did with a call that needs approval.
#[derive(Debug, Clone, PartialEq)]
pub enum Gate {
    /// An approval was spent: the call may proceed once.
    Released { approval: Approval, by_permit: bool },
    /// The call waits (or was denied); `rejected` says why a presented
    /// permit did not work.
    Waiting {
        opened: Opened,
        rejected: Option<ConsumeError>,
    },
}

impl Gate {
    /// What the gate did, as the decision pipeline reads it.
    pub fn into_gated(self) -> Gated {
        match self {
            Gate::Released {
                approval,
                by_permit,
            } => Gated::Released {
                approval,
                by_permit,
            },
            Gate::Waiting { opened, rejected } => Gated::Waiting {
                created: matches!(opened, Opened::Created(_)),
                approval: match opened {
                    Opened::Created(a)
                    | Opened::Pending(a)
                    | Opened::Approved(a)
                    | Opened::Denied(a) => a,
                },
                rejected: rejected.map(|e| e.message().to_string()),
            },
        }
    }
}

impl Store {
    /// Run one of the pipeline's gate steps. A full pending cap is
    /// `Refused` (the call is refused, saying why); any other store failure
    /// is returned, for the caller to fail closed.
    pub fn gate_step(&self, step: &GateStep) -> Result<Gated, StoreError> {
        match self.approval_gate(
            step.release,
            &step.template,
            step.permit.as_deref(),
            step.template.created_ms,
        ) {
            Ok(g) => Ok(g.into_gated()),
            Err(e @ StoreError::PendingCap { .. }) => Ok(Gated::Refused {
                reason: format!("Human approval required, but no approval could be opened: {e}."),
            }),
            Err(e) => Err(e),
        }
    }
}

/// A new approval id: 6 bytes of milliseconds then 10 random bytes, so the
/// tree iterates in creation order; shown as 32 lower-case hex characters.
/// (Not base64: mixed-case random tokens look like
/// secrets to the response redactor, and the id must reach the agent.)
fn new_key(now_ms: i64) -> [u8; 16] {
    let mut k = [0u8; 16];
    k[..6].copy_from_slice(&(now_ms.max(0) as u64).to_be_bytes()[2..]);
    k[6..].copy_from_slice(&rand::random::<[u8; 10]>());
    k
}

fn id_of(key: &[u8]) -> String {
    hex::encode(key)
}

fn key_of(id: &str) -> Option<Vec<u8>> {
    hex::decode(id.trim()).ok().filter(|k| k.len() == 16)
}

/// A fresh approval id (time-ordered hex), for stores other than sled.
pub fn new_id(now_ms: i64) -> String {
    id_of(&new_key(now_ms))
}

/// Whether `id` has the shape of an approval id (32 hex characters).
pub fn is_id(id: &str) -> bool {
    key_of(id).is_some()
}

/// A fresh permit: 24 random bytes, 32 characters of URL-safe base64.
pub fn new_permit() -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(rand::random::<[u8; 24]>())
}

impl Store {
    fn approval_at(&self, key: &[u8]) -> Result<Option<(sled::IVec, Approval)>, StoreError> {
        match self.approvals.get(key)? {
            Some(v) => {
                let a = decode("approvals", &v)?;
                Ok(Some((v, a)))
            }
            None => Ok(None),
        }
    }

    /// Apply `f` to an approval atomically. `f` returns `Err` to refuse
    /// the transition (nothing is written) and may run more than once.
    fn approval_cas<E>(
        &self,
        key: &[u8],
        f: impl Fn(&mut Approval) -> Result<(), E>,
    ) -> Result<Option<Result<Approval, E>>, StoreError> {
        loop {
            let Some((raw, mut a)) = self.approval_at(key)? else {
                return Ok(None);
            };
            if let Err(e) = f(&mut a) {
                return Ok(Some(Err(e)));
            }
            let bytes = encode("approvals", &a)?;
            if self
                .approvals
                .compare_and_swap(key, Some(raw), Some(bytes))?
                .is_ok()
            {
                self.wrote();
                return Ok(Some(Ok(a)));
            }
        }
    }

    /// The approval with this id, with expiry applied to the view.
    pub fn approval_get(&self, id: &str, now_ms: i64) -> Result<Option<Approval>, StoreError> {
        if let Some(s) = self.shared() {
            return s.approval_get(id, now_ms);
        }
        let Some(key) = key_of(id) else {
            return Ok(None);
        };
        Ok(self.approval_at(&key)?.map(|(_, mut a)| {
            a.refresh(now_ms);
            a
        }))
    }

    /// Find or open the approval for `template.fingerprint`. A live pending
    /// or approved one is returned as is; a recent denial is reported; else
    /// `template` is stored as a new pending approval (its id is assigned
    /// here).
    ///
    /// A new approval is refused with [`StoreError::PendingCap`] while the
    /// cap of pending approvals is reached (after overdue ones expire).
    pub fn approval_open(&self, template: &Approval, now_ms: i64) -> Result<Opened, StoreError> {
        if let Some(s) = self.shared() {
            // The shared gate's clock is the template's creation time.
            let _ = now_ms;
            return s.approval_open(template);
        }
        let fp = template.fingerprint.as_bytes();
        loop {
            let slot = self.approval_slots.get(fp)?;
            if let Some(id) = &slot {
                if let Some((_, mut a)) = self.approval_at(id)? {
                    a.refresh(now_ms);
                    match a.status {
                        ApprovalStatus::Pending => return Ok(Opened::Pending(a)),
                        ApprovalStatus::Approved => return Ok(Opened::Approved(a)),
                        ApprovalStatus::Denied
                            if a.resolved_ms.unwrap_or(0) + (a.expires_ms - a.created_ms)
                                > now_ms =>
                        {
                            return Ok(Opened::Denied(a))
                        }
                        _ => {}
                    }
                }
            }
            self.reserve_pending(now_ms)?;
            let key = new_key(now_ms);
            let mut a = template.clone();
            a.approval_id = id_of(&key);
            a.status = ApprovalStatus::Pending;
            let stored = self
                .approvals
                .insert(key, encode("approvals", &a)?)
                .map_err(StoreError::from)
                .and_then(|_| {
                    Ok(self
                        .approval_slots
                        .compare_and_swap(fp, slot, Some(&key[..]))?)
                });
            match stored {
                Ok(Ok(())) => {
                    self.wrote();
                    return Ok(Opened::Created(a));
                }
                Ok(Err(_)) => {
                    // Someone opened one first: drop ours and use theirs.
                    self.pending.release();
                    self.approvals.remove(key)?;
                }
                Err(e) => {
                    self.pending.release();
                    return Err(e);
                }
            }
        }
    }

    /// "Next identical call once": spend the approved approval for this
    /// fingerprint, if there is one. `None` when nothing was released.
    pub fn approval_release_next(
        &self,
        fingerprint: &str,
        request_id: &str,
        now_ms: i64,
    ) -> Result<Option<Approval>, StoreError> {
        let Some(key) = self.approval_slots.get(fingerprint.as_bytes())? else {
            return Ok(None);
        };
        let done = self.approval_cas(&key, |a| a.consume(fingerprint, request_id, now_ms))?;
        let released = done.and_then(Result::ok);
        if let Some(a) = &released {
            self.notify(&a.approval_id, a.status);
        }
        Ok(released)
    }

    /// Spend a presented permit for a call with this fingerprint.
    pub fn approval_consume_permit(
        &self,
        permit: &str,
        fingerprint: &str,
        request_id: &str,
        now_ms: i64,
    ) -> Result<Result<Approval, ConsumeError>, StoreError> {
        let Some(key) = self.permits.get(permit_sha256(permit).as_bytes())? else {
            return Ok(Err(ConsumeError::Unknown));
        };
        let done = self.approval_cas(&key, |a| a.consume(fingerprint, request_id, now_ms))?;
        let out = done.unwrap_or(Err(ConsumeError::Unknown));
        if let Ok(a) = &out {
            self.notify(&a.approval_id, a.status);
        }
        Ok(out)
    }

    /// Approve or deny. Approving returns the approval and the permit,
    /// which exists only in this answer (the store keeps its hash).
    /// `None` when there is no such approval.
    #[allow(clippy::type_complexity)]
    pub fn approval_resolve(
        &self,
        id: &str,
        approve: Option<u64>,
        resolver: &str,
        credential: &str,
        note: &str,
        now_ms: i64,
    ) -> Result<Option<Result<(Approval, Option<String>), ResolveError>>, StoreError> {
        if let Some(s) = self.shared() {
            return s.approval_resolve(crate::state::seam::Resolve {
                id: id.to_string(),
                approve,
                resolver: resolver.to_string(),
                credential: credential.to_string(),
                note: note.to_string(),
                now_ms,
            });
        }
        let Some(key) = key_of(id) else {
            return Ok(None);
        };
        let permit = approve.map(|_| new_permit());
        let resolution = match (&permit, approve) {
            (Some(p), Some(ttl)) => Resolution::Approve {
                permit_sha256: permit_sha256(p),
                permit_ttl_secs: ttl,
            },
            _ => Resolution::Deny,
        };
        if let Some(p) = &permit {
            // Index first: once the record says approved, the permit works.
            self.permits.insert(permit_sha256(p).as_bytes(), &key[..])?;
        }
        let done = self.approval_cas(&key, |a| {
            a.resolve(resolution.clone(), resolver, credential, note, now_ms)
        })?;
        let out = match done {
            None => None,
            Some(Ok(a)) => {
                // Only a pending approval resolves: one fewer waits.
                self.pending.release();
                self.notify(&a.approval_id, a.status);
                self.unstage(&a.session_id, &a.agent_id, &a.approval_id)?;
                Some(Ok((a, permit)))
            }
            Some(Err(e)) => {
                if let Some(p) = &permit {
                    self.permits.remove(permit_sha256(p).as_bytes())?;
                }
                Some(Err(e))
            }
        };
        self.wrote();
        Ok(out)
    }

    /// Approvals newest first, optionally only one status and/or session,
    /// with expiry applied to the view.
    pub fn approvals_list(
        &self,
        status: Option<ApprovalStatus>,
        session_id: Option<&str>,
        limit: usize,
        now_ms: i64,
    ) -> Result<Vec<Approval>, StoreError> {
        if let Some(s) = self.shared() {
            return s.approvals_list(crate::state::seam::ApprovalFilter {
                status,
                session_id: session_id.map(str::to_string),
                limit,
                now_ms,
            });
        }
        let mut out = Vec::new();
        for item in self.approvals.iter().rev() {
            if out.len() >= limit {
                break;
            }
            let (_, v) = item?;
            let mut a: Approval = decode("approvals", &v)?;
            a.refresh(now_ms);
            if status.is_some_and(|s| s != a.status)
                || session_id.is_some_and(|s| s != a.session_id)
            {
                continue;
            }
            out.push(a);
        }
        Ok(out)
    }

    /// Persist expiries, and delete approvals created before `remove_before_ms`
    /// that can no longer change (with their slot and permit entries).
    pub(super) fn approvals_maintain(
        &self,
        now_ms: i64,
        remove_before_ms: i64,
    ) -> Result<(usize, usize), StoreError> {
        let (mut expired, mut removed) = (0, 0);
        let keys: Vec<sled::IVec> = self.approvals.iter().keys().collect::<Result<_, _>>()?;
        for key in keys {
            let was_pending = Cell::new(false);
            let changed = self.approval_cas(&key, |a| {
                was_pending.set(a.status == ApprovalStatus::Pending);
                if a.refresh(now_ms) {
                    Ok(())
                } else {
                    Err(())
                }
            })?;
            if let Some(Ok(a)) = changed {
                if was_pending.get() {
                    self.pending.release();
                }
                expired += 1;
                self.notify(&a.approval_id, a.status);
                self.unstage(&a.session_id, &a.agent_id, &a.approval_id)?;
            }
            let Some((_, a)) = self.approval_at(&key)? else {
                continue;
            };
            if a.created_ms < remove_before_ms && a.status.is_final() {
                self.approvals.remove(&key)?;
                let fp = a.fingerprint.as_bytes();
                let _ = self
                    .approval_slots
                    .compare_and_swap(fp, Some(&key[..]), None::<&[u8]>)?;
                if let Some(h) = &a.permit_sha256 {
                    self.permits.remove(h.as_bytes())?;
                }
                removed += 1;
            }
        }
        if expired + removed > 0 {
            self.wrote();
        }
        Ok((expired, removed))
    }

    /// The approval gate for one call whose decision needs a human: a
    /// presented permit is tried first, then (in `next_call` mode) an
    /// approved, unspent approval for the same binding; otherwise the
    /// binding's approval is opened (or found). Never call this for a
    /// blocked call: a permit never lifts a block.
    pub fn approval_gate(
        &self,
        release: Release,
        template: &Approval,
        permit: Option<&str>,
        now_ms: i64,
    ) -> Result<Gate, StoreError> {
        if let Some(s) = self.shared() {
            // The shared gate's clock is the template's creation time.
            let _ = now_ms;
            return s.approval_gate(release, template, permit);
        }
        let fp = &template.fingerprint;
        let rid = &template.request_id;
        let mut rejected = None;
        if let Some(p) = permit.map(str::trim).filter(|p| !p.is_empty()) {
            match self.approval_consume_permit(p, fp, rid, now_ms)? {
                Ok(approval) => {
                    return Ok(Gate::Released {
                        approval,
                        by_permit: true,
                    })
                }
                Err(e) => rejected = Some(e),
            }
        }
        if release == Release::NextCall {
            if let Some(approval) = self.approval_release_next(fp, rid, now_ms)? {
                return Ok(Gate::Released {
                    approval,
                    by_permit: false,
                });
            }
        }
        Ok(Gate::Waiting {
            opened: self.approval_open(template, now_ms)?,
            rejected,
        })
    }

    /// Count a new pending approval, or refuse it at the cap. At the cap,
    /// overdue approvals are expired first (at most once a second).
    fn reserve_pending(&self, now_ms: i64) -> Result<(), StoreError> {
        let cap = self.caps.pending_approvals.load(Ordering::Relaxed);
        if self.pending.reserve(cap) {
            return Ok(());
        }
        let last = self.pending.swept.load(Ordering::Acquire);
        let due = now_ms.saturating_sub(last) >= 1_000
            && self
                .pending
                .swept
                .compare_exchange(last, now_ms, Ordering::AcqRel, Ordering::Acquire)
                .is_ok();
        if due {
            self.approvals_maintain(now_ms, i64::MIN)?;
        }
        if self.pending.reserve(cap) {
            Ok(())
        } else {
            Err(StoreError::PendingCap { cap })
        }
    }

    /// Approvals waiting for an operator now (as stored).
    pub fn approvals_pending_count(&self) -> usize {
        self.pending.get()
    }

    /// Subscribe to an approval's status (a held tool call waits on this).
    pub fn approval_watch(
        &self,
        id: &str,
        current: ApprovalStatus,
    ) -> watch::Receiver<ApprovalStatus> {
        if let Some(s) = self.shared() {
            return s.approval_watch(id, current);
        }
        let mut map = self.watchers.map.lock().unwrap_or_else(|p| p.into_inner());
        map.entry(id.to_string())
            .or_insert_with(|| watch::channel(current).0)
            .subscribe()
    }

    /// Drop the subscription entry once nobody waits on it.
    pub fn approval_unwatch(&self, id: &str) {
        let mut map = self.watchers.map.lock().unwrap_or_else(|p| p.into_inner());
        if map.get(id).is_some_and(|tx| tx.receiver_count() == 0) {
            map.remove(id);
        }
    }

    fn notify(&self, id: &str, status: ApprovalStatus) {
        let map = self.watchers.map.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(tx) = map.get(id) {
            tx.send_replace(status);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decision::approvals::Origin;
    use std::sync::Arc;

    fn template(fp: &str, now: i64) -> Approval {
        Approval {
            approval_id: String::new(),
            status: ApprovalStatus::Pending,
            session_id: "s1".into(),
            turn_id: String::new(),
            agent_id: "a".into(),
            action_type: "shell".into(),
            action_target: "ls".into(),
            fingerprint: fp.into(),
            origin: Origin::Proxy,
            route: String::new(),
            dialect: String::new(),
            request_id: "r0".into(),
            decision: "require_approval".into(),
            score: 0.85,
            reasons: vec![],
            findings: vec![],
            hold: false,
            created_ms: now,
            expires_ms: now + 900_000,
            resolved_ms: None,
            resolver: String::new(),
            resolver_credential: String::new(),
            note: String::new(),
            permit_sha256: None,
            permit_expires_ms: None,
            used_ms: None,
            used_by: None,
        }
    }

    #[test]
    fn open_is_idempotent_per_fingerprint() {
        let (store, dir) = super::super::temp_store();
        let Opened::Created(a) = store.approval_open(&template("fp1", 0), 0).unwrap() else {
            panic!()
        };
        assert_eq!(a.approval_id.len(), 32);
        let again = store.approval_open(&template("fp1", 5), 5).unwrap();
        assert_eq!(again, Opened::Pending(a.clone()));
        let other = store.approval_open(&template("fp2", 5), 5).unwrap();
        assert!(matches!(other, Opened::Created(ref b) if b.approval_id != a.approval_id));
        assert_eq!(store.approval_get(&a.approval_id, 6).unwrap().unwrap(), a);
        assert!(store.approval_get("nope", 6).unwrap().is_none());
        std::fs::remove_dir_all(dir).ok();
    }

    #[test]
    fn concurrent_opens_share_one_pending() {
        let (store, dir) = super::super::temp_store();
        let store = Arc::new(store);
        let ids: Vec<String> = (0..8)
            .map(|_| {
                let s = store.clone();
                std::thread::spawn(move || {
                    s.approval_open(&template("same", 1), 1)
                        .unwrap()
                        .approval()
                        .approval_id
                        .clone()
                })
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|h| h.join().unwrap())
            .collect();
        assert!(ids.iter().all(|i| *i == ids[0]), "{ids:?}");
        assert_eq!(store.approvals_list(None, None, 100, 2).unwrap().len(), 1);
        std::fs::remove_dir_all(dir).ok();
    }

    #[test]
    fn permit_is_spent_once_under_concurrency() {
        let (store, dir) = super::super::temp_store();
        let store = Arc::new(store);
        let a = store
            .approval_open(&template("fp", 0), 0)
            .unwrap()
            .approval()
            .clone();
        let (approved, permit) = store
            .approval_resolve(&a.approval_id, Some(300), "alice", "operator", "", 1)
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(approved.status, ApprovalStatus::Approved);
        let permit = permit.unwrap();
        assert_eq!(permit.len(), 32);
        let barrier = Arc::new(std::sync::Barrier::new(16));
        let wins: usize = (0..16)
            .map(|i| {
                let (s, p, b) = (store.clone(), permit.clone(), barrier.clone());
                std::thread::spawn(move || {
                    b.wait();
                    s.approval_consume_permit(&p, "fp", &format!("r{i}"), 2)
                        .unwrap()
                        .is_ok() as usize
                })
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|h| h.join().unwrap())
            .sum();
        assert_eq!(wins, 1);
        assert_eq!(
            store
                .approval_consume_permit(&permit, "fp", "late", 3)
                .unwrap(),
            Err(ConsumeError::AlreadyUsed)
        );
        std::fs::remove_dir_all(dir).ok();
    }

    #[test]
    fn next_call_release_and_denial() {
        let (store, dir) = super::super::temp_store();
        let a = store
            .approval_open(&template("fp", 0), 0)
            .unwrap()
            .approval()
            .clone();
        assert!(store
            .approval_release_next("fp", "r1", 1)
            .unwrap()
            .is_none());
        store
            .approval_resolve(&a.approval_id, Some(60), "alice", "operator", "", 2)
            .unwrap()
            .unwrap()
            .unwrap();
        let used = store.approval_release_next("fp", "r2", 3).unwrap().unwrap();
        assert_eq!(used.status, ApprovalStatus::Used);
        assert!(store
            .approval_release_next("fp", "r3", 4)
            .unwrap()
            .is_none());
        // The next call opens a fresh approval; denying it sticks for a while.
        let b = store.approval_open(&template("fp", 5), 5).unwrap();
        let Opened::Created(b) = b else {
            panic!("{b:?}")
        };
        store
            .approval_resolve(&b.approval_id, None, "bob", "operator", "no", 6)
            .unwrap()
            .unwrap()
            .unwrap();
        assert!(matches!(
            store.approval_open(&template("fp", 7), 7).unwrap(),
            Opened::Denied(_)
        ));
        assert!(matches!(
            store
                .approval_open(&template("fp", 7), 6 + 900_001)
                .unwrap(),
            Opened::Created(_)
        ));
        // Resolving twice is refused.
        assert!(matches!(
            store
                .approval_resolve(&b.approval_id, Some(60), "x", "operator", "", 8)
                .unwrap(),
            Some(Err(ResolveError::NotPending(ApprovalStatus::Denied)))
        ));
        std::fs::remove_dir_all(dir).ok();
    }

    #[tokio::test]
    async fn watchers_see_resolution() {
        let (store, dir) = super::super::temp_store();
        let a = store
            .approval_open(&template("fp", 0), 0)
            .unwrap()
            .approval()
            .clone();
        let mut rx = store.approval_watch(&a.approval_id, ApprovalStatus::Pending);
        store
            .approval_resolve(&a.approval_id, Some(60), "alice", "operator", "", 1)
            .unwrap();
        let s = *rx
            .wait_for(|s| *s != ApprovalStatus::Pending)
            .await
            .unwrap();
        assert_eq!(s, ApprovalStatus::Approved);
        drop(rx);
        store.approval_unwatch(&a.approval_id);
        std::fs::remove_dir_all(dir).ok();
    }

    #[test]
    fn pending_approvals_are_capped_and_refused_clearly() {
        let (store, dir) = super::super::temp_store();
        store.caps.set(10, 10, 2);
        let a = store.approval_open(&template("fp1", 0), 0).unwrap();
        store.approval_open(&template("fp2", 0), 0).unwrap();
        // The same binding again is the existing approval, not a new one.
        assert!(matches!(
            store.approval_open(&template("fp1", 1), 1).unwrap(),
            Opened::Pending(_)
        ));
        let err = store.approval_open(&template("fp3", 1), 1).unwrap_err();
        assert!(matches!(err, StoreError::PendingCap { cap: 2 }), "{err}");
        assert!(
            err.to_string().contains("ASG_MAX_PENDING_APPROVALS"),
            "{err}"
        );
        assert_eq!(store.approvals_pending_count(), 2);
        // Deciding one frees a place.
        store
            .approval_resolve(&a.approval().approval_id, None, "bob", "operator", "", 2)
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(store.approvals_pending_count(), 1);
        store.approval_open(&template("fp3", 3), 3).unwrap();
        // Overdue approvals expire when the cap is reached.
        let late = 900_000 + 10;
        assert!(matches!(
            store.approval_open(&template("fp4", late), late).unwrap(),
            Opened::Created(_)
        ));
        assert_eq!(store.approvals_pending_count(), 1);
        // The count survives a restart.
        drop(store);
        let again = Store::open(&dir).unwrap();
        assert_eq!(again.approvals_pending_count(), 1);
        drop(again);
        std::fs::remove_dir_all(dir).ok();
    }

    #[test]
    fn maintenance_expires_and_prunes() {
        let (store, dir) = super::super::temp_store();
        let a = store
            .approval_open(&template("fp", 0), 0)
            .unwrap()
            .approval()
            .clone();
        assert_eq!(store.approvals_maintain(900_000, 0).unwrap(), (1, 0));
        assert_eq!(store.approvals_maintain(900_001, 1).unwrap(), (0, 1));
        assert!(store.approval_get(&a.approval_id, 0).unwrap().is_none());
        assert!(store.approval_slots.get("fp").unwrap().is_none());
        std::fs::remove_dir_all(dir).ok();
    }
}
