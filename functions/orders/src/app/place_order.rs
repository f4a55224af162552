//! Placing an order: the request checked with local data only (its body, the caller, the
//! callback URL's address, the replica of consumers and restaurants), then the order written
//! `PENDING` with its `OrderCreated` in one transaction. Validation follows asynchronously.

use shared::language::events::{EventMeta, OrderCreated};
use shared::language::input::FieldError;
use shared::language::outbox::OutboxRecord;
use shared::platform::identity::Caller;
use shared::platform::metrics::{self, Unit};
use tracing::{debug, error, info, warn};
use uuid::Uuid;

use crate::app::callbacks::{Callbacks, CheckError};
use crate::domain::intake::{self, Invalid, PlaceOrder};
use crate::domain::order::Order;
use crate::domain::replica::{self, Known, Priced};
use crate::ports::orders::{IdempotencyClaim, OrderStore, Placement};
use crate::ports::replica::ReplicaStore;
use crate::ports::resolver::Resolver;

/// What placing an order reads and writes.
pub struct Intake<'a, S, Q, R> {
    pub store: &'a S,
    pub replica: &'a Q,
    pub callbacks: &'a Callbacks<R>,
}

/// An order taken: new, or the one an earlier request with the same key placed.
#[derive(Debug)]
pub enum Placed {
    New(Order),
    /// `first` is the earlier order, unless it could not be read.
    Replayed {
        order_id: Uuid,
        first: Option<Order>,
    },
}

/// Why an order was not taken. Nothing was written.
#[derive(Debug)]
pub enum Refused {
    /// The body is no order, or one outside the documented bounds.
    Invalid(Invalid),
    /// A consumer's token places orders for that consumer only.
    NotTheirs {
        subject: String,
        consumer_id: String,
    },
    /// The callback URL is refused, or its host could not be resolved for now.
    Callback(CheckError),
    /// What the replica proves wrong, every reason.
    Replica(Vec<FieldError>),
    /// The `Idempotency-Key` was used before with another request.
    KeyReused,
    /// Storage failed, or the refusal could not be checked against the key: a retry may pass.
    Unavailable,
}

impl<S: OrderStore, Q: ReplicaStore, R: Resolver> Intake<'_, S, Q, R> {
    /// Places the order `body` describes for `caller`, once per `idempotency_key`.
    pub async fn place(
        &self,
        caller: &Caller,
        idempotency_key: Option<String>,
        body: &[u8],
        correlation_id: &str,
    ) -> Result<Placed, Refused> {
        let request = intake::parse(body).map_err(Refused::Invalid)?;
        if !caller.may_act_for(&request.consumer_id) {
            return Err(Refused::NotTheirs {
                subject: caller.subject.clone(),
                consumer_id: request.consumer_id,
            });
        }
        // Keys are the caller's own: another caller's use of the same key neither replays nor
        // refuses this request (the subject's length first, so that no two pairs join alike).
        let claim = idempotency_key.map(|key| IdempotencyClaim {
            key: format!("{}:{}#{key}", caller.subject.len(), caller.subject),
            fingerprint: request.fingerprint(),
        });
        let priced = match self.checked(&request).await {
            Ok(priced) => priced,
            // An honest retry of an order already accepted gets its first answer, whatever the
            // callback's name or the replica says now; only a refused request pays the read.
            Err(refused) => return self.replayed_or(claim.as_ref(), refused).await,
        };

        let (order, event) = new_order(request, priced, correlation_id);
        tracing::Span::current().record("orderId", tracing::field::display(order.order_id));
        let outbox = OutboxRecord::of(&event).map_err(|e| {
            error!(error = %e, "event does not serialize");
            Refused::Unavailable
        })?;
        match self.store.place(&order, &outbox, claim.as_ref()).await {
            Ok(Placement::Placed) => {
                debug!(eventId = %event.meta.event_id, "order accepted");
                metrics::measure(&[("OrdersAccepted", Unit::Count, 1.0)]);
                Ok(Placed::New(order))
            }
            Ok(Placement::Replayed { order_id }) => Ok(self.replayed(order_id).await),
            Ok(Placement::KeyReused) => Err(Refused::KeyReused),
            Err(e) => {
                error!(error = %e, "order could not be stored");
                Err(Refused::Unavailable)
            }
        }
    }

    /// The first answer again if `claim`'s key already placed this order, else `refused`.
    async fn replayed_or(
        &self,
        claim: Option<&IdempotencyClaim>,
        refused: Refused,
    ) -> Result<Placed, Refused> {
        let Some(claim) = claim else {
            return Err(refused);
        };
        match self.store.claimed(claim).await {
            Ok(Some(Placement::Replayed { order_id })) => Ok(self.replayed(order_id).await),
            Ok(_) => Err(refused),
            // Not knowing whether this key placed an order, a refusal could be wrong.
            Err(e) => {
                error!(error = %e, "idempotency claim not readable");
                Err(Refused::Unavailable)
            }
        }
    }

    /// The earlier order, priced as it was; the id alone if the order is unreadable.
    async fn replayed(&self, order_id: Uuid) -> Placed {
        info!(replayedOrderId = %order_id, "idempotent retry answered with the first order");
        let first = self.store.get(order_id).await.ok().flatten();
        Placed::Replayed { order_id, first }
    }

    /// The checks that need more than the body: the callback URL's address, and what the
    /// replica proves wrong (what it does not know, validation decides). The prices when known.
    async fn checked(&self, request: &PlaceOrder) -> Result<Priced, Refused> {
        if let Some(url) = &request.callback_url {
            self.callbacks.check(url).await.map_err(Refused::Callback)?;
        }
        let known = self
            .replica
            .lookup(&request.consumer_id, &request.restaurant_id)
            .await
            .unwrap_or_else(|e| {
                warn!(error = %e, "replica not readable; the order is accepted unpriced");
                Known::default()
            });
        replica::check(
            &request.consumer_id,
            &request.restaurant_id,
            &request.line_items,
            &known,
        )
        .map_err(Refused::Replica)
    }
}

fn new_order(request: PlaceOrder, priced: Priced, correlation_id: &str) -> (Order, OrderCreated) {
    let meta = EventMeta::new(Uuid::now_v7(), Some(correlation_id.to_owned()));
    let mut order = Order::place(
        meta.order_id,
        request.consumer_id.clone(),
        request.restaurant_id.clone(),
        priced.lines.clone(),
        meta.occurred_at,
    );
    order.callback_url = request.callback_url;
    order.total = priced.total.clone();
    let event = OrderCreated {
        meta,
        consumer_id: request.consumer_id,
        restaurant_id: request.restaurant_id,
        line_items: priced.lines,
        total: priced.total,
    };
    (order, event)
}
