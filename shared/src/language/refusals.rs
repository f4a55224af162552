//! Why an order is refused, in the words of every context that decides it: the order context at
//! intake (from its replica) and when both replies are in, the consumer and restaurant contexts
//! when they validate it. Written once, so that a client reads the same reason whichever context
//! found it first.

use std::fmt;

use crate::language::events::{LineItem, Money};
use crate::language::menu::{LineProblem, Unpriced};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    ConsumerUnknown {
        consumer_id: String,
    },
    ConsumerSuspended {
        consumer_id: String,
    },
    /// The consumer context's spending rule: a total in another currency than the limit's is
    /// over it too.
    OverLimit {
        consumer_id: String,
        total: Money,
        limit: Money,
    },
    RestaurantUnknown {
        restaurant_id: String,
    },
    NotAcceptingOrders {
        restaurant_id: String,
    },
    NotOnMenu {
        line: usize,
        menu_item_id: String,
        restaurant_id: String,
    },
    Unavailable {
        line: usize,
        menu_item_id: String,
    },
    /// The total does not fit in 64 bits of minor units.
    TotalTooLarge,
    /// Priced at intake from the replica, the order costs something else on the menu now.
    PriceChanged {
        restaurant_id: String,
        placed_at: Money,
        now: Money,
    },
}

impl Refusal {
    /// The consumer context's spending rule, applied the same way wherever the total is known.
    pub fn over_limit(consumer_id: &str, total: &Money, limit: &Money) -> Option<Self> {
        (total.currency != limit.currency || total.amount_minor > limit.amount_minor).then(|| {
            Self::OverLimit {
                consumer_id: consumer_id.to_owned(),
                total: total.clone(),
                limit: limit.clone(),
            }
        })
    }

    /// Every line of `lines` the menu of `restaurant_id` could not price, then the total's
    /// overflow.
    pub fn unpriced(unpriced: &Unpriced, lines: &[LineItem], restaurant_id: &str) -> Vec<Self> {
        let mut refusals: Vec<Self> = unpriced
            .problems
            .iter()
            .map(|(line, problem)| {
                let menu_item_id = lines[*line].menu_item_id.clone();
                match problem {
                    LineProblem::NotOnMenu => Self::NotOnMenu {
                        line: *line,
                        menu_item_id,
                        restaurant_id: restaurant_id.to_owned(),
                    },
                    LineProblem::Unavailable => Self::Unavailable {
                        line: *line,
                        menu_item_id,
                    },
                }
            })
            .collect();
        if unpriced.overflow {
            refusals.push(Self::TotalTooLarge);
        }
        refusals
    }

    /// The field of `POST /orders`' body the refusal is about, as a JSON path.
    pub fn field(&self) -> String {
        match self {
            Self::ConsumerUnknown { .. } | Self::ConsumerSuspended { .. } => "consumerId".into(),
            Self::RestaurantUnknown { .. } | Self::NotAcceptingOrders { .. } => {
                "restaurantId".into()
            }
            Self::NotOnMenu { line, .. } | Self::Unavailable { line, .. } => {
                format!("lineItems[{line}].menuItemId")
            }
            Self::OverLimit { .. } | Self::TotalTooLarge | Self::PriceChanged { .. } => {
                "lineItems".into()
            }
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ConsumerUnknown { consumer_id } => write!(f, "consumer {consumer_id} is unknown"),
            Self::ConsumerSuspended { consumer_id } => {
                write!(f, "consumer {consumer_id} is suspended")
            }
            Self::OverLimit {
                consumer_id,
                total,
                limit,
            } => write!(
                f,
                "order total {total} is over consumer {consumer_id}'s limit of {limit}"
            ),
            Self::RestaurantUnknown { restaurant_id } => {
                write!(f, "restaurant {restaurant_id} is unknown")
            }
            Self::NotAcceptingOrders { restaurant_id } => {
                write!(f, "restaurant {restaurant_id} is not accepting orders")
            }
            Self::NotOnMenu {
                menu_item_id,
                restaurant_id,
                ..
            } => write!(
                f,
                "menu item {menu_item_id} is not on the menu of restaurant {restaurant_id}"
            ),
            Self::Unavailable { menu_item_id, .. } => {
                write!(f, "menu item {menu_item_id} is not available")
            }
            Self::TotalTooLarge => f.write_str("the order's total is too large to price"),
            Self::PriceChanged {
                restaurant_id,
                placed_at,
                now,
            } => write!(
                f,
                "the price changed: the order was placed at {placed_at}, restaurant \
                 {restaurant_id}'s menu now makes it {now}; place it again at the new price"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_spending_rule_refuses_a_total_over_the_limit_or_in_another_currency() {
        let eur = |minor| Money::new("EUR", minor);
        assert_eq!(Refusal::over_limit("c-1", &eur(2000), &eur(2000)), None);
        let over = Refusal::over_limit("c-1", &eur(2500), &eur(2000)).unwrap();
        assert_eq!(
            over.to_string(),
            "order total 25.00 EUR is over consumer c-1's limit of 20.00 EUR"
        );
        assert_eq!(over.field(), "lineItems");
        assert!(Refusal::over_limit("c-1", &Money::new("USD", 1), &eur(2000)).is_some());
    }

    #[test]
    fn unpriced_lines_are_refused_each_with_its_field_then_the_overflow() {
        let lines = ["a", "b", "c"].map(|id| LineItem::unpriced(id, 1));
        let unpriced = Unpriced {
            problems: vec![(0, LineProblem::NotOnMenu), (2, LineProblem::Unavailable)],
            overflow: true,
        };
        let refusals = Refusal::unpriced(&unpriced, &lines, "r-1");
        let shown: Vec<(String, String)> = refusals
            .iter()
            .map(|r| (r.field(), r.to_string()))
            .collect();
        assert_eq!(
            shown,
            [
                (
                    "lineItems[0].menuItemId".to_owned(),
                    "menu item a is not on the menu of restaurant r-1".to_owned()
                ),
                (
                    "lineItems[2].menuItemId".to_owned(),
                    "menu item c is not available".to_owned()
                ),
                (
                    "lineItems".to_owned(),
                    "the order's total is too large to price".to_owned()
                ),
            ]
        );
    }
}
