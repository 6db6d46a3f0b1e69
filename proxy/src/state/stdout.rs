//! `ASG_AUDIT_STDOUT=1`: every audit record is also written to standard
//! output as one JSON line, for the log collectors of Kubernetes (Fluent
//! Bit, Vector, the cloud agents) that read container output. The line is
//! the stored record (already masked: targets redacted, evidence masked)
//! with `"asg":"audit"` in front, so a collector can route it apart from
//! the gateway's own log lines (those go to standard error).
//!
//! The durable copy stays the local audit log. Proxy threads never write
//! to stdout themselves: they hand the encoded record to one writer thread
//! through a bounded queue. If the reader of stdout stalls and the queue
//! fills, lines are dropped (counted, logged) rather than stalling the
//! gateway; the durable log still has them (`asg audit export`).

use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::Arc;

const QUEUE: usize = 8192;

pub struct AuditTee {
    tx: SyncSender<Vec<u8>>,
    dropped: Arc<AtomicU64>,
}

impl AuditTee {
    /// Start the writer thread on `out` (stdout in the gateway).
    pub fn start(out: impl Write + Send + 'static) -> AuditTee {
        let (tx, rx) = sync_channel(QUEUE);
        std::thread::Builder::new()
            .name("asg-audit-stdout".into())
            .spawn(move || write_loop(rx, out))
            .expect("spawn the audit stdout thread");
        AuditTee {
            tx,
            dropped: Arc::new(AtomicU64::new(0)),
        }
    }

    /// The stdout line for one stored record (its JSON bytes).
    pub fn line(&self, record: &[u8]) -> Option<Vec<u8>> {
        let rest = record.strip_prefix(b"{")?;
        let mut line = Vec::with_capacity(record.len() + 16);
        line.extend_from_slice(b"{\"asg\":\"audit\",");
        line.extend_from_slice(rest);
        line.push(b'\n');
        Some(line)
    }

    /// Queue a line for the writer; dropped (counted) if the queue is full.
    pub fn push(&self, line: Vec<u8>) {
        if let Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) = self.tx.try_send(line) {
            let n = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            if n == 1 || n.is_multiple_of(1000) {
                tracing::warn!(
                    dropped = n,
                    "audit lines for stdout dropped: nobody reads stdout fast enough (the local audit log keeps them)"
                );
            }
        }
    }

    /// `line` then `push`.
    pub fn send(&self, record: &[u8]) {
        if let Some(l) = self.line(record) {
            self.push(l);
        }
    }

    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

fn write_loop(rx: Receiver<Vec<u8>>, out: impl Write) {
    let mut out = std::io::BufWriter::with_capacity(64 * 1024, out);
    while let Ok(first) = rx.recv() {
        let mut ok = out.write_all(&first).is_ok();
        // Everything already queued goes out in the same write.
        while let Ok(more) = rx.try_recv() {
            ok &= out.write_all(&more).is_ok();
        }
        if !(ok && out.flush().is_ok()) {
            tracing::error!("cannot write audit records to stdout; the local audit log keeps them");
            // Drain and discard from now on, so senders never block.
            while rx.recv().is_ok() {}
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[derive(Clone, Default)]
    struct Sink(Arc<Mutex<Vec<u8>>>);

    impl Write for Sink {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn lines_are_the_record_with_a_marker() {
        let sink = Sink::default();
        let tee = AuditTee::start(sink.clone());
        tee.send(br#"{"seq":1,"decision":"allow"}"#);
        tee.send(br#"{"seq":2,"decision":"block"}"#);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while sink
            .0
            .lock()
            .unwrap()
            .iter()
            .filter(|b| **b == b'\n')
            .count()
            < 2
        {
            assert!(std::time::Instant::now() < deadline);
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        let text = String::from_utf8(sink.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines[0]["asg"], "audit");
        assert_eq!(lines[1]["seq"], 2);
        assert_eq!(tee.dropped(), 0);
    }
}
