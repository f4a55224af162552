//! Waiting before trying again after losing a race on an order: exponential, with full jitter,
//! so that two writers that collided once do not collide again at the same instant.

use std::time::Duration;

const BASE: Duration = Duration::from_millis(10);
const CAP: Duration = Duration::from_millis(250);

/// A random wait in `[0, min(CAP, BASE * 2^attempt))`, for the `attempt`-th retry (from 1).
pub fn delay(attempt: u32) -> Duration {
    let ceiling = BASE.saturating_mul(1 << attempt.min(16)).min(CAP);
    ceiling.mul_f64(fastrand::f64())
}

pub async fn wait(attempt: u32) {
    tokio::time::sleep(delay(attempt)).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_with_the_attempt_and_stay_under_the_cap() {
        for attempt in 1..40 {
            let ceiling = BASE.saturating_mul(1 << attempt.min(16)).min(CAP);
            for _ in 0..50 {
                assert!(delay(attempt) < ceiling.max(Duration::from_nanos(1)));
            }
        }
        assert!(delay(1) < Duration::from_millis(20));
    }
}
