//! The replica-updater function's SQS messages: the owners' change events, read and applied by
//! the use case (`crate::app::update_replica`) through the one batch processor.

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use shared::language::events::{ConsumerUpdated, Event, RestaurantUpdated};
use shared::platform::batch::{self, Handler};
use shared::platform::dead_letter::DeadLetters;
use shared::platform::envelope::Envelope;
use tokio::time::Instant;

use crate::app::update_replica::{self, ReplicaUpdater, UpdateError};
use crate::domain::replica::Replicated;
use crate::ports::replica::{Applied, ReplicaStore};

impl<R: ReplicaStore, D: DeadLetters> ReplicaUpdater<R, D> {
    pub async fn handle_batch(&self, event: SqsEvent, deadline: Instant) -> SqsBatchResponse {
        let (response, applied) =
            batch::process(self, &event.records, deadline, &self.dead_letters).await;
        update_replica::record(event.records.len(), &applied);
        response
    }
}

impl<R: ReplicaStore, D: DeadLetters> Handler for ReplicaUpdater<R, D> {
    type Message = Replicated;
    /// What the update did, with the replica lag of one that changed the replica.
    type Handled = (Applied, i64);
    type Error = UpdateError;

    fn decode(&self, message: &SqsMessage) -> Result<Replicated, UpdateError> {
        let envelope = Envelope::from_message(message)?;
        Ok(match envelope.detail_type.as_str() {
            ConsumerUpdated::DETAIL_TYPE => Replicated::Consumer(envelope.detail()?),
            RestaurantUpdated::DETAIL_TYPE => Replicated::Restaurant(envelope.detail()?),
            other => return Err(UpdateError::UnexpectedEvent(other.to_owned())),
        })
    }

    /// Updates of one entity in turn: the version check would keep the newest anyway, but not
    /// without a conflicting write for each that lost.
    fn subject(&self, update: &Replicated) -> String {
        update.key()
    }

    async fn handle(&self, update: Replicated) -> Result<(Applied, i64), UpdateError> {
        self.apply(&update).await
    }
}
