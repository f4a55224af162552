//! `DecisionDeadlineQueue` as the timers port.

use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
use tracing::warn;

use crate::ports::timers::{Started, TimerError, Timers};

/// `DecisionDeadlineQueue`, named by `DEADLINE_QUEUE_URL` in the template.
pub struct SqsTimers {
    client: aws_sdk_sqs::Client,
    queue_url: String,
}

impl SqsTimers {
    pub fn from_env(
        config: &shared::platform::aws::SdkConfig,
    ) -> Result<Self, shared::platform::aws::MissingEnv> {
        Ok(Self {
            client: shared::platform::aws::sqs(config),
            queue_url: shared::platform::aws::required_env("DEADLINE_QUEUE_URL")?,
        })
    }
}

impl Timers for SqsTimers {
    async fn start(&self, timers: &[Started]) -> Result<Vec<usize>, TimerError> {
        let entries = timers
            .iter()
            .enumerate()
            .map(|(i, started)| {
                let body =
                    serde_json::to_string(&started.timer).map_err(|e| TimerError(e.into()))?;
                SendMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .message_body(body)
                    .delay_seconds(started.delay.as_secs() as i32)
                    .build()
                    .map_err(|e| TimerError(e.into()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let answer = self
            .client
            .send_message_batch()
            .queue_url(&self.queue_url)
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(|e| TimerError(e.into()))?;
        // An id that does not read as one of ours counts as the first: retried, never lost.
        Ok(answer
            .failed()
            .iter()
            .map(|failed| {
                warn!(
                    code = failed.code(),
                    message = failed.message(),
                    "timer refused"
                );
                failed.id().parse().unwrap_or(0)
            })
            .collect())
    }
}
