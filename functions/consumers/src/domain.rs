//! Consumers and the rule that says whether one may place an order. Pure.

use serde::{Deserialize, Serialize};
pub use shared::events::ConsumerStatus;
use shared::events::Money;

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

/// Whether `consumer_id` (found as `consumer`) may place an order. The limit is checked when
/// the order's total is known: when it was priced at intake (`OrderCreated.total`).
pub fn check(
    consumer_id: &str,
    consumer: Option<&Consumer>,
    total: Option<&Money>,
) -> Result<(), String> {
    let Some(consumer) = consumer else {
        return Err(format!("consumer {consumer_id} is unknown"));
    };
    if consumer.status == ConsumerStatus::Suspended {
        return Err(format!("consumer {consumer_id} is suspended"));
    }
    if let (Some(limit), Some(total)) = (&consumer.order_limit, total)
        && (total.currency != limit.currency || total.amount_minor > limit.amount_minor)
    {
        return Err(format!(
            "order total {} {} is over consumer {consumer_id}'s limit of {} {}",
            total.amount_minor, total.currency, limit.amount_minor, limit.currency
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eur(amount_minor: u64) -> Money {
        Money {
            currency: "EUR".into(),
            amount_minor,
        }
    }

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
    fn an_active_consumer_may_order() {
        assert_eq!(
            check("consumer-1", Some(&consumer(ConsumerStatus::Active)), None),
            Ok(())
        );
        assert_eq!(
            check(
                "consumer-1",
                Some(&consumer(ConsumerStatus::Active)),
                Some(&eur(10_000))
            ),
            Ok(())
        );
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
