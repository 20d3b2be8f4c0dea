//! A running file channel instance: a small tokio runtime of its own runs the
//! writes, and a count of accepted sends lets `stop` finish them all (or
//! answer them with a retry) before the instance is freed.

use cascade_plugin_api::{
    ChannelPlugin, Completion, Host, InFlight, Limits, LogLevel, Manifest, SendRequest, SendResult,
};
use std::hash::{BuildHasher, RandomState};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::runtime::{Handle, Runtime};
use tokio::sync::Semaphore;

use crate::config::{FileConfig, config_schema};
use crate::faults::InjectedFailures;
use crate::send::deliver_to_dir;

/// How long `stop` lets accepted sends finish their writes.
const STOP_GRACE: Duration = Duration::from_secs(10);
/// How long `stop` then waits for the runtime's threads to wind down.
const SHUTDOWN_WAIT: Duration = Duration::from_secs(1);

/// One started `file` channel.
pub struct FileChannel {
    dir: Arc<Path>,
    journal: bool,
    failures: InjectedFailures,
    unreachable: Vec<String>,
    /// Numbers sends in arrival order, to pick each one's injected failure.
    sends: AtomicU64,
    write_slots: Arc<Semaphore>,
    in_flight: Arc<InFlight>,
    handle: Handle,
    /// Taken by `stop`, which needs the runtime by value to shut it down.
    runtime: Mutex<Option<Runtime>>,
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
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("cascade-file")
            .build()
            .map_err(|error| format!("could not start the file channel's threads: {error}"))?;
        let write_slots = config
            .max_in_flight
            .map_or(Semaphore::MAX_PERMITS, |limit| limit.get());
        host.log(
            LogLevel::Info,
            format!("writing messages to {}", config.dir.display()),
        );
        Ok(FileChannel {
            journal: config.journal,
            dir: config.dir.into(),
            failures: config.failures,
            unreachable: config.unreachable,
            sends: AtomicU64::new(0),
            write_slots: Arc::new(Semaphore::new(write_slots)),
            in_flight: Arc::default(),
            handle: runtime.handle().clone(),
            runtime: Mutex::new(Some(runtime)),
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
        let send_number = self.sends.fetch_add(1, Ordering::Relaxed);
        if let Some(injected) = self.failures.for_send(send_number) {
            completion.complete(injected);
            return;
        }
        let accepted = self.in_flight.accept(
            completion,
            "the file channel stopped before the message was written",
        );
        let dir = Arc::clone(&self.dir);
        let journal = self.journal;
        let write_slots = Arc::clone(&self.write_slots);
        // After `stop` the runtime is gone and the task is dropped unrun,
        // which answers it with a retry.
        self.handle.spawn(async move {
            let _slot = write_slots.acquire_owned().await;
            let result = tokio::task::spawn_blocking(move || {
                let result = deliver_to_dir(&dir, &request);
                if !journal || !matches!(result, SendResult::Delivered { .. }) {
                    return result;
                }
                match append_to_journal(&dir, &request.delivery_id) {
                    Ok(()) => result,
                    Err(reason) => SendResult::Retry {
                        reason,
                        retry_after_ms: None,
                    },
                }
            })
            .await
            .unwrap_or_else(|error| SendResult::Retry {
                reason: format!("the write did not finish: {error}"),
                retry_after_ms: None,
            });
            accepted.finish(result);
        });
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
        let runtime = self
            .runtime
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(runtime) = runtime {
            // Drops every task still running, so each answers with a retry.
            runtime.shutdown_timeout(SHUTDOWN_WAIT);
        }
    }
}

/// Appends a written delivery's id to `journal.log`: one `write` of one
/// line on a file opened for appending, so concurrent writers do not mix.
fn append_to_journal(dir: &Path, delivery_id: &str) -> Result<(), String> {
    let path = dir.join("journal.log");
    let line = format!("{delivery_id}\n");
    let written = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .and_then(|mut file| std::io::Write::write_all(&mut file, line.as_bytes()));
    written.map_err(|error| format!("could not append to {}: {error}", path.display()))
}
