//! The DynamoDB adapter of the storage port.
//!
//! Orders table: key `pk`. An order is `ORDER#<id>`; an idempotency claim is
//! `IDEMPOTENCY#<key>` (it expires through the table's TTL attribute `expiresAt`). An order not
//! yet VALIDATED or REJECTED also carries `awaiting` and `placedAtMillis`, the keys of the sparse
//! index `awaiting-index`, so the oldest undecided order is one query away.
//! Outbox table: key `eventId`, one row per event, streamed to the relay.

use std::collections::HashMap;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem};
use chrono::{Duration, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::domain::Order;
use crate::outbox::OutboxRecord;
use shared::table::{Table, TableError};

use crate::store::{IdempotencyClaim, OrderStore, Placement, Saved, StoreError};

type Item = HashMap<String, AttributeValue>;

/// How long a client may retry with the same `Idempotency-Key`.
pub const IDEMPOTENCY_WINDOW: Duration = Duration::hours(24);

/// The sparse index of orders still awaiting a decision.
pub const AWAITING_INDEX: &str = "awaiting-index";
const AWAITING: &str = "AWAITING";

#[derive(Clone, Debug)]
pub struct DynamoStore {
    client: Client,
    orders: Table,
    orders_table: String,
    outbox_table: String,
}

enum Transaction {
    Committed,
    /// Cancelled because the conditions of these writes (by position) failed.
    ConditionFailed(Vec<usize>),
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ClaimItem {
    pk: String,
    order_id: Uuid,
    fingerprint: String,
    expires_at: i64,
}

fn order_key(order_id: Uuid) -> String {
    format!("ORDER#{order_id}")
}

fn claim_key(key: &str) -> String {
    format!("IDEMPOTENCY#{key}")
}

fn backend<E: std::error::Error + 'static>(error: E) -> StoreError {
    StoreError::Backend(aws_sdk_dynamodb::error::DisplayErrorContext(error).to_string())
}

fn corrupt(error: serde_dynamo::Error) -> StoreError {
    StoreError::Corrupt(error.to_string())
}

impl From<TableError> for StoreError {
    fn from(error: TableError) -> Self {
        match error {
            TableError::Call(message) => StoreError::Backend(message),
            corrupt @ TableError::Corrupt { .. } => StoreError::Corrupt(corrupt.to_string()),
        }
    }
}

/// A put that only creates: it fails if an item with the same key exists.
fn create(table: &str, key_attribute: &str, item: Item) -> Result<TransactWriteItem, StoreError> {
    let put = Put::builder()
        .table_name(table)
        .set_item(Some(item))
        .condition_expression("attribute_not_exists(#key)")
        .expression_attribute_names("#key", key_attribute)
        .build()
        .map_err(backend)?;
    Ok(TransactWriteItem::builder().put(put).build())
}

impl DynamoStore {
    pub fn new(client: Client, orders_table: String, outbox_table: String) -> Self {
        let orders = Table::new(client.clone(), orders_table.clone(), "pk");
        Self {
            client,
            orders,
            orders_table,
            outbox_table,
        }
    }

    /// Reads the table names the template sets (`ORDERS_TABLE`, `OUTBOX_TABLE`).
    pub fn from_env(config: &shared::aws::SdkConfig) -> Result<Self, shared::aws::MissingEnv> {
        Ok(Self::new(
            Client::new(config),
            shared::aws::required_env("ORDERS_TABLE")?,
            shared::aws::required_env("OUTBOX_TABLE")?,
        ))
    }

    fn order_item(order: &Order) -> Result<Item, StoreError> {
        let mut item: Item = serde_dynamo::to_item(order).map_err(corrupt)?;
        item.insert("pk".into(), AttributeValue::S(order_key(order.order_id)));
        if !order.status.is_terminal() {
            let placed_at = order
                .history
                .first()
                .map(|c| c.at.timestamp_millis())
                .unwrap_or_default();
            item.insert("awaiting".into(), AttributeValue::S(AWAITING.into()));
            item.insert(
                "placedAtMillis".into(),
                AttributeValue::N(placed_at.to_string()),
            );
        }
        Ok(item)
    }

    /// Runs the writes as one transaction; a cancellation by conditions names the writes whose
    /// condition failed.
    async fn transact(&self, writes: Vec<TransactWriteItem>) -> Result<Transaction, StoreError> {
        let result = self
            .client
            .transact_write_items()
            .set_transact_items(Some(writes))
            .send()
            .await;
        match result {
            Ok(_) => Ok(Transaction::Committed),
            Err(SdkError::ServiceError(failure)) => match failure.into_err() {
                TransactWriteItemsError::TransactionCanceledException(cancelled) => {
                    let failed: Vec<usize> = cancelled
                        .cancellation_reasons()
                        .iter()
                        .enumerate()
                        .filter(|(_, reason)| reason.code() == Some("ConditionalCheckFailed"))
                        .map(|(i, _)| i)
                        .collect();
                    if failed.is_empty() {
                        Err(backend(
                            TransactWriteItemsError::TransactionCanceledException(cancelled),
                        ))
                    } else {
                        Ok(Transaction::ConditionFailed(failed))
                    }
                }
                error => Err(backend(error)),
            },
            Err(error) => Err(backend(error)),
        }
    }

    /// When the oldest order still awaiting VALIDATED or REJECTED was placed, and its id.
    pub async fn oldest_awaiting(&self) -> Result<Option<(Uuid, i64)>, StoreError> {
        let found = self
            .client
            .query()
            .table_name(&self.orders_table)
            .index_name(AWAITING_INDEX)
            .key_condition_expression("awaiting = :awaiting")
            .expression_attribute_values(":awaiting", AttributeValue::S(AWAITING.into()))
            .scan_index_forward(true)
            .limit(1)
            .send()
            .await
            .map_err(backend)?;
        // The index projects keys only: the order id is read back out of `pk`.
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Awaiting {
            pk: String,
            placed_at_millis: i64,
        }
        let Some(item) = found.items().first() else {
            return Ok(None);
        };
        let awaiting: Awaiting = serde_dynamo::from_item(item.clone()).map_err(corrupt)?;
        let order_id = awaiting
            .pk
            .strip_prefix("ORDER#")
            .and_then(|id| Uuid::parse_str(id).ok())
            .ok_or_else(|| {
                StoreError::Corrupt(format!(
                    "{} in {AWAITING_INDEX} is no order key",
                    awaiting.pk
                ))
            })?;
        Ok(Some((order_id, awaiting.placed_at_millis)))
    }

    async fn existing_claim(&self, claim: &IdempotencyClaim) -> Result<Placement, StoreError> {
        let stored: ClaimItem =
            self.orders
                .get(&claim_key(&claim.key))
                .await?
                .ok_or_else(|| {
                    StoreError::Backend("idempotency claim conflicted but cannot be read".into())
                })?;
        Ok(if stored.fingerprint == claim.fingerprint {
            Placement::Replayed {
                order_id: stored.order_id,
            }
        } else {
            Placement::KeyReused
        })
    }
}

impl OrderStore for DynamoStore {
    async fn place(
        &self,
        order: &Order,
        outbox: &OutboxRecord,
        claim: Option<&IdempotencyClaim>,
    ) -> Result<Placement, StoreError> {
        let mut writes = vec![
            create(&self.orders_table, "pk", Self::order_item(order)?)?,
            create(
                &self.outbox_table,
                "eventId",
                serde_dynamo::to_item(outbox).map_err(corrupt)?,
            )?,
        ];
        if let Some(claim) = claim {
            let item = ClaimItem {
                pk: claim_key(&claim.key),
                order_id: order.order_id,
                fingerprint: claim.fingerprint.clone(),
                expires_at: (Utc::now() + IDEMPOTENCY_WINDOW).timestamp(),
            };
            writes.push(create(
                &self.orders_table,
                "pk",
                serde_dynamo::to_item(item).map_err(corrupt)?,
            )?);
        }
        match (self.transact(writes).await?, claim) {
            (Transaction::Committed, _) => Ok(Placement::Placed),
            // The claim is the third write; its condition failing means the key is taken.
            (Transaction::ConditionFailed(failed), Some(claim)) if failed.contains(&2) => {
                self.existing_claim(claim).await
            }
            (Transaction::ConditionFailed(failed), _) => Err(StoreError::Backend(format!(
                "a new order's id or event id already exists (writes {failed:?})"
            ))),
        }
    }

    async fn save(
        &self,
        order: &Order,
        read_version: u64,
        outbox: Option<&OutboxRecord>,
    ) -> Result<Saved, StoreError> {
        let put = Put::builder()
            .table_name(&self.orders_table)
            .set_item(Some(Self::order_item(order)?))
            .condition_expression("version = :read")
            .expression_attribute_values(":read", AttributeValue::N(read_version.to_string()))
            .build()
            .map_err(backend)?;
        let mut writes = vec![TransactWriteItem::builder().put(put).build()];
        if let Some(outbox) = outbox {
            let item = serde_dynamo::to_item(outbox).map_err(corrupt)?;
            writes.push(create(&self.outbox_table, "eventId", item)?);
        }
        match self.transact(writes).await? {
            Transaction::Committed => Ok(Saved::Saved),
            // The order is the first write: its version moved on since it was read.
            Transaction::ConditionFailed(failed) if failed.contains(&0) => Ok(Saved::Conflict),
            Transaction::ConditionFailed(failed) => Err(StoreError::Backend(format!(
                "an outbox event id already exists (writes {failed:?})"
            ))),
        }
    }

    async fn get(&self, order_id: Uuid) -> Result<Option<Order>, StoreError> {
        let found = self
            .client
            .get_item()
            .table_name(&self.orders_table)
            .key("pk", AttributeValue::S(order_key(order_id)))
            .consistent_read(true)
            .send()
            .await
            .map_err(backend)?;
        found
            .item
            .map(|item| serde_dynamo::from_item(item).map_err(corrupt))
            .transpose()
    }
}
