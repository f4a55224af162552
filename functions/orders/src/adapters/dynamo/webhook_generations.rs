//! Consumers' webhook secret generations, kept in the orders table (`WEBHOOK#<consumerId>`).

use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use shared::platform::aws_error::AwsError;

use super::{DynamoStore, to_item};
use crate::domain::webhook_secrets::Generations;
use crate::ports::orders::StoreError;
use crate::ports::webhook_generations::GenerationStore;

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
        let stored: Option<GenerationsItem> = self.orders.get(&webhook_key(consumer_id)).await?;
        Ok(stored.map(|item| item.generations).unwrap_or_default())
    }

    async fn rotate(
        &self,
        consumer_id: &str,
        now: DateTime<Utc>,
    ) -> Result<Generations, StoreError> {
        for attempt in 1..=ROTATE_ATTEMPTS {
            let read = self.generations(consumer_id).await?;
            let next = read.rotated(now);
            let item = to_item(GenerationsItem {
                pk: webhook_key(consumer_id),
                generations: next.clone(),
            })?;
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
                        shared::platform::backoff::wait(attempt).await
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

#[cfg(test)]
mod tests {
    use super::super::Item;
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
