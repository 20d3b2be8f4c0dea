//! The accept loop `cascade serve` runs. Every connection is bounded in
//! time and in number, so clients that send slowly, or not at all, cannot
//! hold the server: the request head must arrive within the header timeout
//! and the body within the body timeout of it; a connection on which
//! nothing moves while no request is being handled is closed after the idle
//! timeout; and at most `max_connections` are open at once (the rest wait
//! in the kernel's queue until one closes, which the timeouts guarantee).

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::ConnectInfo;
pub use cascade_engine::server_config::ServerConfig;
use http_body::{Frame, SizeHint};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::future::Future;
use std::net::SocketAddr;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio::time::{Instant, Sleep};
use tower::ServiceExt;

/// How long connections are given to finish after the shutdown signal.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// A request body that did not arrive within the body timeout.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive within {0:?}")]
pub struct BodyTimedOut(Duration);

/// Whether reading a body failed because it was too slow.
pub fn body_timed_out(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(error);
    while let Some(error) = cause {
        if error.is::<BodyTimedOut>() {
            return true;
        }
        cause = error.source();
    }
    false
}

/// Serves `app` on `listener` with the limits of `config` until `shutdown`
/// completes, then lets open connections finish their requests (for at
/// most ten seconds). Each request carries the peer address as
/// `ConnectInfo<SocketAddr>`.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    config: &ServerConfig,
    shutdown: impl Future<Output = ()>,
) {
    let limits = Limits::of(config);
    let slots = usize::try_from(config.max_connections).unwrap_or(usize::MAX);
    let open = Arc::new(Semaphore::new(slots));
    let (closing, closed) = watch::channel(false);
    let mut shutdown = pin!(shutdown);
    loop {
        let slot = tokio::select! {
            slot = open.clone().acquire_owned() => slot.expect("the semaphore is never closed"),
            () = &mut shutdown => break,
        };
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => break,
        };
        match accepted {
            Ok((stream, peer)) => {
                let (app, closed) = (app.clone(), closed.clone());
                tokio::spawn(async move {
                    connection(stream, peer, app, limits, closed).await;
                    drop(slot);
                });
            }
            Err(e) => {
                // Out of file descriptors, most often: accepting again at
                // once would spin, and connections closing free some.
                tracing::warn!("cannot accept a connection: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    let _ = closing.send(true);
    let all = u32::try_from(slots).unwrap_or(u32::MAX);
    let _ = tokio::time::timeout(SHUTDOWN_GRACE, open.acquire_many(all)).await;
}

#[derive(Debug, Clone, Copy)]
struct Limits {
    header: Duration,
    body: Duration,
    idle: Duration,
}

impl Limits {
    fn of(config: &ServerConfig) -> Limits {
        Limits {
            header: Duration::from_secs(config.header_timeout_seconds),
            body: Duration::from_secs(config.body_timeout_seconds),
            idle: Duration::from_secs(config.idle_timeout_seconds),
        }
    }
}

async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    app: Router,
    limits: Limits,
    mut closing: watch::Receiver<bool>,
) {
    let _ = stream.set_nodelay(true);
    let activity = Arc::new(Activity::new());
    let io = TokioIo::new(Watched {
        inner: stream,
        activity: activity.clone(),
    });
    let handling = activity.clone();
    let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
        let mut request = request.map(|body| Body::new(Deadline::new(body, limits.body)));
        request.extensions_mut().insert(ConnectInfo(peer));
        let (app, handling) = (app.clone(), handling.clone());
        // Busy from the first poll: hyper takes the next pipelined request
        // before it can write the answer, and leaves its handler unpolled
        // while the client is not reading.
        async move {
            let busy = Busy::start(&handling);
            let response = app.oneshot(request).await;
            drop(busy);
            response
        }
    });
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header);
    let mut served = pin!(http.serve_connection(io, service));
    let mut shutting_down = false;
    loop {
        // While a request is being handled the connection is not idle
        // (the handler may wait on a plugin); check again later.
        let check_at = if activity.busy() {
            Instant::now() + limits.idle
        } else {
            activity.last() + limits.idle
        };
        tokio::select! {
            finished = served.as_mut() => {
                if let Err(e) = finished {
                    tracing::debug!("a connection ended: {e}");
                }
                return;
            }
            () = tokio::time::sleep_until(check_at) => {
                if !activity.busy() && activity.last() + limits.idle <= Instant::now() {
                    tracing::debug!("closing a connection idle for {:?}", limits.idle);
                    return;
                }
            }
            _ = closing.wait_for(|closing| *closing), if !shutting_down => {
                served.as_mut().graceful_shutdown();
                shutting_down = true;
            }
        }
    }
}

