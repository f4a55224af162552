//! The consumer validator: reads the consumer from this context's own table and answers.

use shared::language::events::{
    ConsumerValidated, ConsumerValidationFailed, Event, EventMeta, Money, OrderCreated,
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

impl ConsumerValidator {
    /// The consumer's verdict on `order`, read eventually consistent (half the read units). A
    /// refusal, or a limit the order must keep to, is confirmed by a strongly consistent read,
    /// so that a consumer created, reinstated or given a higher limit a moment ago is not held
    /// to what a lagging read saw. A consumer suspended less than about a second ago may still
    /// be seen as active: as if the order had come that much earlier.
    async fn verdict(
        &self,
        order: &OrderCreated,
    ) -> Result<Result<Option<Money>, String>, AnswerError> {
        let check = |consumer: Option<Consumer>| {
            domain::check(&order.consumer_id, consumer.as_ref(), order.total.as_ref())
        };
        let settled = |verdict: &Result<Option<Money>, String>| *verdict == Ok(None);
        Ok(self
            .consumers
            .judged(&order.consumer_id, check, settled)
            .await?)
    }
}

impl Validator for ConsumerValidator {
    async fn answer(&self, order: &OrderCreated) -> Result<Entry, AnswerError> {
        Ok(match self.verdict(order).await? {
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
                    meta: EventMeta::answering(&order.meta, ConsumerValidationFailed::DETAIL_TYPE),
                    reason,
                })?
            }
        })
    }
}
