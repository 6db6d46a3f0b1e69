//! Upstream timeouts: connect, first byte, idle and total.
//!
//! pingora has one read timeout per upstream connection, applied to each
//! read alike. An inspecting gateway needs more: an upstream may take long
//! to produce the first byte of a non-streamed answer, must not go silent
//! in the middle of a stream, and must not trickle a buffered answer for
//! ever. So each proxied request gets a [`Watchdog`]: the data path tells
//! it when the request went out, when the response head and each chunk
//! came in, and when it ended; when a deadline passes first, the watchdog
//! shuts the upstream socket down (through its own duplicate of the
//! descriptor, so it can never touch a socket that has been closed and
//! reused). pingora's pending read then fails, and the data path answers
//! in the dialect's own form: a 504 before the response head, an error
//! event on a stream.

use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;
use tokio::time::Instant;

/// The configured limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// TCP (and TLS) connection to the upstream.
    pub connect: Duration,
    /// From the request being sent to the response head.
    pub first_byte: Duration,
    /// Silence between two chunks of a response body (streams included).
    pub idle: Duration,
    /// A whole buffered (non-stream) exchange, from the request being sent
    /// to the last byte. Streams are bounded by `idle` only.
    pub total: Duration,
}

/// Which limit passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expired {
    FirstByte,
    Idle,
    Total,
}

impl Expired {
    /// A sentence for the client, e.g. "sent no response within 120 s".
    pub fn describe(self, t: &Timeouts) -> String {
        match self {
            Expired::FirstByte => format!(
                "sent no response within {} s (first_byte_timeout_secs)",
                t.first_byte.as_secs()
            ),
            Expired::Idle => format!(
                "sent nothing for {} s in the middle of its answer (idle_timeout_secs)",
                t.idle.as_secs()
            ),
            Expired::Total => format!(
                "did not finish its answer within {} s (total_timeout_secs)",
                t.total.as_secs()
            ),
        }
    }
}

#[derive(Debug)]
enum Phase {
    /// Nothing to watch yet (connecting, or the gateway itself is busy,
    /// e.g. holding a call for an operator).
    Paused,
    /// Waiting for the response head.
    FirstByte,
    /// Receiving the body; `buffered` answers also have a total deadline.
    Body {
        buffered: bool,
    },
    Done,
}

#[derive(Debug)]
struct State {
    phase: Phase,
    /// When the current phase's deadline passes.
    deadline: Option<Instant>,
    /// The whole exchange's deadline (buffered answers).
    total: Option<Instant>,
    fd: Option<OwnedFd>,
    fired: Option<Expired>,
    task: bool,
    /// What the watchdog task last read: `Some(Some(t))` it sleeps until
    /// `t`, `Some(None)` it waits with no deadline, `None` it has not read
    /// the state yet. Updates wake it only when it would otherwise miss a
    /// deadline (an earlier one, or a first one) or when the exchange ends:
    /// most updates push the deadline later, and the task, waking at the
    /// old one, finds the new one and sleeps again. One wake-up per
    /// request instead of one per event.
    armed: Option<Option<Instant>>,
}

#[cfg(test)]
thread_local! {
    /// Wake-ups sent by updates on this thread (tests count them).
    static WAKES: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
}

impl State {
    /// The next deadline and what it stands for, or `None` when done.
    fn next(&self) -> Option<Option<(Instant, Expired)>> {
        let buffered_total = match self.phase {
            Phase::Done => return None,
            Phase::Body { buffered: true } | Phase::FirstByte => self.total,
            _ => None,
        };
        let phase = self.deadline.map(|d| {
            let kind = match self.phase {
                Phase::FirstByte => Expired::FirstByte,
                _ => Expired::Idle,
            };
            (d, kind)
        });
        Some(match (phase, buffered_total) {
            (Some((d, _)), Some(t)) if t < d => Some((t, Expired::Total)),
            (None, Some(t)) if !matches!(self.phase, Phase::Paused) => Some((t, Expired::Total)),
            (p, _) => p,
        })
    }

    /// Whether the task must be woken to see the state as it is now.
    fn must_wake(&self) -> bool {
        let Some(armed) = self.armed else {
            return false;
        };
        match (self.next(), armed) {
            (None, _) => true,
            (Some(Some((at, _))), Some(sleeping_until)) => at < sleeping_until,
            (Some(Some(_)), None) => true,
            (Some(None), _) => false,
        }
    }
}

/// One request's watchdog (see the module docs). Cheap to clone.
#[derive(Clone, Debug)]
pub struct Watchdog {
    limits: Timeouts,
    inner: Arc<(Mutex<State>, Notify)>,
}

impl Watchdog {
    pub fn new(limits: Timeouts) -> Self {
        Watchdog {
            limits,
            inner: Arc::new((
                Mutex::new(State {
                    phase: Phase::Paused,
                    deadline: None,
                    total: None,
                    fd: None,
                    fired: None,
                    task: false,
                    armed: None,
                }),
                Notify::new(),
            )),
        }
    }

    pub fn limits(&self) -> &Timeouts {
        &self.limits
    }

