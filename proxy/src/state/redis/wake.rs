//! Waking held calls when an operator decides, on any gateway.
//!
//! Every transition script publishes `<status> <approval id>` on one
//! channel (`<prefix>:v1:events`). One subscriber task per gateway listens
//! on its own connection and wakes the local watchers of that id. Pub/sub
//! is best effort (a message published while a subscriber reconnects is
//! lost), so:
//! * every (re)subscription wakes every watcher once, to re-read;
//! * while the subscription is down, watchers poll every `poll_ms`;
//! * even while it is up, they re-read every `safety_poll`.
//!
//! A watcher always decides from the approval's stored status, never from
//! the message, and never resolves while Redis is unreachable: the held
//! call is refused at its deadline.

use super::Inner;
use crate::decision::approvals::ApprovalStatus;
use crate::state::seam::ApprovalWatch;
use futures_util::StreamExt;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;

pub(super) struct Wake {
    by_id: Mutex<HashMap<String, watch::Sender<u64>>>,
    /// Bumped when every watcher should re-read (resubscribed, mode change).
    all: watch::Sender<u64>,
    up: AtomicBool,
}

impl Wake {
    pub fn new() -> Wake {
        Wake {
            by_id: Mutex::new(HashMap::new()),
            all: watch::channel(0).0,
            up: AtomicBool::new(false),
        }
    }

    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<String, watch::Sender<u64>>> {
        self.by_id.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn pubsub_up(&self) -> bool {
        self.up.load(Ordering::Relaxed)
    }

    fn set_up(&self, up: bool) {
        self.up.store(up, Ordering::Relaxed);
        self.all.send_modify(|n| *n += 1);
    }

    fn notify(&self, id: &str) {
        if let Some(tx) = self.map().get(id) {
            tx.send_modify(|n| *n += 1);
        }
    }
}

pub struct RedisWatch {
    inner: Arc<Inner>,
    id: String,
    rx: watch::Receiver<u64>,
    all: watch::Receiver<u64>,
    done: bool,
}

impl RedisWatch {
    pub(super) fn new(inner: Arc<Inner>, id: &str) -> RedisWatch {
        let id = id.trim().to_string();
        let rx = inner
            .wake
            .map()
            .entry(id.clone())
            .or_insert_with(|| watch::channel(0).0)
            .subscribe();
        let all = inner.wake.all.subscribe();
        RedisWatch {
            inner,
            id,
            rx,
            all,
            done: false,
        }
    }
}

impl Drop for RedisWatch {
    fn drop(&mut self) {
        let mut map = self.inner.wake.map();
        // Ours is the last receiver: nobody else waits on this id.
        if map.get(&self.id).is_some_and(|tx| tx.receiver_count() <= 1) {
            map.remove(&self.id);
        }
    }
}

impl ApprovalWatch for RedisWatch {
    async fn changed(&mut self) -> Option<ApprovalStatus> {
        if self.done {
            return None;
        }
        loop {
            match self.inner.status(&self.id, crate::state::now_ms()).await {
                Ok(None) => {
                    self.done = true;
                    return None;
                }
                Ok(Some(ApprovalStatus::Pending)) | Err(_) => {}
                Ok(Some(s)) => {
                    self.done = true;
                    return Some(s);
                }
            }
            let wait = if self.inner.wake.pubsub_up() {
                self.inner.opts.safety_poll
            } else {
                self.inner.link.url().poll_interval
            };
            tokio::select! {
                _ = self.rx.changed() => {}
                _ = self.all.changed() => {}
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }
}

/// The subscriber: (re)subscribes whenever the command link is up, until
/// the subscription ends or the link goes down.
pub(super) async fn subscriber(inner: Arc<Inner>) {
    let mut up = inner.link.subscribe();
    let channel = inner.keys.events();
    let mut backoff = Duration::from_millis(50);
    loop {
        let _ = up.wait_for(|u| *u).await;
        let Some(client) = inner.link.client() else {
            tokio::time::sleep(backoff).await;
            continue;
        };
        let t = inner.link.url().connect_timeout;
        let subscribed = async {
            let mut ps = client.get_async_pubsub().await?;
            ps.subscribe(&channel).await?;
            Ok::<_, redis::RedisError>(ps)
        };
        match tokio::time::timeout(t, subscribed).await {
            Ok(Ok(mut ps)) => {
                backoff = Duration::from_millis(50);
                inner.metrics.pubsub.set(1);
                inner.wake.set_up(true);
                let mut messages = ps.on_message();
                loop {
                    tokio::select! {
                        m = messages.next() => match m {
                            Some(m) => {
                                let payload: String = m.get_payload().unwrap_or_default();
                                if let Some((_, id)) = payload.split_once(' ') {
                                    inner.wake.notify(id);
                                }
                            }
                            None => break,
                        },
                        _ = up.wait_for(|u| !*u) => break,
                    }
                }
                inner.metrics.pubsub.set(0);
                inner.wake.set_up(false);
                tracing::warn!("approval pub/sub lost: held calls poll until it is back");
            }
            Ok(Err(e)) => tracing::debug!(error = %e, "approval pub/sub: subscribe failed"),
            Err(_) => tracing::debug!("approval pub/sub: subscribe timed out"),
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(2));
    }
}
