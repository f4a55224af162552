//! Lambda entry point of `POST /orders` and `GET /orders/{orderId}` (HTTP API, payload 2.0).

use orders::{api, dynamo::DynamoStore};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::telemetry::init();
    let config = shared::aws::sdk_config().await;
    let store = DynamoStore::from_env(&config)?;
    lambda_http::run(api::router(store)).await
}
