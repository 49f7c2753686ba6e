//! Retry policy: exponential backoff with jitter, bounded in count and time.

use std::time::Duration;

/// How failed attempts are retried.
///
/// Retried: 408, 429, 500, 502, 503, 504, timeouts and connection errors.
/// Never retried: 404, 409, 412, 401, 403 and other client errors. The
/// service's `Retry-After` / `x-ms-retry-after-ms` wins over the backoff.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetryOptions {
    /// Retries after the first attempt. Default 4.
    pub max_retries: u32,
    /// Delay before the first retry; doubled for each further one. Default 500 ms.
    pub initial_delay: Duration,
    /// Upper bound of one delay. Default 30 s.
    pub max_delay: Duration,
}

impl Default for RetryOptions {
    fn default() -> Self {
        Self {
            max_retries: 4,
            initial_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
        }
    }
}

impl RetryOptions {
    /// The delay before retry number `retry` (0-based): exponential, capped,
    /// with ±20 % jitter so that many clients do not retry in step.
    pub(crate) fn backoff(&self, retry: u32) -> Duration {
        let exponential = self
            .initial_delay
            .saturating_mul(2u32.saturating_pow(retry.min(16)))
            .min(self.max_delay);
        // Near `Duration::MAX` the jitter could overflow: the cap stands.
        Duration::try_from_secs_f64(exponential.as_secs_f64() * rand::random_range(0.8..1.2))
            .map_or(self.max_delay, |jittered| jittered.min(self.max_delay))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        let options = RetryOptions::default();
        for retry in 0..40 {
            let delay = options.backoff(retry);
            let base = Duration::from_millis(500).saturating_mul(2u32.saturating_pow(retry.min(16)));
            assert!(delay <= options.max_delay);
            assert!(delay >= base.min(options.max_delay).mul_f64(0.8) || delay == options.max_delay);
        }
        assert!(options.backoff(0) < Duration::from_millis(601));
    }
}
