//! Lambda entry point of `PUT` and `GET /restaurants/{restaurantId}` (HTTP API, payload 2.0).

use restaurants::api;
use shared::owners::versioned::DynamoVersionedStore;

// One thread: an instance serves one invocation at a time; more cost init (docs/benchmarks.md).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    shared::platform::telemetry::init();
    let config = shared::platform::aws::sdk_config().await;
    let store = DynamoVersionedStore::from_env(&config, "RESTAURANTS_TABLE", "restaurantId")?;
    lambda_http::run(shared::platform::metrics::Recorded(api::router(store))).await
}
