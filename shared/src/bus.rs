//! Publishing to the EventBridge bus: one `PutEvents` call per batch of at most ten entries,
//! with the outcome of every entry, because a call that succeeds can still refuse entries.

use aws_sdk_eventbridge::Client;
use aws_sdk_eventbridge::primitives::DateTime as SdkDateTime;
use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use chrono::{DateTime, Utc};

use crate::events::Event;

/// EventBridge's limit of entries per `PutEvents` call.
pub const MAX_ENTRIES_PER_CALL: usize = 10;

/// One event as it is put on the bus.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub source: String,
    pub detail_type: String,
    /// The serialized `detail`, published byte for byte.
    pub detail: String,
    pub time: DateTime<Utc>,
}

impl Entry {
    pub fn of<E: Event>(event: &E) -> Result<Self, serde_json::Error> {
        Ok(Self {
            source: E::SOURCE.to_owned(),
            detail_type: E::DETAIL_TYPE.to_owned(),
            detail: serde_json::to_string(event)?,
            time: event.occurred_at(),
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryOutcome {
    Published,
    Failed { code: String, message: String },
}

#[derive(Debug, thiserror::Error)]
#[error("PutEvents failed: {0}")]
pub struct PublishError(pub String);

#[derive(Clone, Debug)]
pub struct EventBus {
    client: Client,
    name: String,
}

impl EventBus {
    pub fn new(client: Client, name: String) -> Self {
        Self { client, name }
    }

    /// Reads the bus name the template sets (`EVENT_BUS_NAME`).
    pub fn from_env(config: &crate::aws::SdkConfig) -> Result<Self, crate::aws::MissingEnv> {
        Ok(Self::new(
            crate::aws::eventbridge(config),
            crate::aws::required_env("EVENT_BUS_NAME")?,
        ))
    }

    /// Puts at most ten entries in one call; answers one outcome per entry, in order.
    pub async fn put(&self, entries: &[Entry]) -> Result<Vec<EntryOutcome>, PublishError> {
        if entries.is_empty() {
            return Ok(Vec::new());
        }
        let request = entries
            .iter()
            .map(|entry| {
                PutEventsRequestEntry::builder()
                    .event_bus_name(&self.name)
                    .source(&entry.source)
                    .detail_type(&entry.detail_type)
                    .detail(&entry.detail)
                    .time(SdkDateTime::from_millis(entry.time.timestamp_millis()))
                    .build()
            })
            .collect();
        let output = self
            .client
            .put_events()
            .set_entries(Some(request))
            .send()
            .await
            .map_err(|e| {
                PublishError(aws_sdk_eventbridge::error::DisplayErrorContext(e).to_string())
            })?;
        // Entries answer in request order; one with an error code was not published, whatever
        // FailedEntryCount says.
        let outcomes: Vec<EntryOutcome> = output
            .entries()
            .iter()
            .map(|entry| match entry.error_code() {
                None => EntryOutcome::Published,
                Some(code) => EntryOutcome::Failed {
                    code: code.to_owned(),
                    message: entry.error_message().unwrap_or_default().to_owned(),
                },
            })
            .collect();
        let refused = outcomes
            .iter()
            .filter(|o| matches!(o, EntryOutcome::Failed { .. }))
            .count();
        let reported = usize::try_from(output.failed_entry_count()).unwrap_or(usize::MAX);
        if outcomes.len() != entries.len() || refused != reported {
            // An answer that does not add up is no answer: every entry counts as refused.
            return Err(PublishError(format!(
                "{} entries sent, {} answered, FailedEntryCount {reported} but {refused} entries with an error",
                entries.len(),
                outcomes.len()
            )));
        }
        Ok(outcomes)
    }
}