    fn update(&self, f: impl FnOnce(&mut State, &Timeouts)) {
        let (lock, notify) = &*self.inner;
        let wake = match lock.lock() {
            Ok(mut s) => {
                if matches!(s.phase, Phase::Done) || s.fired.is_some() {
                    return;
                }
                f(&mut s, &self.limits);
                s.must_wake()
            }
            Err(_) => true,
        };
        if wake {
            #[cfg(test)]
            WAKES.with(|w| w.set(w.get() + 1));
            notify.notify_one();
        }
    }

    /// Connected to the upstream over `fd` (a new or a pooled connection).
    /// Starts the watchdog task on first use.
    pub fn attach(&self, fd: RawFd) {
        // SAFETY: pingora hands over the descriptor of the live upstream
        // connection for the duration of this call; it is only duplicated.
        let dup = unsafe { BorrowedFd::borrow_raw(fd) }.try_clone_to_owned();
        let (lock, _) = &*self.inner;
        let start = match lock.lock() {
            Ok(mut s) => {
                s.fd = dup.ok();
                !std::mem::replace(&mut s.task, true)
            }
            Err(_) => false,
        };
        if start {
            let me = self.clone();
            tokio::spawn(async move { me.run().await });
        }
    }

    /// The request (or a chunk of its body) went out: the first-byte clock
    /// (re)starts, and the total clock starts once.
    pub fn request_sent(&self) {
        self.update(|s, t| {
            let now = Instant::now();
            s.total.get_or_insert(now + t.total);
            if matches!(s.phase, Phase::Paused | Phase::FirstByte) {
                s.phase = Phase::FirstByte;
                s.deadline = Some(now + t.first_byte);
            }
        });
    }

    /// The gateway itself is busy before the request is complete (judging
    /// or holding the body): the upstream is not to blame.
    pub fn pause(&self) {
        self.update(|s, _| {
            if matches!(s.phase, Phase::FirstByte) {
                s.phase = Phase::Paused;
                s.deadline = None;
            }
        });
    }

    /// The response head arrived. `buffered`: the whole body is awaited
    /// before anything is relayed (a total deadline applies).
    pub fn head_received(&self, buffered: bool) {
        self.update(|s, t| {
            s.phase = Phase::Body { buffered };
            s.deadline = Some(Instant::now() + t.idle);
        });
    }

    /// A body chunk arrived.
    pub fn chunk_received(&self) {
        self.update(|s, t| {
            if matches!(s.phase, Phase::Body { .. }) {
                s.deadline = Some(Instant::now() + t.idle);
            }
        });
    }

    /// The exchange ended (or failed): nothing more to watch.
    pub fn finish(&self) {
        let (lock, notify) = &*self.inner;
        if let Ok(mut s) = lock.lock() {
            s.phase = Phase::Done;
            s.fd = None;
        }
        notify.notify_one();
    }

    /// The limit that passed, if one did.
    pub fn fired(&self) -> Option<Expired> {
        self.inner.0.lock().ok().and_then(|s| s.fired)
    }

    /// The next deadline, noted as the one the task now waits for.
    fn next(&self) -> Option<Option<(Instant, Expired)>> {
        let mut s = self.inner.0.lock().ok()?;
        let next = s.next();
        s.armed = next.map(|n| n.map(|(at, _)| at));
        next
    }

    async fn run(self) {
        let notify = &self.inner.1;
        loop {
            let Some(next) = self.next() else {
                return;
            };
            match next {
                None => notify.notified().await,
                Some((at, _)) => {
                    tokio::select! {
                        _ = notify.notified() => {}
                        _ = tokio::time::sleep_until(at) => self.expire(),
                    }
                }
            }
        }
    }