/// When a connection last moved a byte, and how many of its requests are
/// being handled.
struct Activity {
    opened: Instant,
    /// Milliseconds from `opened` to the last byte read or written.
    last: AtomicU64,
    busy: AtomicUsize,
}

impl Activity {
    fn new() -> Activity {
        Activity {
            opened: Instant::now(),
            last: AtomicU64::new(0),
            busy: AtomicUsize::new(0),
        }
    }

    fn moved(&self) {
        let since = u64::try_from(self.opened.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last.store(since, Ordering::Relaxed);
    }

    fn last(&self) -> Instant {
        self.opened + Duration::from_millis(self.last.load(Ordering::Relaxed))
    }

    fn busy(&self) -> bool {
        self.busy.load(Ordering::Relaxed) > 0
    }
}

/// A request being handled, until dropped.
struct Busy(Arc<Activity>);

impl Busy {
    fn start(activity: &Arc<Activity>) -> Busy {
        activity.busy.fetch_add(1, Ordering::Relaxed);
        Busy(activity.clone())
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.busy.fetch_sub(1, Ordering::Relaxed);
        self.0.moved();
    }
}

/// A socket that notes every byte it moves.
struct Watched {
    inner: TcpStream,
    activity: Arc<Activity>,
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.moved();
        }
        polled
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, data);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.moved();
        }
        polled
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, data);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.moved();
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// A request body that fails with [`BodyTimedOut`] unless it has all
/// arrived by its deadline, however steadily it trickles in.
struct Deadline {
    body: Incoming,
    deadline: Pin<Box<Sleep>>,
    timeout: Duration,
}

impl Deadline {
    fn new(body: Incoming, timeout: Duration) -> Deadline {
        Deadline {
            body,
            deadline: Box::pin(tokio::time::sleep(timeout)),
            timeout,
        }
    }
}

impl http_body::Body for Deadline {
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::BoxError>>> {
        if let Poll::Ready(frame) = Pin::new(&mut self.body).poll_frame(cx) {
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        if self.deadline.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Some(Err(BodyTimedOut(self.timeout).into())));
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// Raises this process's soft limit on open files to its hard limit, so
/// that `max_connections` connections (each a file descriptor) can be open
/// alongside the store and the plugins. Returns the limit now in force.
#[cfg(unix)]
pub fn raise_open_file_limit() -> std::io::Result<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `limit` is a valid rlimit for getrlimit to fill.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    if limit.rlim_cur < limit.rlim_max {
        let raised = libc::rlimit {
            rlim_cur: limit.rlim_max,
            rlim_max: limit.rlim_max,
        };
        // SAFETY: `raised` is a valid rlimit; raising the soft limit up to
        // the hard one needs no privilege.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            limit = raised;
        }
    }
    #[allow(
        clippy::unnecessary_cast,
        reason = "rlim_t is u64 on Linux, not on every unix"
    )]
    Ok(limit.rlim_cur as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use cascade_engine::config::Config;
    use std::path::Path;

    fn parse(server: &str) -> Result<Config, String> {
        let text = format!("[partnership]\nname = \"N\"\n\n[server]\n{server}");
        Config::parse(Path::new("cascade.toml"), &text).map_err(|e| e.to_string())
    }

    #[test]
    fn the_server_section_sets_timeouts_connections_and_proxies() {
        let config = parse(
            "header_timeout_seconds = 5\nbody_timeout_seconds = 20\nidle_timeout_seconds = 90\nmax_connections = 200\ntrusted_proxies = [\"10.0.0.0/8\", \"::1\"]\n",
        )
        .unwrap();
        assert_eq!(
            config.server,
            ServerConfig {
                header_timeout_seconds: 5,
                body_timeout_seconds: 20,
                idle_timeout_seconds: 90,
                max_connections: 200,
                trusted_proxies: vec!["10.0.0.0/8".parse().unwrap(), "::1".parse().unwrap()],
            }
        );
        assert_eq!(parse("").unwrap().server, ServerConfig::default());
    }

    #[test]
    fn an_out_of_range_limit_names_its_line_and_the_range() {
        let message = parse("max_connections = 100\nheader_timeout_seconds = 0\n").unwrap_err();
        assert!(message.starts_with("cascade.toml:6:"), "{message}");
        assert!(message.contains("from 1 to 300"), "{message}");
        let message = parse("idle_timeout_seconds = -5\n").unwrap_err();
        assert!(message.contains("from 1 to 3600"), "{message}");
    }

    #[test]
    fn a_trusted_proxy_that_is_not_an_address_names_its_line() {
        let message = parse("\ntrusted_proxies = [\"10.0.0.1/8\"]\n").unwrap_err();
        assert!(message.starts_with("cascade.toml:6:"), "{message}");
        assert!(message.contains("\"10.0.0.0/8\""), "{message}");
    }
}
