//! Consumers and the rule that says whether one may place an order. Pure.

use serde::{Deserialize, Serialize};
pub use shared::language::events::ConsumerStatus;
use shared::language::events::Money;
use shared::language::refusals::Refusal;

/// An item of the consumers table: its owner's state, changed only by `PUT /consumers/{id}`,
/// which raises `version` by one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Consumer {
    pub consumer_id: String,
    pub version: u64,
    pub name: String,
    pub status: ConsumerStatus,
    /// The most one order may cost; no limit when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_limit: Option<Money>,
}

/// Whether `consumer_id` (found as `consumer`) may place an order: `Ok(None)` when it may,
/// `Ok(Some(limit))` when it may if the order's total keeps to `limit` (the order came without a
/// total to check: the order context applies the rule once the restaurant prices it).
pub fn check(
    consumer_id: &str,
    consumer: Option<&Consumer>,
    total: Option<&Money>,
) -> Result<Option<Money>, String> {
    let Some(consumer) = consumer else {
        let consumer_id = consumer_id.to_owned();
        return Err(Refusal::ConsumerUnknown { consumer_id }.to_string());
    };
    if consumer.status == ConsumerStatus::Suspended {
        let consumer_id = consumer_id.to_owned();
        return Err(Refusal::ConsumerSuspended { consumer_id }.to_string());
    }
    match (&consumer.order_limit, total) {
        (Some(limit), Some(total)) => match Refusal::over_limit(consumer_id, total, limit) {
            Some(refusal) => Err(refusal.to_string()),
            None => Ok(None),
        },
        (Some(limit), None) => Ok(Some(limit.clone())),
        (None, _) => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::testing::fixtures::eur;

    fn consumer(status: ConsumerStatus) -> Consumer {
        Consumer {
            consumer_id: "consumer-1".into(),
            version: 1,
            name: "Ada".into(),
            status,
            order_limit: Some(eur(10_000)),
        }
    }

    #[test]
    fn an_active_consumer_may_order_and_an_unpriced_order_within_its_limit() {
        let active = consumer(ConsumerStatus::Active);
        assert_eq!(
            check("consumer-1", Some(&active), Some(&eur(10_000))),
            Ok(None)
        );
        // Without a total, the answer carries the limit the total must keep to.
        assert_eq!(
            check("consumer-1", Some(&active), None),
            Ok(Some(eur(10_000)))
        );
        let unlimited = Consumer {
            order_limit: None,
            ..active
        };
        assert_eq!(check("consumer-1", Some(&unlimited), None), Ok(None));
    }

    #[test]
    fn unknown_and_suspended_consumers_may_not() {
        assert_eq!(
            check("consumer-9", None, None),
            Err("consumer consumer-9 is unknown".into())
        );
        let suspended = consumer(ConsumerStatus::Suspended);
        assert_eq!(
            check("consumer-1", Some(&suspended), None),
            Err("consumer consumer-1 is suspended".into())
        );
    }

    #[test]
    fn a_known_total_over_the_limit_is_refused() {
        let active = consumer(ConsumerStatus::Active);
        let error = check("consumer-1", Some(&active), Some(&eur(10_001))).unwrap_err();
        assert!(
            error.contains("over consumer consumer-1's limit"),
            "{error}"
        );
        let dollars = Money {
            currency: "USD".into(),
            amount_minor: 1,
        };
        assert!(check("consumer-1", Some(&active), Some(&dollars)).is_err());
    }
}
