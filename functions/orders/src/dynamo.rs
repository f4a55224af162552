//! The DynamoDB adapter of the storage port.
//!
//! Orders table: key `pk`. An order is `ORDER#<id>`; an idempotency claim is
//! `IDEMPOTENCY#<caller>#<key>`, the caller being its token's subject after its length (it expires through the table's TTL attribute `expiresAt`). No index:
//! every key belongs to one order or one request. A consumer whose webhook secret was rotated
//! has `WEBHOOK#<consumerId>`, its secret's generations (`crate::webhooks`). A caller waiting on
//! an order holds `WAIT#<slot>#<subject>` meanwhile (`crate::waits`).
//! Outbox table: key `eventId`, one row per event, streamed to the relay.

use std::collections::HashMap;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::BuildError;
use aws_sdk_dynamodb::operation::delete_item::DeleteItemError;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeValue, Put, ReturnValuesOnConditionCheckFailure, TransactWriteItem,
};
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::domain::Order;
use shared::aws_error::AwsError;
use shared::outbox::OutboxRecord;

use crate::store::{IdempotencyClaim, OrderStore, Placement, Saved, StoreError};
use crate::waits::{self, Lease, Taken, WaitSlots};
use crate::webhooks::{GenerationStore, Generations};

type Item = HashMap<String, AttributeValue>;

/// How long a client may retry with the same `Idempotency-Key`.
pub const IDEMPOTENCY_WINDOW: Duration = Duration::hours(24);

#[derive(Clone, Debug)]
pub struct DynamoStore {
    client: Client,
    orders_table: String,
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

fn unbuilt(operation: &'static str) -> impl Fn(BuildError) -> StoreError {
    move |error| AwsError::unbuilt(operation, error).into()
}

fn corrupt(error: serde_dynamo::Error) -> StoreError {
    StoreError::Corrupt(error.to_string())
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
            client,
            orders_table,
            outbox_table,
        }
    }

    /// Reads the table names the template sets (`ORDERS_TABLE`, `OUTBOX_TABLE`).
    pub fn from_env(config: &shared::aws::SdkConfig) -> Result<Self, shared::aws::MissingEnv> {
        Ok(Self::new(
            shared::aws::dynamodb(config),
            shared::aws::required_env("ORDERS_TABLE")?,
            shared::aws::required_env("OUTBOX_TABLE")?,
        ))
    }

    fn order_item(order: &Order) -> Result<Item, StoreError> {
        let mut item: Item = serde_dynamo::to_item(order).map_err(corrupt)?;
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
        claim: &IdempotencyClaim,
        stored: Option<Item>,
    ) -> Result<Placement, StoreError> {
        let stored: ClaimItem = serde_dynamo::from_item(stored.ok_or_else(|| {
            StoreError::Unsettled("a refused idempotency claim came back without its item".into())
        })?)
        .map_err(corrupt)?;
        Ok(if stored.fingerprint == claim.fingerprint {
            Placement::Replayed {
                order_id: stored.order_id,
            }
        } else {
            Placement::KeyReused
        })
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
            .set_item(Some(serde_dynamo::to_item(item).map_err(corrupt)?))
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
            create(
                &self.outbox_table,
                "eventId",
                serde_dynamo::to_item(outbox).map_err(corrupt)?,
            )?,
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
                        (Some((_, stored)), Some(claim)) => Self::existing_claim(claim, stored),
                        _ => Err(StoreError::Unsettled(
                            "a new order's id or event id already exists".into(),
                        )),
                    };
                }
                // Another request with the same key is being written: once it commits, this
                // one finds its claim and answers with its order.
                Transaction::Conflicted => crate::backoff::wait(attempt).await,
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
            create(
                &self.outbox_table,
                "eventId",
                serde_dynamo::to_item(outbox).map_err(corrupt)?,
            )?,
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
        let found = self
            .client
            .get_item()
            .table_name(&self.orders_table)
            .key("pk", AttributeValue::S(claim_key(&claim.key)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("DynamoDB.GetItem", e))?;
        let Some(item) = found.item else {
            return Ok(None);
        };
        let stored: ClaimItem = serde_dynamo::from_item(item).map_err(corrupt)?;
        if stored.expires_at <= Utc::now().timestamp() {
            return Ok(None);
        }
        Self::existing_claim(claim, Some(serde_dynamo::to_item(stored).map_err(corrupt)?)).map(Some)
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
            .map_err(|e| AwsError::from_sdk("DynamoDB.GetItem", e))?;
        found
            .item
            .map(|item| serde_dynamo::from_item(item).map_err(corrupt))
            .transpose()
    }
}

/// How often a rotation is tried when another rotation of the same consumer wins the race.
const ROTATE_ATTEMPTS: u32 = 3;

#[derive(Serialize, Deserialize)]
struct GenerationsItem {
    pk: String,
    #[serde(flatten)]
    generations: Generations,
}

fn webhook_key(consumer_id: &str) -> String {
    format!("WEBHOOK#{consumer_id}")
}

