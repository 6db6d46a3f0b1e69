//! Retention: a background thread that keeps the data folder bounded.
//! Audit records go by age and by total size (oldest first); sessions and
//! agents go when idle; approvals expire on time and are deleted once final
//! and older than the audit age limit.

use super::{now_ms, Store, StoreError};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use time::format_description::well_known::Rfc3339;

/// Limits for one pass; read fresh for every pass (the session idle time
/// comes from the hot-reloaded policy).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Audit records older than this are deleted (0 = no age limit).
    pub audit_max_age_secs: u64,
    /// Oldest audit records are deleted while the log is larger than this
    /// (0 = no size limit); deletion goes down to 90 % to avoid churn.
    pub audit_max_bytes: u64,
    /// Sessions and agents idle longer than this are deleted.
    pub idle_expiry_secs: u64,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Pass {
    pub audit_by_age: usize,
    pub audit_by_size: usize,
    pub idle_removed: usize,
    pub approvals_expired: usize,
    pub approvals_removed: usize,
}

fn unix_ms(rfc3339: &str) -> Option<i64> {
    time::OffsetDateTime::parse(rfc3339, &Rfc3339)
        .ok()
        .map(|t| (t.unix_timestamp_nanos() / 1_000_000) as i64)
}

impl Store {
    /// One retention pass at `now`.
    pub fn retain(&self, limits: Limits, now: i64) -> Result<Pass, StoreError> {
        self.count_audit_bytes()?;
        let mut pass = Pass::default();
        if limits.audit_max_age_secs > 0 {
            let cutoff = now - (limits.audit_max_age_secs as i64) * 1000;
            while let Some((seq, e)) = self.audit_oldest()? {
                // An unparseable time is treated as old: it cannot be kept
                // by age reasoning, and records are written with valid times.
                if unix_ms(&e.time).is_some_and(|t| t >= cutoff) {
                    break;
                }
                self.audit_remove(seq, &e.session_id)?;
                pass.audit_by_age += 1;
            }
        }
        if limits.audit_max_bytes > 0 && self.audit_bytes() > limits.audit_max_bytes {
            let target = limits.audit_max_bytes / 10 * 9;
            while self.audit_bytes() > target {
                let Some((seq, e)) = self.audit_oldest()? else {
                    break;
                };
                self.audit_remove(seq, &e.session_id)?;
                pass.audit_by_size += 1;
            }
        }
        if limits.idle_expiry_secs > 0 {
            pass.idle_removed = self.expire_idle(now - (limits.idle_expiry_secs as i64) * 1000)?;
        }
        let keep_approvals_ms = if limits.audit_max_age_secs > 0 {
            (limits.audit_max_age_secs as i64) * 1000
        } else {
            i64::MAX / 2
        };
        let (expired, removed) = self.approvals_maintain(now, now - keep_approvals_ms)?;
        pass.approvals_expired = expired;
        pass.approvals_removed = removed;
        Ok(pass)
    }
}

/// Runs [`Store::retain`] every `interval` until `stop` is set.
pub struct Retention {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Retention {
    pub fn spawn(
        store: Arc<Store>,
        interval: Duration,
        limits: impl Fn() -> Limits + Send + 'static,
    ) -> Retention {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("asg-retention".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    match store.retain(limits(), now_ms()) {
                        Ok(p) if p != Pass::default() => tracing::info!(
                            audit_by_age = p.audit_by_age,
                            audit_by_size = p.audit_by_size,
                            idle_removed = p.idle_removed,
                            approvals_expired = p.approvals_expired,
                            approvals_removed = p.approvals_removed,
                            "retention pass"
                        ),
                        Ok(_) => {}
                        Err(e) => tracing::error!(error = %e, "retention pass failed"),
                    }
                    // Sleep in short steps so stopping is prompt.
                    let mut slept = Duration::ZERO;
                    while slept < interval && !flag.load(Ordering::Relaxed) {
                        let step = Duration::from_millis(200).min(interval - slept);
                        std::thread::sleep(step);
                        slept += step;
                    }
                }
            })
            .expect("spawn the retention thread");
        Retention {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Retention {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::audit::event;
    use super::*;

    #[test]
    fn audit_is_trimmed_by_age_then_by_size() {
        let (store, dir) = super::super::temp_store();
        let base = unix_ms("2026-01-01T00:00:00Z").unwrap();
        for (i, t) in [
            "2025-12-01T00:00:00Z",
            "2025-12-30T00:00:00Z",
            "2025-12-31T12:00:00Z",
            "2026-01-01T00:00:00Z",
        ]
        .iter()
        .enumerate()
        {
            let mut e = event(&format!("r{i}"), "s");
            e.time = t.to_string();
            store.append_audit(&e).unwrap();
        }
        let limits = Limits {
            audit_max_age_secs: 2 * 86_400,
            audit_max_bytes: 0,
            idle_expiry_secs: 0,
        };
        let pass = store.retain(limits, base).unwrap();
        assert_eq!(pass.audit_by_age, 1);
        assert_eq!(store.audit_len(), 3);
        assert_eq!(store.audit_for_session("s", 10).unwrap().len(), 3);

        let one = store.audit_bytes() / 3;
        let limits = Limits {
            audit_max_age_secs: 0,
            audit_max_bytes: one * 2,
            idle_expiry_secs: 0,
        };
        let pass = store.retain(limits, base).unwrap();
        assert_eq!(pass.audit_by_size, 2, "down to 90 % of the limit");
        let left = store.audit_tail(10).unwrap();
        assert_eq!(left.len(), 1);
        assert_eq!(left[0].request_id, "r3", "newest kept");
        std::fs::remove_dir_all(dir).ok();
    }

    #[test]
    fn background_thread_runs_and_stops() {
        let (store, dir) = super::super::temp_store();
        let store = Arc::new(store);
        let mut e = event("old", "");
        e.time = "2000-01-01T00:00:00Z".into();
        store.append_audit(&e).unwrap();
        let r = Retention::spawn(store.clone(), Duration::from_millis(50), || Limits {
            audit_max_age_secs: 86_400,
            audit_max_bytes: 0,
            idle_expiry_secs: 0,
        });
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while store.audit_len() > 0 && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        drop(r);
        assert_eq!(store.audit_len(), 0);
        std::fs::remove_dir_all(dir).ok();
    }
}
