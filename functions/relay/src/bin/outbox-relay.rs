//! Lambda entry point of the outbox relay (the DynamoDB streams of every context's outbox table).

use aws_lambda_events::event::dynamodb::Event;
use lambda_runtime::{LambdaEvent, service_fn};
use relay::{Outboxes, Relay, Retries};

// One thread: an instance serves one invocation at a time; more cost init (docs/benchmarks.md).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    shared::platform::telemetry::init();
    let config = shared::platform::aws::sdk_config().await;
    let relay = Relay::new(
        shared::platform::bus::EventBus::from_env(&config)?,
        shared::platform::dead_letter::SqsDeadLetters::from_env(shared::platform::aws::sqs(
            &config,
        ))?,
        Retries::default(),
        Outboxes::from_env()?,
    );
    let relay = &relay;
    lambda_runtime::run(shared::platform::metrics::Recorded(service_fn(
        move |event: LambdaEvent<Event>| async move {
            Ok::<_, lambda_runtime::Error>(relay.handle(event.payload).await)
        },
    )))
    .await
}
