//! Retries of BigQuery requests: exponential backoff with full jitter on 429, 5xx and
//! connection errors, bounded by a number of attempts and a total time.
//!
//! Only requests that are safe to repeat go through [`RetryPolicy::run`]: reads, and writes
//! made idempotent by the caller (creation answered by 409 "already exists", jobs with a
//! deterministic job id, deletes answered by 404).

use std::future::Future;
use std::time::{Duration, Instant};

use crate::error::ConnectorError;

/// How often and how long to retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub max_attempts: u32,
    /// Upper bound of the first backoff; doubles with each attempt.
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
    /// No new attempt starts after this much time since the first one.
    pub max_elapsed: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 8,
            initial_backoff: Duration::from_millis(250),
            max_backoff: Duration::from_secs(16),
            max_elapsed: Duration::from_secs(180),
        }
    }
}

/// Whether a failed request may succeed when repeated: BigQuery's 429 and 5xx answers, and
/// connection failures (no HTTP status at all: reset, refused, timed out).
pub fn is_retryable(error: &ConnectorError) -> bool {
    match error {
        ConnectorError::BigQuery { http_status, .. } => match http_status {
            None => true,
            Some(status) => *status == 429 || (500..=599).contains(status),
        },
        _ => false,
    }
}

impl RetryPolicy {
    /// Runs `attempt` until it succeeds, fails with an error that is not retryable, or the
    /// attempts or the time are used up; the last error is returned, with the attempt count.
    pub async fn run<T, F, Fut>(&self, what: &str, mut attempt: F) -> Result<T, ConnectorError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, ConnectorError>>,
    {
        let started = Instant::now();
        let mut jitter = Jitter::new();
        let mut tries = 0;
        loop {
            tries += 1;
            let error = match attempt().await {
                Ok(value) => return Ok(value),
                Err(error) => error,
            };
            if !is_retryable(&error) {
                return Err(error);
            }
            let delay = self.backoff(tries, &mut jitter);
            if tries >= self.max_attempts || started.elapsed() + delay > self.max_elapsed {
                return Err(error.after_attempts(what, tries));
            }
            tracing_retry(what, tries, &error, delay);
            tokio::time::sleep(delay).await;
        }
    }

    /// Full jitter: uniform in [0, min(max, initial * 2^(attempt-1))].
    fn backoff(&self, attempt: u32, jitter: &mut Jitter) -> Duration {
        let factor = 1u32
            .checked_shl(attempt.saturating_sub(1))
            .unwrap_or(u32::MAX);
        let ceiling = self
            .initial_backoff
            .saturating_mul(factor)
            .min(self.max_backoff);
        ceiling.mul_f64(jitter.next_unit())
    }
}

fn tracing_retry(what: &str, attempt: u32, error: &ConnectorError, delay: Duration) {
    tracing::info!(
        "retrying {what} in {} ms after attempt {attempt}: {error}",
        delay.as_millis()
    );
}

/// xorshift64*, seeded from the clock and the address of a local: jitter only needs to
/// decorrelate concurrent clients, not to be unpredictable.
struct Jitter(u64);

impl Jitter {
    fn new() -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        let local = 0u8;
        let address = std::ptr::addr_of!(local) as u64;
        Self((nanos ^ address.rotate_left(32)) | 1)
    }

    /// Uniform in [0, 1).
    fn next_unit(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let value = self.0.wrapping_mul(0x2545_F491_4F6C_DD1D);
        (value >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    fn fast() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 4,
            initial_backoff: Duration::from_millis(1),
            max_backoff: Duration::from_millis(2),
            max_elapsed: Duration::from_secs(5),
        }
    }

    fn status(code: Option<u16>) -> ConnectorError {
        ConnectorError::BigQuery {
            http_status: code,
            message: "x".into(),
        }
    }

    #[test]
    fn classifies_statuses() {
        for code in [None, Some(429), Some(500), Some(502), Some(503), Some(504)] {
            assert!(is_retryable(&status(code)), "{code:?}");
        }
        for code in [Some(400), Some(401), Some(403), Some(404), Some(409)] {
            assert!(!is_retryable(&status(code)), "{code:?}");
        }
        assert!(!is_retryable(&ConnectorError::UnexpectedResponse {
            reason: "x".into()
        }));
    }

    #[tokio::test]
    async fn retries_transient_errors_until_success() {
        let calls = AtomicU32::new(0);
        let value = fast()
            .run("test", || async {
                match calls.fetch_add(1, Ordering::SeqCst) {
                    0 => Err(status(Some(503))),
                    1 => Err(status(None)),
                    _ => Ok(7),
                }
            })
            .await
            .unwrap();
        assert_eq!((value, calls.load(Ordering::SeqCst)), (7, 3));
    }

    #[tokio::test]
    async fn gives_up_after_max_attempts_and_says_so() {
        let calls = AtomicU32::new(0);
        let error = fast()
            .run("creating table t", || async {
                calls.fetch_add(1, Ordering::SeqCst);
                Err::<(), _>(status(Some(429)))
            })
            .await
            .unwrap_err();
        assert_eq!(calls.load(Ordering::SeqCst), 4);
        assert!(
            error.to_string().contains("creating table t")
                && error.to_string().contains("4 attempts"),
            "{error}"
        );
    }

    #[tokio::test]
    async fn does_not_retry_client_errors() {
        let calls = AtomicU32::new(0);
        let error = fast()
            .run("x", || async {
                calls.fetch_add(1, Ordering::SeqCst);
                Err::<(), _>(status(Some(400)))
            })
            .await
            .unwrap_err();
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert!(matches!(
            error,
            ConnectorError::BigQuery {
                http_status: Some(400),
                ..
            }
        ));
    }

    #[test]
    fn backoff_is_bounded_and_jittered() {
        let policy = RetryPolicy {
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(400),
            ..RetryPolicy::default()
        };
        let mut jitter = Jitter::new();
        let delays: Vec<Duration> = (1..=40).map(|a| policy.backoff(a, &mut jitter)).collect();
        assert!(delays.iter().all(|d| *d <= Duration::from_millis(400)));
        assert!(delays[0] <= Duration::from_millis(100));
        let distinct: std::collections::HashSet<_> = delays.iter().collect();
        assert!(distinct.len() > 30, "{delays:?}");
    }
}
