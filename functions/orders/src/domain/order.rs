//! The Order aggregate and its state machine. Pure: no I/O, no clock; the caller passes the time.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use shared::language::events::{LineItem, Money};
use shared::language::refusals::Refusal;
use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OrderStatus {
    Pending,
    ConsumerValidated,
    OrderDetailsValidated,
    Validated,
    Rejected,
}

impl OrderStatus {
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Validated | Self::Rejected)
    }
}

/// When the order entered a status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusChange {
    pub status: OrderStatus,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Order {
    pub order_id: Uuid,
    pub consumer_id: String,
    pub restaurant_id: String,
    pub line_items: Vec<LineItem>,
    pub status: OrderStatus,
    /// Bumped by every change; writes are conditional on it (optimistic concurrency).
    pub version: u64,
    /// Every status the order has been in, oldest first, starting with `PENDING`.
    pub history: Vec<StatusChange>,
    /// The priced total: from the replica at intake when it knew the restaurant, else once the
    /// restaurant has validated the details.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total: Option<Money>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rejection_reasons: Vec<String>,
    /// Where the outcome is POSTed once the order is decided.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub callback_url: Option<String>,
    /// The consumer's limit, when the consumer context validated the order before it had a
    /// total: the restaurant's total must keep to it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consumer_limit: Option<Money>,
}

impl Order {
    /// A freshly placed order: `PENDING`, version 1.
    pub fn place(
        order_id: Uuid,
        consumer_id: String,
        restaurant_id: String,
        line_items: Vec<LineItem>,
        at: DateTime<Utc>,
    ) -> Self {
        Self {
            order_id,
            consumer_id,
            restaurant_id,
            line_items,
            status: OrderStatus::Pending,
            version: 1,
            history: vec![StatusChange {
                status: OrderStatus::Pending,
                at,
            }],
            total: None,
            rejection_reasons: Vec::new(),
            callback_url: None,
            consumer_limit: None,
        }
    }
}

/// The rejection reason of an order that was not decided by its deadline.
pub const VALIDATION_TIMEOUT: &str = "VALIDATION_TIMEOUT";

/// A validator's answer about an order, as the order context understands it, or the end of the
/// time the validators had to answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    ConsumerValidated,
    /// The consumer may order if the total keeps to `limit` (the order had no total to check).
    ConsumerValidatedWithin {
        limit: Money,
    },
    ConsumerValidationFailed {
        reason: String,
    },
    OrderDetailsValidated {
        total: Money,
    },
    OrderDetailsValidationFailed {
        reasons: Vec<String>,
    },
    DeadlinePassed,
}

impl Reply {
    /// True for a validator's answer (not the deadline).
    pub fn is_validator_answer(&self) -> bool {
        !matches!(self, Reply::DeadlinePassed)
    }
}

/// What applying a reply did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transition {
    /// The reply changes nothing: a duplicate, a late reply, or one after a terminal state.
    Unchanged,
    /// The order moved on; `order` is the new state with its version bumped.
    Changed { order: Box<Order> },
}

/// The state machine of DESIGN.md. Total: every (status, reply) pair has an answer, and the
/// answers that make no progress are `Unchanged`, never errors, because replies arrive in any
/// order and more than once.
pub fn apply(order: &Order, reply: &Reply, at: DateTime<Utc>) -> Transition {
    use OrderStatus::*;
    if order.status.is_terminal() {
        return Transition::Unchanged;
    }
    let mut next = order.clone();
    match (order.status, reply) {
        (_, Reply::ConsumerValidationFailed { reason }) => {
            next.rejection_reasons = vec![reason.clone()];
            next.status = Rejected;
        }
        (_, Reply::OrderDetailsValidationFailed { reasons }) => {
            next.rejection_reasons = reasons.clone();
            next.status = Rejected;
        }
        (_, Reply::DeadlinePassed) => {
            next.rejection_reasons = vec![VALIDATION_TIMEOUT.to_owned()];
            next.status = Rejected;
        }
        // The restaurant checks an intake price itself; a different total here means the two
        // disagree, and the order is not taken at a price the client was not shown.
        (_, Reply::OrderDetailsValidated { total })
            if order.total.as_ref().is_some_and(|placed| placed != total) =>
        {
            let placed = order.total.as_ref().expect("checked above");
            next.rejection_reasons = vec![format!(
                "the restaurant priced the order at {total}, not the {placed} it was placed at"
            )];
            next.status = Rejected;
        }
        (Pending, Reply::ConsumerValidated) => next.status = ConsumerValidated,
        (Pending, Reply::ConsumerValidatedWithin { limit }) => {
            next.consumer_limit = Some(limit.clone());
            next.status = ConsumerValidated;
        }
        (OrderDetailsValidated, Reply::ConsumerValidated) => next.status = Validated,
        (OrderDetailsValidated, Reply::ConsumerValidatedWithin { limit }) => {
            next.consumer_limit = Some(limit.clone());
            next.status = decided(&mut next);
        }
        (Pending, Reply::OrderDetailsValidated { total }) => {
            next.total = Some(total.clone());
            next.status = OrderDetailsValidated;
        }
        (ConsumerValidated, Reply::OrderDetailsValidated { total }) => {
            next.total = Some(total.clone());
            next.status = decided(&mut next);
        }
        // A repeat of a validation this order already has.
        (ConsumerValidated, Reply::ConsumerValidated | Reply::ConsumerValidatedWithin { .. })
        | (OrderDetailsValidated, Reply::OrderDetailsValidated { .. }) => {
            return Transition::Unchanged;
        }
        (Validated | Rejected, _) => unreachable!("terminal states returned above"),
    }
    next.version += 1;
    next.history.push(StatusChange {
        status: next.status,
        at,
    });
    Transition::Changed {
        order: Box::new(next),
    }
}

