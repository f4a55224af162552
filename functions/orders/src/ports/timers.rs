//! The decision deadline's timers: the message each order's timer is, and the queue that holds
//! it back (`crate::app::deadline_timer`).

use std::future::Future;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use shared::language::events::EventMeta;

/// The timer's message: the `OrderCreated` it was started for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeadlineTimer {
    pub decision_deadline: EventMeta,
}

impl DeadlineTimer {
    /// The timer in a message body, or `None` when the body is something else.
    pub fn from_body(body: &str) -> Option<Self> {
        serde_json::from_str(body).ok()
    }
}

/// A timer to start, and how long SQS holds it back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Started {
    pub timer: DeadlineTimer,
    pub delay: Duration,
}

#[derive(Debug, thiserror::Error)]
#[error("SQS did not take the timers")]
pub struct TimerError(#[source] pub Box<dyn std::error::Error + Send + Sync>);

/// The seam between the timer and SQS.
pub trait Timers: Send + Sync {
    /// Starts at most ten timers in one call; answers the positions of those not started.
    fn start(
        &self,
        timers: &[Started],
    ) -> impl Future<Output = Result<Vec<usize>, TimerError>> + Send;
}
