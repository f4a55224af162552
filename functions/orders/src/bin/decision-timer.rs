//! Lambda entry point of the decision deadline's timer (the orders outbox table's stream).

use aws_lambda_events::event::dynamodb::Event;
use lambda_runtime::{LambdaEvent, service_fn};
use orders::adapters::sqs_timers::SqsTimers;
use orders::app::deadline_timer::DeadlineTimers;

// One thread: an instance serves one invocation at a time; more cost init (docs/benchmarks.md).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    shared::platform::telemetry::init();
    let config = shared::platform::aws::sdk_config().await;
    let deadline: u64 =
        shared::platform::aws::required_env("DECISION_DEADLINE_SECONDS")?.parse()?;
    let timers = DeadlineTimers::new(
        SqsTimers::from_env(&config)?,
        std::time::Duration::from_secs(deadline),
    );
    let timers = &timers;
    lambda_runtime::run(shared::platform::metrics::Recorded(service_fn(
        move |event: LambdaEvent<Event>| async move {
            Ok::<_, lambda_runtime::Error>(timers.handle(event.payload).await)
        },
    )))
    .await
}
