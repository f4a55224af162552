//! Lambda entry point of the consumer validator (SQS: OrderCreated from the bus).

use consumers::validator::ConsumerValidator;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    shared::owners::validation::run(ConsumerValidator::from_env).await
}
