//! A write-behind cache for hot records (sessions and agents).
//!
//! Every request of a session updates its record and its agent's. Doing
//! that as a read-decode-modify-encode-CAS on sled costs a few KiB of log
//! per request and retries under contention (many connections, one agent).
//! Here the current value lives in memory behind a sharded lock (updates
//! never retry), and a background writer persists each changed record once
//! per interval (500 ms), however many requests touched it. The cost: after a crash
//! the last interval of session *risk* may be missing; audit records and
//! approvals are not cached and are durable before they are acknowledged.

use super::{decode, encode, StoreError};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

/// A record with a last-update time (for the recent-activity index).
pub trait Timed {
    fn updated_ms(&self) -> i64;
}

impl Timed for crate::decision::session::SessionState {
    fn updated_ms(&self) -> i64 {
        self.updated_ms
    }
}

impl Timed for crate::decision::session::AgentState {
    fn updated_ms(&self) -> i64 {
        self.updated_ms
    }
}

struct Slot<T> {
    value: Arc<T>,
    dirty: bool,
    /// `updated_ms` of the value last written to the tree.
    persisted_ms: Option<i64>,
    /// Created by [`Cached::update_provisional`] and not touched since:
    /// in memory only, not counted, dropped first when the shard is full.
    provisional: bool,
}

const SHARDS: usize = 32;
/// Clean entries are dropped from a shard that grows past this.
const SHARD_CAP: usize = 2048;

pub struct Cached<T> {
    name: &'static str,
    tree: sled::Tree,
    shards: Vec<Mutex<HashMap<String, Slot<T>>>>,
    hasher: RandomState,
    /// Records that exist (in the tree or created in memory), for caps.
    count: AtomicUsize,
}

/// Before a shard takes another entry: when full, forget the entries that
/// are not waiting to be written (provisional ones are never written).
fn make_room<T>(shard: &mut HashMap<String, Slot<T>>) {
    if shard.len() >= SHARD_CAP {
        shard.retain(|_, s| s.dirty);
    }
}

/// A record written by [`Cached::write_dirty`]: id, previous and new
/// `updated_ms` in the tree.
pub type Written = (String, Option<i64>, i64);

