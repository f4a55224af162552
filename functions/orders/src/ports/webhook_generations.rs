//! Where each consumer's webhook secret generations are kept (`crate::domain::webhook_secrets`).

use std::future::Future;

use chrono::{DateTime, Utc};

use crate::domain::webhook_secrets::Generations;
use crate::ports::orders::StoreError;

/// Where each consumer's generations are kept (the orders table, one item per rotated
/// consumer).
pub trait GenerationStore: Send + Sync {
    fn generations(
        &self,
        consumer_id: &str,
    ) -> impl Future<Output = Result<Generations, StoreError>> + Send;

    /// Moves the consumer to its next generation at `now` and answers the new generations.
    fn rotate(
        &self,
        consumer_id: &str,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<Generations, StoreError>> + Send;
}
