//! `POST /orders` input: decoding with field paths in every error, then the documented bounds.
//! Only local data is consulted; whether the consumer or the menu item exists is for the
//! validators to say, asynchronously.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use shared::language::events::LineItem;
use shared::language::input::{FieldError, check_id};

pub const MAX_BODY_BYTES: usize = 64 * 1024;
pub const MAX_LINE_ITEMS: usize = 50;
pub const MAX_QUANTITY: i64 = 100;

/// The body as sent. Quantities are decoded as any JSON number so that `0`, `-1`, `10^12` and
/// `1.5` all reach the bounds check and get the same message, rather than a type error for some
/// of them; `93.0` is the integer 93, as JSON Schema counts it.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct PlaceOrderBody {
    consumer_id: String,
    restaurant_id: String,
    line_items: Vec<LineItemBody>,
    #[serde(default)]
    callback_url: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct LineItemBody {
    menu_item_id: String,
    quantity: serde_json::Number,
}

/// The quantity as a whole number, when it is one (`2`, `2.0`, `-1e3`); saturated far out.
fn whole(number: &serde_json::Number) -> Option<i64> {
    if let Some(value) = number.as_i64() {
        return Some(value);
    }
    if number.as_u64().is_some() {
        return Some(i64::MAX);
    }
    let value = number.as_f64()?;
    // `as` saturates: 1e300 becomes i64::MAX, which the bounds check refuses.
    (value.fract() == 0.0).then_some(value as i64)
}

/// A request that passed every local check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PlaceOrder {
    pub consumer_id: String,
    pub restaurant_id: String,
    pub line_items: Vec<LineItem>,
    /// Where the outcome is POSTed; checked against SSRF by the API (`callback`), not here.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub callback_url: Option<String>,
}

