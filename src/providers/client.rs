//! The HTTP side of every provider: one `reqwest` client (rustls), a
//! timeout per request, retries with exponential backoff and jitter on
//! 429, 5xx and network errors (a `Retry-After` in seconds is honoured, up
//! to the cap), and a per-provider rate limit that spaces request starts.

use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

use tokio::sync::Mutex;
use tokio::time::Instant;

use super::ApiRequest;

/// Spaces request starts `60 / requests_per_minute` seconds apart across
/// all tasks sharing it; no limit when built with 0.
#[derive(Debug)]
pub struct RateLimiter {
    interval: Option<Duration>,
    next: Mutex<Option<Instant>>,
}

impl RateLimiter {
    pub fn per_minute(requests_per_minute: f64) -> RateLimiter {
        RateLimiter {
            interval: (requests_per_minute > 0.0).then(|| Duration::from_secs_f64(60.0 / requests_per_minute)),
            next: Mutex::new(None),
        }
    }

    /// Wait for this request's slot.
    pub async fn wait(&self) {
        let Some(interval) = self.interval else {
            return;
        };
        let slot = {
            let mut next = self.next.lock().await;
            let now = Instant::now();
            let slot = next.map_or(now, |n| n.max(now));
            *next = Some(slot + interval);
            slot
        };
        tokio::time::sleep_until(slot).await;
    }
}

/// How often and how long to wait before giving up on a provider.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    pub retries: u32,
    pub backoff: Duration,
    pub max_backoff: Duration,
}

impl RetryPolicy {
    /// The wait before retry `attempt` (0 = the first retry): the backoff
    /// doubled per attempt, between half and all of it at random (so that
    /// many symbols that failed together do not retry together), at least
    /// what the server asked for, at most the cap.
    pub fn delay(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        let full = self.backoff.saturating_mul(1 << attempt.min(16)).min(self.max_backoff);
        let jitter = std::collections::hash_map::RandomState::new().build_hasher().finish();
        let share = 0.5 + 0.5 * (jitter as f64 / u64::MAX as f64);
        full.mul_f64(share)
            .max(retry_after.unwrap_or_default())
            .min(self.max_backoff)
    }
}

/// A request that did not give a 2xx answer, after the retries.
#[derive(Debug)]
pub enum HttpFailure {
    /// A status that is not retried (or still failing after the retries),
    /// with its body (providers explain errors in it).
    Status { status: u16, body: Vec<u8> },
    /// No answer: connection refused, reset, timeout, bad TLS.
    Network(String),
}

impl std::fmt::Display for HttpFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HttpFailure::Status { status, .. } => write!(f, "HTTP {status}"),
            HttpFailure::Network(message) => write!(f, "network error: {message}"),
        }
    }
}

/// One answer, and how many retries it took.
pub struct Answer {
    pub result: Result<Vec<u8>, HttpFailure>,
    pub retries: u32,
}

pub struct Http {
    client: reqwest::Client,
    pub policy: RetryPolicy,
}

impl Http {
    pub fn new(timeout: Duration, policy: RetryPolicy) -> anyhow::Result<Http> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .user_agent(concat!("swingml/", env!("CARGO_PKG_VERSION")))
            .redirect(reqwest::redirect::Policy::custom(same_origin_redirects))
            .build()?;
        Ok(Http { client, policy })
    }

    /// GET with retries; each attempt waits for the rate limiter first.
    pub async fn get(&self, request: &ApiRequest, limiter: &RateLimiter) -> Answer {
        let mut retries = 0;
        loop {
            limiter.wait().await;
            let (failure, retry_after) = match self.attempt(request).await {
                Ok(body) => {
                    return Answer {
                        result: Ok(body),
                        retries,
                    };
                }
                Err(outcome) => outcome,
            };
            let retriable = match &failure {
                HttpFailure::Status { status, .. } => *status == 429 || *status >= 500,
                HttpFailure::Network(_) => true,
            };
            if !retriable || retries >= self.policy.retries {
                return Answer {
                    result: Err(failure),
                    retries,
                };
            }
            let wait = self.policy.delay(retries, retry_after);
            tracing::debug!(url = %request.url, %failure, wait_ms = wait.as_millis() as u64, "retrying");
            tokio::time::sleep(wait).await;
            retries += 1;
        }
    }

    async fn attempt(&self, request: &ApiRequest) -> Result<Vec<u8>, (HttpFailure, Option<Duration>)> {
        if !request.headers.is_empty() && !secure_enough(&request.url) {
            // Not retried: the same URL would be refused again.
            return Err((
                HttpFailure::Status {
                    status: 0,
                    body: b"refused: an API key is never sent over plain http to another host (use https)".to_vec(),
                },
                None,
            ));
        }
        let mut builder = self.client.get(request.url.clone());
        for (name, value) in &request.headers {
            builder = builder.header(*name, value);
        }
        // `without_url`: the message stays short (the caller names the
        // symbol and provider); keys are in headers, never in the URL.
        let network = |err: reqwest::Error| (HttpFailure::Network(err.without_url().to_string()), None);
        let response = builder.send().await.map_err(network)?;
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let mut response = response;
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(network)? {
            if body.len() + chunk.len() > MAX_BODY_BYTES {
                // A status of its own (0): not retried, the same answer would come.
                let why = format!("answer larger than {} MiB: refused", MAX_BODY_BYTES >> 20);
                return Err((
                    HttpFailure::Status {
                        status: 0,
                        body: why.into_bytes(),
                    },
                    None,
                ));
            }
            body.extend_from_slice(&chunk);
        }
        if (200..300).contains(&status) {
            Ok(body)
        } else {
            Err((HttpFailure::Status { status, body }, retry_after))
        }
    }
}

