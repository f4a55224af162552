//! Lambda entry point of outcome delivery (SQS: OrderValidated and OrderRejected from the bus).

use aws_lambda_events::event::sqs::SqsEvent;
use lambda_runtime::{LambdaEvent, service_fn};
use orders::adapters::dynamo::DynamoStore;
use orders::adapters::webhook_client::HttpDeliverer;
use orders::app::callbacks::Callbacks;
use orders::app::deliver_outcome::Notifier;
use orders::ports::master_secret::MasterSecret;
use shared::platform::batch::SqsRetryLater;
use shared::platform::dead_letter::SqsDeadLetters;

// One thread: an instance serves one invocation at a time; more cost init (docs/benchmarks.md).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    shared::platform::telemetry::init();
    let config = shared::platform::aws::sdk_config().await;
    // One SQS client for both queues: each client built costs the cold start.
    let sqs = shared::platform::aws::sqs(&config);
    let notifier = Notifier {
        store: DynamoStore::from_env(shared::platform::aws::dynamodb(&config))?,
        callbacks: Callbacks::from_env(),
        deliverer: HttpDeliverer::new(),
        // Consumers' secrets derive from it; read from Secrets Manager when a delivery first
        // signs, never in code or in the function's environment.
        secret: MasterSecret::from_env(&config)?,
        dead_letters: SqsDeadLetters::from_env(sqs.clone())?,
        retry_later: SqsRetryLater {
            client: sqs,
            queue_url: shared::platform::aws::required_env("NOTIFICATIONS_QUEUE_URL")?,
        },
    };
    let notifier = &notifier;
    lambda_runtime::run(shared::platform::metrics::Recorded(service_fn(
        move |event: LambdaEvent<SqsEvent>| async move {
            let deadline = shared::platform::batch::work_deadline(&event.context);
            Ok::<_, lambda_runtime::Error>(
                Box::pin(notifier.handle_batch(event.payload, deadline)).await,
            )
        },
    )))
    .await
}
