//! Per-caller token buckets for the admin API.
//!
//! Buckets are keyed by the authenticated key when auth is on and by client
//! address otherwise, never by a raw header a caller could rotate to
//! escape its bucket. Idle buckets are evicted so
//! the map cannot grow without bound.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub struct RateLimiter {
    per_minute: u32,
    buckets: Mutex<HashMap<String, Bucket>>,
}

struct Bucket {
    tokens: f64,
    last: Instant,
}

const MAX_BUCKETS: usize = 100_000;
const IDLE: Duration = Duration::from_secs(300);

impl RateLimiter {
    /// `per_minute == 0` disables limiting.
    pub fn new(per_minute: u32) -> Self {
        RateLimiter {
            per_minute,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    pub fn enabled(&self) -> bool {
        self.per_minute > 0
    }

    /// Like [`RateLimiter::allow`], but with shared state (`ASG_STATE_URL`)
    /// the limit holds across every gateway of the fleet: a caller that
    /// spreads its requests over replicas gets the same budget as one that
    /// does not.
    pub async fn allow_in(&self, store: &crate::state::Store, key: &str) -> bool {
        match store.shared() {
            Some(s) if self.enabled() => {
                s.rate_allow(&format!("admin:{key}"), self.per_minute, self.per_minute)
                    .await
            }
            _ => self.allow(key),
        }
    }

    /// Take one token for `key`; `false` means rate limited.
    pub fn allow(&self, key: &str) -> bool {
        self.allow_at(key, Instant::now())
    }

    /// Whether `key` has a token left, without taking it.
    pub fn available(&self, key: &str) -> bool {
        self.available_at(key, Instant::now())
    }

    fn available_at(&self, key: &str, now: Instant) -> bool {
        if self.per_minute == 0 {
            return true;
        }
        let Ok(buckets) = self.buckets.lock() else {
            return true;
        };
        buckets.get(key).is_none_or(|b| {
            let rate = self.per_minute as f64 / 60.0;
            let elapsed = now.duration_since(b.last).as_secs_f64();
            b.tokens + elapsed * rate >= 1.0
        })
    }

    /// Seconds until an empty bucket holds one token again (for `Retry-After`).
    pub fn seconds_per_token(&self) -> u64 {
        if self.per_minute == 0 {
            return 0;
        }
        60_u64.div_ceil(self.per_minute as u64)
    }

    fn allow_at(&self, key: &str, now: Instant) -> bool {
        if self.per_minute == 0 {
            return true;
        }
        let capacity = self.per_minute as f64;
        let rate = capacity / 60.0;
        let Ok(mut buckets) = self.buckets.lock() else {
            return true;
        };
        if buckets.len() >= MAX_BUCKETS {
            buckets.retain(|_, b| now.duration_since(b.last) < IDLE);
            if buckets.len() >= MAX_BUCKETS {
                // Still full of active callers: refuse newcomers rather than grow.
                return false;
            }
        }
        let b = buckets.entry(key.to_string()).or_insert(Bucket {
            tokens: capacity,
            last: now,
        });
        let elapsed = now.duration_since(b.last).as_secs_f64();
        b.tokens = (b.tokens + elapsed * rate).min(capacity);
        b.last = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_empties_and_refills() {
        let rl = RateLimiter::new(60);
        let t0 = Instant::now();
        for _ in 0..60 {
            assert!(rl.allow_at("k", t0));
        }
        assert!(!rl.allow_at("k", t0));
        assert!(rl.allow_at("other", t0), "buckets are per key");
        assert!(
            rl.allow_at("k", t0 + Duration::from_secs(2)),
            "refills at one per second"
        );
    }

    #[test]
    fn available_peeks_without_taking() {
        let rl = RateLimiter::new(2);
        let t0 = Instant::now();
        assert!(rl.available_at("k", t0));
        assert!(rl.allow_at("k", t0) && rl.allow_at("k", t0));
        assert!(!rl.available_at("k", t0));
        assert!(!rl.available_at("k", t0), "peeking takes nothing");
        assert!(rl.available_at("k", t0 + Duration::from_secs(30)));
        assert_eq!(rl.seconds_per_token(), 30);
    }

    #[test]
    fn disabled_allows_everything() {
        let rl = RateLimiter::new(0);
        assert!((0..1000).all(|_| rl.allow("k")));
    }
}
