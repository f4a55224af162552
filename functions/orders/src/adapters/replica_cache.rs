//! The replica read through a cache of the instance's own, for `POST /orders`.
//!
//! Every order reads its consumer and its restaurant; a popular restaurant is read by every
//! order for it, by every instance. Entities found are kept for at most the cache's lifetime
//! (`REPLICA_CACHE_SECONDS`, the template's `ReplicaCacheSeconds`), so the replica's reads fall
//! to one per entity, lifetime and instance, and one restaurant's partition stops being the
//! first cap on orders per second. Its size is bounded in bytes, not entities: menus differ.
//!
//! What staleness can do is bounded by the lifetime and decided by the validators: the replica
//! already lags its owner (an event, a queue, a write), the owners' contexts validate every
//! order against their own tables, and a price changed since intake rejects the order for that
//! reason. A cached entity can only make intake refuse for up to the lifetime what the owner
//! has just allowed again (a consumer reactivated, a dish available again), or accept what the
//! validators will reject. What is not replicated is not cached: a consumer or restaurant the
//! replica does not know yet is read again by the next order.

use std::time::Duration;

use mini_moka::sync::Cache;

use crate::domain::replica::Replicated;
use crate::ports::orders::StoreError;
use crate::ports::replica::{Applied, ReplicaStore};

/// What an instance's cache may hold, in bytes as [`approximate_bytes`] counts them: a
/// restaurant's menu runs from a few hundred bytes to tens of kilobytes (200 items), and the
/// function has 128 MB.
const CAPACITY_BYTES: u64 = 8 * 1024 * 1024;

/// An entity's size in memory, near enough to bound the cache: its strings, and a fixed part
/// for each struct around them.
fn approximate_bytes(key: &str, entity: &Replicated) -> u32 {
    let strings = match entity {
        Replicated::Consumer(c) => c.consumer_id.len() + c.name.len(),
        Replicated::Restaurant(r) => {
            r.restaurant_id.len()
                + r.name.len()
                + r.menu
                    .iter()
                    .map(|item| 96 + item.menu_item_id.len() + item.name.len())
                    .sum::<usize>()
        }
    };
    u32::try_from(256 + key.len() + strings).unwrap_or(u32::MAX)
}

#[derive(Clone)]
pub struct CachedReplica<R> {
    replica: R,
    /// `None` when the lifetime is zero: every read goes to the replica.
    cache: Option<Cache<String, Replicated>>,
}

impl<R> CachedReplica<R> {
    pub fn new(replica: R, lifetime: Duration) -> Self {
        Self::holding(replica, lifetime, CAPACITY_BYTES)
    }

    fn holding(replica: R, lifetime: Duration, bytes: u64) -> Self {
        let cache = (!lifetime.is_zero()).then(|| {
            Cache::builder()
                .max_capacity(bytes)
                .weigher(|key: &String, entity: &Replicated| approximate_bytes(key, entity))
                .time_to_live(lifetime)
                .build()
        });
        Self { replica, cache }
    }
}

impl<R: ReplicaStore> ReplicaStore for CachedReplica<R> {
    /// Intake never writes the replica; the replica updater (another function) does, uncached.
    async fn apply(&self, update: &Replicated) -> Result<Applied, StoreError> {
        self.replica.apply(update).await
    }

