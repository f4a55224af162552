//! How many requests one caller may hold waiting at once (`GET /orders/{id}` with
//! `Prefer: wait=N`). A waiting request holds a function instance, so without a bound one caller
//! could hold every instance the order reader may have. The bound must hold across instances, so
//! the slots live in the orders table: one item per caller and slot, taken with a conditional
//! write and given back when the wait ends. A slot whose holder died is free again once its lease
//! runs out (the wait's length and a margin, never past the function's timeout).

use std::future::Future;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::ports::orders::StoreError;

/// Concurrent waits per caller: a client following a handful of orders at once waits on each;
/// beyond that it polls, or is called back.
pub const MAX_WAITS_PER_CALLER: u32 = 4;

/// How long a lease outlives its wait: the wait's last read, never past the reader's 25 s
/// timeout (a 20 s wait and 3 s).
pub const LEASE_MARGIN_SECONDS: i64 = 3;

/// One of a caller's slots, held by one request until `until`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub caller: String,
    pub slot: u32,
    pub id: Uuid,
    pub until: DateTime<Utc>,
}

/// What taking a slot gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Taken {
    Slot(Lease),
    /// Every slot is held; the first lease ends at `free_at`.
    Full {
        free_at: DateTime<Utc>,
    },
}

impl Taken {
    /// Whole seconds from `now` until the first held wait ends, when its slot is given back
    /// (`Retry-After`): its lease's end less the margin, at least 1.
    pub fn retry_after(free_at: DateTime<Utc>, now: DateTime<Utc>) -> u64 {
        let wait_ends = free_at - chrono::Duration::seconds(LEASE_MARGIN_SECONDS);
        let millis = (wait_ends - now).num_milliseconds().max(0) as u64;
        millis.div_ceil(1000).max(1)
    }
}

/// Where the slots are kept.
pub trait WaitSlots: Send + Sync {
    /// Takes a free slot of `caller` (one whose lease is over at `now` counts as free) and holds
    /// it until `until`; `Full` when all `MAX_WAITS_PER_CALLER` are held.
    fn take(
        &self,
        caller: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> impl Future<Output = Result<Taken, StoreError>> + Send;

    /// Frees the slot, unless another request took it over after the lease ran out.
    fn give_back(&self, lease: &Lease) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// The order the slots are tried in: from a random one, so that concurrent requests of one
/// caller do not all race for slot 0 first.
pub fn slots_from(start: u32) -> impl Iterator<Item = u32> {
    (0..MAX_WAITS_PER_CALLER).map(move |i| (start + i) % MAX_WAITS_PER_CALLER)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_is_told_the_whole_seconds_until_the_first_slot_frees() {
        let now = Utc::now();
        // A lease ending 20.2 s from now is a wait ending 17.2 s from now.
        let after = |ms| Taken::retry_after(now + chrono::Duration::milliseconds(ms), now);
        assert_eq!(after(20_200), 18);
        assert_eq!(after(4_000), 1);
        assert_eq!(after(3_010), 1);
        assert_eq!(after(-500), 1); // already over: come back at once, but not in a loop
    }

    #[test]
    fn every_slot_is_tried_once_from_any_start() {
        for start in 0..MAX_WAITS_PER_CALLER {
            let mut tried: Vec<u32> = slots_from(start).collect();
            assert_eq!(tried[0], start);
            tried.sort();
            assert_eq!(tried, (0..MAX_WAITS_PER_CALLER).collect::<Vec<_>>());
        }
    }
}
