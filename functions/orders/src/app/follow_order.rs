//! Following an order: `GET /orders/{id}`, optionally waiting (`Prefer: wait=N`) until the order
//! differs from what the client knows, or without a known version until it is decided. A caller
//! holds at most `MAX_WAITS_PER_CALLER` waits at once (`crate::ports::wait_slots`).

use chrono::Utc;
use shared::platform::identity::Caller;
use tokio::time::Instant;
use tracing::{error, warn};
use uuid::Uuid;

use crate::domain::order::Order;
use crate::ports::orders::{OrderStore, StoreError};
use crate::ports::wait_slots::{LEASE_MARGIN_SECONDS, Taken, WaitSlots};

/// The longest `Prefer: wait=N` honoured, in seconds: API Gateway ends a request at 30 s.
pub const MAX_WAIT_SECONDS: u64 = 20;
/// The pauses between a waiting request's reads of the order: short at first, then a second
/// (strongly consistent reads, at most one a second once settled; a change is seen within it).
const WAIT_READS_MS: [u64; 5] = [50, 100, 200, 400, 800];
const WAIT_READ_MAX_MS: u64 = 1000;

/// The order as shown, and the wait that was applied (none when the wait could not be bounded).
#[derive(Debug)]
pub struct Shown {
    pub order: Order,
    pub wait_applied: Option<u64>,
}

#[derive(Debug)]
pub enum NotShown {
    /// No such order, or another consumer's: ids reveal nothing.
    NotFound,
    Unreadable(StoreError),
    /// The caller holds its bound of waits; the first ends in `retry_after` whole seconds.
    TooManyWaits {
        retry_after: u64,
    },
}

/// The order's entity tag: its version.
pub fn etag(order: &Order) -> String {
    format!("\"v{}\"", order.version)
}

/// Shows order `id` to `caller`; with `wait` seconds, once it differs from `known` (its ETag)
/// or, without `known`, once it is decided, or when the wait ends.
pub async fn follow<S: OrderStore + WaitSlots>(
    store: &S,
    caller: &Caller,
    id: Uuid,
    known: Option<&str>,
    wait: Option<u64>,
) -> Result<Shown, NotShown> {
    let unreadable = |e: StoreError| {
        error!(orderId = %id, error = %e, "order could not be read");
        NotShown::Unreadable(e)
    };
    let order = store
        .get(id)
        .await
        .map_err(unreadable)?
        .filter(|order| caller.may_act_for(&order.consumer_id))
        .ok_or(NotShown::NotFound)?;
    let Some(seconds) = wait.filter(|&seconds| seconds > 0 && !settled(&order, known)) else {
        return Ok(Shown {
            order,
            wait_applied: wait,
        });
    };
    // The wait's end is fixed before the slot is taken, and the lease outlives it by a margin
    // for the last read (never past the function's 25 s timeout).
    let deadline = Instant::now() + std::time::Duration::from_secs(seconds);
    let now = Utc::now();
    let until = now + chrono::Duration::seconds(seconds as i64 + LEASE_MARGIN_SECONDS);
    let lease = match store.take(&caller.subject, now, until).await {
        Ok(Taken::Slot(lease)) => lease,
        Ok(Taken::Full { free_at }) => {
            return Err(NotShown::TooManyWaits {
                retry_after: Taken::retry_after(free_at, Utc::now()),
            });
        }
        Err(e) => {
            // Without a slot it may not wait: it answers at once, as a server may ignore a
            // preference (RFC 7240), rather than wait unbounded or fail the read.
            warn!(orderId = %id, error = %e, "wait slots unreadable; answered without waiting");
            return Ok(Shown {
                order,
                wait_applied: None,
            });
        }
    };
    let waited = read_until_changed(store, id, order, known, deadline).await;
    if let Err(e) = store.give_back(&lease).await {
        warn!(orderId = %id, error = %e, slot = lease.slot, "wait slot not given back; it frees itself when its lease ends");
    }
    Ok(Shown {
        order: waited.map_err(unreadable)?,
        wait_applied: wait,
    })
}

/// Whether a wait would end at once: the order is decided (it never changes again, so waiting
/// on it would only hold a function) or already differs from what the client knows.
fn settled(order: &Order, known: Option<&str>) -> bool {
    order.status.is_terminal() || known.is_some_and(|known| etag(order) != known)
}

/// Reads the order again (backing off to once a second) until it is settled or `deadline` has
/// passed; the order the wait began with is `first`.
async fn read_until_changed<S: OrderStore>(
    store: &S,
    id: Uuid,
    first: Order,
    known: Option<&str>,
    deadline: Instant,
) -> Result<Order, StoreError> {
    let mut pauses = WAIT_READS_MS
        .into_iter()
        .chain(std::iter::repeat(WAIT_READ_MAX_MS));
    let mut order = first;
    loop {
        let now = Instant::now();
        if settled(&order, known) || now >= deadline {
            return Ok(order);
        }
        let pause = std::time::Duration::from_millis(pauses.next().unwrap_or(WAIT_READ_MAX_MS));
        tokio::time::sleep(pause.min(deadline - now)).await;
        // Another consumer's order was never shown; an order does not change consumer.
        match store.get(id).await? {
            Some(read) => order = read,
            None => return Ok(order),
        }
    }
}
