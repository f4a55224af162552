//! The port to the replica of consumers and restaurants (`crate::domain::replica`).

use std::future::Future;

use crate::domain::replica::{Known, Replicated, consumer_key, restaurant_key};
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
    /// The entity under `key` (`consumer_key`, `restaurant_key`), if it is replicated.
    fn read(
        &self,
        key: String,
    ) -> impl Future<Output = Result<Option<Replicated>, StoreError>> + Send;
    /// What the replica knows of an order's consumer and restaurant, both read at once.
    fn lookup(
        &self,
        consumer_id: &str,
        restaurant_id: &str,
    ) -> impl Future<Output = Result<Known, StoreError>> + Send {
        let (consumer, restaurant) = (consumer_key(consumer_id), restaurant_key(restaurant_id));
        async move {
            let (consumer, restaurant) = tokio::join!(self.read(consumer), self.read(restaurant));
            Ok(Known {
                consumer: match consumer? {
                    Some(Replicated::Consumer(c)) => Some(c),
                    _ => None,
                },
                restaurant: match restaurant? {
                    Some(Replicated::Restaurant(r)) => Some(r),
                    _ => None,
                },
            })
        }
    }
}
