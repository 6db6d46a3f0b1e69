//! The audit journal: appends cost an encode and a memcpy on the caller's
//! thread; one writer thread owns the file.
//!
//! A proxy thread frames its record into a shared buffer under a short
//! lock and gets a sequence number. The writer swaps the buffer out, makes
//! one `write` and one `fdatasync` for the whole batch (group commit),
//! publishes how far the log is durable and wakes the waiters whose
//! records that covers. While one `fdatasync` runs the next batch fills,
//! so the batch grows with the load. Nothing is handed to another thread
//! per request: a waiter registers its `Waker`, and the writer is woken
//! only when it sleeps.
//!
//! The journal is the durable copy; the writer then applies each batch to
//! the sled `audit` trees, which stay the read side (listing, timelines,
//! export, retention). sled itself is flushed behind (by the state
//! committer's timer and before a segment is recycled); after a crash
//! [`Journal::open`] replays the records sled had not made durable.

mod segment;
mod writer;

use super::StoreError;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::Instant;

/// The sled side of the journal: where records are applied.
#[derive(Clone)]
pub struct Trees {
    pub db: sled::Db,
    pub audit: sled::Tree,
    pub audit_session: sled::Tree,
    pub meta: sled::Tree,
}

/// `meta` key: one past the highest seq applied to sled.
const APPLIED_KEY: &str = "audit_applied";

#[derive(Default)]
struct State {
    /// Framed records not yet taken by the writer.
    buf: Vec<u8>,
    /// The seq the next append gets.
    next: u64,
    /// When `buf` became non-empty.
    since: Option<Instant>,
    /// One past the highest seq somebody waits to be durable.
    wanted: u64,
    /// One past the highest seq a reader waits to see in sled.
    settle: u64,
    sleeping: bool,
    stop: bool,
}

struct Shared {
    state: Mutex<State>,
    /// The writer waits here for work.
    work: Condvar,
    /// Blocking waiters (readers settling, synchronous durability waits).
    done: Condvar,
    /// Every seq below this is on disk.
    durable: AtomicU64,
    /// Every seq below this is in sled.
    applied: AtomicU64,
    /// Every seq below this whose write failed (and is not durable).
    failed: AtomicU64,
    last_error: Mutex<String>,
    waiters: Mutex<Vec<(u64, Waker)>>,
    /// Moving average of one batch's write + `fdatasync` and of its
    /// deviation, in microseconds.
    commit_us: AtomicU64,
    commit_dev_us: AtomicU64,
    /// When the commit in progress started (µs since `epoch`; 0: none).
    commit_started: AtomicU64,
    epoch: Instant,
}

