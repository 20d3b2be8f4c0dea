//! Where the command's output goes when the reader goes away. Log lines
//! are handed to one writer thread through a bounded queue, so a full or
//! closed stderr (a pipe whose reader stopped reading or exited) never
//! blocks or panics the engine: lines that do not fit are counted and
//! dropped, and a closed stderr is written no more. A panic anywhere in
//! the process ends it (exit 101) after its log line, never leaving it
//! half alive holding the store's write lock; rows it had claimed are sent
//! again once their lease runs out.

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tracing_subscriber::fmt::MakeWriter;

/// Log lines waiting for the writer thread at most; past this they are
/// dropped and counted rather than holding up the thread that logs.
const QUEUE: usize = 4096;

/// How long the process waits for the log lines already queued before it
/// exits (after a panic, or at the end of `main`).
pub const FLUSH_WAIT: Duration = Duration::from_secs(2);

enum Entry {
    Line(Vec<u8>),
    /// Answered once every line queued before it was written (or dropped).
    Flush(SyncSender<()>),
}

/// The logging end of the queue; cloned into the subscriber.
#[derive(Clone)]
pub struct StderrLog {
    queue: SyncSender<Entry>,
    dropped: Arc<AtomicU64>,
}

static LOG: OnceLock<StderrLog> = OnceLock::new();

impl StderrLog {
    /// Starts the writer thread over `out` (stderr in the binary).
    pub fn start(out: impl Write + Send + 'static) -> StderrLog {
        let (queue, lines) = std::sync::mpsc::sync_channel(QUEUE);
        let dropped = Arc::new(AtomicU64::new(0));
        let counted = dropped.clone();
        std::thread::Builder::new()
            .name("cascade-log".to_owned())
            .spawn(move || write_lines(lines, out, &counted))
            .expect("the log thread starts");
        StderrLog { queue, dropped }
    }

    /// Waits up to `wait` for the lines queued so far to be written.
    pub fn flush(&self, wait: Duration) {
        let (done, written) = std::sync::mpsc::sync_channel(1);
        if self.queue.try_send(Entry::Flush(done)).is_ok() {
            let _ = written.recv_timeout(wait);
        }
    }
}

/// The writer thread: writes each line, and after a write fails (the
/// reader has gone) only empties the queue. A note says how many lines
/// were dropped while the queue was full.
fn write_lines(lines: Receiver<Entry>, mut out: impl Write, dropped: &AtomicU64) {
    // A write to a closed pipe is then an error for this thread to see,
    // not a SIGPIPE that ends the process (commands other than `serve`
    // restore its default action for their own output).
    #[cfg(unix)]
    // SAFETY: a signal set is plain data made by sigemptyset; blocking a
    // signal for the calling thread has no other effect.
    unsafe {
        let mut pipe: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut pipe);
        libc::sigaddset(&mut pipe, libc::SIGPIPE);
        libc::pthread_sigmask(libc::SIG_BLOCK, &pipe, std::ptr::null_mut());
    }
    let mut open = true;
    for entry in lines {
        match entry {
            Entry::Line(line) if open => {
                let lost = dropped.swap(0, Ordering::Relaxed);
                if lost > 0 {
                    let note = format!(
                        "{lost} log lines were dropped: the log output was not being read\n"
                    );
                    open = out.write_all(note.as_bytes()).is_ok();
                }
                open = open && out.write_all(&line).and_then(|()| out.flush()).is_ok();
            }
            Entry::Line(_) => {}
            Entry::Flush(done) => {
                let _ = done.try_send(());
            }
        }
    }
}

/// One log event, queued whole when the subscriber is done with it.
pub struct Line<'a> {
    log: &'a StderrLog,
    text: Vec<u8>,
}

