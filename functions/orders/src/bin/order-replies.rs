//! Lambda entry point of the order context's reply handler (SQS: the validators' replies).

use aws_lambda_events::event::sqs::SqsEvent;
use lambda_runtime::{LambdaEvent, service_fn};
use orders::adapters::dynamo::DynamoStore;
use orders::app::apply_reply::ReplyHandler;
use shared::platform::dead_letter::SqsDeadLetters;

// One thread: an instance serves one invocation at a time; more cost init (docs/benchmarks.md).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    shared::platform::telemetry::init();
    let config = shared::platform::aws::sdk_config().await;
    let handler = ReplyHandler::new(
        DynamoStore::from_env(shared::platform::aws::dynamodb(&config))?,
        SqsDeadLetters::from_env(shared::platform::aws::sqs(&config))?,
    );
    let handler = &handler;
    lambda_runtime::run(shared::platform::metrics::Recorded(service_fn(
        move |event: LambdaEvent<SqsEvent>| async move {
            Ok::<_, lambda_runtime::Error>(
                Box::pin(handler.handle_batch(
                    event.payload,
                    shared::platform::batch::work_deadline(&event.context),
                ))
                .await,
            )
        },
    )))
    .await
}
