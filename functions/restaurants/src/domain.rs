//! Restaurants, menus and pricing. Pure.

use serde::{Deserialize, Serialize};
use shared::language::events::{LineItem, MenuItem, Money};
use shared::language::menu;
use shared::language::refusals::Refusal;

/// An item of the restaurants table, its menu included: its owner's state, changed only by
/// `PUT /restaurants/{id}`, which raises `version` by one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Restaurant {
    pub restaurant_id: String,
    pub version: u64,
    pub name: String,
    pub accepting_orders: bool,
    pub menu: Vec<MenuItem>,
}

/// Prices the order from the restaurant's own menu, or gives every reason it cannot be taken.
/// An order priced at intake (`expected`, from the order context's replica) must cost the same
/// now: a price changed since is a reason, and the client places the order again.
pub fn check(
    restaurant_id: &str,
    restaurant: Option<&Restaurant>,
    lines: &[LineItem],
    expected: Option<&Money>,
) -> Result<Money, Vec<String>> {
    let restaurant_id = restaurant_id.to_owned();
    let Some(restaurant) = restaurant else {
        return Err(vec![
            Refusal::RestaurantUnknown { restaurant_id }.to_string(),
        ]);
    };
    let mut refusals = Vec::new();
    if !restaurant.accepting_orders {
        refusals.push(Refusal::NotAcceptingOrders {
            restaurant_id: restaurant_id.clone(),
        });
    }
    let priced = menu::price(&restaurant.menu, lines);
    if let Err(unpriced) = &priced {
        refusals.extend(Refusal::unpriced(unpriced, lines, &restaurant_id));
    }
    match priced {
        Ok(priced) if refusals.is_empty() => match expected {
            Some(expected) if *expected != priced.total => Err(vec![
                Refusal::PriceChanged {
                    restaurant_id,
                    placed_at: expected.clone(),
                    now: priced.total,
                }
                .to_string(),
            ]),
            _ => Ok(priced.total),
        },
        _ => Err(refusals.iter().map(ToString::to_string).collect()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::testing::fixtures::{eur, line, menu_item as item};

    fn restaurant(accepting_orders: bool) -> Restaurant {
        Restaurant {
            restaurant_id: "restaurant-1".into(),
            version: 1,
            name: "Ajanta".into(),
            accepting_orders,
            menu: vec![
                item("item-1", 1250, true),
                item("item-2", 450, true),
                item("item-3", 999, false),
            ],
        }
    }

    #[test]
    fn an_order_is_priced_from_the_menu() {
        let total = check(
            "restaurant-1",
            Some(&restaurant(true)),
            &[line("item-1", 2), line("item-2", 1)],
            None,
        );
        assert_eq!(
            total,
            Ok(Money {
                currency: "EUR".into(),
                amount_minor: 2950
            })
        );
    }

    #[test]
    fn every_reason_is_given() {
        let reasons = check(
            "restaurant-1",
            Some(&restaurant(false)),
            &[line("item-3", 1), line("item-9", 1), line("item-1", 1)],
            None,
        )
        .unwrap_err();
        assert_eq!(
            reasons,
            [
                "restaurant restaurant-1 is not accepting orders",
                "menu item item-3 is not available",
                "menu item item-9 is not on the menu of restaurant restaurant-1",
            ]
        );
    }

    #[test]
    fn an_unknown_restaurant_is_the_only_reason() {
        assert_eq!(
            check("restaurant-9", None, &[line("item-1", 1)], None),
            Err(vec!["restaurant restaurant-9 is unknown".to_owned()])
        );
    }

    #[test]
    fn a_total_that_overflows_is_refused_not_wrapped() {
        let mut expensive = restaurant(true);
        expensive.menu[0].price.amount_minor = u64::MAX / 2;
        assert!(check("restaurant-1", Some(&expensive), &[line("item-1", 3)], None).is_err());
    }

    #[test]
    fn an_order_priced_at_intake_must_cost_the_same_now() {
        let lines = [line("item-1", 2)];
        let open = restaurant(true);
        assert_eq!(
            check("restaurant-1", Some(&open), &lines, Some(&eur(2500))),
            Ok(eur(2500))
        );
        let reasons = check("restaurant-1", Some(&open), &lines, Some(&eur(2400))).unwrap_err();
        assert_eq!(
            reasons,
            [
                "the price changed: the order was placed at 24.00 EUR, restaurant restaurant-1's \
              menu now makes it 25.00 EUR; place it again at the new price"
            ]
        );
    }
}
