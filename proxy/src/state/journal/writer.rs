//! The journal's single writer thread.
//!
//! Loop: sleep until there is a batch worth writing (somebody waits for
//! it, a reader wants it, 256 KiB are pending or the oldest record is
//! 10 ms old) → swap the buffer out (O(1) under the lock) → one `write` →
//! one `fdatasync` → publish and wake the waiters it covers → apply the
//! batch to sled → recycle the segment when full.

use super::segment::{self, Frame};
use super::{lock, Shared, Trees, APPLIED_KEY};
use crate::state::StoreError;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

/// How long a record nobody waits for may stay in memory only
/// (`ASG_AUDIT_SYNC=decisions`, allowed traffic).
const WRITE_DELAY: Duration = Duration::from_millis(10);
/// Pending bytes that start a batch without waiting for the timer.
const BATCH_BYTES: usize = 256 * 1024;

pub(super) struct Writer {
    shared: Arc<Shared>,
    dir: PathBuf,
    file: File,
    pos: u64,
    trees: Trees,
    batch: Vec<u8>,
    /// The segment must be replaced (full, or a sync failed on it).
    recycle: bool,
}

impl Writer {
    pub(super) fn new(shared: Arc<Shared>, dir: PathBuf, file: File, trees: Trees) -> Writer {
        Writer {
            shared,
            dir,
            file,
            pos: 0,
            trees,
            batch: Vec::new(),
            recycle: false,
        }
    }

    pub(super) fn run(mut self) {
        loop {
            let (end, stop) = self.take();
            if !self.batch.is_empty() {
                self.commit(end);
            }
            if stop {
                if let Err(e) = self.trees.db.flush() {
                    tracing::error!(error = %e, "audit flush at shutdown failed");
                }
                self.notify_blocked();
                return;
            }
            if self.recycle {
                self.next_segment(end);
            }
        }
    }

    /// Wait for a batch and take it; returns one past its last seq.
    fn take(&mut self) -> (u64, bool) {
        let shared = &self.shared;
        let mut s = lock(&shared.state);
        loop {
            if s.stop {
                break;
            }
            if let Some(since) = s.since {
                let due = s.wanted > shared.durable.load(Ordering::Acquire)
                    || s.settle > shared.applied.load(Ordering::Acquire)
                    || s.buf.len() >= BATCH_BYTES;
                let left = WRITE_DELAY.saturating_sub(since.elapsed());
                if due || left.is_zero() {
                    break;
                }
                s.sleeping = true;
                s = shared
                    .work
                    .wait_timeout(s, left)
                    .unwrap_or_else(|p| p.into_inner())
                    .0;
            } else {
                s.sleeping = true;
                s = shared.work.wait(s).unwrap_or_else(|p| p.into_inner());
            }
            s.sleeping = false;
        }
        s.sleeping = false;
        std::mem::swap(&mut s.buf, &mut self.batch);
        s.since = None;
        (s.next, s.stop)
    }

    /// Write and sync the batch (every seq below `end`), publish, apply.
    fn commit(&mut self, end: u64) {
        let started = std::time::Instant::now();
        let sh = &self.shared;
        let since_epoch = started.duration_since(sh.epoch).as_micros() as u64;
        sh.commit_started
            .store(since_epoch.max(1), Ordering::Relaxed);
        let written = self
            .file
            .write_all_at(&self.batch, self.pos)
            .and_then(|_| self.file.sync_data());
        self.pos += self.batch.len() as u64;
        let took = started.elapsed().as_micros().min(1_000_000) as u64;
        let sh = &self.shared;
        sh.commit_started.store(0, Ordering::Relaxed);
        let avg = sh.commit_us.load(Ordering::Relaxed);
        let dev = sh.commit_dev_us.load(Ordering::Relaxed);
        sh.commit_us.store((avg * 7 + took) / 8, Ordering::Relaxed);
        sh.commit_dev_us
            .store((dev * 3 + took.abs_diff(avg)) / 4, Ordering::Relaxed);
        match written {
            Ok(()) => self.shared.durable.store(end, Ordering::Release),
            Err(e) => {
                // The kernel may have dropped the pages: never trust this
                // segment again; its waiters learn the write failed.
                tracing::error!(error = %e, "audit journal write failed; records are not acknowledged");
                *lock(&self.shared.last_error) = format!("audit journal: {e}");
                self.shared.failed.store(end, Ordering::Release);
                self.recycle = true;
            }
        }
        self.wake(end);
        let (frames, _) = segment::frames(&self.batch);
        let mut sled = SledBatch::default();
        for f in &frames {
            sled.add(f);
        }
        if let Err(e) = sled.apply(&self.trees) {
            tracing::error!(error = %e, "audit records not indexed; they are replayed at the next start");
        }
        self.shared.applied.store(end, Ordering::Release);
        self.notify_blocked();
        self.batch.clear();
        if self.pos >= segment::SEGMENT_BYTES {
            self.recycle = true;
        }
    }

    /// Wake the async waiters whose records are now settled.
    fn wake(&self, end: u64) {
        let ready: Vec<_> = {
            let mut w = lock(&self.shared.waiters);
            let (ready, wait): (Vec<_>, Vec<_>) = w.drain(..).partition(|(e, _)| *e <= end);
            *w = wait;
            ready
        };
        for (_, waker) in ready {
            waker.wake();
        }
        self.notify_blocked();
    }

    fn notify_blocked(&self) {
        // Taking the lock orders this after a blocked waiter's check.
        drop(lock(&self.shared.state));
        self.shared.done.notify_all();
    }

    /// sled has every record of the old segment on disk: start a new one
    /// and delete the old.
    fn next_segment(&mut self, next: u64) {
        let old = segment::list(&self.dir).unwrap_or_default();
        let fresh = self
            .trees
            .db
            .flush()
            .map_err(|e| e.to_string())
            .and_then(|_| segment::create(&self.dir, next).map_err(|e| e.to_string()));
        match fresh {
            Ok(file) => {
                self.file = file;
                self.pos = 0;
                self.recycle = false;
                for p in old {
                    if let Err(e) = std::fs::remove_file(&p) {
                        tracing::warn!(error = %e, path = %p.display(), "old audit segment not removed");
                    }
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "new audit segment failed; retrying after the next batch")
            }
        }
    }
}

/// Records to insert into the sled audit trees. Plain inserts, in seq
/// order, index entry first: sled recovers a prefix of its log, so a
/// record it kept after a crash has its index entry and everything before
/// it. (`apply_batch` would seal sled's log buffer and wake its I/O pool
/// once per batch.)
#[derive(Default)]
pub(super) struct SledBatch<'a> {
    frames: Vec<&'a Frame<'a>>,
    /// One past the highest seq added.
    pub end: Option<u64>,
}

impl<'a> SledBatch<'a> {
    pub fn add(&mut self, f: &'a Frame<'a>) {
        self.frames.push(f);
        self.end = Some(self.end.unwrap_or(0).max(f.seq + 1));
    }

    pub fn apply(self, trees: &Trees) -> Result<(), StoreError> {
        for f in self.frames {
            if !f.session.is_empty() {
                trees
                    .audit_session
                    .insert(crate::state::audit::session_key(f.session, f.seq), &[])?;
            }
            trees.audit.insert(f.seq.to_be_bytes(), f.json)?;
        }
        if let Some(end) = self.end {
            trees.meta.insert(APPLIED_KEY, &end.to_le_bytes())?;
        }
        Ok(())
    }
}