    async fn read(&self, key: String) -> Result<Option<Replicated>, StoreError> {
        let Some(cache) = &self.cache else {
            return self.replica.read(key).await;
        };
        if let Some(entity) = cache.get(&key) {
            return Ok(Some(entity));
        }
        let entity = self.replica.read(key.clone()).await?;
        if let Some(entity) = &entity {
            cache.insert(key, entity.clone());
        }
        Ok(entity)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    use crate::adapters::memory::replica::MemoryReplica;
    use crate::domain::replica::tests::{consumer, restaurant};
    use crate::domain::replica::{consumer_key, restaurant_key};
    use shared::language::events::{ConsumerStatus, RestaurantUpdated};

    const FOREVER: Duration = Duration::from_secs(3600);

    fn replica_holding(version: u64) -> MemoryReplica {
        let replica = MemoryReplica::default();
        let entity = Replicated::Restaurant(restaurant(version, true, 100));
        replica
            .entities
            .lock()
            .unwrap()
            .insert(entity.key(), entity);
        replica
    }

    fn version_of(entity: Option<Replicated>) -> Option<u64> {
        entity.map(|e| e.version())
    }

    #[tokio::test]
    async fn an_entity_read_once_is_served_from_the_cache_within_its_lifetime() {
        let replica = replica_holding(1);
        let cached = CachedReplica::new(replica.clone(), FOREVER);
        let key = restaurant_key("restaurant-1");
        assert_eq!(version_of(cached.read(key.clone()).await.unwrap()), Some(1));
        replica.entities.lock().unwrap().clear();
        assert_eq!(version_of(cached.read(key).await.unwrap()), Some(1));
    }

    #[tokio::test]
    async fn an_entity_is_read_again_once_its_lifetime_is_over() {
        let replica = replica_holding(1);
        let lifetime = Duration::from_millis(20);
        let cached = CachedReplica::new(replica.clone(), lifetime);
        let key = restaurant_key("restaurant-1");
        cached.read(key.clone()).await.unwrap();
        let newer = Replicated::Restaurant(restaurant(2, true, 100));
        replica.apply(&newer).await.unwrap();
        tokio::time::sleep(lifetime * 5).await;
        assert_eq!(version_of(cached.read(key).await.unwrap()), Some(2));
    }

    #[tokio::test]
    async fn what_the_replica_does_not_know_is_asked_again_by_the_next_read() {
        let replica = MemoryReplica::default();
        let cached = CachedReplica::new(replica.clone(), FOREVER);
        let key = restaurant_key("restaurant-1");
        assert_eq!(cached.read(key.clone()).await.unwrap(), None);
        let entity = Replicated::Restaurant(restaurant(1, true, 100));
        replica.apply(&entity).await.unwrap();
        assert_eq!(version_of(cached.read(key).await.unwrap()), Some(1));
    }

    #[tokio::test]
    async fn a_lifetime_of_zero_reads_the_replica_every_time() {
        let replica = replica_holding(1);
        let cached = CachedReplica::new(replica.clone(), Duration::ZERO);
        let key = restaurant_key("restaurant-1");
        cached.read(key.clone()).await.unwrap();
        replica.entities.lock().unwrap().clear();
        assert_eq!(cached.read(key).await.unwrap(), None);
    }

    #[tokio::test]
    async fn the_cache_holds_no_more_than_its_bytes_however_many_restaurants_are_read() {
        let replica = MemoryReplica::default();
        let mut big = restaurant(1, true, 100);
        big.menu = (0..200)
            .map(|i| shared::language::events::MenuItem {
                menu_item_id: format!("item-{i}"),
                name: "a dish with a long name ".repeat(8),
                ..big.menu[0].clone()
            })
            .collect();
        for n in 0..100 {
            let entity = Replicated::Restaurant(RestaurantUpdated {
                restaurant_id: format!("restaurant-{n}"),
                ..big.clone()
            });
            replica.apply(&entity).await.unwrap();
        }
        let bytes = 1024 * 1024;
        let cached = CachedReplica::holding(replica, FOREVER, bytes);
        for n in 0..100 {
            let read = cached
                .read(restaurant_key(&format!("restaurant-{n}")))
                .await;
            assert!(read.unwrap().is_some());
        }
        let cache = cached.cache.as_ref().unwrap();
        mini_moka::sync::ConcurrentCacheExt::sync(cache);
        assert!(cache.weighted_size() <= bytes, "{}", cache.weighted_size());
        assert!(cache.entry_count() > 0 && cache.entry_count() < 100);
    }

    /// A replica whose reads fail while `failing` is set.
    #[derive(Clone, Default)]
    struct Flaky {
        replica: MemoryReplica,
        failing: Arc<AtomicBool>,
    }

    impl ReplicaStore for Flaky {
        async fn apply(&self, update: &Replicated) -> Result<Applied, StoreError> {
            self.replica.apply(update).await
        }
        async fn read(&self, key: String) -> Result<Option<Replicated>, StoreError> {
            if self.failing.load(Ordering::SeqCst) {
                return Err(StoreError::Unsettled("the test says so".into()));
            }
            self.replica.read(key).await
        }
    }

    #[tokio::test]
    async fn a_failed_read_is_an_error_and_caches_nothing() {
        let flaky = Flaky::default();
        flaky.failing.store(true, Ordering::SeqCst);
        let cached = CachedReplica::new(flaky.clone(), FOREVER);
        let key = consumer_key("consumer-1");
        assert!(cached.read(key.clone()).await.is_err());
        flaky.failing.store(false, Ordering::SeqCst);
        flaky
            .replica
            .apply(&Replicated::Consumer(consumer(
                1,
                ConsumerStatus::Active,
                100,
            )))
            .await
            .unwrap();
        assert_eq!(version_of(cached.read(key).await.unwrap()), Some(1));
    }
}
