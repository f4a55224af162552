//! Lambda entry point of the restaurant validator (SQS: OrderCreated from the bus).

use restaurants::validator::RestaurantValidator;

// One thread: an instance serves one invocation at a time; more cost init (docs/benchmarks.md).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    shared::owners::validation::run(RestaurantValidator::from_env).await
}
