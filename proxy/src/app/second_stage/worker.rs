//! One inference thread per loaded model, with a bounded queue and a
//! deadline per job.

use crate::decision::detectors::injection::second_stage::StageError;
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::time::{Duration, Instant};

type Answer = Result<Vec<f32>, String>;

struct Job {
    text: String,
    deadline: Instant,
    reply: SyncSender<Answer>,
}

pub struct Worker {
    jobs: SyncSender<Job>,
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Worker")
    }
}

impl Worker {
    /// Start the thread; it runs `infer` on each job until the worker is
    /// dropped.
    pub fn spawn(
        name: &str,
        queue: usize,
        mut infer: impl FnMut(&str) -> Answer + Send + 'static,
    ) -> Result<Self, String> {
        let (tx, rx): (SyncSender<Job>, Receiver<Job>) = sync_channel(queue);
        std::thread::Builder::new()
            .name("asg-second-stage".into())
            .spawn(move || {
                for job in rx {
                    // The caller stopped waiting: spend nothing on it.
                    if Instant::now() >= job.deadline {
                        continue;
                    }
                    let _ = job.reply.send(infer(&job.text));
                }
            })
            .map_err(|e| format!("injection.second_stage {name}: cannot start a worker ({e})"))?;
        Ok(Worker { jobs: tx })
    }

    /// `infer(text)` on the worker, waiting at most `timeout`.
    pub fn run(&self, text: &str, timeout: Duration) -> Result<Vec<f32>, StageError> {
        let (reply, answer) = sync_channel(1);
        let job = Job {
            text: text.to_string(),
            deadline: Instant::now() + timeout,
            reply,
        };
        match self.jobs.try_send(job) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => return Err(StageError::Busy),
            Err(TrySendError::Disconnected(_)) => {
                return Err(StageError::Failed("the inference worker stopped".into()))
            }
        }
        match answer.recv_timeout(timeout) {
            Ok(Ok(probs)) => Ok(probs),
            Ok(Err(e)) => Err(StageError::Failed(e)),
            Err(RecvTimeoutError::Timeout) => Err(StageError::Timeout),
            Err(RecvTimeoutError::Disconnected) => {
                Err(StageError::Failed("the inference worker stopped".into()))
            }
        }
    }
}
