//! The one retry helper: exponential backoff with jitter, cut short by cancellation.
//!
//! Used wherever a call to etcd (or another service) may fail for a moment — a restart, a
//! leader change, a broken connection — and the caller would rather wait than fail.

use std::future::Future;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

/// How to retry: delays grow from `initial` by `factor` up to `max`, each with up to ±25 %
/// jitter (so that many clients do not retry in step), for at most `attempts` tries.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    pub initial: Duration,
    pub max: Duration,
    pub factor: u32,
    pub attempts: u32,
}

impl Default for Backoff {
    /// 100 ms, 200 ms, … up to 5 s between tries; 20 tries (about a minute).
    fn default() -> Self {
        Backoff { initial: Duration::from_millis(100), max: Duration::from_secs(5), factor: 2, attempts: 20 }
    }
}

impl Backoff {
    /// The delay before try number `attempt + 1` (attempt counts from 1), with jitter.
    pub fn delay(&self, attempt: u32) -> Duration {
        let base = self.initial.saturating_mul(self.factor.saturating_pow(attempt.saturating_sub(1))).min(self.max);
        // Jitter from the clock's nanoseconds: cheap, and different across processes.
        let nanos =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().subsec_nanos();
        let spread = f64::from(nanos % 1000) / 1000.0 * 0.5 - 0.25;
        base.mul_f64(1.0 + spread)
    }
}

/// Why [`retry`] gave up.
#[derive(Debug, thiserror::Error)]
pub enum RetryError<E> {
    #[error("cancelled")]
    Cancelled,
    /// The last error, either permanent or after the last try.
    #[error(transparent)]
    Failed(E),
}

/// Calls `op` until it succeeds, fails with an error `is_transient` rejects, runs out of
/// tries, or `cancel` fires.
pub async fn retry<T, E, F, Fut>(
    backoff: Backoff,
    cancel: &CancellationToken,
    is_transient: impl Fn(&E) -> bool,
    mut op: F,
) -> Result<T, RetryError<E>>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let mut attempt = 0;
    loop {
        attempt += 1;
        let error = tokio::select! {
            _ = cancel.cancelled() => return Err(RetryError::Cancelled),
            result = op() => match result {
                Ok(value) => return Ok(value),
                Err(error) => error,
            },
        };
        if !is_transient(&error) || attempt >= backoff.attempts {
            return Err(RetryError::Failed(error));
        }
        tokio::select! {
            _ = cancel.cancelled() => return Err(RetryError::Cancelled),
            _ = tokio::time::sleep(backoff.delay(attempt)) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[tokio::test(start_paused = true)]
    async fn retries_transient_errors_until_success() {
        let calls = AtomicU32::new(0);
        let result: Result<u32, RetryError<&str>> = retry(
            Backoff::default(),
            &CancellationToken::new(),
            |_| true,
            || async {
                let n = calls.fetch_add(1, Ordering::SeqCst) + 1;
                if n < 3 { Err("down") } else { Ok(n) }
            },
        )
        .await;
        assert_eq!(result.unwrap(), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn permanent_errors_and_cancellation_stop_at_once() {
        let calls = AtomicU32::new(0);
        let result: Result<(), _> = retry(
            Backoff::default(),
            &CancellationToken::new(),
            |e: &&str| *e != "bad",
            || async {
                calls.fetch_add(1, Ordering::SeqCst);
                Err("bad")
            },
        )
        .await;
        assert!(matches!(result, Err(RetryError::Failed("bad"))));
        assert_eq!(calls.load(Ordering::SeqCst), 1);

        let cancel = CancellationToken::new();
        cancel.cancel();
        let result: Result<(), RetryError<&str>> =
            retry(Backoff::default(), &cancel, |_| true, || async { Err("down") }).await;
        assert!(matches!(result, Err(RetryError::Cancelled)));
    }

    #[test]
    fn delays_grow_and_stay_within_jitter_of_the_cap() {
        let b = Backoff::default();
        assert!(b.delay(1) <= Duration::from_millis(125));
        assert!(b.delay(3) >= Duration::from_millis(300));
        assert!(b.delay(30) <= Duration::from_millis(6_250));
    }
}
