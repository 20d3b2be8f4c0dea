//! The rate limit of the public routes: a token bucket per client address
//! (named by a trusted proxy's `X-Forwarded-For`, see [`crate::client`]).

use crate::client::{Cidr, client_address};
use crate::page::{html, lock};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;
use cascade_engine::ack::pages::too_many_requests_page;
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// Requests a second each client address may make to the public routes,
/// with bursts up to `burst`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimit {
    pub per_second: f64,
    pub burst: u32,
}

impl Default for RateLimit {
    fn default() -> Self {
        RateLimit {
            per_second: 20.0,
            burst: 40,
        }
    }
}

/// Token buckets by client address.
pub(crate) struct Limiter {
    limit: RateLimit,
    trusted_proxies: Vec<Cidr>,
    buckets: Mutex<HashMap<IpAddr, Bucket>>,
}

struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Buckets kept before full ones (clients gone quiet) are dropped.
const MAX_BUCKETS: usize = 10_000;

impl Limiter {
    pub(crate) fn new(limit: RateLimit, trusted_proxies: Vec<Cidr>) -> Limiter {
        Limiter {
            limit,
            trusted_proxies,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes a token for `client`, or says how many seconds until one is due.
    fn take(&self, client: IpAddr, now: Instant) -> Result<(), u64> {
        let RateLimit { per_second, burst } = self.limit;
        let burst = f64::from(burst.max(1));
        let mut buckets = lock(&self.buckets);
        if buckets.len() >= MAX_BUCKETS && !buckets.contains_key(&client) {
            buckets.retain(|_, b| {
                b.tokens + now.duration_since(b.at).as_secs_f64() * per_second < burst
            });
        }
        let bucket = buckets.entry(client).or_insert(Bucket {
            tokens: burst,
            at: now,
        });
        bucket.tokens =
            (bucket.tokens + now.duration_since(bucket.at).as_secs_f64() * per_second).min(burst);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            let wait = (1.0 - bucket.tokens) / per_second.max(f64::MIN_POSITIVE);
            Err(wait.ceil().clamp(1.0, 3600.0) as u64)
        }
    }
}

pub(crate) async fn rate_limited(
    State(limiter): State<Arc<Limiter>>,
    request: Request,
    next: Next,
) -> Response {
    // Without connection info (a server not started with it) every client
    // shares one bucket: stricter, never looser.
    let client = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| {
            client_address(addr.ip(), request.headers(), &limiter.trusted_proxies)
        })
        .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    match limiter.take(client, Instant::now()) {
        Ok(()) => next.run(request).await,
        Err(seconds) => {
            let mut response = html(StatusCode::TOO_MANY_REQUESTS, too_many_requests_page());
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
            response
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_client_gets_its_burst_then_waits_for_tokens_to_refill() {
        let limiter = Limiter::new(
            RateLimit {
                per_second: 2.0,
                burst: 3,
            },
            Vec::new(),
        );
        let (a, b) = ([10, 0, 0, 1].into(), [10, 0, 0, 2].into());
        let t0 = Instant::now();
        for _ in 0..3 {
            assert_eq!(limiter.take(a, t0), Ok(()));
        }
        assert_eq!(limiter.take(a, t0), Err(1));
        assert_eq!(
            limiter.take(b, t0),
            Ok(()),
            "another client has its own bucket"
        );
        assert_eq!(limiter.take(a, t0 + Duration::from_millis(500)), Ok(()));
        assert_eq!(limiter.take(a, t0 + Duration::from_millis(500)), Err(1));
    }
}
