//! The order context's side of validation: each validator's reply goes through the state
//! machine, and the changed order is saved only if nobody changed it since it was read.
//! Replies come in any order, more than once and at the same time; the result is the same.
//! Their messages are read in `crate::entry::sqs::replies`.

use chrono::Utc;
use shared::language::events::{EventMeta, OrderRejected, OrderValidated, OutcomeDelivery};
use shared::platform::aws_error::{Classified, Retry};
use shared::platform::dead_letter::DeadLetters;
use shared::platform::envelope::EnvelopeError;
use shared::platform::metrics::{self, Unit};
use tracing::{debug, info};

use crate::domain::order::{Order, OrderStatus, Reply, Transition, VALIDATION_TIMEOUT, apply};
use crate::ports::orders::{OrderStore, Saved, StoreError};
use shared::language::outbox::OutboxRecord;

/// How often a reply is re-applied after losing a race (with a jittered wait between tries)
/// before the message is handed back to SQS.
pub const MAX_ATTEMPTS: u32 = 8;

#[derive(Debug, thiserror::Error)]
pub enum ReplyError {
    #[error(transparent)]
    Envelope(#[from] EnvelopeError),
    #[error("{0} is not a reply this context handles")]
    UnexpectedEvent(String),
    #[error("order {0} does not exist")]
    UnknownOrder(uuid::Uuid),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("order kept changing under {MAX_ATTEMPTS} attempts")]
    Contended,
    #[error("order {0} is VALIDATED without a total")]
    MissingTotal(uuid::Uuid),
    #[error("terminal event does not serialize: {0}")]
    Serialize(#[from] serde_json::Error),
}

impl Classified for ReplyError {
    /// A message that can never be applied goes to the dead-letter queue at once; the store's
    /// failures are as its AWS error says; a contended order is tried again.
    fn retry(&self) -> Retry {
        match self {
            ReplyError::Envelope(_)
            | ReplyError::UnexpectedEvent(_)
            | ReplyError::UnknownOrder(_)
            | ReplyError::MissingTotal(_)
            | ReplyError::Serialize(_) => Retry::Never,
            ReplyError::Store(store) => store.retry(),
            ReplyError::Contended => Retry::Transient,
        }
    }
}

/// What a reply did to its order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    Moved(OrderStatus),
    /// A duplicate, a late reply, or one after the order was decided.
    NoChange,
}

/// The `OrderValidated` or `OrderRejected` row for an order that just reached a terminal state.
fn terminal_event(order: &Order, cause: &EventMeta) -> Result<Option<OutboxRecord>, ReplyError> {
    let meta = EventMeta::new(order.order_id, cause.correlation_id.clone());
    let outcome_delivery = if order.callback_url.is_some() {
        OutcomeDelivery::Callback
    } else {
        OutcomeDelivery::None
    };
    let record = match order.status {
        OrderStatus::Validated => {
            // The state machine sets the total on the way to VALIDATED.
            let total = order
                .total
                .clone()
                .ok_or(ReplyError::MissingTotal(order.order_id))?;
            OutboxRecord::of(&OrderValidated {
                meta,
                total,
                outcome_delivery,
            })?
        }
        OrderStatus::Rejected => OutboxRecord::of(&OrderRejected {
            meta,
            reasons: order.rejection_reasons.clone(),
            outcome_delivery,
        })?,
        _ => return Ok(None),
    };
    Ok(Some(record))
}

fn timed_out(order: &Order) -> bool {
    order.status == OrderStatus::Rejected && order.rejection_reasons == [VALIDATION_TIMEOUT]
}

/// Counts decided orders and how long the decision took from the moment the order was placed.
fn record_decision(order: &Order) {
    let name = match order.status {
        OrderStatus::Validated => "OrdersValidated",
        OrderStatus::Rejected if timed_out(order) => "OrdersTimedOut",
        OrderStatus::Rejected => "OrdersRejected",
        _ => return,
    };
    let placed = order
        .history
        .first()
        .map_or_else(Utc::now, |change| change.at);
    let elapsed = (Utc::now() - placed).num_milliseconds().max(0) as f64;
    let measured = [
        (name, Unit::Count, 1.0),
        ("TimeToDecision", Unit::Milliseconds, elapsed),
    ];
    // OrdersTimedOut has an alarm: out at once, whatever becomes of the invocation.
    if name == "OrdersTimedOut" {
        metrics::emit(&measured);
    } else {
        metrics::measure(&measured);
    }
}

