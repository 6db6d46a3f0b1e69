//! Group commit: a write is acknowledged only once it is on disk, without
//! one fsync per write.
//!
//! sled buffers writes in memory; a SIGKILL loses whatever was not flushed.
//! Every write bumps a counter; one committer thread loops "take the
//! counter, `flush()` (write + fsync), publish the counter". A caller that
//! must not acknowledge before its write is durable waits until the
//! published value reaches the counter it saw after writing. All writers
//! that arrive while a flush runs share the next one, so throughput grows
//! with concurrency while each waits at most about two flushes.
//!
//! Flushes happen on demand: only a waiter makes the committer flush at
//! once. Writes nobody waits for (allowed traffic under
//! `ASG_AUDIT_SYNC=decisions`) are flushed by a timer, so they cost no
//! fsync of their own.

use super::StoreError;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// How long a write nobody waits for may stay in memory only.
const BACKGROUND_FLUSH: Duration = Duration::from_millis(100);

/// A point in the write sequence: "everything written up to here".
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Ticket(u64);

#[derive(Debug, Default)]
struct Counters {
    written: u64,
    /// The highest ticket somebody waits for.
    wanted: u64,
    flushed: u64,
    /// Writes up to here were in a flush that failed.
    failed: u64,
    last_error: Option<String>,
    stop: bool,
}

/// Published progress: (flushed, failed).
type Progress = (u64, u64);

struct Inner {
    state: Mutex<Counters>,
    work: Condvar,
    done: Condvar,
    progress: watch::Sender<Progress>,
}

