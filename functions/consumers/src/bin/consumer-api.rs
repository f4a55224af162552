//! Lambda entry point of `PUT` and `GET /consumers/{consumerId}` (HTTP API, payload 2.0).

use consumers::api;
use shared::versioned::DynamoVersionedStore;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::telemetry::init();
    let config = shared::aws::sdk_config().await;
    let store = DynamoVersionedStore::from_env(&config, "CONSUMERS_TABLE", "consumerId")?;
    lambda_http::run(shared::metrics::Recorded(api::router(store))).await
}