pub struct ReplyHandler<S, D> {
    store: S,
    pub(crate) dead_letters: D,
}

impl<S: OrderStore, D: DeadLetters> ReplyHandler<S, D> {
    pub fn new(store: S, dead_letters: D) -> Self {
        Self {
            store,
            dead_letters,
        }
    }

    /// Applies one reply: read, decide, save if unchanged since the read; on a lost race, again.
    pub async fn apply_reply(
        &self,
        meta: &EventMeta,
        reply: &Reply,
    ) -> Result<Applied, ReplyError> {
        for attempt in 1..=MAX_ATTEMPTS {
            let order = self
                .store
                .get(meta.order_id)
                .await?
                .ok_or(ReplyError::UnknownOrder(meta.order_id))?;
            let Transition::Changed { order: next } = apply(&order, reply, Utc::now()) else {
                if reply.is_validator_answer() && timed_out(&order) {
                    info!("reply arrived after the order's deadline; changes nothing");
                    metrics::measure(&[("RepliesAfterDeadline", Unit::Count, 1.0)]);
                } else {
                    debug!(status = ?order.status, "reply changes nothing");
                }
                return Ok(Applied::NoChange);
            };
            let outbox = terminal_event(&next, meta)?;
            match self
                .store
                .save(&next, order.version, outbox.as_ref())
                .await?
            {
                Saved::Saved => {
                    debug!(from = ?order.status, to = ?next.status, "order moved");
                    record_decision(&next);
                    return Ok(Applied::Moved(next.status));
                }
                Saved::Conflict => {
                    debug!(attempt, "order changed since it was read; deciding again");
                    shared::platform::backoff::wait(attempt).await;
                }
            }
        }
        Err(ReplyError::Contended)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::memory::orders::{Alteration, Altered, MemoryStore};
    use crate::entry::sqs::replies::decode;
    use crate::ports::timers::DeadlineTimer;
    use aws_lambda_events::event::sqs::SqsEvent;
    use shared::language::events::{ConsumerValidated, OrderDetailsValidated};
    use shared::language::events::{LineItem, Money};
    use shared::platform::dead_letter::memory::MemoryDeadLetters;
    use shared::platform::envelope::Envelope;
    use shared::testing::corpus::failed_messages;
    use shared::testing::fixtures::eur;
    use tokio::time::Instant;
    use uuid::Uuid;

    fn unhurried() -> Instant {
        Instant::now() + std::time::Duration::from_secs(60)
    }

    /// A store with one order placed, a handler of its replies, and its dead letters.
    async fn one_order() -> (
        MemoryStore,
        ReplyHandler<MemoryStore, MemoryDeadLetters>,
        Uuid,
        MemoryDeadLetters,
    ) {
        let store = MemoryStore::default();
        let dead_letters = MemoryDeadLetters::default();
        let handler = ReplyHandler::new(store.clone(), dead_letters.clone());
        let id = placed(&store).await;
        (store, handler, id, dead_letters)
    }

    /// The `OrderCreated` of order `id` (consumer `c`, restaurant `r`).
    fn created(id: Uuid) -> shared::language::events::OrderCreated {
        shared::language::events::OrderCreated {
            meta: EventMeta::new(id, None),
            consumer_id: "c".into(),
            restaurant_id: "r".into(),
            line_items: vec![],
            total: None,
        }
    }

    async fn placed(store: &MemoryStore) -> Uuid {
        let id = Uuid::now_v7();
        let order = Order::place(
            id,
            "c".into(),
            "r".into(),
            vec![LineItem::unpriced("i", 1)],
            Utc::now(),
        );
        let outbox = OutboxRecord::of(&created(id)).unwrap();
        store.place(&order, &outbox, None).await.unwrap();
        id
    }

    fn terminal_rows(store: &MemoryStore, id: Uuid) -> Vec<String> {
        store.snapshot(|inner| {
            inner
                .outbox
                .iter()
                .filter(|r| r.order_id == Some(id) && r.detail_type != "OrderCreated")
                .map(|r| r.detail_type.clone())
                .collect()
        })
    }

    #[tokio::test]
    async fn replies_twice_each_in_both_orders_give_one_validated_event() {
        for consumer_first in [true, false] {
            let (store, handler, id, _) = one_order().await;
            let meta = EventMeta::new(id, Some("corr".into()));
            let consumer = Reply::ConsumerValidated;
            let details = Reply::OrderDetailsValidated { total: eur(2950) };
            let sequence = if consumer_first {
                [&consumer, &consumer, &details, &details]
            } else {
                [&details, &consumer, &details, &consumer]
            };
            for reply in sequence {
                handler.apply_reply(&meta, reply).await.unwrap();
            }
            let order = store.get(id).await.unwrap().unwrap();
            assert_eq!(order.status, OrderStatus::Validated);
            assert_eq!(order.total, Some(eur(2950)));
            assert_eq!(terminal_rows(&store, id), ["OrderValidated"]);
        }
    }

    #[tokio::test]
    async fn replies_at_the_same_instant_give_one_validated_event() {
        let (store, handler, id, _) = one_order().await;
        let meta = EventMeta::new(id, None);
        let (consumer, details) = (
            Reply::ConsumerValidated,
            Reply::OrderDetailsValidated { total: eur(1) },
        );
        let (a, b) = tokio::join!(
            handler.apply_reply(&meta, &consumer),
            handler.apply_reply(&meta, &details)
        );
        assert!(a.is_ok() && b.is_ok());
        assert_eq!(
            store.get(id).await.unwrap().unwrap().status,
            OrderStatus::Validated
        );
        assert_eq!(terminal_rows(&store, id), ["OrderValidated"]);
    }

    #[tokio::test]
    async fn a_failure_rejects_once_with_its_reason() {
        let (store, handler, id, _) = one_order().await;
        let meta = EventMeta::new(id, None);
        let failed = Reply::ConsumerValidationFailed {
            reason: "consumer consumer-2 is suspended".into(),
        };
        assert_eq!(
            handler.apply_reply(&meta, &failed).await.unwrap(),
            Applied::Moved(OrderStatus::Rejected)
        );
        assert_eq!(
            handler
                .apply_reply(&meta, &Reply::ConsumerValidated)
                .await
                .unwrap(),
            Applied::NoChange
        );
        let order = store.get(id).await.unwrap().unwrap();
        assert_eq!(
            order.rejection_reasons,
            ["consumer consumer-2 is suspended"]
        );
        assert_eq!(terminal_rows(&store, id), ["OrderRejected"]);
    }

    /// A store where another writer gets in first: before each of the first `races` saves, the
    /// other validator's reply lands on the stored order, and the save reports the conflict.
    #[derive(Clone)]
    struct Raced {
        races: std::sync::Arc<std::sync::atomic::AtomicU32>,
        other: Reply,
    }

    impl Alteration for Raced {
        async fn save(
            &self,
            store: &MemoryStore,
            order: &Order,
            read_version: u64,
            outbox: Option<&OutboxRecord>,
        ) -> Result<Saved, StoreError> {
            use std::sync::atomic::Ordering;
            if self.races.load(Ordering::SeqCst) > 0 {
                self.races.fetch_sub(1, Ordering::SeqCst);
                let current = store.get(order.order_id).await?.unwrap();
                let bumped = match apply(&current, &self.other, Utc::now()) {
                    Transition::Changed { order } => *order,
                    Transition::Unchanged => Order {
                        version: current.version + 1,
                        ..current.clone()
                    },
                };
                store.save(&bumped, current.version, None).await?;
                return Ok(Saved::Conflict);
            }
            store.save(order, read_version, outbox).await
        }
    }

    #[tokio::test]
    async fn a_lost_race_is_decided_again_on_the_fresh_order() {
        let inner = MemoryStore::default();
        let id = placed(&inner).await;
        let races = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(1));
        let store = Altered {
            store: inner.clone(),
            alteration: Raced {
                races,
                other: Reply::OrderDetailsValidated { total: eur(700) },
            },
        };
        let handler = ReplyHandler::new(store, MemoryDeadLetters::default());
        let applied = handler
            .apply_reply(&EventMeta::new(id, None), &Reply::ConsumerValidated)
            .await
            .unwrap();
        // Decided on the order as the other writer left it: both validations are in.
        assert_eq!(applied, Applied::Moved(OrderStatus::Validated));
        let order = inner.get(id).await.unwrap().unwrap();
        assert_eq!(order.total, Some(eur(700)));
        assert_eq!(terminal_rows(&inner, id), ["OrderValidated"]);
    }