pub struct Committer {
    inner: Arc<Inner>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Committer {
    /// Start the committer thread for `db`.
    pub fn start(db: sled::Db) -> Committer {
        let (progress, _) = watch::channel((0, 0));
        let inner = Arc::new(Inner {
            state: Mutex::new(Counters::default()),
            work: Condvar::new(),
            done: Condvar::new(),
            progress,
        });
        let worker = inner.clone();
        let thread = std::thread::Builder::new()
            .name("asg-commit".into())
            .spawn(move || commit_loop(&worker, &db))
            .expect("spawn the committer thread");
        Committer {
            inner,
            thread: Mutex::new(Some(thread)),
        }
    }

    /// Record that a write was made (after the sled call returned). The
    /// write is flushed when somebody waits for it, or by the timer.
    pub fn written(&self) -> Ticket {
        let mut s = self.lock();
        s.written += 1;
        if s.written == s.flushed.max(s.failed) + 1 {
            // The first pending write starts the committer's timer.
            self.inner.work.notify_one();
        }
        Ticket(s.written)
    }

    /// Everything written so far.
    pub fn ticket(&self) -> Ticket {
        Ticket(self.lock().written)
    }

    /// Is everything up to `t` flushed already?
    pub fn is_durable(&self, t: Ticket) -> bool {
        self.lock().flushed >= t.0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Counters> {
        // A panic while holding this lock cannot leave the counters
        // inconsistent (plain integer updates), so poisoning is ignored.
        self.inner.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn outcome(&self, t: Ticket, (flushed, failed): Progress) -> Option<Result<(), StoreError>> {
        if flushed >= t.0 {
            Some(Ok(()))
        } else if failed >= t.0 {
            let msg = self
                .lock()
                .last_error
                .clone()
                .unwrap_or_else(|| "flush failed".into());
            Some(Err(StoreError::NotDurable(msg)))
        } else {
            None
        }
    }

    /// Ask the committer to flush up to `t` now (nothing when it has).
    pub fn want(&self, t: Ticket) {
        let mut s = self.lock();
        if s.wanted < t.0 && s.flushed < t.0 {
            s.wanted = t.0;
            self.inner.work.notify_one();
        }
    }

    /// Wait until everything up to `t` is on disk.
    pub async fn wait(&self, t: Ticket) -> Result<(), StoreError> {
        let mut rx = self.inner.progress.subscribe();
        if self.outcome(t, *rx.borrow()).is_none() {
            self.want(t);
        }
        let seen = rx
            .wait_for(|p| self.outcome(t, *p).is_some())
            .await
            .map(|p| *p)
            .map_err(|_| StoreError::NotDurable("the committer stopped".into()))?;
        self.outcome(t, seen).unwrap_or(Ok(()))
    }

    /// Blocking variant, for synchronous hooks (never on an async worker
    /// without `block_in_place`).
    pub fn wait_blocking(&self, t: Ticket) -> Result<(), StoreError> {
        self.want(t);
        let mut s = self.lock();
        loop {
            if s.flushed >= t.0 {
                return Ok(());
            }
            if s.failed >= t.0 {
                return Err(StoreError::NotDurable(
                    s.last_error.clone().unwrap_or_default(),
                ));
            }
            if s.stop {
                return Err(StoreError::NotDurable("the committer stopped".into()));
            }
            s = self.inner.done.wait(s).unwrap_or_else(|p| p.into_inner());
        }
    }

    /// Flush what is left and stop the thread.
    pub fn stop(&self) {
        self.lock().stop = true;
        self.inner.work.notify_all();
        if let Some(t) = self.thread.lock().ok().and_then(|mut t| t.take()) {
            let _ = t.join();
        }
    }
}

impl Drop for Committer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn commit_loop(inner: &Inner, db: &sled::Db) {
    loop {
        let target = {
            let mut s = inner.state.lock().unwrap_or_else(|p| p.into_inner());
            let mut deadline = None;
            loop {
                let done = s.flushed.max(s.failed);
                if s.stop || s.wanted > done {
                    break;
                }
                if s.written <= done {
                    // Nothing pending: sleep until a write or a waiter.
                    deadline = None;
                    s = inner.work.wait(s).unwrap_or_else(|p| p.into_inner());
                    continue;
                }
                // Pending writes nobody waits for: flush on the timer.
                let due = *deadline.get_or_insert_with(|| Instant::now() + BACKGROUND_FLUSH);
                let now = Instant::now();
                if now >= due {
                    break;
                }
                s = inner
                    .work
                    .wait_timeout(s, due - now)
                    .unwrap_or_else(|p| p.into_inner())
                    .0;
            }
            if s.stop && s.written <= s.flushed.max(s.failed) {
                drop(s);
                inner.done.notify_all();
                return;
            }
            s.written
        };
        // Every write counted in `target` returned from sled before it was
        // counted, so this flush covers it.
        let result = db.flush();
        let mut s = inner.state.lock().unwrap_or_else(|p| p.into_inner());
        match result {
            Ok(_) => s.flushed = target,
            Err(e) => {
                tracing::error!(error = %e, "state flush failed; writes are not acknowledged");
                s.failed = target;
                s.last_error = Some(e.to_string());
            }
        }
        let progress = (s.flushed, s.failed);
        drop(s);
        inner.done.notify_all();
        inner.progress.send_replace(progress);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db() -> (sled::Db, std::path::PathBuf) {
        let dir = std::env::temp_dir().join(format!("asg-commit-{}", uuid::Uuid::new_v4()));
        (sled::Config::new().path(&dir).open().unwrap(), dir)
    }

    #[test]
    fn waits_return_once_flushed_and_share_flushes() {
        let (db, dir) = db();
        let c = Arc::new(Committer::start(db.clone()));
        let mut handles = Vec::new();
        for i in 0..16u32 {
            let (c, db) = (c.clone(), db.clone());
            handles.push(std::thread::spawn(move || {
                for j in 0..50u32 {
                    db.insert(format!("k{i}-{j}"), vec![0u8; 64]).unwrap();
                    let t = c.written();
                    c.wait_blocking(t).unwrap();
                }
            }));
        }
        for h in handles {
            h.join().unwrap();
        }
        assert!(c.ticket() >= Ticket(800));
        c.stop();
        drop(db);
        std::fs::remove_dir_all(dir).ok();
    }

    #[tokio::test]
    async fn async_wait() {
        let (db, dir) = db();
        let c = Committer::start(db.clone());
        db.insert("a", "b").unwrap();
        let t = c.written();
        c.wait(t).await.unwrap();
        // Already durable: returns at once.
        c.wait(t).await.unwrap();
        drop(c);
        drop(db);
        std::fs::remove_dir_all(dir).ok();
    }

    #[test]
    fn unwaited_writes_are_flushed_by_the_timer() {
        let (db, dir) = db();
        let c = Committer::start(db.clone());
        // Let the committer go idle first: the write must wake it.
        std::thread::sleep(Duration::from_millis(50));
        db.insert("a", "b").unwrap();
        let t = c.written();
        // Nobody waits: no flush at once, one within the timer period.
        assert!(c.lock().flushed < t.0);
        let deadline = Instant::now() + BACKGROUND_FLUSH * 20;
        while c.lock().flushed < t.0 {
            assert!(Instant::now() < deadline, "timer flush did not happen");
            std::thread::sleep(Duration::from_millis(10));
        }
        drop(c);
        drop(db);
        std::fs::remove_dir_all(dir).ok();
    }
}