/// The largest answer read: ten years of daily bars are a few MiB; a
/// server that sends more is broken or hostile, and memory is not its.
const MAX_BODY_BYTES: usize = 64 << 20;

/// Follow a redirect only on the same host, scheme and port (at most 5):
/// the key headers (X-Finnhub-Token, Authorization) would otherwise go to
/// another host, or in clear text after an https → http downgrade. A
/// redirect not followed is its 3xx answer, a failure with its status.
fn same_origin_redirects(attempt: reqwest::redirect::Attempt) -> reqwest::redirect::Action {
    let Some(first) = attempt.previous().first() else {
        return attempt.stop();
    };
    let next = attempt.url();
    let same = first.scheme() == next.scheme()
        && first.host_str() == next.host_str()
        && first.port_or_known_default() == next.port_or_known_default();
    if !same || attempt.previous().len() > 5 {
        attempt.stop()
    } else {
        attempt.follow()
    }
}

/// https, or plain http to this machine (the tests' local servers).
fn secure_enough(url: &reqwest::Url) -> bool {
    match url.scheme() {
        "https" => true,
        "http" => url.host_str().is_some_and(|host| {
            let host = host.trim_start_matches('[').trim_end_matches(']');
            host == "localhost" || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
        }),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_go_over_https_or_to_this_machine_only() {
        for (url, ok) in [
            ("https://finnhub.io/api", true),
            ("http://127.0.0.1:8080/x", true),
            ("http://[::1]:8080/x", true),
            ("http://localhost/x", true),
            ("http://finnhub.io/api", false),
            ("http://10.0.0.5/x", false),
            ("ftp://127.0.0.1/x", false),
        ] {
            assert_eq!(secure_enough(&reqwest::Url::parse(url).unwrap()), ok, "{url}");
        }
    }

    #[test]
    fn backoff_doubles_with_jitter_honours_retry_after_and_is_capped() {
        let policy = RetryPolicy {
            retries: 5,
            backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(1_000),
        };
        for attempt in 0..3u32 {
            let full = 100 * (1 << attempt);
            for _ in 0..50 {
                let d = policy.delay(attempt, None).as_millis() as u64;
                assert!(d >= full / 2 && d <= full, "attempt {attempt}: {d} ms");
            }
        }
        assert!(policy.delay(10, None) <= Duration::from_millis(1_000));
        assert_eq!(
            policy.delay(0, Some(Duration::from_millis(700))),
            Duration::from_millis(700)
        );
        assert_eq!(
            policy.delay(0, Some(Duration::from_secs(60))),
            Duration::from_millis(1_000)
        );
    }

    #[test]
    fn rate_limiter_spaces_request_starts() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        runtime.block_on(async {
            let limiter = RateLimiter::per_minute(1_200.0); // one per 50 ms
            let start = Instant::now();
            for _ in 0..5 {
                limiter.wait().await;
            }
            // Four gaps of 50 ms after the first, immediate request.
            assert!(start.elapsed() >= Duration::from_millis(200), "{:?}", start.elapsed());
            let unlimited = RateLimiter::per_minute(0.0);
            let start = Instant::now();
            for _ in 0..100 {
                unlimited.wait().await;
            }
            assert!(start.elapsed() < Duration::from_millis(50));
        });
    }
}
