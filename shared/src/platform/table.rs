//! Reading one item by its key, decoded with `serde_dynamo`: how each context reads its own table.

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::AttributeValue;
use serde::de::DeserializeOwned;

use crate::platform::aws_error::{AwsError, Classified, Retry};

/// The error of every DynamoDB adapter in `shared`.
#[derive(Debug, thiserror::Error)]
pub enum TableError {
    #[error(transparent)]
    Call(#[from] AwsError),
    #[error("item in {table} does not decode: {error}")]
    Corrupt {
        table: String,
        error: serde_dynamo::Error,
    },
    #[error("value does not encode as an item: {0}")]
    Unencodable(serde_dynamo::Error),
}

impl Classified for TableError {
    /// A call is as the AWS error says; an item that does not decode never will.
    fn retry(&self) -> Retry {
        match self {
            TableError::Call(call) => call.retry(),
            TableError::Corrupt { .. } | TableError::Unencodable(_) => Retry::Never,
        }
    }
}

/// A table whose items are read by a single string key.
#[derive(Clone, Debug)]
pub struct Table {
    client: Client,
    name: String,
    key: &'static str,
}

impl Table {
    pub fn new(client: Client, name: String, key: &'static str) -> Self {
        Self { client, name, key }
    }

    /// The table whose name the template sets in the environment variable `name_variable`.
    pub fn from_env(
        config: &crate::platform::aws::SdkConfig,
        name_variable: &str,
        key: &'static str,
    ) -> Result<Self, crate::platform::aws::MissingEnv> {
        Ok(Self::new(
            crate::platform::aws::dynamodb(config),
            crate::platform::aws::required_env(name_variable)?,
            key,
        ))
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// A strongly consistent read of the item with this key.
    pub async fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, TableError> {
        self.read(key, true).await
    }

    /// An eventually consistent read: half the read capacity, for data that lags anyway.
    pub async fn get_eventually<T: DeserializeOwned>(
        &self,
        key: &str,
    ) -> Result<Option<T>, TableError> {
        self.read(key, false).await
    }

    /// `judge` of the item read eventually consistent (half the read units); when that verdict
    /// is not `settled`, `judge` of the item read again strongly consistent, so that a verdict
    /// that must not rest on a lagging read (a refusal, say) comes from the latest item.
    pub async fn judged<T: DeserializeOwned, V>(
        &self,
        key: &str,
        judge: impl Fn(Option<T>) -> V,
        settled: impl Fn(&V) -> bool,
    ) -> Result<V, TableError> {
        let verdict = judge(self.get_eventually(key).await?);
        if settled(&verdict) {
            return Ok(verdict);
        }
        Ok(judge(self.get(key).await?))
    }

    async fn read<T: DeserializeOwned>(
        &self,
        key: &str,
        consistent: bool,
    ) -> Result<Option<T>, TableError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.name)
            .key(self.key, AttributeValue::S(key.to_owned()))
            .consistent_read(consistent)
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("DynamoDB.GetItem", e))?;
        output
            .item
            .map(|item| {
                serde_dynamo::from_item(item).map_err(|error| TableError::Corrupt {
                    table: self.name.clone(),
                    error,
                })
            })
            .transpose()
    }
}
