//! Lambda entry point of outcome delivery (SQS: OrderValidated and OrderRejected from the bus).

use aws_lambda_events::event::sqs::SqsEvent;
use lambda_runtime::{LambdaEvent, service_fn};
use orders::api::Callbacks;
use orders::dynamo::DynamoStore;
use orders::notify::{HttpDeliverer, Notifier, SqsRetryLater};
use shared::dead_letter::SqsDeadLetters;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    shared::telemetry::init();
    let config = shared::aws::sdk_config().await;
    // The signing secret lives in Secrets Manager, read once per instance; never in code or
    // in the function's environment.
    let secrets = aws_sdk_secretsmanager::config::Builder::from(&config)
        .interceptor(shared::aws::calls::Counter)
        .build();
    let secret = aws_sdk_secretsmanager::Client::from_conf(secrets)
        .get_secret_value()
        .secret_id(shared::aws::required_env("WEBHOOK_SECRET_ARN")?)
        .send()
        .await?
        .secret_string
        .ok_or("the webhook secret has no string value")?;
    let notifier = Notifier {
        store: DynamoStore::from_env(&config)?,
        callbacks: Callbacks::from_env(),
        deliverer: HttpDeliverer::new()?,
        secret: secret.into_bytes(),
        dead_letters: SqsDeadLetters::from_env(&config)?,
        retry_later: SqsRetryLater {
            client: shared::aws::sqs(&config),
            queue_url: shared::aws::required_env("NOTIFICATIONS_QUEUE_URL")?,
        },
    };
    let notifier = &notifier;
    lambda_runtime::run(shared::metrics::Recorded(service_fn(
        move |event: LambdaEvent<SqsEvent>| async move {
            Ok::<_, lambda_runtime::Error>(Box::pin(notifier.handle(event.payload)).await)
        },
    )))
    .await
}
