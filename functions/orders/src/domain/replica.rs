//! The order context's replicas of consumers and restaurants: the other half of the pattern.
//! Their owners publish every change with the entity's whole state and version
//! (`ConsumerUpdated`, `RestaurantUpdated`); the replica keeps the newest version it has seen,
//! so duplicated and reordered events leave it at the latest state. `POST /orders` checks and
//! prices an order against it without calling anyone (`check`). This is the pure part: what the
//! replica holds and the rules an order is checked by; the port is `crate::ports::replica`.

use serde::{Deserialize, Serialize};
use shared::language::events::{
    ConsumerStatus, ConsumerUpdated, LineItem, Money, RestaurantUpdated,
};
use shared::language::input::FieldError;
use shared::language::menu;
use shared::language::refusals::Refusal;

/// One replicated entity as the replica keeps it: the owner's event, whole.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind")]
pub enum Replicated {
    Consumer(ConsumerUpdated),
    Restaurant(RestaurantUpdated),
}

impl Replicated {
    /// The replica's key of the entity.
    pub fn key(&self) -> String {
        match self {
            Replicated::Consumer(c) => consumer_key(&c.consumer_id),
            Replicated::Restaurant(r) => restaurant_key(&r.restaurant_id),
        }
    }

    pub fn version(&self) -> u64 {
        match self {
            Replicated::Consumer(c) => c.version,
            Replicated::Restaurant(r) => r.version,
        }
    }

    pub fn occurred_at(&self) -> chrono::DateTime<chrono::Utc> {
        match self {
            Replicated::Consumer(c) => c.meta.occurred_at,
            Replicated::Restaurant(r) => r.meta.occurred_at,
        }
    }
}

pub fn consumer_key(consumer_id: &str) -> String {
    format!("CONSUMER#{consumer_id}")
}

pub fn restaurant_key(restaurant_id: &str) -> String {
    format!("RESTAURANT#{restaurant_id}")
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Known {
    pub consumer: Option<ConsumerUpdated>,
    pub restaurant: Option<RestaurantUpdated>,
}

/// An order as the replica prices it: each line with its unit price and the total, when the
/// replica knows the restaurant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Priced {
    pub lines: Vec<LineItem>,
    pub total: Option<Money>,
}

/// Checks an order against what the replica knows. What it proves wrong is refused with every
/// reason; what it does not know (a consumer or restaurant not replicated yet) is left to the
/// asynchronous validation, which stays the authority.
pub fn check(
    consumer_id: &str,
    restaurant_id: &str,
    lines: &[LineItem],
    known: &Known,
) -> Result<Priced, Vec<FieldError>> {
    let mut refusals = Vec::new();
    if let Some(consumer) = &known.consumer
        && consumer.status == ConsumerStatus::Suspended
    {
        refusals.push(Refusal::ConsumerSuspended {
            consumer_id: consumer_id.to_owned(),
        });
    }
    let Some(restaurant) = &known.restaurant else {
        return if refusals.is_empty() {
            Ok(Priced {
                lines: lines.to_vec(),
                total: None,
            })
        } else {
            Err(field_errors(&refusals))
        };
    };
    if !restaurant.accepting_orders {
        refusals.push(Refusal::NotAcceptingOrders {
            restaurant_id: restaurant_id.to_owned(),
        });
    }
    let priced = match menu::price(&restaurant.menu, lines) {
        Ok(priced) => Some(priced),
        Err(unpriced) => {
            refusals.extend(Refusal::unpriced(&unpriced, lines, restaurant_id));
            None
        }
    };
    // The consumer context's own rule, on the replica's copy of the limit.
    if let (Some(priced), Some(consumer)) = (&priced, &known.consumer)
        && let Some(limit) = &consumer.order_limit
        && let Some(over) = Refusal::over_limit(consumer_id, &priced.total, limit)
    {
        refusals.push(over);
    }
    match priced {
        Some(priced) if refusals.is_empty() => Ok(Priced {
            lines: priced.lines,
            total: Some(priced.total),
        }),
        _ => Err(field_errors(&refusals)),
    }
}

fn field_errors(refusals: &[Refusal]) -> Vec<FieldError> {
    refusals
        .iter()
        .map(|refusal| FieldError::new(refusal.field(), refusal.to_string()))
        .collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use shared::language::events::{ChangeMeta, MenuItem};
    pub use shared::testing::fixtures::{eur, line};

    pub fn consumer(version: u64, status: ConsumerStatus, limit: u64) -> ConsumerUpdated {
        ConsumerUpdated {
            meta: ChangeMeta::new(None),
            consumer_id: "consumer-1".into(),
            version,
            name: "Ada".into(),
            status,
            order_limit: Some(eur(limit)),
        }
    }

    pub fn restaurant(version: u64, accepting_orders: bool, price: u64) -> RestaurantUpdated {
        let item = |id: &str, amount, available| MenuItem {
            menu_item_id: id.into(),
            name: id.into(),
            price: eur(amount),
            available,
        };
        RestaurantUpdated {
            meta: ChangeMeta::new(None),
            restaurant_id: "restaurant-1".into(),
            version,
            name: "Ajanta".into(),
            accepting_orders,
            menu: vec![item("item-1", price, true), item("item-3", 399, false)],
        }
    }

    #[test]
    fn a_known_order_is_priced_line_by_line() {
        let known = Known {
            consumer: Some(consumer(1, ConsumerStatus::Active, 10_000)),
            restaurant: Some(restaurant(1, true, 1250)),
        };
        let priced = check("consumer-1", "restaurant-1", &[line("item-1", 2)], &known).unwrap();
        assert_eq!(priced.total, Some(eur(2500)));
        assert_eq!(priced.lines[0].price, Some(eur(1250)));
    }

    #[test]
    fn what_the_replica_does_not_know_is_accepted_unpriced() {
        let priced = check("c", "r", &[line("item-1", 2)], &Known::default()).unwrap();
        assert_eq!(priced.total, None);
        let only_consumer = Known {
            consumer: Some(consumer(1, ConsumerStatus::Active, 1)),
            restaurant: None,
        };
        assert!(check("consumer-1", "r", &[line("x", 1)], &only_consumer).is_ok());
    }

    #[test]
    fn every_reason_the_replica_proves_is_listed() {
        let known = Known {
            consumer: Some(consumer(1, ConsumerStatus::Suspended, 10_000)),
            restaurant: Some(restaurant(1, false, 1250)),
        };
        let lines = [line("item-9", 1), line("item-3", 1)];
        let fields: Vec<_> = check("consumer-1", "restaurant-1", &lines, &known)
            .unwrap_err()
            .into_iter()
            .map(|e| e.field)
            .collect();
        assert_eq!(
            fields,
            [
                "consumerId",
                "restaurantId",
                "lineItems[0].menuItemId",
                "lineItems[1].menuItemId"
            ]
        );
    }

    #[test]
    fn a_total_over_the_consumers_limit_is_refused() {
        let known = Known {
            consumer: Some(consumer(1, ConsumerStatus::Active, 2000)),
            restaurant: Some(restaurant(1, true, 1250)),
        };
        let errors = check("consumer-1", "restaurant-1", &[line("item-1", 2)], &known).unwrap_err();
        assert_eq!(
            errors[0].message,
            "order total 25.00 EUR is over consumer consumer-1's limit of 20.00 EUR"
        );
    }
}
