//! The replica in memory, for handler tests.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::domain::replica::Replicated;
use crate::ports::orders::StoreError;
use crate::ports::replica::{Applied, ReplicaStore};

#[derive(Clone, Default)]
pub struct MemoryReplica {
    pub entities: Arc<Mutex<HashMap<String, Replicated>>>,
}

impl ReplicaStore for MemoryReplica {
    async fn apply(&self, update: &Replicated) -> Result<Applied, StoreError> {
        let mut entities = self.entities.lock().unwrap();
        let key = update.key();
        if entities
            .get(&key)
            .is_some_and(|held| held.version() >= update.version())
        {
            return Ok(Applied::Stale);
        }
        entities.insert(key, update.clone());
        Ok(Applied::Newer)
    }

    async fn read(&self, key: String) -> Result<Option<Replicated>, StoreError> {
        Ok(self.entities.lock().unwrap().get(&key).cloned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::replica::tests::{consumer, eur, restaurant};
    use proptest::prelude::*;
    use shared::language::events::ConsumerStatus;

    fn updates() -> impl Strategy<Value = Vec<Replicated>> {
        // Versions 1..=6 of one consumer and one restaurant, each state telling its version.
        let versions: Vec<Replicated> = (1..=6u64)
            .flat_map(|v| {
                [
                    Replicated::Consumer(consumer(v, ConsumerStatus::Active, v * 100)),
                    Replicated::Restaurant(restaurant(v, v % 2 == 0, v * 10)),
                ]
            })
            .collect();
        // Every update at least once, some twice, in any order.
        (
            Just(versions.clone()),
            proptest::collection::vec(0..versions.len(), 0..12),
        )
            .prop_flat_map(|(all, extra)| {
                let mut delivered = all.clone();
                delivered.extend(extra.into_iter().map(|i| all[i].clone()));
                Just(delivered).prop_shuffle()
            })
    }

    proptest! {
        /// Duplicated and reordered deliveries leave the replica at the latest version of each.
        #[test]
        fn the_replica_ends_at_the_latest_version_whatever_the_delivery(delivered in updates()) {
            let replica = MemoryReplica::default();
            let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
            runtime.block_on(async {
                for update in &delivered {
                    replica.apply(update).await.unwrap();
                }
                let known = replica.lookup("consumer-1", "restaurant-1").await.unwrap();
                prop_assert_eq!(known.consumer.map(|c| (c.version, c.order_limit)), Some((6, Some(eur(600)))));
                prop_assert_eq!(known.restaurant.map(|r| (r.version, r.menu[0].price.amount_minor)), Some((6, 60)));
                Ok(())
            })?;
        }
    }
}
