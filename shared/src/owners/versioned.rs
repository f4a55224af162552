//! An owner's write path for the entities other contexts replicate (consumers, restaurants): the
//! entity is stored with a version, and the event carrying its whole new state is written to the
//! context's outbox in the same transaction, so a change is never stored unannounced nor
//! announced unstored. A write that finds the version moved on (a concurrent writer) tries again
//! from the new state.

use std::collections::HashMap;
use std::future::Future;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::language::outbox::OutboxRecord;
use crate::platform::aws_error::AwsError;
use crate::platform::table::{Table, TableError};

/// An entity its context owns and publishes: its state, its version, and the event of a change.
pub trait Entity: Serialize + DeserializeOwned + Clone + Send + Sync {
    fn version(&self) -> u64;
    fn set_version(&mut self, version: u64);
    /// The event announcing this state (the version already set), as an outbox record.
    fn changed(&self, correlation_id: Option<String>) -> Result<OutboxRecord, serde_json::Error>;
}

/// What a `put` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Created,
    Updated,
    /// The state sent is the state stored: no new version, no event.
    Unchanged,
}

#[derive(Debug, thiserror::Error)]
pub enum SaveError {
    #[error(transparent)]
    Table(#[from] TableError),
    #[error("event does not serialize: {0}")]
    Serialize(#[from] serde_json::Error),
    #[error("the item kept changing under this write ({0} attempts)")]
    Contended(u32),
    /// The change's event is over EventBridge's limit: it could never be published, so the
    /// change is refused rather than stored unannounced.
    #[error("the change's event is {bytes} bytes; EventBridge takes at most {limit}")]
    EventTooLarge { bytes: usize, limit: usize },
}

/// Where an owner keeps its entities and its outbox.
pub trait VersionedStore: Clone + Send + Sync + 'static {
    fn get<E: Entity>(
        &self,
        id: &str,
    ) -> impl Future<Output = Result<Option<E>, TableError>> + Send;
    /// Stores `entity` with its outbox record if the stored version is still `expected` (`None`:
    /// no item yet); `Ok(false)` when it is not.
    fn save<E: Entity>(
        &self,
        id: &str,
        entity: &E,
        expected: Option<u64>,
        outbox: &OutboxRecord,
    ) -> impl Future<Output = Result<bool, TableError>> + Send;
}

const ATTEMPTS: u32 = 3;

/// Makes `state` the entity's new state: version one more than the stored one, and its event.
pub async fn put<E: Entity, S: VersionedStore>(
    store: &S,
    id: &str,
    mut state: E,
    correlation_id: Option<String>,
) -> Result<(E, Outcome), SaveError> {
    for _ in 0..ATTEMPTS {
        let current: Option<E> = store.get(id).await?;
        let expected = current.as_ref().map(Entity::version);
        state.set_version(expected.unwrap_or(0));
        if let Some(current) = current
            && serde_json::to_value(&current)? == serde_json::to_value(&state)?
        {
            return Ok((current, Outcome::Unchanged));
        }
        state.set_version(expected.unwrap_or(0) + 1);
        let outbox = state.changed(correlation_id.clone())?;
        let entry = outbox.entry();
        if !entry.fits() {
            return Err(SaveError::EventTooLarge {
                bytes: entry.size(),
                limit: crate::platform::bus::MAX_BYTES_PER_CALL,
            });
        }
        if store.save(id, &state, expected, &outbox).await? {
            let outcome = if expected.is_none() {
                Outcome::Created
            } else {
                Outcome::Updated
            };
            return Ok((state, outcome));
        }
    }
    Err(SaveError::Contended(ATTEMPTS))
}

/// The DynamoDB adapter: the entity table (one string key) and the context's outbox table.
#[derive(Clone, Debug)]
pub struct DynamoVersionedStore {
    client: Client,
    table: Table,
    table_name: String,
    key: &'static str,
    outbox_table: String,
}

impl DynamoVersionedStore {
    /// Table names from the environment variables the template sets.
    pub fn from_env(
        config: &crate::platform::aws::SdkConfig,
        table_variable: &str,
        key: &'static str,
    ) -> Result<Self, crate::platform::aws::MissingEnv> {
        let table_name = crate::platform::aws::required_env(table_variable)?;
        let client = crate::platform::aws::dynamodb(config);
        Ok(Self {
            table: Table::new(client.clone(), table_name.clone(), key),
            client,
            table_name,
            key,
            outbox_table: crate::platform::aws::required_env("OUTBOX_TABLE")?,
        })
    }
}

fn to_item<T: Serialize>(value: &T) -> Result<HashMap<String, AttributeValue>, TableError> {
    serde_dynamo::to_item(value).map_err(TableError::Unencodable)
}

impl VersionedStore for DynamoVersionedStore {
    async fn get<E: Entity>(&self, id: &str) -> Result<Option<E>, TableError> {
        self.table.get(id).await
    }