/// Both validations in: `Validated`, unless the total is over the limit the consumer context
/// validated the order within, by the consumer context's own rule (`Refusal::over_limit`).
fn decided(order: &mut Order) -> OrderStatus {
    let refused = match (&order.consumer_limit, &order.total) {
        (Some(limit), Some(total)) => {
            Refusal::over_limit(&order.consumer_id, total, limit).map(|r| r.to_string())
        }
        _ => None,
    };
    match refused {
        Some(reason) => {
            order.rejection_reasons = vec![reason];
            OrderStatus::Rejected
        }
        None => OrderStatus::Validated,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use OrderStatus::*;
    use proptest::prelude::*;
    use shared::testing::fixtures::eur;

    fn pending() -> Order {
        let line = LineItem {
            menu_item_id: "item-1".into(),
            quantity: 2,
            price: None,
        };
        Order::place(
            Uuid::nil(),
            "consumer-1".into(),
            "restaurant-1".into(),
            vec![line],
            at(0),
        )
    }

    fn at(second: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + second, 0).unwrap()
    }

    fn run(replies: &[Reply]) -> Order {
        replies
            .iter()
            .enumerate()
            .fold(pending(), |order, (i, reply)| {
                match apply(&order, reply, at(i as i64 + 1)) {
                    Transition::Changed { order } => *order,
                    Transition::Unchanged => order,
                }
            })
    }

    #[test]
    fn both_validations_in_either_order_validate_the_order() {
        let details = Reply::OrderDetailsValidated { total: eur(2350) };
        for replies in [
            [Reply::ConsumerValidated, details.clone()],
            [details.clone(), Reply::ConsumerValidated],
        ] {
            let order = run(&replies);
            assert_eq!(order.status, Validated);
            assert_eq!(order.total, Some(eur(2350)));
            assert_eq!(order.version, 3);
            assert_eq!(order.history.len(), 3);
        }
        let statuses: Vec<_> = run(&[Reply::ConsumerValidated, details])
            .history
            .iter()
            .map(|c| c.status)
            .collect();
        assert_eq!(statuses, [Pending, ConsumerValidated, Validated]);
    }

    #[test]
    fn a_failure_rejects_with_its_reasons() {
        let reasons = vec!["restaurant restaurant-2 is not accepting orders".to_owned()];
        let order = run(&[
            Reply::ConsumerValidated,
            Reply::OrderDetailsValidationFailed {
                reasons: reasons.clone(),
            },
        ]);
        assert_eq!(order.status, Rejected);
        assert_eq!(order.rejection_reasons, reasons);
    }

    #[test]
    fn an_order_priced_at_intake_is_validated_at_that_price_only() {
        let priced = || Order {
            total: Some(eur(2500)),
            ..pending()
        };
        let run_priced = |replies: &[Reply]| {
            replies
                .iter()
                .fold(priced(), |order, reply| match apply(&order, reply, at(1)) {
                    Transition::Changed { order } => *order,
                    Transition::Unchanged => order,
                })
        };
        let same = run_priced(&[
            Reply::OrderDetailsValidated { total: eur(2500) },
            Reply::ConsumerValidated,
        ]);
        assert_eq!((same.status, same.total), (Validated, Some(eur(2500))));
        let other = run_priced(&[
            Reply::ConsumerValidated,
            Reply::OrderDetailsValidated { total: eur(2600) },
        ]);
        assert_eq!(other.status, Rejected);
        assert_eq!(
            other.rejection_reasons,
            ["the restaurant priced the order at 26.00 EUR, not the 25.00 EUR it was placed at"]
        );
        assert_eq!(other.total, Some(eur(2500)));
    }

    #[test]
    fn a_duplicate_reply_is_a_no_op() {
        let once = run(&[Reply::ConsumerValidated]);
        assert_eq!(
            apply(&once, &Reply::ConsumerValidated, at(9)),
            Transition::Unchanged
        );
    }

    fn any_reply() -> impl Strategy<Value = Reply> {
        prop_oneof![
            Just(Reply::ConsumerValidated),
            (1u64..100_000)
                .prop_map(|amount| Reply::ConsumerValidatedWithin { limit: eur(amount) }),
            "[a-z ]{1,12}".prop_map(|reason| Reply::ConsumerValidationFailed { reason }),
            (1u64..100_000).prop_map(|amount| Reply::OrderDetailsValidated { total: eur(amount) }),
            prop::collection::vec("[a-z ]{1,12}", 1..3)
                .prop_map(|reasons| Reply::OrderDetailsValidationFailed { reasons }),
            Just(Reply::DeadlinePassed),
        ]
    }

    /// One consumer reply and one restaurant reply, each delivered 1 to 3 times, in any order.
    fn deliveries() -> impl Strategy<Value = (Vec<Reply>, Vec<Reply>)> {
        let consumer = prop_oneof![
            Just(Reply::ConsumerValidated),
            (1u64..100_000)
                .prop_map(|amount| Reply::ConsumerValidatedWithin { limit: eur(amount) }),
            "[a-z ]{1,12}".prop_map(|reason| Reply::ConsumerValidationFailed { reason }),
        ];
        let restaurant = prop_oneof![
            (1u64..100_000).prop_map(|amount| Reply::OrderDetailsValidated { total: eur(amount) }),
            prop::collection::vec("[a-z ]{1,12}", 1..3)
                .prop_map(|reasons| Reply::OrderDetailsValidationFailed { reasons }),
        ];
        (consumer, restaurant, 1usize..4, 1usize..4).prop_flat_map(|(c, r, nc, nr)| {
            let mut sent = vec![c; nc];
            sent.extend(std::iter::repeat_n(r, nr));
            let canonical = sent.clone();
            (Just(canonical), Just(sent).prop_shuffle())
        })
    }

    #[test]
    fn the_deadline_rejects_an_undecided_order_and_nothing_after_it_changes_it() {
        for before in [
            vec![],
            vec![Reply::ConsumerValidated],
            vec![Reply::OrderDetailsValidated { total: eur(5) }],
        ] {
            let mut replies = before.clone();
            replies.push(Reply::DeadlinePassed);
            let order = run(&replies);
            assert_eq!(order.status, Rejected);
            assert_eq!(order.rejection_reasons, [VALIDATION_TIMEOUT]);
            assert_eq!(order.version as usize, before.len() + 2);
            for late in [
                Reply::ConsumerValidated,
                Reply::OrderDetailsValidated { total: eur(5) },
            ] {
                assert_eq!(apply(&order, &late, at(99)), Transition::Unchanged);
            }
        }
        // Decided before its deadline: the deadline changes nothing.
        let decided = run(&[
            Reply::ConsumerValidated,
            Reply::OrderDetailsValidated { total: eur(5) },
        ]);
        assert_eq!(
            apply(&decided, &Reply::DeadlinePassed, at(99)),
            Transition::Unchanged
        );
    }

    proptest! {
        /// The deadline, 1 to 3 times, anywhere among the replies: if it came before both
        /// validations, the order is rejected for it; otherwise it changed nothing.
        #[test]
        fn the_deadline_anywhere_decides_by_what_came_first(
            (canonical, shuffled) in deliveries(),
            at_index in 0usize..8,
            copies in 1usize..4,
        ) {
            let mut replies = shuffled.clone();
            let at_index = at_index.min(replies.len());
            for _ in 0..copies {
                replies.insert(at_index, Reply::DeadlinePassed);
            }
            let before = run(&shuffled[..at_index]);
            let actual = run(&replies);
            prop_assert!(actual.status.is_terminal());
            if before.status.is_terminal() {
                prop_assert_eq!(actual.status, run(&canonical).status);
            } else {
                prop_assert_eq!(actual.status, Rejected);
                prop_assert_eq!(&actual.rejection_reasons, &vec![VALIDATION_TIMEOUT.to_owned()]);
            }
            prop_assert_eq!(actual.version as usize, actual.history.len());
        }

        #[test]
        fn any_interleaving_and_duplication_gives_the_same_outcome((canonical, shuffled) in deliveries()) {
            let expected = run(&canonical);
            let actual = run(&shuffled);
            prop_assert_eq!(actual.status, expected.status);
            prop_assert!(actual.status.is_terminal());
            // The total is known whenever the restaurant validated, whatever the order.
            if actual.status == Validated {
                prop_assert_eq!(&actual.total, &expected.total);
                prop_assert!(actual.total.is_some());
            }
            // Every change bumps the version by one and leaves one history entry.
            prop_assert_eq!(actual.version as usize, actual.history.len());
        }

        /// Whatever the replies, an order priced at intake ends validated at its intake total
        /// or rejected: never validated at another price.
        #[test]
        fn an_intake_price_is_the_only_price_an_order_is_validated_at(
            (_, shuffled) in deliveries(),
            placed in 1u64..100_000,
        ) {
            let order = shuffled.iter().fold(Order { total: Some(eur(placed)), ..pending() }, |order, reply| {
                match apply(&order, reply, at(1)) {
                    Transition::Changed { order } => *order,
                    Transition::Unchanged => order,
                }
            });
            prop_assert!(order.status.is_terminal());
            prop_assert_eq!(order.total, Some(eur(placed)));
            let at_the_intake_price = Reply::OrderDetailsValidated { total: eur(placed) };
            if order.status == Validated {
                prop_assert!(shuffled.contains(&at_the_intake_price));
            }
        }

        /// The consumer's limit holds for every order, priced at intake (the consumer context
        /// checks the total itself) or not (it answers with the limit, and the order context
        /// applies its rule once the restaurant prices the order), whichever reply comes first
        /// and however often.
        #[test]
        fn the_spending_limit_holds_priced_at_intake_or_not(
            total in 1u64..20_000,
            limit in 1u64..20_000,
            priced_at_intake in any::<bool>(),
            consumer_first in any::<bool>(),
            copies in (1usize..3, 1usize..3),
        ) {
            let over = Refusal::over_limit("consumer-1", &eur(total), &eur(limit)).map(|r| r.to_string());
            let consumer = match (priced_at_intake, &over) {
                (true, Some(reason)) => Reply::ConsumerValidationFailed { reason: reason.clone() },
                (true, None) => Reply::ConsumerValidated,
                (false, _) => Reply::ConsumerValidatedWithin { limit: eur(limit) },
            };
            let restaurant = Reply::OrderDetailsValidated { total: eur(total) };
            let mut replies = vec![consumer; copies.0];
            replies.extend(std::iter::repeat_n(restaurant, copies.1));
            if !consumer_first {
                replies.reverse();
            }
            let placed = Order { total: priced_at_intake.then(|| eur(total)), ..pending() };
            let order = replies.iter().fold(placed, |order, reply| match apply(&order, reply, at(1)) {
                Transition::Changed { order } => *order,
                Transition::Unchanged => order,
            });
            // The rule stated here on its own, not through `over_limit`.
            if total <= limit {
                prop_assert_eq!(order.status, Validated);
            } else {
                prop_assert_eq!(order.status, Rejected);
                // EUR has two minor digits: 2500 is shown as 25.00 EUR.
                let eur_text = |minor: u64| format!("{}.{:02} EUR", minor / 100, minor % 100);
                prop_assert_eq!(order.rejection_reasons, vec![format!(
                    "order total {} is over consumer consumer-1's limit of {}",
                    eur_text(total),
                    eur_text(limit)
                )]);
            }
        }

        #[test]
        fn terminal_states_never_change(prefix in prop::collection::vec(any_reply(), 0..8), reply in any_reply()) {
            let order = run(&prefix);
            if order.status.is_terminal() {
                prop_assert_eq!(apply(&order, &reply, at(99)), Transition::Unchanged);
            }
        }

        #[test]
        fn a_change_always_moves_forward(prefix in prop::collection::vec(any_reply(), 0..8), reply in any_reply()) {
            let order = run(&prefix);
            if let Transition::Changed { order: next } = apply(&order, &reply, at(99)) {
                prop_assert_eq!(next.version, order.version + 1);
                prop_assert_ne!(next.status, order.status);
                prop_assert_ne!(next.status, Pending);
            }
        }
    }
}
