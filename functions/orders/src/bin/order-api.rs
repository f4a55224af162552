//! Lambda entry point of `POST /orders`, `GET /orders/{orderId}` and a consumer's webhook secret
//! (HTTP API, payload 2.0). Deployed twice: OrderApiFunction takes the writes, OrderReaderFunction
//! the reads (waits included), so that waiting never holds the instances that take orders.

use orders::adapters::dynamo::{DynamoReplica, DynamoStore};
use orders::adapters::replica_cache::CachedReplica;
use orders::app::callbacks::Callbacks;
use orders::entry::config;
use orders::entry::http::{self, App, Routes};
use orders::ports::master_secret::MasterSecret;

// One thread: an instance serves one invocation at a time; more cost init (docs/benchmarks.md).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    shared::platform::telemetry::init();
    let config = shared::platform::aws::sdk_config().await;
    // One client for both tables: each client built costs the cold start (docs/benchmarks.md).
    let dynamodb = shared::platform::aws::dynamodb(&config);
    lambda_http::run(shared::platform::metrics::Recorded(http::router_for(
        App {
            store: DynamoStore::from_env(dynamodb.clone())?,
            replica: CachedReplica::new(
                DynamoReplica::from_env(dynamodb)?,
                config::replica_cache_lifetime(),
            ),
            callbacks: Callbacks::from_env(),
            secret: std::sync::Arc::new(MasterSecret::from_env(&config)?),
        },
        Routes::from_env()?,
    )))
    .await
}
