//! The EventBridge adapter of the relay's publisher seam.

use aws_sdk_eventbridge::Client;
use aws_sdk_eventbridge::primitives::DateTime;
use aws_sdk_eventbridge::types::PutEventsRequestEntry;

use crate::outbox::OutboxRecord;
use crate::relay::{EntryOutcome, PublishError, Publisher};

pub struct EventBridgePublisher {
    client: Client,
    bus_name: String,
}

impl EventBridgePublisher {
    pub fn new(client: Client, bus_name: String) -> Self {
        Self { client, bus_name }
    }

    /// Reads the bus name the template sets (`EVENT_BUS_NAME`).
    pub fn from_env(config: &shared::aws::SdkConfig) -> Result<Self, shared::aws::MissingEnv> {
        Ok(Self::new(
            Client::new(config),
            shared::aws::required_env("EVENT_BUS_NAME")?,
        ))
    }

    fn entry(&self, record: &OutboxRecord) -> PutEventsRequestEntry {
        PutEventsRequestEntry::builder()
            .event_bus_name(&self.bus_name)
            .source(&record.source)
            .detail_type(&record.detail_type)
            .detail(&record.detail)
            .time(DateTime::from_millis(record.created_at.timestamp_millis()))
            .build()
    }
}

impl Publisher for EventBridgePublisher {
    async fn publish(&self, records: &[OutboxRecord]) -> Result<Vec<EntryOutcome>, PublishError> {
        let entries = records.iter().map(|r| self.entry(r)).collect();
        let output = self
            .client
            .put_events()
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(|e| {
                PublishError(aws_sdk_eventbridge::error::DisplayErrorContext(e).to_string())
            })?;
        // Entries answer in request order; one with an error code was not published, whatever
        // FailedEntryCount says.
        Ok(output
            .entries()
            .iter()
            .map(|entry| match entry.error_code() {
                None => EntryOutcome::Published,
                Some(code) => EntryOutcome::Failed {
                    code: code.to_owned(),
                    message: entry.error_message().unwrap_or_default().to_owned(),
                },
            })
            .collect())
    }
}
