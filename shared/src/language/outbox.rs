//! The transactional outbox: an event is stored as a row of the outbox table in the same
//! transaction as the state change it reports; the table's stream carries it to the relay. Each
//! context that publishes changes has an outbox table of its own; one relay reads them all.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::language::events::Event;
use crate::platform::bus::Entry;

/// How long a published row is kept before DynamoDB's TTL removes it. The stream has long
/// delivered it by then; the row is only kept for inspection and replay.
pub const RETENTION: Duration = Duration::days(7);

/// One row of the outbox table, and what the relay publishes from it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OutboxRecord {
    /// The table's key, and the event's `eventId`.
    pub event_id: Uuid,
    /// What the event is about (an order's, consumer's or restaurant's id): the relay publishes
    /// one subject's events in the order they were written.
    pub subject: String,
    /// The order the event is about, if any: operators find an order's events by it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_id: Option<Uuid>,
    pub source: String,
    pub detail_type: String,
    /// The event's `detail`, already serialized, published byte for byte.
    pub detail: String,
    pub created_at: DateTime<Utc>,
    /// The flow this event belongs to, for the relay's logs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<String>,
    /// Epoch seconds; the table's TTL attribute.
    pub expires_at: i64,
}

impl OutboxRecord {
    pub fn of<E: Event>(event: &E) -> Result<Self, serde_json::Error> {
        let occurred_at = event.occurred_at();
        Ok(Self {
            event_id: event.event_id(),
            subject: event.subject(),
            order_id: E::SOURCE
                .eq(crate::language::events::source::ORDERS)
                .then(|| event.subject().parse().ok())
                .flatten(),
            source: E::SOURCE.to_owned(),
            detail_type: E::DETAIL_TYPE.to_owned(),
            detail: serde_json::to_string(event)?,
            created_at: occurred_at,
            correlation_id: event.correlation_id().map(str::to_owned),
            expires_at: (occurred_at + RETENTION).timestamp(),
        })
    }

    /// The bus entry this row becomes.
    pub fn entry(&self) -> Entry {
        Entry {
            source: self.source.clone(),
            detail_type: self.detail_type.clone(),
            detail: self.detail.clone(),
            time: self.created_at,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::language::events::{EventMeta, OrderCreated};

    #[test]
    fn a_record_carries_the_event_as_published() {
        let event = OrderCreated {
            meta: EventMeta::new(Uuid::now_v7(), Some("corr-1".into())),
            consumer_id: "consumer-1".into(),
            restaurant_id: "restaurant-1".into(),
            line_items: vec![],
            total: None,
        };
        let record = OutboxRecord::of(&event).unwrap();
        assert_eq!(record.event_id, event.meta.event_id);
        assert_eq!(record.order_id, Some(event.meta.order_id));
        assert_eq!(record.subject, event.meta.order_id.to_string());
        assert_eq!(record.detail_type, "OrderCreated");
        assert_eq!(record.source, "orders");
        let detail: OrderCreated = serde_json::from_str(&record.detail).unwrap();
        assert_eq!(detail, event);
        assert_eq!(
            record.expires_at - record.created_at.timestamp(),
            7 * 24 * 3600
        );
    }
}