impl Write for Line<'_> {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.text.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for Line<'_> {
    fn drop(&mut self) {
        if self.text.is_empty() {
            return;
        }
        let text = std::mem::take(&mut self.text);
        if let Err(TrySendError::Full(_)) = self.log.queue.try_send(Entry::Line(text)) {
            self.log.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

impl<'a> MakeWriter<'a> for StderrLog {
    type Writer = Line<'a>;

    fn make_writer(&'a self) -> Line<'a> {
        Line {
            log: self,
            text: Vec::new(),
        }
    }
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// One readable line an event.
    #[default]
    Text,
    /// One JSON object a line (timestamp, level, target, message and the
    /// event's fields), for log shippers.
    Json,
}

/// Sets up logging to stderr for the binary: the `RUST_LOG` filter (info
/// by default), colour only when stderr is a terminal, lines through the
/// writer thread, and the panic hook that ends the process.
pub fn init(format: LogFormat) -> StderrLog {
    let log = StderrLog::start(std::io::stderr());
    let _ = LOG.set(log.clone());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        // Its own note about a failed write goes to `eprintln!`, which
        // panics on a closed stderr; our writer never fails anyway.
        .log_internal_errors(false)
        .with_writer(log.clone());
    match format {
        LogFormat::Text => builder.with_ansi(std::io::stderr().is_terminal()).init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            .init(),
    }
    std::panic::set_hook(Box::new(|panic| {
        tracing::error!(
            "cascade stopped: an internal error ({panic}); messages it had claimed are sent again once their lease runs out"
        );
        flush_log();
        std::process::exit(101);
    }));
    log
}

/// Waits (up to [`FLUSH_WAIT`]) for the log lines queued so far, before
/// the process exits by itself.
pub fn flush_log() {
    if let Some(log) = LOG.get() {
        log.flush(FLUSH_WAIT);
    }
}

/// Unix tools stop quietly when the reader of their output goes away
/// (`cascade status | head -1`): restores the default action of SIGPIPE,
/// which Rust programs ignore, so a write to a closed stdout ends the
/// process instead of panicking in `println!`.
pub fn stop_on_closed_output() {
    #[cfg(unix)]
    // SAFETY: setting a signal's disposition to its default has no
    // preconditions; no handler of ours runs.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

/// A server must outlive its readers: from here on SIGPIPE is ignored
/// again, so a write to a closed pipe is an error the writer handles (the
/// log thread stops writing; [`say`] drops the line). Never restored: a
/// line `say` could not write stays in stdout's buffer, and the flush at
/// exit would otherwise end the process by the signal.
pub fn outlive_readers() {
    #[cfg(unix)]
    // SAFETY: as in `stop_on_closed_output`.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
    }
}

/// Prints a line on stdout for a long-running command, dropping it if
/// nobody reads stdout any more.
pub fn say(line: std::fmt::Arguments<'_>) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_fmt(line).and_then(|()| out.write_all(b"\n"));
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A writer that takes `accepted` bytes and then fails as a closed pipe does.
    struct ClosedAfter {
        accepted: usize,
        written: Arc<std::sync::Mutex<Vec<u8>>>,
    }

    impl Write for ClosedAfter {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            let mut written = self.written.lock().unwrap();
            if written.len() >= self.accepted {
                return Err(std::io::ErrorKind::BrokenPipe.into());
            }
            written.extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn line(log: &StderrLog, text: &str) {
        let mut line = log.make_writer();
        line.write_all(text.as_bytes()).unwrap();
    }

    #[test]
    fn lines_after_the_reader_has_gone_are_dropped_without_an_error() {
        let written = Arc::default();
        let log = StderrLog::start(ClosedAfter {
            accepted: 6,
            written: Arc::clone(&written),
        });
        for n in 0..100 {
            line(&log, &format!("line {n}\n"));
        }
        log.flush(Duration::from_secs(5));
        assert_eq!(&*written.lock().unwrap(), b"line 0\n");
    }

    /// A writer that blocks until told, as a pipe nobody reads does.
    /// A reader who never reads: says when a write began, then holds it.
    struct Stuck(Receiver<()>, std::sync::mpsc::Sender<()>);

    impl Write for Stuck {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            let _ = self.1.send(());
            let _ = self.0.recv();
            Ok(bytes.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn logging_never_waits_for_a_reader_who_does_not_read() {
        let (release, stuck) = std::sync::mpsc::channel();
        let (writing, began) = std::sync::mpsc::channel();
        let log = StderrLog::start(Stuck(stuck, writing));
        // The writer is held in its first write before the flood, so the
        // count of dropped lines is not taken (for its note) under us.
        line(&log, "first\n");
        began.recv().unwrap();
        let started = std::time::Instant::now();
        for n in 0..(QUEUE * 3) {
            line(&log, &format!("line {n}\n"));
        }
        assert!(started.elapsed() < Duration::from_secs(5));
        assert!(log.dropped.load(Ordering::Relaxed) >= QUEUE as u64);
        drop(release);
    }
}
