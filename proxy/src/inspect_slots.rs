//! A bound on inspection work in flight.
//!
//! Inspecting a body costs CPU and several times its size in memory, and a
//! few kilobytes of gzip can carry megabytes; nothing else bounds how many
//! are inspected at once. Every inspection (proxy requests, large buffered
//! responses, WebSocket client messages, the inspect API) takes a slot first. When all slots are busy
//! a request waits in a bounded queue for a bounded time, then gets 503
//! with `Retry-After`: refused, never forwarded uninspected.

use prometheus::{IntCounterVec, IntGauge};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Where a slot is asked for (metric label, closed set).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Surface {
    Request,
    Response,
    InspectApi,
    /// Client messages of an inspected WebSocket.
    WebSocket,
}

impl Surface {
    pub fn as_str(self) -> &'static str {
        match self {
            Surface::Request => "request",
            Surface::Response => "response",
            Surface::InspectApi => "inspect_api",
            Surface::WebSocket => "websocket",
        }
    }
}

/// Why no slot was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Busy {
    /// The queue was full: refused at once.
    QueueFull,
    /// Waited the configured time without a slot.
    TimedOut,
}

impl Busy {
    pub fn as_str(self) -> &'static str {
        match self {
            Busy::QueueFull => "queue_full",
            Busy::TimedOut => "timeout",
        }
    }
}

/// The gauges and counter of [`InspectSlots`] (registered by the metrics).
#[derive(Clone)]
pub struct SlotMetrics {
    pub in_flight: IntGauge,
    pub queued: IntGauge,
    /// Refusals by surface and [`Busy`] reason.
    pub refused: IntCounterVec,
}

pub struct InspectSlots {
    sem: Arc<Semaphore>,
    slots: usize,
    queue: usize,
    waiting: AtomicUsize,
    wait: Duration,
    metrics: SlotMetrics,
}

/// A held slot; released on drop.
pub struct Slot {
    _permit: OwnedSemaphorePermit,
    in_flight: IntGauge,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.in_flight.dec();
    }
}

impl InspectSlots {
    pub fn new(slots: usize, queue: usize, wait: Duration, metrics: SlotMetrics) -> Self {
        let slots = slots.max(1);
        InspectSlots {
            sem: Arc::new(Semaphore::new(slots)),
            slots,
            queue,
            waiting: AtomicUsize::new(0),
            wait,
            metrics,
        }
    }

    pub fn slots(&self) -> usize {
        self.slots
    }

    fn granted(&self, permit: OwnedSemaphorePermit) -> Slot {
        self.metrics.in_flight.inc();
        Slot {
            _permit: permit,
            in_flight: self.metrics.in_flight.clone(),
        }
    }

    fn refuse(&self, surface: Surface, why: Busy) -> Busy {
        self.metrics
            .refused
            .with_label_values(&[surface.as_str(), why.as_str()])
            .inc();
        why
    }

    /// A slot, waiting (in the bounded queue, for the bounded time) if all
    /// are busy.
    pub async fn acquire(&self, surface: Surface) -> Result<Slot, Busy> {
        if let Ok(p) = self.sem.clone().try_acquire_owned() {
            return Ok(self.granted(p));
        }
        // Join the queue only if there is room (the count may briefly
        // overshoot under a race; the compare-exchange loop keeps it exact).
        let mut n = self.waiting.load(Ordering::Relaxed);
        loop {
            if n >= self.queue {
                return Err(self.refuse(surface, Busy::QueueFull));
            }
            match self
                .waiting
                .compare_exchange(n, n + 1, Ordering::AcqRel, Ordering::Relaxed)
            {
                Ok(_) => break,
                Err(now) => n = now,
            }
        }
        self.metrics.queued.inc();
        let got = tokio::time::timeout(self.wait, self.sem.clone().acquire_owned()).await;
        self.waiting.fetch_sub(1, Ordering::AcqRel);
        self.metrics.queued.dec();
        match got {
            Ok(Ok(p)) => Ok(self.granted(p)),
            _ => Err(self.refuse(surface, Busy::TimedOut)),
        }
    }

