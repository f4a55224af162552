//! Restaurants, menus and pricing. Pure.

use serde::{Deserialize, Serialize};
use shared::events::{LineItem, Money};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MenuItem {
    pub menu_item_id: String,
    pub name: String,
    /// In the restaurant's currency's minor unit (cents).
    pub price_minor: u64,
    pub available: bool,
}

/// An item of the restaurants table, its menu included.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Restaurant {
    pub restaurant_id: String,
    pub name: String,
    pub accepting_orders: bool,
    pub currency: String,
    pub menu: Vec<MenuItem>,
}

/// Prices the order from the restaurant's own menu, or gives every reason it cannot be taken.
pub fn price(
    restaurant_id: &str,
    restaurant: Option<&Restaurant>,
    lines: &[LineItem],
) -> Result<Money, Vec<String>> {
    let Some(restaurant) = restaurant else {
        return Err(vec![format!("restaurant {restaurant_id} is unknown")]);
    };
    let mut reasons = Vec::new();
    if !restaurant.accepting_orders {
        reasons.push(format!(
            "restaurant {restaurant_id} is not accepting orders"
        ));
    }
    let mut total: u64 = 0;
    for line in lines {
        let id = &line.menu_item_id;
        match restaurant.menu.iter().find(|item| &item.menu_item_id == id) {
            None => reasons.push(format!(
                "menu item {id} is not on the menu of restaurant {restaurant_id}"
            )),
            Some(item) if !item.available => {
                reasons.push(format!("menu item {id} is not available"))
            }
            Some(item) => {
                match item
                    .price_minor
                    .checked_mul(u64::from(line.quantity))
                    .and_then(|cost| total.checked_add(cost))
                {
                    Some(sum) => total = sum,
                    None => reasons.push("the order's total is too large to price".to_owned()),
                }
            }
        }
    }
    if reasons.is_empty() {
        Ok(Money {
            currency: restaurant.currency.clone(),
            amount_minor: total,
        })
    } else {
        Err(reasons)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(id: &str, price_minor: u64, available: bool) -> MenuItem {
        MenuItem {
            menu_item_id: id.into(),
            name: id.into(),
            price_minor,
            available,
        }
    }

    fn restaurant(accepting_orders: bool) -> Restaurant {
        Restaurant {
            restaurant_id: "restaurant-1".into(),
            name: "Ajanta".into(),
            accepting_orders,
            currency: "EUR".into(),
            menu: vec![
                item("item-1", 1250, true),
                item("item-2", 450, true),
                item("item-3", 999, false),
            ],
        }
    }

    fn line(id: &str, quantity: u32) -> LineItem {
        LineItem {
            menu_item_id: id.into(),
            quantity,
        }
    }

    #[test]
    fn an_order_is_priced_from_the_menu() {
        let total = price(
            "restaurant-1",
            Some(&restaurant(true)),
            &[line("item-1", 2), line("item-2", 1)],
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
        let reasons = price(
            "restaurant-1",
            Some(&restaurant(false)),
            &[line("item-3", 1), line("item-9", 1), line("item-1", 1)],
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
            price("restaurant-9", None, &[line("item-1", 1)]),
            Err(vec!["restaurant restaurant-9 is unknown".to_owned()])
        );
    }

    #[test]
    fn a_total_that_overflows_is_refused_not_wrapped() {
        let mut expensive = restaurant(true);
        expensive.menu[0].price_minor = u64::MAX / 2;
        assert!(price("restaurant-1", Some(&expensive), &[line("item-1", 3)]).is_err());
    }
}
