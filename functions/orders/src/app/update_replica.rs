//! The replica updater: `ConsumerUpdated` and `RestaurantUpdated` arrive from the bus through
//! this context's own queue (read in `crate::entry::sqs::replica_updates`) and are applied to
//! the replica if newer. A message that can never apply (it does not decode) is dead-lettered at
//! once with the reason; a failed write is handed back to SQS to be tried again.

use chrono::Utc;
use shared::platform::aws_error::{Classified, Retry};
use shared::platform::envelope::EnvelopeError;
use shared::platform::metrics::{self, Unit};
use tracing::info;

use crate::domain::replica::Replicated;
use crate::ports::orders::StoreError;
use crate::ports::replica::{Applied, ReplicaStore};

pub struct ReplicaUpdater<R, D> {
    replica: R,
    pub(crate) dead_letters: D,
}

/// Why an update did not apply.
#[derive(Debug, thiserror::Error)]
pub enum UpdateError {
    #[error(transparent)]
    Envelope(#[from] EnvelopeError),
    #[error("expected ConsumerUpdated or RestaurantUpdated, got {0}")]
    UnexpectedEvent(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Classified for UpdateError {
    fn retry(&self) -> Retry {
        match self {
            UpdateError::Envelope(_) | UpdateError::UnexpectedEvent(_) => Retry::Never,
            UpdateError::Store(store) => store.retry(),
        }
    }
}

impl<R: ReplicaStore, D> ReplicaUpdater<R, D> {
    pub fn new(replica: R, dead_letters: D) -> Self {
        Self {
            replica,
            dead_letters,
        }
    }

    /// Applies one update if it is newer than what the replica holds; answers what it did, with
    /// the replica lag (from the owner's change to now).
    pub async fn apply(&self, update: &Replicated) -> Result<(Applied, i64), UpdateError> {
        let applied = self.replica.apply(update).await?;
        let lag_ms = (Utc::now() - update.occurred_at())
            .num_milliseconds()
            .max(0);
        info!(key = %update.key(), version = update.version(), ?applied, lagMs = lag_ms, "replica update");
        Ok((applied, lag_ms))
    }
}

/// What a batch of `messages` updates did: logged, and as metrics (ReplicaLag: the newest of
/// the batch's changes).
pub fn record(messages: usize, applied: &[(Applied, i64)]) {
    let (mut newer, mut stale, mut max_lag_ms) = (0, 0, 0i64);
    for (applied, lag_ms) in applied {
        match applied {
            Applied::Newer => {
                newer += 1;
                max_lag_ms = max_lag_ms.max(*lag_ms);
            }
            Applied::Stale => stale += 1,
        }
    }
    info!(messages, newer, stale, "replica updates applied");
    let mut measured = vec![
        ("ReplicaUpdatesApplied", Unit::Count, newer as f64),
        ("ReplicaUpdatesStale", Unit::Count, stale as f64),
    ];
    if newer > 0 {
        measured.push(("ReplicaLag", Unit::Milliseconds, max_lag_ms as f64));
    }
    metrics::measure(&measured);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::memory::replica::MemoryReplica;
    use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
    use shared::language::events::ConsumerUpdated;
    use shared::language::events::{ChangeMeta, ConsumerStatus};
    use shared::platform::dead_letter::memory::MemoryDeadLetters;
    use tokio::time::Instant;

    fn unhurried() -> Instant {
        Instant::now() + std::time::Duration::from_secs(60)
    }

    /// An event as Lambda delivers it from a rule's queue (the corpus's shapes), as `id`.
    fn message(id: &str, detail_type: &str, detail: serde_json::Value) -> SqsMessage {
        let batch = shared::testing::corpus::sqs_batch(&[("consumers", detail_type, detail)]);
        let mut message = batch.records[0].clone();
        message.message_id = Some(id.to_owned());
        message
    }

    fn consumer(version: u64) -> serde_json::Value {
        serde_json::to_value(ConsumerUpdated {
            meta: ChangeMeta::new(None),
            consumer_id: "consumer-1".into(),
            version,
            name: "Ada".into(),
            status: ConsumerStatus::Active,
            order_limit: None,
        })
        .unwrap()
    }

    #[tokio::test]
    async fn newer_updates_apply_older_ones_are_skipped_and_garbage_is_dead_lettered() {
        let replica = MemoryReplica::default();
        let dead_letters = MemoryDeadLetters::default();
        let updater = ReplicaUpdater::new(replica.clone(), dead_letters.clone());
        let mut event = SqsEvent::default();
        event.records = vec![
            message("m1", "ConsumerUpdated", consumer(2)),
            message("m2", "ConsumerUpdated", consumer(1)),
            message(
                "m3",
                "ConsumerUpdated",
                serde_json::json!({"consumerId": 7}),
            ),
            message("m4", "OrderCreated", consumer(3)),
        ];
        let response = updater.handle_batch(event, unhurried()).await;
        assert!(response.batch_item_failures.is_empty());
        let known = replica.lookup("consumer-1", "r").await.unwrap();
        assert_eq!(known.consumer.map(|c| c.version), Some(2));
        let sent = dead_letters.sent.lock().unwrap().clone();
        assert_eq!(
            sent.iter().map(|(id, _)| id.as_str()).collect::<Vec<_>>(),
            ["m3", "m4"]
        );
    }

    #[tokio::test]
    async fn a_batch_as_aws_sends_it_of_events_not_ours_is_dead_lettered_with_the_reason() {
        let replica = MemoryReplica::default();
        let dead_letters = MemoryDeadLetters::default();
        let updater = ReplicaUpdater::new(replica.clone(), dead_letters.clone());
        let event: SqsEvent =
            serde_json::from_value(shared::testing::corpus::event("sqs-eventbridge-batch"))
                .unwrap();
        let response = updater.handle_batch(event, unhurried()).await;
        assert!(response.batch_item_failures.is_empty());
        let sent = dead_letters.sent.lock().unwrap().clone();
        assert_eq!(sent.len(), 2);
        assert!(
            sent.iter()
                .all(|(_, reason)| reason.contains("OrderPlaced")),
            "{sent:?}"
        );
    }
}
