//! Lambda entry point of the order watch (scheduled): measures the age of the oldest order
//! still awaiting VALIDATED or REJECTED, which an alarm watches. An order stuck anywhere in the
//! flow (a stopped validator, a full dead-letter queue, a stalled stream) shows up here.

use chrono::Utc;
use lambda_runtime::{LambdaEvent, service_fn};
use orders::dynamo::DynamoStore;
use serde_json::{Value, json};
use shared::metrics::{self, Unit};
use tracing::info;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    shared::telemetry::init();
    let config = shared::aws::sdk_config().await;
    let store = DynamoStore::from_env(&config)?;
    let store = &store;
    lambda_runtime::run(service_fn(move |_: LambdaEvent<Value>| async move {
        let oldest = store.oldest_awaiting().await?;
        let age_seconds = oldest.map_or(0, |(_, placed)| (Utc::now().timestamp_millis() - placed).max(0) / 1000);
        let order_id = oldest.map(|(id, _)| id.to_string()).unwrap_or_default();
        info!(coldStart = shared::telemetry::cold_start(), orderId = %order_id, ageSeconds = age_seconds, "oldest awaiting order");
        metrics::emit(&[("OldestAwaitingOrderAge", Unit::Seconds, age_seconds as f64)], &[("orderId", &order_id)]);
        Ok::<_, lambda_runtime::Error>(json!({ "oldestAwaitingOrderId": oldest.map(|(id, _)| id), "ageSeconds": age_seconds }))
    }))
    .await
}
