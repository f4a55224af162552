//! The order context's replicas of consumers and restaurants: the other half of the pattern.
//! Their owners publish every change with the entity's whole state and version
//! (`ConsumerUpdated`, `RestaurantUpdated`); the replica keeps the newest version it has seen,
//! so duplicated and reordered events leave it at the latest state. `POST /orders` checks and
//! prices an order against it without calling anyone (`check`).

use std::future::Future;

use serde::{Deserialize, Serialize};
use shared::events::{ConsumerStatus, ConsumerUpdated, LineItem, Money, RestaurantUpdated};
use shared::menu::{self, LineProblem};
use shared::problem::FieldError;

use crate::store::StoreError;

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

/// Whether an update changed the replica.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    Newer,
    /// The replica already holds this version or a newer one.
    Stale,
}

/// The port to the replica table.
pub trait ReplicaStore: Clone + Send + Sync + 'static {
    /// Stores `update` unless the replica already holds its version or a newer one.
    fn apply(
        &self,
        update: &Replicated,
    ) -> impl Future<Output = Result<Applied, StoreError>> + Send;
    /// What the replica knows of an order's consumer and restaurant.
    fn lookup(
        &self,
        consumer_id: &str,
        restaurant_id: &str,
    ) -> impl Future<Output = Result<Known, StoreError>> + Send;
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
    let mut reasons = Vec::new();
    if let Some(consumer) = &known.consumer
        && consumer.status == ConsumerStatus::Suspended
    {
        reasons.push(FieldError::new(
            "consumerId",
            format!("consumer {consumer_id} is suspended"),
        ));
    }
    let Some(restaurant) = &known.restaurant else {
        return if reasons.is_empty() {
            Ok(Priced {
                lines: lines.to_vec(),
                total: None,
            })
        } else {
            Err(reasons)
        };
    };
    if !restaurant.accepting_orders {
        reasons.push(FieldError::new(
            "restaurantId",
            format!("restaurant {restaurant_id} is not accepting orders"),
        ));
    }
    let priced = match menu::price(&restaurant.menu, lines) {
        Ok(priced) => Some(priced),
        Err(unpriced) => {
            for (index, problem) in unpriced.problems {
                let id = &lines[index].menu_item_id;
                let message = match problem {
                    LineProblem::NotOnMenu => {
                        format!("menu item {id} is not on the menu of restaurant {restaurant_id}")
                    }
                    LineProblem::Unavailable => format!("menu item {id} is not available"),
                };
                reasons.push(FieldError::new(
                    format!("lineItems[{index}].menuItemId"),
                    message,
                ));
            }
            if unpriced.overflow {
                reasons.push(FieldError::new(
                    "lineItems",
                    "the order's total is too large to price",
                ));
            }
            None
        }
    };
    // The consumer context's own rule, on the replica's copy of the limit.
    if let (Some(priced), Some(consumer)) = (&priced, &known.consumer)
        && let Some(limit) = &consumer.order_limit
        && let Some(reason) = shared::events::over_limit(consumer_id, &priced.total, limit)
    {
        reasons.push(FieldError::new("lineItems", reason));
    }
    match priced {
        Some(priced) if reasons.is_empty() => Ok(Priced {
            lines: priced.lines,
            total: Some(priced.total),
        }),
        _ => Err(reasons),
    }
}

pub mod memory {
    //! The replica in memory, for handler tests.

    use std::collections::HashMap;
    use std::sync::{Arc, Mutex};

    use super::*;

    #[derive(Clone, Default)]
    pub struct MemoryReplica {
        pub entities: Arc<Mutex<HashMap<String, Replicated>>>,
    }

    impl ReplicaStore for MemoryReplica {
        async fn apply(&self, update: &Replicated) -> Result<Applied, StoreError> {
            let mut entities = self.entities.lock().unwrap();
            let key = update.key();
            if entities
                .get(&key)
                .is_some_and(|held| held.version() >= update.version())
            {
                return Ok(Applied::Stale);
            }
            entities.insert(key, update.clone());
            Ok(Applied::Newer)
        }

        async fn lookup(
            &self,
            consumer_id: &str,
            restaurant_id: &str,
        ) -> Result<Known, StoreError> {
            let entities = self.entities.lock().unwrap();
            Ok(Known {
                consumer: match entities.get(&consumer_key(consumer_id)) {
                    Some(Replicated::Consumer(c)) => Some(c.clone()),
                    _ => None,
                },
                restaurant: match entities.get(&restaurant_key(restaurant_id)) {
                    Some(Replicated::Restaurant(r)) => Some(r.clone()),
                    _ => None,
                },
            })
        }
    }
}

pub mod dynamo {
    //! The replica table (`REPLICAS_TABLE`): key `pk` (`CONSUMER#<id>`, `RESTAURANT#<id>`), the
    //! entity's `version`, and the owner's event whole under `entity`.

    use std::collections::HashMap;

