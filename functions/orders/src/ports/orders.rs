//! The order context's storage port: what the handlers need, whatever holds the data.

use std::future::Future;

use uuid::Uuid;

use crate::domain::order::Order;
use shared::language::outbox::OutboxRecord;
use shared::platform::aws_error::{AwsError, Classified, Retry};
use shared::platform::table::TableError;

/// A client's `Idempotency-Key` and the fingerprint of the request it came with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyClaim {
    pub key: String,
    pub fingerprint: String,
}

impl IdempotencyClaim {
    /// What this claim gets from the key when it is already held for `order_id` by a request
    /// with `held_fingerprint`: that order for the same request, a refusal for another.
    pub fn answer(&self, held_fingerprint: &str, order_id: Uuid) -> Placement {
        if held_fingerprint == self.fingerprint {
            Placement::Replayed { order_id }
        } else {
            Placement::KeyReused
        }
    }
}

/// The result of storing a new order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placement {
    /// The order and its outbox record were written together.
    Placed,
    /// The key was used before for the same request: that earlier order is the answer.
    Replayed { order_id: Uuid },
    /// The key was used before for a different request. Nothing was written.
    KeyReused,
}

/// The result of saving a changed order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Saved {
    Saved,
    /// Someone else changed the order since it was read, or was writing it at that moment:
    /// reload and decide again.
    Conflict,
}

/// The error of the order context's storage adapters.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A call failed, or an item does not decode: whether a retry can help is the table
    /// error's to say.
    #[error(transparent)]
    Table(#[from] TableError),
    /// The writes kept colliding with others', or found an id taken that a retry makes anew.
    #[error("storage unsettled: {0}")]
    Unsettled(String),
}

impl From<AwsError> for StoreError {
    fn from(call: AwsError) -> Self {
        StoreError::Table(TableError::Call(call))
    }
}

impl Classified for StoreError {
    fn retry(&self) -> Retry {
        match self {
            StoreError::Table(table) => table.retry(),
            StoreError::Unsettled(_) => Retry::Transient,
        }
    }
}

pub trait OrderStore: Clone + Send + Sync + 'static {
    /// Stores the new order and its outbox record atomically, and claims the idempotency key
    /// in the same write when there is one.
    fn place(
        &self,
        order: &Order,
        outbox: &OutboxRecord,
        claim: Option<&IdempotencyClaim>,
    ) -> impl Future<Output = Result<Placement, StoreError>> + Send;

    fn get(&self, order_id: Uuid)
    -> impl Future<Output = Result<Option<Order>, StoreError>> + Send;

    /// What a held idempotency key answers for `claim`: `Replayed` with its order for the same
    /// request, `KeyReused` for another; `None` when nobody holds it (or its window passed).
    fn claimed(
        &self,
        claim: &IdempotencyClaim,
    ) -> impl Future<Output = Result<Option<Placement>, StoreError>> + Send;

    /// Replaces the order if it is still at `read_version`, writing `outbox` in the same
    /// transaction when there is one.
    fn save(
        &self,
        order: &Order,
        read_version: u64,
        outbox: Option<&OutboxRecord>,
    ) -> impl Future<Output = Result<Saved, StoreError>> + Send;
}
