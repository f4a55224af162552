//! The published language: every event that crosses a context boundary, as it travels in the
//! EventBridge envelope (`source` names the context, `detail-type` the event, `detail` the body).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The schema version every event published by this code carries.
pub const SCHEMA_VERSION: u32 = 1;

/// The `source` of each context's events.
pub mod source {
    pub const ORDERS: &str = "orders";
    pub const CONSUMERS: &str = "consumers";
    pub const RESTAURANTS: &str = "restaurants";
}

/// Fields every event's `detail` carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventMeta {
    /// Unique per event; consumers de-duplicate on it.
    pub event_id: Uuid,
    pub order_id: Uuid,
    pub occurred_at: DateTime<Utc>,
    pub schema_version: u32,
    /// Carried from the HTTP request through every event, so one order's logs can be joined.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<String>,
}

impl EventMeta {
    /// Metadata for a new event about `order_id`, caused by a flow with `correlation_id`.
    pub fn new(order_id: Uuid, correlation_id: Option<String>) -> Self {
        Self {
            event_id: Uuid::now_v7(),
            order_id,
            occurred_at: Utc::now(),
            schema_version: SCHEMA_VERSION,
            correlation_id,
        }
    }

    /// Metadata for the event that answers `cause`. Its id is derived from the cause's id and
    /// the answer's type, so an answer sent again after a retry carries the same `eventId` and
    /// is recognised downstream as the same event.
    pub fn answering(cause: &EventMeta, detail_type: &str) -> Self {
        Self {
            event_id: Uuid::new_v5(&cause.event_id, detail_type.as_bytes()),
            order_id: cause.order_id,
            occurred_at: Utc::now(),
            schema_version: SCHEMA_VERSION,
            correlation_id: cause.correlation_id.clone(),
        }
    }
}

/// A money amount in the currency's minor unit (cents), so sums are exact.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Money {
    pub currency: String,
    #[serde(deserialize_with = "whole_number")]
    pub amount_minor: u64,
}

impl Money {
    pub fn new(currency: impl Into<String>, amount_minor: u64) -> Self {
        Self {
            currency: currency.into(),
            amount_minor,
        }
    }
}

impl std::fmt::Display for Money {
    /// As a person reads it: in the currency's major unit, with as many decimals as ISO 4217
    /// gives it minor units (`25.00 EUR`, `1500 JPY`, `1.250 KWD`). A code without a minor unit
    /// in ISO 4217 is shown in minor units, saying so.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let exponent = iso_currency::Currency::from_code(&self.currency).and_then(|c| c.exponent());
        match exponent {
            Some(0) => write!(f, "{} {}", self.amount_minor, self.currency),
            Some(digits) => {
                let scale = 10u64.pow(u32::from(digits));
                let (major, minor) = (self.amount_minor / scale, self.amount_minor % scale);
                let width = usize::from(digits);
                write!(f, "{major}.{minor:0width$} {}", self.currency)
            }
            None => write!(f, "{} minor units of {}", self.amount_minor, self.currency),
        }
    }
}