    use aws_sdk_dynamodb::Client;
    use aws_sdk_dynamodb::operation::put_item::PutItemError;
    use aws_sdk_dynamodb::types::AttributeValue;
    use shared::aws_error::AwsError;

    use super::*;

    #[derive(Clone, Debug)]
    pub struct DynamoReplica {
        client: Client,
        table: String,
    }

    #[derive(Serialize, Deserialize)]
    struct Row {
        pk: String,
        version: u64,
        entity: Replicated,
    }

    impl DynamoReplica {
        pub fn from_env(config: &shared::aws::SdkConfig) -> Result<Self, shared::aws::MissingEnv> {
            Ok(Self {
                client: shared::aws::dynamodb(config),
                table: shared::aws::required_env("REPLICAS_TABLE")?,
            })
        }

        /// An eventually consistent read: the replica lags its owner anyway, and it costs half.
        async fn get(&self, key: String) -> Result<Option<Replicated>, StoreError> {
            let output = self
                .client
                .get_item()
                .table_name(&self.table)
                .key("pk", AttributeValue::S(key))
                .send()
                .await
                .map_err(|e| AwsError::from_sdk("DynamoDB.GetItem", e))?;
            output
                .item
                .map(|item| serde_dynamo::from_item::<_, Row>(item).map(|row| row.entity))
                .transpose()
                .map_err(|e| StoreError::Corrupt(e.to_string()))
        }
    }

    impl ReplicaStore for DynamoReplica {
        async fn apply(&self, update: &Replicated) -> Result<Applied, StoreError> {
            let row = Row {
                pk: update.key(),
                version: update.version(),
                entity: update.clone(),
            };
            let item: HashMap<String, AttributeValue> =
                serde_dynamo::to_item(&row).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            let result = self
                .client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(item))
                .condition_expression("attribute_not_exists(pk) OR version < :version")
                .expression_attribute_values(":version", AttributeValue::N(row.version.to_string()))
                .send()
                .await;
            match result {
                Ok(_) => Ok(Applied::Newer),
                Err(error) => match error.as_service_error() {
                    Some(PutItemError::ConditionalCheckFailedException(_)) => Ok(Applied::Stale),
                    _ => Err(AwsError::from_sdk("DynamoDB.PutItem", error).into()),
                },
            }
        }

        async fn lookup(
            &self,
            consumer_id: &str,
            restaurant_id: &str,
        ) -> Result<Known, StoreError> {
            let (consumer, restaurant) = tokio::join!(
                self.get(consumer_key(consumer_id)),
                self.get(restaurant_key(restaurant_id))
            );
            Ok(Known {
                consumer: match consumer? {
                    Some(Replicated::Consumer(c)) => Some(c),
                    _ => None,
                },
                restaurant: match restaurant? {
                    Some(Replicated::Restaurant(r)) => Some(r),
                    _ => None,
                },
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::memory::MemoryReplica;
    use super::*;
    use proptest::prelude::*;
    use shared::events::{ChangeMeta, MenuItem};

    pub fn eur(amount_minor: u64) -> Money {
        Money {
            currency: "EUR".into(),
            amount_minor,
        }
    }

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

    fn line(id: &str, quantity: u32) -> LineItem {
        LineItem {
            menu_item_id: id.into(),
            quantity,
            price: None,
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
            "order total 2500 EUR is over consumer consumer-1's limit of 2000 EUR"
        );
    }

    fn updates() -> impl Strategy<Value = Vec<Replicated>> {
        // Versions 1..=6 of one consumer and one restaurant, each state telling its version.
        let versions: Vec<Replicated> = (1..=6u64)
            .flat_map(|v| {
                [
                    Replicated::Consumer(consumer(v, ConsumerStatus::Active, v * 100)),
                    Replicated::Restaurant(restaurant(v, v % 2 == 0, v * 10)),
                ]
            })
            .collect();
        // Every update at least once, some twice, in any order.
        (
            Just(versions.clone()),
            proptest::collection::vec(0..versions.len(), 0..12),
        )
            .prop_flat_map(|(all, extra)| {
                let mut delivered = all.clone();
                delivered.extend(extra.into_iter().map(|i| all[i].clone()));
                Just(delivered).prop_shuffle()
            })
    }

    proptest! {
        /// Duplicated and reordered deliveries leave the replica at the latest version of each.
        #[test]
        fn the_replica_ends_at_the_latest_version_whatever_the_delivery(delivered in updates()) {
            let replica = MemoryReplica::default();
            let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
            runtime.block_on(async {
                for update in &delivered {
                    replica.apply(update).await.unwrap();
                }
                let known = replica.lookup("consumer-1", "restaurant-1").await.unwrap();
                prop_assert_eq!(known.consumer.map(|c| (c.version, c.order_limit)), Some((6, Some(eur(600)))));
                prop_assert_eq!(known.restaurant.map(|r| (r.version, r.menu[0].price.amount_minor)), Some((6, 60)));
                Ok(())
            })?;
        }
    }
}