    async fn save<E: Entity>(
        &self,
        id: &str,
        entity: &E,
        expected: Option<u64>,
        outbox: &OutboxRecord,
    ) -> Result<bool, TableError> {
        let mut put = Put::builder()
            .table_name(&self.table_name)
            .set_item(Some(to_item(entity)?))
            .expression_attribute_names("#key", self.key);
        put = match expected {
            None => put.condition_expression("attribute_not_exists(#key)"),
            Some(version) => put
                .condition_expression("attribute_exists(#key) AND version = :expected")
                .expression_attribute_values(":expected", AttributeValue::N(version.to_string())),
        };
        let event = Put::builder()
            .table_name(&self.outbox_table)
            .set_item(Some(to_item(outbox)?))
            .condition_expression("attribute_not_exists(eventId)");
        let built = |put: Put| TransactWriteItem::builder().put(put).build();
        let result = self
            .client
            .transact_write_items()
            .transact_items(built(put.build().map_err(unbuilt)?))
            .transact_items(built(event.build().map_err(unbuilt)?))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(error) => {
                let conflict = matches!(
                    error.as_service_error(),
                    Some(TransactWriteItemsError::TransactionCanceledException(canceled))
                        if canceled.cancellation_reasons().first().and_then(|r| r.code())
                            == Some("ConditionalCheckFailed")
                );
                if conflict {
                    tracing::info!(id, "version moved on under this write; reading again");
                    return Ok(false);
                }
                if let Some(TransactWriteItemsError::TransactionCanceledException(canceled)) =
                    error.as_service_error()
                {
                    let reasons: Vec<&str> = canceled
                        .cancellation_reasons()
                        .iter()
                        .filter_map(|r| r.code())
                        .collect();
                    return Err(AwsError::cancelled("DynamoDB.TransactWriteItems", &reasons).into());
                }
                Err(AwsError::from_sdk("DynamoDB.TransactWriteItems", error).into())
            }
        }
    }
}

fn unbuilt(error: aws_sdk_dynamodb::error::BuildError) -> TableError {
    AwsError::unbuilt("DynamoDB.TransactWriteItems", error).into()
}

/// An in-memory adapter for handler tests: entities as JSON, the outbox as a list.
#[cfg(any(test, feature = "testing"))]
#[derive(Clone, Default)]
pub struct MemoryVersionedStore {
    pub entities: std::sync::Arc<std::sync::Mutex<HashMap<String, serde_json::Value>>>,
    pub outbox: std::sync::Arc<std::sync::Mutex<Vec<OutboxRecord>>>,
}

#[cfg(any(test, feature = "testing"))]
impl VersionedStore for MemoryVersionedStore {
    async fn get<E: Entity>(&self, id: &str) -> Result<Option<E>, TableError> {
        let stored = self.entities.lock().unwrap().get(id).cloned();
        Ok(stored.map(|value| serde_json::from_value(value).expect("stored by save")))
    }

    async fn save<E: Entity>(
        &self,
        id: &str,
        entity: &E,
        expected: Option<u64>,
        outbox: &OutboxRecord,
    ) -> Result<bool, TableError> {
        let mut entities = self.entities.lock().unwrap();
        let stored = entities.get(id).and_then(|value| value["version"].as_u64());
        if stored != expected {
            return Ok(false);
        }
        entities.insert(id.to_owned(), serde_json::to_value(entity).unwrap());
        self.outbox.lock().unwrap().push(outbox.clone());
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::language::events::source;
    use chrono::Utc;
    use serde::Deserialize;
    use uuid::Uuid;

    #[derive(Debug, Clone, Serialize, Deserialize)]
    struct Note {
        text: String,
        version: u64,
    }

    impl Entity for Note {
        fn version(&self) -> u64 {
            self.version
        }

        fn set_version(&mut self, version: u64) {
            self.version = version;
        }

        fn changed(
            &self,
            correlation_id: Option<String>,
        ) -> Result<OutboxRecord, serde_json::Error> {
            Ok(OutboxRecord {
                event_id: Uuid::now_v7(),
                subject: "note-1".into(),
                order_id: None,
                source: source::CONSUMERS.into(),
                detail_type: "NoteUpdated".into(),
                detail: serde_json::to_string(self)?,
                created_at: Utc::now(),
                correlation_id,
                expires_at: 0,
            })
        }
    }

    #[tokio::test]
    async fn a_change_whose_event_eventbridge_would_refuse_is_not_stored() {
        let store = MemoryVersionedStore::default();
        let note = |chars| Note {
            text: "x".repeat(chars),
            version: 0,
        };
        let small = put(&store, "note-1", note(10), None).await.unwrap();
        assert_eq!(small.1, Outcome::Created);
        let error = put(
            &store,
            "note-1",
            note(crate::platform::bus::MAX_BYTES_PER_CALL),
            None,
        )
        .await
        .unwrap_err();
        assert!(
            matches!(error, SaveError::EventTooLarge { bytes, .. } if bytes > crate::platform::bus::MAX_BYTES_PER_CALL)
        );
        assert_eq!(store.outbox.lock().unwrap().len(), 1);
        let stored: Note = store.get("note-1").await.unwrap().unwrap();
        assert_eq!(stored.text.len(), 10);
    }
}
