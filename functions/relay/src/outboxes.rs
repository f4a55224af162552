//! The outbox tables the relay reads, and what each may carry.

use shared::language::outbox::OutboxRecord;

/// What each outbox may carry: its context's source and the detail types that context writes
/// there. A row with any other (written by someone with a `PutItem` on the table, not by the
/// context's own code) is dead-lettered, not published: the bus trusts its sources.
#[derive(Debug, Clone)]
pub struct Outboxes {
    tables: Vec<(String, &'static str, &'static [&'static str])>,
}

impl Outboxes {
    /// The outbox tables by name: the orders', the consumers' and the restaurants'.
    pub fn new(orders: &str, consumers: &str, restaurants: &str) -> Self {
        use shared::language::events::{
            ConsumerUpdated, Event, OrderCreated, OrderRejected, OrderValidated, RestaurantUpdated,
            source,
        };
        const ORDERS: &[&str] = &[
            OrderCreated::DETAIL_TYPE,
            OrderValidated::DETAIL_TYPE,
            OrderRejected::DETAIL_TYPE,
        ];
        Self {
            tables: vec![
                (orders.to_owned(), source::ORDERS, ORDERS),
                (
                    consumers.to_owned(),
                    source::CONSUMERS,
                    &[ConsumerUpdated::DETAIL_TYPE],
                ),
                (
                    restaurants.to_owned(),
                    source::RESTAURANTS,
                    &[RestaurantUpdated::DETAIL_TYPE],
                ),
            ],
        }
    }

    /// The names the template sets (`ORDERS_OUTBOX_TABLE`, `CONSUMERS_OUTBOX_TABLE`,
    /// `RESTAURANTS_OUTBOX_TABLE`).
    pub fn from_env() -> Result<Self, shared::platform::aws::MissingEnv> {
        use shared::platform::aws::required_env;
        Ok(Self::new(
            &required_env("ORDERS_OUTBOX_TABLE")?,
            &required_env("CONSUMERS_OUTBOX_TABLE")?,
            &required_env("RESTAURANTS_OUTBOX_TABLE")?,
        ))
    }

    /// Whether this relay knows the stream's table as an outbox. A stream ARN names its table:
    /// `arn:aws:dynamodb:<region>:<account>:table/<name>/stream/<label>`.
    pub(crate) fn knows(&self, stream_arn: &str) -> bool {
        self.tables.iter().any(|(t, ..)| t == table_of(stream_arn))
    }

    /// Whether the stream's table may carry this row.
    pub(crate) fn admit(
        &self,
        stream_arn: &str,
        record: OutboxRecord,
    ) -> Result<OutboxRecord, String> {
        let table = table_of(stream_arn);
        let Some((_, source, detail_types)) = self.tables.iter().find(|(t, ..)| t == table) else {
            return Err(format!(
                "the stream {stream_arn} is no outbox this relay publishes"
            ));
        };
        if record.source != *source || !detail_types.contains(&record.detail_type.as_str()) {
            return Err(format!(
                "{table} carries only {source} events {detail_types:?}, not {} {}",
                record.source, record.detail_type
            ));
        }
        Ok(record)
    }
}

fn table_of(stream_arn: &str) -> &str {
    stream_arn.split('/').nth(1).unwrap_or_default()
}
