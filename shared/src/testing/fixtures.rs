//! The published language's values as tests write them: euros, menu items, lines.

use crate::language::events::{LineItem, MenuItem, Money};

pub fn eur(amount_minor: u64) -> Money {
    Money::new("EUR", amount_minor)
}

/// A menu item named as its id, priced in euros.
pub fn menu_item(id: &str, eur_minor: u64, available: bool) -> MenuItem {
    MenuItem {
        menu_item_id: id.into(),
        name: id.into(),
        price: eur(eur_minor),
        available,
    }
}

pub fn line(menu_item_id: &str, quantity: u32) -> LineItem {
    LineItem::unpriced(menu_item_id, quantity)
}
