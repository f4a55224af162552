//! The consumer validator: reads the consumer from this context's own table and answers.

use shared::language::events::{
    ConsumerValidated, ConsumerValidationFailed, Event, EventMeta, OrderCreated,
};
use shared::owners::validation::{AnswerError, Validator};
use shared::platform::bus::Entry;
use shared::platform::table::Table;
use tracing::{debug, info};

use crate::domain::{self, Consumer};

pub struct ConsumerValidator {
    consumers: Table,
}

impl ConsumerValidator {
    /// Reads the table name the template sets (`CONSUMERS_TABLE`).
    pub fn from_env(
        config: &shared::platform::aws::SdkConfig,
    ) -> Result<Self, shared::platform::aws::MissingEnv> {
        Ok(Self {
            consumers: Table::from_env(config, "CONSUMERS_TABLE", "consumerId")?,
        })
    }
}

impl Validator for ConsumerValidator {
    async fn answer(&self, order: &OrderCreated) -> Result<Entry, AnswerError> {
        // Eventually consistent, at half the read units: a change less than about a second old
        // may not be seen yet, as if the order had come that much earlier.
        let consumer: Option<Consumer> = self.consumers.get_eventually(&order.consumer_id).await?;
        Ok(
            match domain::check(&order.consumer_id, consumer.as_ref(), order.total.as_ref()) {
                Ok(order_limit) => {
                    debug!(withinLimit = order_limit.is_some(), "consumer may order");
                    Entry::of(&ConsumerValidated {
                        meta: EventMeta::answering(&order.meta, ConsumerValidated::DETAIL_TYPE),
                        order_limit,
                    })?
                }
                Err(reason) => {
                    info!(reason, "consumer may not order");
                    Entry::of(&ConsumerValidationFailed {
                        meta: EventMeta::answering(
                            &order.meta,
                            ConsumerValidationFailed::DETAIL_TYPE,
                        ),
                        reason,
                    })?
                }
            },
        )
    }
}
