//! Lambda entry point of the order context's replica updater (SQS: consumers' and restaurants'
//! change events).

use aws_lambda_events::event::sqs::SqsEvent;
use lambda_runtime::{LambdaEvent, service_fn};
use orders::adapters::dynamo::DynamoReplica;
use orders::app::update_replica::ReplicaUpdater;
use shared::platform::dead_letter::SqsDeadLetters;

// One thread: an instance serves one invocation at a time; more cost init (docs/benchmarks.md).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    shared::platform::telemetry::init();
    let config = shared::platform::aws::sdk_config().await;
    let updater = ReplicaUpdater::new(
        DynamoReplica::from_env(shared::platform::aws::dynamodb(&config))?,
        SqsDeadLetters::from_env(shared::platform::aws::sqs(&config))?,
    );
    let updater = &updater;
    lambda_runtime::run(shared::platform::metrics::Recorded(service_fn(
        move |event: LambdaEvent<SqsEvent>| async move {
            Ok::<_, lambda_runtime::Error>(
                updater
                    .handle_batch(
                        event.payload,
                        shared::platform::batch::work_deadline(&event.context),
                    )
                    .await,
            )
        },
    )))
    .await
}