/// A count as JSON Schema's `integer` takes it: whole, in whatever form (`100`, `100.0`,
/// `1e2`), as `quantity` is; `100.5` and `-1` are refused.
fn whole_number<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
    let number = serde_json::Number::deserialize(deserializer)?;
    if let Some(whole) = number.as_u64() {
        return Ok(whole);
    }
    match number.as_f64() {
        // Below 2^64, so the conversion is exact for every whole value f64 holds.
        Some(value)
            if value.fract() == 0.0 && (0.0..18_446_744_073_709_551_616.0).contains(&value) =>
        {
            Ok(value as u64)
        }
        _ => Err(serde::de::Error::custom(format!(
            "invalid value: {number}, expected a whole number of minor units, 0 or more"
        ))),
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LineItem {
    pub menu_item_id: String,
    pub quantity: u32,
    /// The unit price from the order context's replica of the menu, when it knew the item.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub price: Option<Money>,
}

impl LineItem {
    /// A line as a client sends it: no price yet.
    pub fn unpriced(menu_item_id: impl Into<String>, quantity: u32) -> Self {
        Self {
            menu_item_id: menu_item_id.into(),
            quantity,
            price: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderCreated {
    #[serde(flatten)]
    pub meta: EventMeta,
    pub consumer_id: String,
    pub restaurant_id: String,
    pub line_items: Vec<LineItem>,
    /// The total priced at intake from the replica; absent when the replica did not know the
    /// restaurant yet (the restaurant then prices the order).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total: Option<Money>,
}

/// Fields every event about a change of an entity (a consumer, a restaurant) carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChangeMeta {
    pub event_id: Uuid,
    pub occurred_at: DateTime<Utc>,
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<String>,
}

impl ChangeMeta {
    pub fn new(correlation_id: Option<String>) -> Self {
        Self {
            event_id: Uuid::now_v7(),
            occurred_at: Utc::now(),
            schema_version: SCHEMA_VERSION,
            correlation_id,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ConsumerStatus {
    Active,
    Suspended,
}

/// A consumer's whole new state, published by the consumer context on every change. `version`
/// grows by one with each change, so a replica keeps the newest whatever order events come in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConsumerUpdated {
    #[serde(flatten)]
    pub meta: ChangeMeta,
    pub consumer_id: String,
    pub version: u64,
    pub name: String,
    pub status: ConsumerStatus,
    /// The most one order may cost; no limit when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_limit: Option<Money>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MenuItem {
    pub menu_item_id: String,
    pub name: String,
    pub price: Money,
    pub available: bool,
}

/// A restaurant's whole new state, its menu included, published by the restaurant context on
/// every change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RestaurantUpdated {
    #[serde(flatten)]
    pub meta: ChangeMeta,
    pub restaurant_id: String,
    pub version: u64,
    pub name: String,
    pub accepting_orders: bool,
    pub menu: Vec<MenuItem>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConsumerValidated {
    #[serde(flatten)]
    pub meta: EventMeta,
    /// The consumer's limit when the order came without a total to check it against: the order
    /// is valid for the consumer only if its total, once the restaurant prices it, keeps to it
    /// (`refusals::Refusal::over_limit`). Absent when the limit was checked, or there is none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_limit: Option<Money>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConsumerValidationFailed {
    #[serde(flatten)]
    pub meta: EventMeta,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderDetailsValidated {
    #[serde(flatten)]
    pub meta: EventMeta,
    /// The order priced from the restaurant's own menu.
    pub total: Money,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderDetailsValidationFailed {
    #[serde(flatten)]
    pub meta: EventMeta,
    /// Every problem found, not just the first.
    pub reasons: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderValidated {
    #[serde(flatten)]
    pub meta: EventMeta,
    pub total: Money,
    #[serde(default)]
    pub outcome_delivery: OutcomeDelivery,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderRejected {
    #[serde(flatten)]
    pub meta: EventMeta,
    pub reasons: Vec<String>,
    #[serde(default)]
    pub outcome_delivery: OutcomeDelivery,
}

/// How an order's outcome reaches its client: `OrderDecidedRule` sends the notifier only
/// `"callback"` outcomes. A string, not a boolean: CloudFormation has been reported to turn a
/// boolean in an `EventPattern` into a string, which would match no event. An outcome written
/// before the field existed reads as `Callback`: its order may have one.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum OutcomeDelivery {
    /// POSTed to the order's callback URL.
    #[default]
    Callback,
    /// Nobody to call back: the client reads the order.
    None,
}

/// An event together with where it belongs in the envelope.
pub trait Event: Serialize {
    const SOURCE: &'static str;
    const DETAIL_TYPE: &'static str;
    fn event_id(&self) -> Uuid;
    fn occurred_at(&self) -> DateTime<Utc>;
    /// What the event is about (an order's id, a consumer's, a restaurant's): the events of one
    /// subject are published in the order they were written.
    fn subject(&self) -> String;
    fn correlation_id(&self) -> Option<&str>;
}

macro_rules! event {
    ($type:ident, $source:expr) => {
        event!($type, $source, |event: &$type| event
            .meta
            .order_id
            .to_string());
    };
    ($type:ident, $source:expr, $subject:expr) => {
        impl Event for $type {
            const SOURCE: &'static str = $source;
            const DETAIL_TYPE: &'static str = stringify!($type);
            fn event_id(&self) -> Uuid {
                self.meta.event_id
            }
            fn occurred_at(&self) -> DateTime<Utc> {
                self.meta.occurred_at
            }
            fn subject(&self) -> String {
                ($subject)(self)
            }
            fn correlation_id(&self) -> Option<&str> {
                self.meta.correlation_id.as_deref()
            }
        }
    };
}

event!(OrderCreated, source::ORDERS);
event!(OrderValidated, source::ORDERS);
event!(OrderRejected, source::ORDERS);
event!(ConsumerValidated, source::CONSUMERS);
event!(ConsumerValidationFailed, source::CONSUMERS);
event!(OrderDetailsValidated, source::RESTAURANTS);
event!(OrderDetailsValidationFailed, source::RESTAURANTS);
event!(ConsumerUpdated, source::CONSUMERS, |e: &ConsumerUpdated| e
    .consumer_id
    .clone());
event!(
    RestaurantUpdated,
    source::RESTAURANTS,
    |e: &RestaurantUpdated| e.restaurant_id.clone()
);

#[cfg(test)]
mod tests {
    use super::*;

    fn money(currency: &str, amount_minor: u64) -> Money {
        Money::new(currency, amount_minor)
    }

    #[test]
    fn money_is_shown_in_its_currencys_major_unit() {
        assert_eq!(money("EUR", 2500).to_string(), "25.00 EUR");
        assert_eq!(money("EUR", 5).to_string(), "0.05 EUR");
        assert_eq!(money("JPY", 1500).to_string(), "1500 JPY");
        assert_eq!(money("KWD", 1250).to_string(), "1.250 KWD");
        assert_eq!(money("XYZ", 2500).to_string(), "2500 minor units of XYZ");
    }

    #[test]
    fn an_amount_is_any_whole_number_as_json_schema_counts_them() {
        let amount = |json: &str| {
            serde_json::from_str::<Money>(&format!(r#"{{"currency":"EUR","amountMinor":{json}}}"#))
                .map(|m| m.amount_minor)
                .map_err(|e| e.to_string())
        };
        assert_eq!(amount("100"), Ok(100));
        assert_eq!(amount("100.0"), Ok(100));
        assert_eq!(amount("1e2"), Ok(100));
        for refused in ["100.5", "-1", "-1.0", "1e20", "\"100\""] {
            assert!(amount(refused).is_err(), "{refused}");
        }
        assert!(amount("100.5").unwrap_err().contains("whole number"));
        // As DynamoDB holds it too.
        let money = Money {
            currency: "EUR".into(),
            amount_minor: 2950,
        };
        let item: serde_dynamo::Item = serde_dynamo::to_item(&money).unwrap();
        assert_eq!(serde_dynamo::from_item::<_, Money>(item).unwrap(), money);
    }
    use serde::de::DeserializeOwned;
    use serde_json::Value;

    #[test]
    fn an_outcome_from_before_outcome_delivery_reads_as_delivered_by_callback() {
        let mut detail: Value =
            serde_json::from_str(include_str!("../../samples/OrderValidated.json")).unwrap();
        detail.as_object_mut().unwrap().remove("outcomeDelivery");
        let event: OrderValidated = serde_json::from_value(detail).unwrap();
        assert_eq!(event.outcome_delivery, OutcomeDelivery::Callback);
        let none = serde_json::to_value(OutcomeDelivery::None).unwrap();
        assert_eq!(none, "none");
    }

    /// Each sample in `samples/` is the `detail` of one event exactly as it travels. Decoding it
    /// and encoding it again must give the same JSON, so the Rust types and the documented
    /// contract cannot drift apart unnoticed.
    fn round_trips<T: Event + DeserializeOwned>(sample: &str) {
        let original: Value = serde_json::from_str(sample).expect("sample is JSON");
        let event: T = serde_json::from_value(original.clone())
            .unwrap_or_else(|e| panic!("{} sample does not decode: {e}", T::DETAIL_TYPE));
        assert_eq!(
            serde_json::to_value(&event).unwrap(),
            original,
            "{}",
            T::DETAIL_TYPE
        );
        assert_eq!(original["schemaVersion"], SCHEMA_VERSION);
    }

    #[test]
    fn every_sample_matches_its_type() {
        round_trips::<OrderCreated>(include_str!("../../samples/OrderCreated.json"));
        round_trips::<ConsumerValidated>(include_str!("../../samples/ConsumerValidated.json"));
        round_trips::<ConsumerValidationFailed>(include_str!(
            "../../samples/ConsumerValidationFailed.json"
        ));
        round_trips::<OrderDetailsValidated>(include_str!(
            "../../samples/OrderDetailsValidated.json"
        ));
        round_trips::<OrderDetailsValidationFailed>(include_str!(
            "../../samples/OrderDetailsValidationFailed.json"
        ));
        round_trips::<OrderValidated>(include_str!("../../samples/OrderValidated.json"));
        round_trips::<OrderRejected>(include_str!("../../samples/OrderRejected.json"));
        round_trips::<ConsumerUpdated>(include_str!("../../samples/ConsumerUpdated.json"));
        round_trips::<RestaurantUpdated>(include_str!("../../samples/RestaurantUpdated.json"));
    }

    #[test]
    fn a_missing_required_field_is_refused() {
        let mut sample: Value =
            serde_json::from_str(include_str!("../../samples/OrderCreated.json")).unwrap();
        sample.as_object_mut().unwrap().remove("orderId");
        let error = serde_json::from_value::<OrderCreated>(sample).unwrap_err();
        assert!(error.to_string().contains("orderId"), "{error}");
    }

    #[test]
    fn an_answer_has_the_same_id_every_time_it_is_made() {
        let cause = EventMeta::new(Uuid::now_v7(), Some("corr".into()));
        let first = EventMeta::answering(&cause, ConsumerValidated::DETAIL_TYPE);
        let again = EventMeta::answering(&cause, ConsumerValidated::DETAIL_TYPE);
        let other = EventMeta::answering(&cause, ConsumerValidationFailed::DETAIL_TYPE);
        assert_eq!(first.event_id, again.event_id);
        assert_ne!(first.event_id, other.event_id);
        assert_eq!(first.order_id, cause.order_id);
        assert_eq!(first.correlation_id.as_deref(), Some("corr"));
    }

    #[test]
    fn detail_types_are_the_documented_names() {
        assert_eq!(OrderCreated::DETAIL_TYPE, "OrderCreated");
        assert_eq!(
            OrderDetailsValidationFailed::DETAIL_TYPE,
            "OrderDetailsValidationFailed"
        );
        assert_eq!(ConsumerValidated::SOURCE, "consumers");
        assert_eq!(OrderDetailsValidated::SOURCE, "restaurants");
    }
}
