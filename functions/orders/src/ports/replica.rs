//! The port to the replica of consumers and restaurants (`crate::domain::replica`).

use std::future::Future;

use crate::domain::replica::{Known, Replicated};
use crate::ports::orders::StoreError;

/// Whether an update changed the replica.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    Newer,
    /// The replica already holds this version or a newer one.
    Stale,
}

/// The port to the replica table.
pub trait ReplicaStore: Clone + Send + Sync + 'static {
    /// Stores `update` unless the replica already holds its version or a newer one.
    fn apply(
        &self,
        update: &Replicated,
    ) -> impl Future<Output = Result<Applied, StoreError>> + Send;
    /// What the replica knows of an order's consumer and restaurant.
    fn lookup(
        &self,
        consumer_id: &str,
        restaurant_id: &str,
    ) -> impl Future<Output = Result<Known, StoreError>> + Send;
}
