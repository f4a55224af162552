//! Lambda entry point of the consumer validator (SQS: OrderCreated from the bus).

use consumers::validator::ConsumerValidator;

// One thread: an instance serves one invocation at a time; more cost init (docs/benchmarks.md).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    shared::owners::validation::run(ConsumerValidator::from_env).await
}