    #[tokio::test]
    async fn endless_conflicts_hand_the_message_back() {
        let inner = MemoryStore::default();
        let id = placed(&inner).await;
        let races = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(MAX_ATTEMPTS));
        let store = Altered {
            store: inner.clone(),
            alteration: Raced {
                races,
                other: Reply::ConsumerValidated,
            },
        };
        let handler = ReplyHandler::new(store, MemoryDeadLetters::default());
        let error = handler
            .apply_reply(
                &EventMeta::new(id, None),
                &Reply::OrderDetailsValidated { total: eur(1) },
            )
            .await;
        assert!(matches!(error, Err(ReplyError::Contended)), "{error:?}");
    }

    #[tokio::test]
    async fn a_reply_for_an_unknown_order_is_an_error_not_a_silent_drop() {
        let handler = ReplyHandler::new(MemoryStore::default(), MemoryDeadLetters::default());
        let error = handler
            .apply_reply(
                &EventMeta::new(Uuid::now_v7(), None),
                &Reply::ConsumerValidated,
            )
            .await;
        assert!(matches!(error, Err(ReplyError::UnknownOrder(_))));
    }

    /// The bodies as Lambda delivers them (the corpus's record shape).
    fn sqs_event(bodies: &[String]) -> SqsEvent {
        shared::testing::corpus::sqs_records(bodies)
    }

    /// The id `sqs_event` gives its `n`th message.
    fn message_id(n: usize) -> String {
        format!("00000000-0000-4000-8000-{n:012}")
    }

    /// An event as an EventBridge rule delivers it (the corpus's envelope).
    fn envelope(detail_type: &str, detail: serde_json::Value) -> String {
        let batch = shared::testing::corpus::sqs_batch(&[("consumers", detail_type, detail)]);
        batch.records[0].body.clone().unwrap()
    }

    #[tokio::test]
    async fn messages_that_can_never_apply_are_dead_lettered_at_once_with_the_reason() {
        let (store, handler, id, dead_letters) = one_order().await;
        let good = serde_json::to_value(ConsumerValidated {
            meta: EventMeta::new(id, None),
            order_limit: None,
        })
        .unwrap();
        let unknown = serde_json::to_value(ConsumerValidated {
            meta: EventMeta::new(Uuid::now_v7(), None),
            order_limit: None,
        })
        .unwrap();
        let response = handler
            .handle_batch(
                sqs_event(&[
                    "not json".into(),
                    envelope("ConsumerValidated", good),
                    envelope("ConsumerValidated", unknown),
                    envelope("Surprise", serde_json::json!({})),
                ]),
                unhurried(),
            )
            .await;
        assert!(failed_messages(&response).is_empty(), "{response:?}");
        let mut sent = dead_letters.sent.lock().unwrap().clone();
        sent.sort();
        let ids: Vec<&str> = sent.iter().map(|(id, _)| id.as_str()).collect();
        assert_eq!(ids, [message_id(0), message_id(2), message_id(3)]);
        assert!(
            sent[0].1.contains("not an EventBridge envelope"),
            "{sent:?}"
        );
        assert!(sent[1].1.contains("does not exist"), "{sent:?}");
        assert!(sent[2].1.contains("Surprise"), "{sent:?}");
        assert_eq!(
            store.get(id).await.unwrap().unwrap().status,
            OrderStatus::ConsumerValidated
        );
    }

    #[tokio::test]
    async fn a_contended_reply_is_handed_back_to_sqs_not_dead_lettered() {
        let inner = MemoryStore::default();
        let id = placed(&inner).await;
        let store = Altered {
            store: inner.clone(),
            alteration: Raced {
                races: std::sync::Arc::new(std::sync::atomic::AtomicU32::new(MAX_ATTEMPTS)),
                other: Reply::ConsumerValidated,
            },
        };
        let dead_letters = MemoryDeadLetters::default();
        let handler = ReplyHandler::new(store, dead_letters.clone());
        let detail = serde_json::to_value(OrderDetailsValidated {
            meta: EventMeta::new(id, None),
            total: eur(1),
        })
        .unwrap();
        let response = handler
            .handle_batch(
                sqs_event(&[envelope("OrderDetailsValidated", detail)]),
                unhurried(),
            )
            .await;
        assert_eq!(failed_messages(&response), [message_id(0)]);
        assert!(dead_letters.sent.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn the_deadline_message_rejects_an_undecided_order_and_a_late_reply_changes_nothing() {
        let (store, handler, id, dead_letters) = one_order().await;
        let created = serde_json::to_value(created(id)).unwrap();
        let late = serde_json::to_value(ConsumerValidated {
            meta: EventMeta::new(id, None),
            order_limit: None,
        })
        .unwrap();
        for body in [
            envelope("OrderCreated", created),
            envelope("ConsumerValidated", late),
        ] {
            let response = handler.handle_batch(sqs_event(&[body]), unhurried()).await;
            assert!(failed_messages(&response).is_empty(), "{response:?}");
        }
        let order = store.get(id).await.unwrap().unwrap();
        assert_eq!(order.status, OrderStatus::Rejected);
        assert_eq!(order.rejection_reasons, [VALIDATION_TIMEOUT]);
        assert_eq!(order.version, 2);
        assert_eq!(terminal_rows(&store, id), ["OrderRejected"]);
        assert!(dead_letters.sent.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn the_timer_rejects_an_undecided_order_once() {
        let (store, handler, id, dead_letters) = one_order().await;
        let timer = serde_json::to_string(&DeadlineTimer {
            decision_deadline: EventMeta::new(id, None),
        })
        .unwrap();
        // Started twice (the stream mapping retried): the second finds the order decided.
        for _ in 0..2 {
            let response = handler
                .handle_batch(sqs_event(std::slice::from_ref(&timer)), unhurried())
                .await;
            assert!(failed_messages(&response).is_empty(), "{response:?}");
        }
        let order = store.get(id).await.unwrap().unwrap();
        assert_eq!(order.rejection_reasons, [VALIDATION_TIMEOUT]);
        assert_eq!(terminal_rows(&store, id), ["OrderRejected"]);
        assert!(dead_letters.sent.lock().unwrap().is_empty());
    }

    /// A store that counts how many reads are in flight at once, and how many saves lost a race.
    #[derive(Clone, Default)]
    struct Watched {
        reading: std::sync::Arc<std::sync::atomic::AtomicUsize>,
        most_reading: std::sync::Arc<std::sync::atomic::AtomicUsize>,
        conflicts: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    }

    impl Alteration for Watched {
        async fn get(
            &self,
            store: &MemoryStore,
            order_id: Uuid,
        ) -> Result<Option<Order>, StoreError> {
            use std::sync::atomic::Ordering;
            let now = self.reading.fetch_add(1, Ordering::SeqCst) + 1;
            self.most_reading.fetch_max(now, Ordering::SeqCst);
            // A read takes a while, as a call to DynamoDB does: time for others to start.
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            self.reading.fetch_sub(1, Ordering::SeqCst);
            store.get(order_id).await
        }

        async fn save(
            &self,
            store: &MemoryStore,
            order: &Order,
            read_version: u64,
            outbox: Option<&OutboxRecord>,
        ) -> Result<Saved, StoreError> {
            let saved = store.save(order, read_version, outbox).await?;
            if saved == Saved::Conflict {
                self.conflicts
                    .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
            Ok(saved)
        }
    }

    #[tokio::test]
    async fn a_batch_applies_different_orders_at_once_and_one_orders_replies_in_turn() {
        use std::sync::atomic::Ordering;
        let store = Altered::<Watched>::default();
        let (a, b) = (placed(&store.store).await, placed(&store.store).await);
        let handler = ReplyHandler::new(store.clone(), MemoryDeadLetters::default());
        let consumer = |id| {
            envelope(
                "ConsumerValidated",
                serde_json::to_value(ConsumerValidated {
                    meta: EventMeta::new(id, None),
                    order_limit: None,
                })
                .unwrap(),
            )
        };
        let details = |id| {
            envelope(
                "OrderDetailsValidated",
                serde_json::to_value(OrderDetailsValidated {
                    meta: EventMeta::new(id, None),
                    total: eur(5),
                })
                .unwrap(),
            )
        };
        let response = handler
            .handle_batch(
                sqs_event(&[
                    consumer(a),
                    consumer(b),
                    details(a),
                    consumer(a),
                    details(b),
                ]),
                unhurried(),
            )
            .await;
        assert!(failed_messages(&response).is_empty(), "{response:?}");
        for id in [a, b] {
            assert_eq!(
                store.store.get(id).await.unwrap().unwrap().status,
                OrderStatus::Validated
            );
            assert_eq!(terminal_rows(&store.store, id), ["OrderValidated"]);
        }
        assert_eq!(store.alteration.most_reading.load(Ordering::SeqCst), 2);
        assert_eq!(store.alteration.conflicts.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn an_outcome_says_whether_it_is_delivered_by_callback_which_alone_sends_it_to_the_notifier() {
        let delivery = |url: Option<&str>, replies: &[Reply]| {
            let placed = Order::place(Uuid::now_v7(), "c".into(), "r".into(), vec![], Utc::now());
            let mut order = Order {
                callback_url: url.map(str::to_owned),
                ..placed
            };
            for reply in replies {
                if let Transition::Changed { order: next } = apply(&order, reply, Utc::now()) {
                    order = *next;
                }
            }
            let record = terminal_event(&order, &EventMeta::new(order.order_id, None))
                .unwrap()
                .expect("decided");
            let detail: serde_json::Value = serde_json::from_str(&record.detail).unwrap();
            (record.detail_type, detail["outcomeDelivery"].clone())
        };
        let rejected = [Reply::ConsumerValidationFailed {
            reason: "suspended".into(),
        }];
        let validated = [
            Reply::ConsumerValidated,
            Reply::OrderDetailsValidated { total: eur(1) },
        ];
        let url = Some("https://example.com/hooks");
        for (url, replies, detail_type, how) in [
            (None, &rejected[..], "OrderRejected", "none"),
            (url, &rejected[..], "OrderRejected", "callback"),
            (None, &validated[..], "OrderValidated", "none"),
            (url, &validated[..], "OrderValidated", "callback"),
        ] {
            assert_eq!(
                delivery(url, replies),
                (detail_type.to_owned(), serde_json::Value::from(how))
            );
        }
    }

    #[test]
    fn a_consumer_validated_with_a_limit_is_a_reply_within_it() {
        let id = Uuid::now_v7();
        let decoded = |order_limit: Option<Money>| {
            let body = envelope(
                "ConsumerValidated",
                serde_json::to_value(ConsumerValidated {
                    meta: EventMeta::new(id, None),
                    order_limit,
                })
                .unwrap(),
            );
            let envelope: Envelope = serde_json::from_str(&body).unwrap();
            decode(&envelope).unwrap().1
        };
        assert_eq!(
            decoded(Some(eur(2000))),
            Reply::ConsumerValidatedWithin { limit: eur(2000) }
        );
        assert_eq!(decoded(None), Reply::ConsumerValidated);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(200))]

        /// Whatever a message holds, it is applied or dead-lettered with a reason: never handed
        /// back to be retried forever, never a panic, and the order moves only forward.
        #[test]
        fn a_hostile_message_is_applied_or_dead_lettered(
            body in shared::testing::hostile::bodies(serde_json::from_str(&envelope(
                "OrderDetailsValidated",
                serde_json::json!({"eventId": Uuid::nil(), "orderId": Uuid::nil(),
                    "occurredAt": "2026-11-26T12:00:00Z", "schemaVersion": 1,
                    "total": {"currency": "EUR", "amountMinor": 100}}),
            )).unwrap()),
        ) {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
            let store = MemoryStore::default();
            let dead_letters = MemoryDeadLetters::default();
            let response = runtime.block_on(async {
                let order = Order::place(Uuid::nil(), "c".into(), "r".into(), vec![], Utc::now());
                let outbox = OutboxRecord::of(&shared::language::events::OrderCreated {
                    meta: EventMeta::new(Uuid::nil(), None),
                    consumer_id: "c".into(),
                    restaurant_id: "r".into(),
                    line_items: vec![],
                    total: None,
                }).unwrap();
                store.place(&order, &outbox, None).await.unwrap();
                let handler = ReplyHandler::new(store.clone(), dead_letters.clone());
                handler.handle_batch(sqs_event(&[String::from_utf8_lossy(&body).into_owned()]), unhurried()).await
            });
            proptest::prop_assert!(failed_messages(&response).is_empty());
            let buried = dead_letters.sent.lock().unwrap().len();
            let status = runtime.block_on(store.get(Uuid::nil())).unwrap().unwrap().status;
            proptest::prop_assert!(
                (buried == 1 && status == OrderStatus::Pending) || (buried == 0 && status != OrderStatus::Pending),
                "dead-lettered {} times, order {:?}", buried, status
            );
        }
    }

    #[tokio::test]
    async fn a_batch_as_aws_sends_it_of_events_not_ours_is_dead_lettered_with_the_reason() {
        let dead_letters = MemoryDeadLetters::default();
        let handler = ReplyHandler::new(MemoryStore::default(), dead_letters.clone());
        let event: SqsEvent =
            serde_json::from_value(shared::testing::corpus::event("sqs-eventbridge-batch"))
                .unwrap();
        assert!(
            handler
                .handle_batch(event, unhurried())
                .await
                .batch_item_failures
                .is_empty()
        );
        let sent = dead_letters.sent.lock().unwrap().clone();
        assert_eq!(sent.len(), 2, "{sent:?}");
    }
}
