//! The order context's storage port: what the handlers need, whatever holds the data.

use std::future::Future;

use uuid::Uuid;

use crate::domain::Order;
use shared::aws_error::{AwsError, Classified, Retry};
use shared::outbox::OutboxRecord;

/// A client's `Idempotency-Key` and the fingerprint of the request it came with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyClaim {
    pub key: String,
    pub fingerprint: String,
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
    /// The call failed: whether a retry can help is the AWS error's to say.
    #[error(transparent)]
    Aws(#[from] AwsError),
    /// The writes kept colliding with others', or found an id taken that a retry makes anew.
    #[error("storage unsettled: {0}")]
    Unsettled(String),
    /// What is stored is not what this code writes: no retry will change that.
    #[error("stored item does not decode: {0}")]
    Corrupt(String),
}

impl Classified for StoreError {
    fn retry(&self) -> Retry {
        match self {
            StoreError::Aws(call) => call.retry(),
            StoreError::Unsettled(_) => Retry::Transient,
            StoreError::Corrupt(_) => Retry::Never,
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

#[cfg(test)]
pub mod memory {
    //! An in-memory store with the same atomicity, for handler tests.

    use std::collections::HashMap;
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::waits::{self, Lease, Taken, WaitSlots};
    use crate::webhooks::{GenerationStore, Generations};

    #[derive(Clone, Default)]
    pub struct MemoryStore {
        inner: Arc<Mutex<Inner>>,
    }

    #[derive(Default)]
    pub struct Inner {
        pub orders: HashMap<Uuid, Order>,
        pub outbox: Vec<OutboxRecord>,
        claims: HashMap<String, (String, Uuid)>,
        generations: HashMap<String, Generations>,
        pub waits: HashMap<(String, u32), Lease>,
        /// How often a slot was asked for, taken or not.
        pub wait_takes: usize,
    }

    impl WaitSlots for MemoryStore {
        async fn take(
            &self,
            caller: &str,
            now: chrono::DateTime<chrono::Utc>,
            until: chrono::DateTime<chrono::Utc>,
        ) -> Result<Taken, StoreError> {
            let mut inner = self.inner.lock().unwrap();
            inner.wait_takes += 1;
            let key = |slot| (caller.to_owned(), slot);
            let Some(slot) = waits::slots_from(0).find(|&slot| {
                inner
                    .waits
                    .get(&key(slot))
                    .is_none_or(|held| held.until < now)
            }) else {
                let free_at = inner
                    .waits
                    .iter()
                    .filter(|((holder, _), _)| holder == caller)
                    .map(|(_, held)| held.until)
                    .min()
                    .unwrap_or(until);
                return Ok(Taken::Full { free_at });
            };
            let lease = Lease {
                caller: caller.to_owned(),
                slot,
                id: Uuid::now_v7(),
                until,
            };
            inner.waits.insert(key(slot), lease.clone());
            Ok(Taken::Slot(lease))
        }

        async fn give_back(&self, lease: &Lease) -> Result<(), StoreError> {
            let mut inner = self.inner.lock().unwrap();
            let key = (lease.caller.clone(), lease.slot);
            if inner
                .waits
                .get(&key)
                .is_some_and(|held| held.id == lease.id)
            {
                inner.waits.remove(&key);
            }
            Ok(())
        }
    }

    impl GenerationStore for MemoryStore {
        async fn generations(&self, consumer_id: &str) -> Result<Generations, StoreError> {
            let inner = self.inner.lock().unwrap();
            Ok(inner
                .generations
                .get(consumer_id)
                .cloned()
                .unwrap_or_default())
        }

        async fn rotate(
            &self,
            consumer_id: &str,
            now: chrono::DateTime<chrono::Utc>,
        ) -> Result<Generations, StoreError> {
            let mut inner = self.inner.lock().unwrap();
            let next = inner
                .generations
                .get(consumer_id)
                .cloned()
                .unwrap_or_default()
                .rotated(now);
            inner
                .generations
                .insert(consumer_id.to_owned(), next.clone());
            Ok(next)
        }
    }

    impl MemoryStore {
        pub fn snapshot<T>(&self, read: impl FnOnce(&Inner) -> T) -> T {
            read(&self.inner.lock().unwrap())
        }
    }

    impl OrderStore for MemoryStore {
        async fn place(
            &self,
            order: &Order,
            outbox: &OutboxRecord,
            claim: Option<&IdempotencyClaim>,
        ) -> Result<Placement, StoreError> {
            let mut inner = self.inner.lock().unwrap();
            if let Some(claim) = claim {
                if let Some((fingerprint, order_id)) = inner.claims.get(&claim.key) {
                    return Ok(if *fingerprint == claim.fingerprint {
                        Placement::Replayed {
                            order_id: *order_id,
                        }
                    } else {
                        Placement::KeyReused
                    });
                }
                inner.claims.insert(
                    claim.key.clone(),
                    (claim.fingerprint.clone(), order.order_id),
                );
            }
            inner.orders.insert(order.order_id, order.clone());
            inner.outbox.push(outbox.clone());
            Ok(Placement::Placed)
        }

        async fn get(&self, order_id: Uuid) -> Result<Option<Order>, StoreError> {
            Ok(self.inner.lock().unwrap().orders.get(&order_id).cloned())
        }

        async fn claimed(&self, claim: &IdempotencyClaim) -> Result<Option<Placement>, StoreError> {
            let inner = self.inner.lock().unwrap();
            Ok(inner.claims.get(&claim.key).map(|(fingerprint, order_id)| {
                if *fingerprint == claim.fingerprint {
                    Placement::Replayed {
                        order_id: *order_id,
                    }
                } else {
                    Placement::KeyReused
                }
            }))
        }

        async fn save(
            &self,
            order: &Order,
            read_version: u64,
            outbox: Option<&OutboxRecord>,
        ) -> Result<Saved, StoreError> {
            let mut inner = self.inner.lock().unwrap();
            if inner.orders.get(&order.order_id).map(|o| o.version) != Some(read_version) {
                return Ok(Saved::Conflict);
            }
            inner.orders.insert(order.order_id, order.clone());
            inner.outbox.extend(outbox.cloned());
            Ok(Saved::Saved)
        }
    }
}
