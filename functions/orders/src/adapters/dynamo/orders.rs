//! The orders and outbox tables as the order store (`crate::ports::orders`).

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeValue, Put, ReturnValuesOnConditionCheckFailure, TransactWriteItem,
};
use chrono::{Duration, Utc};
use serde::{Deserialize, Serialize};
use shared::language::outbox::OutboxRecord;
use shared::platform::aws_error::AwsError;
use shared::platform::table::{Table, TableError};
use uuid::Uuid;

use super::{Item, to_item, unbuilt};
use crate::domain::order::Order;
use crate::ports::orders::{IdempotencyClaim, OrderStore, Placement, Saved, StoreError};

/// How long a client may retry with the same `Idempotency-Key`.
pub const IDEMPOTENCY_WINDOW: Duration = Duration::hours(24);

#[derive(Clone, Debug)]
pub struct DynamoStore {
    pub(super) client: Client,
    /// The orders table, read by its key `pk`.
    pub(super) orders: Table,
    pub(super) orders_table: String,
    outbox_table: String,
}

enum Transaction {
    Committed,
    /// Cancelled because the conditions of these writes (by position) failed; each comes with
    /// the item as it was, for the writes that asked for it.
    ConditionFailed(Vec<(usize, Option<Item>)>),
    /// Cancelled because another transaction or write was working on one of the items.
    Conflicted,
}

/// How often a new order's transaction is tried when it collides with another writer (the
/// same `Idempotency-Key` sent twice at once) before the client is asked to retry.
const PLACE_ATTEMPTS: u32 = 6;

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

/// A put that only creates: it fails if an item with the same key exists.
fn create(table: &str, key_attribute: &str, item: Item) -> Result<TransactWriteItem, StoreError> {
    let put = Put::builder()
        .table_name(table)
        .set_item(Some(item))
        .condition_expression("attribute_not_exists(#key)")
        .expression_attribute_names("#key", key_attribute)
        .build()
        .map_err(unbuilt("DynamoDB.TransactWriteItems"))?;
    Ok(TransactWriteItem::builder().put(put).build())
}

impl DynamoStore {
    pub fn new(client: Client, orders_table: String, outbox_table: String) -> Self {
        Self {
            orders: Table::new(client.clone(), orders_table.clone(), "pk"),
            client,
            orders_table,
            outbox_table,
        }
    }

    /// Reads the table names the template sets (`ORDERS_TABLE`, `OUTBOX_TABLE`).
    pub fn from_env(client: Client) -> Result<Self, shared::platform::aws::MissingEnv> {
        Ok(Self::new(
            client,
            shared::platform::aws::required_env("ORDERS_TABLE")?,
            shared::platform::aws::required_env("OUTBOX_TABLE")?,
        ))
    }

    fn order_item(order: &Order) -> Result<Item, StoreError> {
        let mut item = to_item(order)?;
        item.insert("pk".into(), AttributeValue::S(order_key(order.order_id)));
        Ok(item)
    }

    /// Runs the writes as one transaction; a cancellation says whether conditions failed
    /// (naming the writes) or another writer held an item at that moment.
    async fn transact(&self, writes: Vec<TransactWriteItem>) -> Result<Transaction, StoreError> {
        let result = self
            .client
            .transact_write_items()
            .set_transact_items(Some(writes))
            .send()
            .await;
        let cancelled = match result {
            Ok(_) => return Ok(Transaction::Committed),
            Err(error) => match error.as_service_error() {
                Some(TransactWriteItemsError::TransactionCanceledException(cancelled)) => {
                    cancelled.clone()
                }
                _ => return Err(AwsError::from_sdk("DynamoDB.TransactWriteItems", error).into()),
            },
        };
        let reasons = cancelled.cancellation_reasons();
        let failed: Vec<(usize, Option<Item>)> = reasons
            .iter()
            .enumerate()
            .filter(|(_, reason)| reason.code() == Some("ConditionalCheckFailed"))
            .map(|(i, reason)| (i, reason.item().cloned()))
            .collect();
        if !failed.is_empty() {
            Ok(Transaction::ConditionFailed(failed))
        } else if reasons
            .iter()
            .any(|reason| reason.code() == Some("TransactionConflict"))
        {
            Ok(Transaction::Conflicted)
        } else {
            // Cancelled for another reason (throttled, a validation error): as its codes say.
            let codes: Vec<&str> = reasons.iter().filter_map(|r| r.code()).collect();
            Err(AwsError::cancelled("DynamoDB.TransactWriteItems", &codes).into())
        }
    }

    /// Replaces one order if it is still at `read_version`: a conditional put, half the write
    /// capacity of a transaction.
    async fn put_if_unchanged(
        &self,
        order: &Order,
        read_version: u64,
    ) -> Result<Saved, StoreError> {
        let result = self
            .client
            .put_item()
            .table_name(&self.orders_table)
            .set_item(Some(Self::order_item(order)?))
            .condition_expression("version = :read")
            .expression_attribute_values(":read", AttributeValue::N(read_version.to_string()))
            .send()
            .await;
        match result {
            Ok(_) => Ok(Saved::Saved),
            Err(error) => match error.as_service_error() {
                Some(
                    PutItemError::ConditionalCheckFailedException(_)
                    | PutItemError::TransactionConflictException(_),
                ) => Ok(Saved::Conflict),
                _ => Err(AwsError::from_sdk("DynamoDB.PutItem", error).into()),
            },
        }
    }