impl PlaceOrder {
    /// Identifies the request's meaning, not its bytes: the same order sent with other spacing
    /// or key order has the same fingerprint. Idempotent retries are compared on it.
    pub fn fingerprint(&self) -> String {
        let canonical = serde_json::to_vec(self).unwrap_or_default();
        Sha256::digest(canonical)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}

/// Why a body was refused: it is not the JSON we document, or it breaks a bound.
#[derive(Debug, PartialEq, Eq)]
pub enum Invalid {
    Malformed(FieldError),
    OutOfBounds(Vec<FieldError>),
}

pub fn parse(body: &[u8]) -> Result<PlaceOrder, Invalid> {
    let decoder = &mut serde_json::Deserializer::from_slice(body);
    let parsed: PlaceOrderBody = serde_path_to_error::deserialize(decoder).map_err(|e| {
        let path = e.path().to_string();
        let field = if path == "." { "body".to_owned() } else { path };
        Invalid::Malformed(FieldError::new(field, e.inner().to_string()))
    })?;
    validate(parsed).map_err(Invalid::OutOfBounds)
}

fn validate(body: PlaceOrderBody) -> Result<PlaceOrder, Vec<FieldError>> {
    let mut errors = Vec::new();
    check_id(&mut errors, "consumerId", &body.consumer_id);
    check_id(&mut errors, "restaurantId", &body.restaurant_id);
    if !(1..=MAX_LINE_ITEMS).contains(&body.line_items.len()) {
        errors.push(FieldError::new(
            "lineItems",
            format!(
                "must hold between 1 and {MAX_LINE_ITEMS} items, got {}",
                body.line_items.len()
            ),
        ));
    }
    for (i, line) in body.line_items.iter().enumerate() {
        check_id(
            &mut errors,
            &format!("lineItems[{i}].menuItemId"),
            &line.menu_item_id,
        );
        if !whole(&line.quantity).is_some_and(|q| (1..=MAX_QUANTITY).contains(&q)) {
            errors.push(FieldError::new(
                format!("lineItems[{i}].quantity"),
                format!(
                    "must be a whole number between 1 and {MAX_QUANTITY}, got {}",
                    line.quantity
                ),
            ));
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(PlaceOrder {
        consumer_id: body.consumer_id,
        restaurant_id: body.restaurant_id,
        line_items: body
            .line_items
            .into_iter()
            .map(|line| LineItem {
                menu_item_id: line.menu_item_id,
                // A whole number in 1..=100 after the check above.
                quantity: whole(&line.quantity).unwrap_or_default() as u32,
                price: None,
            })
            .collect(),
        callback_url: body.callback_url,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn body(value: serde_json::Value) -> Vec<u8> {
        serde_json::to_vec(&value).unwrap()
    }

    fn valid() -> serde_json::Value {
        json!({
            "consumerId": "consumer-1",
            "restaurantId": "restaurant-1",
            "lineItems": [{"menuItemId": "item-1", "quantity": 2}]
        })
    }

    fn bounds_errors(value: serde_json::Value) -> Vec<FieldError> {
        match parse(&body(value)) {
            Err(Invalid::OutOfBounds(errors)) => errors,
            other => panic!("expected bounds errors, got {other:?}"),
        }
    }

    #[test]
    fn a_valid_body_parses() {
        let order = parse(&body(valid())).unwrap();
        assert_eq!(order.line_items[0].quantity, 2);
    }

    #[test]
    fn type_errors_name_the_field_path() {
        let mut value = valid();
        value["lineItems"][0]["quantity"] = json!("two");
        let Err(Invalid::Malformed(error)) = parse(&body(value)) else {
            panic!()
        };
        assert_eq!(error.field, "lineItems[0].quantity");
    }

    #[test]
    fn missing_and_unknown_fields_are_named() {
        let Err(Invalid::Malformed(error)) = parse(br#"{"consumerId":"c"}"#) else {
            panic!()
        };
        assert!(error.message.contains("restaurantId"), "{error:?}");
        let mut value = valid();
        value["coupon"] = json!("FREE");
        let Err(Invalid::Malformed(error)) = parse(&body(value)) else {
            panic!()
        };
        assert!(error.message.contains("coupon"), "{error:?}");
    }

    #[test]
    fn quantities_outside_1_to_100_are_refused_with_their_path() {
        for quantity in [0i64, -1, 101, 1_000_000_000_000] {
            let mut value = valid();
            value["lineItems"][0]["quantity"] = json!(quantity);
            let errors = bounds_errors(value);
            assert_eq!(errors[0].field, "lineItems[0].quantity", "{quantity}");
        }
    }

    #[test]
    fn a_whole_number_written_with_a_fraction_is_that_number() {
        let mut value = valid();
        value["lineItems"][0]["quantity"] = json!(93.0);
        assert_eq!(parse(&body(value)).unwrap().line_items[0].quantity, 93);
        for quantity in [
            json!(1.5),
            json!(-2.0),
            json!(1e300),
            json!(18446744073709551615u64),
        ] {
            let mut value = valid();
            value["lineItems"][0]["quantity"] = quantity.clone();
            assert_eq!(
                bounds_errors(value)[0].field,
                "lineItems[0].quantity",
                "{quantity}"
            );
        }
    }

    #[test]
    fn line_item_count_is_bounded() {
        let mut value = valid();
        value["lineItems"] = json!([]);
        assert_eq!(bounds_errors(value)[0].field, "lineItems");
        let mut value = valid();
        value["lineItems"] = json!(vec![json!({"menuItemId": "item-1", "quantity": 1}); 51]);
        assert_eq!(bounds_errors(value)[0].field, "lineItems");
    }

    #[test]
    fn every_broken_field_is_reported_at_once() {
        let value = json!({
            "consumerId": " ",
            "restaurantId": "r".repeat(65),
            "lineItems": [{"menuItemId": "", "quantity": 0}]
        });
        let fields: Vec<_> = bounds_errors(value).into_iter().map(|e| e.field).collect();
        assert_eq!(
            fields,
            [
                "consumerId",
                "restaurantId",
                "lineItems[0].menuItemId",
                "lineItems[0].quantity"
            ]
        );
    }

    #[test]
    fn the_fingerprint_ignores_formatting_but_not_content() {
        let compact = parse(&body(valid())).unwrap();
        let spaced = parse(serde_json::to_string_pretty(&valid()).unwrap().as_bytes()).unwrap();
        assert_eq!(compact.fingerprint(), spaced.fingerprint());
        let mut other = valid();
        other["lineItems"][0]["quantity"] = json!(3);
        assert_ne!(
            compact.fingerprint(),
            parse(&body(other)).unwrap().fingerprint()
        );
    }
}
