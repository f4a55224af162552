//! Lambda entry point of `POST /orders` and `GET /orders/{orderId}` (HTTP API, payload 2.0).

use orders::api::{self, App, Callbacks};
use orders::dynamo::DynamoStore;
use orders::replica::dynamo::DynamoReplica;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::telemetry::init();
    let config = shared::aws::sdk_config().await;
    lambda_http::run(shared::metrics::Recorded(api::router(App {
        store: DynamoStore::from_env(&config)?,
        replica: DynamoReplica::from_env(&config)?,
        callbacks: Callbacks::from_env(),
    })))
    .await
}
