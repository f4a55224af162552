//! The replica table (`REPLICAS_TABLE`): key `pk` (`CONSUMER#<id>`, `RESTAURANT#<id>`), the
//! entity's `version`, and the owner's event whole under `entity`.

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::AttributeValue;
use serde::{Deserialize, Serialize};
use shared::platform::aws_error::AwsError;
use shared::platform::table::Table;

use super::to_item;

use crate::domain::replica::Replicated;
use crate::ports::orders::StoreError;
use crate::ports::replica::{Applied, ReplicaStore};

#[derive(Clone, Debug)]
pub struct DynamoReplica {
    client: Client,
    table: Table,
}

#[derive(Serialize, Deserialize)]
struct Row {
    pk: String,
    version: u64,
    entity: Replicated,
}

impl DynamoReplica {
    /// Reads the table name the template sets (`REPLICAS_TABLE`).
    pub fn from_env(client: Client) -> Result<Self, shared::platform::aws::MissingEnv> {
        let name = shared::platform::aws::required_env("REPLICAS_TABLE")?;
        Ok(Self {
            table: Table::new(client.clone(), name, "pk"),
            client,
        })
    }
}

impl ReplicaStore for DynamoReplica {
    async fn apply(&self, update: &Replicated) -> Result<Applied, StoreError> {
        let row = Row {
            pk: update.key(),
            version: update.version(),
            entity: update.clone(),
        };
        let item = to_item(&row)?;
        let result = self
            .client
            .put_item()
            .table_name(self.table.name())
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

    /// An eventually consistent read: the replica lags its owner anyway, and it costs half.
    async fn read(&self, key: String) -> Result<Option<Replicated>, StoreError> {
        let row: Option<Row> = self.table.get_eventually(&key).await?;
        Ok(row.map(|row| row.entity))
    }
}
