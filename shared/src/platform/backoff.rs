//! Waiting before trying again: exponential, with full jitter, so that two callers that
//! collided once do not collide again at the same instant (the scheme AWS's own SDKs use:
//! "Exponential Backoff And Jitter", AWS Architecture Blog, and the SDKs' retry behavior guide).

use std::time::Duration;

/// The `attempt`-th wait is random in `[0, base * 2^attempt)`, the ceiling never above `cap`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub base: Duration,
    pub cap: Duration,
}

/// After losing a race on an item (a conditional write, a transaction conflict).
pub const RACE: Backoff = Backoff {
    base: Duration::from_millis(10),
    cap: Duration::from_millis(250),
};

impl Backoff {
    /// A random wait in `[0, min(cap, base * 2^attempt))`, for the `attempt`-th retry (from 1).
    pub fn delay(&self, attempt: u32) -> Duration {
        self.ceiling(attempt).mul_f64(fastrand::f64())
    }

    fn ceiling(&self, attempt: u32) -> Duration {
        self.base.saturating_mul(1 << attempt.min(16)).min(self.cap)
    }

    pub async fn wait(&self, attempt: u32) {
        tokio::time::sleep(self.delay(attempt)).await;
    }
}

/// Waits as after losing a race (`RACE`).
pub async fn wait(attempt: u32) {
    RACE.wait(attempt).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_with_the_attempt_and_stay_under_the_cap() {
        for attempt in 1..40 {
            let ceiling = RACE.ceiling(attempt);
            assert!(ceiling <= RACE.cap);
            for _ in 0..50 {
                assert!(RACE.delay(attempt) < ceiling.max(Duration::from_nanos(1)));
            }
        }
        assert_eq!(RACE.ceiling(1), Duration::from_millis(20));
        assert_eq!(RACE.ceiling(5), Duration::from_millis(250));
    }
}
