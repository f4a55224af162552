//! The DynamoDB adapters of the order context's ports.
//!
//! Orders table: key `pk`. An order is `ORDER#<id>`; an idempotency claim is
//! `IDEMPOTENCY#<caller>#<key>`, the caller being its token's subject after its length (it expires through the table's TTL attribute `expiresAt`). No index:
//! every key belongs to one order or one request. A consumer whose webhook secret was rotated
//! has `WEBHOOK#<consumerId>`, its secret's generations (`webhook_generations`). A caller waiting on
//! an order holds `WAIT#<slot>#<subject>` meanwhile (`wait_slots`).
//! Outbox table: key `eventId`, one row per event, streamed to the relay.

use std::collections::HashMap;

use aws_sdk_dynamodb::error::BuildError;
use aws_sdk_dynamodb::types::AttributeValue;
use serde::Serialize;
use shared::platform::aws_error::AwsError;
use shared::platform::table::TableError;

use crate::ports::orders::StoreError;

pub mod orders;
pub mod replica;
pub mod wait_slots;
pub mod webhook_generations;

pub use orders::DynamoStore;
pub use replica::DynamoReplica;

type Item = HashMap<String, AttributeValue>;

fn unbuilt(operation: &'static str) -> impl Fn(BuildError) -> StoreError {
    move |error| AwsError::unbuilt(operation, error).into()
}

fn to_item<T: Serialize>(value: T) -> Result<Item, StoreError> {
    serde_dynamo::to_item(value).map_err(|e| TableError::Unencodable(e).into())
}
