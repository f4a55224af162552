//! The restaurant validator: reads the restaurant and its menu from this context's own table,
//! prices the order and answers.

use shared::language::events::{
    Event, EventMeta, Money, OrderCreated, OrderDetailsValidated, OrderDetailsValidationFailed,
};
use shared::owners::validation::{AnswerError, Validator};
use shared::platform::bus::Entry;
use shared::platform::table::Table;
use tracing::{debug, info};

use crate::domain::{self, Restaurant};

pub struct RestaurantValidator {
    restaurants: Table,
}

impl RestaurantValidator {
    /// Reads the table name the template sets (`RESTAURANTS_TABLE`).
    pub fn from_env(
        config: &shared::platform::aws::SdkConfig,
    ) -> Result<Self, shared::platform::aws::MissingEnv> {
        Ok(Self {
            restaurants: Table::from_env(config, "RESTAURANTS_TABLE", "restaurantId")?,
        })
    }
}

impl RestaurantValidator {
    /// The restaurant's verdict on `order`, read eventually consistent (half the read units); a
    /// refusal is confirmed by a strongly consistent read, so that a restaurant or menu item
    /// added a moment ago is not refused because a read lagged. A change less than about a
    /// second old may otherwise not be seen yet: as if the order had come that much earlier.
    async fn verdict(
        &self,
        order: &OrderCreated,
    ) -> Result<Result<Money, Vec<String>>, AnswerError> {
        let check = |restaurant: Option<Restaurant>| {
            domain::check(
                &order.restaurant_id,
                restaurant.as_ref(),
                &order.line_items,
                order.total.as_ref(),
            )
        };
        Ok(self
            .restaurants
            .judged(&order.restaurant_id, check, Result::is_ok)
            .await?)
    }
}

impl Validator for RestaurantValidator {
    async fn answer(&self, order: &OrderCreated) -> Result<Entry, AnswerError> {
        Ok(match self.verdict(order).await? {
            Ok(total) => {
                debug!(total = %total, "order details valid");
                Entry::of(&OrderDetailsValidated {
                    meta: EventMeta::answering(&order.meta, OrderDetailsValidated::DETAIL_TYPE),
                    total,
                })?
            }
            Err(reasons) => {
                info!(?reasons, "order details invalid");
                Entry::of(&OrderDetailsValidationFailed {
                    meta: EventMeta::answering(
                        &order.meta,
                        OrderDetailsValidationFailed::DETAIL_TYPE,
                    ),
                    reasons,
                })?
            }
        })
    }
}