    /// [`acquire`](Self::acquire) from synchronous code on a multi-thread
    /// runtime worker (response filters): the wait happens with the worker
    /// handed over to the runtime (`block_in_place`).
    pub fn acquire_blocking(&self, surface: Surface) -> Result<Slot, Busy> {
        if let Ok(p) = self.sem.clone().try_acquire_owned() {
            return Ok(self.granted(p));
        }
        match tokio::runtime::Handle::try_current() {
            Ok(h) => tokio::task::block_in_place(|| h.block_on(self.acquire(surface))),
            Err(_) => Err(self.refuse(surface, Busy::TimedOut)),
        }
    }

    /// Seconds a refused client should wait before retrying.
    pub fn retry_after_secs(&self) -> u64 {
        self.wait.as_secs().max(1)
    }

    /// The refusal message (one sentence: what, and what to do).
    pub fn busy_message(&self, why: Busy) -> String {
        let what = match why {
            Busy::QueueFull => "too many requests are waiting for inspection",
            Busy::TimedOut => "no inspection slot became free in time",
        };
        format!(
            "the gateway is at its inspection capacity ({what}); nothing was forwarded, retry after {} s",
            self.retry_after_secs()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus::Opts;

    fn slots(n: usize, queue: usize, wait_ms: u64) -> InspectSlots {
        let m = SlotMetrics {
            in_flight: IntGauge::new("f", "f").unwrap(),
            queued: IntGauge::new("q", "q").unwrap(),
            refused: IntCounterVec::new(Opts::new("r", "r"), &["surface", "reason"]).unwrap(),
        };
        InspectSlots::new(n, queue, Duration::from_millis(wait_ms), m)
    }

    #[tokio::test(start_paused = true)]
    async fn waits_then_refuses() {
        let s = slots(1, 1, 500);
        let a = s.acquire(Surface::Request).await.unwrap();
        assert_eq!(s.metrics.in_flight.get(), 1);
        // One may queue; a second waiter is refused at once.
        let (first, second) = tokio::join!(s.acquire(Surface::Request), async {
            tokio::task::yield_now().await;
            s.acquire(Surface::Response).await
        });
        assert_eq!(first.err(), Some(Busy::TimedOut));
        assert_eq!(second.err(), Some(Busy::QueueFull));
        let refused = |surface, why| s.metrics.refused.with_label_values(&[surface, why]).get();
        assert_eq!(refused("request", "timeout"), 1);
        assert_eq!(refused("response", "queue_full"), 1);
        drop(a);
        assert_eq!(s.metrics.in_flight.get(), 0);
        assert_eq!(s.metrics.queued.get(), 0);
        assert!(s.acquire(Surface::InspectApi).await.is_ok());
    }

    /// Response filters are synchronous: they wait with the worker handed
    /// over to the runtime, and the wait is bounded the same way.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn synchronous_callers_wait_in_the_runtime() {
        let s = slots(1, 4, 50);
        let held = s.acquire(Surface::Request).await.unwrap();
        assert_eq!(
            s.acquire_blocking(Surface::Response).err(),
            Some(Busy::TimedOut)
        );
        drop(held);
        let got = s.acquire_blocking(Surface::Response);
        assert!(got.is_ok());
        assert_eq!(s.metrics.in_flight.get(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_released_slot_goes_to_the_waiter() {
        let s = Arc::new(slots(1, 4, 10_000));
        let held = s.acquire(Surface::Request).await.unwrap();
        let s2 = s.clone();
        let waiter = tokio::spawn(async move { s2.acquire(Surface::Request).await.is_ok() });
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(s.metrics.queued.get(), 1);
        drop(held);
        assert!(waiter.await.unwrap());
        assert!(s.busy_message(Busy::TimedOut).contains("retry after 10 s"));
    }
}
