//! Lambda entry point of outcome delivery (SQS: OrderValidated and OrderRejected from the bus).

use aws_lambda_events::event::sqs::SqsEvent;
use lambda_runtime::{LambdaEvent, service_fn};
use orders::api::Callbacks;
use orders::dynamo::DynamoStore;
use orders::notify::{HttpDeliverer, Notifier, SecretError, SigningSecret};
use shared::aws_error::AwsError;
use shared::batch::SqsRetryLater;
use shared::dead_letter::SqsDeadLetters;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    shared::telemetry::init();
    let config = shared::aws::sdk_config().await;
    // The signing secret lives in Secrets Manager, read once per instance when a delivery first
    // needs it; never in code or in the function's environment.
    let secrets = aws_sdk_secretsmanager::config::Builder::from(&config)
        .interceptor(shared::aws::calls::Counter)
        .build();
    let secrets = aws_sdk_secretsmanager::Client::from_conf(secrets);
    let secret_id = shared::aws::required_env("WEBHOOK_SECRET_ARN")?;
    let secret = SigningSecret::read_with(move || {
        let (secrets, secret_id) = (secrets.clone(), secret_id.clone());
        async move {
            let answer = secrets
                .get_secret_value()
                .secret_id(secret_id)
                .send()
                .await
                .map_err(|e| AwsError::from_sdk("SecretsManager.GetSecretValue", e))?;
            let value = answer.secret_string.map(String::into_bytes);
            value.ok_or(SecretError::NoString)
        }
    });
    let notifier = Notifier {
        store: DynamoStore::from_env(&config)?,
        callbacks: Callbacks::from_env(),
        deliverer: HttpDeliverer::new(),
        secret,
        dead_letters: SqsDeadLetters::from_env(&config)?,
        retry_later: SqsRetryLater {
            client: shared::aws::sqs(&config),
            queue_url: shared::aws::required_env("NOTIFICATIONS_QUEUE_URL")?,
        },
    };
    let notifier = &notifier;
    lambda_runtime::run(shared::metrics::Recorded(service_fn(
        move |event: LambdaEvent<SqsEvent>| async move {
            let deadline = shared::batch::work_deadline(&event.context);
            Ok::<_, lambda_runtime::Error>(
                Box::pin(notifier.handle_batch(event.payload, deadline)).await,
            )
        },
    )))
    .await
}
