//! Metrics in CloudWatch Embedded Metric Format: one JSON line on stdout per measurement, which
//! CloudWatch Logs turns into metrics without any API call from the function.

use serde_json::{Map, Value, json};

/// The CloudWatch namespace of every metric this system publishes.
pub const NAMESPACE: &str = "OrderTaking";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Count,
    Milliseconds,
    Seconds,
}

impl Unit {
    fn name(self) -> &'static str {
        match self {
            Self::Count => "Count",
            Self::Milliseconds => "Milliseconds",
            Self::Seconds => "Seconds",
        }
    }
}

/// The EMF document for `metrics`, dimensioned by function, with `properties` (such as
/// `orderId`) kept as searchable log fields.
pub fn document(
    function: &str,
    timestamp_millis: i64,
    metrics: &[(&str, Unit, f64)],
    properties: &[(&str, &str)],
) -> Value {
    let definitions: Vec<Value> = metrics
        .iter()
        .map(|(name, unit, _)| json!({"Name": name, "Unit": unit.name()}))
        .collect();
    let mut document = Map::new();
    document.insert(
        "_aws".into(),
        json!({
            "Timestamp": timestamp_millis,
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": [["Function"]],
                "Metrics": definitions,
            }],
        }),
    );
    document.insert("Function".into(), json!(function));
    for (name, _, value) in metrics {
        document.insert((*name).into(), json!(value));
    }
    for (key, value) in properties {
        document.insert((*key).into(), json!(value));
    }
    Value::Object(document)
}

/// Writes the measurements to stdout, where the Lambda log shipper picks them up.
pub fn emit(metrics: &[(&str, Unit, f64)], properties: &[(&str, &str)]) {
    let function = std::env::var("AWS_LAMBDA_FUNCTION_NAME").unwrap_or_default();
    let now = chrono::Utc::now().timestamp_millis();
    println!("{}", document(&function, now, metrics, properties));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_document_declares_each_metric_and_carries_its_value() {
        let doc = document(
            "order-api",
            1_800_000_000_000,
            &[("OrdersAccepted", Unit::Count, 1.0)],
            &[("orderId", "o-1")],
        );
        assert_eq!(doc["_aws"]["CloudWatchMetrics"][0]["Namespace"], NAMESPACE);
        assert_eq!(
            doc["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Name"],
            "OrdersAccepted"
        );
        assert_eq!(
            doc["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Unit"],
            "Count"
        );
        assert_eq!(
            doc["_aws"]["CloudWatchMetrics"][0]["Dimensions"][0][0],
            "Function"
        );
        assert_eq!(doc["Function"], "order-api");
        assert_eq!(doc["OrdersAccepted"], 1.0);
        assert_eq!(doc["orderId"], "o-1");
    }
}
