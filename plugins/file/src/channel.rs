//! A running file channel instance: a few writer threads of its own take
//! the writes from a queue, and a count of accepted sends lets `stop`
//! finish them all (or answer them with a retry) before the instance is
//! freed. Plain threads rather than an async runtime: a write is blocking
//! work, and handing each one from a task to a blocking pool and back cost
//! more than the write.

use cascade_plugin_api::{
    ChannelPlugin, Completion, Host, InFlight, Limits, LogLevel, Manifest, SendRequest, SendResult,
};
use std::hash::{BuildHasher, RandomState};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use crate::config::{FileConfig, config_schema};
use crate::send::{append_to_journal, deliver_to_dir};
use crate::state::Sends;

/// How long `stop` lets accepted sends finish their writes.
const STOP_GRACE: Duration = Duration::from_secs(10);
/// How long `stop` then waits for the writers to answer what was queued.
const SHUTDOWN_WAIT: Duration = Duration::from_secs(1);
/// Writer threads when `max_in_flight` does not set fewer.
const WRITERS: usize = 4;

/// A write waiting for a writer thread.
type Job = Box<dyn FnOnce(&AtomicBool) + Send>;

/// One started `file` channel.
pub struct FileChannel {
    dir: Arc<Path>,
    journal: bool,
    unreachable: Vec<String>,
    /// Numbers sends in arrival order, to pick each one's injected failure.
    sends: Sends,
    in_flight: Arc<InFlight>,
    /// The writers' queue; taken by `stop`, which ends the writers.
    jobs: Mutex<Option<Sender<Job>>>,
    /// Set by `stop` after its grace: writes still queued are answered
    /// with a retry instead of written.
    stopping: Arc<AtomicBool>,
    host: Host,
}

impl ChannelPlugin for FileChannel {
    fn manifest() -> Manifest {
        Manifest {
            name: "file".to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            channels: vec!["file".to_owned()],
            capabilities: Vec::new(),
            limits: Limits::default(),
            config_schema: config_schema(),
        }
    }

    fn start(config: serde_json::Value, host: Host) -> Result<Self, String> {
        // std's per-process random keys are enough for an unseeded pattern.
        let config = FileConfig::from_json(&config, RandomState::new().hash_one(()))
            .map_err(|error| error.to_string())?;
        std::fs::create_dir_all(&config.dir).map_err(|error| {
            format!(
                "could not create `dir` {}: {error}; point `dir` at a folder the engine may write to",
                config.dir.display()
            )
        })?;
        // What a write cut short by a crash left behind.
        crate::send::sweep_temporary(&config.dir);
        // At most `max_in_flight` writes at once: one a writer thread.
        let writers = config
            .max_in_flight
            .map_or(WRITERS, |limit| limit.get().min(WRITERS));
        let stopping = Arc::new(AtomicBool::new(false));
        let (jobs, queue) = std::sync::mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        for n in 0..writers {
            let queue = Arc::clone(&queue);
            let stopping = Arc::clone(&stopping);
            std::thread::Builder::new()
                .name(format!("cascade-file-{n}"))
                .spawn(move || write_jobs(&queue, &stopping))
                .map_err(|error| format!("could not start the file channel's threads: {error}"))?;
        }
        host.log(
            LogLevel::Info,
            format!("writing messages to {}", config.dir.display()),
        );
        Ok(FileChannel {
            journal: config.journal,
            dir: config.dir.into(),
            unreachable: config.unreachable,
            sends: Sends::new(config.failures),
            in_flight: Arc::default(),
            jobs: Mutex::new(Some(jobs)),
            stopping,
            host,
        })
    }

    fn send(&self, request: SendRequest, completion: Completion) {
        if self.unreachable.contains(&request.recipient.address) {
            completion.complete(SendResult::Failed {
                reason: "the recipient cannot be reached here (configured as unreachable)"
                    .to_owned(),
                unreachable: true,
            });
            return;
        }
        if let Some(injected) = self.sends.injected_failure() {
            completion.complete(injected);
            return;
        }
        let accepted = self.in_flight.accept(
            completion,
            "the file channel stopped before the message was written",
        );
        let dir = Arc::clone(&self.dir);
        let journal = self.journal;
        let job: Job = Box::new(move |stopping: &AtomicBool| {
            if stopping.load(Ordering::Acquire) {
                // Dropped unanswered: `accepted` answers with a retry.
                return;
            }
            let result = deliver_to_dir(&dir, &request);
            if !journal || !matches!(result, SendResult::Delivered { .. }) {
                accepted.finish(result);
                return;
            }
            accepted.finish(match append_to_journal(&dir, &request.delivery_id) {
                Ok(()) => result,
                Err(reason) => SendResult::Retry {
                    reason,
                    retry_after_ms: None,
                },
            });
        });
        // After `stop` there is no queue: the job is dropped, which
        // answers it with a retry.
        if let Some(jobs) = &*self.jobs.lock().unwrap_or_else(PoisonError::into_inner) {
            let _ = jobs.send(job);
        }
    }

    fn stop(&self) {
        let unfinished = self.in_flight.wait_until_idle(STOP_GRACE);
        if unfinished > 0 {
            self.host.log(
                LogLevel::Warn,
                format!(
                    "stopping with {unfinished} writes unfinished after {}s; they are answered with a retry",
                    STOP_GRACE.as_secs()
                ),
            );
        }
        // Writes still queued are answered with a retry as the writers take
        // them, and the writers end once the queue is empty and closed.
        // They are not joined: one may be stuck in a slow write, and the
        // library is never unloaded.
        self.stopping.store(true, Ordering::Release);
        self.jobs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        self.in_flight.wait_until_idle(SHUTDOWN_WAIT);
    }
}

/// A writer thread: runs queued writes until the queue is closed.
fn write_jobs(queue: &Mutex<Receiver<Job>>, stopping: &AtomicBool) {
    loop {
        let job = queue.lock().unwrap_or_else(PoisonError::into_inner).recv();
        match job {
            Ok(job) => job(stopping),
            Err(_) => return,
        }
    }
}