    /// The answer for a key that is already claimed, from the claim as the failed write saw it.
    fn existing_claim(
        &self,
        claim: &IdempotencyClaim,
        stored: Option<Item>,
    ) -> Result<Placement, StoreError> {
        let stored = stored.ok_or_else(|| {
            StoreError::Unsettled("a refused idempotency claim came back without its item".into())
        })?;
        let stored: ClaimItem =
            serde_dynamo::from_item(stored).map_err(|error| TableError::Corrupt {
                table: self.orders_table.clone(),
                error,
            })?;
        Ok(claim.answer(&stored.fingerprint, stored.order_id))
    }

    /// The claim of an `Idempotency-Key`: it takes the key if nobody holds it, or if the
    /// holder's window has passed (TTL deletes expired items only eventually, up to days late).
    fn claim_write(
        &self,
        order_id: Uuid,
        claim: &IdempotencyClaim,
    ) -> Result<TransactWriteItem, StoreError> {
        let now = Utc::now();
        let item = ClaimItem {
            pk: claim_key(&claim.key),
            order_id,
            fingerprint: claim.fingerprint.clone(),
            expires_at: (now + IDEMPOTENCY_WINDOW).timestamp(),
        };
        let put = Put::builder()
            .table_name(&self.orders_table)
            .set_item(Some(to_item(item)?))
            .condition_expression("attribute_not_exists(pk) OR expiresAt <= :now")
            .expression_attribute_values(":now", AttributeValue::N(now.timestamp().to_string()))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .build()
            .map_err(unbuilt("DynamoDB.TransactWriteItems"))?;
        Ok(TransactWriteItem::builder().put(put).build())
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
            create(&self.outbox_table, "eventId", to_item(outbox)?)?,
        ];
        if let Some(claim) = claim {
            writes.push(self.claim_write(order.order_id, claim)?);
        }
        for attempt in 1..=PLACE_ATTEMPTS {
            match self.transact(writes.clone()).await? {
                Transaction::Committed => return Ok(Placement::Placed),
                Transaction::ConditionFailed(failed) => {
                    // The claim is the third write; its condition failing means the key is
                    // taken, and the claim as it stands came back with the failure.
                    return match (failed.into_iter().find(|(i, _)| *i == 2), claim) {
                        (Some((_, stored)), Some(claim)) => self.existing_claim(claim, stored),
                        _ => Err(StoreError::Unsettled(
                            "a new order's id or event id already exists".into(),
                        )),
                    };
                }
                // Another request with the same key is being written: once it commits, this
                // one finds its claim and answers with its order.
                Transaction::Conflicted => shared::platform::backoff::wait(attempt).await,
            }
        }
        Err(StoreError::Unsettled(format!(
            "the new order's transaction conflicted {PLACE_ATTEMPTS} times"
        )))
    }

    async fn save(
        &self,
        order: &Order,
        read_version: u64,
        outbox: Option<&OutboxRecord>,
    ) -> Result<Saved, StoreError> {
        let Some(outbox) = outbox else {
            return self.put_if_unchanged(order, read_version).await;
        };
        let put = Put::builder()
            .table_name(&self.orders_table)
            .set_item(Some(Self::order_item(order)?))
            .condition_expression("version = :read")
            .expression_attribute_values(":read", AttributeValue::N(read_version.to_string()))
            .build()
            .map_err(unbuilt("DynamoDB.TransactWriteItems"))?;
        let writes = vec![
            TransactWriteItem::builder().put(put).build(),
            create(&self.outbox_table, "eventId", to_item(outbox)?)?,
        ];
        match self.transact(writes).await? {
            Transaction::Committed => Ok(Saved::Saved),
            // The order is the first write: its version moved on since it was read.
            Transaction::ConditionFailed(failed) if failed.iter().any(|(i, _)| *i == 0) => {
                Ok(Saved::Conflict)
            }
            Transaction::ConditionFailed(_) => Err(StoreError::Unsettled(
                "an outbox event id already exists".into(),
            )),
            Transaction::Conflicted => Ok(Saved::Conflict),
        }
    }

    async fn claimed(&self, claim: &IdempotencyClaim) -> Result<Option<Placement>, StoreError> {
        let stored: Option<ClaimItem> = self.orders.get(&claim_key(&claim.key)).await?;
        Ok(stored
            .filter(|stored| stored.expires_at > Utc::now().timestamp())
            .map(|stored| claim.answer(&stored.fingerprint, stored.order_id)))
    }

    async fn get(&self, order_id: Uuid) -> Result<Option<Order>, StoreError> {
        Ok(self.orders.get(&order_key(order_id)).await?)
    }
}
