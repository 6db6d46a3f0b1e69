//! In-memory decision statistics for the console overview: decisions per
//! minute and top findings over the last hour (since the process started).
//! Counting at append time is O(1); scanning the audit log for a chart
//! would cost a full read of an hour of traffic on every refresh.

use crate::decision::Decision;
use std::collections::BTreeMap;
use std::sync::Mutex;

const MINUTES: usize = 60;

#[derive(Clone, Default)]
struct Bucket {
    minute: i64,
    decisions: [u64; 5],
    findings: BTreeMap<String, u64>,
}

/// Findings keys are rule families, which come from the policy's closed
/// rule set; this bound only guards against a pathological policy.
const MAX_FINDING_KEYS: usize = 512;

pub struct Stats {
    buckets: Mutex<Vec<Bucket>>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct MinuteCounts {
    /// Unix minute (seconds / 60).
    pub minute: i64,
    pub allow: u64,
    pub allow_with_redaction: u64,
    pub challenge: u64,
    pub require_approval: u64,
    pub block: u64,
}

impl Default for Stats {
    fn default() -> Self {
        Stats {
            buckets: Mutex::new(vec![Bucket::default(); MINUTES]),
        }
    }
}

fn decision_index(d: &str) -> Option<usize> {
    Decision::ALL.iter().position(|x| x.as_str() == d)
}

impl Stats {
    pub fn record<'a>(&self, now_ms: i64, decision: &str, findings: impl Iterator<Item = &'a str>) {
        let minute = now_ms.div_euclid(60_000);
        let Ok(mut buckets) = self.buckets.lock() else {
            return;
        };
        let b = &mut buckets[minute.rem_euclid(MINUTES as i64) as usize];
        if b.minute != minute {
            *b = Bucket {
                minute,
                ..Bucket::default()
            };
        }
        if let Some(i) = decision_index(decision) {
            b.decisions[i] += 1;
        }
        for f in findings {
            if let Some(n) = b.findings.get_mut(f) {
                *n += 1;
            } else if b.findings.len() < MAX_FINDING_KEYS {
                b.findings.insert(f.to_string(), 1);
            }
        }
    }

    /// The last `minutes` minutes up to `now_ms`, oldest first (missing
    /// minutes are zero).
    pub fn per_minute(&self, now_ms: i64, minutes: usize) -> Vec<MinuteCounts> {
        let now = now_ms.div_euclid(60_000);
        let buckets = self.buckets.lock().map(|b| b.clone()).unwrap_or_default();
        (0..minutes.min(MINUTES) as i64)
            .rev()
            .map(|ago| {
                let m = now - ago;
                let b = buckets
                    .get(m.rem_euclid(MINUTES as i64) as usize)
                    .filter(|b| b.minute == m);
                let d = b.map(|b| b.decisions).unwrap_or_default();
                MinuteCounts {
                    minute: m,
                    allow: d[0],
                    allow_with_redaction: d[1],
                    challenge: d[2],
                    require_approval: d[3],
                    block: d[4],
                }
            })
            .collect()
    }

    /// Most frequent finding families over the last hour.
    pub fn top_findings(&self, now_ms: i64, n: usize) -> Vec<(String, u64)> {
        let now = now_ms.div_euclid(60_000);
        let Ok(buckets) = self.buckets.lock() else {
            return Vec::new();
        };
        let mut total: BTreeMap<&str, u64> = BTreeMap::new();
        for b in buckets.iter().filter(|b| now - b.minute < MINUTES as i64) {
            for (k, v) in &b.findings {
                *total.entry(k).or_default() += v;
            }
        }
        let mut list: Vec<(String, u64)> =
            total.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
        list.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        list.truncate(n);
        list
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_per_minute_and_ranks_findings() {
        let s = Stats::default();
        let t = 1_000 * 60_000;
        s.record(t, "allow", std::iter::empty());
        s.record(t + 1, "block", ["secret.aws", "pi.override"].into_iter());
        s.record(t + 60_000, "block", ["pi.override"].into_iter());
        let m = s.per_minute(t + 60_000, 3);
        assert_eq!(m.len(), 3);
        assert_eq!((m[1].allow, m[1].block), (1, 1));
        assert_eq!(m[2].block, 1);
        assert_eq!(
            s.top_findings(t + 60_000, 5),
            vec![
                ("pi.override".to_string(), 2),
                ("secret.aws".to_string(), 1)
            ]
        );
        // Two hours later everything has rotated out.
        assert!(s.top_findings(t + 2 * 3_600_000, 5).is_empty());
    }
}