    /// A deadline passed: if one still stands, cut the upstream off. What
    /// passed is read from the state as it is now, not from the deadline
    /// the task slept towards: that one may have moved (a later chunk, the
    /// response head) and a later one passed too by the time a late timer
    /// fires.
    fn expire(&self) {
        let (lock, _) = &*self.inner;
        let Ok(mut s) = lock.lock() else {
            return;
        };
        if matches!(s.phase, Phase::Done | Phase::Paused) || s.fired.is_some() {
            return;
        }
        let Some(Some((at, kind))) = s.next() else {
            return;
        };
        if at > Instant::now() {
            return;
        }
        s.fired = Some(kind);
        s.phase = Phase::Done;
        if let Some(fd) = s.fd.take() {
            let _ = nix::sys::socket::shutdown(fd.as_raw_fd(), nix::sys::socket::Shutdown::Both);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::net::{TcpListener, TcpStream};
    use std::os::fd::AsRawFd;

    fn limits(ms: u64) -> Timeouts {
        Timeouts {
            connect: Duration::from_millis(ms),
            first_byte: Duration::from_millis(ms),
            idle: Duration::from_millis(ms),
            total: Duration::from_millis(ms * 4),
        }
    }

    /// A connected pair; the watchdog watches `ours`, the test reads `theirs`.
    fn pair() -> (TcpStream, TcpStream) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let ours = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (theirs, _) = l.accept().unwrap();
        (ours, theirs)
    }

    /// The peer sees the connection end (EOF) once the watchdog fires.
    fn cut(theirs: &mut TcpStream) -> bool {
        theirs
            .set_read_timeout(Some(Duration::from_millis(20)))
            .unwrap();
        matches!(theirs.read(&mut [0u8; 8]), Ok(0))
    }

    #[tokio::test(start_paused = true)]
    async fn a_silent_upstream_is_cut_after_the_first_byte_limit() {
        let (ours, mut theirs) = pair();
        let w = Watchdog::new(limits(100));
        w.attach(ours.as_raw_fd());
        w.request_sent();
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(w.fired(), None);
        tokio::time::sleep(Duration::from_millis(60)).await;
        tokio::task::yield_now().await;
        assert_eq!(w.fired(), Some(Expired::FirstByte));
        assert!(cut(&mut theirs));
    }

    #[tokio::test(start_paused = true)]
    async fn chunks_keep_a_stream_alive_and_silence_ends_it() {
        let (ours, _theirs) = pair();
        let w = Watchdog::new(limits(100));
        w.attach(ours.as_raw_fd());
        w.request_sent();
        w.head_received(false);
        for _ in 0..10 {
            tokio::time::sleep(Duration::from_millis(80)).await;
            w.chunk_received();
        }
        assert_eq!(w.fired(), None, "a stream is not bounded by the total");
        tokio::time::sleep(Duration::from_millis(120)).await;
        tokio::task::yield_now().await;
        assert_eq!(w.fired(), Some(Expired::Idle));
    }

    #[tokio::test(start_paused = true)]
    async fn a_trickled_buffered_answer_hits_the_total() {
        let (ours, _theirs) = pair();
        let w = Watchdog::new(limits(100));
        w.attach(ours.as_raw_fd());
        w.request_sent();
        w.head_received(true);
        for _ in 0..6 {
            tokio::time::sleep(Duration::from_millis(80)).await;
            w.chunk_received();
        }
        tokio::task::yield_now().await;
        assert_eq!(w.fired(), Some(Expired::Total));
    }

    #[tokio::test(start_paused = true)]
    async fn finished_or_paused_exchanges_are_never_cut() {
        let (ours, mut theirs) = pair();
        let w = Watchdog::new(limits(100));
        w.attach(ours.as_raw_fd());
        w.request_sent();
        w.pause();
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(w.fired(), None, "paused while the gateway holds the call");
        w.request_sent();
        w.finish();
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(w.fired(), None);
        assert!(!cut(&mut theirs));
    }

    #[tokio::test(start_paused = true)]
    async fn later_deadlines_do_not_wake_the_task() {
        let (ours, mut theirs) = pair();
        let w = Watchdog::new(limits(100));
        w.attach(ours.as_raw_fd());
        tokio::task::yield_now().await;
        let before = WAKES.with(|c| c.get());
        w.request_sent();
        tokio::task::yield_now().await;
        w.head_received(false);
        for _ in 0..20 {
            tokio::time::sleep(Duration::from_millis(30)).await;
            w.chunk_received();
        }
        let wakes = WAKES.with(|c| c.get()) - before;
        // The first deadline (the task waited with none); the rest only move later.
        assert_eq!(wakes, 1, "one wake-up, not one per event");
        assert_eq!(w.fired(), None, "every chunk came within the idle limit");
        // Silence still ends it at the deadline the task finds on waking.
        tokio::time::sleep(Duration::from_millis(120)).await;
        tokio::task::yield_now().await;
        assert_eq!(w.fired(), Some(Expired::Idle));
        assert!(cut(&mut theirs));
    }

    #[tokio::test(start_paused = true)]
    async fn an_earlier_deadline_wakes_the_task() {
        let (ours, mut theirs) = pair();
        let w = Watchdog::new(Timeouts {
            connect: Duration::from_millis(100),
            first_byte: Duration::from_secs(60),
            idle: Duration::from_millis(100),
            total: Duration::from_secs(600),
        });
        w.attach(ours.as_raw_fd());
        w.request_sent();
        tokio::task::yield_now().await;
        // The task sleeps towards the 60 s first-byte limit; the head brings
        // the 100 ms idle limit, which must not wait for the 60 s.
        w.head_received(false);
        tokio::time::sleep(Duration::from_millis(150)).await;
        tokio::task::yield_now().await;
        assert_eq!(w.fired(), Some(Expired::Idle));
        assert!(cut(&mut theirs));
    }

    #[tokio::test(start_paused = true)]
    async fn a_late_timer_reports_the_limit_that_stands_now() {
        let (ours, mut theirs) = pair();
        let w = Watchdog::new(limits(100));
        w.attach(ours.as_raw_fd());
        w.request_sent();
        tokio::task::yield_now().await;
        // The head and a chunk come at once, then silence; the task still
        // sleeps towards the first-byte limit and its timer fires late,
        // after the idle limit passed as well.
        w.head_received(false);
        w.chunk_received();
        tokio::time::advance(Duration::from_millis(300)).await;
        tokio::task::yield_now().await;
        assert_eq!(w.fired(), Some(Expired::Idle));
        assert!(cut(&mut theirs));
    }
}