pub struct Journal {
    shared: Arc<Shared>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Plain buffers and counters: a panic elsewhere leaves them usable.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Journal {
    /// Open the journal in `dir`: replay into sled whatever it holds past
    /// what sled already has, then start an empty segment and the writer.
    pub fn open(dir: &Path, trees: Trees) -> Result<Journal, StoreError> {
        let io = |e: std::io::Error| StoreError::Open {
            path: dir.to_path_buf(),
            message: format!("audit journal: {e}"),
        };
        std::fs::create_dir_all(dir).map_err(io)?;
        let next = replay(dir, &trees)?;
        let file = segment::create(dir, next).map_err(io)?;
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                next,
                ..State::default()
            }),
            work: Condvar::new(),
            done: Condvar::new(),
            durable: AtomicU64::new(next),
            applied: AtomicU64::new(next),
            failed: AtomicU64::new(0),
            last_error: Mutex::new(String::new()),
            waiters: Mutex::new(Vec::new()),
            commit_us: AtomicU64::new(1000),
            commit_dev_us: AtomicU64::new(0),
            commit_started: AtomicU64::new(0),
            epoch: Instant::now(),
        });
        let w = writer::Writer::new(shared.clone(), dir.to_path_buf(), file, trees);
        let thread = std::thread::Builder::new()
            .name("asg-journal".into())
            .spawn(move || w.run())
            .map_err(io)?;
        Ok(Journal {
            shared,
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Append one encoded record. `encode` gets the record's seq and writes
    /// its JSON into the buffer it is given (under the journal's lock, so
    /// keep it to a copy). Returns the seq.
    pub fn append(&self, session: &str, json: impl FnOnce(u64, &mut Vec<u8>)) -> u64 {
        let mut s = lock(&self.shared.state);
        let seq = s.next;
        s.next += 1;
        let mut body = std::mem::take(&mut s.buf);
        // Frame head and session first, the JSON straight after: one copy.
        let start = segment::begin(&mut body, seq, session);
        json(seq, &mut body);
        segment::finish(&mut body, start);
        s.buf = body;
        if s.since.is_none() {
            s.since = Some(Instant::now());
            if s.sleeping {
                // The first pending record starts the writer's timer.
                self.shared.work.notify_one();
            }
        }
        seq
    }

    /// One past the last seq appended so far.
    pub fn end(&self) -> u64 {
        lock(&self.shared.state).next
    }

    /// Is every seq below `end` on disk?
    pub fn is_durable(&self, end: u64) -> bool {
        self.shared.durable.load(Ordering::Acquire) >= end
    }

    fn outcome(&self, end: u64) -> Option<Result<(), StoreError>> {
        if self.shared.durable.load(Ordering::Acquire) >= end {
            Some(Ok(()))
        } else if self.shared.failed.load(Ordering::Acquire) >= end {
            Some(Err(StoreError::NotDurable(
                lock(&self.shared.last_error).clone(),
            )))
        } else {
            None
        }
    }

    /// Ask the writer to make everything below `end` durable now.
    pub fn want(&self, end: u64) {
        let mut s = lock(&self.shared.state);
        if s.wanted < end {
            s.wanted = end;
            if s.sleeping {
                self.shared.work.notify_one();
            }
        }
    }

    /// About how long a record appended now takes to be on disk: what is
    /// left of the commit in progress, then one commit of its own, with
    /// room for the commit times seen lately to vary.
    pub fn expected_wait(&self) -> std::time::Duration {
        let sh = &self.shared;
        let avg = sh.commit_us.load(Ordering::Relaxed);
        let dev = sh.commit_dev_us.load(Ordering::Relaxed);
        let started = sh.commit_started.load(Ordering::Relaxed);
        let in_flight = if started == 0 {
            0
        } else {
            let now = sh.epoch.elapsed().as_micros() as u64;
            avg.saturating_sub(now.saturating_sub(started))
        };
        std::time::Duration::from_micros(in_flight + avg + 2 * dev + 100)
    }

    /// Resolves once every seq below `end` is on disk.
    pub fn durable(&self, end: u64) -> Durable<'_> {
        Durable {
            journal: self,
            end,
            asked: false,
        }
    }

    /// Blocking variant of [`Journal::durable`] (not on an async worker).
    pub fn durable_blocking(&self, end: u64) -> Result<(), StoreError> {
        if let Some(r) = self.outcome(end) {
            return r;
        }
        self.want(end);
        let mut s = lock(&self.shared.state);
        loop {
            if let Some(r) = self.outcome(end) {
                return r;
            }
            if s.stop {
                return Err(StoreError::NotDurable("the audit journal stopped".into()));
            }
            s = self.shared.done.wait(s).unwrap_or_else(|p| p.into_inner());
        }
    }

    /// Wait until every record appended so far is readable from sled.
    pub fn settle(&self) {
        let mut s = lock(&self.shared.state);
        let end = s.next;
        if self.shared.applied.load(Ordering::Acquire) >= end {
            return;
        }
        s.settle = s.settle.max(end);
        if s.sleeping {
            self.shared.work.notify_one();
        }
        while self.shared.applied.load(Ordering::Acquire) < end
            && self.shared.failed.load(Ordering::Acquire) < end
            && !s.stop
        {
            s = self.shared.done.wait(s).unwrap_or_else(|p| p.into_inner());
        }
    }

    /// Write, sync and apply what is pending, then stop the writer.
    pub fn stop(&self) {
        lock(&self.shared.state).stop = true;
        self.shared.work.notify_all();
        if let Some(t) = lock(&self.thread).take() {
            let _ = t.join();
        }
    }
}

impl Drop for Journal {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The future of [`Journal::durable`].
pub struct Durable<'a> {
    journal: &'a Journal,
    end: u64,
    asked: bool,
}

impl Future for Durable<'_> {
    type Output = Result<(), StoreError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if let Some(r) = self.journal.outcome(self.end) {
            return Poll::Ready(r);
        }
        lock(&self.journal.shared.waiters).push((self.end, cx.waker().clone()));
        if !self.asked {
            self.asked = true;
            self.journal.want(self.end);
        }
        // The writer may have published between the check and the push.
        match self.journal.outcome(self.end) {
            Some(r) => Poll::Ready(r),
            None => Poll::Pending,
        }
    }
}

/// Apply to sled every journaled record it does not have; remove the
/// segments once sled has them on disk. Returns the next seq.
fn replay(dir: &Path, trees: &Trees) -> Result<u64, StoreError> {
    let corrupt = |e: std::io::Error| super::corrupt("audit journal", e);
    let applied = trees
        .meta
        .get(APPLIED_KEY)?
        .and_then(|v| v.as_ref().try_into().ok().map(u64::from_le_bytes))
        .unwrap_or(0);
    let last = trees
        .audit
        .last()?
        .map_or(0, |(k, _)| super::audit::seq_of(&k) + 1);
    let mut next = applied.max(last);
    let files: Vec<PathBuf> = segment::list(dir).map_err(corrupt)?;
    let mut replayed = 0usize;
    for path in &files {
        let bytes = std::fs::read(path).map_err(corrupt)?;
        let (frames, _) = segment::frames(&bytes);
        let mut batch = writer::SledBatch::default();
        for f in frames.iter().filter(|f| f.seq >= next) {
            batch.add(f);
            replayed += 1;
        }
        if let Some(end) = batch.end {
            batch.apply(trees)?;
            next = end;
        }
    }
    if replayed > 0 {
        tracing::info!(records = replayed, "audit journal replayed");
    }
    trees.db.flush()?;
    for path in files {
        std::fs::remove_file(&path).map_err(corrupt)?;
    }
    Ok(next)
}

#[cfg(test)]
mod tests;
