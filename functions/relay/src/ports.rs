//! What the relay needs from the world: the bus to publish to, and where rows that can never
//! be published go.

use std::future::Future;

use shared::language::outbox::OutboxRecord;
use shared::platform::bus::{EntryOutcome, EventBus, PublishError};
use shared::platform::dead_letter::{DeadLetterError, SqsDeadLetters};

/// The seam between the relay and EventBridge.
pub trait Publisher: Send + Sync {
    /// Publishes at most ten records of at most 256 KB together in one call; answers one outcome
    /// per record, in order.
    fn publish(
        &self,
        records: &[OutboxRecord],
    ) -> impl Future<Output = Result<Vec<EntryOutcome>, PublishError>> + Send;
}

impl Publisher for EventBus {
    async fn publish(&self, records: &[OutboxRecord]) -> Result<Vec<EntryOutcome>, PublishError> {
        let entries: Vec<_> = records.iter().map(OutboxRecord::entry).collect();
        self.put(&entries).await
    }
}

/// A stream record that can never be published, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct DeadRow {
    pub sequence_number: String,
    pub stream_arn: String,
    /// The record's image as the stream gave it (DynamoDB JSON), for an operator to read.
    pub image: String,
    pub reason: String,
}

/// Where rows that can never be published go: `OutboxRelayFailures`.
pub trait DeadRows: Send + Sync {
    fn dead_letter(
        &self,
        row: &DeadRow,
    ) -> impl Future<Output = Result<(), DeadLetterError>> + Send;
}

impl DeadRows for SqsDeadLetters {
    async fn dead_letter(&self, row: &DeadRow) -> Result<(), DeadLetterError> {
        self.send_stream_record(
            &row.image,
            &row.reason,
            &row.stream_arn,
            &row.sequence_number,
        )
        .await
    }
}