impl<T> Cached<T>
where
    T: Clone + Serialize + DeserializeOwned + Timed,
{
    pub fn new(name: &'static str, tree: sled::Tree) -> Self {
        Cached {
            name,
            count: AtomicUsize::new(tree.len()),
            tree,
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            hasher: RandomState::new(),
        }
    }

    fn shard(&self, id: &str) -> MutexGuard<'_, HashMap<String, Slot<T>>> {
        let i = (self.hasher.hash_one(id) as usize) % SHARDS;
        self.shards[i].lock().unwrap_or_else(|p| p.into_inner())
    }

    fn load(&self, id: &str) -> Result<Option<T>, StoreError> {
        self.tree
            .get(id.as_bytes())?
            .map(|v| decode(self.name, &v))
            .transpose()
    }

    /// Ensure `id` is in `shard` (loading it from the tree).
    fn slot<'a>(
        &self,
        shard: &'a mut HashMap<String, Slot<T>>,
        id: &str,
    ) -> Result<Option<&'a mut Slot<T>>, StoreError> {
        if !shard.contains_key(id) {
            let Some(v) = self.load(id)? else {
                return Ok(None);
            };
            make_room(shard);
            let ms = v.updated_ms();
            shard.insert(
                id.to_string(),
                Slot {
                    value: Arc::new(v),
                    dirty: false,
                    persisted_ms: Some(ms),
                    provisional: false,
                },
            );
        }
        Ok(shard.get_mut(id))
    }

    pub fn get(&self, id: &str) -> Result<Option<Arc<T>>, StoreError> {
        let mut shard = self.shard(id);
        Ok(self.slot(&mut shard, id)?.map(|s| s.value.clone()))
    }

    /// Modify the record (or `fresh()` if there is none) under its lock.
    pub fn update(
        &self,
        id: &str,
        fresh: impl FnOnce() -> T,
        f: impl FnOnce(&mut T),
    ) -> Result<Arc<T>, StoreError> {
        self.upsert(id, fresh, f, false)
    }

    /// Like [`Cached::update`], except that a record that does not exist
    /// yet is created in memory only: not written, not counted, found by
    /// [`Cached::get`] while it stays, and the first to go when its shard
    /// is full. The next update of it makes it an ordinary record.
    pub fn update_provisional(
        &self,
        id: &str,
        fresh: impl FnOnce() -> T,
        f: impl FnOnce(&mut T),
    ) -> Result<Arc<T>, StoreError> {
        self.upsert(id, fresh, f, true)
    }

    fn upsert(
        &self,
        id: &str,
        fresh: impl FnOnce() -> T,
        f: impl FnOnce(&mut T),
        provisional: bool,
    ) -> Result<Arc<T>, StoreError> {
        let mut shard = self.shard(id);
        let created = self.slot(&mut shard, id)?.is_none();
        if created {
            if provisional {
                make_room(&mut shard);
            } else {
                self.count.fetch_add(1, Ordering::Relaxed);
            }
            shard.insert(
                id.to_string(),
                Slot {
                    value: Arc::new(fresh()),
                    dirty: false,
                    persisted_ms: None,
                    provisional,
                },
            );
        }
        let slot = shard.get_mut(id).expect("just ensured");
        if created && provisional {
            f(Arc::make_mut(&mut slot.value));
        } else {
            self.touch(slot, f);
        }
        Ok(slot.value.clone())
    }

    /// Modify the record only if it exists.
    pub fn update_existing(&self, id: &str, f: impl FnOnce(&mut T)) -> Result<bool, StoreError> {
        let mut shard = self.shard(id);
        let Some(slot) = self.slot(&mut shard, id)? else {
            return Ok(false);
        };
        self.touch(slot, f);
        Ok(true)
    }

    /// Apply `f` to a record that is to be written: a provisional one
    /// becomes an ordinary (counted) record.
    fn touch(&self, slot: &mut Slot<T>, f: impl FnOnce(&mut T)) {
        if std::mem::take(&mut slot.provisional) {
            self.count.fetch_add(1, Ordering::Relaxed);
        }
        f(Arc::make_mut(&mut slot.value));
        slot.dirty = true;
    }

    /// Delete the record if `pred` holds for its current value.
    pub fn remove_if(&self, id: &str, pred: impl FnOnce(&T) -> bool) -> Result<bool, StoreError> {
        let mut shard = self.shard(id);
        let Some(slot) = self.slot(&mut shard, id)? else {
            return Ok(false);
        };
        if !pred(&slot.value) {
            return Ok(false);
        }
        let provisional = shard.remove(id).is_some_and(|s| s.provisional);
        self.tree.remove(id.as_bytes())?;
        if !provisional {
            self.count.fetch_sub(1, Ordering::Relaxed);
        }
        Ok(true)
    }

    /// How many records exist (stored or only in memory so far).
    pub fn len(&self) -> usize {
        self.count.load(Ordering::Relaxed)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Persist every changed record; returns what was written.
    pub fn write_dirty(&self) -> Result<Vec<Written>, StoreError> {
        let mut out = Vec::new();
        for shard in &self.shards {
            let pending: Vec<(String, Arc<T>, Option<i64>)> = {
                let s = shard.lock().unwrap_or_else(|p| p.into_inner());
                s.iter()
                    .filter(|(_, slot)| slot.dirty)
                    .map(|(k, slot)| (k.clone(), slot.value.clone(), slot.persisted_ms))
                    .collect()
            };
            for (id, value, before) in pending {
                self.tree
                    .insert(id.as_bytes(), encode(self.name, value.as_ref())?)?;
                let ms = value.updated_ms();
                // Clean only if nobody changed it meanwhile (then it is
                // written again next time); a dirty slot is never evicted.
                let mut s = shard.lock().unwrap_or_else(|p| p.into_inner());
                if let Some(slot) = s.get_mut(&id) {
                    if Arc::ptr_eq(&slot.value, &value) {
                        slot.dirty = false;
                    }
                    slot.persisted_ms = Some(ms);
                }
                out.push((id, before, ms));
            }
        }
        Ok(out)
    }

    /// Ids of every record in the tree (for idle sweeps).
    pub fn stored_ids(&self) -> Result<Vec<String>, StoreError> {
        self.tree
            .iter()
            .keys()
            .map(|k| Ok(String::from_utf8_lossy(&k?).into_owned()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decision::session::AgentState;

    fn cache() -> (Cached<AgentState>, sled::Db, std::path::PathBuf) {
        let dir = std::env::temp_dir().join(format!("asg-cache-{}", uuid::Uuid::new_v4()));
        let db = sled::Config::new().path(&dir).open().unwrap();
        (
            Cached::new("agents", db.open_tree("agents").unwrap()),
            db,
            dir,
        )
    }

    #[test]
    fn updates_are_written_behind_once() {
        let (c, db, dir) = cache();
        for i in 0..100 {
            c.update(
                "a",
                || AgentState::new("a", 0),
                |a| {
                    a.request_count += 1;
                    a.updated_ms = i;
                },
            )
            .unwrap();
        }
        assert!(db.open_tree("agents").unwrap().get("a").unwrap().is_none());
        let written = c.write_dirty().unwrap();
        assert_eq!(written, vec![("a".to_string(), None, 99)]);
        assert!(c.write_dirty().unwrap().is_empty(), "clean now");
        // A fresh cache over the same tree sees the persisted value.
        let again = Cached::<AgentState>::new("agents", db.open_tree("agents").unwrap());
        assert_eq!(again.get("a").unwrap().unwrap().request_count, 100);
        assert!(!again.remove_if("a", |a| a.updated_ms < 50).unwrap());
        assert!(again.remove_if("a", |a| a.updated_ms < 100).unwrap());
        assert!(again.get("a").unwrap().is_none());
        drop(db);
        std::fs::remove_dir_all(dir).ok();
    }

    #[test]
    fn concurrent_updates_never_lose_a_count() {
        let (c, db, dir) = cache();
        let c = Arc::new(c);
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let c = c.clone();
                std::thread::spawn(move || {
                    for _ in 0..500 {
                        c.update(
                            "hot",
                            || AgentState::new("hot", 0),
                            |a| a.request_count += 1,
                        )
                        .unwrap();
                    }
                })
            })
            .collect();
        let writer = {
            let c = c.clone();
            std::thread::spawn(move || {
                for _ in 0..50 {
                    c.write_dirty().unwrap();
                }
            })
        };
        for t in threads {
            t.join().unwrap();
        }
        writer.join().unwrap();
        c.write_dirty().unwrap();
        let stored: AgentState = decode(
            "agents",
            &db.open_tree("agents").unwrap().get("hot").unwrap().unwrap(),
        )
        .unwrap();
        assert_eq!(stored.request_count, 4000);
        drop(db);
        std::fs::remove_dir_all(dir).ok();
    }

    #[test]
    fn provisional_records_stay_in_memory_until_touched_again_and_go_first() {
        let (c, db, dir) = cache();
        let bump = |a: &mut AgentState| a.request_count += 1;
        c.update_provisional("p", || AgentState::new("p", 0), bump)
            .unwrap();
        assert_eq!(c.get("p").unwrap().unwrap().request_count, 1);
        assert_eq!((c.len(), c.write_dirty().unwrap().len()), (0, 0));
        // An existing record is updated as usual.
        c.update("kept", || AgentState::new("kept", 0), bump)
            .unwrap();
        c.update_provisional("kept", || unreachable!(), bump)
            .unwrap();
        assert_eq!(c.len(), 1);
        // A full shard drops provisional records, never unwritten ones.
        for i in 0..SHARDS * SHARD_CAP * 2 {
            let id = format!("x{i}");
            c.update_provisional(&id, || AgentState::new(&id, 0), bump)
                .unwrap();
        }
        let resident: usize = c.shards.iter().map(|s| s.lock().unwrap().len()).sum();
        assert!(resident <= SHARDS * (SHARD_CAP + 1), "{resident}");
        assert_eq!(c.get("kept").unwrap().unwrap().request_count, 2);
        assert_eq!(c.len(), 1);
        // Touched again, a provisional record is counted and written.
        c.update_provisional("x1", || AgentState::new("x1", 0), bump)
            .unwrap();
        c.update("x1", || AgentState::new("x1", 0), bump).unwrap();
        assert_eq!(c.len(), 2);
        let written: Vec<String> = c.write_dirty().unwrap().into_iter().map(|w| w.0).collect();
        assert_eq!(written.len(), 2, "{written:?}");
        assert!(db.open_tree("agents").unwrap().get("x1").unwrap().is_some());
        c.remove_if("x2", |_| true).unwrap();
        assert_eq!(c.len(), 2, "a provisional record was never counted");
        drop(db);
        std::fs::remove_dir_all(dir).ok();
    }
}