impl GenerationStore for DynamoStore {
    async fn generations(&self, consumer_id: &str) -> Result<Generations, StoreError> {
        let found = self
            .client
            .get_item()
            .table_name(&self.orders_table)
            .key("pk", AttributeValue::S(webhook_key(consumer_id)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("DynamoDB.GetItem", e))?;
        Ok(match found.item {
            Some(item) => {
                serde_dynamo::from_item::<_, GenerationsItem>(item)
                    .map_err(corrupt)?
                    .generations
            }
            None => Generations::default(),
        })
    }

    async fn rotate(
        &self,
        consumer_id: &str,
        now: DateTime<Utc>,
    ) -> Result<Generations, StoreError> {
        for attempt in 1..=ROTATE_ATTEMPTS {
            let read = self.generations(consumer_id).await?;
            let next = read.rotated(now);
            let item = serde_dynamo::to_item(GenerationsItem {
                pk: webhook_key(consumer_id),
                generations: next.clone(),
            })
            .map_err(corrupt)?;
            let result = self
                .client
                .put_item()
                .table_name(&self.orders_table)
                .set_item(Some(item))
                .condition_expression("attribute_not_exists(pk) OR #current = :read")
                .expression_attribute_names("#current", "current")
                .expression_attribute_values(":read", AttributeValue::N(read.current.to_string()))
                .send()
                .await;
            match result {
                Ok(_) => return Ok(next),
                Err(error) => match error.as_service_error() {
                    // Rotated by someone else since the read: rotate from theirs.
                    Some(PutItemError::ConditionalCheckFailedException(_)) => {
                        crate::backoff::wait(attempt).await
                    }
                    _ => return Err(AwsError::from_sdk("DynamoDB.PutItem", error).into()),
                },
            }
        }
        Err(StoreError::Unsettled(format!(
            "the webhook secret of {consumer_id} was rotated by others {ROTATE_ATTEMPTS} times meanwhile"
        )))
    }
}

fn wait_key(slot: u32, caller: &str) -> String {
    format!("WAIT#{slot}#{caller}")
}

impl WaitSlots for DynamoStore {
    async fn take(
        &self,
        caller: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<Taken, StoreError> {
        let id = Uuid::now_v7();
        // When the first held slot frees: read from each refused put's item (ALL_OLD).
        let mut free_at = until;
        for slot in waits::slots_from(fastrand::u32(..waits::MAX_WAITS_PER_CALLER)) {
            let result = self
                .client
                .put_item()
                .table_name(&self.orders_table)
                .item("pk", AttributeValue::S(wait_key(slot, caller)))
                .item("lease", AttributeValue::S(id.to_string()))
                .item(
                    "until",
                    AttributeValue::N(until.timestamp_millis().to_string()),
                )
                // The table's TTL removes a slot whose holder never gave it back.
                .item(
                    "expiresAt",
                    AttributeValue::N((until.timestamp() + 3600).to_string()),
                )
                .condition_expression("attribute_not_exists(pk) OR #until < :now")
                .expression_attribute_names("#until", "until")
                .expression_attribute_values(
                    ":now",
                    AttributeValue::N(now.timestamp_millis().to_string()),
                )
                .return_values_on_condition_check_failure(
                    ReturnValuesOnConditionCheckFailure::AllOld,
                )
                .send()
                .await;
            match result {
                Ok(_) => {
                    return Ok(Taken::Slot(Lease {
                        caller: caller.to_owned(),
                        slot,
                        id,
                        until,
                    }));
                }
                Err(error) => match error.as_service_error() {
                    Some(PutItemError::ConditionalCheckFailedException(held)) => {
                        let held_until = held
                            .item()
                            .and_then(|item| item.get("until"))
                            .and_then(|until| until.as_n().ok())
                            .and_then(|ms| ms.parse().ok())
                            .and_then(DateTime::from_timestamp_millis);
                        free_at = free_at.min(held_until.unwrap_or(until));
                    }
                    _ => return Err(AwsError::from_sdk("DynamoDB.PutItem", error).into()),
                },
            }
        }
        Ok(Taken::Full { free_at })
    }

    async fn give_back(&self, lease: &Lease) -> Result<(), StoreError> {
        let result = self
            .client
            .delete_item()
            .table_name(&self.orders_table)
            .key("pk", AttributeValue::S(wait_key(lease.slot, &lease.caller)))
            .condition_expression("#lease = :lease")
            .expression_attribute_names("#lease", "lease")
            .expression_attribute_values(":lease", AttributeValue::S(lease.id.to_string()))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            // Taken over after this lease ran out: the slot is another request's now.
            Err(error)
                if matches!(
                    error.as_service_error(),
                    Some(DeleteItemError::ConditionalCheckFailedException(_))
                ) =>
            {
                Ok(())
            }
            Err(error) => Err(AwsError::from_sdk("DynamoDB.DeleteItem", error).into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_consumers_generations_are_the_attributes_the_rotation_condition_reads() {
        let generations = Generations::default()
            .rotated(Utc::now())
            .rotated(Utc::now());
        let item: Item = serde_dynamo::to_item(GenerationsItem {
            pk: webhook_key("consumer-1"),
            generations: generations.clone(),
        })
        .unwrap();
        let mut names: Vec<&str> = item.keys().map(String::as_str).collect();
        names.sort();
        assert_eq!(names, ["current", "pk", "previous"]);
        assert_eq!(item["current"], AttributeValue::N("3".into()));
        let read: GenerationsItem = serde_dynamo::from_item(item).unwrap();
        assert_eq!(read.generations, generations);
    }
}
