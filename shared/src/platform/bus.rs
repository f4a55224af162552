//! Publishing to the EventBridge bus: one `PutEvents` call per batch of at most ten entries,
//! with the outcome of every entry, because a call that succeeds can still refuse entries.

use aws_sdk_eventbridge::Client;
use aws_sdk_eventbridge::primitives::DateTime as SdkDateTime;
use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use chrono::{DateTime, Utc};

use crate::language::events::Event;
use crate::platform::aws_error::{AwsError, Classified, Retry};

/// EventBridge's limit of entries per `PutEvents` call.
pub const MAX_ENTRIES_PER_CALL: usize = 10;

/// The most a `PutEvents` call carries here, its entries' sizes (`Entry::size`) together; so
/// also the largest event. EventBridge takes less than 1 MB a call since January 2026, 256 KB
/// before: the project keeps to the older limit, right on either, and an event with the
/// envelope EventBridge adds stays far under SQS's 1 MiB message (docs/conformance.md, "Limits").
pub const MAX_BYTES_PER_CALL: usize = 256 * 1024;

/// Splits `entries`, in order, into the ranges of consecutive calls within the limits: at most
/// ten entries and `MAX_BYTES_PER_CALL` bytes each (an entry over it alone, for EventBridge to
/// refuse).
pub fn calls(entries: &[Entry]) -> Vec<std::ops::Range<usize>> {
    let mut ranges = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for (i, entry) in entries.iter().enumerate() {
        let size = entry.size();
        if i > start && (i - start == MAX_ENTRIES_PER_CALL || bytes + size > MAX_BYTES_PER_CALL) {
            ranges.push(start..i);
            (start, bytes) = (i, 0);
        }
        bytes += size;
    }
    if start < entries.len() {
        ranges.push(start..entries.len());
    }
    ranges
}

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

    /// The entry's size as EventBridge counts it against `MAX_BYTES_PER_CALL`: 14 bytes for the
    /// time, then the UTF-8 bytes of the source, the detail type and the detail (no resources).
    pub fn size(&self) -> usize {
        14 + self.source.len() + self.detail_type.len() + self.detail.len()
    }

    /// Whether EventBridge can take this entry at all.
    pub fn fits(&self) -> bool {
        self.size() <= MAX_BYTES_PER_CALL
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryOutcome {
    Published,
    Failed { code: String, message: String },
}

/// Whether EventBridge will refuse an entry it refused with `code` on every attempt: the codes
/// its API reference lists as non-retryable for the entry itself (`PutEventsResultEntry`,
/// https://docs.aws.amazon.com/eventbridge/latest/APIReference/API_PutEventsResultEntry.html).
/// Permission errors are left out, though listed: once the policy is fixed, the entry passes.
pub fn refused_for_good(code: &str) -> bool {
    matches!(
        code,
        "MalformedDetail" | "InvalidArgument" | "InvalidAccountIdException" | "RedactionFailure"
    )
}

#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error(transparent)]
    Call(#[from] AwsError),
    /// The answer does not add up (entries missing, a count that disagrees): asked again.
    #[error("PutEvents answered inconsistently: {0}")]
    Inconsistent(String),
}

impl Classified for PublishError {
    fn retry(&self) -> Retry {
        match self {
            PublishError::Call(call) => call.retry(),
            PublishError::Inconsistent(_) => Retry::Transient,
        }
    }
}

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
    pub fn from_env(
        config: &crate::platform::aws::SdkConfig,
    ) -> Result<Self, crate::platform::aws::MissingEnv> {
        Ok(Self::new(
            crate::platform::aws::eventbridge(config),
            crate::platform::aws::required_env("EVENT_BUS_NAME")?,
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
            .map_err(|e| AwsError::from_sdk("EventBridge.PutEvents", e))?;
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
            return Err(PublishError::Inconsistent(format!(
                "{} entries sent, {} answered, FailedEntryCount {reported} but {refused} entries with an error",
                entries.len(),
                outcomes.len()
            )));
        }
        Ok(outcomes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_is_counted_as_eventbridge_counts_it() {
        let entry = Entry {
            source: "orders".into(),
            detail_type: "OrderCreated".into(),
            // "é" is two bytes in UTF-8: sizes are bytes, not characters.
            detail: r#"{"name":"é"}"#.into(),
            time: Utc::now(),
        };
        assert_eq!(entry.size(), 14 + 6 + 12 + 13);
        let at_limit = Entry {
            detail: "x".repeat(MAX_BYTES_PER_CALL - 14 - 6 - 12),
            ..entry
        };
        assert!(at_limit.fits());
        let over = Entry {
            detail: at_limit.detail.clone() + "x",
            ..at_limit
        };
        assert!(!over.fits());
    }

    #[test]
    fn calls_hold_at_most_ten_entries_and_256_kib_in_order() {
        let of_size = |bytes: usize| Entry {
            source: "s".into(),
            detail_type: "d".into(),
            detail: "x".repeat(bytes - 16),
            time: Utc::now(),
        };
        let kb = 1024;
        let small: Vec<Entry> = (0..25).map(|_| of_size(100)).collect();
        assert_eq!(calls(&small), [0..10, 10..20, 20..25]);
        let big: Vec<Entry> = [200, 56, 1, 300, 10]
            .iter()
            .map(|&k| of_size(k * kb))
            .collect();
        assert_eq!(calls(&big), [0..2, 2..3, 3..4, 4..5]);
        assert!(calls(&[]).is_empty());
    }
}
