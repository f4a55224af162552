//! An in-memory order store with the same atomicity, for handler tests.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

use uuid::Uuid;

use crate::domain::order::Order;
use crate::domain::webhook_secrets::Generations;
use crate::ports::orders::{IdempotencyClaim, OrderStore, Placement, Saved, StoreError};
use crate::ports::wait_slots::{self, Lease, Taken, WaitSlots};
use crate::ports::webhook_generations::GenerationStore;
use shared::language::outbox::OutboxRecord;

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
        let Some(slot) = wait_slots::slots_from(0).find(|&slot| {
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
                return Ok(claim.answer(fingerprint, *order_id));
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
        Ok(inner
            .claims
            .get(&claim.key)
            .map(|(fingerprint, order_id)| claim.answer(fingerprint, *order_id)))
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

/// One call of the order store changed, for a test of what DynamoDB can do and the memory store
/// does not (a lost race, a slow read, a throttled claim read); every other call is the memory
/// store's. The change is an `Alteration`, whose default for each call is the store's own.
#[derive(Clone, Default)]
pub struct Altered<A> {
    pub store: MemoryStore,
    pub alteration: A,
}

pub trait Alteration: Clone + Send + Sync + 'static {
    fn get(
        &self,
        store: &MemoryStore,
        order_id: Uuid,
    ) -> impl Future<Output = Result<Option<Order>, StoreError>> + Send {
        store.get(order_id)
    }

    fn claimed(
        &self,
        store: &MemoryStore,
        claim: &IdempotencyClaim,
    ) -> impl Future<Output = Result<Option<Placement>, StoreError>> + Send {
        store.claimed(claim)
    }

    fn save(
        &self,
        store: &MemoryStore,
        order: &Order,
        read_version: u64,
        outbox: Option<&OutboxRecord>,
    ) -> impl Future<Output = Result<Saved, StoreError>> + Send {
        store.save(order, read_version, outbox)
    }
}

impl<A: Alteration> OrderStore for Altered<A> {
    async fn place(
        &self,
        order: &Order,
        outbox: &OutboxRecord,
        claim: Option<&IdempotencyClaim>,
    ) -> Result<Placement, StoreError> {
        self.store.place(order, outbox, claim).await
    }

    async fn get(&self, order_id: Uuid) -> Result<Option<Order>, StoreError> {
        self.alteration.get(&self.store, order_id).await
    }

    async fn claimed(&self, claim: &IdempotencyClaim) -> Result<Option<Placement>, StoreError> {
        self.alteration.claimed(&self.store, claim).await
    }

    async fn save(
        &self,
        order: &Order,
        read_version: u64,
        outbox: Option<&OutboxRecord>,
    ) -> Result<Saved, StoreError> {
        self.alteration
            .save(&self.store, order, read_version, outbox)
            .await
    }
}

impl<A: Alteration> GenerationStore for Altered<A> {
    async fn generations(&self, consumer_id: &str) -> Result<Generations, StoreError> {
        self.store.generations(consumer_id).await
    }

    async fn rotate(
        &self,
        consumer_id: &str,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<Generations, StoreError> {
        self.store.rotate(consumer_id, now).await
    }
}

impl<A: Alteration> WaitSlots for Altered<A> {
    async fn take(
        &self,
        caller: &str,
        now: chrono::DateTime<chrono::Utc>,
        until: chrono::DateTime<chrono::Utc>,
    ) -> Result<Taken, StoreError> {
        self.store.take(caller, now, until).await
    }

    async fn give_back(&self, lease: &Lease) -> Result<(), StoreError> {
        self.store.give_back(lease).await
    }
}
