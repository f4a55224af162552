//! The wait slots (`crate::ports::wait_slots`), kept in the orders table (`WAIT#<slot>#<caller>`).

use aws_sdk_dynamodb::operation::delete_item::DeleteItemError;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValuesOnConditionCheckFailure};
use chrono::{DateTime, Utc};
use shared::platform::aws_error::AwsError;
use uuid::Uuid;

use super::DynamoStore;
use crate::ports::orders::StoreError;
use crate::ports::wait_slots::{self, Lease, MAX_WAITS_PER_CALLER, Taken, WaitSlots};

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
        for slot in wait_slots::slots_from(fastrand::u32(..MAX_WAITS_PER_CALLER)) {
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
