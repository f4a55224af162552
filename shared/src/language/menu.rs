//! How a menu prices an order's lines: the restaurant context prices with its own menu, the
//! order context with its replica of it; both by this one rule. Pure.

use crate::language::events::{LineItem, MenuItem, Money};

/// Why a line cannot be priced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LineProblem {
    NotOnMenu,
    Unavailable,
}

/// The lines with their unit prices and the total, or every line that cannot be priced (by
/// index) and whether the total overflowed. A menu has one currency (its owner checks that).
pub fn price(menu: &[MenuItem], lines: &[LineItem]) -> Result<Priced, Unpriced> {
    let mut problems = Vec::new();
    let mut priced = Vec::with_capacity(lines.len());
    let mut total: Option<Money> = None;
    let mut overflow = false;
    for (index, line) in lines.iter().enumerate() {
        let found = menu
            .iter()
            .find(|item| item.menu_item_id == line.menu_item_id);
        let item = match found {
            None => {
                problems.push((index, LineProblem::NotOnMenu));
                continue;
            }
            Some(item) if !item.available => {
                problems.push((index, LineProblem::Unavailable));
                continue;
            }
            Some(item) => item,
        };
        let cost = item
            .price
            .amount_minor
            .checked_mul(u64::from(line.quantity));
        let sum = total.as_ref().map_or(Some(0), |t| Some(t.amount_minor));
        match cost.zip(sum).and_then(|(cost, sum)| cost.checked_add(sum)) {
            Some(amount_minor) => {
                total = Some(Money {
                    currency: item.price.currency.clone(),
                    amount_minor,
                })
            }
            None => overflow = true,
        }
        priced.push(LineItem {
            price: Some(item.price.clone()),
            ..line.clone()
        });
    }
    if !problems.is_empty() || overflow {
        return Err(Unpriced { problems, overflow });
    }
    Ok(Priced {
        lines: priced,
        total: total.unwrap_or(Money {
            currency: String::new(),
            amount_minor: 0,
        }),
    })
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Priced {
    pub lines: Vec<LineItem>,
    pub total: Money,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unpriced {
    pub problems: Vec<(usize, LineProblem)>,
    /// The total does not fit in 64 bits of minor units.
    pub overflow: bool,
}

/// Every currency of a menu is the same one (or the menu is empty).
pub fn one_currency(menu: &[MenuItem]) -> bool {
    menu.windows(2)
        .all(|pair| pair[0].price.currency == pair[1].price.currency)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::fixtures::{line, menu_item as item};

    #[test]
    fn lines_are_priced_and_summed() {
        let menu = [item("a", 1250, true), item("b", 450, true)];
        let priced = price(&menu, &[line("a", 2), line("b", 1)]).unwrap();
        assert_eq!(priced.total.amount_minor, 2950);
        assert_eq!(priced.lines[0].price.as_ref().unwrap().amount_minor, 1250);
    }

    #[test]
    fn every_line_that_cannot_be_priced_is_named() {
        let menu = [item("a", 1250, true), item("c", 399, false)];
        let unpriced = price(&menu, &[line("x", 1), line("a", 1), line("c", 1)]).unwrap_err();
        assert_eq!(
            unpriced.problems,
            [(0, LineProblem::NotOnMenu), (2, LineProblem::Unavailable)]
        );
        let huge = price(&[item("a", u64::MAX, true)], &[line("a", 2)]).unwrap_err();
        assert!(huge.overflow);
    }

    #[test]
    fn a_menu_has_one_currency() {
        let mut dollars = item("b", 1, true);
        dollars.price.currency = "USD".into();
        assert!(one_currency(&[item("a", 1, true), item("c", 2, true)]));
        assert!(!one_currency(&[item("a", 1, true), dollars]));
    }
}
