//! The restaurant validator: reads the restaurant and its menu from this context's own table,
//! prices the order and answers.

use shared::language::events::{
    Event, EventMeta, OrderCreated, OrderDetailsValidated, OrderDetailsValidationFailed,
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

impl Validator for RestaurantValidator {
    async fn answer(&self, order: &OrderCreated) -> Result<Entry, AnswerError> {
        // Eventually consistent, at half the read units: a menu change less than about a second
        // old may not be seen yet, as if the order had come that much earlier.
        let restaurant: Option<Restaurant> = self
            .restaurants
            .get_eventually(&order.restaurant_id)
            .await?;
        Ok(
            match domain::check(
                &order.restaurant_id,
                restaurant.as_ref(),
                &order.line_items,
                order.total.as_ref(),
            ) {
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
            },
        )
    }
}
