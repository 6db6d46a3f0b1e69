//! GCRA (generic cell rate algorithm): a rate limit kept as ONE number per
//! key, the theoretical arrival time (TAT) of the next request. That makes
//! it cheap to share: one atomic read-compare-write in a Redis script
//! (`redis/lua/rate.lua` is this function), with no token refill to
//! reconcile between gateways. The same function backs the local limiter
//! a gateway falls back to when the shared store is unreachable.

use std::collections::HashMap;
use std::sync::Mutex;

/// The verdict for one request at `now_ms` given the stored TAT.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Step {
    pub allowed: bool,
    /// The TAT to store (unchanged when refused).
    pub tat_ms: f64,
    pub retry_after_ms: u64,
}

/// `per_minute` sustained rate, `burst` requests at once (≥ 1).
pub fn step(tat_ms: Option<f64>, now_ms: f64, per_minute: u32, burst: u32) -> Step {
    let emission = 60_000.0 / f64::from(per_minute.max(1));
    let tolerance = emission * f64::from(burst.max(1) - 1);
    let tat = tat_ms.unwrap_or(now_ms).max(now_ms);
    let allow_at = tat - tolerance;
    if now_ms < allow_at {
        return Step {
            allowed: false,
            tat_ms: tat,
            retry_after_ms: (allow_at - now_ms).ceil() as u64,
        };
    }
    Step {
        allowed: true,
        tat_ms: tat + emission,
        retry_after_ms: 0,
    }
}

/// In-process GCRA (the fallback when the shared counters are down, and
/// the single-gateway limiter). Keys idle past their TAT are dropped once
/// the map is large, so it cannot grow without bound.
#[derive(Default)]
pub struct LocalGcra {
    tats: Mutex<HashMap<String, f64>>,
}

const MAX_KEYS: usize = 100_000;

impl LocalGcra {
    pub fn check(&self, key: &str, now_ms: f64, per_minute: u32, burst: u32) -> Step {
        let mut tats = self.tats.lock().unwrap_or_else(|p| p.into_inner());
        if tats.len() >= MAX_KEYS {
            tats.retain(|_, tat| *tat > now_ms);
        }
        let s = step(tats.get(key).copied(), now_ms, per_minute, burst);
        if s.allowed && (tats.len() < MAX_KEYS || tats.contains_key(key)) {
            tats.insert(key.to_string(), s.tat_ms);
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_sustained_rate() {
        let g = LocalGcra::default();
        // 60/min = one per second, burst 3.
        for _ in 0..3 {
            assert!(g.check("k", 0.0, 60, 3).allowed);
        }
        let refused = g.check("k", 0.0, 60, 3);
        assert!(!refused.allowed);
        assert_eq!(refused.retry_after_ms, 1000);
        assert!(!g.check("k", 999.0, 60, 3).allowed);
        assert!(g.check("k", 1000.0, 60, 3).allowed);
        assert!(g.check("other", 0.0, 60, 3).allowed, "per key");
    }

    #[test]
    fn idle_keys_regain_their_burst() {
        let mut tat = None;
        for _ in 0..2 {
            let s = step(tat, 0.0, 60, 2);
            assert!(s.allowed);
            tat = Some(s.tat_ms);
        }
        assert!(!step(tat, 0.0, 60, 2).allowed);
        // Long idle: the stored TAT is in the past, the full burst is back.
        let later = step(tat, 60_000.0, 60, 2);
        assert!(later.allowed);
        assert!(step(Some(later.tat_ms), 60_000.0, 60, 2).allowed);
    }
}
