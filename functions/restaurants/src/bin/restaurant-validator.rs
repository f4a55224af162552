//! Lambda entry point of the restaurant validator (SQS: OrderCreated from the bus).

use restaurants::validator::RestaurantValidator;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    shared::owners::validation::run(RestaurantValidator::from_env).await
}
